//! `starling bench compaction`: whether the log cleaner's I/O bound
//! (`log.cleaner.io.max.bytes.per.second`) holds while producers and consumers run, and what
//! it costs or saves the producers.
//!
//! Each run starts its own broker (a fresh temporary directory) with small segments, creates a
//! compacted topic, and for `--duration` seconds runs one librdkafka producer writing keyed
//! updates over `--keys` keys as fast as it can (or at `--produce-rate`) and one consumer
//! reading the topic from its start. Meanwhile the bench reads the broker's `/metrics` every
//! `--sample-ms` for the cleaner's counters. The bounded run has the cleaner at
//! `--cleaner-rate`; then, unless `--no-unbounded`, the same run with the cleaner unbounded
//! (Kafka's default), and the two runs' producer throughputs are compared.
//!
//! The broker counts the cleaner's bytes as it reads and writes them, and its time as it goes,
//! so the counters' deltas between samples are the cleaner's rate over each interval: the
//! highest rate over 1 s is taken over sample spans of at least 1 s, the mean over the run is
//! the bytes over its length.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::broker::Broker;
use crate::client::{BenchContext, Shared};
use crate::parse_key_value;

const TOPIC: &str = "bench-compaction";
/// The width of the windows the cleaner's rate is taken over.
const WINDOW_SECONDS: f64 = 1.0;

/// Arguments of `starling bench compaction`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompactionArgs {
    /// The cleaner's I/O bound in the bounded run (`log.cleaner.io.max.bytes.per.second`, reads
    /// and writes together): bytes per second, optionally with a unit: KiB, MiB, GiB, kB, MB, GB.
    #[arg(long, value_name = "RATE", default_value = "8MiB", value_parser = parse_rate)]
    pub cleaner_rate: u64,
    /// Distinct keys the producer updates (picked at random for each message).
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Value size of each update, in bytes (keys are 12 bytes: `key-NNNNNNNN`).
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub value_size: usize,
    /// Seconds each run produces and consumes.
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0)]
    pub duration: f64,
    /// Cap the producer at this many messages per second (default: as fast as it goes).
    #[arg(long, value_name = "MSGS")]
    pub produce_rate: Option<u64>,
    /// Partitions of the compacted topic (keys are spread over them by librdkafka's hash).
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// The topic's `segment.bytes`: small, so that segments roll and can be cleaned (1 MiB
    /// segments cost the producer several times its throughput in rolls; see docs/BENCHMARKS.md).
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub segment_bytes: u64,
    /// Topic property of the compacted topic (`KEY=VALUE`), e.g. `min.cleanable.dirty.ratio=0.3`.
    /// Repeatable; applied over `cleanup.policy=compact` and `segment.bytes`.
    #[arg(long = "topic-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub topic_config: Vec<(String, String)>,
    /// How often the broker's cleaner counters are read, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    pub sample_ms: u64,
    /// Only the bounded run: no unbounded run to compare with.
    #[arg(long)]
    pub no_unbounded: bool,
    /// Broker property for both brokers the bench starts (`KEY=VALUE`), applied after the
    /// bench's own (`log.cleaner.backoff.ms=250`, `log.cleaner.threads=1`). Repeatable.
    #[arg(long = "broker-override", value_name = "KEY=VALUE")]
    pub broker_overrides: Vec<String>,
    /// Extra librdkafka property for the producer, e.g. `linger.ms=20`. Repeatable.
    #[arg(long = "producer-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub producer_config: Vec<(String, String)>,
    /// Extra librdkafka property for the consumer. Repeatable.
    #[arg(long = "consumer-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub consumer_config: Vec<(String, String)>,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

/// `8MiB`, `512KiB`, `10MB`, `1048576`: bytes per second (a trailing `/s` is allowed).
fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a rate such as 8MiB or 1048576"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        other => return Err(format!("unknown unit {other:?} in {s:?}")),
    };
    let rate = (number * scale).round();
    if !(1.0..9e18).contains(&rate) {
        return Err(format!("{s:?} is not a rate of at least 1 byte per second"));
    }
    Ok(rate as u64)
}

/// One reading of the broker's cleaner counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counters {
    read: u64,
    written: u64,
    passes: u64,
    removed: u64,
    seconds: f64,
}

impl Counters {
    fn bytes(&self) -> u64 {
        self.read + self.written
    }
}

/// Counters at `t` seconds into the run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    t: f64,
    c: Counters,
}

