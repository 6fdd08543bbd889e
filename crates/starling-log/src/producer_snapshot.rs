//! Producer-state snapshot files, as Kafka keeps them: `{offset:020}.snapshot` in the partition
//! directory holds [`ProducerStates::encode`] of the state as of that offset (every batch below
//! it recorded), so opening a log reads only the batch headers after the newest snapshot
//! instead of every batch from the log start.
//!
//! The log writes one when it rolls a segment (at the new segment's base), when it is closed
//! (at the log end) and before retention deletes segments that no snapshot covers yet; each is
//! replaced whole and fsynced like the checkpoint and the index files, and only the newest
//! [`KEEP`] are kept. Because a snapshot carries every producer it knows, a producer whose
//! batches retention deleted is still remembered after a restart (until
//! `producer.id.expiration.ms`), as in Kafka.
//!
//! [`load`] picks the snapshot at open: one past the recovered log end describes batches that
//! are gone (the tail was cut after it was written), so it is deleted, durably, before anything
//! can be appended past its offset; one that does not decode is deleted and the next older one
//! is tried.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::failpoint::Op;
use crate::producer_state::ProducerStates;
use crate::segment::{file_name, remove_file, sync_dir, write_whole};
use crate::LogError;

/// Extension of snapshot files.
pub(crate) const SNAPSHOT_EXT: &str = "snapshot";

/// How many snapshots a partition keeps (the newest).
pub(crate) const KEEP: usize = 2;

/// The snapshot file at `offset`.
pub(crate) fn path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(file_name(offset, SNAPSHOT_EXT))
}

/// Writes the snapshot of `states` at `offset`: replaced whole and fsynced. The caller fsyncs
/// the directory.
pub(crate) fn write(dir: &Path, offset: i64, states: &ProducerStates) -> io::Result<()> {
    write_whole(
        &path(dir, offset),
        &states.encode(offset),
        true,
        Op::SnapshotWrite,
    )
}

/// Deletes every snapshot in `offsets` but the newest [`KEEP`], taking each deleted one out of
/// the set. A failure is only logged (the file stays in the set, to be tried again next time):
/// an old snapshot left behind is harmless, since a newer one is always preferred.
pub(crate) fn prune(dir: &Path, offsets: &mut BTreeSet<i64>) {
    let old: Vec<i64> = offsets.iter().rev().skip(KEEP).copied().collect();
    for offset in old {
        let file = path(dir, offset);
        match remove_file(&file) {
            Ok(()) => {
                offsets.remove(&offset);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                offsets.remove(&offset);
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "could not delete an old producer snapshot");
            }
        }
    }
}

/// What [`load`] found.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The snapshot read: its offset and the state it holds.
    pub snapshot: Option<(i64, ProducerStates)>,
    /// The offsets of the snapshot files left in the directory.
    pub kept: BTreeSet<i64>,
}

/// Picks the snapshot to start from among the files at `offsets` in `dir`, for a log that ends
/// at `log_end`: deletes those past the end (and fsyncs the directory; failing to is an error,
/// since the log could otherwise grow past a snapshot that describes other batches), then reads
/// the newest of the rest, going to the next older one while a snapshot does not decode (it is
/// logged and deleted) or cannot be read (logged and left).
pub(crate) fn load(dir: &Path, offsets: &[i64], log_end: i64) -> Result<Loaded, LogError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LogError::Io { path, source }
    };
    let mut kept: BTreeSet<i64> = offsets.iter().copied().collect();
    let stale: Vec<i64> = kept.range(log_end.saturating_add(1)..).copied().collect();
    for &offset in &stale {
        let file = path(dir, offset);
        tracing::warn!(
            file = %file.display(),
            log_end_offset = log_end,
            "deleting a producer snapshot past the log end (the log was cut back after it was written)"
        );
        match remove_file(&file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&file)(e)),
            _ => {}
        }
        kept.remove(&offset);
    }
    if !stale.is_empty() {
        sync_dir(dir).map_err(io_err(dir))?;
    }

    let candidates: Vec<i64> = kept.iter().rev().copied().collect();
    for offset in candidates {
        let file = path(dir, offset);
        let bytes = match fs::read(&file) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot read a producer snapshot; trying an older one");
                continue;
            }
        };
        let reason = match ProducerStates::decode(&bytes) {
            Ok((at, states)) if at == offset => {
                return Ok(Loaded {
                    snapshot: Some((offset, states)),
                    kept,
                });
            }
            Ok((at, _)) => format!("it says it was taken at offset {at}"),
            Err(reason) => reason,
        };
        tracing::warn!(
            file = %file.display(),
            %reason,
            "deleting a damaged producer snapshot; trying an older one"
        );
        match remove_file(&file) {
            Ok(()) => {
                kept.remove(&offset);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                kept.remove(&offset);
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "could not delete a damaged producer snapshot");
            }
        }
    }
    Ok(Loaded {
        snapshot: None,
        kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer_state::ProducerBatch;

    fn states_with(producer_id: i64) -> ProducerStates {
        let mut s = ProducerStates::new();
        s.record(&ProducerBatch {
            producer_id,
            epoch: 0,
            base_sequence: 0,
            last_offset_delta: 0,
            first_offset: 0,
            max_timestamp: 1,
            is_transactional: false,
        });
        s
    }

    #[test]
    fn the_newest_snapshot_within_the_log_is_loaded_and_later_ones_are_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(dir, 10, &states_with(1)).unwrap();
        write(dir, 20, &states_with(2)).unwrap();
        write(dir, 30, &states_with(3)).unwrap();
        let loaded = load(dir, &[10, 20, 30], 25).unwrap();
        assert_eq!(loaded.snapshot, Some((20, states_with(2))));
        assert_eq!(loaded.kept, BTreeSet::from([10, 20]));
        assert!(!path(dir, 30).exists());
        // At exactly the log end it is current.
        assert_eq!(load(dir, &[10, 20], 20).unwrap().snapshot.unwrap().0, 20);
    }

    #[test]
    fn a_snapshot_whose_content_names_another_offset_is_not_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(dir, 10, &states_with(1)).unwrap();
        fs::write(path(dir, 20), states_with(2).encode(15)).unwrap();
        let loaded = load(dir, &[10, 20], 40).unwrap();
        assert_eq!(loaded.snapshot, Some((10, states_with(1))));
        assert!(!path(dir, 20).exists());
    }

    #[test]
    fn pruning_keeps_the_newest_two() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut offsets = BTreeSet::new();
        for offset in [5, 1, 9, 7] {
            write(dir, offset, &ProducerStates::new()).unwrap();
            offsets.insert(offset);
        }
        prune(dir, &mut offsets);
        assert_eq!(offsets, BTreeSet::from([7, 9]));
        for (offset, exists) in [(1, false), (5, false), (7, true), (9, true)] {
            assert_eq!(path(dir, offset).exists(), exists, "{offset}");
        }
    }
}
