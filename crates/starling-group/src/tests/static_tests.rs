//! KIP-345 static membership: replacement of a member id, fencing of the old one, no
//! rebalance for an unchanged Stable group, KIP-814 `skip_assignment`.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::*;

/// Static members (one per instance id) form a Stable group of generation 1; returns their
/// member ids, the leader first. Each assignment is `b"s-<instance>"`.
fn static_group(ctx: &mut Ctx, instances: &[&str], join: Join) -> Vec<String> {
    let ids: Vec<RequestId> = instances
        .iter()
        .map(|i| ctx.join(&join.clone().instance(i)))
        .collect();
    ctx.tick();
    let members: Vec<String> = ids
        .iter()
        .map(|id| ctx.join_response(*id).member_id.to_string())
        .collect();
    assert!(ids.iter().all(|id| ctx.join_response(*id).error_code == 0));
    for (member, instance) in members.iter().zip(instances).skip(1) {
        ctx.sync(&Sync::new(member, 1).instance(instance));
    }
    let mut sync = Sync::new(&members[0], 1).instance(instances[0]);
    for (member, instance) in members.iter().zip(instances) {
        sync = sync.assign(member, format!("s-{instance}").as_bytes());
    }
    ctx.sync(&sync);
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    members
}

#[test]
fn static_members_join_without_member_id_required() {
    let mut ctx = Ctx::new();
    for version in [5, 9] {
        let id = ctx.join(
            &Join::new("")
                .instance(&format!("i-{version}"))
                .version(version),
        );
        assert!(
            !ctx.answered(id),
            "v{version}: held in the barrier, no MEMBER_ID_REQUIRED"
        );
    }
}

#[test]
fn a_group_instance_id_before_v5_is_ignored() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").instance("i-1").version(4));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::MemberIdRequired)
    );
}

#[test]
fn static_member_id_is_prefixed_with_the_instance_id() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0"], Join::new(""));
    assert!(members[0].starts_with("i-0-"));
}

#[test]
fn static_member_rejoin_with_same_metadata_causes_no_rebalance() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    let id = ctx.join(&Join::new("").instance("i-1"));
    let r = ctx.join_response(id);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, 1);
    assert_ne!(r.member_id.as_str(), members[1]);
    assert!(r.member_id.starts_with("i-1-"));
    assert_eq!(r.leader.as_str(), members[0]);
    assert!(r.members.is_empty());
    assert!(!r.skip_assignment);
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    assert_eq!(ctx.generation(), 1);
}

#[test]
fn static_member_replacement_is_persisted_with_the_new_member_id() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    let id = ctx.join(&Join::new("").instance("i-1"));
    let new_id = ctx.join_response(id).member_id.to_string();
    assert_eq!(ctx.last_records.len(), 1);
    let value = ctx.group_records().last().cloned().cloned().unwrap();
    let ids: Vec<&str> = value.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, vec![members[0].as_str(), new_id.as_str()]);
    assert_eq!(
        &value.members[1].assignment[..],
        b"s-i-1",
        "the assignment carries over"
    );
    assert_eq!(value.generation, 1);
}

#[test]
fn a_replaced_static_member_gets_its_previous_assignment_through_sync() {
    let mut ctx = Ctx::new();
    static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    let id = ctx.join(&Join::new("").instance("i-1"));
    let new_id = ctx.join_response(id).member_id.to_string();
    let s = ctx.sync(&Sync::new(&new_id, 1).instance("i-1"));
    assert_eq!(&ctx.sync_response(s).assignment[..], b"s-i-1");
}

#[test]
fn stale_static_member_id_is_fenced_on_heartbeat() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    ctx.join(&Join::new("").instance("i-1"));
    assert_eq!(
        ctx.heartbeat_static(&members[1], "i-1", 1),
        code(ResponseError::FencedInstanceId)
    );
    assert_eq!(
        ctx.heartbeat(&members[1], 1),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn stale_static_member_id_is_fenced_on_sync() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    ctx.join(&Join::new("").instance("i-1"));
    let s = ctx.sync(&Sync::new(&members[1], 1).instance("i-1"));
    assert_eq!(
        ctx.sync_response(s).error_code,
        code(ResponseError::FencedInstanceId)
    );
}

#[test]
fn stale_static_member_id_is_fenced_on_commit() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    ctx.join(&Join::new("").instance("i-1"));
    let c = ctx.commit(
        &Commit::member(&members[1], 1)
            .instance("i-1")
            .offset("t", 0, 5),
    );
    assert_eq!(
        ctx.commit_errors(c),
        vec![code(ResponseError::FencedInstanceId)]
    );
    assert!(ctx.last_records.is_empty());
}

