//! The `starling` binary: a thin command line over the broker and the benchmarks.
//!
//! `starling serve` runs the broker with embedded storage; `starling bench ...` drives real
//! Kafka clients against a broker and prints figures; `starling log repair` truncates damaged
//! partition logs of a stopped broker; `starling group ...` and `starling txn ...` inspect the
//! consumer groups and transactions of any Kafka-compatible broker; `starling topic ...`,
//! `starling produce`, `starling consume` and `starling cluster info` manage topics and move
//! records on any Kafka-compatible broker; `starling quota ...`, `starling acl ...` and
//! `starling user ...` manage client quotas, ACLs and SCRAM users; `starling admin-token create`
//! makes bearer tokens for the admin HTTP endpoint.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use starling_broker::config::BrokerConfig;
use tracing_subscriber::EnvFilter;

mod acl_cli;
mod admin_token_cli;
mod cluster_status_cli;
mod connect_args;
mod group_cli;
mod log_cli;
mod quota_cli;
mod rebalances_cli;
mod records_cli;
mod topic_cli;
mod txn_cli;
mod user_cli;

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "starling",
    version,
    about = "A Kafka-wire-compatible broker built around consumer-group rebalancing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker: embedded storage by default, or PostgreSQL with `--storage`.
    Serve(ServeArgs),
    /// Benchmarks that drive librdkafka clients against a broker.
    #[command(subcommand)]
    Bench(starling_bench::BenchCommand),
    /// Inspect and manage consumer groups on any Kafka-compatible broker.
    Group(group_cli::GroupArgs),
    /// Inspect transactions and the producers behind them on any Kafka-compatible broker.
    Txn(txn_cli::TxnArgs),
    /// Create, list, describe, delete and trim topics on any Kafka-compatible broker.
    Topic(topic_cli::TopicArgs),
    /// Describe and alter client quotas (user, client-id, ip) on any Kafka-compatible broker.
    Quota(quota_cli::QuotaArgs),
    /// Add, list and remove ACLs on any Kafka-compatible broker.
    Acl(acl_cli::AclArgs),
    /// Create, delete and list SCRAM users on any Kafka-compatible broker; hash PLAIN passwords.
    User(user_cli::UserArgs),
    /// Make bearer tokens for the broker's admin HTTP endpoint (admin.auth.tokens.file).
    AdminToken(admin_token_cli::AdminTokenArgs),
    /// Produce lines from standard input to a topic.
    Produce(records_cli::ProduceArgs),
    /// Print a topic's records.
    Consume(records_cli::ConsumeArgs),
    /// Look at the cluster: cluster id, controller, brokers.
    Cluster(topic_cli::ClusterArgs),
    /// Offline tools for the partition logs in a data directory (the broker must be stopped).
    Log(log_cli::LogArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to accept Kafka clients on, `HOST:PORT` (a host name is resolved); with several
    /// `listeners`, the first one's [default: `listeners` from the config, else
    /// 127.0.0.1:9092].
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Directory holding the partition logs and the metadata store [default: `log.dirs` from
    /// the config, else ./data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where the metadata lives: `embedded` (redb under the data directory, no other service)
    /// or a PostgreSQL URL, `postgres://user:password@host:port/database` [default: `storage`
    /// from the config, else embedded].
    #[arg(long, value_name = "embedded|postgres://…")]
    storage: Option<String>,
    /// Address handed to the first listener's clients in Metadata and FindCoordinator [default:
    /// `advertised.listeners` from the config, else the address actually bound].
    #[arg(long)]
    advertised: Option<String>,
    /// Address of the admin HTTP endpoint (/metrics, /healthz, /groups), or `none` to disable
    /// it; port 0 picks a free port [default: `admin.listen` from the config, else 127.0.0.1:9644].
    #[arg(long, value_name = "HOST:PORT|none")]
    admin_listen: Option<String>,
    /// A Kafka-style server.properties file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A broker property using Kafka's name, e.g. `--override num.partitions=8`. Repeatable.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Runs the command; an error is printed as one line (its causes joined), never with a
/// backtrace, and the process exits 1.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Bench(cmd) => runtime.block_on(starling_bench::run(cmd)),
        Command::Group(args) => runtime.block_on(group_cli::run(args)),
        Command::Txn(args) => runtime.block_on(txn_cli::run(args)),
        Command::Topic(args) => runtime.block_on(topic_cli::run(args)),
        Command::Quota(args) => runtime.block_on(quota_cli::run(args)),
        Command::Acl(args) => runtime.block_on(acl_cli::run(args)),
        Command::User(args) => runtime.block_on(user_cli::run(args)),
        Command::AdminToken(args) => admin_token_cli::run(args),
        Command::Produce(args) => runtime.block_on(records_cli::run_produce(args)),
        Command::Consume(args) => runtime.block_on(records_cli::run_consume(args)),
        Command::Cluster(args) => runtime.block_on(topic_cli::run_cluster(args)),
        Command::Log(args) => log_cli::run(args),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = BrokerConfig::default();
    if let Some(path) = &args.config {
        config
            .apply_properties_file(path)
            .with_context(|| format!("reading --config {}", path.display()))?;
    }
    for item in &args.overrides {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("--override {item:?} is not of the form key=value"))?;
        config
            .set(key.trim(), value.trim())
            .with_context(|| format!("--override {item}"))?;
    }
    // Flags win over the config, but only when given.
    if let Some(listen) = &args.listen {
        config.listeners[0].addr = starling_broker::config::resolve_address("--listen", listen)?;
    }
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    if let Some(storage) = &args.storage {
        config.set("storage", storage).with_context(|| {
            format!(
                "--storage {}",
                starling_broker::storage::redact_url(storage)
            )
        })?;
    }
    if let Some(advertised) = args.advertised {
        let name = config.first_listener().name.clone();
        config.advertised_listeners.insert(name, advertised);
    }
    if let Some(admin) = &args.admin_listen {
        config
            .set("admin.listen", admin)
            .with_context(|| format!("--admin-listen {admin}"))?;
    }
    starling_broker::run_until_signal(config).await
}
