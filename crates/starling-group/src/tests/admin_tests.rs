//! DescribeGroups, ListGroups and DeleteGroups.

use kafka_protocol::messages::DeleteGroupsResponse;
use kafka_protocol::ResponseError;

use super::*;

fn delete_results(ctx: &Ctx, id: RequestId) -> Vec<(String, i16)> {
    match ctx.responses.get(&id) {
        Some(GroupResponse::DeleteGroups(DeleteGroupsResponse { results, .. })) => results
            .iter()
            .map(|r| (r.group_id.to_string(), r.error_code))
            .collect(),
        other => panic!("expected DeleteGroups response, got {other:?}"),
    }
}

fn listed(r: &ListGroupsResponse) -> Vec<(String, String, String, String)> {
    r.groups
        .iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.protocol_type.to_string(),
                g.group_state.to_string(),
                g.group_type.to_string(),
            )
        })
        .collect()
}

#[test]
fn describing_an_unknown_group_reports_dead_without_error_before_v6() {
    let mut ctx = Ctx::new();
    let id = ctx.send(5, describe_request(&["nope"]));
    let g = &ctx.describe_response(id).groups[0];
    assert_eq!(
        (g.group_id.as_str(), g.group_state.as_str(), g.error_code),
        ("nope", "Dead", 0)
    );
    assert!(g.members.is_empty());
}

#[test]
fn describing_an_unknown_group_on_v6_is_group_id_not_found() {
    let mut ctx = Ctx::new();
    let id = ctx.send(6, describe_request(&["nope"]));
    let g = &ctx.describe_response(id).groups[0];
    assert_eq!(g.error_code, code(ResponseError::GroupIdNotFound));
    assert_eq!(g.group_state.as_str(), "Dead");
    assert!(g.error_message.is_some());
}

#[test]
fn describing_a_stable_group_shows_protocol_metadata_and_assignments() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let id = ctx.send(5, describe_request(&[G]));
    let g = &ctx.describe_response(id).groups[0];
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!(
        (g.protocol_type.as_str(), g.protocol_data.as_str()),
        ("consumer", "range")
    );
    let described: Vec<(&str, &[u8], &[u8])> = g
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.as_str(),
                &m.member_metadata[..],
                &m.member_assignment[..],
            )
        })
        .collect();
    let metadata = subscription(&["topic"]);
    assert_eq!(
        described,
        vec![
            (members[0].as_str(), &metadata[..], &b"a-0"[..]),
            (members[1].as_str(), &metadata[..], &b"a-1"[..])
        ]
    );
}

#[test]
fn describing_a_rebalancing_group_shows_members_without_metadata_or_protocol() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.join(&Join::new(&members[0]));
    let id = ctx.send(5, describe_request(&[G]));
    let g = &ctx.describe_response(id).groups[0];
    assert_eq!(g.group_state.as_str(), "PreparingRebalance");
    assert_eq!(g.protocol_data.as_str(), "");
    assert_eq!(g.protocol_type.as_str(), "consumer");
    assert_eq!(g.members.len(), 2);
    assert!(g.members.iter().all(|m| m.member_metadata.is_empty()));
}

#[test]
fn describing_a_completing_rebalance_group_names_the_state() {
    let mut ctx = Ctx::new();
    ctx.join_new(Join::new(""));
    ctx.tick();
    let id = ctx.send(5, describe_request(&[G]));
    assert_eq!(
        ctx.describe_response(id).groups[0].group_state.as_str(),
        "CompletingRebalance"
    );
}

#[test]
fn describing_an_empty_group_shows_no_members() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 1));
    let id = ctx.send(5, describe_request(&[G]));
    let g = &ctx.describe_response(id).groups[0];
    assert_eq!(
        (
            g.group_state.as_str(),
            g.protocol_type.as_str(),
            g.members.len()
        ),
        ("Empty", "", 0)
    );
}

#[test]
fn describe_reports_group_instance_ids_from_v4() {
    let mut ctx = Ctx::new();
    ctx.join(&Join::new("").instance("i-0"));
    ctx.tick();
    let v4 = ctx.send(4, describe_request(&[G]));
    let v3 = ctx.send(3, describe_request(&[G]));
    assert_eq!(
        ctx.describe_response(v4).groups[0].members[0]
            .group_instance_id
            .as_deref(),
        Some("i-0")
    );
    assert_eq!(
        ctx.describe_response(v3).groups[0].members[0].group_instance_id,
        None
    );
}

#[test]
fn describe_reports_client_id_and_host() {
    let mut ctx = Ctx::new();
    ctx.client = ClientInfo {
        client_id: "app-7".into(),
        client_host: "/192.0.2.7".into(),
    };
    ctx.single_member_group();
    let id = ctx.send(5, describe_request(&[G]));
    let m = &ctx.describe_response(id).groups[0].members[0];
    assert_eq!(
        (m.client_id.as_str(), m.client_host.as_str()),
        ("app-7", "/192.0.2.7")
    );
    assert!(m.member_id.starts_with("app-7-"));
}

