//! Every response kind the handlers produce, at every version the protocol crate supports for
//! its API, must encode. (The harness encodes every response it sees at its request's version
//! and panics otherwise; these tests drive each handler through its paths at each version.)

use kafka_protocol::messages::{
    DeleteGroupsResponse, DescribeGroupsResponse, HeartbeatResponse, JoinGroupResponse,
    LeaveGroupResponse, ListGroupsResponse, OffsetCommitResponse, OffsetDeleteResponse,
    OffsetFetchResponse, SyncGroupResponse,
};
use kafka_protocol::protocol::Message;
use kafka_protocol::ResponseError;

use super::*;

/// The versions the crate supports for a response type (at least the ones Starling serves).
fn versions<M: Message>() -> std::ops::RangeInclusive<i16> {
    M::VERSIONS.min..=M::VERSIONS.max
}

/// Every response the context saw, re-encoded at its request's version.
fn encoded_count(ctx: &Ctx) -> usize {
    ctx.responses.len()
}

#[test]
fn join_group_responses_encode_at_versions_0_to_9() {
    assert_eq!(versions::<JoinGroupResponse>(), 0..=9);
    for v in 0..=9i16 {
        let mut ctx = Ctx::new();
        let g = format!("join-{v}");
        // Errors.
        ctx.join(&Join::new("").group("").version(v));
        ctx.join(&Join::new("").session(1).group(&g).version(v));
        ctx.join(&Join::new("ghost").group(&g).version(v));
        ctx.join(&Join::new("").protocols(&[]).group(&g).version(v));
        // Members: MEMBER_ID_REQUIRED from v4, held joins answered by the barrier.
        let mut members = Vec::new();
        for _ in 0..2 {
            let first = ctx.join(&Join::new("").group(&g).version(v));
            if v >= 4 {
                let r = ctx.join_response(first);
                assert_eq!(r.error_code, code(ResponseError::MemberIdRequired));
                let member = r.member_id.to_string();
                let id = ctx.join(&Join::new(&member).group(&g).version(v));
                members.push((member, id));
            } else {
                members.push((String::new(), first));
            }
        }
        ctx.tick();
        let leader = ctx.join_response(members[0].1);
        assert_eq!(leader.members.len(), 2, "v{v}");
        let leader_id = leader.member_id.to_string();
        let follower_id = ctx.join_response(members[1].1).member_id.to_string();
        // A rejoin in CompletingRebalance is answered at once; a superseded join too.
        ctx.join(&Join::new(&follower_id).group(&g).version(v));
        ctx.join(&Join::new(&leader_id).group(&g).version(v).topics(&["x"]));
        ctx.join(&Join::new(&leader_id).group(&g).version(v).topics(&["x"]));
        ctx.join(&Join::new(&follower_id).group(&g).version(v));
        // Static members from v5, including the no-rebalance replacement (skip_assignment v9).
        if v >= 5 {
            let sg = format!("static-{v}");
            let s = ctx.join(&Join::new("").group(&sg).instance("i").version(v));
            ctx.tick();
            let member = ctx.join_response(s).member_id.to_string();
            ctx.sync(&Sync::new(&member, 1).group(&sg).assign(&member, b"x"));
            let replaced = ctx.join(&Join::new("").group(&sg).instance("i").version(v));
            assert_eq!(ctx.join_response(replaced).error_code, 0);
            ctx.join(&Join::new(&member).group(&sg).instance("i").version(v));
        }
        assert!(encoded_count(&ctx) >= 8, "v{v}");
    }
}

#[test]
fn sync_group_responses_encode_at_versions_0_to_5() {
    assert_eq!(versions::<SyncGroupResponse>(), 0..=5);
    for v in 0..=5i16 {
        let mut ctx = Ctx::new();
        ctx.sync(&Sync::new("m", 1).group("").version(v));
        ctx.sync(&Sync::new("m", 1).version(v));
        let (a, _) = ctx.join_new(Join::new(""));
        let (b, _) = ctx.join_new(Join::new(""));
        ctx.tick();
        ctx.sync(&Sync::new(&b, 9).version(v));
        ctx.sync(&Sync::new(&b, 1).version(v).protocol("other", "range"));
        let superseded = ctx.sync(&Sync::new(&b, 1).version(v));
        let held = ctx.sync(&Sync::new(&b, 1).version(v));
        assert!(ctx.answered(superseded));
        ctx.sync(
            &Sync::new(&a, 1)
                .assign(&a, b"A")
                .assign(&b, b"B")
                .version(v),
        );
        assert_eq!(&ctx.sync_response(held).assignment[..], b"B");
        ctx.sync(&Sync::new(&b, 1).version(v));
        ctx.join(&Join::new(&a));
        ctx.sync(&Sync::new(&b, 1).version(v));
        assert!(encoded_count(&ctx) >= 8, "v{v}");
    }
}

#[test]
fn heartbeat_responses_encode_at_versions_0_to_4() {
    assert_eq!(versions::<HeartbeatResponse>(), 0..=4);
    for v in 0..=4i16 {
        let mut ctx = Ctx::new();
        let members = ctx.stable_group(2);
        for (member, generation) in [
            ("", 1),
            ("ghost", 1),
            (members[1].as_str(), 5),
            (members[1].as_str(), 1),
        ] {
            ctx.send(v, heartbeat_request(G, member, generation, None));
        }
        ctx.send(v, heartbeat_request("", "m", 1, None));
        ctx.join(&Join::new(&members[0]));
        let id = ctx.send(v, heartbeat_request(G, &members[1], 1, None));
        assert_eq!(
            ctx.heartbeat_error(id),
            code(ResponseError::RebalanceInProgress)
        );
    }
}

