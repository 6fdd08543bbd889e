//! ConsumerGroupDescribe (KIP-848): a consumer-protocol group as its coordinator sees it —
//! epochs, assignor, and each member's epoch, current and target assignment. DescribeGroups
//! does not describe these groups (Kafka 4 answers it with GROUP_ID_NOT_FOUND).

use std::ops::RangeInclusive;
use std::time::Instant;

use kafka_protocol::messages::consumer_group_describe_response::Assignment;
use kafka_protocol::messages::{ApiKey, ConsumerGroupDescribeRequest, GroupId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::client::{coordinator_retriable, err};
use crate::{Broker, Client, Error, Result, TopicPartition};

/// The ConsumerGroupDescribe versions this client speaks.
const CONSUMER_GROUP_DESCRIBE: RangeInclusive<i16> = 0..=1;

/// A consumer-protocol group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    pub group_id: String,
    pub coordinator: Broker,
    /// `Empty`, `Assigning`, `Reconciling` or `Stable`.
    pub state: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<ConsumerMemberDescription>,
}

/// One member of a consumer-protocol group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    /// `consumer` or `classic` (a classic-protocol member of a group being migrated), as
    /// ConsumerGroupDescribe v1 reports it; `None` before v1.
    pub member_type: Option<&'static str>,
    /// What it owns now.
    pub assigned: Vec<TopicPartition>,
    /// What the broker's assignor gave it (it converges there).
    pub target: Vec<TopicPartition>,
}

impl Client {
    /// Describes a consumer-protocol group; `None` when the group does not exist as one, or
    /// the coordinator does not know ConsumerGroupDescribe.
    pub async fn describe_consumer_group(
        &mut self,
        group: &str,
    ) -> Result<Option<ConsumerGroupDescription>> {
        let deadline = Instant::now() + self.options().request_timeout;
        let mut attempt = 0;
        loop {
            let (coordinator, version) = match self
                .coordinator_call(
                    group,
                    ApiKey::ConsumerGroupDescribe,
                    CONSUMER_GROUP_DESCRIBE,
                )
                .await
            {
                Ok(found) => found,
                Err(Error::UnsupportedApi { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            let mut request = ConsumerGroupDescribeRequest::default();
            request.group_ids = vec![GroupId(StrBytes::from_string(group.to_string()))];
            let conn = self.connection_to(&coordinator.addr()).await?;
            let response = conn.send(version, &request).await?;
            let Some(described) = response
                .groups
                .into_iter()
                .find(|g| g.group_id.0.as_str() == group)
            else {
                return Err(Error::Protocol(format!(
                    "ConsumerGroupDescribe v{version}: no entry for group '{group}'"
                )));
            };
            match err(described.error_code) {
                None => {}
                Some(ResponseError::GroupIdNotFound) => return Ok(None),
                Some(e) if coordinator_retriable(e) && Instant::now() < deadline => {
                    self.coordinator_moved(group, attempt).await;
                    attempt += 1;
                    continue;
                }
                Some(e) => {
                    return Err(Error::kafka(
                        format!("ConsumerGroupDescribe v{version} for group '{group}'"),
                        e,
                    ))
                }
            }
            return Ok(Some(ConsumerGroupDescription {
                group_id: group.to_string(),
                coordinator,
                state: described.group_state.to_string(),
                group_epoch: described.group_epoch,
                assignment_epoch: described.assignment_epoch,
                assignor: described.assignor_name.to_string(),
                members: described
                    .members
                    .into_iter()
                    .map(|m| ConsumerMemberDescription {
                        member_id: m.member_id.to_string(),
                        instance_id: m.instance_id.map(|i| i.to_string()),
                        client_id: m.client_id.to_string(),
                        client_host: m.client_host.to_string(),
                        member_epoch: m.member_epoch,
                        member_type: match m.member_type {
                            0 => Some("classic"),
                            1 => Some("consumer"),
                            _ => None,
                        },
                        assigned: partitions(&m.assignment),
                        target: partitions(&m.target_assignment),
                    })
                    .collect(),
            }));
        }
    }
}

fn partitions(assignment: &Assignment) -> Vec<TopicPartition> {
    assignment
        .topic_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| TopicPartition::new(t.topic_name.0.as_str(), *p))
        })
        .collect()
}
