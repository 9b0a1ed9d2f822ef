//! Backoff with full jitter and `Retry-After` parsing (RFC 9110 §10.2.3), shared by token
//! fetches and `send`.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Retry policy for transient failures: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per fetch, the first included (at least 1).
    pub max_attempts: u32,
    /// The first backoff ceiling; doubled per attempt.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
}

/// The delay before attempt `attempt + 1` (`attempt` counts from 1): the server's
/// `Retry-After` when it gave one, else a uniformly random delay up to
/// `min(max_delay, base_delay * 2^(attempt-1))` ("full jitter").
pub(crate) fn backoff(
    policy: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    if let Some(hint) = retry_after {
        return hint;
    }
    let ceiling = policy
        .base_delay
        .saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        )
        .min(policy.max_delay);
    ceiling.mul_f64(random_unit())
}

/// A uniformly distributed number in [0, 1), from a per-thread xorshift generator seeded
/// by the standard library's random hasher keys. Only for jitter; never for secrets.
pub(crate) fn random_unit() -> f64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0));
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// Parse `Retry-After`: delay-seconds, or an HTTP-date (IMF-fixdate, RFC 850, asctime).
/// A date in the past means "now". Capped at one day so a bogus header cannot park a client.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let cap = Duration::from_secs(86_400);
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(cap));
    }
    let at = parse_http_date(value)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)).min(cap))
}

/// Seconds since the Unix epoch for an HTTP-date, in any of the three formats RFC 9110
/// §5.6.7 says a recipient must accept.
pub(crate) fn parse_http_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let (day, month, year, time) = match parts.as_slice() {
        // Sun, 06 Nov 1994 08:49:37 GMT
        [_, d, m, y, t, "GMT"] => (d.parse().ok()?, *m, y.parse().ok()?, *t),
        // Sunday, 06-Nov-94 08:49:37 GMT
        [_, dmy, t, "GMT"] => {
            let mut it = dmy.split('-');
            let (d, m, y) = (it.next()?, it.next()?, it.next()?);
            let y: u64 = y.parse().ok()?;
            // RFC 9110: a two-digit year more than 50 years in the future is in the past.
            let y = if y < 100 {
                if y < 70 {
                    2000 + y
                } else {
                    1900 + y
                }
            } else {
                y
            };
            (d.parse().ok()?, m, y, *t)
        }
        // Sun Nov  6 08:49:37 1994
        [_, m, d, t, y] => (d.parse().ok()?, *m, y.parse().ok()?, *t),
        _ => return None,
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m.eq_ignore_ascii_case(month))? as u64
        + 1;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 || year < 1970 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_in_all_three_formats() {
        let expect = 784_111_777; // 1994-11-06T08:49:37Z
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(expect)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(expect)
        );
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(expect));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn retry_after_seconds_past_dates_and_cap() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_is_bounded_by_the_doubling_ceiling() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        for _ in 0..200 {
            assert!(backoff(&p, 1, None) < Duration::from_millis(100));
            assert!(backoff(&p, 2, None) < Duration::from_millis(200));
            assert!(backoff(&p, 40, None) < Duration::from_millis(300));
        }
        assert_eq!(
            backoff(&p, 1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn random_unit_spreads_over_the_interval() {
        let xs: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(xs.iter().any(|x| *x < 0.1) && xs.iter().any(|x| *x > 0.9));
    }
}
