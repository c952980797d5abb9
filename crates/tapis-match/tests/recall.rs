//! The PDQ index is exact and complete: on 100 000 synthetic hashes (half
//! uniform, half in tight clusters, as real PDQ data clusters) with
//! near-duplicates planted at known distances, every planted hash within
//! the threshold is found, nothing beyond it is returned, and every answer
//! equals brute force, through both the probing and the scanning paths, and
//! after tombstones.

#![allow(clippy::unwrap_used)] // tests may unwrap

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapis_match::PdqHash;
use tapis_match::index::{PdqHit, PdqIndex};

mod common;
use common::{flip, random};

struct Planted {
    query: PdqHash,
    /// (id, distance from query)
    near: Vec<(u32, u32)>,
}

fn build(rng: &mut StdRng) -> (PdqIndex, Vec<PdqHash>, Vec<Planted>) {
    let mut hashes = Vec::new();
    for _ in 0..50_000 {
        hashes.push(random(rng));
    }
    // 500 clusters of 100 members within 40 bits of their centre
    let mut centres = Vec::new();
    for _ in 0..500 {
        let c = random(rng);
        centres.push(c);
        for _ in 0..100 {
            let k = rng.random_range(0..=40);
            hashes.push(flip(rng, c, k));
        }
    }
    let mut idx = PdqIndex::from_hashes(hashes);
    let mut planted = Vec::new();
    for i in 0..200 {
        // half the queries near a cluster centre, half anywhere
        let query = if i % 2 == 0 {
            let k = rng.random_range(0..=8);
            flip(rng, centres[i % centres.len()], k)
        } else {
            random(rng)
        };
        let mut near = Vec::new();
        for k in [0, 1, 2, 8, 15, 16, 17, 24, 30, 31, 32, 33, 40] {
            let id = idx.add(flip(rng, query, k));
            near.push((id, k));
        }
        planted.push(Planted { query, near });
    }
    (idx, centres, planted)
}

fn sorted(mut v: Vec<PdqHit>) -> Vec<PdqHit> {
    v.sort();
    v
}

#[test]
fn every_planted_near_duplicate_is_found_and_nothing_beyond_the_threshold() {
    let mut rng = StdRng::seed_from_u64(15);
    let (mut idx, centres, planted) = build(&mut rng);
    assert_eq!(idx.len(), 100_000 + 200 * 13);
    let t = 31;
    let queries: Vec<PdqHash> = planted.iter().map(|p| p.query).collect();
    let batch = idx.search_batch(&queries, t).expect("threshold is valid");
    for (p, batched) in planted.iter().zip(&batch) {
        let got = idx.search(&p.query, t).expect("threshold is valid");
        for &(id, k) in &p.near {
            let found = got.iter().find(|h| h.id == id);
            if k <= t {
                assert_eq!(found.map(|h| h.distance), Some(k), "planted at {k} bits");
            } else {
                assert!(found.is_none(), "planted at {k} bits returned at t={t}");
            }
        }
        assert!(got.iter().all(|h| h.distance <= t));
        let brute = idx.brute_force(&p.query, t);
        assert_eq!(
            sorted(got.clone()),
            sorted(brute),
            "index differs from brute force"
        );
        assert_eq!(&got, batched, "batch differs from single query");
    }

    // other thresholds, including ones probed at radius 0 and 2 and one
    // answered by a scan
    for t in [0, 8, 15, 16, 40, 47, 48, 60] {
        for q in queries.iter().take(40).chain(centres.iter().take(20)) {
            let got = idx.search(q, t).expect("threshold is valid");
            assert_eq!(sorted(got), sorted(idx.brute_force(q, t)), "t={t}");
        }
    }

    // tombstones: removed entries are never returned, the rest still are
    for p in &planted {
        for &(id, k) in &p.near {
            if k % 2 == 0 {
                assert!(idx.remove(id));
            }
        }
    }
    assert!(
        !idx.remove(planted[0].near[0].0),
        "removing twice reports false"
    );
    for p in &planted {
        let got = idx.search(&p.query, t).expect("threshold is valid");
        for &(id, k) in &p.near {
            let found = got.iter().any(|h| h.id == id);
            assert_eq!(found, k <= t && k % 2 == 1, "id {id} at {k} bits");
        }
        assert_eq!(sorted(got), sorted(idx.brute_force(&p.query, t)));
    }
}
