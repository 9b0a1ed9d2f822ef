//! A cheap monotonic clock read for the cache-hit path.
//!
//! A precise `Instant::now()` costs ~29 ns on the VMs we measured (BENCHMARKS.md), more than
//! a whole cache hit does now. On 64-bit Linux the hit path instead compares
//! `CLOCK_MONOTONIC_COARSE` (the same clock as `Instant`, read without a syscall or TSC
//! conversion, ~5 ns) against a deadline that was pulled earlier when it was stored. A
//! coarse reading is never later than the precise time; it lags by up to a few timer ticks
//! (measured here: up to 7 ms with a reported resolution of 4 ms), so deadlines are pulled
//! earlier by `max(4 resolution steps, 20 ms)`. The fast check can then only say "not
//! fresh" early (and the precise path decides), not "fresh" late. Tokens are refreshed
//! seconds to minutes before expiry, so the 20 ms cost nothing.

// Reading `CLOCK_MONOTONIC_COARSE` is a libc call.
#![allow(unsafe_code)]

use std::time::Instant;

/// A point on the monotonic clock in nanoseconds, comparable with [`coarse_now`];
/// `0` means "never fresh".
pub(crate) type Nanos = u64;

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod sys {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
        fn clock_getres(clock: i32, ts: *mut Timespec) -> i32;
    }

    const CLOCK_MONOTONIC: i32 = 1;
    const CLOCK_MONOTONIC_COARSE: i32 = 6;

    fn read(f: unsafe extern "C" fn(i32, *mut Timespec) -> i32, clock: i32) -> Option<u64> {
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        let ok = unsafe { f(clock, &mut ts) } == 0;
        (ok && ts.tv_sec >= 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }

    pub(super) fn precise() -> Option<u64> {
        read(clock_gettime, CLOCK_MONOTONIC)
    }

    pub(super) fn coarse() -> u64 {
        read(clock_gettime, CLOCK_MONOTONIC_COARSE).unwrap_or(0)
    }

    pub(super) fn coarse_resolution() -> Option<u64> {
        read(clock_getres, CLOCK_MONOTONIC_COARSE)
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
mod sys {
    pub(super) fn precise() -> Option<u64> {
        None
    }

    pub(super) fn coarse() -> u64 {
        0
    }

    pub(super) fn coarse_resolution() -> Option<u64> {
        None
    }
}

/// The coarse clock now (0 where unsupported, which makes every fast check fail).
#[inline]
pub(crate) fn coarse_now() -> Nanos {
    sys::coarse()
}

/// `deadline` expressed for comparison with [`coarse_now`], pulled earlier by
/// `max(4 resolution steps, 20 ms)` (see the module docs); 0 (never fresh) where the coarse
/// clock is unavailable or the deadline has passed.
pub(crate) fn coarse_deadline(deadline: Instant) -> Nanos {
    let (Some(now_ns), Some(step)) = (sys::precise(), sys::coarse_resolution()) else {
        return 0;
    };
    let now = Instant::now();
    let at = match deadline.checked_duration_since(now) {
        Some(ahead) => now_ns.saturating_add(ahead.as_nanos().min(u64::MAX as u128) as u64),
        None => return 0,
    };
    at.saturating_sub((4 * step).max(20_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn coarse_deadlines_are_never_late() {
        let deadline = Instant::now() + Duration::from_millis(60);
        let coarse = coarse_deadline(deadline);
        if coarse == 0 {
            return; // no coarse clock on this platform: the fast path is off
        }
        assert!(coarse_now() < coarse, "60 ms ahead is fresh now");
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            coarse_now() >= coarse,
            "past the precise deadline the fast check fails"
        );
        assert_eq!(
            coarse_deadline(Instant::now() - Duration::from_millis(1)),
            0
        );
    }
}
