//! LeaveGroup: single (v0–2) and batched (v3+) leaves, by member id and by instance id.

use kafka_protocol::ResponseError;

use super::*;

fn member_errors(r: &LeaveGroupResponse) -> Vec<(String, i16)> {
    r.members
        .iter()
        .map(|m| (m.member_id.to_string(), m.error_code))
        .collect()
}

#[test]
fn leave_with_an_empty_group_id_is_invalid_group_id() {
    let mut ctx = Ctx::new();
    let id = ctx.send(4, leave_request("", &[("m", None)], 4));
    assert_eq!(
        ctx.leave_response(id).error_code,
        code(ResponseError::InvalidGroupId)
    );
}

#[test]
fn leave_v0_for_an_unknown_group_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    let id = ctx.send(0, leave_request(G, &[("m", None)], 0));
    let r = ctx.leave_response(id);
    assert_eq!(r.error_code, code(ResponseError::UnknownMemberId));
    assert!(r.members.is_empty());
}

#[test]
fn leave_v3_for_an_unknown_group_reports_unknown_member_id_per_member() {
    let mut ctx = Ctx::new();
    let id = ctx.send(3, leave_request(G, &[("m1", None), ("m2", None)], 3));
    let r = ctx.leave_response(id);
    assert_eq!(r.error_code, 0);
    let unknown = code(ResponseError::UnknownMemberId);
    assert_eq!(
        member_errors(r),
        vec![("m1".to_string(), unknown), ("m2".to_string(), unknown)]
    );
}

#[test]
fn leave_v0_from_an_unknown_member_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let id = ctx.send(1, leave_request(G, &[("stranger", None)], 1));
    assert_eq!(
        ctx.leave_response(id).error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(ctx.state(), Some(GroupState::Stable));
}

#[test]
fn leave_v0_removes_the_member_and_rebalances() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let id = ctx.send(0, leave_request(G, &[(&members[1], None)], 0));
    assert_eq!(ctx.leave_response(id).error_code, 0);
    assert_eq!(ctx.members(), vec![members[0].clone()]);
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn leave_v3_removes_a_batch_of_members_with_one_rebalance() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(3);
    let id = ctx.send(
        3,
        leave_request(G, &[(&members[1], None), (&members[2], None)], 3),
    );
    let r = ctx.leave_response(id);
    assert!(r.members.iter().all(|m| m.error_code == 0));
    assert_eq!(ctx.members(), vec![members[0].clone()]);
}

#[test]
fn leave_v3_reports_errors_per_member() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let id = ctx.send(
        4,
        leave_request(G, &[(&members[1], None), ("ghost", None)], 4),
    );
    let r = ctx.leave_response(id);
    assert_eq!(
        member_errors(r),
        vec![
            (members[1].clone(), 0),
            ("ghost".to_string(), code(ResponseError::UnknownMemberId))
        ]
    );
    assert_eq!(ctx.members(), vec![members[0].clone()]);
}

#[test]
fn leave_response_v3_echoes_member_and_instance_ids() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").instance("i-1"));
    ctx.tick();
    let member = ctx.join_response(id).member_id.to_string();
    let leave = ctx.send(5, leave_request(G, &[(&member, Some("i-1"))], 5));
    let r = ctx.leave_response(leave);
    assert_eq!(r.members[0].member_id.as_str(), member);
    assert_eq!(r.members[0].group_instance_id.as_deref(), Some("i-1"));
    assert_eq!(r.members[0].error_code, 0);
}

#[test]
fn leave_by_instance_id_alone_removes_the_static_member() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").instance("i-1"));
    ctx.tick();
    assert_eq!(ctx.join_response(id).error_code, 0);
    let leave = ctx.send(3, leave_request(G, &[("", Some("i-1"))], 3));
    assert_eq!(ctx.leave_response(leave).members[0].error_code, 0);
    assert!(ctx.members().is_empty());
}

#[test]
fn leave_by_an_unknown_instance_id_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let leave = ctx.send(3, leave_request(G, &[("", Some("nope"))], 3));
    assert_eq!(
        ctx.leave_response(leave).members[0].error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn leave_with_an_instance_id_owned_by_another_member_id_is_fenced() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").instance("i-1"));
    ctx.tick();
    let member = ctx.join_response(id).member_id.to_string();
    let leave = ctx.send(3, leave_request(G, &[("old-id", Some("i-1"))], 3));
    assert_eq!(
        ctx.leave_response(leave).members[0].error_code,
        code(ResponseError::FencedInstanceId)
    );
    assert_eq!(ctx.members(), vec![member]);
}

#[test]
fn a_pending_member_may_leave_without_a_rebalance() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let first = ctx.join(&Join::new(""));
    let pending = ctx.join_response(first).member_id.to_string();
    let leave = ctx.send(3, leave_request(G, &[(&pending, None)], 3));
    assert_eq!(ctx.leave_response(leave).members[0].error_code, 0);
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    assert!(ctx.c.groups[G].pending_join.is_empty());
    assert_eq!(ctx.timer(&format!("pending:{G}:{pending}")), None);
}

#[test]
fn the_last_member_leaving_empties_the_group_and_persists_it() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    ctx.send(0, leave_request(G, &[(&member, None)], 0));
    assert_eq!(ctx.state(), Some(GroupState::Empty));
    assert_eq!(ctx.last_records.len(), 1);
    let value = ctx.group_records().last().cloned().cloned().unwrap();
    assert_eq!((value.generation, value.members.len()), (2, 0));
}

#[test]
fn a_leave_during_the_join_barrier_completes_it_when_the_rest_have_joined() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let j0 = ctx.join(&Join::new(&members[0]));
    assert!(!ctx.answered(j0));
    ctx.send(3, leave_request(G, &[(&members[1], None)], 3));
    assert_eq!(ctx.join_response(j0).generation_id, 2);
    assert_eq!(ctx.state(), Some(GroupState::CompletingRebalance));
}

#[test]
fn leaving_answers_the_leavers_held_join_with_unknown_member_id() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let j0 = ctx.join(&Join::new(&members[0]));
    ctx.send(3, leave_request(G, &[(&members[0], None)], 3));
    let r = ctx.join_response(j0);
    assert_eq!(r.error_code, code(ResponseError::UnknownMemberId));
}

#[test]
fn a_leave_during_completing_rebalance_rebalances_and_fails_held_syncs() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(Join::new(""));
    let (b, _) = ctx.join_new(Join::new(""));
    ctx.tick();
    let held = ctx.sync(&Sync::new(&b, 1).version(3));
    ctx.send(3, leave_request(G, &[(&a, None)], 3));
    assert_eq!(
        ctx.sync_response(held).error_code,
        code(ResponseError::RebalanceInProgress)
    );
    assert_eq!(ctx.members(), vec![b.clone()]);
    assert_eq!(ctx.leader(), Some(b));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn a_leave_during_the_initial_delay_does_not_end_the_delay_early() {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 3_000,
        ..GroupConfig::default()
    });
    let (a, ja) = ctx.join_new(Join::new(""));
    let (b, _) = ctx.join_new(Join::new(""));
    ctx.send(3, leave_request(G, &[(&b, None)], 3));
    assert!(!ctx.answered(ja));
    ctx.sleep(3_000);
    ctx.sleep(3_000);
    assert_eq!(ctx.join_response(ja).member_id.as_str(), a);
}
