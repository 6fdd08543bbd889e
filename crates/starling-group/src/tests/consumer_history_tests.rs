//! The rebalance record of consumer-protocol groups: one per group-epoch bump, with its cause,
//! each moved partition's hand-over and each member's reconciliation.

use super::consumer_support::{tp, Client, Hb};
use super::*;
use crate::history::{DepartureReason, RebalanceCause, RebalanceOutcome, RebalanceRecord};

fn ctx_with_orders(partitions: u32) -> Ctx {
    let mut ctx = Ctx::new();
    ctx.set_topics(&[("orders", partitions)]);
    ctx
}

/// The group's records, closed and open, oldest first.
fn history(ctx: &Ctx) -> Vec<RebalanceRecord> {
    ctx.c.groups[G].history.iter().cloned().collect()
}

fn last(ctx: &Ctx) -> RebalanceRecord {
    history(ctx).pop().expect("a rebalance record")
}

/// m1 alone owns every partition of a 6-partition topic, reconciled.
fn one_member_owning_six(ctx: &mut Ctx) -> Client {
    let mut m1 = Client::new("m1", &["orders"]);
    ctx.step(&mut m1);
    assert_eq!(m1.owned, tp(&[("orders", &[0, 1, 2, 3, 4, 5])]));
    m1
}

#[test]
fn the_first_member_opens_a_record_that_closes_as_soon_as_it_holds_its_target() {
    let mut ctx = ctx_with_orders(3);
    let started = ctx.wall();
    let _m1 = one_member_owning(&mut ctx, 3);
    let r = last(&ctx);
    assert_eq!(r.generation, 1);
    assert_eq!(r.cause, RebalanceCause::MemberJoined);
    assert_eq!(r.trigger_member.as_deref(), Some("m1"));
    assert_eq!(r.protocol_type, "consumer");
    assert!(r.consumer_protocol);
    assert_eq!(r.protocol.as_deref(), Some("uniform"));
    assert_eq!(r.outcome, RebalanceOutcome::Stable);
    assert_eq!((r.started_ms, r.ended_ms), (started, Some(started)));
    assert_eq!(
        r.join_completed_ms, None,
        "the consumer protocol has no join phase"
    );
    assert_eq!(r.joined, ["m1"]);
    assert!(r.members_before.is_empty());
    let change = r.assignment.expect("the assignment change");
    assert_eq!(change.assigned.len(), 3);
    assert!(change.moved.is_empty() && change.stayed.is_empty());
    assert_eq!(r.members.len(), 1);
    assert_eq!(r.reconciliation[0].epoch_before, None);
    assert_eq!(r.reconciliation[0].epoch, 1);
    assert_eq!(
        ctx.rebalances.len(),
        1,
        "the closed record is handed out once"
    );
}

fn one_member_owning(ctx: &mut Ctx, partitions: usize) -> Client {
    let mut m1 = Client::new("m1", &["orders"]);
    ctx.step(&mut m1);
    assert_eq!(
        m1.owned.values().map(|s| s.len()).sum::<usize>(),
        partitions
    );
    m1
}

#[test]
fn a_scale_out_record_times_each_moved_partitions_revoke_release_and_new_owner() {
    let mut ctx = ctx_with_orders(6);
    let mut m1 = one_member_owning_six(&mut ctx);
    ctx.sleep(1_000);
    let bump = ctx.wall();
    let mut m2 = Client::new("m2", &["orders"]);
    ctx.step(&mut m2);
    let r = last(&ctx);
    assert_eq!((r.generation, r.cause), (2, RebalanceCause::MemberJoined));
    assert_eq!(r.trigger_member.as_deref(), Some("m2"));
    assert_eq!(r.members_before, ["m1"]);
    assert_eq!(r.outcome, RebalanceOutcome::InProgress);

    ctx.sleep(100);
    ctx.step(&mut m1); // asked to revoke three partitions
    let asked = ctx.wall();
    ctx.sleep(100);
    ctx.step(&mut m1); // gives them up
    let released = ctx.wall();
    ctx.sleep(100);
    ctx.step(&mut m2); // gets them
    let assigned = ctx.wall();
    ctx.sleep(100);
    ctx.step(&mut m1); // catches up with epoch 2 if it has not yet
    ctx.step(&mut m2);

    let r = ctx
        .rebalances
        .iter()
        .find(|r| r.generation == 2)
        .expect("generation 2 closed")
        .clone();
    assert_eq!(r.outcome, RebalanceOutcome::Stable);
    assert_eq!(r.started_ms, bump);
    let change = r.assignment.clone().unwrap();
    assert_eq!(change.moved.len(), 3);
    assert!(change.moved.iter().all(|m| m.from == "m1" && m.to == "m2"));
    assert_eq!(change.stayed.len(), 3);
    assert_eq!(r.handovers.len(), 3);
    for h in &r.handovers {
        assert_eq!((h.from.as_str(), h.to.as_str()), ("m1", "m2"));
        assert_eq!(h.revoke_asked_ms, Some(asked), "{h:?}");
        assert_eq!(h.released_ms, Some(released), "{h:?}");
        assert_eq!(h.assigned_ms, Some(assigned), "{h:?}");
    }
    let m1_rec = r
        .reconciliation
        .iter()
        .find(|m| m.member_id == "m1")
        .unwrap();
    assert_eq!((m1_rec.epoch_before, m1_rec.epoch), (Some(1), 2));
    let m2_rec = r
        .reconciliation
        .iter()
        .find(|m| m.member_id == "m2")
        .unwrap();
    assert_eq!(
        (m2_rec.epoch_before, m2_rec.epoch),
        (None, 2),
        "it joined in the bump"
    );
    assert_eq!(m2_rec.reconciled_ms, Some(assigned));
    assert!(r.ended_ms.unwrap() >= assigned);
}

