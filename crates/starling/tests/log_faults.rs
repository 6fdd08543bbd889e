//! Partition-log write faults with the real binary: the data directory on a small tmpfs that a
//! filler file leaves almost full.
//! * producing until the disk is full gives librdkafka KAFKA_STORAGE_ERROR for the records that
//!   do not fit (not a dropped connection), while consumers only ever see acknowledged records;
//! * once the filler is deleted producing resumes at the next offset, with no restart;
//! * after `kill -9` and a restart the partition holds exactly the acknowledged records.
//!
//! Needs `mount -t tmpfs` (root); where that is refused the test says so and passes, and the
//! failpoint tests of `starling-log` carry the same cases.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;

/// A tmpfs mounted over a directory for the life of the value (lazily unmounted on drop).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    /// Bytes still free for unprivileged writes.
    fn available(&self) -> u64 {
        let c = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: statvfs fills the zeroed struct from a valid NUL-terminated path.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        assert_eq!(rc, 0, "statvfs {}", self.path.display());
        st.f_bavail as u64 * st.f_frsize as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn value_of(i: usize) -> String {
    format!("value-{i:08}-{}", "f".repeat(4_000))
}

/// Sends message `i` and waits for its outcome: its offset, or the error the broker gave.
async fn send(producer: &FutureProducer, topic: &str, i: usize) -> Result<i64, KafkaError> {
    let value = value_of(i);
    let key = format!("key-{i:08}");
    let fut = send_to_partition0(producer, topic, &key, value.as_bytes()).expect("enqueue");
    match within(Duration::from_secs(30), "delivery", fut).await {
        Ok(Ok(d)) => Ok(d.offset),
        Ok(Err((e, _))) => Err(e),
        Err(_) => panic!("delivery of message {i} was cancelled"),
    }
}

/// Partition 0 holds exactly `values`, in order, and its high watermark is their count.
fn assert_holds_exactly(bootstrap: &str, topic: &str, values: &[String]) {
    assert_eq!(
        watermarks(bootstrap, topic, 0),
        (0, values.len() as i64),
        "the high watermark is the number of acknowledged records"
    );
    let by_part = consume_from_start(
        bootstrap,
        topic,
        &[(0, values.len())],
        Duration::from_secs(60),
    );
    let got: Vec<String> = by_part
        .get(&0)
        .map(|msgs| msgs.iter().map(|m| m.value_str()).collect())
        .unwrap_or_default();
    assert_eq!(got.len(), values.len());
    assert!(
        got == values,
        "consumed records differ from the acknowledged ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_gives_storage_errors_serves_only_acknowledged_records_and_recovers() {
    let _dog = watchdog(Duration::from_secs(300));
    // Small segments, so that segment rolls (new files, index and checkpoint writes) also meet
    // the full disk.
    let mut broker = Broker::with_overrides(&[("log.segment.bytes", "262144")]);
    broker.terminate();
    let tmpfs = match Tmpfs::mount(broker.data_dir(), "8m") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("SKIPPED: cannot mount a tmpfs here ({e}); the starling-log failpoint tests cover log write faults");
            return;
        }
    };
    broker.start_again(); // on the empty tmpfs
    let topic = "full-disk";
    create_topic(&broker.bootstrap(), topic, 1).await;

    // Leave about 1.5 MB free.
    let filler = broker.data_dir().join("filler");
    let fill = tmpfs.available().saturating_sub(1_500_000);
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();

    let producer = producer(
        &broker.bootstrap(),
        &[
            ("linger.ms", "0"),
            ("message.send.max.retries", "0"),
            ("retry.backoff.ms", "10"),
            ("message.timeout.ms", "20000"),
        ],
    );
    let mut acked: Vec<String> = Vec::new();
    let mut storage_errors = 0;
    let mut i = 0;
    while storage_errors < 5 {
        assert!(i < 2_000, "the disk never filled up");
        match send(&producer, topic, i).await {
            Ok(offset) => {
                assert_eq!(
                    offset,
                    acked.len() as i64,
                    "offsets stay dense across failures"
                );
                acked.push(value_of(i));
            }
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::KafkaStorageError)) => {
                storage_errors += 1;
            }
            Err(e) => panic!("message {i}: expected KAFKA_STORAGE_ERROR or success, got {e}"),
        }
        i += 1;
    }
    eprintln!(
        "{} acknowledged, then {storage_errors} storage errors",
        acked.len()
    );
    assert!(acked.len() > 100, "only {} acknowledged", acked.len());
    assert!(broker.is_alive());

    // Consumers see exactly the acknowledged records, nothing of the failed appends.
    assert_holds_exactly(&broker.bootstrap(), topic, &acked);

    // Space comes back: producing resumes at the next offset without a restart.
    std::fs::remove_file(&filler).unwrap();
    for _ in 0..50 {
        let offset = send(&producer, topic, i)
            .await
            .unwrap_or_else(|e| panic!("message {i} after space was freed: {e}"));
        assert_eq!(offset, acked.len() as i64);
        acked.push(value_of(i));
        i += 1;
    }
    assert_holds_exactly(&broker.bootstrap(), topic, &acked);

    // A crash and restart show exactly the acknowledged records.
    broker.kill9();
    broker.start_again();
    assert_holds_exactly(&broker.bootstrap(), topic, &acked);
    broker.terminate();
    drop(tmpfs);
}
