//! librdkafka's idempotent producer (`enable.idempotence=true`, `acks=all`) through faults that
//! make it retry batches the broker may already hold; each test ends with every message the
//! producer got a delivery report for stored exactly once, and each partition's messages in
//! the order they were sent (a message whose delivery failed may be missing, but nothing is
//! stored twice):
//!
//! * the broker killed with SIGKILL and started again on the same port and data directory,
//!   several times mid-stream (with `log.flush.interval.messages=1`, so an acknowledged batch
//!   is on disk before its response; the producer state is read back from the log);
//! * connections cut by a proxy between the producer and the broker right after the broker has
//!   answered a produce request and before the answer reaches the producer, which then sends
//!   the same batch again on a new connection.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PARTITIONS: i32 = 3;
/// Deliveries awaited at once.
const IN_FLIGHT: usize = 200;
/// Kafka's api key of Produce.
const PRODUCE: i16 = 0;

/// The idempotent producer both tests use: small batches (many produce requests), quick
/// reconnects and retries.
fn idempotent_producer(bootstrap: &str) -> FutureProducer {
    producer(
        bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
            ("batch.num.messages", "50"),
            ("retry.backoff.ms", "20"),
            ("reconnect.backoff.ms", "20"),
            ("reconnect.backoff.max.ms", "200"),
        ],
    )
}

/// Message `n` as sent: its value, and the partition it goes to.
fn message(n: u64) -> (String, i32) {
    (format!("m{n:08}"), (n % PARTITIONS as u64) as i32)
}

/// A delivery report: message `n` stored at `offset` of `partition`.
#[derive(Debug, Clone, Copy)]
struct Acked {
    n: u64,
    partition: i32,
    offset: i64,
}

/// What the producer sent and what it was told.
#[derive(Debug, Default)]
struct Sent {
    acked: Vec<Acked>,
    failed: usize,
}

/// How far a stream of messages has got, while it runs.
#[derive(Debug, Default)]
struct Progress {
    /// Set to end the stream early.
    stop: AtomicBool,
    /// Messages handed to the producer.
    sent: AtomicU64,
    /// Messages whose delivery report came (acknowledged or failed).
    reported: AtomicU64,
}

impl Progress {
    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Messages sent and not answered yet.
    fn in_flight(&self) -> u64 {
        self.sent() - self.reported.load(Ordering::Relaxed)
    }
}

/// Sends messages numbered from 0 (see [`message`]) until `total` are sent or `progress.stop`
/// is set, at most [`IN_FLIGHT`] awaiting their delivery report and a few thousand a second;
/// then waits for every report.
async fn send_numbered(
    producer: FutureProducer,
    topic: &str,
    total: u64,
    progress: Arc<Progress>,
) -> Sent {
    let mut out = Sent::default();
    let mut in_flight = FuturesUnordered::new();
    let mut n = 0u64;
    loop {
        if n < total && !progress.stop.load(Ordering::Relaxed) && in_flight.len() < IN_FLIGHT {
            let (value, partition) = message(n);
            let record = FutureRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(&value);
            let delivery = producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .unwrap_or_else(|e| panic!("enqueueing message {n}: {e}"));
            in_flight.push(async move { (n, delivery.await) });
            n += 1;
            progress.sent.store(n, Ordering::Relaxed);
            if n.is_multiple_of(10) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            continue;
        }
        match within(Duration::from_secs(60), "delivery report", in_flight.next()).await {
            Some((n, Ok(Ok(d)))) => out.acked.push(Acked {
                n,
                partition: d.partition,
                offset: d.offset,
            }),
            Some((_, _)) => out.failed += 1,
            None => break,
        }
        progress.reported.fetch_add(1, Ordering::Relaxed);
    }
    out
}

