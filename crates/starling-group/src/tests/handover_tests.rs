//! A group moving between coordinators: `unload_group` on the node that stops coordinating it,
//! `load_group` of its stored records on the node that takes it over.

use super::consumer_support::{holders_of, Client};
use super::*;

/// What the store holds of `group` after everything `ctx` emitted: the latest record of each
/// key, deletions dropping theirs, in key order.
fn stored(ctx: &Ctx, group: &str) -> Vec<Record> {
    let mut latest: BTreeMap<String, Record> = BTreeMap::new();
    for record in ctx.records.iter().filter(|r| r.group_id() == group) {
        if record.is_deletion() {
            latest.remove(&record.key());
        } else {
            latest.insert(record.key(), record.clone());
        }
    }
    latest.into_values().collect()
}

/// A second coordinator, running since `now` with a group of its own ("theirs").
fn other_node(now: Millis) -> Ctx {
    let mut c = GroupCoordinator::new(GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    });
    c.loaded(now);
    let mut node = Ctx::around(c, now);
    node.single_member_group_in("theirs");
    node
}

fn group_timers(ctx: &Ctx, group: &str) -> Vec<String> {
    ctx.c
        .timers()
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.split(':').nth(1) == Some(group))
        .collect()
}

#[test]
fn a_group_taken_over_holds_what_its_records_hold_and_its_members_carry_on() {
    let mut old = Ctx::new();
    let members = old.stable_group(2);
    old.commit(
        &Commit::member(&members[0], 1)
            .offset("t", 0, 5)
            .offset("t", 1, 7),
    );
    let mut new = other_node(old.now);
    new.c.load_group(new.clocks(), G, &stored(&old, G));
    assert_eq!(durable(&new.c).get(G), durable(&old.c).get(G));
    assert_eq!(new.state(), Some(GroupState::Stable));
    assert_eq!(new.generation(), 1);
    assert_eq!(new.members(), members);
    // The members heartbeat and commit on the new coordinator as they did on the old one.
    assert_eq!(new.heartbeat(&members[1], 1), 0);
    let commit = new.commit(&Commit::member(&members[1], 1).offset("t", 1, 9));
    assert_eq!(new.commit_errors(commit), vec![0]);
    let sync = new.sync(&Sync::new(&members[1], 1));
    assert_eq!(&new.sync_response(sync).assignment[..], b"a-1");
    // Its own group is untouched.
    assert!(new.c.has_group("theirs"));
    assert_eq!(new.c.group_state("theirs"), Some(GroupState::Stable));
}

#[test]
fn members_of_a_group_taken_over_have_a_session_from_the_take_over() {
    let mut old = Ctx::new();
    let members = old.stable_group(1);
    let mut new = other_node(old.now + 4_000);
    new.c.load_group(new.clocks(), G, &stored(&old, G));
    assert_eq!(
        new.c
            .timers()
            .into_iter()
            .find(|(key, _)| key == &format!("heartbeat:{G}:{}", members[0]))
            .map(|(_, at)| at),
        Some(new.now + i64::from(SESSION))
    );
    new.sleep(i64::from(SESSION));
    assert!(
        new.members().is_empty(),
        "a silent member's session ends on the new node too"
    );
    assert_eq!(new.state(), Some(GroupState::Empty));
}

#[test]
fn an_unloaded_group_is_forgotten_with_its_timers_and_the_others_stay() {
    let mut node = Ctx::new();
    node.stable_group(2);
    node.single_member_group_in("kept");
    assert!(!group_timers(&node, G).is_empty());
    node.c.unload_group(G);
    assert!(!node.c.has_group(G));
    assert!(group_timers(&node, G).is_empty());
    assert!(!group_timers(&node, "kept").is_empty());
    assert_eq!(node.c.group_state("kept"), Some(GroupState::Stable));
    assert_eq!(node.c.group_ids().collect::<Vec<_>>(), vec!["kept"]);
    // Nothing fires for the forgotten group however long the node waits.
    node.sleep(i64::from(SESSION) * 3);
    assert!(node.last_records.iter().all(|r| r.group_id() != G));
}