#[test]
fn leave_group_responses_encode_at_versions_0_to_5() {
    assert_eq!(versions::<LeaveGroupResponse>(), 0..=5);
    for v in 0..=5i16 {
        let mut ctx = Ctx::new();
        ctx.send(v, leave_request("", &[("m", None)], v));
        ctx.send(v, leave_request(G, &[("m", None)], v));
        let members = ctx.stable_group(3);
        ctx.send(
            v,
            leave_request(G, &[("ghost", None), (&members[2], None)], v),
        );
        ctx.send(v, leave_request(G, &[(&members[1], Some("i"))], v));
        assert!(encoded_count(&ctx) >= 4);
    }
}

#[test]
fn offset_commit_responses_encode_at_versions_2_to_9() {
    assert!(
        versions::<OffsetCommitResponse>().contains(&2)
            && versions::<OffsetCommitResponse>().contains(&9)
    );
    for v in 2..=9i16 {
        let mut ctx = Ctx::new();
        ctx.commit(&Commit::simple().group("").offset("t", 0, 1).version(v));
        ctx.commit(
            &Commit::simple()
                .offset("t", 0, 1)
                .offset("u", 3, 4)
                .retention(1_000)
                .version(v),
        );
        ctx.commit(
            &Commit::member("m", 3)
                .group("missing")
                .offset("t", 0, 1)
                .version(v),
        );
        let member = ctx.single_member_group();
        ctx.commit(
            &Commit::member(&member, 1)
                .offset_with("t", 0, 1, Some("meta"), 5)
                .version(v),
        );
        ctx.commit(&Commit::member(&member, 7).offset("t", 0, 1).version(v));
        assert!(encoded_count(&ctx) >= 5);
    }
}

#[test]
fn offset_fetch_responses_encode_at_versions_1_to_9() {
    assert!(
        versions::<OffsetFetchResponse>().contains(&1)
            && versions::<OffsetFetchResponse>().contains(&9)
    );
    for v in 1..=9i16 {
        let mut ctx = Ctx::new();
        ctx.commit(
            &Commit::simple()
                .offset_with("t", 0, 1, Some("m"), 3)
                .version(8),
        );
        ctx.send(v, fetch_request(G, Some(&[("t", &[0, 1]), ("u", &[0])]), v));
        ctx.send(v, fetch_request("missing", Some(&[("t", &[0])]), v));
        if v >= 2 {
            ctx.send(v, fetch_request(G, None, v));
            ctx.send(v, fetch_request("missing", None, v));
        }
        assert!(encoded_count(&ctx) >= 3);
    }
}

#[test]
fn describe_groups_responses_encode_at_versions_0_to_6() {
    assert_eq!(versions::<DescribeGroupsResponse>(), 0..=6);
    for v in 0..=6i16 {
        let mut ctx = Ctx::new();
        ctx.join(&Join::new("").instance("i").group("static"));
        let members = ctx.stable_group(2);
        ctx.commit(&Commit::simple().group("simple").offset("t", 0, 1));
        ctx.send(v, describe_request(&[G, "static", "simple", "missing"]));
        ctx.join(&Join::new(&members[0]));
        ctx.send(v, describe_request(&[G]));
        ctx.send(v, describe_request(&[]));
    }
}

#[test]
fn list_groups_responses_encode_at_versions_0_to_5() {
    assert_eq!(versions::<ListGroupsResponse>(), 0..=5);
    for v in 0..=5i16 {
        let mut ctx = Ctx::new();
        ctx.send(v, list_request(&[], &[]));
        ctx.stable_group(1);
        ctx.commit(&Commit::simple().group("simple").offset("t", 0, 1));
        ctx.send(v, list_request(&[], &[]));
        ctx.send(v, list_request(&["stable"], &["classic"]));
    }
}

#[test]
fn delete_groups_responses_encode_at_versions_0_to_2() {
    assert_eq!(versions::<DeleteGroupsResponse>(), 0..=2);
    for v in 0..=2i16 {
        let mut ctx = Ctx::new();
        ctx.stable_group(1);
        ctx.commit(&Commit::simple().group("simple").offset("t", 0, 1));
        ctx.send(v, delete_groups_request(&["simple", G, "missing"]));
    }
}

#[test]
fn offset_delete_responses_encode_at_version_0() {
    assert_eq!(versions::<OffsetDeleteResponse>(), 0..=0);
    let mut ctx = Ctx::new();
    ctx.send(0, offset_delete_request("", &[("t", &[0])]));
    ctx.send(0, offset_delete_request("missing", &[("t", &[0])]));
    let member = ctx.single_member_group();
    ctx.commit(&Commit::member(&member, 1).offset("old", 0, 1));
    ctx.send(
        0,
        offset_delete_request(G, &[("topic", &[0]), ("old", &[0, 1])]),
    );
    assert_eq!(encoded_count(&ctx), ctx.responses.len());
}

#[test]
fn a_response_with_a_field_its_version_lacks_is_refused_by_the_encoder() {
    // The guard the tests rely on: the crate does refuse such responses.
    let mut r = JoinGroupResponse::default();
    r.skip_assignment = true;
    assert!(encode(&GroupResponse::Join(r.clone()), 8).is_err());
    assert!(encode(&GroupResponse::Join(r), 9).is_ok());
}
