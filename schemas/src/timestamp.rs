//! Event time: milliseconds since the Unix epoch, UTC.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
    /// The earliest instant RFC 3339 can write: `0000-01-01T00:00:00.000Z`.
    pub const EARLIEST: Timestamp = Timestamp(-62_167_219_200_000);
    /// The latest instant RFC 3339 can write: `9999-12-31T23:59:59.999Z`.
    pub const LATEST: Timestamp = Timestamp(253_402_300_799_999);

    /// Parses an RFC 3339 date-time with offset (`Z` or `±hh:mm`).
    ///
    /// Date and time must be separated by `T` (or `t`), as in the grammar of
    /// RFC 3339 section 5.6 and JSON Schema's `date-time`; the `time` crate
    /// alone would take any byte there.
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimestampError> {
        if !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
            return Err(TimestampError(
                "date and time must be separated by T".to_owned(),
            ));
        }
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| TimestampError(e.to_string()))?;
        // Floor, not truncation toward zero: 1969-12-31T23:59:59.9995Z is in
        // the millisecond 23:59:59.999, not 1970-01-01T00:00:00.000.
        let millis = t.unix_timestamp_nanos().div_euclid(1_000_000);
        // An offset can move a year-0000 or year-9999 time outside the
        // years a record's `time` can be written in (UTC): such an event is
        // rejected here, not left to fail when its record is written.
        i64::try_from(millis)
            .ok()
            .map(Timestamp)
            .filter(|t| t.is_rfc3339_range())
            .ok_or_else(|| {
                TimestampError(
                    "outside 0000-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z once in UTC"
                        .to_owned(),
                )
            })
    }

    /// Whether RFC 3339 can write this instant: its year is 0000 to 9999.
    pub fn is_rfc3339_range(self) -> bool {
        (Self::EARLIEST..=Self::LATEST).contains(&self)
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
    ///
    /// An instant outside [`Timestamp::EARLIEST`]..=[`Timestamp::LATEST`] has
    /// no RFC 3339 form and is shown as milliseconds since the epoch, e.g.
    /// `@-62167219200001ms`: `Display` must not fail, since `to_string()` and
    /// serde_json's `collect_str` panic when it does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3339() {
            Some(text) => f.write_str(text.as_str()),
            None => write!(f, "@{}ms", self.0),
        }
    }
}

/// The RFC 3339 form of an instant, on the stack.
///
/// Written by hand rather than by the `time` crate's formatter: every risk
/// record carries one or two timestamps, and the generic formatter was a
/// tenth of `riskstream replay`'s instructions. The tests check it against
/// the `time` crate over the whole range.
#[derive(Clone, Copy)]
struct Rfc3339Text([u8; 24]);

impl Rfc3339Text {
    fn as_str(&self) -> &str {
        // Only ASCII digits and `-T:.Z` are ever written.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl Timestamp {
    /// `YYYY-MM-DDThh:mm:ss.mmmZ`, or `None` outside the years 0000 to 9999.
    fn rfc3339(self) -> Option<Rfc3339Text> {
        if !self.is_rfc3339_range() {
            return None;
        }
        const DAY_MS: i64 = 86_400_000;
        let (y, m, d) = civil_from_days(self.0.div_euclid(DAY_MS));
        let ms = self.0.rem_euclid(DAY_MS);
        let (hh, mm, ss, mmm) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let mut digits = |at: usize, width: usize, mut v: i64| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        digits(0, 4, y);
        digits(5, 2, m);
        digits(8, 2, d);
        digits(11, 2, hh);
        digits(14, 2, mm);
        digits(17, 2, ss);
        digits(20, 3, mmm);
        Some(Rfc3339Text(b))
    }
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01 in the
/// proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`, exact
/// for every day of the years 0000 to 9999 that [`Timestamp`] formats).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl Serialize for Timestamp {
    /// Serialises the RFC 3339 form; an instant outside the years 0000 to
    /// 9999 is an error, since the contract's `time` fields are RFC 3339.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339() {
            Some(text) => serializer.serialize_str(text.as_str()),
            None => Err(serde::ser::Error::custom(format_args!(
                "timestamp {} ms is outside the years 0000 to 9999 that RFC 3339 can write",
                self.0
            ))),
        }
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
    // Tests panic on purpose when something is wrong.
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_offsets_to_the_same_instant() {
        let a = Timestamp::parse_rfc3339("2026-11-30T10:15:02.123Z").unwrap();
        let b = Timestamp::parse_rfc3339("2026-11-30T11:15:02.123+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2026-11-30T10:15:02.123Z");
    }