/// What one run measured.
#[derive(Debug, Clone)]
struct RunFigures {
    label: &'static str,
    bound: Option<u64>,
    seconds: f64,
    produced: u64,
    produced_bytes: u64,
    consumed: u64,
    consumed_bytes: u64,
    cleaner: Counters,
    mean_rate: f64,
    max_window_rate: f64,
    dirty_ratios: BTreeMap<i32, f64>,
    samples: Vec<Sample>,
}

impl RunFigures {
    fn produce_rate(&self) -> f64 {
        self.produced as f64 / self.seconds
    }
    fn produce_mb(&self) -> f64 {
        self.produced_bytes as f64 / 1e6 / self.seconds
    }
    fn consume_rate(&self) -> f64 {
        self.consumed as f64 / self.seconds
    }
    fn consume_mb(&self) -> f64 {
        self.consumed_bytes as f64 / 1e6 / self.seconds
    }
    fn max_over_bound(&self) -> Option<f64> {
        self.bound.map(|b| self.max_window_rate / b as f64)
    }
    fn mean_over_bound(&self) -> Option<f64> {
        self.bound.map(|b| self.mean_rate / b as f64)
    }
    /// The cleaner's rate while it was cleaning (bytes over the time its passes took).
    fn busy_rate(&self) -> Option<f64> {
        (self.cleaner.seconds > 0.0).then(|| self.cleaner.bytes() as f64 / self.cleaner.seconds)
    }
    fn max_dirty_ratio(&self) -> Option<f64> {
        self.dirty_ratios.values().copied().reduce(f64::max)
    }
}

pub async fn run(args: CompactionArgs) -> anyhow::Result<()> {
    if args.keys == 0 || args.value_size == 0 || args.partitions < 1 {
        bail!("--keys, --value-size and --partitions must be at least 1");
    }
    if !args.duration.is_finite() || args.duration <= 0.0 {
        bail!("--duration must be positive");
    }
    if args.sample_ms == 0 {
        bail!("--sample-ms must be at least 1");
    }
    let mut runs = vec![one_run(&args, "bounded", Some(args.cleaner_rate)).await?];
    if !args.no_unbounded {
        runs.push(one_run(&args, "unbounded", None).await?);
    }
    print(&args, &runs);
    if let Some(path) = &args.json {
        let mut text = serde_json::to_string_pretty(&to_json(&args, &runs))?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("writing --json {}", path.display()))?;
    }
    Ok(())
}

/// Starts a broker with the cleaner at `bound` (None: unbounded), measures, stops it.
async fn one_run(
    args: &CompactionArgs,
    label: &'static str,
    bound: Option<u64>,
) -> anyhow::Result<RunFigures> {
    let mut overrides = vec![
        "log.cleaner.backoff.ms=250".to_string(),
        "log.cleaner.threads=1".to_string(),
    ];
    if let Some(rate) = bound {
        overrides.push(format!("log.cleaner.io.max.bytes.per.second={rate}"));
    }
    overrides.extend(args.broker_overrides.iter().cloned());
    let broker = Broker::start(None, overrides).await?;
    let mut figures = None;
    let outcome = async {
        figures = Some(measure(args, label, bound, &broker).await?);
        Ok(())
    }
    .await;
    broker.finish(outcome)?;
    figures.context("the run gave no figures")
}

