//! Opening a partition directory: loading segments and crash recovery.
//!
//! [`survey`] reads the segments in offset order and stops at the first damage. Sealed
//! segments below the `recovery-point` checkpoint (the offset below which everything was
//! written and fsynced) are trusted: their index files are loaded and only their tail is
//! checked ([`check_trusted_tail`]); if that fails they are scanned like the others. Every
//! other segment is scanned batch by batch. Offsets must run on without a gap or an overlap
//! from one segment file to the next, and the log must reach the recovery point; the one
//! exception is the gaps the cleaner leaves, accepted below its checkpoint's first dirty offset.
//! Before any of this, a cleaning pass a crash cut off is finished or undone
//! (`cleaner::recover`).
//!
//! Only one kind of damage is an interrupted write, truncated on open with a log line saying
//! exactly what was cut ([`DamageKind::TornTail`]): a bad or partial batch in the last segment,
//! at or above the recovery point, with no intact batch anywhere after it. Everything else is
//! acknowledged data gone bad: [`open_dir`] refuses with [`LogError::Corruption`] naming the
//! file and the byte position, and `starling log repair` (see `repair`) is the explicit way to
//! truncate there.
//!
//! [`list_dir`] also finds the producer-state snapshots (`.snapshot`); which one is used, and
//! which are stale after a truncation, is decided once the log end is known
//! (`producer_snapshot::load`). Temporary files of any file replaced whole (checkpoint, index,
//! snapshot) are removed.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::checkpoint::{self, CHECKPOINT_FILE, CHECKPOINT_TMP, LOG_START_TMP};
use crate::failpoint::{self, Op};
use crate::index::SegmentIndex;
use crate::producer_snapshot::SNAPSHOT_EXT;
use crate::scan::{check_trusted_tail, gap_allowed, next_intact_batch, scan_segment, ChunkReader};
use crate::segment::{
    file_name, remove_file, sync_dir, Segment, SegmentState, INDEX_EXT, LOG_EXT, TIMEINDEX_EXT,
    TMP_SUFFIX,
};
use crate::{LogConfig, LogError};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Parses `{20 digits}.{ext}`.
fn parse_segment_name(name: &str) -> Option<(i64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

/// What a partition directory holds.
pub(crate) struct Listing {
    /// Base offsets of the segment data files, ascending.
    pub bases: Vec<i64>,
    /// Index files without a data file.
    pub orphan_indexes: Vec<PathBuf>,
    /// Offsets of the producer-state snapshot files, ascending.
    pub snapshots: Vec<i64>,
    /// Temporary files (of the checkpoint, an index or a snapshot) left by a crash.
    pub temp_files: Vec<PathBuf>,
}

pub(crate) fn list_dir(dir: &Path) -> Result<Listing, LogError> {
    let mut logs = BTreeSet::new();
    let mut index_files = Vec::new();
    let mut snapshots = BTreeSet::new();
    let mut temp_files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == CHECKPOINT_TMP || name == LOG_START_TMP {
            temp_files.push(entry.path());
            continue;
        }
        if let Some(stem) = name.strip_suffix(TMP_SUFFIX) {
            if matches!(
                parse_segment_name(stem),
                Some((_, INDEX_EXT | TIMEINDEX_EXT | SNAPSHOT_EXT))
            ) {
                temp_files.push(entry.path());
            }
            continue;
        }
        match parse_segment_name(name) {
            Some((base, LOG_EXT)) => {
                logs.insert(base);
            }
            Some((base, INDEX_EXT | TIMEINDEX_EXT)) => index_files.push((base, entry.path())),
            Some((offset, SNAPSHOT_EXT)) => {
                snapshots.insert(offset);
            }
            _ => {}
        }
    }
    let orphan_indexes = index_files
        .into_iter()
        .filter(|(base, _)| !logs.contains(base))
        .map(|(_, path)| path)
        .collect();
    Ok(Listing {
        bases: logs.into_iter().collect(),
        orphan_indexes,
        snapshots: snapshots.into_iter().collect(),
        temp_files,
    })
}

