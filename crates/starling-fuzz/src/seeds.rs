//! The seed corpus: small realistic inputs for each target, written to `fuzz/corpus/<target>/`
//! by `starling-fuzz seeds fuzz/corpus`.
//!
//! * request_decoder: one request for every served API at every served version, encoded with
//!   kafka-protocol (non-empty arrays, so every length field is present), plus Produce requests
//!   carrying the compressed batches below.
//! * record_batch: v2 record sets as producers send them — one record, several with keys and
//!   headers, idempotent, transactional, two batches in one set, tombstones, a larger value,
//!   each compression codec, and a legacy v1 message set.
//! * coordinator: [`crate::coordinator::script`]s that walk the group protocol's main paths.
//!
//! The compressed batches are real Kafka batches whose records are wrapped in a valid stream
//! of the codec that stores the bytes without compressing them (deflate stored blocks in gzip,
//! snappy literals raw and in xerial framing, LZ4 frames with uncompressed blocks, zstd raw
//! blocks): any decoder of the codec reads them, and no compression library is needed to
//! make them.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::alter_client_quotas_request::{
    AlterClientQuotasRequest, EntityData as AlterEntityData, EntryData as AlterEntryData, OpData,
};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    AlterPartitionReassignmentsRequest, ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    AlterUserScramCredentialsRequest, ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::create_acls_request::{AclCreation, CreateAclsRequest};
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsRequest, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::delete_acls_request::{DeleteAclsFilter, DeleteAclsRequest};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafka_protocol::messages::describe_acls_request::DescribeAclsRequest;
use kafka_protocol::messages::describe_client_quotas_request::{
    ComponentData, DescribeClientQuotasRequest,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_topic_partitions_request::{
    Cursor as PartitionsCursor, DescribeTopicPartitionsRequest, TopicRequest as PartitionsTopic,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::{
    DescribeUserScramCredentialsRequest, UserName,
};
use kafka_protocol::messages::elect_leaders_request::{
    ElectLeadersRequest, TopicPartitions as ElectTopicPartitions,
};
use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic, ForgottenTopic,
};
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::list_partition_reassignments_request::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsTopics,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DeleteRecordsRequest,
    DescribeProducersRequest, DescribeTransactionsRequest, EndTxnRequest, ListTransactionsRequest,
    ProducerId, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest,
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, HeartbeatRequest, InitProducerIdRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetDeleteRequest, OffsetFetchRequest, RequestHeader, RequestKind, SyncGroupRequest,
    TopicName,
};
use kafka_protocol::messages::{
    DescribeClusterRequest, DescribeLogDirsRequest, OffsetForLeaderEpochRequest,
};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::coordinator::blob;
use crate::coordinator::script::{
    Blob, Commit, CommitOffset, GenerationRef, GroupRef, InstanceRef, Join, Label, MemberRef,
    Metadata, Offset, Op, Partition, Script, Settings, Sync, Timeout, TopicRef,
};
use crate::Target;

/// The seeds of one target, as (file name, bytes), in a fixed order.
pub fn for_target(target: Target) -> Vec<(String, Vec<u8>)> {
    match target {
        Target::RequestDecoder => requests(),
        Target::RecordBatch => record_sets()
            .into_iter()
            .map(|(name, bytes)| (format!("{name}.bin"), bytes))
            .collect(),
        Target::Coordinator => scripts()
            .into_iter()
            .map(|(name, script)| (format!("{name}.bin"), script.to_bytes()))
            .collect(),
        Target::Authentication => authentication_inputs(),
    }
}

// ---- authentication -----------------------------------------------------------------------

/// A fixed Ed25519 key (deterministic signatures), so the certificate seed is the same bytes
/// every time.
const SEED_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIAJ776nayo2/sYB/hI2Vdv1tBaR9dtqojlqF5xRzdaBt
-----END PRIVATE KEY-----
";

/// One input per path of [`crate::authentication`]: PLAIN logins (right and wrong password),
/// a whole SCRAM exchange with a valid proof for each mechanism and a refused one, mapping
/// rules with a name, a certificate, and a TLS 1.3 and a TLS 1.2 ClientHello.
pub fn authentication_inputs() -> Vec<(String, Vec<u8>)> {
    use starling_broker::sasl::scram::ScramMechanism;
    let with = |selector: u8, bytes: &[u8]| {
        let mut input = vec![selector];
        input.extend_from_slice(bytes);
        input
    };
    let mut out = vec![
        (
            "plain-carol.bin".to_string(),
            with(0, b"\0carol\0carol-secret"),
        ),
        (
            "plain-wrong-password.bin".to_string(),
            with(0, b"carol\0carol\0nope"),
        ),
    ];
    for (selector, mechanism, name) in [
        (1u8, ScramMechanism::Sha256, "scram-sha-256"),
        (2u8, ScramMechanism::Sha512, "scram-sha-512"),
    ] {
        let (first, last) = scram_exchange(mechanism);
        let mut exchange = first.clone().into_bytes();
        exchange.push(0);
        exchange.extend_from_slice(last.as_bytes());
        out.push((format!("{name}-valid.bin"), with(selector, &exchange)));
        let mut refused = b"n,,n=user,r=abc\0c=biws,r=abcfuzznonce,p=".to_vec();
        refused.extend_from_slice(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        out.push((format!("{name}-wrong-proof.bin"), with(selector, &refused)));
    }
    out.push((
        "mapping-rules.bin".to_string(),
        with(
            3,
            b"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?)$/$1@$2/L,DEFAULT\0CN=Alice,OU=Apps,O=Acme",
        ),
    ));
    out.push(("certificate.bin".to_string(), with(4, &seed_certificate())));
    for (name, versions) in [
        ("tls13-client-hello.bin", &[&rustls::version::TLS13][..]),
        ("tls12-client-hello.bin", &[&rustls::version::TLS12][..]),
    ] {
        out.push((name.to_string(), with(5, &client_hello(versions))));
    }
    out
}

/// A SCRAM exchange of the user `user` with password `pencil` against
/// [`crate::authentication`]'s server nonce: the client-first and a client-final message with
/// the right proof.
pub fn scram_exchange(mechanism: starling_broker::sasl::scram::ScramMechanism) -> (String, String) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let credential = crate::authentication::scram_credential(mechanism);
    let salted = mechanism.salted_password(b"pencil", &credential.salt, credential.iterations);
    let bare = "n=user,r=clientnonce";
    let nonce = "clientnoncefuzznonce";
    let server_first = format!(
        "r={nonce},s={},i={}",
        b64.encode(&credential.salt),
        credential.iterations
    );
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let client_key = mechanism.hmac(&salted, b"Client Key");
    let signature = mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    (
        format!("n,,{bare}"),
        format!("{without_proof},p={}", b64.encode(proof)),
    )
}

