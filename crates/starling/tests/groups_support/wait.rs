//! [`wait_for`]: polling a condition with a time limit and a description of the state for
//! the failure message.

use std::thread;
use std::time::{Duration, Instant};

/// Polls `cond` every 20 ms until it holds and returns how long that took; panics after
/// `limit` with `what` and `describe()`.
pub fn wait_for(
    limit: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
    mut describe: impl FnMut() -> String,
) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            panic!(
                "{what}: not reached within {limit:?}; state: {}",
                describe()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}
