//! The Merkle tree against the RFC 6962 reference vectors (as published by
//! transparency-dev/merkle, kept in `testdata/tlog/` with their source) and
//! a property test: proofs made for random sizes verify, and fail when any
//! byte is flipped.

use proptest::prelude::*;
use serde_json::Value;

use super::*;

fn data(name: &str) -> Value {
    let path = format!("{}/testdata/tlog/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("test vectors are in the repository");
    serde_json::from_str(&text).expect("json")
}

fn hx(v: &Value) -> Hash {
    hex::decode(v.as_str().expect("hex"))
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn b64(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("b64"))
        .expect("b64")
}

/// A hash from a vector; wrong-length values (some vectors have them on
/// purpose) are not hashes, so the case must fail.
fn h32(bytes: Vec<u8>) -> Option<Hash> {
    Hash::try_from(bytes).ok()
}

fn any_root(bytes: Vec<u8>) -> Hash {
    use sha2::Digest;
    h32(bytes.clone()).unwrap_or_else(|| sha2::Sha256::digest(&bytes).into())
}

fn proof_of(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(a) => a.iter().map(|p| h32(b64(p))).collect(),
        _ => panic!("proof"),
    }
}

fn reference_tree() -> (MemoryTree, Value) {
    let d = data("rfc6962-tree.json");
    let mut t = MemoryTree::new();
    for leaf in d["leaves_hex"].as_array().expect("leaves") {
        t.push(leaf_hash(
            &hex::decode(leaf.as_str().expect("hex")).expect("hex"),
        ));
    }
    (t, d)
}

#[test]
fn reference_tree_roots_and_nodes() {
    let (t, d) = reference_tree();
    for (size, want) in d["roots_hex_by_size"]
        .as_array()
        .expect("roots")
        .iter()
        .enumerate()
    {
        assert_eq!(root(&t, size as u64), Ok(hx(want)), "root of size {size}");
    }
    for (level, hashes) in d["node_hashes_hex_by_level"]
        .as_array()
        .expect("levels")
        .iter()
        .enumerate()
    {
        for (index, want) in hashes.as_array().expect("level").iter().enumerate() {
            let id = NodeId {
                level: level as u8,
                index: index as u64,
            };
            assert_eq!(t.node(id), Some(hx(want)), "node {id:?}");
        }
    }
    assert_eq!(root(&t, 0), Ok(empty_root()));
}

#[test]
fn inclusion_vectors() {
    let d = data("inclusion.json");
    let mut happy = 0;
    for case in d["cases"].as_array().expect("cases") {
        let name = case["file"].as_str().expect("file");
        let ok = (|| {
            let index = case["leafIdx"].as_u64()?;
            let size = case["treeSize"].as_u64()?;
            let leaf = h32(b64(&case["leafHash"]))?;
            let root = h32(b64(&case["root"]))?;
            let proof = proof_of(&case["proof"])?;
            Some(verify_inclusion(index, size, &leaf, &proof, &root).is_ok())
        })()
        .unwrap_or(false);
        let want_err = case["wantErr"].as_bool().expect("wantErr");
        assert_eq!(ok, !want_err, "{name}: {}", case["desc"]);
        if !want_err {
            happy += 1;
        }
    }
    assert!(happy >= 5, "the happy paths were read");
}

#[test]
fn consistency_vectors() {
    let d = data("consistency.json");
    for case in d["cases"].as_array().expect("cases") {
        let name = case["file"].as_str().expect("file");
        let ok = (|| {
            let s1 = case["size1"].as_u64()?;
            let s2 = case["size2"].as_u64()?;
            // some cases' roots are placeholders ("don't care") of another
            // length: only their equality matters, which a hash keeps
            let r1 = any_root(b64(&case["root1"]));
            let r2 = any_root(b64(&case["root2"]));
            let proof = proof_of(&case["proof"])?;
            Some(verify_consistency(s1, s2, &proof, &r1, &r2).is_ok())
        })()
        .unwrap_or(false);
        assert_eq!(
            ok,
            !case["wantErr"].as_bool().expect("wantErr"),
            "{name}: {}",
            case["desc"]
        );
    }
}

