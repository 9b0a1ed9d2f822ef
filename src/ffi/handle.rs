//! Handles that catch misuse. Every `tw_client`, `tw_response` and `tw_diagnosis` pointer handed to C points
//! at a [`Shell`]: a tag word followed by the value. Each entry point checks the tag before
//! it touches the value, so a handle that was already freed, or a pointer of another kind
//! (a `tw_response` passed as a `tw_client`, a pointer into some other buffer), most likely
//! gets `TW_ERR_INVALID_ARGUMENT` instead of undefined behaviour.
//!
//! Why checking a freed handle is sound: freeing a handle drops the value but never the
//! shell. The shell's tag is set to "freed" and the shell is parked in a per-kind FIFO
//! quarantine; a new handle reuses a parked shell only when more than [`QUARANTINE`] are
//! parked, taking the oldest. So a freed pointer always points at live memory whose tag
//! reads "freed" — deterministically until [`QUARANTINE`] more handles of its kind have
//! been freed, after which it may name a newer live handle (still memory-safe, but the
//! wrong object). Shells cost 16 bytes (clients) or one `Response` header (responses), and
//! their number is bounded by the most handles ever alive at once plus the quarantine.
//!
//! Best effort, documented as such: a pointer that never came from tokenward is read as if
//! it were a shell (an unmapped or misaligned address cannot be caught; misalignment is
//! checked first), and freeing a handle while another thread still uses it remains a bug of
//! the caller.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::sync::fork::{ForkAware, Registered};
use crate::sync::{ForkLock, Mutex};
use crate::{Client, Diagnosis, Response};

/// Freed shells of one kind kept before the oldest may be reused.
pub(crate) const QUARANTINE: usize = 1024;

/// The tag of a freed shell (any kind).
const FREED: u64 = u64::from_be_bytes(*b"tw:freed");

/// What a handle pointer points at.
#[repr(C)]
pub(crate) struct Shell<T> {
    tag: AtomicU64,
    /// `Some` exactly while `tag` is the kind's live tag.
    value: UnsafeCell<Option<T>>,
}

/// A kind of handle: the opaque type C sees, and what its shells hold.
pub(crate) trait Handle: Sized + 'static {
    /// The Rust value behind the handle.
    type Value: Send + Sync + 'static;
    /// The tag of a live shell of this kind.
    const LIVE: u64;
    /// This kind's quarantine.
    fn parked(pools: &Pools) -> &Mutex<VecDeque<Parked<Self::Value>>>;
}

impl Handle for super::tw_client {
    type Value = Client;
    const LIVE: u64 = u64::from_be_bytes(*b"tw:clint");
    fn parked(pools: &Pools) -> &Mutex<VecDeque<Parked<Client>>> {
        &pools.clients
    }
}

impl Handle for super::tw_response {
    type Value = Response;
    const LIVE: u64 = u64::from_be_bytes(*b"tw:respn");
    fn parked(pools: &Pools) -> &Mutex<VecDeque<Parked<Response>>> {
        &pools.responses
    }
}

impl Handle for super::tw_diagnosis {
    type Value = Diagnosis;
    const LIVE: u64 = u64::from_be_bytes(*b"tw:diagn");
    fn parked(pools: &Pools) -> &Mutex<VecDeque<Parked<Diagnosis>>> {
        &pools.diagnoses
    }
}

/// How a handle argument is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Misuse {
    Null,
    Freed,
    Foreign,
}

/// A freed shell in the quarantine.
pub(crate) struct Parked<T>(*mut Shell<T>);

// SAFETY: a parked shell holds no value (it was taken when the handle was freed) and is
// only reached through the quarantine's lock; its tag is atomic.
unsafe impl<T> Send for Parked<T> {}

/// The quarantines, known to the fork hooks so that a child never inherits one locked.
pub(crate) struct Pools {
    clients: Mutex<VecDeque<Parked<Client>>>,
    responses: Mutex<VecDeque<Parked<Response>>>,
    diagnoses: Mutex<VecDeque<Parked<Diagnosis>>>,
}

impl ForkAware for Pools {
    fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.clients);
        visit(&self.responses);
        visit(&self.diagnoses);
    }

    fn forget_inherited_work(&self) {}
}

