//! Log compaction (Kafka's `LogCleaner`): keeping only the latest record of each key in the
//! sealed part of a log whose `cleanup.policy` includes compact. The rules for one batch (the
//! key map, what stays of a batch) are the [`Compactor`]'s (`compactor.rs`), apart from files;
//! this module runs them over segments and swaps the cleaned segments in.
//!
//! # A cleaning pass ([`PartitionLog::clean`])
//!
//! * **The cleanable range** runs from the *first dirty offset* (where the last pass stopped,
//!   kept in the `cleaner-offset-checkpoint` file; the log start when there is none) up to the
//!   *first uncleanable offset*: the least of the active segment's base (the active segment is
//!   never touched), the last stable offset (an open transaction's records stay as they are)
//!   and, with `min.compaction.lag.ms`, the base of the first segment whose newest timestamp is
//!   within that lag of now. [`PartitionLog::cleanable_info`] reports it with the dirty ratio
//!   (dirty bytes / (clean + dirty bytes), by whole segments as Kafka counts them) and whether
//!   `max.compaction.lag.ms` forces a pass, for the broker to choose logs.
//! * **The key map**: the latest offset of each key in the dirty range (keys are hashed to 128
//!   bits; aborted transactions and control batches are left out). It holds at most
//!   `dedupe_buffer_bytes / 24 × 0.9` keys, as Kafka's map of 16-byte hashes and 8-byte offsets
//!   at its load factor; when the next batch would not fit, the map (and the pass) ends at that
//!   batch and the rest stays dirty for the next pass.
//! * **The rewrite**: every sealed segment from the log start up to the map's end is read, in
//!   groups of adjacent segments whose sizes together stay within `segment.bytes` (Kafka's
//!   `groupSegmentsBySize`); a group of several, or a lone segment where something goes, is
//!   written again as one cleaned segment named after its first. Below the map's end a record
//!   stays when it has a key and no later offset of that key is in the map, unless it is a
//!   tombstone past its delete horizon; keyless records there go (Kafka drops them as
//!   invalid), and so do the batches of aborted transactions. Everything at or past the map's
//!   end stays, aborted or not, so offsets go missing only below the checkpoint. A transaction
//!   marker stays while data of its transaction was seen in this pass, and goes once none was
//!   and its delete horizon has passed. Offsets never change: a batch keeps its base offset
//!   and `lastOffsetDelta` (see `filter`), a batch left with no record goes, and a cleaned
//!   segment left with no batch stays as an empty file (so the log start stays) until a later
//!   pass merges it with its neighbours.
//! * **The delete horizon** (KIP-534's guarantee, kept without rewriting batch headers): the
//!   checkpoint remembers, for the recent passes, the offset each one cleaned up to and when
//!   it ran. A tombstone or marker at offset `o` goes only in a pass that runs
//!   `delete.retention.ms` after the first pass that covered `o`, the pass that removed the
//!   older values it deletes. A consumer that reads from the start and reaches `o` within
//!   `delete.retention.ms` of seeing any value it deletes therefore sees it too.
//! * **Idempotent producers**: an emptied batch goes even if it is a producer's last, where
//!   Kafka keeps an empty batch for it: here the producers' state comes from the producer
//!   snapshot files, and before swapping the cleaner makes sure one exists at or past the end
//!   of the cleaned segments (writing one at the log end when not), so opening the log never
//!   reads producer state from cleaned batches. If that snapshot were lost, an older one plus
//!   the remaining headers would give those producers shorter deduplication windows.
//!
//! # On disk, and the swap
//!
//! * `{base:020}.log.cleaned`: a cleaned segment being written (created, written, fsynced).
//! * `cleaner-swap`: the commit record of a pass, written whole (temporary file, fsync,
//!   rename, directory fsync) once every `.cleaned` file and its name are durable (file fsyncs,
//!   then a directory fsync): the bases each cleaned segment replaces and the new cleaner
//!   checkpoint. Its appearance is the instant the pass takes effect.
//! * Then each `.cleaned` file is renamed over its group's first `.log`, the files of the
//!   group's other segments are removed (readers that hold an old segment keep reading its file
//!   through the open descriptor), the new index files are written whole, the directory is
//!   fsynced, the checkpoint is written, and `cleaner-swap` is removed.
//! * `cleaner-offset-checkpoint`: the first dirty offset and the recent passes (see above).
//!
//! At open ([`recover`]), before the segments are read: a `cleaner-swap` means the pass
//! committed, so every `.cleaned` file it names still there is renamed over its `.log`, the
//! other segments of its group are removed, the cleaned segments' index files are removed (they
//! are rebuilt by scanning), the checkpoint is written and the record removed. Without one,
//! `.cleaned` files are from a pass that did not commit and are removed. Either way the log is
//! the old segment set or the new one, whole. Every step is idempotent, so a crash during
//! recovery is recovered the same way. Offset gaps are accepted by recovery only below the
//! checkpoint's first dirty offset, where the cleaner made them.
//!
//! A failure after the commit point (an I/O error, not a crash) leaves the rest of the swap as
//! undo work: every later change to the log first finishes it, as for a failed append.
//!
//! # I/O
//!
//! Every byte of segment data read (the dirty range for the map, then each segment rewritten)
//! and written (the cleaned segments) is reported to the caller's [`Throttle`] first; index
//! files, the checkpoint and the swap record are small and not counted. A pass holds no lock
//! while it reads and writes, only the writer lock for the swap, so appends, reads and
//! retention go on meanwhile (a pass whose segments retention deleted is abandoned).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::BatchHeader;
use crate::compactor::{Compactor, MapError, Verdict};
use crate::failpoint::{self, Injected, Op};
use crate::index::SegmentIndex;
use crate::segment::{
    file_name, remove_file, remove_files, sync_dir, write_whole, Segment, SegmentState, INDEX_EXT,
    LOG_EXT, TIMEINDEX_EXT, TMP_SUFFIX,
};
use crate::throttle::{IoKind, Throttle};
use crate::{LogConfig, LogError, PartitionLog, View, WriterState};

