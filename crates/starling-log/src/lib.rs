//! Starling's partition log: one directory per partition holding segment
//! files whose bytes are Kafka record batches (magic v2) exactly as they go
//! over the wire, so Fetch can serve stored bytes unchanged.
//!
//! # Guide
//!
//! * [`PartitionLog`] is the whole API: [`open`](PartitionLog::open) a
//!   directory (recovering it after a crash), [`append`](PartitionLog::append)
//!   the `records` of a Produce request, [`read`](PartitionLog::read) whole
//!   batches for a Fetch, look up offsets by time, and run the housekeeping
//!   (`maybe_flush`, `roll_if_due`, `enforce_retention`) from a ticker. It is
//!   `Send + Sync` and every method takes `&self`: appends are serialized by
//!   one writer lock, while readers only copy a snapshot of the segment list
//!   and log end offset under a short lock and then read the files
//!   positionally, so an append (even one that fsyncs) never blocks a read.
//! * [`LogConfig`] holds the Kafka topic settings that shape the log
//!   (`segment.bytes`, `retention.ms`, `flush.messages`, ...). It can be
//!   replaced at runtime with [`set_config`](PartitionLog::set_config).
//! * [`AppendInfo`] / [`AppendError`] describe an append; an append that
//!   fails (even on a full disk or a failed fsync) leaves nothing behind: not
//!   in memory, not visible to readers, and (best effort) not in the file.
//!   [`ReadResult`] / [`ReadError`] describe a read. [`LogError`] is what
//!   [`open`](PartitionLog::open) reports, notably [`LogError::Corruption`]
//!   when acknowledged data is damaged or missing (anything but a torn tail),
//!   so the broker can refuse to start.
//! * [`repair_partition`] is `starling log repair`: it truncates a damaged
//!   log at its first damage and returns a [`RepairReport`] of what it removed.
//! * Compaction: [`clean`](PartitionLog::clean) runs one pass of the log
//!   cleaner (latest record per key, under a [`Throttle`]) and returns
//!   [`CleanStats`]; [`cleanable_info`](PartitionLog::cleanable_info) says
//!   whether a log is worth cleaning ([`CleanableInfo`]); see `cleaner`.
//!
//! On disk the layout follows Kafka: `{base_offset:020}.log` segment files,
//! with a sparse `.index` (offset → position) and `.timeindex` (timestamp →
//! offset) beside each, a `recovery-point` checkpoint, and `{offset:020}.snapshot` files of the
//! idempotent producers' state (written at each segment roll and at close, so start-up reads
//! only the batches after the newest one; see [`PartitionLog::producer_state_load`]). A
//! compacted log also has a `cleaner-offset-checkpoint` (where the next cleaning pass starts,
//! and when recent passes ran), and while a pass swaps segments in, `.log.cleaned` files and a
//! `cleaner-swap` record that open finishes or undoes. The
//! modules:
//! `batch` (batch bytes: validation, offset assignment), `index` (sparse
//! indexes), `segment` (one segment file and reads from it), `checkpoint`
//! (the recovery point), `scan` (reading files back without trusting them),
//! `recovery` (opening and crash recovery), `repair` (truncating at damage),
//! `retention` (what may be deleted), `cleaner` (log compaction and its
//! crash-safe segment swap), `filter` (rewriting a batch with fewer records),
//! `throttle` (bounding the cleaner's I/O), `producer_state` (idempotent producers'
//! sequence and epoch checks, and the snapshot format), `producer_snapshot`
//! (the snapshot files: writing, pruning, choosing one at open) and
//! `failpoint` (fault injection for tests; compiled away otherwise).
//!
//! # Example
//!
//! ```
//! use starling_log::{LogConfig, PartitionLog};
//! # use bytes::BytesMut;
//! # /// One uncompressed v2 batch holding a single record with a null key.
//! # fn one_record_batch(value: &[u8], timestamp: i64) -> BytesMut {
//! #     assert!(value.len() < 50);
//! #     let mut record = vec![0u8, 0, 0, 1, (value.len() * 2) as u8];
//! #     record.extend_from_slice(value);
//! #     record.push(0);
//! #     let mut b = Vec::new();
//! #     b.extend_from_slice(&0i64.to_be_bytes());
//! #     b.extend_from_slice(&((49 + 1 + record.len()) as i32).to_be_bytes());
//! #     b.extend_from_slice(&0i32.to_be_bytes());
//! #     b.push(2);
//! #     b.extend_from_slice(&[0; 4]);
//! #     b.extend_from_slice(&0i16.to_be_bytes());
//! #     b.extend_from_slice(&0i32.to_be_bytes());
//! #     b.extend_from_slice(&timestamp.to_be_bytes());
//! #     b.extend_from_slice(&timestamp.to_be_bytes());
//! #     b.extend_from_slice(&(-1i64).to_be_bytes());
//! #     b.extend_from_slice(&(-1i16).to_be_bytes());
//! #     b.extend_from_slice(&(-1i32).to_be_bytes());
//! #     b.extend_from_slice(&1i32.to_be_bytes());
//! #     b.push((record.len() * 2) as u8);
//! #     b.extend_from_slice(&record);
//! #     let crc = crc32c::crc32c(&b[21..]);
//! #     b[17..21].copy_from_slice(&crc.to_be_bytes());
//! #     BytesMut::from(&b[..])
//! # }
//! let dir = tempfile::tempdir()?;
//! let now_ms = 1_700_000_000_000;
//! let log = PartitionLog::open(dir.path(), LogConfig::default(), now_ms)?;
//!
//! // Each append gets the next offsets; the batch bytes are stored as sent.
//! let first = log.append(one_record_batch(b"hello", now_ms), now_ms)?;
//! let second = log.append(one_record_batch(b"world", now_ms), now_ms)?;
//! assert_eq!((first.base_offset, second.base_offset), (0, 1));
//! assert_eq!(log.log_end_offset(), 2);
//!
//! // A read returns whole batches, starting with the one holding the offset.
//! let fetched = log.read(1, 1 << 20, true)?;
//! assert_eq!(fetched.high_watermark, 2);
//! assert!(fetched.records.ends_with(b"world\0"));
//!
//! // Closing checkpoints the log; reopening finds the same data.
//! log.close()?;
//! drop(log);
//! let log = PartitionLog::open(dir.path(), LogConfig::default(), now_ms)?;
//! assert_eq!(log.log_end_offset(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod checkpoint;
mod cleaner;
pub mod compactor;
mod compression;
mod failpoint;
mod filter;
mod index;
pub mod prepared;
mod producer_snapshot;
pub mod producer_state;
mod recovery;
mod repair;
mod retention;
mod scan;
mod segment;
mod throttle;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};

