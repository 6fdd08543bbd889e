//! KIP-848 consumer groups in the core: joining, reconciliation (revoke first, then assign),
//! leaving, static members, timeouts, triggers and Kafka's errors.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;

use super::consumer_support::{assignment_of, tid, tp, Client, Hb};
use super::*;
use crate::consumer::{MemberState, TopicPartitions};
use crate::ConsumerGroupState;

fn ctx_with_orders(partitions: u32) -> Ctx {
    let mut ctx = Ctx::new();
    ctx.set_topics(&[("orders", partitions)]);
    ctx
}

fn err(r: &kafka_protocol::messages::ConsumerGroupHeartbeatResponse) -> i16 {
    r.error_code
}

// ---- Joining ----------------------------------------------------------------------------

#[test]
fn the_first_member_gets_every_partition_at_epoch_1() {
    let mut ctx = ctx_with_orders(3);
    let r = ctx.hb_ok(&Hb::join("m1", &["orders"]));
    assert_eq!(r.member_id.as_deref(), Some("m1"));
    assert_eq!(r.member_epoch, 1);
    assert_eq!(assignment_of(&r), Some(tp(&[("orders", &[0, 1, 2])])));
    // One member on the broker: the budget gives it the shortest steady interval.
    assert_eq!(
        r.heartbeat_interval_ms,
        GroupConfig::default().consumer_min_heartbeat_interval_ms
    );
    assert_eq!(ctx.cg().state(), ConsumerGroupState::Stable);
}

#[test]
fn a_v0_join_without_a_member_id_gets_one_from_the_coordinator() {
    let mut ctx = ctx_with_orders(1);
    let r = ctx.hb_ok(&Hb::join("", &["orders"]).version(0));
    let id = r.member_id.expect("a member id");
    assert!(!id.is_empty());
    assert!(ctx.cg().members.contains_key(id.as_str()));
}

#[test]
fn a_subscription_to_a_missing_topic_joins_with_nothing_until_the_topic_exists() {
    let mut ctx = Ctx::new();
    let r = ctx.hb_ok(&Hb::join("m1", &["orders"]));
    assert_eq!(
        (r.member_epoch, assignment_of(&r)),
        (1, Some(TopicPartitions::new()))
    );
    ctx.set_topics(&[("orders", 2)]);
    assert_eq!(ctx.cg().epoch, 2);
    let r = ctx.hb_ok(&Hb::beat("m1", 1, &TopicPartitions::new()));
    assert_eq!(r.member_epoch, 2);
    assert_eq!(assignment_of(&r), Some(tp(&[("orders", &[0, 1])])));
}

#[test]
fn records_are_written_for_the_group_member_target_and_assignment() {
    let mut ctx = ctx_with_orders(1);
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    let kinds: Vec<&str> = ctx
        .last_records
        .iter()
        .map(|r| match r {
            Record::ConsumerGroup { .. } => "group",
            Record::ConsumerMember { .. } => "member",
            Record::ConsumerTarget { .. } => "target",
            Record::ConsumerTargetEpoch { .. } => "target-epoch",
            Record::ConsumerAssignment { .. } => "assignment",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["member", "group", "target", "target-epoch", "assignment"]
    );
}

// ---- Reconciliation ---------------------------------------------------------------------

#[test]
fn a_joining_member_waits_for_partitions_until_their_owner_revokes_them() {
    let mut ctx = ctx_with_orders(6);
    let mut m1 = Client::new("m1", &["orders"]);
    ctx.step(&mut m1);
    assert_eq!(m1.owned, tp(&[("orders", &[0, 1, 2, 3, 4, 5])]));

    // m2 joins: the target splits the partitions, but m1 still holds them all.
    let mut m2 = Client::new("m2", &["orders"]);
    let r = ctx.step(&mut m2);
    assert_eq!(r.member_epoch, 2);
    assert_eq!(m2.owned, TopicPartitions::new());
    assert_eq!(
        ctx.cg().members["m2"].assignment.state,
        MemberState::UnreleasedPartitions
    );
    let pending = GroupConfig::default().consumer_pending_heartbeat_interval_ms;
    assert_eq!(r.heartbeat_interval_ms, pending);

    // m1 is asked to revoke: it stays at epoch 1 with the partitions it keeps.
    let r = ctx.step(&mut m1);
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.heartbeat_interval_ms, pending);
    let kept = m1.owned.clone();
    assert_eq!(kept[&tid("orders")].len(), 3);
    assert_eq!(
        ctx.cg().members["m1"].assignment.state,
        MemberState::UnrevokedPartitions
    );

    // m1 reports the revocation done: it moves to epoch 2; m2 then gets the rest.
    let r = ctx.step(&mut m1);
    assert_eq!(r.member_epoch, 2);
    let r = ctx.step(&mut m2);
    assert_eq!(r.member_epoch, 2);
    assert_eq!(m2.owned[&tid("orders")].len(), 3);
    assert!(m2.owned[&tid("orders")].is_disjoint(&kept[&tid("orders")]));
    assert_eq!(ctx.cg().state(), ConsumerGroupState::Stable);
    assert_eq!(
        r.heartbeat_interval_ms,
        GroupConfig::default().consumer_min_heartbeat_interval_ms
    );
}

