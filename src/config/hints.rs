//! The known keys, the parameters tokenward reserves, and "did you mean" suggestions.

pub(super) const KNOWN_KEYS: &[&str] = &[
    "token_url",
    "issuer",
    "client_id",
    "client_secret",
    "client_secret_file",
    "client_secret_env",
    "auth_method",
    "private_key_file",
    "private_key_id",
    "scope",
    "audience",
    "resource",
    "extra_params",
    "headers",
    "api_base_urls",
    "refresh_before_secs",
    "default_lifetime_secs",
    "error_cooldown_ms",
    "refresh_mode",
    "timeouts",
    "retry",
    "tls",
    "proxy",
    "allow_http",
    "graphql_auth_errors",
    "rate_limit",
    "max_response_bytes",
    "environment",
    "environments",
];

/// Form parameters tokenward sets itself; `extra_params` may not override them.
pub(super) const RESERVED_PARAMS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "audience",
    "resource",
];

/// The known key closest to a typo (edit distance ≤ 2), for "did you mean" hints.
pub(super) fn suggest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push(
                    (prev[j] + usize::from(ca != *cb))
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1),
                );
            }
            prev = cur;
        }
        prev[b.len()]
    }
    known
        .iter()
        .map(|k| (distance(unknown, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}