/// A certificate for 127.0.0.1 with a subject of several attributes, signed by [`SEED_KEY`].
fn seed_certificate() -> Vec<u8> {
    let key = rcgen::KeyPair::from_pem(SEED_KEY).expect("the seed key");
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    params.serial_number = Some(rcgen::SerialNumber::from(7u64));
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CountryName, "US");
    dn.push(rcgen::DnType::OrganizationName, "Acme, Inc.");
    dn.push(rcgen::DnType::OrganizationalUnitName, "Apps");
    dn.push(rcgen::DnType::CommonName, "alice");
    params.distinguished_name = dn;
    params
        .self_signed(&key)
        .expect("a certificate")
        .der()
        .to_vec()
}

/// The first flight of a rustls client offering `versions`.
fn client_hello(versions: &[&'static rustls::SupportedProtocolVersion]) -> Vec<u8> {
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("a name");
    let mut client =
        rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("a client");
    let mut hello = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut hello).expect("written to a Vec");
    }
    hello
}

// ---- requests ---------------------------------------------------------------------------

/// Every served API at every served version (the refused legacy Produce versions too), plus a
/// Produce per compression codec.
pub fn requests() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (api, range) in starling_protocol::versions::all() {
        for version in range.min..=range.max {
            // Produce v0-2 are refused before their body is read; any body will do.
            let body_version = if starling_protocol::versions::is_refused_legacy(api, version) {
                3
            } else {
                version
            };
            let body = request_body(api, body_version, &plain_batch());
            let name = format!("{}-v{version}.bin", api_name(api));
            out.push((name, frame(api, version, body_version, &body)));
        }
    }
    for (codec, batch) in compressed_batches() {
        let body = request_body(ApiKey::Produce, 9, &batch);
        let name = format!("produce-v9-{codec}.bin");
        out.push((name, frame(ApiKey::Produce, 9, 9, &body)));
    }
    out
}

