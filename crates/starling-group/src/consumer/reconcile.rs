//! Reconciliation: one step of a member's current assignment toward its target (Kafka's
//! `CurrentAssignmentBuilder`), as a pure function of the member's assignment, its target,
//! what it subscribes to, what its heartbeat says it owns and who else holds partitions.
//!
//! Revoke first, then assign: while the member still reports partitions it must give up, it
//! stays at its epoch in `UNREVOKED_PARTITIONS`; once they are gone it moves to the target's
//! epoch with every target partition nobody else holds, and waits in `UNRELEASED_PARTITIONS`
//! for the rest.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::{ConsumerAssignmentValue, MemberState, PartitionEpochs, TopicPartitions};

/// What a step is computed from, besides the member's current assignment.
pub(crate) struct Step<'a> {
    /// The target assignment's epoch.
    pub target_epoch: i32,
    /// The member's target assignment.
    pub target: &'a TopicPartitions,
    /// The topic ids the member subscribes to now: a topic outside them has an empty target.
    pub subscribed: &'a BTreeSet<Uuid>,
    /// The partitions the member's heartbeat says it owns; `None` when it did not say.
    pub owned: Option<&'a TopicPartitions>,
    /// Whether another member holds a partition (assigned or pending revocation).
    pub held_elsewhere: &'a dyn Fn(Uuid, i32) -> bool,
}

/// The member's next assignment (equal to `current` when it cannot move on yet).
pub(crate) fn next(current: &ConsumerAssignmentValue, step: &Step<'_>) -> ConsumerAssignmentValue {
    match current.state {
        MemberState::Stable if current.member_epoch == step.target_epoch => current.clone(),
        MemberState::UnrevokedPartitions if owns_any(step.owned, &current.pending_revocation) => {
            current.clone()
        }
        _ => compute_next(current, step),
    }
}

/// Whether the member still reports any of `revoked` (not reporting counts as owning).
fn owns_any(owned: Option<&TopicPartitions>, revoked: &TopicPartitions) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    owned.iter().any(|(topic, partitions)| {
        revoked
            .get(topic)
            .is_some_and(|pending| partitions.iter().any(|p| pending.contains(p)))
    })
}

fn compute_next(current: &ConsumerAssignmentValue, step: &Step<'_>) -> ConsumerAssignmentValue {
    let empty = BTreeSet::new();
    let mut topics: BTreeSet<Uuid> = step.target.keys().copied().collect();
    topics.extend(current.assigned.keys().copied());

    let mut assigned = TopicPartitions::new();
    let mut pending_revocation = TopicPartitions::new();
    let mut pending_assignment = TopicPartitions::new();
    let mut unreleased = false;
    for topic in topics {
        let target = if step.subscribed.contains(&topic) {
            step.target.get(&topic).unwrap_or(&empty)
        } else {
            &empty
        };
        let had = current.assigned.get(&topic).unwrap_or(&empty);
        let kept: BTreeSet<i32> = had.intersection(target).copied().collect();
        let revoke: BTreeSet<i32> = had.difference(&kept).copied().collect();
        let mut gain = BTreeSet::new();
        for &partition in target.difference(&kept) {
            if (step.held_elsewhere)(topic, partition) {
                unreleased = true;
            } else {
                gain.insert(partition);
            }
        }
        if !kept.is_empty() {
            assigned.insert(topic, kept);
        }
        if !revoke.is_empty() {
            pending_revocation.insert(topic, revoke);
        }
        if !gain.is_empty() {
            pending_assignment.insert(topic, gain);
        }
    }

    let previous_member_epoch = current.member_epoch;
    if !pending_revocation.is_empty() && owns_any(step.owned, &pending_revocation) {
        // Give up first, at the current epoch.
        let assigned_at = epochs_held(
            current,
            &[&assigned, &pending_revocation],
            current.member_epoch,
        );
        return ConsumerAssignmentValue {
            state: MemberState::UnrevokedPartitions,
            member_epoch: current.member_epoch,
            previous_member_epoch,
            assigned,
            pending_revocation,
            assigned_at,
        };
    }
    for (topic, partitions) in pending_assignment {
        assigned.entry(topic).or_default().extend(partitions);
    }
    let assigned_at = epochs_held(current, &[&assigned], step.target_epoch);
    ConsumerAssignmentValue {
        state: if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        },
        member_epoch: step.target_epoch,
        previous_member_epoch,
        assigned,
        pending_revocation: TopicPartitions::new(),
        assigned_at,
    }
}

