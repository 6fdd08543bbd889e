//! JoinGroup: validation, KIP-394 member ids, the join barrier, protocol selection and the
//! rules for rejoining members.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::*;

#[test]
fn empty_group_id_is_rejected_with_invalid_group_id() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").group(""));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::InvalidGroupId)
    );
    assert!(!ctx.c.has_group(""));
}

#[test]
fn session_timeout_below_minimum_is_rejected() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").session(5_999));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::InvalidSessionTimeout)
    );
    assert!(!ctx.c.has_group(G));
}

#[test]
fn session_timeout_above_maximum_is_rejected() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").session(1_800_001));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::InvalidSessionTimeout)
    );
}

#[test]
fn session_timeout_at_the_bounds_is_accepted() {
    let mut ctx = Ctx::new();
    let a = ctx.join(&Join::new("").session(6_000));
    let b = ctx.join(&Join::new("").session(1_800_000));
    assert_eq!(
        ctx.join_response(a).error_code,
        code(ResponseError::MemberIdRequired)
    );
    assert_eq!(
        ctx.join_response(b).error_code,
        code(ResponseError::MemberIdRequired)
    );
}

#[test]
fn empty_protocol_type_is_inconsistent_group_protocol() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").protocol_type(""));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn empty_protocol_list_is_inconsistent_group_protocol() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").protocols(&[]));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn invalid_join_does_not_create_a_group() {
    let mut ctx = Ctx::new();
    ctx.join(&Join::new("").protocols(&[]));
    assert!(!ctx.c.has_group(G));
    assert!(ctx.records.is_empty());
}

#[test]
fn new_member_without_id_gets_member_id_required_on_v4() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").version(4));
    let r = ctx.join_response(id);
    assert_eq!(r.error_code, code(ResponseError::MemberIdRequired));
    assert!(!r.member_id.is_empty());
    assert!(
        ctx.members().is_empty(),
        "a pending member is not a member yet"
    );
}

#[test]
fn member_id_required_id_is_client_id_prefixed_and_uuid_shaped() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new(""));
    let member = ctx.join_response(id).member_id.to_string();
    let suffix = member.strip_prefix("client-").expect("client id prefix");
    let groups: Vec<usize> = suffix.split('-').map(str::len).collect();
    assert_eq!(groups, vec![8, 4, 4, 4, 12]);
}

#[test]
fn generated_member_ids_are_unique() {
    let mut ctx = Ctx::new();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let id = ctx.join(&Join::new(""));
        assert!(seen.insert(ctx.join_response(id).member_id.to_string()));
    }
}

#[test]
fn member_id_required_creates_and_persists_an_empty_group() {
    let mut ctx = Ctx::new();
    ctx.join(&Join::new(""));
    assert_eq!(ctx.state(), Some(GroupState::Empty));
    let records = ctx.group_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].generation, 0);
    assert!(records[0].members.is_empty());
}

#[test]
fn rejoin_with_handed_out_member_id_is_accepted() {
    let mut ctx = Ctx::new();
    let (member, id) = ctx.join_new(Join::new(""));
    assert!(!ctx.answered(id), "held at the join barrier");
    assert_eq!(ctx.members(), vec![member.clone()]);
    ctx.tick();
    let r = ctx.join_response(id);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.member_id.as_str(), member);
    assert_eq!(r.generation_id, 1);
}

#[test]
fn v3_new_member_is_added_without_member_id_required() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").version(3));
    assert!(!ctx.answered(id));
    assert_eq!(ctx.members().len(), 1);
    ctx.tick();
    let r = ctx.join_response(id);
    assert_eq!(r.error_code, 0);
    assert!(r.member_id.starts_with("client-"));
}

#[test]
fn v0_join_uses_the_session_timeout_as_rebalance_timeout() {
    let mut ctx = Ctx::new();
    ctx.join(&Join::new("").version(0).session(7_000).rebalance(99_000));
    let group = &ctx.c.groups[G];
    let member = group.members.values().next().unwrap();
    assert_eq!(member.rebalance_timeout_ms, 7_000);
}

#[test]
fn unknown_non_empty_member_id_gets_unknown_member_id() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let id = ctx.join(&Join::new("nobody"));
    let r = ctx.join_response(id);
    assert_eq!(r.error_code, code(ResponseError::UnknownMemberId));
    assert_eq!(r.member_id.as_str(), "nobody");
}

