//! Rebalance records: every cause, the members that joined and left, phase timings in
//! simulated time, how records close (Stable, Empty, Restarted, Deleted), the bounded history,
//! what each step hands out in `Output::rebalances`, and the partition movements decoded from
//! real `ConsumerProtocolAssignment` bytes — cooperative (two rounds) and eager.

use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};

use super::*;
use crate::assignment::{self, Ownership};
use crate::history::{
    AssignmentChange, DepartureReason, MemberDeparture, PartitionMove, PartitionOwner,
    RebalanceCause, RebalanceOutcome,
};
use crate::recorder;

/// (topic, partitions) pairs.
type Parts<'a> = &'a [(&'a str, &'a [i32])];

/// A consumer assignment as a client encodes it: the version, then the struct at it.
fn assignment_at(version: i16, parts: Parts) -> Bytes {
    let mut value = ConsumerProtocolAssignment::default();
    value.assigned_partitions = parts
        .iter()
        .map(|(topic, partitions)| {
            let mut t = AssignedTopic::default();
            t.topic = sb(topic).into();
            t.partitions = partitions.to_vec();
            t
        })
        .collect();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&version.to_be_bytes());
    value.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn assignment(parts: Parts) -> Bytes {
    assignment_at(3, parts)
}

/// A consumer subscription (v3) to `topics` naming the partitions the member owns.
fn metadata(topics: &[&str], owned: Parts) -> Bytes {
    let mut value = ConsumerProtocolSubscription::default();
    value.topics = topics.iter().map(|t| sb(t)).collect();
    value.owned_partitions = owned
        .iter()
        .map(|(topic, partitions)| {
            let mut t = OwnedTopic::default();
            t.topic = sb(topic).into();
            t.partitions = partitions.to_vec();
            t
        })
        .collect();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&3i16.to_be_bytes());
    value.encode(&mut buf, 3).unwrap();
    buf.freeze()
}

/// A cooperative-sticky consumer subscribed to "t", owning `owned`.
fn coop(member: &str, owned: Parts) -> Join {
    Join::new(member).protocols(&[("cooperative-sticky", metadata(&["t"], owned))])
}

/// An eager range consumer subscribed to "t".
fn eager(member: &str) -> Join {
    Join::new(member).protocols(&[("range", metadata(&["t"], &[]))])
}

fn owner(topic: &str, partition: i32, member: &str) -> PartitionOwner {
    PartitionOwner {
        topic: topic.to_string(),
        partition,
        member_id: member.to_string(),
    }
}

fn moved(topic: &str, partition: i32, from: &str, to: &str) -> PartitionMove {
    PartitionMove {
        topic: topic.to_string(),
        partition,
        from: from.to_string(),
        to: to.to_string(),
    }
}

fn left(member: &str, reason: DepartureReason) -> MemberDeparture {
    MemberDeparture {
        member_id: member.to_string(),
        group_instance_id: None,
        reason,
    }
}

/// Members join one after the other (KIP-394 round trips) and the join completes; returns
/// their ids, leader first.
fn form(ctx: &mut Ctx, joins: &[Join]) -> Vec<String> {
    let ids = joins
        .iter()
        .map(|join| ctx.join_new(join.clone()).0)
        .collect();
    ctx.tick();
    ids
}

/// Followers sync (held), then the leader (`members[0]`) syncs `assignments` in member order.
fn settle(ctx: &mut Ctx, members: &[&str], generation: i32, assignments: &[Bytes]) {
    let held: Vec<RequestId> = members[1..]
        .iter()
        .map(|m| ctx.sync(&Sync::new(m, generation)))
        .collect();
    let mut sync = Sync::new(members[0], generation);
    for (member, bytes) in members.iter().zip(assignments) {
        sync = sync.assign(member, bytes);
    }
    let id = ctx.sync(&sync);
    assert_eq!(ctx.sync_response(id).error_code, 0);
    for id in held {
        assert_eq!(ctx.sync_response(id).error_code, 0);
    }
    assert_eq!(ctx.state(), Some(GroupState::Stable));
}

fn open(ctx: &Ctx) -> RebalanceRecord {
    let record = ctx.history().last().cloned().expect("a rebalance record");
    assert_eq!(record.outcome, RebalanceOutcome::InProgress);
    record
}

fn last_closed(ctx: &Ctx) -> RebalanceRecord {
    assert_eq!(ctx.last_rebalances.len(), 1, "{:?}", ctx.last_rebalances);
    ctx.last_rebalances[0].clone()
}

// ---- causes ----

#[test]
fn first_member_of_empty_group_opens_member_joined_record() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(Join::new(""));
    let record = open(&ctx);
    assert_eq!(record.group_id, G);
    assert_eq!(record.cause, RebalanceCause::MemberJoined);
    assert_eq!(record.trigger_member.as_deref(), Some(a.as_str()));
    assert_eq!(record.generation, 0);
    assert_eq!(record.protocol_type, "consumer");
    assert!(!record.consumer_protocol, "a classic join and sync");
    assert_eq!(record.started_ms, 1000);
    assert!(record.members_before.is_empty());
    assert_eq!(record.joined, vec![a.clone()]);
    assert!(record.left.is_empty());
    assert!(ctx.last_rebalances.is_empty());

    ctx.tick();
    let record = open(&ctx);
    assert_eq!(record.generation, 1);
    assert_eq!(record.protocol.as_deref(), Some("range"));
    assert_eq!(record.join_completed_ms, Some(1000));
    assert_eq!(record.members.len(), 1);
    assert_eq!(record.members[0].member_id, a);
    assert_eq!(record.members[0].client_id, "client");
    assert_eq!(record.members[0].client_host, "/10.0.0.1");

    settle(&mut ctx, &[&a], 1, &[assignment(&[("t", &[0])])]);
    let closed = last_closed(&ctx);
    assert_eq!(closed.outcome, RebalanceOutcome::Stable);
    assert_eq!(ctx.history(), vec![closed]);
}

#[test]
fn members_arriving_during_the_initial_delay_are_joined_in_the_same_record() {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 3000,
        ..GroupConfig::default()
    });
    let (a, _) = ctx.join_new(Join::new(""));
    ctx.sleep(1000);
    let (b, _) = ctx.join_new(Join::new(""));
    assert_eq!(ctx.history().len(), 1);
    assert_eq!(open(&ctx).joined, vec![a, b]);
}

