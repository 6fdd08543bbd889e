//! The error codes a response carries, counted the way Kafka's `AbstractResponse.errorCounts()`
//! counts them for its `ErrorsPerSec` metric: every code in the response — the top-level one
//! and those per topic, partition, group or member, `NONE` (0) included — once each.
//!
//! Which fields count follows the response's version where the wire format moved them: a
//! FindCoordinator answer v4+ carries one code per key instead of one for the whole response,
//! and an OffsetFetch answer v8+ one per group. The broker reads the codes from the response
//! struct just before encoding it (for Fetch, before the chunked frame is built).

use kafka_protocol::messages::{
    AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, AlterClientQuotasResponse,
    AlterConfigsResponse, AlterPartitionReassignmentsResponse, AlterUserScramCredentialsResponse,
    ApiVersionsResponse, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatResponse,
    CreateAclsResponse, CreatePartitionsResponse, CreateTopicsResponse, DeleteAclsResponse,
    DeleteGroupsResponse, DeleteRecordsResponse, DeleteTopicsResponse, DescribeAclsResponse,
    DescribeClientQuotasResponse, DescribeClusterResponse, DescribeConfigsResponse,
    DescribeGroupsResponse, DescribeLogDirsResponse, DescribeProducersResponse,
    DescribeTopicPartitionsResponse, DescribeTransactionsResponse,
    DescribeUserScramCredentialsResponse, ElectLeadersResponse, EndTxnResponse, FetchResponse,
    FindCoordinatorResponse, HeartbeatResponse, IncrementalAlterConfigsResponse,
    InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse, ListGroupsResponse,
    ListOffsetsResponse, ListPartitionReassignmentsResponse, ListTransactionsResponse,
    MetadataResponse, OffsetCommitResponse, OffsetDeleteResponse, OffsetFetchResponse,
    OffsetForLeaderEpochResponse, ProduceResponse, SyncGroupResponse, TxnOffsetCommitResponse,
};

/// A response whose error codes can be listed.
pub trait ErrorCodes {
    /// Calls `each` with every error code in the response (as encoded at `version`), once per
    /// occurrence.
    fn error_codes(&self, version: i16, each: &mut impl FnMut(i16));
}

/// First FindCoordinator version that batches keys (KIP-699).
const FIND_COORDINATOR_BATCHED: i16 = 4;
/// First OffsetFetch version that batches groups (KIP-709).
const OFFSET_FETCH_BATCHED: i16 = 8;
/// First AddPartitionsToTxn version that batches transactions (KIP-890, brokers only).
const ADD_PARTITIONS_BATCHED: i16 = 4;

impl ErrorCodes for ProduceResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for topic in &self.responses {
            for partition in &topic.partition_responses {
                each(partition.error_code);
            }
        }
    }
}

impl ErrorCodes for FetchResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
        for topic in &self.responses {
            for partition in &topic.partitions {
                each(partition.error_code);
            }
        }
    }
}

impl ErrorCodes for MetadataResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for topic in &self.topics {
            each(topic.error_code);
            for partition in &topic.partitions {
                each(partition.error_code);
            }
        }
    }
}

impl ErrorCodes for ApiVersionsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for ListOffsetsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for topic in &self.topics {
            for partition in &topic.partitions {
                each(partition.error_code);
            }
        }
    }
}

impl ErrorCodes for CreateTopicsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for topic in &self.topics {
            each(topic.error_code);
        }
    }
}

impl ErrorCodes for DeleteTopicsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for topic in &self.responses {
            each(topic.error_code);
        }
    }
}

impl ErrorCodes for CreatePartitionsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for topic in &self.results {
            each(topic.error_code);
        }
    }
}

impl ErrorCodes for FindCoordinatorResponse {
    fn error_codes(&self, version: i16, each: &mut impl FnMut(i16)) {
        if version >= FIND_COORDINATOR_BATCHED {
            for coordinator in &self.coordinators {
                each(coordinator.error_code);
            }
        } else {
            each(self.error_code);
        }
    }
}

impl ErrorCodes for JoinGroupResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for SyncGroupResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for HeartbeatResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for LeaveGroupResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
        for member in &self.members {
            each(member.error_code);
        }
    }
}

impl ErrorCodes for OffsetCommitResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for topic in &self.topics {
            for partition in &topic.partitions {
                each(partition.error_code);
            }
        }
    }
}