#[test]
fn no_partition_is_held_by_two_members_at_any_step_of_a_scale_out() {
    let mut ctx = ctx_with_orders(12);
    let mut clients: Vec<Client> = (0..4)
        .map(|i| Client::new(&format!("m{i}"), &["orders"]))
        .collect();
    for round in 0..12 {
        for i in 0..clients.len().min(round + 1) {
            ctx.step(&mut clients[i]);
            let mut seen = std::collections::BTreeSet::new();
            for client in &clients {
                for (topic, parts) in &client.owned {
                    for p in parts {
                        assert!(
                            seen.insert((*topic, *p)),
                            "{topic}/{p} owned twice: {clients:?}"
                        );
                    }
                }
            }
        }
    }
    ctx.settle(&mut clients, 10);
    let total: usize = clients
        .iter()
        .map(|c| c.owned.values().map(|s| s.len()).sum::<usize>())
        .sum();
    assert_eq!(total, 12);
    for client in &clients {
        assert_eq!(client.owned[&tid("orders")].len(), 3, "{client:?}");
    }
}

#[test]
fn a_lost_response_lets_the_member_heartbeat_again_with_its_previous_epoch() {
    let mut ctx = ctx_with_orders(4);
    let mut m1 = Client::new("m1", &["orders"]);
    ctx.step(&mut m1);
    ctx.set_topics(&[("orders", 6)]);
    // The response that moved m1 to epoch 2 is lost: it comes back with epoch 1 and the four
    // partitions it owns, a subset of its assignment.
    let r = ctx.hb_ok(&Hb::beat("m1", 1, &m1.owned));
    assert_eq!(r.member_epoch, 2);
    let r = ctx.hb_ok(&Hb::beat("m1", 1, &m1.owned));
    assert_eq!(r.member_epoch, 2);
}

// ---- The steady heartbeat interval ------------------------------------------------------

/// A broker whose heartbeat budget is 2 per second, so the interval moves in whole seconds
/// per two members: between 500 ms and 4000 ms.
fn ctx_with_budget(budget: u32) -> Ctx {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        consumer_heartbeat_rate_budget: budget,
        consumer_min_heartbeat_interval_ms: 500,
        consumer_heartbeat_interval_ms: 4000,
        ..GroupConfig::default()
    });
    ctx.set_topics(&[("orders", 24)]);
    ctx
}

/// `count` members of `group` joined and reconciled; returns them.
fn settled_members(ctx: &mut Ctx, group: &str, count: usize) -> Vec<Client> {
    let mut clients: Vec<Client> = (0..count)
        .map(|i| Client::new(&format!("{group}-m{i}"), &["orders"]).group(group))
        .collect();
    for client in clients.iter_mut() {
        ctx.step(client);
    }
    ctx.settle_group(group, &mut clients, 20);
    clients
}

/// The interval the next steady heartbeat of `client` is given.
fn steady_interval(ctx: &mut Ctx, client: &mut Client) -> i32 {
    let r = ctx.step(client);
    assert_eq!(r.error_code, 0);
    assert!(
        r.assignment.is_none(),
        "{} is not reconciled",
        client.member
    );
    r.heartbeat_interval_ms
}

#[test]
fn a_lone_member_gets_the_shortest_steady_interval() {
    let mut ctx = ctx_with_budget(2);
    let mut members = settled_members(&mut ctx, "g", 1);
    assert_eq!(steady_interval(&mut ctx, &mut members[0]), 500);
}

#[test]
fn the_steady_interval_is_the_brokers_member_count_over_its_heartbeat_budget() {
    let mut ctx = ctx_with_budget(2);
    let mut members = settled_members(&mut ctx, "g", 3);
    // 3 members at 2 heartbeats a second: one every 1.5 s each.
    for m in members.iter_mut() {
        assert_eq!(steady_interval(&mut ctx, m), 1500);
    }
}

#[test]
fn the_steady_interval_never_exceeds_group_consumer_heartbeat_interval_ms() {
    let mut ctx = ctx_with_budget(2);
    let mut members = settled_members(&mut ctx, "g", 12);
    // 12 members would need 6 s to stay within the budget; the longest interval is 4 s.
    assert_eq!(steady_interval(&mut ctx, &mut members[5]), 4000);
}

