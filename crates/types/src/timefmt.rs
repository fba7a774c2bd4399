//! RFC 3339 timestamp helpers used for every `timestamp`, `created_at` and `updated_at`.

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// The current UTC time as RFC 3339 with second precision (`2024-01-15T10:30:00Z`).
pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

/// Formats a time as RFC 3339 in UTC, truncated to whole seconds.
pub fn format_rfc3339(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Converts Unix seconds (as OpenAI's `created`) to RFC 3339; `None` if out of range.
pub fn unix_to_rfc3339(secs: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .map(format_rfc3339)
}

/// Parses an RFC 3339 timestamp, or a bare `YYYY-MM-DD` / `YYYY-MM` date (as catalogs
/// write release dates), to a UTC time.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let mut parts = s.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = match parts.next() {
        Some(d) => d.parse().ok()?,
        None => 1,
    };
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(date.midnight().assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(unix_to_rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        let t = parse_rfc3339("2024-08-06").expect("date");
        assert_eq!(format_rfc3339(t), "2024-08-06T00:00:00Z");
        let t = parse_rfc3339("2023-04").expect("month");
        assert_eq!(format_rfc3339(t), "2023-04-01T00:00:00Z");
        assert!(parse_rfc3339("yesterday").is_none());
        assert!(parse_rfc3339("2023-13-01").is_none());
        let t = parse_rfc3339("2024-01-15T10:30:00.123+02:00").expect("rfc3339");
        assert_eq!(format_rfc3339(t), "2024-01-15T08:30:00Z");
    }
}