pub use crate::cleaner::{CleanStats, CleanableInfo, CleanerCheckpoint};
pub use crate::repair::{repair_partition, Dropped, Repair, RepairReport};
pub use crate::scan::IntactBatches;
pub use crate::throttle::{
    Clock, IoKind, SharedThrottle, SystemClock, Throttle, TokenBucket, Unthrottled,
};

use crate::producer_state::{AbortedTxn, Admission, ProducerError, ProducerStates, TxnMarker};
use crate::retention::SegmentFacts;
use crate::segment::{remove_files, sync_dir, ReadProgress, Segment};

/// How a partition log stores, rolls, flushes and retains data.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment when the active one would exceed this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older than this.
    pub segment_ms: i64,
    /// `retention.ms`: delete sealed segments whose newest timestamp is older; `None` keeps forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: delete oldest sealed segments while the log is larger; `None` = unlimited.
    pub retention_bytes: Option<u64>,
    /// `flush.messages`: fsync after this many appended records; 1 = every append; `u64::MAX` = leave it to the OS.
    pub flush_interval_messages: u64,
    /// `flush.ms`: fsync when the last fsync is older than this; `None` = leave it to the OS.
    pub flush_interval_ms: Option<i64>,
    /// `index.interval.bytes`: bytes between sparse offset/time index entries.
    pub index_interval_bytes: u32,
    /// `max.message.bytes`: largest record batch accepted.
    pub max_message_bytes: u32,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `cleanup.policy`: whether old data goes by retention (`delete`), by compaction
    /// (`compact`) or both. Retention (`retention.ms`, `retention.bytes`) applies only when the
    /// policy includes delete; the cleaner only touches a log whose policy includes compact.
    pub cleanup_policy: CleanupPolicy,
    /// `min.cleanable.dirty.ratio`: the cleaner picks a log once its dirty bytes are at least
    /// this share of its cleanable bytes (Kafka's default 0.5).
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a record stays uncompacted at least this long: a segment whose
    /// newest timestamp is younger is not cleaned (default 0).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest dirty record is older than this must be
    /// cleaned whatever its dirty ratio (default `i64::MAX`: never forced).
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone (a record with a null value), and a
    /// transaction marker with nothing left of its transaction, stays after the cleaner first
    /// saw it, so that a consumer reading from the start in that time still sees it (default
    /// one day).
    pub delete_retention_ms: i64,
    /// `min.insync.replicas`: a partition on one node has one in-sync replica, so a write with
    /// acks=all is refused (NOT_ENOUGH_REPLICAS) when this is above 1, as Kafka refuses it
    /// when its in-sync replicas are fewer. The log only carries it; Produce checks it.
    pub min_insync_replicas: u32,
    /// `compression.type`: the codec batches are stored with. `Producer` stores each batch as
    /// its producer compressed it; any other value recompresses a batch whose codec differs
    /// before it is written, as Kafka's `LogValidator` does.
    pub compression_type: CompressionType,
    /// `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level` (KIP-390):
    /// the levels used when the log compresses (not when it stores a producer's batch as is).
    pub compression_levels: CompressionLevels,
    /// `message.timestamp.before.max.ms`: under CreateTime, a record whose timestamp is more
    /// than this before the broker's clock is refused (INVALID_TIMESTAMP); default `i64::MAX`.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: ... and one more than this after it; Kafka 4's
    /// default is one hour (KIP-1030).
    pub timestamp_after_max_ms: i64,
}

/// Kafka's `compression.type` of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionType {
    /// `producer`: keep the producer's codec.
    #[default]
    Producer,
    /// `uncompressed`.
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    /// Every value, in the order Kafka lists them.
    pub const ALL: [CompressionType; 6] = [
        CompressionType::Uncompressed,
        CompressionType::Zstd,
        CompressionType::Lz4,
        CompressionType::Snappy,
        CompressionType::Gzip,
        CompressionType::Producer,
    ];

    /// Kafka's name of the value.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Uncompressed => "uncompressed",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }

    /// The value named `name` (Kafka's names, lower case).
    pub fn parse(name: &str) -> Option<CompressionType> {
        CompressionType::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The batch codec id stored batches get (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd), or
    /// `None` for `producer`.
    pub fn codec(self) -> Option<i16> {
        match self {
            CompressionType::Producer => None,
            CompressionType::Uncompressed => Some(0),
            CompressionType::Gzip => Some(compression::GZIP),
            CompressionType::Snappy => Some(compression::SNAPPY),
            CompressionType::Lz4 => Some(compression::LZ4),
            CompressionType::Zstd => Some(compression::ZSTD),
        }
    }
}

/// The compression levels of KIP-390, used when the log compresses a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionLevels {
    /// `compression.gzip.level`: 1-9, or -1 for zlib's default (6).
    pub gzip: i32,
    /// `compression.lz4.level`: 1-17 (liblz4 counts levels past 12 as 12); default 9.
    pub lz4: i32,
    /// `compression.zstd.level`: -131072 to 22; default 3.
    pub zstd: i32,
}

impl Default for CompressionLevels {
    fn default() -> Self {
        CompressionLevels {
            gzip: -1,
            lz4: 9,
            zstd: 3,
        }
    }
}

/// Kafka's `cleanup.policy`: `delete`, `compact` or `compact,delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    /// `delete`: sealed segments go by `retention.ms` / `retention.bytes` (Kafka's default).
    #[default]
    Delete,
    /// `compact`: the cleaner keeps the latest record of each key; nothing is deleted by age or size.
    Compact,
    /// `compact,delete`: both.
    CompactDelete,
}

impl CleanupPolicy {
    /// Whether retention deletes old segments.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }

    /// Whether the cleaner compacts the log (and appends need keys).
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            flush_interval_messages: u64::MAX,
            flush_interval_ms: None,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            cleanup_policy: CleanupPolicy::Delete,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 24 * 3600 * 1000,
            min_insync_replicas: 1,
            compression_type: CompressionType::Producer,
            compression_levels: CompressionLevels::default(),
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
        }
    }
}

/// Kafka's `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker time written into the batches, or -1 under CreateTime.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    pub record_count: u64,
}

impl AppendInfo {
    /// The answer to a producer's retry of a batch the log already holds at `first_offset ..=
    /// last_offset` (written at `timestamp`): its offsets, nothing appended.
    pub fn duplicate(
        first_offset: i64,
        last_offset: i64,
        timestamp: i64,
        timestamp_type: TimestampType,
        log_start_offset: i64,
    ) -> AppendInfo {
        AppendInfo {
            base_offset: first_offset,
            last_offset,
            log_append_time: if timestamp_type == TimestampType::LogAppendTime {
                timestamp
            } else {
                -1
            },
            log_start_offset,
            record_count: 0,
        }
    }
}

