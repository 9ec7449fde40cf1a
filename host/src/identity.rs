//! A node's key: one secp256k1 key that is both its Ethereum account (its chain address)
//! and its libp2p identity (its peer id, and the key that signs its receipts and records).
//! One key for both is what makes the link between a peer id and a chain address provable:
//! the contract derives the registered node key hash from the account's own public key
//! (ARCHITECTURE.md, "Node identity"), so one peer id maps to one address and back.
//!
//! It lives in `DATA_DIR/keys/eth.key` with owner-only permissions (directory 0700, file
//! 0600) and is created on first start. The file is written to a temporary name and
//! renamed, so a crash never leaves half a key behind. (An ed25519 `node.key` left by an
//! older version is ignored: the peer id now follows the Ethereum key.)

use libp2p::identity::Keypair;
use libp2p::PeerId;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a node's keys could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing a key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key file exists but does not hold a valid key.
    #[error("{path}: not a valid key ({reason})")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// The key of one node.
#[derive(Clone)]
pub struct Identity {
    /// The libp2p form of `eth`.
    keypair: Keypair,
    eth: k256::ecdsa::SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id())
            .field("eth_address", &self.eth_address_hex())
            .finish_non_exhaustive()
    }
}

const ETH_KEY: &str = "eth.key";

/// The libp2p (secp256k1) keypair of an Ethereum key: the peer id of a node whose chain
/// account is `key`.
pub fn libp2p_keypair(key: &k256::ecdsa::SigningKey) -> Keypair {
    let secret = libp2p::identity::secp256k1::SecretKey::try_from_bytes(key.to_bytes().to_vec())
        .expect("a k256 signing key is a valid secp256k1 secret");
    Keypair::from(libp2p::identity::secp256k1::Keypair::from(secret))
}

/// The libp2p keypair of an alloy signer (a node run with `--key-file`).
pub fn libp2p_keypair_of(signer: &smartnodes_contracts::PrivateKeySigner) -> Keypair {
    libp2p_keypair(signer.credential())
}

