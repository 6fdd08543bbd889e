//! Applying records — the one path that changes durable state, shared by start-up replay and
//! live operation (handlers emit a record and apply it here) — and bringing loaded groups to
//! life.

use std::collections::BTreeSet;

use crate::group::Group;
use crate::history::RebalanceCause;
use crate::member::Member;
use crate::recorder::Trigger;
use crate::state::GroupState;
use crate::timers::TimerKey;
use crate::{GroupCoordinator, GroupValue, Record};

impl GroupCoordinator {
    /// Applies one record to the in-memory state.
    pub(crate) fn apply(&mut self, record: &Record) {
        if self.apply_consumer(record) {
            self.consumer_members = None;
            return;
        }
        match record {
            Record::Group {
                group_id,
                value: None,
            } if self.consumer_group(group_id).is_some() => {
                // An upgrade to the consumer protocol: only the classic part goes.
                if let Some(group) = self.groups.get_mut(group_id) {
                    group.clear_classic();
                }
                self.timers
                    .cancel_group_where(group_id, |k| !k.is_consumer_group_timer());
            }
            Record::Group {
                group_id,
                value: None,
            } => {
                if let Some(group) = self.groups.remove(group_id) {
                    let holds = group
                        .members
                        .values()
                        .any(|m| m.awaiting_join.is_some() || m.awaiting_sync.is_some());
                    assert!(
                        !(cfg!(any(test, debug_assertions)) && holds),
                        "group {group_id} deleted with held requests"
                    );
                    self.record_deleted(group);
                }
                self.timers.cancel_group(group_id);
            }
            Record::Group {
                group_id,
                value: Some(value),
            } => self.apply_group_value(group_id, value),
            Record::Offset {
                group_id,
                topic,
                partition,
                value: Some(value),
            } => {
                // Offsets committed outside group management create a "simple" group: empty,
                // without a protocol type (Kafka's OffsetMetadataManager.replay does the same).
                let now = value.commit_timestamp;
                let group = self
                    .groups
                    .entry(group_id.clone())
                    .or_insert_with(|| Group::new(group_id, now));
                group
                    .offsets
                    .insert((topic.clone(), *partition), value.clone());
            }
            Record::Offset {
                group_id,
                topic,
                partition,
                value: None,
            } => {
                if let Some(group) = self.groups.get_mut(group_id) {
                    group.offsets.remove(&(topic.clone(), *partition));
                }
            }
            Record::PendingOffset {
                group_id,
                producer_id,
                topic,
                partition,
                value: Some(value),
            } => {
                // Like a committed offset, a pending one keeps (or makes) its group.
                let group = self
                    .groups
                    .entry(group_id.clone())
                    .or_insert_with(|| Group::new(group_id, value.commit_timestamp));
                group
                    .pending_offsets
                    .entry(*producer_id)
                    .or_default()
                    .insert((topic.clone(), *partition), value.clone());
            }
            Record::PendingOffset {
                group_id,
                producer_id,
                topic,
                partition,
                value: None,
            } => {
                if let Some(group) = self.groups.get_mut(group_id) {
                    if let Some(pending) = group.pending_offsets.get_mut(producer_id) {
                        pending.remove(&(topic.clone(), *partition));
                        if pending.is_empty() {
                            group.pending_offsets.remove(producer_id);
                        }
                    }
                }
            }
            _ => unreachable!("consumer records are applied by apply_consumer"),
        }
    }

    /// Emits a record: applies it, then queues it for the caller to persist.
    pub(crate) fn emit(&mut self, record: Record) {
        self.observe_consumer_record(&record);
        self.apply(&record);
        self.consumer_record_applied(&record);
        self.out.records.push(record);
    }

    fn apply_group_value(&mut self, group_id: &str, value: &GroupValue) {
        let is_new = !self.groups.contains_key(group_id);
        let group = self
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id, value.state_timestamp));
        group.generation = value.generation;
        group.protocol_type = value.protocol_type.clone();
        group.protocol = value.protocol.clone();
        group.leader = value.leader.clone();
        group.state_timestamp = value.state_timestamp;

        let listed: BTreeSet<&str> = value.members.iter().map(|m| m.member_id.as_str()).collect();
        let dropped: Vec<String> = group
            .members
            .keys()
            .filter(|id| !listed.contains(id.as_str()))
            .cloned()
            .collect();
        for id in &dropped {
            let holds = group
                .members
                .remove(id)
                .is_some_and(|m| m.awaiting_join.is_some() || m.awaiting_sync.is_some());
            assert!(
                !(cfg!(any(test, debug_assertions)) && holds),
                "member {id} of {group_id} dropped by a record while a request is held"
            );
            group.pending_sync.remove(id);
        }
        for member_value in &value.members {
            match group.members.get_mut(&member_value.member_id) {
                Some(member) => member.update_from_value(member_value),
                None => {
                    let seq = group.take_seq();
                    group.members.insert(
                        member_value.member_id.clone(),
                        Member::from_value(member_value, seq),
                    );
                }
            }
        }
        group.static_members = group
            .members
            .values()
            .filter_map(|m| {
                m.instance_id
                    .clone()
                    .map(|instance| (instance, m.id.clone()))
            })
            .collect();
        group.persisted = Some(value.clone());

        for id in dropped {
            self.timers.cancel(&TimerKey::Heartbeat {
                group: group_id.to_string(),
                member: id,
            });
        }
        if is_new && self.is_loaded {
            self.activate_group(group_id);
        }
    }

    /// Makes every replayed group live.
    pub(crate) fn activate_loaded_groups(&mut self) {
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            self.activate_group(&id);
        }
        self.ensure_offsets_expiry_scheduled();
    }

    /// A replayed group goes live: members' sessions start now; a group persisted mid-rebalance
    /// (no member has an assignment) or over the size limit rebalances.
    pub(crate) fn activate_group(&mut self, group_id: &str) {
        if self.activate_consumer_group(group_id) {
            return;
        }
        let now = self.now();
        let max_size = self.config.max_size;
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.members.is_empty() {
            group.state = GroupState::Empty;
            group.previous_state = GroupState::Dead;
            return;
        }
        group.state = GroupState::Stable;
        group.previous_state = GroupState::Dead;
        let sessions: Vec<(String, i32)> = group
            .members
            .values()
            .map(|m| (m.id.clone(), m.session_timeout_ms))
            .collect();
        let mid_rebalance = group.members.values().all(|m| m.assignment.is_empty());
        let oversized = group.members.len() > usize::try_from(max_size).unwrap_or(0);
        for (member, session) in sessions {
            self.timers.schedule(
                TimerKey::Heartbeat {
                    group: group_id.to_string(),
                    member,
                },
                now + i64::from(session),
            );
        }
        if !mid_rebalance {
            self.load_ownership(group_id);
        }
        if mid_rebalance || oversized {
            self.prepare_rebalance(group_id, Trigger::new(RebalanceCause::Loaded));
        }
    }

    pub(crate) fn ensure_offsets_expiry_scheduled(&mut self) {
        if self.timers.deadline(&TimerKey::OffsetsExpiry).is_none() {
            let interval = self.config.offsets_retention_check_interval_ms.max(1);
            self.timers
                .schedule(TimerKey::OffsetsExpiry, self.now() + interval);
        }
    }
}
