//! Exit statuses: one per error family, so a script can tell "fix the configuration" from
//! "the identity provider is down" without parsing messages. Documented in docs/cli.md and
//! `tokenward --help`; values are fixed once published.

use std::process::ExitCode;

use tokenward::ErrorKind;

pub const OK: u8 = 0;
pub const INTERNAL: u8 = 1;
pub const USAGE: u8 = 2;
pub const CONFIG: u8 = 3;
pub const NETWORK: u8 = 4;
pub const TLS: u8 = 5;
pub const CLIENT_REFUSED: u8 = 6;
pub const OAUTH: u8 = 7;
pub const PROVIDER_UNAVAILABLE: u8 = 8;
pub const API_REFUSED: u8 = 9;
pub const HTTP_3XX: u8 = 10;
pub const HTTP_4XX: u8 = 11;
pub const HTTP_5XX: u8 = 12;

/// The exit status of an error family.
pub fn of_kind(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidArgument => USAGE,
        ErrorKind::Config => CONFIG,
        ErrorKind::Network | ErrorKind::Timeout => NETWORK,
        ErrorKind::Tls => TLS,
        ErrorKind::InvalidClient | ErrorKind::UnauthorizedClient => CLIENT_REFUSED,
        ErrorKind::InvalidScope | ErrorKind::OAuth => OAUTH,
        ErrorKind::RateLimited | ErrorKind::Server | ErrorKind::BadResponse => PROVIDER_UNAVAILABLE,
        ErrorKind::Unauthorized | ErrorKind::Forbidden => API_REFUSED,
        _ => INTERNAL,
    }
}

/// The exit status of `request` for an answered HTTP status.
pub fn of_http(status: u16) -> u8 {
    match status {
        300..=399 => HTTP_3XX,
        400..=499 => HTTP_4XX,
        500..=599 => HTTP_5XX,
        _ => OK,
    }
}

pub fn code(status: u8) -> ExitCode {
    ExitCode::from(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_its_own_status() {
        assert_eq!(of_kind(ErrorKind::Config), 3);
        assert_eq!(of_kind(ErrorKind::Timeout), of_kind(ErrorKind::Network));
        assert_eq!(of_kind(ErrorKind::UnauthorizedClient), 6);
        assert_eq!(of_kind(ErrorKind::InvalidScope), 7);
        assert_eq!(of_kind(ErrorKind::RateLimited), 8);
        assert_eq!(of_kind(ErrorKind::Forbidden), 9);
        assert_eq!(of_kind(ErrorKind::Panic), 1);
        assert_eq!(
            (of_http(200), of_http(302), of_http(404), of_http(503)),
            (0, 10, 11, 12)
        );
    }
}
