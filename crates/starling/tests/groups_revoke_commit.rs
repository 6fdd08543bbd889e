//! Committing in the revoke callback: member A processes messages without committing and
//! commits its positions synchronously when partitions are revoked; when B joins, B's first
//! message on every partition that moved is exactly at A's last committed offset (no gap, no
//! duplicate), with the eager and with the cooperative protocol.

mod common;
mod groups_support;

use std::time::Duration;

use common::*;
use groups_support::*;

fn handoff_on_revoke_commit(strategy: &str) {
    let mut s = Scenario::new("revoke")
        .strategy(strategy)
        .backlog("backlog", 120)
        .producing("live", Duration::from_millis(40))
        .start();
    let cfg = |name: &str| s.member_config(name).commit(CommitPolicy::OnRevoke);

    let a = Member::start(cfg("a"));
    wait_partitioned(&[&a], &s.all, Duration::from_secs(30));
    // A works through the backlog of every partition (and commits nothing meanwhile).
    wait_for(
        Duration::from_secs(30),
        "A consuming the backlog",
        || a.log().consumed.len() >= 120,
        || format!("{} consumed", a.log().consumed.len()),
    );
    assert!(a.log().commits.is_empty(), "A commits only on revoke");

    let b = Member::start(cfg("b"));
    wait_partitioned(&[&a, &b], &s.all, Duration::from_secs(30));
    let moved = b.assignment();
    assert_eq!(moved.len(), 3, "{}", describe(&[&a, &b]));
    // Keep producing until B has read from every partition it took over.
    wait_for(
        Duration::from_secs(30),
        "B consuming from every partition it took over",
        || {
            let log = b.log();
            moved.iter().all(|(t, p)| {
                log.consumed
                    .iter()
                    .any(|c| &c.topic == t && c.partition == *p)
            })
        },
        || format!("B consumed {} messages", b.log().consumed.len()),
    );

    let check = s.delivery().drain([a, b], Duration::from_secs(60));
    let (a_log, b_log) = (&check.logs()[0], &check.logs()[1]);

    for (t, p) in &moved {
        let b_first = b_log
            .consumed
            .iter()
            .find(|c| &c.topic == t && c.partition == *p)
            .unwrap_or_else(|| panic!("B consumed nothing from {t}/{p}"));
        let a_commits: Vec<_> = a_log
            .commits
            .iter()
            .filter(|c| &c.topic == t && c.partition == *p && c.at < b_first.at)
            .collect();
        let last = a_commits
            .last()
            .unwrap_or_else(|| panic!("A committed nothing for {t}/{p} before B started"));
        assert_eq!(
            last.result,
            Ok(()),
            "A's commit in the revoke callback succeeded ({t}/{p}, context {})",
            last.context
        );
        assert_eq!(last.context, "on revoke");
        let a_last = a_log
            .consumed
            .iter()
            .filter(|c| &c.topic == t && c.partition == *p && c.at < b_first.at)
            .map(|c| c.offset)
            .max()
            .unwrap_or_else(|| panic!("A consumed nothing from {t}/{p}"));
        assert_eq!(
            last.offset,
            a_last + 1,
            "A committed right after the last message it processed on {t}/{p}"
        );
        assert_eq!(
            b_first.offset, last.offset,
            "B's first message on {t}/{p} is at A's last committed offset"
        );
    }
    let report = check.verify();
    assert_eq!(
        report.duplicates, 0,
        "commits on revoke leave nothing to redo: {report:?}"
    );
}

#[test]
fn eager_member_committing_on_revoke_hands_off_without_gap_or_duplicate() {
    let _w = watchdog(Duration::from_secs(120));
    handoff_on_revoke_commit("range");
}

#[test]
fn cooperative_member_committing_on_revoke_hands_off_without_gap_or_duplicate() {
    let _w = watchdog(Duration::from_secs(120));
    handoff_on_revoke_commit("cooperative-sticky");
}