/// The assignment epoch of every partition in `held`: the one it had in `current`, or, for a
/// partition `current` does not hold, `gained_at` (the epoch it is assigned in).
fn epochs_held(
    current: &ConsumerAssignmentValue,
    held: &[&TopicPartitions],
    gained_at: i32,
) -> PartitionEpochs {
    let mut out = PartitionEpochs::new();
    for (topic, partitions) in held.iter().copied().flatten() {
        for &partition in partitions {
            let epoch = current
                .assignment_epoch(*topic, partition)
                .unwrap_or(gained_at);
            out.entry(*topic).or_default().insert(partition, epoch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn parts(entries: &[(u128, &[i32])]) -> TopicPartitions {
        entries
            .iter()
            .map(|(topic, ps)| (t(*topic), ps.iter().copied().collect()))
            .collect()
    }

    fn member(
        state: MemberState,
        epoch: i32,
        assigned: TopicPartitions,
    ) -> ConsumerAssignmentValue {
        ConsumerAssignmentValue {
            state,
            member_epoch: epoch,
            previous_member_epoch: epoch - 1,
            assigned,
            pending_revocation: TopicPartitions::new(),
            assigned_at: PartitionEpochs::new(),
        }
    }

    fn step<'a>(
        target: &'a TopicPartitions,
        subscribed: &'a BTreeSet<Uuid>,
        owned: Option<&'a TopicPartitions>,
        held: &'a dyn Fn(Uuid, i32) -> bool,
    ) -> Step<'a> {
        Step {
            target_epoch: 5,
            target,
            subscribed,
            owned,
            held_elsewhere: held,
        }
    }

    fn subscribed(topics: &[u128]) -> BTreeSet<Uuid> {
        topics.iter().map(|n| t(*n)).collect()
    }

    const NOBODY: &dyn Fn(Uuid, i32) -> bool = &|_, _| false;

    #[test]
    fn a_stable_member_at_the_target_epoch_stays_as_it_is() {
        let current = member(MemberState::Stable, 5, parts(&[(1, &[0])]));
        let target = parts(&[(1, &[0, 1])]);
        let subs = subscribed(&[1]);
        assert_eq!(next(&current, &step(&target, &subs, None, NOBODY)), current);
    }

    #[test]
    fn free_partitions_are_assigned_at_once_with_the_target_epoch() {
        let current = member(MemberState::Stable, 4, parts(&[(1, &[0])]));
        let target = parts(&[(1, &[0, 1])]);
        let subs = subscribed(&[1]);
        let next = next(
            &current,
            &step(&target, &subs, Some(&parts(&[(1, &[0])])), NOBODY),
        );
        assert_eq!(next.state, MemberState::Stable);
        assert_eq!((next.member_epoch, next.previous_member_epoch), (5, 4));
        assert_eq!(next.assigned, target);
    }

    #[test]
    fn partitions_to_give_up_are_revoked_first_at_the_current_epoch() {
        let current = member(MemberState::Stable, 4, parts(&[(1, &[0, 1])]));
        let target = parts(&[(1, &[0, 2])]);
        let subs = subscribed(&[1]);
        let owned = parts(&[(1, &[0, 1])]);
        let next = next(&current, &step(&target, &subs, Some(&owned), NOBODY));
        assert_eq!(next.state, MemberState::UnrevokedPartitions);
        assert_eq!(next.member_epoch, 4);
        assert_eq!(next.assigned, parts(&[(1, &[0])]));
        assert_eq!(next.pending_revocation, parts(&[(1, &[1])]));
    }

    #[test]
    fn the_member_stays_unrevoked_while_it_reports_a_revoked_partition() {
        let mut current = member(MemberState::UnrevokedPartitions, 4, parts(&[(1, &[0])]));
        current.pending_revocation = parts(&[(1, &[1])]);
        let target = parts(&[(1, &[0, 2])]);
        let subs = subscribed(&[1]);
        let owned = parts(&[(1, &[0, 1])]);
        assert_eq!(
            next(&current, &step(&target, &subs, Some(&owned), NOBODY)),
            current
        );
        // Not reporting what it owns is not proof of revocation either.
        assert_eq!(next(&current, &step(&target, &subs, None, NOBODY)), current);
    }

    #[test]
    fn once_revoked_the_member_moves_to_the_target_epoch_and_gets_the_rest() {
        let mut current = member(MemberState::UnrevokedPartitions, 4, parts(&[(1, &[0])]));
        current.pending_revocation = parts(&[(1, &[1])]);
        let target = parts(&[(1, &[0, 2])]);
        let subs = subscribed(&[1]);
        let owned = parts(&[(1, &[0])]);
        let next = next(&current, &step(&target, &subs, Some(&owned), NOBODY));
        assert_eq!(next.state, MemberState::Stable);
        assert_eq!(next.member_epoch, 5);
        assert_eq!(next.assigned, target);
        assert!(next.pending_revocation.is_empty());
    }

    #[test]
    fn a_partition_another_member_holds_is_waited_for() {
        let current = member(MemberState::Stable, 4, parts(&[(1, &[0])]));
        let target = parts(&[(1, &[0, 1, 2])]);
        let subs = subscribed(&[1]);
        let held = |topic: Uuid, p: i32| topic == t(1) && p == 2;
        let owned = parts(&[(1, &[0])]);
        let next = next(&current, &step(&target, &subs, Some(&owned), &held));
        assert_eq!(next.state, MemberState::UnreleasedPartitions);
        assert_eq!(next.member_epoch, 5);
        assert_eq!(next.assigned, parts(&[(1, &[0, 1])]));
        // When it is released, the next step hands it over.
        let after = super::next(&next, &step(&target, &subs, Some(&owned), NOBODY));
        assert_eq!(after.state, MemberState::Stable);
        assert_eq!(after.assigned, target);
    }

    #[test]
    fn a_topic_no_longer_subscribed_is_revoked_even_if_the_target_still_names_it() {
        let current = member(MemberState::Stable, 4, parts(&[(1, &[0]), (2, &[0])]));
        let target = parts(&[(1, &[0]), (2, &[0])]);
        let subs = subscribed(&[1]);
        let owned = parts(&[(1, &[0]), (2, &[0])]);
        let next = next(&current, &step(&target, &subs, Some(&owned), NOBODY));
        assert_eq!(next.state, MemberState::UnrevokedPartitions);
        assert_eq!(next.pending_revocation, parts(&[(2, &[0])]));
    }

    #[test]
    fn revoked_partitions_the_member_already_dropped_need_no_wait() {
        let current = member(MemberState::Stable, 4, parts(&[(1, &[0, 1])]));
        let target = parts(&[(1, &[0])]);
        let subs = subscribed(&[1]);
        let owned = parts(&[(1, &[0])]);
        let next = next(&current, &step(&target, &subs, Some(&owned), NOBODY));
        assert_eq!((next.state, next.member_epoch), (MemberState::Stable, 5));
        assert_eq!(next.assigned, target);
    }
}