#[test]
fn members_of_every_group_on_the_broker_share_one_heartbeat_budget() {
    let mut ctx = ctx_with_budget(2);
    let mut a = settled_members(&mut ctx, "a", 2);
    assert_eq!(steady_interval(&mut ctx, &mut a[0]), 1000);
    let mut b = settled_members(&mut ctx, "b", 2);
    assert_eq!(steady_interval(&mut ctx, &mut b[1]), 2000);
    assert_eq!(steady_interval(&mut ctx, &mut a[1]), 2000);
}

#[test]
fn the_steady_interval_shortens_again_when_members_leave() {
    let mut ctx = ctx_with_budget(2);
    let mut members = settled_members(&mut ctx, "g", 4);
    assert_eq!(steady_interval(&mut ctx, &mut members[0]), 2000);
    for leaving in members.drain(2..) {
        ctx.hb_ok(&Hb::leave(&leaving.member, -1).group("g"));
    }
    ctx.settle_group("g", &mut members, 20);
    assert_eq!(ctx.cg_of("g").members.len(), 2);
    assert_eq!(steady_interval(&mut ctx, &mut members[0]), 1000);
}

#[test]
fn a_member_with_partitions_to_receive_gets_the_pending_interval_whatever_the_budget() {
    let mut ctx = ctx_with_budget(2);
    let _members = settled_members(&mut ctx, "g", 6);
    let mut joiner = Client::new("g-new", &["orders"]).group("g");
    let r = ctx.step(&mut joiner);
    assert_eq!(
        r.heartbeat_interval_ms,
        GroupConfig::default().consumer_pending_heartbeat_interval_ms
    );
}

#[test]
fn a_zero_heartbeat_budget_gives_every_reconciled_member_the_longest_interval() {
    let mut ctx = ctx_with_budget(0);
    let mut members = settled_members(&mut ctx, "g", 1);
    assert_eq!(steady_interval(&mut ctx, &mut members[0]), 4000);
}

#[test]
fn a_restarted_coordinator_counts_the_members_it_loaded() {
    let mut ctx = ctx_with_budget(2);
    let mut members = settled_members(&mut ctx, "g", 5);
    assert_eq!(steady_interval(&mut ctx, &mut members[0]), 2500);
    let mut restarted = ctx.replayed();
    restarted.set_topics(&[("orders", 24)]);
    assert_eq!(steady_interval(&mut restarted, &mut members[3]), 2500);
}

// ---- Errors -----------------------------------------------------------------------------

#[test]
fn an_epoch_ahead_of_the_coordinators_is_fenced() {
    let mut ctx = ctx_with_orders(1);
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    let r = ctx.hb(&Hb::beat("m1", 7, &TopicPartitions::new()));
    assert_eq!(err(&r), ResponseError::FencedMemberEpoch.code());
}

#[test]
fn an_old_epoch_that_is_not_the_previous_one_is_fenced() {
    let mut ctx = ctx_with_orders(1);
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    ctx.set_topics(&[("orders", 2)]);
    ctx.hb_ok(&Hb::beat("m1", 1, &tp(&[("orders", &[0])])));
    ctx.set_topics(&[("orders", 3)]);
    ctx.hb_ok(&Hb::beat("m1", 2, &tp(&[("orders", &[0, 1])])));
    assert_eq!(ctx.cg().members["m1"].assignment.member_epoch, 3);
    let r = ctx.hb(&Hb::beat("m1", 1, &tp(&[("orders", &[0])])));
    assert_eq!(err(&r), ResponseError::FencedMemberEpoch.code());
}

#[test]
fn the_previous_epoch_owning_partitions_it_was_never_given_is_fenced() {
    let mut ctx = ctx_with_orders(2);
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    ctx.set_topics(&[("orders", 3)]);
    let r = ctx.hb_ok(&Hb::beat("m1", 1, &tp(&[("orders", &[0, 1])])));
    assert_eq!(r.member_epoch, 2);
    // Epoch 1 is m1's previous epoch, but it never had partition 7.
    let r = ctx.hb(&Hb::beat("m1", 1, &tp(&[("orders", &[0, 7])])));
    assert_eq!(err(&r), ResponseError::FencedMemberEpoch.code());
    // Not reporting what it owns does not prove anything either.
    let r = ctx.hb(&Hb::leave("m1", 1));
    assert_eq!(err(&r), ResponseError::FencedMemberEpoch.code());
}

#[test]
fn a_heartbeat_from_an_unknown_member_or_group_is_unknown_member_id() {
    let mut ctx = ctx_with_orders(1);
    let r = ctx.hb(&Hb::beat("ghost", 3, &TopicPartitions::new()));
    assert_eq!(err(&r), ResponseError::UnknownMemberId.code());
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    let r = ctx.hb(&Hb::beat("ghost", 1, &TopicPartitions::new()));
    assert_eq!(err(&r), ResponseError::UnknownMemberId.code());
}

