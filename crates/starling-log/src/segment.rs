//! One segment: a `.log` file of stored batches plus its in-memory indexes.
//!
//! A [`Segment`] is shared as an `Arc` between the writer and any number of
//! readers. The file is only ever accessed with positional I/O (`read_at` /
//! `write_at`), so readers need no lock while they read; the small mutable
//! part ([`SegmentState`]: committed size, next offset, indexes) sits behind a
//! mutex that is held only to copy a few numbers or update them after a write.
//! A segment that retention deletes stays readable by readers that still hold
//! it, because its file descriptor stays open.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use parking_lot::{Mutex, MutexGuard};

use crate::batch::{BatchHeader, HEADER_LEN, LOG_OVERHEAD, MIN_BATCH_LENGTH};
use crate::failpoint::{self, Injected, Op};
use crate::index::SegmentIndex;

/// Extension of segment data files.
pub(crate) const LOG_EXT: &str = "log";
/// Extension of offset index files.
pub(crate) const INDEX_EXT: &str = "index";
/// Extension of time index files.
pub(crate) const TIMEINDEX_EXT: &str = "timeindex";

/// `{base_offset:020}.{ext}`, Kafka's naming.
pub(crate) fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// The mutable part of a segment.
#[derive(Debug)]
pub(crate) struct SegmentState {
    /// Bytes of complete, committed batches.
    pub size: u64,
    /// One past the last offset stored (the base offset when empty).
    pub next_offset: i64,
    pub index: SegmentIndex,
    /// When this segment's age for `segment.ms` started: the broker time of
    /// its first append (after a restart: the first batch's timestamp).
    pub first_append_ms: Option<i64>,
}

/// Whether a read can continue into the next segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadProgress {
    /// This segment has nothing more to give and the budget is not spent.
    Exhausted,
    /// The read is complete (budget spent or the log end reached).
    Done,
}

#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    file: File,
    state: Mutex<SegmentState>,
}

fn corrupt(path: &Path, pos: u64, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "corrupt batch in {} at byte position {pos}: {what}",
            path.display()
        ),
    )
}

impl Segment {
    pub fn new(base_offset: i64, log_path: PathBuf, file: File, state: SegmentState) -> Segment {
        Segment {
            base_offset,
            log_path,
            file,
            state: Mutex::new(state),
        }
    }

    /// Creates the files of a new, empty segment (an existing file of that
    /// name can only be a leftover of a failed roll and is emptied). On
    /// failure some of its files may exist; [`remove_files`] clears them.
    pub fn create(dir: &Path, base_offset: i64) -> io::Result<Segment> {
        let log_path = dir.join(file_name(base_offset, LOG_EXT));
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
            .open(&log_path)?;
        if let Some(Injected { error, .. }) = fault {
            return Err(error);
        }
        let segment = Segment::new(
            base_offset,
            log_path,
            file,
            SegmentState {
                size: 0,
                next_offset: base_offset,
                index: SegmentIndex::new(base_offset),
                first_append_ms: None,
            },
        );
        segment.write_index_files(false)?;
        Ok(segment)
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn index_path(&self) -> PathBuf {
        self.log_path.with_extension(INDEX_EXT)
    }

    pub fn timeindex_path(&self) -> PathBuf {
        self.log_path.with_extension(TIMEINDEX_EXT)
    }

    pub fn state(&self) -> MutexGuard<'_, SegmentState> {
        self.state.lock()
    }

    pub fn size(&self) -> u64 {
        self.state.lock().size
    }

    /// Writes `data` at `pos` with one positional write (no user-space buffer).
    /// On failure part of `data` may have landed.
    pub fn write_at(&self, data: &[u8], pos: u64) -> io::Result<()> {
        if let Some(fault) = failpoint::inject(Op::SegmentWrite) {
            if fault.partial {
                self.file.write_all_at(&data[..data.len() / 2], pos)?;
            }
            return Err(fault.error);
        }
        self.file.write_all_at(data, pos)
    }

    /// Cuts the data file to `len` bytes.
    pub fn truncate_file(&self, len: u64) -> io::Result<()> {
        if let Some(fault) = failpoint::inject(Op::SegmentTruncate) {
            return Err(fault.error);
        }
        self.file.set_len(len)
    }

    pub fn sync_data(&self) -> io::Result<()> {
        if let Some(fault) = failpoint::inject(Op::SegmentSync) {
            return Err(fault.error);
        }
        self.file.sync_data()
    }

    /// Rewrites both index files from memory, optionally fsyncing them.
    pub fn write_index_files(&self, sync: bool) -> io::Result<()> {
        let index = self.state.lock().index.clone();
        self.write_index_files_of(&index, sync)
    }

