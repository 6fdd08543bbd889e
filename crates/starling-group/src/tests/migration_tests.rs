//! Mixed groups and online migration between the classic protocol and the KIP-848 consumer
//! protocol: a consumer-protocol member upgrading a classic group, classic members living in
//! a consumer group, the downgrade when the last consumer-protocol member leaves or a classic
//! static member replaces it, and `group.consumer.migration.policy`. After every step a restart (replaying the stored
//! records) rebuilds the same state, and no partition is ever owned by two clients.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;

use super::classic_support::{assert_owned_once, classic_leave, ClassicClient};
use super::consumer_support::{tp, Client, Hb};
use super::*;
use crate::consumer::MemberState;
use crate::{ConsumerGroupState, MigrationPolicy};

fn ctx_with(policy: MigrationPolicy) -> Ctx {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        consumer_migration_policy: policy,
        ..GroupConfig::default()
    });
    ctx.set_topics(&[("orders", 6)]);
    ctx
}

/// A Stable classic group of three cooperative members on `orders` (6 partitions, two each),
/// upgraded by consumer-protocol member `c1`, which has joined.
fn upgraded(ctx: &mut Ctx) -> (Vec<ClassicClient>, Client) {
    let classic = ctx.stable_classic_group(3, "orders", 6, true);
    let mut consumer = Client::new("c1", &["orders"]);
    let r = ctx.step(&mut consumer);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    (classic, consumer)
}

fn held(ctx: &Ctx, member: &str) -> BTreeSet<(String, i32)> {
    let m = &ctx.cg().members[member];
    m.assignment
        .assigned
        .iter()
        .chain(m.assignment.pending_revocation.iter())
        .flat_map(|(topic, parts)| {
            let name = ctx.c.topics.get(topic).unwrap().name.clone();
            parts.iter().map(move |p| (name.clone(), *p))
        })
        .collect()
}

// ---- Upgrade ----------------------------------------------------------------------------

#[test]
fn a_consumer_member_joining_a_stable_classic_group_turns_it_into_a_consumer_group() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let classic = ctx.stable_classic_group(3, "orders", 6, true);
    let generation = ctx.generation();
    let commit =
        ctx.commit(&Commit::member(&classic[0].member, generation).offset("orders", 0, 42));
    assert_eq!(ctx.commit_errors(commit), [0]);

    let mut consumer = Client::new("c1", &["orders"]);
    let r = ctx.step(&mut consumer);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);

    let group = ctx.cg();
    assert_eq!(group.members.len(), 4);
    // The classic generation is the epoch the conversion starts from; the new member bumps it.
    assert_eq!(group.epoch, generation + 1);
    for client in &classic {
        let member = &group.members[&client.member];
        assert!(member.is_classic());
        assert_eq!(member.subscription.subscribed_topic_names, ["orders"]);
        let metadata = member.subscription.classic.as_ref().unwrap();
        assert_eq!(metadata.session_timeout_ms, SESSION);
        assert_eq!(metadata.protocol_name(), "cooperative-sticky");
        assert_eq!(member.subscription.rebalance_timeout_ms, REBALANCE);
        assert_eq!(member.assignment.member_epoch, generation);
        // Each keeps what it was consuming; the new member waits for what it is given.
        assert_eq!(held(&ctx, &client.member), client.owned);
    }
    assert!(!ctx.cg().members["c1"].is_classic());
    assert_eq!(ctx.offset(G, "orders", 0).unwrap().offset, 42);
    assert_eq!(ctx.c.group_state(G), Some(GroupState::Empty));
    assert_owned_once(vec![
        ("c1".into(), consumer.owned.clone()),
        (classic[0].member.clone(), classic[0].owned_ids()),
        (classic[1].member.clone(), classic[1].owned_ids()),
        (classic[2].member.clone(), classic[2].owned_ids()),
    ]);
    ctx.assert_restart_rebuilds_the_groups();
}

