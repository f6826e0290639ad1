//! The RFC 6962 Merkle tree over an organization's leaves: roots, inclusion
//! proofs and their verification.

use sha2::{Digest, Sha256};

use crate::Hash;

/// SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Builds roots leaf by leaf in O(log n) memory: the stack holds the roots
/// of the perfect subtrees the leaves so far decompose into.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    /// (root, number of leaves), sizes strictly decreasing.
    stack: Vec<(Hash, u64)>,
    size: u64,
}

impl Accumulator {
    pub fn new() -> Accumulator {
        Accumulator::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut node = (leaf, 1u64);
        while let Some(&(top, top_size)) = self.stack.last() {
            if top_size != node.1 {
                break;
            }
            self.stack.pop();
            node = (node_hash(&top, &node.0), top_size * 2);
        }
        self.stack.push(node);
        self.size += 1;
    }

    /// The roots of the perfect subtrees, largest first: with the size, all
    /// that is needed to carry on later (their sizes are the binary digits
    /// of the size).
    pub fn frontier(&self) -> Vec<Hash> {
        self.stack.iter().map(|(h, _)| *h).collect()
    }

    /// Resumes from [`Accumulator::frontier`]; `None` when the number of
    /// hashes does not fit `size`.
    pub fn from_frontier(size: u64, frontier: &[Hash]) -> Option<Accumulator> {
        if frontier.len() != size.count_ones() as usize {
            return None;
        }
        let mut sizes = (0..64u32)
            .rev()
            .map(|bit| 1u64 << bit)
            .filter(|b| size & b != 0);
        let stack = frontier
            .iter()
            .map(|h| sizes.next().map(|s| (*h, s)))
            .collect::<Option<Vec<_>>>()?;
        Some(Accumulator { stack, size })
    }

    /// MTH of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some(&(mut acc, _)) = iter.next() else {
            return empty_root();
        };
        for (left, _) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// A whole tree kept in memory, level by level, for proofs over any prefix