#[test]
fn known_member_id_for_a_missing_group_gets_unknown_member_id() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("someone"));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert!(!ctx.c.has_group(G));
}

#[test]
fn pending_member_that_never_rejoins_is_dropped_after_its_session_timeout() {
    let mut ctx = Ctx::new();
    let first = ctx.join(&Join::new(""));
    let member = ctx.join_response(first).member_id.to_string();
    assert!(ctx.timer(&format!("pending:{G}:{member}")).is_some());
    ctx.sleep(i64::from(SESSION));
    assert!(ctx.c.groups[G].pending_join.is_empty());
    let late = ctx.join(&Join::new(&member));
    assert_eq!(
        ctx.join_response(late).error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn group_max_size_rejects_an_extra_member_with_group_max_size_reached() {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        max_size: 1,
        ..GroupConfig::default()
    });
    ctx.single_member_group();
    let id = ctx.join(&Join::new(""));
    let r = ctx.join_response(id);
    assert_eq!(r.error_code, code(ResponseError::GroupMaxSizeReached));
    assert_eq!(ctx.members().len(), 1);
    assert_eq!(
        ctx.state(),
        Some(GroupState::Stable),
        "a rejected joiner does not rebalance the group"
    );
}

#[test]
fn group_max_size_counts_members_waiting_in_the_join_barrier() {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        max_size: 2,
        ..GroupConfig::default()
    });
    let members = ctx.stable_group(2);
    // The leader rejoins and a newcomer joins: two members wait in the barrier.
    ctx.join(&Join::new(&members[0]));
    let (_, newcomer) = ctx.join_new(Join::new(""));
    assert!(!ctx.answered(newcomer));
    let id = ctx.join(&Join::new(""));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::GroupMaxSizeReached)
    );
}

#[test]
fn protocol_type_mismatch_is_inconsistent_group_protocol() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let id = ctx.join(&Join::new("").protocol_type("connect"));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn no_protocol_supported_by_every_member_is_inconsistent_group_protocol() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let id = ctx.join(&Join::new("").protocols(&[("roundrobin", Bytes::new())]));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn a_joiner_needs_only_one_protocol_in_common() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let id = ctx.join(&Join::new("").protocols(&[
        ("sticky", Bytes::new()),
        ("range", subscription(&["topic"])),
    ]));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::MemberIdRequired)
    );
}

#[test]
fn a_member_may_switch_to_a_protocol_every_other_member_supports() {
    let mut ctx = Ctx::new();
    let both = [
        ("range", subscription(&["t"])),
        ("sticky", subscription(&["t"])),
    ];
    let (a, ja) = ctx.join_new(Join::new("").protocols(&both));
    let (_b, jb) = ctx.join_new(Join::new("").protocols(&both));
    ctx.tick();
    assert_eq!(
        ctx.join_response(ja).protocol_name.as_deref(),
        Some("range")
    );
    assert_eq!(ctx.join_response(jb).error_code, 0);
    // The only member left running "range" switches to "sticky": allowed, since b supports it.
    let id = ctx.join(&Join::new(&a).protocols(&[("sticky", subscription(&["t"]))]));
    assert!(!ctx.answered(id));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn first_member_becomes_the_leader() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(3);
    assert_eq!(ctx.leader(), Some(members[0].clone()));
}

#[test]
fn leader_response_lists_members_with_metadata_and_followers_get_none() {
    let mut ctx = Ctx::new();
    let (a, ja) = ctx.join_new(Join::new("").topics(&["a"]));
    let (b, jb) = ctx.join_new(Join::new("").topics(&["b"]));
    ctx.tick();
    let leader = ctx.join_response(ja);
    assert_eq!(leader.leader.as_str(), a);
    let listed: Vec<(String, Bytes)> = leader
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.metadata.clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (a.clone(), subscription(&["a"])),
            (b.clone(), subscription(&["b"]))
        ]
    );
    assert!(!leader.skip_assignment);
    let follower = ctx.join_response(jb);
    assert_eq!(follower.leader.as_str(), a);
    assert!(follower.members.is_empty());
}