#[test]
fn a_member_that_leaves_releases_its_partitions_when_it_leaves_and_the_record_says_so() {
    let mut ctx = ctx_with_orders(4);
    let mut clients = vec![
        Client::new("m1", &["orders"]),
        Client::new("m2", &["orders"]),
    ];
    ctx.settle(&mut clients, 10);
    ctx.sleep(1_000);
    let left_at = ctx.wall();
    ctx.hb_ok(&Hb::leave("m2", -1));
    let r = last(&ctx);
    assert_eq!(
        (r.cause, r.trigger_member.as_deref()),
        (RebalanceCause::MemberLeft, Some("m2"))
    );
    assert_eq!(r.left.len(), 1);
    assert_eq!(r.left[0].reason, DepartureReason::Left);
    assert_eq!(r.members_before, ["m1", "m2"]);
    ctx.sleep(200);
    let mut m1 = clients.remove(0);
    ctx.step(&mut m1);
    let got = ctx.wall();
    let r = ctx.rebalances.last().unwrap().clone();
    assert_eq!(r.outcome, RebalanceOutcome::Stable);
    assert_eq!(r.handovers.len(), 2);
    for h in &r.handovers {
        assert_eq!((h.from.as_str(), h.to.as_str()), ("m2", "m1"));
        assert_eq!(h.revoke_asked_ms, None, "it left holding them");
        assert_eq!(h.released_ms, Some(left_at));
        assert_eq!(h.assigned_ms, Some(got));
    }
}

#[test]
fn a_session_expiry_is_the_cause_and_the_departure_reason() {
    let mut ctx = ctx_with_orders(2);
    let mut clients = vec![
        Client::new("m1", &["orders"]),
        Client::new("m2", &["orders"]),
    ];
    ctx.settle(&mut clients, 10);
    // m1 keeps heartbeating; m2 goes silent.
    for _ in 0..10 {
        ctx.sleep(5_000);
        ctx.step(&mut clients[0]);
    }
    let r = ctx
        .rebalances
        .iter()
        .find(|r| r.cause == RebalanceCause::SessionExpired)
        .expect("a record caused by the expiry")
        .clone();
    assert_eq!(r.trigger_member.as_deref(), Some("m2"));
    assert_eq!(r.left[0].reason, DepartureReason::SessionExpired);
    assert_eq!(r.outcome, RebalanceOutcome::Stable);
}

#[test]
fn a_member_fenced_for_not_revoking_is_a_rebalance_timeout() {
    let mut ctx = ctx_with_orders(2);
    let (mut m1, mut m2) = ctx.stubborn_member_asked_to_revoke();
    ctx.heartbeat_every(9_000, 4, &mut [&mut m1, &mut m2]);
    let all = history(&ctx);
    let fenced = all
        .iter()
        .find(|r| r.cause == RebalanceCause::RebalanceTimeout)
        .expect("a record caused by the fence");
    assert_eq!(fenced.trigger_member.as_deref(), Some("m1"));
    assert_eq!(fenced.left[0].reason, DepartureReason::NotRevoked);
    // The scale-out it interrupted closed as restarted.
    let scale_out = all.iter().find(|r| r.generation == 2).unwrap();
    assert_eq!(scale_out.outcome, RebalanceOutcome::Restarted);
}