async fn measure(
    args: &CompactionArgs,
    label: &'static str,
    bound: Option<u64>,
    broker: &Broker,
) -> anyhow::Result<RunFigures> {
    let bootstrap = broker.bootstrap().to_string();
    let admin = broker
        .admin()
        .context("the bench's broker has no admin endpoint")?
        .to_string();
    create_topic(&bootstrap, args).await?;
    let initial = cleaner_metrics(&admin).await?;

    let (producer, producer_shared) = make_producer(&bootstrap, args)?;
    let (consumer, consumer_shared) = make_consumer(&bootstrap, args)?;

    let duration = Duration::from_secs_f64(args.duration);
    let bar = run_bar(label, duration);
    let stop = Arc::new(AtomicBool::new(false));
    // Stops the clients however this function ends (a failed /metrics read included).
    let _stop_clients = StopOnDrop(stop.clone());
    let start = Instant::now();
    let producing = {
        let (stop, args) = (stop.clone(), args.clone());
        tokio::task::spawn_blocking(move || produce_loop(&producer, &args, &stop))
    };
    let consuming = {
        let (stop, shared) = (stop.clone(), consumer_shared.clone());
        tokio::task::spawn_blocking(move || consume_loop(&consumer, &shared, &stop))
    };

    let mut samples = vec![Sample {
        t: 0.0,
        c: initial.counters,
    }];
    let mut ticker = tokio::time::interval(Duration::from_millis(args.sample_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut last: Scrape;
    loop {
        ticker.tick().await;
        let t = start.elapsed();
        let at_end = t >= duration;
        if at_end {
            stop.store(true, Ordering::Relaxed);
        }
        last = cleaner_metrics(&admin).await?;
        samples.push(Sample {
            t: if at_end {
                duration.as_secs_f64()
            } else {
                t.as_secs_f64()
            },
            c: last.counters,
        });
        let delivered = producer_shared.delivered.load(Ordering::Relaxed);
        bar.set_position(t.as_millis().min(duration.as_millis()) as u64);
        bar.set_message(format!(
            "produced {delivered}, consumed {}, cleaner {:.1} MB in {} passes",
            consumer_shared.delivered.load(Ordering::Relaxed),
            (last.counters.bytes() - initial.counters.bytes()) as f64 / 1e6,
            last.counters.passes - initial.counters.passes
        ));
        if at_end {
            break;
        }
        if producing.is_finished() || consuming.is_finished() {
            stop.store(true, Ordering::Relaxed);
            break;
        }
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64().min(duration.as_secs_f64());
    let (produced, produced_bytes) = producing.await.context("joining the producer")??;
    let (consumed, consumed_bytes) = consuming.await.context("joining the consumer")??;

    let rebased: Vec<Sample> = samples
        .iter()
        .map(|s| Sample {
            t: s.t,
            c: Counters {
                read: s.c.read - initial.counters.read,
                written: s.c.written - initial.counters.written,
                passes: s.c.passes - initial.counters.passes,
                removed: s.c.removed - initial.counters.removed,
                seconds: s.c.seconds - initial.counters.seconds,
            },
        })
        .collect();
    let end = rebased.last().map(|s| s.c).unwrap_or_default();
    Ok(RunFigures {
        label,
        bound,
        seconds,
        produced,
        produced_bytes,
        consumed,
        consumed_bytes,
        cleaner: end,
        mean_rate: end.bytes() as f64 / seconds,
        max_window_rate: max_window_rate(&rebased, WINDOW_SECONDS),
        dirty_ratios: last.dirty_ratios,
        samples: rebased,
    })
}

/// Sets the flag the producer and consumer loops watch when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The highest rate of the counters over sample spans of at least `width` seconds.
fn max_window_rate(samples: &[Sample], width: f64) -> f64 {
    let mut best: f64 = 0.0;
    for (i, s) in samples.iter().enumerate() {
        // The latest earlier sample at least `width` before this one.
        if let Some(p) = samples[..i]
            .iter()
            .rev()
            .find(|p| s.t - p.t >= width - 1e-9)
        {
            let rate = (s.c.bytes() - p.c.bytes()) as f64 / (s.t - p.t);
            best = best.max(rate);
        }
    }
    best
}

/// The cleaner's counters and the topic's dirty ratios, from `GET /metrics`.
#[derive(Debug, Clone, Default)]
struct Scrape {
    counters: Counters,
    dirty_ratios: BTreeMap<i32, f64>,
}

async fn cleaner_metrics(admin: &str) -> anyhow::Result<Scrape> {
    let mut stream = tokio::net::TcpStream::connect(admin)
        .await
        .with_context(|| format!("connecting to the admin endpoint {admin}"))?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .context("no HTTP header end in the /metrics answer")?;
    if head.split_whitespace().nth(1) != Some("200") {
        bail!("GET /metrics: {}", head.lines().next().unwrap_or_default());
    }
    parse_metrics(body)
}

fn parse_metrics(body: &str) -> anyhow::Result<Scrape> {
    let mut scrape = Scrape::default();
    let mut seen = 0;
    for line in body.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let count = value as u64;
        match name {
            "starling_log_cleaner_read_bytes_total" => scrape.counters.read = count,
            "starling_log_cleaner_written_bytes_total" => scrape.counters.written = count,
            "starling_log_cleaner_passes_total" => scrape.counters.passes = count,
            "starling_log_cleaner_records_removed_total" => scrape.counters.removed = count,
            "starling_log_cleaner_time_seconds_total" => scrape.counters.seconds = value,
            _ => {
                if let Some(labels) = name.strip_prefix("starling_log_dirty_ratio{") {
                    if labels.contains(&format!("topic=\"{TOPIC}\"")) {
                        if let Some(p) = label(labels, "partition").and_then(|p| p.parse().ok()) {
                            scrape.dirty_ratios.insert(p, value);
                        }
                    }
                }
                continue;
            }
        }
        seen += 1;
    }
    if seen < 5 {
        bail!("/metrics lacks some of the starling_log_cleaner_* counters");
    }
    Ok(scrape)
}

fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let len = labels[start..].find('"')?;
    Some(&labels[start..start + len])
}

async fn create_topic(bootstrap: &str, args: &CompactionArgs) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .context("creating the admin client")?;
    let segment_bytes = args.segment_bytes.to_string();
    let mut topic = NewTopic::new(TOPIC, args.partitions, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", &segment_bytes);
    for (k, v) in &args.topic_config {
        topic = topic.set(k, v);
    }
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(15)));
    for r in admin
        .create_topics([&topic], &opts)
        .await
        .with_context(|| format!("CreateTopics {TOPIC}"))?
    {
        if let Err((name, code)) = r {
            bail!("creating topic {name}: {code}");
        }
    }
    Ok(())
}

