//! Fork safety. Pre-fork servers create clients before `fork()`; the child must not inherit
//! a lock held by a thread that does not exist in it, nor wait on a refresh that no thread
//! will finish. `pthread_atfork` handlers take every client's locks before the fork (our
//! critical sections are short and never span I/O), release them in the parent, and in the
//! child release them and then let each client forget its in-flight state. Cached tokens
//! stay valid in the child.
//!
//! This module is the only caller of the [`ForkLock`] methods: an object registered here
//! merely lists its locks ([`ForkAware::fork_locks`]).

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::ForkLock;

/// What an object must tell the fork hooks (see the module docs for why the locks are
/// `std::sync`).
pub(crate) trait ForkAware: Send + Sync {
    /// Hand every lock this object owns to `visit`, always in the same order.
    fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock));

    /// In the child, after every lock is free again (and the child has one thread): forget
    /// work that threads of the parent had under way.
    fn forget_inherited_work(&self);
}

/// An object known to the fork hooks for its whole life: registered when it is put in its
/// `Arc`, unregistered when it drops, before any of its parts are.
pub(crate) struct Registered<T: ForkAware + 'static> {
    object: T,
}

impl<T: ForkAware + 'static> Registered<T> {
    /// Move `object` into an `Arc` and register it.
    pub(crate) fn new(object: T) -> Arc<Registered<T>> {
        let arc = Arc::new(Registered { object });
        hooks::register(&arc.object);
        arc
    }
}

impl<T: ForkAware + 'static> Deref for Registered<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.object
    }
}

impl<T: ForkAware + 'static> Drop for Registered<T> {
    fn drop(&mut self) {
        hooks::unregister(&self.object);
    }
}

static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Incremented in every forked child; compare to detect that a fork happened.
pub(crate) fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// Where nothing forks there is nothing to register: outside Unix (Windows), and under the
/// model checker, whose locks exist only inside one model execution (a process-wide registry
/// of them cannot).
#[cfg(any(all(loom, test), not(unix)))]
mod hooks {
    use super::ForkAware;

    pub(super) fn register(_: &(dyn ForkAware + 'static)) {}

    pub(super) fn unregister(_: &(dyn ForkAware + 'static)) {}
}

#[cfg(all(unix, not(all(loom, test))))]
mod hooks {
    use std::sync::atomic::Ordering;

    use super::{ForkAware, EPOCH};
    use crate::sync::Mutex;

    pub(super) fn register(object: &(dyn ForkAware + 'static)) {
        install_handlers();
        REGISTRY.lock().push(Entry(object as *const dyn ForkAware));
    }

    pub(super) fn unregister(object: &(dyn ForkAware + 'static)) {
        let object = object as *const dyn ForkAware;
        REGISTRY.lock().retain(|e| !std::ptr::addr_eq(e.0, object));
    }

    struct Entry(*const dyn ForkAware);

    // SAFETY: entries are only dereferenced while REGISTRY is locked, and a `Registered`
    // object removes its entry (taking that lock) before it is freed, so the pointer is valid
    // whenever it is used; the objects themselves are `Send + Sync`.
    unsafe impl Send for Entry {}

    static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

    fn install_handlers() {
        use std::sync::Once;
        extern "C" {
            fn pthread_atfork(
                prepare: Option<extern "C" fn()>,
                parent: Option<extern "C" fn()>,
                child: Option<extern "C" fn()>,
            ) -> std::os::raw::c_int;
        }
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            // SAFETY: the three handlers are plain functions that live for the whole program.
            unsafe {
                pthread_atfork(Some(prepare), Some(parent), Some(child));
            }
        });
    }

    extern "C" fn prepare() {
        // SAFETY: the registry lock is held from here until `parent` or `child` releases it,
        // on this thread; the registry is a static, never dropped.
        unsafe { REGISTRY.fork_lock() };
        for_each(|object| {
            object.fork_locks(&mut |lock| {
                // SAFETY: released by `release_all` in `parent` or `child` on this thread; the
                // object (and so its lock) cannot be freed before: unregistering waits for the
                // registry lock held until then.
                unsafe { lock.fork_lock() }
            })
        });
    }

    extern "C" fn parent() {
        for_each(release_all);
        // SAFETY: locked in `prepare` on this same thread.
        unsafe { REGISTRY.fork_unlock() };
    }

    extern "C" fn child() {
        EPOCH.fetch_add(1, Ordering::Relaxed);
        for_each(|object| {
            release_all(object);
            object.forget_inherited_work();
        });
        // SAFETY: locked in `prepare`; the child is single-threaded and is the locking thread.
        unsafe { REGISTRY.fork_unlock() };
    }

    fn release_all(object: &dyn ForkAware) {
        object.fork_locks(&mut |lock| {
            // SAFETY: every lock was taken by `prepare` on this thread (same objects, same
            // order: the registry cannot change while its lock is held).
            unsafe { lock.fork_unlock() }
        });
    }

    fn for_each(f: impl Fn(&dyn ForkAware)) {
        // SAFETY: called only between `prepare` and `parent`/`child`, while this thread holds
        // the registry lock, so no entry is removed or freed concurrently.
        let entries = unsafe { REGISTRY.fork_data() };
        for entry in entries {
            // SAFETY: see `Entry`: registered objects outlive their registry entry.
            f(unsafe { &*entry.0 });
        }
    }
}
