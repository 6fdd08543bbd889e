//! Opening a partition directory: loading segments and crash recovery.
//!
//! The last (active) segment is always scanned batch by batch, as is every
//! sealed segment holding offsets beyond the `recovery-point` checkpoint (the
//! offset below which all segments are known-good and fsynced). Sealed
//! segments below the checkpoint are trusted and only their index files are
//! loaded (or rebuilt by a scan if missing or inconsistent).
//!
//! A scan checks each batch's header, length, magic, CRC and that base offsets
//! follow on contiguously. At the tail of the last segment a bad or partial
//! batch with no valid batch anywhere after it is a torn write and is
//! truncated away; anything else is corruption, reported as
//! [`LogError::Corruption`] so the broker refuses to start rather than lose
//! acknowledged data silently.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::batch::{
    check_stored, BatchHeader, HEADER_LEN, LOG_OVERHEAD, MAGIC, MAGIC_V2, MIN_BATCH_LENGTH,
};
use crate::index::SegmentIndex;
use crate::segment::{
    file_name, sync_dir, Segment, SegmentState, INDEX_EXT, LOG_EXT, TIMEINDEX_EXT,
};
use crate::{LogConfig, LogError};

/// Name of the checkpoint file.
pub(crate) const CHECKPOINT_FILE: &str = "recovery-point";
const CHECKPOINT_TMP: &str = "recovery-point.tmp";

/// How much of a segment file a scan reads at a time.
const SCAN_CHUNK: usize = 1 << 20;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the checkpoint; a missing or unreadable one means "trust nothing" (0).
pub(crate) fn read_checkpoint(dir: &Path) -> i64 {
    let path = dir.join(CHECKPOINT_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<i64>() {
            Ok(offset) if offset >= 0 => offset,
            _ => {
                tracing::warn!(file = %path.display(), "unreadable recovery checkpoint; scanning every segment");
                0
            }
        },
        Err(_) => 0,
    }
}

/// Atomically replaces the checkpoint (write temp file, fsync, rename, fsync dir).
pub(crate) fn write_checkpoint(dir: &Path, offset: i64) -> io::Result<()> {
    let tmp = dir.join(CHECKPOINT_TMP);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(format!("{offset}\n").as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(CHECKPOINT_FILE))?;
    sync_dir(dir)
}

