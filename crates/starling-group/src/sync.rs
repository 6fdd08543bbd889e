//! SyncGroup: followers wait (their responses are held) until the leader's SyncGroup brings
//! the assignment, which is persisted and handed to every waiting member; in a Stable group a
//! member gets its current assignment at once. Follows Kafka's classicGroupSyncToClassicGroup.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::messages::SyncGroupRequest;
use kafka_protocol::ResponseError;

use crate::member::Held;
use crate::responses;
use crate::state::GroupState;
use crate::timers::TimerKey;
use crate::{GroupCoordinator, Record, RequestId};

/// Kafka's isProtocolInconsistent: only a value given on both sides can disagree.
fn inconsistent(requested: Option<&str>, current: Option<&str>) -> bool {
    matches!((requested, current), (Some(r), Some(c)) if r != c)
}

impl GroupCoordinator {
    pub(crate) fn handle_sync(&mut self, id: RequestId, version: i16, request: SyncGroupRequest) {
        let group_id = request.group_id.to_string();
        let member_id = request.member_id.to_string();
        let instance_id = if version >= 3 {
            request.group_instance_id.as_ref().map(|i| i.to_string())
        } else {
            None
        };
        let fail = |this: &mut Self, error: ResponseError| {
            this.respond(id, responses::sync_error(version, error))
        };

        if group_id.is_empty() {
            return fail(self, ResponseError::InvalidGroupId);
        }
        if self.consumer_group(&group_id).is_some() {
            return self.classic_sync_to_consumer_group(id, version, &request);
        }
        let Some(group) = self.groups.get_mut(&group_id) else {
            return fail(self, ResponseError::UnknownMemberId);
        };
        if group.state == GroupState::Empty {
            return fail(self, ResponseError::UnknownMemberId);
        }
        if let Err(error) = group.validate_member(&member_id, instance_id.as_deref()) {
            return fail(self, error);
        }
        if request.generation_id != group.generation {
            return fail(self, ResponseError::IllegalGeneration);
        }
        if version >= 5 {
            let protocol_type =
                (!group.protocol_type.is_empty()).then_some(group.protocol_type.as_str());
            if inconsistent(request.protocol_type.as_deref(), protocol_type)
                || inconsistent(request.protocol_name.as_deref(), group.protocol.as_deref())
            {
                return fail(self, ResponseError::InconsistentGroupProtocol);
            }
        }
        match group.state {
            GroupState::PreparingRebalance => fail(self, ResponseError::RebalanceInProgress),
            GroupState::CompletingRebalance => {
                let Some(member) = group.members.get_mut(&member_id) else {
                    return;
                };
                let superseded = member.awaiting_sync.replace(Held { id, version });
                let is_leader = group.is_leader(&member_id);
                if let Some(old) = superseded {
                    // KAFKA-20938: a SyncGroup replaced by a newer one from the same member.
                    self.respond(
                        old.id,
                        responses::sync_error(old.version, ResponseError::NotCoordinator),
                    );
                }
                self.synced(&group_id, &member_id);
                if is_leader {
                    let assignments: HashMap<String, Bytes> = request
                        .assignments
                        .into_iter()
                        .map(|a| (a.member_id.to_string(), a.assignment))
                        .collect();
                    self.complete_sync(&group_id, assignments);
                }
            }
            GroupState::Stable => {
                let protocol_type = group.protocol_type.clone();
                let protocol = group.protocol.clone().unwrap_or_default();
                let assignment = group
                    .members
                    .get(&member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                self.synced(&group_id, &member_id);
                self.respond(
                    id,
                    responses::sync(version, None, Some((&protocol_type, &protocol)), assignment),
                );
            }
            GroupState::Empty | GroupState::Dead => fail(self, ResponseError::UnknownMemberId),
        }
    }

    /// A member of the current generation sent its SyncGroup: it no longer holds up the sync
    /// barrier, and its session restarts.
    fn synced(&mut self, group_id: &str, member_id: &str) {
        if let Some(group) = self.groups.get_mut(group_id) {
            group.pending_sync.remove(member_id);
            if group.pending_sync.is_empty() {
                self.timers.cancel(&TimerKey::Sync {
                    group: group_id.to_string(),
                });
            }
        }
        self.refresh_session(group_id, member_id);
    }

    /// The leader's assignment arrived: persist it (members it left out get an empty one),
    /// become Stable (closing the rebalance record) and answer every held SyncGroup.
    fn complete_sync(&mut self, group_id: &str, assignments: HashMap<String, Bytes>) {
        let now = self.wall_now();
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        let value = group.to_value(now, |m| assignments.get(&m.id).cloned().unwrap_or_default());
        self.emit(Record::Group {
            group_id: group_id.to_string(),
            value: Some(value),
        });

        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        group.transition(GroupState::Stable, now);
        self.record_stable(group_id, &assignments);
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let protocol_type = group.protocol_type.clone();
        let protocol = group.protocol.clone().unwrap_or_default();
        let mut released = Vec::new();
        for member in group.members.values_mut() {
            if let Some(held) = member.awaiting_sync.take() {
                released.push((member.id.clone(), held, member.assignment.clone()));
            }
        }
        for (member_id, held, assignment) in released {
            let response = responses::sync(
                held.version,
                None,
                Some((&protocol_type, &protocol)),
                assignment,
            );
            self.respond(held.id, response);
            self.refresh_session(group_id, &member_id);
        }
    }
}