#[test]
fn join_barrier_completes_as_soon_as_all_known_members_rejoin() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let j0 = ctx.join(&Join::new(&members[0]));
    assert!(!ctx.answered(j0));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
    let j1 = ctx.join(&Join::new(&members[1]));
    // No timer needed: both answered by the second join.
    assert!(ctx.answered(j0) && ctx.answered(j1));
    assert_eq!(ctx.join_response(j1).generation_id, 2);
    assert_eq!(ctx.state(), Some(GroupState::CompletingRebalance));
}

#[test]
fn join_barrier_waits_for_members_holding_a_handed_out_member_id() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(1);
    // A new member got its id but has not rejoined yet.
    let first = ctx.join(&Join::new(""));
    let pending = ctx.join_response(first).member_id.to_string();
    let j0 = ctx.join(&Join::new(&members[0]));
    assert!(!ctx.answered(j0), "waits for the pending member");
    let jp = ctx.join(&Join::new(&pending));
    assert!(ctx.answered(j0) && ctx.answered(jp));
}

#[test]
fn pending_member_expiry_completes_a_barrier_waiting_only_for_it() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(1);
    ctx.sleep(1);
    ctx.join(&Join::new(""));
    let j0 = ctx.join(&Join::new(&members[0]).session(20_000));
    ctx.sleep(i64::from(SESSION) - 1);
    assert!(!ctx.answered(j0));
    ctx.sleep(1);
    assert_eq!(ctx.join_response(j0).error_code, 0);
}

#[test]
fn member_that_does_not_rejoin_is_removed_when_the_rebalance_timeout_expires() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let j0 = ctx.join(&Join::new(&members[0]));
    // members[1] keeps its session alive but never rejoins.
    for _ in 0..5 {
        ctx.sleep(5_000);
        assert_eq!(
            ctx.heartbeat(&members[1], 1),
            code(ResponseError::RebalanceInProgress)
        );
    }
    assert!(!ctx.answered(j0));
    ctx.sleep(5_000);
    assert_eq!(ctx.join_response(j0).error_code, 0);
    assert_eq!(ctx.members(), vec![members[0].clone()]);
    assert_eq!(
        ctx.heartbeat(&members[1], 2),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn rebalance_timeout_is_the_largest_of_the_members() {
    let mut ctx = Ctx::new();
    let (a, ja) = ctx.join_new(Join::new("").rebalance(10_000).session(60_000));
    let (_b, jb) = ctx.join_new(Join::new("").rebalance(40_000).session(60_000));
    ctx.tick();
    let generation = ctx.join_response(ja).generation_id;
    assert_eq!(ctx.join_response(jb).generation_id, generation);
    let rejoin = ctx.join(
        &Join::new(&a)
            .rebalance(10_000)
            .session(60_000)
            .topics(&["changed"]),
    );
    assert_eq!(ctx.timer(&format!("join:{G}")), Some(ctx.now + 40_000));
    ctx.sleep(39_999);
    assert!(!ctx.answered(rejoin));
    ctx.sleep(1);
    assert!(ctx.answered(rejoin));
}

#[test]
fn generation_increments_by_one_per_completed_join() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(1);
    for expected in 2..6 {
        let id = ctx.join(&Join::new(&members[0]));
        assert_eq!(ctx.join_response(id).generation_id, expected);
        assert_eq!(ctx.generation(), expected);
        let s = ctx.sync(&Sync::new(&members[0], expected).assign(&members[0], b"x"));
        assert_eq!(ctx.sync_response(s).error_code, 0);
    }
}

#[test]
fn join_completion_persists_the_generation_with_empty_assignments() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.join(&Join::new(&members[0]));
    ctx.join(&Join::new(&members[1]));
    let last = ctx.group_records().last().cloned().cloned().unwrap();
    assert_eq!(last.generation, 2);
    assert_eq!(last.leader.as_deref(), Some(members[0].as_str()));
    assert_eq!(last.protocol.as_deref(), Some("range"));
    assert_eq!(last.members.len(), 2);
    assert!(last.members.iter().all(|m| m.assignment.is_empty()));
}