#[test]
fn new_member_joining_stable_group_opens_member_joined_record_with_members_before() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let (c, _) = ctx.join_new(Join::new(""));
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::MemberJoined);
    assert_eq!(record.trigger_member.as_deref(), Some(c.as_str()));
    assert_eq!(record.generation, 1);
    assert_eq!(record.members_before, members);
    assert_eq!(record.joined, vec![c]);
    assert_eq!(ctx.history().len(), 2);
}

#[test]
fn join_reason_is_recorded_from_v8_and_ignored_before() {
    let mut ctx = Ctx::new();
    let a = ctx.single_member_group();
    ctx.join(
        &Join::new(&a)
            .version(8)
            .reason("cached metadata has changed"),
    );
    assert_eq!(
        open(&ctx).client_reason.as_deref(),
        Some("cached metadata has changed")
    );
    settle(&mut ctx, &[&a], 2, &[Bytes::new()]);

    ctx.join(&Join::new(&a).version(7).reason("not on the wire at v7"));
    assert_eq!(open(&ctx).client_reason, None);
}

#[test]
fn leave_group_opens_member_left_record_with_the_departure() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.send(3, leave_request(G, &[(&members[1], None)], 3));
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::MemberLeft);
    assert_eq!(record.trigger_member.as_deref(), Some(members[1].as_str()));
    assert_eq!(record.members_before, members);
    assert_eq!(record.left, vec![left(&members[1], DepartureReason::Left)]);
    assert!(record.joined.is_empty());
}

#[test]
fn leave_group_with_max_poll_reason_is_max_poll_exceeded() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let reason = "consumer poll timeout has expired.";
    ctx.send(
        5,
        leave_request_with_reasons(G, &[(&members[1], None, Some(reason))], 5),
    );
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::MaxPollExceeded);
    assert_eq!(record.client_reason.as_deref(), Some(reason));
    assert_eq!(record.left, vec![left(&members[1], DepartureReason::Left)]);
}

#[test]
fn leave_group_with_another_reason_is_member_left_with_the_reason() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let reason = "the consumer is being closed";
    ctx.send(
        5,
        leave_request_with_reasons(G, &[(&members[1], None, Some(reason))], 5),
    );
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::MemberLeft);
    assert_eq!(record.client_reason.as_deref(), Some(reason));
}

#[test]
fn leave_reason_below_v5_is_ignored() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let reason = "consumer poll timeout has expired.";
    ctx.send(
        4,
        leave_request_with_reasons(G, &[(&members[1], None, Some(reason))], 4),
    );
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::MemberLeft);
    assert_eq!(record.client_reason, None);
}

#[test]
fn max_poll_reasons_match_case_insensitively() {
    for reason in [
        "consumer poll timeout has expired.",
        "Consumer Poll Timeout Has Expired",
        "max.poll.interval.ms exceeded",
        "Application maximum poll interval (300000ms) exceeded by 12ms",
    ] {
        assert!(recorder::is_max_poll_reason(reason), "{reason}");
        assert_eq!(
            recorder::leave_cause(Some(reason)),
            RebalanceCause::MaxPollExceeded
        );
    }
    for reason in [
        "",
        "the consumer is being closed",
        "the consumer unsubscribed from all topics",
        "session timed out",
    ] {
        assert!(!recorder::is_max_poll_reason(reason), "{reason}");
        assert_eq!(
            recorder::leave_cause(Some(reason)),
            RebalanceCause::MemberLeft
        );
    }
    assert_eq!(recorder::leave_cause(None), RebalanceCause::MemberLeft);
}

#[test]
fn batch_leave_starts_one_rebalance_naming_the_first_member() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(3);
    ctx.send(
        3,
        leave_request(G, &[(&members[1], None), (&members[2], None)], 3),
    );
    assert_eq!(ctx.history().len(), 2);
    let record = open(&ctx);
    assert_eq!(record.trigger_member.as_deref(), Some(members[1].as_str()));
    assert_eq!(
        record.left,
        vec![
            left(&members[1], DepartureReason::Left),
            left(&members[2], DepartureReason::Left)
        ]
    );
    assert_eq!(record.members_before, members);
}

#[test]
fn session_expiry_opens_session_expired_record() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.sleep(5000);
    assert_eq!(ctx.heartbeat(&members[0], 1), 0);
    ctx.sleep(5000);
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::SessionExpired);
    assert_eq!(record.trigger_member.as_deref(), Some(members[1].as_str()));
    assert_eq!(record.started_ms, 11_000);
    assert_eq!(
        record.left,
        vec![left(&members[1], DepartureReason::SessionExpired)]
    );
    assert_eq!(record.members_before, members);
}

#[test]
fn sync_timeout_after_the_leader_synced_opens_rebalance_timeout_record_listing_laggards() {
    let mut ctx = Ctx::new();
    let members = form(
        &mut ctx,
        &[Join::new("").rebalance(5000), Join::new("").rebalance(5000)],
    );
    let (a, b) = (&members[0], &members[1]);
    ctx.sync(&Sync::new(a, 1).assign(a, b"x").assign(b, b"y"));
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    ctx.sleep(5000);
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::RebalanceTimeout);
    assert_eq!(record.trigger_member, None);
    assert_eq!(record.left, vec![left(b, DepartureReason::NotSynced)]);
    assert_eq!(record.members_before, members);
}

#[test]
fn follower_with_a_new_subscription_is_subscription_changed() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.join(&Join::new(&members[1]).topics(&["topic", "other"]));
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::SubscriptionChanged);
    assert_eq!(record.trigger_member.as_deref(), Some(members[1].as_str()));
}

#[test]
fn a_new_assignor_list_is_subscription_changed() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let sub = subscription(&["topic"]);
    ctx.join(&Join::new(&members[1]).protocols(&[("range", sub.clone()), ("roundrobin", sub)]));
    assert_eq!(open(&ctx).cause, RebalanceCause::SubscriptionChanged);
}