/// Which sealed segments a survey may take on trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trust {
    /// Sealed segments wholly below the recovery point (start-up).
    BelowRecoveryPoint,
    /// None: every segment is scanned (repair).
    Nothing,
}

/// One segment file as the survey found it.
pub(crate) struct Surveyed {
    pub base: i64,
    pub path: PathBuf,
    pub file: File,
    /// Length of the file.
    pub len: u64,
    /// Bytes of intact batches from the start of the file.
    pub valid_len: u64,
    /// One past the last intact offset.
    pub next_offset: i64,
    pub index: SegmentIndex,
    pub first_timestamp: Option<i64>,
    /// Whether the file was scanned (rather than trusted with its index files).
    pub scanned: bool,
}

/// How a log is damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DamageKind {
    /// A bad or partial batch at the end of the last segment, at or above the recovery point,
    /// with nothing intact after it: a write the crash interrupted.
    TornTail,
    /// A bad batch anywhere else: below the recovery point, followed by an intact batch, or
    /// in a segment that later segments follow.
    BadBatch,
    /// The next segment file does not start at the offset this one ends at.
    Discontinuity,
    /// The log ends, intact, below the recovery point: acknowledged data is missing.
    EndsBelowRecoveryPoint,
}

/// The first damage in a log.
#[derive(Debug, Clone)]
pub(crate) struct Damage {
    /// Index in [`Survey::segments`] of the segment it is in (`None`: there is no segment).
    pub segment: Option<usize>,
    /// The segment file (or the checkpoint file, when there is no segment).
    pub file: PathBuf,
    /// Where the intact data ends in `file`.
    pub position: u64,
    /// The first offset that is not intact: where the log would end if cut here.
    pub offset: i64,
    pub reason: String,
    pub kind: DamageKind,
}

impl Damage {
    pub fn into_error(self) -> LogError {
        LogError::Corruption {
            file: self.file,
            position: self.position,
            reason: self.reason,
        }
    }
}

/// What [`survey`] found: the segments read (up to and including a damaged one) and the
/// first damage.
pub(crate) struct Survey {
    pub segments: Vec<Surveyed>,
    /// Base offsets of the segment files after the damaged one, which were not read.
    pub unread: Vec<i64>,
    pub damage: Option<Damage>,
}

