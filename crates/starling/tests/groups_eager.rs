//! Eager (`range`) consumer groups with real librdkafka members while a producer keeps
//! producing: members joining, leaving cleanly (LeaveGroup) and dying without a word (kcat in a
//! child process, SIGKILL), and the initial rebalance delay of a new group.

mod common;
mod groups_support;

use std::time::{Duration, Instant};

use common::*;
use groups_support::*;

/// Session timeout of the librdkafka members: long, so that a clean leave that moved
/// partitions only after it would be obvious.
const MEMBER_SESSION_MS: u32 = 20_000;
/// Session timeout of the member that gets killed.
const KCAT_SESSION_MS: u32 = 4_000;
const KCAT_HEARTBEAT_MS: u32 = 500;

#[test]
fn eager_group_shares_partitions_and_moves_them_on_join_clean_leave_and_member_death() {
    let _w = watchdog(Duration::from_secs(180));
    let mut s = Scenario::new("eager")
        .producing("eager", Duration::from_millis(40))
        .start();
    let (boot, all) = (s.boot(), s.all.clone());

    let cfg = |name: &str| s.member_config(name).session(MEMBER_SESSION_MS, 500);
    let c1 = Member::start(cfg("c1"));
    let c2 = Member::start(cfg("c2"));
    let c3 = Member::start(cfg("c3"));
    wait_partitioned(&[&c1, &c2, &c3], &all, Duration::from_secs(30));
    for m in [&c1, &c2, &c3] {
        assert_eq!(
            m.assignment().len(),
            2,
            "range over 6 partitions and 3 members: {}",
            describe(&[&c1, &c2, &c3])
        );
    }

    // A fourth member joins: everyone gets partitions.
    let mut k4 = KcatMember::start(
        "k4",
        &boot,
        &s.group,
        &s.topic,
        KCAT_SESSION_MS,
        KCAT_HEARTBEAT_MS,
    );
    wait_partitioned(&[&c1, &c2, &c3, &k4], &all, Duration::from_secs(30));
    let generation_with_four = c1.generation();

    // c3 leaves cleanly: its partitions move long before its session timeout.
    let c3_parts = c3.assignment();
    let left_at = Instant::now();
    let c3_log = c3.close();
    wait_partitioned(&[&c1, &c2, &k4], &all, Duration::from_secs(30));
    let moved_after = left_at.elapsed();
    assert!(
        moved_after < Duration::from_secs(6),
        "after a clean leave the partitions {c3_parts:?} took {moved_after:?} to move \
         (the leaver's session timeout is {MEMBER_SESSION_MS} ms)"
    );
    assert!(
        c1.generation() > generation_with_four,
        "the leave made a new generation"
    );

    // k4 dies without LeaveGroup: its partitions move only once its session has expired.
    let k4_parts = k4.current_assignment();
    assert!(!k4_parts.is_empty(), "k4 had partitions");
    wait_for(
        Duration::from_secs(30),
        "k4 consuming from its partitions",
        || {
            k4.consumed()
                .iter()
                .any(|c| k4_parts.contains(&tp(&c.topic, c.partition)))
        },
        || format!("k4: {:?}", k4.log().stderr),
    );
    let killed_at = k4.kill9();
    let snapshot = committed(&boot, &s.group, &k4_parts);
    wait_partitioned(&[&c1, &c2], &all, Duration::from_secs(40));
    // When did the survivors first get one of k4's partitions?
    let taken_at = [&c1, &c2]
        .iter()
        .flat_map(|m| {
            m.log()
                .events
                .iter()
                .filter(|e| {
                    e.at > killed_at
                        && e.kind == EventKind::Assign
                        && !e.partitions.is_disjoint(&k4_parts)
                })
                .map(|e| e.at)
                .collect::<Vec<_>>()
        })
        .min()
        .expect("k4's partitions were assigned to a survivor");
    let after = taken_at - killed_at;
    let earliest = Duration::from_millis((KCAT_SESSION_MS - KCAT_HEARTBEAT_MS - 300) as u64);
    assert!(
        after >= earliest,
        "k4's partitions {k4_parts:?} moved {after:?} after it was killed, before its session \
         timeout of {KCAT_SESSION_MS} ms could have expired"
    );
    assert!(
        after < Duration::from_millis(KCAT_SESSION_MS as u64 + 10_000),
        "k4's partitions moved only {after:?} after it was killed (session timeout {KCAT_SESSION_MS} ms)"
    );

    // Everything produced is consumed; duplicates only from uncommitted work.
    let known: Vec<KnownCommit> = snapshot
        .iter()
        .map(|(t, o)| KnownCommit {
            at: killed_at,
            tp: t.clone(),
            offset: o.unwrap_or(0),
        })
        .collect();
    let check = s
        .delivery()
        .drain([c1, c2], Duration::from_secs(60))
        .closed([c3_log])
        .opaque("k4", k4.consumed(), known);
    let report = check.verify();
    assert!(
        report.handoffs >= 3,
        "partitions changed owners: {report:?}"
    );
    assert!(
        !k4.consumed().is_empty(),
        "the kcat member consumed messages"
    );
    eprintln!(
        "eager group: {} produced, {report:?}, c3's partitions moved {moved_after:?} after its \
         leave, k4's {after:?} after its death",
        check.produced().len()
    );
}

