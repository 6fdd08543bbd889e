//! OffsetCommit: simple (generation -1) and member commits, validation, per-partition results.

use kafka_protocol::ResponseError;

use super::*;

fn offset_records(records: &[Record]) -> usize {
    records
        .iter()
        .filter(|r| matches!(r, Record::Offset { value: Some(_), .. }))
        .count()
}

#[test]
fn commit_with_an_empty_group_id_is_invalid_group_id() {
    let mut ctx = Ctx::new();
    let id = ctx.commit(
        &Commit::simple()
            .group("")
            .offset("t", 0, 1)
            .offset("t", 1, 1),
    );
    assert_eq!(
        ctx.commit_errors(id),
        vec![code(ResponseError::InvalidGroupId); 2]
    );
    assert!(ctx.records.is_empty());
}

#[test]
fn commit_from_a_simple_consumer_creates_an_empty_group() {
    let mut ctx = Ctx::new();
    let id = ctx.commit(&Commit::simple().offset("t", 0, 42));
    assert_eq!(ctx.commit_errors(id), vec![0]);
    assert!(ctx.c.has_group(G));
    assert_eq!(ctx.state(), Some(GroupState::Empty));
    assert_eq!(ctx.offset(G, "t", 0).map(|v| v.offset), Some(42));
    assert_eq!(offset_records(&ctx.last_records), 1);
}

#[test]
fn commit_from_a_simple_consumer_to_an_existing_empty_group_is_accepted() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    ctx.send(3, leave_request(G, &[(&member, None)], 3));
    let id = ctx.commit(&Commit::simple().offset("t", 0, 7));
    assert_eq!(ctx.commit_errors(id), vec![0]);
}

#[test]
fn a_simple_commit_that_fails_entirely_does_not_create_a_group() {
    let mut ctx = Ctx::with_config(GroupConfig {
        offset_metadata_max_bytes: 1,
        ..GroupConfig::default()
    });
    let id = ctx.commit(&Commit::simple().offset_with("t", 0, 1, Some("too long"), -1));
    assert_eq!(
        ctx.commit_errors(id),
        vec![code(ResponseError::OffsetMetadataTooLarge)]
    );
    assert!(!ctx.c.has_group(G));
}

#[test]
fn a_simple_commit_to_a_group_with_members_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let id = ctx.commit(&Commit::simple().offset("t", 0, 1));
    assert_eq!(
        ctx.commit_errors(id),
        vec![code(ResponseError::UnknownMemberId)]
    );
    assert_eq!(offset_records(&ctx.last_records), 0);
}

#[test]
fn a_generation_commit_to_a_missing_group_is_illegal_generation_before_v9() {
    let mut ctx = Ctx::new();
    let id = ctx.commit(&Commit::member("m", 1).offset("t", 0, 1).version(8));
    assert_eq!(
        ctx.commit_errors(id),
        vec![code(ResponseError::IllegalGeneration)]
    );
    assert!(!ctx.c.has_group(G));
}

#[test]
fn a_generation_commit_to_a_missing_group_is_group_id_not_found_on_v9() {
    let mut ctx = Ctx::new();
    let id = ctx.commit(&Commit::member("m", 1).offset("t", 0, 1).version(9));
    assert_eq!(
        ctx.commit_errors(id),
        vec![code(ResponseError::GroupIdNotFound)]
    );
}

#[test]
fn commit_from_an_unknown_member_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let id = ctx.commit(&Commit::member("stranger", 1).offset("t", 0, 1));
    assert_eq!(
        ctx.commit_errors(id),
        vec![code(ResponseError::UnknownMemberId)]
    );
}

#[test]
fn commit_with_a_stale_generation_is_rejected() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let id = ctx.commit(&Commit::member(&member, 0).offset("t", 0, 1));
    assert_eq!(
        ctx.commit_errors(id),
        vec![code(ResponseError::IllegalGeneration)]
    );
    assert_eq!(offset_records(&ctx.last_records), 0);
}

#[test]
fn a_member_commit_with_generation_minus_one_to_a_live_group_is_illegal_generation() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let id = ctx.commit(&Commit::member(&member, -1).offset("t", 0, 1));
    assert_eq!(
        ctx.commit_errors(id),
        vec![code(ResponseError::IllegalGeneration)]
    );
}

#[test]
fn a_member_commit_to_an_empty_group_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    ctx.send(3, leave_request(G, &[(&member, None)], 3));
    let id = ctx.commit(&Commit::member(&member, 2).offset("t", 0, 1));
    assert_eq!(
        ctx.commit_errors(id),
        vec![code(ResponseError::UnknownMemberId)]
    );
}

#[test]
fn commit_during_completing_rebalance_is_rebalance_in_progress() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(Join::new(""));
    ctx.tick();
    let id = ctx.commit(&Commit::member(&a, 1).offset("t", 0, 1));
    assert_eq!(
        ctx.commit_errors(id),
        vec![code(ResponseError::RebalanceInProgress)]
    );
}

#[test]
fn commit_during_preparing_rebalance_with_the_current_generation_is_accepted() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.join(&Join::new(&members[0]));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
    let id = ctx.commit(&Commit::member(&members[1], 1).offset("t", 0, 9));
    assert_eq!(ctx.commit_errors(id), vec![0]);
    assert_eq!(ctx.offset(G, "t", 0).map(|v| v.offset), Some(9));
}