/// Reads the whole topic back and checks it against the delivery reports: every acknowledged
/// message at its acknowledged offset, no message stored twice, each partition in the order
/// sent. Returns how many messages are stored.
fn assert_acked_stored_once_in_order(bootstrap: &str, topic: &str, sent: &Sent) -> usize {
    let counts: Vec<(i32, usize)> = (0..PARTITIONS)
        .map(|p| {
            let (low, high) = watermarks(bootstrap, topic, p);
            assert_eq!(low, 0, "log start of partition {p}");
            (p, high as usize)
        })
        .collect();
    let read = consume_from_start(bootstrap, topic, &counts, Duration::from_secs(60));
    // Each message goes to one partition, so a message stored twice breaks that partition's
    // order too: checking the order finds both.
    let mut stored: HashMap<(i32, i64), u64> = HashMap::new();
    let mut seen: HashSet<u64> = HashSet::new();
    for (p, msgs) in &read {
        let mut previous: Option<(i64, u64)> = None;
        for m in msgs {
            let value = m.value_str();
            let n: u64 = value
                .strip_prefix('m')
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("partition {p} offset {}: {value:?}", m.offset));
            assert_eq!(message(n).1, *p, "message {n} in partition {p}");
            let again = !seen.insert(n);
            if let Some((offset, before)) = previous {
                assert!(
                    n > before,
                    "partition {p}: message {n} at offset {} after message {before} at offset \
                     {offset} ({})",
                    m.offset,
                    if again {
                        "stored twice"
                    } else {
                        "out of order"
                    }
                );
            }
            previous = Some((m.offset, n));
            stored.insert((*p, m.offset), n);
        }
    }
    for a in &sent.acked {
        assert_eq!(
            stored.get(&(a.partition, a.offset)),
            Some(&a.n),
            "acknowledged message {} at partition {} offset {}",
            a.n,
            a.partition,
            a.offset
        );
    }
    stored.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_are_stored_once_in_order_across_repeated_kill9() {
    const KILLS: usize = 3;
    let _dog = watchdog(Duration::from_secs(120));
    let started = Instant::now();
    let mut broker = Broker::with_overrides(&[("log.flush.interval.messages", "1")]);
    broker.pin_port();
    let topic = "idempotent-kill9";
    create_topic(&broker.bootstrap(), topic, PARTITIONS).await;

    let progress = Arc::new(Progress::default());
    let stream = tokio::spawn(send_numbered(
        idempotent_producer(&broker.bootstrap()),
        topic,
        u64::MAX,
        progress.clone(),
    ));
    let mut in_flight_at_kills = Vec::new();
    for kill in 0..KILLS {
        // Let the stream get going (again) before each kill.
        let before = progress.sent();
        let deadline = Instant::now() + Duration::from_secs(20);
        while progress.sent() < before + 3_000 {
            assert!(
                Instant::now() < deadline,
                "kill {kill}: the producer stalled at {before} messages sent"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        in_flight_at_kills.push(progress.in_flight());
        broker.kill9();
        broker.start_again();
    }
    // Some more after the last restart, then let every outstanding message be answered.
    let at_last_restart = progress.sent();
    while progress.sent() < at_last_restart + 2_000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    progress.stop.store(true, Ordering::Relaxed);
    let sent = progress.sent();
    let outcome = within(Duration::from_secs(60), "the producer to finish", stream)
        .await
        .expect("producer task");

    let stored = assert_acked_stored_once_in_order(&broker.bootstrap(), topic, &outcome);
    eprintln!(
        "{KILLS} kill -9s with {in_flight_at_kills:?} messages awaiting delivery reports: sent \
         {sent}, acknowledged {}, failed {}, stored {stored}, in {:?}",
        outcome.acked.len(),
        outcome.failed,
        started.elapsed()
    );
    assert!(
        in_flight_at_kills.iter().all(|&n| n > 0),
        "every kill should find messages in flight: {in_flight_at_kills:?}"
    );
    assert!(
        outcome.acked.len() as u64 >= sent / 2,
        "only {} of {sent} acknowledged",
        outcome.acked.len()
    );
}

/// A TCP proxy in front of the broker that, on every `every`-th produce request it forwards,
/// waits for the broker's response and then closes the connection (to the client and to the
/// broker) instead of passing that response on.
struct CuttingProxy {
    addr: SocketAddr,
    stats: Arc<ProxyStats>,
}

#[derive(Default)]
struct ProxyStats {
    /// Cutting is on while set.
    cutting: AtomicBool,
    produce_requests: AtomicUsize,
    /// Connections closed with a produce response held back.
    cuts: AtomicUsize,
}

impl CuttingProxy {
    /// Binds the proxy's port; clients may connect once [`CuttingProxy::serve`] is called.
    async fn bind() -> (CuttingProxy, TcpListener) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let proxy = CuttingProxy {
            addr: listener.local_addr().unwrap(),
            stats: Arc::new(ProxyStats::default()),
        };
        proxy.stats.cutting.store(true, Ordering::Relaxed);
        (proxy, listener)
    }

    fn serve(&self, listener: TcpListener, broker: SocketAddr, every: usize) {
        let stats = self.stats.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(relay(client, broker, stats.clone(), every));
            }
        });
    }
}