    fn write_index_files_of(&self, index: &SegmentIndex, sync: bool) -> io::Result<()> {
        write_whole(
            &self.index_path(),
            &index.encode_offsets(),
            sync,
            Op::IndexWrite,
        )?;
        write_whole(
            &self.timeindex_path(),
            &index.encode_times(),
            sync,
            Op::IndexWrite,
        )
    }

    /// Makes the segment durable as a sealed segment: index files with the
    /// final time index entry written and fsynced, data fsynced. Returns the
    /// sealed index for the caller to install with [`install_index`] once the
    /// rest of the roll succeeded; the in-memory index is left alone here.
    ///
    /// [`install_index`]: Segment::install_index
    pub fn seal_files(&self) -> io::Result<SegmentIndex> {
        let mut index = self.state.lock().index.clone();
        index.seal();
        self.write_index_files_of(&index, true)?;
        if let Some(fault) = failpoint::inject(Op::SegmentSync) {
            return Err(fault.error);
        }
        self.file.sync_all()?;
        Ok(index)
    }

    /// Replaces the in-memory index (with the one [`seal_files`](Segment::seal_files) returned).
    pub fn install_index(&self, index: SegmentIndex) {
        self.state.lock().index = index;
    }

    /// The time retention compares against: the largest batch timestamp, or
    /// the file's modification time when no batch carries one.
    pub fn newest_timestamp_ms(&self) -> io::Result<i64> {
        if let Some((ts, _)) = self.state.lock().index.max_timestamp() {
            if ts >= 0 {
                return Ok(ts);
            }
        }
        let modified = self.file.metadata()?.modified()?;
        Ok(modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// Removes the segment's files (the open descriptor keeps serving
    /// readers). Once the data file is gone the segment is gone; failing to
    /// remove an index file is only logged, since open removes orphans.
    pub fn delete_files(&self) -> io::Result<()> {
        match remove_file(&self.log_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for path in [self.index_path(), self.timeindex_path()] {
            if let Err(e) = remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(file = %path.display(), error = %e, "could not delete index file");
                }
            }
        }
        Ok(())
    }

    /// Reads and sanity-checks the header of the batch at `pos`, which must
    /// lie entirely within the first `size` bytes.
    pub fn read_header(&self, pos: u64, size: u64) -> io::Result<BatchHeader> {
        if pos.saturating_add(HEADER_LEN as u64) > size {
            return Err(corrupt(
                &self.log_path,
                pos,
                "batch header runs past the segment end",
            ));
        }
        let mut buf = [0u8; HEADER_LEN];
        self.file.read_exact_at(&mut buf, pos)?;
        let header =
            BatchHeader::parse(&buf).ok_or_else(|| corrupt(&self.log_path, pos, "short header"))?;
        if header.batch_length < MIN_BATCH_LENGTH || pos.saturating_add(header.total_size()) > size
        {
            return Err(corrupt(
                &self.log_path,
                pos,
                "batch length runs past the segment end",
            ));
        }
        Ok(header)
    }

    /// Reads `len` bytes at `pos`.
    pub fn read_bytes(&self, pos: u64, len: u64) -> io::Result<Vec<u8>> {
        let len =
            usize::try_from(len).map_err(|_| corrupt(&self.log_path, pos, "batch too large"))?;
        read_exact_at_uninit(&self.file, len, pos)
    }

    /// Position of the batch holding `offset` (base <= offset <= last), looking
    /// only at batches below `end`; `None` if this segment has none.
    pub fn find_batch(&self, offset: i64, end: i64) -> io::Result<Option<u64>> {
        let (size, mut pos) = {
            let st = self.state.lock();
            (st.size, u64::from(st.index.floor_position(offset)))
        };
        while pos < size {
            let header = self.read_header(pos, size)?;
            if header.base_offset >= end {
                return Ok(None);
            }
            if header.last_offset() >= offset {
                return Ok(Some(pos));
            }
            pos += header.total_size();
        }
        Ok(None)
    }

    /// For ListOffsets by timestamp: the first record of this segment at or after offset
    /// `start` and below `end` whose timestamp is at least `target`, as (offset, timestamp),
    /// searched from the time index's position for `target`.
    pub fn first_record_at_or_after(
        &self,
        target: i64,
        start: i64,
        end: i64,
    ) -> io::Result<Option<(i64, i64)>> {
        let (size, mut pos) = {
            let st = self.state.lock();
            (st.size, u64::from(st.index.time_search_position(target)))
        };
        while pos < size {
            let header = self.read_header(pos, size)?;
            if header.base_offset >= end {
                return Ok(None);
            }
            if header.max_timestamp >= target && header.last_offset() >= start {
                let bytes = self.read_bytes(pos, header.total_size())?;
                let found = crate::batch::first_record_at_or_after(&bytes, &header, target, start);
                if found.is_some() {
                    return Ok(found);
                }
            }
            pos += header.total_size();
        }
        Ok(None)
    }

    /// Appends to `out` the whole batches from `pos` on whose base offsets are
    /// below `end`, while `out` stays within `max_bytes`. If `out` is empty,
    /// `min_one_batch` is set and the first batch alone exceeds the budget,
    /// that batch is returned whole.
    pub fn read_batches(
        &self,
        pos: u64,
        end: i64,
        max_bytes: usize,
        min_one_batch: bool,
        out: &mut Vec<u8>,
    ) -> io::Result<ReadProgress> {
        let size = self.size();
        if pos >= size {
            return Ok(ReadProgress::Exhausted);
        }
        let budget = max_bytes.saturating_sub(out.len()) as u64;
        let first = self.read_header(pos, size)?;
        if first.base_offset >= end {
            return Ok(ReadProgress::Done);
        }
        if first.total_size() > budget {
            if min_one_batch && out.is_empty() {
                *out = self.read_bytes(pos, first.total_size())?;
            }
            return Ok(ReadProgress::Done);
        }
        let want = budget.min(size - pos);
        let mut buf = self.read_bytes(pos, want)?;
        let mut used = 0usize;
        while used + LOG_OVERHEAD <= buf.len() {
            let mut base = [0u8; 8];
            base.copy_from_slice(&buf[used..used + 8]);
            let mut len = [0u8; 4];
            len.copy_from_slice(&buf[used + 8..used + 12]);
            let (base, len) = (i64::from_be_bytes(base), i32::from_be_bytes(len));
            if len < MIN_BATCH_LENGTH {
                return Err(corrupt(
                    &self.log_path,
                    pos + used as u64,
                    "invalid batch length",
                ));
            }
            if base >= end {
                break;
            }
            let total = LOG_OVERHEAD + len as usize;
            if used + total > buf.len() {
                break;
            }
            used += total;
        }
        buf.truncate(used);
        if out.is_empty() {
            *out = buf;
        } else {
            out.extend_from_slice(&buf);
        }
        if pos + used as u64 >= size {
            Ok(ReadProgress::Exhausted)
        } else {
            Ok(ReadProgress::Done)
        }
    }
}

/// Suffix of the temporary file an index file is written to before it is
/// renamed into place.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Replaces a file's content with `data` atomically: written to a temporary
/// file (`path` + [`TMP_SUFFIX`], fsynced when `sync`) that is then renamed
/// over it, so a crash leaves either the old or the new content, never half of
/// it. `op` names the write for fault injection. The caller fsyncs the
/// directory when the rename itself must be durable.
pub(crate) fn write_whole(path: &Path, data: &[u8], sync: bool, op: Op) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp_name);
    let fault = failpoint::inject(op);
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
        file.write_all(&data[..data.len() / 2])?;
        return Err(error);
    }
    file.write_all(data)?;
    if sync {
        file.sync_all()?;
    }
    if let Some(fault) = failpoint::inject(Op::Rename) {
        return Err(fault.error);
    }
    fs::rename(&tmp, path)
}

