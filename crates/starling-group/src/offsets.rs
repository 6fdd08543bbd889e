//! Committed offsets: OffsetCommit (member commits validated against the generation; simple
//! `assign()` consumers commit with generation -1 to an Empty or new group), OffsetFetch
//! (v1–7 one group, v8+ batched per KIP-709), OffsetDelete (KIP-496) and the periodic expiry.
//! Follows Kafka's OffsetMetadataManager and ClassicGroup.validateOffsetCommit /
//! offsetExpirationCondition.
//!
//! OffsetFetch with `require_stable` (v7+) answers UNSTABLE_OFFSET_COMMIT for a partition a
//! transaction holds a pending offset of ([`crate::txn_offsets`]), as Kafka does.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::responses::{code, s};
use crate::state::GroupState;
use crate::{GroupCoordinator, GroupResponse, Millis, OffsetValue, Record, RequestId};
use starling_protocol::consumer_protocol::CONSUMER_PROTOCOL_TYPE;

/// One fetched partition: (partition, offset, leader epoch, metadata); offset -1 when none.
type FetchedPartition = (i32, i64, i32, String);

impl GroupCoordinator {
    pub(crate) fn handle_offset_commit(
        &mut self,
        id: RequestId,
        version: i16,
        request: OffsetCommitRequest,
    ) {
        let now = self.wall_now();
        let group_id = request.group_id.to_string();
        let member_id = request.member_id.to_string();
        let instance_id = if version >= 7 {
            request.group_instance_id.as_ref().map(|i| i.to_string())
        } else {
            None
        };
        let generation = request.generation_id_or_member_epoch;
        let rejected = self
            .validate_commit(
                version,
                &group_id,
                (&member_id, instance_id.as_deref()),
                generation,
                &request.topics,
            )
            .err();

        if rejected.is_none() {
            // In the classic protocol a commit also keeps the member's session alive.
            let live = self.groups.get(&group_id).is_some_and(|g| {
                matches!(g.state, GroupState::Stable | GroupState::PreparingRebalance)
                    && g.members.contains_key(&member_id)
            });
            if live {
                self.refresh_session(&group_id, &member_id);
            }
        }
        // v2–4 may override the retention; -1 means the broker's.
        let expire_timestamp = (version <= 4 && request.retention_time_ms != -1)
            .then(|| now.saturating_add(request.retention_time_ms));

        let mut response = OffsetCommitResponse::default();
        for topic in request.topics {
            let mut topic_response = OffsetCommitResponseTopic::default();
            topic_response.name = topic.name.clone();
            for partition in topic.partitions {
                let leader_epoch = if version >= 6 {
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
                    (now, expire_timestamp),
                    |value| Record::Offset {
                        group_id: group_id.clone(),
                        topic: topic.name.to_string(),
                        partition: partition.partition_index,
                        value: Some(value),
                    },
                );
                let mut partition_response = OffsetCommitResponsePartition::default();
                partition_response.partition_index = partition.partition_index;
                partition_response.error_code = code(error);
                topic_response.partitions.push(partition_response);
            }
            response.topics.push(topic_response);
        }
        self.respond(id, GroupResponse::OffsetCommit(response));
    }

    /// Stores one partition's offset of a commit (plain or transactional) as the record
    /// `record` makes of it, committed at `now` and expiring at `expire_timestamp`, unless the
    /// commit was `rejected` or its metadata is longer than `offset.metadata.max.bytes`
    /// (OFFSET_METADATA_TOO_LARGE). Returns the partition's error, if any.
    pub(crate) fn commit_offset(
        &mut self,
        rejected: Option<ResponseError>,
        (offset, leader_epoch, metadata): (i64, i32, Option<&str>),
        (now, expire_timestamp): (Millis, Option<Millis>),
        record: impl FnOnce(OffsetValue) -> Record,
    ) -> Option<ResponseError> {
        let metadata = metadata.unwrap_or_default();
        let error = rejected.or_else(|| {
            (metadata.len() > self.config.offset_metadata_max_bytes)
                .then_some(ResponseError::OffsetMetadataTooLarge)
        });
        if error.is_none() {
            self.emit(record(OffsetValue {
                offset,
                leader_epoch,
                metadata: metadata.to_string(),
                commit_timestamp: now,
                expire_timestamp,
            }));
        }
        error
    }

