//! LeaveGroup: v0–2 name one member id; v3+ (KIP-345) a batch of members by member id and/or
//! group instance id, each with its own error. Removing members rebalances the group (an
//! empty result completes the join at once: the group becomes Empty with a new generation).
//! Follows Kafka's classicGroupLeaveToClassicGroup.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::ResponseError;

use crate::history::DepartureReason;
use crate::recorder::{self, Departed, Trigger};
use crate::responses::{code, s};
use crate::state::GroupState;
use crate::timers::TimerKey;
use crate::{GroupCoordinator, GroupResponse, RequestId};

/// What one identity in a LeaveGroup did.
enum Left {
    /// A member was removed.
    Member(Departed),
    /// A KIP-394 pending member id was dropped.
    Pending,
}

impl GroupCoordinator {
    pub(crate) fn handle_leave(&mut self, id: RequestId, version: i16, request: LeaveGroupRequest) {
        let group_id = request.group_id.to_string();
        let identities: Vec<(String, Option<String>)> = if version >= 3 {
            request
                .members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        m.group_instance_id.as_ref().map(|i| i.to_string()),
                    )
                })
                .collect()
        } else {
            vec![(request.member_id.to_string(), None)]
        };
        // KIP-800 (v5+): each member may say why it leaves.
        let reasons: Vec<Option<String>> = if version >= 5 {
            request
                .members
                .iter()
                .map(|m| m.reason.as_ref().map(|r| r.to_string()))
                .collect()
        } else {
            Vec::new()
        };
        let mut response = LeaveGroupResponse::default();
        if group_id.is_empty() {
            response.error_code = ResponseError::InvalidGroupId.code();
            return self.respond(id, GroupResponse::Leave(response));
        }

        let mut results = Vec::with_capacity(identities.len());
        if self.consumer_group(&group_id).is_some() {
            results = self.classic_leave_to_consumer_group(&group_id, &identities);
        } else if self.groups.contains_key(&group_id) {
            // The first member removed starts the rebalance; the rest leave with it.
            let mut trigger: Option<Trigger> = None;
            for (i, (member_id, instance_id)) in identities.iter().enumerate() {
                match self.leave_one(&group_id, member_id, instance_id.as_deref()) {
                    Ok(Left::Member(departed)) => {
                        trigger = Some(match trigger {
                            Some(trigger) => trigger.with_left(departed),
                            None => {
                                let reason = reasons.get(i).cloned().flatten();
                                let cause = recorder::leave_cause(reason.as_deref());
                                Trigger::departure(departed, cause, reason)
                            }
                        });
                        results.push(None);
                    }
                    Ok(Left::Pending) => results.push(None),
                    Err(error) => results.push(Some(error)),
                }
            }
            let rebalancing_or_settled = self.groups.get(&group_id).is_some_and(|g| {
                matches!(
                    g.state,
                    GroupState::Stable
                        | GroupState::CompletingRebalance
                        | GroupState::PreparingRebalance
                )
            });
            if let (Some(trigger), true) = (trigger, rebalancing_or_settled) {
                // Settled: rebalance; already rebalancing: the join may now be complete.
                self.rebalance_or_complete_join(&group_id, trigger);
            }
        } else {
            results.resize(identities.len(), Some(ResponseError::UnknownMemberId));
        }

        if version >= 3 {
            response.members = identities
                .into_iter()
                .zip(results)
                .map(|((member_id, instance_id), error)| {
                    let mut member = MemberResponse::default();
                    member.member_id = s(&member_id);
                    member.group_instance_id = instance_id.map(|i| s(&i));
                    member.error_code = code(error);
                    member
                })
                .collect();
        } else {
            response.error_code = code(results.first().copied().flatten());
        }
        self.respond(id, GroupResponse::Leave(response));
    }

    fn leave_one(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<Left, ResponseError> {
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        let target = if member_id.is_empty() {
            // Administrative removal by group instance id alone.
            instance_id
                .and_then(|i| group.static_members.get(i))
                .cloned()
                .ok_or(ResponseError::UnknownMemberId)?
        } else if group.pending_join.remove(member_id) {
            self.timers.cancel(&TimerKey::Pending {
                group: group_id.to_string(),
                member: member_id.to_string(),
            });
            return Ok(Left::Pending);
        } else {
            group.validate_member(member_id, instance_id)?;
            member_id.to_string()
        };
        self.depart(group_id, &target, DepartureReason::Left)
            .map(Left::Member)
            .ok_or(ResponseError::UnknownMemberId)
    }
}