#[test]
fn stale_static_member_id_is_fenced_on_join() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    ctx.join(&Join::new("").instance("i-1"));
    let id = ctx.join(&Join::new(&members[1]).instance("i-1"));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::FencedInstanceId)
    );
    assert_eq!(ctx.state(), Some(GroupState::Stable));
}

#[test]
fn stale_static_member_id_is_fenced_on_leave() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    ctx.join(&Join::new("").instance("i-1"));
    let id = ctx.send(3, leave_request(G, &[(&members[1], Some("i-1"))], 3));
    assert_eq!(
        ctx.leave_response(id).members[0].error_code,
        code(ResponseError::FencedInstanceId)
    );
    assert_eq!(ctx.members().len(), 2);
}

#[test]
fn an_unknown_instance_id_with_a_member_id_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0"], Join::new(""));
    let id = ctx.join(&Join::new(&members[0]).instance("other"));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        ctx.heartbeat_static(&members[0], "other", 1),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_static_member_rejoining_with_its_member_id_is_an_existing_member() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    let id = ctx.join(&Join::new(&members[1]).instance("i-1"));
    let r = ctx.join_response(id);
    assert_eq!(
        (r.error_code, r.member_id.as_str()),
        (0, members[1].as_str())
    );
    assert!(
        ctx.last_records.is_empty(),
        "a follower rejoin with the same id changes nothing"
    );
}

#[test]
fn static_leader_rejoin_on_v9_gets_the_member_list_and_skip_assignment() {
    let mut ctx = Ctx::new();
    static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    let id = ctx.join(&Join::new("").instance("i-0"));
    let r = ctx.join_response(id);
    assert_eq!(r.error_code, 0);
    assert!(r.skip_assignment);
    assert_eq!(r.leader, r.member_id, "the new id leads");
    assert_eq!(r.members.len(), 2);
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    assert_eq!(ctx.leader().as_deref(), Some(r.member_id.as_str()));
}

#[test]
fn static_leader_rejoin_before_v9_is_told_the_old_leader_id() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    let id = ctx.join(&Join::new("").instance("i-0").version(8));
    let r = ctx.join_response(id);
    assert_eq!(r.error_code, 0);
    assert_eq!(
        r.leader.as_str(),
        members[0],
        "acts as a follower and keeps its assignment"
    );
    assert!(r.members.is_empty());
    assert_eq!(ctx.state(), Some(GroupState::Stable));
}

#[test]
fn static_rejoin_that_changes_the_selected_protocol_triggers_a_rebalance() {
    let mut ctx = Ctx::new();
    let both = Join::new("").protocols(&[("range", Bytes::new()), ("sticky", Bytes::new())]);
    static_group(&mut ctx, &["i-0", "i-1"], both);
    let id = ctx.join(
        &Join::new("")
            .instance("i-1")
            .protocols(&[("sticky", Bytes::new())]),
    );
    assert!(!ctx.answered(id));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn static_rejoin_with_a_new_subscription_under_the_same_protocol_causes_no_rebalance() {
    let mut ctx = Ctx::new();
    static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    let id = ctx.join(&Join::new("").instance("i-1").topics(&["another"]));
    assert_eq!(ctx.join_response(id).error_code, 0);
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    let value = ctx.group_records().last().cloned().cloned().unwrap();
    assert_eq!(value.members[1].protocols[0].1, subscription(&["another"]));
}

#[test]
fn static_rejoin_during_completing_rebalance_triggers_a_rebalance() {
    let mut ctx = Ctx::new();
    let a = ctx.join(&Join::new("").instance("i-0"));
    let b = ctx.join(&Join::new("").instance("i-1"));
    ctx.tick();
    let old_b = ctx.join_response(b).member_id.to_string();
    let held = ctx.sync(&Sync::new(&old_b, 1).instance("i-1"));
    let again = ctx.join(&Join::new("").instance("i-1"));
    assert_eq!(
        ctx.sync_response(held).error_code,
        code(ResponseError::FencedInstanceId)
    );
    assert!(!ctx.answered(again));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
    let leader = ctx.join_response(a).member_id.to_string();
    ctx.join(&Join::new(&leader).instance("i-0"));
    assert_eq!(ctx.join_response(again).generation_id, 2);
}

#[test]
fn static_rejoin_during_preparing_rebalance_fences_the_old_held_join() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    let old = ctx.join(&Join::new(&members[0]).instance("i-0"));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
    let new = ctx.join(&Join::new("").instance("i-0"));
    let r = ctx.join_response(old);
    assert_eq!(
        (r.error_code, r.member_id.as_str()),
        (code(ResponseError::FencedInstanceId), members[0].as_str())
    );
    assert!(!ctx.answered(new));
    ctx.join(&Join::new(&members[1]).instance("i-1"));
    let r = ctx.join_response(new);
    assert_eq!((r.error_code, r.generation_id), (0, 2));
    assert_eq!(r.leader, r.member_id);
}

