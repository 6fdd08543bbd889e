//! Producing for group tests: [`Producer`] sends keyed messages to explicit partitions and
//! keeps every delivery report as a [`Produced`]; [`BackgroundProducer`] keeps producing in
//! its own thread; [`end_offsets`] says where each partition ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};

use super::tp::{tp, Tp};
use crate::common::client_config;

/// One acknowledged message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: String,
}

#[derive(Default)]
pub struct Deliveries {
    ok: Mutex<Vec<Produced>>,
    failed: Mutex<Vec<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => self.ok.lock().unwrap().push(Produced {
                topic: m.topic().to_string(),
                partition: m.partition(),
                offset: m.offset(),
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            }),
            Err((e, m)) => self.failed.lock().unwrap().push(format!(
                "{}/{} key {:?}: {e}",
                m.topic(),
                m.partition(),
                m.key().map(String::from_utf8_lossy)
            )),
        }
    }
}

/// A producer that keeps every delivery report.
pub struct Producer {
    inner: ThreadedProducer<Deliveries>,
}

impl Producer {
    pub fn new(bootstrap: &str) -> Producer {
        let inner = client_config(
            bootstrap,
            &[
                ("acks", "all"),
                ("linger.ms", "2"),
                ("message.timeout.ms", "30000"),
                // Partitions added while the producer lives become known within a second.
                ("topic.metadata.refresh.interval.ms", "1000"),
            ],
        )
        .create_with_context(Deliveries::default())
        .expect("create producer");
        Producer { inner }
    }

    /// Enqueues one message with key `key` (the value repeats it) to an explicit partition.
    pub fn send(&self, topic: &str, partition: i32, key: &str) {
        let value = format!("value of {key}");
        let mut record = BaseRecord::to(topic)
            .partition(partition)
            .key(key)
            .payload(&value);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.inner.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(_), r)) if Instant::now() < deadline => {
                    record = r;
                    thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => panic!("enqueueing {key} for {topic}/{partition}: {e}"),
            }
        }
    }

    /// Waits for every delivery report; panics if any message failed.
    pub fn flush(&self) {
        self.inner
            .flush(Duration::from_secs(30))
            .expect("producer flush");
        let failed = self.inner.context().failed.lock().unwrap().clone();
        assert!(failed.is_empty(), "failed deliveries: {failed:?}");
    }

    /// Everything acknowledged so far.
    pub fn produced(&self) -> Vec<Produced> {
        self.inner.context().ok.lock().unwrap().clone()
    }

    /// Sends `count` messages round-robin over `partitions` of `topic` with keys
    /// `{tag}-{seq:06}`, and waits for them.
    pub fn send_batch(&self, topic: &str, partitions: i32, tag: &str, count: usize) {
        for seq in 0..count {
            self.send(
                topic,
                (seq % partitions as usize) as i32,
                &format!("{tag}-{seq:06}"),
            );
        }
        self.flush();
    }
}

/// Produces continuously in its own thread: one message to each listed partition every
/// `interval`, keys `{tag}-{seq:07}` with one sequence over all partitions.
pub struct BackgroundProducer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    producer: Arc<Producer>,
}

impl BackgroundProducer {
    pub fn start(
        producer: Arc<Producer>,
        targets: Vec<Tp>,
        tag: &str,
        interval: Duration,
    ) -> BackgroundProducer {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, p, tag) = (stop.clone(), producer.clone(), tag.to_string());
        let handle = thread::spawn(move || {
            let mut seq = 0u64;
            while !s.load(Ordering::Relaxed) {
                for (topic, partition) in &targets {
                    p.send(topic, *partition, &format!("{tag}-{seq:07}"));
                    seq += 1;
                }
                thread::sleep(interval);
            }
        });
        BackgroundProducer {
            stop,
            handle: Some(handle),
            producer,
        }
    }

    /// Number of messages acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.producer.inner.context().ok.lock().unwrap().len()
    }

    /// Stops producing, waits for every delivery and returns all acknowledged messages.
    pub fn stop(mut self) -> Vec<Produced> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("producer thread");
        }
        self.producer.flush();
        self.producer.produced()
    }
}

impl Drop for BackgroundProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// End offsets of every listed partition, by acknowledged message (max offset + 1).
pub fn end_offsets(produced: &[Produced]) -> BTreeMap<Tp, i64> {
    let mut out: BTreeMap<Tp, i64> = BTreeMap::new();
    for p in produced {
        let e = out.entry(tp(&p.topic, p.partition)).or_insert(0);
        *e = (*e).max(p.offset + 1);
    }
    out
}
