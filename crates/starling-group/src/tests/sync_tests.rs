//! SyncGroup: validation, the sync barrier, the leader's assignment and its persistence.

use kafka_protocol::ResponseError;

use super::*;

/// Two members in CompletingRebalance of generation 1; returns (leader, follower).
fn completing(ctx: &mut Ctx) -> (String, String) {
    let (a, _) = ctx.join_new(Join::new(""));
    let (b, _) = ctx.join_new(Join::new(""));
    ctx.tick();
    assert_eq!(ctx.state(), Some(GroupState::CompletingRebalance));
    (a, b)
}

#[test]
fn sync_with_an_empty_group_id_is_invalid_group_id() {
    let mut ctx = Ctx::new();
    let id = ctx.sync(&Sync::new("m", 1).group(""));
    assert_eq!(
        ctx.sync_response(id).error_code,
        code(ResponseError::InvalidGroupId)
    );
}

#[test]
fn sync_for_an_unknown_group_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    let id = ctx.sync(&Sync::new("m", 1));
    assert_eq!(
        ctx.sync_response(id).error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn sync_to_an_empty_group_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 1));
    let id = ctx.sync(&Sync::new("m", 0));
    assert_eq!(
        ctx.sync_response(id).error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn sync_from_an_unknown_member_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let id = ctx.sync(&Sync::new("stranger", 1));
    assert_eq!(
        ctx.sync_response(id).error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn sync_with_the_wrong_generation_is_illegal_generation() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let id = ctx.sync(&Sync::new(&member, 7));
    assert_eq!(
        ctx.sync_response(id).error_code,
        code(ResponseError::IllegalGeneration)
    );
}

#[test]
fn sync_v5_with_another_protocol_type_is_inconsistent_group_protocol() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let id = ctx.sync(&Sync::new(&member, 1).protocol("connect", "range"));
    assert_eq!(
        ctx.sync_response(id).error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn sync_v5_with_another_protocol_name_is_inconsistent_group_protocol() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let id = ctx.sync(&Sync::new(&member, 1).protocol("consumer", "roundrobin"));
    assert_eq!(
        ctx.sync_response(id).error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn sync_v5_naming_the_groups_protocol_is_accepted() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let id = ctx.sync(&Sync::new(&member, 1).protocol("consumer", "range"));
    assert_eq!(ctx.sync_response(id).error_code, 0);
}

#[test]
fn protocol_fields_are_not_checked_before_v5() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let id = ctx.sync(
        &Sync::new(&member, 1)
            .protocol("connect", "other")
            .version(4),
    );
    assert_eq!(ctx.sync_response(id).error_code, 0);
}

#[test]
fn sync_during_preparing_rebalance_is_rebalance_in_progress() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.join(&Join::new(&members[0]));
    let id = ctx.sync(&Sync::new(&members[1], 1));
    assert_eq!(
        ctx.sync_response(id).error_code,
        code(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn follower_sync_is_held_until_the_leader_syncs() {
    let mut ctx = Ctx::new();
    let (a, b) = completing(&mut ctx);
    let follower = ctx.sync(&Sync::new(&b, 1));
    assert!(!ctx.answered(follower));
    ctx.sleep(1_000);
    assert!(!ctx.answered(follower));
    ctx.sync(&Sync::new(&a, 1).assign(&a, b"A").assign(&b, b"B"));
    let r = ctx.sync_response(follower);
    assert_eq!((r.error_code, &r.assignment[..]), (0, &b"B"[..]));
}

#[test]
fn leader_sync_persists_the_assignment_and_makes_the_group_stable() {
    let mut ctx = Ctx::new();
    let (a, b) = completing(&mut ctx);
    let leader = ctx.sync(&Sync::new(&a, 1).assign(&a, b"A").assign(&b, b"B"));
    assert_eq!(&ctx.sync_response(leader).assignment[..], b"A");
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    assert_eq!(ctx.last_records.len(), 1);
    let value = ctx.group_records().last().cloned().cloned().unwrap();
    let assignments: Vec<(&str, &[u8])> = value
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), &m.assignment[..]))
        .collect();
    assert_eq!(
        assignments,
        vec![(a.as_str(), &b"A"[..]), (b.as_str(), &b"B"[..])]
    );
    assert_eq!(value.generation, 1);
}

#[test]
fn a_member_left_out_of_the_leaders_assignment_gets_an_empty_one() {
    let mut ctx = Ctx::new();
    let (a, b) = completing(&mut ctx);
    let follower = ctx.sync(&Sync::new(&b, 1));
    ctx.sync(&Sync::new(&a, 1).assign(&a, b"A"));
    let r = ctx.sync_response(follower);
    assert_eq!(r.error_code, 0);
    assert!(r.assignment.is_empty());
}