impl ErrorCodes for OffsetFetchResponse {
    fn error_codes(&self, version: i16, each: &mut impl FnMut(i16)) {
        if version >= OFFSET_FETCH_BATCHED {
            for group in &self.groups {
                each(group.error_code);
                for topic in &group.topics {
                    for partition in &topic.partitions {
                        each(partition.error_code);
                    }
                }
            }
        } else {
            each(self.error_code);
            for topic in &self.topics {
                for partition in &topic.partitions {
                    each(partition.error_code);
                }
            }
        }
    }
}

impl ErrorCodes for DescribeGroupsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for group in &self.groups {
            each(group.error_code);
        }
    }
}

impl ErrorCodes for ListGroupsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for DeleteGroupsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for group in &self.results {
            each(group.error_code);
        }
    }
}

impl ErrorCodes for ConsumerGroupHeartbeatResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for DeleteRecordsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for topic in &self.topics {
            for partition in &topic.partitions {
                each(partition.error_code);
            }
        }
    }
}

impl ErrorCodes for TxnOffsetCommitResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for topic in &self.topics {
            for partition in &topic.partitions {
                each(partition.error_code);
            }
        }
    }
}

impl ErrorCodes for AddPartitionsToTxnResponse {
    fn error_codes(&self, version: i16, each: &mut impl FnMut(i16)) {
        let topics = if version >= ADD_PARTITIONS_BATCHED {
            each(self.error_code);
            self.results_by_transaction
                .iter()
                .flat_map(|t| &t.topic_results)
                .collect::<Vec<_>>()
        } else {
            self.results_by_topic_v3_and_below.iter().collect()
        };
        for topic in topics {
            for partition in &topic.results_by_partition {
                each(partition.partition_error_code);
            }
        }
    }
}

impl ErrorCodes for AddOffsetsToTxnResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for EndTxnResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for InitProducerIdResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for ConsumerGroupDescribeResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for group in &self.groups {
            each(group.error_code);
        }
    }
}

impl ErrorCodes for DescribeProducersResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for topic in &self.topics {
            for partition in &topic.partitions {
                each(partition.error_code);
            }
        }
    }
}

impl ErrorCodes for DescribeTransactionsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for state in &self.transaction_states {
            each(state.error_code);
        }
    }
}

impl ErrorCodes for ListTransactionsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for OffsetDeleteResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
        for topic in &self.topics {
            for partition in &topic.partitions {
                each(partition.error_code);
            }
        }
    }
}

impl ErrorCodes for DescribeClusterResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for OffsetForLeaderEpochResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for topic in &self.topics {
            for partition in &topic.partitions {
                each(partition.error_code);
            }
        }
    }
}

impl ErrorCodes for DescribeLogDirsResponse {
    fn error_codes(&self, version: i16, each: &mut impl FnMut(i16)) {
        // The top-level code exists from v3.
        if version >= 3 {
            each(self.error_code);
        }
        for dir in &self.results {
            each(dir.error_code);
        }
    }
}

impl ErrorCodes for DescribeConfigsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for result in &self.results {
            each(result.error_code);
        }
    }
}

impl ErrorCodes for AlterConfigsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for response in &self.responses {
            each(response.error_code);
        }
    }
}

impl ErrorCodes for IncrementalAlterConfigsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for response in &self.responses {
            each(response.error_code);
        }
    }
}

impl ErrorCodes for DescribeTopicPartitionsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for topic in &self.topics {
            each(topic.error_code);
            for partition in &topic.partitions {
                each(partition.error_code);
            }
        }
    }
}

impl ErrorCodes for ElectLeadersResponse {
    fn error_codes(&self, version: i16, each: &mut impl FnMut(i16)) {
        // The top-level code exists from v1.
        if version >= 1 {
            each(self.error_code);
        }
        for topic in &self.replica_election_results {
            for partition in &topic.partition_result {
                each(partition.error_code);
            }
        }
    }
}

impl ErrorCodes for ListPartitionReassignmentsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for DescribeAclsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for CreateAclsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for result in &self.results {
            each(result.error_code);
        }
    }
}

/// One code per filter (the matching ACLs' own codes are always NONE).
impl ErrorCodes for DeleteAclsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for filter in &self.filter_results {
            each(filter.error_code);
        }
    }
}

