//! Applying consumer-group records: the one path that changes a consumer group's durable
//! state, at start-up and live. Records come back from the store by key, not in the order they
//! were written, so each one stands on its own: a member's assignment may arrive before its
//! subscription, a target before the group.

use crate::group::Group;
use crate::timers::TimerKey;
use crate::{GroupCoordinator, Record};

use super::{ConsumerGroup, ConsumerMember};
use starling_protocol::consumer_protocol::CONSUMER_PROTOCOL_TYPE;

impl GroupCoordinator {
    /// Applies a `Consumer*` record; `false` for any other kind.
    pub(crate) fn apply_consumer(&mut self, record: &Record) -> bool {
        match record {
            Record::ConsumerGroup {
                group_id,
                value: Some(value),
            } => {
                let group = self.ensure_consumer_group(group_id);
                group.epoch = value.epoch;
                group.metadata_hash = value.metadata_hash;
            }
            Record::ConsumerGroup {
                group_id,
                value: None,
            } => self.remove_consumer_group(group_id),
            Record::ConsumerMember {
                group_id,
                member_id,
                value: Some(value),
            } => {
                let group = self.ensure_consumer_group(group_id);
                let member = group.members.entry(member_id.clone()).or_default();
                if let Some(old) = member.subscription.instance_id.take() {
                    if group.static_members.get(&old) == Some(member_id) {
                        group.static_members.remove(&old);
                    }
                }
                member.subscription = value.clone();
                if let Some(instance) = &value.instance_id {
                    group
                        .static_members
                        .insert(instance.clone(), member_id.clone());
                }
            }
            Record::ConsumerMember {
                group_id,
                member_id,
                value: None,
            } => {
                if let Some(group) = self.consumer_group_mut(group_id) {
                    if let Some(member) = group.members.remove(member_id) {
                        release_holdings(group, member_id, &member);
                        if let Some(instance) = &member.subscription.instance_id {
                            if group.static_members.get(instance) == Some(member_id) {
                                group.static_members.remove(instance);
                            }
                        }
                    }
                    group.target.remove(member_id);
                }
            }
            Record::ConsumerTargetEpoch { group_id, value } => {
                let group = self.ensure_consumer_group(group_id);
                group.assignment_epoch = value.unwrap_or(0);
            }
            Record::ConsumerTarget {
                group_id,
                member_id,
                value,
            } => {
                let group = self.ensure_consumer_group(group_id);
                match value {
                    Some(partitions) => {
                        group.target.insert(member_id.clone(), partitions.clone());
                    }
                    None => {
                        group.target.remove(member_id);
                    }
                }
            }
            Record::ConsumerAssignment {
                group_id,
                member_id,
                value,
            } => {
                let group = self.ensure_consumer_group(group_id);
                let member = group.members.entry(member_id.clone()).or_default();
                let old =
                    std::mem::replace(&mut member.assignment, value.clone().unwrap_or_default());
                let new = member.assignment.clone();
                for key in old.held() {
                    if group.holders.get(&key) == Some(member_id) {
                        group.holders.remove(&key);
                    }
                }
                for key in new.held() {
                    group.holders.insert(key, member_id.clone());
                }
            }
            _ => return false,
        }
        true
    }

    /// The consumer group `group_id`, created (empty, epoch 0) if missing; a classic group of
    /// that id becomes a consumer group.
    pub(crate) fn ensure_consumer_group(&mut self, group_id: &str) -> &mut ConsumerGroup {
        let wall = self.wall_now();
        let group = self
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id, wall));
        if group.consumer.is_none() {
            group.protocol_type = CONSUMER_PROTOCOL_TYPE.to_string();
        }
        group.consumer.get_or_insert_with(Box::default)
    }

    pub(crate) fn consumer_group(&self, group_id: &str) -> Option<&ConsumerGroup> {
        self.groups.get(group_id)?.consumer.as_deref()
    }

    pub(crate) fn consumer_group_mut(&mut self, group_id: &str) -> Option<&mut ConsumerGroup> {
        self.groups.get_mut(group_id)?.consumer.as_deref_mut()
    }

    /// The group stops being a consumer group; with no offsets left it goes away entirely.
    fn remove_consumer_group(&mut self, group_id: &str) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        group.consumer = None;
        if group.persisted.is_none() {
            group.protocol_type.clear();
        }
        if group.offsets.is_empty() && group.pending_offsets.is_empty() && group.persisted.is_none()
        {
            self.groups.remove(group_id);
        }
        // A classic part written just before (a downgrade) keeps its timers.
        self.timers
            .cancel_group_where(group_id, TimerKey::is_consumer_group_timer);
    }
}

/// Frees every partition `member` holds.
fn release_holdings(group: &mut ConsumerGroup, member_id: &str, member: &ConsumerMember) {
    for key in member.assignment.held() {
        if group.holders.get(&key).map(String::as_str) == Some(member_id) {
            group.holders.remove(&key);
        }
    }
}

impl GroupCoordinator {
    /// A loaded consumer group goes live: every member's session starts now, and a member with
    /// partitions to revoke gets its rebalance timeout again. `false` for a classic group.
    pub(crate) fn activate_consumer_group(&mut self, group_id: &str) -> bool {
        let Some(group) = self.consumer_group(group_id) else {
            return false;
        };
        let members: Vec<(String, bool, i64)> = group
            .members
            .iter()
            .map(|(id, m)| {
                (
                    id.clone(),
                    // A classic member revokes by rejoining: no rebalance timer of this kind.
                    m.assignment.state == super::MemberState::UnrevokedPartitions
                        && !m.is_classic(),
                    i64::from(m.subscription.rebalance_timeout_ms.max(0)),
                )
            })
            .collect();
        for (member_id, unrevoked, rebalance_timeout) in members {
            self.schedule_consumer_session(group_id, &member_id);
            if unrevoked {
                self.timers.schedule(
                    crate::timers::TimerKey::ConsumerRebalance {
                        group: group_id.to_string(),
                        member: member_id,
                    },
                    self.now() + rebalance_timeout,
                );
            }
        }
        true
    }
}

impl GroupCoordinator {
    /// Deletes an empty consumer group's records (its offsets are the caller's).
    pub(crate) fn delete_consumer_group(&mut self, group_id: &str) {
        self.emit(Record::ConsumerTargetEpoch {
            group_id: group_id.to_string(),
            value: None,
        });
        self.emit(Record::ConsumerGroup {
            group_id: group_id.to_string(),
            value: None,
        });
    }
}