#[test]
fn malformed_heartbeats_are_invalid_requests_with_kafkas_messages() {
    let mut ctx = ctx_with_orders(1);
    let cases: Vec<(Hb, &str)> = vec![
        (Hb::join("m1", &["orders"]).group(""), "GroupId can't be empty."),
        (Hb::join("", &["orders"]), "MemberId can't be empty."),
        (Hb::join("m1", &["orders"]).instance(""), "InstanceId can't be empty."),
        (
            Hb::join("m1", &["orders"]).rebalance_timeout(-1),
            "RebalanceTimeoutMs must be provided in first request.",
        ),
        (
            Hb {
                owned: Some(tp(&[("orders", &[0])])),
                ..Hb::join("m1", &["orders"])
            },
            "TopicPartitions must be empty when (re-)joining.",
        ),
        (
            Hb {
                owned: None,
                ..Hb::join("m1", &["orders"])
            },
            "TopicPartitions must be empty when (re-)joining.",
        ),
        (
            Hb {
                topics: None,
                ..Hb::join("m1", &["orders"])
            },
            "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
        ),
        (Hb::leave("m1", -2), "InstanceId can't be null."),
        (Hb::leave("m1", -3), "MemberEpoch is invalid."),
    ];
    for (hb, message) in cases {
        let r = ctx.hb(&hb);
        assert_eq!(err(&r), ResponseError::InvalidRequest.code(), "{hb:?}");
        assert_eq!(r.error_message.as_deref(), Some(message), "{hb:?}");
    }
    assert!(ctx.c.consumer_group(G).is_none(), "no group was created");
}

#[test]
fn an_unknown_server_assignor_is_unsupported_assignor() {
    let mut ctx = ctx_with_orders(1);
    let r = ctx.hb(&Hb::join("m1", &["orders"]).assignor("sticky"));
    assert_eq!(err(&r), ResponseError::UnsupportedAssignor.code());
    let r = ctx.hb_ok(&Hb::join("m1", &["orders"]).assignor("range"));
    assert_eq!(r.member_epoch, 1);
}

#[test]
fn an_invalid_regex_is_invalid_regular_expression() {
    let mut ctx = ctx_with_orders(1);
    let r = ctx.hb(&Hb::join("m1", &[]).regex("["));
    assert_eq!(err(&r), ResponseError::InvalidRegularExpression.code());
}

#[test]
fn a_full_group_refuses_a_new_member_but_not_its_members() {
    let mut ctx = Ctx::with_config(GroupConfig {
        consumer_max_size: 1,
        ..GroupConfig::default()
    });
    ctx.set_topics(&[("orders", 1)]);
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    let r = ctx.hb(&Hb::join("m2", &["orders"]));
    assert_eq!(err(&r), ResponseError::GroupMaxSizeReached.code());
    ctx.hb_ok(&Hb::beat("m1", 1, &tp(&[("orders", &[0])])));
}

#[test]
fn a_heartbeat_to_a_classic_group_whose_assignment_is_no_consumer_assignment_is_group_id_not_found()
{
    // The group cannot be upgraded: its members' assignments (`a-0`) cannot be read.
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let r = ctx.hb(&Hb::join("m1", &["orders"]));
    assert_eq!(err(&r), ResponseError::GroupIdNotFound.code());
}

#[test]
fn with_migration_disabled_a_classic_join_to_a_consumer_group_with_members_is_inconsistent_group_protocol(
) {
    let mut ctx = Ctx::with_config(GroupConfig {
        consumer_migration_policy: crate::MigrationPolicy::Disabled,
        ..GroupConfig::default()
    });
    ctx.set_topics(&[("orders", 1)]);
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    let id = ctx.join(&Join::new("").version(4));
    assert_eq!(
        ctx.join_response(id).error_code,
        ResponseError::InconsistentGroupProtocol.code()
    );
}

// ---- Leaving and static members ---------------------------------------------------------

#[test]
fn a_member_that_leaves_hands_its_partitions_to_the_others() {
    let mut ctx = ctx_with_orders(4);
    let mut clients = vec![
        Client::new("m1", &["orders"]),
        Client::new("m2", &["orders"]),
    ];
    ctx.settle(&mut clients, 10);
    let epoch = ctx.cg().epoch;
    let r = ctx.hb_ok(&Hb::leave("m2", -1));
    assert_eq!(r.member_epoch, -1);
    assert_eq!(ctx.cg().epoch, epoch + 1);
    assert!(!ctx.cg().members.contains_key("m2"));
    let mut m1 = clients.remove(0);
    ctx.step(&mut m1);
    assert_eq!(m1.owned, tp(&[("orders", &[0, 1, 2, 3])]));
}

