//! The cache-hit path allocates nothing — in Rust (`Client::token`) and through the C ABI
//! (`tw_client_token` into a caller buffer) — however many clients a thread uses. A counting
//! global allocator proves it.
//!
//! A thread keeps private copies of the tokens of up to four clients (its lock-free hits);
//! past four it serves the others through the cache lock instead of copying tokens in
//! turn, so eight clients used in rotation cost no allocation either.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_char, CString};

use serde_json::json;
use tokenward::ffi::{tw_client, tw_client_free, tw_client_new, tw_client_token};
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

/// More clients than a thread keeps token copies for.
const CLIENTS: usize = 8;
const ROUNDS: usize = 2_000;

#[test]
fn cache_hits_do_not_allocate_in_rust() {
    let mock = MockServer::start();
    let one = common::client(&mock, json!({}));
    one.token().unwrap();
    // A thread's first hit on a token makes its private copy (one allocation per thread
    // and token, so threads never share a cache line on the hit path); hits after it
    // allocate nothing.
    one.token().unwrap();
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            std::hint::black_box(one.token().unwrap());
        }
    });
    assert_eq!(n, 0, "Client::token on a fresh token allocated");

    let mut clients = vec![one];
    clients.extend((1..CLIENTS).map(|_| common::client(&mock, json!({}))));
    for client in &clients {
        client.token().unwrap(); // the fetch
        client.token().unwrap(); // the first hit, which may copy the token
    }
    let n = allocations_during(|| {
        for _ in 0..ROUNDS {
            for client in &clients {
                std::hint::black_box(client.token().unwrap());
            }
        }
    });
    assert_eq!(
        n, 0,
        "Client::token over {CLIENTS} clients in turn allocated"
    );
    assert_eq!(mock.token_requests(), CLIENTS as u64);
}

fn ffi_client(mock: &MockServer) -> *mut tw_client {
    let config = CString::new(common::config_json(mock, json!({}))).unwrap();
    let mut handle = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated config and out-pointer.
    assert_eq!(unsafe { tw_client_new(config.as_ptr(), &mut handle) }, 0);
    handle
}

fn ffi_token(handle: *mut tw_client, buf: &mut [c_char]) {
    let mut len = 0usize;
    // SAFETY: live handle, buffer of the stated size, valid len pointer.
    let status = unsafe { tw_client_token(handle, buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(status, 0);
}

#[test]
fn cache_hits_do_not_allocate_through_the_c_abi() {
    let mock = MockServer::start();
    let mut buf = [0 as c_char; 2048];
    let one = ffi_client(&mock);
    ffi_token(one, &mut buf);
    ffi_token(one, &mut buf); // the first hit, which makes this thread's copy
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            ffi_token(one, &mut buf);
        }
    });
    assert_eq!(n, 0, "tw_client_token on a fresh token allocated");

    let mut handles = vec![one];
    handles.extend((1..CLIENTS).map(|_| ffi_client(&mock)));
    for &handle in &handles {
        ffi_token(handle, &mut buf);
        ffi_token(handle, &mut buf);
    }
    let n = allocations_during(|| {
        for _ in 0..ROUNDS {
            for &handle in &handles {
                ffi_token(handle, &mut buf);
            }
        }
    });
    assert_eq!(
        n, 0,
        "tw_client_token over {CLIENTS} handles in turn allocated"
    );
    for handle in handles {
        // SAFETY: each handle freed once.
        unsafe { tw_client_free(handle) };
    }
}
