//! The rules of log compaction, one stored batch at a time, apart from where the batches live:
//! the cleaner (`cleaner.rs`) runs them over segment files; any other store of Kafka batches
//! can run them over its own.
//!
//! A [`Compactor`] first builds the key map over the dirty range ([`Compactor::map_batch`],
//! batch by batch in offset order), then judges every batch from the log start to the map's
//! end ([`Compactor::judge`]): kept as it is, dropped, or rewritten with fewer records (its
//! offsets unchanged). The rules are Kafka's, as the cleaner's module docs set them out.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::batch::BatchHeader;
use crate::cleaner::CleanerCheckpoint;
use crate::filter::{self, BatchRecords};
use crate::producer_state::AbortedTxn;

/// Bytes Kafka's offset map spends per key: a 16-byte hash and an 8-byte offset.
const BYTES_PER_MAP_ENTRY: u64 = 24;
/// The share of the map Kafka fills (`log.cleaner.io.buffer.load.factor`).
const MAP_LOAD_FACTOR: f64 = 0.9;

/// How many keys a pass's map holds with `dedupe_buffer_bytes`
/// (`log.cleaner.dedupe.buffer.size`), as Kafka's map of hashes and offsets at its load factor.
pub fn map_capacity(dedupe_buffer_bytes: u64) -> usize {
    ((dedupe_buffer_bytes / BYTES_PER_MAP_ENTRY) as f64 * MAP_LOAD_FACTOR) as usize
}

/// The largest timestamp a stored batch's header holds (`None`: no batch header).
pub fn max_timestamp(batch: &[u8]) -> Option<i64> {
    BatchHeader::parse(batch).map(|h| h.max_timestamp)
}

/// A key's identity in the map: 128 bits of two SipHash runs (Kafka keeps 16 bytes of MD5).
fn key_hash(key: &[u8]) -> u128 {
    let mut first = std::hash::DefaultHasher::new();
    key.hash(&mut first);
    let mut second = std::hash::DefaultHasher::new();
    0x5eed_u16.hash(&mut second);
    key.hash(&mut second);
    (u128::from(first.finish()) << 64) | u128::from(second.finish())
}

/// The aborted transactions by producer, for "is this batch aborted".
struct AbortedIndex(HashMap<i64, Vec<(i64, i64)>>);

impl AbortedIndex {
    fn new(aborted: &[AbortedTxn]) -> AbortedIndex {
        let mut by_producer: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for a in aborted {
            by_producer
                .entry(a.producer_id)
                .or_default()
                .push((a.first_offset, a.last_offset));
        }
        AbortedIndex(by_producer)
    }

    /// Whether `h` is a data batch of an aborted transaction.
    fn contains(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self.0.get(&h.producer_id).is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|&(first, last)| first <= h.base_offset && h.base_offset <= last)
            })
    }
}

/// What becomes of one stored batch.
pub enum Verdict {
    Keep,
    Drop,
    /// Its records that stay, as one batch with the same offsets.
    Rewrite(Vec<u8>),
}

/// Why a batch could not be mapped.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// Its records do not read.
    #[error("{0}")]
    Unreadable(String),
    /// The first dirty batch (at `offset`) alone has more keys than the map holds.
    #[error("the dedupe buffer holds {capacity} keys, too few for the batch at offset {offset} ({keys} keys)")]
    TooFewKeys {
        capacity: usize,
        offset: i64,
        keys: usize,
    },
}

/// One compaction pass's key map and judgement.
pub struct Compactor {
    checkpoint: CleanerCheckpoint,
    delete_retention_ms: i64,
    now_ms: i64,
    aborted: AbortedIndex,
    first_dirty: i64,
    first_uncleanable: i64,
    capacity: usize,
    /// Key hash → latest offset in the dirty range below `map_end`.
    map: HashMap<u128, i64>,
    /// The first offset the map does not cover.
    map_end: i64,
    /// Producers with transactional data seen since their last marker.
    txn_data_seen: HashSet<i64>,
    /// Records judged so far that stay, and that go.
    pub records_kept: u64,
    pub records_removed: u64,
}

impl Compactor {
    /// A pass at `now_ms` over the dirty range `first_dirty..first_uncleanable` of a log whose
    /// cleaner checkpoint is `checkpoint` and whose aborted transactions are `aborted`, with a
    /// map of at most `capacity` keys.
    pub fn new(
        checkpoint: CleanerCheckpoint,
        delete_retention_ms: i64,
        now_ms: i64,
        aborted: &[AbortedTxn],
        (first_dirty, first_uncleanable): (i64, i64),
        capacity: usize,
    ) -> Compactor {
        Compactor {
            checkpoint,
            delete_retention_ms,
            now_ms,
            aborted: AbortedIndex::new(aborted),
            first_dirty,
            first_uncleanable,
            capacity,
            map: HashMap::new(),
            map_end: first_uncleanable,
            txn_data_seen: HashSet::new(),
            records_kept: 0,
            records_removed: 0,
        }
    }

