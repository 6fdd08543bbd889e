//! Group state on disk: a static group's members, generation, assignments and committed
//! offsets survive kill -9 and a clean restart of the broker (its members come back without a
//! rebalance), and the offsets of an empty group expire after `offsets.retention.minutes` while
//! those of an active group stay.

mod common;
mod groups_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use groups_support::*;
use kafka_protocol::messages::{ConsumerProtocolAssignment, DescribeGroupsRequest, GroupId};
use kafka_protocol::protocol::{Decodable, StrBytes};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// What DescribeGroups says about a group, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupView {
    error_code: i16,
    state: String,
    protocol_type: String,
    protocol: String,
    /// member id -> (instance id, client id, assigned partitions)
    members: BTreeMap<String, (Option<String>, String, BTreeSet<Tp>)>,
}

fn describe_group(broker: &Broker, group: &str) -> GroupView {
    let req = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))]);
    let resp = RawClient::connect(broker.addr()).call(5, &req);
    assert_eq!(resp.groups.len(), 1);
    let g = &resp.groups[0];
    let members = g
        .members
        .iter()
        .map(|m| {
            let mut bytes = m.member_assignment.clone();
            let parts = if bytes.len() < 2 {
                BTreeSet::new()
            } else {
                let version = i16::from_be_bytes([bytes[0], bytes[1]]);
                let _ = bytes.split_to(2);
                let a = ConsumerProtocolAssignment::decode(&mut bytes, version)
                    .expect("consumer protocol assignment");
                a.assigned_partitions
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(move |p| tp(t.topic.0.as_str(), *p)))
                    .collect()
            };
            (
                m.member_id.to_string(),
                (
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                    m.client_id.to_string(),
                    parts,
                ),
            )
        })
        .collect();
    GroupView {
        error_code: g.error_code,
        state: g.group_state.to_string(),
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        members,
    }
}

fn static_member(s: &Running, name: &str, instance: &str) -> Member {
    Member::start(
        s.member_config(name)
            .instance(instance)
            .session(30_000, 500),
    )
}

#[test]
fn static_group_members_generation_and_offsets_survive_kill9_and_restart() {
    let _w = watchdog(Duration::from_secs(150));
    let mut s = Scenario::new("durable")
        .partitions(4)
        .backlog("before", 40)
        .start();
    let mut produced = s.stop_producing();
    let (group, all) = (s.group.clone(), s.all.clone());

    let boot = s.boot();
    let s1 = static_member(&s, "s1", "durable-1");
    let s2 = static_member(&s, "s2", "durable-2");
    wait_partitioned(&[&s1, &s2], &all, Duration::from_secs(30));
    wait_consumed_to_end(
        &[&s1, &s2],
        &end_offsets(&produced),
        Duration::from_secs(30),
    );
    let generation = s1.generation().expect("generation");
    let (a1, a2) = (s1.assignment(), s2.assignment());
    // Static members leave no LeaveGroup behind: the group stays Stable with both of them.
    let logs_before = [s1.close(), s2.close()];

    let view = describe_group(&s.broker, &group);
    assert_eq!(
        (
            view.error_code,
            view.state.as_str(),
            view.protocol_type.as_str(),
            view.protocol.as_str()
        ),
        (0, "Stable", "consumer", "range"),
        "{view:?}"
    );
    let by_instance: BTreeMap<Option<String>, BTreeSet<Tp>> = view
        .members
        .values()
        .map(|(i, _, parts)| (i.clone(), parts.clone()))
        .collect();
    assert_eq!(
        by_instance,
        BTreeMap::from([
            (Some("durable-1".to_string()), a1.clone()),
            (Some("durable-2".to_string()), a2.clone()),
        ]),
        "DescribeGroups shows both static members with their assignments"
    );
    let offsets = committed(&boot, &group, &all);
    let expected: BTreeMap<Tp, Option<i64>> = all.iter().map(|t| (t.clone(), Some(10))).collect();
    assert_eq!(offsets, expected, "every partition committed to its end");

    s.broker.kill9();
    s.broker.start_again();
    assert_eq!(
        describe_group(&s.broker, &group),
        view,
        "the group after kill -9"
    );
    assert_eq!(
        committed(&s.boot(), &group, &all),
        expected,
        "offsets after kill -9"
    );

    s.broker.restart();
    assert_eq!(
        describe_group(&s.broker, &group),
        view,
        "the group after a clean restart"
    );
    assert_eq!(
        committed(&s.boot(), &group, &all),
        expected,
        "offsets after a clean restart"
    );

    // The members come back (new clients, same instance ids): same partitions, same generation,
    // nothing revoked, and they continue from the committed offsets.
    let s1b = static_member(&s, "s1-again", "durable-1");
    let s2b = static_member(&s, "s2-again", "durable-2");
    wait_partitioned(&[&s1b, &s2b], &all, Duration::from_secs(30));
    assert_eq!((s1b.assignment(), s2b.assignment()), (a1, a2));
    assert_eq!(
        (s1b.generation(), s2b.generation()),
        (Some(generation), Some(generation)),
        "no rebalance across the broker restarts"
    );
    s.producer().send_batch(&s.topic, 4, "after", 20);
    produced.extend(s.stop_producing());
    let check = DeliveryCheck::new(produced).closed(logs_before);
    check.wait_consumed(&[&s1b, &s2b], Duration::from_secs(30));
    for m in [&s1b, &s2b] {
        assert!(
            m.log().revokes().is_empty(),
            "{} was revoked: {:?}",
            m.name,
            m.log().revokes()
        );
    }
    let report = check.close([s1b, s2b]).verify();
    assert_eq!(report.duplicates, 0, "{report:?}");
}