#[test]
fn describe_answers_several_groups_in_request_order() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().group("b").offset("t", 0, 1));
    ctx.commit(&Commit::simple().group("a").offset("t", 0, 1));
    let id = ctx.send(5, describe_request(&["b", "x", "a"]));
    let states: Vec<(&str, &str)> = ctx
        .describe_response(id)
        .groups
        .iter()
        .map(|g| (g.group_id.as_str(), g.group_state.as_str()))
        .collect();
    assert_eq!(states, vec![("b", "Empty"), ("x", "Dead"), ("a", "Empty")]);
}

#[test]
fn list_groups_lists_every_group_with_its_protocol_type() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    ctx.commit(&Commit::simple().group("simple").offset("t", 0, 1));
    let id = ctx.send(3, list_request(&[], &[]));
    let r = ctx.list_response(id);
    assert_eq!(r.error_code, 0);
    assert_eq!(
        listed(r),
        vec![
            (
                G.to_string(),
                "consumer".into(),
                String::new(),
                String::new()
            ),
            ("simple".into(), String::new(), String::new(), String::new())
        ]
    );
}

#[test]
fn list_groups_reports_the_state_from_v4_and_the_type_from_v5() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let v4 = ctx.send(4, list_request(&[], &[]));
    let v5 = ctx.send(5, list_request(&[], &[]));
    assert_eq!(listed(ctx.list_response(v4))[0].2, "Stable");
    assert_eq!(listed(ctx.list_response(v4))[0].3, "");
    assert_eq!(listed(ctx.list_response(v5))[0].3, "classic");
}

#[test]
fn list_groups_state_filter_is_case_insensitive() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    ctx.commit(&Commit::simple().group("simple").offset("t", 0, 1));
    let id = ctx.send(4, list_request(&["empty"], &[]));
    assert_eq!(
        listed(ctx.list_response(id))
            .into_iter()
            .map(|g| g.0)
            .collect::<Vec<_>>(),
        vec!["simple"]
    );
    let id = ctx.send(4, list_request(&[" STABLE ", "Dead"], &[]));
    assert_eq!(
        listed(ctx.list_response(id))
            .into_iter()
            .map(|g| g.0)
            .collect::<Vec<_>>(),
        vec![G]
    );
}

#[test]
fn list_groups_type_filter_matches_only_classic() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let classic = ctx.send(5, list_request(&[], &["Classic"]));
    assert_eq!(ctx.list_response(classic).groups.len(), 1);
    let consumer = ctx.send(5, list_request(&[], &["consumer"]));
    assert!(ctx.list_response(consumer).groups.is_empty());
}

#[test]
fn filters_are_ignored_by_versions_without_them() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let id = ctx.send(3, list_request(&["empty"], &["share"]));
    assert_eq!(ctx.list_response(id).groups.len(), 1);
}

#[test]
fn deleting_an_empty_group_removes_it_and_its_offsets() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 1).offset("u", 2, 3));
    let id = ctx.send(2, delete_groups_request(&[G]));
    assert_eq!(delete_results(&ctx, id), vec![(G.to_string(), 0)]);
    assert!(!ctx.c.has_group(G));
    assert_eq!(ctx.last_records.len(), 3);
    assert!(matches!(
        ctx.last_records.last(),
        Some(Record::Group { value: None, .. })
    ));
    let fetch = ctx.send(8, fetch_request(G, Some(&[("t", &[0])]), 8));
    assert_eq!(
        ctx.fetch_response(fetch).groups[0].topics[0].partitions[0].committed_offset,
        -1
    );
}

#[test]
fn deleting_a_group_with_members_is_non_empty_group() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let id = ctx.send(2, delete_groups_request(&[G]));
    assert_eq!(
        delete_results(&ctx, id),
        vec![(G.to_string(), code(ResponseError::NonEmptyGroup))]
    );
    assert!(ctx.c.has_group(G));
}

#[test]
fn deleting_an_unknown_group_is_group_id_not_found() {
    let mut ctx = Ctx::new();
    let id = ctx.send(0, delete_groups_request(&["nope"]));
    assert_eq!(
        delete_results(&ctx, id),
        vec![("nope".to_string(), code(ResponseError::GroupIdNotFound))]
    );
}

#[test]
fn deleting_several_groups_reports_each() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    ctx.commit(&Commit::simple().group("empty").offset("t", 0, 1));
    let id = ctx.send(1, delete_groups_request(&["empty", G, "nope"]));
    assert_eq!(
        delete_results(&ctx, id),
        vec![
            ("empty".to_string(), 0),
            (G.to_string(), code(ResponseError::NonEmptyGroup)),
            ("nope".to_string(), code(ResponseError::GroupIdNotFound))
        ]
    );
}

#[test]
fn deleting_an_empty_group_drops_its_pending_members_and_their_timers() {
    let mut ctx = Ctx::new();
    let first = ctx.join(&Join::new(""));
    let pending = ctx.join_response(first).member_id.to_string();
    let id = ctx.send(2, delete_groups_request(&[G]));
    assert_eq!(delete_results(&ctx, id), vec![(G.to_string(), 0)]);
    assert_eq!(ctx.timer(&format!("pending:{G}:{pending}")), None);
    let late = ctx.join(&Join::new(&pending));
    assert_eq!(
        ctx.join_response(late).error_code,
        code(ResponseError::UnknownMemberId)
    );
}
