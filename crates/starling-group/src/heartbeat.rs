//! Heartbeat: keeps a member's session alive and tells it whether to rejoin (Kafka's
//! classicGroupHeartbeat: PreparingRebalance answers REBALANCE_IN_PROGRESS but still counts
//! as a heartbeat; CompletingRebalance and Stable answer NONE).

use kafka_protocol::messages::HeartbeatRequest;
use kafka_protocol::ResponseError;

use crate::responses;
use crate::state::GroupState;
use crate::{GroupCoordinator, RequestId};

impl GroupCoordinator {
    pub(crate) fn handle_heartbeat(
        &mut self,
        id: RequestId,
        version: i16,
        request: HeartbeatRequest,
    ) {
        let result = self.heartbeat(version, &request);
        self.respond(id, responses::heartbeat(result.err()));
    }

    fn heartbeat(&mut self, version: i16, request: &HeartbeatRequest) -> Result<(), ResponseError> {
        let group_id = request.group_id.as_str();
        let member_id = request.member_id.as_str();
        let instance_id = if version >= 3 {
            request.group_instance_id.as_deref()
        } else {
            None
        };
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if self.consumer_group(group_id).is_some() {
            return self.classic_heartbeat_to_consumer_group(version, request);
        }
        let group = self
            .groups
            .get(group_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if group.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        group.validate_member(member_id, instance_id)?;
        if request.generation_id != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => {
                self.refresh_session(group_id, member_id);
                Err(ResponseError::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.refresh_session(group_id, member_id);
                Ok(())
            }
        }
    }
}
