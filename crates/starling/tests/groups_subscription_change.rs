//! A live member that changes its subscription triggers a rebalance: the group's new
//! generation assigns the added topic to the member that subscribes to it, while the other
//! member keeps sharing the topic both subscribe to.

mod common;
mod groups_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use groups_support::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

fn consumer(boot: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", boot)
        .set("group.id", group)
        .set("partition.assignment.strategy", "range")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .expect("consumer")
}

fn assigned(c: &BaseConsumer) -> BTreeSet<(String, i32)> {
    c.assignment()
        .map(|l| {
            l.elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls both consumers until `done` holds, collecting the keys of messages they receive.
fn poll_until(
    members: &[&BaseConsumer],
    keys: &mut Vec<(String, String)>,
    limit: Duration,
    what: &str,
    done: impl Fn(&[&BaseConsumer], &[(String, String)]) -> bool,
) {
    let start = Instant::now();
    while !done(members, keys) {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        for c in members {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).to_string();
                keys.push((m.topic().to_string(), key));
            }
        }
    }
}

#[test]
fn member_that_adds_a_topic_to_its_subscription_triggers_a_rebalance_and_gets_that_topic() {
    let _w = watchdog(Duration::from_secs(120));
    let broker = group_broker(&[]);
    let boot = broker.bootstrap();
    let shared = unique("sub-shared");
    let added = unique("sub-added");
    let group = unique("sub-group");
    create_topic_sync(&boot, &shared, 2);
    create_topic_sync(&boot, &added, 2);

    let c1 = consumer(&boot, &group);
    let c2 = consumer(&boot, &group);
    c1.subscribe(&[&shared]).unwrap();
    c2.subscribe(&[&shared]).unwrap();
    let mut keys = Vec::new();
    poll_until(
        &[&c1, &c2],
        &mut keys,
        Duration::from_secs(30),
        "the shared topic to be split",
        |m, _| assigned(m[0]).len() == 1 && assigned(m[1]).len() == 1,
    );
    let before = group_generation(&c1)
        .map(|(g, _)| g)
        .expect("c1 is in the group");

    c2.subscribe(&[&shared, &added]).unwrap();
    poll_until(
        &[&c1, &c2],
        &mut keys,
        Duration::from_secs(30),
        "the added topic to reach c2",
        |m, _| {
            let a2 = assigned(m[1]);
            a2.contains(&(added.clone(), 0))
                && a2.contains(&(added.clone(), 1))
                && assigned(m[0]).len() == 1
        },
    );
    let after = group_generation(&c1)
        .map(|(g, _)| g)
        .expect("c1 is still in the group");
    assert!(
        after > before,
        "a subscription change must start a new generation ({before} -> {after})"
    );
    assert!(
        assigned(&c1).iter().all(|(t, _)| *t == shared),
        "c1 never subscribed to {added} but was assigned {:?}",
        assigned(&c1)
    );

    // Data on the added topic now reaches c2.
    let producer = Producer::new(&boot);
    producer.send_batch(&added, 2, "added", 10);
    poll_until(
        &[&c1, &c2],
        &mut keys,
        Duration::from_secs(30),
        "the added topic's messages",
        |_, k| k.iter().filter(|(t, _)| *t == added).count() >= 10,
    );
}
