//! Small units: the state table, the timer store, member ids, protocol selection.

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::*;
use crate::member::Member;
use crate::timers::{TimerKey, Timers};

#[test]
fn state_names_are_kafkas() {
    let names: Vec<&str> = GroupState::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        vec![
            "Empty",
            "PreparingRebalance",
            "CompletingRebalance",
            "Stable",
            "Dead"
        ]
    );
    assert_eq!(GroupState::Stable.to_string(), "Stable");
}

#[test]
fn the_transition_table_is_kafkas() {
    use GroupState::*;
    let legal: BTreeSet<(usize, usize)> = GroupState::ALL
        .iter()
        .enumerate()
        .flat_map(|(to, s)| {
            s.valid_previous_states()
                .iter()
                .map(move |from| (GroupState::ALL.iter().position(|x| x == from).unwrap(), to))
        })
        .collect();
    let idx = |s: GroupState| GroupState::ALL.iter().position(|x| *x == s).unwrap();
    let expected: BTreeSet<(usize, usize)> = [
        (PreparingRebalance, Empty),
        (Stable, PreparingRebalance),
        (CompletingRebalance, PreparingRebalance),
        (Empty, PreparingRebalance),
        (PreparingRebalance, CompletingRebalance),
        (CompletingRebalance, Stable),
        (Stable, Dead),
        (PreparingRebalance, Dead),
        (CompletingRebalance, Dead),
        (Empty, Dead),
        (Dead, Dead),
    ]
    .into_iter()
    .map(|(from, to)| (idx(from), idx(to)))
    .collect();
    assert_eq!(legal, expected);
    assert!(!Stable.can_follow(Empty));
    assert!(!Empty.can_follow(Stable));
}

#[test]
#[should_panic(expected = "illegal transition")]
fn an_illegal_transition_is_caught_in_tests() {
    let mut group = crate::group::Group::new("g", 0);
    group.transition(GroupState::Stable, 1);
}

#[test]
fn timers_pop_in_deadline_then_insertion_order() {
    let mut timers = Timers::default();
    timers.schedule(TimerKey::Join { group: "b".into() }, 10);
    timers.schedule(TimerKey::Join { group: "a".into() }, 10);
    timers.schedule(TimerKey::OffsetsExpiry, 5);
    assert_eq!(timers.next_deadline(), Some(5));
    assert_eq!(timers.pop_due(4), None);
    assert_eq!(timers.pop_due(10), Some((5, TimerKey::OffsetsExpiry)));
    assert_eq!(
        timers.pop_due(10),
        Some((10, TimerKey::Join { group: "b".into() }))
    );
    assert_eq!(
        timers.pop_due(10),
        Some((10, TimerKey::Join { group: "a".into() }))
    );
    assert_eq!(timers.pop_due(10), None);
}

#[test]
fn cancelling_a_group_cancels_only_its_timers() {
    let mut timers = Timers::default();
    timers.schedule(
        TimerKey::Heartbeat {
            group: "g".into(),
            member: "m".into(),
        },
        1,
    );
    timers.schedule(TimerKey::Sync { group: "g".into() }, 2);
    timers.schedule(TimerKey::Sync { group: "h".into() }, 3);
    timers.schedule(TimerKey::OffsetsExpiry, 4);
    timers.cancel_group("g");
    let keys: Vec<String> = timers.list().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        vec!["sync:h".to_string(), "offsets-expiry".to_string()]
    );
}

#[test]
fn member_ids_are_deterministic_for_a_given_time_and_counter() {
    assert_eq!(
        crate::ids::member_id("c", 1_000, 1),
        crate::ids::member_id("c", 1_000, 1)
    );
    assert_ne!(
        crate::ids::member_id("c", 1_000, 1),
        crate::ids::member_id("c", 1_000, 2)
    );
    assert_ne!(
        crate::ids::member_id("c", 1_000, 1),
        crate::ids::member_id("c", 2_000, 1)
    );
    assert_eq!(
        crate::ids::member_id("c", 0, 1),
        "c-00000000-0000-0000-0000-000000000001"
    );
}

#[test]
fn ids_after_a_restart_do_not_collide_with_loaded_members() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    let c = replayed(
        &ctx.records,
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        },
        ctx.now,
    );
    let mut again = Ctx::around(c, ctx.now);
    let first = again.join(&Join::new(""));
    let new = again.join_response(first).member_id.to_string();
    assert!(!members.contains(&new));
}

fn member(id: &str, protocols: &[&str]) -> Member {
    let value = crate::MemberValue {
        member_id: id.into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "h".into(),
        rebalance_timeout_ms: 1,
        session_timeout_ms: 1,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::new()))
            .collect(),
        assignment: Bytes::new(),
    };
    Member::from_value(&value, 0)
}

#[test]
fn protocol_selection_picks_the_most_voted_common_protocol() {
    let a = member("a", &["x", "y", "z"]);
    let b = member("b", &["y", "x"]);
    let c = member("c", &["y", "z", "x"]);
    assert_eq!(
        crate::protocol_select::select(&[&a, &b, &c], Some("a")).as_deref(),
        Some("y")
    );
    let candidates: Vec<&str> = crate::protocol_select::candidates(&[&a, &b, &c])
        .into_iter()
        .collect();
    assert_eq!(candidates, vec!["x", "y"]);
    assert_eq!(crate::protocol_select::select(&[], None), None);
}

#[test]
fn a_pending_member_refused_for_size_loses_its_pending_id() {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        max_size: 1,
        ..GroupConfig::default()
    });
    // The id was handed out while there was room; then another member took the only place.
    let first = ctx.join(&Join::new(""));
    let pending = ctx.join_response(first).member_id.to_string();
    ctx.single_member_group();
    let late = ctx.join(&Join::new(&pending));
    assert_eq!(
        ctx.join_response(late).error_code,
        code(ResponseError::GroupMaxSizeReached)
    );
    assert!(ctx.c.groups[G].pending_join.is_empty());
    assert_eq!(ctx.timer(&format!("pending:{G}:{pending}")), None);
    assert_eq!(ctx.members().len(), 1);
}
