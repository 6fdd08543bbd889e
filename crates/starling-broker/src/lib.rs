//! The Starling broker: everything between a TCP socket and the partition logs.
//!
//! - [`config`]: [`config::BrokerConfig`] under Kafka's property names.
//! - [`server`]: the accept loop, connection limit and graceful shutdown.
//! - [`connection`]: one client connection: frames in, responses out, in order.
//! - [`request_memory`]: the broker-wide bound on bytes of requests being read or answered.
//! - [`api`]: one module per Kafka API — decode already done, each turns a request into a response.
//! - [`topics`]: the topic registry over [`starling_log::PartitionLog`]s, persisted in
//!   [`starling_meta::MetadataStore`].
//! - [`coordinator`]: the task that drives the pure group coordinator core (`starling-group`)
//!   with a real clock and persists its records.
//! - [`transactions`]: the transaction coordinator (`starling-txn`) with its store and its
//!   marker writer.
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
//! config.listen = "127.0.0.1:0".parse()?;
//! config.admin_listen = Some("127.0.0.1:0".parse()?);
//! let broker = starling_broker::server::start(config).await?;
//! println!("serving on {}, metrics on {:?}", broker.local_addr(), broker.admin_addr());
//! broker.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod api;
pub mod clock;
pub mod config;
pub mod config_keys;
pub mod connection;
pub mod connection_limit;
pub mod coordinator;
pub mod dynamic_config;
pub mod log_cleaner;
pub mod maintenance;
pub mod metrics;
pub mod producer_ids;
pub mod quotas;
pub mod request_memory;
pub mod sasl;
pub mod server;
pub mod topics;
pub mod transactions;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use config::BrokerConfig;
use metrics::Metrics;
use topics::TopicRegistry;

/// State shared by every connection.
pub struct Broker {
    /// The configuration the broker started with; [`Broker::dynamic`] has the one in force.
    pub config: BrokerConfig,
    /// Broker configs changed at run time, and how every config resolves (DescribeConfigs).
    pub dynamic: dynamic_config::DynamicConfigs,
    /// `max.connections` and the connections counted against it.
    pub connection_limit: Arc<connection_limit::ConnectionLimit>,
    pub cluster_id: String,
    pub topics: TopicRegistry,
    /// The consumer-group coordinator task.
    pub groups: coordinator::CoordinatorHandle,
    /// Producer ids, for idempotent and transactional producers.
    pub producer_ids: Arc<producer_ids::ProducerIds>,
    /// The transaction coordinator.
    pub transactions: transactions::Transactions,
    pub metrics: Arc<Metrics>,
    /// Client quotas: what is set, and each client's rates against them.
    pub quotas: quotas::ClientQuotas,
    /// `queued.max.request.bytes`: what request frames in flight may hold, across connections.
    pub request_memory: request_memory::RequestMemory,
    /// Cancelled when the broker shuts down; long polls end early on it.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl Broker {
    /// The advertised host and port handed to clients.
    pub fn advertised(&self) -> (String, i32) {
        self.config.advertised_host_port()
    }
}

/// Wall-clock milliseconds since the Unix epoch, as Kafka timestamps are.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs the broker until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn run_until_signal(config: BrokerConfig) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Install the handler before announcing readiness: a SIGTERM sent the moment the
    // `listening on` line appears must still mean a graceful stop.
    let mut term = signal(SignalKind::terminate())?;
    let broker = server::start(config).await?;
    // Fixtures read the first line for the Kafka address; the admin address comes second. Both
    // go out in one write, so a reader that has the first line has the second too, and a reader
    // that stops reading (closing the pipe) cannot make a later print fail and stop the broker.
    let mut ready = format!("listening on {}\n", broker.local_addr());
    if let Some(admin) = broker.admin_addr() {
        ready.push_str(&format!("admin listening on {admin}\n"));
    }
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = stdout
            .write_all(ready.as_bytes())
            .and_then(|()| stdout.flush())
        {
            tracing::warn!(error = %e, "could not print the listening addresses to stdout");
        }
    }
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r?,
    }
    tracing::info!("shutting down");
    broker.shutdown().await;
    tracing::info!("shut down cleanly");
    Ok(())
}