type Made<T> = (T, Arc<Shared>);

fn make_producer(
    bootstrap: &str,
    args: &CompactionArgs,
) -> anyhow::Result<Made<BaseProducer<BenchContext>>> {
    let shared = Arc::new(Shared::default());
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "65536")
        .set("message.timeout.ms", "60000")
        .set("enable.idempotence", "false");
    for (k, v) in &args.producer_config {
        config.set(k, v);
    }
    let producer = config
        .create_with_context(BenchContext(shared.clone()))
        .context("creating the producer")?;
    Ok((producer, shared))
}

fn make_consumer(
    bootstrap: &str,
    args: &CompactionArgs,
) -> anyhow::Result<Made<BaseConsumer<BenchContext>>> {
    let shared = Arc::new(Shared::default());
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "starling-bench-compaction")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .set("fetch.max.bytes", "4194304")
        .set("max.partition.fetch.bytes", "4194304")
        .set("check.crcs", "false");
    for (k, v) in &args.consumer_config {
        config.set(k, v);
    }
    let consumer: BaseConsumer<BenchContext> = config
        .create_with_context(BenchContext(shared.clone()))
        .context("creating the consumer")?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..args.partitions {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl).context("assigning the partitions")?;
    Ok((consumer, shared))
}

/// Keyed updates until `stop`; the messages and value bytes acknowledged by then (what is
/// still in flight is waited for, not counted).
fn produce_loop(
    producer: &BaseProducer<BenchContext>,
    args: &CompactionArgs,
    stop: &AtomicBool,
) -> anyhow::Result<(u64, u64)> {
    let shared = producer.context().0.clone();
    let value: Vec<u8> = (0..args.value_size + 4096)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz012345"[(i * 7 + i / 32) % 32])
        .collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let started = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if let Some(rate) = args.produce_rate {
            let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
            if sent >= due {
                producer.poll(Duration::from_millis(1));
                continue;
            }
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("key-{:08}", x % args.keys);
        let at = (x >> 40) as usize % 4096;
        let mut record = BaseRecord::<str, [u8], ()>::to(TOPIC)
            .key(key.as_str())
            .payload(&value[at..at + args.value_size]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                Err((e, _)) => bail!("produce: enqueueing message {sent}: {e}"),
            }
        }
        sent += 1;
        if sent & 1023 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.poll(Duration::ZERO);
    let counted = (
        shared.delivered.load(Ordering::Relaxed),
        shared.delivered_bytes.load(Ordering::Relaxed),
    );
    producer
        .flush(Duration::from_secs(60))
        .context("flushing the producer")?;
    let failed = shared.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = shared.first_failure.lock().ok().and_then(|f| f.clone());
        bail!(
            "produce: {failed} messages failed delivery; first failure: {}",
            first.unwrap_or_default()
        );
    }
    Ok(counted)
}

/// Reads the topic from its start until `stop`: the messages and value bytes received.
fn consume_loop(
    consumer: &BaseConsumer<BenchContext>,
    shared: &Shared,
    stop: &AtomicBool,
) -> anyhow::Result<(u64, u64)> {
    let mut bytes = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                bytes += msg.payload_len() as u64;
            }
            Some(Err(e)) => tracing::debug!("consume: {e}"),
            None => {}
        }
    }
    Ok((shared.delivered.load(Ordering::Relaxed), bytes))
}

