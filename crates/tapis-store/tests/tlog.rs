//! The transparency log as the store keeps it, on every backend: every tree
//! head and proof built from the stored subtrees agrees with the tree
//! recomputed from the events, checkpoints verify under the log's key, and
//! only configured witnesses' cosignatures are kept.

use std::sync::Arc;

use tapis_core::tlog::note::{Checkpoint, CosignerKey, Note};
use tapis_core::tlog::{self, HashSource, NodeId};
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, party, seeded_outbox};
use tapis_store::tlog::LogOptions;
use tapis_store::{Backend, Options, Store};

const WITNESS: &str = "witness.example/w1";

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let witness = CosignerKey::from_seed(WITNESS, [3; 32]).expect("key");
    let options = Options {
        signer: Some(tapis_core::sign::Signer::from_seed([9; 32])),
        log: LogOptions {
            origin: "tapis.test/store".into(),
            witnesses: vec![witness.vkey()],
        },
        ..Default::default()
    };
    let store = Store::open_with(&db.url, Arc::new(clock_at(START)), options)
        .await
        .expect("open");
    let (_, admin) = bootstrap(&store).await;
    for i in 0..37 {
        party(&store, &admin, "platform", &format!("Platform {i}")).await;
    }
    let size = store.log_size().await.expect("size");
    assert!(size > 37, "one leaf per event: {size}");
    let truth = store.recompute_log().await.expect("recompute");
    assert!(truth.problems.is_empty(), "{:?}", truth.problems);
    assert_eq!(truth.tree.size(), size);
    let leaves = store.leaf_hashes(0, size).await.expect("leaves");
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(truth.tree.node(NodeId::leaf(i as u64)).as_ref(), Some(leaf));
    }
    for n in 1..=size {
        let root = store.log_root(n).await.expect("root");
        assert_eq!(Ok(root), tlog::root(&truth.tree, n), "root of {n}");
        for i in [0, n / 2, n - 1] {
            let proof = store.inclusion_proof(i, n).await.expect("inclusion");
            tlog::verify_inclusion(i, n, &leaves[i as usize], &proof, &root)
                .unwrap_or_else(|e| panic!("leaf {i} of {n}: {e}"));
        }
        let old = 1 + n / 3;
        let proof = store.consistency_proof(old, n).await.expect("consistency");
        let old_root = store.log_root(old).await.expect("root");
        tlog::verify_consistency(old, n, &proof, &old_root, &root)
            .unwrap_or_else(|e| panic!("{old} -> {n}: {e}"));
    }
    assert!(store.inclusion_proof(0, size + 1).await.is_err());
    assert!(store.leaf_hashes(0, 5000).await.is_err());

    // a checkpoint, signed by the log's key, and a witness's cosignature
    let note = Note::parse(&store.make_checkpoint().await.expect("checkpoint")).expect("note");
    note.verify(&store.log_vkey()).expect("signed by the log");
    let cp = Checkpoint::parse_body(&note.text).expect("body");
    assert_eq!((cp.size, cp.root), (size, truth.tree.root()));
    let cosigned = Note {
        text: note.text.clone(),
        sigs: vec![witness.cosign(&note.text, 1_800_000_000)],
    };
    assert_eq!(
        store
            .add_cosignatures(&cosigned.format())
            .await
            .expect("kept"),
        1
    );
    let published = Note::parse(&store.latest_checkpoint().await.expect("latest")).expect("note");
    assert_eq!(
        published.verify(&witness.vkey()).expect("cosigned"),
        Some(1_800_000_000)
    );
    let stranger = CosignerKey::from_seed("stranger.example/w", [4; 32]).expect("key");
    let refused = Note {
        text: note.text.clone(),
        sigs: vec![stranger.cosign(&note.text, 1)],
    };
    assert!(store.add_cosignatures(&refused.format()).await.is_err());
    let other = Checkpoint {
        root: [0; 32],
        ..cp
    };
    let wrong = Note {
        text: other.body(),
        sigs: vec![witness.cosign(&other.body(), 1)],
    };
    let e = store
        .add_cosignatures(&wrong.format())
        .await
        .expect_err("another root");
    assert!(e.to_string().contains("another root"), "{e}");
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_proofs_agree_with_the_recomputed_tree_on_every_backend() {
    for b in backends() {
        story(b).await;
    }
}

/// What a platform is sent names where the log stood: the leaf, its salt
/// and the event hash, so the platform can recompute the leaf it is shown.
async fn messages_name_their_leaf(backend: Backend) {
    let (db, store, _clock) = seeded_outbox(backend, 2).await;
    let platform = store
        .list_parties(Some(tapis_core::party::PartyKind::Platform))
        .await
        .expect("parties")
        .pop()
        .expect("a platform");
    let events = store
        .platform_events(platform.id, 0, 10)
        .await
        .expect("events");
    assert_eq!(events.len(), 2);
    let leaves = store
        .leaf_hashes(0, store.log_size().await.expect("size"))
        .await
        .expect("leaves");
    for e in events {
        let log = &e.payload["log"];
        let seq = log["seq"].as_i64().expect("seq");
        let index = log["leaf_index"].as_u64().expect("leaf index");
        assert_eq!(index as i64, seq - 1);
        let salt: [u8; 32] = hex::decode(log["salt"].as_str().expect("salt"))
            .expect("hex")
            .try_into()
            .expect("32");
        let hash: [u8; 32] = hex::decode(log["event_hash"].as_str().expect("hash"))
            .expect("hex")
            .try_into()
            .expect("32");
        assert_eq!(
            tapis_core::tlog::leaf::event_leaf_hash(seq, &salt, &hash),
            leaves[index as usize],
            "{}",
            e.payload
        );
    }
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_messages_name_their_leaf_on_every_backend() {
    for b in backends() {
        messages_name_their_leaf(b).await;
    }
}
