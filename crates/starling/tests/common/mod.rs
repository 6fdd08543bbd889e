//! Shared fixtures for Starling's end-to-end tests. Every test binary includes this module
//! (`mod common;`) and uses only part of it; everything is re-exported here, so `use common::*`
//! brings it all in.
//!
//! * `watchdog.rs`: [`watchdog`], a time limit for a whole test.
//! * `process.rs`: the binary under test ([`STARLING`]), waiting for child processes, and
//!   [`run_to_exit`] for subcommands that exit by themselves.
//! * `broker.rs`: [`Broker`], a `starling serve` process on free ports with its own data
//!   directory, stopped (SIGTERM, SIGKILL) and started again on it.
//! * `certs.rs`: [`TestCa`], a test PKI (CA, server and client certificates as PEM files).
//! * `http.rs`: [`http_get`] for the broker's admin HTTP endpoint.
//! * `segments.rs`: segment files on disk and the record batches in them.
//! * `client.rs`: librdkafka client configuration, the admin client, [`within`].
//! * `configs.rs`: [`librdkafka_alter`], AlterConfigs and IncrementalAlterConfigs through
//!   librdkafka's C API with the per-resource error.
//! * `topics.rs`: creating topics and reading their metadata and watermarks.
//! * `produce.rs` / `consume.rs`: librdkafka producers, and `assign()` consumers without a group.
//! * `raw.rs`: [`RawClient`], Kafka requests framed by hand over a plain TCP connection.
//! * `records.rs`: v2 record batches encoded and counted by hand for raw requests.
#![allow(dead_code)]

mod broker;
mod certs;
mod client;
mod configs;
mod consume;
mod http;
mod process;
mod produce;
mod raw;
mod records;
mod segments;
mod topics;
mod watchdog;

// Each test binary uses only part of these.
#[allow(unused_imports)]
pub use {
    broker::*, certs::*, client::*, configs::*, consume::*, http::*, process::*, produce::*,
    raw::*, records::*, segments::*, topics::*, watchdog::*,
};