/// Why a produced set of batches was refused. Nothing is written when an append fails: an
/// `Io` failure (full disk, I/O error, failed fsync) leaves the log as it was before the call.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The bytes cannot be read as what they claim to be (framing, CRC, a
    /// payload not valid for its codec, the decompression limit): Kafka's
    /// CORRUPT_MESSAGE.
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    /// Readable, but a rule of the record format is broken (record count,
    /// record lengths and fields, offset deltas): Kafka's INVALID_RECORD.
    /// `record_errors` names the record at fault when one is.
    #[error("invalid record batch: {message}")]
    InvalidRecord {
        message: String,
        record_errors: Vec<RecordError>,
    },
    /// A record's timestamp is outside `message.timestamp.before.max.ms` /
    /// `message.timestamp.after.max.ms`: Kafka's INVALID_TIMESTAMP, with every refused record
    /// in `record_errors`.
    #[error("{message}")]
    InvalidTimestamp {
        message: String,
        record_errors: Vec<RecordError>,
    },
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: u32 },
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    #[error("log i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// An idempotent producer's batch out of its order or from a fenced epoch.
    #[error("{0}")]
    Producer(#[from] ProducerError),
}

/// One refused record, as Produce v8+ reports it (`record_errors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The record's index in its batch.
    pub batch_index: i32,
    pub message: String,
}

/// Runs the produce-time validation of [`PartitionLog::append`] on a record set (the `records`
/// of one partition in a Produce request) without writing anything; returns how many batches it
/// holds. For the fuzz targets in `starling-fuzz`: the same checks, on any bytes, never panic.
pub fn validate_record_set(buf: &[u8], max_message_bytes: u32) -> Result<usize, AppendError> {
    batch::validate_produce(buf, max_message_bytes, &batch::RecordRules::default())
        .map(|batches| batches.len())
}

/// The validated record set `batches` (its batches `produced`) with every batch whose codec is
/// not `encoding`'s recompressed to it, each batch on its own (its producer id, epoch, base
/// sequence, attributes but the codec, offset deltas, timestamps and headers kept, its CRC new).
/// As Kafka does after recompressing, a batch now larger than `max_message_bytes` is refused
/// (MESSAGE_TOO_LARGE).
fn recompress_record_set(
    batches: &[u8],
    produced: &[batch::ProducedBatch],
    encoding: &compression::Encoding,
    max_message_bytes: u32,
) -> Result<(BytesMut, Vec<batch::ProducedBatch>), AppendError> {
    let mut out = BytesMut::with_capacity(batches.len());
    let mut rewritten = Vec::with_capacity(produced.len());
    for (index, b) in produced.iter().enumerate() {
        let bytes = &batches[b.pos..b.pos + b.size];
        let pos = out.len();
        if b.header.compression() == encoding.codec {
            out.extend_from_slice(bytes);
        } else {
            let fail =
                |m: String| AppendError::Corrupt(format!("batch {index} at byte {}: {m}", b.pos));
            let records = filter::BatchRecords::read(bytes, &b.header).map_err(fail)?;
            let new = filter::recompress(bytes, &b.header, &records, encoding).map_err(fail)?;
            if new.len() > max_message_bytes as usize {
                return Err(AppendError::TooLarge {
                    size: new.len(),
                    max: max_message_bytes,
                });
            }
            out.extend_from_slice(&new);
        }
        let size = out.len() - pos;
        let header = batch::BatchHeader::parse(&out[pos..])
            .ok_or_else(|| AppendError::Corrupt("recompressed batch too short".to_string()))?;
        rewritten.push(batch::ProducedBatch {
            pos,
            size,
            record_count: header.record_count,
            header,
        });
    }
    Ok((out, rewritten))
}

/// Stored batches read from the log.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub records: Bytes,
    pub high_watermark: i64,
    /// The offset below which every transaction is decided (the high watermark when none is
    /// open): read_committed reads stop here.
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For a read_committed read, the aborted transactions that overlap what may be fetched
    /// from the read offset on, for the consumer to skip; empty otherwise.
    pub aborted_transactions: Vec<AbortedTxn>,
}

/// Who wrote a produce record set: the producer id, epoch and transactional attribute of its
/// first batch, read off its header without validating anything (`None` if the bytes do not
/// start with a whole v2 batch header).
pub fn record_set_producer(records: &[u8]) -> Option<(i64, i16, bool)> {
    let header = batch::BatchHeader::parse(records)?;
    (header.magic == 2).then_some((
        header.producer_id,
        header.producer_epoch,
        header.is_transactional(),
    ))
}

/// Which records a read may return (the Fetch request's isolation level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything up to the log end.
    ReadUncommitted,
    /// Only what lies below the last stable offset, with the aborted transactions listed.
    ReadCommitted,
}

