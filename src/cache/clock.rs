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
//! seconds to minutes before expiry, so the 20 ms cost nothing. Other platforms read
//! `Instant` instead (see `portable`), with the same pull.

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

/// Elsewhere (macOS, Windows, 32-bit Linux): `Instant` readings on the same scale. They are
/// precise, so never late, and the same 20 ms pull keeps the hit path's guarantee; a hit then
/// pays one `Instant::now()`. Compiled into the Linux tests too, which check it.
#[cfg(any(test, not(all(target_os = "linux", target_pointer_width = "64"))))]
mod portable {
    use std::sync::OnceLock;
    use std::time::Instant;

    /// Nanoseconds since the first reading in this process.
    fn since_start() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        let start = *START.get_or_init(Instant::now);
        start.elapsed().as_nanos().min(u64::MAX as u128) as u64
    }

    pub(super) fn precise() -> Option<u64> {
        Some(since_start())
    }

    pub(super) fn coarse() -> u64 {
        since_start()
    }

    pub(super) fn coarse_resolution() -> Option<u64> {
        Some(1)
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
use portable as sys;

/// The coarse clock now.
#[inline]
pub(crate) fn coarse_now() -> Nanos {
    sys::coarse()
}

/// `deadline` expressed for comparison with [`coarse_now`], pulled earlier by
/// `max(4 resolution steps, 20 ms)` (see the module docs); 0 (never fresh) where the coarse
/// clock is unavailable or the deadline has passed.
pub(crate) fn coarse_deadline(deadline: Instant) -> Nanos {
    deadline_on(deadline, sys::precise, sys::coarse_resolution)
}

/// [`coarse_deadline`] for a clock given by its precise reading and its coarse resolution.
fn deadline_on(
    deadline: Instant,
    precise: fn() -> Option<u64>,
    resolution: fn() -> Option<u64>,
) -> Nanos {
    // `precise` is read before `Instant::now()`, so the converted deadline can only be early.
    let (Some(now_ns), Some(step)) = (precise(), resolution()) else {
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

    /// The guarantee the hit path relies on, for a clock given by its three readings.
    fn check_never_late(
        now: fn() -> u64,
        precise: fn() -> Option<u64>,
        resolution: fn() -> Option<u64>,
    ) {
        let deadline = Instant::now() + Duration::from_millis(60);
        let coarse = deadline_on(deadline, precise, resolution);
        assert_ne!(coarse, 0, "60 ms ahead converts");
        assert!(now() < coarse, "60 ms ahead is fresh now");
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            now() >= coarse,
            "past the precise deadline the fast check fails"
        );
        assert_eq!(
            deadline_on(
                Instant::now() - Duration::from_millis(1),
                precise,
                resolution
            ),
            0
        );
    }

    #[test]
    fn coarse_deadlines_are_never_late() {
        check_never_late(coarse_now, sys::precise, sys::coarse_resolution);
    }

    #[test]
    fn portable_deadlines_are_never_late() {
        check_never_late(
            portable::coarse,
            portable::precise,
            portable::coarse_resolution,
        );
    }
}
