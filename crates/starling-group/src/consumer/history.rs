//! The rebalance record of a consumer-protocol group (KIP-848): one [`RebalanceRecord`] per
//! group-epoch bump, with its cause, and how each member reconciled to the new target.
//!
//! The consumer protocol has no join and sync phases: a bump computes a new target assignment
//! and each member moves toward it on its own heartbeats. So a record opens at the bump (its
//! `generation` is the new group epoch, its `protocol` the server-side assignor) and closes
//! Stable once every member holds exactly its target at that epoch, Restarted if another bump
//! comes first, Deleted with the group. Beside the `moved`/`stayed`/`assigned`/`revoked`
//! comparison of who held each partition before the bump with the target, it lists for each
//! moved partition when its previous owner was asked to revoke it, when that owner released
//! it (or left the group holding it) and when its new owner was given it
//! ([`PartitionHandover`]), and for each member its epoch before and when it reconciled
//! ([`MemberReconciliation`]).
//!
//! Everything is read off the records the coordinator emits, as it emits them
//! ([`GroupCoordinator::observe_consumer_record`] sees each one before it is applied,
//! [`GroupCoordinator::consumer_record_applied`] after), plus the reason the code that removes
//! a member gives ([`GroupCoordinator::note_consumer_departure`]). The cause of a bump is what
//! its step did before it: a member joined, left (and why), changed its subscription, or
//! none of these (the subscribed topics changed). Like the classic history it is kept in
//! memory only and starts empty after a restart; replaying stored records records nothing.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::{each_partition, MemberState};
use crate::history::{
    AssignmentChange, DepartureReason, MemberDeparture, MemberReconciliation, PartitionHandover,
    PartitionMove, PartitionOwner, RebalanceCause, RebalanceMember, RebalanceOutcome,
    RebalanceRecord,
};
use crate::{GroupCoordinator, Millis, Record};
use starling_protocol::consumer_protocol::CONSUMER_PROTOCOL_TYPE;

/// What an open consumer-protocol record needs beyond what it shows.
#[derive(Debug, Clone, Default)]
struct Tracking {
    /// Who held each partition just before the bump (members that left in the bump's step
    /// included).
    before: BTreeMap<(Uuid, i32), String>,
    /// Each member's epoch when the record opened.
    epochs_before: BTreeMap<String, i32>,
    /// Moved partitions: previous owner → new owner, with the times.
    handovers: BTreeMap<(Uuid, i32), Handover>,
    /// When each member reached the target.
    reconciled: BTreeMap<String, Millis>,
}

#[derive(Debug, Clone)]
struct Handover {
    from: String,
    to: String,
    revoke_asked_ms: Option<Millis>,
    released_ms: Option<Millis>,
    assigned_ms: Option<Millis>,
}

/// What the current step did to a group before its epoch was bumped.
#[derive(Debug, Clone, Default)]
struct StepNotes {
    /// The group was classic, with members, when this step began changing it.
    upgraded: bool,
    joined: Vec<String>,
    left: Vec<MemberDeparture>,
    subscription_changed: Vec<String>,
    /// Partitions whose holder left the group in this step, and when.
    released: Vec<((Uuid, i32), String, Millis)>,
}

/// The consumer-protocol history's working state, held by the coordinator.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConsumerHistory {
    open: HashMap<String, Tracking>,
    step: HashMap<String, StepNotes>,
    /// Why the next member removal happens (cleared by it).
    departure: Option<DepartureReason>,
}

impl ConsumerHistory {
    /// Drops what is tracked about a group this coordinator no longer holds.
    pub(crate) fn forget_group(&mut self, group_id: &str) {
        self.open.remove(group_id);
        self.step.remove(group_id);
    }
}

impl GroupCoordinator {
    /// The next member removal happens for `reason` (a leave is [`DepartureReason::Left`]
    /// without saying so).
    pub(crate) fn note_consumer_departure(&mut self, reason: DepartureReason) {
        self.consumer_history.departure = Some(reason);
    }