/// Why DeleteRecords could not move the log start.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// Kafka's OFFSET_OUT_OF_RANGE: past the log end (the high watermark) or negative.
    #[error("offset {offset} is beyond the log end offset {log_end_offset}")]
    OffsetOutOfRange { offset: i64, log_end_offset: i64 },
    #[error("log i/o error: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("log i/o error: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Acknowledged data is damaged or missing. Opening refuses rather than drop it; `starling
    /// log repair` truncates the log at the damage and reports what that removes.
    #[error(
        "corrupt log segment {file}: {reason} at byte position {position}; refusing to open the \
         partition rather than drop acknowledged data (`starling log repair` truncates the log \
         there and reports what that removes)"
    )]
    Corruption {
        file: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("log i/o error in {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One partition's log.
///
/// All methods take `&self`; the log is `Send + Sync` and meant to be shared
/// behind an `Arc`. Appends, rolls, flushes and retention are serialized by
/// an internal writer lock; reads never wait for them beyond a brief snapshot.
pub struct PartitionLog {
    dir: PathBuf,
    config: RwLock<LogConfig>,
    /// Serializes every change to the log. Lock order: writer, then view, then
    /// a segment's state; none is held across another's long operation.
    writer: Mutex<WriterState>,
    /// What readers see; replaced (segment list) or bumped (end offset) by the
    /// writer after its writes are done.
    view: RwLock<View>,
    /// How open rebuilt the producer state.
    producer_state_load: ProducerStateLoad,
    /// Held for a whole cleaning pass, so passes on one log never overlap (taken before the
    /// writer lock).
    cleaning: Mutex<()>,
}

/// How [`PartitionLog::open`] rebuilt the idempotent producers' state: from the newest usable
/// snapshot file, then the headers of the batches after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStateLoad {
    /// The offset of the snapshot it started from; `None` when there was none to use.
    pub snapshot_offset: Option<i64>,
    /// Where the walk over batch headers started: the snapshot's offset, or the log start
    /// offset when that is later (retention deleted what lay between) or there is no snapshot.
    pub scanned_from: i64,
    /// How many batch headers the walk read.
    pub headers_read: u64,
}

/// The reader-visible state, cheap to clone.
#[derive(Clone)]
struct View {
    segments: Arc<Vec<Arc<Segment>>>,
    log_start: i64,
    log_end: i64,
    /// What readers need of the transactions (the writer republishes it on every change).
    txns: TxnView,
}

/// The transactions as readers see them.
#[derive(Clone, Default)]
struct TxnView {
    /// The first offset of the earliest open transaction: the last stable offset.
    first_unstable: Option<i64>,
    /// The producers with a transaction open here.
    open: Arc<BTreeSet<i64>>,
    /// Aborted transactions by marker offset.
    aborted: Arc<Vec<AbortedTxn>>,
}

impl TxnView {
    fn of(states: &ProducerStates) -> TxnView {
        let open = states.open_transactions();
        TxnView {
            first_unstable: states.first_unstable_offset(),
            open: Arc::new(open.iter().map(|&(pid, _)| pid).collect()),
            aborted: states.aborted(),
        }
    }
}

impl View {
    fn active(&self) -> Arc<Segment> {
        // There is always at least one segment: open creates one and
        // retention never deletes the active segment.
        Arc::clone(
            self.segments
                .last()
                .expect("a partition log always has an active segment"),
        )
    }
}

/// State owned by the writer lock.
struct WriterState {
    /// Records appended since the last fsync.
    unflushed_records: u64,
    /// Broker time of the last fsync.
    last_flush_ms: i64,
    /// Latest broker time seen by any call, for calls that do not pass one.
    latest_now_ms: i64,
    /// Undo work a failed operation could not finish; it must succeed before
    /// the log changes again.
    cleanup: Cleanup,
    /// The idempotent producers' epochs and last batches, checked and updated by appends.
    producers: ProducerStates,
    /// Offsets of the producer-state snapshot files in the directory.
    snapshots: BTreeSet<i64>,
}

/// Disk work left over from a failed append or roll. Until it is done the
/// files hold bytes or a segment that memory does not, so every change
/// (append, roll, close) first retries it and fails while it still fails.
#[derive(Debug, Default)]
struct Cleanup {
    /// Cut the active segment's data file back to this length (the bytes after
    /// it are from a failed write).
    truncate_active_to: Option<u64>,
    /// Remove the files of the segment at this base offset (a failed roll).
    remove_segment: Option<i64>,
    /// Finish a cleaner swap that was committed but failed before its files were in place.
    pending_swap: Option<cleaner::PendingSwap>,
}

impl WriterState {
    fn observe(&mut self, now_ms: i64) {
        self.latest_now_ms = self.latest_now_ms.max(now_ms);
    }
}

impl fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let view = self.snapshot();
        f.debug_struct("PartitionLog")
            .field("dir", &self.dir)
            .field("log_start_offset", &view.log_start)
            .field("log_end_offset", &view.log_end)
            .field("segments", &view.segments.len())
            .finish()
    }
}

/// Records into `states` the header of every batch of `view` whose base offset is `from` or
/// later (batches without a producer id change nothing): the state a snapshot taken at `from`
/// is missing. Returns how many headers it read.
fn read_producer_states(view: &View, from: i64, states: &mut ProducerStates) -> io::Result<u64> {
    let mut headers_read = 0;
    for segment in view.segments.iter() {
        let (size, next_offset) = {
            let st = segment.state();
            (st.size, st.next_offset)
        };
        if next_offset <= from {
            continue;
        }
        let mut pos = if segment.base_offset() < from {
            match segment.find_batch(from, view.log_end)? {
                Some(pos) => pos,
                None => continue,
            }
        } else {
            0
        };
        while pos < size {
            let h = segment.read_header(pos, size)?;
            headers_read += 1;
            if h.base_offset >= from {
                if !h.is_control() {
                    states.record(&h.producer_batch(h.base_offset, h.max_timestamp));
                } else if h.is_transactional() {
                    // A transaction marker: which one is in its record.
                    let bytes = segment.read_bytes(pos, h.total_size())?;
                    match batch::marker_commits(&bytes) {
                        Some(commit) => {
                            let marker = TxnMarker {
                                producer_id: h.producer_id,
                                epoch: h.producer_epoch,
                                commit,
                                coordinator_epoch: 0,
                            };
                            states.apply_marker(&marker, h.base_offset, h.max_timestamp);
                        }
                        None => tracing::warn!(
                            file = %segment.log_path().display(),
                            offset = h.base_offset,
                            "a control batch that is not a transaction marker; ignored"
                        ),
                    }
                }
            }
            pos += h.total_size();
        }
    }
    Ok(headers_read)
}

