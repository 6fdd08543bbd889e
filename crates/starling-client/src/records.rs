//! Producing and fetching records, one partition per call: Produce with a v2 record batch
//! (uncompressed or compressed with any of Kafka's codecs, no producer id), and Fetch decoding
//! the batches it returns (compressed ones too), dropping control records and, under
//! read_committed, the records of aborted transactions.
//!
//! This is what a command-line producer and consumer need, not a client library's producer:
//! no batching across calls, no retries, no idempotence.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::client::{err, Client};
use crate::error::{Error, Result};
use crate::TopicPartition;

/// v13 names topics by id only.
const PRODUCE: RangeInclusive<i16> = 3..=12;
/// v13 names topics by id only.
const FETCH: RangeInclusive<i16> = 4..=12;

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// A record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
}

/// A record as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Which records a fetch may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Everything up to the high watermark, aborted transactions included.
    #[default]
    ReadUncommitted,
    /// Up to the last stable offset, without aborted transactions.
    ReadCommitted,
}

/// One partition's Fetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Data records at or after the offset asked for, in offset order.
    pub records: Vec<ConsumedRecord>,
    /// Where the next fetch should start: past every batch returned (control batches and
    /// aborted data included), or the offset asked for if nothing came back.
    pub next_offset: i64,
}

impl Client {
    /// Produces `records` as one batch to `tp`'s leader with `acks` (-1: all in-sync
    /// replicas); returns the base offset the broker assigned.
    pub async fn produce(
        &mut self,
        tp: &TopicPartition,
        records: &[OutgoingRecord],
        acks: i16,
    ) -> Result<i64> {
        self.produce_compressed(tp, records, acks, Compression::None)
            .await
    }

    /// [`Client::produce`] with the batch compressed by `compression`.
    pub async fn produce_compressed(
        &mut self,
        tp: &TopicPartition,
        records: &[OutgoingRecord],
        acks: i16,
        compression: Compression,
    ) -> Result<i64> {
        if records.is_empty() {
            return Err(Error::Invalid("nothing to produce".to_string()));
        }
        let addr = self.leader_of(tp).await?;
        let batch = encode_batch(records, compression)?;
        let timeout_ms = self
            .options()
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32;
        let conn = self.connection_to(&addr).await?;
        let version = conn.version_for(ApiKey::Produce, PRODUCE)?;
        let request = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(timeout_ms)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(&tp.topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(tp.partition)
                    .with_records(Some(batch))])]);
        let response = conn.send(version, &request).await?;
        let p = response
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == tp.topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == tp.partition)
            .ok_or_else(|| {
                Error::Protocol(format!(
                    "Produce v{version} from {addr}: no answer for {tp}"
                ))
            })?;
        if let Some(e) = err(p.error_code) {
            let mut context = format!("producing to {tp}");
            if let Some(m) = p.error_message.as_ref().filter(|m| !m.is_empty()) {
                context.push_str(&format!(" ({m})"));
            }
            for r in &p.record_errors {
                if let Some(m) = &r.batch_index_error_message {
                    context.push_str(&format!("; record {}: {m}", r.batch_index));
                }
            }
            return Err(Error::kafka(context, e));
        }
        Ok(p.base_offset)
    }

    /// Fetches from `tp` at `offset`, waiting up to `max_wait_ms` for data.
    pub async fn fetch(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        isolation: Isolation,
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> Result<FetchedPartition> {
        let addr = self.leader_of(tp).await?;
        let conn = self.connection_to(&addr).await?;
        let version = conn.version_for(ApiKey::Fetch, FETCH)?;
        let request = FetchRequest::default()
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_isolation_level(match isolation {
                Isolation::ReadUncommitted => 0,
                Isolation::ReadCommitted => 1,
            })
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(&tp.topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(tp.partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(max_bytes)])]);
        let response = conn.send(version, &request).await?;
        if version >= 7 {
            if let Some(e) = err(response.error_code) {
                return Err(Error::kafka(format!("fetching {tp}"), e));
            }
        }
        let p = response
            .responses
            .iter()
            .filter(|t| t.topic.0.as_str() == tp.topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == tp.partition)
            .ok_or_else(|| {
                Error::Protocol(format!("Fetch v{version} from {addr}: no answer for {tp}"))
            })?;
        if let Some(e) = err(p.error_code) {
            return Err(Error::kafka(format!("fetching {tp} at offset {offset}"), e));
        }
        let aborted: Vec<(i64, i64)> = match isolation {
            Isolation::ReadUncommitted => Vec::new(),
            Isolation::ReadCommitted => p
                .aborted_transactions
                .iter()
                .flatten()
                .map(|a| (a.producer_id.0, a.first_offset))
                .collect(),
        };
        let (records, next) = decode_records(
            p.records.clone().unwrap_or_default(),
            offset,
            &aborted,
            &format!("Fetch v{version} from {addr} for {tp}"),
        )?;
        Ok(FetchedPartition {
            high_watermark: p.high_watermark,
            last_stable_offset: p.last_stable_offset,
            log_start_offset: p.log_start_offset,
            records,
            next_offset: next.unwrap_or(offset),
        })
    }

    async fn leader_of(&mut self, tp: &TopicPartition) -> Result<String> {
        let leaders = self.leaders(std::slice::from_ref(tp)).await?;
        leaders[tp]
            .clone()
            .map_err(|e| Error::kafka(format!("finding the leader of {tp}"), e))
    }
}

