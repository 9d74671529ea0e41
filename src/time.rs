//! Wall-clock instants as plain numbers, for the sans-IO core.
//!
//! The core (`model`, `cwmp`, `cpe`, `session`) never reads a clock: every call that needs the
//! time takes a [`UnixMillis`] from its caller, so tests drive time explicitly and a shard can read
//! the clock once per batch. Also holds the `dateTime` formatting the codec and the data model
//! share (TR-069 §A.2.1 / PROTOCOL.md §11: `YYYY-MM-DDThh:mm:ssZ`, UTC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// Reads the system clock. Only the I/O layers call this; the core takes `now` as input.
    pub fn now() -> Self {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        UnixMillis(since.as_millis() as u64)
    }

    /// Whole seconds since the epoch.
    pub fn secs(self) -> u64 {
        self.0 / 1000
    }

    /// The time elapsed since `earlier`, zero if `earlier` is later.
    pub fn since(self, earlier: UnixMillis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// This instant moved forward by `d`.
    pub fn plus(self, d: Duration) -> UnixMillis {
        UnixMillis(self.0.saturating_add(d.as_millis() as u64))
    }
}

/// The TR-069 "Unknown Time" (PROTOCOL.md §11).
pub const UNKNOWN_TIME: &str = "0001-01-01T00:00:00Z";

/// Length of a formatted `YYYY-MM-DDThh:mm:ssZ`.
pub const DATETIME_LEN: usize = 20;

/// Formats `t` (truncated to seconds) as `YYYY-MM-DDThh:mm:ssZ` into a stack buffer.
///
/// No allocation: the Inform template splices this on every periodic Inform.
pub fn format_datetime(t: UnixMillis) -> [u8; DATETIME_LEN] {
    let secs = t.secs() as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut b = *b"0000-00-00T00:00:00Z";
    put_digits(&mut b[0..4], y as u64);
    put_digits(&mut b[5..7], m as u64);
    put_digits(&mut b[8..10], d as u64);
    put_digits(&mut b[11..13], (sod / 3600) as u64);
    put_digits(&mut b[14..16], (sod / 60 % 60) as u64);
    put_digits(&mut b[17..19], (sod % 60) as u64);
    b
}

fn put_digits(dst: &mut [u8], mut v: u64) {
    for slot in dst.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01 (inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an `xsd:dateTime` as TR-069 peers send it and returns seconds since the epoch (UTC).
///
/// Accepts fractions (`.123`), `Z`, `±hh:mm` offsets and no zone at all (read as UTC), as
/// devices and ACSs send all of these (PROTOCOL.md §11, §13 item 8). Years before 1970 give
/// negative values (`0001-01-01T00:00:00Z` is the Unknown Time).
///
/// # Returns
/// `None` when the text is not a dateTime.
pub fn parse_datetime(s: &str) -> Option<i64> {
    parse_datetime_ms(s).map(|ms| ms.div_euclid(1000))
}

/// [`parse_datetime`] to the millisecond: the fraction's first three digits are kept (GenieACS
/// writes PeriodicInformTime as `1970-01-01T05:23:11.123Z`, and that sub-second phase is the
/// CPE's). Any year from 0000 to 9999 fits, before 1970 too (negative values).
pub fn parse_datetime_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &b[r];
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0i64, |acc, &c| acc * 10 + (c - b'0') as i64))
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 24 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        millis = frac[..n].iter().chain(b"000").take(3).fold(0i64, |acc, &c| acc * 10 + (c - b'0') as i64);
        rest = &frac[n..];
    }
    let offset = match rest {
        b"" | b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let v = ((h1 - b'0') as i64 * 10 + (h2 - b'0') as i64) * 3600 + ((m1 - b'0') as i64 * 10 + (m2 - b'0') as i64) * 60;
            if *sign == b'+' {
                v
            } else {
                -v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset) * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(&format_datetime(UnixMillis(0)), b"1970-01-01T00:00:00Z");
        assert_eq!(&format_datetime(UnixMillis(1_736_936_430_999)), b"2025-01-15T10:20:30Z");
        assert_eq!(&format_datetime(UnixMillis(951_782_400_000)), b"2000-02-29T00:00:00Z");
    }

    #[test]
    fn parses_what_peers_send() {
        assert_eq!(parse_datetime("2025-01-15T10:20:30Z"), Some(1_736_936_430));
        assert_eq!(parse_datetime("1970-01-01T05:23:11.123Z"), Some(5 * 3600 + 23 * 60 + 11));
        assert_eq!(parse_datetime("2025-01-15T12:20:30+02:00"), Some(1_736_936_430));
        assert_eq!(parse_datetime("2025-01-15T10:20:30"), Some(1_736_936_430));
        assert!(parse_datetime(UNKNOWN_TIME).unwrap() < 0);
        assert_eq!(parse_datetime_ms("1970-01-01T05:23:11.123Z"), Some((5 * 3600 + 23 * 60 + 11) * 1000 + 123));
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(parse_datetime_ms("1969-12-31T23:59:59.250Z"), Some(-750));
        assert_eq!(parse_datetime("1969-12-31T23:59:59.250Z"), Some(-1));
        assert_eq!(parse_datetime_ms("2200-01-01T00:00:00Z"), Some(7_258_118_400_000));
        for bad in ["", "2025-01-15", "2025-13-01T00:00:00Z", "2025-01-15T10:20:30.Z", "x025-01-15T10:20:30Z", "2025-01-15T10:20:30+0200"] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_through_civil_days() {
        for days in [-719_162i64, -1, 0, 1, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