#[test]
fn a_static_member_that_leaves_temporarily_gets_its_partitions_back_without_an_epoch_bump() {
    let mut ctx = ctx_with_orders(4);
    let mut a = Client::new("a-1", &["orders"]);
    a.instance = Some("a".into());
    let mut b = Client::new("b-1", &["orders"]);
    b.instance = Some("b".into());
    let mut clients = vec![a, b];
    ctx.settle(&mut clients, 10);
    let before = clients[0].owned.clone();
    let epoch = ctx.cg().epoch;

    let r = ctx.hb_ok(&Hb::leave("a-1", -2).instance("a"));
    assert_eq!(r.member_epoch, -2);
    // Its partitions stay with it: nobody else gets them meanwhile.
    ctx.settle(&mut clients[1..], 5);
    assert!(clients[1].owned[&tid("orders")].is_disjoint(&before[&tid("orders")]));

    // It comes back under a new member id within the session timeout.
    let mut back = Client::new("a-2", &["orders"]);
    back.instance = Some("a".into());
    let r = ctx.step(&mut back);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(back.owned, before);
    assert_eq!(ctx.cg().epoch, epoch);
    assert!(!ctx.cg().members.contains_key("a-1"));
}

#[test]
fn a_static_member_cannot_join_while_its_instance_id_is_in_use() {
    let mut ctx = ctx_with_orders(1);
    ctx.hb_ok(&Hb::join("a-1", &["orders"]).instance("a"));
    let r = ctx.hb(&Hb::join("a-2", &["orders"]).instance("a"));
    assert_eq!(err(&r), ResponseError::UnreleasedInstanceId.code());
}

#[test]
fn a_heartbeat_from_a_replaced_static_member_is_fenced_instance_id() {
    let mut ctx = ctx_with_orders(1);
    ctx.hb_ok(&Hb::join("a-1", &["orders"]).instance("a"));
    ctx.hb_ok(&Hb::leave("a-1", -2).instance("a"));
    ctx.hb_ok(&Hb::join("a-2", &["orders"]).instance("a"));
    let r = ctx.hb(&Hb::beat("a-1", 1, &TopicPartitions::new()).instance("a"));
    assert_eq!(err(&r), ResponseError::FencedInstanceId.code());
}

// ---- Timers -----------------------------------------------------------------------------

#[test]
fn a_member_whose_session_runs_out_is_fenced_and_the_epoch_bumped() {
    let mut ctx = ctx_with_orders(2);
    let mut clients = vec![
        Client::new("m1", &["orders"]),
        Client::new("m2", &["orders"]),
    ];
    ctx.settle(&mut clients, 10);
    let epoch = ctx.cg().epoch;
    let session = i64::from(GroupConfig::default().consumer_session_timeout_ms);
    // m1 keeps heartbeating, m2 goes silent.
    for _ in 0..10 {
        ctx.sleep(session / 10);
        ctx.step(&mut clients[0]);
    }
    assert!(!ctx.cg().members.contains_key("m2"));
    assert!(ctx.cg().epoch > epoch);
    assert_eq!(clients[0].owned, tp(&[("orders", &[0, 1])]));
    let r = ctx.hb(&Hb::beat("m2", 2, &TopicPartitions::new()));
    assert_eq!(err(&r), ResponseError::UnknownMemberId.code());
}

#[test]
fn a_member_that_does_not_revoke_within_its_rebalance_timeout_is_fenced() {
    let mut ctx = ctx_with_orders(2);
    let (mut m1, mut m2) = ctx.stubborn_member_asked_to_revoke();
    assert_eq!(
        ctx.cg().members["m1"].assignment.state,
        MemberState::UnrevokedPartitions
    );
    ctx.heartbeat_every(9_000, 4, &mut [&mut m1, &mut m2]);
    assert!(
        !ctx.cg().members.contains_key("m1") || ctx.cg().members["m1"].assignment.member_epoch == 0
    );
    ctx.step(&mut m2);
    ctx.step(&mut m2);
    assert_eq!(m2.owned, tp(&[("orders", &[0, 1])]));
}

// ---- Triggers ---------------------------------------------------------------------------

#[test]
fn a_subscription_change_revokes_the_old_topic_and_assigns_the_new_one() {
    let mut ctx = Ctx::new();
    ctx.set_topics(&[("orders", 1), ("payments", 1)]);
    let mut m1 = Client::new("m1", &["orders"]);
    ctx.step(&mut m1);
    let epoch = ctx.cg().epoch;
    let r = ctx.hb_ok(&Hb::beat("m1", m1.epoch, &m1.owned).topics(&["payments"]));
    assert_eq!(ctx.cg().epoch, epoch + 1);
    // `orders` must go first.
    assert_eq!(assignment_of(&r), Some(TopicPartitions::new()));
    m1.absorb(&r);
    m1.topics = vec!["payments".into()];
    ctx.step(&mut m1);
    assert_eq!(m1.owned, tp(&[("payments", &[0])]));
}