    /// Sees a record the coordinator is about to apply (live operation only).
    pub(crate) fn observe_consumer_record(&mut self, record: &Record) {
        let now = self.wall_now();
        if let Some(group_id) = consumer_group_of(record) {
            let is_running_classic = self
                .groups
                .get(group_id)
                .is_some_and(|g| g.consumer.is_none() && !g.members.is_empty());
            if is_running_classic {
                let notes = self
                    .consumer_history
                    .step
                    .entry(group_id.to_string())
                    .or_default();
                notes.upgraded = true;
            }
        }
        match record {
            Record::ConsumerMember {
                group_id,
                member_id,
                value,
            } => {
                let existing = self
                    .consumer_group(group_id)
                    .and_then(|g| g.members.get(member_id))
                    .map(|m| m.subscription.clone());
                let notes = self
                    .consumer_history
                    .step
                    .entry(group_id.clone())
                    .or_default();
                match (existing, value) {
                    // A classic member carried over by an upgrade did not join.
                    (None, Some(new)) if notes.upgraded && new.classic.is_some() => {}
                    (None, Some(_)) => notes.joined.push(member_id.clone()),
                    (Some(old), Some(new)) => {
                        let changed = old.subscribed_topic_names != new.subscribed_topic_names
                            || old.subscribed_topic_regex != new.subscribed_topic_regex
                            || old.server_assignor != new.server_assignor;
                        if changed {
                            notes.subscription_changed.push(member_id.clone());
                        }
                    }
                    (Some(old), None) => {
                        let reason = self
                            .consumer_history
                            .departure
                            .take()
                            .unwrap_or(DepartureReason::Left);
                        notes.left.push(MemberDeparture {
                            member_id: member_id.clone(),
                            group_instance_id: old.instance_id,
                            reason,
                        })
                    }
                    (None, None) => {}
                }
            }
            Record::ConsumerAssignment {
                group_id,
                member_id,
                value,
            } => {
                let Some(current) = self
                    .consumer_group(group_id)
                    .and_then(|g| g.members.get(member_id))
                    .map(|m| m.assignment.clone())
                else {
                    return;
                };
                let Some(next) = value else {
                    let notes = self
                        .consumer_history
                        .step
                        .entry(group_id.clone())
                        .or_default();
                    for key in current.held() {
                        notes.released.push((key, member_id.clone(), now));
                    }
                    // Released while a record is open: that record's hand-over goes on.
                    if let Some(tracking) = self.consumer_history.open.get_mut(group_id) {
                        for (key, handover) in tracking.handovers.iter_mut() {
                            if current.holds(key.0, key.1)
                                && handover.from == *member_id
                                && handover.released_ms.is_none()
                            {
                                handover.released_ms = Some(now);
                            }
                        }
                    }
                    return;
                };
                let Some(tracking) = self.consumer_history.open.get_mut(group_id) else {
                    return;
                };
                let holds = |a: &super::ConsumerAssignmentValue, key: &(Uuid, i32)| {
                    let has = |m: &super::TopicPartitions| {
                        m.get(&key.0).is_some_and(|s| s.contains(&key.1))
                    };
                    (has(&a.assigned), has(&a.pending_revocation))
                };
                for (key, handover) in tracking.handovers.iter_mut() {
                    let (was_assigned, was_pending) = holds(&current, key);
                    let (is_assigned, is_pending) = holds(next, key);
                    if handover.from == *member_id {
                        if is_pending && !was_pending && handover.revoke_asked_ms.is_none() {
                            handover.revoke_asked_ms = Some(now);
                        }
                        if (was_assigned || was_pending)
                            && !is_assigned
                            && !is_pending
                            && handover.released_ms.is_none()
                        {
                            if handover.revoke_asked_ms.is_none() {
                                // Given up at once (asked and released in one response).
                                handover.revoke_asked_ms = Some(now);
                            }
                            handover.released_ms = Some(now);
                        }
                    }
                    if handover.to == *member_id
                        && is_assigned
                        && !was_assigned
                        && handover.assigned_ms.is_none()
                    {
                        handover.assigned_ms = Some(now);
                    }
                }
            }
            Record::ConsumerTarget {
                group_id,
                member_id,
                value: Some(target),
            } => {
                let Some(tracking) = self.consumer_history.open.get_mut(group_id) else {
                    return;
                };
                for key in each_partition(target) {
                    match tracking.before.get(&key) {
                        Some(from) if from != member_id => {
                            let from = from.clone();
                            let handover = tracking.handovers.entry(key).or_insert(Handover {
                                from,
                                to: member_id.clone(),
                                revoke_asked_ms: None,
                                released_ms: None,
                                assigned_ms: None,
                            });
                            handover.to = member_id.clone();
                        }
                        _ => {
                            tracking.handovers.remove(&key);
                        }
                    }
                }
            }
            Record::ConsumerGroup {
                group_id,
                value: Some(value),
            } => {
                let epoch = self.consumer_group(group_id).map_or(0, |g| g.epoch);
                // An upgrade first sets the epoch to the classic generation: that is the
                // conversion, not a bump (the bump for the joining member follows).
                let converting = epoch == 0
                    && self
                        .consumer_history
                        .step
                        .get(group_id)
                        .is_some_and(|n| n.upgraded);
                if value.epoch > epoch && !converting {
                    self.open_consumer_record(group_id, value.epoch);
                }
            }
            Record::ConsumerGroup {
                group_id,
                value: None,
            } => {
                self.consumer_history.open.remove(group_id);
                self.consumer_history.step.remove(group_id);
                self.close_record(group_id, RebalanceOutcome::Deleted);
            }
            _ => {}
        }
    }

