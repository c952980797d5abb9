//! Synthetic PDQ hashes, shared by the recall test and the benchmark.

use rand::Rng;
use rand::rngs::StdRng;
use tapis_match::PdqHash;

/// A uniformly random hash.
pub fn random(rng: &mut StdRng) -> PdqHash {
    PdqHash([rng.random(), rng.random(), rng.random(), rng.random()])
}

/// `h` with exactly `k` distinct bits flipped.
pub fn flip(rng: &mut StdRng, h: PdqHash, k: u32) -> PdqHash {
    let mut out = h;
    while out.distance(&h) < k {
        out = out.flip(rng.random_range(0..256));
    }
    out
}
