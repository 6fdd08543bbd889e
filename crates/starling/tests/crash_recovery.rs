//! Durability and recovery of the on-disk partition logs:
//! * kill -9 while a producer with acks=all is streaming: every acknowledged message is there
//!   after the restart, at the offset it was acknowledged with;
//! * a torn tail of the last segment (garbage, a cut-short batch, a batch whose end never made it
//!   to disk, zero fill) is truncated on start and producing continues at the right offset;
//! * a corrupted batch in the middle of a segment makes the broker refuse to start, naming the
//!   file and the position.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;

fn key_of(i: usize) -> String {
    format!("key-{i:08}")
}

fn value_of(i: usize) -> String {
    format!("value-{i:08}-{}", "x".repeat(i % 50))
}

/// Produces `batches` rounds of `per_batch` messages to partition 0, awaiting each round before
/// the next so each round becomes its own record batch(es). Message numbers start at `first`.
/// Checks that the offsets are consecutive from `expect_first_offset`.
async fn produce_rounds(
    bootstrap: &str,
    topic: &str,
    first: usize,
    batches: usize,
    per_batch: usize,
    expect_first_offset: i64,
) {
    let producer = producer(bootstrap, &[("linger.ms", "0")]);
    let mut next_offset = expect_first_offset;
    for b in 0..batches {
        let mut futs = Vec::new();
        for j in 0..per_batch {
            let i = first + b * per_batch + j;
            let key = key_of(i);
            let value = value_of(i);
            let fut =
                send_to_partition0(&producer, topic, &key, value.as_bytes()).expect("enqueue");
            futs.push(fut);
        }
        for fut in futs {
            let d = within(Duration::from_secs(30), "delivery", fut)
                .await
                .expect("producer dropped")
                .unwrap_or_else(|(e, _)| panic!("delivery failed: {e}"));
            assert_eq!(d.offset, next_offset, "delivered offset");
            next_offset += 1;
        }
    }
}

/// Reads partition 0 from offset 0 and checks it holds exactly messages `0..count`.
fn assert_partition_holds(bootstrap: &str, topic: &str, count: usize) {
    let by_part = consume_from_start(bootstrap, topic, &[(0, count)], Duration::from_secs(60));
    let msgs = by_part.get(&0).cloned().unwrap_or_default();
    assert_eq!(msgs.len(), count, "messages read");
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.offset, i as i64, "offset");
        assert_eq!(m.key_str(), key_of(i), "key at offset {i}");
        assert_eq!(m.value_str(), value_of(i), "value at offset {i}");
    }
    assert_eq!(
        watermarks(bootstrap, topic, 0),
        (0, count as i64),
        "watermarks"
    );
}

fn last_log_file(broker: &Broker, topic: &str) -> PathBuf {
    log_files(&broker.partition_dir(topic, 0))
        .pop()
        .expect("a .log file in the partition directory")
}

#[derive(Debug, Clone)]
struct Ack {
    partition: i32,
    offset: i64,
    seq: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill9_mid_stream() {
    let _dog = watchdog(Duration::from_secs(300));
    const PARTS: i32 = 4;
    let mut broker = Broker::with_overrides(&[("log.flush.interval.messages", "1")]);
    let topic = "crash-stream";
    create_topic(&broker.bootstrap(), topic, PARTS).await;

    let streamer = producer(
        &broker.bootstrap(),
        &[
            ("linger.ms", "2"),
            ("message.timeout.ms", "8000"),
            ("queue.buffering.max.messages", "100000"),
        ],
    );
    let acked: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let task = {
        let (acked, sent, stop) = (acked.clone(), sent.clone(), stop.clone());
        let topic = topic.to_string();
        tokio::spawn(async move {
            let mut in_flight = FuturesUnordered::new();
            let mut seq = 0usize;
            loop {
                if !stop.load(Ordering::SeqCst) {
                    while in_flight.len() < 2000 {
                        let key = key_of(seq);
                        let value = value_of(seq);
                        let partition = (seq % PARTS as usize) as i32;
                        match streamer.send_result(
                            FutureRecord::to(&topic)
                                .partition(partition)
                                .key(&key)
                                .payload(&value),
                        ) {
                            Ok(fut) => {
                                let s = seq;
                                in_flight.push(async move { (s, fut.await) });
                                seq += 1;
                                sent.store(seq, Ordering::SeqCst);
                            }
                            Err((
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                _,
                            )) => break,
                            Err((e, _)) => panic!("enqueue: {e}"),
                        }
                    }
                } else if in_flight.is_empty() {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(50), in_flight.next()).await {
                    Ok(Some((s, Ok(Ok(d))))) => acked.lock().unwrap().push(Ack {
                        partition: d.partition,
                        offset: d.offset,
                        seq: s,
                    }),
                    Ok(Some(_)) => {} // failed or cancelled: not acknowledged
                    Ok(None) | Err(_) => {}
                }
            }
        })
    };

    // Let a good amount get acknowledged, then kill the broker with sends in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 5000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let acked_before_kill = acked.lock().unwrap().len();
    assert!(
        acked_before_kill >= 100,
        "only {acked_before_kill} messages acknowledged in 60 s"
    );
    broker.kill9();
    let sent_at_kill = sent.load(Ordering::SeqCst);
    // The producer keeps trying against the dead broker for a moment, then we stop it; every
    // outstanding message then fails by message.timeout.ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    within(Duration::from_secs(60), "producer task to drain", task)
        .await
        .expect("producer task");
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "acknowledged {} (of {sent_at_kill} sent) before/around kill -9",
        acked.len()
    );
    assert!(
        sent_at_kill > acked.len(),
        "messages should have been in flight at the kill ({sent_at_kill} sent, {} acked)",
        acked.len()
    );

