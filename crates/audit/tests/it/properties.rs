//! Property tests: every generated inclusion and consistency proof verifies, for random tree
//! sizes, and fails after any single bit flip in the proof, the leaf hash or a root.

use phiguard_audit::canonical::to_canonical_string;
use phiguard_audit::hash::{Hash, leaf_hash};
use phiguard_audit::tree::{
    Frontier, MemoryTree, consistency_proof, inclusion_proof, reference_root,
};
use phiguard_audit::verify::{verify_consistency, verify_inclusion};
use phiguard_audit::{AuditLog, Options};
use proptest::prelude::*;
use serde_json::{Value, json};

fn hashes(seed: u64, n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&[seed.to_le_bytes(), i.to_le_bytes()].concat()))
        .collect()
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut out = *h;
    out[(bit / 8) % 32] ^= 1 << (bit % 8);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn inclusion_proofs_verify_and_any_bit_flip_fails(
        seed in any::<u64>(),
        size in 1u64..600,
        index_seed in any::<u64>(),
        which in any::<usize>(),
        bit in 0usize..256,
    ) {
        let leaves = hashes(seed, size);
        let tree = MemoryTree::from_leaf_hashes(leaves.iter().copied());
        let index = index_seed % size;
        let root = reference_root(&leaves);
        let proof = inclusion_proof(&tree, index, size).unwrap();
        let leaf = leaves[index as usize];
        prop_assert_eq!(verify_inclusion(index, size, &leaf, &proof, &root), Ok(()));

        if !proof.is_empty() {
            let mut bad = proof.clone();
            let k = which % bad.len();
            bad[k] = flip(&bad[k], bit);
            prop_assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
            // dropping or adding an element fails too
            prop_assert!(verify_inclusion(index, size, &leaf, &proof[1..], &root).is_err());
        }
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(index, size, &leaf, &longer, &root).is_err());
        prop_assert!(verify_inclusion(index, size, &flip(&leaf, bit), &proof, &root).is_err());
        prop_assert!(verify_inclusion(index, size, &leaf, &proof, &flip(&root, bit)).is_err());
        if size > 1 {
            let other = (index + 1 + which as u64 % (size - 1)) % size;
            prop_assert!(verify_inclusion(other, size, &leaf, &proof, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_any_bit_flip_fails(
        seed in any::<u64>(),
        new_size in 1u64..600,
        old_seed in any::<u64>(),
        which in any::<usize>(),
        bit in 0usize..256,
    ) {
        let leaves = hashes(seed, new_size);
        let tree = MemoryTree::from_leaf_hashes(leaves.iter().copied());
        let old_size = 1 + old_seed % new_size;
        let old_root = reference_root(&leaves[..old_size as usize]);
        let new_root = reference_root(&leaves);
        let proof = consistency_proof(&tree, old_size, new_size).unwrap();
        prop_assert_eq!(
            verify_consistency(old_size, new_size, &old_root, &new_root, &proof),
            Ok(())
        );
        prop_assert!(
            verify_consistency(old_size, new_size, &flip(&old_root, bit), &new_root, &proof)
                .is_err()
        );
        prop_assert!(
            verify_consistency(old_size, new_size, &old_root, &flip(&new_root, bit), &proof)
                .is_err()
        );
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let k = which % bad.len();
            bad[k] = flip(&bad[k], bit);
            prop_assert!(
                verify_consistency(old_size, new_size, &old_root, &new_root, &bad).is_err()
            );
            prop_assert!(
                verify_consistency(old_size, new_size, &old_root, &new_root, &proof[..proof.len() - 1])
                    .is_err()
            );
        }
    }

    #[test]
    fn frontier_root_is_the_rfc_root(seed in any::<u64>(), size in 0u64..1000) {
        let leaves = hashes(seed, size);
        let mut f = Frontier::new();
        for h in &leaves {
            f.push(*h, |_, _, _| {});
        }
        prop_assert_eq!(f.root(), reference_root(&leaves));
        prop_assert_eq!(Frontier::from_bytes(size, &f.to_bytes()).unwrap(), f);
    }

    #[test]
    fn canonical_json_ignores_key_order_and_is_stable(
        pairs in proptest::collection::vec(("[a-zA-Z_é]{1,6}", any::<i64>(), "[ -~\\n\\t\"\\\\é]{0,12}"), 0..12)
    ) {
        let mut forward = serde_json::Map::new();
        let mut backward = serde_json::Map::new();
        for (k, n, s) in &pairs {
            forward.insert(k.clone(), json!({"n": n, "s": s, "list": [n, s]}));
        }
        for (k, n, s) in pairs.iter().rev() {
            backward.entry(k.clone()).or_insert_with(|| json!({"list": [n, s], "s": s, "n": n}));
        }
        // keep the same value per key in both maps (the first occurrence wins in `backward`)
        for (k, v) in forward.iter_mut() {
            if let Some(b) = backward.get(k) {
                *v = b.clone();
            }
        }
        let a = to_canonical_string(&Value::Object(forward));
        let b = to_canonical_string(&Value::Object(backward));
        prop_assert_eq!(&a, &b);
        let reparsed: Value = serde_json::from_str(&a).unwrap();
        prop_assert_eq!(to_canonical_string(&reparsed), a);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn store_proofs_equal_memory_proofs_for_random_batches(
        batches in proptest::collection::vec(1usize..70, 1..6),
        probe in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open_with(
            &dir.path().join("a.db"),
            Options { durability: phiguard_audit::Durability::Normal, ..Options::default() },
        ).unwrap();
        let mut leaves = Vec::new();
        for (b, n) in batches.iter().enumerate() {
            let records: Vec<Value> = (0..*n).map(|i| json!({"b": b, "i": i})).collect();
            leaves.extend(log.append_batch(&records).unwrap().into_iter().map(|r| r.leaf_hash));
        }
        let size = leaves.len() as u64;
        let mem = MemoryTree::from_leaf_hashes(leaves.iter().copied());
        prop_assert_eq!(log.tree_head().unwrap().root, mem.root());
        let index = probe % size;
        let sub = 1 + (probe / 7) % size;
        prop_assert_eq!(log.inclusion_proof(index, size).unwrap(), inclusion_proof(&mem, index, size).unwrap());
        prop_assert_eq!(log.consistency_proof(sub, size).unwrap(), consistency_proof(&mem, sub, size).unwrap());
        prop_assert_eq!(log.root_at(sub).unwrap(), reference_root(&leaves[..sub as usize]));
    }
}
