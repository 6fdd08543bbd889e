//! Keeps each group's rebalance history ([`crate::history`]). Whatever starts a rebalance —
//! a JoinGroup, a LeaveGroup, a timer, a static replacement, loading — says why with a
//! [`Trigger`], passed down to `prepare_rebalance`; a trigger that finds a rebalance already
//! running only adds its joined and departed members to the open record. This module opens,
//! updates and closes the records, and hands every closed one to the caller.

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::Bytes;

use crate::assignment::{self, Ownership};
use crate::group::Group;
use crate::history::{
    DepartureReason, MemberDeparture, RebalanceCause, RebalanceMember, RebalanceOutcome,
    RebalanceRecord,
};
use crate::member::Member;
use crate::state::GroupState;
use crate::GroupCoordinator;
use starling_protocol::consumer_protocol::{subscribed_topics, CONSUMER_PROTOCOL_TYPE};

/// Leave reasons (lower case) that say the application stopped polling. The Java client
/// (3.2+, KIP-800) sends "consumer poll timeout has expired."; the others cover clients that
/// name the setting (`max.poll.interval.ms`) or say it in words ("maximum poll interval
/// exceeded", librdkafka's log wording — librdkafka itself sends no leave reason).
const MAX_POLL_REASONS: [&str; 3] = ["poll timeout", "poll interval", "poll.interval"];

/// A member that left, with its join order (to list `members_before` in join order).
#[derive(Debug, Clone)]
pub(crate) struct Departed {
    seq: u64,
    departure: MemberDeparture,
}

impl Departed {
    pub fn of(member: &Member, reason: DepartureReason) -> Departed {
        Departed {
            seq: member.seq,
            departure: MemberDeparture {
                member_id: member.id.clone(),
                group_instance_id: member.instance_id.clone(),
                reason,
            },
        }
    }
}

/// Why a rebalance starts, and the membership change that comes with it.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    pub cause: RebalanceCause,
    /// The member whose request or timer started it.
    pub member: Option<String>,
    /// The client's KIP-800 reason.
    pub reason: Option<String>,
    /// Members the triggering step added (already in the group).
    pub joined: Vec<String>,
    /// Members the triggering step removed (no longer in the group).
    pub left: Vec<Departed>,
}

impl Trigger {
    /// A rebalance nobody in particular started (a timer for the group, loading).
    pub fn new(cause: RebalanceCause) -> Trigger {
        Trigger {
            cause,
            member: None,
            reason: None,
            joined: Vec::new(),
            left: Vec::new(),
        }
    }

    /// A rebalance started by one member's request or timer.
    pub fn by(cause: RebalanceCause, member: &str, reason: Option<String>) -> Trigger {
        Trigger {
            member: Some(member.to_string()),
            reason,
            ..Trigger::new(cause)
        }
    }

    /// A member that departed and so started the rebalance (or joins in on a running one).
    pub fn departure(departed: Departed, cause: RebalanceCause, reason: Option<String>) -> Trigger {
        let member = departed.departure.member_id.clone();
        Trigger::by(cause, &member, reason).with_left(departed)
    }

    pub fn with_joined(mut self, member: &str) -> Trigger {
        self.joined.push(member.to_string());
        self
    }

    pub fn with_left(mut self, departed: Departed) -> Trigger {
        self.left.push(departed);
        self
    }
}

/// The cause of a LeaveGroup-triggered rebalance, from the member's KIP-800 reason.
pub(crate) fn leave_cause(reason: Option<&str>) -> RebalanceCause {
    match reason {
        Some(reason) if is_max_poll_reason(reason) => RebalanceCause::MaxPollExceeded,
        _ => RebalanceCause::MemberLeft,
    }
}

/// Whether a leave reason says the application stopped polling (case-insensitive).
pub(crate) fn is_max_poll_reason(reason: &str) -> bool {
    let reason = reason.to_lowercase();
    MAX_POLL_REASONS
        .iter()
        .any(|needle| reason.contains(needle))
}