/// of its leaves in O(log² n) each. A tree whose first leaves were pruned
/// holds their compact range instead (the roots of the prefix's perfect
/// subtrees): every root and every proof of a kept leaf still computes
/// from it, because any subtree such a proof needs that lies wholly in the
/// prefix is one of those roots.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    /// How many leaves come before `levels[0]` (pruned).
    pruned: usize,
    /// The pruned prefix's perfect subtrees: (first leaf, leaves, root).
    prefix: Vec<(usize, usize, Hash)>,
    /// `levels[h][i - offset(h)]`: the root of the perfect subtree of 2^h
    /// leaves starting at leaf i·2^h, for the subtrees wholly after the
    /// prefix (`offset(h)` = ⌈pruned / 2^h⌉).
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    pub fn new(leaves: Vec<Hash>) -> MerkleTree {
        MerkleTree::build(0, Vec::new(), leaves)
    }

    /// The tree of `pruned` leaves known only by their compact range
    /// `frontier` (largest subtree first, as [`Accumulator::frontier`]
    /// gives it), followed by `leaves`; `None` when the frontier does not
    /// fit `pruned`.
    pub fn after_prefix(pruned: u64, frontier: &[Hash], leaves: Vec<Hash>) -> Option<MerkleTree> {
        let size = usize::try_from(pruned).ok()?;
        if frontier.len() != pruned.count_ones() as usize {
            return None;
        }
        let mut prefix = Vec::with_capacity(frontier.len());
        let mut start = 0usize;
        let mut sizes = (0..usize::BITS)
            .rev()
            .map(|bit| 1usize << bit)
            .filter(|b| size & b != 0);
        for hash in frontier {
            let len = sizes.next()?;
            prefix.push((start, len, *hash));
            start += len;
        }
        Some(MerkleTree::build(size, prefix, leaves))
    }

    fn build(pruned: usize, prefix: Vec<(usize, usize, Hash)>, leaves: Vec<Hash>) -> MerkleTree {
        let mut levels = vec![leaves];
        let mut height = 0u32;
        loop {
            let below = &levels[levels.len() - 1];
            if below.len() <= 1 {
                break;
            }
            // The first subtree of this level wholly after the prefix
            // starts at an even index of the level below.
            let first_below = offset(pruned, height);
            let skip = first_below % 2;
            let above: Vec<Hash> = below[skip.min(below.len())..]
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            if above.is_empty() {
                break;
            }
            levels.push(above);
            height += 1;
        }
        MerkleTree {
            pruned,
            prefix,
            levels,
        }
    }

    /// Appends a leaf (the tree's new last one).
    pub fn push(&mut self, leaf: Hash) {
        let mut index = self.len();
        self.levels[0].push(leaf);
        let mut height = 0u32;
        // Each right child completes its parent, unless the parent reaches
        // into the pruned prefix (then it is computed when asked for).
        while index % 2 == 1 {
            let first = offset(self.pruned, height);
            let Some(sibling) = (index - 1).checked_sub(first) else {
                break;
            };
            let level = &self.levels[height as usize];
            let parent = node_hash(&level[sibling], &level[index - first]);
            if self.levels.len() == height as usize + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[height as usize + 1].push(parent);
            index /= 2;
            height += 1;
        }
    }

    /// Leaves in the tree, the pruned ones included.
    pub fn len(&self) -> usize {
        self.pruned + self.levels[0].len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many leaves were pruned (known only by their compact range).
    pub fn pruned(&self) -> usize {
        self.pruned
    }

    /// Leaf `index`; `None` past the end or in the pruned prefix.
    pub fn leaf(&self, index: usize) -> Option<Hash> {
        self.levels[0].get(index.checked_sub(self.pruned)?).copied()
    }

    /// MTH of leaves `start..start + len` (a range RFC 6962's recursion
    /// produces: `start` is a multiple of the largest power of two below
    /// `len`); `None` for a range of the pruned prefix that is not one of
    /// its subtrees.
    fn range_root(&self, start: usize, len: usize) -> Option<Hash> {
        if len == 0 {
            return Some(empty_root());
        }
        if start + len <= self.pruned {
            return self
                .prefix
                .iter()
                .find(|(s, l, _)| *s == start && *l == len)
                .map(|(_, _, h)| *h);
        }
        if len.is_power_of_two() && start.is_multiple_of(len) && start >= self.pruned {
            let height = len.trailing_zeros();
            let index = start / len;
            if let Some(h) = self
                .levels
                .get(height as usize)
                .and_then(|l| l.get(index.checked_sub(offset(self.pruned, height))?))
            {
                return Some(*h);
            }
        }
        if len == 1 {
            return self.leaf(start);
        }
        let k = split(len);
        Some(node_hash(
            &self.range_root(start, k)?,
            &self.range_root(start + k, len - k)?,
        ))
    }

    /// The root of the tree of the first `size` leaves; `None` past the
    /// end or inside the pruned prefix (unless `size` is a prefix subtree's end).
    pub fn root(&self, size: usize) -> Option<Hash> {
        if size > self.len() {
            return None;
        }
        if size == self.pruned && size > 0 {
            let mut acc = None;
            for (_, _, h) in self.prefix.iter().rev() {
                acc = Some(match acc {
                    None => *h,
                    Some(right) => node_hash(h, &right),
                });
            }
            return acc;
        }
        self.range_root(0, size)
    }

    /// PATH(index, D[size]): the inclusion proof of leaf `index` in the tree
    /// of the first `size` leaves; `None` for a pruned leaf.
    pub fn proof(&self, index: usize, size: usize) -> Option<Vec<Hash>> {
        if index >= size || size > self.len() || index < self.pruned {
            return None;
        }
        let mut proof = Vec::new();
        let (mut start, mut len, mut m) = (0usize, size, index);
        let mut stack = Vec::new();
        while len > 1 {
            let k = split(len);
            if m < k {
                stack.push(self.range_root(start + k, len - k)?);
                len = k;
            } else {
                stack.push(self.range_root(start, k)?);
                start += k;
                len -= k;
                m -= k;
            }
        }
        while let Some(h) = stack.pop() {
            proof.push(h);
        }
        Some(proof)
    }
}

/// ⌈pruned / 2^height⌉: the first subtree of that height wholly after the
/// pruned prefix.
fn offset(pruned: usize, height: u32) -> usize {
    let len = 1usize << height;
    pruned.div_ceil(len)
}

/// MTH(D[n]) straight from the definition.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// PATH(m, D[n]): the audit path for leaf `index` in the tree of `leaves`.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(leaves, index, &mut proof);
    Some(proof)
}

