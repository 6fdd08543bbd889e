//! The `recovery-point` checkpoint: the offset below which a partition's data was written and
//! fsynced before the file was (atomically) replaced. Also the `log-start-offset` file: where
//! DeleteRecords moved the log start inside the first segment (without it the log starts at its
//! first segment's base offset).
//!
//! It moves up when a segment is sealed (to the new segment's base), when the log is closed
//! (to the log end offset) and after a recovery; only `starling log repair` moves it down.
//! Start-up recovery trusts sealed segments below it and treats any damage below it as
//! corruption, never as a torn write.

use std::fs;
use std::io;
use std::path::Path;

use crate::failpoint::Op;
use crate::segment::{sync_dir, write_whole};

/// Name of the checkpoint file.
pub(crate) const CHECKPOINT_FILE: &str = "recovery-point";
/// The temporary file a new checkpoint is written to before the rename (the checkpoint's
/// name with [`crate::segment::TMP_SUFFIX`], as for every file replaced whole).
pub(crate) const CHECKPOINT_TMP: &str = "recovery-point.tmp";

/// Name of the log start offset file.
pub(crate) const LOG_START_FILE: &str = "log-start-offset";
/// Its temporary file (see [`CHECKPOINT_TMP`]).
pub(crate) const LOG_START_TMP: &str = "log-start-offset.tmp";

/// The log start offset DeleteRecords last moved the log to, if any (an unreadable file is
/// reported and ignored: the log then starts at its first segment).
pub(crate) fn read_log_start(dir: &Path) -> Option<i64> {
    let path = dir.join(LOG_START_FILE);
    let text = fs::read_to_string(&path).ok()?;
    match text.trim().parse::<i64>() {
        Ok(offset) if offset >= 0 => Some(offset),
        _ => {
            tracing::warn!(file = %path.display(), "unreadable log start offset; the log starts at its first segment");
            None
        }
    }
}

/// Atomically replaces the log start offset file.
pub(crate) fn write_log_start(dir: &Path, offset: i64) -> io::Result<()> {
    write_whole(
        &dir.join(LOG_START_FILE),
        format!("{offset}\n").as_bytes(),
        true,
        Op::CheckpointWrite,
    )?;
    sync_dir(dir)
}

/// Reads the checkpoint; a missing or unreadable one means "trust nothing" (0).
pub(crate) fn read(dir: &Path) -> i64 {
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
pub(crate) fn write(dir: &Path, offset: i64) -> io::Result<()> {
    let text = format!("{offset}\n");
    write_whole(
        &dir.join(CHECKPOINT_FILE),
        text.as_bytes(),
        true,
        Op::CheckpointWrite,
    )?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_checkpoint_is_the_one_write_whole_leaves_behind() {
        assert_eq!(
            CHECKPOINT_TMP,
            format!("{CHECKPOINT_FILE}{}", crate::segment::TMP_SUFFIX)
        );
    }

    #[test]
    fn a_written_log_start_is_read_back_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_log_start(dir.path()), None);
        write_log_start(dir.path(), 77).unwrap();
        assert_eq!(read_log_start(dir.path()), Some(77));
        assert_eq!(
            LOG_START_TMP,
            format!("{LOG_START_FILE}{}", crate::segment::TMP_SUFFIX)
        );
    }

    #[test]
    fn a_written_checkpoint_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1234).unwrap();
        assert_eq!(read(dir.path()), 1234);
        assert!(!dir.path().join(CHECKPOINT_TMP).exists());
    }
}
