//! The steady-rate producer of the rebalance bench.
//!
//! One thread sends `rate` messages per second for the whole run, message `i` to partition
//! `i mod partitions`, so every partition gets the same rate. Each payload starts with the
//! global sequence number and the send time on the bench clock (both little-endian `u64`),
//! so a consumer's receipt can be matched to what was produced, and the delivery reports of
//! the acknowledged messages are kept for the loss check.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::trace::{Acked, Clock, Micros};

/// Bytes at the start of every payload: sequence number and send time.
pub const HEADER_LEN: usize = 16;

/// Writes the payload header.
pub fn encode_header(buf: &mut [u8], seq: u64, sent: Micros) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..16].copy_from_slice(&sent.to_le_bytes());
}

/// Reads `(seq, sent)` from a payload, if it is long enough.
pub fn decode_header(payload: &[u8]) -> Option<(u64, Micros)> {
    let seq = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let sent = u64::from_le_bytes(payload.get(8..16)?.try_into().ok()?);
    Some((seq, sent))
}

#[derive(Default)]
struct Deliveries {
    acked: Mutex<Vec<Acked>>,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

struct DeliveryContext(Arc<Deliveries>);

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(target: "librdkafka", "producer {level:?} {fac}: {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "producer error {error}: {reason}");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                if let Some((seq, _)) = m.payload().and_then(decode_header) {
                    let acked = Acked {
                        seq,
                        partition: m.partition(),
                        offset: m.offset(),
                    };
                    if let Ok(mut a) = self.0.acked.lock() {
                        a.push(acked);
                    }
                }
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut f) = self.0.first_failure.lock() {
                    f.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

/// What the producer thread needs.
#[derive(Debug, Clone)]
pub struct ProducerSpec {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    /// Messages per second, over all partitions.
    pub rate: u32,
    /// Payload bytes (at least [`HEADER_LEN`]).
    pub size: usize,
}

/// What the producer did, once stopped.
pub struct Produced {
    pub acked: Vec<Acked>,
    pub failed: u64,
    pub first_failure: Option<String>,
    pub sent: u64,
    /// When the last message was handed to librdkafka.
    pub stopped_at: Micros,
}

/// The running producer thread.
pub struct SteadyProducer {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    deliveries: Arc<Deliveries>,
    thread: Option<JoinHandle<anyhow::Result<Micros>>>,
}

impl SteadyProducer {
    pub fn start(spec: ProducerSpec, clock: Clock) -> anyhow::Result<SteadyProducer> {
        let deliveries = Arc::new(Deliveries::default());
        let producer: BaseProducer<DeliveryContext> = ClientConfig::new()
            .set("bootstrap.servers", &spec.bootstrap)
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "60000")
            .set("enable.idempotence", "false")
            .set_log_level(RDKafkaLogLevel::Warning)
            .create_with_context(DeliveryContext(deliveries.clone()))
            .context("creating the producer")?;
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), sent.clone());
        let thread = std::thread::Builder::new()
            .name("bench-producer".into())
            .spawn(move || produce_loop(&producer, &spec, clock, &s, &n))
            .context("spawning the producer thread")?;
        Ok(SteadyProducer {
            stop,
            sent,
            deliveries,
            thread: Some(thread),
        })
    }

    /// Stops sending, waits for every delivery report and returns what was acknowledged.
    pub fn stop(mut self) -> anyhow::Result<Produced> {
        self.stop.store(true, Ordering::Relaxed);
        let stopped_at = match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow::anyhow!("the producer thread panicked"))??,
            None => bail!("the producer was already stopped"),
        };
        let acked = std::mem::take(&mut *self.deliveries.acked.lock().expect("deliveries lock"));
        let first_failure = self
            .deliveries
            .first_failure
            .lock()
            .ok()
            .and_then(|f| f.clone());
        Ok(Produced {
            acked,
            failed: self.deliveries.failed.load(Ordering::Relaxed),
            first_failure,
            sent: self.sent.load(Ordering::Relaxed),
            stopped_at,
        })
    }
}

impl Drop for SteadyProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends on schedule until told to stop, then flushes. Returns when the last message was sent.
fn produce_loop(
    producer: &BaseProducer<DeliveryContext>,
    spec: &ProducerSpec,
    clock: Clock,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> anyhow::Result<Micros> {
    let mut payload = vec![b'.'; spec.size.max(HEADER_LEN)];
    let interval_us = 1_000_000.0 / f64::from(spec.rate.max(1));
    let start = clock.now();
    let mut seq: u64 = 0;
    let mut last_sent = start;
    'run: while !stop.load(Ordering::Relaxed) {
        let now = clock.now();
        // Every message whose slot has come is sent now; the schedule does not drift.
        let due = ((now - start) as f64 / interval_us) as u64 + 1;
        while seq < due {
            let at = clock.now();
            encode_header(&mut payload, seq, at);
            let partition = (seq % spec.partitions as u64) as i32;
            let mut record = BaseRecord::<(), [u8], ()>::to(&spec.topic)
                .partition(partition)
                .payload(&payload);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(5));
                        if stop.load(Ordering::Relaxed) {
                            break 'run;
                        }
                    }
                    Err((e, _)) => bail!("enqueueing message {seq}: {e}"),
                }
            }
            last_sent = at;
            seq += 1;
            sent.store(seq, Ordering::Relaxed);
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1));
    }
    producer
        .flush(Duration::from_secs(60))
        .context("flushing the producer")?;
    Ok(last_sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut buf = vec![0u8; 32];
        encode_header(&mut buf, 123_456_789, 42);
        assert_eq!(decode_header(&buf), Some((123_456_789, 42)));
        assert_eq!(decode_header(&buf[..10]), None);
    }
}
