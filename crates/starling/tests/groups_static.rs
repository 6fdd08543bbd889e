//! Static membership (KIP-345, `group.instance.id`) with real librdkafka members: a static
//! member that restarts within its session timeout comes back to the same partitions without a
//! rebalance; one that stays away longer loses them; a second live member with the same
//! instance id fences the first.

mod common;
mod groups_support;

use std::time::{Duration, Instant};

use common::*;
use groups_support::*;

const SESSION_MS: u32 = 6_000;
const HEARTBEAT_MS: u32 = 500;

fn static_member(s: &Running, name: &str, instance: &str) -> Member {
    Member::start(
        s.member_config(name)
            .instance(instance)
            .session(SESSION_MS, HEARTBEAT_MS),
    )
}

#[test]
fn static_member_restarting_within_session_timeout_keeps_its_partitions_without_rebalance() {
    let _w = watchdog(Duration::from_secs(150));
    let mut s = Scenario::new("static")
        .producing("static", Duration::from_millis(40))
        .start();
    let all = s.all.clone();

    let s1 = static_member(&s, "s1", "instance-1");
    let s2 = static_member(&s, "s2", "instance-2");
    let s3 = static_member(&s, "s3", "instance-3");
    wait_partitioned(&[&s1, &s2, &s3], &all, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        is_partitioned(&[&s1, &s2, &s3], &all),
        "{}",
        describe(&[&s1, &s2, &s3])
    );
    let generation = s1.generation().expect("generation");
    let s3_parts = s3.assignment();

    // s3 closes (a static member sends no LeaveGroup) and comes back as a new client with the
    // same instance id well within the session timeout.
    let closed_at = Instant::now();
    let s3_log = s3.close();
    std::thread::sleep(Duration::from_millis(1000));
    let s3b = static_member(&s, "s3-restarted", "instance-3");
    wait_partitioned(&[&s1, &s2, &s3b], &all, Duration::from_secs(20));
    // Several heartbeats later nothing has moved.
    std::thread::sleep(Duration::from_millis(2000));
    assert!(
        is_partitioned(&[&s1, &s2, &s3b], &all),
        "{}",
        describe(&[&s1, &s2, &s3b])
    );
    for m in [&s1, &s2] {
        let rebalances: Vec<String> = m
            .log()
            .rebalances_after(closed_at)
            .iter()
            .map(|e| format!("{:?} {:?}", e.kind, e.partitions))
            .collect();
        assert!(
            rebalances.is_empty(),
            "{} saw rebalance callbacks while a static member restarted: {rebalances:?}",
            m.name
        );
    }
    assert_eq!(
        (s1.generation(), s2.generation(), s3b.generation()),
        (Some(generation), Some(generation), Some(generation)),
        "the group generation did not change"
    );
    assert_eq!(
        s3b.assignment(),
        s3_parts,
        "the restarted member got its partitions back"
    );

    // s3 goes away for longer than its session timeout: now its partitions move.
    let away_at = Instant::now();
    let s3b_log = s3b.close();
    wait_partitioned(&[&s1, &s2], &all, Duration::from_secs(30));
    let taken_at = [&s1, &s2]
        .iter()
        .flat_map(|m| {
            m.log()
                .events
                .iter()
                .filter(|e| {
                    e.at > away_at
                        && e.kind == EventKind::Assign
                        && !e.partitions.is_disjoint(&s3_parts)
                })
                .map(|e| e.at)
                .collect::<Vec<_>>()
        })
        .min()
        .expect("s3's partitions were assigned to s1 or s2");
    let after = taken_at - away_at;
    assert!(
        after >= Duration::from_millis((SESSION_MS - HEARTBEAT_MS - 300) as u64),
        "s3's partitions moved {after:?} after it closed, before its session timeout \
         ({SESSION_MS} ms) could expire"
    );
    assert!(
        after < Duration::from_millis(SESSION_MS as u64 + 10_000),
        "s3's partitions moved only {after:?} after it closed"
    );
    assert!(
        s1.generation() > Some(generation),
        "the expiry made a new generation"
    );

    let check = s
        .delivery()
        .drain([s1, s2], Duration::from_secs(60))
        .closed([s3_log, s3b_log]);
    let report = check.verify();
    eprintln!(
        "static group: {} produced, {report:?}; s3's partitions moved {after:?} after it left",
        check.produced().len()
    );
}

#[test]
fn second_live_member_with_the_same_instance_id_fences_the_first() {
    let _w = watchdog(Duration::from_secs(120));
    let mut s = Scenario::new("fence")
        .partitions(4)
        .backlog("before", 40)
        .start();
    let all = s.all.clone();

    let old = static_member(&s, "old", "dup");
    let other = static_member(&s, "other", "other");
    wait_partitioned(&[&old, &other], &all, Duration::from_secs(30));
    let old_parts = old.assignment();
    let generation = other.generation();

    let newer_started = Instant::now();
    let newer = static_member(&s, "newer", "dup");
    wait_for(
        Duration::from_secs(20),
        "the older member with instance id `dup` is fenced",
        || old.log().fatal.is_some(),
        || format!("old: errors {:?}", old.log().errors()),
    );
    let fatal = old.log().fatal.clone().unwrap();
    assert!(
        fatal.contains("FencedInstanceId"),
        "the older member's fatal error is FENCED_INSTANCE_ID: {fatal}"
    );
    wait_for(
        Duration::from_secs(20),
        "the newer member holds the older one's partitions",
        || newer.assignment() == old_parts,
        || describe(&[&newer, &other]),
    );
    assert!(
        is_partitioned(&[&newer, &other], &all),
        "{}",
        describe(&[&newer, &other])
    );
    assert!(
        other.log().rebalances_after(newer_started).is_empty(),
        "replacing a static member does not rebalance the others: {:?}",
        other.log().rebalances_after(newer_started)
    );
    assert_eq!(other.generation(), generation, "generation unchanged");

    // The newer member keeps working.
    let fenced_at = Instant::now();
    s.producer().send_batch(&s.topic, 4, "after", 40);
    let check = s.delivery();
    check.wait_consumed(&[&newer, &other], Duration::from_secs(30));
    let after_fence: Vec<String> = old
        .log()
        .consumed
        .iter()
        .filter(|c| c.at > fenced_at)
        .map(|c| c.key.clone())
        .collect();
    assert!(
        after_fence.is_empty(),
        "the fenced member consumed {after_fence:?}"
    );
    let newer_keys: Vec<String> = newer
        .log()
        .consumed
        .iter()
        .map(|c| c.key.clone())
        .filter(|k| k.starts_with("after"))
        .collect();
    assert!(
        !newer_keys.is_empty(),
        "the newer member consumed the new messages of its partitions"
    );
    check.close([old, newer, other]).verify();
}