    #[test]
    fn truncates_sub_millisecond_digits_toward_the_past() {
        let t = Timestamp::parse_rfc3339("1969-12-31T23:59:59.9995Z").unwrap();
        assert_eq!(t, Timestamp(-1));
        assert_eq!(t.to_string(), "1969-12-31T23:59:59.999Z");
        let t = Timestamp::parse_rfc3339("2026-11-30T10:15:02.1239Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-30T10:15:02.123Z");
    }

    #[test]
    fn range_ends_are_the_rfc3339_years() {
        let earliest = Timestamp::parse_rfc3339("0000-01-01T00:00:00Z").unwrap();
        let latest = Timestamp::parse_rfc3339("9999-12-31T23:59:59.999999Z").unwrap();
        assert_eq!((earliest, latest), (Timestamp::EARLIEST, Timestamp::LATEST));
        assert_eq!(Timestamp::EARLIEST.to_string(), "0000-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::LATEST.to_string(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn times_that_utc_moves_out_of_the_writable_years_are_refused() {
        for s in ["0000-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"] {
            let e = Timestamp::parse_rfc3339(s).unwrap_err().to_string();
            assert!(e.contains("once in UTC"), "{s}: {e}");
        }
        // The same instants without the offset are the range's ends.
        assert!(Timestamp::parse_rfc3339("0000-01-01T00:00:00+00:00").is_ok());
        assert!(Timestamp::parse_rfc3339("9999-12-31T23:30:00+01:00").is_ok());
    }

    #[test]
    fn out_of_range_instants_display_but_do_not_serialise() {
        for t in [
            Timestamp(i64::MIN),
            Timestamp(Timestamp::EARLIEST.0 - 1),
            Timestamp(Timestamp::LATEST.0 + 1),
            Timestamp(i64::MAX),
        ] {
            assert_eq!(t.to_string(), format!("@{}ms", t.0));
            assert!(serde_json::to_string(&t).is_err());
        }
    }

    /// The formatter this module had before it wrote the digits itself.
    fn formatted_by_time(t: Timestamp) -> String {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0) * 1_000_000)
            .unwrap()
            .format(&format)
            .unwrap()
    }

    #[test]
    fn formats_as_the_time_crate_did() {
        let day = 86_400_000;
        let mut cases = vec![
            Timestamp::EARLIEST,
            Timestamp::LATEST,
            Timestamp(0),
            Timestamp(-1),
            Timestamp(951_782_400_000),    // 2000-02-29
            Timestamp(4_107_542_400_000),  // 2100-02-28 (not a leap year)
            Timestamp(-2_203_891_200_000), // 1900-03-01
            Timestamp(1_795_947_302_123),
        ];
        // Every day of the first and last five years, and a stride across
        // the whole range, at a varying time of day.
        cases.extend((0..5 * 366).map(|d| Timestamp(Timestamp::EARLIEST.0 + d * day + d * 7_919)));
        cases.extend((0..5 * 366).map(|d| Timestamp(Timestamp::LATEST.0 - d * day - d * 7_919)));
        let span = Timestamp::LATEST.0 - Timestamp::EARLIEST.0;
        cases.extend(
            (0..200_000)
                .map(|i| Timestamp(Timestamp::EARLIEST.0 + span / 200_000 * i + i * 12_345 % day)),
        );
        for t in cases {
            assert_eq!(t.to_string(), formatted_by_time(t), "{}", t.0);
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", formatted_by_time(t))
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn formats_any_instant_as_the_time_crate_did(ms in Timestamp::EARLIEST.0..=Timestamp::LATEST.0) {
            proptest::prop_assert_eq!(Timestamp(ms).to_string(), formatted_by_time(Timestamp(ms)));
        }
    }

    #[test]
    fn rejects_separators_other_than_t() {
        assert!(Timestamp::parse_rfc3339("2026-11-30t10:15:02z").is_ok());
        assert!(Timestamp::parse_rfc3339("2026-11-30 10:15:02Z").is_err());
        assert!(Timestamp::parse_rfc3339("2026-11-30x10:15:02Z").is_err());
    }

    #[test]
    fn rejects_times_without_offset() {
        assert!(Timestamp::parse_rfc3339("2026-11-30T10:15:02").is_err());
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }
}
