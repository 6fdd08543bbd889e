//! The idempotent-producer state of one partition (Kafka's `ProducerStateManager`): for each
//! producer id, its epoch and the sequence ranges and offsets of the last five batches it wrote
//! here. With it a batch retried after a lost response is answered with the offsets it already
//! has (nothing is written twice), a batch after a gap is refused (OUT_OF_ORDER_SEQUENCE_NUMBER)
//! and a batch from an older epoch of the producer is refused (INVALID_PRODUCER_EPOCH).
//!
//! Nothing here does I/O. The log asks [`ProducerStates::check`] before it writes a produced
//! batch (under its writer lock, so no other append comes between) and calls
//! [`ProducerStates::record`] once the batch is written; recovery records every stored batch
//! the same way, so the state after a restart is the state before it. A snapshot
//! ([`ProducerStates::encode`]) lets start-up begin from an offset instead of the log start.
//! The rules follow Kafka's `ProducerAppendInfo.checkProducerEpoch` / `checkSequence` and
//! `ProducerStateEntry.findDuplicateBatch`.

use std::collections::{BTreeMap, VecDeque};

/// A batch without a producer (`producerId` −1) is not tracked.
pub const NO_PRODUCER_ID: i64 = -1;
/// The epoch of a producer this partition has no record of.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// How many batches of each producer are remembered for deduplication (Kafka's
/// `NUM_BATCHES_TO_RETAIN`; a producer has at most five requests in flight).
pub const CACHED_BATCHES: usize = 5;

/// What the producer state needs of one batch: its producer fields and where it lies (or, for a
/// batch not yet written, would lie) in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    /// `lastOffsetDelta`: the batch holds sequences `base_sequence ..= base_sequence + delta`.
    pub last_offset_delta: i32,
    pub first_offset: i64,
    pub max_timestamp: i64,
}

impl ProducerBatch {
    /// The sequence number of the batch's last record (sequences wrap from `i32::MAX` to 0).
    pub fn last_sequence(&self) -> i32 {
        add_sequence(self.base_sequence, self.last_offset_delta)
    }

    /// The offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.first_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }
}

/// `seq + delta`, wrapping past `i32::MAX` to 0 (Kafka's `incrementSequence`).
fn add_sequence(seq: i32, delta: i32) -> i32 {
    let sum = i64::from(seq) + i64::from(delta.max(0));
    (sum % (i64::from(i32::MAX) + 1)) as i32
}

/// One remembered batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMetadata {
    first_sequence: i32,
    last_sequence: i32,
    first_offset: i64,
    last_offset: i64,
    timestamp: i64,
}

/// What the partition knows of one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    /// Oldest first; at most [`CACHED_BATCHES`].
    batches: VecDeque<BatchMetadata>,
    /// The largest batch timestamp seen, for expiry.
    last_timestamp: i64,
}

impl ProducerEntry {
    fn last_sequence(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_sequence)
    }
}

/// How a produced batch relates to what the partition already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// New: write it.
    Append,
    /// Already written (a retry): answer with these offsets and write nothing.
    Duplicate {
        first_offset: i64,
        last_offset: i64,
        timestamp: i64,
    },
}

/// Why a produced batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// Kafka's INVALID_PRODUCER_EPOCH: a newer epoch of this producer id has written here.
    #[error("producer {producer_id} epoch {epoch} is older than epoch {current} already seen")]
    InvalidEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    /// Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER: the batch does not follow the producer's last one.
    #[error(
        "out of order sequence number for producer {producer_id} epoch {epoch}: \
         {base_sequence} (incoming), expected {expected}"
    )]
    OutOfOrder {
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        expected: i32,
    },
}

/// Every producer's state in one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: BTreeMap<i64, ProducerEntry>,
}

impl ProducerStates {
    pub fn new() -> ProducerStates {
        ProducerStates::default()
    }

