//! The KIP-848 consumer protocol (`group.protocol=consumer`) with real librdkafka members: the
//! broker assigns, members join, scale out and in, and every message is consumed once by one
//! owner at a time, from where the previous owner committed. (Its regex subscription is tested
//! beside the classic one, in `groups_partitions_grow.rs`.)

mod common;
mod groups_support;

use std::time::Duration;

use common::*;
use groups_support::*;

fn consumer_scenario(name: &str) -> Scenario {
    Scenario::new(name).consumer("group.protocol", "consumer")
}

#[test]
fn members_join_scale_out_and_scale_in_without_losing_or_sharing_a_partition() {
    let _w = watchdog(Duration::from_secs(150));
    let mut s = consumer_scenario("kip848-scale")
        .partitions(6)
        .producing("kip848", Duration::from_millis(40))
        .start();
    let all = s.all.clone();

    let c1 = s.member("c1");
    wait_partitioned(&[&c1], &all, Duration::from_secs(30));
    let c2 = s.member("c2");
    let c3 = s.member("c3");
    wait_partitioned(&[&c1, &c2, &c3], &all, Duration::from_secs(30));
    let listed = listed_group(&s.broker, &s.group);
    assert_eq!(
        (listed["type"].as_str(), listed["members"].as_i64()),
        (Some("consumer"), Some(3)),
        "{listed}"
    );
    for m in [&c1, &c2, &c3] {
        assert_eq!(m.assignment().len(), 2, "{}", describe(&[&c1, &c2, &c3]));
    }
    // c3 leaves: its partitions go to the others.
    let c3_log = c3.close();
    wait_partitioned(&[&c1, &c2], &all, Duration::from_secs(30));
    let report = s
        .delivery()
        .closed(vec![c3_log])
        .drain([c1, c2], Duration::from_secs(60))
        .verify();
    assert!(report.handoffs >= 2, "{report:?}");
}

#[test]
fn the_group_runs_the_consumer_protocol_and_a_static_member_gets_its_partitions_back() {
    let _w = watchdog(Duration::from_secs(150));
    let mut s = consumer_scenario("kip848-static")
        .partitions(4)
        .producing("kip848-static", Duration::from_millis(40))
        .start();
    let all = s.all.clone();
    let a = Member::start(s.member_config("a1").instance("a"));
    let b = Member::start(s.member_config("b1").instance("b"));
    wait_partitioned(&[&a, &b], &all, Duration::from_secs(30));
    let listed = listed_group(&s.broker, &s.group);
    assert_eq!(listed["type"], "consumer", "{listed}");
    assert_eq!(listed["members"], 2, "{listed}");
    assert_eq!(listed["protocol"], "uniform", "{listed}");
    let epoch = listed["generation"].as_i64().unwrap();
    let held_by_a = a.assignment();

    // `a` restarts: it leaves as a static member (epoch -2) and comes back under a new member
    // id with the same instance id. Its partitions wait for it and come back; no rebalance.
    let a_log = a.close();
    let a2 = Member::start(s.member_config("a2").instance("a"));
    wait_partitioned(&[&a2, &b], &all, Duration::from_secs(30));
    assert_eq!(a2.assignment(), held_by_a, "{}", describe(&[&a2, &b]));
    let listed = listed_group(&s.broker, &s.group);
    assert_eq!(listed["generation"].as_i64().unwrap(), epoch, "{listed}");

    s.delivery()
        .closed(vec![a_log])
        .drain([a2, b], Duration::from_secs(60))
        .verify();
}

#[test]
fn partitions_added_to_the_topic_are_assigned_without_the_members_asking() {
    let _w = watchdog(Duration::from_secs(120));
    let mut s = consumer_scenario("kip848-grow")
        .partitions(2)
        .backlog("two", 20)
        .start();
    let (boot, topic) = (s.boot(), s.topic.clone());
    let c1 = s.member("c1");
    let c2 = s.member("c2");
    wait_partitioned(&[&c1, &c2], &s.all, Duration::from_secs(30));

    grow_topic(&boot, &topic, 4);
    let all = partitions(&topic, 4);
    wait_partitioned(&[&c1, &c2], &all, Duration::from_secs(30));
    for m in [&c1, &c2] {
        assert_eq!(m.assignment().len(), 2, "{}", describe(&[&c1, &c2]));
    }
    s.producer().send_batch(&topic, 4, "four", 40);
    s.delivery()
        .drain([c1, c2], Duration::from_secs(30))
        .verify();
}
