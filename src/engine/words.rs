//! words: numbers, sizes and the pairs' names as a person reads them, the
//! same in the tray, the page, `mirrortray status` and the log.
use std::path::Path;

use super::error::show;

/// A count with thousands separated: "3,000".
pub fn count_text(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A size for people, in decimal units as file managers show them:
/// "512 bytes", "1.6 MB", "120 MB".
pub fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return match n {
            1 => "1 byte".into(),
            n => format!("{n} bytes"),
        };
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.5 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if v < 9.95 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

/// A time as the tray writes it: "14:02" on `now`'s day, "1 Jun 09:05"
/// before (in `now`'s zone).
pub fn clock(t: jiff::Timestamp, now: &jiff::ZonedDateTime) -> String {
    let t = t.to_zoned_datetime(now.time_zone().clone());
    if t.date() == now.date() {
        t.strftime("%H:%M").to_string()
    } else {
        t.strftime("%-d %b %H:%M").to_string()
    }
}

/// What thinning took of one path, for people (`None`: nothing): "2 older
/// versions, from A to B, were thinned as they aged (…)". `time` writes a
/// time as the caller shows times.
pub fn thinned_text(
    times: &[jiff::Timestamp],
    time: impl Fn(jiff::Timestamp) -> String,
) -> Option<String> {
    let (a, b) = (times.first()?, times.last()?);
    let what = match times.len() {
        1 => format!("1 older version, from {}, was", time(*a)),
        n => format!(
            "{n} older versions, from {} to {}, were",
            time(*a),
            time(*b)
        ),
    };
    Some(format!(
        "{what} thinned as they aged (one kept per hour, day or week)."
    ))
}

/// `path` with the home folder written as `~`.
pub fn tilde(path: &Path, home: Option<&Path>) -> String {
    if let Some(home) = home.filter(|h| h.components().count() > 1) {
        if path == home {
            return "~".into();
        }
        if let Ok(rest) = path.strip_prefix(home) {
            return format!("~/{}", show(rest));
        }
    }
    show(path)
}

/// Names for the pairs (tray menu, page): the source folder's name, or its
/// `~` path where two pairs would share a name.
pub fn pair_names<'a>(srcs: impl Iterator<Item = &'a Path>, home: Option<&Path>) -> Vec<String> {
    let srcs: Vec<&Path> = srcs.collect();
    let base = |p: &Path| {
        p.file_name()
            .map(|n| show(Path::new(n)))
            .unwrap_or_else(|| tilde(p, home))
    };
    srcs.iter()
        .map(|p| {
            let b = base(p);
            if srcs.iter().filter(|q| base(q) == b).count() > 1 {
                tilde(p, home)
            } else {
                b
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts_for_people() {
        let cases = [
            (0, "0 bytes"),
            (1, "1 byte"),
            (999, "999 bytes"),
            (1000, "1.0 kB"),
            (1_600_000, "1.6 MB"),
            (9_960_000, "10 MB"),
            (120_000_000, "120 MB"),
            (999_600_000, "1.0 GB"),
            (3_000_000_000_000, "3.0 TB"),
        ];
        for (n, want) in cases {
            assert_eq!(bytes_text(n), want, "{n}");
        }
        for (n, want) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1234567, "1,234,567"),
        ] {
            assert_eq!(count_text(n), want);
        }
    }
}
