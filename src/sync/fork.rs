//! Fork safety. Pre-fork servers create clients before `fork()`; the child must not inherit
//! a lock held by a thread that does not exist in it, nor wait on a refresh that no thread
//! will finish. `pthread_atfork` handlers take every client's locks before the fork (our
//! critical sections are short and never span I/O), release them in the parent, and in the
//! child reset in-flight state before releasing them. Cached tokens stay valid in the child.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sync::Mutex;

/// What a client must do around a fork. Implementations take their locks in `prepare` and
/// release them in `parent` / `child` (see `sync.rs` for why the locks are `std::sync`).
pub(crate) trait ForkAware: Send + Sync {
    fn prepare(&self);
    fn parent(&self);
    fn child(&self);
}

struct Entry(*const dyn ForkAware);

// SAFETY: entries are only dereferenced while REGISTRY is locked, and an object removes its
// entry (taking that lock) before it is freed, so the pointer is valid whenever it is used.
unsafe impl Send for Entry {}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Incremented in every forked child; compare to detect that a fork happened.
pub(crate) fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// Register `object` for fork handling. The caller must call [`unregister`] with the same
/// pointer before the object is freed.
pub(crate) fn register(object: *const dyn ForkAware) {
    install_handlers();
    REGISTRY.lock().push(Entry(object));
}

pub(crate) fn unregister(object: *const dyn ForkAware) {
    REGISTRY.lock().retain(|e| !std::ptr::addr_eq(e.0, object));
}

#[cfg(unix)]
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

#[cfg(not(unix))]
fn install_handlers() {}

extern "C" fn prepare() {
    // SAFETY: the registry lock is held from here until `parent` or `child` releases it,
    // on this thread; the registry is a static, never dropped.
    unsafe { REGISTRY.fork_lock() };
    for_each(|e| e.prepare());
}

extern "C" fn parent() {
    for_each(|e| e.parent());
    // SAFETY: locked in `prepare` on this same thread.
    unsafe { REGISTRY.fork_unlock() };
}

extern "C" fn child() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
    for_each(|e| e.child());
    // SAFETY: locked in `prepare`; the child is single-threaded and is the locking thread.
    unsafe { REGISTRY.fork_unlock() };
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
