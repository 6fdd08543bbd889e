//! Kafka record batches (magic v2) at the byte level.
//!
//! Everything that looks inside a batch lives here: the fixed header layout,
//! produce-time validation (header sanity, CRC-32C, and a walk of every
//! record, compressed batches through the streaming decoders of
//! `compression`), offset assignment with the optional LogAppendTime
//! rewrite, the lighter check applied to batches already stored on disk, and
//! the record walk used by timestamp lookups. Nothing here does I/O, so the
//! rules can be tested on plain byte slices and never panic on any input.

use crate::compression::{Decompressed, OutputBudget};
use crate::producer_state::{ProducerBatch, TxnMarker, NO_PRODUCER_ID};
use crate::{AppendError, RecordError};

/// `baseOffset: i64`.
pub(crate) const BASE_OFFSET: usize = 0;
/// `batchLength: i32`, the number of bytes after this field.
pub(crate) const BATCH_LENGTH: usize = 8;
/// `partitionLeaderEpoch: i32`.
pub(crate) const LEADER_EPOCH: usize = 12;
/// `magic: i8` (also where legacy v0/v1 message sets keep theirs).
pub(crate) const MAGIC: usize = 16;
/// `crc: u32`, CRC-32C over everything from [`ATTRIBUTES`] to the end.
pub(crate) const CRC: usize = 17;
/// `attributes: i16`.
pub(crate) const ATTRIBUTES: usize = 21;
/// `lastOffsetDelta: i32`.
pub(crate) const LAST_OFFSET_DELTA: usize = 23;
/// `baseTimestamp: i64`.
pub(crate) const BASE_TIMESTAMP: usize = 27;
/// `maxTimestamp: i64`.
pub(crate) const MAX_TIMESTAMP: usize = 35;
/// `producerId: i64`.
pub(crate) const PRODUCER_ID: usize = 43;
/// `producerEpoch: i16`.
pub(crate) const PRODUCER_EPOCH: usize = 51;
/// `baseSequence: i32`.
pub(crate) const BASE_SEQUENCE: usize = 53;
/// `recordCount: i32`.
pub(crate) const RECORD_COUNT: usize = 57;
/// Size of the fixed header; records start here.
pub(crate) const HEADER_LEN: usize = 61;
/// `baseOffset` + `batchLength`: the bytes not counted by `batchLength`.
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Smallest legal `batchLength` (a header with no records).
pub(crate) const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;
/// The only record format this log stores.
pub(crate) const MAGIC_V2: i8 = 2;

pub(crate) const COMPRESSION_MASK: i16 = 0x07;
const MAX_COMPRESSION_CODEC: i16 = 4;
const TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;
const TRANSACTIONAL_BATCH: i16 = 0x10;
const CONTROL_BATCH: i16 = 0x20;
/// A control record's key type for an abort marker (Kafka's `ControlRecordType.ABORT`).
const CONTROL_ABORT: i16 = 0;
/// ... and for a commit marker.
const CONTROL_COMMIT: i16 = 1;

fn get_i16(b: &[u8], at: usize) -> i16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    i16::from_be_bytes(a)
}

fn get_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn get_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// The fixed 61-byte header of a v2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Decodes the header from the first [`HEADER_LEN`] bytes of `b`; `None` if `b` is shorter.
    /// No field is checked here.
    pub fn parse(b: &[u8]) -> Option<BatchHeader> {
        if b.len() < HEADER_LEN {
            return None;
        }
        Some(BatchHeader {
            base_offset: get_i64(b, BASE_OFFSET),
            batch_length: get_i32(b, BATCH_LENGTH),
            magic: b[MAGIC] as i8,
            crc: get_u32(b, CRC),
            attributes: get_i16(b, ATTRIBUTES),
            last_offset_delta: get_i32(b, LAST_OFFSET_DELTA),
            base_timestamp: get_i64(b, BASE_TIMESTAMP),
            max_timestamp: get_i64(b, MAX_TIMESTAMP),
            producer_id: get_i64(b, PRODUCER_ID),
            producer_epoch: get_i16(b, PRODUCER_EPOCH),
            base_sequence: get_i32(b, BASE_SEQUENCE),
            record_count: get_i32(b, RECORD_COUNT),
        })
    }

    /// Whole batch size in bytes (`12 + batchLength`); 0 for a negative length.
    pub fn total_size(&self) -> u64 {
        if self.batch_length < 0 {
            0
        } else {
            LOG_OVERHEAD as u64 + self.batch_length as u64
        }
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Compression codec (attribute bits 0-2).
    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }

    /// Whether attribute bit 3 (LogAppendTime) is set.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_LOG_APPEND != 0
    }

    /// Whether attribute bit 5 marks a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BATCH != 0
    }

    /// Whether attribute bit 4 marks the batch as part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BATCH != 0
    }

    /// The batch's producer fields, as the producer state reads them, with the batch at
    /// `first_offset` and its largest timestamp `max_timestamp`.
    pub fn producer_batch(&self, first_offset: i64, max_timestamp: i64) -> ProducerBatch {
        ProducerBatch {
            producer_id: self.producer_id,
            epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            last_offset_delta: self.last_offset_delta,
            first_offset,
            max_timestamp,
            is_transactional: self.is_transactional(),
        }
    }
}

