//! Start-up: replaying stored records, `loaded`, and records themselves.

use kafka_protocol::ResponseError;

use super::*;

fn restart(ctx: &Ctx, config: GroupConfig) -> Ctx {
    let c = replayed(&ctx.records, config, ctx.now);
    Ctx::around(c, ctx.now)
}

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    }
}

#[test]
fn replaying_the_emitted_records_reproduces_the_durable_state() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(3);
    ctx.commit(
        &Commit::member(&members[0], 1)
            .offset("t", 0, 5)
            .offset("t", 1, 6),
    );
    ctx.commit(&Commit::simple().group("simple").offset("u", 0, 1));
    let again = restart(&ctx, config());
    assert_eq!(durable(&again.c), durable(&ctx.c));
}

#[test]
fn a_stable_group_is_loaded_as_stable() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let mut again = restart(&ctx, config());
    assert_eq!(again.state(), Some(GroupState::Stable));
    assert_eq!(again.generation(), 1);
    assert_eq!(again.members(), members);
    assert_eq!(again.leader(), Some(members[0].clone()));
    assert_eq!(again.heartbeat(&members[1], 1), 0);
    let s = again.sync(&Sync::new(&members[1], 1));
    assert_eq!(&again.sync_response(s).assignment[..], b"a-1");
}

#[test]
fn loaded_members_sessions_start_at_load_time() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(1);
    // The broker was down for 50 s.
    let later = ctx.now + 50_000;
    let mut again = Ctx::around(replayed(&ctx.records, config(), later), later);
    assert_eq!(
        again.timer(&format!("heartbeat:{G}:{}", members[0])),
        Some(later + i64::from(SESSION))
    );
    again.sleep(i64::from(SESSION) - 1);
    assert_eq!(again.members(), members);
    again.sleep(1);
    assert!(
        again.members().is_empty(),
        "a member that never came back is removed"
    );
    assert_eq!(again.state(), Some(GroupState::Empty));
}

#[test]
fn a_group_persisted_mid_rebalance_loads_as_preparing_rebalance() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(Join::new(""));
    let (b, _) = ctx.join_new(Join::new(""));
    ctx.tick();
    assert_eq!(ctx.state(), Some(GroupState::CompletingRebalance));
    let mut again = restart(&ctx, config());
    assert_eq!(again.state(), Some(GroupState::PreparingRebalance));
    assert_eq!(
        again.heartbeat(&b, 1),
        code(ResponseError::RebalanceInProgress)
    );
    let ja = again.join(&Join::new(&a));
    let jb = again.join(&Join::new(&b));
    assert_eq!(again.join_response(ja).generation_id, 2);
    assert_eq!(again.join_response(jb).generation_id, 2);
}

#[test]
fn a_group_without_members_loads_as_empty() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    ctx.send(3, leave_request(G, &[(&member, None)], 3));
    let again = restart(&ctx, config());
    assert_eq!(again.state(), Some(GroupState::Empty));
    assert_eq!(again.generation(), 2);
}

#[test]
fn a_group_created_by_member_id_required_survives_a_restart_as_empty() {
    let mut ctx = Ctx::new();
    ctx.join(&Join::new(""));
    let again = restart(&ctx, config());
    assert_eq!(again.state(), Some(GroupState::Empty));
    assert_eq!(again.generation(), 0);
}

#[test]
fn a_group_tombstone_removes_the_group() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 1));
    ctx.send(2, delete_groups_request(&[G]));
    let again = restart(&ctx, config());
    assert!(!again.c.has_group(G));
}

#[test]
fn replayed_offset_records_create_a_simple_group() {
    let records = vec![Record::Offset {
        group_id: "simple".into(),
        topic: "t".into(),
        partition: 0,
        value: Some(OffsetValue {
            offset: 9,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 5,
            expire_timestamp: None,
        }),
    }];
    let c = replayed(&records, config(), 10);
    assert!(c.has_group("simple"));
    assert_eq!(c.group_state("simple"), Some(GroupState::Empty));
}

