//! Repairing a damaged partition directory: the explicit, operator-run counterpart of start-up
//! recovery (`starling log repair`).
//!
//! [`repair_partition`] scans every segment (trusting nothing, not even below the recovery
//! point), finds the first damage exactly as start-up recovery defines it, and truncates the log
//! there: the damaged segment file is cut at the damage, every later segment is deleted with its
//! index files, so is every producer-state snapshot past the new end (it describes batches that
//! are gone), and the recovery point is lowered to the new end if it was above it. The
//! [`RepairReport`] says what was removed: files, byte ranges, and the intact batches (count,
//! records, offsets) found in what was dropped. With `dry_run` nothing is changed and the report
//! says what would be removed.
//!
//! Truncating first and deleting later segments highest first means an interrupted repair
//! leaves a log that start-up still refuses and a second repair finishes. A cleaner swap left
//! unfinished by a crash is finished first (a dry run refuses instead), and offset gaps the
//! cleaner left below its checkpoint are not damage.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::failpoint::{self, Op};
use crate::producer_snapshot;
use crate::recovery::{list_dir, survey, Trust};
use crate::scan::{tally_intact, IntactBatches};
use crate::segment::{file_name, remove_file, sync_dir, INDEX_EXT, LOG_EXT, TIMEINDEX_EXT};
use crate::{LogConfig, LogError};

/// What [`repair_partition`] found and did (or, with `dry_run`, would do) in one partition
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The partition directory.
    pub dir: PathBuf,
    /// Whether this was a dry run (nothing changed).
    pub dry_run: bool,
    /// The first damage and what truncating there removes; `None` when the log is intact.
    pub repair: Option<Repair>,
}

/// The first damage in a partition log and what truncating there removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The file holding the first damage (the checkpoint file when no segment file is left).
    pub file: PathBuf,
    /// Byte position of the damage in `file`; everything from here on is removed.
    pub position: u64,
    /// What is wrong there.
    pub reason: String,
    /// The log end offset after the repair: the first offset no longer in the log.
    pub log_end_offset: i64,
    /// The highest offset known to have been in the log beyond the new end (from the intact
    /// batches dropped, or from the recovery point), if any is known.
    pub highest_lost_offset: Option<i64>,
    /// Every byte range removed, in offset order.
    pub dropped: Vec<Dropped>,
    /// Every file deleted (segment data files and their index files, producer-state snapshots
    /// past the new end).
    pub deleted_files: Vec<PathBuf>,
    /// The recovery point before and after the repair.
    pub recovery_point: (i64, i64),
}

/// One byte range a repair removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The segment data file.
    pub file: PathBuf,
    /// The bytes removed.
    pub bytes: Range<u64>,
    /// Whether that is the whole file (it is deleted) rather than its tail (it is truncated).
    pub whole_file: bool,
    /// The intact batches found in those bytes.
    pub intact: IntactBatches,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Truncates the partition log in `dir` at its first damage and reports what was removed; with
/// `dry_run`, only reports. The broker must not be running on the directory.
pub fn repair_partition(dir: &Path, dry_run: bool) -> Result<RepairReport, LogError> {
    if !dir.is_dir() {
        return Err(io_err(dir)(io::Error::new(
            io::ErrorKind::NotFound,
            "not a partition directory",
        )));
    }
    // A cleaning pass cut off by a crash is finished (or undone) first, as open does: its
    // segments are the old set or the new one only once that is done. A dry run changes
    // nothing, so it refuses instead.
    if dir.join(crate::cleaner::SWAP_FILE).exists() {
        if dry_run {
            return Err(io_err(dir)(io::Error::other(
                "a cleaner swap is unfinished here; open the log (or repair without a dry run) \
                 to finish it first",
            )));
        }
        crate::cleaner::recover(dir)?;
    }
    let listing = list_dir(dir)?;
    let recovery_point = checkpoint::read(dir);
    let survey = survey(
        dir,
        &listing.bases,
        recovery_point,
        Trust::Nothing,
        false,
        LogConfig::default().index_interval_bytes,
        crate::cleaner::gaps_below(dir)?,
    )?;
    let Some(damage) = survey.damage else {
        return Ok(RepairReport {
            dir: dir.to_path_buf(),
            dry_run,
            repair: None,
        });
    };

    let mut dropped = Vec::new();
    let mut deleted_files = Vec::new();
    let damaged = damage.segment.and_then(|i| survey.segments.get(i));
    if let Some(s) = damaged.filter(|s| damage.position < s.len) {
        let intact = tally_intact(&s.file, s.len, damage.position, damage.offset)
            .map_err(io_err(&s.path))?;
        dropped.push(Dropped {
            file: s.path.clone(),
            bytes: damage.position..s.len,
            whole_file: false,
            intact,
        });
    }
    for &base in &survey.unread {
        let path = dir.join(file_name(base, LOG_EXT));
        let file = File::open(&path).map_err(io_err(&path))?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        let intact = tally_intact(&file, len, 0, base).map_err(io_err(&path))?;
        dropped.push(Dropped {
            file: path.clone(),
            bytes: 0..len,
            whole_file: true,
            intact,
        });
        deleted_files.push(path);
        for ext in [INDEX_EXT, TIMEINDEX_EXT] {
            let index = dir.join(file_name(base, ext));
            if index.exists() {
                deleted_files.push(index);
            }
        }
    }
    let stale_snapshots: Vec<PathBuf> = listing
        .snapshots
        .iter()
        .filter(|&&offset| offset > damage.offset)
        .map(|&offset| producer_snapshot::path(dir, offset))
        .collect();
    deleted_files.extend(stale_snapshots.iter().cloned());
    let highest_lost_offset = dropped
        .iter()
        .filter_map(|d| d.intact.offsets.map(|(_, last)| last))
        .chain((recovery_point > damage.offset).then(|| recovery_point - 1))
        .filter(|&last| last >= damage.offset)
        .max();
    let new_recovery_point = recovery_point.min(damage.offset);
    let repair = Repair {
        file: damage.file.clone(),
        position: damage.position,
        reason: damage.reason.clone(),
        log_end_offset: damage.offset,
        highest_lost_offset,
        dropped,
        deleted_files,
        recovery_point: (recovery_point, new_recovery_point),
    };

    if !dry_run {
        if let Some(s) = damaged.filter(|s| damage.position < s.len) {
            let file = OpenOptions::new()
                .write(true)
                .open(&s.path)
                .map_err(io_err(&s.path))?;
            if let Some(fault) = failpoint::inject(Op::SegmentTruncate) {
                return Err(io_err(&s.path)(fault.error));
            }
            file.set_len(damage.position).map_err(io_err(&s.path))?;
            file.sync_all().map_err(io_err(&s.path))?;
        }
        for &base in survey.unread.iter().rev() {
            for ext in [LOG_EXT, INDEX_EXT, TIMEINDEX_EXT] {
                let path = dir.join(file_name(base, ext));
                match remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(io_err(&path)(e));
                    }
                    _ => {}
                }
            }
        }
        for path in &stale_snapshots {
            match remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(path)(e)),
                _ => {}
            }
        }
        sync_dir(dir).map_err(io_err(dir))?;
        if new_recovery_point != recovery_point {
            checkpoint::write(dir, new_recovery_point).map_err(io_err(dir))?;
        }
        tracing::warn!(
            dir = %dir.display(),
            file = %repair.file.display(),
            position = repair.position,
            log_end_offset = repair.log_end_offset,
            "repaired partition log: truncated at the first damage"
        );
    }
    Ok(RepairReport {
        dir: dir.to_path_buf(),
        dry_run,
        repair: Some(repair),
    })
}
