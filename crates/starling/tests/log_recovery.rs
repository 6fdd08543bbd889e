//! Start-up recovery with the real binary and librdkafka: damage to acknowledged data is never
//! dropped silently.
//! * 5,000 bytes cut from the middle of the active segment (all of it below the recovery point)
//!   make the broker refuse to start, naming the file and byte position and `starling log
//!   repair`; `starling log repair --dry-run` changes nothing; `starling log repair` reports
//!   exactly what it removed; the broker then starts and serves exactly the messages before
//!   the damage.
//! * A torn tail after `kill -9` is still truncated on start, with a log line naming the file,
//!   the byte range and the byte count removed.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use rdkafka::producer::FutureRecord;

fn key_of(i: usize) -> String {
    format!("key-{i:08}")
}

fn value_of(i: usize) -> String {
    format!("value-{i:08}-{}", "v".repeat(1_000 + i % 17))
}

/// Produces `rounds` rounds of `per_round` messages to partition 0, awaiting each round before
/// the next so that each round is stored as its own batch(es); checks the offsets.
async fn produce_rounds(bootstrap: &str, topic: &str, rounds: usize, per_round: usize) {
    let producer = producer(bootstrap, &[("linger.ms", "20")]);
    for r in 0..rounds {
        let mut futs = Vec::new();
        for j in 0..per_round {
            let i = r * per_round + j;
            let (key, value) = (key_of(i), value_of(i));
            let fut =
                send_to_partition0(&producer, topic, &key, value.as_bytes()).expect("enqueue");
            futs.push((i, fut));
        }
        for (i, fut) in futs {
            let d = within(Duration::from_secs(30), "delivery", fut)
                .await
                .expect("producer dropped")
                .unwrap_or_else(|(e, _)| panic!("delivery failed: {e}"));
            assert_eq!(d.offset, i as i64, "delivered offset");
        }
    }
}

/// Partition 0 holds exactly messages `0..count`, in order, and nothing else.
fn assert_partition_holds(bootstrap: &str, topic: &str, count: usize) {
    assert_eq!(
        watermarks(bootstrap, topic, 0),
        (0, count as i64),
        "watermarks"
    );
    let by_part = consume_from_start(bootstrap, topic, &[(0, count)], Duration::from_secs(60));
    let msgs = by_part.get(&0).cloned().unwrap_or_default();
    assert_eq!(msgs.len(), count, "messages read");
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.offset, i as i64, "offset");
        assert_eq!(m.key_str(), key_of(i), "key at offset {i}");
        assert_eq!(m.value_str(), value_of(i), "value at offset {i}");
    }
}

/// Every file under `dir` (recursively) with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(tree(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.insert(path, bytes);
        }
    }
    out
}

