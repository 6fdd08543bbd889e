//! Cooperative (`cooperative-sticky`, KIP-429) rebalancing with real librdkafka members: a
//! joining member takes partitions away from the others one by one (they are never revoked
//! wholesale and keep the rest throughout), and a leaving member's partitions are handed to the
//! others without revoking theirs.

mod common;
mod groups_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use groups_support::*;

const STRATEGY: &str = "cooperative-sticky";

#[test]
fn cooperative_join_revokes_only_moving_partitions_and_leave_revokes_nothing() {
    let _w = watchdog(Duration::from_secs(150));
    let mut s = Scenario::new("coop")
        .strategy(STRATEGY)
        .producing("coop", Duration::from_millis(40))
        .start();
    let all = s.all.clone();

    let originals = [s.member("c1"), s.member("c2"), s.member("c3")];
    let [c1, c2, c3] = &originals;
    wait_partitioned(&[c1, c2, c3], &all, Duration::from_secs(30));
    // Let the group settle (no rebalance in flight) before taking the "before" picture.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        is_partitioned(&[c1, c2, c3], &all),
        "{}",
        describe(&[c1, c2, c3])
    );
    let before: Vec<BTreeSet<Tp>> = originals.iter().map(Member::assignment).collect();
    let generation_before = c1.generation().expect("c1 has a generation");
    for (m, a) in originals.iter().zip(&before) {
        assert_eq!(a.len(), 2, "{} before the join: {a:?}", m.name);
    }

    // A fourth member joins.
    let joined_at = Instant::now();
    let c4 = s.member("c4");
    wait_partitioned(&[c1, c2, c3, &c4], &all, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        is_partitioned(&[c1, c2, c3, &c4], &all),
        "the group changed again after settling: {}",
        describe(&[c1, c2, c3, &c4])
    );
    let moved = c4.assignment();
    assert!(!moved.is_empty(), "c4 got partitions");
    let generation_after = c4.generation().expect("c4 has a generation");
    assert_eq!(
        generation_after,
        generation_before + 2,
        "a cooperative join takes two rounds: one to revoke, one to assign"
    );

    let mut revoked_total = BTreeSet::new();
    for (m, had) in originals.iter().zip(&before) {
        let log = m.snapshot();
        let revoked: BTreeSet<Tp> = log
            .rebalances_after(joined_at)
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Revoke { .. }))
            .flat_map(|e| e.partitions.iter().cloned())
            .collect();
        for e in log.rebalances_after(joined_at) {
            match &e.kind {
                EventKind::Revoke { lost } => {
                    assert!(
                        !lost,
                        "{}: partitions lost instead of revoked: {e:?}",
                        m.name
                    );
                    assert!(
                        &e.partitions != had,
                        "{}: its whole assignment {had:?} was revoked at once",
                        m.name
                    );
                }
                EventKind::Assign => assert!(
                    e.partitions.is_empty(),
                    "{} gained {:?} when a member joined",
                    m.name,
                    e.partitions
                ),
                _ => {}
            }
        }
        assert!(
            revoked.is_subset(&moved),
            "{} lost {revoked:?} but only {moved:?} moved to c4",
            m.name
        );
        assert_eq!(
            revoked,
            had.intersection(&moved).cloned().collect(),
            "{}: revoked exactly what moved from it",
            m.name
        );
        let kept: BTreeSet<Tp> = had.difference(&moved).cloned().collect();
        assert!(!kept.is_empty(), "{} kept partitions", m.name);
        assert_eq!(
            log.assignment, kept,
            "{} holds what it had minus what moved",
            m.name
        );
        revoked_total.extend(revoked);
    }
    assert_eq!(
        revoked_total, moved,
        "every partition c4 holds was revoked from its previous owner first"
    );
    assert!(
        c4.log().revokes().is_empty(),
        "the new member was never revoked"
    );

    // c2 leaves: the others only gain partitions.
    let c2_parts = c2.assignment();
    let left_at = Instant::now();
    let [c1, c2, c3] = originals;
    let c2_log = c2.close();
    wait_partitioned(&[&c1, &c3, &c4], &all, Duration::from_secs(20));
    let moved_after = left_at.elapsed();
    assert!(
        moved_after < Duration::from_secs(6),
        "c2's partitions took {moved_after:?} to move after it left"
    );
    let mut gained = BTreeSet::new();
    for m in [&c1, &c3, &c4] {
        for e in m.log().rebalances_after(left_at) {
            match &e.kind {
                EventKind::Revoke { .. } => {
                    panic!("{} was revoked {:?} when c2 left", m.name, e.partitions)
                }
                EventKind::Assign => gained.extend(e.partitions.iter().cloned()),
                _ => {}
            }
        }
    }
    assert_eq!(gained, c2_parts, "exactly c2's partitions were handed out");

    let check = s
        .delivery()
        .drain([c1, c3, c4], Duration::from_secs(60))
        .closed([c2_log]);
    let report = check.verify();
    assert!(report.handoffs >= 2, "{report:?}");
    eprintln!(
        "cooperative group: {} produced, {report:?}; c4 took {moved:?}",
        check.produced().len()
    );
}