#[test]
fn partitions_added_to_a_subscribed_topic_are_assigned() {
    let mut ctx = ctx_with_orders(2);
    let mut clients = vec![
        Client::new("m1", &["orders"]),
        Client::new("m2", &["orders"]),
    ];
    ctx.settle(&mut clients, 10);
    ctx.set_topics(&[("orders", 4)]);
    ctx.settle(&mut clients, 10);
    for client in &clients {
        assert_eq!(client.owned[&tid("orders")].len(), 2);
    }
}

#[test]
fn a_deleted_topic_is_revoked() {
    let mut ctx = Ctx::new();
    ctx.set_topics(&[("orders", 1), ("payments", 1)]);
    let mut m1 = Client::new("m1", &["orders", "payments"]);
    ctx.step(&mut m1);
    assert_eq!(m1.owned.len(), 2);
    ctx.set_topics(&[("payments", 1)]);
    ctx.settle(std::slice::from_mut(&mut m1), 5);
    assert_eq!(m1.owned, tp(&[("payments", &[0])]));
}

#[test]
fn a_regex_subscription_picks_up_a_topic_created_later() {
    let mut ctx = ctx_with_orders(1);
    let r = ctx.hb_ok(&Hb::join("m1", &[]).regex("orders.*"));
    assert_eq!(assignment_of(&r), Some(tp(&[("orders", &[0])])));
    ctx.set_topics(&[("orders", 1), ("orders-eu", 2), ("payments", 1)]);
    let r = ctx.hb_ok(&Hb::beat("m1", r.member_epoch, &tp(&[("orders", &[0])])));
    assert_eq!(
        assignment_of(&r),
        Some(tp(&[("orders", &[0]), ("orders-eu", &[0, 1])]))
    );
}

#[test]
fn a_topic_change_outside_every_subscription_does_not_bump_the_epoch() {
    let mut ctx = ctx_with_orders(1);
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    let epoch = ctx.cg().epoch;
    ctx.set_topics(&[("orders", 1), ("unrelated", 5)]);
    assert_eq!(ctx.cg().epoch, epoch);
}

// ---- Offsets, listing, describing, deleting ---------------------------------------------

#[test]
fn offset_commits_must_come_from_a_member_at_its_current_epoch_on_v9() {
    let mut ctx = ctx_with_orders(1);
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    let commit = |member: &str, epoch: i32, version: i16| {
        Commit::member(member, epoch)
            .offset("orders", 0, 5)
            .version(version)
    };
    let cases = [
        (commit("m1", 1, 9), 0),
        (commit("m1", 0, 9), ResponseError::StaleMemberEpoch.code()),
        (commit("ghost", 1, 9), ResponseError::UnknownMemberId.code()),
        (commit("m1", 1, 8), ResponseError::UnsupportedVersion.code()),
    ];
    for (commit, expected) in cases {
        let id = ctx.commit(&commit);
        let r = ctx.commit_response(id);
        assert_eq!(
            r.topics[0].partitions[0].error_code, expected,
            "{:?}",
            commit.version
        );
    }
}

/// The error of an OffsetCommit v9 by `member` at `epoch` of `orders` partitions.
fn commit_error(ctx: &mut Ctx, member: &str, epoch: i32, partitions: &[i32]) -> i16 {
    let mut commit = Commit::member(member, epoch).version(9);
    for p in partitions {
        commit = commit.offset("orders", *p, 7);
    }
    let id = ctx.commit(&commit);
    let errors = ctx.commit_errors(id);
    assert!(errors.iter().all(|e| *e == errors[0]), "{errors:?}");
    errors[0]
}

fn orders_held(ctx: &Ctx, member: &str) -> BTreeSet<i32> {
    let a = &ctx.cg().members[member].assignment;
    let t = tid("orders");
    a.assigned
        .get(&t)
        .into_iter()
        .chain(a.pending_revocation.get(&t))
        .flatten()
        .copied()
        .collect()
}

