//! The APIs and versions Starling advertises in ApiVersions, and so accepts.
//!
//! A range here may be narrower than what the `kafka-protocol` crate can decode: we advertise
//! only versions whose fields the broker actually honours.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

/// `(api, min, max)` for every API the broker answers.
const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    // Produce v0–2 are advertised so librdkafka keeps compression on, and refused when used,
    // as Apache Kafka 4 does (see `legacy`).
    (ApiKey::Produce, 0, 13),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
    // Transactions at Kafka's transaction protocol version 1: v4+ of AddPartitionsToTxn are for
    // brokers only, and EndTxn v5 / TxnOffsetCommit v5 only matter with version 2 (KIP-890
    // part 2), which is not offered.
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
    // KIP-664's admin APIs for finding hanging transactions; ListTransactions v1 adds KIP-994's
    // duration filter. v2 (KIP-1152's transactional id pattern) is not offered.
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    // Admin APIs answered as a single-node cluster. OffsetForLeaderEpoch starts at v2, the
    // baseline since Kafka 4.0; DescribeLogDirs at v1, the oldest the crate decodes.
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    // Configs (KIP-226 dynamic broker configs, KIP-339 incremental changes). DescribeConfigs
    // starts at v1, the baseline since Kafka 4.0 and the oldest the crate decodes.
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    // ACLs (KIP-140, KIP-290 prefixed patterns). v0 went in Kafka 4.0 (KIP-896) and the crate
    // no longer decodes it; v1 is the baseline.
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    // SASL (KIP-43, KIP-152). SaslHandshake v0 is followed by raw SASL tokens instead of
    // SaslAuthenticate requests; librdkafka 2.0 only handshakes when v0 is advertised.
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// The range the broker advertises for `api`, or `None` if it does not serve it at all.
pub fn supported(api: ApiKey) -> Option<VersionRange> {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api)
        .map(|&(_, min, max)| VersionRange { min, max })
}

/// Every advertised API, in api-key order, for the ApiVersions response.
pub fn all() -> impl Iterator<Item = (ApiKey, VersionRange)> {
    let mut list: Vec<_> = SUPPORTED
        .iter()
        .map(|&(key, min, max)| (key, VersionRange { min, max }))
        .collect();
    list.sort_by_key(|(key, _)| *key as i16);
    list.into_iter()
}

/// Versions that are advertised but answered with UNSUPPORTED_VERSION instead of served.
pub fn is_refused_legacy(api: ApiKey, version: i16) -> bool {
    api == ApiKey::Produce && (0..=2).contains(&version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_version_is_one_the_crate_can_decode_or_a_refused_legacy_one() {
        for (api, range) in all() {
            let crate_range = api.valid_versions();
            for v in range.min..=range.max {
                assert!(
                    is_refused_legacy(api, v) || (crate_range.min..=crate_range.max).contains(&v),
                    "{api:?} v{v} advertised but not decodable"
                );
            }
        }
    }

    #[test]
    fn unknown_apis_are_not_supported() {
        assert!(supported(ApiKey::ExpireDelegationToken).is_none());
    }
}
