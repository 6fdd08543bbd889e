//! Online migration between the classic protocol and the KIP-848 consumer protocol with real
//! librdkafka members: a running cooperative-sticky classic group is upgraded member by member
//! (each classic consumer stopped and replaced by one with `group.protocol=consumer`) and
//! downgraded back (by members leaving, or by a static member restarting on the classic
//! protocol) while a producer keeps writing, and every message is consumed once by one owner
//! at a time, from where the previous owner committed.

mod common;
mod groups_support;

use std::time::Duration;

use common::*;
use groups_support::*;

fn dyns(members: &[Member]) -> Vec<&dyn Participant> {
    members.iter().map(|m| m as &dyn Participant).collect()
}

#[test]
fn a_running_classic_group_is_upgraded_member_by_member_without_losing_or_sharing_a_partition() {
    let _w = watchdog(Duration::from_secs(240));
    let mut s = Scenario::new("migrate")
        .strategy("cooperative-sticky")
        .partitions(6)
        .producing("migrate", Duration::from_millis(40))
        .start();
    let all = s.all.clone();

    let mut classic = vec![s.member("k1"), s.member("k2"), s.member("k3")];
    wait_partitioned(&dyns(&classic), &all, Duration::from_secs(30));
    assert_eq!(listed_group(&s.broker, &s.group)["type"], "classic");

    let mut closed = Vec::new();
    let mut upgraded = Vec::new();
    for i in 1..=3 {
        // Stop one classic consumer, start its replacement on the consumer protocol.
        closed.push(classic.remove(0).close());
        upgraded.push(Member::start(
            s.member_config(&format!("c{i}"))
                .set("group.protocol", "consumer"),
        ));
        let everyone: Vec<&dyn Participant> = classic
            .iter()
            .chain(upgraded.iter())
            .map(|m| m as &dyn Participant)
            .collect();
        wait_partitioned(&everyone, &all, Duration::from_secs(60));
        let listed = listed_group(&s.broker, &s.group);
        assert_eq!(
            (listed["type"].as_str(), listed["members"].as_i64()),
            (Some("consumer"), Some(3)),
            "after replacing k{i}: {listed}; {}",
            describe(&everyone)
        );
        if i == 1 {
            // Mid-upgrade, `starling group describe` tells the two kinds of member apart.
            let bootstrap = s.broker.bootstrap();
            let (status, out, err) = run_to_exit(
                &["group", "describe", &s.group, "--bootstrap", &bootstrap],
                Duration::from_secs(20),
            );
            assert!(status.success(), "{err}");
            let kinds: Vec<&str> = out
                .lines()
                .filter_map(|line| line.split_whitespace().last())
                .filter(|last| *last == "classic" || *last == "consumer")
                .collect();
            let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
            assert_eq!((count("classic"), count("consumer")), (2, 1), "{out}");
        }
    }

    let report = finish(&mut s, closed, upgraded);
    assert!(report.handoffs >= 3, "{report:?}");
}

#[test]
fn a_consumer_protocol_group_is_downgraded_member_by_member_and_turns_classic_with_its_last_consumer_member(
) {
    let _w = watchdog(Duration::from_secs(240));
    let mut s = Scenario::new("downgrade")
        .strategy("cooperative-sticky")
        .partitions(6)
        .producing("downgrade", Duration::from_millis(40))
        .start();
    let all = s.all.clone();

    let mut consumers: Vec<Member> = (1..=3)
        .map(|i| {
            Member::start(
                s.member_config(&format!("c{i}"))
                    .set("group.protocol", "consumer"),
            )
        })
        .collect();
    wait_partitioned(&dyns(&consumers), &all, Duration::from_secs(30));
    assert_eq!(listed_group(&s.broker, &s.group)["type"], "consumer");

    let mut closed = Vec::new();
    let mut classic = Vec::new();
    for i in 1..=3 {
        closed.push(consumers.remove(0).close());
        classic.push(s.member(&format!("k{i}")));
        let everyone: Vec<&dyn Participant> = consumers
            .iter()
            .chain(classic.iter())
            .map(|m| m as &dyn Participant)
            .collect();
        wait_partitioned(&everyone, &all, Duration::from_secs(60));
        let listed = listed_group(&s.broker, &s.group);
        let expected = if consumers.is_empty() {
            "classic"
        } else {
            "consumer"
        };
        assert_eq!(
            (listed["type"].as_str(), listed["members"].as_i64()),
            (Some(expected), Some(3)),
            "after replacing c{i}: {listed}; {}",
            describe(&everyone)
        );
    }

    finish(&mut s, closed, classic);
}

#[test]
fn a_classic_static_member_replacing_the_last_consumer_protocol_member_turns_the_group_classic() {
    let _w = watchdog(Duration::from_secs(240));
    let mut s = Scenario::new("static-downgrade")
        .strategy("cooperative-sticky")
        .partitions(6)
        .producing("static-downgrade", Duration::from_millis(40))
        .start();
    let all = s.all.clone();

    let consumer = Member::start(
        s.member_config("c1")
            .set("group.protocol", "consumer")
            .set("group.instance.id", "i1"),
    );
    let classic = s.member("k1");
    wait_partitioned(&[&consumer, &classic], &all, Duration::from_secs(30));
    assert_eq!(listed_group(&s.broker, &s.group)["type"], "consumer");

    // The static member restarts on the classic protocol with the same instance id.
    let closed = vec![consumer.close()];
    // It left temporarily (epoch -2): its place is kept, so the group is unchanged.
    let listed = listed_group(&s.broker, &s.group);
    assert_eq!(
        (listed["type"].as_str(), listed["members"].as_i64()),
        (Some("consumer"), Some(2)),
        "{listed}"
    );
    let back = Member::start(s.member_config("k1-i1").set("group.instance.id", "i1"));
    wait_partitioned(&[&classic, &back], &all, Duration::from_secs(60));
    let listed = listed_group(&s.broker, &s.group);
    assert_eq!(
        (listed["type"].as_str(), listed["members"].as_i64()),
        (Some("classic"), Some(2)),
        "{listed}; {}",
        describe(&[&classic, &back])
    );

    finish(&mut s, closed, vec![classic, back]);
}

/// The end of a migration test, once the group has settled: the group's committed offsets
/// must be at the log end (a commit a member sent just before it heard of a new epoch still
/// counts, for the partitions it held: KIP-1251), and every produced message consumed once by
/// one owner at a time, from where the previous owner committed.
fn finish(s: &mut Running, closed: Vec<MemberLog>, members: Vec<Member>) -> DeliveryReport {
    std::thread::sleep(Duration::from_millis(1500));
    let produced = s.stop_producing();
    let check = DeliveryCheck::new(produced).closed(closed);
    check.wait_consumed(&members.iter().collect::<Vec<_>>(), Duration::from_secs(60));
    // Each message is committed right after it is consumed.
    std::thread::sleep(Duration::from_millis(500));
    let ends = end_offsets(check.produced());
    let committed = committed(&s.boot(), &s.group, &s.all);
    for (tp, end) in &ends {
        assert_eq!(committed[tp], Some(*end), "{tp:?}: {committed:?}");
    }
    check.close(members).verify()
}
