//! Backoff with full jitter and `Retry-After` parsing (RFC 9110 §10.2.3), shared by token
//! fetches and `send`.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Retry policy for transient failures: exponential backoff with full jitter, and the caps
/// on a server's `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per fetch, the first included (at least 1).
    pub max_attempts: u32,
    /// The first backoff ceiling; doubled per attempt.
    pub base_delay: Duration,
    /// The largest backoff ceiling, and the longest wait inside one call: a `Retry-After`
    /// asking for more ends the call with the error instead of sleeping.
    pub max_delay: Duration,
    /// The longest a transient failure is remembered (answered without asking the server
    /// again), whatever `Retry-After` said.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 250 ms base delay, 10 s maximum delay, `Retry-After` remembered for at
    /// most 120 s.
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// The delay before attempt `attempt + 1` of one call (`attempt` counts from 1): the
/// server's `Retry-After` when it gave one, else a uniformly random delay up to
/// `min(max_delay, base_delay * 2^(attempt-1))` ("full jitter"). `None` when the server
/// asks for more than `max_delay`: the call then ends with the error rather than sleep
/// that long or ask again sooner than the server allows.
pub(crate) fn backoff(
    policy: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    match retry_after {
        Some(hint) if hint > policy.max_delay => None,
        Some(hint) => Some(hint),
        None => Some(jittered(policy, attempt)),
    }
}

/// How long a transient failure (the `failures`-th in a row) is remembered: the server's
/// `Retry-After`, else a backoff, never more than `max_retry_after`.
pub(crate) fn failure_memory(
    policy: &RetryPolicy,
    failures: u32,
    retry_after: Option<Duration>,
) -> Duration {
    retry_after
        .unwrap_or_else(|| jittered(policy, failures))
        .min(policy.max_retry_after)
}

