//! `group.initial.rebalance.delay.ms` (Kafka's InitialDelayedJoin): the first join phase of an
//! Empty group waits, extended while members keep arriving, never beyond the rebalance timeout.

use super::*;

fn delayed(delay: i32) -> Ctx {
    Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: delay,
        ..GroupConfig::default()
    })
}

#[test]
fn initial_delay_holds_the_first_join_for_the_configured_delay() {
    let mut ctx = delayed(3_000);
    let (_, id) = ctx.join_new(Join::new(""));
    assert_eq!(
        ctx.timer(&format!("initial-delay:{G}")),
        Some(ctx.now + 3_000)
    );
    ctx.sleep(2_999);
    assert!(!ctx.answered(id));
    ctx.sleep(1);
    assert_eq!(ctx.join_response(id).generation_id, 1);
}

#[test]
fn initial_delay_does_not_complete_early_when_every_member_has_joined() {
    let mut ctx = delayed(3_000);
    let (_, a) = ctx.join_new(Join::new(""));
    let (_, b) = ctx.join_new(Join::new(""));
    assert!(!ctx.answered(a) && !ctx.answered(b));
}

#[test]
fn initial_delay_is_extended_by_members_joining_during_it() {
    let mut ctx = delayed(3_000);
    let (_, a) = ctx.join_new(Join::new(""));
    ctx.sleep(1_000);
    let (_, b) = ctx.join_new(Join::new(""));
    ctx.sleep(2_000);
    assert!(!ctx.answered(a), "extended because b arrived");
    ctx.sleep(2_999);
    assert!(!ctx.answered(a));
    ctx.sleep(1);
    assert!(ctx.answered(a) && ctx.answered(b));
    assert_eq!(ctx.join_response(a).members.len(), 2);
}

#[test]
fn initial_delay_extensions_never_exceed_the_rebalance_timeout() {
    let mut ctx = delayed(3_000);
    let (_, a) = ctx.join_new(Join::new("").rebalance(5_000));
    ctx.sleep(1_000);
    ctx.join_new(Join::new("").rebalance(5_000));
    ctx.sleep(3_000);
    ctx.join_new(Join::new("").rebalance(5_000));
    ctx.sleep(999);
    assert!(!ctx.answered(a));
    ctx.sleep(1);
    assert!(
        ctx.answered(a),
        "5s after the first join, even though a member just arrived"
    );
    assert_eq!(ctx.join_response(a).members.len(), 3);
}

#[test]
fn a_rebalance_timeout_below_the_delay_leaves_nothing_to_extend() {
    let mut ctx = delayed(3_000);
    let (_, a) = ctx.join_new(Join::new("").rebalance(2_000));
    ctx.sleep(1_000);
    ctx.join_new(Join::new("").rebalance(2_000));
    ctx.sleep(2_000);
    assert!(ctx.answered(a));
}

#[test]
fn initial_delay_applies_only_to_an_empty_group() {
    let mut ctx = delayed(3_000);
    let (_, a) = ctx.join_new(Join::new(""));
    ctx.sleep(3_000);
    let member = ctx.join_response(a).member_id.to_string();
    ctx.sync(&Sync::new(&member, 1).assign(&member, b"x"));
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    // The group has a member: a rebalance completes as soon as everybody is in.
    let (_, b) = ctx.join_new(Join::new(""));
    let again = ctx.join(&Join::new(&member));
    assert!(ctx.answered(b) && ctx.answered(again));
    assert_eq!(ctx.timer(&format!("initial-delay:{G}")), None);
}

#[test]
fn a_group_that_became_empty_again_gets_the_initial_delay_again() {
    let mut ctx = delayed(3_000);
    let (member, a) = ctx.join_new(Join::new(""));
    ctx.sleep(3_000);
    assert!(ctx.answered(a));
    ctx.send(3, leave_request(G, &[(&member, None)], 3));
    assert_eq!(ctx.state(), Some(GroupState::Empty));
    let (_, b) = ctx.join_new(Join::new(""));
    assert!(!ctx.answered(b));
    ctx.sleep(3_000);
    assert_eq!(ctx.join_response(b).generation_id, 3);
}

#[test]
fn a_zero_delay_still_completes_through_the_timer() {
    let mut ctx = delayed(0);
    let (_, a) = ctx.join_new(Join::new(""));
    assert!(!ctx.answered(a));
    assert_eq!(ctx.c.next_deadline(), Some(ctx.now));
    ctx.tick();
    assert!(ctx.answered(a));
}