/// The cleaner's checkpoint file in the partition directory.
pub(crate) const CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";
/// The commit record of a swap in progress.
pub(crate) const SWAP_FILE: &str = "cleaner-swap";
/// Suffix of a cleaned segment being written (after the `.log`).
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// A cleaned segment is written out in pieces of this size.
const WRITE_CHUNK: usize = 1 << 20;

/// What a cleaning pass did, for the broker's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanStats {
    /// Bytes read from segment files (the dirty range twice: for the map, then to rewrite).
    pub bytes_read: u64,
    /// Bytes written to cleaned segment files.
    pub bytes_written: u64,
    /// Records in the segments the pass went through that stay.
    pub records_kept: u64,
    /// Records removed: superseded, tombstones and markers past their horizon, aborted, keyless.
    pub records_removed: u64,
    /// Segments the pass went through.
    pub segments_scanned: usize,
    /// Old segments replaced: those where something was removed, and small neighbours merged.
    pub segments_cleaned: usize,
    /// Cleaned segments written in their place (several small neighbours become one, up to
    /// `segment.bytes`).
    pub segments_written: usize,
    /// Keys in the map.
    pub keys: usize,
    /// The first offset of the first segment the pass went through.
    pub first_offset: i64,
    /// The offset the pass cleaned up to: the next pass's first dirty offset.
    pub end_offset: i64,
    /// The dirty ratio before and after the pass.
    pub dirty_ratio_before: f64,
    pub dirty_ratio_after: f64,
}

/// How much of a log a cleaning pass could clean, for the broker to choose logs (Kafka's
/// `LogToClean` and the checks of `LogCleanerManager.grabFilthiestCompactedLog`).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanableInfo {
    /// Where the dirty part starts (the last pass's end, or the log start).
    pub first_dirty_offset: i64,
    /// Where cleaning must stop (active segment, last stable offset, `min.compaction.lag.ms`).
    pub first_uncleanable_offset: i64,
    /// Bytes of the segments below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of the segments holding the cleanable dirty offsets (0 when nothing is cleanable).
    pub dirty_bytes: u64,
    /// `dirty_bytes / (clean_bytes + dirty_bytes)` (0 when both are 0).
    pub dirty_ratio: f64,
    /// `maxTimestamp` of the first dirty batch, if there is one in the cleanable range.
    pub first_dirty_timestamp_ms: Option<i64>,
    /// `max.compaction.lag.ms` has passed for the first dirty batch: clean whatever the ratio.
    pub must_clean: bool,
    /// The delete horizon of an earlier pass has passed: a pass would remove its tombstones
    /// and markers, even with nothing dirty.
    pub deletes_due: bool,
    /// The policy compacts and either something is cleanable and the dirty ratio is above
    /// `min.cleanable.dirty.ratio` or `must_clean` holds (as Kafka chooses logs), or
    /// `deletes_due` holds.
    pub should_clean: bool,
}

/// The cleaner checkpoint: where the dirty part starts, and the recent passes. (Another store
/// of batches keeps it as [`CleanerCheckpoint::encode`] writes it.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanerCheckpoint {
    pub first_dirty: i64,
    /// `(end offset, time)` of the passes whose delete horizon may not have passed, by end
    /// offset ascending; each one's end is above the one before.
    pub passes: Vec<(i64, i64)>,
}

impl CleanerCheckpoint {
    pub fn encode(&self) -> String {
        let mut text = format!("first-dirty {}\n", self.first_dirty);
        for (end, time) in &self.passes {
            text.push_str(&format!("pass {end} {time}\n"));
        }
        text
    }

    fn decode_line(&mut self, line: &str) -> Result<bool, String> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let number = |s: &str| s.parse::<i64>().map_err(|e| format!("{line:?}: {e}"));
        match fields.as_slice() {
            ["first-dirty", offset] => self.first_dirty = number(offset)?,
            ["pass", end, time] => self.passes.push((number(end)?, number(time)?)),
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn decode(text: &str) -> Result<CleanerCheckpoint, String> {
        let mut checkpoint = CleanerCheckpoint::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if !checkpoint.decode_line(line)? {
                return Err(format!("unknown line {line:?}"));
            }
        }
        Ok(checkpoint)
    }

    /// When a pass first covered `offset`, if one did.
    fn first_covered(&self, offset: i64) -> Option<i64> {
        self.passes
            .iter()
            .find(|(end, _)| *end > offset)
            .map(|(_, time)| *time)
    }

    /// Whether a tombstone or marker at `offset` may go at `now_ms`.
    pub(crate) fn horizon_passed(
        &self,
        offset: i64,
        now_ms: i64,
        delete_retention_ms: i64,
    ) -> bool {
        self.first_covered(offset)
            .is_some_and(|time| time.saturating_add(delete_retention_ms.max(0)) <= now_ms)
    }

