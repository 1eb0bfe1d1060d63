//! Proof verification as RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) describe it,
//! written from the RFC's steps and sharing nothing with the proof generator in
//! [`crate::tree`] but the two hash functions, so that a bug in one is caught by the other.

use crate::hash::{Hash, node_hash};

/// Why a proof did not verify. Sizes and indices only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizesReversed { old: u64, new: u64 },
    #[error("the proof has more hashes than a tree of this size needs")]
    TooLong,
    #[error("the proof has fewer hashes than a tree of this size needs")]
    TooShort,
    #[error("the proof must be empty for these tree sizes")]
    NotEmpty,
    #[error("the proof is empty")]
    Empty,
    #[error("the computed root does not match the expected root")]
    RootMismatch,
}

/// Recomputes the root from an inclusion proof (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf_hash;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::TooLong);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::TooShort);
    }
    Ok(r)
}

/// Verifies that `leaf_hash` is the leaf at `index` of the tree of `size` leaves whose root is
/// `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(index, size, leaf_hash, proof)?;
    if &computed != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2). An empty tree is a prefix of
/// every tree; equal sizes need equal roots and an empty proof.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesReversed {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::NotEmpty);
        }
        if old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    if old_size == 0 {
        if !proof.is_empty() {
            return Err(ProofError::NotEmpty);
        }
        return Ok(());
    }
    // 1. An empty path fails.
    if proof.is_empty() {
        return Err(ProofError::Empty);
    }
    // 2. When the old size is a power of two, its root is the first node of the path.
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(old_root);
    }
    path.extend(proof.iter());
    // 3.-4.
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    // 5.
    let mut fr = *path[0];
    let mut sr = *path[0];
    // 6.
    for c in &path[1..] {
        if s_n == 0 {
            return Err(ProofError::TooLong);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    // 7.
    if s_n != 0 {
        return Err(ProofError::TooShort);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::tree::{MemoryTree, consistency_proof, inclusion_proof, reference_root};

    #[test]
    fn generated_proofs_verify_for_all_small_trees() {
        let hashes: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for n in 1..=hashes.len() {
            let t = MemoryTree::from_leaf_hashes(hashes[..n].iter().copied());
            let root = reference_root(&hashes[..n]);
            for (i, leaf) in hashes[..n].iter().enumerate() {
                let p = inclusion_proof(&t, i as u64, n as u64).unwrap();
                verify_inclusion(i as u64, n as u64, leaf, &p, &root).unwrap();
            }
            for m in 0..=n {
                let p = consistency_proof(&t, m as u64, n as u64).unwrap();
                let old = reference_root(&hashes[..m]);
                verify_consistency(m as u64, n as u64, &old, &root, &p).unwrap();
            }
        }
    }

    #[test]
    fn trivial_cases() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        assert_eq!(verify_inclusion(0, 1, &a, &[], &a), Ok(()));
        assert_eq!(
            verify_inclusion(0, 1, &a, &[], &b),
            Err(ProofError::RootMismatch)
        );
        assert_eq!(
            verify_inclusion(1, 1, &a, &[], &a),
            Err(ProofError::IndexOutOfRange { index: 1, size: 1 })
        );
        assert_eq!(verify_consistency(0, 5, &a, &b, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 5, &a, &b, &[a]),
            Err(ProofError::NotEmpty)
        );
        assert_eq!(verify_consistency(3, 3, &a, &a, &[]), Ok(()));
        assert_eq!(
            verify_consistency(3, 3, &a, &b, &[]),
            Err(ProofError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(3, 2, &a, &b, &[]),
            Err(ProofError::SizesReversed { old: 3, new: 2 })
        );
        assert_eq!(
            verify_consistency(1, 2, &a, &b, &[]),
            Err(ProofError::Empty)
        );
    }
}
