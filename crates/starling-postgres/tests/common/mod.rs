//! What the PostgreSQL back end's tests share: record batches as producers send them.

use bytes::BytesMut;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One v2 batch of `count` records "{tag}-0".. from `producer` at `epoch`, its first sequence
/// `sequence` (-1, -1, -1: no producer), stamped `timestamp`, `timestamp + 1`, ...
pub fn batch_at(
    producer: i64,
    epoch: i16,
    sequence: i32,
    count: i32,
    transactional: bool,
    tag: &str,
    timestamp: i64,
) -> BytesMut {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional,
            control: false,
            partition_leader_epoch: -1,
            producer_id: producer,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: sequence + i,
            timestamp: timestamp + i64::from(i),
            key: None,
            value: Some(format!("{tag}-{i}").into_bytes().into()),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    out
}
