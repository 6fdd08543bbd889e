//! The librdkafka side of the bench: topic set-up, the producer and the consumer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::report::{progress_bar, Phase};
use crate::Compression;

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// What the producer and the consumer need to know.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bootstrap: String,
    pub topic: String,
    pub size: usize,
    pub compression: Compression,
    pub acks: String,
    /// Give up when nothing moved for this long.
    pub stall: Duration,
    /// Extra producer properties (`--producer-config`), applied over the defaults below.
    pub producer_config: Vec<(String, String)>,
    /// Extra consumer properties (`--consumer-config`).
    pub consumer_config: Vec<(String, String)>,
}

fn with_overrides(mut config: ClientConfig, overrides: &[(String, String)]) -> ClientConfig {
    for (k, v) in overrides {
        config.set(k, v);
    }
    config
}

/// Counters and the last error, shared between librdkafka's callbacks and the bench loop.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) delivered: AtomicU64,
    /// Payload bytes of the delivered messages.
    pub(crate) delivered_bytes: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) first_failure: Mutex<Option<String>>,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn last_error(&self) -> String {
        self.last_error
            .lock()
            .map(|e| e.clone())
            .ok()
            .flatten()
            .unwrap_or_else(|| "none reported".to_string())
    }
}

/// Client context that keeps librdkafka quiet on the terminal (its logs go to tracing at
/// debug level) and records delivery results.
pub(crate) struct BenchContext(pub(crate) Arc<Shared>);

impl ClientContext for BenchContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(target: "librdkafka", "{level:?} {fac}: {log_message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "error {error}: {reason}");
        if let Ok(mut e) = self.0.last_error.lock() {
            *e = Some(format!("{error}: {reason}"));
        }
    }
}

impl ProducerContext for BenchContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
                self.0
                    .delivered_bytes
                    .fetch_add(m.payload_len() as u64, Ordering::Relaxed);
            }
            Err((err, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut f) = self.0.first_failure.lock() {
                    f.get_or_insert_with(|| err.to_string());
                }
            }
        }
    }
}

impl ConsumerContext for BenchContext {}

/// Creates the topic when it does not exist yet; returns its partition count.
pub async fn ensure_topic(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<i32> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .context("creating the admin client")?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(15)));
    let results = admin
        .create_topics([&new_topic], &opts)
        .await
        .with_context(|| format!("CreateTopics {topic} against {bootstrap}"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    drop(admin);

    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        // The topic's metadata may take a moment to show its partitions.
        let consumer = metadata_client(&bootstrap)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let count = partition_count(&consumer, &topic)?;
            if count > 0 {
                return Ok(count);
            }
            if Instant::now() > deadline {
                bail!("topic {topic} shows no partitions in Metadata after creation");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .context("joining the metadata task")?
}

/// How many of `topic`'s partitions have a leader, as Metadata from `bootstrap` says.
pub async fn led_partitions(bootstrap: &str, topic: &str) -> anyhow::Result<i32> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer = metadata_client(&bootstrap)?;
        let md = consumer
            .fetch_metadata(Some(&topic), METADATA_TIMEOUT)
            .with_context(|| format!("Metadata for {topic}"))?;
        let led = md
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions())
            .filter(|p| p.leader() >= 0 && p.error().is_none())
            .count();
        Ok(i32::try_from(led)?)
    })
    .await
    .context("joining the metadata task")?
}

/// Messages the topic holds, summed over its partitions (high watermark minus low).
pub fn available(settings: &Settings) -> anyhow::Result<u64> {
    let consumer = metadata_client(&settings.bootstrap)?;
    let count = partition_count(&consumer, &settings.topic)?;
    let mut total = 0u64;
    for p in 0..count {
        let (low, high) = consumer
            .fetch_watermarks(&settings.topic, p, METADATA_TIMEOUT)
            .with_context(|| format!("ListOffsets {}/{p}", settings.topic))?;
        total += u64::try_from(high - low).unwrap_or(0);
    }
    Ok(total)
}

fn metadata_client(bootstrap: &str) -> anyhow::Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .context("creating a metadata client")
}

fn partition_count<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> anyhow::Result<i32> {
    let md = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .with_context(|| format!("Metadata for {topic}"))?;
    let count = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    Ok(i32::try_from(count)?)
}

/// Payload source: text-like bytes (32 symbols), so that compressed runs compress the way
/// ordinary text does. Each message takes a window at a different offset.
fn payload_pool(size: usize) -> Vec<u8> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz ,.-:\n";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..size + 4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x >> 59) as usize]
        })
        .collect()
}