#[test]
fn non_consumer_metadata_that_changed_is_subscription_changed() {
    let mut ctx = Ctx::new();
    let join = |member: &str, metadata: &'static [u8]| {
        Join::new(member)
            .protocol_type("connect")
            .protocols(&[("sessioned", Bytes::from_static(metadata))])
    };
    let members = form(&mut ctx, &[join("", b"v1"), join("", b"v1")]);
    settle(
        &mut ctx,
        &[&members[0], &members[1]],
        1,
        &[Bytes::new(), Bytes::new()],
    );
    ctx.join(&join(&members[1], b"v2"));
    assert_eq!(open(&ctx).cause, RebalanceCause::SubscriptionChanged);
}

#[test]
fn leader_rejoining_with_unchanged_metadata_is_metadata_changed() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.join(&Join::new(&members[0]));
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::MetadataChanged);
    assert_eq!(record.trigger_member.as_deref(), Some(members[0].as_str()));
    assert!(record.joined.is_empty() && record.left.is_empty());
}

#[test]
fn follower_rejoining_with_same_topics_but_new_owned_partitions_is_member_rejoined() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let changed = metadata(&["topic"], &[("topic", &[1])]);
    ctx.join(&Join::new(&members[1]).protocols(&[("range", changed)]));
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::MemberRejoined);
    assert_eq!(record.trigger_member.as_deref(), Some(members[1].as_str()));
}

#[test]
fn follower_rejoining_with_identical_metadata_opens_no_record() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let before = ctx.history();
    let id = ctx.join(&Join::new(&members[1]));
    assert_eq!(ctx.join_response(id).generation_id, 1);
    assert_eq!(ctx.history(), before);
    assert!(ctx.last_rebalances.is_empty());
}

#[test]
fn rejoin_causes_follow_the_documented_precedence() {
    // The classifier itself, including the case the join path cannot reach (a follower with
    // byte-for-byte unchanged metadata gets the current generation instead).
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let group = &ctx.c.groups[G];
    let same = group.members[&members[1]].protocols.clone();
    let follower = &group.members[&members[1]];
    let leader = &group.members[&members[0]];
    assert_eq!(
        recorder::rejoin_cause(group, follower, &same),
        RebalanceCause::MemberRejoined
    );
    assert_eq!(
        recorder::rejoin_cause(group, leader, &same),
        RebalanceCause::MetadataChanged
    );
    let other = vec![("range".to_string(), subscription(&["other"]))];
    assert_eq!(
        recorder::rejoin_cause(group, leader, &other),
        RebalanceCause::SubscriptionChanged
    );
    let unreadable = vec![("range".to_string(), Bytes::from_static(b"junk"))];
    assert_eq!(
        recorder::rejoin_cause(group, follower, &unreadable),
        RebalanceCause::SubscriptionChanged
    );
}

#[test]
fn static_member_replaced_with_a_new_protocol_is_static_member_replaced() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").instance("i-1"));
    ctx.tick();
    let old = ctx.join_response(id).member_id.to_string();
    settle(&mut ctx, &[&old], 1, &[Bytes::new()]);

    let id = ctx.join(
        &Join::new("")
            .instance("i-1")
            .protocols(&[("roundrobin", subscription(&["topic"]))]),
    );
    let new = ctx.join_response(id).member_id.to_string();
    assert_ne!(new, old);
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::StaticMemberReplaced);
    assert_eq!(record.trigger_member.as_deref(), Some(new.as_str()));
    assert_eq!(record.members_before, vec![old.clone()]);
    assert_eq!(record.joined, vec![new.clone()]);
    assert_eq!(
        record.left,
        vec![MemberDeparture {
            member_id: old,
            group_instance_id: Some("i-1".to_string()),
            reason: DepartureReason::Replaced,
        }]
    );
    assert_eq!(record.generation, 2);
    assert_eq!(record.protocol.as_deref(), Some("roundrobin"));
}

#[test]
fn static_member_replaced_without_rebalance_opens_no_record() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").instance("i-1"));
    ctx.tick();
    let old = ctx.join_response(id).member_id.to_string();
    settle(&mut ctx, &[&old], 1, &[Bytes::new()]);
    let before = ctx.history();

    let id = ctx.join(&Join::new("").instance("i-1"));
    assert_eq!(ctx.join_response(id).error_code, 0);
    assert_eq!(ctx.join_response(id).generation_id, 1);
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    assert!(ctx.last_rebalances.is_empty());
    assert_eq!(ctx.history(), before);
}

#[test]
fn static_member_replaced_during_a_rebalance_is_noted_in_the_open_record() {
    let mut ctx = Ctx::new();
    let a = ctx.join(&Join::new("").instance("i-a"));
    let b = ctx.join(&Join::new("").instance("i-b"));
    ctx.tick();
    let (a, b) = (
        ctx.join_response(a).member_id.to_string(),
        ctx.join_response(b).member_id.to_string(),
    );
    settle(&mut ctx, &[&a, &b], 1, &[Bytes::new(), Bytes::new()]);
    ctx.join(&Join::new(&a).instance("i-a"));
    let cause = open(&ctx).cause;
    ctx.join(&Join::new("").instance("i-b"));
    let record = ctx.history().last().cloned().unwrap();
    assert_eq!(record.cause, cause, "the running rebalance keeps its cause");
    assert_eq!(record.left.len(), 1);
    assert_eq!(record.left[0].member_id, b);
    assert_eq!(record.left[0].reason, DepartureReason::Replaced);
    assert_eq!(record.joined.len(), 1);
    assert_ne!(record.joined[0], b);
}

#[test]
fn member_not_rejoining_in_time_is_listed_as_not_rejoined() {
    let mut ctx = Ctx::new();
    let members = form(
        &mut ctx,
        &[Join::new("").session(60_000), Join::new("").session(60_000)],
    );
    settle(
        &mut ctx,
        &[&members[0], &members[1]],
        1,
        &[Bytes::new(), Bytes::new()],
    );
    ctx.join(&Join::new(&members[0]).session(60_000));
    ctx.sleep(i64::from(REBALANCE));
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::MetadataChanged);
    assert_eq!(
        record.left,
        vec![left(&members[1], DepartureReason::NotRejoined)]
    );
    assert_eq!(record.join_completed_ms, Some(1000 + i64::from(REBALANCE)));
    assert_eq!(record.members.len(), 1);
}

