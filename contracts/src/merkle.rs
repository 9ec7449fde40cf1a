//! Merkle trees that OpenZeppelin's `MerkleProof` accepts, and the leaf formats the contract
//! checks.
//!
//! Inner nodes hash their two children in sorted order (`keccak256(min || max)`), a node
//! without a sibling moves up unchanged, and a proof is the list of siblings from the leaf
//! up. Leaves are `keccak256(abi.encodePacked(...))` of 84, 65 and 60 bytes, never 64, so a
//! leaf cannot pass for an inner node.
//!
//! The typed trees ([`RewardTree`], [`JobResultsTree`], [`ReputationTree`]) sort their
//! entries by key, so every validator that agrees on the entries builds the same root.

use std::collections::BTreeMap;

use alloy::primitives::{keccak256, Address, B256, U256};

use crate::types::JobResult;

/// Hash two nodes the way OpenZeppelin's `Hashes.commutativeKeccak256` does.
pub fn hash_pair(a: B256, b: B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// Check `proof` for `leaf` against `root`, exactly as `MerkleProof.verify` does on chain.
pub fn verify(proof: &[B256], root: B256, leaf: B256) -> bool {
    proof
        .iter()
        .fold(leaf, |acc, sibling| hash_pair(acc, *sibling))
        == root
}

/// Worker reward leaf: `keccak256(abi.encodePacked(address worker, uint256 amount, uint256 epoch))`.
pub fn reward_leaf(worker: Address, amount: U256, epoch: u64) -> B256 {
    let mut buf = Vec::with_capacity(84);
    buf.extend_from_slice(worker.as_slice());
    buf.extend_from_slice(&amount.to_be_bytes::<32>());
    buf.extend_from_slice(&U256::from(epoch).to_be_bytes::<32>());
    keccak256(buf)
}

/// Job result leaf: `keccak256(abi.encodePacked(bytes32 jobId, uint8 result, uint256 epoch))`.
pub fn job_leaf(job_id: B256, result: JobResult, epoch: u64) -> B256 {
    let mut buf = Vec::with_capacity(65);
    buf.extend_from_slice(job_id.as_slice());
    buf.push(result as u8);
    buf.extend_from_slice(&U256::from(epoch).to_be_bytes::<32>());
    keccak256(buf)
}

/// Reputation leaf: `keccak256(abi.encodePacked(address worker, uint64 score, uint256 epoch))`.
pub fn reputation_leaf(worker: Address, score: u64, epoch: u64) -> B256 {
    let mut buf = Vec::with_capacity(60);
    buf.extend_from_slice(worker.as_slice());
    buf.extend_from_slice(&score.to_be_bytes());
    buf.extend_from_slice(&U256::from(epoch).to_be_bytes::<32>());
    keccak256(buf)
}

/// A Merkle tree over leaves in the order given. The root of no leaves is zero.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    /// `layers[0]` are the leaves, the last layer is the root.
    layers: Vec<Vec<B256>>,
}

impl MerkleTree {
    /// Build the tree over `leaves`.
    pub fn new(leaves: Vec<B256>) -> Self {
        let mut layers = vec![leaves];
        while layers.last().is_some_and(|l| l.len() > 1) {
            let below = layers.last().expect("at least one layer");
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [a, b] => hash_pair(*a, *b),
                    [a] => *a,
                    _ => unreachable!("chunks(2) yields one or two"),
                })
                .collect();
            layers.push(above);
        }
        Self { layers }
    }

    /// The root (zero for an empty tree).
    pub fn root(&self) -> B256 {
        self.layers
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(B256::ZERO)
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.layers[0].len()
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.layers[0].is_empty()
    }

    /// The proof for the leaf at `index`.
    pub fn proof(&self, index: usize) -> Option<Vec<B256>> {
        if index >= self.len() {
            return None;
        }
        let mut proof = Vec::new();
        let mut i = index;
        for layer in &self.layers[..self.layers.len() - 1] {
            if let Some(sibling) = layer.get(i ^ 1) {
                proof.push(*sibling);
            }
            i /= 2;
        }
        Some(proof)
    }
}

/// A tree of `key → value` entries, sorted by key, with a leaf function.
#[derive(Debug, Clone)]
struct KeyedTree<K: Ord, V> {
    index: BTreeMap<K, (usize, V)>,
    tree: MerkleTree,
}

impl<K: Ord + Copy, V: Copy> KeyedTree<K, V> {
    fn new(entries: BTreeMap<K, V>, leaf: impl Fn(K, V) -> B256) -> Self {
        let mut leaves = Vec::with_capacity(entries.len());
        let mut index = BTreeMap::new();
        for (i, (k, v)) in entries.into_iter().enumerate() {
            leaves.push(leaf(k, v));
            index.insert(k, (i, v));
        }
        Self {
            index,
            tree: MerkleTree::new(leaves),
        }
    }

    fn proof(&self, key: &K) -> Option<(V, Vec<B256>)> {
        let (i, v) = self.index.get(key)?;
        Some((*v, self.tree.proof(*i)?))
    }
}

/// The worker rewards of one epoch: what `EpochSummary.workerRewardRoot` and
/// `workerRewardTotal` commit to, and the proofs workers claim with.
#[derive(Debug, Clone)]
pub struct RewardTree {
    epoch: u64,
    total: U256,
    inner: KeyedTree<Address, U256>,
}