    /// How many producers the partition remembers.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Whether a produced `batch` may be written, is a retry of one already written, or is
    /// refused. Batches without a producer id are always appended.
    pub fn check(&self, batch: &ProducerBatch) -> Result<Admission, ProducerError> {
        if batch.producer_id == NO_PRODUCER_ID {
            return Ok(Admission::Append);
        }
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            // Nothing known of it (new, or expired): any sequence starts it.
            return Ok(Admission::Append);
        };
        if batch.epoch < entry.epoch {
            return Err(ProducerError::InvalidEpoch {
                producer_id: batch.producer_id,
                epoch: batch.epoch,
                current: entry.epoch,
            });
        }
        if batch.epoch == entry.epoch {
            let last_sequence = batch.last_sequence();
            if let Some(done) = entry.batches.iter().find(|b| {
                b.first_sequence == batch.base_sequence && b.last_sequence == last_sequence
            }) {
                return Ok(Admission::Duplicate {
                    first_offset: done.first_offset,
                    last_offset: done.last_offset,
                    timestamp: done.timestamp,
                });
            }
            return match entry.last_sequence() {
                // Known epoch but no batch (its state came from a marker alone): any sequence.
                None => Ok(Admission::Append),
                Some(last) if add_sequence(last, 1) == batch.base_sequence => Ok(Admission::Append),
                Some(last) => Err(ProducerError::OutOfOrder {
                    producer_id: batch.producer_id,
                    epoch: batch.epoch,
                    base_sequence: batch.base_sequence,
                    expected: add_sequence(last, 1),
                }),
            };
        }
        // A new epoch starts its sequences at 0.
        if batch.base_sequence != 0 {
            return Err(ProducerError::OutOfOrder {
                producer_id: batch.producer_id,
                epoch: batch.epoch,
                base_sequence: batch.base_sequence,
                expected: 0,
            });
        }
        Ok(Admission::Append)
    }

    /// Takes in a batch written to the log (after [`ProducerStates::check`] let it through, or
    /// read back by recovery): a newer epoch replaces the producer's batches, and the last
    /// [`CACHED_BATCHES`] batches are kept.
    pub fn record(&mut self, batch: &ProducerBatch) {
        if batch.producer_id == NO_PRODUCER_ID {
            return;
        }
        let entry = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: batch.epoch,
                batches: VecDeque::new(),
                last_timestamp: batch.max_timestamp,
            });
        if batch.epoch != entry.epoch {
            entry.epoch = batch.epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_sequence: batch.base_sequence,
            last_sequence: batch.last_sequence(),
            first_offset: batch.first_offset,
            last_offset: batch.last_offset(),
            timestamp: batch.max_timestamp,
        });
        entry.last_timestamp = entry.last_timestamp.max(batch.max_timestamp);
    }

    /// Forgets every producer whose last batch is `expiration_ms` or more older than `now_ms`
    /// (Kafka's `producer.id.expiration.ms`); returns how many went.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, entry| now_ms.saturating_sub(entry.last_timestamp) < expiration_ms);
        before - self.producers.len()
    }

    /// Forgets every batch at or past `offset` (the log was cut back to it); a producer left
    /// with no batch is forgotten.
    pub fn truncate_to(&mut self, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
        }
        self.producers.retain(|_, entry| !entry.batches.is_empty());
    }

    /// The state as a snapshot taken at `offset` (every batch before it recorded): magic,
    /// format version, offset, each producer and its batches, and a CRC-32C of all of it.
    pub fn encode(&self, offset: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.producers.len() * 64);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.push(SNAPSHOT_VERSION);
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (id, entry) in &self.producers {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&entry.epoch.to_be_bytes());
            out.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            out.push(entry.batches.len() as u8);
            for b in &entry.batches {
                out.extend_from_slice(&b.first_sequence.to_be_bytes());
                out.extend_from_slice(&b.last_sequence.to_be_bytes());
                out.extend_from_slice(&b.first_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
                out.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Reads a snapshot written by [`ProducerStates::encode`]: the offset it was taken at and
    /// the state. Any damage (a torn write, a wrong CRC, a newer format) is an error, never a
    /// panic.
    pub fn decode(bytes: &[u8]) -> Result<(i64, ProducerStates), String> {
        if bytes.len() < SNAPSHOT_MAGIC.len() + 1 + 8 + 4 + 4 {
            return Err(format!(
                "a producer snapshot of {} bytes is too short",
                bytes.len()
            ));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_be_bytes(crc.try_into().expect("four bytes"));
        if crc32c::crc32c(body) != stored {
            return Err("the producer snapshot's CRC does not match".to_string());
        }
        let mut r = Reader { bytes: body, at: 0 };
        if r.take(SNAPSHOT_MAGIC.len())? != SNAPSHOT_MAGIC {
            return Err("not a producer snapshot".to_string());
        }
        let version = r.take(1)?[0];
        if version != SNAPSHOT_VERSION {
            return Err(format!("producer snapshot format {version} is not known"));
        }
        let offset = r.i64()?;
        let count = r.u32()?;
        let mut producers = BTreeMap::new();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let last_timestamp = r.i64()?;
            let batches = r.take(1)?[0];
            if usize::from(batches) > CACHED_BATCHES {
                return Err(format!(
                    "producer {id} has {batches} batches in the snapshot"
                ));
            }
            let mut entry = ProducerEntry {
                epoch,
                batches: VecDeque::new(),
                last_timestamp,
            };
            for _ in 0..batches {
                entry.batches.push_back(BatchMetadata {
                    first_sequence: r.i32()?,
                    last_sequence: r.i32()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    timestamp: r.i64()?,
                });
            }
            producers.insert(id, entry);
        }
        if r.at != body.len() {
            return Err("the producer snapshot has bytes after its last producer".to_string());
        }
        Ok((offset, ProducerStates { producers }))
    }
}

const SNAPSHOT_MAGIC: &[u8] = b"SPST";
const SNAPSHOT_VERSION: u8 = 1;

/// Reads big-endian fields off a byte slice, failing (not panicking) at its end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| "the producer snapshot ends early".to_string())?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("two bytes"),
        ))
    }

    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("four bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("four bytes"),
        ))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("eight bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: i64 = 1000;

    /// A batch of `records` records from `PID` at `epoch` starting at `seq`, written at
    /// `offset`.
    fn batch(epoch: i16, seq: i32, records: i32, offset: i64) -> ProducerBatch {
        ProducerBatch {
            producer_id: PID,
            epoch,
            base_sequence: seq,
            last_offset_delta: records - 1,
            first_offset: offset,
            max_timestamp: 1_000 + offset,
        }
    }

    /// Checks and records `b` as the log would.
    fn write(states: &mut ProducerStates, b: ProducerBatch) -> Result<Admission, ProducerError> {
        let admission = states.check(&b)?;
        if admission == Admission::Append {
            states.record(&b);
        }
        Ok(admission)
    }

    #[test]
    fn batches_in_sequence_are_appended() {
        let mut s = ProducerStates::new();
        assert_eq!(write(&mut s, batch(0, 0, 3, 0)), Ok(Admission::Append));
        assert_eq!(write(&mut s, batch(0, 3, 2, 3)), Ok(Admission::Append));
        assert_eq!(write(&mut s, batch(0, 5, 1, 5)), Ok(Admission::Append));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_retry_of_any_of_the_last_five_batches_gets_its_original_offsets() {
        let mut s = ProducerStates::new();
        for i in 0..7 {
            write(&mut s, batch(0, i * 2, 2, 100 + i64::from(i) * 2)).unwrap();
        }
        // Batches 2..=6 are remembered.
        for i in 2..7 {
            assert_eq!(
                s.check(&batch(0, i * 2, 2, 999)),
                Ok(Admission::Duplicate {
                    first_offset: 100 + i64::from(i) * 2,
                    last_offset: 101 + i64::from(i) * 2,
                    timestamp: 1_000 + 100 + i64::from(i) * 2,
                }),
                "batch {i}"
            );
        }
        // An older one is out of order, as in Kafka.
        assert!(matches!(
            s.check(&batch(0, 2, 2, 999)),
            Err(ProducerError::OutOfOrder { expected: 14, .. })
        ));
    }

    #[test]
    fn a_gap_or_a_repeat_with_another_range_is_out_of_order() {
        let mut s = ProducerStates::new();
        write(&mut s, batch(0, 0, 3, 0)).unwrap();
        let gap = s.check(&batch(0, 4, 1, 3));
        assert_eq!(
            gap,
            Err(ProducerError::OutOfOrder {
                producer_id: PID,
                epoch: 0,
                base_sequence: 4,
                expected: 3,
            })
        );
        // Same first sequence, other length: not the same batch.
        assert!(s.check(&batch(0, 0, 2, 3)).is_err());
    }

    #[test]
    fn an_older_epoch_is_refused_and_a_newer_one_starts_at_zero() {
        let mut s = ProducerStates::new();
        write(&mut s, batch(3, 0, 1, 0)).unwrap();
        assert_eq!(
            s.check(&batch(2, 1, 1, 1)),
            Err(ProducerError::InvalidEpoch {
                producer_id: PID,
                epoch: 2,
                current: 3,
            })
        );
        assert!(matches!(
            s.check(&batch(4, 1, 1, 1)),
            Err(ProducerError::OutOfOrder { expected: 0, .. })
        ));
        assert_eq!(write(&mut s, batch(4, 0, 1, 1)), Ok(Admission::Append));
        // The old epoch's batches are gone: its retry is now fenced, not a duplicate.
        assert!(matches!(
            s.check(&batch(3, 0, 1, 9)),
            Err(ProducerError::InvalidEpoch { .. })
        ));
    }

    #[test]
    fn an_unknown_producer_may_start_at_any_sequence() {
        // As in Kafka since KIP-360: its state may have expired or been deleted.
        let s = ProducerStates::new();
        assert_eq!(s.check(&batch(0, 57, 1, 0)), Ok(Admission::Append));
    }

    #[test]
    fn sequences_wrap_from_the_largest_to_zero() {
        let mut s = ProducerStates::new();
        write(&mut s, batch(0, i32::MAX - 1, 2, 0)).unwrap();
        assert_eq!(batch(0, i32::MAX - 1, 2, 0).last_sequence(), i32::MAX);
        assert_eq!(write(&mut s, batch(0, 0, 1, 2)), Ok(Admission::Append));
        assert_eq!(batch(0, i32::MAX, 3, 0).last_sequence(), 1);
    }

    #[test]
    fn batches_without_a_producer_are_not_tracked() {
        let mut s = ProducerStates::new();
        let plain = ProducerBatch {
            producer_id: NO_PRODUCER_ID,
            epoch: NO_PRODUCER_EPOCH,
            base_sequence: -1,
            last_offset_delta: 0,
            first_offset: 0,
            max_timestamp: 0,
        };
        assert_eq!(write(&mut s, plain), Ok(Admission::Append));
        assert_eq!(write(&mut s, plain), Ok(Admission::Append));
        assert!(s.is_empty());
    }

    #[test]
    fn producers_expire_after_their_last_batch_is_old_enough() {
        let mut s = ProducerStates::new();
        write(&mut s, batch(0, 0, 1, 0)).unwrap(); // timestamp 1000
        let mut other = batch(0, 0, 1, 1);
        other.producer_id = PID + 1;
        other.max_timestamp = 5_000;
        write(&mut s, other).unwrap();
        assert_eq!(s.expire(5_999, 5_000), 0);
        assert_eq!(s.expire(6_000, 5_000), 1);
        assert_eq!(s.len(), 1);
        // Forgotten, it may start over at any sequence.
        assert_eq!(s.check(&batch(0, 9, 1, 2)), Ok(Admission::Append));
    }

    #[test]
    fn truncation_forgets_the_batches_past_the_cut() {
        let mut s = ProducerStates::new();
        write(&mut s, batch(0, 0, 2, 0)).unwrap();
        write(&mut s, batch(0, 2, 2, 2)).unwrap();
        s.truncate_to(2);
        // The batch at 2 is gone: its resend is appended again, after sequence 1.
        assert_eq!(s.check(&batch(0, 2, 2, 2)), Ok(Admission::Append));
        s.truncate_to(0);
        assert!(s.is_empty());
    }

    #[test]
    fn a_snapshot_reads_back_as_the_same_state() {
        let mut s = ProducerStates::new();
        for i in 0..7 {
            write(&mut s, batch(2, i, 1, i64::from(i))).unwrap();
        }
        let mut other = batch(0, 0, 4, 7);
        other.producer_id = 7;
        write(&mut s, other).unwrap();
        let bytes = s.encode(11);
        assert_eq!(ProducerStates::decode(&bytes), Ok((11, s.clone())));
        assert_eq!(
            ProducerStates::decode(&ProducerStates::new().encode(0)),
            Ok((0, ProducerStates::new()))
        );
    }

    #[test]
    fn a_damaged_snapshot_is_an_error_not_a_panic() {
        let mut s = ProducerStates::new();
        write(&mut s, batch(0, 0, 1, 0)).unwrap();
        let bytes = s.encode(1);
        for len in 0..bytes.len() {
            assert!(
                ProducerStates::decode(&bytes[..len]).is_err(),
                "{len} bytes"
            );
        }
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x40;
            assert!(ProducerStates::decode(&flipped).is_err(), "byte {at}");
        }
    }
}