fn pools() -> &'static Pools {
    static POOLS: OnceLock<Arc<Registered<Pools>>> = OnceLock::new();
    POOLS.get_or_init(|| {
        Registered::new(Pools {
            clients: Mutex::new(VecDeque::new()),
            responses: Mutex::new(VecDeque::new()),
            diagnoses: Mutex::new(VecDeque::new()),
        })
    })
}

// SAFETY: the value is written only while the shell is not live (by `new` before it
// publishes the live tag, by `free` after it retracted it) and read only while it is live;
// C callers must not free a handle another thread is using (documented on each free).
unsafe impl<T: Send + Sync> Sync for Shell<T> {}

/// A live handle holding `value`, in a reused shell when the quarantine is full enough.
pub(crate) fn new<H: Handle>(value: H::Value) -> *mut H {
    let reused = {
        let mut parked = H::parked(pools()).lock();
        if parked.len() > QUARANTINE {
            parked.pop_front()
        } else {
            None
        }
    };
    let shell = match reused {
        Some(Parked(shell)) => {
            // SAFETY: parked shells are never freed, and hold no value; this thread took it
            // out of the quarantine, so no other `new` writes it.
            unsafe { *(*shell).value.get() = Some(value) };
            // SAFETY: as above; publishing the tag makes the value visible (Release).
            unsafe { (*shell).tag.store(H::LIVE, Ordering::Release) };
            shell
        }
        None => Box::into_raw(Box::new(Shell {
            tag: AtomicU64::new(H::LIVE),
            value: UnsafeCell::new(Some(value)),
        })),
    };
    shell.cast()
}

/// The value behind a handle argument, after checking its tag.
///
/// # Safety
/// `handle` is NULL, a handle from [`new`] (live or freed), or — best effort — any other
/// readable, aligned address.
pub(crate) unsafe fn get<'a, H: Handle>(handle: *const H) -> Result<&'a H::Value, Misuse> {
    let shell = handle.cast::<Shell<H::Value>>();
    if shell.is_null() {
        return Err(Misuse::Null);
    }
    if !shell.is_aligned() {
        return Err(Misuse::Foreign);
    }
    // SAFETY: a shell from `new` is never deallocated, so its tag is readable; for other
    // addresses this is the documented best effort. Only the atomic is referenced.
    let tag = unsafe { &*std::ptr::addr_of!((*shell).tag) }.load(Ordering::Acquire);
    match tag {
        t if t == H::LIVE => {
            // SAFETY: a live tag (Acquire) means the value is `Some` and stays so until a
            // free, which the caller must not run concurrently.
            match unsafe { &*(*shell).value.get() } {
                Some(value) => Ok(value),
                None => Err(Misuse::Freed),
            }
        }
        FREED => Err(Misuse::Freed),
        _ => Err(Misuse::Foreign),
    }
}

/// Free a handle: retract its tag, drop its value after `before_drop` ran on it, and park
/// its shell. NULL, a freed handle (double free) and a foreign pointer are ignored and
/// reported as the [`Misuse`].
///
/// # Safety
/// As for [`get`]; and no other thread may be using the handle.
pub(crate) unsafe fn free<H: Handle>(
    handle: *mut H,
    before_drop: impl FnOnce(&H::Value),
) -> Result<(), Misuse> {
    let shell = handle.cast::<Shell<H::Value>>();
    if shell.is_null() {
        return Err(Misuse::Null);
    }
    if !shell.is_aligned() {
        return Err(Misuse::Foreign);
    }
    // SAFETY: as in `get`.
    let tag = unsafe { &*std::ptr::addr_of!((*shell).tag) };
    match tag.compare_exchange(H::LIVE, FREED, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {}
        Err(FREED) => return Err(Misuse::Freed),
        Err(_) => return Err(Misuse::Foreign),
    }
    // SAFETY: this thread retracted the live tag, so it alone owns the value now.
    let value = unsafe { (*(*shell).value.get()).take() };
    if let Some(value) = value {
        before_drop(&value);
        drop(value);
    }
    H::parked(pools()).lock().push_back(Parked(shell));
    Ok(())
}

/// The message for a misused handle argument `name` of kind `kind` (e.g. `tw_client`).
pub(crate) fn describe(misuse: Misuse, name: &str, kind: &str) -> String {
    match misuse {
        Misuse::Null => format!("`{name}` is NULL"),
        Misuse::Freed => format!("`{name}` is a {kind} that was already freed"),
        Misuse::Foreign => format!(
            "`{name}` is not a {kind} handle (not from tokenward, of another kind, or corrupted)"
        ),
    }
}
