//! The admin views and removal of groups: DescribeGroups (member metadata and protocol only
//! for a Stable group, as Kafka; unknown groups are "Dead", with GROUP_ID_NOT_FOUND from v6),
//! ListGroups (state filter v4+, type filter v5+, both case-insensitive) and DeleteGroups (only
//! Empty groups; their offsets go too).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::ResponseError;

use crate::responses::s;
use crate::state::GroupState;
use crate::{GroupCoordinator, GroupResponse, Record, RequestId};

/// ListGroups' type for a group on the classic protocol.
const CLASSIC_GROUP_TYPE: &str = "classic";
/// ListGroups' type for a group on the KIP-848 consumer protocol.
const CONSUMER_GROUP_TYPE: &str = "consumer";

impl GroupCoordinator {
    pub(crate) fn handle_describe_groups(
        &mut self,
        id: RequestId,
        version: i16,
        request: DescribeGroupsRequest,
    ) {
        let mut response = DescribeGroupsResponse::default();
        for group_id in request.groups {
            let mut described = DescribedGroup::default();
            described.group_id = group_id.clone();
            match self.groups.get(group_id.as_str()) {
                None => {
                    described.group_state = s(GroupState::Dead.name());
                    if version >= 6 {
                        described.error_code = ResponseError::GroupIdNotFound.code();
                        described.error_message =
                            Some(s(&format!("Group {} not found.", group_id.as_str())));
                    }
                }
                Some(group) if group.consumer.is_some() => {
                    // Kafka 4: DescribeGroups describes classic groups only.
                    described.group_state = s(GroupState::Dead.name());
                    if version >= 6 {
                        described.error_code = ResponseError::GroupIdNotFound.code();
                        described.error_message = Some(s(&format!(
                            "Group {} is not a classic group.",
                            group_id.as_str()
                        )));
                    }
                }
                Some(group) => {
                    described.group_state = s(group.state.name());
                    described.protocol_type = s(&group.protocol_type);
                    let protocol = match group.state {
                        GroupState::Stable => group.protocol.clone(),
                        _ => None,
                    };
                    described.protocol_data = s(protocol.as_deref().unwrap_or_default());
                    for member in group.ordered_members() {
                        let mut m = DescribedGroupMember::default();
                        m.member_id = s(&member.id);
                        if version >= 4 {
                            m.group_instance_id = member.instance_id.as_deref().map(s);
                        }
                        m.client_id = s(&member.client_id);
                        m.client_host = s(&member.client_host);
                        if let Some(protocol) = &protocol {
                            m.member_metadata =
                                member.metadata(protocol).cloned().unwrap_or_default();
                        }
                        m.member_assignment = member.assignment.clone();
                        described.members.push(m);
                    }
                }
            }
            response.groups.push(described);
        }
        self.respond(id, GroupResponse::DescribeGroups(response));
    }

    pub(crate) fn handle_list_groups(
        &mut self,
        id: RequestId,
        version: i16,
        request: ListGroupsRequest,
    ) {
        let normalize = |v: &kafka_protocol::protocol::StrBytes| v.trim().to_lowercase();
        let states: Vec<String> = if version >= 4 {
            request.states_filter.iter().map(normalize).collect()
        } else {
            vec![]
        };
        let types: Vec<String> = if version >= 5 {
            request.types_filter.iter().map(normalize).collect()
        } else {
            vec![]
        };
        let mut response = ListGroupsResponse::default();
        for (group_id, group) in &self.groups {
            let (state, group_type) = match &group.consumer {
                Some(consumer) => (consumer.state().as_str(), CONSUMER_GROUP_TYPE),
                None => (group.state.name(), CLASSIC_GROUP_TYPE),
            };
            if !states.is_empty() && !states.contains(&state.to_lowercase()) {
                continue;
            }
            if !types.is_empty() && !types.iter().any(|t| t == group_type) {
                continue;
            }
            let mut listed = ListedGroup::default();
            listed.group_id = s(group_id).into();
            listed.protocol_type = s(&group.protocol_type);
            if version >= 4 {
                listed.group_state = s(state);
            }
            if version >= 5 {
                listed.group_type = s(group_type);
            }
            response.groups.push(listed);
        }
        self.respond(id, GroupResponse::ListGroups(response));
    }

    pub(crate) fn handle_delete_groups(
        &mut self,
        id: RequestId,
        _version: i16,
        request: DeleteGroupsRequest,
    ) {
        let mut response = DeleteGroupsResponse::default();
        for group_id in request.groups_names {
            let name = group_id.to_string();
            let error = match self.groups.get(&name) {
                None => Some(ResponseError::GroupIdNotFound),
                Some(group) if group.consumer.is_some() => group
                    .consumer
                    .as_ref()
                    .is_some_and(|c| !c.members.is_empty())
                    .then_some(ResponseError::NonEmptyGroup),
                Some(group) => match group.state {
                    GroupState::Dead => Some(ResponseError::GroupIdNotFound),
                    GroupState::Empty => None,
                    _ => Some(ResponseError::NonEmptyGroup),
                },
            };
            if error.is_none() {
                self.delete_group(&name);
            }
            let mut result = DeletableGroupResult::default();
            result.group_id = group_id;
            result.error_code = error.map_or(0, |e| e.code());
            response.results.push(result);
        }
        self.respond(id, GroupResponse::DeleteGroups(response));
    }

    /// Deletes a group with all its offsets (transactional ones still pending too): offset
    /// tombstones first, then the group's.
    fn delete_group(&mut self, group_id: &str) {
        let group = self.groups.get(group_id);
        let keys: Vec<(String, i32)> = group
            .map(|g| g.offsets.keys().cloned().collect())
            .unwrap_or_default();
        let pending: Vec<(i64, (String, i32))> = group
            .map(|g| {
                g.pending_offsets
                    .iter()
                    .flat_map(|(pid, p)| p.keys().map(|k| (*pid, k.clone())))
                    .collect()
            })
            .unwrap_or_default();
        for (topic, partition) in keys {
            self.emit(Record::Offset {
                group_id: group_id.to_string(),
                topic,
                partition,
                value: None,
            });
        }
        for (producer_id, (topic, partition)) in pending {
            self.emit(Record::PendingOffset {
                group_id: group_id.to_string(),
                producer_id,
                topic,
                partition,
                value: None,
            });
        }
        if self.consumer_group(group_id).is_some() {
            self.delete_consumer_group(group_id);
        }
        self.emit(Record::Group {
            group_id: group_id.to_string(),
            value: None,
        });
    }
}
