//! The answer to a group request the coordinator could not carry out: an error code for the
//! whole request, or for each of its partitions or groups, as Kafka's `getErrorResponse` builds
//! it for each API. Only fields the request's version has are set, so the answer encodes at it.
//!
//! Which code: Kafka's group coordinator answers a request whose records could not be appended
//! (a `KafkaStorageException` from its log) with NOT_COORDINATOR, and any request while it is
//! not serving at all with COORDINATOR_NOT_AVAILABLE; both make clients look the coordinator up
//! again and retry.

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as ConsumerDescribedGroup;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatResponse, DeleteGroupsResponse,
    DescribeGroupsResponse, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    ListGroupsResponse, OffsetCommitResponse, OffsetDeleteResponse, OffsetFetchResponse,
    SyncGroupResponse, TxnOffsetCommitResponse,
};
use kafka_protocol::ResponseError;
use starling_group::{GroupRequest, GroupResponse};

/// `request`'s answer (at `version`) when it failed with `error` as a whole.
pub fn refusal(request: &GroupRequest, version: i16, error: ResponseError) -> GroupResponse {
    let code = error.code();
    match request {
        GroupRequest::Join(r) => {
            let mut response = JoinGroupResponse::default();
            response.error_code = code;
            response.member_id = r.member_id.clone();
            // Nullable from v7 on; older versions carry "" (the default) instead.
            if version >= 7 {
                response.protocol_name = None;
            }
            GroupResponse::Join(response)
        }
        GroupRequest::Sync(_) => {
            let mut response = SyncGroupResponse::default();
            response.error_code = code;
            GroupResponse::Sync(response)
        }
        GroupRequest::Heartbeat(_) => {
            let mut response = HeartbeatResponse::default();
            response.error_code = code;
            GroupResponse::Heartbeat(response)
        }
        GroupRequest::Leave(_) => {
            let mut response = LeaveGroupResponse::default();
            response.error_code = code;
            GroupResponse::Leave(response)
        }
        GroupRequest::OffsetCommit(r) => {
            let mut response = OffsetCommitResponse::default();
            response.topics = r
                .topics
                .iter()
                .map(|topic| {
                    let mut t = OffsetCommitResponseTopic::default();
                    t.name = topic.name.clone();
                    t.partitions = topic
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut partition = OffsetCommitResponsePartition::default();
                            partition.partition_index = p.partition_index;
                            partition.error_code = code;
                            partition
                        })
                        .collect();
                    t
                })
                .collect();
            GroupResponse::OffsetCommit(response)
        }
        GroupRequest::TxnOffsetCommit(r) => {
            let mut response = TxnOffsetCommitResponse::default();
            response.topics = r
                .topics
                .iter()
                .map(|topic| {
                    let mut t = TxnOffsetCommitResponseTopic::default();
                    t.name = topic.name.clone();
                    t.partitions = topic
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut partition = TxnOffsetCommitResponsePartition::default();
                            partition.partition_index = p.partition_index;
                            partition.error_code = code;
                            partition
                        })
                        .collect();
                    t
                })
                .collect();
            GroupResponse::TxnOffsetCommit(response)
        }
        GroupRequest::TxnEnd { .. } => GroupResponse::TxnEnd(Err(error)),
        GroupRequest::OffsetFetch(r) => {
            let mut response = OffsetFetchResponse::default();
            if version >= 8 {
                response.groups = r
                    .groups
                    .iter()
                    .map(|g| {
                        let mut group = OffsetFetchResponseGroup::default();
                        group.group_id = g.group_id.clone();
                        group.error_code = code;
                        group
                    })
                    .collect();
            } else if version >= 2 {
                response.error_code = code;
            } else {
                // v1 has no top-level error: each partition asked for carries it.
                response.topics = r
                    .topics
                    .iter()
                    .flatten()
                    .map(|topic| {
                        let mut t = OffsetFetchResponseTopic::default();
                        t.name = topic.name.clone();
                        t.partitions = topic
                            .partition_indexes
                            .iter()
                            .map(|&index| {
                                let mut p = OffsetFetchResponsePartition::default();
                                p.partition_index = index;
                                p.committed_offset = -1;
                                p.error_code = code;
                                p
                            })
                            .collect();
                        t
                    })
                    .collect();
            }
            GroupResponse::OffsetFetch(response)
        }
        GroupRequest::DescribeGroups(r) => {
            let mut response = DescribeGroupsResponse::default();
            response.groups = r
                .groups
                .iter()
                .map(|id| {
                    let mut group = DescribedGroup::default();
                    group.group_id = id.clone();
                    group.error_code = code;
                    group
                })
                .collect();
            GroupResponse::DescribeGroups(response)
        }
        GroupRequest::ListGroups(_) => {
            let mut response = ListGroupsResponse::default();
            response.error_code = code;
            GroupResponse::ListGroups(response)
        }
        GroupRequest::DeleteGroups(r) => {
            let mut response = DeleteGroupsResponse::default();
            response.results = r
                .groups_names
                .iter()
                .map(|id| {
                    let mut result = DeletableGroupResult::default();
                    result.group_id = id.clone();
                    result.error_code = code;
                    result
                })
                .collect();
            GroupResponse::DeleteGroups(response)
        }
        GroupRequest::OffsetDelete(_) => {
            let mut response = OffsetDeleteResponse::default();
            response.error_code = code;
            GroupResponse::OffsetDelete(response)
        }
        GroupRequest::ConsumerGroupHeartbeat(_) => {
            let mut response = ConsumerGroupHeartbeatResponse::default();
            response.error_code = code;
            GroupResponse::ConsumerGroupHeartbeat(response)
        }
        GroupRequest::ConsumerGroupDescribe(r) => {
            let mut response = ConsumerGroupDescribeResponse::default();
            response.groups = r
                .group_ids
                .iter()
                .map(|group_id| {
                    let mut group = ConsumerDescribedGroup::default();
                    group.group_id = group_id.clone();
                    group.error_code = code;
                    group
                })
                .collect();
            GroupResponse::ConsumerGroupDescribe(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic,
    };
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    use super::*;

    fn group_id() -> GroupId {
        GroupId(StrBytes::from_static_str("g"))
    }

    /// One request of every group API, each naming a group, a topic and two partitions.
    fn requests() -> Vec<(ApiKey, GroupRequest)> {
        let mut commit = OffsetCommitRequest::default();
        commit.group_id = group_id();
        let mut topic = OffsetCommitRequestTopic::default();
        topic.name = TopicName(StrBytes::from_static_str("t"));
        topic.partitions = (0..2)
            .map(|i| {
                let mut p = OffsetCommitRequestPartition::default();
                p.partition_index = i;
                p
            })
            .collect();
        commit.topics = vec![topic];
        let mut fetch_topic = OffsetFetchRequestTopic::default();
        fetch_topic.name = TopicName(StrBytes::from_static_str("t"));
        fetch_topic.partition_indexes = vec![0, 1];
        let mut fetch_group = OffsetFetchRequestGroup::default();
        fetch_group.group_id = group_id();
        let mut fetch = OffsetFetchRequest::default();
        fetch.group_id = group_id();
        fetch.topics = Some(vec![fetch_topic]);
        fetch.groups = vec![fetch_group];
        let mut join = JoinGroupRequest::default();
        join.member_id = StrBytes::from_static_str("m-1");
        let mut describe = DescribeGroupsRequest::default();
        describe.groups = vec![group_id()];
        let mut delete = DeleteGroupsRequest::default();
        delete.groups_names = vec![group_id()];
        let mut cg_describe = ConsumerGroupDescribeRequest::default();
        cg_describe.group_ids = vec![group_id()];
        let mut txn_partition = TxnOffsetCommitRequestPartition::default();
        txn_partition.partition_index = 1;
        let mut txn_topic = TxnOffsetCommitRequestTopic::default();
        txn_topic.name = TopicName(StrBytes::from_static_str("t"));
        txn_topic.partitions = vec![txn_partition];
        let mut txn_commit = TxnOffsetCommitRequest::default();
        txn_commit.topics = vec![txn_topic];
        vec![
            (ApiKey::JoinGroup, GroupRequest::Join(join)),
            (ApiKey::SyncGroup, GroupRequest::Sync(Default::default())),
            (
                ApiKey::Heartbeat,
                GroupRequest::Heartbeat(Default::default()),
            ),
            (ApiKey::LeaveGroup, GroupRequest::Leave(Default::default())),
            (ApiKey::OffsetCommit, GroupRequest::OffsetCommit(commit)),
            (ApiKey::OffsetFetch, GroupRequest::OffsetFetch(fetch)),
            (
                ApiKey::DescribeGroups,
                GroupRequest::DescribeGroups(describe),
            ),
            (
                ApiKey::ListGroups,
                GroupRequest::ListGroups(Default::default()),
            ),
            (ApiKey::DeleteGroups, GroupRequest::DeleteGroups(delete)),
            (
                ApiKey::OffsetDelete,
                GroupRequest::OffsetDelete(Default::default()),
            ),
            (
                ApiKey::ConsumerGroupHeartbeat,
                GroupRequest::ConsumerGroupHeartbeat(Default::default()),
            ),
            (
                ApiKey::ConsumerGroupDescribe,
                GroupRequest::ConsumerGroupDescribe(cg_describe),
            ),
            (
                ApiKey::TxnOffsetCommit,
                GroupRequest::TxnOffsetCommit(txn_commit),
            ),
        ]
    }

    /// Encodes `response` at `version`, decodes it back and returns every error code in it.
    fn round_trip(response: &GroupResponse, version: i16) -> Vec<i16> {
        fn codes<T: Encodable + Decodable>(
            r: &T,
            version: i16,
            pick: impl Fn(&T) -> Vec<i16>,
        ) -> Vec<i16> {
            let mut buf = BytesMut::new();
            r.encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("encoding at v{version}: {e}"));
            let decoded = T::decode(&mut buf.freeze(), version).unwrap();
            pick(&decoded)
        }
        match response {
            GroupResponse::Join(r) => codes(r, version, |r| vec![r.error_code]),
            GroupResponse::Sync(r) => codes(r, version, |r| vec![r.error_code]),
            GroupResponse::Heartbeat(r) => codes(r, version, |r| vec![r.error_code]),
            GroupResponse::Leave(r) => codes(r, version, |r| vec![r.error_code]),
            GroupResponse::OffsetCommit(r) => codes(r, version, |r| {
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect()
            }),
            GroupResponse::OffsetFetch(r) => codes(r, version, |r| {
                let mut all = vec![r.error_code];
                all.extend(
                    r.topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                );
                all.extend(r.groups.iter().map(|g| g.error_code));
                all.retain(|&c| c != 0);
                all
            }),
            GroupResponse::DescribeGroups(r) => codes(r, version, |r| {
                r.groups.iter().map(|g| g.error_code).collect()
            }),
            GroupResponse::ListGroups(r) => codes(r, version, |r| vec![r.error_code]),
            GroupResponse::DeleteGroups(r) => codes(r, version, |r| {
                r.results.iter().map(|g| g.error_code).collect()
            }),
            GroupResponse::OffsetDelete(r) => codes(r, version, |r| vec![r.error_code]),
            GroupResponse::ConsumerGroupHeartbeat(r) => codes(r, version, |r| vec![r.error_code]),
            GroupResponse::ConsumerGroupDescribe(r) => codes(r, version, |r| {
                r.groups.iter().map(|g| g.error_code).collect()
            }),
            GroupResponse::TxnOffsetCommit(r) => codes(r, version, |r| {
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect()
            }),
            // Never on the wire.
            GroupResponse::TxnEnd(r) => vec![r.err().map_or(0, |e| e.code())],
        }
    }

    #[test]
    fn every_group_api_at_every_served_version_carries_the_error_where_that_version_has_it() {
        let code = ResponseError::NotCoordinator.code();
        for (api, request) in requests() {
            let range = starling_protocol::versions::supported(api).unwrap();
            for version in range.min..=range.max {
                let codes = round_trip(
                    &refusal(&request, version, ResponseError::NotCoordinator),
                    version,
                );
                let expected = match (api, version) {
                    // Per partition (OffsetCommit; OffsetFetch v1, which has no top-level code).
                    (ApiKey::OffsetCommit, _) | (ApiKey::OffsetFetch, 1) => vec![code; 2],
                    _ => vec![code],
                };
                assert_eq!(codes, expected, "{api:?} v{version}");
            }
        }
    }

    #[test]
    fn a_refused_join_keeps_the_member_id_it_was_sent_with() {
        let (_, join) = requests().remove(0);
        let GroupResponse::Join(response) = refusal(&join, 9, ResponseError::NotCoordinator) else {
            panic!("not a JoinGroup response");
        };
        assert_eq!(
            (response.member_id.as_str(), response.generation_id),
            ("m-1", -1)
        );
    }
}
