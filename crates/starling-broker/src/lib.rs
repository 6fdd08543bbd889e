//! The Starling broker: everything between a TCP socket and the partition logs.
//!
//! - [`config`]: [`config::BrokerConfig`] under Kafka's property names.
//! - [`broker`]: [`Broker`], the state every connection shares.
//! - [`server`]: the accept loop, connection limit and graceful shutdown; [`run_until_signal`].
//! - [`connection`]: one client connection: frames in, responses out, in order.
//! - [`request_memory`]: the broker-wide bound on bytes of requests being read or answered.
//! - [`api`]: one module per Kafka API — decode already done, each turns a request into a response.
//! - [`storage`]: [`storage::MetadataStorage`], the metadata back end: the embedded
//!   [`starling_meta::MetadataStore`] or PostgreSQL (`storage=postgres://…`).
//! - [`topics`]: the topic registry over the partitions, persisted in the metadata storage.
//! - [`partition_store`]: one partition's records, in its embedded [`starling_log::PartitionLog`]
//!   or in PostgreSQL; [`leases`]: which PostgreSQL partitions this node leads.
//! - [`coordinator`]: the task that drives the pure group coordinator core (`starling-group`)
//!   with a real clock and persists its records.
//! - [`transactions`]: the transaction coordinator (`starling-txn`) with its store and its
//!   marker writer.
//! - [`acls`]: the authorizer and its ACLs (CreateAcls, DescribeAcls, DeleteAcls).
//! - [`quotas`]: client quotas (DescribeClientQuotas, AlterClientQuotas) and their enforcement
//!   through `throttle_time_ms` and muted connections.
//! - [`sasl`]: the SASL mechanisms' server side (SCRAM-SHA-256/512, PLAIN), for the
//!   connection layer to drive.
//! - [`maintenance`]: background retention, time-based flushes and segment rolls.
//! - [`metrics`]: the Prometheus metrics (`starling_*`): kept as requests flow, or read from the
//!   topics and the coordinator at scrape time.
//! - [`admin`]: the admin HTTP endpoint (`/` listing its routes, `/metrics`, `/healthz`, `/groups`,
//!   `/groups/{id}/rebalances`).
//!
//! Data flows one way: socket → frame → decoded request → handler → log/store → response → socket.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let mut config = starling_broker::config::BrokerConfig::default();
//! config.listeners = vec![starling_broker::listeners::ListenerAddress::plaintext("127.0.0.1:0".parse()?)];
//! config.admin_listen = Some("127.0.0.1:0".parse()?);
//! let broker = starling_broker::server::start(config).await?;
//! println!("serving on {}, metrics on {:?}", broker.local_addr(), broker.admin_addr());
//! broker.shutdown().await;
//! # Ok(()) }
//! ```

pub mod acls;
pub mod admin;
pub mod api;
pub mod authentication;
pub mod broker;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod config_keys;
pub mod connection;
pub mod connection_limit;
pub mod coordinator;
pub mod dynamic_config;
pub mod leases;
pub mod listeners;
pub mod log_cleaner;
pub mod maintenance;
pub mod metrics;
pub mod node_registration;
pub mod partition_store;
pub mod producer_ids;
pub mod quotas;
pub mod request_memory;
pub mod sasl;
pub mod server;
pub mod ssl_principal;
pub mod storage;
pub mod tls;
pub mod topics;
pub mod transactions;

pub use broker::Broker;
pub use clock::now_ms;
pub use server::run_until_signal;