#[test]
fn member_dropped_because_the_group_is_full_is_listed_as_group_full() {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        max_size: 2,
        ..GroupConfig::default()
    });
    let members = ctx.stable_group(2);
    ctx.join(&Join::new(&members[0]));
    let (c, _) = ctx.join_new(Join::new(""));
    ctx.join(&Join::new(&members[1]));
    let record = ctx.history().last().cloned().unwrap();
    assert_eq!(record.joined, vec![c]);
    assert_eq!(
        record.left,
        vec![left(&members[1], DepartureReason::GroupFull)]
    );
    assert_eq!(record.generation, 2, "the join completed without it");
}

#[test]
fn leave_during_a_rebalance_is_noted_in_the_open_record() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(3);
    ctx.join(&Join::new(&members[0]));
    ctx.send(3, leave_request(G, &[(&members[2], None)], 3));
    assert_eq!(ctx.history().len(), 2);
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::MetadataChanged);
    assert_eq!(record.left, vec![left(&members[2], DepartureReason::Left)]);
}

// ---- timings ----

#[test]
fn phase_timings_follow_simulated_time() {
    let mut ctx = Ctx::new();
    let a = ctx.single_member_group();
    ctx.sleep(100);
    let (b, _) = ctx.join_new(Join::new(""));
    ctx.sleep(400);
    ctx.join(&Join::new(&a));
    ctx.sleep(250);
    settle(&mut ctx, &[&a, &b], 2, &[Bytes::new(), Bytes::new()]);
    let record = last_closed(&ctx);
    assert_eq!(
        (record.started_ms, record.join_completed_ms, record.ended_ms),
        (1100, Some(1500), Some(1750))
    );
    assert_eq!(record.join_phase_ms(), Some(400));
    assert_eq!(record.sync_phase_ms(), Some(250));
    assert_eq!(record.duration_ms(), Some(650));
}

#[test]
fn the_initial_delay_counts_in_the_join_phase() {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 3000,
        ..GroupConfig::default()
    });
    ctx.join_new(Join::new(""));
    ctx.sleep(3000);
    let record = open(&ctx);
    assert_eq!(record.join_phase_ms(), Some(3000));
    assert_eq!(record.sync_phase_ms(), None);
    assert_eq!(record.duration_ms(), None);
}

// ---- outcomes ----

#[test]
fn a_rebalance_starting_before_the_last_settled_closes_it_as_restarted() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let (c, _) = ctx.join_new(Join::new(""));
    ctx.join(&Join::new(&members[0]));
    ctx.join(&Join::new(&members[1]));
    assert_eq!(ctx.state(), Some(GroupState::CompletingRebalance));
    ctx.sleep(10);
    let (d, _) = ctx.join_new(Join::new(""));
    let restarted = last_closed(&ctx);
    assert_eq!(restarted.outcome, RebalanceOutcome::Restarted);
    assert_eq!(restarted.trigger_member.as_deref(), Some(c.as_str()));
    assert_eq!(restarted.generation, 2);
    assert_eq!(restarted.join_completed_ms, Some(1000));
    assert_eq!(restarted.ended_ms, Some(1010));
    assert_eq!(restarted.sync_phase_ms(), None);
    assert_eq!(restarted.duration_ms(), Some(10));
    assert_eq!(restarted.assignment, None);

    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::MemberJoined);
    assert_eq!(record.trigger_member.as_deref(), Some(d.as_str()));
    assert_eq!(
        record.members_before,
        vec![members[0].clone(), members[1].clone(), c]
    );
    assert_eq!(record.started_ms, 1010);
    let history = ctx.history();
    assert_eq!(history[history.len() - 2], restarted);
}

#[test]
fn last_member_leaving_closes_the_record_as_empty() {
    let mut ctx = Ctx::new();
    let a = ctx.single_member_group();
    ctx.sleep(20);
    ctx.send(3, leave_request(G, &[(&a, None)], 3));
    assert_eq!(ctx.state(), Some(GroupState::Empty));
    let record = last_closed(&ctx);
    assert_eq!(record.cause, RebalanceCause::MemberLeft);
    assert_eq!(record.outcome, RebalanceOutcome::Empty);
    assert_eq!(record.generation, 2);
    assert_eq!(record.protocol, None);
    assert!(record.members.is_empty());
    assert_eq!(record.left, vec![left(&a, DepartureReason::Left)]);
    assert_eq!(record.join_completed_ms, Some(1020));
    assert_eq!(record.ended_ms, Some(1020));
    assert_eq!(record.join_phase_ms(), Some(0));
    assert_eq!(record.sync_phase_ms(), None);
    assert_eq!(ctx.history().last(), Some(&record));

    // The next member starts over from an empty group.
    let (b, _) = ctx.join_new(Join::new(""));
    let record = open(&ctx);
    assert!(record.members_before.is_empty());
    assert_eq!(record.joined, vec![b]);
}

#[test]
fn output_rebalances_holds_exactly_the_records_closed_in_that_step() {
    let mut ctx = Ctx::new();
    let members = form(&mut ctx, &[Join::new("").rebalance(5000)]);
    assert!(ctx.last_rebalances.is_empty());
    ctx.heartbeat(&members[0], 1);
    assert!(ctx.last_rebalances.is_empty());
    // Nobody syncs: the sync timeout drops the only member, which restarts the rebalance and
    // completes it at once with an empty group — two records close in one step.
    ctx.sleep(5000);
    let closed = ctx.last_rebalances.clone();
    assert_eq!(closed.len(), 2, "{closed:?}");
    assert_eq!(closed[0].outcome, RebalanceOutcome::Restarted);
    assert_eq!(closed[0].cause, RebalanceCause::MemberJoined);
    assert_eq!(closed[1].outcome, RebalanceOutcome::Empty);
    assert_eq!(closed[1].cause, RebalanceCause::RebalanceTimeout);
    assert_eq!(
        closed[1].left,
        vec![left(&members[0], DepartureReason::NotSynced)]
    );
    assert_eq!(ctx.history(), closed);
    assert_eq!(ctx.rebalances, closed);
    ctx.sleep(1);
    assert!(ctx.last_rebalances.is_empty());
}

