//! The mock's wall clock: the machine's clock shifted by the configured skew, as a server
//! whose clock is off would see it.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_moves_the_clock() {
        let base = unix_now(0);
        let ahead = unix_now(3600);
        assert!(ahead - base >= 3599.0 && ahead - base < 3700.0);
        assert_eq!(unix_secs(-i64::MAX / 2), 0, "never before the epoch");
    }
}
