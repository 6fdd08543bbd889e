//! The idempotent-producer state of one partition (Kafka's `ProducerStateManager`): for each
//! producer id, its epoch and the sequence ranges and offsets of the last five batches it wrote
//! here. With it a batch retried after a lost response is answered with the offsets it already
//! has (nothing is written twice), a batch after a gap is refused (OUT_OF_ORDER_SEQUENCE_NUMBER)
//! and a batch from an older epoch of the producer is refused (INVALID_PRODUCER_EPOCH).
//!
//! Transactions live here too: a producer's first transactional batch opens its transaction in
//! this partition (the earliest open one bounds the last stable offset), and the commit or
//! abort marker the transaction coordinator has written ([`TxnMarker`]) closes it; an aborted
//! transaction's offset range joins the list read_committed fetches return
//! ([`AbortedTxn`]). A plain batch from a producer with an open transaction is refused
//! (INVALID_TXN_STATE).
//!
//! Nothing here does I/O. The log asks [`ProducerStates::check`] before it writes a produced
//! batch (under its writer lock, so no other append comes between) and calls
//! [`ProducerStates::record`] once the batch is written; recovery records every stored batch
//! the same way, so the state after a restart is the state before it. A snapshot
//! ([`ProducerStates::encode`]) lets start-up begin from an offset instead of the log start.
//! The rules follow Kafka's `ProducerAppendInfo.checkProducerEpoch` / `checkSequence` and
//! `ProducerStateEntry.findDuplicateBatch`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

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
    /// Part of a transaction (the batch's transactional attribute).
    pub is_transactional: bool,
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
    /// The offset of the first batch of this producer's open transaction here, if one is open.
    current_txn_first_offset: Option<i64>,
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
    /// Kafka's INVALID_TXN_STATE: a plain batch from a producer whose transaction is open here.
    #[error("producer {producer_id} wrote a non-transactional batch inside its open transaction")]
    InvalidTxnState { producer_id: i64 },
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

/// A commit or abort marker for one producer's transaction, as the transaction coordinator
/// writes it into each partition of the transaction (a control batch of one record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: i64,
    /// The producer's epoch at the coordinator (bumped when the abort fenced the producer).
    pub epoch: i16,
    pub commit: bool,
    /// The coordinator's epoch, stored in the marker's value (Starling's single coordinator: 0).
    pub coordinator_epoch: i32,
}

/// An aborted transaction's range in this partition: what read_committed consumers skip
/// (Kafka's `AbortedTxn`, returned in Fetch responses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the abort marker.
    pub last_offset: i64,
}

/// One producer as DescribeProducers reports it (Kafka's `ProducerState` in the response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub epoch: i16,
    /// The sequence number of its last batch here, or -1 when no batch is remembered (only a
    /// marker, or the batches of an older epoch were forgotten).
    pub last_sequence: i32,
    /// The largest timestamp of its batches and markers here.
    pub last_timestamp: i64,
    /// The first offset of its open transaction here, if one is open.
    pub current_txn_start_offset: Option<i64>,
}

