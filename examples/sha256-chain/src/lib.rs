//! `sha256-chain`: K-fold iterated SHA-256.
//!
//! Input: a first line with an ASCII decimal `K >= 1`, then `\n`, then the data (the rest
//! of the input, any bytes). `h1 = sha256(data)`, `h(i+1) = sha256(h(i))` on the 32 raw
//! bytes. Output: the lowercase hex of `hK` and `\n`.

use sha2::{Digest, Sha256};

/// Runs the task; see the crate docs for the format.
pub fn run(input: &[u8]) -> Result<Vec<u8>, String> {
    let newline = input
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("expected a first line with K, ended by a newline")?;
    let first = std::str::from_utf8(&input[..newline]).map_err(|_| "K is not ASCII")?;
    let k: u64 = first
        .trim()
        .parse()
        .map_err(|e| format!("expected a decimal K >= 1, got {first:?}: {e}"))?;
    if k == 0 {
        return Err("K must be at least 1".into());
    }
    let mut h: [u8; 32] = Sha256::digest(&input[newline + 1..]).into();
    for _ in 1..k {
        h = Sha256::digest(h).into();
    }
    let mut out = hex::encode(h).into_bytes();
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::run;

    #[test]
    fn one_round_is_plain_sha256() {
        // sha256("abc")
        assert_eq!(
            run(b"1\nabc").unwrap(),
            b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
        );
        // sha256("")
        assert_eq!(
            run(b"1\n").unwrap(),
            b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        );
    }

    #[test]
    fn two_rounds_hash_the_raw_digest() {
        // sha256(sha256("abc")) on the raw 32 bytes.
        assert_eq!(
            run(b"2\nabc").unwrap(),
            b"4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358\n"
        );
    }

    #[test]
    fn bad_k_is_an_error() {
        assert!(run(b"0\nabc").is_err());
        assert!(run(b"x\nabc").is_err());
        assert!(run(b"3").is_err());
    }
}
