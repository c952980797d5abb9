//! PDQ, Meta's 256-bit perceptual image hash, computed as the reference
//! implementation (ThreatExchange `pdq/cpp`) computes it, so that a hash
//! made here equals one made there for the same pixels: luma in `f32`, two
//! passes of a Jarosz tent filter (box filters along rows then columns),
//! decimation to 64×64 at pixel centres, the reference's gradient quality
//! score with its integer truncations, a 16×16 corner of the 2-D DCT, and
//! one bit per coefficient above the (Torben) median.
//!
//! Every floating-point step keeps the reference's types and order of
//! operations (single precision where it is single, double where it is
//! double, sums accumulated in the same order), because PDQ's bits are
//! decided by comparisons against a median and a one-ulp difference can flip
//! a bit.
//!
//! Two deliberate differences from the reference *command-line tool*
//! (`pdq-photo-hasher`), neither in the algorithm: the tool first resizes
//! images larger than 512 pixels to 512×512 with its image library's
//! nearest-neighbour resize (not part of PDQ; ThreatExchange's Python and
//! the `pdqhash` bindings hash at full size, as we do), and images are
//! decoded by the `image` crate, whose JPEG decoder may differ from
//! libjpeg by a pixel level here and there. On PNG input (lossless) the
//! hashes agree bit for bit; see the tests.
//!
//! The hex form is Meta's: sixteen 16-bit words, most significant word (bits
//! 255..240) first, each as four lowercase hex digits.

use std::fmt;
use std::io::Cursor;
use std::str::FromStr;

use crate::{Error, Result};

/// Side of the downsampled image the DCT reads.
const DOWNSAMPLED: usize = 64;
/// Side of the DCT corner that becomes the hash.
const DCT_SIDE: usize = 16;
/// The reference hashes nothing smaller than this in either dimension.
const MIN_HASHABLE_DIM: usize = 5;

/// A 256-bit PDQ hash. Bit `k` (as the reference numbers them: bit
/// `i*16+j` is DCT coefficient row `i`, column `j`) is bit `k % 64` of word
/// `k / 64`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PdqHash(pub [u64; 4]);

impl PdqHash {
    /// Parse Meta's hex form: exactly 64 hex digits (either case).
    pub fn parse(s: &str) -> Result<PdqHash> {
        let bytes = parse_hex::<32>("pdq", s)?;
        let mut words = [0u64; 4];
        for (w, chunk) in bytes.chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            // the first hex digits are the most significant word
            words[3 - w] = u64::from_be_bytes(b);
        }
        Ok(PdqHash(words))
    }

    /// Number of differing bits.
    #[inline]
    pub fn distance(&self, other: &PdqHash) -> u32 {
        (self.0[0] ^ other.0[0]).count_ones()
            + (self.0[1] ^ other.0[1]).count_ones()
            + (self.0[2] ^ other.0[2]).count_ones()
            + (self.0[3] ^ other.0[3]).count_ones()
    }

    /// Bit `k` (0..256) as the reference numbers them.
    pub fn bit(&self, k: usize) -> bool {
        (self.0[(k / 64) % 4] >> (k % 64)) & 1 == 1
    }

    /// The hash with bit `k` flipped.
    pub fn flip(mut self, k: usize) -> PdqHash {
        self.0[(k / 64) % 4] ^= 1 << (k % 64);
        self
    }

    /// 16-bit word `s` (0..16): bits `16s..16s+16`, the reference's `w[s]`.
    #[inline]
    pub fn word16(&self, s: usize) -> u16 {
        // truncation to the low 16 bits is the point
        (self.0[(s / 4) % 4] >> ((s % 4) * 16)) as u16
    }
}

impl fmt::Display for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:016x}{:016x}{:016x}{:016x}",
            self.0[3], self.0[2], self.0[1], self.0[0]
        )
    }
}

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({self})")
    }
}

impl FromStr for PdqHash {
    type Err = Error;
    fn from_str(s: &str) -> Result<PdqHash> {
        PdqHash::parse(s)
    }
}

