//! `max.poll.interval.ms`: a member that stops polling leaves the group (librdkafka sends
//! LeaveGroup when the interval is exceeded, while its heartbeats would have kept it alive),
//! the other member takes over its partitions, and the stalled member rejoins once it polls
//! again.

mod common;
mod groups_support;

use std::time::{Duration, Instant};

use common::*;
use groups_support::*;

const MAX_POLL_MS: u64 = 3_000;

#[test]
fn member_that_stops_polling_leaves_after_max_poll_interval_and_rejoins_when_polling_again() {
    let _w = watchdog(Duration::from_secs(120));
    let mut s = Scenario::new("maxpoll")
        .partitions(4)
        .producing("maxpoll", Duration::from_millis(40))
        .start();
    let all = s.all.clone();

    let slow = Member::start(
        s.member_config("slow")
            .session(2_000, 500)
            .set("max.poll.interval.ms", &MAX_POLL_MS.to_string()),
    );
    let steady = s.member("steady");
    wait_partitioned(&[&slow, &steady], &all, Duration::from_secs(30));
    let slow_parts = slow.assignment();

    // `slow` stops polling; its heartbeats go on (in librdkafka's background thread).
    let stalled_at = Instant::now();
    slow.set_stalled(true);
    wait_for(
        Duration::from_secs(20),
        "steady holding every partition",
        || steady.assignment() == all,
        || describe(&[&slow, &steady]),
    );
    let taken_at = steady
        .log()
        .events
        .iter()
        .filter(|e| {
            e.at > stalled_at
                && e.kind == EventKind::Assign
                && !e.partitions.is_disjoint(&slow_parts)
        })
        .map(|e| e.at)
        .min()
        .expect("an Assign of slow's partitions");
    let after = taken_at - stalled_at;
    assert!(
        after >= Duration::from_millis(MAX_POLL_MS - 500),
        "slow's partitions moved {after:?} after it stopped polling, before \
         max.poll.interval.ms={MAX_POLL_MS}"
    );
    assert!(
        after < Duration::from_millis(MAX_POLL_MS + 8_000),
        "slow's partitions moved only {after:?} after it stopped polling"
    );

    // Polling again: it rejoins and gets partitions back.
    std::thread::sleep(Duration::from_millis(1000));
    let resumed_at = Instant::now();
    slow.set_stalled(false);
    wait_partitioned(&[&slow, &steady], &all, Duration::from_secs(30));
    let rejoined_after = resumed_at.elapsed();
    assert!(
        !slow.log().rebalances_after(resumed_at).is_empty(),
        "slow went through a rebalance after it resumed"
    );

    let check = s.delivery().drain([slow, steady], Duration::from_secs(60));
    let report = check.verify();
    eprintln!(
        "max.poll: {} produced, {report:?}; moved {after:?} after the stall, rejoined \
         {rejoined_after:?} after resuming; slow's errors: {:?}",
        check.produced().len(),
        check.logs()[0].errors()
    );
}
