//! JoinGroup: validation, new members (KIP-394 MEMBER_ID_REQUIRED for dynamic members on v4+),
//! static members (KIP-345: a known group.instance.id with an empty member id replaces the old
//! member id, without a rebalance when the group is Stable and the selected protocol would not
//! change), and existing members (rejoining with unchanged metadata returns the current
//! generation; the leader's rejoin or changed metadata starts a rebalance). Follows Kafka's
//! GroupMetadataManager.classicGroupJoin* methods.

use bytes::Bytes;
use kafka_protocol::messages::JoinGroupRequest;
use kafka_protocol::ResponseError;

use crate::group::Group;
use crate::history::{DepartureReason, RebalanceCause};
use crate::member::{Held, Member};
use crate::recorder::{self, Departed, Trigger};
use crate::responses::{self, JoinReply};
use crate::state::GroupState;
use crate::timers::TimerKey;
use crate::{ids, ClientInfo, GroupCoordinator, Record, RequestId, NEW_MEMBER_JOIN_TIMEOUT_MS};

/// The parts of a JoinGroup the coordinator uses, at the request's version.
pub(crate) struct JoinOffer {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub client_id: String,
    pub client_host: String,
    /// Why the client (re)joins (KIP-800, v8+), for the rebalance history.
    pub reason: Option<String>,
}

impl JoinOffer {
    pub(crate) fn new(version: i16, client: &ClientInfo, request: &JoinGroupRequest) -> JoinOffer {
        JoinOffer {
            member_id: request.member_id.to_string(),
            instance_id: if version >= 5 {
                request.group_instance_id.as_ref().map(|i| i.to_string())
            } else {
                None
            },
            session_timeout_ms: request.session_timeout_ms,
            // v0 has no rebalance timeout: the session timeout serves as both.
            rebalance_timeout_ms: if version >= 1 {
                request.rebalance_timeout_ms
            } else {
                request.session_timeout_ms
            },
            protocol_type: request.protocol_type.to_string(),
            protocols: request
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect(),
            client_id: client.client_id.clone(),
            client_host: client.client_host.clone(),
            reason: if version >= 8 {
                request.reason.as_ref().map(|r| r.to_string())
            } else {
                None
            },
        }
    }

    fn protocol_names(&self) -> Vec<String> {
        self.protocols
            .iter()
            .map(|(name, _)| name.clone())
            .collect()
    }
}

impl GroupCoordinator {
    pub(crate) fn handle_join(
        &mut self,
        id: RequestId,
        version: i16,
        client: &ClientInfo,
        request: JoinGroupRequest,
    ) {
        let group_id = request.group_id.to_string();
        let offer = JoinOffer::new(version, client, &request);
        let held = Held { id, version };
        let reject = |this: &mut Self, error: ResponseError, member_id: &str| {
            this.respond(id, responses::join_error(version, error, member_id));
        };

        if group_id.is_empty() {
            return reject(self, ResponseError::InvalidGroupId, &offer.member_id);
        }
        if offer.session_timeout_ms < self.config.min_session_timeout_ms
            || offer.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return reject(self, ResponseError::InvalidSessionTimeout, &offer.member_id);
        }
        if let Some(consumer) = self.consumer_group(&group_id) {
            if !consumer.members.is_empty() {
                // A classic member in a consumer-protocol group.
                return self.classic_join_to_consumer_group(&group_id, offer, held);
            }
            // An empty consumer group turns classic, keeping its offsets.
            self.delete_consumer_group(&group_id);
        }
        let created = !self.groups.contains_key(&group_id);
        if created {
            // A known member id cannot join a group that does not exist; an invalid offer does
            // not create a group.
            if !offer.member_id.is_empty() {
                return reject(self, ResponseError::UnknownMemberId, &offer.member_id);
            }
            if offer.protocol_type.is_empty() || offer.protocols.is_empty() {
                return reject(self, ResponseError::InconsistentGroupProtocol, "");
            }
            self.groups
                .insert(group_id.clone(), Group::new(&group_id, self.wall_now()));
        }
        let records_before = self.out.records.len();

        if !self.accept_joining_member(&group_id, &offer.member_id) {
            // Kafka drops the member (or pending member) that cannot fit.
            if let Some(group) = self.groups.get_mut(&group_id) {
                if group.pending_join.remove(&offer.member_id) {
                    let key = TimerKey::Pending {
                        group: group_id.clone(),
                        member: offer.member_id.clone(),
                    };
                    self.timers.cancel(&key);
                }
            }
            let departed = self.depart(&group_id, &offer.member_id, DepartureReason::GroupFull);
            reject(self, ResponseError::GroupMaxSizeReached, "");
            if let Some(departed) = departed {
                self.note_departure(&group_id, departed);
                self.maybe_complete_join_phase(&group_id);
            }
        } else if offer.member_id.is_empty() {
            self.join_new_member(&group_id, offer, held);
        } else {
            self.join_existing_member(&group_id, offer, held);
        }

