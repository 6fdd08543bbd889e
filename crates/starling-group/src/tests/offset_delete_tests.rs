//! OffsetDelete (KIP-496): deleting offsets, refused per partition for topics a live consumer
//! group subscribes to.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::*;

fn partition_errors(r: &OffsetDeleteResponse) -> Vec<(String, i32, i16)> {
    r.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}

fn tombstones(records: &[Record]) -> Vec<(String, i32)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Offset {
                topic,
                partition,
                value: None,
                ..
            } => Some((topic.clone(), *partition)),
            _ => None,
        })
        .collect()
}

#[test]
fn offset_delete_with_an_empty_group_id_is_invalid_group_id() {
    let mut ctx = Ctx::new();
    let id = ctx.send(0, offset_delete_request("", &[("t", &[0])]));
    assert_eq!(
        ctx.offset_delete_response(id).error_code,
        code(ResponseError::InvalidGroupId)
    );
}

#[test]
fn offset_delete_for_an_unknown_group_is_group_id_not_found() {
    let mut ctx = Ctx::new();
    let id = ctx.send(0, offset_delete_request(G, &[("t", &[0])]));
    let r = ctx.offset_delete_response(id);
    assert_eq!(r.error_code, code(ResponseError::GroupIdNotFound));
    assert!(r.topics.is_empty());
}

#[test]
fn offset_delete_in_an_empty_group_writes_tombstones() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 1).offset("t", 1, 2));
    let id = ctx.send(0, offset_delete_request(G, &[("t", &[0])]));
    assert_eq!(
        partition_errors(ctx.offset_delete_response(id)),
        vec![("t".to_string(), 0, 0)]
    );
    assert_eq!(tombstones(&ctx.last_records), vec![("t".to_string(), 0)]);
    assert!(ctx.offset(G, "t", 0).is_none());
    assert!(ctx.offset(G, "t", 1).is_some());
}

#[test]
fn deleting_offsets_that_do_not_exist_succeeds_without_records() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 1));
    let id = ctx.send(0, offset_delete_request(G, &[("t", &[5]), ("u", &[0])]));
    assert_eq!(
        partition_errors(ctx.offset_delete_response(id)),
        vec![("t".to_string(), 5, 0), ("u".to_string(), 0, 0)]
    );
    assert!(ctx.last_records.is_empty());
}

#[test]
fn offsets_of_a_topic_the_group_subscribes_to_are_not_deleted() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    ctx.commit(&Commit::member(&member, 1).offset("topic", 0, 1));
    let id = ctx.send(0, offset_delete_request(G, &[("topic", &[0, 1])]));
    let subscribed = code(ResponseError::GroupSubscribedToTopic);
    assert_eq!(
        partition_errors(ctx.offset_delete_response(id)),
        vec![
            ("topic".to_string(), 0, subscribed),
            ("topic".to_string(), 1, subscribed)
        ]
    );
    assert!(ctx.offset(G, "topic", 0).is_some());
}

#[test]
fn offsets_of_a_topic_nobody_subscribes_to_are_deleted_from_a_live_consumer_group() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    ctx.commit(&Commit::member(&member, 1).offset("old", 0, 1));
    let id = ctx.send(0, offset_delete_request(G, &[("old", &[0])]));
    assert_eq!(
        partition_errors(ctx.offset_delete_response(id)),
        vec![("old".to_string(), 0, 0)]
    );
    assert!(ctx.offset(G, "old", 0).is_none());
}

#[test]
fn subscriptions_of_every_member_count() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(Join::new("").topics(&["x"]));
    ctx.join_new(Join::new("").topics(&["y"]));
    ctx.tick();
    ctx.sync(&Sync::new(&a, 1));
    let id = ctx.send(
        0,
        offset_delete_request(G, &[("x", &[0]), ("y", &[0]), ("z", &[0])]),
    );
    let subscribed = code(ResponseError::GroupSubscribedToTopic);
    assert_eq!(
        partition_errors(ctx.offset_delete_response(id)),
        vec![
            ("x".to_string(), 0, subscribed),
            ("y".to_string(), 0, subscribed),
            ("z".to_string(), 0, 0)
        ]
    );
}

#[test]
fn a_live_group_of_another_protocol_type_is_non_empty_group() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(
        Join::new("")
            .protocol_type("connect")
            .protocols(&[("v1", Bytes::new())]),
    );
    ctx.tick();
    ctx.sync(&Sync::new(&a, 1));
    let id = ctx.send(0, offset_delete_request(G, &[("t", &[0])]));
    assert_eq!(
        ctx.offset_delete_response(id).error_code,
        code(ResponseError::NonEmptyGroup)
    );
}

#[test]
fn unreadable_subscriptions_count_as_subscribed_to_everything() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(Join::new("").protocols(&[("range", Bytes::from_static(b"\x00"))]));
    ctx.tick();
    ctx.sync(&Sync::new(&a, 1));
    let id = ctx.send(0, offset_delete_request(G, &[("any", &[0])]));
    assert_eq!(
        partition_errors(ctx.offset_delete_response(id)),
        vec![(
            "any".to_string(),
            0,
            code(ResponseError::GroupSubscribedToTopic)
        )]
    );
}

#[test]
fn the_subscription_reader_matches_the_consumer_protocol_encoding() {
    for topics in [vec![], vec!["a"], vec!["a", "b", "c"]] {
        let bytes = subscription(&topics);
        let read = starling_protocol::consumer_protocol::subscribed_topics(&bytes).unwrap();
        assert_eq!(read.into_iter().collect::<Vec<_>>(), topics);
    }
    assert_eq!(
        starling_protocol::consumer_protocol::subscribed_topics(b""),
        None
    );
    assert_eq!(
        starling_protocol::consumer_protocol::subscribed_topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]),
        None
    );
}