/// Produces `messages` messages round-robin over `partitions` partitions and waits until
/// every one is acknowledged.
///
/// One more message goes first, to partition 0, and the clock starts when it is acknowledged:
/// the client's start-up (connecting, metadata, and for an idempotent producer its producer
/// id, which librdkafka first asks for from a 500 ms timer started when the client is created)
/// is reported apart, as [`Phase::startup_seconds`], not spread over the throughput.
pub fn produce(
    settings: &Settings,
    partitions: i32,
    messages: u64,
    label: &'static str,
) -> anyhow::Result<Phase> {
    let shared = Arc::new(Shared::default());
    let created = Instant::now();
    let timeout_ms = settings.stall.as_millis().max(30_000).to_string();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap)
        .set("acks", &settings.acks)
        .set("compression.type", settings.compression.as_str())
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "100000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "262144")
        .set("message.timeout.ms", &timeout_ms)
        .set("enable.idempotence", "false");
    let producer: BaseProducer<BenchContext> = with_overrides(config, &settings.producer_config)
        .create_with_context(BenchContext(shared.clone()))
        .context("creating the producer")?;

    let pool = payload_pool(settings.size);
    let bar = progress_bar(messages, label, false);
    let mut last_seen = 0u64;
    let mut last_progress = Instant::now();
    let mut check_stall = |done: u64| -> anyhow::Result<()> {
        if done != last_seen {
            last_seen = done;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > settings.stall {
            bail!(
                "{label}: no delivery for {:?} ({done} of {messages} acknowledged); last client error: {}",
                settings.stall,
                shared.last_error()
            );
        }
        Ok(())
    };
    // Delivery reports of the measured messages (the first message is not one of them).
    let answered = || {
        (shared.delivered.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed))
            .saturating_sub(1)
    };

    let first = BaseRecord::<(), [u8], ()>::to(&settings.topic)
        .partition(0)
        .payload(&pool[..settings.size]);
    producer
        .send(first)
        .map_err(|(e, _)| e)
        .with_context(|| format!("{label}: enqueueing the first message"))?;
    while shared.delivered.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed) == 0 {
        if created.elapsed() > settings.stall {
            bail!(
                "{label}: the first message was not acknowledged within {:?}; last client error: {}",
                settings.stall,
                shared.last_error()
            );
        }
        producer.poll(Duration::from_millis(1));
    }
    if shared.failed.load(Ordering::Relaxed) > 0 {
        let first = shared.first_failure.lock().ok().and_then(|f| f.clone());
        bail!(
            "{label}: the first message failed: {}",
            first.unwrap_or_default()
        );
    }
    let startup_seconds = created.elapsed().as_secs_f64();

    let start = Instant::now();
    for i in 0..messages {
        let offset = ((i.wrapping_mul(2654435761)) % 4096) as usize;
        let payload = &pool[offset..offset + settings.size];
        let partition = (i % partitions as u64) as i32;
        let mut record = BaseRecord::<(), [u8], ()>::to(&settings.topic)
            .partition(partition)
            .payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                    let done = answered();
                    bar.set_position(done);
                    check_stall(done)?;
                }
                Err((e, _)) => bail!("{label}: enqueueing message {i}: {e}"),
            }
        }
        if i & 4095 == 0 {
            producer.poll(Duration::ZERO);
            bar.set_position(answered());
        }
    }
    loop {
        let done = answered();
        bar.set_position(done);
        if done >= messages {
            break;
        }
        check_stall(done)?;
        producer.poll(Duration::from_millis(50));
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    producer
        .flush(Duration::from_secs(10))
        .context("flushing the producer")?;

    let failed = shared.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = shared
            .first_failure
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default();
        bail!("{label}: {failed} of {messages} messages failed delivery; first failure: {first}");
    }
    Ok(Phase {
        label,
        messages,
        bytes: messages * settings.size as u64,
        seconds,
        startup_seconds: Some(startup_seconds),
    })
}

/// Reads `messages` messages from the beginning of every partition of the topic.
pub fn consume(settings: &Settings, messages: u64) -> anyhow::Result<Phase> {
    let shared = Arc::new(Shared::default());
    // librdkafka wants a group.id for assign(); nothing is committed and no group is joined.
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap)
        .set("group.id", "starling-bench")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.min.bytes", "1")
        .set("fetch.wait.max.ms", "100")
        // Moderate fetch responses: against Starling, 1-4 MiB responses measured about twice as
        // fast as librdkafka's 50 MB default (see docs/BENCHMARKS.md).
        .set("fetch.max.bytes", "4194304")
        .set("max.partition.fetch.bytes", "4194304")
        .set("queued.min.messages", "200000")
        .set("queued.max.messages.kbytes", "262144")
        .set("check.crcs", "false");
    let consumer: BaseConsumer<BenchContext> = with_overrides(config, &settings.consumer_config)
        .create_with_context(BenchContext(shared.clone()))
        .context("creating the consumer")?;

    let partitions = partition_count(&consumer, &settings.topic)?;
    if partitions == 0 {
        bail!("topic {} has no partitions", settings.topic);
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(&settings.topic, p, Offset::Beginning)?;
    }

    let bar = progress_bar(messages, "consume", false);
    let mut count = 0u64;
    let mut bytes = 0u64;
    // Set while polls come back empty; reading the clock only then keeps it off the hot path.
    let mut idle_since: Option<Instant> = None;
    let start = Instant::now();
    consumer.assign(&tpl).context("assigning the partitions")?;
    while count < messages {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                let len = msg.payload_len();
                if len != settings.size {
                    bail!(
                        "consume: message at {}/{}@{} has {len} payload bytes, expected {}",
                        msg.topic(),
                        msg.partition(),
                        msg.offset(),
                        settings.size
                    );
                }
                count += 1;
                bytes += len as u64;
                idle_since = None;
                if count & 4095 == 0 {
                    bar.set_position(count);
                }
                continue;
            }
            Some(Err(e)) => {
                tracing::debug!("consume: {e}");
                if let Ok(mut le) = shared.last_error.lock() {
                    *le = Some(e.to_string());
                }
            }
            None => {}
        }
        let now = Instant::now();
        if now.duration_since(*idle_since.get_or_insert(now)) > settings.stall {
            bail!(
                "consume: nothing received for {:?} ({count} of {messages} messages); last client error: {}",
                settings.stall,
                shared.last_error()
            );
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(Phase {
        label: "consume",
        messages: count,
        bytes,
        seconds,
        startup_seconds: None,
    })
}
