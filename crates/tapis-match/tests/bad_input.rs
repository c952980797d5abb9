//! Bad input gives a precise error, never a panic: corrupt and truncated
//! images, decompression bombs, malformed hashes and arbitrary strings.

#![allow(clippy::unwrap_used)] // tests may unwrap

use proptest::prelude::*;
use tapis_match::pdq::{self, ImageLimits};
use tapis_match::{Error, Signal, SignalKind, UrlNormaliser};

fn testdata(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    std::fs::read(p).expect("testdata file is in the repository")
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid PNG header claiming `w`×`h` RGB pixels, with one empty IDAT.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        v.extend_from_slice(&u32::try_from(data.len()).expect("small").to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        v.extend_from_slice(&c);
        v.extend_from_slice(&crc32(&c).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    v
}

/// A BMP header claiming `w`×`h` 24-bit pixels and carrying none.
fn bmp_header(w: i32, h: i32) -> Vec<u8> {
    let mut v = b"BM".to_vec();
    v.extend_from_slice(&54u32.to_le_bytes()); // file size (a lie)
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&54u32.to_le_bytes());
    v.extend_from_slice(&40u32.to_le_bytes());
    v.extend_from_slice(&w.to_le_bytes());
    v.extend_from_slice(&h.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&24u16.to_le_bytes());
    v.extend_from_slice(&[0; 24]);
    v
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    let limits = ImageLimits::default();
    for bytes in [png_header(50_000, 50_000), bmp_header(50_000, 50_000)] {
        assert_eq!(
            pdq::hash_image(&bytes, &limits),
            Err(Error::ImageTooLarge {
                width: 50_000,
                height: 50_000,
                max: limits.max_side
            })
        );
    }
    // under the side limit but over the pixel budget
    let e = pdq::hash_image(&png_header(19_000, 19_000), &limits).unwrap_err();
    assert!(
        matches!(e, Error::ImageTooLarge { width: 19_000, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("scale it down"), "{e}");
}

#[test]
fn corrupt_truncated_and_unknown_images_are_errors() {
    let limits = ImageLimits::default();
    assert_eq!(
        pdq::hash_image(b"not an image at all", &limits),
        Err(Error::ImageFormat)
    );
    assert_eq!(pdq::hash_image(b"", &limits), Err(Error::ImageFormat));
    for name in ["grey-4-640x480.png", "bridge-square-256x256.jpg"] {
        let full = testdata(name);
        let cut = &full[..full.len() / 2];
        let e = pdq::hash_image(cut, &limits).unwrap_err();
        assert!(matches!(e, Error::ImageDecode(_)), "{name}: {e:?}");
        assert!(
            e.to_string().starts_with("image could not be decoded"),
            "{e}"
        );
        let mut corrupt = full.clone();
        for b in corrupt.iter_mut().skip(40).step_by(7) {
            *b ^= 0x5a;
        }
        // a corrupted body may decode to garbage pixels or fail, never panic
        let _ = pdq::hash_image(&corrupt, &limits);
    }
    // the header is fine, the pixels are missing
    assert!(matches!(
        pdq::hash_image(&png_header(64, 64), &limits),
        Err(Error::ImageDecode(_))
    ));
    let tiny = testdata("grey-5-9x7.png");
    let limits_small = ImageLimits {
        max_side: 8,
        max_pixels: 1000,
    };
    assert!(matches!(
        pdq::hash_image(&tiny, &limits_small),
        Err(Error::ImageTooLarge {
            width: 9,
            height: 7,
            max: 8
        })
    ));
}

#[test]
fn malformed_hashes_name_the_problem() {
    let e = Signal::parse(SignalKind::Pdq, "f8f8").unwrap_err();
    assert_eq!(e.to_string(), "pdq must be 64 hex digits, got 4 characters");
    let e = Signal::parse(SignalKind::Sha256, &format!("{}z", "0".repeat(63))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "sha256 has a non-hex character 'z' at position 63: use 0-9 and a-f"
    );
}

fn url_strategy() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["http", "HTTP", "https", "HtTpS"]),
        "[a-zA-Z0-9-]{1,8}(\\.[a-zA-Zä]{2,5}){1,2}\\.?",
        prop::option::of(prop::sample::select(vec![":80", ":443", ":8080", ":1"])),
        "(/([a-zA-Z0-9_~-]|\\.|%2[eE]|%7[eE]|%41|%2[fF]|ä| ){0,6}){0,4}",
        prop::option::of("[a-zA-Z_]{1,6}=([a-z0-9]|%2[0-9a-f]|%41){0,4}(&{1,2}(utm_[a-z]{1,3}|fbclid|[a-z]{1,3})=[a-z0-9%]{0,3}){0,3}"),
        prop::option::of("#[a-z]{0,5}"),
    )
        .prop_map(|(s, h, port, path, q, frag)| {
            format!(
                "{s}://{h}{}{path}{}{}",
                port.unwrap_or(""),
                q.map(|q| format!("?{q}")).unwrap_or_default(),
                frag.unwrap_or_default()
            )
        })
}

proptest! {
    #[test]
    fn url_normalisation_is_idempotent(raw in url_strategy()) {
        let n = UrlNormaliser::default();
        if let Ok(once) = n.normalise(&raw) {
            let twice = n.normalise(once.as_str());
            prop_assert_eq!(twice.as_ref(), Ok(&once), "{} -> {}", raw, once);
            prop_assert!(!once.as_str().contains('#'));
            prop_assert!(!once.as_str().contains("utm_"));
        }
    }

    #[test]
    fn any_string_parses_or_errs_without_panicking(kind in 0usize..5, s in ".{0,80}") {
        let kind = [SignalKind::Url, SignalKind::Domain, SignalKind::Sha256, SignalKind::Md5, SignalKind::Pdq][kind];
        if let Ok(sig) = Signal::parse(kind, &s) {
            // what parses prints back to something that parses to the same
            prop_assert_eq!(Signal::parse(kind, &sig.to_string()), Ok(sig));
        }
    }

    #[test]
    fn any_bytes_decode_or_err_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..512), magic in 0usize..4) {
        let mut b = [&b"\x89PNG\r\n\x1a\n"[..], b"\xff\xd8\xff", b"GIF89a", b"BM"][magic].to_vec();
        b.extend(bytes);
        let _ = pdq::hash_image(&b, &ImageLimits::default());
    }
}
