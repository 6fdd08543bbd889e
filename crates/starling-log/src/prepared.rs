//! A produce record set made ready to store, by the same checks whichever store keeps it: the
//! embedded segment log ([`crate::PartitionLog::append`]) and the PostgreSQL partition log of a
//! cluster both go through [`PreparedAppend`], so a record set one refuses the other refuses
//! with the same error.
//!
//! [`PreparedAppend::prepare`] validates every batch (framing, CRC, sizes, the topic's key and
//! timestamp rules) and recompresses batches to the topic's `compression.type`.
//! [`PreparedAppend::single_batch_producer`] is what the idempotent-producer check needs before
//! anything is written. [`PreparedAppend::assign`] writes the offsets (and, under
//! LogAppendTime, the timestamps) into the batches once the store has chosen the first offset,
//! and hands back each batch as stored. [`PreparedAppend::marker`] is a transaction marker's
//! control batch in the same form.

use bytes::{Bytes, BytesMut};

use crate::batch::{self, ProducedBatch};
use crate::producer_state::{ProducerBatch, TxnMarker};
use crate::{compression, recompress_record_set, AppendError, LogConfig, TimestampType};

/// A validated produce record set, waiting for its offsets.
#[derive(Debug)]
pub struct PreparedAppend {
    pub(crate) bytes: BytesMut,
    pub(crate) batches: Vec<ProducedBatch>,
    pub(crate) record_count: u64,
}

/// One batch once its offsets are written in: what a store keeps.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    /// The whole batch, offsets in; fetch serves these bytes.
    pub bytes: Bytes,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    /// Its producer fields at its offsets, as the producer state records them.
    pub producer: ProducerBatch,
    /// A control batch (a transaction marker).
    pub is_control: bool,
}

impl PreparedAppend {
    /// Checks `records` (the record set of one partition in a produce request) as the log of a
    /// topic with `config` does at `now_ms`, recompressing it when the topic fixes a codec.
    /// `partition` names the partition in the message of a keyless record on a compacted topic.
    pub fn prepare(
        records: BytesMut,
        config: &LogConfig,
        partition: &str,
        now_ms: i64,
    ) -> Result<PreparedAppend, AppendError> {
        let rules = batch::RecordRules {
            keys_required: config.cleanup_policy.compacts().then_some(partition),
            timestamps: (config.timestamp_type == TimestampType::CreateTime).then_some(
                batch::TimestampBounds {
                    now: now_ms,
                    before_max_ms: config.timestamp_before_max_ms,
                    after_max_ms: config.timestamp_after_max_ms,
                },
            ),
        };
        let mut bytes = records;
        let mut batches = batch::validate_produce(&bytes, config.max_message_bytes, &rules)?;
        if let Some(codec) = config.compression_type.codec() {
            if batches.iter().any(|b| b.header.compression() != codec) {
                let encoding = compression::Encoding {
                    codec,
                    levels: config.compression_levels,
                    snappy_xerial: true,
                };
                (bytes, batches) =
                    recompress_record_set(&bytes, &batches, &encoding, config.max_message_bytes)?;
            }
        }
        if bytes.len() as u64 > u64::from(u32::MAX) {
            return Err(AppendError::TooLarge {
                size: bytes.len(),
                max: u32::MAX,
            });
        }
        let record_count = batches.iter().map(|b| b.record_count as u64).sum();
        Ok(PreparedAppend {
            bytes,
            batches,
            record_count,
        })
    }

    /// The control batch of a transaction marker, stamped `now_ms`.
    pub fn marker(marker: &TxnMarker, now_ms: i64) -> PreparedAppend {
        let bytes = BytesMut::from(&batch::control_batch(marker, now_ms)[..]);
        let header = batch::BatchHeader::parse(&bytes).expect("a whole control batch");
        let batches = vec![ProducedBatch {
            pos: 0,
            size: bytes.len(),
            record_count: 1,
            header,
        }];
        PreparedAppend {
            bytes,
            batches,
            record_count: 1,
        }
    }

    /// How many records the set holds: how far the log end moves.
    pub fn record_count(&self) -> u64 {
        self.record_count
    }

    /// The set's size in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The producer fields of the set's only batch (offsets not yet known), for the
    /// idempotent-producer check; `None` when it holds several batches (as Kafka, only a
    /// single-batch set is checked for a duplicate).
    pub fn single_batch_producer(&self) -> Option<ProducerBatch> {
        match self.batches.as_slice() {
            [only] => Some(only.header.producer_batch(-1, only.header.max_timestamp)),
            _ => None,
        }
    }