/// Parse `N` bytes from exactly `2N` hex digits, naming the first bad
/// character and its position.
pub(crate) fn parse_hex<const N: usize>(kind: &'static str, s: &str) -> Result<[u8; N]> {
    let got = s.chars().count();
    if let Some((position, found)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(Error::HexDigit {
            kind,
            found,
            position,
        });
    }
    if got != 2 * N {
        return Err(Error::HexLength {
            kind,
            expected: 2 * N,
            got,
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| Error::HexLength {
        kind,
        expected: 2 * N,
        got,
    })?;
    Ok(out)
}

/// A hash and the reference's quality score (0..=100; Meta advises
/// discarding hashes below 50).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PdqResult {
    pub hash: PdqHash,
    pub quality: u8,
}

/// The eight dihedral variants of one image, as the reference names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dihedral {
    pub original: PdqHash,
    pub rotate90: PdqHash,
    pub rotate180: PdqHash,
    pub rotate270: PdqHash,
    pub flip_x: PdqHash,
    pub flip_y: PdqHash,
    pub flip_plus1: PdqHash,
    pub flip_minus1: PdqHash,
    pub quality: u8,
}

impl Dihedral {
    /// All eight, original first.
    pub fn all(&self) -> [PdqHash; 8] {
        [
            self.original,
            self.rotate90,
            self.rotate180,
            self.rotate270,
            self.flip_x,
            self.flip_y,
            self.flip_plus1,
            self.flip_minus1,
        ]
    }
}

/// Bounds on what [`hash_image`] will decode: a small file can declare a
/// huge image (a decompression bomb), so dimensions are checked from the
/// header before any pixel buffer is allocated.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Largest width or height accepted.
    pub max_side: u32,
    /// Largest width × height accepted.
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    /// 20 000 pixels a side and 40 megapixels: larger than any camera
    /// photo, and hashing stays under about half a gigabyte.
    fn default() -> Self {
        ImageLimits {
            max_side: 20_000,
            max_pixels: 40_000_000,
        }
    }
}

/// Luma of an image in `f32`, row-major, as the reference builds it.
pub struct Luma {
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<f32>,
}

impl Luma {
    /// From interleaved 8-bit RGB: `0.299 R + 0.587 G + 0.114 B` in single
    /// precision, summed left to right.
    pub fn from_rgb8(rows: usize, cols: usize, rgb: &[u8]) -> Luma {
        // the reference's constants are double literals stored as floats
        let (cr, cg, cb) = (0.299_f64 as f32, 0.587_f64 as f32, 0.114_f64 as f32);
        let pixels = rgb
            .chunks_exact(3)
            .map(|p| cr * f32::from(p[0]) + cg * f32::from(p[1]) + cb * f32::from(p[2]))
            .collect();
        Luma { rows, cols, pixels }
    }

    /// From 8-bit grey: the value itself.
    pub fn from_grey8(rows: usize, cols: usize, grey: &[u8]) -> Luma {
        Luma {
            rows,
            cols,
            pixels: grey.iter().map(|&g| f32::from(g)).collect(),
        }
    }
}

/// Decode an image (jpeg, png, gif, webp, bmp) within `limits` and hash it.
pub fn hash_image(bytes: &[u8], limits: &ImageLimits) -> Result<PdqResult> {
    let (luma, _) = decode_luma(bytes, limits)?;
    Ok(hash_luma(luma))
}

/// Decode and hash, returning all eight dihedral variants.
pub fn hash_image_dihedral(bytes: &[u8], limits: &ImageLimits) -> Result<Dihedral> {
    let (luma, _) = decode_luma(bytes, limits)?;
    Ok(dihedral_luma(luma))
}

