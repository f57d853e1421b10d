//! Timestamps (nanoseconds since the Unix epoch, UTC), calendar months, and the parsing and
//! printing of times and durations given by users.
//!
//! The whole `i64` nanosecond range (1677-09-21 to 2262-04-11) is valid; every month in it
//! has a four-digit year, so month directory names sort lexicographically.

use crate::error::{Error, Result};
use std::fmt;
use std::time::Duration;

/// Nanoseconds per second.
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
/// Nanoseconds in an hour.
pub const NANOS_PER_HOUR: i64 = 3_600 * NANOS_PER_SECOND;
/// Nanoseconds in a (UTC) day.
pub const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SECOND;

/// Start of the UTC day holding `ts`.
pub(crate) fn day_start(ts: i64) -> i64 {
    ts.div_euclid(NANOS_PER_DAY).saturating_mul(NANOS_PER_DAY)
}

/// A half-open time range `[start, end)` in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// First included nanosecond.
    pub start: i64,
    /// First excluded nanosecond.
    pub end: i64,
}

impl TimeRange {
    /// Every representable time.
    pub const ALL: TimeRange = TimeRange {
        start: i64::MIN,
        end: i64::MAX,
    };

    /// The range `[start, end)`.
    pub fn new(start: i64, end: i64) -> TimeRange {
        TimeRange { start, end }
    }

    /// True when `ts` lies in the range.
    pub fn contains(&self, ts: i64) -> bool {
        ts >= self.start && ts < self.end
    }

    /// True when the closed interval `[min, max]` meets the range.
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        min < self.end && max >= self.start
    }

    /// True when the range holds no time at all.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

/// Current wall-clock time in nanoseconds since the epoch.
///
/// Only front ends (the CLI, a missing line-protocol timestamp) read the clock; the storage
/// engine takes times as arguments.
pub fn now_ns() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}

/// The clock the store's lifecycle decisions read (which months are sealed, what has
/// outlived retention). Tests inject a fixed or simulated one.
///
/// ```
/// use annals::time::Clock;
/// let clock = Clock::fixed(1_700_000_000_000_000_000);
/// assert_eq!(clock.now_ns(), 1_700_000_000_000_000_000);
/// ```
#[derive(Clone)]
pub struct Clock(std::sync::Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock(std::sync::Arc::new(now_ns))
    }

    /// A clock that always reads `ns`.
    pub fn fixed(ns: i64) -> Clock {
        Clock(std::sync::Arc::new(move || ns))
    }

    /// A clock read through `f` (for simulated timelines).
    pub fn from_fn(f: impl Fn() -> i64 + Send + Sync + 'static) -> Clock {
        Clock(std::sync::Arc::new(f))
    }

    /// Nanoseconds since the epoch.
    pub fn now_ns(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(now = {})", format_rfc3339(self.now_ns()))
    }
}

/// A calendar month in UTC: the unit of partitioning on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// Months since January of year 0 (`year * 12 + month - 1`).
    index: i32,
}

impl Month {
    /// The month `year-month` (month 1..=12).
    pub fn new(year: i32, month: u32) -> Option<Month> {
        if !(1..=12).contains(&month) {
            return None;
        }
        let m = Month {
            index: year.checked_mul(12)?.checked_add(month as i32 - 1)?,
        };
        // Only months that hold at least one representable nanosecond are valid.
        if m < Month::of(i64::MIN) || m > Month::of(i64::MAX) {
            return None;
        }
        Some(m)
    }

    /// The month containing `ts`.
    pub fn of(ts: i64) -> Month {
        let days = ts.div_euclid(NANOS_PER_DAY);
        let (y, m, _) = civil_from_days(days);
        Month {
            index: (y as i32) * 12 + (m as i32 - 1),
        }
    }

    /// The month's ordinal (`year * 12 + month - 1`), as stored on disk.
    pub fn index(self) -> i32 {
        self.index
    }

    /// Rebuilds a month from [`Month::index`]; `None` outside the timestamp range.
    pub fn from_index(index: i32) -> Option<Month> {
        Month::new(index.div_euclid(12), index.rem_euclid(12) as u32 + 1)
    }

    /// Calendar year.
    pub fn year(self) -> i32 {
        self.index.div_euclid(12)
    }

    /// Calendar month, 1..=12.
    pub fn month(self) -> u32 {
        self.index.rem_euclid(12) as u32 + 1
    }

