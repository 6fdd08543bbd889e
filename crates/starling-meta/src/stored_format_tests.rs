//! Golden tests of the stored formats: the exact bytes each format version wrote must keep
//! reading as the same records. A change to the stored types that breaks one of these needs a
//! new format version and a conversion in [`crate::encoding`], not a new fixture.

use bytes::Bytes;
use starling_group::{GroupValue, MemberValue, OffsetValue, Record};
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