impl PartitionLog {
    /// Opens the partition directory `dir` (creating it if absent) and
    /// recovers it: the active segment, and any sealed segment past the
    /// recovery checkpoint, are scanned batch by batch; the others have their
    /// indexes loaded and their tail checked; offsets must run on from one
    /// segment file to the next. A torn write at the very end of the log, past
    /// the checkpoint and with nothing intact after it, is truncated away (with
    /// a warning naming the bytes removed); any other damage, or a log ending
    /// short of the checkpoint, is returned as [`LogError::Corruption`] with
    /// no segment file changed. `now_ms` is the broker's clock, used for flush
    /// and roll timing.
    ///
    /// The idempotent producers' state is then the newest producer snapshot at
    /// or below the recovered log end (snapshots past it are deleted, damaged
    /// ones deleted and passed over) plus the headers of the batches after it;
    /// [`producer_state_load`](PartitionLog::producer_state_load) says how.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<PartitionLog, LogError> {
        let recovered = recovery::open_dir(dir, &config, now_ms)?;
        let segments: Vec<Arc<Segment>> = recovered.segments.into_iter().map(Arc::new).collect();
        let log_end = segments.last().map_or(0, |s| s.state().next_offset);
        // DeleteRecords may have moved the start inside the first segment (never past the end,
        // which a truncated tail may have moved back).
        let log_start = segments
            .first()
            .map_or(0, |s| s.base_offset())
            .max(checkpoint::read_log_start(dir).unwrap_or(0))
            .min(log_end);
        cleaner::clamp_checkpoint(dir, log_end)?;
        let loaded = producer_snapshot::load(dir, &recovered.snapshots, log_end)?;
        let (snapshot_offset, mut producers) = match loaded.snapshot {
            Some((offset, states)) => (Some(offset), states),
            None => (None, ProducerStates::new()),
        };
        let scanned_from = snapshot_offset.map_or(log_start, |offset| offset.max(log_start));
        let mut view = View {
            segments: Arc::new(segments),
            log_start,
            log_end,
            txns: TxnView::default(),
        };
        let headers_read =
            read_producer_states(&view, scanned_from, &mut producers).map_err(|e| {
                LogError::Io {
                    path: dir.to_path_buf(),
                    source: e,
                }
            })?;
        producers.prune_aborted(log_start);
        view.txns = TxnView::of(&producers);
        let producer_state_load = ProducerStateLoad {
            snapshot_offset,
            scanned_from,
            headers_read,
        };
        tracing::debug!(
            dir = %dir.display(),
            log_start,
            log_end,
            segments = view.segments.len(),
            recovery_point = recovered.recovery_point,
            producer_snapshot = ?snapshot_offset,
            producer_headers_read = headers_read,
            producers = producers.len(),
            "opened partition log"
        );
        Ok(PartitionLog {
            dir: dir.to_path_buf(),
            config: RwLock::new(config),
            writer: Mutex::new(WriterState {
                unflushed_records: 0,
                last_flush_ms: now_ms,
                latest_now_ms: now_ms,
                cleanup: Cleanup::default(),
                producers,
                snapshots: loaded.kept,
            }),
            view: RwLock::new(view),
            producer_state_load,
            cleaning: Mutex::new(()),
        })
    }

    /// How [`open`](PartitionLog::open) rebuilt the idempotent producers' state: the snapshot
    /// it started from and how many batch headers it read after it.
    pub fn producer_state_load(&self) -> ProducerStateLoad {
        self.producer_state_load
    }

    /// How many idempotent producers this partition remembers.
    pub fn producer_count(&self) -> usize {
        self.writer.lock().producers.len()
    }

    /// Forgets the producers whose last batch is `expiration_ms` or more older than `now_ms`
    /// (`producer.id.expiration.ms`); returns how many went.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.writer.lock().producers.expire(now_ms, expiration_ms)
    }

    /// The current configuration.
    pub fn config(&self) -> LogConfig {
        self.config.read().clone()
    }

    /// Replaces the configuration; it applies from the next call on.
    pub fn set_config(&self, config: LogConfig) {
        *self.config.write() = config;
    }

    fn snapshot(&self) -> View {
        self.view.read().clone()
    }

    /// Appends the `records` of one partition of a Produce request: one or
    /// more concatenated v2 batches.
    ///
    /// Every batch is validated first (length, magic, CRC-32C, record count,
    /// and every record, compressed batches decompressed with a bounded
    /// output; when `cleanup.policy` includes compact, every record must have a
    /// key, as Kafka requires: keyless records are refused with
    /// [`AppendError::InvalidRecord`] and one [`RecordError`] each); if any fails
    /// nothing is written. The batches then get consecutive offsets (their
    /// `baseOffset` is rewritten and `partitionLeaderEpoch` set to 0; under
    /// LogAppendTime the timestamps are set to `now_ms` and the CRC
    /// recomputed) and are written with a single `write` at the end of the
    /// active segment, rolling first if due, and fsynced when the flush policy
    /// says so. Only then do the segment size, indexes and log end offset move,
    /// so readers never see bytes that are not fully written (and, when the
    /// policy fsyncs, durable).
    ///
    /// If the write or the fsync fails the call returns `Io`, the in-memory
    /// state is exactly as before and the bytes are cut back off the file (if
    /// even that fails it is retried before the next change, which fails until
    /// it succeeds). A roll done first stays done: it is complete on its own.
    /// The next append after the fault clears works normally.
    pub fn append(&self, batches: BytesMut, now_ms: i64) -> Result<AppendInfo, AppendError> {
        let config = self.config();
        // The partition's name only appears in the refusal of a keyless compacted record.
        let name = if config.cleanup_policy.compacts() {
            self.partition_name()
        } else {
            String::new()
        };
        let prepared = prepared::PreparedAppend::prepare(batches, &config, &name, now_ms)?;
        let prepared::PreparedAppend {
            bytes: mut batches,
            batches: produced,
            record_count,
        } = prepared;

        let mut w = self.writer.lock();
        self.finish_cleanup_locked(&mut w)?;
        w.observe(now_ms);
        if let [only] = produced.as_slice() {
            let h = &only.header;
            match w.producers.check(&h.producer_batch(-1, h.max_timestamp))? {
                Admission::Append => {}
                Admission::Duplicate {
                    first_offset,
                    last_offset,
                    timestamp,
                } => {
                    return Ok(AppendInfo::duplicate(
                        first_offset,
                        last_offset,
                        timestamp,
                        config.timestamp_type,
                        self.view.read().log_start,
                    ));
                }
            }
        }
        let (info, assigned) =
            self.write_locked(&mut w, &mut batches, &produced, record_count, now_ms, false)?;
        let mut transactional = false;
        for (b, p) in assigned.iter().zip(&produced) {
            transactional |= p.header.is_transactional();
            w.producers
                .record(&p.header.producer_batch(b.base_offset, b.max_timestamp));
        }
        if transactional {
            self.publish_txns_locked(&w);
        }
        Ok(info)
    }

    /// Writes a transaction marker for `marker`'s producer (a control batch, fsynced at once:
    /// the coordinator counts the transaction complete once this returns) and closes the
    /// producer's transaction here; an abort joins the aborted list read_committed fetches
    /// get. Returns `None`, writing nothing, when the producer has no transaction open here
    /// (a marker already written, before a restart say, or a partition it never wrote to).
    pub fn write_txn_marker(
        &self,
        marker: TxnMarker,
        now_ms: i64,
    ) -> Result<Option<AppendInfo>, AppendError> {
        let mut w = self.writer.lock();
        self.finish_cleanup_locked(&mut w)?;
        w.observe(now_ms);
        if !w.producers.needs_marker(&marker) {
            return Ok(None);
        }
        let prepared::PreparedAppend {
            mut bytes,
            batches: produced,
            ..
        } = prepared::PreparedAppend::marker(&marker, now_ms);
        let (info, _) = self.write_locked(&mut w, &mut bytes, &produced, 1, now_ms, true)?;
        w.producers.apply_marker(&marker, info.base_offset, now_ms);
        self.publish_txns_locked(&w);
        Ok(Some(info))
    }

    /// Republishes what readers see of the transactions after the writer changed them.
    fn publish_txns_locked(&self, w: &WriterState) {
        self.view.write().txns = TxnView::of(&w.producers);
    }

    /// Writes validated `batches` at the log end (rolling first if due) and makes them
    /// visible: the body of [`PartitionLog::append`], also used for transaction markers.
    /// `fsync` forces an fsync whatever the flush policy says.
    fn write_locked(
        &self,
        w: &mut WriterState,
        batches: &mut BytesMut,
        produced: &[batch::ProducedBatch],
        record_count: u64,
        now_ms: i64,
        fsync: bool,
    ) -> Result<(AppendInfo, Vec<batch::AssignedBatch>), AppendError> {
        let config = self.config();
        let total = batches.len() as u64;
        let (mut active, first_offset) = {
            let view = self.view.read();
            (view.active(), view.log_end)
        };
        let last_offset = i64::try_from(record_count)
            .ok()
            .and_then(|n| first_offset.checked_add(n - 1))
            .ok_or_else(|| AppendError::Corrupt("offsets would overflow".to_string()))?;

        let (size, first_append_ms) = {
            let st = active.state();
            (st.size, st.first_append_ms)
        };
        let needs_roll = size > 0
            && (size + total > config.segment_bytes
                || size + total > u64::from(u32::MAX)
                || last_offset - active.base_offset() > i64::from(u32::MAX)
                || first_append_ms.is_some_and(|t| now_ms.saturating_sub(t) > config.segment_ms));
        if needs_roll {
            active = self.roll_locked(w, now_ms)?;
        }

        let log_append_time =
            (config.timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        let assigned = batch::assign_offsets(batches, produced, first_offset, 0, log_append_time);
        let pos = active.size();
        let unflushed = w.unflushed_records.saturating_add(record_count);
        let flush_now = fsync
            || unflushed >= config.flush_interval_messages
            || config
                .flush_interval_ms
                .is_some_and(|ms| now_ms.saturating_sub(w.last_flush_ms) >= ms);
        let written = active.write_at(batches, pos).and_then(|()| {
            if flush_now {
                active.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // Cut off whatever part of the write landed, so the file ends at
            // the last acknowledged batch again.
            if let Err(undo) = active.truncate_file(pos) {
                tracing::error!(
                    file = %active.log_path().display(),
                    error = %e,
                    undo_error = %undo,
                    "append failed and its bytes could not be cut off; the log accepts no \
                     appends until they are"
                );
                w.cleanup.truncate_active_to = Some(pos);
            }
            return Err(e.into());
        }

        // The bytes are written (and fsynced if due): now make them visible.
        {
            let mut st = active.state();
            for b in &assigned {
                st.index.on_batch(
                    (pos + b.pos as u64) as u32,
                    b.base_offset,
                    b.last_offset,
                    b.max_timestamp,
                    b.size as u64,
                    config.index_interval_bytes,
                );
            }
            st.size = pos + total;
            st.next_offset = last_offset + 1;
            st.first_append_ms.get_or_insert(now_ms);
        }
        let log_start = {
            let mut view = self.view.write();
            view.log_end = last_offset + 1;
            view.log_start
        };
        if flush_now {
            w.unflushed_records = 0;
            w.last_flush_ms = now_ms;
        } else {
            w.unflushed_records = unflushed;
        }
        let info = AppendInfo {
            base_offset: first_offset,
            last_offset,
            log_append_time: log_append_time.unwrap_or(-1),
            log_start_offset: log_start,
            record_count,
        };
        Ok((info, assigned))
    }

    /// Retries the undo work of an earlier failure; the log cannot change
    /// until it is done.
    fn finish_cleanup_locked(&self, w: &mut WriterState) -> io::Result<()> {
        if let Some(len) = w.cleanup.truncate_active_to {
            let active = self.snapshot().active();
            active.truncate_file(len).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot cut the bytes of an earlier failed write off {}: {e}",
                        active.log_path().display()
                    ),
                )
            })?;
            w.cleanup.truncate_active_to = None;
            tracing::info!(file = %active.log_path().display(), "cut off the bytes of an earlier failed write");
        }
        if let Some(base) = w.cleanup.remove_segment {
            remove_files(&self.dir, base)
                .and_then(|()| sync_dir(&self.dir))
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "cannot remove the segment at offset {base} of an earlier failed roll: {e}"
                        ),
                    )
                })?;
            w.cleanup.remove_segment = None;
        }
        if let Some(pending) = &w.cleanup.pending_swap {
            cleaner::complete_swap(&self.dir, &pending.record, &pending.segments).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot finish the swap of an earlier cleaning pass: {e}"),
                )
            })?;
            w.cleanup.pending_swap = None;
        }
        Ok(())
    }

    /// fsyncs the active segment's data. A failure changes nothing: the
    /// records stay counted as unflushed, so the next flush tries again.
    fn flush_locked(&self, w: &mut WriterState, active: &Segment, now_ms: i64) -> io::Result<()> {
        active.sync_data()?;
        w.unflushed_records = 0;
        w.last_flush_ms = now_ms;
        Ok(())
    }

    /// Seals the active segment (indexes written, everything fsynced), writes
    /// the producer snapshot at the log end offset, starts a new segment there
    /// and moves the checkpoint up to it. On failure nothing in memory changes
    /// and the new segment's files are removed again (or, failing that, before
    /// the next change); a snapshot already written stays, being true as it is.
    fn roll_locked(&self, w: &mut WriterState, now_ms: i64) -> io::Result<Arc<Segment>> {
        let view = self.snapshot();
        let old = view.active();
        let sealed_index = old.seal_files()?;
        let new_base = view.log_end;
        // Every batch below the new segment is now fsynced and in the producer state; the
        // directory fsync of the roll makes the snapshot's name durable.
        self.write_producer_snapshot_locked(w, new_base)?;
        let created = Segment::create(&self.dir, new_base).and_then(|segment| {
            sync_dir(&self.dir)?;
            checkpoint::write(&self.dir, new_base)?;
            Ok(segment)
        });
        let segment = match created {
            Ok(segment) => Arc::new(segment),
            Err(e) => {
                if let Err(undo) = remove_files(&self.dir, new_base) {
                    tracing::error!(
                        dir = %self.dir.display(),
                        base_offset = new_base,
                        error = %e,
                        undo_error = %undo,
                        "segment roll failed and the new segment could not be removed; the log \
                         accepts no appends until it is"
                    );
                    w.cleanup.remove_segment = Some(new_base);
                }
                return Err(e);
            }
        };
        old.install_index(sealed_index);
        {
            let mut view = self.view.write();
            let mut segments = Vec::clone(&view.segments);
            segments.push(Arc::clone(&segment));
            view.segments = Arc::new(segments);
        }
        // Everything before the new segment is now sealed and fsynced.
        w.unflushed_records = 0;
        w.last_flush_ms = now_ms;
        tracing::info!(dir = %self.dir.display(), base_offset = new_base, "rolled to a new segment");
        Ok(segment)
    }

    /// Writes the producer-state snapshot at `offset`, which must be the log end offset (the
    /// state covers exactly the batches below it), and deletes all but the newest two. The
    /// caller fsyncs the directory.
    fn write_producer_snapshot_locked(&self, w: &mut WriterState, offset: i64) -> io::Result<()> {
        producer_snapshot::write(&self.dir, offset, &w.producers)?;
        w.snapshots.insert(offset);
        producer_snapshot::prune(&self.dir, &mut w.snapshots);
        Ok(())
    }

    /// Reads whole batches starting with the one that contains `offset`,
    /// taking batches while their total stays within `max_bytes`. With
    /// `min_one_batch`, a first batch larger than `max_bytes` is returned on
    /// its own (KIP-74). May continue into following segments. `offset` equal
    /// to the log end offset gives empty records; outside
    /// `[log_start_offset, log_end_offset]` it is an error.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<ReadResult, ReadError> {
        self.read_isolated(offset, max_bytes, min_one_batch, Isolation::ReadUncommitted)
    }

    /// [`PartitionLog::read`] at an isolation level: read_committed stops at the last stable
    /// offset (an offset between it and the log end is valid and reads nothing) and lists
    /// the aborted transactions that end at or after `offset` and begin below it.
    pub fn read_isolated(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        isolation: Isolation,
    ) -> Result<ReadResult, ReadError> {
        let view = self.snapshot();
        let last_stable = view.txns.first_unstable.unwrap_or(view.log_end);
        let limit = match isolation {
            Isolation::ReadUncommitted => view.log_end,
            Isolation::ReadCommitted => last_stable,
        };
        if offset < view.log_start || offset > view.log_end {
            return Err(ReadError::OffsetOutOfRange {
                offset,
                log_start_offset: view.log_start,
                log_end_offset: view.log_end,
            });
        }
        let mut out = Vec::new();
        if offset < limit {
            let segments = &view.segments;
            let first = segments
                .partition_point(|s| s.base_offset() <= offset)
                .saturating_sub(1);
            let mut started = false;
            for segment in &segments[first..] {
                if segment.base_offset() >= limit {
                    break;
                }
                let pos = if started {
                    0
                } else {
                    match segment.find_batch(offset, limit)? {
                        Some(pos) => pos,
                        None => continue,
                    }
                };
                started = true;
                if segment.read_batches(pos, limit, max_bytes, min_one_batch, &mut out)?
                    == ReadProgress::Done
                {
                    break;
                }
            }
        }
        let aborted_transactions = match isolation {
            Isolation::ReadUncommitted => Vec::new(),
            Isolation::ReadCommitted => view
                .txns
                .aborted
                .iter()
                .filter(|a| a.last_offset >= offset && a.first_offset < limit)
                .copied()
                .collect(),
        };
        Ok(ReadResult {
            records: Bytes::from(out),
            high_watermark: view.log_end,
            last_stable_offset: last_stable,
            log_start_offset: view.log_start,
            aborted_transactions,
        })
    }

    /// The last stable offset: the first offset of the earliest open transaction, or the log
    /// end offset when none is open.
    pub fn last_stable_offset(&self) -> i64 {
        let view = self.view.read();
        view.txns.first_unstable.unwrap_or(view.log_end)
    }

    /// Whether `producer_id` has a transaction open in this partition (its next transactional
    /// batch continues it rather than opening one).
    pub fn has_open_transaction(&self, producer_id: i64) -> bool {
        self.view.read().txns.open.contains(&producer_id)
    }

    /// The open transactions here as (producer id, first offset), for DescribeProducers.
    pub fn open_transactions(&self) -> Vec<(i64, i64)> {
        self.writer.lock().producers.open_transactions()
    }

    /// Every producer this partition remembers, with its epoch, last sequence, last timestamp
    /// and open transaction (DescribeProducers). Takes the writer lock, which an append holds
    /// while it writes: call it from a blocking thread.
    pub fn active_producers(&self) -> Vec<producer_state::ActiveProducer> {
        self.writer.lock().producers.active_producers()
    }

    /// How many producers have a transaction open here (cheap: no writer lock).
    pub fn open_transaction_count(&self) -> usize {
        self.view.read().txns.open.len()
    }

    /// The first offset still in the log (base offset of the oldest segment).
    pub fn log_start_offset(&self) -> i64 {
        self.view.read().log_start
    }

    /// The offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.view.read().log_end
    }

    /// Total bytes of the segment data files.
    pub fn size_bytes(&self) -> u64 {
        self.snapshot().segments.iter().map(|s| s.size()).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.view.read().segments.len()
    }

    /// ListOffsets by timestamp: the first record at or after the log start whose timestamp
    /// is `>= timestamp`, as `(offset, timestamp)`, or `None` if there is none.
    ///
    /// As Kafka: the segments whose largest timestamp is that recent are searched in offset
    /// order, from the time index's position, batch by batch, and the first batch with a
    /// recent enough `maxTimestamp` is walked record by record (decompressed if it is
    /// compressed; under LogAppendTime every record has the batch's timestamp). Records
    /// below the log start (DeleteRecords moved it inside a segment) are passed over.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, ReadError> {
        let view = self.snapshot();
        for segment in view.segments.iter() {
            let max = segment.state().index.max_timestamp();
            if max.is_none_or(|(ts, _)| ts < timestamp) {
                continue;
            }
            let found =
                segment.first_record_at_or_after(timestamp, view.log_start, view.log_end)?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP: the largest batch `maxTimestamp` in the log
    /// and the offset of the last record of the (first) batch carrying it.
    /// `None` when the log holds no batch.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, ReadError> {
        let view = self.snapshot();
        let mut best: Option<(i64, i64)> = None;
        for segment in view.segments.iter() {
            if let Some((ts, offset)) = segment.state().index.max_timestamp() {
                if offset < view.log_end && best.is_none_or(|(b, _)| ts > b) {
                    best = Some((ts, offset));
                }
            }
        }
        Ok(best)
    }

    /// fsyncs everything appended so far.
    pub fn flush(&self) -> io::Result<()> {
        let mut w = self.writer.lock();
        let now = w.latest_now_ms;
        let active = self.snapshot().active();
        self.flush_locked(&mut w, &active, now)
    }

    /// For a background ticker: fsyncs if `flush.ms` is set, records are
    /// waiting and the last fsync is at least that old.
    pub fn maybe_flush(&self, now_ms: i64) -> io::Result<()> {
        let Some(interval) = self.config().flush_interval_ms else {
            return Ok(());
        };
        let mut w = self.writer.lock();
        w.observe(now_ms);
        if w.unflushed_records > 0 && now_ms.saturating_sub(w.last_flush_ms) >= interval {
            let active = self.snapshot().active();
            self.flush_locked(&mut w, &active, now_ms)?;
        }
        Ok(())
    }

    /// When `cleanup.policy` includes delete (otherwise it deletes nothing), deletes whole
    /// sealed segments (never the active one), oldest first:
    /// those whose largest timestamp (or file mtime when they carry none) is
    /// older than `now_ms - retention.ms`, and while the log minus the oldest
    /// segment is still at least `retention.bytes`. Returns how many were
    /// deleted; the log start offset moves up to the first remaining segment.
    /// The producers of deleted batches are not forgotten: the producer state
    /// keeps them, and a snapshot at or past the new log start holds them
    /// (written first if there is none).
    pub fn enforce_retention(&self, now_ms: i64) -> io::Result<usize> {
        let config = self.config();
        if !config.cleanup_policy.deletes()
            || (config.retention_ms.is_none() && config.retention_bytes.is_none())
        {
            return Ok(0);
        }
        let mut w = self.writer.lock();
        self.finish_cleanup_locked(&mut w)?;
        w.observe(now_ms);
        let view = self.snapshot();
        let sealed = &view.segments[..view.segments.len().saturating_sub(1)];
        if sealed.is_empty() {
            return Ok(0);
        }
        let total: u64 = view.segments.iter().map(|s| s.size()).sum();
        let mut facts = Vec::with_capacity(sealed.len());
        for segment in sealed {
            let newest_ms = if config.retention_ms.is_some() {
                segment.newest_timestamp_ms()?
            } else {
                i64::MAX
            };
            facts.push(SegmentFacts {
                size: segment.size(),
                newest_ms,
            });
        }
        let count = retention::deletable_prefix(
            &facts,
            total,
            now_ms,
            config.retention_ms,
            config.retention_bytes,
        );
        if count == 0 {
            return Ok(0);
        }
        let new_start = view.segments[count].base_offset().max(view.log_start);
        self.delete_segments_locked(&mut w, &view, count, new_start, now_ms)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (at most the log end offset;
    /// an offset at or below the start changes nothing), durably, then deletes the sealed
    /// segments wholly below it. Records below the new start are never served again; the
    /// producers' state is kept, as Kafka keeps it. Returns the log start offset.
    pub fn delete_records_before(&self, offset: i64, now_ms: i64) -> Result<i64, DeleteError> {
        let mut w = self.writer.lock();
        self.finish_cleanup_locked(&mut w)?;
        w.observe(now_ms);
        let view = self.snapshot();
        if offset > view.log_end || offset < 0 {
            return Err(DeleteError::OffsetOutOfRange {
                offset,
                log_end_offset: view.log_end,
            });
        }
        if offset <= view.log_start {
            return Ok(view.log_start);
        }
        checkpoint::write_log_start(&self.dir, offset)?;
        let sealed = view.segments.len().saturating_sub(1);
        let count = view.segments[..sealed]
            .iter()
            .take_while(|s| s.state().next_offset <= offset)
            .count();
        self.delete_segments_locked(&mut w, &view, count, offset, now_ms)?;
        Ok(offset)
    }

    /// Deletes the oldest `count` segments of `view` and makes the log start `new_start`.
    /// Producers whose only batches go with them are kept: a snapshot at or past the new start
    /// carries them (every roll writes one, so one is written here only when it is missing).
    /// Deletes oldest first and stops at the first failure, so the log never has a hole.
    fn delete_segments_locked(
        &self,
        w: &mut WriterState,
        view: &View,
        count: usize,
        new_start: i64,
        now_ms: i64,
    ) -> io::Result<usize> {
        if count > 0 && w.snapshots.last().is_none_or(|&offset| offset < new_start) {
            let active = view.active();
            self.flush_locked(w, &active, now_ms)?;
            self.write_producer_snapshot_locked(w, view.log_end)?;
            sync_dir(&self.dir)?;
        }
        let mut deleted = 0;
        let mut failure = None;
        for segment in &view.segments[..count] {
            match segment.delete_files() {
                Ok(()) => {
                    tracing::info!(file = %segment.log_path().display(), "deleted segment");
                    deleted += 1;
                }
                Err(e) => {
                    tracing::warn!(file = %segment.log_path().display(), error = %e, "could not delete segment");
                    failure = Some(e);
                    break;
                }
            }
        }
        {
            let remaining: Vec<Arc<Segment>> = view.segments[deleted..].to_vec();
            let mut v = self.view.write();
            let first_base = remaining.first().map_or(v.log_end, |s| s.base_offset());
            // All the way to `new_start` when every segment below it went; otherwise to the
            // first segment left (and the start offset file, if written, is ahead of it: open
            // takes the larger of the two).
            v.log_start = if deleted == count {
                new_start.max(first_base)
            } else {
                first_base.max(v.log_start)
            };
            v.segments = Arc::new(remaining);
            // Aborted transactions wholly below the new start concern no fetch any more.
            w.producers.prune_aborted(v.log_start);
            v.txns = TxnView::of(&w.producers);
        }
        if count > 0 {
            sync_dir(&self.dir)?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }

    /// For a background ticker: rolls the active segment if it is non-empty
    /// and its first append is more than `segment.ms` old. Returns whether it rolled.
    pub fn roll_if_due(&self, now_ms: i64) -> io::Result<bool> {
        let config = self.config();
        let mut w = self.writer.lock();
        self.finish_cleanup_locked(&mut w)?;
        w.observe(now_ms);
        let active = self.snapshot().active();
        let due = {
            let st = active.state();
            st.size > 0
                && st
                    .first_append_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) > config.segment_ms)
        };
        if due {
            self.roll_locked(&mut w, now_ms)?;
        }
        Ok(due)
    }

    /// Flushes everything and writes the producer snapshot and the recovery
    /// checkpoint at the log end offset, so the next open scans only the
    /// active segment and reads no producer state from the batches. The log
    /// stays usable afterwards.
    pub fn close(&self) -> io::Result<()> {
        let mut w = self.writer.lock();
        self.finish_cleanup_locked(&mut w)?;
        let view = self.snapshot();
        let active = view.active();
        let now = w.latest_now_ms;
        self.flush_locked(&mut w, &active, now)?;
        active.write_index_files(true)?;
        self.write_producer_snapshot_locked(&mut w, view.log_end)?;
        // Fsyncs the directory, for the snapshot's name too.
        checkpoint::write(&self.dir, view.log_end)
    }

    /// The partition as messages name it: the directory's name (`{topic}-{partition}`, as the
    /// broker and Kafka name partition directories).
    fn partition_name(&self) -> String {
        self.dir.file_name().map_or_else(
            || self.dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