/// A transaction marker as Kafka stores it: a transactional control batch of one record whose
/// key is (version 0, type ABORT 0 / COMMIT 1) and whose value is (version 0, coordinator
/// epoch), every field big-endian. The base offset is left 0 for the append to assign.
pub(crate) fn control_batch(marker: &TxnMarker, timestamp: i64) -> Vec<u8> {
    let kind = if marker.commit {
        CONTROL_COMMIT
    } else {
        CONTROL_ABORT
    };
    let mut record = vec![
        0, // attributes
        0, // timestamp delta (varint 0)
        0, // offset delta (varint 0)
        8, // key length 4 (zigzag varint)
    ];
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&kind.to_be_bytes());
    record.push(12); // value length 6
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    record.push(0); // no headers
    let mut b = vec![0u8; HEADER_LEN];
    b.push((record.len() as u8) << 1); // the record's length, a one-byte zigzag varint
    b.extend_from_slice(&record);
    let batch_length = (b.len() - LOG_OVERHEAD) as i32;
    b[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
    b[MAGIC] = MAGIC_V2 as u8;
    let attributes = TRANSACTIONAL_BATCH | CONTROL_BATCH;
    b[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    b[BASE_TIMESTAMP..BASE_TIMESTAMP + 8].copy_from_slice(&timestamp.to_be_bytes());
    b[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&timestamp.to_be_bytes());
    b[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&marker.producer_id.to_be_bytes());
    b[PRODUCER_EPOCH..PRODUCER_EPOCH + 2].copy_from_slice(&marker.epoch.to_be_bytes());
    b[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&(-1i32).to_be_bytes());
    b[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&1i32.to_be_bytes());
    let crc = compute_crc(&b);
    b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The marker a stored control batch holds (`batch` is the whole batch): whether it commits,
/// or `None` for a control batch that is not a transaction marker or cannot be read.
pub(crate) fn marker_commits(batch: &[u8]) -> Option<bool> {
    let mut at = HEADER_LEN;
    let varint = |at: &mut usize| -> Option<i64> {
        let mut value = 0u64;
        for i in 0..5 {
            let byte = *batch.get(*at)?;
            *at += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        None
    };
    varint(&mut at)?; // record length
    at += 1; // attributes
    varint(&mut at)?; // timestamp delta
    varint(&mut at)?; // offset delta
    if varint(&mut at)? < 4 {
        return None;
    }
    let key = batch.get(at..at + 4)?;
    match i16::from_be_bytes([key[2], key[3]]) {
        CONTROL_ABORT => Some(false),
        CONTROL_COMMIT => Some(true),
        _ => None,
    }
}

/// CRC-32C of a whole batch as stored in its `crc` field (covers `attributes..end`).
pub(crate) fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES..).unwrap_or(&[]))
}

/// Whether a stored batch's record count fits its offsets: at least one record and at most
/// `lastOffsetDelta + 1`. A produced batch holds exactly that many; one the cleaner rewrote
/// may hold fewer, keeping its offsets (Kafka's compacted batches have such gaps).
pub(crate) fn record_count_fits(h: &BatchHeader) -> bool {
    h.last_offset_delta >= 0
        && h.record_count >= 1
        && i64::from(h.record_count) <= i64::from(h.last_offset_delta) + 1
}