/// `offsets.retention.minutes` is in minutes, so this test takes a little over one.
#[test]
fn offsets_of_an_empty_group_expire_after_retention_while_an_active_groups_stay() {
    let _w = watchdog(Duration::from_secs(180));
    let broker = group_broker(&[
        ("offsets.retention.minutes", "1"),
        ("offsets.retention.check.interval.ms", "1000"),
    ]);
    let boot = broker.bootstrap();
    let topic = unique("retention");
    create_topic_sync(&boot, &topic, 1);
    let all = partitions(&topic, 1);
    let producer = Producer::new(&boot);
    producer.send_batch(&topic, 1, "r", 10);
    let ends = end_offsets(&producer.produced());

    let left_group = unique("retention-left");
    let active_group = unique("retention-active");
    let standalone_group = unique("retention-standalone");
    let leaving = Member::start(MemberConfig::new(
        "leaving",
        &boot,
        &left_group,
        &topic,
        "range",
    ));
    let active = Member::start(MemberConfig::new(
        "active",
        &boot,
        &active_group,
        &topic,
        "range",
    ));
    wait_consumed_to_end(&[&leaving], &ends, Duration::from_secs(30));
    wait_consumed_to_end(&[&active], &ends, Duration::from_secs(30));
    let standalone = consumer(&boot, &[("group.id", standalone_group.as_str())]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(4))
        .unwrap();
    standalone
        .commit(&tpl, CommitMode::Sync)
        .expect("standalone commit");
    drop(standalone);
    leaving.close(); // LeaveGroup: the group is now Empty.
    let t0 = Instant::now();

    let present = |group: &str| committed(&boot, group, &all)[&tp(&topic, 0)];
    assert_eq!(present(&left_group), Some(10));
    assert_eq!(present(&active_group), Some(10));
    assert_eq!(present(&standalone_group), Some(4));

    std::thread::sleep(Duration::from_secs(50));
    assert_eq!(
        present(&left_group),
        Some(10),
        "50 s after the group emptied"
    );
    assert_eq!(present(&standalone_group), Some(4), "50 s after the commit");

    let mut gone: BTreeMap<&str, Duration> = BTreeMap::new();
    while gone.len() < 2 && t0.elapsed() < Duration::from_secs(80) {
        for g in [left_group.as_str(), standalone_group.as_str()] {
            if !gone.contains_key(g) && present(g).is_none() {
                gone.insert(g, t0.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    for g in [left_group.as_str(), standalone_group.as_str()] {
        let at = gone
            .get(g)
            .unwrap_or_else(|| panic!("offsets of {g} still there {:?} later", t0.elapsed()));
        assert!(
            *at >= Duration::from_secs(55),
            "offsets of {g} expired after {at:?}, before the one-minute retention"
        );
    }
    assert_eq!(
        present(&active_group),
        Some(10),
        "offsets of a group with an active member do not expire"
    );
    assert!(
        active.assignment() == all,
        "the active member still holds the partition"
    );
    eprintln!("retention: offsets expired after {gone:?}");
}
