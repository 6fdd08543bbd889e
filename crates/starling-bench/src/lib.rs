//! `starling bench`: throughput of a real Kafka client (librdkafka, through the `rdkafka`
//! crate) against a Starling broker, measured next to the raw loopback TCP bandwidth of the
//! same machine, which is the ceiling any broker on this host can reach; and, in
//! [`rebalance`](RebalanceArgs), how long consumers stop while their group rebalances; and, in
//! [`compaction`](CompactionArgs), whether the log cleaner's I/O bound holds under load; and,
//! in [`console`], what the web console's pages cost and whether they slow Kafka requests.
//!
//! Measurement only: nothing here asserts a speed. The figures go to stdout as a table (and
//! optionally to a JSON file); progress bars and logs go to stderr.

mod broker;
mod ceiling;
mod client;
pub mod cluster;
mod compaction;
pub mod console;
pub mod heartbeat;
mod rebalance;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::broker::Broker;
use crate::report::{Phase, Report};

pub use crate::compaction::CompactionArgs;
pub use crate::rebalance::RebalanceArgs;

/// `starling bench ...`
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Produce throughput, next to the loopback TCP ceiling.
    Produce(ProduceArgs),
    /// Consume throughput (producing the data first when the topic lacks it), next to the ceiling.
    Consume(ConsumeArgs),
    /// Produce, then consume what was produced, next to the ceiling.
    All(AllArgs),
    /// How long consumers stop during a group rebalance, per scenario and strategy.
    Rebalance(RebalanceArgs),
    /// What a steady KIP-848 heartbeat costs the broker, in CPU per heartbeat.
    Heartbeat(heartbeat::HeartbeatArgs),
    /// What the web console's pages cost on a broker with 1,000 groups and 10,000 partitions,
    /// and how much a busy console slows Kafka requests.
    Console(console::ConsoleArgs),
    /// Produce and consume on the embedded log and on PostgreSQL with one node and with
    /// several (`--nodes 1,3`), side by side in one run.
    Cluster(cluster::ClusterArgs),
    /// Whether the log cleaner's I/O bound holds while producers and consumers run, and what
    /// it costs producers next to an unbounded cleaner.
    Compaction(CompactionArgs),
}

/// Arguments of `starling bench produce`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Also measure a variant of the producer: this librdkafka property applied over the
    /// baseline's settings (and `--producer-config`), e.g. `enable.idempotence=true`.
    /// Repeatable: every one given goes into the one variant. The baseline and the variant then
    /// produce `--messages` each, in turn, `--rounds` times, and their figures are compared.
    #[arg(long = "compare", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub compare: Vec<(String, String)>,
    /// With `--compare`: how many times each of the baseline and the variant produce.
    #[arg(long, default_value_t = 3, requires = "compare")]
    pub rounds: u32,
}

/// `--compare`: a producer variant measured against the baseline in the same run.
#[derive(Debug, Clone)]
struct Compare {
    variant: Vec<(String, String)>,
    rounds: u32,
}

/// Arguments of `starling bench consume`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

/// Arguments of `starling bench all`.
#[derive(Debug, Clone, clap::Args)]
pub struct AllArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

/// Compression codec the producer applies to its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The value of librdkafka's `compression.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Options shared by every bench subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Broker to measure. Without it the bench starts its own broker (this same binary,
    /// `serve --listen 127.0.0.1:0`) on a temporary data directory and stops it at the end.
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap: Option<String>,
    /// Number of messages to produce / consume.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Payload size of each message, in bytes (messages carry no key).
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub size: usize,
    /// Partitions of the bench topic (messages are spread round-robin over them).
    #[arg(long, default_value_t = 8)]
    pub partitions: i32,
    /// Producer compression codec.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// Producer acks: 0, 1, -1 or all.
    #[arg(long, default_value = "1", value_parser = ["0", "1", "-1", "all"])]
    pub acks: String,
    /// Topic to use (created when missing). Default: a fresh, uniquely named topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Skip the loopback TCP ceiling measurement.
    #[arg(long)]
    pub no_ceiling: bool,
    /// Data directory of the broker the bench starts itself (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Broker property for the broker the bench starts itself, e.g. `log.segment.bytes=1073741824`.
    /// Repeatable.
    #[arg(long = "broker-override", value_name = "KEY=VALUE")]
    pub broker_overrides: Vec<String>,
    /// Give up when no message has been delivered or received for this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub stall_timeout: u64,
    /// Extra librdkafka property for the producer, e.g. `linger.ms=20`. Repeatable; applied last.
    #[arg(long = "producer-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub producer_config: Vec<(String, String)>,
}

/// The consumer's options, for the subcommands that consume.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConsumerArgs {
    /// Extra librdkafka property for the consumer, e.g. `fetch.max.bytes=10485760`. Repeatable.
    #[arg(long = "consumer-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub consumer_config: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("{s:?} is not of the form key=value")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Produce,
    Consume,
    All,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Produce => "produce",
            Mode::Consume => "consume",
            Mode::All => "all",
        }
    }
}

/// Runs a bench command. On SIGINT or SIGTERM the broker the bench started is stopped and its
/// temporary data deleted before the process exits non-zero (130 or 143).
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    // The command keeps running (and owning its broker) while the brokers are stopped: the
    // process ends from the handler, so no destructor races it with a SIGKILL.
    let handler = tokio::spawn(async move {
        let (number, name) = tokio::select! {
            _ = interrupt.recv() => (libc::SIGINT, "SIGINT"),
            _ = terminate.recv() => (libc::SIGTERM, "SIGTERM"),
        };
        tokio::task::spawn_blocking(move || broker::stop_all_after_signal(number, name)).await
    });
    let result = run_command(cmd).await;
    handler.abort();
    result
}