#[test]
fn classic_members_keep_their_partitions_and_rejoin_when_the_group_epoch_moves() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let (mut classic, mut consumer) = upgraded(&mut ctx);
    let before: Vec<BTreeSet<(String, i32)>> = classic.iter().map(|c| c.owned.clone()).collect();
    // The new member's join moved the group epoch past theirs: they are told to rejoin.
    for client in &classic {
        assert_eq!(
            ctx.classic_heartbeat(client),
            code(ResponseError::RebalanceInProgress)
        );
    }
    // Rejoining, each keeps what the target leaves it and gives up only what moves: a
    // member with something to give up stays at its generation until it has.
    for (client, before) in classic.iter_mut().zip(&before) {
        let generation = client.generation;
        assert_eq!(ctx.classic_join(client), 0);
        assert_eq!(ctx.classic_sync(client), 0);
        assert!(
            client.owned.is_subset(before),
            "{:?} {:?}",
            client.owned,
            before
        );
        if &client.owned != before {
            assert_eq!(client.generation, generation);
            assert!(client.needs_rejoin);
        }
        ctx.assert_restart_rebuilds_the_groups();
    }
    ctx.settle_mixed(&mut classic, std::slice::from_mut(&mut consumer), 20);
    assert_eq!(ctx.cg().state(), ConsumerGroupState::Stable);
    let epoch = ctx.cg().epoch;
    let mut total = consumer.owned.values().map(BTreeSet::len).sum::<usize>();
    assert!(total > 0, "the consumer member got partitions");
    for client in &classic {
        assert_eq!(client.generation, epoch);
        total += client.owned.len();
        // Settled: no rejoin is asked for.
        assert_eq!(ctx.classic_heartbeat(client), 0);
    }
    assert_eq!(total, 6);
    ctx.assert_restart_rebuilds_the_groups();
}

#[test]
fn an_upgrade_in_the_middle_of_a_rebalance_answers_the_held_requests_with_rebalance_in_progress() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let classic = ctx.stable_classic_group(2, "orders", 6, true);
    // The first member rejoins: the group prepares a rebalance and holds its JoinGroup.
    let rejoin = ctx.join(&classic[0].join_request());
    assert!(!ctx.answered(rejoin));
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
    ctx.hb_ok(&Hb::join("c1", &["orders"]));
    assert_eq!(
        ctx.join_response(rejoin).error_code,
        code(ResponseError::RebalanceInProgress)
    );
    assert_eq!(ctx.cg().members.len(), 3);
    assert!(ctx.unanswered().is_empty());
    // No classic timer is left to fire on the converted group.
    assert!(ctx.timer(&format!("join:{G}")).is_none());
    ctx.sleep(REBALANCE as i64);
    assert_eq!(
        ctx.cg().members.len(),
        1,
        "the silent classic members are fenced"
    );
    ctx.assert_restart_rebuilds_the_groups();
}

#[test]
fn the_upgrade_is_refused_when_the_policy_does_not_allow_it() {
    for policy in [MigrationPolicy::Downgrade, MigrationPolicy::Disabled] {
        let mut ctx = ctx_with(policy);
        ctx.stable_classic_group(2, "orders", 6, true);
        let r = ctx.hb(&Hb::join("c1", &["orders"]));
        assert_eq!(
            r.error_code,
            code(ResponseError::GroupIdNotFound),
            "{policy}"
        );
        assert!(ctx.c.consumer_group(G).is_none());
        assert_eq!(ctx.state(), Some(GroupState::Stable));
    }
    let mut ctx = ctx_with(MigrationPolicy::Upgrade);
    ctx.stable_classic_group(2, "orders", 6, true);
    ctx.hb_ok(&Hb::join("c1", &["orders"]));
}

#[test]
fn the_upgrade_is_refused_when_the_group_would_exceed_the_consumer_group_max_size() {
    for (max, error) in [
        (1, ResponseError::GroupIdNotFound),
        (2, ResponseError::GroupMaxSizeReached),
    ] {
        let mut ctx = Ctx::with_config(GroupConfig {
            initial_rebalance_delay_ms: 0,
            consumer_max_size: max,
            ..GroupConfig::default()
        });
        ctx.set_topics(&[("orders", 6)]);
        ctx.stable_classic_group(2, "orders", 6, true);
        let r = ctx.hb(&Hb::join("c1", &["orders"]));
        assert_eq!(r.error_code, code(error), "max {max}");
        assert!(ctx.c.consumer_group(G).is_none(), "nothing converted");
        assert!(ctx.last_records.is_empty());
    }
}

