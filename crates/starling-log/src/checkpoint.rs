//! The `recovery-point` checkpoint: the offset below which a partition's data was written and
//! fsynced before the file was (atomically) replaced.
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
    fn a_written_checkpoint_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1234).unwrap();
        assert_eq!(read(dir.path()), 1234);
        assert!(!dir.path().join(CHECKPOINT_TMP).exists());
    }
}
