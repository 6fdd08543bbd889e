//! The `recovery-point` checkpoint: the offset below which a partition's data was written and
//! fsynced before the file was (atomically) replaced.
//!
//! It moves up when a segment is sealed (to the new segment's base), when the log is closed
//! (to the log end offset) and after a recovery; only `starling log repair` moves it down.
//! Start-up recovery trusts sealed segments below it and treats any damage below it as
//! corruption, never as a torn write.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::failpoint::{self, Injected, Op};
use crate::segment::sync_dir;

/// Name of the checkpoint file.
pub(crate) const CHECKPOINT_FILE: &str = "recovery-point";
/// The temporary file a new checkpoint is written to before the rename.
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
    let tmp = dir.join(CHECKPOINT_TMP);
    let text = format!("{offset}\n");
    let fault = failpoint::inject(Op::CheckpointWrite);
    if let Some(Injected {
        partial: false,
        error,
    }) = fault
    {
        return Err(error);
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    if let Some(Injected { error, .. }) = fault {
        file.write_all(&text.as_bytes()[..text.len() / 2])?;
        return Err(error);
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    if let Some(fault) = failpoint::inject(Op::Rename) {
        return Err(fault.error);
    }
    fs::rename(&tmp, dir.join(CHECKPOINT_FILE))?;
    sync_dir(dir)
}
