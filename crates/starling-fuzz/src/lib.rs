//! Fuzz targets for the code that reads what clients send, and the checks around them.
//!
//! # Guide
//!
//! * [`Target`] names the four targets; each is a function of `&[u8]` that must never panic
//!   and never allocate much more than its input (see [`oracle`]):
//!   - [`request_decoder`]: one request frame (without its size prefix) through
//!     `starling_protocol::request::decode`, as the broker decodes it; a decoded Produce also
//!     has each partition's records validated. The same bytes are decoded a second time with
//!     the api key and version moved onto a served pair, so mutations of the header keep
//!     reaching the body decoders of every API and version.
//!   - [`record_batch`]: produce-time validation of a record set
//!     (`starling_log::validate_record_set`).
//!   - [`coordinator`]: the bytes as a script of requests, time steps, timer expiries and
//!     restarts for a `starling_group::GroupCoordinator` (see [`coordinator::script`]), with the
//!     invariants the coordinator's own property tests state that are visible from outside.
//!   - [`authentication`]: what a client sends before it is known — SASL/PLAIN and SCRAM
//!     messages, TLS handshake bytes, and the client certificate's subject through
//!     `ssl.principal.mapping.rules` (see [`authentication`] for the input format).
//! * [`oracle`] is the allocation check: a counting global allocator ([`oracle::CountingAllocator`])
//!   that binaries install, and [`oracle::check`], which runs one target call under the bound.
//!   [`Target::run_checked`] is a target call under that check.
//! * [`mutate`] is a small deterministic mutator (bit flips, inserts, length-field smashing,
//!   truncation, splicing) for the bounded mutation run the tests do in CI.
//! * [`seeds`] builds the seed corpus (`fuzz/corpus/<target>/`): requests for every served API
//!   at every version encoded with kafka-protocol, record batches uncompressed and with each
//!   codec, and coordinator scripts.
//!
//! The `starling-fuzz` binary replays files (`starling-fuzz replay <target> <path>...`), runs
//! the mutation campaign and writes the seeds; the AFL++ harness lives in `fuzz/` at the
//! repository root (outside the workspace) and runs the same functions. `docs/FUZZING.md` says
//! how to run everything.
//!
//! # Example
//!
//! ```
//! use starling_fuzz::Target;
//! // Metadata v1 asking for no topics: decodes; any bytes at all: no panic.
//! let frame = [0, 3, 0, 1, 0, 0, 0, 7, 0xff, 0xff, 0, 0, 0, 0];
//! Target::RequestDecoder.run(&frame);
//! Target::RecordBatch.run(b"not a batch");
//! Target::Coordinator.run(&[0, 1, 2, 3]);
//! ```

pub mod authentication;
pub mod coordinator;
pub mod mutate;
pub mod oracle;
pub mod record_batch;
pub mod request_decoder;
pub mod seeds;

#[cfg(test)]
#[global_allocator]
static ALLOCATOR: oracle::CountingAllocator = oracle::CountingAllocator;

pub use authentication::authentication;
pub use coordinator::coordinator;
pub use record_batch::record_batch;
pub use request_decoder::request_decoder;

/// One fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    RequestDecoder,
    RecordBatch,
    Coordinator,
    Authentication,
}

impl Target {
    pub const ALL: [Target; 4] = [
        Target::RequestDecoder,
        Target::RecordBatch,
        Target::Coordinator,
        Target::Authentication,
    ];

    /// The name used for its corpus and regression directories and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::RequestDecoder => "request_decoder",
            Target::RecordBatch => "record_batch",
            Target::Coordinator => "coordinator",
            Target::Authentication => "authentication",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Runs the target on `data` (no allocation check).
    pub fn run(self, data: &[u8]) {
        match self {
            Target::RequestDecoder => request_decoder(data),
            Target::RecordBatch => record_batch(data),
            Target::Coordinator => coordinator(data),
            Target::Authentication => authentication(data),
        }
    }

    /// Runs the target on `data` under the allocation oracle; panics (or aborts, for an
    /// allocation refused as too large) when the target misbehaves, after printing the input
    /// in hex; returns what the call allocated. The binary must have installed
    /// [`oracle::CountingAllocator`].
    pub fn run_checked(self, data: &[u8]) -> oracle::Usage {
        let _report = ReportOnPanic(data);
        oracle::check(data, || self.run(data)).1
    }
}

/// Prints the input when a target call unwinds.
struct ReportOnPanic<'a>(&'a [u8]);

impl Drop for ReportOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            oracle::write_hex_line(self.0);
        }
    }
}

#[cfg(test)]
mod tests;