#[test]
fn a_replayed_offset_tombstone_removes_the_offset_only() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 1).offset("t", 1, 2));
    ctx.send(0, offset_delete_request(G, &[("t", &[0])]));
    let again = restart(&ctx, config());
    assert!(again.offset(G, "t", 0).is_none());
    assert!(again.offset(G, "t", 1).is_some());
}

#[test]
fn an_offset_tombstone_for_an_unknown_group_is_ignored() {
    let records = vec![Record::Offset {
        group_id: "x".into(),
        topic: "t".into(),
        partition: 0,
        value: None,
    }];
    let c = replayed(&records, config(), 10);
    assert!(!c.has_group("x"));
}

#[test]
fn static_members_are_still_fenced_after_a_restart() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").instance("i-0"));
    ctx.tick();
    let old = ctx.join_response(id).member_id.to_string();
    ctx.sync(&Sync::new(&old, 1).assign(&old, b"x"));
    let replacement = ctx.join(&Join::new("").instance("i-0"));
    let new = ctx.join_response(replacement).member_id.to_string();
    let mut again = restart(&ctx, config());
    assert_eq!(again.members(), vec![new.clone()]);
    assert_eq!(
        again.heartbeat_static(&old, "i-0", 1),
        code(ResponseError::FencedInstanceId)
    );
    assert_eq!(again.heartbeat_static(&new, "i-0", 1), 0);
}

#[test]
fn the_generation_continues_after_a_restart() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(1);
    let mut again = restart(&ctx, config());
    let id = again.join(&Join::new(&members[0]));
    assert_eq!(again.join_response(id).generation_id, 2);
}

#[test]
fn a_loaded_group_over_the_size_limit_rebalances() {
    let mut ctx = Ctx::new();
    ctx.stable_group(3);
    let again = restart(
        &ctx,
        GroupConfig {
            max_size: 2,
            ..config()
        },
    );
    assert_eq!(again.state(), Some(GroupState::PreparingRebalance));
}

#[test]
fn handling_a_request_before_loaded_loads_implicitly() {
    let mut ctx = Ctx::new();
    ctx.stable_group(1);
    let mut c = GroupCoordinator::new(config());
    for record in &ctx.records {
        c.replay(record);
    }
    let mut again = Ctx::around(c, ctx.now);
    let id = again.send(5, describe_request(&[G]));
    assert_eq!(
        again.describe_response(id).groups[0].group_state.as_str(),
        "Stable"
    );
    assert!(again.timer("offsets-expiry").is_some());
}

#[test]
fn records_round_trip_through_serde() {
    let mut ctx = Ctx::new();
    ctx.stable_group(2);
    ctx.commit(
        &Commit::simple()
            .group("s")
            .offset_with("t", 0, 1, Some("meta"), 2)
            .retention(5)
            .version(2),
    );
    for record in &ctx.records {
        let json = serde_json::to_string(record).unwrap();
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, record);
    }
}

#[test]
fn record_keys_name_the_group_or_the_partition() {
    let group = Record::Group {
        group_id: "g".into(),
        value: None,
    };
    let offset = Record::Offset {
        group_id: "g".into(),
        topic: "t".into(),
        partition: 3,
        value: None,
    };
    assert_eq!(group.key(), "g/g");
    assert_eq!(offset.key(), "o/g/t/3");
}

#[test]
fn compacting_records_by_key_keeps_the_same_durable_state() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.join(&Join::new(&members[0]));
    ctx.join(&Join::new(&members[1]));
    ctx.sync(&Sync::new(&members[0], 2).assign(&members[0], b"z"));
    ctx.commit(&Commit::member(&members[0], 2).offset("t", 0, 1));
    ctx.commit(&Commit::member(&members[0], 2).offset("t", 0, 2));
    let mut latest: Vec<Record> = Vec::new();
    for record in &ctx.records {
        latest.retain(|r| r.key() != record.key());
        latest.push(record.clone());
    }
    let compacted = replayed(&latest, config(), ctx.now);
    assert_eq!(durable(&compacted), durable(&ctx.c));
}
