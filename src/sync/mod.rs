//! The locks every client uses: `std::sync` locks that can be held across `fork()`.
//!
//! Why not `parking_lot`: its waiters are queued in a process-wide
//! userspace table. After a `fork()` the child inherits the queue entries of parent threads
//! that do not exist in it, and unlocking may hand the lock to one of those ghosts — the
//! child then deadlocks on its next call (reproduced: Python `os.fork()` while three threads
//! used the client hung within 2–5 forks). The futex-based `std::sync` locks on Linux keep
//! their whole state in one atomic word with no userspace queue, so a lock taken by the
//! `pthread_atfork` prepare handler and released in the child is simply free again. On
//! other platforms they are pthread locks, for which that lock-in-prepare/unlock-in-child
//! pattern is the one POSIX prescribes.
//!
//! Poisoning is ignored: every critical section leaves its state consistent before any
//! call that could panic, and a poisoned cache must not take the process down.
//!
//! Each lock can be taken by the fork handlers and kept without a guard on the stack
//! ([`ForkLock`]): the guard is parked inside the lock itself. Only `fork` calls those
//! methods; every other module just lists its locks (see [`fork::ForkAware`]).
//!
//! In the unit tests built with `--cfg loom` the locks, the atomics and the thread-locals of
//! the cache come from the `loom` model checker instead of `std` (see `cache::loom_model`);
//! nothing else changes. Such a build is for the model only: its locks exist only inside
//! one model execution.

// Parking a lock guard across `fork()` and the `pthread_atfork` registry need `unsafe`.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::sync::PoisonError;
use std::time::Instant;

#[cfg(all(loom, test))]
use loom::sync;
#[cfg(not(all(loom, test)))]
use std::sync;

pub(crate) mod fork;

pub(crate) use fork::ForkAware;

/// The atomics of the cache's lock-free hit path, loom's in the model.
pub(crate) mod atomic {
    #[cfg(all(loom, test))]
    pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
    #[cfg(not(all(loom, test)))]
    pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
}

/// `thread_local!` for the hit path's per-thread tokens: a model's threads are not OS
/// threads, so in the model each gets its own value from loom's version.
#[cfg(all(loom, test))]
pub(crate) use loom::thread_local;
#[cfg(not(all(loom, test)))]
pub(crate) use std::thread_local;

pub(crate) type MutexGuard<'a, T> = sync::MutexGuard<'a, T>;

/// A mutex whose lock can be held from a `pthread_atfork` prepare handler to the parent or
/// child handler.
pub(crate) struct Mutex<T: 'static> {
    inner: sync::Mutex<T>,
    /// The guard taken by [`Mutex::fork_lock`], until [`Mutex::fork_unlock`].
    fork_guard: UnsafeCell<Option<MutexGuard<'static, T>>>,
}

// SAFETY: `fork_guard` is only touched by the fork handlers, on the one thread that calls
// `fork()`, while it holds the lock; otherwise this is a plain `std::sync::Mutex<T>`.
unsafe impl<T: Send + 'static> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send + 'static> Sync for Mutex<T> {}

impl<T: 'static> Mutex<T> {
    #[cfg(not(all(loom, test)))]
    pub(crate) const fn new(value: T) -> Mutex<T> {
        Mutex {
            inner: sync::Mutex::new(value),
            fork_guard: UnsafeCell::new(None),
        }
    }

    /// Loom's locks cannot be built in a `const` context.
    #[cfg(all(loom, test))]
    pub(crate) fn new(value: T) -> Mutex<T> {
        Mutex {
            inner: sync::Mutex::new(value),
            fork_guard: UnsafeCell::new(None),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take the lock and keep it until [`Mutex::fork_unlock`].
    ///
    /// # Safety
    /// Only from a `pthread_atfork` prepare handler, paired with `fork_unlock` on the same
    /// thread, and `self` must not be dropped in between.
    pub(crate) unsafe fn fork_lock(&self) {
        let guard = self.lock();
        // SAFETY: the guard is dropped by `fork_unlock`, before `self` can be (contract).
        let guard =
            unsafe { std::mem::transmute::<MutexGuard<'_, T>, MutexGuard<'static, T>>(guard) };
        // SAFETY: only the forking thread touches `fork_guard`, and it holds the lock.
        unsafe { *self.fork_guard.get() = Some(guard) };
    }

    /// The data, while [`Mutex::fork_lock`] holds the lock.
    ///
    /// # Safety
    /// Only between `fork_lock` and `fork_unlock`, on that thread, and never twice at once.
    // The `&mut` comes from the parked guard (an `UnsafeCell`), not from `&self`.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn fork_data(&self) -> &mut T {
        // SAFETY: the caller holds the lock through the parked guard.
        let guard = unsafe { &mut *self.fork_guard.get() };
        guard
            .as_deref_mut()
            .expect("fork_data called without fork_lock")
    }

    /// Release the lock taken by [`Mutex::fork_lock`].
    ///
    /// # Safety
    /// Only from the parent or child handler after `fork_lock`, on the same thread.
    pub(crate) unsafe fn fork_unlock(&self) {
        // SAFETY: only the forking thread touches `fork_guard`.
        drop(unsafe { (*self.fork_guard.get()).take() });
    }
}