    /// The checkpoint after a pass at `now_ms` that cleaned up to `end`: passes whose horizon
    /// has passed are dropped (this pass removed everything they were keeping), and this one
    /// is added when it covered offsets no pass had (every earlier pass ended at or below the
    /// first dirty offset).
    pub fn after_pass(&self, end: i64, now_ms: i64, delete_retention_ms: i64) -> CleanerCheckpoint {
        let mut passes: Vec<(i64, i64)> = self
            .passes
            .iter()
            .copied()
            .filter(|(_, time)| time.saturating_add(delete_retention_ms.max(0)) > now_ms)
            .collect();
        if end > self.first_dirty {
            passes.push((end, now_ms));
        }
        CleanerCheckpoint {
            first_dirty: end.max(self.first_dirty),
            passes,
        }
    }
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads the cleaner checkpoint; `None` when there is none.
pub(crate) fn read_checkpoint(dir: &Path) -> io::Result<Option<CleanerCheckpoint>> {
    let path = dir.join(CHECKPOINT_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => CleanerCheckpoint::decode(&text)
            .map(Some)
            .map_err(|e| invalid_data(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Atomically replaces the cleaner checkpoint (temporary file, fsync, rename, directory fsync).
fn write_checkpoint(dir: &Path, checkpoint: &CleanerCheckpoint) -> io::Result<()> {
    write_whole(
        &dir.join(CHECKPOINT_FILE),
        checkpoint.encode().as_bytes(),
        true,
        Op::CheckpointWrite,
    )?;
    sync_dir(dir)
}

/// The commit record of a swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SwapRecord {
    /// One entry per cleaned segment: the base offsets of the adjacent old segments it
    /// replaces, its own (the first's) first. Its `.cleaned` file replaces the first one's
    /// `.log`; the others' files are removed.
    pub groups: Vec<Vec<i64>>,
    /// The cleaner checkpoint once the swap is done.
    pub checkpoint: CleanerCheckpoint,
}

impl SwapRecord {
    fn encode(&self) -> String {
        let mut text = String::new();
        for group in &self.groups {
            let bases: Vec<String> = group.iter().map(i64::to_string).collect();
            text.push_str(&format!("segment {}\n", bases.join(" ")));
        }
        text.push_str(&self.checkpoint.encode());
        text.push_str("end\n");
        text
    }

    fn decode(text: &str) -> Result<SwapRecord, String> {
        let mut groups = Vec::new();
        let mut checkpoint = CleanerCheckpoint::default();
        let mut complete = false;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(bases) = line.strip_prefix("segment ") {
                let group = bases
                    .split_whitespace()
                    .map(|b| b.parse::<i64>().map_err(|e| format!("{line:?}: {e}")))
                    .collect::<Result<Vec<i64>, String>>()?;
                if group.is_empty() {
                    return Err(format!("{line:?} names no segment"));
                }
                groups.push(group);
            } else if line.trim() == "end" {
                complete = true;
            } else if !checkpoint.decode_line(line)? {
                return Err(format!("unknown line {line:?}"));
            }
        }
        if !complete {
            return Err("the record has no end line".to_string());
        }
        Ok(SwapRecord { groups, checkpoint })
    }
}

fn cleaned_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{}{CLEANED_SUFFIX}", file_name(base, LOG_EXT)))
}

/// Renames the `.cleaned` files of `record` still there over their `.log` files, then removes
/// the files of the other segments each one replaces.
fn rename_cleaned(dir: &Path, record: &SwapRecord) -> io::Result<()> {
    for &base in record.groups.iter().filter_map(|g| g.first()) {
        let from = cleaned_path(dir, base);
        if !from.exists() {
            continue; // renamed already
        }
        if let Some(fault) = failpoint::inject(Op::Rename) {
            return Err(fault.error);
        }
        fs::rename(&from, dir.join(file_name(base, LOG_EXT)))?;
    }
    for group in &record.groups {
        for &absorbed in group.iter().skip(1) {
            remove_files(dir, absorbed)?;
        }
    }
    Ok(())
}

/// The steps after the renames: directory fsync, the checkpoint, the record removed.
fn conclude_swap(dir: &Path, record: &SwapRecord) -> io::Result<()> {
    sync_dir(dir)?;
    write_checkpoint(dir, &record.checkpoint)?;
    remove_file(&dir.join(SWAP_FILE))?;
    sync_dir(dir)
}

/// Finishes a swap in a running log: renames, index files of the in-memory `segments` (the
/// new ones), then [`conclude_swap`]. Each step may be repeated.
pub(crate) fn complete_swap(
    dir: &Path,
    record: &SwapRecord,
    segments: &[Arc<Segment>],
) -> io::Result<()> {
    rename_cleaned(dir, record)?;
    for segment in segments {
        segment.write_index_files(true)?;
    }
    conclude_swap(dir, record)
}

/// At open, before the segments are read: finishes a committed swap or removes the files of
/// one that did not commit (see the module docs). Returns the offset below which the cleaner
/// may have left offset gaps (the checkpoint's first dirty offset; 0 if it never cleaned).
pub(crate) fn recover(dir: &Path) -> Result<i64, LogError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| LogError::Io { path, source }
    };
    let swap_path = dir.join(SWAP_FILE);
    match fs::read_to_string(&swap_path) {
        Ok(text) => {
            let record = SwapRecord::decode(&text).map_err(|reason| LogError::Corruption {
                file: swap_path.clone(),
                position: 0,
                reason: format!("unreadable cleaner swap record: {reason}"),
            })?;
            tracing::info!(dir = %dir.display(), segments = ?record.groups, "finishing an interrupted cleaner swap");
            rename_cleaned(dir, &record).map_err(io_err(dir))?;
            for &base in record.groups.iter().filter_map(|g| g.first()) {
                for ext in [INDEX_EXT, TIMEINDEX_EXT] {
                    match remove_file(&dir.join(file_name(base, ext))) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => {
                            return Err(io_err(dir)(e))
                        }
                        _ => {}
                    }
                }
            }
            conclude_swap(dir, &record).map_err(io_err(dir))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&swap_path)(e)),
    }
    let entries = fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let leftover = name.ends_with(CLEANED_SUFFIX)
            || name == format!("{SWAP_FILE}{TMP_SUFFIX}")
            || name == format!("{CHECKPOINT_FILE}{TMP_SUFFIX}");
        if leftover {
            tracing::info!(file = %entry.path().display(), "removing a file of an unfinished cleaning pass");
            remove_file(&entry.path()).map_err(io_err(&entry.path()))?;
        }
    }
    gaps_below(dir)
}