impl ErrorCodes for DescribeClientQuotasResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for AlterClientQuotasResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for entry in &self.entries {
            each(entry.error_code);
        }
    }
}

impl ErrorCodes for kafka_protocol::messages::SaslHandshakeResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for kafka_protocol::messages::SaslAuthenticateResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for DescribeUserScramCredentialsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
        for result in &self.results {
            each(result.error_code);
        }
    }
}

impl ErrorCodes for AlterUserScramCredentialsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        for result in &self.results {
            each(result.error_code);
        }
    }
}

impl ErrorCodes for AlterPartitionReassignmentsResponse {
    fn error_codes(&self, _version: i16, each: &mut impl FnMut(i16)) {
        each(self.error_code);
        for topic in &self.responses {
            for partition in &topic.partitions {
                each(partition.error_code);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
    use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
    use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
    use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
    use kafka_protocol::messages::describe_groups_response::DescribedGroup;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::leave_group_response::MemberResponse;
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use kafka_protocol::messages::metadata_response::{
        MetadataResponsePartition, MetadataResponseTopic,
    };
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
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::ResponseError;

    use super::*;

    const UNKNOWN_TOPIC: i16 = ResponseError::UnknownTopicOrPartition.code();
    const UNKNOWN_TOPIC_ID: i16 = ResponseError::UnknownTopicId.code();
    const OUT_OF_RANGE: i16 = ResponseError::OffsetOutOfRange.code();
    const REBALANCING: i16 = ResponseError::RebalanceInProgress.code();
    const UNKNOWN_MEMBER: i16 = ResponseError::UnknownMemberId.code();
    const NOT_COORDINATOR: i16 = ResponseError::CoordinatorNotAvailable.code();

    fn codes(response: &impl ErrorCodes, version: i16) -> Vec<i16> {
        let mut out = Vec::new();
        response.error_codes(version, &mut |code| out.push(code));
        out
    }

    #[test]
    fn produce_counts_every_partition() {
        let topic = |codes: &[i16]| {
            TopicProduceResponse::default().with_partition_responses(
                codes
                    .iter()
                    .map(|&c| PartitionProduceResponse::default().with_error_code(c))
                    .collect(),
            )
        };
        let response = ProduceResponse::default()
            .with_responses(vec![topic(&[0, 0]), topic(&[UNKNOWN_TOPIC])]);
        assert_eq!(codes(&response, 9), vec![0, 0, UNKNOWN_TOPIC]);
    }

    #[test]
    fn fetch_counts_the_top_level_code_and_every_partition() {
        let response = FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default().with_partitions(vec![
                PartitionData::default(),
                PartitionData::default().with_error_code(OUT_OF_RANGE),
            ]),
            FetchableTopicResponse::default().with_partitions(vec![
                PartitionData::default().with_error_code(UNKNOWN_TOPIC_ID)
            ]),
        ]);
        assert_eq!(
            codes(&response, 13),
            vec![0, 0, OUT_OF_RANGE, UNKNOWN_TOPIC_ID]
        );
        let session_error = ResponseError::FetchSessionIdNotFound.code();
        let refused = FetchResponse::default().with_error_code(session_error);
        assert_eq!(codes(&refused, 12), vec![session_error]);
    }

    #[test]
    fn metadata_counts_topics_and_their_partitions() {
        let response = MetadataResponse::default().with_topics(vec![
            MetadataResponseTopic::default().with_partitions(vec![
                MetadataResponsePartition::default(),
                MetadataResponsePartition::default(),
            ]),
            MetadataResponseTopic::default().with_error_code(UNKNOWN_TOPIC),
        ]);
        assert_eq!(codes(&response, 12), vec![0, 0, 0, UNKNOWN_TOPIC]);
        assert!(codes(&MetadataResponse::default(), 12).is_empty());
    }

    #[test]
    fn api_versions_counts_its_one_code() {
        let unsupported = ResponseError::UnsupportedVersion.code();
        let response = ApiVersionsResponse::default().with_error_code(unsupported);
        assert_eq!(codes(&response, 0), vec![unsupported]);
    }

    #[test]
    fn list_offsets_counts_every_partition() {
        let response =
            ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
                .with_partitions(vec![
                    ListOffsetsPartitionResponse::default(),
                    ListOffsetsPartitionResponse::default().with_error_code(UNKNOWN_TOPIC),
                ])]);
        assert_eq!(codes(&response, 7), vec![0, UNKNOWN_TOPIC]);
    }

    #[test]
    fn topic_admin_responses_count_every_topic() {
        let exists = ResponseError::TopicAlreadyExists.code();
        let create = CreateTopicsResponse::default().with_topics(vec![
            CreatableTopicResult::default(),
            CreatableTopicResult::default().with_error_code(exists),
        ]);
        assert_eq!(codes(&create, 7), vec![0, exists]);
        let delete = DeleteTopicsResponse::default().with_responses(vec![
            DeletableTopicResult::default().with_error_code(UNKNOWN_TOPIC),
        ]);
        assert_eq!(codes(&delete, 6), vec![UNKNOWN_TOPIC]);
        let invalid = ResponseError::InvalidPartitions.code();
        let grow = CreatePartitionsResponse::default().with_results(vec![
            CreatePartitionsTopicResult::default().with_error_code(invalid),
            CreatePartitionsTopicResult::default(),
        ]);
        assert_eq!(codes(&grow, 3), vec![invalid, 0]);
    }

    #[test]
    fn find_coordinator_counts_per_key_from_v4_and_the_top_level_code_before() {
        let response = FindCoordinatorResponse::default()
            .with_error_code(NOT_COORDINATOR)
            .with_coordinators(vec![
                Coordinator::default(),
                Coordinator::default().with_error_code(NOT_COORDINATOR),
            ]);
        assert_eq!(codes(&response, 4), vec![0, NOT_COORDINATOR]);
        assert_eq!(codes(&response, 3), vec![NOT_COORDINATOR]);
    }

    #[test]
    fn membership_responses_count_their_top_level_code() {
        let join = JoinGroupResponse::default().with_error_code(UNKNOWN_MEMBER);
        assert_eq!(codes(&join, 9), vec![UNKNOWN_MEMBER]);
        let sync = SyncGroupResponse::default().with_error_code(REBALANCING);
        assert_eq!(codes(&sync, 5), vec![REBALANCING]);
        assert_eq!(codes(&HeartbeatResponse::default(), 4), vec![0]);
        let list = ListGroupsResponse::default();
        assert_eq!(codes(&list, 5), vec![0]);
    }

    #[test]
    fn leave_group_counts_the_top_level_code_and_every_member() {
        let response = LeaveGroupResponse::default().with_members(vec![
            MemberResponse::default(),
            MemberResponse::default().with_error_code(UNKNOWN_MEMBER),
        ]);
        assert_eq!(codes(&response, 5), vec![0, 0, UNKNOWN_MEMBER]);
        assert_eq!(codes(&LeaveGroupResponse::default(), 2), vec![0]);
    }

    #[test]
    fn offset_commit_counts_every_partition() {
        let response =
            OffsetCommitResponse::default().with_topics(vec![OffsetCommitResponseTopic::default()
                .with_partitions(vec![
                    OffsetCommitResponsePartition::default().with_error_code(REBALANCING),
                    OffsetCommitResponsePartition::default(),
                ])]);
        assert_eq!(codes(&response, 8), vec![REBALANCING, 0]);
    }

    #[test]
    fn offset_fetch_counts_per_group_from_v8_and_the_top_level_code_before() {
        let not_found = ResponseError::GroupIdNotFound.code();
        let batched = OffsetFetchResponse::default().with_groups(vec![
            OffsetFetchResponseGroup::default().with_topics(vec![
                OffsetFetchResponseTopics::default().with_partitions(vec![
                    OffsetFetchResponsePartitions::default(),
                    OffsetFetchResponsePartitions::default().with_error_code(UNKNOWN_TOPIC),
                ]),
            ]),
            OffsetFetchResponseGroup::default().with_error_code(not_found),
        ]);
        assert_eq!(codes(&batched, 8), vec![0, 0, UNKNOWN_TOPIC, not_found]);
        let single = OffsetFetchResponse::default()
            .with_topics(vec![OffsetFetchResponseTopic::default()
                .with_partitions(vec![OffsetFetchResponsePartition::default()])]);
        assert_eq!(codes(&single, 7), vec![0, 0]);
        let loading = ResponseError::CoordinatorLoadInProgress.code();
        let refused = OffsetFetchResponse::default().with_error_code(loading);
        assert_eq!(codes(&refused, 5), vec![loading]);
    }

    #[test]
    fn group_admin_responses_count_every_group() {
        let non_empty = ResponseError::NonEmptyGroup.code();
        let describe = DescribeGroupsResponse::default().with_groups(vec![
            DescribedGroup::default(),
            DescribedGroup::default().with_error_code(NOT_COORDINATOR),
        ]);
        assert_eq!(codes(&describe, 5), vec![0, NOT_COORDINATOR]);
        let delete = DeleteGroupsResponse::default().with_results(vec![
            DeletableGroupResult::default().with_error_code(non_empty),
            DeletableGroupResult::default(),
        ]);
        assert_eq!(codes(&delete, 2), vec![non_empty, 0]);
    }

    #[test]
    fn offset_delete_counts_the_top_level_code_and_every_partition() {
        let subscribed = ResponseError::GroupSubscribedToTopic.code();
        let response =
            OffsetDeleteResponse::default().with_topics(vec![OffsetDeleteResponseTopic::default()
                .with_partitions(vec![
                    OffsetDeleteResponsePartition::default().with_error_code(subscribed),
                    OffsetDeleteResponsePartition::default(),
                ])]);
        assert_eq!(codes(&response, 0), vec![0, subscribed, 0]);
    }

    #[test]
    fn transaction_admin_responses_count_every_partition_and_id() {
        use kafka_protocol::messages::describe_producers_response::{
            PartitionResponse, TopicResponse,
        };
        use kafka_protocol::messages::describe_transactions_response::TransactionState;
        let producers =
            DescribeProducersResponse::default().with_topics(vec![TopicResponse::default()
                .with_partitions(vec![
                    PartitionResponse::default(),
                    PartitionResponse::default().with_error_code(UNKNOWN_TOPIC),
                ])]);
        assert_eq!(codes(&producers, 0), vec![0, UNKNOWN_TOPIC]);
        let not_found = ResponseError::TransactionalIdNotFound.code();
        let describe = DescribeTransactionsResponse::default().with_transaction_states(vec![
            TransactionState::default().with_error_code(not_found),
            TransactionState::default(),
        ]);
        assert_eq!(codes(&describe, 0), vec![not_found, 0]);
        let unavailable = ResponseError::CoordinatorNotAvailable.code();
        let list = ListTransactionsResponse::default().with_error_code(unavailable);
        assert_eq!(codes(&list, 1), vec![unavailable]);
    }

    #[test]
    fn cluster_admin_responses_count_their_codes() {
        use kafka_protocol::messages::describe_log_dirs_response::DescribeLogDirsResult;
        use kafka_protocol::messages::offset_for_leader_epoch_response::{
            EpochEndOffset, OffsetForLeaderTopicResult,
        };
        let mismatched = ResponseError::MismatchedEndpointType.code();
        let cluster = DescribeClusterResponse::default().with_error_code(mismatched);
        assert_eq!(codes(&cluster, 1), vec![mismatched]);
        let fenced = ResponseError::FencedLeaderEpoch.code();
        let epochs = OffsetForLeaderEpochResponse::default().with_topics(vec![
            OffsetForLeaderTopicResult::default().with_partitions(vec![
                EpochEndOffset::default(),
                EpochEndOffset::default().with_error_code(fenced),
            ]),
        ]);
        assert_eq!(codes(&epochs, 4), vec![0, fenced]);
        let dirs =
            DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()]);
        assert_eq!(codes(&dirs, 2), vec![0]);
        assert_eq!(codes(&dirs, 3), vec![0, 0]);
    }

    #[test]
    fn config_responses_count_one_code_per_resource() {
        use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse as Alter;
        use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
        use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as Incremental;
        let invalid = ResponseError::InvalidConfig.code();
        let describe = DescribeConfigsResponse::default().with_results(vec![
            DescribeConfigsResult::default(),
            DescribeConfigsResult::default().with_error_code(UNKNOWN_TOPIC),
        ]);
        assert_eq!(codes(&describe, 4), vec![0, UNKNOWN_TOPIC]);
        let alter = AlterConfigsResponse::default()
            .with_responses(vec![Alter::default().with_error_code(invalid)]);
        assert_eq!(codes(&alter, 2), vec![invalid]);
        let incremental = IncrementalAlterConfigsResponse::default()
            .with_responses(vec![Incremental::default(), Incremental::default()]);
        assert_eq!(codes(&incremental, 1), vec![0, 0]);
    }
}