    /// Kafka's validateOffsetCommit (OffsetMetadataManager + ClassicGroup), for a commit by
    /// (member id, instance id) of the partitions in `committed`.
    fn validate_commit(
        &self,
        version: i16,
        group_id: &str,
        (member_id, instance_id): (&str, Option<&str>),
        generation: i32,
        committed: &[OffsetCommitRequestTopic],
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let Some(group) = self.groups.get(group_id) else {
            return if generation < 0 {
                // A simple consumer's commit creates the group (through the offset records).
                Ok(())
            } else if version >= 9 {
                Err(ResponseError::GroupIdNotFound)
            } else {
                Err(ResponseError::IllegalGeneration)
            };
        };
        if let Some(consumer) = &group.consumer {
            return validate_consumer_commit(
                consumer,
                &self.topics,
                (version, member_id, generation),
                committed,
            );
        }
        if group.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            group.validate_member(member_id, instance_id)?;
            if generation != group.generation {
                return Err(ResponseError::IllegalGeneration);
            }
        } else if group.state != GroupState::Empty {
            // Without member id and generation, commits are only accepted when nobody is in.
            return Err(ResponseError::UnknownMemberId);
        }
        if group.state == GroupState::CompletingRebalance {
            // The member knows the new generation but has no assignment yet.
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    pub(crate) fn handle_offset_fetch(
        &mut self,
        id: RequestId,
        version: i16,
        request: OffsetFetchRequest,
    ) {
        let mut response = OffsetFetchResponse::default();
        if version >= 8 {
            for group in &request.groups {
                let wanted = group.topics.as_ref().map(|topics| {
                    topics
                        .iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let mut group_response = OffsetFetchResponseGroup::default();
                group_response.group_id = group.group_id.clone();
                let consumer = self
                    .groups
                    .get(group.group_id.as_str())
                    .and_then(|g| g.consumer.as_deref());
                if let Some(consumer) = consumer {
                    let member_id = group.member_id.as_deref();
                    if let Err(error) =
                        validate_consumer_fetch(consumer, member_id, group.member_epoch)
                    {
                        group_response.error_code = error.code();
                        response.groups.push(group_response);
                        continue;
                    }
                }
                for (topic, partitions) in self.fetch_offsets(&group.group_id, wanted) {
                    let mut topic_response = OffsetFetchResponseTopics::default();
                    topic_response.name = s(&topic).into();
                    for (partition, offset, epoch, metadata) in partitions {
                        let mut p = OffsetFetchResponsePartitions::default();
                        p.partition_index = partition;
                        if request.require_stable
                            && self.has_pending_offset(&group.group_id, &topic, partition)
                        {
                            p.committed_offset = -1;
                            p.committed_leader_epoch = -1;
                            p.metadata = Some(StrBytes::default());
                            p.error_code = ResponseError::UnstableOffsetCommit.code();
                        } else {
                            p.committed_offset = offset;
                            p.committed_leader_epoch = epoch;
                            p.metadata = Some(StrBytes::from_string(metadata));
                        }
                        topic_response.partitions.push(p);
                    }
                    group_response.topics.push(topic_response);
                }
                response.groups.push(group_response);
            }
        } else {
            // v1 always names its topics; v2+ may ask for all of them with null.
            let wanted = request.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            for (topic, partitions) in self.fetch_offsets(&request.group_id, wanted) {
                let mut topic_response = OffsetFetchResponseTopic::default();
                topic_response.name = s(&topic).into();
                for (partition, offset, epoch, metadata) in partitions {
                    let mut p = OffsetFetchResponsePartition::default();
                    p.partition_index = partition;
                    if version >= 7
                        && request.require_stable
                        && self.has_pending_offset(&request.group_id, &topic, partition)
                    {
                        p.committed_offset = -1;
                        p.metadata = Some(StrBytes::default());
                        p.error_code = ResponseError::UnstableOffsetCommit.code();
                    } else {
                        p.committed_offset = offset;
                        if version >= 5 {
                            p.committed_leader_epoch = epoch;
                        }
                        p.metadata = Some(StrBytes::from_string(metadata));
                    }
                    topic_response.partitions.push(p);
                }
                response.topics.push(topic_response);
            }
        }
        self.respond(id, GroupResponse::OffsetFetch(response));
    }

    /// The committed offsets of `wanted` (topic → partitions), or all of them when `None`.
    /// Unknown partitions (and every partition of an unknown group) come back as offset -1,
    /// leader epoch -1 and metadata "".
    fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    ) -> Vec<(String, Vec<FetchedPartition>)> {
        let offsets = self.groups.get(group_id).map(|g| &g.offsets);
        match wanted {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, partitions)| {
                    let fetched = partitions
                        .into_iter()
                        .map(|p| match offsets.and_then(|o| o.get(&(topic.clone(), p))) {
                            Some(v) => (p, v.offset, v.leader_epoch, v.metadata.clone()),
                            None => (p, -1, -1, String::new()),
                        })
                        .collect();
                    (topic, fetched)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<FetchedPartition>> = BTreeMap::new();
                for ((topic, partition), v) in offsets.into_iter().flatten() {
                    by_topic.entry(topic.clone()).or_default().push((
                        *partition,
                        v.offset,
                        v.leader_epoch,
                        v.metadata.clone(),
                    ));
                }
                by_topic.into_iter().collect()
            }
        }
    }

    pub(crate) fn handle_offset_delete(
        &mut self,
        id: RequestId,
        _version: i16,
        request: OffsetDeleteRequest,
    ) {
        let group_id = request.group_id.to_string();
        let mut response = OffsetDeleteResponse::default();
        let error = if group_id.is_empty() {
            Some(ResponseError::InvalidGroupId)
        } else {
            match self.groups.get(&group_id) {
                None => Some(ResponseError::GroupIdNotFound),
                Some(g) if g.state == GroupState::Dead => Some(ResponseError::GroupIdNotFound),
                Some(g)
                    if g.state != GroupState::Empty
                        && g.protocol_type != CONSUMER_PROTOCOL_TYPE =>
                {
                    Some(ResponseError::NonEmptyGroup)
                }
                Some(_) => None,
            }
        };
        if let Some(error) = error {
            response.error_code = error.code();
            return self.respond(id, GroupResponse::OffsetDelete(response));
        }
        for topic in request.topics {
            let name = topic.name.to_string();
            let subscribed = match self.groups.get(&group_id) {
                Some(g) => match g.consumer.as_deref() {
                    Some(consumer) => crate::consumer::subscription::group_subscribed_names(
                        consumer,
                        &self.topics,
                        &mut self.regexes,
                    )
                    .contains(&name),
                    None => g.is_subscribed_to(&name),
                },
                None => false,
            };
            let mut topic_response = OffsetDeleteResponseTopic::default();
            topic_response.name = topic.name.clone();
            for partition in topic.partitions {
                let index = partition.partition_index;
                let mut partition_response = OffsetDeleteResponsePartition::default();
                partition_response.partition_index = index;
                if subscribed {
                    partition_response.error_code = ResponseError::GroupSubscribedToTopic.code();
                } else if self
                    .groups
                    .get(&group_id)
                    .is_some_and(|g| g.offsets.contains_key(&(name.clone(), index)))
                {
                    self.emit(Record::Offset {
                        group_id: group_id.clone(),
                        topic: name.clone(),
                        partition: index,
                        value: None,
                    });
                }
                topic_response.partitions.push(partition_response);
            }
            response.topics.push(topic_response);
        }
        self.respond(id, GroupResponse::OffsetDelete(response));
    }

    /// The periodic expiry (Kafka's cleanupGroupMetadata): expired offsets get tombstones, and
    /// an Empty group left without offsets (and without pending members) is deleted.
    pub(crate) fn expire_offsets(&mut self) {
        let now = self.wall_now();
        let retention = self.config.offsets_retention_ms;
        let group_ids: Vec<String> = self.groups.keys().cloned().collect();
        for group_id in group_ids {
            let Some(group) = self.groups.get(&group_id) else {
                continue;
            };
            let consumer_subscribed = group.consumer.as_deref().map(|consumer| {
                crate::consumer::subscription::group_subscribed_names(
                    consumer,
                    &self.topics,
                    &mut self.regexes,
                )
            });
            let Some(rule) = ExpiryRule::of(group, consumer_subscribed) else {
                continue;
            };
            let expired: Vec<(String, i32)> = group
                .offsets
                .iter()
                .filter(|((topic, partition), value)| {
                    // An offset a transaction is about to replace stays (as in Kafka).
                    rule.applies_to(topic)
                        && rule.expired(value, now, retention)
                        && !self.has_pending_offset(&group_id, topic, *partition)
                })
                .map(|(key, _)| key.clone())
                .collect();
            for (topic, partition) in expired {
                self.emit(Record::Offset {
                    group_id: group_id.clone(),
                    topic,
                    partition,
                    value: None,
                });
            }
            let Some(group) = self.groups.get(&group_id) else {
                continue;
            };
            if let Some(consumer) = &group.consumer {
                if consumer.members.is_empty()
                    && group.offsets.is_empty()
                    && group.pending_offsets.is_empty()
                {
                    self.delete_consumer_group(&group_id);
                }
                continue;
            }
            if group.state == GroupState::Empty
                && group.offsets.is_empty()
                && group.pending_offsets.is_empty()
                && group.pending_join.is_empty()
            {
                self.emit(Record::Group {
                    group_id: group_id.clone(),
                    value: None,
                });
            }
        }
    }
}

/// Kafka's ConsumerGroup.validateOffsetCommit: without members anyone may commit with epoch
/// −1; otherwise the commit must come from a member, on OffsetCommit v9 or later (which
/// carries the member epoch) unless it is a classic member (whose generation is its member
/// epoch). The member's current epoch commits anything; a later one is refused; an earlier one
/// (a commit sent before the member heard of its new epoch) commits only partitions the member
/// holds and held at that epoch (KIP-1251's assignment epochs). A refusal is
/// STALE_MEMBER_EPOCH, or ILLEGAL_GENERATION for a classic member.
fn validate_consumer_commit(
    group: &crate::consumer::ConsumerGroup,
    image: &crate::TopicsImage,
    (version, member_id, epoch): (i16, &str, i32),
    topics: &[OffsetCommitRequestTopic],
) -> Result<(), ResponseError> {
    if epoch < 0 && group.members.is_empty() {
        return Ok(());
    }
    let member = group
        .members
        .get(member_id)
        .ok_or(ResponseError::UnknownMemberId)?;
    let refused = if member.is_classic() {
        ResponseError::IllegalGeneration
    } else if version < 9 {
        return Err(ResponseError::UnsupportedVersion);
    } else {
        ResponseError::StaleMemberEpoch
    };
    let assignment = &member.assignment;
    let accepted = match epoch.cmp(&assignment.member_epoch) {
        std::cmp::Ordering::Equal => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Less => topics.iter().all(|t| {
            // A topic the broker does not have is held by nobody.
            let id = image.id_of(t.name.as_str());
            t.partitions.iter().all(|p| {
                id.and_then(|id| assignment.assignment_epoch(id, p.partition_index))
                    .is_some_and(|assigned_at| assigned_at <= epoch)
            })
        }),
    };
    if accepted {
        Ok(())
    } else {
        Err(refused)
    }
}

/// Kafka's ConsumerGroup.validateOffsetFetch: a fetch naming a member (OffsetFetch v9+) must
/// come at that member's current epoch.
pub(crate) fn validate_consumer_fetch(
    group: &crate::consumer::ConsumerGroup,
    member_id: Option<&str>,
    epoch: i32,
) -> Result<(), ResponseError> {
    if member_id.is_none() && epoch < 0 {
        return Ok(());
    }
    let member = group
        .members
        .get(member_id.unwrap_or_default())
        .ok_or(ResponseError::UnknownMemberId)?;
    if epoch != member.assignment.member_epoch {
        return Err(ResponseError::StaleMemberEpoch);
    }
    Ok(())
}

/// Which offsets of a group may expire, and from when retention counts (Kafka's
/// ClassicGroup.offsetExpirationCondition).
struct ExpiryRule {
    /// Retention counts from this instant instead of each commit (an Empty group: from when it
    /// became empty, KIP-211).
    since: Option<Millis>,
    /// Only topics outside the subscription may expire (a Stable consumer group).
    subscribed: Option<std::collections::BTreeSet<String>>,
}

impl ExpiryRule {
    /// `consumer_subscribed`: the topic names a consumer-protocol group subscribes to.
    fn of(
        group: &crate::group::Group,
        consumer_subscribed: Option<std::collections::BTreeSet<String>>,
    ) -> Option<ExpiryRule> {
        if let Some(consumer) = &group.consumer {
            // Kafka's ConsumerGroup: offsets count from their commit; while members are in,
            // only topics outside the subscriptions expire.
            return Some(ExpiryRule {
                since: None,
                subscribed: (!consumer.members.is_empty())
                    .then(|| consumer_subscribed.unwrap_or_default()),
            });
        }
        if group.protocol_type.is_empty() {
            // A simple group: each offset expires `retention` after its commit.
            return Some(ExpiryRule {
                since: None,
                subscribed: None,
            });
        }
        if group.state == GroupState::Empty {
            return Some(ExpiryRule {
                since: Some(group.state_timestamp),
                subscribed: None,
            });
        }
        if group.protocol_type == CONSUMER_PROTOCOL_TYPE && group.state == GroupState::Stable {
            let subscribed = group.subscribed_topics()?;
            return Some(ExpiryRule {
                since: None,
                subscribed: Some(subscribed),
            });
        }
        None
    }

    fn applies_to(&self, topic: &str) -> bool {
        self.subscribed
            .as_ref()
            .is_none_or(|topics| !topics.contains(topic))
    }

    fn expired(&self, value: &OffsetValue, now: Millis, retention: i64) -> bool {
        match value.expire_timestamp {
            Some(expire) => now >= expire,
            None => now.saturating_sub(self.since.unwrap_or(value.commit_timestamp)) >= retention,
        }
    }
}