/// Reads the segments `bases` of `dir` in order until the first damage.
pub(crate) fn survey(
    dir: &Path,
    bases: &[i64],
    recovery_point: i64,
    trust: Trust,
    writable: bool,
    index_interval: u32,
    gaps_below: i64,
) -> Result<Survey, LogError> {
    let mut segments: Vec<Surveyed> = Vec::with_capacity(bases.len());
    if bases.is_empty() && recovery_point > 0 {
        let damage = Damage {
            segment: None,
            file: dir.join(CHECKPOINT_FILE),
            position: 0,
            offset: 0,
            reason: format!(
                "no segment files, but the recovery point {recovery_point} says offsets below \
                 it were written and flushed"
            ),
            kind: DamageKind::EndsBelowRecoveryPoint,
        };
        return Ok(Survey {
            segments,
            unread: Vec::new(),
            damage: Some(damage),
        });
    }
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let path = dir.join(file_name(base, LOG_EXT));
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(&path)
            .map_err(io_err(&path))?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        let here = segments.len();
        let damage = |position: u64, offset: i64, reason: String, kind: DamageKind| Damage {
            segment: Some(here),
            file: path.clone(),
            position,
            offset,
            reason,
            kind,
        };

        let trusted = trust == Trust::BelowRecoveryPoint
            && next_base.is_some_and(|next| next <= recovery_point);
        if let (true, Some(next)) = (trusted, next_base) {
            match load_indexes(&path, base, next, len).and_then(|index| {
                check_trusted_tail(&file, len, base, next, &index, gaps_below).map(|()| index)
            }) {
                Ok(index) => {
                    segments.push(Surveyed {
                        base,
                        path,
                        file,
                        len,
                        valid_len: len,
                        next_offset: next,
                        index,
                        first_timestamp: None,
                        scanned: false,
                    });
                    continue;
                }
                Err(reason) => {
                    tracing::warn!(file = %path.display(), %reason, "rescanning a sealed segment and rebuilding its indexes");
                }
            }
        }

        let outcome =
            scan_segment(&file, len, base, index_interval, gaps_below).map_err(io_err(&path))?;
        let found = match (&outcome.stop, next_base) {
            (Some((position, reason)), Some(_)) => Some(damage(
                *position,
                outcome.next_offset,
                format!("{reason}, in a segment that later segments follow"),
                DamageKind::BadBatch,
            )),
            (Some((position, reason)), None) => {
                let expected = outcome.next_offset;
                if expected < recovery_point {
                    Some(damage(
                        *position,
                        expected,
                        format!(
                            "{reason}; offset {expected} is below the recovery point \
                             {recovery_point}, so it was acknowledged and flushed"
                        ),
                        DamageKind::BadBatch,
                    ))
                } else {
                    let mut reader = ChunkReader::new(&file, len);
                    match next_intact_batch(
                        &mut reader,
                        len,
                        position + 1,
                        expected.saturating_add(1),
                    )
                    .map_err(io_err(&path))?
                    {
                        Some((at, h)) => Some(damage(
                            *position,
                            expected,
                            format!(
                                "{reason}, and an intact batch (offsets {}..={}) follows at \
                                 byte position {at}",
                                h.base_offset,
                                h.last_offset()
                            ),
                            DamageKind::BadBatch,
                        )),
                        None => Some(damage(
                            *position,
                            expected,
                            reason.clone(),
                            DamageKind::TornTail,
                        )),
                    }
                }
            }
            (None, Some(next))
                if outcome.next_offset != next
                    && !gap_allowed(outcome.next_offset, next, gaps_below) =>
            {
                let next_path = dir.join(file_name(next, LOG_EXT));
                let what = if outcome.next_offset < next {
                    format!(
                        "offsets {}..{next} are in no segment file",
                        outcome.next_offset
                    )
                } else {
                    format!("offsets {next}..{} are in both", outcome.next_offset)
                };
                Some(damage(
                    outcome.valid_len,
                    outcome.next_offset,
                    format!(
                        "segment ends at offset {} but the next segment {} starts at offset \
                         {next}: {what}",
                        outcome.next_offset,
                        next_path.display()
                    ),
                    DamageKind::Discontinuity,
                ))
            }
            (None, None) if outcome.next_offset < recovery_point => Some(damage(
                outcome.valid_len,
                outcome.next_offset,
                format!(
                    "the log ends at offset {} but the recovery point {recovery_point} says \
                     offsets below it were written and flushed: offsets {}..{recovery_point} are \
                     missing",
                    outcome.next_offset, outcome.next_offset
                ),
                DamageKind::EndsBelowRecoveryPoint,
            )),
            (None, _) => None,
        };
        segments.push(Surveyed {
            base,
            path,
            file,
            len,
            valid_len: outcome.valid_len,
            next_offset: outcome.next_offset,
            index: outcome.index,
            first_timestamp: outcome.first_timestamp,
            scanned: true,
        });
        if let Some(damage) = found {
            return Ok(Survey {
                segments,
                unread: bases[i + 1..].to_vec(),
                damage: Some(damage),
            });
        }
    }
    Ok(Survey {
        segments,
        unread: Vec::new(),
        damage: None,
    })
}

/// The segments of a freshly opened log.
pub(crate) struct Recovered {
    pub segments: Vec<Segment>,
    pub recovery_point: i64,
    /// Offsets of the producer-state snapshot files found, ascending (not checked yet: see
    /// `producer_snapshot::load`).
    pub snapshots: Vec<i64>,
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

