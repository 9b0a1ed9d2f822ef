//! Events: what the library did, for logs and metrics — redacted by construction.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::sync::{ForkLock, RwLock};

/// What happened. The numeric codes are the C ABI's `TW_EVENT_*` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A new token was fetched.
    TokenAcquired = 1,
    /// A fetch that callers were waiting on failed.
    FetchFailed = 2,
    /// An early (background or inline) refresh failed; the current token keeps serving.
    RefreshFailed = 3,
    /// A still-usable token was served while refreshes are failing (once per episode).
    ServedStale = 4,
    /// A transient failure; the request is retried after a delay.
    RetryScheduled = 5,
    /// A token was evicted by `invalidate`.
    Invalidated = 6,
    /// Something in the configuration deserves attention but does not stop the client (a
    /// credential file readable by group or others). Delivered once, to the first hook.
    Warning = 7,
}

impl EventKind {
    /// A stable name, e.g. `"token_acquired"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TokenAcquired => "token_acquired",
            EventKind::FetchFailed => "fetch_failed",
            EventKind::RefreshFailed => "refresh_failed",
            EventKind::ServedStale => "served_stale",
            EventKind::RetryScheduled => "retry_scheduled",
            EventKind::Invalidated => "invalidated",
            EventKind::Warning => "warning",
        }
    }
}

/// One event. The message never contains a secret or a full token (tokens appear only as
/// 8-hex-digit fingerprints).
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// A human-readable sentence.
    pub message: String,
}

/// A user's event hook. It may run on a library thread; it must be quick and must not call
/// back into the same client.
pub type EventHook = Arc<dyn Fn(&Event) + Send + Sync>;

/// The hook slot. Emission holds the read lock for the duration of the call, so replacing
/// the hook waits for a running call to finish: after `set(None)` returns, the old hook is
/// never called again (the C ABI relies on this before freeing `user_data`).
#[derive(Default)]
pub(crate) struct Events {
    hook: RwLock<Hook>,
}

#[derive(Default)]
struct Hook {
    current: Option<EventHook>,
    /// Events from before any hook was installed (configuration warnings), for the first.
    pending: Vec<Event>,
}

impl Events {
    /// Events that hold `pending` for the first hook installed.
    pub(crate) fn with_pending(pending: Vec<Event>) -> Events {
        Events {
            hook: RwLock::new(Hook {
                current: None,
                pending,
            }),
        }
    }

    /// Install `hook` (or remove it with `None`). The first hook installed receives the
    /// pending events first, on the calling thread, before this returns.
    pub(crate) fn set(&self, hook: Option<EventHook>) {
        let pending = {
            let mut slot = self.hook.write();
            slot.current = hook;
            if slot.current.is_some() {
                std::mem::take(&mut slot.pending)
            } else {
                Vec::new()
            }
        };
        for event in pending {
            self.emit(event.kind, || event.message);
        }
    }

    /// Build the message only when somebody listens; a panicking hook is contained.
    pub(crate) fn emit(&self, kind: EventKind, message: impl FnOnce() -> String) {
        let guard = self.hook.read();
        if let Some(hook) = guard.current.as_ref() {
            let event = Event {
                kind,
                message: message(),
            };
            let _ = catch_unwind(AssertUnwindSafe(|| hook(&event)));
        }
    }

    /// The hook lock, for the fork hooks (`crate::sync::fork`): taking it waits for running
    /// hooks, so no hook runs across a fork.
    pub(crate) fn fork_locks<'a>(&'a self, visit: &mut dyn FnMut(&'a dyn ForkLock)) {
        visit(&self.hook);
    }
}
