//! PDQ against Meta's reference: `testdata/expected.txt` was produced by
//! the C++ reference core (through PyPI's `pdqhash`, see
//! `testdata/make_reference.py`) on lossless greyscale PNGs, so tapis must
//! agree bit for bit, quality included. `rgb-expected.txt` holds hashes of
//! colour images from the same binding, whose luma is computed in double
//! precision (tapis, like Meta's C++ tools, uses single precision) and, for
//! JPEGs, decoded by Pillow's libjpeg rather than the `image` crate. Either
//! could move a bit in principle; on these images neither does (distance 0,
//! and the JPEG hashes equal those published in ThreatExchange's
//! `pdq/python/README.md`), so the test holds them to exact equality and a
//! decoder change that moves a bit will show here.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;

use tapis_match::pdq::{self, ImageLimits, PdqHash};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(testdata(name)).expect("testdata file is in the repository")
}

#[test]
fn greyscale_pngs_hash_bit_exactly_like_the_reference() {
    let expected = String::from_utf8(read("expected.txt")).expect("utf-8");
    let mut checked = 0;
    for line in expected.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f[0] == "dihedral" {
            let want: Vec<PdqHash> = f[1]
                .split(',')
                .map(|h| PdqHash::parse(h).expect("hex"))
                .collect();
            let got =
                pdq::hash_image_dihedral(&read(f[2]), &ImageLimits::default()).expect("hashes");
            assert_eq!(got.all().to_vec(), want, "dihedral variants of {}", f[2]);
            continue;
        }
        let got = pdq::hash_image(&read(f[2]), &ImageLimits::default()).expect("hashes");
        assert_eq!(got.hash.to_string(), f[0], "hash of {}", f[2]);
        assert_eq!(got.quality.to_string(), f[1], "quality of {}", f[2]);
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn colour_images_and_jpegs_match_the_reference() {
    let expected = String::from_utf8(read("rgb-expected.txt")).expect("utf-8");
    let mut report = Vec::new();
    for line in expected.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let want = PdqHash::parse(f[0]).expect("hex");
        let got = pdq::hash_image(&read(f[2]), &ImageLimits::default()).expect("hashes");
        report.push((f[2], got.hash.distance(&want), got.quality));
    }
    assert_eq!(report.len(), 4);
    for (name, d, q) in &report {
        assert_eq!(*d, 0, "{name} is {d} bits from the reference");
        assert_eq!(*q, 100, "{name}");
    }
}
