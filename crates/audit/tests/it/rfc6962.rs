//! Known-answer tests: the RFC 6962 vectors of Certificate Transparency implementations
//! (tests/data/rfc6962.json, written and cross-checked by tests/data/gen_rfc6962.py), with
//! their negative cases.

use phiguard_audit::hash::{Hash, leaf_hash};
use phiguard_audit::tree::{
    Frontier, MemoryTree, consistency_proof, inclusion_proof, reference_root,
};
use phiguard_audit::verify::{verify_consistency, verify_inclusion};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    leaves: Vec<String>,
    roots: Vec<String>,
    inclusion: Vec<Inclusion>,
    consistency: Vec<Consistency>,
}

#[derive(Deserialize)]
struct Inclusion {
    desc: String,
    index: u64,
    size: u64,
    leaf_hash: String,
    root: String,
    proof: Vec<String>,
    valid: bool,
}

#[derive(Deserialize)]
struct Consistency {
    desc: String,
    old_size: u64,
    new_size: u64,
    old_root: String,
    new_root: String,
    proof: Vec<String>,
    valid: bool,
}

fn vectors() -> Vectors {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc6962.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn hs(v: &[String]) -> Vec<Hash> {
    v.iter().map(|s| h(s)).collect()
}

fn leaf_hashes(v: &Vectors) -> Vec<Hash> {
    v.leaves
        .iter()
        .map(|l| leaf_hash(&hex::decode(l).unwrap()))
        .collect()
}

#[test]
fn roots_of_sizes_1_to_8_match_the_vectors() {
    let v = vectors();
    let hashes = leaf_hashes(&v);
    assert_eq!(
        v.roots[7],
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    );
    let mut frontier = Frontier::new();
    for n in 1..=8 {
        frontier.push(hashes[n - 1], |_, _, _| {});
        let want = h(&v.roots[n - 1]);
        assert_eq!(reference_root(&hashes[..n]), want, "reference, size {n}");
        assert_eq!(frontier.root(), want, "frontier, size {n}");
        let mem = MemoryTree::from_leaf_hashes(hashes[..n].iter().copied());
        assert_eq!(mem.root(), want, "memory tree, size {n}");
    }
}

#[test]
fn inclusion_vectors_generate_and_verify_and_negatives_fail() {
    let v = vectors();
    let tree = MemoryTree::from_leaf_hashes(leaf_hashes(&v));
    let (mut good, mut bad) = (0, 0);
    for c in &v.inclusion {
        let proof = hs(&c.proof);
        let result = verify_inclusion(c.index, c.size, &h(&c.leaf_hash), &proof, &h(&c.root));
        if c.valid {
            good += 1;
            assert_eq!(result, Ok(()), "{} ({}, {})", c.desc, c.index, c.size);
            let sub =
                MemoryTree::from_leaf_hashes(tree.leaves()[..c.size as usize].iter().copied());
            assert_eq!(
                inclusion_proof(&sub, c.index, c.size).unwrap(),
                proof,
                "generated PATH({}, {})",
                c.index,
                c.size
            );
        } else {
            bad += 1;
            assert!(
                result.is_err(),
                "negative vector verified: {} ({}, {})",
                c.desc,
                c.index,
                c.size
            );
        }
    }
    assert_eq!(good, 5);
    assert!(bad >= 60, "{bad}");
}

#[test]
fn consistency_vectors_generate_and_verify_and_negatives_fail() {
    let v = vectors();
    let hashes = leaf_hashes(&v);
    let (mut good, mut bad) = (0, 0);
    for c in &v.consistency {
        let proof = hs(&c.proof);
        let result = verify_consistency(
            c.old_size,
            c.new_size,
            &h(&c.old_root),
            &h(&c.new_root),
            &proof,
        );
        if c.valid {
            good += 1;
            assert_eq!(
                result,
                Ok(()),
                "{} ({}, {})",
                c.desc,
                c.old_size,
                c.new_size
            );
            let sub = MemoryTree::from_leaf_hashes(hashes[..c.new_size as usize].iter().copied());
            assert_eq!(
                consistency_proof(&sub, c.old_size, c.new_size).unwrap(),
                proof,
                "generated PROOF({}, {})",
                c.old_size,
                c.new_size
            );
        } else {
            bad += 1;
            assert!(
                result.is_err(),
                "negative vector verified: {} ({}, {})",
                c.desc,
                c.old_size,
                c.new_size
            );
        }
    }
    assert_eq!(good, 5);
    assert!(bad >= 60, "{bad}");
}

#[test]
fn every_proof_over_the_eight_leaves_verifies() {
    let v = vectors();
    let hashes = leaf_hashes(&v);
    for n in 1..=8u64 {
        let t = MemoryTree::from_leaf_hashes(hashes[..n as usize].iter().copied());
        let root = h(&v.roots[n as usize - 1]);
        for i in 0..n {
            let p = inclusion_proof(&t, i, n).unwrap();
            verify_inclusion(i, n, &hashes[i as usize], &p, &root).unwrap();
        }
        for m in 1..=n {
            let p = consistency_proof(&t, m, n).unwrap();
            verify_consistency(m, n, &h(&v.roots[m as usize - 1]), &root, &p).unwrap();
        }
    }
}

#[test]
fn a_proof_element_of_the_wrong_length_is_rejected_when_decoding() {
    // Proof elements are fixed-size hashes in this API: a short or long element (Go's
    // "trailing garbage" vectors) cannot reach the verifier at all.
    let short: Result<Hash, _> = hex::decode("").unwrap().try_into();
    assert!(short.is_err());
    let long: Result<Hash, _> = vec![0u8; 33].try_into();
    assert!(long.is_err());
}
