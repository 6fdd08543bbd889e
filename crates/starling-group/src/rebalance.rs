//! The rebalance machinery shared by every handler and timer: removing members, starting a
//! rebalance (with the initial delay for an empty group), the join barrier and its completion
//! into the next generation, and the sync barrier's timeout. Follows Kafka's
//! `GroupMetadataManager` (prepareRebalance, completeClassicGroupJoin, expirePendingSync).

use bytes::Bytes;
use kafka_protocol::ResponseError;

use crate::history::{DepartureReason, RebalanceCause};
use crate::join::member_listing;
use crate::member::Member;
use crate::recorder::Trigger;
use crate::responses::{self, JoinReply};
use crate::state::GroupState;
use crate::timers::TimerKey;
use crate::{GroupCoordinator, GroupResponse, Record, RequestId};

impl GroupCoordinator {
    pub(crate) fn respond(&mut self, id: RequestId, response: GroupResponse) {
        self.out.responses.push((id, response));
    }

    /// Starts (or restarts) a member's session: it must be heard from within `timeout_ms`.
    pub(crate) fn schedule_session(&mut self, group_id: &str, member_id: &str, timeout_ms: i64) {
        let key = TimerKey::Heartbeat {
            group: group_id.to_string(),
            member: member_id.to_string(),
        };
        self.timers.schedule(key, self.now() + timeout_ms.max(0));
    }

    /// Restarts a member's session with its own session timeout.
    pub(crate) fn refresh_session(&mut self, group_id: &str, member_id: &str) {
        let timeout = self
            .groups
            .get(group_id)
            .and_then(|g| g.members.get(member_id))
            .map(|m| m.session_timeout_ms);
        if let Some(timeout) = timeout {
            self.schedule_session(group_id, member_id, i64::from(timeout));
        }
    }

    /// Removes a member (no record: the next rebalance step persists the new membership).
    /// Its held JoinGroup/SyncGroup get UNKNOWN_MEMBER_ID so that a live client rejoins.
    pub(crate) fn remove_member(&mut self, group_id: &str, member_id: &str) -> Option<Member> {
        let group = self.groups.get_mut(group_id)?;
        let member = group.members.remove(member_id)?;
        if let Some(instance_id) = &member.instance_id {
            if group.static_members.get(instance_id).map(String::as_str) == Some(member_id) {
                group.static_members.remove(instance_id);
            }
        }
        group.pending_sync.remove(member_id);
        if group.is_leader(member_id) {
            group.leader = group.next_leader_after(member_id);
        }
        self.timers.cancel(&TimerKey::Heartbeat {
            group: group_id.to_string(),
            member: member_id.to_string(),
        });
        if let Some(held) = member.awaiting_join {
            self.respond(
                held.id,
                responses::join_error(held.version, ResponseError::UnknownMemberId, ""),
            );
        }
        if let Some(held) = member.awaiting_sync {
            self.respond(
                held.id,
                responses::sync_error(held.version, ResponseError::UnknownMemberId),
            );
        }
        Some(member)
    }