/// After a truncation (repair, or a torn tail) the log may end below the cleaner checkpoint:
/// the checkpoint is brought down to the log end, so that offsets written again there count as
/// dirty (as Kafka's cleaner manager does when a log is truncated).
pub(crate) fn clamp_checkpoint(dir: &Path, log_end: i64) -> Result<(), LogError> {
    let io_err = |source| LogError::Io {
        path: dir.join(CHECKPOINT_FILE),
        source,
    };
    let Some(checkpoint) = read_checkpoint(dir).map_err(io_err)? else {
        return Ok(());
    };
    if checkpoint.first_dirty <= log_end {
        return Ok(());
    }
    let mut passes: Vec<(i64, i64)> = Vec::new();
    for &(end, time) in &checkpoint.passes {
        let end = end.min(log_end);
        if passes.last().is_none_or(|&(last, _)| last < end) {
            passes.push((end, time));
        }
    }
    tracing::warn!(dir = %dir.display(), from = checkpoint.first_dirty, to = log_end, "the log ends below the cleaner checkpoint; moving the checkpoint down");
    write_checkpoint(
        dir,
        &CleanerCheckpoint {
            first_dirty: log_end,
            passes,
        },
    )
    .map_err(io_err)
}

/// The offset below which the cleaner may have left offset gaps, read without changing anything
/// (for repair): the checkpoint's first dirty offset, or a pending swap's.
pub(crate) fn gaps_below(dir: &Path) -> Result<i64, LogError> {
    let from_checkpoint = read_checkpoint(dir)
        .map_err(|source| LogError::Io {
            path: dir.join(CHECKPOINT_FILE),
            source,
        })?
        .map_or(0, |c| c.first_dirty);
    let from_swap = fs::read_to_string(dir.join(SWAP_FILE))
        .ok()
        .and_then(|text| SwapRecord::decode(&text).ok())
        .map_or(0, |r| r.checkpoint.first_dirty);
    Ok(from_checkpoint.max(from_swap))
}

/// The end offset of segment `i` of `view`: where the next one starts (the log end for the last).
fn segment_end(view: &View, i: usize) -> i64 {
    view.segments
        .get(i + 1)
        .map_or(view.log_end, |s| s.base_offset())
}

/// Reads one whole batch at `pos` of `segment` (its header checked against `size`).
fn read_batch(segment: &Segment, pos: u64, size: u64) -> io::Result<(BatchHeader, Vec<u8>)> {
    let h = segment.read_header(pos, size)?;
    let bytes = segment.read_bytes(pos, h.total_size())?;
    Ok((h, bytes))
}

fn batch_error(segment: &Segment, h: &BatchHeader, reason: String) -> io::Error {
    invalid_data(format!(
        "cannot read the records of the batch at offset {} in {}: {reason}",
        h.base_offset,
        segment.log_path().display()
    ))
}

/// The range a pass may clean, computed from a snapshot of the log.
fn cleanable_of(
    view: &View,
    config: &LogConfig,
    checkpoint: &CleanerCheckpoint,
    now_ms: i64,
) -> io::Result<CleanableInfo> {
    let first_dirty = checkpoint.first_dirty.max(view.log_start);
    let sealed = view.segments.len().saturating_sub(1);
    let active_base = view.active().base_offset();
    let last_stable = view.txns.first_unstable.unwrap_or(view.log_end);
    let mut first_uncleanable = active_base.min(last_stable);
    if config.min_compaction_lag_ms > 0 {
        let cutoff = now_ms.saturating_sub(config.min_compaction_lag_ms);
        for (i, segment) in view.segments[..sealed].iter().enumerate() {
            if segment_end(view, i) <= first_dirty {
                continue;
            }
            if segment.newest_timestamp_ms()? > cutoff {
                first_uncleanable = first_uncleanable.min(segment.base_offset());
                break;
            }
        }
    }
    let first_uncleanable = first_uncleanable.max(first_dirty);
    let mut clean_bytes = 0;
    let mut dirty_bytes = 0;
    let mut first_dirty_timestamp_ms = None;
    for (i, segment) in view.segments.iter().enumerate() {
        let (base, end) = (segment.base_offset(), segment_end(view, i));
        if base < first_dirty {
            clean_bytes += segment.size();
        }
        if first_dirty < first_uncleanable && end > first_dirty && base < first_uncleanable {
            dirty_bytes += segment.size();
            if first_dirty_timestamp_ms.is_none() {
                if let Some(pos) = segment.find_batch(first_dirty, first_uncleanable)? {
                    let h = segment.read_header(pos, segment.size())?;
                    first_dirty_timestamp_ms = Some(h.max_timestamp);
                }
            }
        }
    }
    Ok(CleanableInfo::decide(
        config,
        checkpoint,
        (first_dirty, first_uncleanable),
        (clean_bytes, dirty_bytes),
        first_dirty_timestamp_ms,
        now_ms,
    ))
}