    /// Whether any batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.batches.iter().any(|b| b.header.is_transactional())
    }

    /// Writes the offsets from `first_offset` and the partition leader epoch into the batches
    /// (under LogAppendTime, `log_append_time` as every timestamp too) and returns each as
    /// stored. The caller has checked that the offsets fit.
    pub fn assign(
        mut self,
        first_offset: i64,
        leader_epoch: i32,
        log_append_time: Option<i64>,
    ) -> Vec<StoredBatch> {
        let assigned = batch::assign_offsets(
            &mut self.bytes,
            &self.batches,
            first_offset,
            leader_epoch,
            log_append_time,
        );
        let bytes = self.bytes.freeze();
        assigned
            .iter()
            .zip(&self.batches)
            .map(|(a, p)| StoredBatch {
                bytes: bytes.slice(a.pos..a.pos + a.size),
                base_offset: a.base_offset,
                last_offset: a.last_offset,
                max_timestamp: a.max_timestamp,
                producer: p.header.producer_batch(a.base_offset, a.max_timestamp),
                is_control: p.header.is_control(),
            })
            .collect()
    }
}

/// For ListOffsets by timestamp, in one stored batch: the first record at or after
/// `min_offset` (the log start) whose timestamp is at least `target`, as (offset, timestamp),
/// found as the embedded log finds it; `None` when the batch has none, or when `batch` does
/// not start with a batch header.
pub fn first_record_at_or_after(batch: &[u8], target: i64, min_offset: i64) -> Option<(i64, i64)> {
    let header = batch::BatchHeader::parse(batch)?;
    batch::first_record_at_or_after(batch, &header, target, min_offset)
}

/// The marker a stored transaction control batch holds: whether it commits; `None` for a batch
/// that is not a transaction marker or cannot be read.
pub fn marker_commits(batch: &[u8]) -> Option<bool> {
    batch::marker_commits(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One uncompressed v2 batch of one keyless record from producer 7, epoch 0, sequence 0.
    fn idempotent_batch(value: &[u8], timestamp: i64) -> BytesMut {
        let mut record = vec![0u8, 0, 0, 1, (value.len() * 2) as u8];
        record.extend_from_slice(value);
        record.push(0);
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&((49 + 1 + record.len()) as i32).to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.push(2);
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&timestamp.to_be_bytes());
        b.extend_from_slice(&timestamp.to_be_bytes());
        b.extend_from_slice(&7i64.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.push((record.len() * 2) as u8);
        b.extend_from_slice(&record);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        BytesMut::from(&b[..])
    }

    #[test]
    fn a_prepared_batch_gets_its_offsets_and_leader_epoch_and_keeps_its_producer() {
        let now = 1_700_000_000_000;
        let prepared = PreparedAppend::prepare(
            idempotent_batch(b"v", now),
            &LogConfig::default(),
            "t-0",
            now,
        )
        .unwrap();
        assert_eq!(prepared.record_count(), 1);
        let producer = prepared.single_batch_producer().unwrap();
        assert_eq!((producer.producer_id, producer.base_sequence), (7, 0));
        let stored = prepared.assign(41, 3, None);
        assert_eq!(stored.len(), 1);
        let b = &stored[0];
        assert_eq!((b.base_offset, b.last_offset), (41, 41));
        assert_eq!(b.producer.first_offset, 41);
        assert_eq!(i64::from_be_bytes(b.bytes[0..8].try_into().unwrap()), 41);
        assert_eq!(i32::from_be_bytes(b.bytes[12..16].try_into().unwrap()), 3);
        assert!(!b.is_control);
        assert_eq!(
            crate::batch::check_stored(&b.bytes).unwrap().base_offset,
            41
        );
    }

    #[test]
    fn a_record_set_the_log_refuses_is_refused_the_same_way() {
        let now = 1_700_000_000_000;
        let mut corrupt = idempotent_batch(b"v", now);
        let last = corrupt.len() - 2;
        corrupt[last] ^= 0xff;
        assert!(matches!(
            PreparedAppend::prepare(corrupt, &LogConfig::default(), "t-0", now),
            Err(AppendError::Corrupt(_))
        ));
        let config = LogConfig {
            timestamp_before_max_ms: 1000,
            ..LogConfig::default()
        };
        assert!(matches!(
            PreparedAppend::prepare(idempotent_batch(b"v", now - 5000), &config, "t-0", now),
            Err(AppendError::InvalidTimestamp { .. })
        ));
    }

    #[test]
    fn a_marker_is_a_transactional_control_batch() {
        let marker = TxnMarker {
            producer_id: 9,
            epoch: 2,
            commit: false,
            coordinator_epoch: 5,
        };
        let stored = PreparedAppend::marker(&marker, 1000).assign(10, 0, None);
        assert!(stored[0].is_control);
        assert!(stored[0].producer.is_transactional);
        assert_eq!(marker_commits(&stored[0].bytes), Some(false));
    }
}