/// The cause of the rebalance an existing member starts by rejoining a CompletingRebalance
/// or Stable group with `offered` protocols (the member still has its previous ones).
pub(crate) fn rejoin_cause(
    group: &Group,
    member: &Member,
    offered: &[(String, Bytes)],
) -> RebalanceCause {
    let names = |protocols: &[(String, Bytes)]| -> Vec<String> {
        protocols.iter().map(|(name, _)| name.clone()).collect()
    };
    let topics = |protocols: &[(String, Bytes)]| -> Option<BTreeSet<String>> {
        if group.protocol_type != CONSUMER_PROTOCOL_TYPE {
            return None;
        }
        let selected = group
            .protocol
            .as_deref()
            .and_then(|p| protocols.iter().find(|(name, _)| name == p));
        let (_, metadata) = selected.or(protocols.first())?;
        subscribed_topics(metadata)
    };
    let same_subscription = member.matches(offered)
        || (names(&member.protocols) == names(offered)
            && matches!(
                (topics(&member.protocols), topics(offered)),
                (Some(before), Some(after)) if before == after
            ));
    if !same_subscription {
        RebalanceCause::SubscriptionChanged
    } else if group.state == GroupState::Stable
        && group.ownership.revoked_from(&member.id, group.generation)
    {
        RebalanceCause::CooperativeFollowUp
    } else if group.is_leader(&member.id) {
        RebalanceCause::MetadataChanged
    } else {
        RebalanceCause::MemberRejoined
    }
}

impl Group {
    /// The record of the rebalance in progress, if any (always the last one).
    pub fn open_record(&mut self) -> Option<&mut RebalanceRecord> {
        self.history
            .back_mut()
            .filter(|r| r.outcome == RebalanceOutcome::InProgress)
    }
}

/// Keeps at most `bound` closed records (the oldest go first), then the open one.
pub(crate) fn trim(history: &mut VecDeque<RebalanceRecord>, bound: usize) {
    let open = usize::from(
        history
            .back()
            .is_some_and(|r| r.outcome == RebalanceOutcome::InProgress),
    );
    while history.len() > bound + open {
        history.pop_front();
    }
}

impl GroupCoordinator {
    /// Removes a member, describing its departure.
    pub(crate) fn depart(
        &mut self,
        group_id: &str,
        member_id: &str,
        reason: DepartureReason,
    ) -> Option<Departed> {
        let member = self.remove_member(group_id, member_id)?;
        Some(Departed::of(&member, reason))
    }

    /// A rebalance starts: the open record (if any) closes as Restarted and a new one opens.
    pub(crate) fn open_record(&mut self, group_id: &str, trigger: Trigger) {
        self.close_record(group_id, RebalanceOutcome::Restarted);
        let now = self.wall_now();
        let bound = self.config.rebalance_history;
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let mut before: Vec<(u64, String)> = group
            .members
            .values()
            .filter(|m| !trigger.joined.contains(&m.id))
            .map(|m| (m.seq, m.id.clone()))
            .collect();
        before.extend(
            trigger
                .left
                .iter()
                .map(|d| (d.seq, d.departure.member_id.clone())),
        );
        before.sort();
        group.history.push_back(RebalanceRecord {
            group_id: group_id.to_string(),
            generation: group.generation,
            cause: trigger.cause,
            trigger_member: trigger.member,
            client_reason: trigger.reason,
            protocol_type: group.protocol_type.clone(),
            protocol: None,
            started_ms: now,
            join_completed_ms: None,
            ended_ms: None,
            outcome: RebalanceOutcome::InProgress,
            members_before: before.into_iter().map(|(_, id)| id).collect(),
            members: Vec::new(),
            joined: trigger.joined,
            left: trigger.left.into_iter().map(|d| d.departure).collect(),
            assignment: None,
            handovers: Vec::new(),
            consumer_protocol: false,
            reconciliation: Vec::new(),
        });
        trim(&mut group.history, bound);
    }