/// Sequential reader over a segment file with a large window.
struct ChunkReader<'a> {
    file: &'a File,
    len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl<'a> ChunkReader<'a> {
    fn new(file: &'a File, len: u64) -> ChunkReader<'a> {
        ChunkReader {
            file,
            len,
            start: 0,
            buf: Vec::new(),
        }
    }

    /// Bytes `pos..pos + n`; the caller has checked they lie within the file.
    fn get(&mut self, pos: u64, n: usize) -> io::Result<&[u8]> {
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

/// Walks a segment file from position 0 while batches are valid.
pub(crate) fn scan_segment(
    file: &File,
    len: u64,
    base_offset: i64,
    index_interval: u32,
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
        if header.base_offset != expected {
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
        expected = last + 1;
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

/// Whether a valid batch starts anywhere after `bad_pos`, where the batch at
/// offset `expected` should have been. Every byte position is tried, since the
/// bad batch's length cannot be trusted. A candidate must pass the CRC and,
/// as any batch this log wrote after that point would, have a base offset
/// above `expected`; that keeps a batch embedded in some record's payload
/// (producers send base offset 0) from turning a torn tail into corruption.
pub(crate) fn valid_batch_follows(
    file: &File,
    len: u64,
    bad_pos: u64,
    expected: i64,
) -> io::Result<bool> {
    let mut reader = ChunkReader::new(file, len);
    let mut q = bad_pos + 1;
    while q + HEADER_LEN as u64 <= len {
        let head = reader.get(q, HEADER_LEN)?;
        if head[MAGIC] as i8 == MAGIC_V2 {
            if let Some(h) = BatchHeader::parse(head) {
                let plausible = h.base_offset > expected
                    && h.batch_length >= MIN_BATCH_LENGTH
                    && q + h.total_size() <= len
                    && h.last_offset_delta >= 0
                    && i64::from(h.record_count) == i64::from(h.last_offset_delta) + 1;
                if plausible && check_stored(reader.get(q, h.total_size() as usize)?).is_ok() {
                    return Ok(true);
                }
            }
        }
        q += 1;
    }
    Ok(false)
}

/// The segments of a freshly opened log.
pub(crate) struct Recovered {
    pub segments: Vec<Segment>,
    pub recovery_point: i64,
}

/// Parses `{20 digits}.{ext}`.
fn parse_segment_name(name: &str) -> Option<(i64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

/// Opens (creating if needed) the partition directory and recovers its segments.
pub(crate) fn open_dir(dir: &Path, config: &LogConfig, now_ms: i64) -> Result<Recovered, LogError> {
    let created = !dir.exists();
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    if created {
        if let Some(parent) = dir.parent() {
            // Best effort: make the new directory entry durable.
            let _ = sync_dir(parent);
        }
    }

    let mut logs = BTreeSet::new();
    let mut index_files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == CHECKPOINT_TMP {
            let _ = fs::remove_file(entry.path());
            continue;
        }
        match parse_segment_name(name) {
            Some((base, LOG_EXT)) => {
                logs.insert(base);
            }
            Some((base, INDEX_EXT | TIMEINDEX_EXT)) => index_files.push((base, entry.path())),
            _ => {}
        }
    }
    for (base, path) in index_files {
        if !logs.contains(&base) {
            tracing::warn!(file = %path.display(), "removing index file without a segment");
            let _ = fs::remove_file(&path);
        }
    }

    let checkpoint = read_checkpoint(dir);
    let mut segments = Vec::with_capacity(logs.len().max(1));
    if logs.is_empty() {
        segments.push(Segment::create(dir, 0).map_err(io_err(dir))?);
    }
    let bases: Vec<i64> = logs.into_iter().collect();
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        segments.push(open_segment(
            dir, base, next_base, checkpoint, config, now_ms,
        )?);
    }
    sync_dir(dir).map_err(io_err(dir))?;

    // Every sealed segment is now known-good and fsynced. A checkpoint beyond
    // the last segment's base (written at close) already says as much.
    let last_base = segments.last().map_or(0, Segment::base_offset);
    let recovery_point = checkpoint.max(last_base);
    if checkpoint < last_base {
        write_checkpoint(dir, last_base).map_err(io_err(dir))?;
    }
    Ok(Recovered {
        segments,
        recovery_point,
    })
}

/// Opens one segment: trusted sealed segments load their indexes, the others are scanned.
fn open_segment(
    dir: &Path,
    base: i64,
    next_base: Option<i64>,
    checkpoint: i64,
    config: &LogConfig,
    now_ms: i64,
) -> Result<Segment, LogError> {
    let log_path = dir.join(file_name(base, LOG_EXT));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&log_path)
        .map_err(io_err(&log_path))?;
    let len = file.metadata().map_err(io_err(&log_path))?.len();

    if let Some(next) = next_base.filter(|&next| next <= checkpoint) {
        match load_indexes(&log_path, &file, base, next, len) {
            Ok(index) => {
                let state = SegmentState {
                    size: len,
                    next_offset: next,
                    index,
                    first_append_ms: None,
                };
                return Ok(Segment::new(base, log_path, file, state));
            }
            Err(reason) => {
                tracing::warn!(file = %log_path.display(), %reason, "rebuilding segment indexes");
            }
        }
    }

    let outcome =
        scan_segment(&file, len, base, config.index_interval_bytes).map_err(io_err(&log_path))?;
    let mut valid_len = outcome.valid_len;
    if let Some((position, reason)) = outcome.stop {
        if next_base.is_some() {
            return Err(LogError::Corruption {
                file: log_path,
                position,
                reason,
            });
        }
        if valid_batch_follows(&file, len, position, outcome.next_offset)
            .map_err(io_err(&log_path))?
        {
            let reason = format!("{reason}, and valid batches follow it");
            return Err(LogError::Corruption {
                file: log_path,
                position,
                reason,
            });
        }
        tracing::warn!(
            file = %log_path.display(),
            position,
            %reason,
            dropped_bytes = len - position,
            "truncating torn write at the end of the log"
        );
        file.set_len(position).map_err(io_err(&log_path))?;
        file.sync_all().map_err(io_err(&log_path))?;
        valid_len = position;
    }
    let mut index = outcome.index;
    if let Some(next) = next_base {
        if outcome.next_offset != next {
            let reason = format!(
                "segment ends at offset {} but the next segment starts at offset {next}",
                outcome.next_offset
            );
            return Err(LogError::Corruption {
                file: log_path,
                position: valid_len,
                reason,
            });
        }
        index.seal();
    }
    let first_append_ms = match outcome.first_timestamp {
        Some(ts) if ts >= 0 => Some(ts.min(now_ms)),
        Some(_) => Some(now_ms),
        None => None,
    };
    let state = SegmentState {
        size: valid_len,
        next_offset: outcome.next_offset,
        index,
        first_append_ms,
    };
    let segment = Segment::new(base, log_path, file, state);
    let sealed = next_base.is_some();
    segment
        .write_index_files(sealed)
        .map_err(io_err(segment.log_path()))?;
    if sealed {
        // Validated now; make sure it is on disk before the checkpoint covers it.
        segment.sync_data().map_err(io_err(segment.log_path()))?;
    }
    Ok(segment)
}

/// Loads and checks the index files of a trusted sealed segment.
fn load_indexes(
    log_path: &Path,
    file: &File,
    base: i64,
    next: i64,
    len: u64,
) -> Result<SegmentIndex, String> {
    let index_path: PathBuf = log_path.with_extension(INDEX_EXT);
    let time_path: PathBuf = log_path.with_extension(TIMEINDEX_EXT);
    let offsets = fs::read(&index_path).map_err(|e| format!("{}: {e}", index_path.display()))?;
    let times = fs::read(&time_path).map_err(|e| format!("{}: {e}", time_path.display()))?;
    let index = SegmentIndex::load(base, next, len, &offsets, &times)?;
    // Spot-check that the last offset entry points at the batch it names.
    if let Some(last) = index.offset_entries().last() {
        let mut head = [0u8; LOG_OVERHEAD];
        file.read_exact_at(&mut head, u64::from(last.pos))
            .map_err(|e| e.to_string())?;
        let mut found = [0u8; 8];
        found.copy_from_slice(&head[..8]);
        let found = i64::from_be_bytes(found);
        if found != base + i64::from(last.rel) {
            return Err(format!(
                "offset index points at offset {found} for {}",
                base + i64::from(last.rel)
            ));
        }
    }
    Ok(index)
}
