//! Kafka record batches (magic v2) at the byte level.
//!
//! Everything that looks inside a batch lives here: the fixed header layout,
//! produce-time validation (header sanity, CRC-32C, record walk for
//! uncompressed batches), offset assignment with the optional LogAppendTime
//! rewrite, the lighter check applied to batches already stored on disk, and
//! the record walk used by timestamp lookups. Nothing here does I/O, so the
//! rules can be tested on plain byte slices and never panic on any input.

use crate::AppendError;

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

const COMPRESSION_MASK: i16 = 0x07;
const MAX_COMPRESSION_CODEC: i16 = 4;
const TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;

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
}

/// CRC-32C of a whole batch as stored in its `crc` field (covers `attributes..end`).
pub(crate) fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES..).unwrap_or(&[]))
}

/// Checks a batch read back from a segment file; `bytes` is exactly one batch
/// (its declared length). Used by recovery and by the torn-tail search, so it
/// only checks what the CRC and header can prove: magic, CRC, offset/count
/// consistency.
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
    if h.last_offset_delta < 0 || i64::from(h.record_count) != i64::from(h.last_offset_delta) + 1 {
        return Err(format!(
            "record count {} does not match last offset delta {}",
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
}

/// Validates every batch of a produce request (the `records` of one
/// partition). Nothing is modified; the caller writes only if this succeeds.
pub(crate) fn validate_produce(
    buf: &[u8],
    max_message_bytes: u32,
) -> Result<Vec<ProducedBatch>, AppendError> {
    if buf.is_empty() {
        return Err(AppendError::Corrupt("empty record set".to_string()));
    }
    let mut batches = Vec::new();
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
        let record_count = validate_one(bytes)
            .map_err(|e| AppendError::Corrupt(format!("batch {index} at byte {pos}: {e}")))?;
        batches.push(ProducedBatch {
            pos,
            size,
            record_count,
        });
        pos += size;
    }
    Ok(batches)
}

/// Checks one produced batch whose length has already been checked; returns its record count.
fn validate_one(bytes: &[u8]) -> Result<i32, String> {
    let h = BatchHeader::parse(bytes).ok_or_else(|| "batch shorter than its header".to_string())?;
    let actual = compute_crc(bytes);
    if actual != h.crc {
        return Err(format!(
            "crc mismatch: expected {:#010x} (in batch), computed {:#010x}",
            h.crc, actual
        ));
    }
    if h.record_count < 1 {
        return Err(format!(
            "record count {} (a produced batch must hold at least one record)",
            h.record_count
        ));
    }
    if i64::from(h.record_count) != i64::from(h.last_offset_delta) + 1 {
        return Err(format!(
            "record count {} does not match last offset delta {}",
            h.record_count, h.last_offset_delta
        ));
    }
    let codec = h.compression();
    if codec > MAX_COMPRESSION_CODEC {
        return Err(format!("unknown compression codec {codec}"));
    }
    if codec == 0 {
        let mut expected_delta = 0i64;
        walk_records(&bytes[HEADER_LEN..], |record| {
            if i64::from(record.offset_delta) != expected_delta {
                return Err(format!(
                    "record {expected_delta} has offset delta {}",
                    record.offset_delta
                ));
            }
            expected_delta += 1;
            Ok(true)
        })?;
        if expected_delta != i64::from(h.record_count) {
            return Err(format!(
                "batch declares {} records but holds {expected_delta}",
                h.record_count
            ));
        }
    }
    Ok(h.record_count)
}

/// What the record walk exposes of each record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordInfo {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
}

/// Walks the uncompressed records area of a batch, checking that the length
/// prefixes tile it exactly and that each record's fields fill its length.
/// `visit` returns `Ok(false)` to stop early.
pub(crate) fn walk_records(
    mut area: &[u8],
    mut visit: impl FnMut(RecordInfo) -> Result<bool, String>,
) -> Result<(), String> {
    let mut index = 0usize;
    while !area.is_empty() {
        let mut cursor = Cursor { buf: area, pos: 0 };
        let len = cursor
            .varint()
            .ok_or_else(|| format!("record {index}: bad length varint"))?;
        if len < 0 {
            return Err(format!("record {index}: negative length {len}"));
        }
        let start = cursor.pos;
        let end = start
            .checked_add(len as usize)
            .filter(|&end| end <= area.len())
            .ok_or_else(|| {
                format!("record {index}: length {len} runs past the end of the batch")
            })?;
        let info = parse_record(&area[start..end]).map_err(|e| format!("record {index}: {e}"))?;
        if !visit(info)? {
            return Ok(());
        }
        area = &area[end..];
        index += 1;
    }
    Ok(())
}