#[test]
fn a_group_deleted_mid_rebalance_closes_its_record_as_deleted() {
    let mut ctx = Ctx::new();
    form(&mut ctx, &[Join::new("")]);
    assert_eq!(ctx.state(), Some(GroupState::CompletingRebalance));
    // A tombstone applied to the live coordinator (nothing is held: nobody synced yet).
    ctx.c.replay(&Record::Group {
        group_id: G.to_string(),
        value: None,
    });
    assert_eq!(ctx.c.rebalances(G), None);
    ctx.tick();
    let record = last_closed(&ctx);
    assert_eq!(record.outcome, RebalanceOutcome::Deleted);
    assert_eq!(record.ended_ms, Some(1000));
}

#[test]
fn deleting_an_empty_group_closes_nothing_and_drops_its_history() {
    let mut ctx = Ctx::new();
    let a = ctx.single_member_group();
    ctx.send(3, leave_request(G, &[(&a, None)], 3));
    assert_eq!(ctx.history().len(), 2);
    ctx.send(2, delete_groups_request(&[G]));
    assert!(ctx.last_rebalances.is_empty());
    assert_eq!(ctx.c.rebalances(G), None);
}

#[test]
fn the_history_keeps_the_configured_number_of_closed_records_plus_the_open_one() {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        rebalance_history: 2,
        ..GroupConfig::default()
    });
    let a = ctx.single_member_group();
    for generation in 2..=4 {
        ctx.join(&Join::new(&a));
        settle(&mut ctx, &[&a], generation, &[Bytes::new()]);
    }
    let generations =
        |ctx: &Ctx| -> Vec<i32> { ctx.history().iter().map(|r| r.generation).collect() };
    assert_eq!(generations(&ctx), vec![3, 4]);
    assert_eq!(
        ctx.rebalances.len(),
        4,
        "every closed record was handed out"
    );
    ctx.join(&Join::new(&a));
    assert_eq!(generations(&ctx), vec![3, 4, 5]);
    assert_eq!(open(&ctx).generation, 5);
    settle(&mut ctx, &[&a], 5, &[Bytes::new()]);
    assert_eq!(generations(&ctx), vec![4, 5]);
}

#[test]
fn a_history_bound_of_zero_keeps_only_the_open_record() {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        rebalance_history: 0,
        ..GroupConfig::default()
    });
    let a = ctx.single_member_group();
    assert!(ctx.history().is_empty());
    assert_eq!(ctx.rebalances.len(), 1);
    ctx.join(&Join::new(&a));
    assert_eq!(ctx.history().len(), 1);
    assert_eq!(open(&ctx).cause, RebalanceCause::MetadataChanged);
}

// ---- loading ----

#[test]
fn replaying_records_opens_no_record_until_loaded_and_then_only_for_a_rebalancing_group() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let (b, _) = ctx.join_new(Join::new("").group("other"));
    ctx.tick();
    assert_eq!(
        ctx.c.group_state("other"),
        Some(GroupState::CompletingRebalance)
    );

    let mut c = GroupCoordinator::new(GroupConfig::default());
    for record in &ctx.records {
        c.replay(record);
    }
    assert_eq!(c.rebalances(G), Some(vec![]));
    assert_eq!(c.rebalances("other"), Some(vec![]));
    c.loaded(5000);
    assert_eq!(
        c.rebalances(G),
        Some(vec![]),
        "a Stable group opens nothing"
    );
    let loaded = c.rebalances("other").unwrap();
    assert_eq!(loaded.len(), 1);
    let record = &loaded[0];
    assert_eq!(record.cause, RebalanceCause::Loaded);
    assert_eq!(record.outcome, RebalanceOutcome::InProgress);
    assert_eq!(record.trigger_member, None);
    assert_eq!(record.generation, 1);
    assert_eq!(record.started_ms, 5000);
    assert_eq!(record.members_before, vec![b.clone()]);

    // The loaded rebalance completes like any other.
    let mut ctx = Ctx::around(c, 5000);
    ctx.join(&Join::new(&b).group("other"));
    ctx.sync(&Sync::new(&b, 2).group("other").assign(&b, b""));
    let record = last_closed(&ctx);
    assert_eq!(record.cause, RebalanceCause::Loaded);
    assert_eq!(record.outcome, RebalanceOutcome::Stable);
    assert_eq!(record.generation, 2);
}

// ---- assignments ----

#[test]
fn the_first_assignment_reports_every_partition_as_assigned() {
    let mut ctx = Ctx::new();
    let members = form(&mut ctx, &[eager(""), eager("")]);
    let (a, b) = (members[0].as_str(), members[1].as_str());
    settle(
        &mut ctx,
        &[a, b],
        1,
        &[
            assignment(&[("t", &[1, 0])]),
            assignment(&[("t", &[2]), ("u", &[0])]),
        ],
    );
    let change = last_closed(&ctx).assignment.unwrap();
    assert_eq!(
        change,
        AssignmentChange {
            assigned: vec![
                owner("t", 0, a),
                owner("t", 1, a),
                owner("t", 2, b),
                owner("u", 0, b)
            ],
            ..AssignmentChange::default()
        }
    );
}

