//! Fork safety: a client forked while another thread's token fetch is in flight must work
//! in the child (the fetching thread does not exist there) and keep working in the parent.
//! One test per binary: forking while other tests' threads run would muddy the result.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tokenward_mock::MockServer;

extern "C" {
    fn fork() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn _exit(code: i32) -> !;
    fn kill(pid: i32, sig: i32) -> i32;
}

const WNOHANG: i32 = 1;
const SIGKILL: i32 = 9;

#[test]
fn a_forked_child_fetches_for_itself_instead_of_waiting_on_the_parents_fetch() {
    let mock = MockServer::start();
    let c = common::client(&mock, json!({ "timeouts": { "request_ms": 5000 } }));
    let first = c.token().unwrap().as_str().to_string();
    // Make the next fetch slow and start it on another thread, so it is in flight at fork().
    mock.configure(json!({ "token_delay_ms": 1500 }));
    c.invalidate(None);
    let fetcher = {
        let c = c.clone();
        std::thread::spawn(move || c.token().map(|t| t.as_str().to_string()))
    };
    std::thread::sleep(Duration::from_millis(300));

    // SAFETY: the child only calls into tokenward (fork-safe by design) and then _exit.
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // (The mock's state lives in the parent; the child can only judge the token.)
        let ok = c.token().is_ok_and(|t| t.as_str() != first);
        // SAFETY: leave the child without running the test harness's teardown.
        unsafe { _exit(if ok { 0 } else { 1 }) }
    }

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut status = 0;
    loop {
        // SAFETY: plain waitpid on our own child.
        let done = unsafe { waitpid(pid, &mut status, WNOHANG) };
        if done == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: kill our own child before failing.
            unsafe { kill(pid, SIGKILL) };
            panic!("the child hung: it waited on a fetch that no thread in it will finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let exited_ok = status & 0x7f == 0 && (status >> 8) & 0xff == 0;
    assert!(
        exited_ok,
        "the child could not get a fresh token (wait status {status})"
    );

    let parent = fetcher
        .join()
        .unwrap()
        .expect("the parent's own fetch completes");
    assert_ne!(parent, first);
    assert_eq!(
        c.token().unwrap().as_str(),
        parent,
        "the parent keeps its cache"
    );
    assert!(mock.is_token_valid(&parent));
    assert_eq!(
        mock.stats().tokens_issued,
        3,
        "first token, the parent's refetch, the child's own fetch"
    );
}