/// Every producer's state in one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: BTreeMap<i64, ProducerEntry>,
    /// The open transactions, as (first offset, producer id).
    ongoing: BTreeSet<(i64, i64)>,
    /// Aborted transactions by marker offset (their order in the log), shared with readers.
    aborted: Arc<Vec<AbortedTxn>>,
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
        if !batch.is_transactional && entry.current_txn_first_offset.is_some() {
            return Err(ProducerError::InvalidTxnState {
                producer_id: batch.producer_id,
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
                // Known epoch but no batch: a marker bumped the epoch, so a new run of sequences
                // starts at 0 (Kafka's `checkSequence`).
                None if batch.base_sequence == 0 => Ok(Admission::Append),
                None => Err(ProducerError::OutOfOrder {
                    producer_id: batch.producer_id,
                    epoch: batch.epoch,
                    base_sequence: batch.base_sequence,
                    expected: 0,
                }),
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
                current_txn_first_offset: None,
            });
        if batch.epoch != entry.epoch {
            entry.epoch = batch.epoch;
            entry.batches.clear();
        }
        if batch.is_transactional && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(batch.first_offset);
            self.ongoing.insert((batch.first_offset, batch.producer_id));
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

    /// Whether `marker` has a transaction to close here: the producer's transaction is open in
    /// this partition and the marker's epoch is not older than the producer's. A marker with
    /// nothing to close need not be written (the coordinator repeats jobs after a restart, and
    /// a producer that added a partition may never have written to it).
    pub fn needs_marker(&self, marker: &TxnMarker) -> bool {
        self.producers
            .get(&marker.producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some() && marker.epoch >= e.epoch)
    }

    /// Takes in a marker written at `offset` (or read back by recovery): the producer's open
    /// transaction here ends, its epoch moves up to the marker's (forgetting the batches of
    /// the older epoch, as a fencing abort bumps it), and an abort joins the aborted list.
    /// Returns the aborted range, for an abort that closed a transaction.
    pub fn apply_marker(
        &mut self,
        marker: &TxnMarker,
        offset: i64,
        timestamp: i64,
    ) -> Option<AbortedTxn> {
        let entry = self
            .producers
            .entry(marker.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: marker.epoch,
                batches: VecDeque::new(),
                last_timestamp: timestamp,
                current_txn_first_offset: None,
            });
        if marker.epoch > entry.epoch {
            entry.epoch = marker.epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = entry.last_timestamp.max(timestamp);
        let first_offset = entry.current_txn_first_offset.take()?;
        self.ongoing.remove(&(first_offset, marker.producer_id));
        if marker.commit {
            return None;
        }
        let aborted = AbortedTxn {
            producer_id: marker.producer_id,
            first_offset,
            last_offset: offset,
        };
        Arc::make_mut(&mut self.aborted).push(aborted);
        Some(aborted)
    }

    /// The first offset of the earliest open transaction: the last stable offset, when there
    /// is one (otherwise the log end is).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.first().map(|(offset, _)| *offset)
    }

    /// Whether `producer_id` has a transaction open here.
    pub fn has_open_transaction(&self, producer_id: i64) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some())
    }

    /// The open transactions as (producer id, first offset), by first offset.
    pub fn open_transactions(&self) -> Vec<(i64, i64)> {
        self.ongoing
            .iter()
            .map(|&(first, pid)| (pid, first))
            .collect()
    }

    /// Every producer the partition remembers, by producer id (DescribeProducers).
    pub fn active_producers(&self) -> Vec<ActiveProducer> {
        self.producers
            .iter()
            .map(|(&producer_id, e)| ActiveProducer {
                producer_id,
                epoch: e.epoch,
                last_sequence: e.last_sequence().unwrap_or(-1),
                last_timestamp: e.last_timestamp,
                current_txn_start_offset: e.current_txn_first_offset,
            })
            .collect()
    }

    /// The aborted transactions, by marker offset (cheap to clone: shared).
    pub fn aborted(&self) -> Arc<Vec<AbortedTxn>> {
        self.aborted.clone()
    }

    /// Forgets the aborted transactions that end before `log_start` (retention deleted them).
    pub fn prune_aborted(&mut self, log_start: i64) {
        if self
            .aborted
            .first()
            .is_some_and(|a| a.last_offset < log_start)
        {
            Arc::make_mut(&mut self.aborted).retain(|a| a.last_offset >= log_start);
        }
    }

    /// Forgets every producer whose last batch is `expiration_ms` or more older than `now_ms`
    /// (Kafka's `producer.id.expiration.ms`), unless its transaction is open here; returns how
    /// many went.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            entry.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Forgets every batch, transaction start and abort at or past `offset` (the log was cut
    /// back to it); a producer left with no batch and no open transaction is forgotten.
    pub fn truncate_to(&mut self, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
            if entry
                .current_txn_first_offset
                .is_some_and(|first| first >= offset)
            {
                entry.current_txn_first_offset = None;
            }
        }
        self.producers.retain(|_, entry| {
            !entry.batches.is_empty() || entry.current_txn_first_offset.is_some()
        });
        self.ongoing.retain(|&(first, _)| first < offset);
        if self.aborted.last().is_some_and(|a| a.last_offset >= offset) {
            Arc::make_mut(&mut self.aborted).retain(|a| a.last_offset < offset);
        }
    }

    /// The state as a snapshot taken at `offset` (every batch before it recorded): magic,
    /// format version, offset, each producer (its epoch, last timestamp, open transaction's
    /// first offset or −1, and batches), the aborted transactions, and a CRC-32C of all of it.
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
            out.extend_from_slice(&entry.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            out.push(entry.batches.len() as u8);
            for b in &entry.batches {
                out.extend_from_slice(&b.first_sequence.to_be_bytes());
                out.extend_from_slice(&b.last_sequence.to_be_bytes());
                out.extend_from_slice(&b.first_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
                out.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        out.extend_from_slice(&(self.aborted.len() as u32).to_be_bytes());
        for a in self.aborted.iter() {
            out.extend_from_slice(&a.producer_id.to_be_bytes());
            out.extend_from_slice(&a.first_offset.to_be_bytes());
            out.extend_from_slice(&a.last_offset.to_be_bytes());
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
        if version != 1 && version != SNAPSHOT_VERSION {
            return Err(format!("producer snapshot format {version} is not known"));
        }
        // Version 1 (before transactions) has no open transactions and no aborted list.
        let transactional = version >= 2;
        let offset = r.i64()?;
        let count = r.u32()?;
        let mut states = ProducerStates::default();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let last_timestamp = r.i64()?;
            let txn_first = if transactional { r.i64()? } else { -1 };
            let batches = r.take(1)?[0];
            if usize::from(batches) > CACHED_BATCHES {
                return Err(format!(
                    "producer {id} has {batches} batches in the snapshot"
                ));
            }
            let current_txn_first_offset = (txn_first >= 0).then_some(txn_first);
            if let Some(first) = current_txn_first_offset {
                states.ongoing.insert((first, id));
            }
            let mut entry = ProducerEntry {
                epoch,
                batches: VecDeque::new(),
                last_timestamp,
                current_txn_first_offset,
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
            states.producers.insert(id, entry);
        }
        if transactional {
            let aborted = r.u32()?;
            let list = Arc::make_mut(&mut states.aborted);
            for _ in 0..aborted {
                list.push(AbortedTxn {
                    producer_id: r.i64()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                });
            }
        }
        if r.at != body.len() {
            return Err("the producer snapshot has bytes after its last producer".to_string());
        }
        Ok((offset, states))
    }
}

const SNAPSHOT_MAGIC: &[u8] = b"SPST";
/// 2 adds each producer's open transaction and the aborted transactions; 1 is still read.
const SNAPSHOT_VERSION: u8 = 2;

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
            is_transactional: false,
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
    fn active_producers_show_epoch_last_sequence_and_open_transaction() {
        let mut s = ProducerStates::new();
        write(&mut s, batch(0, 0, 3, 0)).unwrap();
        write(&mut s, batch(0, 3, 2, 3)).unwrap();
        let mut txn = batch(0, 0, 4, 5);
        txn.producer_id = PID + 1;
        txn.is_transactional = true;
        write(&mut s, txn).unwrap();
        assert_eq!(
            s.active_producers(),
            vec![
                ActiveProducer {
                    producer_id: PID,
                    epoch: 0,
                    last_sequence: 4,
                    last_timestamp: 1_003,
                    current_txn_start_offset: None,
                },
                ActiveProducer {
                    producer_id: PID + 1,
                    epoch: 0,
                    last_sequence: 3,
                    last_timestamp: 1_005,
                    current_txn_start_offset: Some(5),
                },
            ]
        );
        // A fencing abort's marker bumps the epoch and forgets the older epoch's batches: no
        // last sequence any more, and the transaction is closed.
        let marker = TxnMarker {
            producer_id: PID + 1,
            epoch: 1,
            commit: false,
            coordinator_epoch: 0,
        };
        s.apply_marker(&marker, 9, 2_000);
        let fenced = s.active_producers()[1];
        assert_eq!(
            (fenced.epoch, fenced.last_sequence, fenced.last_timestamp),
            (1, -1, 2_000)
        );
        assert_eq!(fenced.current_txn_start_offset, None);
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
            is_transactional: false,
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
    fn a_snapshot_keeps_open_transactions_and_aborted_ranges() {
        let mut s = ProducerStates::new();
        let mut t = batch(0, 0, 2, 10);
        t.is_transactional = true;
        write(&mut s, t).unwrap();
        let mut aborted = batch(0, 0, 1, 12);
        aborted.producer_id = 9;
        aborted.is_transactional = true;
        write(&mut s, aborted).unwrap();
        let abort = TxnMarker {
            producer_id: 9,
            epoch: 0,
            commit: false,
            coordinator_epoch: 0,
        };
        assert!(s.needs_marker(&abort));
        s.apply_marker(&abort, 13, 5);
        let (offset, back) = ProducerStates::decode(&s.encode(14)).unwrap();
        assert_eq!((offset, &back), (14, &s));
        assert_eq!(back.first_unstable_offset(), Some(10));
        assert_eq!(back.open_transactions(), vec![(PID, 10)]);
        assert_eq!(
            back.aborted().as_slice(),
            [AbortedTxn {
                producer_id: 9,
                first_offset: 12,
                last_offset: 13
            }]
        );
    }

    #[test]
    fn a_version_1_snapshot_from_before_transactions_still_reads() {
        // Magic, version 1, offset 3, one producer (id 5, epoch 2, timestamp 7) with one batch
        // (sequences 0..=2 at offsets 0..=2, timestamp 7), CRC.
        let mut v1 = b"SPST".to_vec();
        v1.push(1);
        v1.extend_from_slice(&3i64.to_be_bytes());
        v1.extend_from_slice(&1u32.to_be_bytes());
        v1.extend_from_slice(&5i64.to_be_bytes());
        v1.extend_from_slice(&2i16.to_be_bytes());
        v1.extend_from_slice(&7i64.to_be_bytes());
        v1.push(1);
        for field in [0i32, 2] {
            v1.extend_from_slice(&field.to_be_bytes());
        }
        for field in [0i64, 2, 7] {
            v1.extend_from_slice(&field.to_be_bytes());
        }
        let crc = crc32c::crc32c(&v1);
        v1.extend_from_slice(&crc.to_be_bytes());
        let (offset, states) = ProducerStates::decode(&v1).unwrap();
        assert_eq!(offset, 3);
        assert_eq!(states.len(), 1);
        assert_eq!(states.first_unstable_offset(), None);
        let mut retry = batch(2, 0, 3, 99);
        retry.producer_id = 5;
        assert!(matches!(
            states.check(&retry),
            Ok(Admission::Duplicate {
                first_offset: 0,
                ..
            })
        ));
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