    broker.start_again();
    let bootstrap = broker.bootstrap();
    let mut high = HashMap::new();
    for p in 0..PARTS {
        let (low, hi) = watermarks(&bootstrap, topic, p);
        assert_eq!(low, 0, "low watermark of partition {p}");
        high.insert(p, hi);
    }
    for a in &acked {
        assert!(
            a.offset < high[&a.partition],
            "acknowledged offset {} of partition {} is beyond the recovered end {}",
            a.offset,
            a.partition,
            high[&a.partition]
        );
    }
    let counts: Vec<(i32, usize)> = (0..PARTS).map(|p| (p, high[&p] as usize)).collect();
    let by_part = consume_from_start(&bootstrap, topic, &counts, Duration::from_secs(120));
    let mut stored: HashMap<(i32, i64), (String, String)> = HashMap::new();
    for (p, msgs) in &by_part {
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(
                m.offset, i as i64,
                "offsets in partition {p} are dense and ordered"
            );
            stored.insert((*p, m.offset), (m.key_str(), m.value_str()));
        }
    }
    for a in &acked {
        let got = stored.get(&(a.partition, a.offset));
        assert_eq!(
            got,
            Some(&(key_of(a.seq), value_of(a.seq))),
            "acknowledged message {} at {}/{}",
            a.seq,
            a.partition,
            a.offset
        );
    }

    // Reads that start mid-log (located through the offset index) land on the right batch.
    for p in 0..PARTS {
        let hi = high[&p];
        for off in [0, hi / 3, hi / 2, hi - 1] {
            if off < 0 || off >= hi {
                continue;
            }
            let data = raw_fetch(broker.addr(), topic, p, off, 100);
            assert_eq!(data.error_code, 0, "fetch {p}/{off}");
            let batches = count_records(data.records.as_deref().unwrap_or_default());
            let (base, n) = *batches
                .first()
                .unwrap_or_else(|| panic!("fetch {p}/{off} returned no batch"));
            assert!(
                base <= off && off < base + n as i64,
                "fetch at {p}/{off} returned a first batch covering {base}..{}",
                base + n as i64
            );
        }
    }

    // The recovered log accepts new data right after its end.
    let p = producer(&bootstrap, &[]);
    let d = within(
        Duration::from_secs(30),
        "produce after recovery",
        p.send(
            FutureRecord::to(topic)
                .partition(0)
                .key("after")
                .payload("after-crash"),
            Duration::from_secs(5),
        ),
    )
    .await
    .unwrap_or_else(|(e, _)| panic!("produce after recovery: {e}"));
    assert_eq!(d.offset, high[&0], "first offset after recovery");
}

/// How the tail of the last segment is damaged.
#[derive(Debug, Clone, Copy)]
enum Tear {
    /// Pseudo-random bytes.
    Garbage,
    /// The first 60% of a batch.
    CutShortBatch,
    /// A batch with its full length in the header whose second half is zeros (CRC mismatch).
    ZeroedBatchEnd,
    /// A run of zero bytes, as a filesystem leaves after extending a file that was not written.
    ZeroFill,
}