/// Decode `bytes` to luma; also returns the image's (width, height).
pub fn decode_luma(bytes: &[u8], limits: &ImageLimits) -> Result<(Luma, (u32, u32))> {
    let reader = || {
        image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::ImageDecode(e.to_string()))
    };
    let probe = reader()?;
    match probe.format() {
        None => return Err(Error::ImageFormat),
        Some(image::ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            return Err(Error::ImageDecode(
                "the jpeg ends before its end-of-image marker: the file is truncated".into(),
            ));
        }
        Some(_) => {}
    }
    let (width, height) = probe
        .into_dimensions()
        .map_err(|e| Error::ImageDecode(e.to_string()))?;
    let too_large = width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels;
    if too_large {
        let max = limits.max_side;
        return Err(Error::ImageTooLarge { width, height, max });
    }
    let mut decoder = reader()?;
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    // the decoded image plus the decoder's own buffers
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    decoder.limits(l);
    let img = decoder
        .decode()
        .map_err(|e| Error::ImageDecode(e.to_string()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < MIN_HASHABLE_DIM || h < MIN_HASHABLE_DIM {
        return Err(Error::ImageTooSmall {
            width: img.width(),
            height: img.height(),
        });
    }
    let luma = match img {
        image::DynamicImage::ImageLuma8(g) => Luma::from_grey8(h, w, g.as_raw()),
        image::DynamicImage::ImageLumaA8(_) => Luma::from_grey8(h, w, img.to_luma8().as_raw()),
        other => Luma::from_rgb8(h, w, other.to_rgb8().as_raw()),
    };
    Ok((luma, (width, height)))
}

/// Whether a JPEG has its end-of-image marker after its last scan. The
/// decoder fills a truncated scan with grey and succeeds, which would hash
/// half an image; entropy-coded data stuffs every 0xFF, so neither marker
/// can occur inside a scan, and an EXIF thumbnail's own markers come before
/// the main image's last scan.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    last_scan.is_some_and(|s| bytes[s..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// Hash luma as the reference's `pdqHash256FromFloatLuma` does (an image
/// under 5 pixels in either dimension hashes to zero with quality 0).
pub fn hash_luma(luma: Luma) -> PdqResult {
    match dct_of_luma(luma) {
        None => PdqResult {
            hash: PdqHash::default(),
            quality: 0,
        },
        Some((dct, quality)) => PdqResult {
            hash: bits_above_median(&dct),
            quality,
        },
    }
}

/// All eight dihedral variants from one DCT, as the reference's
/// `pdqDihedralHash256esFromFloatLuma` does.
pub fn dihedral_luma(luma: Luma) -> Dihedral {
    let Some((dct, quality)) = dct_of_luma(luma) else {
        let z = PdqHash::default();
        return Dihedral {
            original: z,
            rotate90: z,
            rotate180: z,
            rotate270: z,
            flip_x: z,
            flip_y: z,
            flip_plus1: z,
            flip_minus1: z,
            quality: 0,
        };
    };
    // A rotation or flip of the image maps DCT coefficient (i, j) to
    // (i, j) or (j, i) (transposition), negated where the basis function
    // is odd along a mirrored axis.
    let v = |transpose: bool, negate: fn(usize, usize) -> bool| {
        let mut out = [[0f32; DCT_SIDE]; DCT_SIDE];
        for (i, row) in dct.iter().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                let y = if negate(i, j) { -x } else { x };
                if transpose {
                    out[j][i] = y;
                } else {
                    out[i][j] = y;
                }
            }
        }
        bits_above_median(&out)
    };
    Dihedral {
        original: bits_above_median(&dct),
        rotate90: v(true, |_, j| j % 2 == 0),
        rotate180: v(false, |i, j| (i + j) % 2 == 1),
        rotate270: v(true, |i, _| i % 2 == 0),
        flip_x: v(false, |i, _| i % 2 == 0),
        flip_y: v(false, |_, j| j % 2 == 0),
        flip_plus1: v(true, |_, _| false),
        flip_minus1: v(true, |i, j| (i + j) % 2 == 1),
        quality,
    }
}

type Dct = [[f32; DCT_SIDE]; DCT_SIDE];

/// Downsample, score and transform: the DCT corner and the quality, or
/// `None` for an image too small to hash.
fn dct_of_luma(luma: Luma) -> Option<(Dct, u8)> {
    let Luma { rows, cols, pixels } = luma;
    if rows < MIN_HASHABLE_DIM || cols < MIN_HASHABLE_DIM || pixels.len() != rows * cols {
        return None;
    }
    let small = if rows == DOWNSAMPLED && cols == DOWNSAMPLED {
        pixels
    } else {
        let mut a = pixels;
        let mut b = vec![0f32; rows * cols];
        let along_rows = jarosz_window(cols, DOWNSAMPLED);
        let along_cols = jarosz_window(rows, DOWNSAMPLED);
        let mut sums = Vec::new();
        for _ in 0..2 {
            for r in 0..rows {
                box_lanes(&a, &mut b, r * cols, cols, 1, 1, along_rows, &mut sums);
            }
            box_lanes(&b, &mut a, 0, rows, cols, cols, along_cols, &mut sums);
        }
        decimate(&a, rows, cols)
    };
    let quality = quality(&small);
    Some((dct_64_to_16(&small), quality))
}