impl CleanableInfo {
    /// Whether a log is worth a pass at `now_ms`, from what its storage measured: the dirty
    /// range `first_dirty..first_uncleanable`, the bytes below it and in it, and the newest
    /// timestamp of the first dirty batch (Kafka's `grabFilthiestCompactedLog`: a ratio above
    /// the minimum, or forced with bytes to clean, or a delete horizon passed).
    pub fn decide(
        config: &LogConfig,
        checkpoint: &CleanerCheckpoint,
        (first_dirty, first_uncleanable): (i64, i64),
        (clean_bytes, dirty_bytes): (u64, u64),
        first_dirty_timestamp_ms: Option<i64>,
        now_ms: i64,
    ) -> CleanableInfo {
        let total = clean_bytes + dirty_bytes;
        let dirty_ratio = if total == 0 {
            0.0
        } else {
            dirty_bytes as f64 / total as f64
        };
        let must_clean = first_dirty_timestamp_ms
            .is_some_and(|ts| now_ms.saturating_sub(ts) > config.max_compaction_lag_ms);
        let deletes_due = checkpoint
            .passes
            .iter()
            .any(|&(_, time)| time.saturating_add(config.delete_retention_ms.max(0)) <= now_ms);
        let should_clean = config.cleanup_policy.compacts()
            && ((dirty_bytes > 0
                && (dirty_ratio > config.min_cleanable_dirty_ratio || must_clean))
                || deletes_due);
        CleanableInfo {
            first_dirty_offset: first_dirty,
            first_uncleanable_offset: first_uncleanable,
            clean_bytes,
            dirty_bytes,
            dirty_ratio,
            first_dirty_timestamp_ms,
            must_clean,
            deletes_due,
            should_clean,
        }
    }
}

/// What a pass needs while it reads and rewrites.
struct Pass<'a> {
    config: LogConfig,
    compactor: Compactor,
    throttle: &'a mut dyn Throttle,
    stats: CleanStats,
}

impl Pass<'_> {
    fn read(&mut self, bytes: u64) {
        self.throttle.acquire(IoKind::Read, bytes);
        self.stats.bytes_read += bytes;
    }

    /// Builds the key map over `first_dirty..first_uncleanable`, stopping early when the next
    /// batch's new keys would not fit.
    fn build_map(
        &mut self,
        view: &View,
        first_dirty: i64,
        first_uncleanable: i64,
    ) -> io::Result<()> {
        for (i, segment) in view.segments.iter().enumerate() {
            if segment.base_offset() >= first_uncleanable {
                break;
            }
            if segment_end(view, i) <= first_dirty {
                continue;
            }
            let size = segment.size();
            let Some(mut pos) = segment.find_batch(first_dirty, first_uncleanable)? else {
                continue;
            };
            while pos < size {
                let (h, bytes) = read_batch(segment, pos, size)?;
                if h.base_offset >= first_uncleanable {
                    break;
                }
                self.read(bytes.len() as u64);
                pos += h.total_size();
                match self.compactor.map_batch(&h, &bytes) {
                    Ok(true) => {}
                    Ok(false) => return Ok(()),
                    Err(MapError::Unreadable(reason)) => {
                        return Err(batch_error(segment, &h, reason))
                    }
                    Err(e @ MapError::TooFewKeys { .. }) => {
                        return Err(io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
                    }
                }
            }
        }
        Ok(())
    }

    fn judge(&mut self, segment: &Segment, h: &BatchHeader, bytes: &[u8]) -> io::Result<Verdict> {
        self.compactor
            .judge(h, bytes)
            .map_err(|reason| batch_error(segment, h, reason))
    }

    /// Reads the adjacent segments `group` and, if anything in them goes or there are several,
    /// writes one cleaned segment of what stays to `{first base}.log.cleaned` (fsynced) and
    /// returns it; `None` when a lone segment stays as it is.
    fn clean_group(&mut self, dir: &Path, group: &[Arc<Segment>]) -> io::Result<Option<Segment>> {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            return Ok(None);
        };
        let base = first.base_offset();
        let first_append_ms = first.state().first_append_ms;
        let mut out = CleanedFile::create(dir, base)?;
        let mut changed = group.len() > 1;
        for segment in group {
            let size = segment.size();
            match self.rewrite_into(segment, size, &mut out) {
                Ok(removed) => changed |= removed,
                Err(e) => {
                    out.discard();
                    return Err(e);
                }
            }
        }
        if !changed {
            out.discard();
            return Ok(None);
        }
        let written = out.finish(self)?;
        let (file, size, next_offset, mut index) = written;
        index.seal();
        // Keep the last old file's modification time (as Kafka does): retention and the
        // compaction lag fall back to it for a segment left with no batch.
        if let Ok(modified) = fs::metadata(last.log_path()).and_then(|m| m.modified()) {
            let _ = file.set_modified(modified);
        }
        Ok(Some(Segment::new(
            base,
            first.log_path().to_path_buf(),
            file,
            SegmentState {
                size,
                next_offset,
                index,
                first_append_ms,
            },
        )))
    }

    /// Judges every batch of `segment` and writes the ones that stay to `out`; returns whether
    /// anything changed.
    fn rewrite_into(
        &mut self,
        segment: &Segment,
        size: u64,
        out: &mut CleanedFile,
    ) -> io::Result<bool> {
        let mut changed = false;
        let mut pos = 0u64;
        while pos < size {
            let (h, bytes) = read_batch(segment, pos, size)?;
            self.read(bytes.len() as u64);
            pos += h.total_size();
            match self.judge(segment, &h, &bytes)? {
                Verdict::Keep => out.push(&h, &bytes, self)?,
                Verdict::Drop => changed = true,
                Verdict::Rewrite(rebuilt) => {
                    changed = true;
                    let rebuilt_header = BatchHeader::parse(&rebuilt)
                        .ok_or_else(|| batch_error(segment, &h, "rebuilt batch".to_string()))?;
                    out.push(&rebuilt_header, &rebuilt, self)?;
                }
            }
        }
        Ok(changed)
    }
}

