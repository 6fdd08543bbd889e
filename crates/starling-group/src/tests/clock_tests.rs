//! Two clocks: timers run on the monotonic clock, so a wall clock that jumps neither fires them
//! early nor holds them back; stored and shown timestamps come from the wall clock.

use super::*;

const HOUR: i64 = 3_600_000;

#[test]
fn a_wall_clock_jumping_forward_does_not_expire_a_session() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    ctx.jump_wall_clock(HOUR);
    ctx.sleep(i64::from(SESSION) - 1);
    assert_eq!(ctx.members(), vec![member]);
    ctx.sleep(1);
    assert!(ctx.members().is_empty());
}

#[test]
fn a_wall_clock_jumping_back_does_not_hold_a_session_open() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let deadline = ctx.timer(&format!("heartbeat:{G}:{member}")).unwrap();
    ctx.jump_wall_clock(-HOUR);
    assert_eq!(
        ctx.timer(&format!("heartbeat:{G}:{member}")),
        Some(deadline)
    );
    ctx.sleep(deadline - ctx.now);
    assert!(ctx.members().is_empty());
}

#[test]
fn a_wall_clock_jump_does_not_move_the_join_barrier() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    // A new member starts a rebalance; the others must rejoin by the join deadline. They only
    // heartbeat (their sessions stay alive), so the barrier waits until that deadline.
    ctx.join_new(Join::new(""));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
    let deadline = ctx.timer(&format!("join:{G}")).unwrap();
    ctx.jump_wall_clock(10 * HOUR);
    ctx.sleep(1);
    ctx.jump_wall_clock(-20 * HOUR);
    assert_eq!(ctx.timer(&format!("join:{G}")), Some(deadline));
    while ctx.now < deadline - 1 {
        ctx.sleep((deadline - 1 - ctx.now).min(3_000));
        for member in &members {
            ctx.heartbeat(member, 1);
        }
    }
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
    ctx.sleep(1);
    assert_ne!(ctx.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn offset_commit_timestamps_come_from_the_wall_clock() {
    let mut ctx = Ctx::new();
    ctx.jump_wall_clock(HOUR);
    ctx.commit(
        &Commit::simple()
            .offset("t", 0, 7)
            .retention(60_000)
            .version(4),
    );
    let v = ctx.offset(G, "t", 0).unwrap();
    assert_eq!(v.commit_timestamp, ctx.now + HOUR);
    assert_eq!(v.expire_timestamp, Some(ctx.now + HOUR + 60_000));
}

#[test]
fn offsets_expire_by_the_wall_clock_checked_on_the_monotonic_interval() {
    let config = GroupConfig {
        initial_rebalance_delay_ms: 0,
        offsets_retention_ms: 10 * HOUR,
        offsets_retention_check_interval_ms: 60_000,
        ..GroupConfig::default()
    };
    let mut ctx = Ctx::with_config(config);
    ctx.commit(&Commit::simple().offset("t", 0, 7));
    // The wall clock moves past the retention: the next periodic check removes the offset, and
    // the check comes when the monotonic interval says, not before.
    ctx.jump_wall_clock(11 * HOUR);
    ctx.sleep(30_000);
    assert!(ctx.offset(G, "t", 0).is_some());
    ctx.sleep(30_000);
    assert!(ctx.offset(G, "t", 0).is_none());
}

#[test]
fn a_timer_fired_late_is_stamped_with_the_wall_time_of_its_deadline() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let deadline = ctx.timer(&format!("heartbeat:{G}:{member}")).unwrap();
    ctx.jump_wall_clock(HOUR);
    // One late `expire`, 5 s after the session ran out.
    ctx.sleep(deadline - ctx.now + 5_000);
    assert!(ctx.members().is_empty());
    let record = ctx
        .last_rebalances
        .last()
        .expect("the expiry closed a rebalance");
    assert_eq!(record.started_ms, deadline + HOUR);
}

#[test]
fn the_group_state_timestamp_comes_from_the_wall_clock() {
    let mut ctx = Ctx::new();
    ctx.jump_wall_clock(HOUR);
    let member = ctx.single_member_group();
    let stored = ctx
        .records
        .iter()
        .rev()
        .find_map(|r| match r {
            Record::Group {
                value: Some(value), ..
            } => Some(value.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(stored.members[0].member_id, member);
    assert_eq!(stored.state_timestamp, ctx.wall());
}