#[test]
fn a_group_of_another_protocol_type_is_not_upgraded() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let (member, _) = ctx.join_new(Join::new("").protocol_type("connect"));
    ctx.tick();
    ctx.sync(&Sync::new(&member, 1).assign(&member, b""));
    let r = ctx.hb(&Hb::join("c1", &["orders"]));
    assert_eq!(r.error_code, code(ResponseError::GroupIdNotFound));
}

#[test]
fn a_static_consumer_member_cannot_take_an_instance_id_a_classic_member_holds() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let mut client = ClassicClient::new(&["orders"], true);
    client.instance = Some("i1".into());
    let id = ctx.join(&client.join_request());
    ctx.tick();
    let member = ctx.join_response(id).member_id.to_string();
    ctx.sync(&Sync::new(&member, 1).assign(&member, b""));
    let r = ctx.hb(&Hb::join("c1", &["orders"]).instance("i1"));
    assert_eq!(r.error_code, code(ResponseError::UnreleasedInstanceId));
    assert!(ctx.c.consumer_group(G).is_none());
}

// ---- Classic members in a consumer group --------------------------------------------------

#[test]
fn a_new_classic_member_joins_a_consumer_group_and_the_server_assigns_it() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let mut consumer = Client::new("c1", &["orders"]);
    ctx.step(&mut consumer);
    let mut classic = vec![ClassicClient::new(&["orders"], true)];
    assert_eq!(ctx.classic_join(&mut classic[0]), 0);
    let member = ctx.cg().members[&classic[0].member].clone();
    assert!(member.is_classic());
    assert_eq!(classic[0].generation, member.assignment.member_epoch);
    assert_eq!(ctx.classic_sync(&mut classic[0]), 0);
    ctx.settle_mixed(&mut classic, std::slice::from_mut(&mut consumer), 20);
    assert_eq!(classic[0].owned.len(), 3);
    assert_eq!(consumer.owned.values().map(BTreeSet::len).sum::<usize>(), 3);
    let described = ctx.cg_describe(&[G]);
    let types: Vec<(String, i8)> = described.groups[0]
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.member_type))
        .collect();
    assert!(types.contains(&(classic[0].member.clone(), 0)), "{types:?}");
    assert!(types.contains(&("c1".to_string(), 1)), "{types:?}");
    ctx.assert_restart_rebuilds_the_groups();
}

#[test]
fn an_eager_classic_member_gives_everything_up_when_it_rejoins_and_gets_back_its_share() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let mut classic = ctx.stable_classic_group(2, "orders", 6, false);
    let mut consumer = Client::new("c1", &["orders"]);
    ctx.step(&mut consumer);
    ctx.settle_mixed(&mut classic, std::slice::from_mut(&mut consumer), 20);
    let total = classic.iter().map(|c| c.owned.len()).sum::<usize>()
        + consumer.owned.values().map(BTreeSet::len).sum::<usize>();
    assert_eq!(total, 6);
    assert!(classic.iter().all(|c| c.owned.len() == 2));
}