#[test]
fn initial_rebalance_delay_holds_a_new_group_until_members_have_gathered() {
    let _w = watchdog(Duration::from_secs(90));
    let delay_ms = 3000u64;
    let s = Scenario::new("delay")
        .broker("group.initial.rebalance.delay.ms", "3000")
        .start();

    let started = Instant::now();
    let c1 = s.member("c1");
    std::thread::sleep(Duration::from_millis(1000));
    let c2 = s.member("c2");
    wait_partitioned(&[&c1, &c2], &s.all, Duration::from_secs(30));

    let first_assign = |m: &Member| {
        m.log()
            .assigns()
            .first()
            .map(|e| (e.at, e.generation))
            .expect("an Assign event")
    };
    let (c1_at, c1_gen) = first_assign(&c1);
    let (_, c2_gen) = first_assign(&c2);
    let waited = c1_at - started;
    assert!(
        waited >= Duration::from_millis(delay_ms - 300),
        "the first member of a new group got its assignment after {waited:?}, before \
         group.initial.rebalance.delay.ms={delay_ms} had passed"
    );
    assert!(
        waited < Duration::from_millis(delay_ms * 2 + 8_000),
        "the first assignment took {waited:?}"
    );
    assert_eq!(
        (c1_gen, c2_gen),
        (Some(1), Some(1)),
        "both members (the second joined 1 s after the first) are in the first generation"
    );
    for m in [&c1, &c2] {
        assert!(
            m.log().revokes().is_empty(),
            "{} was never revoked: the group formed once",
            m.name
        );
        assert_eq!(m.assignment().len(), 3, "{}", describe(&[&c1, &c2]));
    }
}

/// The checker the group tests rely on rejects what it is meant to reject.
#[test]
fn delivery_check_rejects_losses_gaps_and_restarts_away_from_the_committed_offset() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let produced: Vec<Produced> = (0..4)
        .map(|o| Produced {
            topic: "t".into(),
            partition: 0,
            offset: o,
            key: format!("k{o}"),
        })
        .collect();
    let c = |member: &str, tenure: u64, ms: u64, offset: i64| Consumption {
        member: member.into(),
        tenure,
        at: at(ms),
        topic: "t".into(),
        partition: 0,
        offset,
        key: format!("k{offset}"),
        assigned: true,
    };
    let commit = |member: &str, ms: u64, offset: i64, ok: bool| CommitRec {
        member: member.into(),
        at: at(ms),
        topic: "t".into(),
        partition: 0,
        offset,
        result: if ok { Ok(()) } else { Err("failed".into()) },
        context: "after message",
    };
    let fails = |consumed: Vec<Consumption>, commits: Vec<CommitRec>| {
        std::panic::catch_unwind(|| verify_delivery(&produced, &consumed, &commits, &[], &[]))
            .is_err()
    };

    // a reads 0..=1 and commits 2; b takes over at 2: fine, no duplicates.
    let good = vec![
        c("a", 1, 1, 0),
        c("a", 1, 3, 1),
        c("b", 1, 10, 2),
        c("b", 1, 11, 3),
    ];
    let commits = vec![commit("a", 2, 1, true), commit("a", 4, 2, true)];
    let report = verify_delivery(&produced, &good, &commits, &[], &[]);
    assert_eq!((report.duplicates, report.handoffs), (0, 1));
    // a's last commit failed: b restarting at 1 (a duplicate of uncommitted work) is fine.
    let redo = vec![
        c("a", 1, 1, 0),
        c("a", 1, 3, 1),
        c("b", 1, 10, 1),
        c("b", 1, 11, 2),
        c("b", 1, 12, 3),
    ];
    let failed_commit = vec![commit("a", 2, 1, true), commit("a", 4, 2, false)];
    assert_eq!(
        verify_delivery(&produced, &redo, &failed_commit, &[], &[]).duplicates,
        1
    );
    // ... but the same restart after a successful commit of 2 is a broker bug.
    assert!(fails(redo.clone(), commits.clone()));
    // b starting past the committed offset loses a message.
    assert!(fails(
        vec![c("a", 1, 1, 0), c("a", 1, 3, 1), c("b", 1, 10, 3)],
        vec![commit("a", 2, 1, true), commit("a", 4, 2, true)]
    ));
    // A gap inside one ownership.
    assert!(fails(
        vec![c("a", 1, 1, 0), c("a", 1, 3, 2), c("a", 1, 4, 3)],
        vec![]
    ));
    // A message never consumed.
    assert!(fails(vec![c("a", 1, 1, 0), c("a", 1, 3, 1)], vec![]));
    // The first owner must start at 0 when nothing was committed.
    assert!(fails(
        vec![
            c("a", 1, 1, 1),
            c("a", 1, 2, 2),
            c("a", 1, 3, 3),
            c("b", 1, 4, 0)
        ],
        vec![]
    ));
}
