//! The cache-hit path allocates nothing — in Rust (`Client::token`) and through the C ABI
//! (`tw_client_token` into a caller buffer). A counting global allocator proves it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use serde_json::json;
use tokenward_mock::MockServer;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates to the system allocator; only counts (per thread, without allocating).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn cache_hits_do_not_allocate() {
    let mock = MockServer::start();
    let client = common::client(&mock, json!({}));
    client.token().unwrap();
    // A thread's first hit on a token makes its private copy (one allocation per thread
    // and token, so threads never share a cache line on the hit path); hits after it
    // allocate nothing.
    client.token().unwrap();
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            std::hint::black_box(client.token().unwrap());
        }
    });
    assert_eq!(n, 0, "Client::token on a fresh token allocated");

    let config = std::ffi::CString::new(common::config_json(&mock, json!({}))).unwrap();
    let mut handle = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated config and out-pointer.
    assert_eq!(
        unsafe { tokenward::ffi::tw_client_new(config.as_ptr(), &mut handle) },
        0
    );
    let mut buf = [0 as std::ffi::c_char; 2048];
    let mut len = 0usize;
    // SAFETY: live handle, buffer of the stated size, valid len pointer.
    let first =
        unsafe { tokenward::ffi::tw_client_token(handle, buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(first, 0);
    // SAFETY: as above (the first hit, which makes this thread's copy).
    let hit =
        unsafe { tokenward::ffi::tw_client_token(handle, buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(hit, 0);
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            // SAFETY: as above.
            let status = unsafe {
                tokenward::ffi::tw_client_token(handle, buf.as_mut_ptr(), buf.len(), &mut len)
            };
            assert_eq!(status, 0);
        }
    });
    assert_eq!(n, 0, "tw_client_token on a fresh token allocated");
    // SAFETY: freed once.
    unsafe { tokenward::ffi::tw_client_free(handle) };
}
