//! The record-batch target: the `records` of one partition of a Produce request.

/// The largest batch the log accepts by default (`max.message.bytes`).
pub const MAX_MESSAGE_BYTES: u32 = 1_048_588;

/// Runs the log's produce-time validation on `data`, as `PartitionLog::append` does before it
/// writes anything (every batch's length, magic, CRC, record count, records, and for
/// compressed batches the decompressed records), then again with every batch's CRC-32C
/// recomputed: a fuzzer cannot guess checksums, and without the second pass almost every
/// mutation would stop at the CRC check instead of reaching the record walk and decompression.
pub fn record_batch(data: &[u8]) {
    validate(data);
}

/// Both passes of [`record_batch`] on one record set.
pub fn validate(records: &[u8]) {
    let _ = starling_log::validate_record_set(records, MAX_MESSAGE_BYTES);
    let mut fixed = records.to_vec();
    if fix_crcs(&mut fixed) {
        let _ = starling_log::validate_record_set(&fixed, MAX_MESSAGE_BYTES);
    }
}

/// `baseOffset` + `batchLength`: the bytes `batchLength` does not count.
const LOG_OVERHEAD: usize = 12;
/// Where the CRC sits, and where the bytes it covers start.
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;

/// Recomputes the CRC-32C of every batch whose declared length fits in `buf`, as a producer
/// would have written it; stops at the first batch that does not fit. Returns whether any CRC
/// changed.
pub fn fix_crcs(buf: &mut [u8]) -> bool {
    let mut changed = false;
    let mut pos = 0usize;
    while let Some(header) = buf.get(pos..pos + LOG_OVERHEAD) {
        let length = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        let Some(size) = usize::try_from(length)
            .ok()
            .and_then(|n| n.checked_add(LOG_OVERHEAD))
        else {
            break;
        };
        let Some(batch) = buf.get_mut(pos..pos.saturating_add(size)) else {
            break;
        };
        if batch.len() < ATTRIBUTES {
            break;
        }
        let crc = crc32c::crc32c(&batch[ATTRIBUTES..]).to_be_bytes();
        if batch[CRC..ATTRIBUTES] != crc {
            batch[CRC..ATTRIBUTES].copy_from_slice(&crc);
            changed = true;
        }
        pos += size;
    }
    changed
}