#[test]
fn protocol_is_selected_by_member_votes() {
    let mut ctx = Ctx::new();
    let ab = [
        ("a", Bytes::from_static(b"1")),
        ("b", Bytes::from_static(b"2")),
    ];
    let ba = [
        ("b", Bytes::from_static(b"3")),
        ("a", Bytes::from_static(b"4")),
    ];
    let (_, j1) = ctx.join_new(Join::new("").protocols(&ab));
    ctx.join_new(Join::new("").protocols(&ba));
    ctx.join_new(Join::new("").protocols(&ba));
    ctx.tick();
    assert_eq!(ctx.join_response(j1).protocol_name.as_deref(), Some("b"));
    let metadata: Vec<Bytes> = ctx
        .join_response(j1)
        .members
        .iter()
        .map(|m| m.metadata.clone())
        .collect();
    assert_eq!(
        metadata,
        vec![
            Bytes::from_static(b"2"),
            Bytes::from_static(b"3"),
            Bytes::from_static(b"3")
        ]
    );
}

#[test]
fn a_tied_protocol_vote_goes_to_the_leaders_preference() {
    let mut ctx = Ctx::new();
    let ab = [("a", Bytes::new()), ("b", Bytes::new())];
    let ba = [("b", Bytes::new()), ("a", Bytes::new())];
    let (_, j1) = ctx.join_new(Join::new("").protocols(&ba));
    ctx.join_new(Join::new("").protocols(&ab));
    ctx.tick();
    assert_eq!(ctx.join_response(j1).protocol_name.as_deref(), Some("b"));
}

#[test]
fn only_protocols_every_member_supports_are_candidates() {
    let mut ctx = Ctx::new();
    let (_, j1) =
        ctx.join_new(Join::new("").protocols(&[("x", Bytes::new()), ("y", Bytes::new())]));
    ctx.join_new(Join::new("").protocols(&[("y", Bytes::new())]));
    ctx.tick();
    assert_eq!(ctx.join_response(j1).protocol_name.as_deref(), Some("y"));
}

#[test]
fn new_member_joining_a_stable_group_triggers_a_rebalance() {
    let mut ctx = Ctx::new();
    ctx.stable_group(2);
    let (_, id) = ctx.join_new(Join::new(""));
    assert!(!ctx.answered(id));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn follower_rejoin_with_same_metadata_in_stable_returns_current_generation_without_rebalance() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let id = ctx.join(&Join::new(&members[1]));
    let r = ctx.join_response(id);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader.as_str(), members[0]);
    assert!(r.members.is_empty());
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    // It can sync and gets its assignment back.
    let s = ctx.sync(&Sync::new(&members[1], 1));
    assert_eq!(&ctx.sync_response(s).assignment[..], b"a-1");
}

#[test]
fn follower_rejoin_with_changed_metadata_triggers_a_rebalance() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let id = ctx.join(&Join::new(&members[1]).topics(&["other"]));
    assert!(!ctx.answered(id));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn leader_rejoin_in_stable_triggers_a_rebalance() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let id = ctx.join(&Join::new(&members[0]));
    assert!(!ctx.answered(id));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn rejoin_in_completing_rebalance_with_same_metadata_returns_the_current_generation() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(Join::new(""));
    let (b, _) = ctx.join_new(Join::new(""));
    ctx.tick();
    assert_eq!(ctx.state(), Some(GroupState::CompletingRebalance));
    let leader_again = ctx.join(&Join::new(&a));
    let r = ctx.join_response(leader_again);
    assert_eq!((r.error_code, r.generation_id), (0, 1));
    assert_eq!(r.members.len(), 2, "the leader gets the member list again");
    let follower_again = ctx.join(&Join::new(&b));
    assert!(ctx.join_response(follower_again).members.is_empty());
    assert_eq!(ctx.state(), Some(GroupState::CompletingRebalance));
}

