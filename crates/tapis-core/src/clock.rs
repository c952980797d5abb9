//! Time. Every component asks a [`Clock`]; production uses [`SystemClock`],
//! tests and replays use [`ManualClock`] so that months pass in milliseconds.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An instant with millisecond precision, always UTC.
///
/// Milliseconds because that is what every store keeps exactly and what
/// canonical JSON renders without loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// Parse RFC 3339 (e.g. `2017-07-14T11:30:00+07:00`); sub-millisecond
    /// digits are truncated.
    pub fn parse(field: &str, s: &str) -> crate::Result<Self> {
        if s.len() > 64 {
            return Err(crate::Error::invalid(field, "timestamp is too long"));
        }
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
            crate::Error::invalid(
                field,
                "not an RFC 3339 timestamp (e.g. 2017-07-14T11:30:00+07:00)",
            )
        })?;
        // round down, also before 1970: 23:59:59.9995 is 23:59:59.999
        let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
        let out_of_range = || crate::Error::invalid(field, "timestamp out of range");
        let ts = i64::try_from(ms)
            .map(Timestamp)
            .map_err(|_| out_of_range())?;
        // Display writes UTC; an instant whose UTC year is not 0000 to 9999
        // (e.g. 0000-01-01T00:00:00+01:00) has no RFC 3339 form to write.
        match OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts.0) * 1_000_000) {
            Ok(utc) if (0..=9999).contains(&utc.year()) => Ok(ts),
            _ => Err(out_of_range()),
        }
    }

    pub fn plus_millis(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    pub fn plus_secs(self, s: i64) -> Self {
        self.plus_millis(s.saturating_mul(1000))
    }

    fn to_offset(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with exactly three fractional digits, so that the
    /// text form is canonical (one instant, one spelling).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.to_offset();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse("timestamp", &s).map_err(serde::de::Error::custom)
    }
}

/// The source of "now".
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start.0)))
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }

    /// Move forward to `t`, never back (several tasks may race to it).
    pub fn advance_to(&self, t: Timestamp) {
        self.0.fetch_max(t.0, Ordering::SeqCst);
    }

    pub fn advance_millis(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_and_prints_canonical_utc() {
        let t = Timestamp::parse("t", "2017-07-14T11:30:00+07:00").expect("valid");
        assert_eq!(t.to_string(), "2017-07-14T04:30:00.000Z");
        assert_eq!(Timestamp::parse("t", &t.to_string()), Ok(t));
        assert!(Timestamp::parse("t", "14 July 2017").is_err());
        assert!(Timestamp::parse("t", "2017-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp::from_unix_millis(1000));
        let c2 = c.clone();
        c.advance_millis(500);
        assert_eq!(c2.now(), Timestamp::from_unix_millis(1500));
    }
}