#[test]
fn a_topic_that_grows_is_a_metadata_change_with_no_trigger_member() {
    let mut ctx = ctx_with_orders(2);
    let mut m1 = one_member_owning(&mut ctx, 2);
    ctx.set_topics(&[("orders", 4)]);
    let r = last(&ctx);
    assert_eq!(
        (r.cause, r.trigger_member.clone()),
        (RebalanceCause::MetadataChanged, None)
    );
    ctx.step(&mut m1);
    let r = last(&ctx);
    assert_eq!(r.outcome, RebalanceOutcome::Stable);
    let change = r.assignment.unwrap();
    assert_eq!((change.stayed.len(), change.assigned.len()), (2, 2));
    assert!(r.handovers.is_empty());
}

#[test]
fn a_new_subscription_is_a_subscription_change() {
    let mut ctx = Ctx::new();
    ctx.set_topics(&[("orders", 2), ("payments", 2)]);
    let mut m1 = Client::new("m1", &["orders"]);
    ctx.step(&mut m1);
    ctx.hb_ok(&Hb::beat("m1", m1.epoch, &m1.owned).topics(&["orders", "payments"]));
    let r = last(&ctx);
    assert_eq!(r.cause, RebalanceCause::SubscriptionChanged);
    assert_eq!(r.trigger_member.as_deref(), Some("m1"));
}

#[test]
fn the_last_member_leaving_closes_the_record_as_empty() {
    let mut ctx = ctx_with_orders(2);
    let _m1 = one_member_owning(&mut ctx, 2);
    ctx.hb_ok(&Hb::leave("m1", -1));
    let r = ctx.rebalances.last().unwrap().clone();
    assert_eq!(
        (r.cause, r.outcome),
        (RebalanceCause::MemberLeft, RebalanceOutcome::Empty)
    );
}

#[test]
fn a_static_member_replaced_without_a_bump_is_noted_in_the_open_record() {
    let mut ctx = ctx_with_orders(4);
    let mut m1 = Client::new("m1", &["orders"]);
    m1.instance = Some("i1".to_string());
    ctx.step(&mut m1);
    let mut m2 = Client::new("m2", &["orders"]);
    ctx.step(&mut m2); // generation 2 opens; m1 must revoke
                       // m1 leaves for a moment (−2) and its instance comes back under a new id before the
                       // scale-out is done: a replacement, not a bump.
    ctx.hb_ok(&Hb::leave("m1", -2).instance("i1"));
    let mut m1b = Client::new("m1b", &["orders"]);
    m1b.instance = Some("i1".to_string());
    ctx.step(&mut m1b);
    let r = last(&ctx);
    assert_eq!(r.generation, 2);
    assert!(r.joined.contains(&"m1b".to_string()), "{r:?}");
    assert!(
        r.left
            .iter()
            .any(|d| d.member_id == "m1" && d.reason == DepartureReason::Replaced),
        "{r:?}"
    );
}

#[test]
fn replaying_stored_records_records_no_rebalance() {
    let mut ctx = ctx_with_orders(4);
    let mut clients = vec![
        Client::new("m1", &["orders"]),
        Client::new("m2", &["orders"]),
    ];
    ctx.settle(&mut clients, 10);
    assert!(!history(&ctx).is_empty());
    let restarted = ctx.replayed();
    assert!(restarted.c.groups[G].history.is_empty());
    assert!(restarted.rebalances.is_empty());
}

#[test]
fn an_online_upgrade_is_recorded_as_protocol_upgraded_with_the_classic_members_before() {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    });
    ctx.set_topics(&[("orders", 6)]);
    let classic = ctx.stable_classic_group(3, "orders", 6, true);
    let mut c1 = Client::new("c1", &["orders"]);
    let r = ctx.step(&mut c1);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let record = history(&ctx)
        .into_iter()
        .rev()
        .find(|r| r.protocol.as_deref() == Some("uniform"))
        .expect("a consumer-protocol record");
    assert_eq!(record.cause, RebalanceCause::ProtocolUpgraded, "{record:?}");
    assert_eq!(record.trigger_member.as_deref(), Some("c1"));
    assert_eq!(
        record.joined,
        ["c1"],
        "the classic members were converted, not joined"
    );
    let mut before: Vec<String> = classic.iter().map(|c| c.member.clone()).collect();
    before.sort();
    assert_eq!(record.members_before, before);
}