fn run_bar(label: &str, duration: Duration) -> ProgressBar {
    let bar = ProgressBar::new(duration.as_millis() as u64);
    if let Ok(style) = ProgressStyle::with_template("{prefix:>10} [{bar:30}] {elapsed:>4} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_string());
    bar
}

fn mib(rate: f64) -> String {
    format!("{:.2}", rate / (1024.0 * 1024.0))
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_string(), |r| format!("{r:.3}"))
}

fn print(args: &CompactionArgs, runs: &[RunFigures]) {
    println!();
    println!(
        "starling bench compaction: {} s per run, {} keys x {} B values, {} partition{}, segment.bytes {}, producer {}",
        args.duration,
        args.keys,
        args.value_size,
        args.partitions,
        if args.partitions == 1 { "" } else { "s" },
        args.segment_bytes,
        args.produce_rate
            .map_or_else(|| "unthrottled".to_string(), |r| format!("capped at {r} msgs/s")),
    );
    println!(
        "each run on its own broker started by the bench (log.cleaner.threads=1, log.cleaner.backoff.ms=250)"
    );
    println!();
    println!(
        "{:<10} {:>10} {:>12} {:>9} {:>12} {:>9}",
        "run", "bound", "produce/s", "MB/s", "consume/s", "MB/s"
    );
    println!("{}", "-".repeat(10 + 10 + 12 + 9 + 12 + 9 + 5));
    for r in runs {
        println!(
            "{:<10} {:>10} {:>12.0} {:>9.1} {:>12.0} {:>9.1}",
            r.label,
            r.bound
                .map_or_else(|| "none".to_string(), |b| mib(b as f64)),
            r.produce_rate(),
            r.produce_mb(),
            r.consume_rate(),
            r.consume_mb()
        );
    }
    println!();
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>9} {:>7} {:>11} {:>7}",
        "cleaner",
        "mean MiB/s",
        "max 1s",
        "busy",
        "mean/bound",
        "max/bnd",
        "MB r+w",
        "passes",
        "removed",
        "dirty"
    );
    println!(
        "{}",
        "-".repeat(10 + 10 + 10 + 10 + 10 + 8 + 9 + 7 + 11 + 7 + 9)
    );
    for r in runs {
        println!(
            "{:<10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>9.1} {:>7} {:>11} {:>7}",
            r.label,
            mib(r.mean_rate),
            mib(r.max_window_rate),
            r.busy_rate().map_or_else(|| "-".to_string(), mib),
            ratio(r.mean_over_bound()),
            ratio(r.max_over_bound()),
            r.cleaner.bytes() as f64 / 1e6,
            r.cleaner.passes,
            r.cleaner.removed,
            r.max_dirty_ratio()
                .map_or_else(|| "-".to_string(), |d| format!("{d:.3}"))
        );
    }
    println!();
    println!(
        "bound: log.cleaner.io.max.bytes.per.second (cleaner reads + writes, MiB = 2^20 bytes); produce/consume MB = 10^6 value bytes"
    );
    println!("mean: cleaner bytes over the run's length");
    println!("max 1s: the highest rate over sample spans of at least 1 s");
    println!("busy: cleaner bytes over the time its passes took (throttled waits included)");
    println!(
        "dirty: the topic's dirty ratio as the cleaner last measured it (highest over partitions)"
    );
    for r in runs {
        println!(
            "{}: {:.1} s of cleaning, {} finished pass{}, over the {:.1} s run",
            r.label,
            r.cleaner.seconds,
            r.cleaner.passes,
            if r.cleaner.passes == 1 { "" } else { "es" },
            r.seconds,
        );
    }
    if let [bounded, unbounded] = runs {
        println!();
        println!(
            "producer throughput, bounded / unbounded cleaner: {:.3} ({:+.1}%)",
            bounded.produce_rate() / unbounded.produce_rate(),
            (bounded.produce_rate() / unbounded.produce_rate() - 1.0) * 100.0
        );
        println!(
            "consumer throughput, bounded / unbounded cleaner: {:.3}",
            bounded.consume_rate() / unbounded.consume_rate()
        );
    }
}