    /// A membership change during a running rebalance: recorded in the open record.
    pub(crate) fn note(&mut self, group_id: &str, trigger: Trigger) {
        let Some(record) = self.groups.get_mut(group_id).and_then(|g| g.open_record()) else {
            return;
        };
        record.joined.extend(trigger.joined);
        record
            .left
            .extend(trigger.left.into_iter().map(|d| d.departure));
    }

    /// A member removed during a running rebalance: recorded in the open record.
    pub(crate) fn note_departure(&mut self, group_id: &str, departed: Departed) {
        if let Some(record) = self.groups.get_mut(group_id).and_then(|g| g.open_record()) {
            record.left.push(departed.departure);
        }
    }

    /// The join phase completed (the new generation is applied): the record learns the
    /// generation, protocol and members; a group left Empty closes it.
    pub(crate) fn record_join_completed(&mut self, group_id: &str) {
        let now = self.wall_now();
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let members: Vec<RebalanceMember> = group
            .ordered_members()
            .into_iter()
            .map(|m| RebalanceMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
            })
            .collect();
        let generation = group.generation;
        let protocol = group.protocol.clone();
        let protocol_type = group.protocol_type.clone();
        let empty = group.state == GroupState::Empty;
        let Some(record) = group.open_record() else {
            return;
        };
        record.join_completed_ms = Some(now);
        record.generation = generation;
        record.protocol = protocol;
        record.protocol_type = protocol_type;
        record.members = members;
        if empty {
            // Nobody owns anything any more: the next assignment starts from scratch.
            group.ownership = Ownership::default();
            self.close_record(group_id, RebalanceOutcome::Empty);
        }
    }

    /// The leader's assignment arrived (the group is Stable): the record closes with the
    /// assignment compared to the last known owners, which it then replaces.
    pub(crate) fn record_stable(&mut self, group_id: &str, assignments: &HashMap<String, Bytes>) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let owners = if group.protocol_type == CONSUMER_PROTOCOL_TYPE {
            let empty = Bytes::new();
            assignment::owners(group.ordered_members().into_iter().map(|m| {
                let bytes = assignments.get(&m.id).unwrap_or(&empty);
                (m.id.as_str(), &bytes[..])
            }))
        } else {
            None
        };
        let change = owners.map(|owners| {
            let (change, next) = group.ownership.advance(group.generation, owners);
            group.ownership = next;
            change
        });
        if let Some(record) = group.open_record() {
            record.assignment = change;
            self.close_record(group_id, RebalanceOutcome::Stable);
        }
    }

    /// A replayed group goes live as Stable: its loaded assignment is the comparison base.
    pub(crate) fn load_ownership(&mut self, group_id: &str) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.protocol_type != CONSUMER_PROTOCOL_TYPE {
            return;
        }
        let owners = assignment::owners(
            group
                .ordered_members()
                .into_iter()
                .map(|m| (m.id.as_str(), &m.assignment[..])),
        );
        if let Some(owners) = owners {
            group.ownership = Ownership::of(group.generation, owners);
        }
    }

    /// Closes the open record (if any) now, keeps the history within its bound and hands the
    /// record to the caller.
    pub(crate) fn close_record(&mut self, group_id: &str, outcome: RebalanceOutcome) {
        let now = self.wall_now();
        let bound = self.config.rebalance_history;
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some(record) = group.open_record() else {
            return;
        };
        record.outcome = outcome;
        record.ended_ms = Some(now);
        let closed = record.clone();
        trim(&mut group.history, bound);
        self.out.rebalances.push(closed);
    }

    /// A deleted group's open record closes as Deleted (the history goes with the group).
    pub(crate) fn record_deleted(&mut self, mut group: Group) {
        let now = self.wall_now();
        if let Some(record) = group.open_record() {
            record.outcome = RebalanceOutcome::Deleted;
            record.ended_ms = Some(now);
            let closed = record.clone();
            self.out.rebalances.push(closed);
        }
    }
}