fn jittered(policy: &RetryPolicy, attempt: u32) -> Duration {
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
/// A date in the past means "now"; a number too large for a `u64` saturates. The hint is
/// returned as the server gave it: callers cap it ([`backoff`], [`failure_memory`]). Any
/// input is safe: nothing here can overflow.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let at = parse_http_date(value)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the Unix epoch for an HTTP-date, in any of the three formats RFC 9110
/// §5.6.7 says a recipient must accept. Years outside 1970–9999 are not HTTP dates.
pub(crate) fn parse_http_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let (day, month, year, time) = match parts.as_slice() {
        // Sun, 06 Nov 1994 08:49:37 GMT
        [_, d, m, y, t, "GMT"] => (number(d)?, *m, number(y)?, *t),
        // Sunday, 06-Nov-94 08:49:37 GMT
        [_, dmy, t, "GMT"] => {
            let mut it = dmy.split('-');
            let (d, m, y) = (it.next()?, it.next()?, it.next()?);
            let y = number(y)?;
            // RFC 9110: a two-digit year more than 50 years in the future is in the past.
            let y = match y {
                0..=69 => 2000 + y,
                70..=99 => 1900 + y,
                y => y,
            };
            (number(d)?, m, y, *t)
        }
        // Sun Nov  6 08:49:37 1994
        [_, m, d, t, y] => (number(d)?, *m, number(y)?, *t),
        _ => return None,
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m.eq_ignore_ascii_case(month))? as u64
        + 1;
    let mut hms = time.split(':').map(number);
    let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some()
        || !(1..=31).contains(&day)
        || h > 23
        || mi > 59
        || sec > 60
        || !(1970..=9999).contains(&year)
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// A field of at most 4 ASCII digits (every numeric field of an HTTP date fits), so no
/// arithmetic on it can overflow.
fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm), for
/// years 1970–9999.
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
    fn retry_after_seconds_past_dates_and_huge_values() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999"),
            Some(Duration::from_secs(99_999_999))
        );
        assert_eq!(
            parse_retry_after("999999999999999999999999999999"),
            Some(Duration::from_secs(u64::MAX)),
            "saturates"
        );
        assert!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT").unwrap()
                > Duration::from_secs(1 << 37)
        );
        for garbage in [
            "-1",
            "soon",
            "+5",
            "1.5",
            "",
            "Sun, 06 Nov 18446744073709551615 08:49:37 GMT",
            "Sun, 06 Nov 10000 08:49:37 GMT",
            "Sun, 18446744073709551615 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 18446744073709551615:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sunday, 06-Nov-18446744073709551615 08:49:37 GMT",
            "Sun Nov  6 08:49:37 18446744073709551615",
            "Sun, 06 Nov 1969 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(garbage), None, "{garbage:?}");
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(2),
        }
    }

    #[test]
    fn backoff_is_bounded_by_the_doubling_ceiling() {
        let p = policy();
        for _ in 0..200 {
            assert!(backoff(&p, 1, None).unwrap() < Duration::from_millis(100));
            assert!(backoff(&p, 2, None).unwrap() < Duration::from_millis(200));
            assert!(backoff(&p, 40, None).unwrap() < Duration::from_millis(300));
        }
        let hint = |ms| Some(Duration::from_millis(ms));
        assert_eq!(
            backoff(&p, 1, hint(250)),
            hint(250),
            "a hint within max_delay"
        );
        assert_eq!(backoff(&p, 1, hint(301)), None, "longer: the call ends now");
    }

    #[test]
    fn a_remembered_failure_is_capped() {
        let p = policy();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(failure_memory(&p, 1, secs(1)), Duration::from_secs(1));
        assert_eq!(failure_memory(&p, 1, secs(86_400)), Duration::from_secs(2));
        assert_eq!(
            failure_memory(&p, 1, secs(u64::MAX)),
            Duration::from_secs(2)
        );
        assert!(failure_memory(&p, 3, None) < Duration::from_millis(300));
    }

    /// A deterministic xorshift generator: every run checks the same cases, and the
    /// property test needs no dependency.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const EXTREME_NUMBERS: &[&str] = &[
        "0",
        "00",
        "1",
        "6",
        "06",
        "9",
        "31",
        "32",
        "59",
        "60",
        "61",
        "99",
        "1969",
        "1970",
        "1994",
        "2038",
        "9999",
        "10000",
        "65535",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999999999",
        "-1",
        "+1",
        "",
        " ",
        "1e9",
        "0x10",
        "٣",
        "１",
    ];
    const WORDS: &[&str] = &[
        "Sun,", "Sunday,", "Sun", "Nov", "nov", "NOV", "Feb", "Foo", "GMT", "UTC", "gmt", ",", ":",
        "-", "  ", "\t", "é", "\u{0}", "\u{7f}", "💥",
    ];

    fn arbitrary_retry_after(g: &mut Gen) -> String {
        let n = |g: &mut Gen| g.pick(EXTREME_NUMBERS).to_string();
        match g.below(5) {
            0 => {
                let len = g.below(12);
                (0..len)
                    .map(|_| {
                        if g.below(2) == 0 {
                            n(g)
                        } else {
                            g.pick(WORDS).to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(if g.below(2) == 0 { " " } else { "" })
            }
            1 => format!(
                "Sun, {} {} {} {}:{}:{} GMT",
                n(g),
                g.pick(&["Nov", "Feb", "Xyz", "nov"]),
                n(g),
                n(g),
                n(g),
                n(g)
            ),
            2 => format!(
                "Sunday, {}-{}-{} {}:{}:{} GMT",
                n(g),
                g.pick(&["Nov", "Jan"]),
                n(g),
                n(g),
                n(g),
                n(g)
            ),
            3 => format!(
                "Sun {} {} {}:{}:{} {}",
                g.pick(&["Nov", "Dec"]),
                n(g),
                n(g),
                n(g),
                n(g),
                n(g)
            ),
            _ => {
                // A valid date or number with one character changed, removed or added.
                let mut s: Vec<char> = g
                    .pick(&[
                        "Sun, 06 Nov 1994 08:49:37 GMT",
                        "Sun Nov  6 08:49:37 1994",
                        "120",
                    ])
                    .chars()
                    .collect();
                let at = g.below(s.len());
                let ch = g
                    .pick(&["9", "0", " ", ":", "-", "x", "é"])
                    .chars()
                    .next()
                    .unwrap();
                match g.below(3) {
                    0 => s[at] = ch,
                    1 => {
                        s.remove(at);
                    }
                    _ => s.insert(at, ch),
                }
                s.into_iter().collect()
            }
        }
    }

    #[test]
    fn any_retry_after_is_parsed_without_panic_and_capped() {
        let p = policy();
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        for case in 0..30_000 {
            let value = arbitrary_retry_after(&mut g);
            let hint = parse_retry_after(&value);
            let attempt = (case % 40) as u32;
            if let Some(wait) = backoff(&p, attempt, hint) {
                assert!(wait <= p.max_delay, "{value:?} waits {wait:?} in a call");
            }
            let remembered = failure_memory(&p, attempt, hint);
            assert!(
                remembered <= p.max_retry_after,
                "{value:?} remembered {remembered:?}"
            );
        }
    }

    #[test]
    fn random_unit_spreads_over_the_interval() {
        let xs: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(xs.iter().any(|x| *x < 0.1) && xs.iter().any(|x| *x > 0.9));
    }
}