#[test]
fn a_classic_member_in_a_consumer_group_gets_illegal_generation_for_another_generation() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let (mut classic, mut consumer) = upgraded(&mut ctx);
    ctx.settle_mixed(&mut classic, std::slice::from_mut(&mut consumer), 20);
    let client = classic[0].clone();
    let id = ctx.send(
        4,
        heartbeat_request(G, &client.member, client.generation - 1, None),
    );
    assert_eq!(
        ctx.heartbeat_error(id),
        code(ResponseError::IllegalGeneration)
    );
    let id = ctx.sync(&Sync::new(&client.member, client.generation + 1).version(5));
    assert_eq!(
        ctx.sync_response(id).error_code,
        code(ResponseError::IllegalGeneration)
    );
    // An earlier generation commits only what the member held then (KIP-1251), a later one
    // nothing.
    let foreign = (0..6)
        .find(|p| !client.owned.contains(&("orders".to_string(), *p)))
        .unwrap();
    for (generation, partition) in [
        (client.generation - 1, foreign),
        (client.generation + 1, client.owned.first().unwrap().1),
    ] {
        let refused =
            ctx.commit(&Commit::member(&client.member, generation).offset("orders", partition, 1));
        assert_eq!(
            ctx.commit_errors(refused),
            [code(ResponseError::IllegalGeneration)]
        );
    }
    let ok = ctx.commit(&Commit::member(&client.member, client.generation).offset("orders", 0, 1));
    assert_eq!(ctx.commit_errors(ok), [0]);
    // A member id the group does not know, and a consumer-protocol member, are unknown to
    // the classic protocol.
    let id = ctx.send(4, heartbeat_request(G, "nobody", 1, None));
    assert_eq!(
        ctx.heartbeat_error(id),
        code(ResponseError::UnknownMemberId)
    );
    let id = ctx.send(4, heartbeat_request(G, "c1", consumer.epoch, None));
    assert_eq!(
        ctx.heartbeat_error(id),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_static_classic_member_is_fenced_by_its_instance_id() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let mut consumer = Client::new("c1", &["orders"]);
    ctx.step(&mut consumer);
    let mut client = ClassicClient::new(&["orders"], true);
    client.instance = Some("i1".into());
    assert_eq!(ctx.classic_join(&mut client), 0);
    let id = ctx.send(
        4,
        heartbeat_request(G, "other", client.generation, Some("i1")),
    );
    assert_eq!(
        ctx.heartbeat_error(id),
        code(ResponseError::FencedInstanceId)
    );
    // Back without its member id (a restart), it takes over its old self.
    let old = client.member.clone();
    client.member.clear();
    assert_eq!(ctx.classic_join(&mut client), 0);
    assert_ne!(client.member, old);
    assert!(!ctx.cg().members.contains_key(&old));
    assert_eq!(ctx.cg().static_members["i1"], client.member);
    // LeaveGroup by instance id alone removes it.
    let id = ctx.send(5, classic_leave(&[("", Some("i1"))]));
    assert_eq!(ctx.leave_response(id).members[0].error_code, 0);
    assert!(!ctx.cg().members.contains_key(&client.member));
    ctx.assert_restart_rebuilds_the_groups();
}

#[test]
fn a_classic_member_told_to_rejoin_that_does_not_within_its_rebalance_timeout_is_fenced() {
    let mut ctx = ctx_with(MigrationPolicy::Upgrade);
    let (classic, _consumer) = upgraded(&mut ctx);
    assert_eq!(
        ctx.classic_heartbeat(&classic[0]),
        code(ResponseError::RebalanceInProgress)
    );
    // It keeps heartbeating, but never rejoins.
    for _ in 1..(REBALANCE / 3000) {
        ctx.sleep(3000);
        assert_eq!(
            ctx.classic_heartbeat(&classic[0]),
            code(ResponseError::RebalanceInProgress)
        );
    }
    ctx.sleep(3000);
    assert!(!ctx.cg().members.contains_key(&classic[0].member));
}

#[test]
fn a_classic_member_that_joined_but_never_syncs_is_fenced_after_its_rebalance_timeout() {
    let mut ctx = ctx_with(MigrationPolicy::Upgrade);
    let mut consumer = Client::new("c1", &["orders"]);
    ctx.step(&mut consumer);
    let mut client = ClassicClient::new(&["orders"], true);
    client.session = 60_000;
    assert_eq!(ctx.classic_join(&mut client), 0);
    ctx.sleep(REBALANCE as i64 + 1);
    assert!(!ctx.cg().members.contains_key(&client.member));
}

#[test]
fn a_classic_members_session_is_its_own_session_timeout() {
    let mut ctx = ctx_with(MigrationPolicy::Upgrade);
    let mut consumer = Client::new("c1", &["orders"]);
    ctx.step(&mut consumer);
    let mut client = ClassicClient::new(&["orders"], true);
    client.session = 7_000;
    assert_eq!(ctx.classic_join(&mut client), 0);
    assert_eq!(ctx.classic_sync(&mut client), 0);
    assert_eq!(
        ctx.timer(&format!("consumer-session:{G}:{}", client.member)),
        Some(ctx.now + 7_000)
    );
    ctx.sleep(4_000);
    ctx.step(&mut consumer);
    ctx.classic_heartbeat(&client);
    ctx.sleep(6_000);
    assert!(ctx.cg().members.contains_key(&client.member));
    ctx.step(&mut consumer);
    ctx.sleep(1_001);
    assert!(!ctx.cg().members.contains_key(&client.member));
}