/// Checks a batch read back from a segment file; `bytes` is exactly one batch
/// (its declared length). Used by recovery and by the torn-tail search, so it
/// only checks what the CRC and header can prove: magic, CRC, offset/count
/// consistency ([`record_count_fits`]).
pub(crate) fn check_stored(bytes: &[u8]) -> Result<BatchHeader, String> {
    let h = BatchHeader::parse(bytes)
        .ok_or_else(|| format!("batch of {} bytes is shorter than its header", bytes.len()))?;
    if h.batch_length < MIN_BATCH_LENGTH || h.total_size() != bytes.len() as u64 {
        return Err(format!("invalid batch length {}", h.batch_length));
    }
    if h.magic != MAGIC_V2 {
        return Err(format!("unsupported magic {}", h.magic));
    }
    let actual = compute_crc(bytes);
    if actual != h.crc {
        return Err(format!(
            "crc mismatch: stored {:#010x}, computed {:#010x}",
            h.crc, actual
        ));
    }
    if !record_count_fits(&h) {
        return Err(format!(
            "record count {} does not fit last offset delta {}",
            h.record_count, h.last_offset_delta
        ));
    }
    Ok(h)
}

/// One batch of a produce request that passed validation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProducedBatch {
    /// Position of the batch inside the request buffer.
    pub pos: usize,
    /// Whole batch size.
    pub size: usize,
    pub record_count: i32,
    /// Its header (the offsets in it are the client's, not yet assigned).
    pub header: BatchHeader,
}

/// Why one batch was refused. Kafka tells the two apart: bytes that cannot
/// be read as what they claim to be (CRC, framing, codec, the decompression
/// limit) are a `CorruptRecordException`, readable bytes that break a rule of
/// the record format are an `InvalidRecordException`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchFault {
    /// CORRUPT_MESSAGE.
    Corrupt(String),
    /// INVALID_RECORD; `record` is the index in its batch of the record at
    /// fault, when one record is.
    Invalid {
        message: String,
        record: Option<i32>,
    },
}

impl BatchFault {
    fn invalid(message: String) -> BatchFault {
        BatchFault::Invalid {
            message,
            record: None,
        }
    }

    fn in_record(record: i32, message: String) -> BatchFault {
        BatchFault::Invalid {
            message: format!("record {record}: {message}"),
            record: Some(record),
        }
    }

    /// The append error for the batch `index` of a record set, at byte `pos`.
    fn into_append_error(self, index: usize, pos: usize) -> AppendError {
        match self {
            BatchFault::Corrupt(m) => {
                AppendError::Corrupt(format!("batch {index} at byte {pos}: {m}"))
            }
            BatchFault::Invalid { message, record } => AppendError::InvalidRecord {
                message: format!("batch {index} at byte {pos}: {message}"),
                record_errors: record
                    .map(|batch_index| RecordError {
                        batch_index,
                        message: message.clone(),
                    })
                    .into_iter()
                    .collect(),
            },
        }
    }
}

/// Validates every batch of a produce request (the `records` of one
/// partition). Nothing is modified; the caller writes only if this succeeds.
/// All compressed batches of the record set share one decompression budget
/// (see `compression`).
///
/// With `rules.keys_required` (a compacted topic; the value names its partition for the
/// message), every record without a key is refused as Kafka refuses it: INVALID_RECORD with one
/// [`RecordError`] per keyless record (its index in its batch). With `rules.timestamps` (a
/// CreateTime topic), every record whose timestamp is outside the bounds is refused as Kafka's
/// `LogValidator.validateTimestamp` refuses it: INVALID_TIMESTAMP with one [`RecordError`] per
/// such record. A record is checked for its key first, as Kafka does, so it has one error.
pub(crate) fn validate_produce(
    buf: &[u8],
    max_message_bytes: u32,
    rules: &RecordRules<'_>,
) -> Result<Vec<ProducedBatch>, AppendError> {
    if buf.is_empty() {
        return Err(AppendError::Corrupt("empty record set".to_string()));
    }
    let mut budget = OutputBudget::for_record_set(buf.len());
    let mut batches = Vec::new();
    let mut faults = RecordFaults::default();
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let index = batches.len();
        if rest.len() < LOG_OVERHEAD {
            return Err(AppendError::Corrupt(format!(
                "batch {index} at byte {pos} is truncated: {} bytes remain",
                rest.len()
            )));
        }
        // Legacy (v0/v1) message sets keep their magic at the same place, and
        // may be shorter than a v2 header: report them as such, not as corrupt.
        if rest.len() > MAGIC {
            let magic = rest[MAGIC] as i8;
            if magic != MAGIC_V2 {
                return Err(AppendError::UnsupportedMagic(magic));
            }
        }
        let batch_length = get_i32(rest, BATCH_LENGTH);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(AppendError::Corrupt(format!(
                "batch {index} at byte {pos} has invalid length {batch_length}"
            )));
        }
        let size = LOG_OVERHEAD + batch_length as usize;
        if size > rest.len() {
            return Err(AppendError::Corrupt(format!(
                "batch {index} at byte {pos} is truncated: declares {size} bytes, {} remain",
                rest.len()
            )));
        }
        if size > max_message_bytes as usize {
            return Err(AppendError::TooLarge {
                size,
                max: max_message_bytes,
            });
        }
        let bytes = &rest[..size];
        let header = validate_one(bytes, &mut budget, rules, &mut faults)
            .map_err(|f| f.into_append_error(index, pos))?;
        batches.push(ProducedBatch {
            pos,
            size,
            record_count: header.record_count,
            header,
        });
        pos += size;
    }
    if !faults.errors.is_empty() {
        return Err(faults.into_append_error());
    }
    if let Some((index, b)) = batches
        .iter()
        .enumerate()
        .find(|(_, b)| b.header.is_transactional() && b.header.producer_id == NO_PRODUCER_ID)
    {
        return Err(AppendError::InvalidRecord {
            message: format!(
                "batch {index} at byte {} is transactional without a producer id",
                b.pos
            ),
            record_errors: Vec::new(),
        });
    }
    // An idempotent producer's batch travels alone (Kafka refuses more than one batch per
    // partition from Produce v3 on), so its sequence check is one check.
    if batches.len() > 1
        && batches
            .iter()
            .any(|b| b.header.producer_id != NO_PRODUCER_ID)
    {
        return Err(AppendError::InvalidRecord {
            message: format!(
                "a record set with a producer id must hold exactly one batch, not {}",
                batches.len()
            ),
            record_errors: Vec::new(),
        });
    }
    Ok(batches)
}