/// A `.log.cleaned` file being written.
struct CleanedFile {
    path: PathBuf,
    file: Option<File>,
    base: i64,
    buffer: Vec<u8>,
    /// Bytes written to the file so far.
    flushed: u64,
    index: SegmentIndex,
    next_offset: i64,
    index_interval: u32,
}

impl CleanedFile {
    fn create(dir: &Path, base: i64) -> io::Result<CleanedFile> {
        let path = cleaned_path(dir, base);
        let fault = failpoint::inject(Op::SegmentCreate);
        if let Some(Injected {
            partial: false,
            error,
        }) = fault
        {
            return Err(error);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let mut cleaned = CleanedFile {
            path,
            file: Some(file),
            base,
            buffer: Vec::new(),
            flushed: 0,
            index: SegmentIndex::new(base),
            next_offset: base,
            index_interval: 4096,
        };
        if let Some(Injected { error, .. }) = fault {
            cleaned.discard();
            return Err(error);
        }
        Ok(cleaned)
    }

    fn push(&mut self, h: &BatchHeader, bytes: &[u8], pass: &mut Pass<'_>) -> io::Result<()> {
        self.index_interval = pass.config.index_interval_bytes;
        let pos = self.flushed + self.buffer.len() as u64;
        let pos32 =
            u32::try_from(pos).map_err(|_| invalid_data("cleaned segment over 4 GiB".into()))?;
        self.index.on_batch(
            pos32,
            h.base_offset,
            h.last_offset(),
            h.max_timestamp,
            bytes.len() as u64,
            self.index_interval,
        );
        self.next_offset = h.last_offset().saturating_add(1);
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= WRITE_CHUNK {
            self.flush(pass)?;
        }
        Ok(())
    }

    fn flush(&mut self, pass: &mut Pass<'_>) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("cleaned file already closed"))?;
        if let Some(fault) = failpoint::inject(Op::CleanedWrite) {
            if fault.partial {
                file.write_all_at(&self.buffer[..self.buffer.len() / 2], self.flushed)?;
            }
            return Err(fault.error);
        }
        file.write_all_at(&self.buffer, self.flushed)?;
        let n = self.buffer.len() as u64;
        pass.throttle.acquire(IoKind::Write, n);
        pass.stats.bytes_written += n;
        self.flushed += n;
        self.buffer.clear();
        Ok(())
    }

    /// Writes what is buffered and fsyncs; returns the file, its size, the offset after its
    /// last batch and its index. On failure the file is removed.
    fn finish(mut self, pass: &mut Pass<'_>) -> io::Result<(File, u64, i64, SegmentIndex)> {
        let synced = self.flush(pass).and_then(|()| {
            if let Some(fault) = failpoint::inject(Op::SegmentSync) {
                return Err(fault.error);
            }
            self.file
                .as_ref()
                .ok_or_else(|| io::Error::other("cleaned file already closed"))?
                .sync_all()
        });
        if let Err(e) = synced {
            self.discard();
            return Err(e);
        }
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("cleaned file already closed"))?;
        let next_offset = if self.flushed == 0 {
            self.base
        } else {
            self.next_offset
        };
        Ok((file, self.flushed, next_offset, self.index.clone()))
    }

    /// Removes the file (best effort: open removes leftovers).
    fn discard(&mut self) {
        self.file = None;
        if let Err(e) = remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(file = %self.path.display(), error = %e, "could not remove a cleaned segment file");
            }
        }
    }
}

/// The base offsets of the cleaned segments (each its group's first).
fn first_bases(replaced: &[(Vec<Arc<Segment>>, Arc<Segment>)]) -> Vec<i64> {
    replaced.iter().map(|(_, new)| new.base_offset()).collect()
}

/// The sealed segments of `view` below `end` in groups of adjacent ones to become one cleaned
/// segment each (Kafka's `groupSegmentsBySize`), with the offset each group ends at: a group
/// grows while its old segments together stay within `segment.bytes` and 4 GiB, and its
/// offsets within `u32` of its base (what the index can address).
fn group_segments(view: &View, end: i64, segment_bytes: u64) -> Vec<(Vec<Arc<Segment>>, i64)> {
    let sealed = view.segments.len().saturating_sub(1);
    let limit = segment_bytes.min(u64::from(u32::MAX));
    let mut groups: Vec<(Vec<Arc<Segment>>, i64)> = Vec::new();
    let mut size = 0u64;
    for (i, segment) in view.segments[..sealed].iter().enumerate() {
        if segment.base_offset() >= end {
            break;
        }
        let segment_size = segment.size();
        let segment_end = segment_end(view, i);
        if let Some((group, group_end)) = groups.last_mut() {
            let group_base = group
                .first()
                .map_or(segment.base_offset(), |s| s.base_offset());
            let fits = size.saturating_add(segment_size) <= limit
                && segment_end.saturating_sub(group_base) <= i64::from(u32::MAX);
            if fits {
                group.push(Arc::clone(segment));
                *group_end = segment_end;
                size += segment_size;
                continue;
            }
        }
        groups.push((vec![Arc::clone(segment)], segment_end));
        size = segment_size;
    }
    groups
}

/// Removes the `.cleaned` files of a pass that will not commit (best effort).
fn discard_cleaned(dir: &Path, bases: &[i64]) {
    for &base in bases {
        let path = cleaned_path(dir, base);
        if let Err(e) = remove_file(&path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(file = %path.display(), error = %e, "could not remove a cleaned segment file");
            }
        }
    }
}