#[test]
fn a_commit_at_an_older_epoch_is_accepted_for_partitions_held_since_that_epoch() {
    const STALE: i16 = ResponseError::StaleMemberEpoch.code();
    let mut ctx = ctx_with_orders(4);
    let r = ctx.hb_ok(&Hb::join("m1", &["orders"]));
    assert_eq!(r.member_epoch, 1);
    // Two partitions more: m1 moves to epoch 2 with 4 and 5 assigned at 2.
    ctx.set_topics(&[("orders", 6)]);
    let r = ctx.hb_ok(&Hb::beat("m1", 1, &tp(&[("orders", &[0, 1, 2, 3])])));
    assert_eq!(r.member_epoch, 2);

    // A commit the member sent at epoch 1 (before it heard of epoch 2) is still good for the
    // partitions it held at epoch 1, not for those it got at 2, and the whole commit fails if
    // any partition fails.
    assert_eq!(commit_error(&mut ctx, "m1", 1, &[0, 3]), 0);
    assert_eq!(commit_error(&mut ctx, "m1", 1, &[4]), STALE);
    assert_eq!(commit_error(&mut ctx, "m1", 1, &[0, 4]), STALE);
    assert_eq!(commit_error(&mut ctx, "m1", 0, &[0]), STALE);
    // The current epoch commits anything; a later one nothing.
    assert_eq!(commit_error(&mut ctx, "m1", 2, &[4, 5]), 0);
    assert_eq!(commit_error(&mut ctx, "m1", 3, &[0]), STALE);
    // A topic the broker does not have is held by nobody.
    let id = ctx.commit(&Commit::member("m1", 1).version(9).offset("gone", 0, 1));
    assert_eq!(ctx.commit_errors(id), [STALE]);

    // m2 joins (epoch 3): m1 must give up three partitions. Until it does, it still holds
    // them, and a commit at epoch 1 is good for them.
    ctx.hb_ok(&Hb::join("m2", &["orders"]));
    let r = ctx.hb_ok(&Hb::beat("m1", 2, &tp(&[("orders", &[0, 1, 2, 3, 4, 5])])));
    assert_eq!(r.member_epoch, 2);
    let kept = orders_held(&ctx, "m1");
    let assigned = &ctx.cg().members["m1"].assignment.assigned[&tid("orders")];
    let revoked: BTreeSet<i32> = kept.difference(assigned).copied().collect();
    let kept: BTreeSet<i32> = assigned.clone();
    assert_eq!(revoked.len(), 3);
    let old_revoked: Vec<i32> = revoked.iter().copied().filter(|p| *p < 4).collect();
    assert_eq!(commit_error(&mut ctx, "m1", 1, &old_revoked), 0);
    // Once released they are not m1's: its commit at epoch 2 of them is refused, of the
    // partitions it kept accepted.
    let owned: Vec<i32> = kept.iter().copied().collect();
    let r = ctx.hb_ok(&Hb::beat("m1", 2, &tp(&[("orders", &owned)])));
    assert_eq!(r.member_epoch, 3);
    let revoked: Vec<i32> = revoked.into_iter().collect();
    assert_eq!(commit_error(&mut ctx, "m1", 2, &revoked), STALE);
    assert_eq!(commit_error(&mut ctx, "m1", 2, &owned), 0);
    ctx.assert_restart_rebuilds_the_groups();
    // The restarted coordinator judges the same.
    let mut back = ctx.replayed();
    back.set_topics(&[("orders", 6)]);
    assert_eq!(commit_error(&mut back, "m1", 2, &revoked), STALE);
    assert_eq!(commit_error(&mut back, "m1", 2, &owned), 0);
}

#[test]
fn a_static_member_back_under_a_new_id_holds_its_partitions_from_the_join_epoch() {
    let mut ctx = ctx_with_orders(2);
    ctx.hb_ok(&Hb::join("a-1", &["orders"]).instance("a"));
    ctx.set_topics(&[("orders", 3)]);
    ctx.hb_ok(&Hb::beat("a-1", 1, &tp(&[("orders", &[0, 1])])));
    ctx.hb_ok(&Hb::leave("a-1", -2).instance("a"));
    let r = ctx.hb_ok(&Hb::join("a-2", &["orders"]).instance("a"));
    let epochs = &ctx.cg().members["a-2"].assignment.assigned_at[&tid("orders")];
    assert!(epochs.values().all(|e| *e == 0), "{epochs:?}");
    assert_eq!(commit_error(&mut ctx, "a-2", r.member_epoch, &[0, 1, 2]), 0);
    // The member it replaced is gone.
    assert_eq!(
        commit_error(&mut ctx, "a-1", 2, &[0]),
        ResponseError::UnknownMemberId.code()
    );
}

