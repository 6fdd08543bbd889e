//! Appends and reads of one partition, embedded segment log against PostgreSQL, in one run.
//!
//! Each append is one ~1 KiB batch of 10 records (what a lightly batched producer sends). The
//! embedded log (`starling_log::PartitionLog`, default flush policy: no fsync per append) and
//! `PgPartition` on a throw-away PostgreSQL (`TestPostgres`: `fsync=off`, on the same machine)
//! each take `APPENDS` appends one after another, then `PARTITIONS` partitions take
//! `APPENDS / PARTITIONS` each at once, and the first partition is read back whole in 1 MiB
//! reads. Neither side fsyncs, so the figures compare the paths, not the disks; a real
//! PostgreSQL with `fsync=on` and a network in between adds a commit flush and a round trip per
//! append.
//!
//! ```sh
//! cargo bench -p starling-postgres --bench partition_append
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use starling_log::{LogConfig, PartitionLog};
use starling_postgres::lease::{self, LeaseKind};
use starling_postgres::partition::PgPartition;
use starling_postgres::partition_log;
use starling_postgres::testing::TestPostgres;
use uuid::Uuid;

const APPENDS: usize = 4000;
const PARTITIONS: usize = 16;
const NOW: i64 = 1_796_428_800_000;

/// One 10-record batch of 90-byte values, without a producer.
fn batch() -> BytesMut {
    common::batch_at(-1, -1, -1, 10, false, &"x".repeat(86), NOW)
}

struct Figures {
    sequential: f64,
    concurrent: f64,
    read_mb_s: f64,
}

fn embedded(dir: &std::path::Path) -> Figures {
    let one = batch();
    let log = PartitionLog::open(&dir.join("p0"), LogConfig::default(), NOW).unwrap();
    let started = Instant::now();
    for _ in 0..APPENDS {
        log.append(one.clone(), NOW).unwrap();
    }
    let sequential = APPENDS as f64 / started.elapsed().as_secs_f64();
    let logs: Vec<Arc<PartitionLog>> = (1..=PARTITIONS)
        .map(|p| {
            Arc::new(
                PartitionLog::open(&dir.join(format!("p{p}")), LogConfig::default(), NOW).unwrap(),
            )
        })
        .collect();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for log in &logs {
            let one = one.clone();
            scope.spawn(move || {
                for _ in 0..APPENDS / PARTITIONS {
                    log.append(one.clone(), NOW).unwrap();
                }
            });
        }
    });
    let concurrent = APPENDS as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (mut offset, mut bytes) = (0, 0usize);
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20, true).unwrap();
        bytes += read.records.len();
        offset = last_offset(&read.records) + 1;
    }
    let read_mb_s = bytes as f64 / 1e6 / started.elapsed().as_secs_f64();
    Figures {
        sequential,
        concurrent,
        read_mb_s,
    }
}

/// The last offset of the last whole batch in `records`.
fn last_offset(records: &[u8]) -> i64 {
    let mut at = 0;
    let mut last = -1;
    while at + 61 <= records.len() {
        let base = i64::from_be_bytes(records[at..at + 8].try_into().unwrap());
        let length = i32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap()) as usize;
        let delta = i32::from_be_bytes(records[at + 23..at + 27].try_into().unwrap());
        last = base + i64::from(delta);
        at += 12 + length;
    }
    last
}

async fn postgres(pg: &TestPostgres) -> Figures {
    let pool = pg.pool("bench", 32).await;
    let topic = Uuid::new_v4();
    let partitions = {
        let client = pool.get().await.unwrap();
        partition_log::create(&**client, topic, PARTITIONS as i32 + 1)
            .await
            .unwrap();
        let mut partitions = Vec::new();
        for p in 0..=PARTITIONS as i32 {
            let name = partition_log::lease_name(topic, p);
            let lease = lease::acquire(
                &**client,
                LeaseKind::Partition,
                &name,
                1,
                Duration::from_secs(600),
            )
            .await
            .unwrap()
            .unwrap();
            partitions.push(Arc::new(
                PgPartition::open(pool.clone(), lease, topic, p)
                    .await
                    .unwrap(),
            ));
        }
        partitions
    };
    let one = batch();
    let config = LogConfig::default();
    let started = Instant::now();
    for _ in 0..APPENDS {
        partitions[0]
            .append(one.clone(), &config, NOW)
            .await
            .unwrap();
    }
    let sequential = APPENDS as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let tasks: Vec<_> = partitions[1..]
        .iter()
        .map(|p| {
            let (p, one, config) = (p.clone(), one.clone(), config.clone());
            tokio::spawn(async move {
                for _ in 0..APPENDS / PARTITIONS {
                    p.append(one.clone(), &config, NOW).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let concurrent = APPENDS as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (mut offset, mut bytes) = (0, 0usize);
    while offset < partitions[0].log_end_offset() {
        let read = partitions[0].read(offset, 1 << 20, false).await.unwrap();
        bytes += read.records.len();
        offset = last_offset(&read.records) + 1;
    }
    let read_mb_s = bytes as f64 / 1e6 / started.elapsed().as_secs_f64();
    Figures {
        sequential,
        concurrent,
        read_mb_s,
    }
}

fn main() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        eprintln!("PostgreSQL is not installed: nothing to compare");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = embedded(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let remote = runtime.block_on(postgres(&pg));
    println!(
        "{APPENDS} appends of one {}-byte batch (10 records); concurrent: {PARTITIONS} partitions at once",
        batch().len()
    );
    println!("| | embedded | PostgreSQL | PostgreSQL ÷ embedded |");
    println!("| --- | --- | --- | --- |");
    for (what, a, b) in [
        (
            "appends/s, one partition",
            local.sequential,
            remote.sequential,
        ),
        (
            "appends/s, 16 partitions at once",
            local.concurrent,
            remote.concurrent,
        ),
        (
            "read MB/s, one partition",
            local.read_mb_s,
            remote.read_mb_s,
        ),
    ] {
        println!("| {what} | {a:.0} | {b:.0} | {:.3} |", b / a);
    }
}
