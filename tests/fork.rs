//! Fork safety: a client forked while another thread's token fetch is in flight must work
//! in the child (the fetching thread does not exist there) and keep working in the parent.
//! One test per binary: forking while other tests' threads run would muddy the result.

mod common;

use std::time::Duration;

use serde_json::json;
use tokenward_mock::MockServer;

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

    let pid = common::process::fork_child(|| {
        // (The mock's state lives in the parent; the child can only judge the token.)
        c.token().is_ok_and(|t| t.as_str() != first)
    });
    let status = common::process::wait_child(pid, Duration::from_secs(15))
        .expect("the child hung: it waited on a fetch that no thread in it will finish");
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
