//! Heartbeat and session expiry.

use kafka_protocol::ResponseError;

use super::*;

#[test]
fn heartbeat_with_an_empty_group_id_is_invalid_group_id() {
    let mut ctx = Ctx::new();
    let id = ctx.send(4, heartbeat_request("", "m", 1, None));
    assert_eq!(ctx.heartbeat_error(id), code(ResponseError::InvalidGroupId));
}

#[test]
fn heartbeat_for_an_unknown_group_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    assert_eq!(ctx.heartbeat("m", 1), code(ResponseError::UnknownMemberId));
}

#[test]
fn heartbeat_from_an_unknown_member_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    assert_eq!(
        ctx.heartbeat("stranger", 1),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn heartbeat_to_an_empty_group_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 1));
    assert_eq!(ctx.state(), Some(GroupState::Empty));
    assert_eq!(ctx.heartbeat("m", 0), code(ResponseError::UnknownMemberId));
}

#[test]
fn heartbeat_from_a_pending_member_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    let first = ctx.join(&Join::new(""));
    let pending = ctx.join_response(first).member_id.to_string();
    assert_eq!(
        ctx.heartbeat(&pending, 0),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn heartbeat_with_the_wrong_generation_is_illegal_generation() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    assert_eq!(
        ctx.heartbeat(&member, 0),
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        ctx.heartbeat(&member, 2),
        code(ResponseError::IllegalGeneration)
    );
}

#[test]
fn heartbeat_in_a_stable_group_is_none() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    assert_eq!(ctx.heartbeat(&member, 1), 0);
}

#[test]
fn heartbeat_in_preparing_rebalance_is_rebalance_in_progress() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.join(&Join::new(&members[0]));
    assert_eq!(
        ctx.heartbeat(&members[1], 1),
        code(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn heartbeat_in_preparing_rebalance_still_refreshes_the_session() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.join(&Join::new(&members[0]));
    ctx.sleep(8_000);
    ctx.heartbeat(&members[1], 1);
    assert_eq!(
        ctx.timer(&format!("heartbeat:{G}:{}", members[1])),
        Some(ctx.now + i64::from(SESSION))
    );
    ctx.sleep(8_000);
    assert!(ctx.members().contains(&members[1]));
}

#[test]
fn heartbeat_in_completing_rebalance_is_none() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(Join::new(""));
    let (b, _) = ctx.join_new(Join::new(""));
    ctx.tick();
    assert_eq!(ctx.state(), Some(GroupState::CompletingRebalance));
    assert_eq!(ctx.heartbeat(&b, 1), 0);
    assert_eq!(ctx.heartbeat(&a, 1), 0);
}

#[test]
fn heartbeats_keep_a_member_alive_past_its_session_timeout() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    for _ in 0..10 {
        ctx.sleep(9_000);
        assert_eq!(ctx.heartbeat(&member, 1), 0);
    }
    assert_eq!(ctx.state(), Some(GroupState::Stable));
}

#[test]
fn a_heartbeat_schedules_the_session_deadline_at_now_plus_session_timeout() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    ctx.sleep(1_234);
    ctx.heartbeat(&member, 1);
    assert_eq!(
        ctx.timer(&format!("heartbeat:{G}:{member}")),
        Some(ctx.now + i64::from(SESSION))
    );
}

#[test]
fn member_without_heartbeats_is_removed_at_its_session_timeout() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    for _ in 0..2 {
        ctx.sleep(6_000);
        ctx.heartbeat(&members[0], 1);
    }
    assert_eq!(ctx.members(), vec![members[0].clone()]);
    assert_eq!(
        ctx.heartbeat(&members[1], 1),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn session_expiry_triggers_a_rebalance() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.sleep(5_000);
    ctx.heartbeat(&members[0], 1);
    ctx.sleep(5_000);
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
    assert_eq!(
        ctx.heartbeat(&members[0], 1),
        code(ResponseError::RebalanceInProgress)
    );
    let id = ctx.join(&Join::new(&members[0]));
    assert_eq!(ctx.join_response(id).generation_id, 2);
}

#[test]
fn session_expiry_of_the_last_member_empties_the_group_with_a_new_generation() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    ctx.sleep(i64::from(SESSION));
    assert_eq!(ctx.state(), Some(GroupState::Empty));
    assert_eq!(ctx.generation(), 2);
    assert!(ctx.group_records().last().unwrap().members.is_empty());
}

#[test]
fn session_expiry_of_the_leader_hands_leadership_to_the_next_member() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(3);
    ctx.sleep(6_000);
    ctx.heartbeat(&members[1], 1);
    ctx.heartbeat(&members[2], 1);
    ctx.sleep(4_000);
    assert!(!ctx.members().contains(&members[0]));
    assert_eq!(ctx.leader(), Some(members[1].clone()));
}

#[test]
fn a_member_parked_in_the_join_barrier_is_not_expired_by_its_session() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let parked = ctx.join(&Join::new(&members[0]));
    // members[1] heartbeats; members[0] only waits in the barrier, longer than its session.
    for _ in 0..4 {
        ctx.sleep(5_000);
        ctx.heartbeat(&members[1], 1);
    }
    assert!(ctx.members().contains(&members[0]));
    assert!(!ctx.answered(parked));
}

#[test]
fn a_member_waiting_for_its_assignment_is_not_expired_by_its_session() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(Join::new("").session(20_000));
    let (b, _) = ctx.join_new(Join::new("").session(6_000));
    ctx.tick();
    let held = ctx.sync(&Sync::new(&b, 1));
    for _ in 0..3 {
        ctx.sleep(5_000);
        assert_eq!(ctx.heartbeat(&a, 1), 0);
    }
    assert!(ctx.members().contains(&b));
    assert!(!ctx.answered(held));
    ctx.sync(&Sync::new(&a, 1).assign(&b, b"B"));
    assert_eq!(&ctx.sync_response(held).assignment[..], b"B");
}

#[test]
fn heartbeats_before_v3_ignore_the_group_instance_id() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let id = ctx.send(2, heartbeat_request(G, &member, 1, Some("whatever")));
    assert_eq!(ctx.heartbeat_error(id), 0);
    let id = ctx.send(3, heartbeat_request(G, &member, 1, Some("whatever")));
    assert_eq!(
        ctx.heartbeat_error(id),
        code(ResponseError::UnknownMemberId)
    );
}