/// Checks one produced batch whose length has already been checked; returns
/// its header. Compressed batches are decompressed (charged to `budget`) and
/// their records checked exactly like uncompressed ones. Records that break
/// one of `rules` are added to `faults`.
fn validate_one(
    bytes: &[u8],
    budget: &mut OutputBudget,
    rules: &RecordRules<'_>,
    faults: &mut RecordFaults,
) -> Result<BatchHeader, BatchFault> {
    let h = BatchHeader::parse(bytes)
        .ok_or_else(|| BatchFault::Corrupt("batch shorter than its header".to_string()))?;
    let actual = compute_crc(bytes);
    if actual != h.crc {
        return Err(BatchFault::Corrupt(format!(
            "crc mismatch: expected {:#010x} (in batch), computed {:#010x}",
            h.crc, actual
        )));
    }
    if h.record_count < 1 {
        return Err(BatchFault::invalid(format!(
            "record count {} (a produced batch must hold at least one record)",
            h.record_count
        )));
    }
    if i64::from(h.record_count) != i64::from(h.last_offset_delta) + 1 {
        return Err(BatchFault::invalid(format!(
            "record count {} does not match last offset delta {}",
            h.record_count, h.last_offset_delta
        )));
    }
    if h.is_control() {
        return Err(BatchFault::invalid(
            "clients are not allowed to write control records".to_string(),
        ));
    }
    if h.producer_id != NO_PRODUCER_ID && h.base_sequence < 0 {
        return Err(BatchFault::invalid(format!(
            "invalid sequence number {} in a batch of producer {}",
            h.base_sequence, h.producer_id
        )));
    }
    let codec = h.compression();
    if codec > MAX_COMPRESSION_CODEC {
        return Err(BatchFault::Corrupt(format!(
            "unknown compression codec {codec}"
        )));
    }
    let area = &bytes[HEADER_LEN..];
    let mut check = |index: i32, record: &RecordInfo| faults.check(rules, &h, index, record);
    if codec == 0 {
        check_records(&mut SliceSource(area), h.record_count, &mut check)?;
    } else {
        let mut source = Decompressed::new(codec, area, budget).map_err(BatchFault::Corrupt)?;
        check_records(&mut source, h.record_count, &mut check)?;
    }
    Ok(h)
}

/// What produced records must satisfy beyond the record format, from the topic's config.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RecordRules<'a> {
    /// A compacted topic: every record needs a key; the partition's name, for the message.
    pub keys_required: Option<&'a str>,
    /// A CreateTime topic: the timestamp bounds around the broker's clock.
    pub timestamps: Option<TimestampBounds>,
}

/// `message.timestamp.before.max.ms` and `message.timestamp.after.max.ms` around `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimestampBounds {
    pub now: i64,
    pub before_max_ms: i64,
    pub after_max_ms: i64,
}