#[test]
fn offset_fetch_naming_a_member_checks_its_epoch() {
    let mut ctx = ctx_with_orders(1);
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    let fetch = |ctx: &mut Ctx, member: Option<&str>, epoch: i32| {
        let mut request = fetch_request(G, None, 9);
        if let GroupRequest::OffsetFetch(r) = &mut request {
            r.groups[0].member_id = member.map(sb);
            r.groups[0].member_epoch = epoch;
        }
        let id = ctx.send(9, request);
        ctx.fetch_response(id).groups[0].error_code
    };
    assert_eq!(fetch(&mut ctx, Some("m1"), 1), 0);
    assert_eq!(
        fetch(&mut ctx, Some("m1"), 0),
        ResponseError::StaleMemberEpoch.code()
    );
    assert_eq!(
        fetch(&mut ctx, Some("ghost"), 1),
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(fetch(&mut ctx, None, -1), 0);
}

#[test]
fn list_groups_shows_consumer_groups_with_their_type_and_state() {
    let mut ctx = ctx_with_orders(1);
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    ctx.single_member_group_in("classic-group");
    let id = ctx.send(5, list_request(&[], &["consumer"]));
    let r = ctx.list_response(id);
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].group_id.as_str(), G);
    assert_eq!(r.groups[0].group_type.as_str(), "consumer");
    assert_eq!(r.groups[0].group_state.as_str(), "Stable");
    assert_eq!(r.groups[0].protocol_type.as_str(), "consumer");
    let id = ctx.send(5, list_request(&["stable"], &["classic"]));
    let listed: Vec<&str> = ctx
        .list_response(id)
        .groups
        .iter()
        .map(|g| g.group_id.as_str())
        .collect();
    assert_eq!(listed, ["classic-group"]);
}

#[test]
fn describe_groups_does_not_describe_a_consumer_group() {
    let mut ctx = ctx_with_orders(1);
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    let id = ctx.send(6, describe_request(&[G]));
    let r = ctx.describe_response(id);
    assert_eq!(
        r.groups[0].error_code,
        ResponseError::GroupIdNotFound.code()
    );
    assert_eq!(
        r.groups[0].error_message.as_deref(),
        Some(format!("Group {G} is not a classic group.").as_str())
    );
}

#[test]
fn consumer_group_describe_shows_epochs_members_and_assignments() {
    let mut ctx = ctx_with_orders(2);
    let mut clients = vec![
        Client::new("m1", &["orders"]),
        Client::new("m2", &["orders"]),
    ];
    ctx.settle(&mut clients, 10);
    let r = ctx.cg_describe(&[G, "missing"]);
    let g = &r.groups[0];
    assert_eq!(g.error_code, 0);
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!((g.group_epoch, g.assignment_epoch), (2, 2));
    assert_eq!(g.assignor_name.as_str(), "uniform");
    assert_eq!(g.members.len(), 2);
    for m in &g.members {
        assert_eq!(m.member_epoch, 2);
        assert_eq!(m.member_type, 1);
        assert_eq!(
            m.assignment.topic_partitions[0].topic_name.as_str(),
            "orders"
        );
        assert_eq!(m.assignment, m.target_assignment);
    }
    assert_eq!(
        r.groups[1].error_code,
        ResponseError::GroupIdNotFound.code()
    );
}

#[test]
fn a_consumer_group_is_deleted_only_once_empty_and_its_offsets_go_with_it() {
    let mut ctx = ctx_with_orders(1);
    ctx.hb_ok(&Hb::join("m1", &["orders"]));
    ctx.commit(&Commit::member("m1", 1).offset("orders", 0, 5).version(9));
    let id = ctx.send(2, delete_groups_request(&[G]));
    assert_eq!(
        ctx.delete_groups_response(id).results[0].error_code,
        ResponseError::NonEmptyGroup.code()
    );
    ctx.hb_ok(&Hb::leave("m1", -1));
    let id = ctx.send(2, delete_groups_request(&[G]));
    assert_eq!(ctx.delete_groups_response(id).results[0].error_code, 0);
    assert!(!ctx.c.has_group(G));
    assert!(ctx.offset(G, "orders", 0).is_none());
}

// ---- Replay -----------------------------------------------------------------------------

#[test]
fn replaying_the_stored_records_in_key_order_rebuilds_the_same_group() {
    let mut ctx = ctx_with_orders(6);
    let mut clients: Vec<Client> = (0..3)
        .map(|i| Client::new(&format!("m{i}"), &["orders"]))
        .collect();
    clients[2].instance = Some("static".into());
    ctx.step(&mut clients[0]);
    ctx.step(&mut clients[1]);
    ctx.step(&mut clients[2]);
    ctx.step(&mut clients[0]);
    let replayed = ctx.replayed_consumer_group(G);
    assert_same_group(ctx.cg(), &replayed);
}

/// Compares the durable part of two consumer groups.
pub(crate) fn assert_same_group(
    live: &crate::consumer::ConsumerGroup,
    replayed: &crate::consumer::ConsumerGroup,
) {
    assert_eq!(live.epoch, replayed.epoch);
    assert_eq!(live.metadata_hash, replayed.metadata_hash);
    assert_eq!(live.assignment_epoch, replayed.assignment_epoch);
    assert_eq!(live.target, replayed.target);
    assert_eq!(live.members, replayed.members);
    assert_eq!(live.static_members, replayed.static_members);
    assert_eq!(live.holders, replayed.holders);
}