        // Like Kafka, a group created by a JoinGroup is persisted right away.
        if created && self.out.records.len() == records_before {
            if let Some(group) = self.groups.get(&group_id) {
                let value = group.to_value(group.state_timestamp, |m| m.assignment.clone());
                self.emit(Record::Group {
                    group_id,
                    value: Some(value),
                });
            }
        }
    }

    /// Kafka's acceptJoiningMember: new members up to `group.max.size`.
    fn accept_joining_member(&self, group_id: &str, member_id: &str) -> bool {
        let Some(group) = self.groups.get(group_id) else {
            return false;
        };
        let max = usize::try_from(self.config.max_size).unwrap_or(0);
        match group.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                group
                    .members
                    .get(member_id)
                    .is_some_and(|m| m.awaiting_join.is_some())
                    || group.num_awaiting_join() < max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                group.members.contains_key(member_id) || group.members.len() < max
            }
        }
    }

    fn join_new_member(&mut self, group_id: &str, offer: JoinOffer, held: Held) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        // A static member coming back replaces its old self, whose protocols do not count.
        let replaced = offer
            .instance_id
            .as_ref()
            .and_then(|i| group.static_members.get(i))
            .map(String::as_str);
        if !group.supports_protocols(&offer.protocol_type, &offer.protocol_names(), replaced) {
            self.respond(
                held.id,
                responses::join_error(held.version, ResponseError::InconsistentGroupProtocol, ""),
            );
            return;
        }
        let prefix = offer
            .instance_id
            .clone()
            .unwrap_or_else(|| offer.client_id.clone());
        let new_id = self.generate_member_id(group_id, &prefix);
        if let Some(instance_id) = &offer.instance_id {
            let existing = self
                .groups
                .get(group_id)
                .and_then(|g| g.static_members.get(instance_id).cloned());
            match existing {
                Some(old_id) => self.replace_static_member(group_id, &old_id, &new_id, offer, held),
                None => self.add_member_and_rebalance(group_id, &new_id, offer, held),
            }
        } else if held.version >= 4 {
            // KIP-394: hand out the member id and wait for the member to come back with it.
            if let Some(group) = self.groups.get_mut(group_id) {
                group.pending_join.insert(new_id.clone());
            }
            let key = TimerKey::Pending {
                group: group_id.to_string(),
                member: new_id.clone(),
            };
            self.timers
                .schedule(key, self.now() + i64::from(offer.session_timeout_ms));
            self.respond(
                held.id,
                responses::join_error(held.version, ResponseError::MemberIdRequired, &new_id),
            );
        } else {
            self.add_member_and_rebalance(group_id, &new_id, offer, held);
        }
    }

    fn join_existing_member(&mut self, group_id: &str, offer: JoinOffer, held: Held) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let member_id = offer.member_id.clone();
        let error = |this: &mut Self, error: ResponseError| {
            this.respond(
                held.id,
                responses::join_error(held.version, error, &member_id),
            );
        };
        if !group.supports_protocols(
            &offer.protocol_type,
            &offer.protocol_names(),
            Some(&member_id),
        ) {
            return error(self, ResponseError::InconsistentGroupProtocol);
        }
        if group.pending_join.contains(&member_id) {
            // Pending members are dynamic: a static member never gets MEMBER_ID_REQUIRED.
            if offer.instance_id.is_some() {
                return error(self, ResponseError::UnknownMemberId);
            }
            group.pending_join.remove(&member_id);
            self.timers.cancel(&TimerKey::Pending {
                group: group_id.to_string(),
                member: member_id.clone(),
            });
            return self.add_member_and_rebalance(group_id, &member_id, offer, held);
        }
        if let Err(e) = group.validate_member(&member_id, offer.instance_id.as_deref()) {
            return error(self, e);
        }
        let member = &group.members[&member_id];
        let unchanged = member.matches(&offer.protocols);
        let is_leader = group.is_leader(&member_id);
        let state = group.state;
        // Why this rejoin would start a rebalance (before the member's protocols change).
        let trigger = |group: &Group, offer: &JoinOffer| {
            let cause =
                recorder::rejoin_cause(group, &group.members[&offer.member_id], &offer.protocols);
            Trigger::by(cause, &offer.member_id, offer.reason.clone())
        };
        match state {
            GroupState::PreparingRebalance => {
                // Already rebalancing: the open record keeps its cause.
                let trigger = trigger(group, &offer);
                self.update_member_and_rebalance(group_id, offer, held, trigger)
            }
            GroupState::CompletingRebalance if unchanged => {
                // Probably a lost JoinGroup response: answer with the current generation.
                self.reply_current_generation(group_id, &member_id, held, is_leader);
            }
            GroupState::Stable if unchanged && !is_leader => {
                // A follower without changes gets the current generation and can SyncGroup.
                self.reply_current_generation(group_id, &member_id, held, false);
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                // Changed metadata, or the leader rejoining (it may have seen topic metadata
                // change): rebalance.
                let trigger = trigger(group, &offer);
                self.update_member_and_rebalance(group_id, offer, held, trigger);
            }
            GroupState::Empty | GroupState::Dead => error(self, ResponseError::UnknownMemberId),
        }
    }

    /// Answers a JoinGroup at once with the current generation (with the member list for the
    /// leader when asked).
    fn reply_current_generation(
        &mut self,
        group_id: &str,
        member_id: &str,
        held: Held,
        with_members: bool,
    ) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        let protocol = group.protocol.clone();
        let members = if with_members {
            member_listing(group, protocol.as_deref().unwrap_or_default())
        } else {
            Vec::new()
        };
        let reply = JoinReply {
            member_id,
            generation: group.generation,
            protocol_type: Some(&group.protocol_type),
            protocol_name: protocol.as_deref(),
            leader: group.leader.as_deref().unwrap_or_default(),
            skip_assignment: false,
            members,
        };
        let response = responses::join(held.version, None, reply);
        self.respond(held.id, response);
        self.refresh_session(group_id, member_id);
    }

    fn add_member_and_rebalance(
        &mut self,
        group_id: &str,
        member_id: &str,
        offer: JoinOffer,
        held: Held,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let seq = group.take_seq();
        let reason = offer.reason.clone();
        if group.state == GroupState::PreparingRebalance
            && group.previous_state == GroupState::Empty
        {
            // Members still arriving during the initial delay extend it.
            group.new_member_added = true;
        }
        if group.members.is_empty() {
            group.protocol_type = offer.protocol_type.clone();
        }
        if let Some(instance_id) = &offer.instance_id {
            group
                .static_members
                .insert(instance_id.clone(), member_id.to_string());
        }
        if group.leader.is_none() {
            group.leader = Some(member_id.to_string());
        }
        group.pending_join.remove(member_id);
        let member = Member {
            id: member_id.to_string(),
            instance_id: offer.instance_id,
            client_id: offer.client_id,
            client_host: offer.client_host,
            rebalance_timeout_ms: offer.rebalance_timeout_ms,
            session_timeout_ms: offer.session_timeout_ms,
            protocol_type: offer.protocol_type,
            protocols: offer.protocols,
            assignment: Bytes::new(),
            seq,
            is_new: true,
            awaiting_join: Some(held),
            awaiting_sync: None,
        };
        group.members.insert(member_id.to_string(), member);
        // A new member's JoinGroup may be parked for long; if the client gave up and retried
        // under a new id, this drops the abandoned one (KAFKA-7610).
        self.schedule_session(group_id, member_id, NEW_MEMBER_JOIN_TIMEOUT_MS);
        let trigger =
            Trigger::by(RebalanceCause::MemberJoined, member_id, reason).with_joined(member_id);
        self.rebalance_or_complete_join(group_id, trigger);
    }

    fn update_member_and_rebalance(
        &mut self,
        group_id: &str,
        offer: JoinOffer,
        held: Held,
        trigger: Trigger,
    ) {
        let Some(member) = self
            .groups
            .get_mut(group_id)
            .and_then(|g| g.members.get_mut(&offer.member_id))
        else {
            return;
        };
        let superseded = member.awaiting_join.replace(held);
        member.protocols = offer.protocols;
        member.rebalance_timeout_ms = offer.rebalance_timeout_ms;
        member.session_timeout_ms = offer.session_timeout_ms;
        let is_new = member.is_new;
        if let Some(old) = superseded {
            // KAFKA-20938: a JoinGroup replaced by a newer one from the same member is answered.
            self.respond(
                old.id,
                responses::join_error(old.version, ResponseError::NotCoordinator, &offer.member_id),
            );
        }
        if !is_new {
            self.refresh_session(group_id, &offer.member_id);
        }
        self.rebalance_or_complete_join(group_id, trigger);
    }

    /// KIP-345: a static member rejoins without its member id. The new id takes over the old
    /// member (whose pending requests are fenced); in a Stable group whose selected protocol
    /// would not change there is no rebalance — the member gets the current generation and
    /// its previous assignment through SyncGroup, and the new id is persisted.
    fn replace_static_member(
        &mut self,
        group_id: &str,
        old_id: &str,
        new_id: &str,
        offer: JoinOffer,
        held: Held,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some(mut member) = group.members.remove(old_id) else {
            return;
        };
        let trigger = Trigger::by(
            RebalanceCause::StaticMemberReplaced,
            new_id,
            offer.reason.clone(),
        )
        .with_joined(new_id)
        .with_left(Departed::of(&member, DepartureReason::Replaced));
        group.ownership.rename(old_id, new_id);
        let leader_before = group.leader.clone();
        let fenced_join = member.awaiting_join.take();
        let fenced_sync = member.awaiting_sync.take();
        member.id = new_id.to_string();
        member.is_new = false;
        member.protocols = offer.protocols;
        member.rebalance_timeout_ms = offer.rebalance_timeout_ms;
        member.session_timeout_ms = offer.session_timeout_ms;
        member.awaiting_join = Some(held);
        let session = i64::from(member.session_timeout_ms);
        if let Some(instance_id) = &member.instance_id {
            group
                .static_members
                .insert(instance_id.clone(), new_id.to_string());
        }
        group.members.insert(new_id.to_string(), member);
        if group.pending_sync.remove(old_id) {
            group.pending_sync.insert(new_id.to_string());
        }
        if group.is_leader(old_id) {
            group.leader = Some(new_id.to_string());
        }
        let state = group.state;

        self.timers.cancel(&TimerKey::Heartbeat {
            group: group_id.to_string(),
            member: old_id.to_string(),
        });
        if let Some(old) = fenced_join {
            self.respond(
                old.id,
                responses::join_error(old.version, ResponseError::FencedInstanceId, old_id),
            );
        }
        if let Some(old) = fenced_sync {
            self.respond(
                old.id,
                responses::sync_error(old.version, ResponseError::FencedInstanceId),
            );
        }
        self.schedule_session(group_id, new_id, session);

        match state {
            GroupState::Stable => {
                let Some(group) = self.groups.get(group_id) else {
                    return;
                };
                if group.select_protocol() == group.protocol {
                    let value = group.to_value(group.state_timestamp, |m| m.assignment.clone());
                    self.emit(Record::Group {
                        group_id: group_id.to_string(),
                        value: Some(value),
                    });
                    self.reply_to_replaced_static_member(group_id, new_id, leader_before);
                } else {
                    self.rebalance_or_complete_join(group_id, trigger);
                }
            }
            // The leader may already be computing an assignment for the old member id.
            GroupState::CompletingRebalance => self.prepare_rebalance(group_id, trigger),
            _ => {
                self.note(group_id, trigger);
                self.maybe_complete_join_phase(group_id);
            }
        }
    }

    /// The JoinGroup answer of a static member replaced in a Stable group. From v9 (KIP-814)
    /// a replaced leader learns it leads, with the member list and `skip_assignment`; before
    /// v9 the response names the previous leader id, so the member acts as a follower.
    fn reply_to_replaced_static_member(
        &mut self,
        group_id: &str,
        member_id: &str,
        leader_before: Option<String>,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some(held) = group
            .members
            .get_mut(member_id)
            .and_then(|m| m.awaiting_join.take())
        else {
            return;
        };
        let group = &self.groups[group_id];
        let protocol = group.protocol.clone().unwrap_or_default();
        let (leader, members, skip) = if held.version >= 9 {
            let is_leader = group.is_leader(member_id);
            let members = if is_leader {
                member_listing(group, &protocol)
            } else {
                Vec::new()
            };
            (group.leader.clone().unwrap_or_default(), members, is_leader)
        } else {
            (leader_before.unwrap_or_default(), Vec::new(), false)
        };
        let reply = JoinReply {
            member_id,
            generation: group.generation,
            protocol_type: Some(&group.protocol_type),
            protocol_name: Some(&protocol),
            leader: &leader,
            skip_assignment: skip,
            members,
        };
        let response = responses::join(held.version, None, reply);
        self.respond(held.id, response);
    }

    /// A fresh member id for `group_id`, unknown to its members and pending members.
    fn generate_member_id(&mut self, group_id: &str, prefix: &str) -> String {
        loop {
            self.id_counter += 1;
            let id = ids::member_id(prefix, self.wall_now(), self.id_counter);
            let taken = self
                .groups
                .get(group_id)
                .is_some_and(|g| g.members.contains_key(&id) || g.pending_join.contains(&id));
            if !taken {
                return id;
            }
        }
    }
}

/// Every member with its metadata for `protocol`, in join order (the leader's JoinGroup list).
pub(crate) fn member_listing(
    group: &Group,
    protocol: &str,
) -> Vec<(String, Option<String>, Bytes)> {
    group
        .ordered_members()
        .into_iter()
        .map(|m| {
            (
                m.id.clone(),
                m.instance_id.clone(),
                m.metadata(protocol).cloned().unwrap_or_default(),
            )
        })
        .collect()
}