#[test]
fn loading_a_group_again_replaces_the_stale_copy_held_in_memory() {
    // Node A coordinated the group, then node B took it over and rebalanced it; when A takes
    // it back it must serve B's generation, not its own.
    let mut a = Ctx::new();
    let members = a.stable_group(1);
    let mut b = other_node(a.now);
    b.c.load_group(b.clocks(), G, &stored(&a, G));
    let (newcomer, _) = b.join_new(Join::new(""));
    let rejoin = b.join(&Join::new(&members[0]));
    b.tick();
    assert_eq!(b.join_response(rejoin).error_code, 0);
    assert_eq!(b.generation(), 2);
    let mut records = stored(&a, G);
    records.extend(b.records.iter().filter(|r| r.group_id() == G).cloned());
    let mut latest: BTreeMap<String, Record> = BTreeMap::new();
    for r in records {
        latest.insert(r.key(), r);
    }
    a.c.load_group(a.clocks(), G, &latest.into_values().collect::<Vec<_>>());
    assert_eq!(a.generation(), 2);
    let mut expected = vec![members[0].clone(), newcomer];
    expected.sort();
    let mut held = a.members();
    held.sort();
    assert_eq!(held, expected);
    // A heartbeat at A's old generation is told to rejoin.
    assert_eq!(
        a.heartbeat(&members[0], 1),
        code(ResponseError::IllegalGeneration)
    );
}

#[test]
fn a_group_stored_mid_rebalance_rebalances_when_taken_over() {
    let mut old = Ctx::new();
    let members = old.stable_group(2);
    // A third member joins: the group is stored in PreparingRebalance with the old members'
    // assignments; a take-over before the rebalance ends goes on with it.
    old.join_new(Join::new(""));
    let mut new = other_node(old.now);
    new.c.load_group(new.clocks(), G, &stored(&old, G));
    assert_eq!(new.members().len(), members.len());
    let rejoin = new.join(&Join::new(&members[0]));
    let rejoin2 = new.join(&Join::new(&members[1]));
    new.tick();
    assert_eq!(new.join_response(rejoin).error_code, 0);
    assert_eq!(new.join_response(rejoin2).error_code, 0);
    assert_eq!(new.generation(), 2);
}

#[test]
fn a_consumer_protocol_group_taken_over_keeps_its_epochs_and_assignment() {
    let mut old = Ctx::new();
    old.set_topics(&[("orders", 4)]);
    let mut clients = vec![
        Client::new("m1", &["orders"]),
        Client::new("m2", &["orders"]),
    ];
    old.settle(&mut clients, 10);
    let before = holders_of(old.cg());
    let mut new = other_node(old.now);
    new.set_topics(&[("orders", 4)]);
    new.c.load_group(new.clocks(), G, &stored(&old, G));
    assert_eq!(holders_of(new.cg()), before);
    assert_eq!(new.cg().epoch, old.cg().epoch);
    // The members' next heartbeats keep their epochs and partitions: nothing moves.
    for client in clients.iter_mut() {
        let epoch = client.epoch;
        let owned = client.owned.clone();
        let response = new.step(client);
        assert_eq!(response.error_code, 0, "{response:?}");
        assert_eq!((client.epoch, &client.owned), (epoch, &owned));
    }
}

#[test]
fn a_consumer_protocol_group_unloaded_leaves_no_session_timers() {
    let mut node = Ctx::new();
    node.set_topics(&[("orders", 2)]);
    let mut clients = vec![Client::new("m1", &["orders"])];
    node.settle(&mut clients, 10);
    assert!(!group_timers(&node, G).is_empty());
    node.c.unload_group(G);
    assert!(group_timers(&node, G).is_empty());
    node.sleep(60_000);
    assert!(node.last_records.is_empty(), "{:?}", node.last_records);
}

#[test]
fn requests_name_the_groups_they_are_about() {
    let join = Join::new("").group("g1").request();
    assert_eq!(join.group_ids(), vec!["g1"]);
    let mut describe = DescribeGroupsRequest::default();
    describe.groups = vec![sb("a").into(), sb("b").into()];
    assert_eq!(
        GroupRequest::DescribeGroups(describe).group_ids(),
        vec!["a", "b"]
    );
    let mut fetch = OffsetFetchRequest::default();
    fetch.groups = vec![
        OffsetFetchRequestGroup::default().with_group_id(sb("x").into()),
        OffsetFetchRequestGroup::default().with_group_id(sb("y").into()),
    ];
    assert_eq!(GroupRequest::OffsetFetch(fetch).group_ids(), vec!["x", "y"]);
    let mut old_fetch = OffsetFetchRequest::default();
    old_fetch.group_id = sb("z").into();
    assert_eq!(GroupRequest::OffsetFetch(old_fetch).group_ids(), vec!["z"]);
    assert!(GroupRequest::ListGroups(ListGroupsRequest::default())
        .group_ids()
        .is_empty());
}