    /// First nanosecond of the month, clamped to the representable range.
    pub fn start_ns(self) -> i64 {
        let days = days_from_civil(self.year() as i64, self.month(), 1);
        days.saturating_mul(NANOS_PER_DAY)
    }

    /// First nanosecond after the month (exclusive end), clamped to `i64::MAX`.
    pub fn end_ns(self) -> i64 {
        let next = Month { index: self.index + 1 };
        let days = days_from_civil(next.year() as i64, next.month(), 1);
        days.checked_mul(NANOS_PER_DAY).unwrap_or(i64::MAX)
    }

    /// The month's time range.
    pub fn range(self) -> TimeRange {
        TimeRange::new(self.start_ns(), self.end_ns())
    }

    /// The next month.
    pub fn next(self) -> Month {
        Month { index: self.index + 1 }
    }

    /// Parses `YYYY-MM`.
    pub fn parse(text: &str) -> Option<Month> {
        let (y, m) = text.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        Month::new(y.parse().ok()?, m.parse().ok()?)
    }
}

impl fmt::Display for Month {
    /// `YYYY-MM`, the month's directory name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

/// Days since 1970-01-01 to (year, month, day). Howard Hinnant's `civil_from_days`.
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

/// (year, month, day) to days since 1970-01-01. Howard Hinnant's `days_from_civil`.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats a timestamp as RFC 3339 in UTC with as many fractional digits as needed
/// (`2016-01-01T00:00:10Z`, `2016-01-01T00:00:10.25Z`).
pub fn format_rfc3339(ts: i64) -> String {
    let days = ts.div_euclid(NANOS_PER_DAY);
    let rem = ts.rem_euclid(NANOS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / NANOS_PER_SECOND;
    let nanos = rem % NANOS_PER_SECOND;
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Units for integer timestamps in line protocol and JSON input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Nanoseconds (the line-protocol default).
    #[default]
    Nanoseconds,
    /// Microseconds.
    Microseconds,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// Minutes (Influx 1.x's `precision=m`).
    Minutes,
    /// Hours (Influx 1.x's `precision=h`).
    Hours,
}

impl Precision {
    /// Nanoseconds per unit.
    pub fn nanos(self) -> i64 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => NANOS_PER_SECOND,
            Precision::Minutes => 60 * NANOS_PER_SECOND,
            Precision::Hours => 3600 * NANOS_PER_SECOND,
        }
    }

    /// Scales an integer timestamp in this unit to nanoseconds; `None` when it does not fit.
    pub fn to_nanos(self, value: i64) -> Option<i64> {
        value.checked_mul(self.nanos())
    }

    /// The unit's name as [`Precision::parse`] takes it: `ns`, `us`,
    /// `ms`, `s`, `m` or `h`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Nanoseconds => "ns",
            Precision::Microseconds => "us",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
            Precision::Minutes => "m",
            Precision::Hours => "h",
        }
    }

    /// Parses `ns`, `us`, `ms`, `s`, `m` or `h` (also `n`, `u`, `µs`: the names of
    /// Influx 1.x's `precision`).
    pub fn parse(text: &str) -> Option<Precision> {
        Some(match text {
            "ns" | "n" => Precision::Nanoseconds,
            "us" | "u" | "µs" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            _ => return None,
        })
    }
}

