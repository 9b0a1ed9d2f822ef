//! The mock's wall clock: the machine's clock shifted by the configured skew, as a server
//! whose clock is off would see it, and HTTP dates (RFC 9110 §5.6.7 IMF-fixdate) on it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch on the mock's clock (the machine's plus `skew_secs`), with
/// the fraction: expiry checks compare this with a whole-second `exp`.
pub fn unix_now(skew_secs: i64) -> f64 {
    let machine = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    };
    machine + skew_secs as f64
}

/// Whole seconds on the mock's clock, rounded down (what `iat` says); never negative.
pub fn unix_secs(skew_secs: i64) -> u64 {
    unix_now(skew_secs).floor().max(0.0) as u64
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for Unix seconds `secs`.
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let time = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn skew_moves_the_clock() {
        let base = unix_now(0);
        let ahead = unix_now(3600);
        assert!(ahead - base >= 3599.0 && ahead - base < 3700.0);
        assert_eq!(unix_secs(-i64::MAX / 2), 0, "never before the epoch");
    }
}