#[test]
fn changed_metadata_in_completing_rebalance_rebalances_and_fails_held_syncs() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(Join::new(""));
    let (b, _) = ctx.join_new(Join::new(""));
    ctx.tick();
    let held = ctx.sync(&Sync::new(&b, 1));
    assert!(!ctx.answered(held));
    let rejoin = ctx.join(&Join::new(&a).topics(&["new"]));
    assert_eq!(
        ctx.sync_response(held).error_code,
        code(ResponseError::RebalanceInProgress)
    );
    assert!(!ctx.answered(rejoin));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn new_member_during_completing_rebalance_answers_held_syncs_with_rebalance_in_progress() {
    let mut ctx = Ctx::new();
    ctx.join_new(Join::new(""));
    let (b, _) = ctx.join_new(Join::new(""));
    ctx.tick();
    let held = ctx.sync(&Sync::new(&b, 1));
    ctx.join_new(Join::new(""));
    assert_eq!(
        ctx.sync_response(held).error_code,
        code(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn a_second_join_while_one_is_held_answers_the_older_with_not_coordinator() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let first = ctx.join(&Join::new(&members[0]));
    let second = ctx.join(&Join::new(&members[0]));
    let r = ctx.join_response(first);
    assert_eq!(r.error_code, code(ResponseError::NotCoordinator));
    assert!(!ctx.answered(second));
    ctx.join(&Join::new(&members[1]));
    assert_eq!(ctx.join_response(second).error_code, 0);
}

#[test]
fn new_leader_is_elected_when_the_leader_does_not_rejoin() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let id = ctx.join(&Join::new(&members[1]).topics(&["x"]));
    // members[0] neither rejoins nor heartbeats: its session ends the barrier.
    ctx.sleep(i64::from(SESSION));
    assert_eq!(ctx.join_response(id).leader.as_str(), members[1]);
    assert_eq!(ctx.leader(), Some(members[1].clone()));
    assert_eq!(ctx.members(), vec![members[1].clone()]);
}

#[test]
fn all_members_leaving_the_barrier_makes_the_group_empty_with_a_new_generation() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(1);
    ctx.send(4, leave_request(G, &[(&members[0], None)], 4));
    assert_eq!(ctx.state(), Some(GroupState::Empty));
    assert_eq!(ctx.generation(), 2);
    let last = ctx.group_records().last().cloned().cloned().unwrap();
    assert!(last.members.is_empty() && last.protocol.is_none() && last.leader.is_none());
}

#[test]
fn a_new_member_parked_longer_than_the_new_member_join_timeout_is_dropped() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(1);
    // The existing member has a long rebalance timeout and keeps its session up but does
    // not rejoin, so the barrier stays open for 10 minutes.
    let long = 600_000;
    ctx.join(&Join::new(&members[0]).rebalance(long));
    ctx.sync(&Sync::new(&members[0], 2).assign(&members[0], b"x"));
    let (_, newcomer) = ctx.join_new(Join::new(""));
    for _ in 0..60 {
        ctx.sleep(5_000);
        ctx.heartbeat(&members[0], 2);
    }
    let r = ctx.join_response(newcomer);
    assert_eq!(r.error_code, code(ResponseError::UnknownMemberId));
    assert_eq!(r.member_id.as_str(), "");
    assert_eq!(ctx.members(), vec![members[0].clone()]);
}

#[test]
fn an_empty_group_takes_the_protocol_type_of_its_next_member() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(1);
    ctx.send(4, leave_request(G, &[(&members[0], None)], 4));
    assert_eq!(ctx.state(), Some(GroupState::Empty));
    let (_, id) = ctx.join_new(
        Join::new("")
            .protocol_type("connect")
            .protocols(&[("v1", Bytes::new())]),
    );
    ctx.tick();
    let r = ctx.join_response(id);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.protocol_type.as_deref(), Some("connect"));
}

#[test]
fn an_error_response_before_v7_carries_an_empty_protocol_name() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").group("").version(6));
    let r = ctx.join_response(id);
    assert_eq!(r.protocol_name.as_deref(), Some(""));
    let id7 = ctx.join(&Join::new("").group("").version(7));
    assert_eq!(ctx.join_response(id7).protocol_name, None);
}

#[test]
fn join_response_carries_the_protocol_type_from_v7() {
    let mut ctx = Ctx::new();
    let v6 = ctx.join(&Join::new("").group("six").version(6));
    ctx.tick();
    assert_eq!(
        ctx.join_response(v6).error_code,
        code(ResponseError::MemberIdRequired)
    );
    let (_, v6) = ctx.join_new(Join::new("").group("six").version(6));
    let (_, v7) = ctx.join_new(Join::new("").group("seven").version(7));
    ctx.tick();
    assert_eq!(ctx.join_response(v6).protocol_type, None);
    assert_eq!(
        ctx.join_response(v7).protocol_type.as_deref(),
        Some("consumer")
    );
}

#[test]
fn join_to_an_empty_group_after_everybody_left_with_an_old_member_id_is_unknown() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(1);
    ctx.send(4, leave_request(G, &[(&members[0], None)], 4));
    let id = ctx.join(&Join::new(&members[0]));
    assert_eq!(
        ctx.join_response(id).error_code,
        code(ResponseError::UnknownMemberId)
    );
}