/// Parses a time given by a user, relative to `now` (nanoseconds).
///
/// Accepted forms: RFC 3339 (`2016-01-01T00:00:00Z`, `2016-01-01T01:00:00+01:00`,
/// fractional seconds allowed), a date-time without offset taken as UTC
/// (`2016-01-01T00:00:00`, `2016-01-01 00:00:00`), a date (`2016-01-01`), a month
/// (`2016-01`), an integer of nanoseconds since the epoch, `now`, and `now-1h` / `-1h` style
/// offsets (see [`parse_duration`]).
///
/// ```
/// let t = annals::time::parse_time("2016-01-01T00:00:10Z", 0).unwrap();
/// assert_eq!(t, 1_451_606_410_000_000_000);
/// assert_eq!(annals::time::parse_time("now-10s", t).unwrap(), t - 10_000_000_000);
/// ```
pub fn parse_time(text: &str, now: i64) -> Result<i64> {
    let text = text.trim();
    let bad = |why: &str| {
        Error::invalid(format!(
            "cannot read time {text:?}: {why} (use RFC 3339 like 2016-01-01T00:00:00Z, a date, \
             nanoseconds since the epoch, or now-1h)"
        ))
    };
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if let Some(rest) = text.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now);
        }
        return offset_from(now, rest).ok_or_else(|| bad("bad offset after now"));
    }
    if text.starts_with('-')
        && text[1..].starts_with(|c: char| c.is_ascii_digit())
        && let Some(t) = offset_from(now, text)
    {
        return Ok(t);
    }
    if text.bytes().all(|b| b.is_ascii_digit())
        || (text.starts_with('-') && text.len() > 1 && text[1..].bytes().all(|b| b.is_ascii_digit()))
    {
        return text.parse::<i64>().map_err(|_| bad("integer out of range"));
    }
    if let Some(m) = Month::parse(text) {
        return Ok(m.start_ns());
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return dt
            .timestamp_nanos_opt()
            .ok_or_else(|| bad("outside the representable range 1677..2262"));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return dt
                .and_utc()
                .timestamp_nanos_opt()
                .ok_or_else(|| bad("outside the representable range 1677..2262"));
        }
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .and_then(|dt| dt.and_utc().timestamp_nanos_opt())
            .ok_or_else(|| bad("outside the representable range 1677..2262"));
    }
    Err(bad("unrecognised format"))
}

fn offset_from(now: i64, rest: &str) -> Option<i64> {
    let (sign, amount) = match rest.as_bytes().first()? {
        b'-' => (-1i64, &rest[1..]),
        b'+' => (1i64, &rest[1..]),
        _ => return None,
    };
    let d = parse_duration(amount).ok()?;
    let ns = i64::try_from(d.as_nanos()).ok()?;
    now.checked_add(sign * ns)
}

/// Parses a duration such as `10s`, `5m`, `1h30m`, `7d`, `2w`, `250ms`, `1500us`, `10ns`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(annals::time::parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = |why: &str| Error::invalid(format!("cannot read duration {text:?}: {why} (use e.g. 10s, 5m, 1h, 7d)"));
    let mut total: u128 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let value: u128 = rest[..digits].parse().map_err(|_| bad("number too large"))?;
        rest = &rest[digits..];
        let unit_len: usize = rest
            .chars()
            .take_while(|c| c.is_ascii_alphabetic() || *c == 'µ')
            .map(char::len_utf8)
            .sum();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            "w" => 604_800_000_000_000,
            "" => return Err(bad("missing unit")),
            _ => return Err(bad("unknown unit")),
        };
        total = value
            .checked_mul(nanos)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| bad("too large"))?;
    }
    if total > i64::MAX as u128 {
        return Err(bad("too large"));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// Time buckets for `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Fixed-length buckets aligned to the Unix epoch (nanoseconds). `1d` is a UTC day.
    Fixed(i64),
    /// ISO weeks, Monday 00:00 UTC to Monday.
    Week,
    /// Calendar months in UTC.
    Month,
}

impl Bucket {
    /// Parses a duration (`10s`, `5m`, `1h`, `1d`) or `day`, `week`, `month`.
    pub fn parse(text: &str) -> Result<Bucket> {
        match text.trim().to_ascii_lowercase().as_str() {
            "day" | "daily" => return Ok(Bucket::Fixed(NANOS_PER_DAY)),
            "week" | "weekly" => return Ok(Bucket::Week),
            "month" | "monthly" => return Ok(Bucket::Month),
            _ => {}
        }
        let d = parse_duration(text)?;
        let ns = i64::try_from(d.as_nanos()).map_err(|_| Error::invalid("bucket too long"))?;
        if ns <= 0 {
            return Err(Error::invalid("a time bucket must be longer than zero"));
        }
        Ok(Bucket::Fixed(ns))
    }

    /// Start of the bucket holding `ts`.
    pub fn start(&self, ts: i64) -> i64 {
        match *self {
            Bucket::Fixed(d) => ts.div_euclid(d).saturating_mul(d),
            Bucket::Week => {
                // 1970-01-01 was a Thursday: Mondays are days ≡ 4 (mod 7).
                let day = ts.div_euclid(NANOS_PER_DAY);
                (day - (day - 4).rem_euclid(7)).saturating_mul(NANOS_PER_DAY)
            }
            Bucket::Month => Month::of(ts).start_ns(),
        }
    }