/// Window of each of the two box passes: half the ratio of old to new
/// size, rounded up.
fn jarosz_window(old: usize, new: usize) -> usize {
    old.div_ceil(2 * new)
}

/// Running-mean box filters over `lanes` adjacent sequences at once: each
/// lane is `len` samples from `start + lane`, `stride` apart, filtered
/// centred with shrinking windows at both ends, in the reference's order of
/// additions and subtractions. Lanes change nothing in any one sequence's
/// arithmetic; they let the column pass walk memory row by row (the
/// reference walks each column down the image, a cache miss a sample).
#[allow(clippy::too_many_arguments)]
fn box_lanes(
    input: &[f32],
    output: &mut [f32],
    start: usize,
    len: usize,
    stride: usize,
    lanes: usize,
    window: usize,
    sums: &mut Vec<f32>,
) {
    let half = (window + 2) / 2;
    let lead = half - 1;
    let head = window - half + 1;
    let body = len.saturating_sub(window);
    let tail = half - 1;
    sums.clear();
    sums.resize(lanes, 0.0);
    let at = |i: usize| start + i * stride;
    let (mut li, mut ri, mut oi) = (0usize, 0usize, 0usize);
    let mut count = 0i32;
    for _ in 0..lead {
        for (l, s) in sums.iter_mut().enumerate() {
            *s += input[at(ri) + l];
        }
        count += 1;
        ri += 1;
    }
    for _ in 0..head {
        count += 1;
        for (l, s) in sums.iter_mut().enumerate() {
            *s += input[at(ri) + l];
            output[at(oi) + l] = *s / count as f32;
        }
        ri += 1;
        oi += 1;
    }
    for _ in 0..body {
        for (l, s) in sums.iter_mut().enumerate() {
            *s += input[at(ri) + l];
            *s -= input[at(li) + l];
            output[at(oi) + l] = *s / count as f32;
        }
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..tail {
        count -= 1;
        for (l, s) in sums.iter_mut().enumerate() {
            *s -= input[at(li) + l];
            output[at(oi) + l] = *s / count as f32;
        }
        li += 1;
        oi += 1;
    }
}

/// Pick the 64×64 samples at pixel centres (index arithmetic in double, as
/// the reference does).
fn decimate(input: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let n = DOWNSAMPLED;
    let mut out = Vec::with_capacity(n * n);
    for oi in 0..n {
        let ii = (((oi as f64 + 0.5) * rows as f64) / n as f64) as usize;
        for oj in 0..n {
            let ij = (((oj as f64 + 0.5) * cols as f64) / n as f64) as usize;
            out.push(input[ii * cols + ij]);
        }
    }
    out
}

/// The reference's quality: the sum of truncated percentage gradients
/// between neighbours, divided by 90 in integers, capped at 100.
fn quality(small: &[f32]) -> u8 {
    let n = DOWNSAMPLED;
    let step = |u: f32, v: f32| (((u - v) * 100.0) / 255.0) as i32;
    let mut sum: i32 = 0;
    for i in 0..n - 1 {
        for j in 0..n {
            sum += step(small[i * n + j], small[(i + 1) * n + j]).abs();
        }
    }
    for i in 0..n {
        for j in 0..n - 1 {
            sum += step(small[i * n + j], small[i * n + j + 1]).abs();
        }
    }
    // at most 100, so the narrowing cannot truncate
    (sum / 90).min(100) as u8
}

/// Rows 1..=16 of the 64-point DCT-II matrix, scaled by sqrt(2/64), as the
/// reference tabulates it (each entry rounded once to `f32`).
fn dct_matrix() -> &'static [[f32; DOWNSAMPLED]; DCT_SIDE] {
    static M: std::sync::OnceLock<[[f32; DOWNSAMPLED]; DCT_SIDE]> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let scale = (2.0 / DOWNSAMPLED as f64).sqrt() as f32;
        let mut m = [[0f32; DOWNSAMPLED]; DCT_SIDE];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                let angle = (std::f64::consts::PI / 2.0 / DOWNSAMPLED as f64)
                    * (i + 1) as f64
                    * (2 * j + 1) as f64;
                *x = (f64::from(scale) * angle.cos()) as f32;
            }
        }
        m
    })
}