#[test]
fn assignments_for_non_members_are_ignored() {
    let mut ctx = Ctx::new();
    let (a, b) = completing(&mut ctx);
    ctx.sync(
        &Sync::new(&a, 1)
            .assign(&a, b"A")
            .assign(&b, b"B")
            .assign("ghost", b"G"),
    );
    let value = ctx.group_records().last().cloned().cloned().unwrap();
    assert_eq!(value.members.len(), 2);
}

#[test]
fn sync_in_a_stable_group_returns_the_current_assignment() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(3);
    let id = ctx.sync(&Sync::new(&members[2], 1));
    assert_eq!(&ctx.sync_response(id).assignment[..], b"a-2");
    assert!(ctx.last_records.is_empty(), "no record for a plain read");
}

#[test]
fn a_leader_sync_in_a_stable_group_does_not_change_the_assignment() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let id = ctx.sync(
        &Sync::new(&members[0], 1)
            .assign(&members[0], b"new")
            .assign(&members[1], b"new"),
    );
    assert_eq!(&ctx.sync_response(id).assignment[..], b"a-0");
    assert!(ctx.last_records.is_empty());
}

#[test]
fn sync_response_carries_protocol_type_and_name_from_v5_only() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let v5 = ctx.sync(&Sync::new(&member, 1));
    let v4 = ctx.sync(&Sync::new(&member, 1).version(4));
    let r5 = ctx.sync_response(v5);
    assert_eq!(
        (r5.protocol_type.as_deref(), r5.protocol_name.as_deref()),
        (Some("consumer"), Some("range"))
    );
    let r4 = ctx.sync_response(v4);
    assert_eq!(
        (r4.protocol_type.as_deref(), r4.protocol_name.as_deref()),
        (None, None)
    );
}

#[test]
fn member_that_never_syncs_is_removed_at_the_sync_timeout_and_the_group_rebalances() {
    let mut ctx = Ctx::new();
    let (a, b) = completing(&mut ctx);
    assert_eq!(
        ctx.timer(&format!("sync:{G}")),
        Some(ctx.now + i64::from(REBALANCE))
    );
    ctx.sync(&Sync::new(&a, 1).assign(&a, b"A").assign(&b, b"B"));
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    // b keeps heartbeating but never syncs.
    for _ in 0..5 {
        ctx.sleep(6_000);
        ctx.heartbeat(&b, 1);
        ctx.heartbeat(&a, 1);
    }
    assert_eq!(ctx.members(), vec![a.clone()]);
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn the_sync_timer_is_cancelled_once_every_member_synced() {
    let mut ctx = Ctx::new();
    let (a, b) = completing(&mut ctx);
    ctx.sync(&Sync::new(&b, 1));
    assert!(ctx.timer(&format!("sync:{G}")).is_some());
    ctx.sync(&Sync::new(&a, 1).assign(&a, b"A"));
    assert_eq!(ctx.timer(&format!("sync:{G}")), None);
}

#[test]
fn a_leader_that_never_syncs_fails_held_syncs_with_rebalance_in_progress() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(Join::new("").session(60_000));
    let (b, _) = ctx.join_new(Join::new("").session(60_000));
    ctx.tick();
    let held = ctx.sync(&Sync::new(&b, 1));
    ctx.sleep(i64::from(REBALANCE));
    assert_eq!(
        ctx.sync_response(held).error_code,
        code(ResponseError::RebalanceInProgress)
    );
    assert!(!ctx.members().contains(&a));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn a_second_sync_while_one_is_held_answers_the_older_with_not_coordinator() {
    let mut ctx = Ctx::new();
    let (a, b) = completing(&mut ctx);
    let first = ctx.sync(&Sync::new(&b, 1));
    let second = ctx.sync(&Sync::new(&b, 1));
    assert_eq!(
        ctx.sync_response(first).error_code,
        code(ResponseError::NotCoordinator)
    );
    ctx.sync(&Sync::new(&a, 1).assign(&b, b"B"));
    assert_eq!(&ctx.sync_response(second).assignment[..], b"B");
}

#[test]
fn sync_restarts_the_members_session() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    ctx.sleep(9_000);
    ctx.sync(&Sync::new(&member, 1));
    ctx.sleep(9_000);
    assert_eq!(ctx.members(), vec![member.clone()]);
    assert_eq!(ctx.heartbeat(&member, 1), 0);
}

#[test]
fn a_member_removed_while_its_sync_is_held_gets_unknown_member_id() {
    let mut ctx = Ctx::new();
    let (a, b) = completing(&mut ctx);
    let held = ctx.sync(&Sync::new(&b, 1));
    ctx.send(3, leave_request(G, &[(&b, None)], 3));
    assert_eq!(
        ctx.sync_response(held).error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(ctx.members(), vec![a]);
}