fn api_name(api: ApiKey) -> String {
    let mut name = String::new();
    for (i, c) in format!("{api:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

/// Header (as sent at `version`) then the body encoded at `body_version`.
fn frame(api: ApiKey, version: i16, body_version: i16, body: &RequestKind) -> Vec<u8> {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = 7;
    header.client_id = Some(sb("fuzz-seed"));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api.request_header_version(version))
        .expect("request header encodes");
    body.encode(&mut buf, body_version)
        .unwrap_or_else(|e| panic!("{api:?} v{body_version} seed does not encode: {e}"));
    buf.to_vec()
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn topic_name(s: &str) -> TopicName {
    TopicName(sb(s))
}

fn group_id(s: &str) -> GroupId {
    GroupId(sb(s))
}

const TOPIC_ID: uuid::Uuid = uuid::Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0001);

/// A realistic body for `api` at `version`: every array holds an element or two.
fn request_body(api: ApiKey, version: i16, records: &Bytes) -> RequestKind {
    match api {
        ApiKey::Produce => {
            let mut partition = PartitionProduceData::default();
            partition.index = 0;
            partition.records = Some(records.clone());
            let mut topic = TopicProduceData::default();
            topic.name = topic_name("t0");
            topic.topic_id = TOPIC_ID;
            topic.partition_data = vec![partition];
            let mut r = ProduceRequest::default();
            r.acks = -1;
            r.timeout_ms = 30_000;
            r.topic_data = vec![topic];
            r.into()
        }
        ApiKey::Fetch => {
            let mut partition = FetchPartition::default();
            partition.partition = 0;
            partition.fetch_offset = 0;
            partition.partition_max_bytes = 1 << 20;
            let mut topic = FetchTopic::default();
            topic.topic = topic_name("t0");
            topic.topic_id = TOPIC_ID;
            topic.partitions = vec![partition];
            let mut r = FetchRequest::default();
            r.max_wait_ms = 500;
            r.min_bytes = 1;
            r.max_bytes = 50 << 20;
            r.topics = vec![topic];
            if version >= 7 {
                let mut forgotten = ForgottenTopic::default();
                forgotten.topic = topic_name("t1");
                forgotten.topic_id = TOPIC_ID;
                forgotten.partitions = vec![1, 2];
                r.forgotten_topics_data = vec![forgotten];
            }
            r.rack_id = sb("rack-a");
            r.into()
        }
        ApiKey::ListOffsets => {
            let mut partition = ListOffsetsPartition::default();
            partition.partition_index = 0;
            partition.timestamp = -1;
            let mut topic = ListOffsetsTopic::default();
            topic.name = topic_name("t0");
            topic.partitions = vec![partition];
            let mut r = ListOffsetsRequest::default();
            r.replica_id = BrokerId(-1);
            r.topics = vec![topic];
            r.timeout_ms = 30_000;
            r.into()
        }
        ApiKey::Metadata => {
            let topics = ["t0", "t1"]
                .iter()
                .map(|name| {
                    let mut t = MetadataRequestTopic::default();
                    t.name = Some(topic_name(name));
                    t
                })
                .collect();
            let mut r = MetadataRequest::default();
            r.topics = Some(topics);
            r.into()
        }
        ApiKey::ApiVersions => {
            let mut r = ApiVersionsRequest::default();
            r.client_software_name = sb("starling-fuzz");
            r.client_software_version = sb("0.1.0");
            r.into()
        }
        ApiKey::CreateTopics => {
            let mut config = CreatableTopicConfig::default();
            config.name = sb("retention.ms");
            config.value = Some(sb("60000"));
            let mut plain = CreatableTopic::default();
            plain.name = topic_name("t-new");
            plain.num_partitions = 3;
            plain.replication_factor = 1;
            plain.configs = vec![config];
            let mut assignment = CreatableReplicaAssignment::default();
            assignment.partition_index = 0;
            assignment.broker_ids = vec![BrokerId(1)];
            let mut assigned = CreatableTopic::default();
            assigned.name = topic_name("t-assigned");
            assigned.num_partitions = -1;
            assigned.replication_factor = -1;
            assigned.assignments = vec![assignment];
            let mut r = CreateTopicsRequest::default();
            r.topics = vec![plain, assigned];
            r.timeout_ms = 30_000;
            r.into()
        }
        ApiKey::DeleteTopics => {
            let mut r = DeleteTopicsRequest::default();
            if version >= 6 {
                let mut state = DeleteTopicState::default();
                state.name = Some(topic_name("t0"));
                state.topic_id = TOPIC_ID;
                r.topics = vec![state];
            } else {
                r.topic_names = vec![topic_name("t0"), topic_name("t1")];
            }
            r.timeout_ms = 30_000;
            r.into()
        }
        ApiKey::CreatePartitions => {
            let mut assignment = CreatePartitionsAssignment::default();
            assignment.broker_ids = vec![BrokerId(1)];
            let mut topic = CreatePartitionsTopic::default();
            topic.name = topic_name("t0");
            topic.count = 4;
            topic.assignments = Some(vec![assignment]);
            let mut r = CreatePartitionsRequest::default();
            r.topics = vec![topic];
            r.timeout_ms = 30_000;
            r.into()
        }
        ApiKey::FindCoordinator => {
            let mut r = FindCoordinatorRequest::default();
            if version >= 4 {
                r.coordinator_keys = vec![sb("g0"), sb("g1")];
            } else {
                r.key = sb("g0");
            }
            r.into()
        }
        ApiKey::JoinGroup => {
            let protocols = [("cooperative-sticky", 3), ("range", 1)]
                .iter()
                .map(|(name, v)| {
                    let mut p = JoinGroupRequestProtocol::default();
                    p.name = sb(name);
                    p.metadata = blob(&Blob::Subscription {
                        version: *v,
                        topics: 0b011,
                    });
                    p
                })
                .collect();
            let mut r = JoinGroupRequest::default();
            r.group_id = group_id("g0");
            r.session_timeout_ms = 45_000;
            r.rebalance_timeout_ms = 300_000;
            r.member_id = sb("");
            if version >= 5 {
                r.group_instance_id = Some(sb("i0"));
            }
            r.protocol_type = sb("consumer");
            r.protocols = protocols;
            r.reason = Some(sb("rebalance failed due to UnknownMemberIdException"));
            r.into()
        }
        ApiKey::SyncGroup => {
            let mut assignment = SyncGroupRequestAssignment::default();
            assignment.member_id = sb("m-1");
            assignment.assignment = blob(&Blob::Assignment {
                version: 3,
                topics: 0b011,
                partitions: 0b0101,
            });
            let mut r = SyncGroupRequest::default();
            r.group_id = group_id("g0");
            r.generation_id = 1;
            r.member_id = sb("m-1");
            if version >= 3 {
                r.group_instance_id = Some(sb("i0"));
            }
            r.protocol_type = Some(sb("consumer"));
            r.protocol_name = Some(sb("range"));
            r.assignments = vec![assignment];
            r.into()
        }
        ApiKey::Heartbeat => {
            let mut r = HeartbeatRequest::default();
            r.group_id = group_id("g0");
            r.generation_id = 1;
            r.member_id = sb("m-1");
            if version >= 3 {
                r.group_instance_id = Some(sb("i0"));
            }
            r.into()
        }
        ApiKey::LeaveGroup => {
            let mut r = LeaveGroupRequest::default();
            r.group_id = group_id("g0");
            if version >= 3 {
                let mut member = MemberIdentity::default();
                member.member_id = sb("m-1");
                member.group_instance_id = Some(sb("i0"));
                member.reason = Some(sb("the consumer is being closed"));
                r.members = vec![member];
            } else {
                r.member_id = sb("m-1");
            }
            r.into()
        }
        ApiKey::OffsetCommit => {
            let mut partition = OffsetCommitRequestPartition::default();
            partition.partition_index = 0;
            partition.committed_offset = 42;
            partition.committed_leader_epoch = 3;
            partition.committed_metadata = Some(sb(""));
            let mut topic = OffsetCommitRequestTopic::default();
            topic.name = topic_name("t0");
            topic.partitions = vec![partition];
            let mut r = OffsetCommitRequest::default();
            r.group_id = group_id("g0");
            r.generation_id_or_member_epoch = 1;
            r.member_id = sb("m-1");
            if version >= 7 {
                r.group_instance_id = Some(sb("i0"));
            }
            r.retention_time_ms = -1;
            r.topics = vec![topic];
            r.into()
        }
        ApiKey::OffsetFetch => {
            let mut r = OffsetFetchRequest::default();
            if version >= 8 {
                let mut topic = OffsetFetchRequestTopics::default();
                topic.name = topic_name("t0");
                topic.partition_indexes = vec![0, 1];
                let mut group = OffsetFetchRequestGroup::default();
                group.group_id = group_id("g0");
                group.topics = Some(vec![topic]);
                let mut all = OffsetFetchRequestGroup::default();
                all.group_id = group_id("g1");
                all.topics = None;
                r.groups = vec![group, all];
            } else {
                let mut topic = OffsetFetchRequestTopic::default();
                topic.name = topic_name("t0");
                topic.partition_indexes = vec![0, 1];
                r.group_id = group_id("g0");
                r.topics = Some(vec![topic]);
            }
            r.require_stable = version >= 7;
            r.into()
        }
        ApiKey::DescribeGroups => {
            let mut r = DescribeGroupsRequest::default();
            r.groups = vec![group_id("g0"), group_id("g1")];
            r.into()
        }
        ApiKey::ListGroups => {
            let mut r = ListGroupsRequest::default();
            if version >= 4 {
                r.states_filter = vec![sb("Stable"), sb("Empty")];
            }
            if version >= 5 {
                r.types_filter = vec![sb("consumer")];
            }
            r.into()
        }
        ApiKey::DeleteGroups => {
            let mut r = DeleteGroupsRequest::default();
            r.groups_names = vec![group_id("g0"), group_id("g1")];
            r.into()
        }
        ApiKey::OffsetDelete => {
            let mut partition = OffsetDeleteRequestPartition::default();
            partition.partition_index = 0;
            let mut topic = OffsetDeleteRequestTopic::default();
            topic.name = topic_name("t0");
            topic.partitions = vec![partition];
            let mut r = OffsetDeleteRequest::default();
            r.group_id = group_id("g0");
            r.topics = vec![topic];
            r.into()
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let mut r = ConsumerGroupHeartbeatRequest::default();
            r.group_id = group_id("g0");
            r.member_id = sb("m-0");
            r.member_epoch = 0;
            r.rebalance_timeout_ms = 30_000;
            r.subscribed_topic_names = Some(vec![topic_name("t0")]);
            if version >= 1 {
                r.subscribed_topic_regex = Some(sb("t.*"));
            }
            r.server_assignor = Some(sb("uniform"));
            r.topic_partitions = Some(Vec::new());
            r.into()
        }
        ApiKey::ConsumerGroupDescribe => {
            let mut r = ConsumerGroupDescribeRequest::default();
            r.group_ids = vec![group_id("g0"), group_id("g1")];
            r.into()
        }
        ApiKey::InitProducerId => {
            let mut r = InitProducerIdRequest::default();
            r.transaction_timeout_ms = 60_000;
            r.into()
        }
        ApiKey::AddPartitionsToTxn => {
            let mut t = AddPartitionsToTxnTopic::default();
            t.name = topic_name("t0");
            t.partitions = vec![0, 1];
            let mut r = AddPartitionsToTxnRequest::default();
            r.v3_and_below_transactional_id = TransactionalId(sb("app"));
            r.v3_and_below_producer_id = ProducerId(0);
            r.v3_and_below_topics = vec![t];
            r.into()
        }
        ApiKey::AddOffsetsToTxn => {
            let mut r = AddOffsetsToTxnRequest::default();
            r.transactional_id = TransactionalId(sb("app"));
            r.group_id = group_id("g0");
            r.into()
        }
        ApiKey::DeleteRecords => {
            let mut p = DeleteRecordsPartition::default();
            p.partition_index = 0;
            p.offset = 5;
            let mut t = DeleteRecordsTopic::default();
            t.name = topic_name("t0");
            t.partitions = vec![p];
            let mut r = DeleteRecordsRequest::default();
            r.topics = vec![t];
            r.timeout_ms = 1000;
            r.into()
        }
        ApiKey::EndTxn => {
            let mut r = EndTxnRequest::default();
            r.transactional_id = TransactionalId(sb("app"));
            r.committed = true;
            r.into()
        }
        ApiKey::TxnOffsetCommit => {
            let mut p = TxnOffsetCommitRequestPartition::default();
            p.committed_offset = 5;
            p.committed_metadata = Some(sb("m"));
            let mut t = TxnOffsetCommitRequestTopic::default();
            t.name = topic_name("t0");
            t.partitions = vec![p];
            let mut r = TxnOffsetCommitRequest::default();
            r.transactional_id = TransactionalId(sb("app"));
            r.group_id = group_id("g0");
            r.topics = vec![t];
            if version >= 3 {
                r.member_id = sb("m-1");
                r.generation_id = 1;
            }
            r.into()
        }
        ApiKey::DescribeProducers => {
            let mut t = TopicRequest::default();
            t.name = topic_name("t0");
            t.partition_indexes = vec![0, 1];
            let mut r = DescribeProducersRequest::default();
            r.topics = vec![t];
            r.into()
        }
        ApiKey::DescribeTransactions => {
            let mut r = DescribeTransactionsRequest::default();
            r.transactional_ids = vec![TransactionalId(sb("app")), TransactionalId(sb("other"))];
            r.into()
        }
        ApiKey::ListTransactions => {
            let mut r = ListTransactionsRequest::default();
            r.state_filters = vec![sb("Ongoing"), sb("PrepareCommit")];
            r.producer_id_filters = vec![ProducerId(0), ProducerId(7)];
            if version >= 1 {
                r.duration_filter = 60_000;
            }
            r.into()
        }
        ApiKey::DescribeCluster => {
            let mut r = DescribeClusterRequest::default();
            r.include_cluster_authorized_operations = true;
            if version >= 1 {
                r.endpoint_type = 1;
            }
            if version >= 2 {
                r.include_fenced_brokers = true;
            }
            r.into()
        }
        ApiKey::OffsetForLeaderEpoch => {
            let partition = |index, epoch| {
                let mut p = OffsetForLeaderPartition::default();
                p.partition = index;
                p.current_leader_epoch = 0;
                p.leader_epoch = epoch;
                p
            };
            let mut t = OffsetForLeaderTopic::default();
            t.topic = topic_name("t0");
            t.partitions = vec![partition(0, 0), partition(1, -1)];
            let mut r = OffsetForLeaderEpochRequest::default();
            if version >= 3 {
                r.replica_id = BrokerId(-1);
            }
            r.topics = vec![t];
            r.into()
        }
        ApiKey::DescribeLogDirs => {
            let mut t = DescribableLogDirTopic::default();
            t.topic = topic_name("t0");
            t.partitions = vec![0, 1];
            let mut r = DescribeLogDirsRequest::default();
            r.topics = Some(vec![t]);
            r.into()
        }
        ApiKey::DescribeTopicPartitions => {
            let topic = |name: &str| {
                let mut t = PartitionsTopic::default();
                t.name = topic_name(name);
                t
            };
            let mut cursor = PartitionsCursor::default();
            cursor.topic_name = topic_name("t0");
            cursor.partition_index = 1;
            let mut r = DescribeTopicPartitionsRequest::default();
            r.topics = vec![topic("t0"), topic("t1")];
            r.response_partition_limit = 10;
            r.cursor = Some(cursor);
            r.into()
        }
        ApiKey::ElectLeaders => {
            let mut t = ElectTopicPartitions::default();
            t.topic = topic_name("t0");
            t.partitions = vec![0, 1];
            let mut r = ElectLeadersRequest::default();
            if version >= 1 {
                r.election_type = 1;
            }
            r.topic_partitions = Some(vec![t]);
            r.timeout_ms = 1000;
            r.into()
        }
        ApiKey::ListPartitionReassignments => {
            let mut t = ListPartitionReassignmentsTopics::default();
            t.name = topic_name("t0");
            t.partition_indexes = vec![0, 2];
            let mut r = ListPartitionReassignmentsRequest::default();
            r.topics = Some(vec![t]);
            r.timeout_ms = 1000;
            r.into()
        }
        ApiKey::AlterPartitionReassignments => {
            let partition = |index, replicas: Option<Vec<i32>>| {
                let mut p = ReassignablePartition::default();
                p.partition_index = index;
                p.replicas = replicas.map(|r| r.into_iter().map(BrokerId).collect());
                p
            };
            let mut t = ReassignableTopic::default();
            t.name = topic_name("t0");
            t.partitions = vec![partition(0, Some(vec![1, 2])), partition(1, None)];
            let mut r = AlterPartitionReassignmentsRequest::default();
            if version >= 1 {
                r.allow_replication_factor_change = false;
            }
            r.topics = vec![t];
            r.timeout_ms = 1000;
            r.into()
        }
        ApiKey::DescribeConfigs => {
            use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
            use kafka_protocol::messages::DescribeConfigsRequest;
            let mut topic = DescribeConfigsResource::default();
            topic.resource_type = 2;
            topic.resource_name = StrBytes::from_static_str("t0");
            topic.configuration_keys = Some(vec![StrBytes::from_static_str("retention.ms")]);
            let mut broker = DescribeConfigsResource::default();
            broker.resource_type = 4;
            broker.resource_name = StrBytes::from_static_str("1");
            let mut r = DescribeConfigsRequest::default();
            r.resources = vec![topic, broker];
            r.include_synonyms = true;
            if version >= 3 {
                r.include_documentation = true;
            }
            r.into()
        }
        ApiKey::AlterConfigs => {
            use kafka_protocol::messages::alter_configs_request::{
                AlterConfigsResource, AlterableConfig,
            };
            use kafka_protocol::messages::AlterConfigsRequest;
            let mut config = AlterableConfig::default();
            config.name = StrBytes::from_static_str("retention.ms");
            config.value = Some(StrBytes::from_static_str("60000"));
            let mut resource = AlterConfigsResource::default();
            resource.resource_type = 2;
            resource.resource_name = StrBytes::from_static_str("t0");
            resource.configs = vec![config];
            let mut r = AlterConfigsRequest::default();
            r.resources = vec![resource];
            r.validate_only = true;
            r.into()
        }
        ApiKey::IncrementalAlterConfigs => {
            use kafka_protocol::messages::incremental_alter_configs_request::{
                AlterConfigsResource, AlterableConfig,
            };
            use kafka_protocol::messages::IncrementalAlterConfigsRequest;
            let config = |name: &'static str, op: i8, value: Option<&'static str>| {
                let mut c = AlterableConfig::default();
                c.name = StrBytes::from_static_str(name);
                c.config_operation = op;
                c.value = value.map(StrBytes::from_static_str);
                c
            };
            let mut resource = AlterConfigsResource::default();
            resource.resource_type = 2;
            resource.resource_name = StrBytes::from_static_str("t0");
            resource.configs = vec![
                config("retention.ms", 0, Some("60000")),
                config("segment.ms", 1, None),
                config("cleanup.policy", 2, Some("delete")),
            ];
            let mut r = IncrementalAlterConfigsRequest::default();
            r.resources = vec![resource];
            r.into()
        }
        ApiKey::DescribeClientQuotas => {
            let component = |entity_type: &str, match_type, name: Option<&str>| {
                let mut c = ComponentData::default();
                c.entity_type = StrBytes::from_string(entity_type.into());
                c.match_type = match_type;
                c._match = name.map(|n| StrBytes::from_string(n.into()));
                c
            };
            let mut r = DescribeClientQuotasRequest::default();
            r.components = vec![
                component("user", 1, None),
                component("client-id", 0, Some("app")),
            ];
            r.strict = version >= 1;
            r.into()
        }
        ApiKey::AlterClientQuotas => {
            let entity = |entity_type: &str, name: Option<&str>| {
                let mut e = AlterEntityData::default();
                e.entity_type = StrBytes::from_string(entity_type.into());
                e.entity_name = name.map(|n| StrBytes::from_string(n.into()));
                e
            };
            let op = |key: &str, value, remove| {
                let mut o = OpData::default();
                o.key = StrBytes::from_string(key.into());
                o.value = value;
                o.remove = remove;
                o
            };
            let mut e = AlterEntryData::default();
            e.entity = vec![entity("user", None), entity("client-id", Some("app"))];
            e.ops = vec![
                op("producer_byte_rate", 1024.0, false),
                op("request_percentage", 0.0, true),
            ];
            let mut r = AlterClientQuotasRequest::default();
            r.entries = vec![e];
            r.validate_only = version >= 1;
            r.into()
        }
        ApiKey::DescribeAcls => {
            // Topics whose prefixed or literal ACLs apply to `payments`, any operation.
            let mut r = DescribeAclsRequest::default();
            r.resource_type_filter = 2;
            r.resource_name_filter = Some(StrBytes::from_static_str("payments"));
            r.pattern_type_filter = 2;
            r.principal_filter = Some(StrBytes::from_static_str("User:alice"));
            r.host_filter = None;
            r.operation = 1;
            r.permission_type = 1;
            r.into()
        }
        ApiKey::CreateAcls => {
            let creation = |resource_type, name: &'static str, pattern_type, operation| {
                let mut c = AclCreation::default();
                c.resource_type = resource_type;
                c.resource_name = StrBytes::from_static_str(name);
                c.resource_pattern_type = pattern_type;
                c.principal = StrBytes::from_static_str("User:alice");
                c.host = StrBytes::from_static_str("*");
                c.operation = operation;
                c.permission_type = 3;
                c
            };
            let mut r = CreateAclsRequest::default();
            r.creations = vec![
                creation(2, "pay", 4, 3),
                creation(3, "billing", 3, 3),
                creation(4, "kafka-cluster", 3, 12),
            ];
            r.into()
        }
        ApiKey::DeleteAcls => {
            let mut all_topics = DeleteAclsFilter::default();
            all_topics.resource_type_filter = 2;
            all_topics.resource_name_filter = None;
            all_topics.pattern_type_filter = 1;
            all_topics.operation = 1;
            all_topics.permission_type = 1;
            let mut one = DeleteAclsFilter::default();
            one.resource_type_filter = 3;
            one.resource_name_filter = Some(StrBytes::from_static_str("billing"));
            one.pattern_type_filter = 3;
            one.principal_filter = Some(StrBytes::from_static_str("User:alice"));
            one.host_filter = Some(StrBytes::from_static_str("*"));
            one.operation = 3;
            one.permission_type = 3;
            let mut r = DeleteAclsRequest::default();
            r.filters = vec![all_topics, one];
            r.into()
        }
        ApiKey::SaslHandshake => {
            let mut r = SaslHandshakeRequest::default();
            r.mechanism = StrBytes::from_static_str("SCRAM-SHA-512");
            r.into()
        }
        ApiKey::SaslAuthenticate => {
            let mut r = SaslAuthenticateRequest::default();
            r.auth_bytes = Bytes::from_static(b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL");
            r.into()
        }
        ApiKey::DescribeUserScramCredentials => {
            let mut user = UserName::default();
            user.name = StrBytes::from_static_str("alice");
            let mut r = DescribeUserScramCredentialsRequest::default();
            r.users = Some(vec![user]);
            r.into()
        }
        ApiKey::AlterUserScramCredentials => {
            let mut deletion = ScramCredentialDeletion::default();
            deletion.name = StrBytes::from_static_str("bob");
            deletion.mechanism = 2;
            let mut upsertion = ScramCredentialUpsertion::default();
            upsertion.name = StrBytes::from_static_str("alice");
            upsertion.mechanism = 1;
            upsertion.iterations = 4096;
            upsertion.salt = Bytes::from_static(b"0123456789abcdef");
            upsertion.salted_password = Bytes::from_static(&[0x5a; 32]);
            let mut r = AlterUserScramCredentialsRequest::default();
            r.deletions = vec![deletion];
            r.upsertions = vec![upsertion];
            r.into()
        }
        other => panic!("no seed for {other:?}: add one when the broker serves it"),
    }
}

// ---- record batches ---------------------------------------------------------------------

/// A producer's record.
fn record(
    offset: i64,
    key: Option<&str>,
    value: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        // Not idempotent: the batch's base sequence is -1 (and records whose offset minus
        // sequence agree share one batch).
        sequence: (offset - 1) as i32,
        timestamp: 1_700_000_000_000 + offset * 7,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: value.map(Bytes::copy_from_slice),
        headers: headers
            .iter()
            .map(|(k, v)| (sb(k), Some(Bytes::copy_from_slice(v.as_bytes()))))
            .collect::<IndexMap<_, _>>(),
    }
}