#[test]
fn our_proofs_match_the_reference_happy_paths() {
    // every happy-path vector over the reference tree is a proof we make
    let (t, _) = reference_tree();
    let d = data("inclusion.json");
    for case in d["cases"].as_array().expect("cases") {
        if case["wantErr"].as_bool() == Some(false)
            && case["file"].as_str().is_some_and(|f| {
                f.starts_with("inclusion/") && !f.contains("additional") && !f.contains("single")
            })
        {
            let index = case["leafIdx"].as_u64().expect("idx");
            let size = case["treeSize"].as_u64().expect("size");
            let want = proof_of(&case["proof"]).expect("proof");
            assert_eq!(
                prove_inclusion(&t, index, size),
                Ok(want),
                "{}",
                case["file"]
            );
        }
    }
    let d = data("consistency.json");
    for case in d["cases"].as_array().expect("cases") {
        if case["wantErr"].as_bool() == Some(false)
            && case["file"]
                .as_str()
                .is_some_and(|f| !f.contains("additional"))
        {
            let s1 = case["size1"].as_u64().expect("s1");
            let s2 = case["size2"].as_u64().expect("s2");
            let want = proof_of(&case["proof"]).expect("proof");
            assert_eq!(prove_consistency(&t, s1, s2), Ok(want), "{}", case["file"]);
        }
    }
}

#[test]
fn every_proof_over_the_reference_tree_verifies() {
    let (t, _) = reference_tree();
    for size in 1..=8u64 {
        let r = root(&t, size).expect("root");
        for index in 0..size {
            let p = prove_inclusion(&t, index, size).expect("proof");
            let leaf = t.node(NodeId::leaf(index)).expect("leaf");
            assert_eq!(verify_inclusion(index, size, &leaf, &p, &r), Ok(()));
        }
        for old in 1..=size {
            let p = prove_consistency(&t, old, size).expect("proof");
            let r1 = root(&t, old).expect("root");
            assert_eq!(
                verify_consistency(old, size, &p, &r1, &r),
                Ok(()),
                "{old}->{size}"
            );
        }
    }
}

#[test]
fn bad_requests_are_precise() {
    assert!(inclusion_ranges(3, 3).is_err());
    assert!(consistency_ranges(0, 3).is_err());
    assert!(consistency_ranges(4, 3).is_err());
    assert_eq!(consistency_ranges(3, 3), Ok(vec![]));
    let empty: std::collections::HashMap<NodeId, Hash> = Default::default();
    assert_eq!(
        root(&empty, 1),
        Err(ProofError::Missing { level: 0, index: 0 })
    );
}

#[test]
fn completed_nodes_are_the_ones_an_append_makes() {
    // leaf 7 completes (1,3), (2,1) and (3,0)
    let ids: Vec<NodeId> = NodeId::completed_by(7)
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
    assert_eq!(
        ids,
        vec![
            NodeId { level: 1, index: 3 },
            NodeId { level: 2, index: 1 },
            NodeId { level: 3, index: 0 }
        ]
    );
    assert!(NodeId::completed_by(6).is_empty());
}

fn tree(n: u64) -> MemoryTree {
    let mut t = MemoryTree::new();
    for i in 0..n {
        t.push(leaf_hash(&i.to_be_bytes()));
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn inclusion_proofs_verify_and_a_flipped_byte_fails(
        size in 1u64..300, index_seed: u64, flip_seed: u64, bit in 0u8..8,
    ) {
        let t = tree(size);
        let index = index_seed % size;
        let r = t.root();
        let leaf = t.node(NodeId::leaf(index)).expect("leaf");
        let mut proof = prove_inclusion(&t, index, size).expect("proof");
        prop_assert_eq!(verify_inclusion(index, size, &leaf, &proof, &r), Ok(()));
        // flip one bit of the leaf, the root or a proof hash
        let total = 2 + proof.len();
        let which = (flip_seed % total as u64) as usize;
        let byte = (flip_seed / 7 % 32) as usize;
        let (mut leaf2, mut r2) = (leaf, r);
        match which {
            0 => leaf2[byte] ^= 1 << bit,
            1 => r2[byte] ^= 1 << bit,
            n => proof[n - 2][byte] ^= 1 << bit,
        }
        prop_assert!(verify_inclusion(index, size, &leaf2, &proof, &r2).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_a_flipped_byte_fails(
        new in 2u64..300, old_seed: u64, flip_seed: u64, bit in 0u8..8,
    ) {
        let t = tree(new);
        let old = 1 + old_seed % (new - 1);
        let (r1, r2) = (root(&t, old).expect("r1"), t.root());
        let mut proof = prove_consistency(&t, old, new).expect("proof");
        prop_assert_eq!(verify_consistency(old, new, &proof, &r1, &r2), Ok(()));
        let total = 2 + proof.len();
        let which = (flip_seed % total as u64) as usize;
        let byte = (flip_seed / 7 % 32) as usize;
        let (mut a, mut b) = (r1, r2);
        match which {
            0 => a[byte] ^= 1 << bit,
            1 => b[byte] ^= 1 << bit,
            n => proof[n - 2][byte] ^= 1 << bit,
        }
        prop_assert!(verify_consistency(old, new, &proof, &a, &b).is_err());
    }
}
