//! Deterministic fault injection for the log's disk writes.
//!
//! Every operation that changes files (a segment write, an fsync, a truncation, an index,
//! checkpoint or producer-snapshot write, a rename, a removal, a directory fsync) first asks
//! [`inject`] whether to fail. In normal builds [`inject`] is an inline `None` and the whole
//! mechanism compiles away. Built for tests (or with the `failpoints` feature) the answer comes
//! from a plan set on the calling thread, so tests running in parallel never see each other's
//! faults:
//!
//! * [`fail_next`]`(op, n, kind)`: the next `n` operations `op` fail with `kind` (a failing
//!   write first lands half its bytes, as a write that runs out of space does);
//! * [`crash_after`]`(n)`: simulates `kill -9`: `n` more operations run, the next one is cut off
//!   halfway and every later one fails without effect, as if the process were gone, so the
//!   files are left exactly as a crash at that point leaves them;
//! * [`operations`] counts operations (to enumerate crash points) and [`reset`] clears the plan.

use std::io;

/// A kind of file-changing operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Writing batches into a segment data file.
    SegmentWrite,
    /// fsync of a segment data file.
    SegmentSync,
    /// Cutting a segment data file back (undoing a failed write, truncating a torn tail).
    SegmentTruncate,
    /// Creating the data file of a new segment.
    SegmentCreate,
    /// Writing an `.index` or `.timeindex` file.
    IndexWrite,
    /// Writing (and fsyncing) the temporary recovery checkpoint file.
    CheckpointWrite,
    /// Writing (and fsyncing) the temporary file of a producer-state snapshot.
    SnapshotWrite,
    /// Renaming a temporary file (checkpoint, index, snapshot) over the real one.
    Rename,
    /// Removing a file.
    Remove,
    /// fsync of the partition directory.
    DirSync,
    /// Writing a cleaned segment (`.log.cleaned`) during a cleaning pass.
    CleanedWrite,
}

/// A fault to apply to one operation.
#[derive(Debug)]
pub(crate) struct Injected {
    /// The error the operation reports.
    pub error: io::Error,
    /// Whether the operation takes half its effect first (half the bytes of a write, the
    /// creation of a file) before failing.
    pub partial: bool,
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn inject(_op: Op) -> Option<Injected> {
    None
}

#[cfg(test)]
pub use plan::{crash_after, fail_next, operations, reset};

#[cfg(test)]
pub(crate) use plan::inject;

#[cfg(test)]
mod plan {
    use std::cell::RefCell;
    use std::io;

    use super::{Injected, Op};

    #[derive(Default)]
    struct Plan {
        /// Pending failures: the operation, how many more times, and the error kind.
        fail: Vec<(Op, u32, io::ErrorKind)>,
        /// Operations still allowed before the simulated crash.
        crash_in: Option<u64>,
        crashed: bool,
        seen: u64,
    }

    thread_local! {
        static PLAN: RefCell<Plan> = RefCell::new(Plan::default());
    }

    /// Fails the next `count` operations `op` on this thread with an error of `kind`.
    pub fn fail_next(op: Op, count: u32, kind: io::ErrorKind) {
        PLAN.with(|p| {
            let mut p = p.borrow_mut();
            p.fail.retain(|(o, _, _)| *o != op);
            if count > 0 {
                p.fail.push((op, count, kind));
            }
        });
    }

    /// Lets `n` more operations run on this thread, cuts the next one off halfway and fails
    /// every later one without effect: the files look as a `kill -9` at that point leaves them.
    pub fn crash_after(n: u64) {
        PLAN.with(|p| {
            let mut p = p.borrow_mut();
            p.crash_in = Some(n);
            p.crashed = false;
        });
    }

    /// Operations this thread has asked about since the last [`reset`].
    pub fn operations() -> u64 {
        PLAN.with(|p| p.borrow().seen)
    }

    /// Clears the plan and the operation count.
    pub fn reset() {
        PLAN.with(|p| *p.borrow_mut() = Plan::default());
    }

    pub(crate) fn inject(op: Op) -> Option<Injected> {
        PLAN.with(|p| {
            let mut p = p.borrow_mut();
            p.seen += 1;
            if p.crashed {
                return Some(Injected {
                    error: io::Error::other("simulated crash: the process is gone"),
                    partial: false,
                });
            }
            match p.crash_in {
                Some(0) => {
                    p.crashed = true;
                    return Some(Injected {
                        error: io::Error::other(format!("simulated crash during {op:?}")),
                        partial: true,
                    });
                }
                Some(n) => p.crash_in = Some(n - 1),
                None => {}
            }
            let at = p.fail.iter().position(|(o, _, _)| *o == op)?;
            let kind = p.fail[at].2;
            p.fail[at].1 -= 1;
            if p.fail[at].1 == 0 {
                p.fail.remove(at);
            }
            Some(Injected {
                error: io::Error::new(kind, format!("injected fault in {op:?}")),
                partial: true,
            })
        })
    }
}