/// Encodes records as v2 batches (one per run of records with the same producer fields),
/// wrapping the records of each in a stored stream of `compression`.
fn encode_batches(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode_with_custom_compression(
        &mut buf,
        records,
        &options,
        Some(
            |raw: &mut BytesMut, out: &mut BytesMut, c: Compression| -> anyhow::Result<()> {
                out.extend_from_slice(&stored_stream(c, raw));
                Ok(())
            },
        ),
    )
    .expect("seed batches encode");
    buf.freeze()
}

fn plain_batch() -> Bytes {
    encode_batches(&[record(0, None, Some(b"hello"), &[])], Compression::None)
}

/// Several records with keys and headers, one per codec.
fn compressed_batches() -> Vec<(&'static str, Bytes)> {
    let records: Vec<Record> = (0..4)
        .map(|i| {
            record(
                i,
                Some(&format!("key-{i}")),
                Some(format!("value {i} of a compressed batch").as_bytes()),
                &[("trace", "abc")],
            )
        })
        .collect();
    [
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ]
    .into_iter()
    .map(|(name, c)| (name, encode_batches(&records, c)))
    .collect()
}

/// Record sets as producers send them.
pub fn record_sets() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, bytes: Bytes| out.push((name.to_string(), bytes.to_vec()));

    add("one_record", plain_batch());
    let keyed: Vec<Record> = (0..5)
        .map(|i| {
            record(
                i,
                Some(&format!("user-{i}")),
                Some(format!("{{\"n\":{i}}}").as_bytes()),
                &[("content-type", "json"), ("trace", "t-1")],
            )
        })
        .collect();
    add(
        "keys_and_headers",
        encode_batches(&keyed, Compression::None),
    );

    let idempotent: Vec<Record> = (0..3)
        .map(|i| Record {
            producer_id: 1000,
            producer_epoch: 0,
            sequence: i as i32,
            ..record(i, None, Some(b"idempotent"), &[])
        })
        .collect();
    add("idempotent", encode_batches(&idempotent, Compression::None));

    let transactional: Vec<Record> = (0..2)
        .map(|i| Record {
            transactional: true,
            producer_id: 2000,
            producer_epoch: 1,
            sequence: i as i32,
            ..record(i, Some("k"), Some(b"in a transaction"), &[])
        })
        .collect();
    add(
        "transactional",
        encode_batches(&transactional, Compression::None),
    );

    // Two plain batches in one set (a set with a producer id holds one batch: see
    // `idempotent`).
    let plain = |i| record(i, None, Some(b"two batches"), &[]);
    let mut two = encode_batches(&[plain(0), plain(1)], Compression::None).to_vec();
    two.extend_from_slice(&encode_batches(&[plain(0)], Compression::None));
    add("two_batches", Bytes::from(two));

    let tombstones = vec![
        record(0, Some("gone"), None, &[]),
        record(1, Some("empty"), Some(b""), &[]),
    ];
    add(
        "tombstone_and_empty_value",
        encode_batches(&tombstones, Compression::None),
    );

    let large = vec![record(0, Some("big"), Some(&[b'x'; 2048]), &[])];
    add("large_value", encode_batches(&large, Compression::None));

    for (codec, batch) in compressed_batches() {
        add(&format!("compressed_{codec}"), batch);
    }
    let records: Vec<Record> = (0..3)
        .map(|i| record(i, Some("k"), Some(b"xerial framed"), &[]))
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode_with_custom_compression(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::Snappy,
        },
        Some(
            |raw: &mut BytesMut, out: &mut BytesMut, _: Compression| -> anyhow::Result<()> {
                out.extend_from_slice(&xerial_snappy(raw));
                Ok(())
            },
        ),
    )
    .expect("seed batches encode");
    add("compressed_snappy_xerial", buf.freeze());

    add("legacy_v1_message", Bytes::from(legacy_v1_message()));
    out
}