fn path(leaves: &[Hash], m: usize, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(&leaves[..k], m, proof);
        proof.push(root(&leaves[k..]));
    } else {
        path(&leaves[k..], m - k, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Checks an inclusion proof (RFC 9162, section 2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> bool {
    if index >= tree_size {
        return false;
    }
    let (mut fnode, mut snode) = (index, tree_size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn rfc6962_shapes() {
        let l = leaves(3);
        assert_eq!(root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert_eq!(root(&[]), empty_root());
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // The RFC 6962 leaf hash of the empty string.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn accumulator_agrees_with_the_definition() {
        let l = leaves(70);
        let mut acc = Accumulator::new();
        assert_eq!(acc.root(), root(&[]));
        for i in 0..l.len() {
            acc.push(l[i]);
            assert_eq!(acc.root(), root(&l[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn a_kept_tree_gives_the_same_roots_and_proofs() {
        for n in 0..40 {
            let l = leaves(n);
            let tree = MerkleTree::new(l.clone());
            for size in 0..=n {
                assert_eq!(tree.root(size), Some(root(&l[..size])), "n={n} size={size}");
                for i in 0..size {
                    assert_eq!(
                        tree.proof(i, size),
                        inclusion_proof(&l[..size], i),
                        "n={n} size={size} i={i}"
                    );
                }
            }
            assert_eq!(tree.root(n + 1), None);
            assert_eq!(tree.proof(n, n), None);
        }
    }

    #[test]
    fn a_tree_after_a_pruned_prefix_gives_the_same_roots_and_proofs_of_kept_leaves() {
        for n in 0..36 {
            let l = leaves(n);
            for pruned in 0..=n {
                let mut acc = Accumulator::new();
                for leaf in &l[..pruned] {
                    acc.push(*leaf);
                }
                let tree =
                    MerkleTree::after_prefix(pruned as u64, &acc.frontier(), l[pruned..].to_vec())
                        .unwrap();
                assert_eq!(tree.len(), n);
                assert_eq!(tree.pruned(), pruned);
                for size in pruned..=n {
                    assert_eq!(
                        tree.root(size),
                        Some(root(&l[..size])),
                        "n={n} pruned={pruned} size={size}"
                    );
                    for i in pruned..size {
                        assert_eq!(
                            tree.proof(i, size),
                            inclusion_proof(&l[..size], i),
                            "n={n} pruned={pruned} size={size} i={i}"
                        );
                    }
                    for i in 0..pruned.min(size) {
                        assert_eq!(tree.proof(i, size), None);
                    }
                }
                for (i, leaf) in l.iter().enumerate() {
                    assert_eq!(tree.leaf(i), (i >= pruned).then_some(*leaf));
                }
            }
        }
        assert!(MerkleTree::after_prefix(3, &leaves(1), Vec::new()).is_none());
    }

    #[test]
    fn a_tree_grown_leaf_by_leaf_is_the_tree_built_at_once() {
        let l = leaves(40);
        for pruned in [0usize, 1, 5, 8, 13] {
            let mut acc = Accumulator::new();
            for leaf in &l[..pruned] {
                acc.push(*leaf);
            }
            let mut grown =
                MerkleTree::after_prefix(pruned as u64, &acc.frontier(), Vec::new()).unwrap();
            for (n, leaf) in l.iter().enumerate().skip(pruned) {
                grown.push(*leaf);
                let size = n + 1;
                assert_eq!(
                    grown.root(size),
                    Some(root(&l[..size])),
                    "pruned={pruned} size={size}"
                );
                for i in pruned..size {
                    assert_eq!(
                        grown.proof(i, size),
                        inclusion_proof(&l[..size], i),
                        "pruned={pruned} size={size} i={i}"
                    );
                }
            }
        }
    }

    #[test]
    fn accumulators_resume_from_their_frontier() {
        let l = leaves(45);
        let mut acc = Accumulator::new();
        for (i, leaf) in l.iter().enumerate() {
            let mut resumed = Accumulator::from_frontier(acc.size(), &acc.frontier()).unwrap();
            resumed.push(*leaf);
            acc.push(*leaf);
            assert_eq!(resumed.root(), acc.root(), "size {}", i + 1);
        }
        assert!(Accumulator::from_frontier(3, &l[..1]).is_none());
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_one_does_not() {
        for n in 1..40 {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let proof = inclusion_proof(&l, i).unwrap();
                assert!(
                    verify_inclusion(&l[i], i as u64, n as u64, &proof, &r),
                    "n={n} i={i}"
                );
                let other = (i + 1) % n;
                if other != i {
                    assert!(!verify_inclusion(&l[other], i as u64, n as u64, &proof, &r));
                }
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = node_hash(first, first);
                    assert!(!verify_inclusion(&l[i], i as u64, n as u64, &bad, &r));
                }
            }
        }
        assert!(inclusion_proof(&leaves(3), 3).is_none());
    }
}