fn run_starling(args: &[&str]) -> String {
    let stdout = run_ok(args);
    eprintln!("$ starling {}\n{stdout}", args.join(" "));
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_cut_from_the_active_segment_refuse_start_until_log_repair_truncates_there() {
    let _dog = watchdog(Duration::from_secs(300));
    let mut broker = Broker::start(&[]);
    let topic = "cut-middle";
    create_topic(&broker.bootstrap(), topic, 1).await;
    const ROUNDS: usize = 20;
    const PER: usize = 20;
    const COUNT: usize = ROUNDS * PER;
    produce_rounds(&broker.bootstrap(), topic, ROUNDS, PER).await;
    broker.terminate(); // a clean stop: the recovery point covers every message

    let file = log_files(&broker.partition_dir(topic, 0)).pop().unwrap();
    let original = std::fs::read(&file).unwrap();
    let batches = parse_batches(&original);
    let cut_at = original.len() / 2;
    const CUT: usize = 5_000;
    let victim = *batches
        .iter()
        .find(|b| b.pos <= cut_at && cut_at < b.pos + b.len)
        .unwrap();
    let first_intact_after = batches
        .iter()
        .find(|b| b.pos >= cut_at + CUT)
        .expect("batches after the cut");
    assert!(
        victim.base_offset > 0,
        "data before the damage: {batches:?}"
    );
    let mut damaged = original.clone();
    damaged.drain(cut_at..cut_at + CUT);
    std::fs::write(&file, &damaged).unwrap();

    // 1. The broker refuses to start, naming the file, the position and the repair command.
    let failure = match broker.try_start_again() {
        Ok(()) => panic!(
            "broker started although acknowledged data in {} is cut",
            file.display()
        ),
        Err(f) => f,
    };
    eprintln!("broker refused to start, as expected:\n{}", failure.stderr);
    assert!(!failure.status.expect("the broker exits").success());
    assert!(
        failure.stderr.contains(&file.display().to_string()),
        "stderr should name {}:\n{}",
        file.display(),
        failure.stderr
    );
    assert!(
        failure
            .stderr
            .contains(&format!("byte position {}", victim.pos)),
        "stderr should name byte position {}:\n{}",
        victim.pos,
        failure.stderr
    );
    assert!(
        failure.stderr.contains("starling log repair"),
        "{}",
        failure.stderr
    );
    assert_eq!(std::fs::read(&file).unwrap(), damaged, "nothing truncated");

    // 2. A dry run reports the repair and changes nothing.
    let data_dir = broker.data_dir().display().to_string();
    let before = tree(broker.data_dir());
    let dry = run_starling(&["log", "repair", "--data-dir", &data_dir, "--dry-run"]);
    assert_eq!(tree(broker.data_dir()), before, "--dry-run changed files");
    let removed_range = format!("bytes {}..{}", victim.pos, damaged.len());
    let lost = format!(
        "the log ends at offset {}: offsets {}..={} are dropped",
        victim.base_offset,
        victim.base_offset,
        COUNT - 1
    );
    let intact = format!(
        "at offsets {}..={}",
        first_intact_after.base_offset,
        COUNT - 1
    );
    for want in [
        format!("{topic}-0: damaged at byte position {}", victim.pos),
        format!("would truncate {}: {removed_range}", file.display()),
        format!("({} bytes) removed", damaged.len() - victim.pos),
        intact.clone(),
        lost.clone(),
        "dry run: nothing was changed".to_string(),
    ] {
        assert!(dry.contains(&want), "dry run output lacks {want:?}:\n{dry}");
    }
    let broker_again = broker.try_start_again();
    assert!(broker_again.is_err(), "still refuses after a dry run");

    // 3. The repair truncates at the damage and says exactly that.
    let done = run_starling(&["log", "repair", "--data-dir", &data_dir, "--topic", topic]);
    for want in [
        format!("truncated {}: {removed_range}", file.display()),
        intact,
        lost,
        format!(
            "moved the recovery point from {COUNT} to {}",
            victim.base_offset
        ),
    ] {
        assert!(
            done.contains(&want),
            "repair output lacks {want:?}:\n{done}"
        );
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        original[..victim.pos].to_vec()
    );

    // 4. The broker starts and serves exactly the messages before the damage, then new ones.
    broker.start_again();
    let kept = victim.base_offset as usize;
    assert_partition_holds(&broker.bootstrap(), topic, kept);
    let p = producer(&broker.bootstrap(), &[]);
    let (key, value) = (key_of(kept), value_of(kept));
    let d = within(
        Duration::from_secs(30),
        "produce after repair",
        p.send(
            FutureRecord::to(topic)
                .partition(0)
                .key(&key)
                .payload(&value),
            Duration::from_secs(5),
        ),
    )
    .await
    .unwrap_or_else(|(e, _)| panic!("produce after repair: {e}"));
    assert_eq!(d.offset, kept as i64);
    broker.restart();
    assert_partition_holds(&broker.bootstrap(), topic, kept + 1);
    // (A repair takes the broker's lock on the data directory: stop the broker first.)
    broker.terminate();
    let again = run_starling(&["log", "repair", "--data-dir", &data_dir]);
    assert!(again.contains("nothing to do"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_after_kill9_is_truncated_with_a_log_line_naming_what_was_removed() {
    let _dog = watchdog(Duration::from_secs(180));
    let mut broker = Broker::start(&[]);
    let topic = "torn-line";
    create_topic(&broker.bootstrap(), topic, 1).await;
    const COUNT: usize = 30;
    produce_rounds(&broker.bootstrap(), topic, 3, COUNT / 3).await;
    broker.kill9();

    let file = log_files(&broker.partition_dir(topic, 0)).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let intact_len = bytes.len();
    let last = *parse_batches(&bytes).last().unwrap();
    // The first two thirds of a copy of the last batch, renumbered as the next one: a write
    // that the crash cut short.
    let mut torn = bytes[last.pos..last.pos + last.len].to_vec();
    torn[..8].copy_from_slice(&(COUNT as i64).to_be_bytes());
    torn.truncate(last.len * 2 / 3);
    bytes.extend_from_slice(&torn);
    std::fs::write(&file, &bytes).unwrap();

    broker.start_again();
    let stderr = broker.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("truncating a torn write"))
        .unwrap_or_else(|| panic!("no truncation logged:\n{stderr}"));
    for want in [
        file.display().to_string(),
        format!("bytes {intact_len}..{}", bytes.len()),
        format!("({} bytes)", torn.len()),
        format!("ends at offset {COUNT}"),
    ] {
        assert!(line.contains(&want), "log line lacks {want:?}: {line}");
    }
    assert_eq!(std::fs::metadata(&file).unwrap().len(), intact_len as u64);
    assert_partition_holds(&broker.bootstrap(), topic, COUNT);
}