impl TimestampBounds {
    /// Whether `timestamp` is more than `before_max_ms` before `now` or more than
    /// `after_max_ms` after it (Kafka's `recordHasInvalidTimestamp`, computed without
    /// overflow; a bound itself is inside).
    fn refuses(&self, timestamp: i64) -> bool {
        let diff = i128::from(self.now) - i128::from(timestamp);
        diff > i128::from(self.before_max_ms) || -diff > i128::from(self.after_max_ms)
    }
}

/// The records of a record set that break the topic's [`RecordRules`], in order.
#[derive(Debug, Default)]
struct RecordFaults {
    errors: Vec<RecordError>,
    /// Whether any of them is a timestamp out of bounds.
    timestamp: bool,
}

impl RecordFaults {
    /// Checks record `index` of the batch `h` against `rules`: its key first, then its timestamp.
    fn check(&mut self, rules: &RecordRules<'_>, h: &BatchHeader, index: i32, r: &RecordInfo) {
        if let (Some(partition), false) = (rules.keys_required, r.has_key) {
            // Kafka's `LogValidator.validateKey`, word for word.
            self.errors.push(RecordError {
                batch_index: index,
                message: format!(
                    "Compacted topic cannot accept message without key in topic partition \
                     {partition}"
                ),
            });
            return;
        }
        let Some(bounds) = rules.timestamps else {
            return;
        };
        let timestamp = h.base_timestamp.wrapping_add(r.timestamp_delta);
        if timestamp != NO_TIMESTAMP && bounds.refuses(timestamp) {
            // Kafka's `LogValidator.validateTimestamp`, word for word: the offset is the
            // producer's (offsets are assigned after validation), the bounds as Java computes them.
            self.timestamp = true;
            self.errors.push(RecordError {
                batch_index: index,
                message: format!(
                    "Timestamp {timestamp} of message with offset {} is out of range. The \
                     timestamp should be within [{}, {}]",
                    h.base_offset.wrapping_add(i64::from(r.offset_delta)),
                    bounds.now.wrapping_sub(bounds.before_max_ms),
                    bounds.now.wrapping_add(bounds.after_max_ms),
                ),
            });
        }
    }

    /// The refusal of the whole record set, as Kafka's `LogValidator.processRecordErrors` words
    /// it: INVALID_TIMESTAMP when any record's timestamp is out of bounds, INVALID_RECORD
    /// otherwise, with every record's error.
    fn into_append_error(self) -> AppendError {
        let record_errors = self.errors;
        if self.timestamp {
            return AppendError::InvalidTimestamp {
                message: "One or more records have been rejected due to invalid timestamp"
                    .to_string(),
                record_errors,
            };
        }
        let shown: Vec<String> = record_errors
            .iter()
            .take(3)
            .map(|e| {
                format!(
                    "RecordError(batchIndex={}, message='{}')",
                    e.batch_index, e.message
                )
            })
            .collect();
        AppendError::InvalidRecord {
            message: format!(
                "One or more records have been rejected due to {} record errors in total, and \
                 only showing the first three errors at most: [{}]",
                record_errors.len(),
                shown.join(", ")
            ),
            record_errors,
        }
    }
}

/// A record's timestamp when it has none (Kafka's `RecordBatch.NO_TIMESTAMP`): never checked.
const NO_TIMESTAMP: i64 = -1;

/// Reads exactly `count` records from `source`, checking each and that their
/// offset deltas run 0, 1, ..., then that nothing follows the last one (for a
/// compressed batch this also runs the codec to its clean end, so trailers
/// and checksums are verified). `check` sees each record whose framing is sound.
fn check_records<S: RecordSource>(
    source: &mut S,
    count: i32,
    check: &mut impl FnMut(i32, &RecordInfo),
) -> Result<(), BatchFault> {
    for index in 0..count {
        let Some(record) = read_record(source, index)? else {
            return Err(BatchFault::invalid(format!(
                "batch declares {count} records but holds {index}"
            )));
        };
        if record.offset_delta != index {
            return Err(BatchFault::in_record(
                index,
                format!("offset delta {}, expected {index}", record.offset_delta),
            ));
        }
        check(index, &record);
    }
    if !source.fill()?.is_empty() {
        return Err(BatchFault::invalid(format!(
            "bytes follow the last of the batch's {count} records"
        )));
    }
    Ok(())
}

/// What the record walk exposes of each record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordInfo {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    /// Whether the key is present (not null).
    pub has_key: bool,
}

