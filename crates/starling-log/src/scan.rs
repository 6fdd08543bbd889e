//! Reading segment files back for recovery and repair, without trusting them.
//!
//! * [`scan_segment`] walks a file from its start while batches are valid (header, length,
//!   magic, CRC-32C, offsets following on from the segment base) and rebuilds the indexes.
//! * [`next_intact_batch`] looks for an intact batch anywhere after a damaged position, trying
//!   every byte position, since a damaged batch's length cannot be trusted and a cut shifts
//!   everything after it; [`tally_intact`] counts every intact batch in a range that is about
//!   to be dropped, for the repair report.
//! * [`check_trusted_tail`] is the cheap check of a sealed segment below the recovery point:
//!   the first batch has the segment's base offset and the batches after the last index entry
//!   end exactly at the end of the file with the offset the next segment starts at.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::batch::{
    check_stored, record_count_fits, BatchHeader, HEADER_LEN, MAGIC, MAGIC_V2, MIN_BATCH_LENGTH,
};
use crate::index::SegmentIndex;

/// How much of a segment file a scan reads at a time.
const SCAN_CHUNK: usize = 1 << 20;

/// Sequential reader over a segment file with a large window.
pub(crate) struct ChunkReader<'a> {
    file: &'a File,
    len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl<'a> ChunkReader<'a> {
    pub fn new(file: &'a File, len: u64) -> ChunkReader<'a> {
        ChunkReader {
            file,
            len,
            start: 0,
            buf: Vec::new(),
        }
    }

    /// Bytes `pos..pos + n`; the caller has checked they lie within the file.
    pub fn get(&mut self, pos: u64, n: usize) -> io::Result<&[u8]> {
        let end = pos + n as u64;
        if pos < self.start || end > self.start + self.buf.len() as u64 {
            let want = (n.max(SCAN_CHUNK) as u64).min(self.len - pos) as usize;
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.start = pos;
        }
        let at = (pos - self.start) as usize;
        Ok(&self.buf[at..at + n])
    }
}

/// What scanning a segment found.
pub(crate) struct ScanOutcome {
    /// Bytes of valid, contiguous batches from the start of the file.
    pub valid_len: u64,
    /// One past the last valid offset (the segment base when none).
    pub next_offset: i64,
    /// Indexes rebuilt from the valid batches.
    pub index: SegmentIndex,
    /// `maxTimestamp` of the first batch.
    pub first_timestamp: Option<i64>,
    /// The first bad batch: its position and what is wrong with it.
    pub stop: Option<(u64, String)>,
}

/// Whether the offsets `from..to` may be missing from a log: the cleaner removed records there
/// (every removed offset lies below `gaps_below`, the cleaner checkpoint; 0 for a log never
/// cleaned, where no offset may be missing).
pub(crate) fn gap_allowed(from: i64, to: i64, gaps_below: i64) -> bool {
    from < to && to <= gaps_below
}

/// Walks a segment file from position 0 while batches are valid. Offsets must follow on from
/// the segment's base, except for gaps the cleaner left (see [`gap_allowed`]).
pub(crate) fn scan_segment(
    file: &File,
    len: u64,
    base_offset: i64,
    index_interval: u32,
    gaps_below: i64,
) -> io::Result<ScanOutcome> {
    let mut reader = ChunkReader::new(file, len);
    let mut index = SegmentIndex::new(base_offset);
    let mut pos = 0u64;
    let mut expected = base_offset;
    let mut first_timestamp = None;
    let mut stop = None;
    while pos < len {
        let remaining = len - pos;
        if remaining < HEADER_LEN as u64 {
            stop = Some((
                pos,
                format!("partial batch header ({remaining} bytes before end of file)"),
            ));
            break;
        }
        let header = match BatchHeader::parse(reader.get(pos, HEADER_LEN)?) {
            Some(h) => h,
            None => {
                stop = Some((pos, "unreadable batch header".to_string()));
                break;
            }
        };
        if header.batch_length < MIN_BATCH_LENGTH {
            stop = Some((pos, format!("invalid batch length {}", header.batch_length)));
            break;
        }
        let total = header.total_size();
        if total > remaining {
            stop = Some((
                pos,
                format!("partial batch: {total} bytes declared, {remaining} before end of file"),
            ));
            break;
        }
        if pos + total > u64::from(u32::MAX) {
            stop = Some((pos, "segment larger than 4 GiB".to_string()));
            break;
        }
        let header = match check_stored(reader.get(pos, total as usize)?) {
            Ok(h) => h,
            Err(reason) => {
                stop = Some((pos, reason));
                break;
            }
        };
        if header.base_offset != expected && !gap_allowed(expected, header.base_offset, gaps_below)
        {
            stop = Some((
                pos,
                format!(
                    "batch base offset {} where offset {expected} was expected",
                    header.base_offset
                ),
            ));
            break;
        }
        let last = header.last_offset();
        if last.saturating_sub(base_offset) > i64::from(u32::MAX) {
            stop = Some((pos, "offset too far from the segment base".to_string()));
            break;
        }
        index.on_batch(
            pos as u32,
            header.base_offset,
            last,
            header.max_timestamp,
            total,
            index_interval,
        );
        first_timestamp.get_or_insert(header.max_timestamp);
        expected = last.saturating_add(1);
        pos += total;
    }
    Ok(ScanOutcome {
        valid_len: pos,
        next_offset: expected,
        index,
        first_timestamp,
        stop,
    })
}

/// The first intact batch starting at or after byte `from` whose base offset is at least
/// `min_base`, with its position. Every byte position is tried. A candidate must pass the
/// same checks a scan applies (length within the file, magic, CRC, count fitting the offset
/// delta); requiring its base offset to be one this log could have written after the damage
/// keeps a batch embedded in some record's payload (producers send base offset 0) from being
/// taken for log data.
pub(crate) fn next_intact_batch(
    reader: &mut ChunkReader<'_>,
    len: u64,
    from: u64,
    min_base: i64,
) -> io::Result<Option<(u64, BatchHeader)>> {
    let mut q = from;
    while q.saturating_add(HEADER_LEN as u64) <= len {
        let head = reader.get(q, HEADER_LEN)?;
        if head[MAGIC] as i8 == MAGIC_V2 {
            if let Some(h) = BatchHeader::parse(head) {
                let plausible = h.base_offset >= min_base
                    && h.batch_length >= MIN_BATCH_LENGTH
                    && q + h.total_size() <= len
                    && record_count_fits(&h);
                if plausible && check_stored(reader.get(q, h.total_size() as usize)?).is_ok() {
                    return Ok(Some((q, h)));
                }
            }
        }
        q += 1;
    }
    Ok(None)
}

/// Intact batches found in a byte range that is being dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntactBatches {
    /// How many intact batches the range holds.
    pub batches: u64,
    /// How many records they hold.
    pub records: u64,
    /// The lowest base offset and the highest last offset among them.
    pub offsets: Option<(i64, i64)>,
}