/// One magic-1 message (offset, size, crc, magic, attributes, timestamp, key, value).
fn legacy_v1_message() -> Vec<u8> {
    let mut body = vec![1u8, 0];
    body.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    body.extend_from_slice(&(-1i32).to_be_bytes());
    body.extend_from_slice(&5i32.to_be_bytes());
    body.extend_from_slice(b"hello");
    let mut message = crc32_ieee(&body).to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    let mut out = 0i64.to_be_bytes().to_vec();
    out.extend_from_slice(&(message.len() as i32).to_be_bytes());
    out.extend_from_slice(&message);
    out
}

/// The records, unchanged, in a valid stream of `codec` that stores rather than compresses.
fn stored_stream(codec: Compression, raw: &[u8]) -> Vec<u8> {
    match codec {
        Compression::None => raw.to_vec(),
        Compression::Gzip => gzip_stored(raw),
        Compression::Snappy => snappy_literals(raw),
        Compression::Lz4 => lz4_frame_uncompressed(raw),
        Compression::Zstd => zstd_raw(raw),
    }
}

/// gzip (RFC 1952) around deflate stored blocks (RFC 1951 §3.2.4).
fn gzip_stored(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = raw.chunks(0xffff).peekable();
    if raw.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32_ieee(raw).to_le_bytes());
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out
}

