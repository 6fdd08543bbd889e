//! A full disk under the metadata store, for real: the broker's data directory is a small tmpfs
//! that a filler file fills up, and a librdkafka consumer commits offsets. Its commit gets an
//! error code (not a dropped connection), nothing it was not told is stored is ever served,
//! `/healthz` says why, and once the filler is gone commits succeed again without a restart; a
//! restart then shows exactly the acknowledged offsets.
//!
//! Mounting a tmpfs needs root (CAP_SYS_ADMIN). Where the mount is refused the test says so and
//! ends without checking anything; the failpoint tests (`starling-meta`, and the coordinator's and
//! the admin endpoint's in `starling-broker`) cover the same behaviour in-process.

mod common;

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 16;
/// Per partition: 16 partitions of it need far more than the free pages a small metadata file
/// keeps, so a commit of it has to grow the file.
const METADATA_BYTES: usize = 16_000;

/// A tmpfs mounted over a directory for as long as it lives.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// `None` when this machine does not let the test mount one.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        if !output.status.success() {
            eprintln!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs { dir: dir.into() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a broker still running (a failed test) must not keep the mount alive.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Writes to `path` until the file system is full; returns how many bytes fit.
fn fill(path: &Path) -> u64 {
    let mut file = File::create(path).expect("create the filler");
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 512] {
        let bytes = vec![0u8; chunk];
        loop {
            match file.write_all(&bytes) {
                Ok(()) => written += chunk as u64,
                Err(e) if e.kind() == ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
    }
    let _ = file.sync_all();
    written
}

/// Every partition of `topic` at `offset`, each with `metadata`.
fn offsets(topic: &str, offset: i64, metadata: &str) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Offset(offset))
            .unwrap();
        tpl.find_partition(topic, p).unwrap().set_metadata(metadata);
    }
    tpl
}

/// The committed offset of every partition, as OffsetFetch returns it; `Err` while the
/// coordinator refuses (an error code is fine here, a wrong offset is not).
fn committed(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i64>, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let tpl = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    Ok(tpl
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => -1,
        })
        .collect())
}

/// Retries OffsetFetch while it is refused; the first answer with offsets.
fn committed_when_served(consumer: &BaseConsumer, topic: &str) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match committed(consumer, topic) {
            Ok(offsets) => return offsets,
            Err(e) if Instant::now() < deadline => {
                eprintln!("OffsetFetch refused for now: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("OffsetFetch still refused after 30 s: {e}"),
        }
    }
}

/// The value of the metric line that starts with `series` (name and labels).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn a_full_disk_refuses_commits_with_an_error_code_serves_only_stored_offsets_and_recovers_once_space_returns(
) {
    let _w = watchdog(Duration::from_secs(240));
    let overrides = [("offset.metadata.max.bytes", "20000")];
    let mut broker = Broker::with_overrides(&overrides);
    // The data directory becomes a small tmpfs: stop, mount over it, start afresh on it.
    broker.terminate();
    let Some(_tmpfs) = Tmpfs::mount(broker.data_dir(), "32m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the failpoint tests cover this in-process"
        );
        return;
    };
    broker.start_again();
    let boot = broker.bootstrap();
    let topic = "full-disk";
    let group = "full-disk-group";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_topic(&boot, topic, PARTITIONS));
    let consumer = consumer(&boot, &[("group.id", group)]);
    consumer
        .commit(&offsets(topic, 10, "small"), CommitMode::Sync)
        .expect("commit before the disk is full");
    assert_eq!(committed(&consumer, topic).unwrap(), vec![10; 16]);

    let filler = broker.data_dir().join("filler");
    let filled = fill(&filler);
    eprintln!("filler: {filled} bytes");

    // A commit that has to grow the metadata file: refused with Kafka's error code.
    let big = "m".repeat(METADATA_BYTES);
    let refused = consumer.commit(&offsets(topic, 20, &big), CommitMode::Sync);
    match &refused {
        Err(KafkaError::ConsumerCommit(
            RDKafkaErrorCode::NotCoordinator | RDKafkaErrorCode::CoordinatorNotAvailable,
        )) => {}
        other => panic!("expected NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE, got {other:?}"),
    }
    let (_, scrape) = http_get(broker.admin_addr(), "/metrics");
    let answered = metric(
        &scrape,
        r#"starling_response_error_codes_total{api="OffsetCommit",error="NOT_COORDINATOR"}"#,
    );
    assert!(answered >= 1.0, "the broker answered with an error code");
    assert!(
        metric(
            &scrape,
            r#"starling_storage_errors_total{store="metadata"}"#
        ) >= 1.0
    );
    assert_eq!(
        metric(&scrape, r#"starling_storage_degraded{store="metadata"}"#),
        1.0
    );

    // Only what was stored is served: by OffsetFetch, by /groups.
    assert_eq!(committed_when_served(&consumer, topic), vec![10; 16]);
    let (status, groups) = http_get(broker.admin_addr(), "/groups");
    assert_eq!(status, 200, "{groups}");
    let groups: serde_json::Value = serde_json::from_str(&groups).unwrap();
    let ours = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == group)
        .expect("the group in /groups");
    for offset in ours["offsets"].as_array().unwrap() {
        assert_eq!(offset["committed_offset"], 10, "{ours}");
    }
    let (status, health) = http_get(broker.admin_addr(), "/healthz");
    assert_eq!(status, 503, "{health}");
    assert!(
        health.starts_with("degraded: metadata store") && health.contains("No space left"),
        "{health}"
    );

    // Space again: commits go through without a restart, and the broker is healthy.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match consumer.commit(&offsets(topic, 30, &big), CommitMode::Sync) {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("commit refused for now: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("commits still refused 30 s after the disk has space: {e}"),
        }
    }
    assert_eq!(committed_when_served(&consumer, topic), vec![30; 16]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, health) = http_get(broker.admin_addr(), "/healthz");
        if status == 200 {
            assert_eq!(health, "ok");
            break;
        }
        assert!(Instant::now() < deadline, "still {status} {health}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A restart shows exactly the acknowledged offsets.
    drop(consumer);
    broker.restart();
    let consumer = common::consumer(&broker.bootstrap(), &[("group.id", group)]);
    assert_eq!(committed_when_served(&consumer, topic), vec![30; 16]);
    drop(consumer);
    broker.terminate();
}
