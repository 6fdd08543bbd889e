//! Deterministic storage faults for tests.
//!
//! Every store writes its file through [`FaultyFile`], a redb storage backend over the real file
//! that asks the store's [`Failpoint`] before each write, length change and sync. Unarmed — always,
//! outside tests — the failpoint costs one atomic load per write and changes nothing. Armed, the
//! writes fail below redb exactly as a full disk or a failing device makes them fail, so what the
//! store then sees is redb's own reaction: the failed commit, and every later operation refused
//! with "Previous I/O error occurred" until the database is closed and opened again.

use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// Makes writes to a store's file fail on demand ([`crate::MetadataStore::failpoint`]).
pub struct Failpoint {
    /// Writes still to fail; `u64::MAX` means every write until [`Failpoint::clear`].
    remaining: AtomicU64,
    kind: Mutex<io::ErrorKind>,
}

impl Failpoint {
    pub(crate) fn new() -> Failpoint {
        Failpoint {
            remaining: AtomicU64::new(0),
            kind: Mutex::new(io::ErrorKind::Other),
        }
    }

    /// Fails the next `writes` file writes (each write, length change or sync counts as one)
    /// with an I/O error of `kind`; `u64::MAX` fails every write until [`Failpoint::clear`]. One
    /// failed write is enough to leave redb refusing everything until the store re-opens it; a
    /// fault that lasts also fails that re-open (it has to write to repair the file).
    pub fn fail_writes(&self, writes: u64, kind: io::ErrorKind) {
        *self.kind.lock() = kind;
        self.remaining.store(writes, Ordering::Release);
    }

    /// Lets every write through again (the full disk has space again).
    pub fn clear(&self) {
        self.remaining.store(0, Ordering::Release);
    }

    /// Whether the next write will fail.
    pub fn is_armed(&self) -> bool {
        self.remaining.load(Ordering::Acquire) > 0
    }

    /// `Err` when this write is one the failpoint fails.
    fn check(&self) -> io::Result<()> {
        let mut remaining = self.remaining.load(Ordering::Acquire);
        loop {
            if remaining == 0 {
                return Ok(());
            }
            let next = if remaining == u64::MAX {
                remaining
            } else {
                remaining - 1
            };
            match self.remaining.compare_exchange_weak(
                remaining,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let kind = *self.kind.lock();
                    return Err(io::Error::new(kind, format!("{kind} (injected fault)")));
                }
                Err(now) => remaining = now,
            }
        }
    }
}

impl fmt::Debug for Failpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failpoint")
            .field("remaining", &self.remaining.load(Ordering::Relaxed))
            .field("kind", &*self.kind.lock())
            .finish()
    }
}

/// redb's file backend with the failpoint in front of every write.
#[derive(Debug)]
pub(crate) struct FaultyFile {
    file: FileBackend,
    failpoint: Arc<Failpoint>,
}

impl FaultyFile {
    pub(crate) fn new(
        file: File,
        failpoint: Arc<Failpoint>,
    ) -> Result<FaultyFile, redb::DatabaseError> {
        Ok(FaultyFile {
            file: FileBackend::new(file)?,
            failpoint,
        })
    }
}

impl StorageBackend for FaultyFile {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.failpoint.check()?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.failpoint.check()?;
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.failpoint.check()?;
        self.file.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}
