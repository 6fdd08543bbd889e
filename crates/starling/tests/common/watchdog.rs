//! [`watchdog`]: a time limit for a whole test. If the test is still running after its limit,
//! the test process exits with a failure, and every broker it started dies with it.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Ends the whole test process if the guard is still alive after `limit`.
///
/// Nothing in a test should hang, but if something does (a broker that never answers, a client
/// call without its own timeout), this turns the hang into a failure with a message naming the
/// test. Brokers die with the process because they are spawned with `PR_SET_PDEATHSIG`.
pub struct Watchdog {
    _cancel: mpsc::Sender<()>,
}

pub fn watchdog(limit: Duration) -> Watchdog {
    let name = thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    let (tx, rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("\n*** watchdog: test `{name}` still running after {limit:?}; aborting the test process ***\n");
            std::process::exit(101);
        }
    });
    Watchdog { _cancel: tx }
}
