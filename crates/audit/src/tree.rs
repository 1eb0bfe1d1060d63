//! The Merkle tree of RFC 6962 §2.1: tree heads, the compact range ("frontier") kept per append,
//! and inclusion and consistency proofs generated over any store of perfect-subtree hashes.
//!
//! Node addressing: the *perfect subtree* `(level, index)` covers the `2^level` leaves
//! `[index << level, (index + 1) << level)`. Level 0 is the leaf hashes. Every node of an RFC 6962
//! tree is either such a perfect subtree or lies on the tree's right edge, whose hash is
//! computed from O(log n) perfect subtrees ([`range_hash`]).

use crate::hash::{Hash, empty_root, node_hash};

/// Errors from the tree structures. They carry sizes and indices, never data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// A frontier's node count does not match its size.
    #[error("malformed frontier: size {size} needs {expected} nodes, found {found}")]
    MalformedFrontier {
        size: u64,
        expected: usize,
        found: usize,
    },
    /// A proof was asked for an index or size the tree does not have.
    #[error("{what}")]
    OutOfRange { what: String },
    /// A perfect subtree hash is not available.
    #[error("no hash for the subtree at level {level}, index {index}")]
    MissingNode { level: u32, index: u64 },
}

/// The largest power of two strictly less than `n` (`n >= 2`): the size of the left subtree in
/// RFC 6962's split of `n` leaves.
pub fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The compact range `[0, size)`: the roots of the perfect subtrees that the binary
/// decomposition of `size` gives, largest (leftmost) first. Appending a leaf costs O(log n)
/// hashes amortised O(1), and the root of the whole tree is a fold of at most 64 hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuilds a frontier from its size and nodes (as [`Frontier::nodes`] gave them).
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Frontier, TreeError> {
        let expected = size.count_ones() as usize;
        if nodes.len() != expected {
            return Err(TreeError::MalformedFrontier {
                size,
                expected,
                found: nodes.len(),
            });
        }
        Ok(Frontier { size, nodes })
    }

    /// Rebuilds a frontier from its size and the concatenated node hashes.
    pub fn from_bytes(size: u64, bytes: &[u8]) -> Result<Frontier, TreeError> {
        let expected = size.count_ones() as usize;
        if bytes.len() != expected * 32 {
            return Err(TreeError::MalformedFrontier {
                size,
                expected,
                found: bytes.len() / 32,
            });
        }
        let nodes = bytes
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(Frontier { size, nodes })
    }

    /// The node hashes concatenated, for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.nodes.concat()
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends a leaf hash. `completed(level, index, hash)` is called for every perfect subtree
    /// of level >= 1 that this leaf completes (lowest first), so a caller can cache them.
    pub fn push(&mut self, leaf_hash: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let old = self.size;
        let new_size = old + 1;
        let mut hash = leaf_hash;
        let mut level = 0u32;
        // Each trailing one bit of the old size is a perfect subtree of that level to the left
        // of the new leaf, now completed into one of the next level.
        while (old >> level) & 1 == 1 {
            let Some(left) = self.nodes.pop() else {
                // Unreachable: `from_parts` and `push` keep one node per set bit of `size`.
                break;
            };
            hash = node_hash(&left, &hash);
            level += 1;
            completed(level, (new_size >> level) - 1, &hash);
        }
        self.nodes.push(hash);
        self.size = new_size;
    }

    /// The RFC 6962 tree head MTH(D[size]).
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// A source of perfect-subtree hashes: the log's store, or an in-memory tree.
pub trait Subtrees {
    /// The error a lookup can fail with.
    type Error: From<TreeError>;

