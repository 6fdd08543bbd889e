//! OffsetFetch: v1–7 for one group (null topics = all from v2), v8+ batched (KIP-709).

use kafka_protocol::messages::OffsetFetchRequest;

use super::*;

/// (topic, partition, offset, epoch, metadata) of a v1–7 response.
fn flat(r: &OffsetFetchResponse) -> Vec<(String, i32, i64, i32, String)> {
    r.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                let metadata = p.metadata.as_deref().unwrap_or("<null>").to_string();
                (
                    t.name.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    metadata,
                )
            })
        })
        .collect()
}

/// (group, topic, partition, offset, epoch, metadata) of a v8+ response.
fn flat_groups(r: &OffsetFetchResponse) -> Vec<(String, String, i32, i64, i32, String)> {
    let mut out = Vec::new();
    for g in &r.groups {
        for t in &g.topics {
            for p in &t.partitions {
                let metadata = p.metadata.as_deref().unwrap_or("<null>").to_string();
                out.push((
                    g.group_id.to_string(),
                    t.name.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    metadata,
                ));
            }
        }
    }
    out
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn fetch_from_an_unknown_group_returns_minus_one_for_each_requested_partition() {
    let mut ctx = Ctx::new();
    let id = ctx.send(7, fetch_request(G, Some(&[("t", &[0, 1])]), 7));
    let r = ctx.fetch_response(id);
    assert_eq!(
        flat(r),
        vec![(s("t"), 0, -1, -1, s("")), (s("t"), 1, -1, -1, s(""))]
    );
    assert_eq!(r.error_code, 0);
}

#[test]
fn fetch_of_all_topics_from_an_unknown_group_returns_nothing() {
    let mut ctx = Ctx::new();
    let id = ctx.send(7, fetch_request(G, None, 7));
    assert!(ctx.fetch_response(id).topics.is_empty());
}

#[test]
fn fetch_returns_the_committed_offset_metadata_and_leader_epoch() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset_with("t", 3, 99, Some("m"), 4));
    let id = ctx.send(5, fetch_request(G, Some(&[("t", &[3])]), 5));
    assert_eq!(
        flat(ctx.fetch_response(id)),
        vec![(s("t"), 3, 99, 4, s("m"))]
    );
}

#[test]
fn fetch_before_v5_carries_no_leader_epoch() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset_with("t", 3, 99, Some("m"), 4));
    let id = ctx.send(4, fetch_request(G, Some(&[("t", &[3])]), 4));
    assert_eq!(
        flat(ctx.fetch_response(id)),
        vec![(s("t"), 3, 99, -1, s("m"))]
    );
}

#[test]
fn unknown_partitions_of_a_known_group_come_back_as_minus_one() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 5));
    let id = ctx.send(6, fetch_request(G, Some(&[("t", &[0, 1]), ("u", &[0])]), 6));
    assert_eq!(
        flat(ctx.fetch_response(id)),
        vec![
            (s("t"), 0, 5, -1, s("")),
            (s("t"), 1, -1, -1, s("")),
            (s("u"), 0, -1, -1, s(""))
        ]
    );
}

#[test]
fn null_topics_from_v2_fetch_every_committed_offset() {
    let mut ctx = Ctx::new();
    ctx.commit(
        &Commit::simple()
            .offset("b", 1, 11)
            .offset("a", 0, 10)
            .offset("b", 0, 12),
    );
    let id = ctx.send(2, fetch_request(G, None, 2));
    assert_eq!(
        flat(ctx.fetch_response(id)),
        vec![
            (s("a"), 0, 10, -1, s("")),
            (s("b"), 0, 12, -1, s("")),
            (s("b"), 1, 11, -1, s(""))
        ]
    );
}

#[test]
fn fetch_v1_names_its_topics() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 5));
    let id = ctx.send(1, fetch_request(G, Some(&[("t", &[0])]), 1));
    assert_eq!(
        flat(ctx.fetch_response(id)),
        vec![(s("t"), 0, 5, -1, s(""))]
    );
}

#[test]
fn fetch_v8_answers_several_groups_at_once() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().group("g1").offset("t", 0, 1));
    ctx.commit(
        &Commit::simple()
            .group("g2")
            .offset("t", 0, 2)
            .offset("u", 0, 3),
    );
    let mut r = OffsetFetchRequest::default();
    let GroupRequest::OffsetFetch(g1) = fetch_request("g1", Some(&[("t", &[0, 1])]), 8) else {
        unreachable!()
    };
    let GroupRequest::OffsetFetch(g2) = fetch_request("g2", None, 8) else {
        unreachable!()
    };
    let GroupRequest::OffsetFetch(g3) = fetch_request("nope", Some(&[("t", &[0])]), 8) else {
        unreachable!()
    };
    r.groups = vec![
        g1.groups[0].clone(),
        g2.groups[0].clone(),
        g3.groups[0].clone(),
    ];
    let id = ctx.send(8, GroupRequest::OffsetFetch(r));
    let got = flat_groups(ctx.fetch_response(id));
    assert_eq!(
        got,
        vec![
            (s("g1"), s("t"), 0, 1, -1, s("")),
            (s("g1"), s("t"), 1, -1, -1, s("")),
            (s("g2"), s("t"), 0, 2, -1, s("")),
            (s("g2"), s("u"), 0, 3, -1, s("")),
            (s("nope"), s("t"), 0, -1, -1, s("")),
        ]
    );
    assert!(ctx
        .fetch_response(id)
        .groups
        .iter()
        .all(|g| g.error_code == 0));
}

#[test]
fn require_stable_with_nothing_pending_reads_the_committed_offsets() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 5));
    let GroupRequest::OffsetFetch(mut r) = fetch_request(G, Some(&[("t", &[0])]), 9) else {
        unreachable!()
    };
    r.require_stable = true;
    let id = ctx.send(9, GroupRequest::OffsetFetch(r));
    let response = ctx.fetch_response(id);
    assert_eq!(response.groups[0].error_code, 0);
    assert_eq!(flat_groups(response), vec![(s(G), s("t"), 0, 5, -1, s(""))]);
}

#[test]
fn members_of_a_live_group_read_their_committed_offsets() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    ctx.commit(&Commit::member(&member, 1).offset("t", 0, 77));
    let id = ctx.send(8, fetch_request(G, Some(&[("t", &[0])]), 8));
    assert_eq!(
        flat_groups(ctx.fetch_response(id)),
        vec![(s(G), s("t"), 0, 77, -1, s(""))]
    );
}