#[test]
fn cooperative_two_rounds_record_revocation_then_assignment() {
    let mut ctx = Ctx::new();
    // Generation 1: a owns t-0 and t-1, b owns t-2 and t-3.
    let members = form(&mut ctx, &[coop("", &[]), coop("", &[])]);
    let (a, b) = (members[0].clone(), members[1].clone());
    settle(
        &mut ctx,
        &[&a, &b],
        1,
        &[assignment(&[("t", &[0, 1])]), assignment(&[("t", &[2, 3])])],
    );

    // c joins. Round 1 (generation 2): the cooperative-sticky leader keeps what it can and
    // revokes one partition from each of a and b; c gets nothing yet.
    let (c, _) = ctx.join_new(coop("", &[]));
    ctx.join(&coop(&a, &[("t", &[0, 1])]));
    ctx.join(&coop(&b, &[("t", &[2, 3])]));
    settle(
        &mut ctx,
        &[&a, &b, &c],
        2,
        &[
            assignment(&[("t", &[0])]),
            assignment(&[("t", &[2])]),
            assignment(&[]),
        ],
    );
    let round1 = last_closed(&ctx);
    assert_eq!(round1.cause, RebalanceCause::MemberJoined);
    assert_eq!(round1.joined, vec![c.clone()]);
    assert_eq!(
        round1.assignment,
        Some(AssignmentChange {
            stayed: vec![owner("t", 0, &a), owner("t", 2, &b)],
            revoked: vec![owner("t", 1, &a), owner("t", 3, &b)],
            ..AssignmentChange::default()
        })
    );

    // a revoked t-1 and rejoins at once with what it still owns: round 2 (generation 3).
    ctx.join(&coop(&a, &[("t", &[0])]));
    let record = open(&ctx);
    assert_eq!(record.cause, RebalanceCause::CooperativeFollowUp);
    assert_eq!(record.trigger_member.as_deref(), Some(a.as_str()));
    ctx.join(&coop(&b, &[("t", &[2])]));
    ctx.join(&coop(&c, &[]));
    settle(
        &mut ctx,
        &[&a, &b, &c],
        3,
        &[
            assignment(&[("t", &[0])]),
            assignment(&[("t", &[2])]),
            assignment(&[("t", &[3, 1])]),
        ],
    );
    // The revoked partitions moved from their last owners to c.
    let round2 = last_closed(&ctx);
    assert_eq!(
        round2.assignment,
        Some(AssignmentChange {
            moved: vec![moved("t", 1, &a, &c), moved("t", 3, &b, &c)],
            stayed: vec![owner("t", 0, &a), owner("t", 2, &b)],
            ..AssignmentChange::default()
        })
    );
    // And a third rebalance compares with round 2 only: nothing is left over.
    ctx.join(&coop(&a, &[("t", &[0])]));
    ctx.join(&coop(&b, &[("t", &[2])]));
    ctx.join(&coop(&c, &[("t", &[1, 3])]));
    settle(
        &mut ctx,
        &[&a, &b, &c],
        4,
        &[
            assignment(&[("t", &[0])]),
            assignment(&[("t", &[2])]),
            assignment(&[("t", &[1, 3])]),
        ],
    );
    let change = last_closed(&ctx).assignment.unwrap();
    assert_eq!(change.stayed.len(), 4);
    assert!(change.moved.is_empty() && change.assigned.is_empty() && change.revoked.is_empty());
}

#[test]
fn after_a_revoking_round_only_members_that_lost_partitions_are_cooperative_follow_ups() {
    let mut ctx = Ctx::new();
    let members = form(&mut ctx, &[coop("", &[]), coop("", &[]), coop("", &[])]);
    let (a, b, c) = (members[0].clone(), members[1].clone(), members[2].clone());
    settle(
        &mut ctx,
        &[&a, &b, &c],
        1,
        &[
            assignment(&[("t", &[0, 1])]),
            assignment(&[("t", &[2])]),
            assignment(&[]),
        ],
    );
    // c (which lost nothing) rejoins with a new owned list: an ordinary rejoin.
    ctx.join(&coop(&c, &[("t", &[9])]));
    assert_eq!(open(&ctx).cause, RebalanceCause::MemberRejoined);
    ctx.join(&coop(&a, &[("t", &[0, 1])]));
    ctx.join(&coop(&b, &[("t", &[2])]));
    settle(
        &mut ctx,
        &[&a, &b, &c],
        2,
        &[
            assignment(&[("t", &[0])]),
            assignment(&[("t", &[2])]),
            assignment(&[]),
        ],
    );
    // b lost nothing either; a lost t-1.
    ctx.join(&coop(&b, &[("t", &[5])]));
    assert_eq!(open(&ctx).cause, RebalanceCause::MemberRejoined);
    ctx.join(&coop(&a, &[("t", &[0])]));
    ctx.join(&coop(&c, &[]));
    settle(
        &mut ctx,
        &[&a, &b, &c],
        3,
        &[
            assignment(&[("t", &[0])]),
            assignment(&[("t", &[2])]),
            assignment(&[("t", &[1])]),
        ],
    );
    // Now a revocation of b's partition, and b is the follow-up's trigger.
    ctx.join(&coop(&a, &[("t", &[0])]));
    ctx.join(&coop(&b, &[("t", &[2])]));
    ctx.join(&coop(&c, &[("t", &[1])]));
    settle(
        &mut ctx,
        &[&a, &b, &c],
        4,
        &[
            assignment(&[("t", &[0])]),
            assignment(&[]),
            assignment(&[("t", &[1])]),
        ],
    );
    ctx.join(&coop(&b, &[]));
    assert_eq!(open(&ctx).cause, RebalanceCause::CooperativeFollowUp);
}

#[test]
fn a_member_that_lost_partitions_but_changed_its_topics_is_subscription_changed() {
    let mut ctx = Ctx::new();
    let members = form(&mut ctx, &[coop("", &[]), coop("", &[])]);
    let (a, b) = (members[0].clone(), members[1].clone());
    settle(
        &mut ctx,
        &[&a, &b],
        1,
        &[assignment(&[("t", &[0, 1])]), assignment(&[])],
    );
    ctx.join(&coop(&a, &[("t", &[0, 1])]));
    ctx.join(&coop(&b, &[]));
    settle(
        &mut ctx,
        &[&a, &b],
        2,
        &[assignment(&[("t", &[0])]), assignment(&[])],
    );
    // a lost t-1, but its rejoin also subscribes to a new topic: that is what it says.
    let changed = metadata(&["t", "u"], &[("t", &[0])]);
    ctx.join(&Join::new(&a).protocols(&[("cooperative-sticky", changed)]));
    assert_eq!(open(&ctx).cause, RebalanceCause::SubscriptionChanged);
}

#[test]
fn eager_rebalance_reports_every_partition_as_moved_or_stayed() {
    let mut ctx = Ctx::new();
    let members = form(&mut ctx, &[eager(""), eager("")]);
    let (a, b) = (members[0].clone(), members[1].clone());
    settle(
        &mut ctx,
        &[&a, &b],
        1,
        &[assignment(&[("t", &[0, 1])]), assignment(&[("t", &[2, 3])])],
    );
    // c joins; eager members give up everything and the leader re-assigns all of it.
    let (c, _) = ctx.join_new(eager(""));
    ctx.join(&eager(&a));
    ctx.join(&eager(&b));
    settle(
        &mut ctx,
        &[&a, &b, &c],
        2,
        &[
            assignment(&[("t", &[0, 3])]),
            assignment(&[("t", &[1])]),
            assignment(&[("t", &[2])]),
        ],
    );
    assert_eq!(
        last_closed(&ctx).assignment,
        Some(AssignmentChange {
            moved: vec![
                moved("t", 1, &a, &b),
                moved("t", 2, &b, &c),
                moved("t", 3, &b, &a)
            ],
            stayed: vec![owner("t", 0, &a)],
            ..AssignmentChange::default()
        })
    );
}