    /// The hash of the perfect subtree with `2^level` leaves starting at leaf `index << level`.
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// The hash of the RFC 6962 subtree over leaves `[start, end)`. The range must be a node of
/// some RFC 6962 tree (a perfect subtree, or `[start, n)` where `start` is a multiple of a
/// power of two at least `n - start`), which every range this module asks for is.
pub fn range_hash<S: Subtrees>(src: &S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let n = end.saturating_sub(start);
    if n == 0 {
        return Err(TreeError::OutOfRange {
            what: format!("empty range [{start}, {end})"),
        }
        .into());
    }
    // The left part of an RFC node is always a perfect subtree; walk the right edge and fold
    // the collected left parts back from the right.
    let mut lefts = Vec::new();
    let mut a = start;
    loop {
        let n = end - a;
        if n.is_power_of_two() && a.is_multiple_of(n) {
            let level = n.trailing_zeros();
            let mut acc = src.perfect(level, a >> level)?;
            for left in lefts.iter().rev() {
                acc = node_hash(left, &acc);
            }
            return Ok(acc);
        }
        let k = split_point(n);
        if !a.is_multiple_of(k) {
            return Err(TreeError::OutOfRange {
                what: format!("[{start}, {end}) is not a node of an RFC 6962 tree"),
            }
            .into());
        }
        let level = k.trailing_zeros();
        lefts.push(src.perfect(level, a >> level)?);
        a += k;
    }
}

/// The tree head of the first `size` leaves.
pub fn root_at<S: Subtrees>(src: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(src, 0, size)
}

/// The audit path PATH(index, D[size]) of RFC 6962 §2.1.1: the sibling hashes from the leaf up
/// to the root.
pub fn inclusion_proof<S: Subtrees>(src: &S, index: u64, size: u64) -> Result<Vec<Hash>, S::Error> {
    if index >= size {
        return Err(TreeError::OutOfRange {
            what: format!("leaf index {index} is not in a tree of size {size}"),
        }
        .into());
    }
    let mut siblings = Vec::new();
    let (mut a, mut b) = (0u64, size);
    while b - a > 1 {
        let k = split_point(b - a);
        if index < a + k {
            siblings.push(range_hash(src, a + k, b)?);
            b = a + k;
        } else {
            siblings.push(range_hash(src, a, a + k)?);
            a += k;
        }
    }
    siblings.reverse();
    Ok(siblings)
}

/// The consistency proof PROOF(old, D[new]) of RFC 6962 §2.1.2. Empty when `old` is 0 or
/// equals `new`.
pub fn consistency_proof<S: Subtrees>(src: &S, old: u64, new: u64) -> Result<Vec<Hash>, S::Error> {
    if old > new {
        return Err(TreeError::OutOfRange {
            what: format!("old size {old} is larger than new size {new}"),
        }
        .into());
    }
    let mut out = Vec::new();
    if old == 0 || old == new {
        return Ok(out);
    }
    // SUBPROOF(m, D[a:b], flag), unrolled: each step records one hash; the recursion's
    // results come out in reverse order.
    let (mut a, b0) = (0u64, new);
    let mut b = b0;
    let mut m = old;
    let mut whole = true;
    loop {
        let n = b - a;
        if m == n {
            if !whole {
                out.push(range_hash(src, a, b)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            out.push(range_hash(src, a + k, b)?);
            b = a + k;
        } else {
            out.push(range_hash(src, a, a + k)?);
            a += k;
            m -= k;
            whole = false;
        }
    }
    out.reverse();
    Ok(out)
}

/// MTH(D[n]) by the RFC's recursive definition over leaf hashes, for reference and tests.
pub fn reference_root(leaf_hashes: &[Hash]) -> Hash {
    match leaf_hashes.len() {
        0 => empty_root(),
        1 => leaf_hashes[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(
                &reference_root(&leaf_hashes[..k]),
                &reference_root(&leaf_hashes[k..]),
            )
        }
    }
}

/// A whole tree in memory: every complete perfect subtree at every level. Used by the offline
/// verifier (to build consistency proofs from an export) and by tests.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// A tree over these leaf hashes.
    pub fn from_leaf_hashes(hashes: impl IntoIterator<Item = Hash>) -> MemoryTree {
        let mut t = MemoryTree::new();
        for h in hashes {
            t.push(h);
        }
        t
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf_hash: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf_hash);
        let mut level = 0;
        // Complete parents while the level just grown has an even number of nodes.
        while self.levels[level].len().is_multiple_of(2) {
            let row = &self.levels[level];
            let parent = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The leaf hashes.
    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map_or(&[], |l| l.as_slice())
    }

    /// The tree head of the whole tree.
    pub fn root(&self) -> Hash {
        root_at(self, self.size()).unwrap_or_else(|_| empty_root())
    }
}

impl Subtrees for MemoryTree {
    type Error = TreeError;

    fn perfect(&self, level: u32, index: u64) -> Result<Hash, TreeError> {
        self.levels
            .get(level as usize)
            .and_then(|row| row.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(TreeError::MissingNode { level, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn frontier_root_matches_reference_for_every_size() {
        let hashes = leaves(70);
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        for (i, h) in hashes.iter().enumerate() {
            f.push(*h, |_, _, _| {});
            assert_eq!(f.root(), reference_root(&hashes[..=i]), "size {}", i + 1);
            assert_eq!(f.nodes().len(), (i + 1).count_ones() as usize);
        }
        let again = Frontier::from_bytes(f.size(), &f.to_bytes()).unwrap();
        assert_eq!(again, f);
        assert!(Frontier::from_bytes(3, &[0u8; 32]).is_err());
        assert!(Frontier::from_parts(4, vec![[0u8; 32]; 2]).is_err());
    }

    #[test]
    fn frontier_reports_completed_subtrees_with_their_addresses() {
        let hashes = leaves(37);
        let mem = MemoryTree::from_leaf_hashes(hashes.iter().copied());
        let mut f = Frontier::new();
        let mut seen = Vec::new();
        for h in &hashes {
            f.push(*h, |level, index, hash| seen.push((level, index, *hash)));
        }
        // one interior perfect node per leaf beyond the first, minus the right edge
        assert_eq!(seen.len(), 37 - 37usize.count_ones() as usize);
        for (level, index, hash) in seen {
            assert_eq!(
                mem.perfect(level, index).unwrap(),
                hash,
                "({level},{index})"
            );
        }
    }

    #[test]
    fn memory_tree_root_and_range_hashes_match_reference() {
        let hashes = leaves(33);
        for n in 0..=33 {
            let t = MemoryTree::from_leaf_hashes(hashes[..n].iter().copied());
            assert_eq!(t.root(), reference_root(&hashes[..n]), "n={n}");
            for m in 0..=n as u64 {
                assert_eq!(
                    root_at(&t, m).unwrap(),
                    reference_root(&hashes[..m as usize])
                );
            }
        }
    }

    #[test]
    fn proofs_reject_out_of_range() {
        let t = MemoryTree::from_leaf_hashes(leaves(5));
        assert!(inclusion_proof(&t, 5, 5).is_err());
        assert!(inclusion_proof(&t, 0, 0).is_err());
        assert!(inclusion_proof(&t, 0, 6).is_err());
        assert!(consistency_proof(&t, 4, 3).is_err());
        assert!(consistency_proof(&t, 0, 5).unwrap().is_empty());
        assert!(consistency_proof(&t, 5, 5).unwrap().is_empty());
    }
}