    /// After a record is applied: an open record closes once every member holds its target.
    pub(crate) fn consumer_record_applied(&mut self, record: &Record) {
        let group_id = match record {
            Record::ConsumerMember { group_id, .. }
            | Record::ConsumerAssignment { group_id, .. }
            | Record::ConsumerTargetEpoch { group_id, .. }
            | Record::ConsumerGroup {
                group_id,
                value: Some(_),
            } => group_id,
            _ => return,
        };
        let now = self.wall_now();
        let Some(tracking) = self.consumer_history.open.get_mut(group_id) else {
            return;
        };
        let Some(group) = super::consumer_in(&self.groups, group_id) else {
            return;
        };
        if group.members.is_empty() {
            self.consumer_history.open.remove(group_id);
            self.close_record(group_id, RebalanceOutcome::Empty);
            return;
        }
        let generation = self.groups[group_id]
            .history
            .back()
            .map_or(group.epoch, |r| r.generation);
        if group.assignment_epoch != generation {
            return;
        }
        for (member_id, member) in &group.members {
            if member.is_reconciled_to(generation) {
                tracking.reconciled.entry(member_id.clone()).or_insert(now);
            }
        }
        let done = group
            .members
            .values()
            .all(|m| m.is_reconciled_to(generation) && m.assignment.state == MemberState::Stable);
        if done {
            self.close_consumer_record(group_id);
        }
    }

    /// The step is over: membership changes it made without bumping the epoch go into the
    /// open record of their group, if any.
    pub(crate) fn end_consumer_step(&mut self) {
        self.consumer_history.departure = None;
        for (group_id, notes) in std::mem::take(&mut self.consumer_history.step) {
            let Some(group) = self.groups.get_mut(&group_id) else {
                continue;
            };
            if group.consumer.is_none() {
                continue;
            }
            let Some(record) = group.open_record() else {
                continue;
            };
            record.joined.extend(notes.joined);
            record.left.extend(notes.left);
        }
    }

    /// A group-epoch bump to `epoch`: the open record (if any) closes as Restarted and a new
    /// one opens, its cause read from what this step did before.
    fn open_consumer_record(&mut self, group_id: &str, epoch: i32) {
        self.consumer_history.open.remove(group_id);
        self.close_record(group_id, RebalanceOutcome::Restarted);
        let now = self.wall_now();
        let bound = self.config.rebalance_history;
        let notes = self
            .consumer_history
            .step
            .remove(group_id)
            .unwrap_or_default();
        let Some(group) = super::consumer_in(&self.groups, group_id) else {
            // The group's first member: it joined an empty group.
            self.consumer_history
                .step
                .insert(group_id.to_string(), notes);
            return;
        };
        let protocol = Some(self.preferred_assignor(group));
        let (cause, trigger_member) = if notes.upgraded {
            (
                RebalanceCause::ProtocolUpgraded,
                notes.joined.first().cloned(),
            )
        } else if let Some(joined) = notes.joined.first() {
            (RebalanceCause::MemberJoined, Some(joined.clone()))
        } else if let Some(left) = notes.left.first() {
            let cause = match left.reason {
                DepartureReason::SessionExpired => RebalanceCause::SessionExpired,
                DepartureReason::NotRevoked => RebalanceCause::RebalanceTimeout,
                DepartureReason::Replaced => RebalanceCause::StaticMemberReplaced,
                _ => RebalanceCause::MemberLeft,
            };
            (cause, Some(left.member_id.clone()))
        } else if let Some(changed) = notes.subscription_changed.first() {
            (RebalanceCause::SubscriptionChanged, Some(changed.clone()))
        } else {
            (RebalanceCause::MetadataChanged, None)
        };
        let mut before: BTreeMap<(Uuid, i32), String> = group
            .holders
            .iter()
            .map(|(key, member)| (*key, member.clone()))
            .collect();
        let mut handovers = BTreeMap::new();
        for (key, member, at) in &notes.released {
            before.entry(*key).or_insert_with(|| member.clone());
            // A partition its holder took away when it left: released already.
            handovers.insert(
                *key,
                Handover {
                    from: member.clone(),
                    to: String::new(),
                    revoke_asked_ms: None,
                    released_ms: Some(*at),
                    assigned_ms: None,
                },
            );
        }
        let epochs_before = group
            .members
            .iter()
            .filter(|(id, _)| !notes.joined.contains(id))
            .map(|(id, m)| (id.clone(), m.assignment.member_epoch))
            .collect();
        let mut members_before: Vec<String> = group
            .members
            .keys()
            .filter(|id| !notes.joined.contains(id))
            .cloned()
            .collect();
        members_before.extend(notes.left.iter().map(|d| d.member_id.clone()));
        members_before.sort();
        self.consumer_history.open.insert(
            group_id.to_string(),
            Tracking {
                before,
                epochs_before,
                handovers,
                reconciled: BTreeMap::new(),
            },
        );
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        group.history.push_back(RebalanceRecord {
            group_id: group_id.to_string(),
            generation: epoch,
            cause,
            trigger_member,
            client_reason: None,
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
            protocol,
            started_ms: now,
            join_completed_ms: None,
            ended_ms: None,
            outcome: RebalanceOutcome::InProgress,
            members_before,
            members: Vec::new(),
            joined: notes.joined,
            left: notes.left,
            assignment: None,
            handovers: Vec::new(),
            consumer_protocol: true,
            reconciliation: Vec::new(),
        });
        crate::recorder::trim(&mut group.history, bound);
    }