#[test]
fn with_migration_disabled_a_new_classic_member_is_refused_but_known_ones_rejoin() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let (mut classic, _consumer) = upgraded(&mut ctx);
    // The same records under a broker restarted with migration disabled.
    let mut config = ctx.c.config.clone();
    config.consumer_migration_policy = MigrationPolicy::Disabled;
    let mut c = ctx.restarted();
    c.config = config;
    let mut ctx = Ctx::around(c, ctx.now);
    let mut newcomer = ClassicClient::new(&["orders"], true);
    assert_eq!(
        ctx.classic_join(&mut newcomer),
        code(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(ctx.classic_join(&mut classic[0]), 0);
}

#[test]
fn a_classic_join_with_protocols_the_other_classic_members_lack_is_inconsistent() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let (_classic, _consumer) = upgraded(&mut ctx);
    let mut eager = ClassicClient::new(&["orders"], false);
    assert_eq!(
        ctx.classic_join(&mut eager),
        code(ResponseError::InconsistentGroupProtocol)
    );
}

// ---- Downgrade ---------------------------------------------------------------------------

#[test]
fn the_group_turns_classic_again_when_the_last_consumer_member_leaves() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let (mut classic, mut consumer) = upgraded(&mut ctx);
    ctx.settle_mixed(&mut classic, std::slice::from_mut(&mut consumer), 20);
    let epoch = ctx.cg().epoch;
    ctx.hb_ok(&Hb::leave("c1", -1));
    consumer.owned.clear();

    assert!(ctx.c.consumer_group(G).is_none());
    assert_eq!(ctx.state(), Some(GroupState::PreparingRebalance));
    assert_eq!(ctx.generation(), epoch);
    let open = ctx.history().last().cloned().unwrap();
    assert_eq!(
        (open.cause, open.trigger_member.as_deref()),
        (crate::RebalanceCause::MemberLeft, Some("c1"))
    );
    let mut members = ctx.members();
    members.sort();
    let mut expected: Vec<String> = classic.iter().map(|c| c.member.clone()).collect();
    expected.sort();
    assert_eq!(members, expected);
    // The classic record keeps what each member holds, as its assignment.
    let record = ctx.group_records().last().cloned().cloned().unwrap();
    assert_eq!(record.generation, epoch);
    assert_eq!(record.protocol.as_deref(), Some("cooperative-sticky"));
    for client in &classic {
        let value = record
            .members
            .iter()
            .find(|m| m.member_id == client.member)
            .unwrap();
        assert_eq!(
            super::classic_support::read_assignment(&value.assignment),
            client.owned
        );
        assert_eq!(value.session_timeout_ms, SESSION);
    }
    ctx.assert_restart_rebuilds_the_groups();

    // The members are told to rejoin and rebalance as a classic group.
    let mut joins = Vec::new();
    for client in &classic {
        assert_eq!(
            ctx.classic_heartbeat(client),
            code(ResponseError::RebalanceInProgress)
        );
        joins.push(ctx.join(&client.join_request()));
    }
    let generation = ctx.join_response(joins[0]).generation_id;
    assert_eq!(generation, epoch + 1);
    assert_eq!(ctx.state(), Some(GroupState::CompletingRebalance));
    ctx.assert_restart_rebuilds_the_groups();
}

#[test]
fn when_a_consumer_members_session_expires_the_classic_members_left_form_a_classic_group() {
    let mut ctx = ctx_with(MigrationPolicy::Downgrade);
    let mut consumer = Client::new("c1", &["orders"]);
    ctx.step(&mut consumer);
    let mut classic = vec![ClassicClient::new(&["orders"], true)];
    ctx.settle_mixed(&mut classic, std::slice::from_mut(&mut consumer), 20);
    // Only the classic member keeps talking.
    for _ in 0..20 {
        ctx.sleep(3_000);
        ctx.classic_heartbeat(&classic[0]);
    }
    assert!(ctx.c.consumer_group(G).is_none());
    assert_eq!(ctx.members(), [classic[0].member.clone()]);
    ctx.assert_restart_rebuilds_the_groups();
}

