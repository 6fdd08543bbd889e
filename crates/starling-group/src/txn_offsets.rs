//! Transactional offset commits: TxnOffsetCommit stores a producer's offsets as *pending*
//! ([`Record::PendingOffset`]); the end of its transaction ([`GroupRequest::TxnEnd`], which the
//! broker sends where Kafka writes a marker into `__consumer_offsets`) makes them committed
//! offsets on commit and drops them on abort. Until then OffsetFetch with `require_stable`
//! answers UNSTABLE_OFFSET_COMMIT for those partitions.
//!
//! Validation follows Kafka's group coordinator for transactional commits: with no member
//! (TxnOffsetCommit before v3, or `assign()` consumers) a commit needs an empty or missing
//! group; a member's commit (KIP-447) must come from a current member at the group's current
//! generation — for a consumer-protocol member, at exactly its member epoch (no KIP-1251
//! allowance for older epochs in a transaction). That the producer added the group to its
//! transaction (AddOffsetsToTxn) is the transaction coordinator's check, made by the broker
//! before the request gets here.
//!
//! When a transaction commits, a pending offset replaces the committed one unless a plain
//! OffsetCommit of the partition came later (Kafka compares positions in its log; the
//! coordinator compares commit timestamps, a tie going to the transaction).
//!
//! [`GroupRequest::TxnEnd`]: crate::GroupRequest::TxnEnd

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError;

use crate::responses::code;
use crate::state::GroupState;
use crate::{GroupCoordinator, GroupResponse, OffsetValue, Record, RequestId};

impl GroupCoordinator {
    pub(crate) fn handle_txn_offset_commit(
        &mut self,
        id: RequestId,
        version: i16,
        request: TxnOffsetCommitRequest,
    ) {
        let now = self.wall_now();
        let group_id = request.group_id.to_string();
        let producer_id = request.producer_id.0;
        let (member_id, instance_id, generation) = if version >= 3 {
            (
                request.member_id.to_string(),
                request.group_instance_id.as_ref().map(|i| i.to_string()),
                request.generation_id,
            )
        } else {
            (String::new(), None, -1)
        };
        let rejected = self
            .validate_txn_commit(&group_id, &member_id, instance_id.as_deref(), generation)
            .err();
        let mut response = TxnOffsetCommitResponse::default();
        for topic in request.topics {
            let mut topic_response = TxnOffsetCommitResponseTopic::default();
            topic_response.name = topic.name.clone();
            for partition in topic.partitions {
                let leader_epoch = if version >= 2 {
                    partition.committed_leader_epoch
                } else {
                    -1
                };
                let error = self.commit_offset(
                    rejected,
                    (
                        partition.committed_offset,
                        leader_epoch,
                        partition.committed_metadata.as_deref(),
                    ),
                    (now, None),
                    |value| Record::PendingOffset {
                        group_id: group_id.clone(),
                        producer_id,
                        topic: topic.name.to_string(),
                        partition: partition.partition_index,
                        value: Some(value),
                    },
                );
                let mut p = TxnOffsetCommitResponsePartition::default();
                p.partition_index = partition.partition_index;
                p.error_code = code(error);
                topic_response.partitions.push(p);
            }
            response.topics.push(topic_response);
        }
        self.respond(id, GroupResponse::TxnOffsetCommit(response));
    }

    /// Kafka's checks of a transactional offset commit (see the module docs).
    fn validate_txn_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let Some(group) = self.groups.get(group_id) else {
            return if generation < 0 {
                Ok(())
            } else {
                Err(ResponseError::IllegalGeneration)
            };
        };
        if let Some(consumer) = &group.consumer {
            if generation < 0 && member_id.is_empty() && consumer.members.is_empty() {
                return Ok(());
            }
            let member = consumer
                .members
                .get(member_id)
                .ok_or(ResponseError::UnknownMemberId)?;
            let epoch = member.assignment.member_epoch;
            return match generation.cmp(&epoch) {
                std::cmp::Ordering::Equal => Ok(()),
                _ if member.is_classic() => Err(ResponseError::IllegalGeneration),
                std::cmp::Ordering::Greater => Err(ResponseError::FencedMemberEpoch),
                std::cmp::Ordering::Less => Err(ResponseError::StaleMemberEpoch),
            };
        }
        if group.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if !member_id.is_empty() || instance_id.is_some() {
            group.validate_member(member_id, instance_id)?;
        } else if generation < 0 && group.state != GroupState::Empty {
            // Without a member id, commits are only accepted when nobody is in.
            return Err(ResponseError::UnknownMemberId);
        }
        if generation >= 0 && generation != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// The end of `producer_id`'s transaction: its pending offsets in `group_id` become
    /// committed offsets (`commit`) or are dropped. Nothing pending changes nothing, so a
    /// repeated end (after a restart) is harmless.
    pub(crate) fn handle_txn_end(
        &mut self,
        id: RequestId,
        group_id: &str,
        producer_id: i64,
        commit: bool,
    ) {
        let pending: Vec<((String, i32), OffsetValue)> = self
            .groups
            .get(group_id)
            .and_then(|g| g.pending_offsets.get(&producer_id))
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for ((topic, partition), value) in pending {
            if commit {
                let current = self
                    .groups
                    .get(group_id)
                    .and_then(|g| g.offsets.get(&(topic.clone(), partition)));
                if current.is_none_or(|c| c.commit_timestamp <= value.commit_timestamp) {
                    self.emit(Record::Offset {
                        group_id: group_id.to_string(),
                        topic: topic.clone(),
                        partition,
                        value: Some(value),
                    });
                }
            }
            self.emit(Record::PendingOffset {
                group_id: group_id.to_string(),
                producer_id,
                topic,
                partition,
                value: None,
            });
        }
        self.respond(id, GroupResponse::TxnEnd(Ok(())));
    }

    /// Whether a transaction holds an offset of `group_id`'s `topic`-`partition` that it has
    /// not committed or aborted yet.
    pub(crate) fn has_pending_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.groups.get(group_id).is_some_and(|g| {
            g.pending_offsets
                .values()
                .any(|p| p.contains_key(&(topic.to_string(), partition)))
        })
    }
}
