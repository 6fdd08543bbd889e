//! v2 record batches by hand: [`record_batch`] and [`producer_batch`] (an idempotent or
//! transactional producer's) encode one for a raw produce, [`count_records`]
//! counts the records of the batches in a fetched record set.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// A record's key and value, either possibly null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Encodes one v2 record batch, uncompressed, with offsets starting at 0.
pub fn record_batch(records: &[KeyValue<'_>], timestamp: i64) -> Bytes {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp,
            key: k.map(Bytes::copy_from_slice),
            value: v.map(Bytes::copy_from_slice),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode record batch");
    buf.freeze()
}

/// One uncompressed v2 batch of `records` records carrying `producer_id` and `epoch`, its
/// sequences running from `sequence`; part of a transaction when `transactional`.
pub fn producer_batch(
    producer_id: i64,
    epoch: i16,
    sequence: i32,
    records: usize,
    transactional: bool,
) -> Bytes {
    let timestamp = now_ms();
    let recs: Vec<Record> = (0..records)
        .map(|i| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: sequence + i as i32,
            timestamp,
            key: None,
            value: Some(Bytes::from(format!("e{epoch}-s{}", sequence + i as i32))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode record batch");
    buf.freeze()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Record count of the v2 batches in a fetched record set (without decompressing anything).
pub fn count_records(records: &[u8]) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 61 <= records.len() {
        let base = i64::from_be_bytes(records[pos..pos + 8].try_into().unwrap());
        let len = i32::from_be_bytes(records[pos + 8..pos + 12].try_into().unwrap()) as usize;
        if pos + 12 + len > records.len() {
            break; // partial batch at the end of a fetch is allowed
        }
        let n = i32::from_be_bytes(records[pos + 57..pos + 61].try_into().unwrap());
        out.push((base, n));
        pos += 12 + len;
    }
    out
}