/// Walks the uncompressed records area of a batch, checking that the length
/// prefixes tile it exactly and that each record's fields fill its length.
/// `visit` returns `Ok(false)` to stop early.
pub(crate) fn walk_records(
    area: &[u8],
    mut visit: impl FnMut(RecordInfo) -> Result<bool, String>,
) -> Result<(), String> {
    let mut source = SliceSource(area);
    let mut index = 0i32;
    while let Some(info) = read_record(&mut source, index).map_err(|f| match f {
        BatchFault::Corrupt(m) | BatchFault::Invalid { message: m, .. } => m,
    })? {
        if !visit(info)? {
            return Ok(());
        }
        index = index.saturating_add(1);
    }
    Ok(())
}

/// Where records are read from: a batch's own bytes, or the decompressed
/// stream of a compressed batch. Works like `BufRead`, plus the check a
/// record's declared length must pass before its bytes are read.
trait RecordSource {
    /// The next bytes; empty at the clean end of the records.
    fn fill(&mut self) -> Result<&[u8], BatchFault>;
    fn consume(&mut self, n: usize);
    /// Refuses record `index` declaring `len` bytes when that many cannot follow.
    fn admit(&self, index: i32, len: usize) -> Result<(), BatchFault>;
    /// A record's bytes ended before its length said: the fault to report.
    fn ended_inside(&self, index: i32) -> BatchFault;
}

/// The records area of an uncompressed batch.
struct SliceSource<'a>(&'a [u8]);

impl RecordSource for SliceSource<'_> {
    #[inline]
    fn fill(&mut self) -> Result<&[u8], BatchFault> {
        Ok(self.0)
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.0 = self.0.get(n..).unwrap_or_default();
    }

    fn admit(&self, index: i32, len: usize) -> Result<(), BatchFault> {
        if len > self.0.len() {
            return Err(BatchFault::in_record(
                index,
                format!(
                    "length {len} runs past the end of the batch ({} bytes remain)",
                    self.0.len()
                ),
            ));
        }
        Ok(())
    }

    fn ended_inside(&self, index: i32) -> BatchFault {
        BatchFault::in_record(index, "the batch ends inside the record".to_string())
    }
}

impl RecordSource for Decompressed<'_> {
    #[inline]
    fn fill(&mut self) -> Result<&[u8], BatchFault> {
        Decompressed::fill(self).map_err(BatchFault::Corrupt)
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        Decompressed::consume(self, n)
    }

    fn admit(&self, index: i32, len: usize) -> Result<(), BatchFault> {
        if len as u64 > self.max_remaining() {
            return Err(BatchFault::Corrupt(format!(
                "record {index} declares {len} bytes, more than may still be decompressed: {}",
                self.exceeded()
            )));
        }
        Ok(())
    }

    fn ended_inside(&self, index: i32) -> BatchFault {
        BatchFault::in_record(
            index,
            "the decompressed records end inside the record".to_string(),
        )
    }
}

/// Reads record `index` (its length prefix and body) from `source`; `None`
/// if the source is at its clean end before the record starts.
fn read_record<S: RecordSource>(
    source: &mut S,
    index: i32,
) -> Result<Option<RecordInfo>, BatchFault> {
    if source.fill()?.is_empty() {
        return Ok(None);
    }
    // The length prefix is not part of the record's length.
    let mut prefix = FieldReader {
        source: &mut *source,
        left: usize::MAX,
    };
    let len = match prefix.varint() {
        Ok(len) => len,
        Err(FieldError::Ended) => {
            return Err(source.ended_inside(index));
        }
        Err(FieldError::Source(f)) => return Err(f),
        Err(_) => {
            return Err(BatchFault::in_record(
                index,
                "bad length varint".to_string(),
            ));
        }
    };
    if len < 0 {
        return Err(BatchFault::in_record(
            index,
            format!("negative length {len}"),
        ));
    }
    let len = len as usize;
    source.admit(index, len)?;
    let mut body = FieldReader {
        source: &mut *source,
        left: len,
    };
    match parse_record_body(&mut body) {
        Ok(info) if body.left == 0 => Ok(Some(info)),
        Ok(_) => Err(BatchFault::in_record(
            index,
            format!(
                "fields fill {} of the record's {len} bytes",
                len - body.left
            ),
        )),
        Err((field, FieldError::PastRecord)) => Err(BatchFault::in_record(
            index,
            format!("{field} runs past the record's {len} bytes"),
        )),
        Err((field, FieldError::BadVarint)) => {
            Err(BatchFault::in_record(index, format!("bad {field} varint")))
        }
        Err(("header count", FieldError::Negative(n))) => Err(BatchFault::in_record(
            index,
            format!("negative header count {n}"),
        )),
        Err((field, FieldError::Negative(n))) => Err(BatchFault::in_record(
            index,
            format!("{field} has invalid length {n}"),
        )),
        Err((_, FieldError::Ended)) => Err(source.ended_inside(index)),
        Err((_, FieldError::Source(f))) => Err(f),
    }
}

