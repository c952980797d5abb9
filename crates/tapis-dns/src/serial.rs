//! Serial number arithmetic (RFC 1982) for SOA serials, and the mapping
//! from the store's zone version to a serial: the one place that
//! decides whether a zone version is newer than another, for the primary
//! (is the secondary behind?) and for every transfer client (is the
//! primary ahead of us?). Serials wrap at 2^32; two serials exactly 2^31
//! apart are incomparable, so neither comes before the other.

/// The 32-bit SOA serial for a zone version as the store counts them
/// (serial arithmetic wraps; a zone would need four billion changes to get
/// there).
pub fn soa_serial(version: i64) -> u32 {
    (version.rem_euclid(1 << 32)) as u32
}

/// Whether `a` comes before `b`.
pub fn serial_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < (1 << 31)
}

/// Whether `a` comes after `b`.
pub fn serial_gt(a: u32, b: u32) -> bool {
    serial_lt(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic() {
        assert!(serial_lt(1, 2));
        assert!(!serial_lt(2, 1));
        assert!(!serial_lt(5, 5));
        assert!(serial_lt(u32::MAX, 0));
        assert!(!serial_lt(0, u32::MAX));
        assert!(serial_gt(0, u32::MAX));
        assert!(serial_gt(2, 1));
        assert!(!serial_gt(7, 7));
        // 2^31 apart: undefined, so neither order holds
        assert!(!serial_lt(0, 1 << 31) && !serial_gt(0, 1 << 31));
        assert_eq!(soa_serial(7), 7);
        assert_eq!(soa_serial(1 << 32), 0);
        assert!(serial_gt(
            soa_serial((1 << 32) + 1),
            soa_serial((1 << 32) - 1)
        ));
    }
}