/// A lock the fork hooks hold from before `fork()` until after it, in both processes.
pub(crate) trait ForkLock {
    /// Take the lock and keep it until [`ForkLock::fork_unlock`].
    ///
    /// # Safety
    /// Only from a `pthread_atfork` prepare handler, paired with `fork_unlock` on the same
    /// thread, and the lock must not be dropped in between.
    unsafe fn fork_lock(&self);

    /// Release the lock taken by [`ForkLock::fork_lock`].
    ///
    /// # Safety
    /// Only from the parent or child handler after `fork_lock`, on the same thread.
    unsafe fn fork_unlock(&self);
}

impl<T: Send + 'static> ForkLock for Mutex<T> {
    unsafe fn fork_lock(&self) {
        // SAFETY: forwarded caller contract.
        unsafe { Mutex::fork_lock(self) }
    }

    unsafe fn fork_unlock(&self) {
        // SAFETY: forwarded caller contract.
        unsafe { Mutex::fork_unlock(self) }
    }
}

impl<T: Send + Sync + 'static> ForkLock for RwLock<T> {
    unsafe fn fork_lock(&self) {
        // SAFETY: forwarded caller contract.
        unsafe { RwLock::fork_lock(self) }
    }

    unsafe fn fork_unlock(&self) {
        // SAFETY: forwarded caller contract.
        unsafe { RwLock::fork_unlock(self) }
    }
}

/// A condition variable for [`Mutex`].
#[derive(Default)]
pub(crate) struct Condvar(sync::Condvar);

impl Condvar {
    pub(crate) fn new() -> Condvar {
        Condvar(sync::Condvar::new())
    }

    pub(crate) fn notify_all(&self) {
        self.0.notify_all();
    }

    /// Wait for a notification (or a spurious wake-up) until at most `deadline`; `true` when
    /// the deadline has passed.
    pub(crate) fn wait_until<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Instant,
    ) -> (MutexGuard<'a, T>, bool) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return (guard, true);
        }
        let (guard, _) = self
            .0
            .wait_timeout(guard, remaining)
            .unwrap_or_else(PoisonError::into_inner);
        (guard, Instant::now() >= deadline)
    }
}

/// A reader-writer lock with the same fork support as [`Mutex`].
pub(crate) struct RwLock<T: 'static> {
    inner: sync::RwLock<T>,
    fork_guard: UnsafeCell<Option<sync::RwLockWriteGuard<'static, T>>>,
}

// SAFETY: as for `Mutex`.
unsafe impl<T: Send + Sync + 'static> Send for RwLock<T> {}
// SAFETY: as for `Mutex`.
unsafe impl<T: Send + Sync + 'static> Sync for RwLock<T> {}

impl<T: Default + 'static> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T: 'static> RwLock<T> {
    pub(crate) fn new(value: T) -> RwLock<T> {
        RwLock {
            inner: sync::RwLock::new(value),
            fork_guard: UnsafeCell::new(None),
        }
    }

    #[inline]
    pub(crate) fn read(&self) -> sync::RwLockReadGuard<'_, T> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> sync::RwLockWriteGuard<'_, T> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take the lock exclusively (waiting for readers) and keep it until
    /// [`RwLock::fork_unlock`].
    ///
    /// # Safety
    /// As for [`Mutex::fork_lock`].
    pub(crate) unsafe fn fork_lock(&self) {
        let guard = self.write();
        // SAFETY: as in `Mutex::fork_lock`.
        let guard = unsafe {
            std::mem::transmute::<sync::RwLockWriteGuard<'_, T>, sync::RwLockWriteGuard<'static, T>>(
                guard,
            )
        };
        // SAFETY: only the forking thread touches `fork_guard`, and it holds the lock.
        unsafe { *self.fork_guard.get() = Some(guard) };
    }

    /// # Safety
    /// As for [`Mutex::fork_unlock`].
    pub(crate) unsafe fn fork_unlock(&self) {
        // SAFETY: only the forking thread touches `fork_guard`.
        drop(unsafe { (*self.fork_guard.get()).take() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_lock_holds_the_lock_until_fork_unlock() {
        let mutex = Mutex::new(1);
        // SAFETY: paired on this thread; `mutex` outlives both calls.
        unsafe { mutex.fork_lock() };
        assert!(mutex.inner.try_lock().is_err());
        // SAFETY: after fork_lock on this thread.
        unsafe { mutex.fork_unlock() };
        assert_eq!(*mutex.lock(), 1);

        let rw = RwLock::new(());
        // SAFETY: as above.
        unsafe { rw.fork_lock() };
        assert!(rw.inner.try_read().is_err());
        // SAFETY: as above.
        unsafe { rw.fork_unlock() };
        drop(rw.read());
    }

    #[test]
    fn wait_until_reports_a_passed_deadline() {
        let mutex = Mutex::new(());
        let condvar = Condvar::new();
        let deadline = Instant::now() + std::time::Duration::from_millis(20);
        let mut guard = mutex.lock();
        loop {
            let (g, timed_out) = condvar.wait_until(guard, deadline);
            guard = g;
            if timed_out {
                break;
            }
        }
        assert!(Instant::now() >= deadline);
    }
}