/// Parses one record body (after its length prefix): attributes, timestamp
/// delta, offset delta, key, value, headers. On error, names the field.
fn parse_record_body<S: RecordSource>(
    r: &mut FieldReader<'_, S>,
) -> Result<RecordInfo, (&'static str, FieldError)> {
    fn at<T>(
        field: &'static str,
        v: Result<T, FieldError>,
    ) -> Result<T, (&'static str, FieldError)> {
        v.map_err(|e| (field, e))
    }
    at("attributes", r.skip(1))?;
    let timestamp_delta = at("timestamp delta", r.varlong())?;
    let offset_delta = at("offset delta", r.varint())?;
    let key_len = at("key", r.nullable_bytes())?;
    at("value", r.nullable_bytes())?;
    let headers = at("header count", r.varint())?;
    if headers < 0 {
        return Err(("header count", FieldError::Negative(i64::from(headers))));
    }
    for _ in 0..headers {
        let key_len = at("header key", r.varint())?;
        if key_len < 0 {
            return Err(("header key", FieldError::Negative(i64::from(key_len))));
        }
        at("header key", r.skip(key_len as usize))?;
        at("header value", r.nullable_bytes())?;
    }
    Ok(RecordInfo {
        timestamp_delta,
        offset_delta,
        has_key: key_len >= 0,
    })
}

#[derive(Debug)]
enum FieldError {
    /// The field goes past the record's declared length.
    PastRecord,
    /// The source ended inside the record.
    Ended,
    /// A varint longer than its type allows.
    BadVarint,
    /// A length or count below what the format allows.
    Negative(i64),
    /// The source itself failed (a codec error, the decompression limit).
    Source(BatchFault),
}

/// Reads a record's fields from a [`RecordSource`], never past `left` bytes.
/// Bytes that are skipped (keys, values) are never copied.
struct FieldReader<'s, S: RecordSource> {
    source: &'s mut S,
    left: usize,
}