#[test]
fn with_the_upgrade_policy_the_group_stays_a_consumer_group_when_the_last_consumer_member_leaves() {
    let mut ctx = ctx_with(MigrationPolicy::Upgrade);
    let (mut classic, mut consumer) = upgraded(&mut ctx);
    ctx.settle_mixed(&mut classic, std::slice::from_mut(&mut consumer), 20);
    ctx.hb_ok(&Hb::leave("c1", -1));
    assert_eq!(ctx.cg().members.len(), 3);
    assert!(ctx.cg().members.values().all(|m| m.is_classic()));
    let mut consumers: Vec<Client> = Vec::new();
    ctx.settle_mixed(&mut classic, &mut consumers, 20);
    assert_eq!(classic.iter().map(|c| c.owned.len()).sum::<usize>(), 6);
    ctx.assert_restart_rebuilds_the_groups();
}

#[test]
fn a_classic_leave_of_the_last_members_leaves_an_empty_consumer_group() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let (classic, _consumer) = upgraded(&mut ctx);
    let members: Vec<(&str, Option<&str>)> =
        classic.iter().map(|c| (c.member.as_str(), None)).collect();
    let id = ctx.send(5, classic_leave(&members));
    assert!(ctx
        .leave_response(id)
        .members
        .iter()
        .all(|m| m.error_code == 0));
    assert_eq!(ctx.cg().members.keys().collect::<Vec<_>>(), ["c1"]);
    let id = ctx.send(5, classic_leave(&[("nobody", None)]));
    assert_eq!(
        ctx.leave_response(id).members[0].error_code,
        code(ResponseError::UnknownMemberId)
    );
    ctx.assert_restart_rebuilds_the_groups();
}

/// A consumer-protocol static member `c1` (instance `i1`) beside one classic member, settled,
/// then `c1` leaves temporarily (epoch −2), as a restarting static member does.
fn static_consumer_beside_a_classic_member(ctx: &mut Ctx) -> (ClassicClient, Client) {
    let mut consumer = Client::new("c1", &["orders"]);
    consumer.instance = Some("i1".into());
    ctx.step(&mut consumer);
    let mut classic = vec![ClassicClient::new(&["orders"], true)];
    ctx.settle_mixed(&mut classic, std::slice::from_mut(&mut consumer), 20);
    ctx.hb_ok(&Hb::leave("c1", -2).instance("i1"));
    (classic.remove(0), consumer)
}

#[test]
fn a_classic_static_member_replacing_the_last_consumer_member_turns_the_group_classic() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let (other, consumer) = static_consumer_beside_a_classic_member(&mut ctx);
    let epoch = ctx.cg().epoch;
    let history = ctx.history().len();
    let held_by_c1: BTreeSet<(String, i32)> = consumer
        .owned
        .values()
        .flat_map(|parts| parts.iter().map(|p| ("orders".to_string(), *p)))
        .collect();
    assert_eq!(held_by_c1.len(), 3);

    // The same instance comes back on the classic protocol, without a member id.
    let mut back = ClassicClient::new(&["orders"], true);
    back.instance = Some("i1".into());
    assert_eq!(ctx.classic_join(&mut back), 0);
    assert_ne!(back.member, "c1");
    assert_eq!(back.generation, epoch);

    // The group is classic now, Stable at the group epoch, with no rebalance: the new member
    // holds what c1 held and syncs straight into it.
    assert!(ctx.c.consumer_group(G).is_none());
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    assert_eq!(ctx.generation(), epoch);
    let mut members = ctx.members();
    members.sort();
    let mut expected = vec![other.member.clone(), back.member.clone()];
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(ctx.history().len(), history, "no rebalance was opened");
    let sync = Sync::new(&back.member, back.generation)
        .instance("i1")
        .protocol("consumer", "cooperative-sticky")
        .version(5);
    let id = ctx.sync(&sync);
    let r = ctx.sync_response(id).clone();
    assert_eq!(r.error_code, 0);
    assert_eq!(
        super::classic_support::read_assignment(&r.assignment),
        held_by_c1
    );
    ctx.assert_restart_rebuilds_the_groups();

    // The other member heartbeats on as before.
    let id = ctx.send(
        4,
        heartbeat_request(G, &other.member, other.generation, None),
    );
    assert_eq!(ctx.heartbeat_error(id), 0);
}