/// `D A Dᵀ` restricted to the 16×16 corner, sums in the reference's order.
fn dct_64_to_16(a: &[f32]) -> Dct {
    let n = DOWNSAMPLED;
    let d = dct_matrix();
    let mut t = [[0f32; DOWNSAMPLED]; DCT_SIDE];
    for i in 0..DCT_SIDE {
        for j in 0..n {
            let mut s = 0f32;
            for k in 0..n {
                s += d[i][k] * a[k * n + j];
            }
            t[i][j] = s;
        }
    }
    let mut b = [[0f32; DCT_SIDE]; DCT_SIDE];
    for i in 0..DCT_SIDE {
        for j in 0..DCT_SIDE {
            let mut s = 0f32;
            for k in 0..n {
                s += t[i][k] * d[j][k];
            }
            b[i][j] = s;
        }
    }
    b
}

/// Bit `16i + j` is set when coefficient (i, j) is above the median.
fn bits_above_median(dct: &Dct) -> PdqHash {
    let flat: Vec<f32> = dct.iter().flatten().copied().collect();
    let median = torben_median(&flat);
    let mut h = PdqHash::default();
    for (k, &x) in flat.iter().enumerate() {
        if x > median {
            h.0[k / 64] |= 1 << (k % 64);
        }
    }
    h
}

/// Torben's median (no sorting, no copies): bisect between the minimum and
/// maximum by counting values below, above and at a guess. Returns what the
/// reference returns, including which of two middle values it picks.
fn torben_median(m: &[f32]) -> f32 {
    let n = m.len();
    let half = n.div_ceil(2);
    let (mut min, mut max) = (m[0], m[0]);
    for &x in &m[1..] {
        if x < min {
            min = x;
        }
        if x > max {
            max = x;
        }
    }
    loop {
        let guess = (min + max) / 2.0;
        let (mut less, mut greater, mut equal) = (0usize, 0usize, 0usize);
        let (mut max_below, mut min_above) = (min, max);
        for &x in m {
            if x < guess {
                less += 1;
                if x > max_below {
                    max_below = x;
                }
            } else if x > guess {
                greater += 1;
                if x < min_above {
                    min_above = x;
                }
            } else {
                equal += 1;
            }
        }
        if less <= half && greater <= half {
            return if less >= half {
                max_below
            } else if less + equal >= half {
                guess
            } else {
                min_above
            };
        }
        if less > greater {
            max = max_below;
        } else {
            min = min_above;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_with_the_most_significant_word_first() {
        let s = "f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22";
        let h = PdqHash::parse(s).unwrap();
        assert_eq!(h.to_string(), s);
        // bit 255 is the top bit of the first hex digit (f = 1111)
        assert!(h.bit(255));
        // the last word is 0x9b22: bit 0 is 0, bit 1 is 1
        assert!(!h.bit(0) && h.bit(1));
        assert_eq!(h.word16(0), 0x9b22);
        assert_eq!(h.word16(15), 0xf8f8);
        assert_eq!(PdqHash::parse(&s.to_uppercase()).unwrap(), h);
    }

    #[test]
    fn malformed_hex_is_named_precisely() {
        assert_eq!(
            PdqHash::parse("abc"),
            Err(Error::HexLength {
                kind: "pdq",
                expected: 64,
                got: 3
            })
        );
        let mut s = "0".repeat(64);
        s.replace_range(10..11, "g");
        assert_eq!(
            PdqHash::parse(&s),
            Err(Error::HexDigit {
                kind: "pdq",
                found: 'g',
                position: 10
            })
        );
        assert!(PdqHash::parse(&"é".repeat(32)).is_err());
    }

    #[test]
    fn torben_picks_the_lower_middle_like_the_reference() {
        assert_eq!(torben_median(&[1.0, 2.0, 3.0, 4.0]), 2.0);
        assert_eq!(torben_median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(torben_median(&[7.0; 10]), 7.0);
    }

    #[test]
    fn tiny_luma_hashes_to_zero_with_quality_zero() {
        let r = hash_luma(Luma::from_grey8(4, 100, &[9; 400]));
        assert_eq!(r.quality, 0);
        assert_eq!(r.hash, PdqHash::default());
    }
}