/// Parses one record body (after its length prefix) and checks it is filled exactly.
fn parse_record(body: &[u8]) -> Result<RecordInfo, String> {
    let mut c = Cursor { buf: body, pos: 0 };
    c.take(1).ok_or("missing attributes")?;
    let timestamp_delta = c.varlong().ok_or("bad timestamp delta")?;
    let offset_delta = c.varint().ok_or("bad offset delta")?;
    c.nullable_bytes().ok_or("bad key")?;
    c.nullable_bytes().ok_or("bad value")?;
    let headers = c.varint().ok_or("bad header count")?;
    if headers < 0 {
        return Err(format!("negative header count {headers}"));
    }
    for _ in 0..headers {
        let key_len = c.varint().ok_or("bad header key")?;
        if key_len < 0 {
            return Err("null header key".to_string());
        }
        c.take(key_len as usize)
            .ok_or("header key runs past the record")?;
        c.nullable_bytes().ok_or("bad header value")?;
    }
    if c.pos != body.len() {
        return Err(format!(
            "fields fill {} of the record's {} bytes",
            c.pos,
            body.len()
        ));
    }
    Ok(RecordInfo {
        timestamp_delta,
        offset_delta,
    })
}

/// A bounds-checked reader of Kafka's zigzag varints.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn unsigned(&mut self, max_bytes: u32) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = *self.buf.get(self.pos)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn varint(&mut self) -> Option<i32> {
        let raw = self.unsigned(5)? as u32;
        Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Option<i64> {
        let raw = self.unsigned(10)?;
        Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A varint length then that many bytes; -1 means null.
    fn nullable_bytes(&mut self) -> Option<()> {
        let len = self.varint()?;
        if len < -1 {
            return None;
        }
        if len > 0 {
            self.take(len as usize)?;
        }
        Some(())
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
/// rewrites `baseOffset` and `partitionLeaderEpoch` (neither is covered by
/// the CRC) and, under LogAppendTime (`log_append_time = Some(now)`), sets the
/// timestamp-type bit and both timestamps to `now`, then recomputes the CRC.
/// The caller has checked that the offsets fit in an `i64`.
pub(crate) fn assign_offsets(
    buf: &mut [u8],
    batches: &[ProducedBatch],
    first_offset: i64,
    log_append_time: Option<i64>,
) -> Vec<AssignedBatch> {
    let mut next = first_offset;
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let bytes = &mut buf[b.pos..b.pos + b.size];
        bytes[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&next.to_be_bytes());
        bytes[LEADER_EPOCH..LEADER_EPOCH + 4].copy_from_slice(&0i32.to_be_bytes());
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

/// For ListOffsets by timestamp: the first record of `batch` (one whole
/// stored batch) whose timestamp is `>= target`, as `(offset, timestamp)`.
///
/// Uncompressed CreateTime batches are walked record by record, like Kafka.
/// LogAppendTime batches give every record the batch's `maxTimestamp`, so the
/// answer is the base offset. Compressed batches are not decompressed: the
/// answer is the base offset with the batch's `maxTimestamp`.
pub(crate) fn first_record_at_or_after(batch: &[u8], h: &BatchHeader, target: i64) -> (i64, i64) {
    let whole_batch = (h.base_offset, h.max_timestamp);
    if h.is_log_append_time() || h.compression() != 0 || batch.len() < HEADER_LEN {
        return whole_batch;
    }
    let mut found = None;
    let walked = walk_records(&batch[HEADER_LEN..], |r| {
        let ts = h.base_timestamp.saturating_add(r.timestamp_delta);
        if ts >= target {
            found = Some((h.base_offset.saturating_add(i64::from(r.offset_delta)), ts));
            return Ok(false);
        }
        Ok(true)
    });
    match (walked, found) {
        (Ok(()), Some(hit)) => hit,
        _ => whole_batch,
    }
}