/// Removes a file (a fault point, like every change the log makes to its directory).
pub(crate) fn remove_file(path: &Path) -> io::Result<()> {
    if let Some(fault) = failpoint::inject(Op::Remove) {
        return Err(fault.error);
    }
    fs::remove_file(path)
}

/// Removes the data and index files of the segment at `base_offset`, if they exist.
pub(crate) fn remove_files(dir: &Path, base_offset: i64) -> io::Result<()> {
    for ext in [LOG_EXT, INDEX_EXT, TIMEINDEX_EXT] {
        match remove_file(&dir.join(file_name(base_offset, ext))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// fsyncs a directory so that file creations and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    if let Some(fault) = failpoint::inject(Op::DirSync) {
        return Err(fault.error);
    }
    File::open(dir)?.sync_all()
}

/// Reads exactly `len` bytes at `pos` into a new buffer without zeroing it first: fetch
/// serves up to megabytes per call, and clearing memory the kernel is about to overwrite
/// cost about a seventh of the fetch path's CPU.
fn read_exact_at_uninit(file: &File, len: usize, pos: u64) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    let mut filled = 0usize;
    while filled < len {
        let offset = libc::off_t::try_from(pos + filled as u64)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "read position too large"))?;
        // SAFETY: the destination is the vector's unused capacity from `filled` to `len`, which
        // is allocated and writable; pread writes at most `len - filled` bytes into it, and only
        // the bytes it reports written are then counted as initialised.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().add(filled).cast(),
                len - filled,
                offset,
            )
        };
        match n {
            n if n > 0 => {
                filled += n as usize;
                // SAFETY: bytes 0..filled have been written by pread.
                unsafe { buf.set_len(filled) };
            }
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
    Ok(buf)
}