impl<S: RecordSource> FieldReader<'_, S> {
    fn byte(&mut self) -> Result<u8, FieldError> {
        if self.left == 0 {
            return Err(FieldError::PastRecord);
        }
        let b = match self.source.fill() {
            Ok(buf) => *buf.first().ok_or(FieldError::Ended)?,
            Err(f) => return Err(FieldError::Source(f)),
        };
        self.source.consume(1);
        self.left -= 1;
        Ok(b)
    }

    /// An unsigned LEB128 value of at most `bits` bits (32 or 64). A varint
    /// longer than its type, or whose last byte carries bits beyond it, is
    /// refused: consumers that read it as a wider number would see another value.
    #[inline]
    fn unsigned(&mut self, bits: u32) -> Result<u64, FieldError> {
        let max_bytes = bits.div_ceil(7) as usize;
        // Fast path: the whole varint is in the current buffer and the record.
        let fast = match self.source.fill() {
            Ok(buf) if buf.len() >= max_bytes && self.left >= max_bytes => {
                let mut decoded = None;
                let mut value = 0u64;
                for (i, &byte) in buf[..max_bytes].iter().enumerate() {
                    value |= u64::from(byte & 0x7f) << (7 * i);
                    if byte & 0x80 == 0 {
                        decoded = Some((value, i + 1, byte));
                        break;
                    }
                }
                Some(decoded)
            }
            Ok(_) => None,
            Err(f) => return Err(FieldError::Source(f)),
        };
        let (value, n, last) = match fast {
            Some(Some(decoded)) => {
                self.source.consume(decoded.1);
                self.left -= decoded.1;
                decoded
            }
            Some(None) => return Err(FieldError::BadVarint),
            None => {
                let mut value = 0u64;
                let mut decoded = None;
                for i in 0..max_bytes {
                    let byte = self.byte()?;
                    value |= u64::from(byte & 0x7f) << (7 * i);
                    if byte & 0x80 == 0 {
                        decoded = Some((value, i + 1, byte));
                        break;
                    }
                }
                decoded.ok_or(FieldError::BadVarint)?
            }
        };
        if n == max_bytes && u32::from(last) >> (bits - 7 * (max_bytes as u32 - 1)) != 0 {
            return Err(FieldError::BadVarint);
        }
        Ok(value)
    }

    fn varint(&mut self) -> Result<i32, FieldError> {
        let raw = self.unsigned(32)? as u32;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64, FieldError> {
        let raw = self.unsigned(64)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Skips `n` bytes of the record without copying them.
    fn skip(&mut self, mut n: usize) -> Result<(), FieldError> {
        if n > self.left {
            return Err(FieldError::PastRecord);
        }
        while n > 0 {
            let available = match self.source.fill() {
                Ok(buf) => buf.len(),
                Err(f) => return Err(FieldError::Source(f)),
            };
            if available == 0 {
                return Err(FieldError::Ended);
            }
            let step = available.min(n);
            self.source.consume(step);
            self.left -= step;
            n -= step;
        }
        Ok(())
    }

    /// A varint length then that many bytes; -1 means null. Returns the length.
    fn nullable_bytes(&mut self) -> Result<i32, FieldError> {
        let len = self.varint()?;
        if len < -1 {
            return Err(FieldError::Negative(i64::from(len)));
        }
        if len > 0 {
            self.skip(len as usize)?;
        }
        Ok(len)
    }
}

/// A batch after offset assignment, as written to the segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AssignedBatch {
    /// Position inside the appended buffer.
    pub pos: usize,
    pub size: usize,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// Gives the validated batches their offsets, starting at `first_offset`:
/// rewrites `baseOffset` and `partitionLeaderEpoch` (to `leader_epoch`; neither
/// is covered by the CRC) and, under LogAppendTime (`log_append_time = Some(now)`), sets the
/// timestamp-type bit and both timestamps to `now`, then recomputes the CRC.
/// The caller has checked that the offsets fit in an `i64`.
pub(crate) fn assign_offsets(
    buf: &mut [u8],
    batches: &[ProducedBatch],
    first_offset: i64,
    leader_epoch: i32,
    log_append_time: Option<i64>,
) -> Vec<AssignedBatch> {
    let mut next = first_offset;
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let bytes = &mut buf[b.pos..b.pos + b.size];
        bytes[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&next.to_be_bytes());
        bytes[LEADER_EPOCH..LEADER_EPOCH + 4].copy_from_slice(&leader_epoch.to_be_bytes());
        if let Some(now) = log_append_time {
            let attributes = get_i16(bytes, ATTRIBUTES) | TIMESTAMP_TYPE_LOG_APPEND;
            bytes[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
            bytes[BASE_TIMESTAMP..BASE_TIMESTAMP + 8].copy_from_slice(&now.to_be_bytes());
            bytes[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&now.to_be_bytes());
            let crc = compute_crc(bytes);
            bytes[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        }
        let last = next + i64::from(b.record_count) - 1;
        out.push(AssignedBatch {
            pos: b.pos,
            size: b.size,
            base_offset: next,
            last_offset: last,
            max_timestamp: get_i64(bytes, MAX_TIMESTAMP),
        });
        next = last + 1;
    }
    out
}

/// For ListOffsets by timestamp: the first record of `batch` (one whole stored batch) at or
/// after `min_offset` (the log start) whose timestamp is `>= target`, as `(offset,
/// timestamp)`; `None` when the batch has no such record.
///
/// The records are walked as Kafka walks them, a compressed batch decompressed first. Under
/// LogAppendTime every record has the batch's `maxTimestamp`. A batch whose records cannot be
/// read (it was validated when stored, so only damage does this) answers its first offset at
/// or after `min_offset`, with its `maxTimestamp`.
pub(crate) fn first_record_at_or_after(
    batch: &[u8],
    h: &BatchHeader,
    target: i64,
    min_offset: i64,
) -> Option<(i64, i64)> {
    if h.max_timestamp < target || h.last_offset() < min_offset {
        return None;
    }
    let whole_batch = Some((h.base_offset.max(min_offset), h.max_timestamp));
    if h.is_log_append_time() || batch.len() < HEADER_LEN {
        return whole_batch;
    }
    let decompressed;
    let area = match h.compression() {
        0 => &batch[HEADER_LEN..],
        codec => match crate::compression::decompress_all(codec, &batch[HEADER_LEN..], batch.len())
        {
            Ok(records) => {
                decompressed = records;
                &decompressed[..]
            }
            Err(_) => return whole_batch,
        },
    };
    let mut found = None;
    let walked = walk_records(area, |r| {
        let offset = h.base_offset.saturating_add(i64::from(r.offset_delta));
        let ts = h.base_timestamp.saturating_add(r.timestamp_delta);
        if offset >= min_offset && ts >= target {
            found = Some((offset, ts));
            return Ok(false);
        }
        Ok(true)
    });
    match walked {
        Ok(()) => found,
        Err(_) => whole_batch,
    }
}
