//! Offset expiry (`offsets.retention.minutes`, checked every
//! `offsets.retention.check.interval.ms`) and the removal of groups left empty.

use bytes::Bytes;

use super::*;

const RETENTION: i64 = 100_000;
const INTERVAL: i64 = 10_000;

fn expiring() -> Ctx {
    Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        offsets_retention_ms: RETENTION,
        offsets_retention_check_interval_ms: INTERVAL,
        ..GroupConfig::default()
    })
}

/// Sleeps in steps while keeping `member` (generation `generation`) alive.
fn idle(ctx: &mut Ctx, ms: i64, member: Option<(&str, i32)>) {
    let mut left = ms;
    while left > 0 {
        let step = left.min(5_000);
        ctx.sleep(step);
        left -= step;
        if let Some((member, generation)) = member {
            ctx.heartbeat(member, generation);
        }
    }
}

#[test]
fn the_expiry_check_runs_every_interval() {
    let mut ctx = expiring();
    assert_eq!(ctx.timer("offsets-expiry"), Some(ctx.now + INTERVAL));
    ctx.sleep(INTERVAL);
    assert_eq!(ctx.timer("offsets-expiry"), Some(ctx.now + INTERVAL));
}

#[test]
fn offsets_of_a_simple_group_expire_retention_after_their_commit() {
    let mut ctx = expiring();
    ctx.commit(&Commit::simple().offset("t", 0, 1));
    ctx.sleep(50_000);
    ctx.commit(&Commit::simple().offset("t", 1, 1));
    idle(&mut ctx, 50_000, None);
    assert!(ctx.offset(G, "t", 0).is_none(), "committed 100s ago");
    assert!(ctx.offset(G, "t", 1).is_some(), "committed 50s ago");
    assert!(ctx.c.has_group(G));
}

#[test]
fn expired_offsets_get_tombstones_and_an_empty_group_without_offsets_is_deleted() {
    let mut ctx = expiring();
    ctx.commit(&Commit::simple().offset("t", 0, 1));
    idle(&mut ctx, RETENTION, None);
    assert!(!ctx.c.has_group(G));
    let tail: Vec<&Record> = ctx.records.iter().rev().take(2).collect();
    assert!(matches!(tail[0], Record::Group { value: None, .. }));
    assert!(matches!(tail[1], Record::Offset { value: None, .. }));
}

#[test]
fn an_offset_expires_at_its_explicit_expire_timestamp() {
    let mut ctx = expiring();
    ctx.commit(
        &Commit::simple()
            .offset("t", 0, 1)
            .retention(20_000)
            .version(2),
    );
    idle(&mut ctx, 20_000, None);
    assert!(ctx.offset(G, "t", 0).is_none());
}

#[test]
fn offsets_of_a_group_with_members_do_not_expire_while_subscribed() {
    let mut ctx = expiring();
    let member = ctx.single_member_group();
    ctx.commit(&Commit::member(&member, 1).offset("topic", 0, 1));
    idle(&mut ctx, 3 * RETENTION, Some((&member, 1)));
    assert!(ctx.offset(G, "topic", 0).is_some());
}

#[test]
fn offsets_of_topics_a_stable_consumer_group_no_longer_subscribes_to_expire() {
    let mut ctx = expiring();
    let member = ctx.single_member_group();
    ctx.commit(
        &Commit::member(&member, 1)
            .offset("topic", 0, 1)
            .offset("gone", 0, 1),
    );
    idle(&mut ctx, RETENTION, Some((&member, 1)));
    assert!(ctx.offset(G, "topic", 0).is_some());
    assert!(ctx.offset(G, "gone", 0).is_none());
    assert!(ctx.c.has_group(G));
}

#[test]
fn offsets_of_a_group_of_another_protocol_type_with_members_never_expire() {
    let mut ctx = expiring();
    let (a, _) = ctx.join_new(
        Join::new("")
            .protocol_type("connect")
            .protocols(&[("v1", Bytes::new())]),
    );
    ctx.tick();
    ctx.sync(&Sync::new(&a, 1));
    ctx.commit(&Commit::member(&a, 1).offset("t", 0, 1));
    idle(&mut ctx, 2 * RETENTION, Some((&a, 1)));
    assert!(ctx.offset(G, "t", 0).is_some());
}

#[test]
fn offsets_of_a_group_that_became_empty_expire_retention_after_it_became_empty() {
    let mut ctx = expiring();
    let member = ctx.single_member_group();
    ctx.commit(&Commit::member(&member, 1).offset("topic", 0, 1));
    // Members stay for a long time without committing again.
    idle(&mut ctx, 2 * RETENTION, Some((&member, 1)));
    ctx.send(3, leave_request(G, &[(&member, None)], 3));
    assert_eq!(ctx.state(), Some(GroupState::Empty));
    idle(&mut ctx, RETENTION - INTERVAL, None);
    assert!(
        ctx.offset(G, "topic", 0).is_some(),
        "retention counts from when the group emptied"
    );
    idle(&mut ctx, INTERVAL, None);
    assert!(ctx.offset(G, "topic", 0).is_none());
    assert!(!ctx.c.has_group(G));
}

#[test]
fn an_empty_group_without_offsets_is_deleted_at_the_next_check() {
    let mut ctx = expiring();
    let member = ctx.single_member_group();
    ctx.send(3, leave_request(G, &[(&member, None)], 3));
    ctx.sleep(INTERVAL);
    assert!(!ctx.c.has_group(G));
}

#[test]
fn an_empty_group_with_a_pending_member_is_kept() {
    let mut ctx = expiring();
    ctx.sleep(INTERVAL - 1);
    ctx.join(&Join::new("").session(30_000));
    ctx.sleep(1);
    assert!(ctx.c.has_group(G));
}

#[test]
fn offsets_of_a_rebalancing_group_do_not_expire() {
    let mut ctx = expiring();
    let members = ctx.stable_group(2);
    ctx.commit(&Commit::member(&members[0], 1).offset("gone", 0, 1));
    ctx.join(&Join::new(&members[0]).rebalance(600_000));
    idle(&mut ctx, 2 * RETENTION, Some((&members[1], 1)));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
    assert!(ctx.offset(G, "gone", 0).is_some());
}
