//! Content matching for the filtering management service: typed content
//! signals (`url`, `domain`, `sha256`, `md5`, `pdq`) parsed and normalised
//! at the edge, Meta's PDQ perceptual image hash computed bit-exactly as the
//! reference implementation does, and exact matching indexes that take
//! additions and tombstones without a rebuild.
//!
//! The crate does no I/O of its own: it hashes bytes it is given and
//! answers queries against banks held in memory. Loading banks from the
//! database or from files is the caller's job (`tapis match` in the binary,
//! the store later).
//!
//! * [`signal`]: [`Signal::parse`] turns a kind and a string into a typed
//!   signal; URLs are normalised ([`UrlNormaliser`]), domains keep whether
//!   they cover their subdomains and know their registrable domain.
//! * [`pdq`]: [`PdqHash`] (hex as Meta formats it), [`pdq::hash_image`] and
//!   [`pdq::hash_luma`] with the reference's quality score, and the eight
//!   dihedral variants from one DCT.
//! * [`index`]: [`PdqIndex`] (multi-index hashing over substrings of about
//!   log2 n bits in compressed segments, exact and complete at any
//!   threshold, with a batched brute-force fallback), [`NameIndex`] for URLs
//!   and domains with a suffix walk, and plain hash sets for cryptographic
//!   digests.
//! * [`bank`]: a [`Bank`] of labelled signals with their provenance, and
//!   the [`Match`] results it answers.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bank;
pub mod bank_file;
pub mod index;
pub mod pdq;
pub mod signal;

pub use bank::{Bank, Entry, EntryId, Labels, Match, Provenance, Query};
pub use index::{NameIndex, PdqIndex};
pub use pdq::{PdqHash, PdqResult};
pub use signal::{DomainSignal, Signal, SignalKind, UrlNormaliser};

/// Everything that can go wrong in this crate. Messages are lowercase and
/// say what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("unknown signal type {0:?}: use one of url, domain, sha256, md5, pdq")]
    UnknownKind(String),
    #[error("{kind} must be {expected} hex digits, got {got} characters")]
    HexLength {
        kind: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{kind} has a non-hex character {found:?} at position {position}: use 0-9 and a-f")]
    HexDigit {
        kind: &'static str,
        found: char,
        position: usize,
    },
    #[error("url {url:?} does not parse: {reason}")]
    Url { url: String, reason: String },
    #[error("url {0:?} must use http or https")]
    UrlScheme(String),
    #[error("url {0:?} has no host name")]
    UrlHost(String),
    #[error("domain {domain:?} is not a valid name: {reason}")]
    Domain { domain: String, reason: String },
    #[error("image format not recognised: use jpeg, png, gif, webp or bmp")]
    ImageFormat,
    #[error(
        "image is {width}x{height}, over the limit of {max}x{max} pixels: scale it down before hashing"
    )]
    ImageTooLarge { width: u32, height: u32, max: u32 },
    #[error("image could not be decoded (corrupt or truncated): {0}")]
    ImageDecode(String),
    #[error("image is {width}x{height}: PDQ needs at least 5x5 pixels")]
    ImageTooSmall { width: u32, height: u32 },
    #[error("quality {0:?} is not a number from 0 to 100")]
    Quality(String),
    #[error("threshold {0} is over 128 bits: a PDQ threshold is usually 31")]
    Threshold(u32),
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