/// Counts the intact batches in `from..len` of `file` with base offsets of at least
/// `min_base`, skipping damaged bytes one position at a time and intact batches whole.
pub(crate) fn tally_intact(
    file: &File,
    len: u64,
    from: u64,
    min_base: i64,
) -> io::Result<IntactBatches> {
    let mut reader = ChunkReader::new(file, len);
    let mut tally = IntactBatches::default();
    let mut at = from;
    let mut min_base = min_base;
    while let Some((pos, h)) = next_intact_batch(&mut reader, len, at, min_base)? {
        let last = h.last_offset();
        tally.batches += 1;
        tally.records += h.record_count as u64;
        tally.offsets = Some(match tally.offsets {
            None => (h.base_offset, last),
            Some((lo, hi)) => (lo.min(h.base_offset), hi.max(last)),
        });
        min_base = min_base.max(last.saturating_add(1));
        at = pos + h.total_size();
    }
    Ok(tally)
}

/// Checks a trusted sealed segment holding offsets `base..next` in `len` bytes without reading
/// it all: its first batch starts at `base`, and walking the batch headers from the last offset
/// index entry lands exactly on the end of the file with `next` as the following offset.
/// Offsets may be missing where the cleaner removed records ([`gap_allowed`]).
/// `Err` says what does not fit; the caller then scans the whole segment.
pub(crate) fn check_trusted_tail(
    file: &File,
    len: u64,
    base: i64,
    next: i64,
    index: &SegmentIndex,
    gaps_below: i64,
) -> Result<(), String> {
    let read_header = |pos: u64| -> Result<BatchHeader, String> {
        let mut head = [0u8; HEADER_LEN];
        if pos.saturating_add(HEADER_LEN as u64) > len {
            return Err(format!("partial batch header at byte position {pos}"));
        }
        file.read_exact_at(&mut head, pos)
            .map_err(|e| format!("reading byte position {pos}: {e}"))?;
        let h = BatchHeader::parse(&head).ok_or("short header")?;
        if h.magic != MAGIC_V2 || h.batch_length < MIN_BATCH_LENGTH {
            return Err(format!("no batch header at byte position {pos}"));
        }
        Ok(h)
    };
    if len == 0 {
        return if next == base || gap_allowed(base, next, gaps_below) {
            Ok(())
        } else {
            Err(format!("empty segment, but the next one starts at {next}"))
        };
    }
    let first = read_header(0)?;
    if first.base_offset != base && !gap_allowed(base, first.base_offset, gaps_below) {
        return Err(format!(
            "first batch has base offset {} instead of {base}",
            first.base_offset
        ));
    }
    let mut pos = 0;
    let mut following = base;
    if let Some(entry) = index.offset_entries().last() {
        pos = u64::from(entry.pos);
        following = base.saturating_add(i64::from(entry.rel));
        let h = read_header(pos)?;
        if h.base_offset != following {
            return Err(format!(
                "offset index points at offset {} for {following}",
                h.base_offset
            ));
        }
    }
    while pos < len {
        let h = read_header(pos)?;
        if h.base_offset < following {
            return Err(format!(
                "batch at byte position {pos} has base offset {} below {following}",
                h.base_offset
            ));
        }
        following = h.last_offset().saturating_add(1);
        pos = pos.saturating_add(h.total_size());
    }
    if pos != len {
        return Err(format!(
            "last batch runs past the end of the file ({len} bytes)"
        ));
    }
    if following != next && !gap_allowed(following, next, gaps_below) {
        return Err(format!(
            "segment ends at offset {following}, the next one starts at {next}"
        ));
    }
    Ok(())
}