async fn torn_tail_is_truncated(tear: Tear) {
    let _dog = watchdog(Duration::from_secs(180));
    let mut broker = Broker::start(&[]);
    let topic = "torn";
    create_topic(&broker.bootstrap(), topic, 1).await;
    const ROUNDS: usize = 10;
    const PER: usize = 10;
    const COUNT: usize = ROUNDS * PER;
    produce_rounds(&broker.bootstrap(), topic, 0, ROUNDS, PER, 0).await;
    broker.terminate();

    let file = last_log_file(&broker, topic);
    let original = std::fs::read(&file).unwrap();
    let batches = parse_batches(&original);
    assert!(!batches.is_empty());
    let last = *batches.last().unwrap();
    let mut next_batch = original[last.pos..last.pos + last.len].to_vec();
    next_batch[0..8].copy_from_slice(&(COUNT as i64).to_be_bytes());
    let tail: Vec<u8> = match tear {
        Tear::Garbage => {
            let mut x: u32 = 0x2545_f491;
            (0..777)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x >> 24) as u8
                })
                .collect()
        }
        Tear::CutShortBatch => next_batch[..next_batch.len() * 6 / 10].to_vec(),
        Tear::ZeroedBatchEnd => {
            let half = next_batch.len() / 2;
            next_batch[half..].iter_mut().for_each(|b| *b = 0);
            assert!(!batch_crc_ok(&next_batch));
            next_batch
        }
        Tear::ZeroFill => vec![0u8; 4096],
    };
    let mut damaged = original.clone();
    damaged.extend_from_slice(&tail);
    std::fs::write(&file, &damaged).unwrap();

    broker.start_again();
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        original.len() as u64,
        "{tear:?}: the torn tail of {} should have been truncated on start",
        file.display()
    );
    let bootstrap = broker.bootstrap();
    assert_partition_holds(&bootstrap, topic, COUNT);

    // New data goes right after the intact data.
    produce_rounds(&bootstrap, topic, COUNT, 2, 5, COUNT as i64).await;
    assert_partition_holds(&bootstrap, topic, COUNT + 10);

    // And all of it survives another restart.
    broker.restart();
    assert_partition_holds(&broker.bootstrap(), topic, COUNT + 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_last_batch_is_truncated_on_start() {
    torn_tail_is_truncated(Tear::Garbage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_short_last_batch_is_truncated_on_start() {
    torn_tail_is_truncated(Tear::CutShortBatch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_batch_with_unwritten_end_is_truncated_on_start() {
    torn_tail_is_truncated(Tear::ZeroedBatchEnd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_filled_tail_is_truncated_on_start() {
    torn_tail_is_truncated(Tear::ZeroFill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_batch_in_the_middle_refuses_start_naming_file_and_position() {
    let _dog = watchdog(Duration::from_secs(180));
    let mut broker = Broker::start(&[]);
    let topic = "midcorrupt";
    create_topic(&broker.bootstrap(), topic, 1).await;
    const ROUNDS: usize = 10;
    const PER: usize = 5;
    produce_rounds(&broker.bootstrap(), topic, 0, ROUNDS, PER, 0).await;
    broker.terminate();

    let file = last_log_file(&broker, topic);
    let original = std::fs::read(&file).unwrap();
    let batches = parse_batches(&original);
    assert!(
        batches.len() >= 5,
        "expected several batches, found {batches:?}"
    );
    let victim = batches[batches.len() / 2];
    // Inside the records (past the 61-byte batch header), well before the end of the batch.
    let flip_at = victim.pos + 61 + (victim.len - 61) / 2;
    let mut damaged = original.clone();
    damaged[flip_at] ^= 0x5a;
    assert!(!batch_crc_ok(&damaged[victim.pos..victim.pos + victim.len]));
    std::fs::write(&file, &damaged).unwrap();

    let failure = match broker.try_start_again() {
        Ok(()) => panic!(
            "broker started although batch at position {} of {} is corrupt",
            victim.pos,
            file.display()
        ),
        Err(f) => f,
    };
    eprintln!("broker refused to start, as expected:\n{}", failure.stderr);
    let status = failure
        .status
        .unwrap_or_else(|| panic!("broker neither started nor exited: {}", failure.reason));
    assert!(
        !status.success(),
        "exit status should be non-zero, was {status}"
    );
    let file_name = file.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        failure.stderr.contains(&file_name) && failure.stderr.contains(&format!("{topic}-0")),
        "stderr should name the segment file {}:\n{}",
        file.display(),
        failure.stderr
    );
    assert!(
        contains_number(&failure.stderr, victim.pos as u64),
        "stderr should name the position {} of the corrupt batch:\n{}",
        victim.pos,
        failure.stderr
    );

    // The refusal was about that byte: with it restored the broker starts and has everything.
    std::fs::write(&file, &original).unwrap();
    broker.start_again();
    assert_partition_holds(&broker.bootstrap(), topic, ROUNDS * PER);
}