    /// The first offset the map does not cover: the pass cleans up to here.
    pub fn map_end(&self) -> i64 {
        self.map_end
    }

    pub fn keys(&self) -> usize {
        self.map.len()
    }

    pub fn checkpoint(&self) -> &CleanerCheckpoint {
        &self.checkpoint
    }

    /// [`Compactor::map_batch`] of a stored batch's bytes.
    pub fn map_stored(&mut self, bytes: &[u8]) -> Result<bool, MapError> {
        let h = BatchHeader::parse(bytes)
            .ok_or_else(|| MapError::Unreadable("no batch header".to_string()))?;
        self.map_batch(&h, bytes)
    }

    /// [`Compactor::judge`] of a stored batch's bytes.
    pub fn judge_stored(&mut self, bytes: &[u8]) -> Result<Verdict, String> {
        let h = BatchHeader::parse(bytes).ok_or_else(|| "no batch header".to_string())?;
        self.judge(&h, bytes)
    }

    /// Adds the keys of `bytes` (the next stored batch of the dirty range, header `h`) to the
    /// map. `Ok(false)`: they would not fit, so the map (and the pass) ends before this batch.
    pub(crate) fn map_batch(&mut self, h: &BatchHeader, bytes: &[u8]) -> Result<bool, MapError> {
        if h.is_control() || self.aborted.contains(h) {
            return Ok(true);
        }
        let records = BatchRecords::read(bytes, h).map_err(MapError::Unreadable)?;
        let mut batch_keys: Vec<(u128, i64)> = Vec::with_capacity(records.records.len());
        for record in &records.records {
            if record.offset < self.first_dirty || record.offset >= self.first_uncleanable {
                continue;
            }
            if let Some(key) = records.key(record) {
                batch_keys.push((key_hash(key), record.offset));
            }
        }
        let new_keys = batch_keys
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !self.map.contains_key(k))
            .collect::<HashSet<u128>>()
            .len();
        if self.map.len() + new_keys > self.capacity {
            if h.base_offset <= self.first_dirty {
                return Err(MapError::TooFewKeys {
                    capacity: self.capacity,
                    offset: h.base_offset,
                    keys: new_keys,
                });
            }
            self.map_end = h.base_offset;
            return Ok(false);
        }
        for (key, offset) in batch_keys {
            self.map.insert(key, offset);
        }
        Ok(true)
    }

    fn horizon_passed(&self, offset: i64) -> bool {
        self.checkpoint
            .horizon_passed(offset, self.now_ms, self.delete_retention_ms)
    }

    /// Whether a record at `offset` with `key` and a value or not stays.
    fn keeps_record(&self, offset: i64, key: Option<&[u8]>, has_value: bool) -> bool {
        if offset >= self.map_end {
            return true;
        }
        let Some(key) = key else {
            return false;
        };
        let latest = self.map.get(&key_hash(key)).is_none_or(|&l| offset >= l);
        latest && (has_value || !self.horizon_passed(offset))
    }

    /// What becomes of `bytes`, the next stored batch (header `h`) from the log start on; an
    /// error when its records do not read.
    pub(crate) fn judge(&mut self, h: &BatchHeader, bytes: &[u8]) -> Result<Verdict, String> {
        let count = u64::try_from(h.record_count).unwrap_or(0);
        if h.is_control() {
            let data_seen = h.is_transactional() && self.txn_data_seen.remove(&h.producer_id);
            let goes =
                !data_seen && h.last_offset() < self.map_end && self.horizon_passed(h.base_offset);
            return Ok(if goes {
                self.records_removed += count;
                Verdict::Drop
            } else {
                self.records_kept += count;
                Verdict::Keep
            });
        }
        if h.is_transactional() {
            self.txn_data_seen.insert(h.producer_id);
        }
        // Nothing at or past the map's end goes, aborted or not: offsets may be missing only
        // below the checkpoint (recovery accepts gaps only there).
        if h.base_offset >= self.map_end {
            self.records_kept += count;
            return Ok(Verdict::Keep);
        }
        if self.aborted.contains(h) {
            self.records_removed += count;
            return Ok(Verdict::Drop);
        }
        let records = BatchRecords::read(bytes, h)?;
        let keep: Vec<usize> = records
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| self.keeps_record(r.offset, records.key(r), r.has_value))
            .map(|(i, _)| i)
            .collect();
        let kept = keep.len() as u64;
        self.records_kept += kept;
        self.records_removed += records.records.len() as u64 - kept;
        Ok(if keep.len() == records.records.len() {
            Verdict::Keep
        } else if keep.is_empty() {
            Verdict::Drop
        } else {
            Verdict::Rewrite(filter::rebuild(bytes, h, &records, &keep)?)
        })
    }
}