/// A raw snappy block of literals only.
fn snappy_literals(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = raw.len() as u32;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    for chunk in raw.chunks(0x1_0000) {
        let len = chunk.len() - 1;
        if len < 60 {
            out.push((len as u8) << 2);
        } else {
            out.push(61 << 2);
            out.extend_from_slice(&(len as u16).to_le_bytes());
        }
        out.extend_from_slice(chunk);
    }
    out
}

/// Snappy in the xerial framing the Java client writes: a magic header, then blocks, each an
/// i32 length and a raw snappy block.
fn xerial_snappy(raw: &[u8]) -> Vec<u8> {
    let mut out = b"\x82SNAPPY\x00".to_vec();
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    for chunk in raw.chunks(32 * 1024) {
        let block = snappy_literals(chunk);
        out.extend_from_slice(&(block.len() as i32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    out
}

/// An LZ4 frame (independent blocks, 64 KB maximum, no checksums) of uncompressed blocks.
fn lz4_frame_uncompressed(raw: &[u8]) -> Vec<u8> {
    let descriptor = [0x60u8, 0x40];
    let mut out = vec![0x04, 0x22, 0x4d, 0x18];
    out.extend_from_slice(&descriptor);
    out.push((xxh32(&descriptor, 0) >> 8) as u8);
    for chunk in raw.chunks(64 * 1024) {
        out.extend_from_slice(&(chunk.len() as u32 | 0x8000_0000).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out
}

/// A zstd frame (128 KB window, no checksum) of raw blocks.
fn zstd_raw(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3];
    let mut chunks = raw.chunks(128 * 1024).peekable();
    if raw.is_empty() {
        out.extend_from_slice(&[1, 0, 0]);
    }
    while let Some(chunk) = chunks.next() {
        let last = u32::from(chunks.peek().is_none());
        let header = last | (chunk.len() as u32) << 3;
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
    }
    out
}

/// CRC-32 (IEEE, reflected), as gzip and magic v0/v1 messages use.
fn crc32_ieee(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// xxHash32, for the LZ4 frame descriptor checksum.
fn xxh32(data: &[u8], seed: u32) -> u32 {
    const P1: u32 = 0x9e37_79b1;
    const P2: u32 = 0x85eb_ca77;
    const P3: u32 = 0xc2b2_ae3d;
    const P4: u32 = 0x27d4_eb2f;
    const P5: u32 = 0x1656_67b1;
    let round = |acc: u32, lane: u32| {
        acc.wrapping_add(lane.wrapping_mul(P2))
            .rotate_left(13)
            .wrapping_mul(P1)
    };
    let mut rest = data;
    let mut h = if data.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while rest.len() >= 16 {
            for (i, lane) in v.iter_mut().enumerate() {
                let word = u32::from_le_bytes(rest[i * 4..i * 4 + 4].try_into().unwrap());
                *lane = round(*lane, word);
            }
            rest = &rest[16..];
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(data.len() as u32);
    while rest.len() >= 4 {
        let word = u32::from_le_bytes(rest[..4].try_into().unwrap());
        h = h
            .wrapping_add(word.wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
        rest = &rest[4..];
    }
    for &byte in rest {
        h = h
            .wrapping_add(u32::from(byte).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^= h >> 16;
    h
}

// ---- coordinator scripts ----------------------------------------------------------------

/// The index of `version` in the served range of `api` (what a script's version byte holds).
fn v(api: ApiKey, version: i16) -> u8 {
    let range = starling_protocol::versions::supported(api).expect("served");
    assert!((range.min..=range.max).contains(&version));
    (version - range.min) as u8
}

fn g0() -> GroupRef {
    GroupRef::Pool(0)
}

fn subscription(topics: u8) -> Blob {
    Blob::Subscription { version: 3, topics }
}

fn join(member: MemberRef, version: i16) -> Op {
    Op::Join(Join {
        version: v(ApiKey::JoinGroup, version),
        group: g0(),
        member,
        instance: InstanceRef::None,
        session: Timeout::Pool(0),
        rebalance: Timeout::Pool(0),
        protocol_type: Label::Pool(0),
        protocols: vec![(Label::Pool(1), subscription(0b011))],
        reason: None,
    })
}

fn static_join(member: MemberRef, instance: u8) -> Op {
    let Op::Join(j) = join(member, 9) else {
        unreachable!()
    };
    Op::Join(Join {
        instance: InstanceRef::Pool(instance),
        ..j
    })
}

fn sync(member: MemberRef, assignments: Vec<(MemberRef, Blob)>) -> Op {
    Op::Sync(Sync {
        version: v(ApiKey::SyncGroup, 5),
        group: g0(),
        member,
        instance: InstanceRef::None,
        generation: GenerationRef::Current,
        protocol: Some((Label::Pool(0), Label::Pool(1))),
        assignments,
    })
}

fn assignment(topics: u8, partitions: u8) -> Blob {
    Blob::Assignment {
        version: 3,
        topics,
        partitions,
    }
}

fn heartbeat(member: MemberRef) -> Op {
    Op::Heartbeat {
        version: v(ApiKey::Heartbeat, 4),
        group: g0(),
        member,
        instance: InstanceRef::None,
        generation: GenerationRef::Current,
    }
}

fn commit(member: MemberRef, generation: GenerationRef, offset: u8) -> Op {
    Op::Commit(Commit {
        version: v(ApiKey::OffsetCommit, 8),
        group: g0(),
        member,
        instance: InstanceRef::None,
        generation,
        retention: None,
        offsets: vec![
            CommitOffset {
                topic: TopicRef::Pool(0),
                partition: Partition::Small(0),
                offset: Offset::Small(offset),
                metadata: Metadata::Text(String::new()),
                leader_epoch: -1,
            },
            CommitOffset {
                topic: TopicRef::Pool(1),
                partition: Partition::Small(1),
                offset: Offset::Small(offset.wrapping_add(1)),
                metadata: Metadata::Null,
                leader_epoch: 2,
            },
        ],
    })
}

fn fetch_all(version: i16) -> Op {
    Op::Fetch {
        version: v(ApiKey::OffsetFetch, version),
        groups: vec![(g0(), None)],
        require_stable: true,
    }
}

fn leave(members: Vec<MemberRef>, version: i16) -> Op {
    Op::Leave {
        version: v(ApiKey::LeaveGroup, version),
        group: g0(),
        members: members
            .into_iter()
            .map(|m| {
                (
                    m,
                    InstanceRef::None,
                    Some("the consumer is being closed".into()),
                )
            })
            .collect(),
    }
}

/// The first member: a KIP-394 join (member id required), the rejoin, the join barrier.
fn first_member() -> Vec<Op> {
    vec![
        join(MemberRef::Empty, 9),
        join(MemberRef::Known(0), 9),
        Op::Sleep(0),
    ]
}

/// Scripts that walk the main paths of the group protocol.
pub fn scripts() -> Vec<(&'static str, Script)> {
    let defaults = Settings::default();
    let mut out: Vec<(&'static str, Script)> = Vec::new();
    let mut add = |name: &'static str, settings: Settings, ops: Vec<Op>| {
        out.push((name, Script { settings, ops }));
    };

    let mut lifecycle = first_member();
    lifecycle.extend([
        sync(
            MemberRef::Known(0),
            vec![(MemberRef::Known(0), assignment(0b011, 0b11))],
        ),
        heartbeat(MemberRef::Known(0)),
        commit(MemberRef::Known(0), GenerationRef::Current, 10),
        fetch_all(8),
        fetch_all(5),
        Op::Describe {
            version: v(ApiKey::DescribeGroups, 5),
            groups: vec![g0(), GroupRef::Pool(1)],
        },
        Op::List {
            version: v(ApiKey::ListGroups, 5),
            states: vec![Label::Pool(5)],
            types: vec![Label::Pool(0)],
        },
        leave(vec![MemberRef::Known(0)], 5),
        Op::OffsetDelete {
            version: 0,
            group: g0(),
            topics: vec![(TopicRef::Pool(0), vec![Partition::Small(0)])],
        },
        Op::DeleteGroups {
            version: v(ApiKey::DeleteGroups, 2),
            groups: vec![g0()],
        },
    ]);
    add("one_member_lifecycle", defaults, lifecycle);

    let mut rebalance = first_member();
    rebalance.extend([
        sync(
            MemberRef::Known(0),
            vec![(MemberRef::Known(0), assignment(0b011, 0b1111))],
        ),
        // A second member: the group rebalances.
        join(MemberRef::Empty, 9),
        join(MemberRef::Known(1), 9),
        heartbeat(MemberRef::Known(0)),
        join(MemberRef::Known(0), 9),
        sync(MemberRef::Known(1), vec![]),
        sync(
            MemberRef::Known(0),
            vec![
                (MemberRef::Known(0), assignment(0b001, 0b1111)),
                (MemberRef::Known(1), assignment(0b010, 0b1111)),
            ],
        ),
        heartbeat(MemberRef::Known(1)),
        commit(MemberRef::Known(1), GenerationRef::Current, 5),
        commit(MemberRef::Known(0), GenerationRef::Previous, 6),
        Op::Sleep(4_000),
        heartbeat(MemberRef::Known(0)),
        heartbeat(MemberRef::Known(1)),
    ]);
    add("two_members_rebalance", defaults, rebalance);

    let mut cooperative = first_member();
    cooperative.extend([
        sync(
            MemberRef::Known(0),
            vec![(MemberRef::Known(0), assignment(0b111, 0b11))],
        ),
        join(MemberRef::Empty, 9),
        join(MemberRef::Known(1), 9),
        join(MemberRef::Known(0), 9),
        sync(
            MemberRef::Known(0),
            vec![
                (MemberRef::Known(0), assignment(0b001, 0b11)),
                (MemberRef::Known(1), Blob::Empty),
            ],
        ),
        sync(MemberRef::Known(1), vec![]),
        // The follow-up round hands the revoked partitions to the newcomer.
        join(MemberRef::Known(0), 9),
        join(MemberRef::Known(1), 9),
        sync(
            MemberRef::Known(0),
            vec![
                (MemberRef::Known(0), assignment(0b001, 0b11)),
                (MemberRef::Known(1), assignment(0b110, 0b11)),
            ],
        ),
        sync(MemberRef::Known(1), vec![]),
    ]);
    add("cooperative_two_rounds", defaults, cooperative);

    let statics = vec![
        static_join(MemberRef::Empty, 0),
        Op::Sleep(0),
        sync(
            MemberRef::Known(0),
            vec![(MemberRef::Known(0), assignment(0b001, 1))],
        ),
        // The same instance restarts without its member id: replaced without a rebalance.
        static_join(MemberRef::Empty, 0),
        Op::Heartbeat {
            version: v(ApiKey::Heartbeat, 4),
            group: g0(),
            member: MemberRef::Known(0),
            instance: InstanceRef::Pool(0),
            generation: GenerationRef::Current,
        },
        static_join(MemberRef::Empty, 1),
        Op::Sleep(0),
        Op::Leave {
            version: v(ApiKey::LeaveGroup, 5),
            group: g0(),
            members: vec![(MemberRef::Empty, InstanceRef::Pool(0), None)],
        },
        Op::ExpireNext,
    ];
    add("static_members", defaults, statics);

    let mut expiry = first_member();
    expiry.extend([
        sync(
            MemberRef::Known(0),
            vec![(MemberRef::Known(0), assignment(0b001, 1))],
        ),
        commit(MemberRef::Known(0), GenerationRef::Current, 1),
        // Past the 10 s session: the member is dropped, the group empties.
        Op::Sleep(11_000),
        heartbeat(MemberRef::Known(0)),
        Op::ExpireNext,
        Op::ExpireNext,
        fetch_all(9),
    ]);
    add("session_expiry", defaults, expiry);

    let old = vec![
        join(MemberRef::Empty, 0),
        Op::Sleep(0),
        Op::Sync(Sync {
            version: 0,
            group: g0(),
            member: MemberRef::Known(0),
            instance: InstanceRef::None,
            generation: GenerationRef::Current,
            protocol: None,
            assignments: vec![(MemberRef::Known(0), assignment(0b001, 1))],
        }),
        Op::Heartbeat {
            version: 0,
            group: g0(),
            member: MemberRef::Known(0),
            instance: InstanceRef::None,
            generation: GenerationRef::Current,
        },
        Op::Commit(Commit {
            version: 0,
            retention: Some(86_400_000),
            ..match commit(MemberRef::Known(0), GenerationRef::Current, 3) {
                Op::Commit(c) => c,
                _ => unreachable!(),
            }
        }),
        fetch_all(1),
        leave(vec![MemberRef::Known(0)], 0),
    ];
    add("old_versions", defaults, old);

    let simple = vec![
        commit(MemberRef::Empty, GenerationRef::Minus1, 100),
        Op::Fetch {
            version: v(ApiKey::OffsetFetch, 6),
            groups: vec![(
                g0(),
                Some(vec![(
                    TopicRef::Pool(0),
                    vec![Partition::Small(0), Partition::Small(1)],
                )]),
            )],
            require_stable: false,
        },
        Op::Sleep(70_000),
        fetch_all(8),
        Op::Restart,
        fetch_all(8),
    ];
    add(
        "simple_commits_and_retention",
        Settings {
            short_retention: true,
            ..defaults
        },
        simple,
    );

    let mut restart = first_member();
    restart.extend([
        sync(
            MemberRef::Known(0),
            vec![(MemberRef::Known(0), assignment(0b001, 1))],
        ),
        join(MemberRef::Empty, 9),
        join(MemberRef::Known(1), 9),
        Op::Restart,
        heartbeat(MemberRef::Known(0)),
        join(MemberRef::Known(0), 9),
        join(MemberRef::Known(1), 9),
        Op::ExpireNext,
        Op::Rewind(5_000),
        heartbeat(MemberRef::Known(1)),
    ]);
    add("restart_mid_rebalance", defaults, restart);

    let mut hostile = vec![Op::Join(Join {
        protocols: vec![
            // topics count 0x7fffffff, then nothing.
            (
                Label::Pool(1),
                Blob::Raw(vec![0, 0, 0x7f, 0xff, 0xff, 0xff]),
            ),
            (Label::Raw("x".repeat(40)), Blob::Raw(vec![0xff, 0xff])),
        ],
        ..match join(MemberRef::Empty, 9) {
            Op::Join(j) => j,
            _ => unreachable!(),
        }
    })];
    hostile.extend(first_member());
    hostile.push(sync(
        MemberRef::Known(0),
        vec![
            // assignment v3 with 0x7fffffff topics.
            (
                MemberRef::Known(0),
                Blob::Raw(vec![0, 3, 0x7f, 0xff, 0xff, 0xff]),
            ),
            (MemberRef::Raw("stranger".into()), assignment(0b111, 0xff)),
        ],
    ));
    hostile.push(Op::Commit(Commit {
        offsets: vec![CommitOffset {
            topic: TopicRef::Raw("t0".into()),
            partition: Partition::Raw(-1),
            offset: Offset::Raw(i64::MAX),
            metadata: Metadata::Long(5000),
            leader_epoch: i32::MIN,
        }],
        ..match commit(MemberRef::Known(0), GenerationRef::Raw(i32::MAX), 0) {
            Op::Commit(c) => c,
            _ => unreachable!(),
        }
    }));
    add("hostile_metadata_and_assignments", defaults, hostile);

    let crowded = vec![
        join(MemberRef::Empty, 9),
        join(MemberRef::Known(0), 9),
        join(MemberRef::Empty, 9),
        join(MemberRef::Known(1), 9),
        join(MemberRef::Empty, 9),
        join(MemberRef::Known(2), 9),
        Op::Sleep(3_500),
        Op::ExpireNext,
        Op::Describe {
            version: v(ApiKey::DescribeGroups, 5),
            groups: vec![g0()],
        },
    ];
    add(
        "initial_delay_and_full_group",
        Settings {
            initial_delay: true,
            small_groups: true,
            short_retention: false,
        },
        crowded,
    );
    out
}