/// Reads one Kafka frame (size prefix included), or None at the end of the stream.
async fn read_frame(from: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    from.read_exact(&mut size).await.ok()?;
    let len = i32::from_be_bytes(size);
    assert!((8..=64 << 20).contains(&len), "frame size {len}");
    let mut frame = vec![0u8; 4 + len as usize];
    frame[..4].copy_from_slice(&size);
    from.read_exact(&mut frame[4..]).await.ok()?;
    Some(frame)
}

/// Relays one client connection frame by frame until either side closes it or a produce
/// response is held back.
async fn relay(client: TcpStream, broker: SocketAddr, stats: Arc<ProxyStats>, every: usize) {
    let Ok(upstream) = TcpStream::connect(broker).await else {
        return;
    };
    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
    let (mut client_in, mut client_out) = client.into_split();
    let (mut broker_in, mut broker_out) = upstream.into_split();
    // The correlation id of the produce request whose response is held back.
    let doomed: Mutex<Option<i32>> = Mutex::new(None);
    let requests = async {
        while let Some(frame) = read_frame(&mut client_in).await {
            let api_key = i16::from_be_bytes([frame[4], frame[5]]);
            let correlation_id = i32::from_be_bytes(frame[8..12].try_into().unwrap());
            if api_key == PRODUCE && stats.cutting.load(Ordering::Relaxed) {
                let count = stats.produce_requests.fetch_add(1, Ordering::Relaxed) + 1;
                if count.is_multiple_of(every) {
                    doomed.lock().unwrap().get_or_insert(correlation_id);
                }
            }
            if broker_out.write_all(&frame).await.is_err() {
                return;
            }
        }
    };
    let responses = async {
        while let Some(frame) = read_frame(&mut broker_in).await {
            let correlation_id = i32::from_be_bytes(frame[4..8].try_into().unwrap());
            if *doomed.lock().unwrap() == Some(correlation_id) {
                stats.cuts.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if client_out.write_all(&frame).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = requests => {}
        () = responses => {}
    }
    // Returning drops both connections.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_are_stored_once_in_order_when_produce_responses_are_lost() {
    const MESSAGES: u64 = 6_000;
    let _dog = watchdog(Duration::from_secs(120));
    let started = Instant::now();
    let (proxy, listener) = CuttingProxy::bind().await;
    // Metadata hands out the proxy's address, so every connection the clients open goes
    // through it.
    let advertised = proxy.addr.to_string();
    let broker = Broker::start(&["--advertised", &advertised]);
    proxy.serve(listener, broker.addr(), 5);
    let topic = "idempotent-cut";
    create_topic(&advertised, topic, PARTITIONS).await;

    let outcome = send_numbered(
        idempotent_producer(&advertised),
        topic,
        MESSAGES,
        Arc::default(),
    )
    .await;
    proxy.stats.cutting.store(false, Ordering::Relaxed);

    let stored = assert_acked_stored_once_in_order(&advertised, topic, &outcome);
    let cuts = proxy.stats.cuts.load(Ordering::Relaxed);
    let requests = proxy.stats.produce_requests.load(Ordering::Relaxed);
    eprintln!(
        "{cuts} connections cut after a produce request reached the broker (of {requests} produce \
         requests): acknowledged {} of {MESSAGES}, failed {}, stored {stored}, in {:?}",
        outcome.acked.len(),
        outcome.failed,
        started.elapsed()
    );
    assert!(
        cuts >= 3,
        "only {cuts} connections cut after a produce request ({requests} produce requests)"
    );
    assert_eq!(
        outcome.acked.len() as u64,
        MESSAGES,
        "every message acknowledged"
    );
    assert_eq!(stored as u64, MESSAGES);
}
