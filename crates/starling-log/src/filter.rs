//! Looking inside stored batches and rewriting them with fewer records, for the cleaner
//! (Kafka's `MemoryRecords.filterTo`).
//!
//! [`BatchRecords::read`] opens one stored batch (decompressing it when it is compressed) and
//! lists its records: offset, timestamp, key and whether the value is null, and the record's
//! bytes. [`rebuild`] makes the batch that holds only some of them. A record's bytes are copied
//! unchanged, since its offset and timestamp are deltas from the batch's base offset and base
//! timestamp, which stay. The rebuilt batch keeps every header field Kafka keeps: base offset,
//! `lastOffsetDelta` (so the producer's last sequence, `baseSequence + lastOffsetDelta`, is
//! what it was, and consumers move past the removed tail), producer id, epoch, base sequence,
//! attributes; its record count, length, `maxTimestamp` (under CreateTime, the largest kept
//! timestamp) and CRC are recomputed, and a compressed batch is recompressed with its codec.
//! Nothing here does I/O, and nothing panics on any bytes: what cannot be read is an `Err`.

use std::borrow::Cow;
use std::ops::Range;

use crate::batch::{
    compute_crc, BatchHeader, ATTRIBUTES, BATCH_LENGTH, COMPRESSION_MASK, CRC, HEADER_LEN,
    LOG_OVERHEAD, MAX_TIMESTAMP, RECORD_COUNT,
};
use crate::compression::{self, Encoding};

/// One record of a stored batch.
#[derive(Debug, Clone)]
pub(crate) struct StoredRecord {
    /// Its absolute offset.
    pub offset: i64,
    /// Its absolute timestamp (the batch's base timestamp plus its delta).
    pub timestamp: i64,
    /// Its key (`None`: a null key).
    pub key: Option<Range<usize>>,
    /// Whether its value is non-null (a null value is a tombstone).
    pub has_value: bool,
    /// Its bytes in the records area, length prefix included.
    pub bytes: Range<usize>,
}

/// The records of one stored batch.
pub(crate) struct BatchRecords<'a> {
    /// The records area, decompressed.
    pub area: Cow<'a, [u8]>,
    pub records: Vec<StoredRecord>,
}