#[test]
fn empty_assignment_bytes_mean_no_partitions() {
    let mut ctx = Ctx::new();
    let members = form(&mut ctx, &[eager(""), eager("")]);
    let (a, b) = (members[0].clone(), members[1].clone());
    settle(
        &mut ctx,
        &[&a, &b],
        1,
        &[assignment(&[("t", &[0])]), assignment(&[("t", &[1])])],
    );
    // The leader gives everything to itself and leaves b out (b gets empty bytes).
    ctx.join(&eager(&a));
    ctx.join(&eager(&b));
    let held = ctx.sync(&Sync::new(&b, 2));
    ctx.sync(&Sync::new(&a, 2).assign(&a, &assignment(&[("t", &[0, 1])])));
    assert!(ctx.sync_response(held).assignment.is_empty());
    assert_eq!(
        last_closed(&ctx).assignment,
        Some(AssignmentChange {
            moved: vec![moved("t", 1, &b, &a)],
            stayed: vec![owner("t", 0, &a)],
            ..AssignmentChange::default()
        })
    );
}

#[test]
fn garbage_assignment_bytes_give_no_assignment_change() {
    let mut ctx = Ctx::new();
    let members = form(&mut ctx, &[eager(""), eager("")]);
    settle(
        &mut ctx,
        &[&members[0], &members[1]],
        1,
        &[
            assignment(&[("t", &[0])]),
            Bytes::from_static(b"\x00\x03garbage"),
        ],
    );
    let record = last_closed(&ctx);
    assert_eq!(record.outcome, RebalanceOutcome::Stable);
    assert_eq!(record.assignment, None);
}

#[test]
fn a_partition_given_to_two_members_gives_no_assignment_change() {
    let mut ctx = Ctx::new();
    let members = form(&mut ctx, &[eager(""), eager("")]);
    settle(
        &mut ctx,
        &[&members[0], &members[1]],
        1,
        &[assignment(&[("t", &[0])]), assignment(&[("t", &[0, 1])])],
    );
    assert_eq!(last_closed(&ctx).assignment, None);
}

#[test]
fn non_consumer_protocol_has_no_assignment_change() {
    let mut ctx = Ctx::new();
    let join = Join::new("")
        .protocol_type("connect")
        .protocols(&[("sessioned", Bytes::from_static(b"worker"))]);
    let members = form(&mut ctx, &[join]);
    // Even bytes that happen to read as a consumer assignment are not decoded.
    settle(&mut ctx, &[&members[0]], 1, &[assignment(&[("t", &[0])])]);
    let record = last_closed(&ctx);
    assert_eq!(record.protocol_type, "connect");
    assert_eq!(record.assignment, None);
}

#[test]
fn an_unreadable_assignment_leaves_the_comparison_base_as_it_was() {
    let mut ctx = Ctx::new();
    let a = form(&mut ctx, &[eager("")]).remove(0);
    settle(&mut ctx, &[&a], 1, &[assignment(&[("t", &[0, 1])])]);
    ctx.join(&eager(&a));
    settle(&mut ctx, &[&a], 2, &[Bytes::from_static(b"junk")]);
    assert_eq!(last_closed(&ctx).assignment, None);
    ctx.join(&eager(&a));
    settle(&mut ctx, &[&a], 3, &[assignment(&[("t", &[0])])]);
    assert_eq!(
        last_closed(&ctx).assignment,
        Some(AssignmentChange {
            stayed: vec![owner("t", 0, &a)],
            revoked: vec![owner("t", 1, &a)],
            ..AssignmentChange::default()
        })
    );
}

#[test]
fn a_restarted_rebalance_carries_the_comparison_base_to_the_next_stable_one() {
    let mut ctx = Ctx::new();
    let a = form(&mut ctx, &[eager("")]).remove(0);
    settle(&mut ctx, &[&a], 1, &[assignment(&[("t", &[0, 1])])]);
    let (b, _) = ctx.join_new(eager(""));
    ctx.join(&eager(&a));
    assert_eq!(ctx.state(), Some(GroupState::CompletingRebalance));
    let (c, _) = ctx.join_new(eager(""));
    assert_eq!(last_closed(&ctx).outcome, RebalanceOutcome::Restarted);
    ctx.join(&eager(&a));
    ctx.join(&eager(&b));
    settle(
        &mut ctx,
        &[&a, &b, &c],
        3,
        &[
            assignment(&[("t", &[0])]),
            assignment(&[("t", &[1])]),
            assignment(&[]),
        ],
    );
    assert_eq!(
        last_closed(&ctx).assignment,
        Some(AssignmentChange {
            moved: vec![moved("t", 1, &a, &b)],
            stayed: vec![owner("t", 0, &a)],
            ..AssignmentChange::default()
        })
    );
}

#[test]
fn a_replaced_static_member_keeps_its_partitions_under_its_new_id() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&eager("").instance("i-1"));
    ctx.tick();
    let old = ctx.join_response(id).member_id.to_string();
    settle(&mut ctx, &[&old], 1, &[assignment(&[("t", &[0, 1])])]);
    let id = ctx.join(&eager("").instance("i-1"));
    let new = ctx.join_response(id).member_id.to_string();
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    ctx.join(&eager(&new).instance("i-1"));
    settle(&mut ctx, &[&new], 2, &[assignment(&[("t", &[0, 1])])]);
    assert_eq!(
        last_closed(&ctx).assignment,
        Some(AssignmentChange {
            stayed: vec![owner("t", 0, &new), owner("t", 1, &new)],
            ..AssignmentChange::default()
        })
    );
}