impl Identity {
    /// A fresh key that lives only in memory (the `submit` and `status` clients).
    pub fn ephemeral() -> Identity {
        Identity::from_eth(k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng))
    }

    /// The identity of a chain signer (a `--key-file`): the same key as peer id.
    pub fn from_signer(signer: &smartnodes_contracts::PrivateKeySigner) -> Identity {
        Identity::from_eth(signer.credential().clone())
    }

    fn from_eth(eth: k256::ecdsa::SigningKey) -> Identity {
        Identity {
            keypair: libp2p_keypair(&eth),
            eth,
        }
    }

    /// Loads the keys from `data_dir/keys`, creating any that do not exist yet.
    pub fn load_or_create(data_dir: &Path) -> Result<Identity, IdentityError> {
        let dir = data_dir.join("keys");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IdentityError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        set_mode(&dir, 0o700).map_err(io(&dir))?;

        let eth_path = dir.join(ETH_KEY);
        match Identity::load_file(&eth_path) {
            Err(IdentityError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Identity::create_file(&eth_path)
            }
            other => other,
        }
    }

    /// Loads a key file (a user's `smartnodes keys new`, or a node's `keys/eth.key`): the
    /// secp256k1 secret in hex, `0x` optional, readable by its owner only.
    pub fn load_file(path: &Path) -> Result<Identity, IdentityError> {
        let text = std::fs::read_to_string(path).map_err(|source| IdentityError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        check_mode(path)?;
        let invalid = |reason: String| IdentityError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = hex::decode(text.trim().trim_start_matches("0x"))
            .map_err(|e| invalid(e.to_string()))?;
        let eth =
            k256::ecdsa::SigningKey::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        Ok(Identity::from_eth(eth))
    }

    /// Creates a new key in the file `path` (mode 0600, written to a temporary name and
    /// renamed); refuses to replace an existing file, which may be someone's only key.
    pub fn create_file(path: &Path) -> Result<Identity, IdentityError> {
        if path.exists() {
            return Err(IdentityError::Invalid {
                path: path.to_path_buf(),
                reason: "the file exists; a new key never replaces one".into(),
            });
        }
        let key = k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let text = format!("0x{}\n", hex::encode(key.to_bytes()));
        write_private(path, text.as_bytes()).map_err(|source| IdentityError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Identity::from_eth(key))
    }

    /// The libp2p keypair (secp256k1, the same key as the chain account).
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// Its Ethereum key as an alloy signer (the node's chain account).
    pub fn eth_signer(&self) -> smartnodes_contracts::PrivateKeySigner {
        let bytes: [u8; 32] = self.eth.to_bytes().into();
        smartnodes_contracts::PrivateKeySigner::from_bytes(&bytes.into())
            .expect("a valid secp256k1 key")
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    /// The node's Ethereum address: the last 20 bytes of keccak256 of the uncompressed
    /// public key (without its 0x04 prefix).
    pub fn eth_address(&self) -> [u8; 20] {
        eth_address_of(&self.eth)
    }

    /// The Ethereum address with its EIP-55 checksum, `0x…`.
    pub fn eth_address_hex(&self) -> String {
        checksum_address(&self.eth_address())
    }
}

fn eth_address_of(key: &k256::ecdsa::SigningKey) -> [u8; 20] {
    use sha3::Digest;
    let point = key.verifying_key().to_encoded_point(false);
    let hash = sha3::Keccak256::digest(&point.as_bytes()[1..]);
    let mut out = [0; 20];
    out.copy_from_slice(&hash[12..]);
    out
}

/// EIP-55: a hex letter is upper case when the matching nibble of keccak(lowercase hex) is ≥ 8.
fn checksum_address(address: &[u8; 20]) -> String {
    use sha3::Digest;
    let lower = hex::encode(address);
    let hash = sha3::Keccak256::digest(lower.as_bytes());
    let mut out = String::from("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0xf;
        out.push(if nibble >= 8 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Refuses a key file that others may read: a leaked node key lets anyone sign receipts.
fn check_mode(path: &Path) -> Result<(), IdentityError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| IdentityError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(IdentityError::Invalid {
                path: path.to_path_buf(),
                reason: format!(
                    "permissions {:o} let others read it; run chmod 600",
                    meta.permissions().mode() & 0o777
                ),
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ethereum_address() {
        // The secp256k1 private key 1 has a well-known address.
        let mut one = [0u8; 32];
        one[31] = 1;
        let key = k256::ecdsa::SigningKey::from_slice(&one).unwrap();
        assert_eq!(
            checksum_address(&eth_address_of(&key)),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
    }

    #[test]
    fn a_key_file_is_created_once_and_loads_as_the_same_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user.key");
        let made = Identity::create_file(&path).unwrap();
        let loaded = Identity::load_file(&path).unwrap();
        assert_eq!(made.peer_id(), loaded.peer_id());
        assert_eq!(made.eth_address(), loaded.eth_address());
        assert!(matches!(
            Identity::create_file(&path),
            Err(IdentityError::Invalid { .. })
        ));
        assert_eq!(
            Identity::load_file(&path).unwrap().peer_id(),
            made.peer_id()
        );
        std::fs::write(dir.path().join("bad.key"), "0xnothex").unwrap();
        set_mode(&dir.path().join("bad.key"), 0o600).unwrap();
        assert!(matches!(
            Identity::load_file(&dir.path().join("bad.key")),
            Err(IdentityError::Invalid { .. })
        ));
    }

    #[test]
    fn keys_persist_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(dir.path()).unwrap();
        let b = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.peer_id(), b.peer_id());
        assert_eq!(a.eth_address(), b.eth_address());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join("keys").join(ETH_KEY);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{ETH_KEY}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(Identity::load_or_create(dir.path()).is_err());
        }
        let other = tempfile::tempdir().unwrap();
        let c = Identity::load_or_create(other.path()).unwrap();
        assert_ne!(a.peer_id(), c.peer_id());
    }

    /// The peer id is the Ethereum key's, and its node key hash is the one the contract
    /// derives from the account's public key: the registration links the two provably.
    #[test]
    fn the_peer_id_is_the_chain_key() {
        let id = Identity::ephemeral();
        let signer = id.eth_signer();
        assert_eq!(
            libp2p_keypair_of(&signer).public().to_peer_id(),
            id.peer_id()
        );
        let point = id.eth.verifying_key().to_encoded_point(false);
        let mut public = [0u8; 64];
        public.copy_from_slice(&point.as_bytes()[1..]);
        assert_eq!(
            id.peer_id().to_bytes(),
            smartnodes_contracts::secp256k1_peer_id_bytes(&public)
        );
        assert_eq!(
            crate::epoch::ledger::node_key_hash(&id.peer_id()),
            smartnodes_contracts::node_key_hash_of(&public)
        );
        assert_eq!(signer.address().into_array(), id.eth_address());
    }
}
