//! Days in the company's time zone (IANA names via chrono-tz): the console's
//! "today", the timeline's day and the statistics' per-day buckets.

use chrono::{Days, NaiveDate, TimeZone};
use chrono_tz::Tz;

pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| format!("unknown time zone {name:?} (use an IANA name such as Asia/Shanghai)"))
}

/// `[start, end)` of `date` in `tz`, in UTC milliseconds.
pub fn day_bounds(tz: Tz, date: NaiveDate) -> (i64, i64) {
    let start_of = |d: NaiveDate| {
        let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        // A zone whose midnight is skipped (DST at 00:00) starts the day at the first valid instant.
        tz.from_local_datetime(&midnight)
            .earliest()
            .or_else(|| tz.from_local_datetime(&(midnight + chrono::Duration::hours(1))).earliest())
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(|| midnight.and_utc().timestamp_millis())
    };
    (start_of(date), start_of(date.checked_add_days(Days::new(1)).unwrap_or(date)))
}

/// The company's date at `ms`.
pub fn date_at(tz: Tz, ms: i64) -> NaiveDate {
    tz.timestamp_millis_opt(ms).single().map(|t| t.date_naive()).unwrap_or_default()
}

pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("bad date {s:?}: use YYYY-MM-DD"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_and_dst_days() {
        let sh = parse_tz("Asia/Shanghai").unwrap();
        let (s, e) = day_bounds(sh, parse_date("2026-11-29").unwrap());
        assert_eq!(s, 1_795_881_600_000); // 2026-11-28T16:00:00Z
        assert_eq!(e - s, 86_400_000);
        assert_eq!(date_at(sh, s), parse_date("2026-11-29").unwrap());
        assert_eq!(date_at(sh, s - 1), parse_date("2026-11-28").unwrap());
        // A DST change makes a 23-hour day.
        let berlin = parse_tz("Europe/Berlin").unwrap();
        let (s, e) = day_bounds(berlin, parse_date("2026-03-29").unwrap());
        assert_eq!(e - s, 23 * 3_600_000);
        assert!(parse_tz("Mars/Olympus").is_err());
    }
}