/// A swap whose commit record is written but whose files are not all in place.
#[derive(Debug)]
pub(crate) struct PendingSwap {
    pub record: SwapRecord,
    pub segments: Vec<Arc<Segment>>,
}

impl PartitionLog {
    /// Where cleaning would start and stop now, the dirty ratio, and whether the broker should
    /// clean this log (see [`CleanableInfo`]). Cheap: reads one batch header at most (and the
    /// segments' newest timestamps under `min.compaction.lag.ms`).
    pub fn cleanable_info(&self, now_ms: i64) -> io::Result<CleanableInfo> {
        let config = self.config();
        let checkpoint = read_checkpoint(&self.dir)?.unwrap_or_default();
        cleanable_of(&self.snapshot(), &config, &checkpoint, now_ms)
    }

    /// The dirty ratio now: dirty bytes / (clean + dirty bytes) (see [`CleanableInfo`]).
    pub fn dirty_ratio(&self, now_ms: i64) -> io::Result<f64> {
        Ok(self.cleanable_info(now_ms)?.dirty_ratio)
    }

    /// The first dirty offset the cleaner checkpoint holds (0 when the log was never cleaned).
    pub fn cleaner_checkpoint(&self) -> io::Result<i64> {
        Ok(read_checkpoint(&self.dir)?.map_or(0, |c| c.first_dirty))
    }

    /// Runs one cleaning pass (see the module docs of `cleaner`) when the policy includes
    /// compact and something is cleanable or an earlier pass's delete horizon has passed,
    /// whatever the dirty ratio (choosing logs by
    /// [`cleanable_info`](PartitionLog::cleanable_info) is the caller's part). Every byte read
    /// and written is reported to `throttle` first. `dedupe_buffer_bytes` bounds the key map
    /// (Kafka's `log.cleaner.dedupe.buffer.size` per cleaner thread).
    ///
    /// Returns `None` when there was nothing to do, or when retention deleted a segment the
    /// pass was cleaning (it is then abandoned, nothing changed). Appends, reads and
    /// retention go on while the pass reads and writes; the writer lock is held only for the
    /// swap. Passes on one log are serialized. An `Err` before the swap's commit point leaves
    /// the log as it was; after it, the rest of the swap is done before the log's next change.
    pub fn clean(
        &self,
        now_ms: i64,
        throttle: &mut dyn Throttle,
        dedupe_buffer_bytes: u64,
    ) -> io::Result<Option<CleanStats>> {
        let config = self.config();
        if !config.cleanup_policy.compacts() {
            return Ok(None);
        }
        let _pass_lock = self.cleaning.lock();
        let (view, aborted) = {
            let mut w = self.writer.lock();
            self.finish_cleanup_locked(&mut w)?;
            w.observe(now_ms);
            (self.snapshot(), w.producers.aborted())
        };
        let checkpoint = read_checkpoint(&self.dir)?.unwrap_or_default();
        let before = cleanable_of(&view, &config, &checkpoint, now_ms)?;
        if before.first_dirty_offset >= before.first_uncleanable_offset && !before.deletes_due {
            return Ok(None);
        }
        let capacity = crate::compactor::map_capacity(dedupe_buffer_bytes);
        let compactor = Compactor::new(
            checkpoint,
            config.delete_retention_ms,
            now_ms,
            &aborted,
            (before.first_dirty_offset, before.first_uncleanable_offset),
            capacity,
        );
        let mut pass = Pass {
            config: config.clone(),
            compactor,
            throttle,
            stats: CleanStats {
                bytes_read: 0,
                bytes_written: 0,
                records_kept: 0,
                records_removed: 0,
                segments_scanned: 0,
                segments_cleaned: 0,
                segments_written: 0,
                keys: 0,
                first_offset: view.log_start,
                end_offset: before.first_dirty_offset,
                dirty_ratio_before: before.dirty_ratio,
                dirty_ratio_after: before.dirty_ratio,
            },
        };
        pass.build_map(
            &view,
            before.first_dirty_offset,
            before.first_uncleanable_offset,
        )?;
        let map_end = pass.compactor.map_end();
        pass.stats.keys = pass.compactor.keys();
        pass.stats.end_offset = map_end;

        let groups = group_segments(&view, map_end, config.segment_bytes);
        let mut replaced: Vec<(Vec<Arc<Segment>>, Arc<Segment>)> = Vec::new();
        let mut covered_to = view.log_start;
        for (group, end) in groups {
            pass.stats.segments_scanned += group.len();
            covered_to = end;
            match pass.clean_group(&self.dir, &group) {
                Ok(Some(cleaned)) => replaced.push((group, Arc::new(cleaned))),
                Ok(None) => {}
                Err(e) => {
                    discard_cleaned(&self.dir, &first_bases(&replaced));
                    return Err(e);
                }
            }
        }
        pass.stats.segments_cleaned = replaced.iter().map(|(old, _)| old.len()).sum();
        pass.stats.segments_written = replaced.len();
        pass.stats.records_kept = pass.compactor.records_kept;
        pass.stats.records_removed = pass.compactor.records_removed;
        let new_checkpoint =
            pass.compactor
                .checkpoint()
                .after_pass(map_end, now_ms, config.delete_retention_ms);
        let mut stats = pass.stats;
        if !self.swap(replaced, &new_checkpoint, covered_to, now_ms)? {
            return Ok(None);
        }
        stats.dirty_ratio_after =
            cleanable_of(&self.snapshot(), &config, &new_checkpoint, now_ms)?.dirty_ratio;
        Ok(Some(stats))
    }