#[test]
fn a_classic_static_member_replacing_a_consumer_member_keeps_the_group_while_others_remain() {
    // The upgrade-only policy keeps it a consumer group.
    let mut ctx = ctx_with(MigrationPolicy::Upgrade);
    static_consumer_beside_a_classic_member(&mut ctx);
    let mut back = ClassicClient::new(&["orders"], true);
    back.instance = Some("i1".into());
    assert_eq!(ctx.classic_join(&mut back), 0);
    assert!(ctx.cg().members.values().all(|m| m.is_classic()));
    assert_eq!(ctx.cg().static_members["i1"], back.member);

    // So does another consumer-protocol member.
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    static_consumer_beside_a_classic_member(&mut ctx);
    let mut c2 = Client::new("c2", &["orders"]);
    ctx.step(&mut c2);
    let mut back = ClassicClient::new(&["orders"], true);
    back.instance = Some("i1".into());
    assert_eq!(ctx.classic_join(&mut back), 0);
    assert!(ctx.cg().members.contains_key("c2"));
    assert_eq!(ctx.cg().static_members["i1"], back.member);
    ctx.assert_restart_rebuilds_the_groups();
}

// ---- Whole migrations ---------------------------------------------------------------------

#[test]
fn a_classic_group_migrates_member_by_member_to_the_consumer_protocol_and_back() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let mut classic = ctx.stable_classic_group(3, "orders", 6, true);
    let mut consumers: Vec<Client> = Vec::new();
    // Upgrade: each classic member leaves and a consumer-protocol member replaces it.
    for i in 0..3 {
        let leaving = classic.remove(0);
        let id = ctx.send(5, classic_leave(&[(leaving.member.as_str(), None)]));
        assert_eq!(ctx.leave_response(id).error_code, 0);
        if ctx.c.consumer_group(G).is_none() {
            // Still classic: the others rebalance as a classic group (their partitions are
            // what their own leader assigns; here they simply start over).
            let ids: Vec<RequestId> = classic
                .iter()
                .map(|c| ctx.join(&c.join_request()))
                .collect();
            ctx.tick();
            let generation = ctx.join_response(ids[0]).generation_id;
            let leader = ctx.join_response(ids[0]).leader.to_string();
            let mut sync = Sync::new(&leader, generation);
            for (k, c) in classic.iter().enumerate() {
                let mine: Vec<i32> = (0..6)
                    .filter(|p| *p as usize % classic.len() == k)
                    .collect();
                sync = sync.assign(
                    &c.member,
                    &starling_protocol::consumer_protocol::encode_assignment(
                        1,
                        &[("orders".into(), mine)],
                    ),
                );
            }
            let mut sync_ids = Vec::new();
            for c in classic.iter() {
                if c.member != leader {
                    sync_ids.push((
                        c.member.clone(),
                        ctx.sync(&Sync::new(&c.member, generation)),
                    ));
                }
            }
            sync_ids.push((leader.clone(), ctx.sync(&sync)));
            for (member, id) in sync_ids {
                let c = classic.iter_mut().find(|c| c.member == member).unwrap();
                c.owned =
                    super::classic_support::read_assignment(&ctx.sync_response(id).assignment);
                c.generation = generation;
            }
        }
        let mut consumer = Client::new(&format!("c{i}"), &["orders"]);
        let r = ctx.step(&mut consumer);
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        consumers.push(consumer);
        ctx.settle_mixed(&mut classic, &mut consumers, 30);
        ctx.assert_restart_rebuilds_the_groups();
        let owned: usize = classic.iter().map(|c| c.owned.len()).sum::<usize>()
            + consumers
                .iter()
                .map(|c| c.owned.values().map(BTreeSet::len).sum::<usize>())
                .sum::<usize>();
        assert_eq!(owned, 6, "step {i}");
    }
    assert!(ctx.cg().members.values().all(|m| !m.is_classic()));
    assert_eq!(ctx.cg().state(), ConsumerGroupState::Stable);

    // Downgrade: a classic member joins, then the consumer members leave one by one.
    let mut newcomer = ClassicClient::new(&["orders"], true);
    assert_eq!(ctx.classic_join(&mut newcomer), 0);
    classic.push(newcomer);
    ctx.settle_mixed(&mut classic, &mut consumers, 30);
    while let Some(consumer) = consumers.pop() {
        ctx.hb_ok(&Hb::leave(&consumer.member, -1));
        if ctx.c.consumer_group(G).is_some() {
            ctx.settle_mixed(&mut classic, &mut consumers, 30);
        }
        ctx.assert_restart_rebuilds_the_groups();
    }
    assert!(ctx.c.consumer_group(G).is_none());
    assert_eq!(ctx.members(), [classic[0].member.clone()]);
    assert_eq!(
        ctx.classic_heartbeat(&classic[0]),
        code(ResponseError::RebalanceInProgress)
    );
    let _ = tp(&[]);
    let _ = MemberState::Stable;
}