    /// Every member holds its target: the record closes Stable with what moved and when.
    fn close_consumer_record(&mut self, group_id: &str) {
        let Some(tracking) = self.consumer_history.open.remove(group_id) else {
            return;
        };
        let Some(group) = super::consumer_in(&self.groups, group_id) else {
            return;
        };
        let name = |topic: &Uuid| {
            self.topics
                .by_id()
                .get(topic)
                .map_or_else(|| topic.to_string(), |t| t.name.clone())
        };
        let mut change = AssignmentChange::default();
        let mut targeted = std::collections::BTreeSet::new();
        for (member_id, target) in &group.target {
            for key in each_partition(target) {
                targeted.insert(key);
                let owner = PartitionOwner {
                    topic: name(&key.0),
                    partition: key.1,
                    member_id: member_id.clone(),
                };
                match tracking.before.get(&key) {
                    Some(from) if from == member_id => change.stayed.push(owner),
                    Some(from) => change.moved.push(PartitionMove {
                        topic: owner.topic,
                        partition: key.1,
                        from: from.clone(),
                        to: member_id.clone(),
                    }),
                    None => change.assigned.push(owner),
                }
            }
        }
        for (key, from) in &tracking.before {
            if !targeted.contains(key) {
                change.revoked.push(PartitionOwner {
                    topic: name(&key.0),
                    partition: key.1,
                    member_id: from.clone(),
                });
            }
        }
        change.moved.sort();
        change.stayed.sort();
        change.assigned.sort();
        change.revoked.sort();
        let handovers: Vec<PartitionHandover> = tracking
            .handovers
            .iter()
            .filter(|(_, h)| !h.to.is_empty())
            .map(|(key, h)| PartitionHandover {
                topic: name(&key.0),
                partition: key.1,
                from: h.from.clone(),
                to: h.to.clone(),
                revoke_asked_ms: h.revoke_asked_ms,
                released_ms: h.released_ms,
                assigned_ms: h.assigned_ms,
            })
            .collect();
        let reconciliation: Vec<MemberReconciliation> = group
            .members
            .iter()
            .map(|(id, m)| MemberReconciliation {
                member_id: id.clone(),
                epoch_before: tracking.epochs_before.get(id).copied(),
                epoch: m.assignment.member_epoch,
                reconciled_ms: tracking.reconciled.get(id).copied(),
            })
            .collect();
        let members: Vec<RebalanceMember> = group
            .members
            .iter()
            .map(|(id, m)| RebalanceMember {
                member_id: id.clone(),
                group_instance_id: m.subscription.instance_id.clone(),
                client_id: m.subscription.client_id.clone(),
                client_host: m.subscription.client_host.clone(),
            })
            .collect();
        let Some(record) = self.groups.get_mut(group_id).and_then(|g| g.open_record()) else {
            return;
        };
        record.members = members;
        record.assignment = Some(change);
        record.handovers = handovers;
        record.reconciliation = reconciliation;
        self.close_record(group_id, RebalanceOutcome::Stable);
    }
}

/// The group a consumer-protocol record belongs to (`None` for other records).
fn consumer_group_of(record: &Record) -> Option<&str> {
    match record {
        Record::ConsumerGroup { group_id, .. }
        | Record::ConsumerMember { group_id, .. }
        | Record::ConsumerTargetEpoch { group_id, .. }
        | Record::ConsumerTarget { group_id, .. }
        | Record::ConsumerAssignment { group_id, .. } => Some(group_id),
        _ => None,
    }
}