#[test]
fn a_loaded_stable_group_compares_with_its_loaded_assignment() {
    let mut ctx = Ctx::new();
    let a = form(&mut ctx, &[eager("")]).remove(0);
    settle(&mut ctx, &[&a], 1, &[assignment(&[("t", &[0, 1])])]);
    let c = replayed(&ctx.records, GroupConfig::default(), 2000);
    let mut ctx = Ctx::around(c, 2000);
    ctx.join(&eager(&a));
    settle(&mut ctx, &[&a], 2, &[assignment(&[("t", &[1])])]);
    let record = last_closed(&ctx);
    assert_eq!(record.cause, RebalanceCause::MetadataChanged);
    assert_eq!(
        record.assignment,
        Some(AssignmentChange {
            stayed: vec![owner("t", 1, &a)],
            revoked: vec![owner("t", 0, &a)],
            ..AssignmentChange::default()
        })
    );
}

#[test]
fn a_group_that_became_empty_starts_its_comparison_over() {
    let mut ctx = Ctx::new();
    let a = form(&mut ctx, &[eager("")]).remove(0);
    settle(&mut ctx, &[&a], 1, &[assignment(&[("t", &[0])])]);
    ctx.send(3, leave_request(G, &[(&a, None)], 3));
    let b = form(&mut ctx, &[eager("")]).remove(0);
    settle(&mut ctx, &[&b], 3, &[assignment(&[("t", &[0])])]);
    assert_eq!(
        last_closed(&ctx).assignment,
        Some(AssignmentChange {
            assigned: vec![owner("t", 0, &b)],
            ..AssignmentChange::default()
        })
    );
}

// ---- decoding and comparison, directly ----

#[test]
fn assignments_of_every_version_decode_and_newer_ones_read_as_the_newest_known() {
    for version in 0..=3 {
        let bytes = assignment_at(version, &[("t", &[2, 0]), ("u", &[7])]);
        assert_eq!(
            assignment::assigned_partitions(&bytes),
            Some(vec![
                ("t".to_string(), 2),
                ("t".to_string(), 0),
                ("u".to_string(), 7)
            ]),
            "version {version}"
        );
    }
    // A future version that appended a field: read as version 3, the tail ignored.
    let mut future = BytesMut::new();
    future.extend_from_slice(&9i16.to_be_bytes());
    future.extend_from_slice(&assignment_at(3, &[("t", &[1])])[2..]);
    future.extend_from_slice(&[0, 0, 0, 42]);
    assert_eq!(
        assignment::assigned_partitions(&future),
        Some(vec![("t".to_string(), 1)])
    );
    assert_eq!(assignment::assigned_partitions(b""), Some(vec![]));
}

#[test]
fn unreadable_assignments_are_rejected_without_allocating_what_they_claim() {
    let hostile: [&[u8]; 8] = [
        b"\x00",
        b"\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff",
        // 2^31-1 topics in 6 bytes.
        b"\x00\x00\x7f\xff\xff\xff\x00\x00",
        // One topic with 2^31-1 partitions.
        b"\x00\x00\x00\x00\x00\x01\x00\x01t\x7f\xff\xff\xff",
        // Negative counts and lengths.
        b"\x00\x00\xff\xff\xff\xfe",
        b"\x00\x00\x00\x00\x00\x01\xff\xff",
        // user_data longer than what is left.
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09",
        // A topic name that is not UTF-8.
        b"\x00\x00\x00\x00\x00\x01\x00\x01\xff\x00\x00\x00\x00\xff\xff\xff\xff",
    ];
    for bytes in hostile {
        assert_eq!(assignment::assigned_partitions(bytes), None, "{bytes:?}");
    }
}

#[test]
fn a_revoked_partition_keeps_its_last_owner_for_one_assignment_only() {
    let key = |p: i32| ("t".to_string(), p);
    let owners = |pairs: &[(i32, &str)]| -> assignment::Owners {
        pairs
            .iter()
            .map(|(p, m)| (key(*p), m.to_string()))
            .collect()
    };
    let base = Ownership::of(1, owners(&[(0, "a"), (1, "a")]));
    let (change, next) = base.advance(2, owners(&[(0, "a")]));
    assert_eq!(change.revoked, vec![owner("t", 1, "a")]);
    assert!(next.revoked_from("a", 2));
    assert!(!next.revoked_from("a", 3));
    assert!(!next.revoked_from("b", 2));
    // Not handed out in the next assignment either: dropped from tracking...
    let (change, next) = next.advance(3, owners(&[(0, "a")]));
    assert_eq!(change.stayed, vec![owner("t", 0, "a")]);
    assert!(change.revoked.is_empty() && change.moved.is_empty());
    // ...so when it finally comes back it is `assigned`.
    let (change, _) = next.advance(4, owners(&[(0, "a"), (1, "b")]));
    assert_eq!(change.assigned, vec![owner("t", 1, "b")]);
}

#[test]
fn overview_lists_every_group_with_its_offsets() {
    let mut ctx = Ctx::new();
    let a = ctx.single_member_group();
    ctx.commit(&Commit::member(&a, 1).offset("t", 1, 10).offset("t", 0, 5));
    ctx.commit(&Commit::simple().group("simple").offset("x", 0, 3));
    let overview = ctx.c.overview();
    assert_eq!(overview.len(), 2);
    assert_eq!(overview[0].group_id, G);
    assert_eq!(overview[0].state, GroupState::Stable);
    assert_eq!(overview[0].protocol_type, "consumer");
    assert_eq!(overview[0].protocol.as_deref(), Some("range"));
    assert_eq!(overview[0].generation, 1);
    assert_eq!(overview[0].members, 1);
    assert_eq!(
        overview[0].offsets,
        vec![("t".to_string(), 0, 5), ("t".to_string(), 1, 10)]
    );
    assert_eq!(overview[1].group_id, "simple");
    assert_eq!(overview[1].state, GroupState::Empty);
    assert_eq!(overview[1].protocol_type, "");
    assert_eq!(overview[1].members, 0);
}

#[test]
fn cause_departure_and_outcome_names_are_snake_case_like_their_json() {
    for cause in RebalanceCause::ALL {
        let json = serde_json::to_string(&cause).unwrap();
        assert_eq!(json, format!("\"{}\"", cause.as_str()));
    }
    for reason in DepartureReason::ALL {
        let json = serde_json::to_string(&reason).unwrap();
        assert_eq!(json, format!("\"{}\"", reason.as_str()));
    }
    for outcome in RebalanceOutcome::ALL {
        let json = serde_json::to_string(&outcome).unwrap();
        assert_eq!(json, format!("\"{}\"", outcome.as_str()));
    }
}