#[test]
fn assignor_user_data_stops_the_upgrade_unless_it_echoes_the_members_own_subscription() {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as Assigned;
    use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
    use kafka_protocol::protocol::Encodable;

    // (subscription user data, assignment user data, upgraded)
    type Case = (Option<&'static [u8]>, Option<&'static [u8]>, bool);
    let cases: [Case; 4] = [
        (Some(b"previous"), Some(b"previous"), true),
        (None, None, true),
        (None, Some(b"assignor state"), false),
        (Some(b"previous"), Some(b"other"), false),
    ];
    for (subscription_data, assignment_data, upgraded) in cases {
        let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
        let mut s = ConsumerProtocolSubscription::default();
        s.topics = vec![sb("orders")];
        s.user_data = subscription_data.map(bytes::Bytes::copy_from_slice);
        let mut metadata = BytesMut::new();
        metadata.put_i16(1);
        s.encode(&mut metadata, 1).unwrap();
        let (member, _) =
            ctx.join_new(Join::new("").protocols(&[("cooperative-sticky", metadata.freeze())]));
        ctx.tick();
        let mut a = ConsumerProtocolAssignment::default();
        let mut t = Assigned::default();
        t.topic = sb("orders").into();
        t.partitions = (0..6).collect();
        a.assigned_partitions = vec![t];
        a.user_data = assignment_data.map(bytes::Bytes::copy_from_slice);
        let mut assignment = BytesMut::new();
        assignment.put_i16(0);
        a.encode(&mut assignment, 0).unwrap();
        ctx.sync(&Sync::new(&member, 1).assign(&member, &assignment));
        let r = ctx.hb(&Hb::join("c1", &["orders"]));
        let expected = if upgraded {
            0
        } else {
            code(ResponseError::GroupIdNotFound)
        };
        assert_eq!(
            r.error_code, expected,
            "{subscription_data:?} {assignment_data:?}"
        );
        assert_eq!(ctx.c.consumer_group(G).is_some(), upgraded);
    }
}

#[test]
fn an_upgrade_in_the_sync_phase_keeps_what_the_members_joingroup_said_they_own() {
    let mut ctx = ctx_with(MigrationPolicy::Bidirectional);
    let mut classic = ctx.stable_classic_group(2, "orders", 6, true);
    // Both rejoin (cooperative: still consuming what they own); the join completes and the
    // group waits for the leader's assignment, having cleared the old one.
    let joins: Vec<RequestId> = classic
        .iter()
        .map(|c| ctx.join(&c.join_request()))
        .collect();
    assert_eq!(ctx.state(), Some(GroupState::CompletingRebalance));
    for (client, id) in classic.iter_mut().zip(joins) {
        client.generation = ctx.join_response(id).generation_id;
    }
    // The follower's SyncGroup waits for the leader's assignment, which never comes.
    let follower = classic
        .iter()
        .find(|c| Some(&c.member) != ctx.leader().as_ref())
        .unwrap();
    let held_sync = ctx.sync(&Sync::new(&follower.member, follower.generation));
    assert!(!ctx.answered(held_sync));
    let mut consumer = Client::new("c1", &["orders"]);
    ctx.step(&mut consumer);
    assert_eq!(
        ctx.sync_response(held_sync).error_code,
        code(ResponseError::RebalanceInProgress)
    );
    for client in &classic {
        assert_eq!(held(&ctx, &client.member), client.owned);
    }
    assert!(consumer.owned.is_empty(), "nothing is free yet");
    ctx.settle_mixed(&mut classic, std::slice::from_mut(&mut consumer), 20);
    let total = classic.iter().map(|c| c.owned.len()).sum::<usize>()
        + consumer.owned.values().map(BTreeSet::len).sum::<usize>();
    assert_eq!(total, 6);
    assert!(!consumer.owned.is_empty());
    ctx.assert_restart_rebuilds_the_groups();
}
