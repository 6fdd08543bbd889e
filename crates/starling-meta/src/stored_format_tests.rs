//! Golden tests of the stored formats: the exact bytes each format version wrote must keep
//! reading as the same records. A change to the stored types that breaks one of these needs a
//! new format version and a conversion in [`crate::encoding`], not a new fixture.

use bytes::Bytes;
use starling_group::{
    ConsumerAssignmentValue, ConsumerGroupValue, ConsumerMemberValue, GroupValue, MemberState,
    MemberValue, OffsetValue, Record, TopicPartitions,
};
use uuid::Uuid;

use crate::encoding::{decode, encode};
use crate::TopicRecord;

const GROUP_JSON: &str = r#"{"Group":{"group_id":"orders","value":{"protocol_type":"consumer","generation":3,"protocol":"range","leader":"m-1","state_timestamp":1700000000000,"members":[{"member_id":"m-1","group_instance_id":"i-1","client_id":"app","client_host":"/127.0.0.1","rebalance_timeout_ms":30000,"session_timeout_ms":10000,"protocol_type":"consumer","protocols":[["range",[0,1]]],"assignment":[0,2]}]}}}"#;
const OFFSET_JSON: &str = r#"{"Offset":{"group_id":"orders","topic":"t","partition":2,"value":{"offset":42,"leader_epoch":5,"metadata":"meta","commit_timestamp":1700000000001,"expire_timestamp":1700000100000}}}"#;
const TOPIC_JSON: &str = r#"{"name":"t","id":"00000000-0000-0000-0000-000000001234","partitions":3,"configs":{"retention.ms":"1000"}}"#;

fn group() -> Record {
    Record::Group {
        group_id: "orders".into(),
        value: Some(GroupValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            state_timestamp: 1_700_000_000_000,
            members: vec![MemberValue {
                member_id: "m-1".into(),
                group_instance_id: Some("i-1".into()),
                client_id: "app".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 30000,
                session_timeout_ms: 10000,
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), Bytes::from_static(b"\x00\x01"))],
                assignment: Bytes::from_static(b"\x00\x02"),
            }],
        }),
    }
}

fn offset() -> Record {
    Record::Offset {
        group_id: "orders".into(),
        topic: "t".into(),
        partition: 2,
        value: Some(OffsetValue {
            offset: 42,
            leader_epoch: 5,
            metadata: "meta".into(),
            commit_timestamp: 1_700_000_000_001,
            expire_timestamp: Some(1_700_000_100_000),
        }),
    }
}

fn topic() -> TopicRecord {
    let mut topic = TopicRecord::new("t", 3);
    topic.id = Uuid::from_u128(0x1234);
    topic.configs.insert("retention.ms".into(), "1000".into());
    topic
}

fn version_1(json: &str) -> Vec<u8> {
    [&[1u8][..], json.as_bytes()].concat()
}

#[test]
fn version_0_records_written_without_a_version_byte_still_read() {
    assert_eq!(
        decode::<Record>("g/orders", GROUP_JSON.as_bytes()).unwrap(),
        group()
    );
    assert_eq!(
        decode::<Record>("o/orders/t/2", OFFSET_JSON.as_bytes()).unwrap(),
        offset()
    );
    assert_eq!(
        decode::<TopicRecord>("t", TOPIC_JSON.as_bytes()).unwrap(),
        topic()
    );
}

#[test]
fn version_1_records_read() {
    assert_eq!(
        decode::<Record>("g/orders", &version_1(GROUP_JSON)).unwrap(),
        group()
    );
    assert_eq!(
        decode::<Record>("o/orders/t/2", &version_1(OFFSET_JSON)).unwrap(),
        offset()
    );
    assert_eq!(
        decode::<TopicRecord>("t", &version_1(TOPIC_JSON)).unwrap(),
        topic()
    );
}

#[test]
fn this_build_writes_version_1_byte_for_byte() {
    assert_eq!(
        encode(String::new, &group()).unwrap(),
        version_1(GROUP_JSON)
    );
    assert_eq!(
        encode(String::new, &offset()).unwrap(),
        version_1(OFFSET_JSON)
    );
    assert_eq!(
        encode(String::new, &topic()).unwrap(),
        version_1(TOPIC_JSON)
    );
}