    /// After members were removed by a timer: rebalance a settled group, or finish a join
    /// barrier that was only waiting for them.
    pub(crate) fn after_members_removed(&mut self, group_id: &str, trigger: Trigger) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.rebalance_or_complete_join(group_id, trigger)
            }
            GroupState::PreparingRebalance => {
                let all_joined = group.all_joined();
                self.note(group_id, trigger);
                if all_joined {
                    self.complete_join(group_id);
                }
            }
            _ => self.note(group_id, trigger),
        }
    }

    /// Kafka's maybePrepareRebalanceOrCompleteJoin. `trigger` says why (for the rebalance
    /// history); during a running rebalance it only adds its members to the open record.
    pub(crate) fn rebalance_or_complete_join(&mut self, group_id: &str, trigger: Trigger) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        if GroupState::PreparingRebalance.can_follow(group.state) {
            self.prepare_rebalance(group_id, trigger);
        } else {
            self.note(group_id, trigger);
            self.maybe_complete_join_phase(group_id);
        }
    }

    /// Moves the group to PreparingRebalance: held syncs are told REBALANCE_IN_PROGRESS, the
    /// sync barrier is dropped, and the join barrier starts — delayed by
    /// `initial_rebalance_delay_ms` if the group was Empty, otherwise completing at once when
    /// everybody has already rejoined. A rebalance record opens with `trigger`'s cause (one
    /// still open closes as Restarted).
    pub(crate) fn prepare_rebalance(&mut self, group_id: &str, trigger: Trigger) {
        if !self.groups.contains_key(group_id) {
            return;
        }
        self.open_record(group_id, trigger);
        let (now, wall) = (self.now(), self.wall_now());
        let initial_delay = i64::from(self.config.initial_rebalance_delay_ms.max(0));
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let mut released = Vec::new();
        if group.state == GroupState::CompletingRebalance {
            for member in group.members.values_mut() {
                if let Some(held) = member.awaiting_sync.take() {
                    released.push((member.id.clone(), held));
                }
            }
        }
        group.pending_sync.clear();
        let initial = group.state == GroupState::Empty;
        let rebalance_timeout = group.rebalance_timeout_ms();
        if initial {
            group.new_member_added = false;
            group.initial_delay = Some((initial_delay, (rebalance_timeout - initial_delay).max(0)));
        }
        group.transition(GroupState::PreparingRebalance, wall);
        let all_joined = group.all_joined();

        self.timers.cancel(&TimerKey::Sync {
            group: group_id.to_string(),
        });
        for (member_id, held) in released {
            self.respond(
                held.id,
                responses::sync_error(held.version, ResponseError::RebalanceInProgress),
            );
            self.refresh_session(group_id, &member_id);
        }
        if initial {
            self.timers.schedule(
                TimerKey::InitialDelay {
                    group: group_id.to_string(),
                },
                now + initial_delay,
            );
        } else if all_joined {
            self.complete_join(group_id);
        } else {
            self.timers.schedule(
                TimerKey::Join {
                    group: group_id.to_string(),
                },
                now + rebalance_timeout,
            );
        }
    }

    /// Completes the join phase if everybody rejoined — but never during the initial delay of
    /// a group that was Empty (Kafka's maybeCompleteJoinPhase).
    pub(crate) fn maybe_complete_join_phase(&mut self, group_id: &str) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        if group.state == GroupState::PreparingRebalance
            && group.previous_state != GroupState::Empty
            && group.all_joined()
        {
            self.complete_join(group_id);
        }
    }

    /// The initial delay ran out: extend it once more if members kept arriving and time is
    /// left (Kafka's InitialDelayedJoin), otherwise complete the join.
    pub(crate) fn on_initial_delay(&mut self, group_id: &str) {
        let configured = i64::from(self.config.initial_rebalance_delay_ms.max(0));
        let now = self.now();
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some((delay, remaining)) = group.initial_delay.take() else {
            return;
        };
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        if group.new_member_added && remaining != 0 {
            group.new_member_added = false;
            let next_delay = configured.min(remaining);
            group.initial_delay = Some((next_delay, (remaining - delay).max(0)));
            self.timers.schedule(
                TimerKey::InitialDelay {
                    group: group_id.to_string(),
                },
                now + next_delay,
            );
        } else {
            self.complete_join(group_id);
        }
    }

    /// Ends the join barrier: dynamic members that did not rejoin are removed (static ones
    /// stay until their session expires, as in Kafka), a leader is chosen among those that
    /// rejoined, the generation is bumped and persisted, and every held JoinGroup is answered
    /// (the leader's answer lists the members). With nobody left the group becomes Empty.
    pub(crate) fn complete_join(&mut self, group_id: &str) {
        self.timers.cancel(&TimerKey::Join {
            group: group_id.to_string(),
        });
        self.timers.cancel(&TimerKey::InitialDelay {
            group: group_id.to_string(),
        });
        let (now, wall) = (self.now(), self.wall_now());
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        group.initial_delay = None;
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let not_rejoined: Vec<String> = group
            .ordered_members()
            .into_iter()
            .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for member_id in not_rejoined {
            if let Some(departed) = self.depart(group_id, &member_id, DepartureReason::NotRejoined)
            {
                self.note_departure(group_id, departed);
            }
        }

        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if !group.members.is_empty() && !self.elect_joined_leader(group_id) {
            // Nobody rejoined (only absent static members are left): wait another round. At
            // least a millisecond: with a rebalance timeout of 0 (or less, as a client may ask)
            // the round would be due at once, and `expire` would fire it again forever.
            let Some(group) = self.groups.get(group_id) else {
                return;
            };
            let deadline = now + group.rebalance_timeout_ms().max(1);
            self.timers.schedule(
                TimerKey::Join {
                    group: group_id.to_string(),
                },
                deadline,
            );
            return;
        }

        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let mut value = group.to_value(wall, |_| Bytes::new());
        value.generation = group.generation + 1;
        if group.members.is_empty() {
            value.protocol = None;
            value.leader = None;
            self.emit(Record::Group {
                group_id: group_id.to_string(),
                value: Some(value),
            });
            if let Some(group) = self.groups.get_mut(group_id) {
                group.transition(GroupState::Empty, wall);
            }
            self.record_join_completed(group_id);
            return;
        }
        let protocol = group.select_protocol().or_else(|| {
            let leader = group.leader.as_ref().and_then(|id| group.members.get(id))?;
            leader.protocols.first().map(|(name, _)| name.clone())
        });
        value.protocol = protocol;
        self.emit(Record::Group {
            group_id: group_id.to_string(),
            value: Some(value),
        });

        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        group.transition(GroupState::CompletingRebalance, wall);
        self.record_join_completed(group_id);
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let protocol = group.protocol.clone().unwrap_or_default();
        let leader = group.leader.clone().unwrap_or_default();
        let listing = member_listing(group, &protocol);
        let mut replies = Vec::new();
        let mut sessions = Vec::new();
        for member_id in group.ordered_member_ids() {
            let Some(member) = group.members.get_mut(&member_id) else {
                continue;
            };
            if let Some(held) = member.awaiting_join.take() {
                replies.push((member_id.clone(), held));
            }
            member.is_new = false;
            sessions.push((member_id.clone(), i64::from(member.session_timeout_ms)));
            group.pending_sync.insert(member_id);
        }
        let protocol_type = group.protocol_type.clone();
        let generation = group.generation;
        let sync_deadline = now + group.rebalance_timeout_ms();
        for (member_id, held) in replies {
            let members = if member_id == leader {
                listing.clone()
            } else {
                Vec::new()
            };
            let reply = JoinReply {
                member_id: &member_id,
                generation,
                protocol_type: Some(&protocol_type),
                protocol_name: Some(&protocol),
                leader: &leader,
                skip_assignment: false,
                members,
            };
            self.respond(held.id, responses::join(held.version, None, reply));
        }
        for (member_id, timeout) in sessions {
            self.schedule_session(group_id, &member_id, timeout);
        }
        self.timers.schedule(
            TimerKey::Sync {
                group: group_id.to_string(),
            },
            sync_deadline,
        );
    }

    /// Keeps the leader if it rejoined, otherwise picks the first member (in join order) that
    /// did. `false` when no member rejoined.
    fn elect_joined_leader(&mut self, group_id: &str) -> bool {
        let Some(group) = self.groups.get_mut(group_id) else {
            return false;
        };
        let leader_rejoined = group
            .leader
            .as_ref()
            .and_then(|id| group.members.get(id))
            .is_some_and(|m| m.awaiting_join.is_some());
        if leader_rejoined {
            return true;
        }
        let first_joined = group
            .ordered_members()
            .into_iter()
            .find(|m| m.awaiting_join.is_some())
            .map(|m| m.id.clone());
        match first_joined {
            Some(id) => {
                group.leader = Some(id);
                true
            }
            None => false,
        }
    }

    /// The sync barrier ran out: members of the generation that never sent SyncGroup are
    /// removed and the group rebalances (Kafka's expirePendingSync).
    pub(crate) fn on_sync_timeout(&mut self, group_id: &str) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        if !matches!(
            group.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) || group.pending_sync.is_empty()
        {
            return;
        }
        let laggards: Vec<String> = group.pending_sync.iter().cloned().collect();
        let mut trigger = Trigger::new(RebalanceCause::RebalanceTimeout);
        for member_id in laggards {
            if let Some(departed) = self.depart(group_id, &member_id, DepartureReason::NotSynced) {
                trigger = trigger.with_left(departed);
            }
        }
        self.prepare_rebalance(group_id, trigger);
    }

    /// A member's session ran out: unless it is parked in a barrier, it is removed.
    pub(crate) fn on_session_expired(&mut self, group_id: &str, member_id: &str) {
        let satisfied = match self
            .groups
            .get(group_id)
            .and_then(|g| g.members.get(member_id))
        {
            Some(member) => member.heartbeat_satisfied(),
            None => return,
        };
        if satisfied {
            return;
        }
        if let Some(departed) = self.depart(group_id, member_id, DepartureReason::SessionExpired) {
            let trigger = Trigger::departure(departed, RebalanceCause::SessionExpired, None);
            self.after_members_removed(group_id, trigger);
        }
    }

    /// A KIP-394 pending member never came back with its member id.
    pub(crate) fn on_pending_expired(&mut self, group_id: &str, member_id: &str) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.pending_join.remove(member_id)
            && group.state == GroupState::PreparingRebalance
            && group.all_joined()
        {
            self.complete_join(group_id);
        }
    }

    /// Runs one fired timer.
    pub(crate) fn fire(&mut self, key: TimerKey) {
        match key {
            TimerKey::Heartbeat { group, member } => self.on_session_expired(&group, &member),
            TimerKey::Join { group } => self.complete_join(&group),
            TimerKey::Sync { group } => self.on_sync_timeout(&group),
            TimerKey::InitialDelay { group } => self.on_initial_delay(&group),
            TimerKey::Pending { group, member } => self.on_pending_expired(&group, &member),
            TimerKey::OffsetsExpiry => {
                self.expire_offsets();
                self.ensure_offsets_expiry_scheduled();
            }
            TimerKey::ConsumerSession { group, member } => {
                self.on_consumer_session_expired(&group, &member)
            }
            TimerKey::ConsumerRebalance { group, member } => {
                self.on_consumer_rebalance_timeout(&group, &member)
            }
            TimerKey::ClassicJoin { group, member } | TimerKey::ClassicSync { group, member } => {
                self.on_classic_member_timeout(&group, &member)
            }
        }
    }
}