#[test]
fn commit_in_a_stable_group_writes_one_record_per_partition() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let id = ctx.commit(
        &Commit::member(&member, 1)
            .offset("a", 0, 1)
            .offset("a", 1, 2)
            .offset("b", 0, 3),
    );
    assert_eq!(ctx.commit_errors(id), vec![0, 0, 0]);
    assert_eq!(offset_records(&ctx.last_records), 3);
    let r = ctx.commit_response(id);
    let shape: Vec<(String, Vec<i32>)> = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![("a".to_string(), vec![0, 1]), ("b".to_string(), vec![0])]
    );
}

#[test]
fn metadata_over_the_limit_fails_only_that_partition() {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        offset_metadata_max_bytes: 4,
        ..GroupConfig::default()
    });
    let id = ctx.commit(
        &Commit::simple()
            .offset_with("t", 0, 1, Some("1234"), -1)
            .offset_with("t", 1, 1, Some("12345"), -1),
    );
    assert_eq!(
        ctx.commit_errors(id),
        vec![0, code(ResponseError::OffsetMetadataTooLarge)]
    );
    assert!(ctx.offset(G, "t", 0).is_some());
    assert!(ctx.offset(G, "t", 1).is_none());
}

#[test]
fn a_commit_stores_the_commit_time_metadata_and_leader_epoch() {
    let mut ctx = Ctx::new();
    ctx.commit(
        &Commit::simple()
            .offset_with("t", 0, 5, Some("meta"), 3)
            .version(6),
    );
    let v = ctx.offset(G, "t", 0).unwrap();
    assert_eq!(
        v,
        OffsetValue {
            offset: 5,
            leader_epoch: 3,
            metadata: "meta".into(),
            commit_timestamp: ctx.now,
            expire_timestamp: None
        }
    );
}

#[test]
fn the_leader_epoch_is_only_read_from_v6() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset_with("t", 0, 5, None, 3).version(5));
    assert_eq!(ctx.offset(G, "t", 0).unwrap().leader_epoch, -1);
}

#[test]
fn null_metadata_is_stored_as_empty() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset_with("t", 0, 5, None, -1));
    assert_eq!(ctx.offset(G, "t", 0).unwrap().metadata, "");
}

#[test]
fn retention_time_on_v2_to_v4_sets_an_expire_timestamp() {
    let mut ctx = Ctx::new();
    for version in 2..=4 {
        let topic = format!("t{version}");
        ctx.commit(
            &Commit::simple()
                .offset(&topic, 0, 1)
                .retention(60_000)
                .version(version),
        );
        assert_eq!(
            ctx.offset(G, &topic, 0).unwrap().expire_timestamp,
            Some(ctx.now + 60_000)
        );
    }
}

#[test]
fn retention_time_minus_one_means_the_broker_default() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 1).retention(-1).version(2));
    assert_eq!(ctx.offset(G, "t", 0).unwrap().expire_timestamp, None);
}

#[test]
fn retention_time_is_ignored_from_v5() {
    let mut ctx = Ctx::new();
    ctx.commit(
        &Commit::simple()
            .offset("t", 0, 1)
            .retention(60_000)
            .version(5),
    );
    assert_eq!(ctx.offset(G, "t", 0).unwrap().expire_timestamp, None);
}

#[test]
fn a_commit_keeps_the_members_session_alive() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    for _ in 0..3 {
        ctx.sleep(8_000);
        let id = ctx.commit(&Commit::member(&member, 1).offset("t", 0, 1));
        assert_eq!(ctx.commit_errors(id), vec![0]);
    }
    assert_eq!(ctx.members(), vec![member]);
}

#[test]
fn a_later_commit_replaces_the_earlier_offset() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 1));
    ctx.sleep(5);
    ctx.commit(&Commit::simple().offset("t", 0, 2));
    let v = ctx.offset(G, "t", 0).unwrap();
    assert_eq!((v.offset, v.commit_timestamp), (2, ctx.now));
}

#[test]
fn commit_with_a_static_members_instance_id_from_v7_is_validated() {
    let mut ctx = Ctx::new();
    let id = ctx.join(&Join::new("").instance("i-0"));
    ctx.tick();
    let member = ctx.join_response(id).member_id.to_string();
    ctx.sync(&Sync::new(&member, 1).assign(&member, b"x"));
    let ok = ctx.commit(
        &Commit::member(&member, 1)
            .instance("i-0")
            .offset("t", 0, 1)
            .version(7),
    );
    assert_eq!(ctx.commit_errors(ok), vec![0]);
    let unknown = ctx.commit(
        &Commit::member(&member, 1)
            .instance("i-9")
            .offset("t", 0, 1)
            .version(7),
    );
    assert_eq!(
        ctx.commit_errors(unknown),
        vec![code(ResponseError::UnknownMemberId)]
    );
    let ignored = ctx.commit(
        &Commit::member(&member, 1)
            .instance("i-9")
            .offset("t", 0, 1)
            .version(6),
    );
    assert_eq!(
        ctx.commit_errors(ignored),
        vec![0],
        "no instance id before v7"
    );
}
