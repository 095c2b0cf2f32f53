//! Event time: milliseconds since the Unix epoch, UTC.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// An instant in event time, in milliseconds since 1970-01-01T00:00:00Z.
///
/// All windows and ages in riskstream are computed from this value; the wall
/// clock is never read. Sub-millisecond digits of the input are truncated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// A time string that is not RFC 3339 with an offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 time with offset: {0}")]
pub struct TimestampError(String);

impl Timestamp {
    /// Parses an RFC 3339 date-time with offset (`Z` or `±hh:mm`).
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimestampError> {
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| TimestampError(e.to_string()))?;
        let millis = t.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis)
            .map(Timestamp)
            .map_err(|_| TimestampError("out of range".to_owned()))
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Seconds elapsed from `earlier` to `self` (negative when `earlier` is later).
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1000.0
    }

    /// This instant plus `seconds` (saturating).
    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds.saturating_mul(1000)))
    }
}

impl fmt::Display for Timestamp {
    /// Formats as `YYYY-MM-DDThh:mm:ss.mmmZ`, always UTC with milliseconds, so
    /// that the same instant always gives the same bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => match t.format(&format) {
                Ok(s) => f.write_str(&s),
                Err(_) => Err(fmt::Error),
            },
            Err(_) => Err(fmt::Error),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_to_the_same_instant() {
        let a = Timestamp::parse_rfc3339("2026-11-30T10:15:02.123Z").unwrap();
        let b = Timestamp::parse_rfc3339("2026-11-30T11:15:02.123+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2026-11-30T10:15:02.123Z");
    }

    #[test]
    fn rejects_times_without_offset() {
        assert!(Timestamp::parse_rfc3339("2026-11-30T10:15:02").is_err());
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }
}