async fn run_command(cmd: BenchCommand) -> anyhow::Result<()> {
    let (mode, args, consumer, compare) = match cmd {
        BenchCommand::Produce(a) => {
            let compare = (!a.compare.is_empty()).then_some(Compare {
                variant: a.compare,
                rounds: a.rounds,
            });
            (Mode::Produce, a.common, ConsumerArgs::default(), compare)
        }
        BenchCommand::Consume(a) => (Mode::Consume, a.common, a.consumer, None),
        BenchCommand::All(a) => (Mode::All, a.common, a.consumer, None),
        BenchCommand::Rebalance(a) => return rebalance::run(a).await,
        BenchCommand::Heartbeat(a) => return heartbeat::run(a).await,
        BenchCommand::Compaction(a) => return compaction::run(a).await,
        BenchCommand::Cluster(a) => return cluster::run(a).await,
        BenchCommand::Console(a) => return console::run(a).await,
    };
    if args.messages == 0 {
        bail!("--messages must be at least 1");
    }
    if args.size == 0 {
        bail!("--size must be at least 1 byte");
    }
    if args.partitions < 1 {
        bail!("--partitions must be at least 1");
    }
    if compare.as_ref().is_some_and(|c| c.rounds == 0) {
        bail!("--rounds must be at least 1");
    }

    let broker = match &args.bootstrap {
        Some(addr) => Broker::external(addr.clone()),
        None => Broker::start(args.data_dir.clone(), args.broker_overrides.clone()).await?,
    };
    let outcome = measure(mode, &args, &consumer, compare.as_ref(), &broker).await;
    broker.finish(outcome)
}

async fn measure(
    mode: Mode,
    args: &CommonArgs,
    consumer: &ConsumerArgs,
    compare: Option<&Compare>,
    broker: &Broker,
) -> anyhow::Result<()> {
    let bootstrap = broker.bootstrap().to_string();
    let topic = args.topic.clone().unwrap_or_else(unique_topic);
    let stall = Duration::from_secs(args.stall_timeout.max(1));
    let payload_bytes = args.messages.saturating_mul(args.size as u64);

    let mut report = Report::new(mode.name(), args, &bootstrap, broker.description(), &topic);

    // Kept until the end of the run (see ceiling::page_cache_write).
    let mut page_cache_file = None;
    if !args.no_ceiling {
        // At least 256 MiB so that tiny runs still give a stable ceiling.
        let volume = payload_bytes.max(256 << 20);
        report.ceiling = Some(ceiling::measure(volume, 5).await?);
        let dir = broker.scratch_dir();
        let (figure, file) =
            tokio::task::spawn_blocking(move || ceiling::page_cache_write(&dir, volume))
                .await
                .context("joining the page-cache write task")??;
        report.page_cache = Some(figure);
        page_cache_file = Some(file);
    }

    let partitions = client::ensure_topic(&bootstrap, &topic, args.partitions).await?;
    let settings = client::Settings {
        bootstrap: bootstrap.clone(),
        topic: topic.clone(),
        size: args.size,
        compression: args.compression,
        acks: args.acks.clone(),
        stall,
        producer_config: args.producer_config.clone(),
        consumer_config: consumer.consumer_config.clone(),
    };

    match (mode, compare) {
        (Mode::Produce, None) => {
            report.push(run_produce(&settings, partitions, args.messages, "produce").await?);
        }
        (Mode::Produce, Some(compare)) => {
            let mut variant = settings.clone();
            variant
                .producer_config
                .extend(compare.variant.iter().cloned());
            report.compared = Some(compare.variant.clone());
            for round in 0..compare.rounds {
                // The two take turns going first, so neither always follows the other's writes.
                let runs = [(&settings, report::BASELINE), (&variant, report::VARIANT)];
                let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for (s, label) in order.map(|i| runs[i]) {
                    report.push(run_produce(s, partitions, args.messages, label).await?);
                }
            }
        }
        (Mode::Consume, _) => {
            let available = {
                let s = settings.clone();
                tokio::task::spawn_blocking(move || client::available(&s)).await??
            };
            if available < args.messages {
                let missing = args.messages - available;
                report.push(run_produce(&settings, partitions, missing, "produce (setup)").await?);
            }
            report.push(run_consume(&settings, args.messages).await?);
        }
        (Mode::All, _) => {
            report.push(run_produce(&settings, partitions, args.messages, "produce").await?);
            report.push(run_consume(&settings, args.messages).await?);
        }
    }

    drop(page_cache_file);
    report.print();
    if let Some(path) = &args.json {
        report
            .write_json(path)
            .with_context(|| format!("writing --json {}", path.display()))?;
    }
    Ok(())
}

pub(crate) async fn run_produce(
    settings: &client::Settings,
    partitions: i32,
    messages: u64,
    label: &'static str,
) -> anyhow::Result<Phase> {
    let s = settings.clone();
    tokio::task::spawn_blocking(move || client::produce(&s, partitions, messages, label))
        .await
        .context("joining the produce task")?
}

pub(crate) async fn run_consume(
    settings: &client::Settings,
    messages: u64,
) -> anyhow::Result<Phase> {
    let s = settings.clone();
    tokio::task::spawn_blocking(move || client::consume(&s, messages))
        .await
        .context("joining the consume task")?
}

pub(crate) fn unique_topic() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "starling-bench-{}-{:x}",
        std::process::id(),
        nanos & 0xffff_ffff
    )
}
