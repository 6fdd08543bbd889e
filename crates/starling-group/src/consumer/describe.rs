//! ConsumerGroupDescribe (KIP-848): a consumer group's epochs, assignor and every member with
//! its subscription, current and target assignment (topics by id and name).

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions as DescribedPartitions,
};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
use kafka_protocol::ResponseError;

use super::TopicPartitions;
use crate::responses::s;
use crate::{GroupCoordinator, GroupResponse, RequestId};

/// The member type ConsumerGroupDescribe v1 reports for a member on the consumer protocol.
const CONSUMER_MEMBER_TYPE: i8 = 1;
/// The member type ConsumerGroupDescribe v1 reports for a classic member.
const CLASSIC_MEMBER_TYPE: i8 = 0;

impl GroupCoordinator {
    pub(crate) fn handle_consumer_describe(
        &mut self,
        id: RequestId,
        version: i16,
        request: ConsumerGroupDescribeRequest,
    ) {
        let mut response = ConsumerGroupDescribeResponse::default();
        response.groups = request
            .group_ids
            .iter()
            .map(|group_id| self.describe_consumer_group(group_id.as_str(), version))
            .collect();
        self.respond(id, GroupResponse::ConsumerGroupDescribe(response));
    }

    fn describe_consumer_group(&self, group_id: &str, version: i16) -> DescribedGroup {
        let mut described = DescribedGroup::default();
        described.group_id = s(group_id).into();
        described.authorized_operations = i32::MIN;
        let group = match self.groups.get(group_id) {
            None => {
                described.error_code = ResponseError::GroupIdNotFound.code();
                described.error_message = Some(s(&format!("Group {group_id} not found.")));
                return described;
            }
            Some(group) => match &group.consumer {
                Some(consumer) => consumer,
                None => {
                    described.error_code = ResponseError::GroupIdNotFound.code();
                    described.error_message =
                        Some(s(&format!("Group {group_id} is not a consumer group.")));
                    return described;
                }
            },
        };
        described.group_state = s(group.state().as_str());
        described.group_epoch = group.epoch;
        described.assignment_epoch = group.assignment_epoch;
        described.assignor_name = s(&self.preferred_assignor(group));
        described.members = group
            .members
            .iter()
            .map(|(member_id, member)| {
                let sub = &member.subscription;
                let mut m = Member::default();
                m.member_id = s(member_id);
                m.instance_id = sub.instance_id.as_deref().map(s);
                m.rack_id = sub.rack_id.as_deref().map(s);
                m.member_epoch = member.assignment.member_epoch;
                m.client_id = s(&sub.client_id);
                m.client_host = s(&sub.client_host);
                m.subscribed_topic_names = sub
                    .subscribed_topic_names
                    .iter()
                    .map(|n| s(n).into())
                    .collect();
                m.subscribed_topic_regex = sub.subscribed_topic_regex.as_deref().map(s);
                m.assignment = self.described_assignment(&member.assignment.assigned);
                m.target_assignment = self.described_assignment(
                    group
                        .target
                        .get(member_id)
                        .unwrap_or(&TopicPartitions::new()),
                );
                if version >= 1 {
                    m.member_type = if member.is_classic() {
                        CLASSIC_MEMBER_TYPE
                    } else {
                        CONSUMER_MEMBER_TYPE
                    };
                }
                m
            })
            .collect();
        described
    }

    fn described_assignment(&self, partitions: &TopicPartitions) -> Assignment {
        let mut assignment = Assignment::default();
        assignment.topic_partitions = partitions
            .iter()
            .map(|(topic, set)| {
                let mut t = DescribedPartitions::default();
                t.topic_id = *topic;
                t.topic_name = s(self.topics.get(topic).map_or("", |m| m.name.as_str())).into();
                t.partitions = set.iter().copied().collect();
                t
            })
            .collect();
        assignment
    }
}