    // A cleaning pass cut off by a crash is finished or undone before anything is read.
    let gaps_below = crate::cleaner::recover(dir)?;
    let listing = list_dir(dir)?;
    for tmp in &listing.temp_files {
        let _ = remove_file(tmp);
    }
    for path in &listing.orphan_indexes {
        tracing::warn!(file = %path.display(), "removing index file without a segment");
        let _ = remove_file(path);
    }

    let checkpoint = checkpoint::read(dir);
    let mut survey = survey(
        dir,
        &listing.bases,
        checkpoint,
        Trust::BelowRecoveryPoint,
        true,
        config.index_interval_bytes,
        gaps_below,
    )?;
    match survey.damage.take() {
        None => {}
        Some(damage) if damage.kind == DamageKind::TornTail => {
            let Some(last) = damage.segment.and_then(|i| survey.segments.get_mut(i)) else {
                return Err(damage.into_error());
            };
            tracing::warn!(
                file = %last.path.display(),
                from_byte = damage.position,
                to_byte = last.len,
                removed_bytes = last.len - damage.position,
                log_end_offset = damage.offset,
                reason = %damage.reason,
                "truncating a torn write at the end of the log: removing bytes {}..{} ({} bytes) of {}; the log now ends at offset {}",
                damage.position,
                last.len,
                last.len - damage.position,
                last.path.display(),
                damage.offset,
            );
            if let Some(fault) = failpoint::inject(Op::SegmentTruncate) {
                return Err(io_err(&last.path)(fault.error));
            }
            last.file
                .set_len(damage.position)
                .map_err(io_err(&last.path))?;
            last.file.sync_all().map_err(io_err(&last.path))?;
            last.len = damage.position;
        }
        Some(damage) => return Err(damage.into_error()),
    }

    let mut segments = Vec::with_capacity(survey.segments.len().max(1));
    if survey.segments.is_empty() {
        segments.push(Segment::create(dir, 0).map_err(io_err(dir))?);
    }
    let count = survey.segments.len();
    for (i, s) in survey.segments.into_iter().enumerate() {
        let sealed = i + 1 < count;
        let mut index = s.index;
        if sealed && s.scanned {
            index.seal();
        }
        let first_append_ms = match s.first_timestamp {
            Some(ts) if ts >= 0 => Some(ts.min(now_ms)),
            Some(_) => Some(now_ms),
            None => None,
        };
        let state = SegmentState {
            size: s.valid_len,
            next_offset: s.next_offset,
            index,
            first_append_ms,
        };
        let segment = Segment::new(s.base, s.path, s.file, state);
        if s.scanned {
            segment
                .write_index_files(sealed)
                .map_err(io_err(segment.log_path()))?;
            if sealed {
                // Validated now; make sure it is on disk before the checkpoint covers it.
                segment.sync_data().map_err(io_err(segment.log_path()))?;
            }
        }
        segments.push(segment);
    }
    sync_dir(dir).map_err(io_err(dir))?;

    // Every sealed segment is now known-good and fsynced. A checkpoint beyond
    // the last segment's base (written at close) already says as much.
    let last_base = segments.last().map_or(0, Segment::base_offset);
    let recovery_point = checkpoint.max(last_base);
    if checkpoint < last_base {
        checkpoint::write(dir, last_base).map_err(io_err(dir))?;
    }
    Ok(Recovered {
        segments,
        recovery_point,
        snapshots: listing.snapshots,
    })
}

/// Loads and checks the index files of a trusted sealed segment.
fn load_indexes(log_path: &Path, base: i64, next: i64, len: u64) -> Result<SegmentIndex, String> {
    let index_path: PathBuf = log_path.with_extension(INDEX_EXT);
    let time_path: PathBuf = log_path.with_extension(TIMEINDEX_EXT);
    let offsets = fs::read(&index_path).map_err(|e| format!("{}: {e}", index_path.display()))?;
    let times = fs::read(&time_path).map_err(|e| format!("{}: {e}", time_path.display()))?;
    SegmentIndex::load(base, next, len, &offsets, &times)
}