fn to_json(args: &CompactionArgs, runs: &[RunFigures]) -> Value {
    let runs_json: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "run": r.label,
                "bound_bytes_per_sec": r.bound,
                "seconds": r.seconds,
                "produce": {
                    "messages": r.produced,
                    "bytes": r.produced_bytes,
                    "messages_per_sec": r.produce_rate(),
                    "mb_per_sec": r.produce_mb(),
                },
                "consume": {
                    "messages": r.consumed,
                    "bytes": r.consumed_bytes,
                    "messages_per_sec": r.consume_rate(),
                    "mb_per_sec": r.consume_mb(),
                },
                "cleaner": {
                    "read_bytes": r.cleaner.read,
                    "written_bytes": r.cleaner.written,
                    "passes": r.cleaner.passes,
                    "records_removed": r.cleaner.removed,
                    "time_seconds": r.cleaner.seconds,
                    "mean_bytes_per_sec": r.mean_rate,
                    "busy_bytes_per_sec": r.busy_rate(),
                    "max_1s_bytes_per_sec": r.max_window_rate,
                    "mean_over_bound": r.mean_over_bound(),
                    "max_over_bound": r.max_over_bound(),
                },
                "dirty_ratio": r.dirty_ratios.iter()
                    .map(|(p, d)| (p.to_string(), Value::from(*d)))
                    .collect::<serde_json::Map<String, Value>>(),
                "samples": r.samples.iter().map(|s| json!([s.t, s.c.read, s.c.written, s.c.passes, s.c.removed, s.c.seconds])).collect::<Vec<_>>(),
            })
        })
        .collect();
    let ratio = match runs {
        [b, u] => Some(b.produce_rate() / u.produce_rate()),
        _ => None,
    };
    json!({
        "mode": "compaction",
        "config": {
            "cleaner_rate": args.cleaner_rate,
            "keys": args.keys,
            "value_size": args.value_size,
            "duration": args.duration,
            "produce_rate": args.produce_rate,
            "partitions": args.partitions,
            "segment_bytes": args.segment_bytes,
            "sample_ms": args.sample_ms,
        },
        "samples_columns": ["t", "read_bytes", "written_bytes", "passes", "records_removed", "time_seconds"],
        "runs": runs_json,
        "produce_bounded_over_unbounded": ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units() {
        assert_eq!(parse_rate("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse_rate("512KiB/s").unwrap(), 512 << 10);
        assert_eq!(parse_rate("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_rate("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_rate("1.5MiB").unwrap(), 3 << 19);
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("8 furlongs").is_err());
    }

    fn sample(t: f64, bytes: u64, seconds: f64) -> Sample {
        Sample {
            t,
            c: Counters {
                read: bytes,
                seconds,
                ..Counters::default()
            },
        }
    }

    #[test]
    fn the_highest_rate_is_taken_over_sample_spans_of_at_least_the_width() {
        // 4 MB between t = 1 and t = 1.5, then 2 MB/s for two seconds.
        let samples = [
            sample(0.0, 0, 0.0),
            sample(1.0, 0, 0.0),
            sample(1.5, 4_000_000, 0.5),
            sample(2.5, 6_000_000, 1.5),
            sample(3.5, 8_000_000, 2.5),
        ];
        // The half second's 4 MB is measured over the tightest span of 1 s or more before it
        // (0 to 1.5 s), not as 8 MB/s.
        let max = max_window_rate(&samples, 1.0);
        assert!((max - 4e6 / 1.5).abs() < 1.0, "{max}");
        // Over 2 s or more: 6 MB from 0 to 2.5 s.
        let max = max_window_rate(&samples, 2.0);
        assert!((max - 2.4e6).abs() < 1.0, "{max}");
    }

    #[test]
    fn metrics_are_read_by_name() {
        let body = "# HELP x\n\
            starling_log_cleaner_read_bytes_total 100\n\
            starling_log_cleaner_written_bytes_total 50\n\
            starling_log_cleaner_passes_total 3\n\
            starling_log_cleaner_records_removed_total 7\n\
            starling_log_cleaner_time_seconds_total 1.5\n\
            starling_log_dirty_ratio{topic=\"bench-compaction\",partition=\"0\"} 0.25\n\
            starling_log_dirty_ratio{topic=\"other\",partition=\"1\"} 0.75\n";
        let s = parse_metrics(body).unwrap();
        assert_eq!(s.counters.bytes(), 150);
        assert_eq!((s.counters.passes, s.counters.removed), (3, 7));
        assert_eq!(s.counters.seconds, 1.5);
        assert_eq!(s.dirty_ratios, BTreeMap::from([(0, 0.25)]));
        assert!(parse_metrics("nothing 1\n").is_err());
    }
}
