//! The allocation oracle: no single allocation driven by untrusted input may be much larger
//! than the input itself.
//!
//! A binary that wants the check installs [`CountingAllocator`] as its global allocator (the
//! test binaries of this crate, its `starling-fuzz` binary and the AFL harness in `fuzz/` all
//! do). [`check`] then arms a per-thread watch around one target call: every allocation (and
//! reallocation) made by that thread is measured, and one larger than [`bound`] is *refused*
//! (the allocator returns null, so the process aborts with `memory allocation of N bytes
//! failed`, which AFL records as a crash) after printing the offending input in hex. An input
//! that asked for too much but survived (say through `try_reserve`) fails the check when the
//! call returns. Refusing at the bound, rather than letting the system allocator try, keeps
//! the verdict the same on every machine whatever its memory or overcommit setting.
//!
//! The watch is thread-local, so tests running in parallel do not see each other's
//! allocations, and it never allocates itself.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// The largest single allocation allowed while a target runs on `input_len` bytes: 64 bytes
/// per input byte plus 1 MiB, generous enough for any structure a decoder builds from what
/// it was given, far below what an untrusted length field can ask for.
pub fn bound(input_len: usize) -> usize {
    input_len.saturating_mul(64).saturating_add(1 << 20)
}

/// A global allocator that forwards to [`System`] and measures allocations while [`check`]
/// watches the current thread.
///
/// ```ignore
/// #[global_allocator]
/// static ALLOCATOR: starling_fuzz::oracle::CountingAllocator =
///     starling_fuzz::oracle::CountingAllocator;
/// ```
pub struct CountingAllocator;

/// Set by the first allocation that goes through [`CountingAllocator`].
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// What the current thread's watch has seen.
struct Watch {
    armed: Cell<bool>,
    limit: Cell<usize>,
    largest: Cell<usize>,
    /// The first allocation refused, or 0.
    refused: Cell<usize>,
    /// The input being run, for the report printed before an abort.
    input: Cell<(*const u8, usize)>,
}

thread_local! {
    static WATCH: Watch = const {
        Watch {
            armed: Cell::new(false),
            limit: Cell::new(usize::MAX),
            largest: Cell::new(0),
            refused: Cell::new(0),
            input: Cell::new((std::ptr::null(), 0)),
        }
    };
}

impl CountingAllocator {
    /// Measures one allocation of `size` bytes; false when it must be refused.
    fn admit(size: usize) -> bool {
        if !INSTALLED.load(Ordering::Relaxed) {
            INSTALLED.store(true, Ordering::Relaxed);
        }
        WATCH
            .try_with(|watch| {
                if !watch.armed.get() {
                    return true;
                }
                if size > watch.largest.get() {
                    watch.largest.set(size);
                }
                if size <= watch.limit.get() {
                    return true;
                }
                watch.armed.set(false);
                watch.refused.set(size);
                report_refusal(watch, size);
                false
            })
            .unwrap_or(true)
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments, or returns null
// (allowed: it reports an allocation failure); `admit` neither allocates nor unwinds.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !Self::admit(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Whether [`CountingAllocator`] is this binary's global allocator.
pub fn is_installed() -> bool {
    drop(std::hint::black_box(Box::new(0u64)));
    INSTALLED.load(Ordering::Relaxed)
}

/// What one watched call allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// The largest single allocation (or reallocation) the call made.
    pub largest: usize,
    /// The bound in force.
    pub limit: usize,
    /// The size of the first allocation refused for exceeding the bound, if any.
    pub refused: Option<usize>,
}

/// Disarms the watch when the call returns or unwinds.
struct Armed;

impl Drop for Armed {
    fn drop(&mut self) {
        let _ = WATCH.try_with(|watch| {
            watch.armed.set(false);
            watch.input.set((std::ptr::null(), 0));
        });
    }
}

/// Runs `f` on the current thread with allocations above `limit` refused, and reports what it
/// allocated. `input` is only printed if an allocation is refused.
pub fn measure<R>(input: &[u8], limit: usize, f: impl FnOnce() -> R) -> (R, Usage) {
    WATCH.with(|watch| {
        watch.largest.set(0);
        watch.refused.set(0);
        watch.limit.set(limit);
        watch.input.set((input.as_ptr(), input.len()));
        watch.armed.set(true);
    });
    let value = {
        let _armed = Armed;
        f()
    };
    let usage = WATCH.with(|watch| Usage {
        largest: watch.largest.get(),
        limit,
        refused: Some(watch.refused.get()).filter(|&size| size > 0),
    });
    (value, usage)
}

/// Runs `f` (a target call on `input`) under the bound for `input`'s length and reports what
/// it allocated; panics if the allocator is not installed or if `f` asked for more.
pub fn check<R>(input: &[u8], f: impl FnOnce() -> R) -> (R, Usage) {
    assert!(
        is_installed(),
        "starling_fuzz::oracle::CountingAllocator is not the global allocator of this binary"
    );
    let (value, usage) = measure(input, bound(input.len()), f);
    if let Some(size) = usage.refused {
        panic!(
            "an allocation of {size} bytes exceeds the bound of {} bytes for an input of {} bytes",
            usage.limit,
            input.len()
        );
    }
    (value, usage)
}

/// Prints the refused size and the input, in hex, to stderr without allocating.
fn report_refusal(watch: &Watch, size: usize) {
    let (ptr, len) = watch.input.get();
    let input: &[u8] = if ptr.is_null() {
        &[]
    } else {
        // SAFETY: `measure` stored a slice that outlives the watched call, and the watch is
        // disarmed (the pointer cleared) before that call's borrow ends.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    };
    let mut line = StackLine::new();
    let _ = writeln!(
        line,
        "starling-fuzz: refused an allocation of {size} bytes (bound {} for an input of {len} bytes)",
        watch.limit.get()
    );
    line.flush_to_stderr();
    write_hex_line(input);
}

/// Prints `starling-fuzz input-hex: <hex>` for `input` to stderr without allocating (the
/// regression test turns that line back into a file).
pub fn write_hex_line(input: &[u8]) {
    let mut line = StackLine::new();
    let _ = write!(line, "starling-fuzz input-hex: ");
    for chunk in input.chunks(256) {
        for byte in chunk {
            let _ = write!(line, "{byte:02x}");
        }
        line.flush_to_stderr();
    }
    let _ = writeln!(line);
    line.flush_to_stderr();
}

/// A fixed buffer written with `write!` and flushed to stderr, so reports need no heap.
struct StackLine {
    buf: [u8; 1024],
    len: usize,
}

impl StackLine {
    fn new() -> StackLine {
        StackLine {
            buf: [0; 1024],
            len: 0,
        }
    }

    fn flush_to_stderr(&mut self) {
        let _ = std::io::stderr().write_all(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl Write for StackLine {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
