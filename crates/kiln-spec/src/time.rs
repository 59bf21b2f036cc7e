//! Time as Kiln writes it: RFC 3339 UTC with milliseconds, fixed width, so text order is time
//! order (registry rows, manifests). Civil-from-days arithmetic: no time-zone database needed.

/// (year, month, day) of a day count since 1970-01-01.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(mo <= 2), mo, d)
}

/// `2026-11-23T10:34:56.789Z`.
pub fn format_millis(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, mo, d) = civil((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
        ms % 1000
    )
}

/// `Mon, 23 Nov 2026 10:34:56 GMT` (RFC 1123, as HTTP date headers want it).
pub fn http_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (y, mo, d) = civil(days);
    let rem = secs % 86_400;
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(mo - 1) as usize];
    format!(
        "{wd}, {d:02} {mon} {y:04} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses a duration written as a number and a unit (`90s`, `30m`, `12h`, `7d`, `2w`) into
/// seconds. One unit, no fractions: retention and grace periods do not need more.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad =
        || format!("duration `{s}` must be a number and a unit: s, m, h, d or w (like \"7d\")");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.mmm]Z` back to milliseconds.
pub fn parse_millis(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let ms = match s.get(19..) {
        Some("Z") => 0,
        Some(rest) if rest.starts_with('.') && rest.ends_with('Z') => {
            rest[1..rest.len() - 1].parse::<i64>().ok()?
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let (y2, m2) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs * 1000 + ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_795_430_096), "Mon, 23 Nov 2026 10:34:56 GMT");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("2w"), Ok(1_209_600));
        for bad in [
            "",
            "7",
            "d",
            "7 d",
            "7days",
            "-1d",
            "1.5h",
            "99999999999999999999w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn round_trip() {
        for ms in [0, 951_782_400_123, 1_795_430_096_789] {
            assert_eq!(parse_millis(&format_millis(ms)), Some(ms));
        }
        assert_eq!(format_millis(1_795_430_096_789), "2026-11-23T10:34:56.789Z");
        assert_eq!(
            parse_millis("2026-11-23T10:34:56Z"),
            Some(1_795_430_096_000)
        );
        assert_eq!(parse_millis("yesterday"), None);
    }
}