/// KIP-848 consumer-group records, as version 1 writes them (they have no version 0).
const CONSUMER_JSON: [&str; 5] = [
    r#"{"ConsumerGroup":{"group_id":"orders","value":{"epoch":7,"metadata_hash":42}}}"#,
    r#"{"ConsumerMember":{"group_id":"orders","member_id":"m-1","value":{"instance_id":"i-1","rack_id":null,"client_id":"app","client_host":"/127.0.0.1","subscribed_topic_names":["t"],"subscribed_topic_regex":"t.*","server_assignor":"uniform","rebalance_timeout_ms":30000}}}"#,
    r#"{"ConsumerTargetEpoch":{"group_id":"orders","value":7}}"#,
    r#"{"ConsumerTarget":{"group_id":"orders","member_id":"m-1","value":{"00000000-0000-0000-0000-000000001234":[0,2]}}}"#,
    r#"{"ConsumerAssignment":{"group_id":"orders","member_id":"m-1","value":{"state":"UnrevokedPartitions","member_epoch":6,"previous_member_epoch":5,"assigned":{"00000000-0000-0000-0000-000000001234":[0,2]},"pending_revocation":{"00000000-0000-0000-0000-000000001234":[1]}}}}"#,
];

fn consumer_records() -> [Record; 5] {
    let topic = Uuid::from_u128(0x1234);
    let parts = |ps: &[i32]| -> TopicPartitions { [(topic, ps.iter().copied().collect())].into() };
    let group = || "orders".to_string();
    let member = || "m-1".to_string();
    [
        Record::ConsumerGroup {
            group_id: group(),
            value: Some(ConsumerGroupValue {
                epoch: 7,
                metadata_hash: 42,
            }),
        },
        Record::ConsumerMember {
            group_id: group(),
            member_id: member(),
            value: Some(ConsumerMemberValue {
                instance_id: Some("i-1".into()),
                rack_id: None,
                client_id: "app".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["t".into()],
                subscribed_topic_regex: Some("t.*".into()),
                server_assignor: Some("uniform".into()),
                rebalance_timeout_ms: 30000,
                classic: None,
            }),
        },
        Record::ConsumerTargetEpoch {
            group_id: group(),
            value: Some(7),
        },
        Record::ConsumerTarget {
            group_id: group(),
            member_id: member(),
            value: Some(parts(&[0, 2])),
        },
        Record::ConsumerAssignment {
            group_id: group(),
            member_id: member(),
            value: Some(ConsumerAssignmentValue {
                state: MemberState::UnrevokedPartitions,
                member_epoch: 6,
                previous_member_epoch: 5,
                assigned: parts(&[0, 2]),
                pending_revocation: parts(&[1]),
                assigned_at: Default::default(),
            }),
        },
    ]
}

#[test]
fn version_1_consumer_group_records_read_and_are_written_byte_for_byte() {
    for (json, record) in CONSUMER_JSON.iter().zip(consumer_records()) {
        assert_eq!(
            decode::<Record>(&record.key(), &version_1(json)).unwrap(),
            record
        );
        assert_eq!(encode(String::new, &record).unwrap(), version_1(json));
    }
}

/// A classic member of a consumer-protocol group (mixed groups): its member record carries
/// `classic`, which records written before mixed groups lack (and read as `None`, above).
const CLASSIC_MEMBER_JSON: &str = r#"{"ConsumerMember":{"group_id":"orders","member_id":"m-2","value":{"instance_id":null,"rack_id":null,"client_id":"app","client_host":"/127.0.0.1","subscribed_topic_names":["t"],"subscribed_topic_regex":null,"server_assignor":null,"rebalance_timeout_ms":30000,"classic":{"session_timeout_ms":10000,"protocols":[["cooperative-sticky",[0,1,0,0,0,1,0,1,116,255,255,255,255,0,0,0,0]]]}}}}"#;

fn classic_member_record() -> Record {
    Record::ConsumerMember {
        group_id: "orders".into(),
        member_id: "m-2".into(),
        value: Some(ConsumerMemberValue {
            instance_id: None,
            rack_id: None,
            client_id: "app".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: vec!["t".into()],
            subscribed_topic_regex: None,
            server_assignor: None,
            rebalance_timeout_ms: 30000,
            classic: Some(starling_group::ClassicMemberMetadata {
                session_timeout_ms: 10000,
                protocols: vec![(
                    "cooperative-sticky".into(),
                    bytes::Bytes::from_static(&[
                        0, 1, 0, 0, 0, 1, 0, 1, b't', 255, 255, 255, 255, 0, 0, 0, 0,
                    ]),
                )],
            }),
        }),
    }
}