/// One v2 batch of `records` compressed with `compression`, offsets 0.. in order.
pub fn encode_batch(records: &[OutgoingRecord], compression: Compression) -> Result<Bytes> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut headers = kafka_protocol::indexmap::IndexMap::new();
            for (k, v) in &r.headers {
                headers.insert(StrBytes::from_string(k.clone()), v.clone());
            }
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // No producer id, so the batch's base sequence is -1; the encoder wants
                // `offset - sequence` equal across a batch, or it starts a new one.
                sequence: i as i32 - 1,
                timestamp: r.timestamp,
                key: r.key.clone(),
                value: r.value.clone(),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| Error::Invalid(format!("cannot encode the record batch: {e}")))?;
    Ok(buf.freeze())
}

/// Decodes the complete batches in `bytes` (a trailing partial batch is ignored, as Kafka
/// allows), keeping data records at or after `from`; with `aborted` (producer id, first
/// offset) pairs, drops the records of those aborted transactions. Returns the records and the
/// offset after the last complete batch, if any.
fn decode_records(
    mut bytes: Bytes,
    from: i64,
    aborted: &[(i64, i64)],
    context: &str,
) -> Result<(Vec<ConsumedRecord>, Option<i64>)> {
    let mut out = Vec::new();
    let mut next = None;
    let mut pending_aborts: Vec<(i64, i64)> = aborted.to_vec();
    pending_aborts.sort_by_key(|&(_, first)| first);
    let mut aborting: BTreeSet<i64> = BTreeSet::new();
    // Batch header: base offset (8), length (4), leader epoch (4), magic (1), crc (4),
    // attributes (2), last offset delta (4).
    while bytes.len() >= 27 {
        let base = i64::from_be_bytes(bytes[0..8].try_into().expect("8 bytes"));
        let len = i32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if len < 0 {
            return Err(Error::Protocol(format!("{context}: batch length {len}")));
        }
        let total = 12 + len as usize;
        if bytes.len() < total {
            break;
        }
        let last_delta = i32::from_be_bytes(bytes[23..27].try_into().expect("4 bytes"));
        let mut batch = bytes.split_to(total);
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| Error::Protocol(format!("{context}: cannot decode a batch: {e}")))?;
        while let Some(&(pid, first)) = pending_aborts.first() {
            if first > base + last_delta as i64 {
                break;
            }
            aborting.insert(pid);
            pending_aborts.remove(0);
        }
        for r in set.records {
            if r.control {
                // An abort marker ends that producer's aborted transaction.
                aborting.remove(&r.producer_id);
                continue;
            }
            if r.transactional && aborting.contains(&r.producer_id) {
                continue;
            }
            if r.offset < from {
                continue;
            }
            out.push(ConsumedRecord {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_string(), v))
                    .collect(),
            });
        }
        next = Some(base + last_delta as i64 + 1);
    }
    Ok((out, next))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::Duration;

    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{
        BrokerId, FetchResponse, MetadataResponse, ProduceResponse, ProducerId,
    };

    use super::*;
    use crate::fake_broker::{api_versions, decode_body, respond, FakeBroker, Seen};
    use crate::Options;

    fn record(offset: i64, value: &str, producer_id: i64, transactional: bool) -> Record {
        Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: if producer_id >= 0 { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: -1,
            timestamp: 1000 + offset,
            key: None,
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: Default::default(),
        }
    }

    fn batch(records: &[Record]) -> Bytes {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        buf.freeze()
    }

    fn values(records: &[ConsumedRecord]) -> Vec<(i64, String)> {
        records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap(),
                )
            })
            .collect()
    }

    /// Offsets 0-1 plain, 2-3 an aborted transaction of producer 5, 4 its abort marker, 5-6 a
    /// transaction of producer 6 (committed: its marker at 7), 8 plain.
    fn log() -> Bytes {
        let mut marker = record(4, "", 5, true);
        marker.control = true;
        marker.value = None;
        marker.key = Some(Bytes::from_static(&[0, 0, 0, 0]));
        let mut commit = record(7, "", 6, true);
        commit.control = true;
        commit.value = None;
        commit.key = Some(Bytes::from_static(&[0, 0, 0, 1]));
        let mut all = BytesMut::new();
        all.extend_from_slice(&batch(&[
            record(0, "a", -1, false),
            record(1, "b", -1, false),
        ]));
        all.extend_from_slice(&batch(&[record(2, "x", 5, true), record(3, "y", 5, true)]));
        all.extend_from_slice(&batch(&[marker]));
        all.extend_from_slice(&batch(&[record(5, "c", 6, true), record(6, "d", 6, true)]));
        all.extend_from_slice(&batch(&[commit]));
        all.extend_from_slice(&batch(&[record(8, "e", -1, false)]));
        all.freeze()
    }

    #[test]
    fn control_records_are_dropped_and_aborted_transactions_only_under_read_committed() {
        let (records, next) = decode_records(log(), 0, &[], "test").unwrap();
        assert_eq!(
            values(&records),
            [
                (0, "a"),
                (1, "b"),
                (2, "x"),
                (3, "y"),
                (5, "c"),
                (6, "d"),
                (8, "e")
            ]
            .map(|(o, v)| (o, v.to_string()))
        );
        assert_eq!(next, Some(9));
        let (records, next) = decode_records(log(), 0, &[(5, 2)], "test").unwrap();
        assert_eq!(
            values(&records),
            [(0, "a"), (1, "b"), (5, "c"), (6, "d"), (8, "e")].map(|(o, v)| (o, v.to_string()))
        );
        assert_eq!(next, Some(9));
    }

    #[test]
    fn records_below_the_offset_asked_for_and_a_partial_last_batch_are_skipped() {
        let mut bytes = BytesMut::from(&log()[..]);
        let extra = batch(&[record(9, "f", -1, false)]);
        bytes.extend_from_slice(&extra[..extra.len() - 3]);
        let (records, next) = decode_records(bytes.freeze(), 1, &[], "test").unwrap();
        assert_eq!(records.first().map(|r| r.offset), Some(1));
        assert_eq!(records.last().map(|r| r.offset), Some(8));
        assert_eq!(next, Some(9), "the partial batch is fetched again");
        assert_eq!(
            decode_records(Bytes::new(), 4, &[], "t").unwrap(),
            (vec![], None)
        );
    }

    #[tokio::test]
    async fn produce_sends_one_batch_with_acks_and_fetch_decodes_it() {
        let me: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
        let stored: Arc<Mutex<Option<Bytes>>> = Arc::new(Mutex::new(None));
        let (me2, stored2) = (me.clone(), stored.clone());
        let fake = FakeBroker::start(Arc::new(move |seen: &Seen| {
            let api = ApiKey::try_from(seen.header.request_api_key).unwrap();
            match api {
                ApiKey::ApiVersions => Some(respond(
                    seen,
                    &api_versions(&[
                        (ApiKey::ApiVersions, 0, 3),
                        (ApiKey::Metadata, 0, 12),
                        (ApiKey::Produce, 3, 13),
                        (ApiKey::Fetch, 4, 17),
                    ]),
                )),
                ApiKey::Metadata => {
                    let (host, port) = me2.get().unwrap().rsplit_once(':').unwrap();
                    Some(respond(
                        seen,
                        &MetadataResponse::default()
                            .with_brokers(vec![MetadataResponseBroker::default()
                                .with_node_id(BrokerId(1))
                                .with_host(StrBytes::from_string(host.to_string()))
                                .with_port(port.parse().unwrap())])
                            .with_topics(vec![MetadataResponseTopic::default()
                                .with_name(Some(topic_name("t")))
                                .with_partitions(vec![MetadataResponsePartition::default()
                                    .with_partition_index(0)
                                    .with_leader_id(BrokerId(1))])]),
                    ))
                }
                ApiKey::Produce => {
                    let req: ProduceRequest = decode_body(seen);
                    assert_eq!(req.acks, -1);
                    let data = &req.topic_data[0].partition_data[0];
                    let mut bytes = data.records.clone().unwrap();
                    let info = RecordBatchDecoder::decode_batch_info(&mut bytes).unwrap();
                    assert_eq!(info.len(), 1, "exactly one batch, as Kafka requires");
                    assert_eq!(info[0].record_count, 2);
                    assert_eq!(info[0].base_sequence, -1);
                    assert_eq!(info[0].producer_id, -1);
                    *stored2.lock().unwrap() = data.records.clone();
                    Some(respond(
                        seen,
                        &ProduceResponse::default().with_responses(vec![
                            TopicProduceResponse::default()
                                .with_name(topic_name("t"))
                                .with_partition_responses(vec![PartitionProduceResponse::default(
                                )
                                .with_index(0)
                                .with_base_offset(40)]),
                        ]),
                    ))
                }
                ApiKey::Fetch => {
                    let req: FetchRequest = decode_body(seen);
                    assert_eq!(req.isolation_level, 1);
                    assert_eq!(req.topics[0].partitions[0].fetch_offset, 40);
                    // The stored batch, moved to offset 40 (base offset is its first 8 bytes).
                    let mut batch = BytesMut::from(&stored2.lock().unwrap().clone().unwrap()[..]);
                    batch[0..8].copy_from_slice(&40i64.to_be_bytes());
                    Some(respond(
                        seen,
                        &FetchResponse::default().with_responses(vec![
                            FetchableTopicResponse::default()
                                .with_topic(topic_name("t"))
                                .with_partitions(vec![PartitionData::default()
                                    .with_partition_index(0)
                                    .with_high_watermark(42)
                                    .with_last_stable_offset(42)
                                    .with_aborted_transactions(Some(vec![
                                        AbortedTransaction::default()
                                            .with_producer_id(ProducerId(77))
                                            .with_first_offset(0),
                                    ]))
                                    .with_records(Some(batch.freeze()))]),
                        ]),
                    ))
                }
                _ => None,
            }
        }))
        .await;
        me.set(fake.addr.clone()).unwrap();
        let opts = Options {
            request_timeout: Duration::from_secs(5),
            ..Options::default()
        };
        let mut client = crate::Client::connect(&fake.addr, opts).await.unwrap();
        let tp = TopicPartition::new("t", 0);
        let out = vec![
            OutgoingRecord {
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"v1")),
                headers: vec![("h".to_string(), Some(Bytes::from_static(b"x")))],
                timestamp: 5,
            },
            OutgoingRecord {
                key: None,
                value: Some(Bytes::from_static(b"v2")),
                headers: vec![],
                timestamp: 6,
            },
        ];
        assert_eq!(client.produce(&tp, &out, -1).await.unwrap(), 40);
        let versions: Vec<i16> = fake
            .seen()
            .iter()
            .filter(|s| s.header.request_api_key == ApiKey::Produce as i16)
            .map(|s| s.header.request_api_version)
            .collect();
        assert_eq!(versions, [12], "topic names, not ids");

        let fetched = client
            .fetch(&tp, 40, Isolation::ReadCommitted, 100, 1 << 20)
            .await
            .unwrap();
        assert_eq!(fetched.high_watermark, 42);
        assert_eq!(fetched.next_offset, 42);
        assert_eq!(
            fetched.records,
            vec![
                ConsumedRecord {
                    offset: 40,
                    timestamp: 5,
                    key: Some(Bytes::from_static(b"k")),
                    value: Some(Bytes::from_static(b"v1")),
                    headers: vec![("h".to_string(), Some(Bytes::from_static(b"x")))],
                },
                ConsumedRecord {
                    offset: 41,
                    timestamp: 6,
                    key: None,
                    value: Some(Bytes::from_static(b"v2")),
                    headers: vec![],
                },
            ]
        );
    }
}