impl<'a> BatchRecords<'a> {
    /// Reads the records of `batch` (one whole stored batch with header `h`).
    pub fn read(batch: &'a [u8], h: &BatchHeader) -> Result<BatchRecords<'a>, String> {
        let compressed = batch
            .get(HEADER_LEN..)
            .ok_or_else(|| "batch shorter than its header".to_string())?;
        let area = match h.compression() {
            0 => Cow::Borrowed(compressed),
            codec => Cow::Owned(compression::decompress_all(codec, compressed, batch.len())?),
        };
        let records = parse_records(&area, h)?;
        Ok(BatchRecords { area, records })
    }

    /// The key of `record`.
    pub fn key(&self, record: &StoredRecord) -> Option<&[u8]> {
        record.key.clone().and_then(|k| self.area.get(k))
    }
}

/// The batch `batch` (header `h`, records `records`) holding only the records `keep` (indexes
/// into `records.records`, ascending, at least one), compressed as it was.
pub(crate) fn rebuild(
    batch: &[u8],
    h: &BatchHeader,
    records: &BatchRecords<'_>,
    keep: &[usize],
) -> Result<Vec<u8>, String> {
    let codec = h.compression();
    let original = batch.get(HEADER_LEN..).unwrap_or(&[]);
    rebuild_as(batch, h, records, keep, &Encoding::same_as(codec, original))
}

/// All of `batch` (header `h`, records `records`) compressed with another codec (0: none): a
/// topic whose `compression.type` differs from the producer's, as Kafka's
/// `LogValidator.buildRecordsAndAssignOffsets` rewrites it. Every record and header field stays
/// but the codec bits of `attributes`, the length, `maxTimestamp` (recomputed, under CreateTime)
/// and the CRC.
pub(crate) fn recompress(
    batch: &[u8],
    h: &BatchHeader,
    records: &BatchRecords<'_>,
    encoding: &Encoding,
) -> Result<Vec<u8>, String> {
    let all: Vec<usize> = (0..records.records.len()).collect();
    rebuild_as(batch, h, records, &all, encoding)
}

/// [`rebuild`] with the records compressed as `encoding` says (codec 0: left uncompressed).
fn rebuild_as(
    batch: &[u8],
    h: &BatchHeader,
    records: &BatchRecords<'_>,
    keep: &[usize],
    encoding: &Encoding,
) -> Result<Vec<u8>, String> {
    let mut area = Vec::new();
    let mut max_timestamp = None::<i64>;
    for &i in keep {
        let record = records
            .records
            .get(i)
            .ok_or_else(|| format!("no record {i} in the batch"))?;
        let bytes = records
            .area
            .get(record.bytes.clone())
            .ok_or_else(|| "record outside its batch".to_string())?;
        area.extend_from_slice(bytes);
        max_timestamp = Some(max_timestamp.map_or(record.timestamp, |m| m.max(record.timestamp)));
    }
    let payload = match encoding.codec {
        0 => area,
        _ => compression::compress(encoding, &area)?,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(
        batch
            .get(..HEADER_LEN)
            .ok_or_else(|| "batch shorter than its header".to_string())?,
    );
    out.extend_from_slice(&payload);
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD)
        .map_err(|_| "rebuilt batch too large".to_string())?;
    out[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
    let count = i32::try_from(keep.len()).map_err(|_| "too many records".to_string())?;
    out[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&count.to_be_bytes());
    if !h.is_log_append_time() {
        if let Some(max) = max_timestamp {
            out[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&max.to_be_bytes());
        }
    }
    let attributes = (h.attributes & !COMPRESSION_MASK) | encoding.codec;
    out[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = compute_crc(&out);
    out[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Reads a zigzag varint (up to `max_bytes` bytes) at `*at`.
fn varint(area: &[u8], at: &mut usize, max_bytes: usize) -> Result<i64, String> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let byte = *area
            .get(*at)
            .ok_or_else(|| "records end inside a varint".to_string())?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err("varint too long".to_string())
}

/// A nullable byte field: its range, or `None` for null.
fn nullable(area: &[u8], at: &mut usize, end: usize) -> Result<Option<Range<usize>>, String> {
    let len = varint(area, at, 5)?;
    if len < 0 {
        return Ok(None);
    }
    let start = *at;
    let stop = start
        .checked_add(len as usize)
        .filter(|&stop| stop <= end)
        .ok_or_else(|| "field runs past its record".to_string())?;
    *at = stop;
    Ok(Some(start..stop))
}

/// Walks a decompressed records area.
fn parse_records(area: &[u8], h: &BatchHeader) -> Result<Vec<StoredRecord>, String> {
    let mut records = Vec::with_capacity(usize::try_from(h.record_count).unwrap_or(0).min(1 << 16));
    let mut at = 0usize;
    while at < area.len() {
        let start = at;
        let len = varint(area, &mut at, 5)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| at.checked_add(len))
            .filter(|&end| end <= area.len())
            .ok_or_else(|| format!("record at byte {start} runs past the records"))?;
        at += 1; // attributes
        let timestamp_delta = varint(area, &mut at, 10)?;
        let offset_delta = varint(area, &mut at, 5)?;
        let key = nullable(area, &mut at, end)?;
        let value = nullable(area, &mut at, end)?;
        if at > end {
            return Err(format!("record at byte {start} runs past its length"));
        }
        records.push(StoredRecord {
            offset: h.base_offset.saturating_add(offset_delta),
            timestamp: if h.is_log_append_time() {
                h.max_timestamp
            } else {
                h.base_timestamp.saturating_add(timestamp_delta)
            },
            key,
            has_value: value.is_some(),
            bytes: start..end,
        });
        at = end;
    }
    if records.len() != usize::try_from(h.record_count).unwrap_or(usize::MAX) {
        return Err(format!(
            "batch at offset {} declares {} records and holds {}",
            h.base_offset,
            h.record_count,
            records.len()
        ));
    }
    Ok(records)
}
