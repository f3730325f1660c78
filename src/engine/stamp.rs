//! stamp: the UTC time that names a versions folder,
//! `2026-11-25T11-03-29.123456Z`. Sorts as text in time order, has no colon
//! (legal on every file system), and reads as a date in a file manager.

use jiff::Timestamp;

/// Formats a timestamp as a version folder name (microseconds).
pub fn format(t: Timestamp) -> String {
    let dt = t.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}.{:06}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 1000
    )
}

/// Parses a version folder name back; `None` for anything else.
pub fn parse(name: &str) -> Option<Timestamp> {
    let b = name.as_bytes();
    if b.len() != 27 || b[10] != b'T' || b[26] != b'Z' || b[19] != b'.' {
        return None;
    }
    let iso = format!(
        "{}T{}:{}:{}.{}Z",
        &name[0..10],
        &name[11..13],
        &name[14..16],
        &name[17..19],
        &name[20..26]
    );
    iso.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t: Timestamp = "2026-11-25T11:03:29.123456Z".parse().unwrap();
        let s = format(t);
        assert_eq!(s, "2026-11-25T11-03-29.123456Z");
        assert_eq!(parse(&s), Some(t));
        assert_eq!(parse("junk"), None);
        assert_eq!(parse("2026-11-25T11-03-29.123456"), None);
    }

    #[test]
    fn sorts_as_text() {
        let a = format("2026-01-02T03:04:05Z".parse().unwrap());
        let b = format("2026-01-02T03:04:05.000001Z".parse().unwrap());
        assert!(a < b);
    }
}