impl RewardTree {
    /// Build the tree for `epoch`. Amounts for the same worker are added up; zero amounts
    /// are left out. `None` if the total overflows 256 bits.
    pub fn new(epoch: u64, rewards: impl IntoIterator<Item = (Address, U256)>) -> Option<Self> {
        let mut merged: BTreeMap<Address, U256> = BTreeMap::new();
        let mut total = U256::ZERO;
        for (worker, amount) in rewards {
            if amount.is_zero() {
                continue;
            }
            total = total.checked_add(amount)?;
            let slot = merged.entry(worker).or_default();
            *slot = slot.checked_add(amount)?;
        }
        let inner = KeyedTree::new(merged, |w, a| reward_leaf(w, a, epoch));
        Some(Self {
            epoch,
            total,
            inner,
        })
    }

    /// The epoch the leaves are bound to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The root to put in the summary.
    pub fn root(&self) -> B256 {
        self.inner.tree.root()
    }

    /// The sum of all leaves, to put in the summary.
    pub fn total(&self) -> U256 {
        self.total
    }

    /// Number of workers with a reward.
    pub fn len(&self) -> usize {
        self.inner.tree.len()
    }

    /// Whether no worker has a reward.
    pub fn is_empty(&self) -> bool {
        self.inner.tree.is_empty()
    }

    /// `worker`'s amount and proof.
    pub fn proof(&self, worker: &Address) -> Option<(U256, Vec<B256>)> {
        self.inner.proof(worker)
    }
}

/// The job results of one epoch: what `EpochSummary.jobResultsRoot` commits to, and the
/// proofs users claim refunds with.
#[derive(Debug, Clone)]
pub struct JobResultsTree {
    inner: KeyedTree<B256, JobResult>,
}

impl JobResultsTree {
    /// Build the tree for `epoch`; a job listed twice keeps its last result.
    pub fn new(epoch: u64, results: impl IntoIterator<Item = (B256, JobResult)>) -> Self {
        let entries: BTreeMap<_, _> = results.into_iter().collect();
        Self {
            inner: KeyedTree::new(entries, |id, r| job_leaf(id, r, epoch)),
        }
    }

    /// The root to put in the summary.
    pub fn root(&self) -> B256 {
        self.inner.tree.root()
    }

    /// `job_id`'s result and proof.
    pub fn proof(&self, job_id: &B256) -> Option<(JobResult, Vec<B256>)> {
        self.inner.proof(job_id)
    }
}

/// The full reputation table after one epoch: what `EpochSummary.reputationRoot` commits to.
#[derive(Debug, Clone)]
pub struct ReputationTree {
    inner: KeyedTree<Address, u64>,
}

impl ReputationTree {
    /// Build the tree for `epoch`; a worker listed twice keeps its last score.
    pub fn new(epoch: u64, scores: impl IntoIterator<Item = (Address, u64)>) -> Self {
        let entries: BTreeMap<_, _> = scores.into_iter().collect();
        Self {
            inner: KeyedTree::new(entries, |w, s| reputation_leaf(w, s, epoch)),
        }
    }

    /// The root to put in the summary.
    pub fn root(&self) -> B256 {
        self.inner.tree.root()
    }

    /// `worker`'s score and proof.
    pub fn proof(&self, worker: &Address) -> Option<(u64, Vec<B256>)> {
        self.inner.proof(worker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<B256> {
        (0..n).map(|i| keccak256([i])).collect()
    }

    #[test]
    fn every_proof_verifies_for_every_size() {
        for n in 1..=17u8 {
            let l = leaves(n);
            let tree = MerkleTree::new(l.clone());
            for (i, leaf) in l.iter().enumerate() {
                let proof = tree.proof(i).unwrap();
                assert!(verify(&proof, tree.root(), *leaf), "n={n} i={i}");
                assert!(!verify(&proof, tree.root(), keccak256(b"other")));
            }
            assert!(tree.proof(l.len()).is_none());
        }
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(MerkleTree::new(vec![]).root(), B256::ZERO);
        let one = keccak256(b"x");
        let t = MerkleTree::new(vec![one]);
        assert_eq!(t.root(), one);
        assert_eq!(t.proof(0).unwrap(), Vec::<B256>::new());
    }

    #[test]
    fn reward_tree_merges_sorts_and_sums() {
        let a = Address::repeat_byte(1);
        let b = Address::repeat_byte(2);
        let t1 = RewardTree::new(
            3,
            [
                (b, U256::from(5)),
                (a, U256::from(1)),
                (a, U256::from(2)),
                (b, U256::ZERO),
            ],
        )
        .unwrap();
        let t2 = RewardTree::new(3, [(a, U256::from(3)), (b, U256::from(5))]).unwrap();
        assert_eq!(t1.root(), t2.root());
        assert_eq!(t1.total(), U256::from(8));
        let (amount, proof) = t1.proof(&a).unwrap();
        assert_eq!(amount, U256::from(3));
        assert!(verify(&proof, t1.root(), reward_leaf(a, amount, 3)));
        // The epoch is bound into the leaf.
        assert!(!verify(&proof, t1.root(), reward_leaf(a, amount, 4)));
        assert!(RewardTree::new(1, [(a, U256::MAX), (b, U256::from(1))]).is_none());
    }
}