    /// Start of the bucket after the one starting at `start`.
    pub fn next(&self, start: i64) -> i64 {
        match *self {
            Bucket::Fixed(d) => start.saturating_add(d),
            Bucket::Week => start.saturating_add(7 * NANOS_PER_DAY),
            Bucket::Month => Month::of(start).end_ns(),
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bucket::Fixed(ns) => write!(f, "{ns}ns"),
            Bucket::Week => f.write_str("week"),
            Bucket::Month => f.write_str("month"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_the_whole_range() {
        let lo = i64::MIN.div_euclid(NANOS_PER_DAY);
        let hi = i64::MAX.div_euclid(NANOS_PER_DAY);
        let mut d = lo;
        while d <= hi {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d, "day {d}");
            d += 13;
        }
    }

    #[test]
    fn months_partition_time() {
        let jan = Month::parse("2016-01").unwrap();
        assert_eq!(jan.start_ns(), 1_451_606_400_000_000_000);
        assert_eq!(Month::of(jan.start_ns()), jan);
        assert_eq!(Month::of(jan.end_ns() - 1), jan);
        assert_eq!(Month::of(jan.end_ns()), jan.next());
        assert_eq!(jan.to_string(), "2016-01");
        assert_eq!(Month::of(-1).to_string(), "1969-12");
        assert_eq!(Month::of(i64::MIN).to_string(), "1677-09");
        assert_eq!(Month::of(i64::MAX).to_string(), "2262-04");
        assert_eq!(Month::of(i64::MAX).end_ns(), i64::MAX);
        assert!(Month::new(2262, 5).is_none());
        assert!(Month::from_index(Month::of(0).index()).is_some());
        let dec = Month::parse("2015-12").unwrap();
        assert_eq!(dec.next(), jan);
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_451_606_410_250_000_000), "2016-01-01T00:00:10.25Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(format_rfc3339(i64::MIN), "1677-09-21T00:12:43.145224192Z");
    }

    #[test]
    fn time_parsing() {
        let now = 1_000 * NANOS_PER_SECOND;
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(parse_time("now-1m", now).unwrap(), now - 60 * NANOS_PER_SECOND);
        assert_eq!(parse_time("-1h", now).unwrap(), now - 3600 * NANOS_PER_SECOND);
        assert_eq!(parse_time("12345", now).unwrap(), 12345);
        assert_eq!(parse_time("2016-01-01", now).unwrap(), 1_451_606_400_000_000_000);
        assert_eq!(parse_time("2016-01", now).unwrap(), 1_451_606_400_000_000_000);
        assert_eq!(parse_time("2016-01-01T00:00:01Z", now).unwrap(), 1_451_606_401_000_000_000);
        assert_eq!(parse_time("2016-01-01T01:00:01+01:00", now).unwrap(), 1_451_606_401_000_000_000);
        assert_eq!(parse_time("2016-01-01 00:00:01.5", now).unwrap(), 1_451_606_401_500_000_000);
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("3000-01-01", now).is_err());
        assert!(parse_time("", now).is_err());
    }

    #[test]
    fn duration_parsing() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2w").unwrap(), Duration::from_secs(14 * 86400));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("999999999999w").is_err());
        assert_eq!(parse_duration("3µs").unwrap(), Duration::from_micros(3));
        // A unit that starts with the first byte of µ but is another character (fuzz).
        assert!(parse_duration("5\u{a0}").is_err());
    }

    #[test]
    fn buckets_align_to_calendars() {
        let monday = parse_time("2016-01-04", 0).unwrap();
        let wednesday = parse_time("2016-01-06T12:00:00Z", 0).unwrap();
        assert_eq!(Bucket::Week.start(wednesday), monday);
        assert_eq!(Bucket::Week.start(monday), monday);
        assert_eq!(Bucket::Week.start(monday - 1), monday - 7 * NANOS_PER_DAY);
        assert_eq!(Bucket::Month.start(wednesday), parse_time("2016-01", 0).unwrap());
        assert_eq!(
            Bucket::Month.next(Bucket::Month.start(wednesday)),
            parse_time("2016-02", 0).unwrap()
        );
        assert_eq!(Bucket::parse("1m").unwrap().start(61 * NANOS_PER_SECOND), 60 * NANOS_PER_SECOND);
        assert_eq!(Bucket::parse("1m").unwrap().start(-1), -60 * NANOS_PER_SECOND);
        assert_eq!(Bucket::parse("day").unwrap(), Bucket::Fixed(NANOS_PER_DAY));
        assert!(Bucket::parse("0s").is_err());
    }
}
