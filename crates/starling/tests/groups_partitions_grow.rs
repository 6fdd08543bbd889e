//! A subscribed group follows its topics: partitions added with CreatePartitions are assigned
//! and consumed after the members' next metadata refresh, and a regex subscription picks up a
//! matching topic created later.

mod common;
mod groups_support;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use groups_support::*;

/// Members learn of new partitions and topics within a second.
const METADATA_REFRESH: (&str, &str) = ("topic.metadata.refresh.interval.ms", "1000");

#[test]
fn group_rebalances_onto_partitions_added_by_create_partitions_and_consumes_them() {
    let _w = watchdog(Duration::from_secs(120));
    let mut s = Scenario::new("grow")
        .partitions(3)
        .consumer(METADATA_REFRESH.0, METADATA_REFRESH.1)
        .backlog("three", 30)
        .start();
    let (boot, topic) = (s.boot(), s.topic.clone());

    let c1 = s.member("c1");
    let c2 = s.member("c2");
    wait_partitioned(&[&c1, &c2], &s.all, Duration::from_secs(30));
    let ends = end_offsets(&s.produced());
    wait_consumed_to_end(&[&c1, &c2], &ends, Duration::from_secs(30));
    let generation = c1.generation();

    grow_topic(&boot, &topic, 6);
    let all = partitions(&topic, 6);
    let took = wait_partitioned(&[&c1, &c2], &all, Duration::from_secs(30));
    assert!(
        c1.generation() > generation,
        "the new partitions came with a new generation"
    );
    for m in [&c1, &c2] {
        assert_eq!(m.assignment().len(), 3, "{}", describe(&[&c1, &c2]));
    }

    // Messages to every partition, the new ones included, are consumed.
    s.producer().send_batch(&topic, 6, "six", 60);
    let check = s.delivery();
    assert!(check.produced().iter().any(|p| p.partition >= 3));
    let check = check.drain([c1, c2], Duration::from_secs(30));
    let consumed = check.consumed();
    let new_parts: BTreeSet<i32> = consumed
        .iter()
        .filter(|c| c.partition >= 3)
        .map(|c| c.partition)
        .collect();
    assert_eq!(
        new_parts,
        BTreeSet::from([3, 4, 5]),
        "new partitions consumed"
    );
    check.verify();
    eprintln!("grow: the group covered 6 partitions {took:?} after CreatePartitions");
}

#[test]
fn regex_subscription_picks_up_a_matching_topic_created_later() {
    regex_subscription_case(&[METADATA_REFRESH]);
}

/// KIP-848: the broker resolves the regex and assigns the new topic without the members
/// refreshing their metadata.
#[test]
fn regex_subscription_picks_up_a_matching_topic_created_later_with_the_consumer_protocol() {
    regex_subscription_case(&[("group.protocol", "consumer")]);
}

/// Two members subscribe to `^PREFIX-.*` with `settings`; a matching topic created later is
/// assigned and consumed, an unrelated one never is.
fn regex_subscription_case(settings: &[(&str, &str)]) {
    let _w = watchdog(Duration::from_secs(120));
    let broker = group_broker(&[]);
    let boot = broker.bootstrap();
    let prefix = unique("grow");
    let group = unique("regex-group");
    let first = format!("{prefix}-first");
    let later = format!("{prefix}-later");
    let unrelated = format!("x{prefix}-unrelated");
    create_topic_sync(&boot, &first, 2);
    create_topic_sync(&boot, &unrelated, 1);
    let producer = Producer::new(&boot);
    producer.send_batch(&first, 2, "first", 20);
    producer.send_batch(&unrelated, 1, "unrelated", 5);

    let pattern = format!("^{prefix}-.*");
    let member = |name: &str| {
        let mut cfg = MemberConfig::new(name, &boot, &group, &pattern, "range");
        for (k, v) in settings {
            cfg = cfg.set(k, v);
        }
        Member::start(cfg)
    };
    let c1 = member("c1");
    let c2 = member("c2");
    wait_partitioned(&[&c1, &c2], &partitions(&first, 2), Duration::from_secs(30));

    create_topic_sync(&boot, &later, 2);
    let mut all = partitions(&first, 2);
    all.extend(partitions(&later, 2));
    wait_partitioned(&[&c1, &c2], &all, Duration::from_secs(30));

    producer.send_batch(&later, 2, "later", 20);
    producer.send_batch(&first, 2, "first-again", 10);
    let produced: Vec<Produced> = producer
        .produced()
        .into_iter()
        .filter(|p| p.topic != unrelated)
        .collect();
    let ends = end_offsets(&produced);
    wait_consumed_to_end(&[&c1, &c2], &ends, Duration::from_secs(30));
    let logs = [c1.close(), c2.close()];
    let refs: Vec<&MemberLog> = logs.iter().collect();
    let consumed = all_consumed(&refs);
    assert!(
        consumed.iter().all(|c| c.topic != unrelated),
        "a topic not matching the pattern was consumed"
    );
    assert!(consumed.iter().any(|c| c.topic == later));
    verify_delivery(&produced, &consumed, &all_commits(&refs), &[], &[]);
}