#[test]
fn version_1_classic_member_records_read_and_are_written_byte_for_byte() {
    let record = classic_member_record();
    assert_eq!(
        decode::<Record>(&record.key(), &version_1(CLASSIC_MEMBER_JSON)).unwrap(),
        record
    );
    assert_eq!(
        encode(String::new, &record).unwrap(),
        version_1(CLASSIC_MEMBER_JSON)
    );
}

/// A member's assignment with the epoch each partition was assigned at (KIP-1251), which
/// records written before it lack (and read as empty, above).
const ASSIGNMENT_EPOCHS_JSON: &str = r#"{"ConsumerAssignment":{"group_id":"orders","member_id":"m-1","value":{"state":"Stable","member_epoch":6,"previous_member_epoch":5,"assigned":{"00000000-0000-0000-0000-000000001234":[0,2]},"pending_revocation":{},"assigned_at":{"00000000-0000-0000-0000-000000001234":{"0":3,"2":6}}}}}"#;

#[test]
fn version_1_assignment_epochs_read_and_are_written_byte_for_byte() {
    let topic = Uuid::from_u128(0x1234);
    let record = Record::ConsumerAssignment {
        group_id: "orders".into(),
        member_id: "m-1".into(),
        value: Some(ConsumerAssignmentValue {
            state: MemberState::Stable,
            member_epoch: 6,
            previous_member_epoch: 5,
            assigned: [(topic, [0, 2].into())].into(),
            pending_revocation: TopicPartitions::new(),
            assigned_at: [(topic, [(0, 3), (2, 6)].into())].into(),
        }),
    };
    assert_eq!(
        decode::<Record>(&record.key(), &version_1(ASSIGNMENT_EPOCHS_JSON)).unwrap(),
        record
    );
    assert_eq!(
        encode(String::new, &record).unwrap(),
        version_1(ASSIGNMENT_EPOCHS_JSON)
    );
}

/// A client quota entity's row, as version 1 writes it (there is no version 0).
const CLIENT_QUOTA_JSON: &str = r#"{"entity":{"client-id":"app","user":null},"quotas":{"producer_byte_rate":1024.0,"request_percentage":12.5}}"#;

#[test]
fn version_1_client_quota_records_read_and_are_written_byte_for_byte() {
    let record = crate::ClientQuotaRecord {
        entity: [
            ("client-id".to_string(), Some("app".to_string())),
            ("user".to_string(), None),
        ]
        .into(),
        quotas: [
            ("producer_byte_rate".to_string(), 1024.0),
            ("request_percentage".to_string(), 12.5),
        ]
        .into(),
    };
    let key = crate::ClientQuotaRecord::key(&record.entity);
    assert_eq!(key, r#"{"client-id":"app","user":null}"#);
    assert_eq!(
        decode::<crate::ClientQuotaRecord>(&key, &version_1(CLIENT_QUOTA_JSON)).unwrap(),
        record
    );
    assert_eq!(
        encode(String::new, &record).unwrap(),
        version_1(CLIENT_QUOTA_JSON)
    );
}

/// An ACL binding's row, as version 1 writes it (there is no version 0); its key is the same
/// JSON.
const ACL_JSON: &str = r#"{"resource_type":2,"resource_name":"pay","pattern_type":4,"principal":"User:alice","host":"*","operation":3,"permission":3}"#;

#[test]
fn version_1_acl_records_read_and_are_written_byte_for_byte() {
    let record = crate::AclRecord {
        resource_type: 2,
        resource_name: "pay".into(),
        pattern_type: 4,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: 3,
        permission: 3,
    };
    assert_eq!(record.key(), ACL_JSON);
    assert_eq!(
        decode::<crate::AclRecord>(ACL_JSON, &version_1(ACL_JSON)).unwrap(),
        record
    );
    assert_eq!(encode(String::new, &record).unwrap(), version_1(ACL_JSON));
}