#[test]
fn a_static_member_that_stops_keeps_its_place_until_its_session_times_out() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    ctx.sleep(5_000);
    ctx.heartbeat_static(&members[0], "i-0", 1);
    ctx.sleep(4_999);
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    assert_eq!(ctx.members().len(), 2);
    ctx.sleep(1);
    assert_eq!(ctx.members(), vec![members[0].clone()]);
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn a_static_member_that_does_not_rejoin_stays_in_the_next_generation() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new("").session(60_000));
    let id = ctx.join(&Join::new(&members[0]).instance("i-0").session(60_000));
    ctx.sleep(i64::from(REBALANCE));
    let r = ctx.join_response(id);
    assert_eq!(r.generation_id, 2);
    let listed: Vec<&str> = r.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(listed, vec![members[0].as_str(), members[1].as_str()]);
    assert_eq!(r.members[1].group_instance_id.as_deref(), Some("i-1"));
}

#[test]
fn a_barrier_where_only_absent_static_members_remain_waits_another_round() {
    let mut ctx = Ctx::new();
    let members = static_group(&mut ctx, &["i-0", "i-1"], Join::new("").session(100_000));
    // A dynamic newcomer joins and then leaves while the barrier runs: nobody rejoined.
    let (newcomer, _) = ctx.join_new(Join::new(""));
    ctx.send(3, leave_request(G, &[(&newcomer, None)], 3));
    let generation = ctx.generation();
    ctx.sleep(i64::from(REBALANCE));
    assert_eq!(
        ctx.generation(),
        generation,
        "no generation without a joined member"
    );
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
    assert!(ctx.timer(&format!("join:{G}")).is_some());
    assert_eq!(ctx.members(), members);
}

#[test]
fn an_absent_static_member_asking_for_no_rebalance_timeout_is_waited_for_a_millisecond_per_round() {
    // Found by fuzzing: with the group's rebalance timeout at 0 (or below, as a client may ask),
    // the next round was due at once, so expiring it rescheduled it at once and `expire` never
    // returned: one client could stop every group's coordination.
    for rebalance in [0, -5] {
        let mut ctx = Ctx::with_config(GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        });
        ctx.join(&Join::new("").instance("i-0").session(100_000));
        ctx.join(
            &Join::new("")
                .instance("i-1")
                .session(100_000)
                .rebalance(rebalance),
        );
        ctx.sleep(48);
        // i-0 leaves; i-1, the only member left, is static and has not rejoined.
        ctx.send(5, leave_request(G, &[("", Some("i-0"))], 5));
        ctx.sleep(1);
        ctx.sleep(10);
        assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
        assert_eq!(ctx.members().len(), 1);
        let next_round = ctx.timer(&format!("join:{G}")).expect("a join timer");
        assert!(next_round > ctx.now, "the next round is due in the past");
    }
}

#[test]
fn a_restarted_static_member_may_switch_protocols_its_old_self_alone_used() {
    let mut ctx = Ctx::new();
    static_group(&mut ctx, &["i-0"], Join::new(""));
    let id = ctx.join(
        &Join::new("")
            .instance("i-0")
            .protocols(&[("sticky", Bytes::new())]),
    );
    // Accepted; the protocol change rebalances, and with everybody in it completes at once.
    let r = ctx.join_response(id);
    assert_eq!((r.error_code, r.generation_id), (0, 2));
    assert_eq!(r.protocol_name.as_deref(), Some("sticky"));
}

#[test]
fn the_replaced_static_leader_keeps_leadership_under_its_new_id() {
    let mut ctx = Ctx::new();
    static_group(&mut ctx, &["i-0", "i-1"], Join::new(""));
    let id = ctx.join(&Join::new("").instance("i-0").version(8));
    let new_id = ctx.join_response(id).member_id.to_string();
    assert_eq!(ctx.leader(), Some(new_id));
}
