//! The target assignment: computed for the group epoch by the server-side assignor the members
//! prefer, and persisted as the members whose target changed plus the new assignment epoch.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::subscription::subscribed_ids;
use super::{ConsumerGroup, TopicPartitions};
use crate::assignor::{self, GroupSpec, MemberSpec};
use crate::{GroupCoordinator, Record};

/// Why a heartbeat failed: Kafka's error and its message.
pub(crate) type Failure = (ResponseError, String);

impl GroupCoordinator {
    /// Computes and records the target assignment if the group epoch is ahead of it.
    pub(crate) fn update_target_assignment(&mut self, group_id: &str) -> Result<(), Failure> {
        let Some(group) = super::consumer_in(&self.groups, group_id) else {
            return Ok(());
        };
        if group.epoch <= group.assignment_epoch {
            return Ok(());
        }
        let epoch = group.epoch;
        let assignor_name = self.preferred_assignor(group);
        let Some(assignor) = assignor::by_name(&assignor_name) else {
            return Err((
                ResponseError::UnknownServerError,
                format!("the configured assignor {assignor_name} does not exist"),
            ));
        };
        let mut spec = GroupSpec::default();
        for (member_id, member) in &group.members {
            let subscribed = subscribed_ids(&member.subscription, &self.topics, &mut self.regexes);
            spec.members.insert(
                member_id.clone(),
                MemberSpec {
                    instance_id: member.subscription.instance_id.clone(),
                    rack: member.subscription.rack_id.clone(),
                    subscribed,
                    current: group.target.get(member_id).cloned().unwrap_or_default(),
                },
            );
        }
        let computed = assignor.assign(&spec, self.topics.by_id()).map_err(|e| {
            (
                ResponseError::UnknownServerError,
                format!("Failed to compute a new target assignment for epoch {epoch}: {e}"),
            )
        })?;
        let changed: Vec<(String, TopicPartitions)> = computed
            .into_iter()
            .filter(|(member_id, partitions)| {
                group
                    .target
                    .get(member_id)
                    .map_or(!partitions.is_empty(), |t| t != partitions)
            })
            .collect();
        for (member_id, partitions) in changed {
            self.emit(Record::ConsumerTarget {
                group_id: group_id.to_string(),
                member_id,
                value: Some(partitions),
            });
        }
        self.emit(Record::ConsumerTargetEpoch {
            group_id: group_id.to_string(),
            value: Some(epoch),
        });
        Ok(())
    }

    /// The assignor most members ask for (ties: the configured order), else the first
    /// configured one (Kafka's `computePreferredServerAssignor`).
    pub(crate) fn preferred_assignor(&self, group: &ConsumerGroup) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in group.members.values() {
            if let Some(name) = &member.subscription.server_assignor {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let configured = &self.config.consumer_assignors;
        let rank = |name: &str| {
            configured
                .iter()
                .position(|c| c == name)
                .unwrap_or(usize::MAX)
        };
        votes
            .into_iter()
            .max_by(|(a, va), (b, vb)| va.cmp(vb).then(rank(b).cmp(&rank(a))))
            .map(|(name, _)| name.to_string())
            .or_else(|| configured.first().cloned())
            .unwrap_or_else(|| assignor::UNIFORM_ASSIGNOR_NAME.to_string())
    }
}