    /// Swaps the cleaned segments in (see the module docs) and writes the new checkpoint.
    /// Returns false, changing nothing, when a segment to replace is no longer in the log.
    fn swap(
        &self,
        replaced: Vec<(Vec<Arc<Segment>>, Arc<Segment>)>,
        checkpoint: &CleanerCheckpoint,
        covered_to: i64,
        now_ms: i64,
    ) -> io::Result<bool> {
        let bases = first_bases(&replaced);
        let mut w = self.writer.lock();
        if replaced.is_empty() {
            // Nothing to swap: only the checkpoint moves.
            write_checkpoint(&self.dir, checkpoint)?;
            return Ok(true);
        }
        let view = self.snapshot();
        let still_there = replaced
            .iter()
            .flat_map(|(old, _)| old.iter())
            .all(|old| view.segments.iter().any(|s| Arc::ptr_eq(s, old)));
        if !still_there {
            tracing::info!(dir = %self.dir.display(), "retention deleted segments being cleaned; the cleaning pass is abandoned");
            discard_cleaned(&self.dir, &bases);
            return Ok(false);
        }
        let prepared = self.ensure_snapshot_covers(&mut w, &view, covered_to, now_ms);
        let record = SwapRecord {
            groups: replaced
                .iter()
                .map(|(old, _)| old.iter().map(|s| s.base_offset()).collect())
                .collect(),
            checkpoint: checkpoint.clone(),
        };
        // The `.cleaned` names must be durable before the record that names them.
        let committed = prepared.and_then(|()| sync_dir(&self.dir)).and_then(|()| {
            write_whole(
                &self.dir.join(SWAP_FILE),
                record.encode().as_bytes(),
                true,
                Op::CheckpointWrite,
            )?;
            sync_dir(&self.dir)
        });
        if let Err(e) = committed {
            // Not committed unless the record's name reached the disk; open decides by it.
            if !self.dir.join(SWAP_FILE).exists() {
                discard_cleaned(&self.dir, &bases);
                return Err(e);
            }
        }
        // Committed: readers now get the new segments, whatever the files still need.
        let new_segments: Vec<Arc<Segment>> =
            replaced.iter().map(|(_, new)| Arc::clone(new)).collect();
        {
            let mut v = self.view.write();
            let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(v.segments.len());
            for s in v.segments.iter() {
                match replaced
                    .iter()
                    .find(|(old, _)| old.iter().any(|o| Arc::ptr_eq(o, s)))
                {
                    // The first old segment of a group gives way to the cleaned one, the
                    // others to nothing.
                    Some((old, new)) if old.first().is_some_and(|o| Arc::ptr_eq(o, s)) => {
                        segments.push(Arc::clone(new))
                    }
                    Some(_) => {}
                    None => segments.push(Arc::clone(s)),
                }
            }
            v.segments = Arc::new(segments);
        }
        if let Err(e) = complete_swap(&self.dir, &record, &new_segments) {
            tracing::error!(dir = %self.dir.display(), error = %e, "a committed cleaner swap could not be finished; the log accepts no changes until it is");
            w.cleanup.pending_swap = Some(PendingSwap {
                record,
                segments: new_segments,
            });
            return Err(e);
        }
        tracing::info!(dir = %self.dir.display(), segments = bases.len(), "swapped in cleaned segments");
        Ok(true)
    }

    /// Makes sure a producer snapshot at or past `covered_to` exists, so that opening the log
    /// never rebuilds producer state from cleaned batches.
    fn ensure_snapshot_covers(
        &self,
        w: &mut WriterState,
        view: &View,
        covered_to: i64,
        now_ms: i64,
    ) -> io::Result<()> {
        if w.snapshots
            .last()
            .is_some_and(|&offset| offset >= covered_to)
        {
            return Ok(());
        }
        let active = view.active();
        self.flush_locked(w, &active, now_ms)?;
        self.write_producer_snapshot_locked(w, view.log_end)?;
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_and_a_swap_record_read_back_as_written() {
        let checkpoint = CleanerCheckpoint {
            first_dirty: 42,
            passes: vec![(10, 1_000), (42, 2_000)],
        };
        assert_eq!(
            CleanerCheckpoint::decode(&checkpoint.encode()).unwrap(),
            checkpoint
        );
        let record = SwapRecord {
            groups: vec![vec![0, 3, 5], vec![7]],
            checkpoint,
        };
        assert_eq!(SwapRecord::decode(&record.encode()).unwrap(), record);
        assert!(SwapRecord::decode("segment 0\n").is_err(), "no end line");
        assert!(CleanerCheckpoint::decode("first-dirty x\n").is_err());
    }

    #[test]
    fn the_horizon_of_an_offset_runs_from_the_first_pass_that_covered_it() {
        let checkpoint = CleanerCheckpoint {
            first_dirty: 20,
            passes: vec![(10, 1_000), (20, 5_000)],
        };
        assert!(checkpoint.horizon_passed(3, 1_100, 100));
        assert!(!checkpoint.horizon_passed(3, 1_099, 100));
        assert!(
            !checkpoint.horizon_passed(12, 1_100, 100),
            "covered at 5000"
        );
        assert!(checkpoint.horizon_passed(12, 5_100, 100));
        assert!(
            !checkpoint.horizon_passed(20, i64::MAX, 0),
            "not covered yet"
        );
        let after = checkpoint.after_pass(30, 5_100, 100);
        assert_eq!(after.first_dirty, 30);
        assert_eq!(
            after.passes,
            vec![(30, 5_100)],
            "both earlier horizons passed"
        );
        let after = checkpoint.after_pass(30, 5_099, 100);
        assert_eq!(after.passes, vec![(20, 5_000), (30, 5_099)]);
    }
}
