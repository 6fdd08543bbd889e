//! `kill -9` at every point of a segment roll, a close (index, producer snapshot and checkpoint
//! writes) and of start-up recovery itself. The failpoint's crash mode lets `k` file operations
//! run, cuts the next one off halfway (half a write, a created but empty file) and fails all
//! later ones without effect, which leaves the directory exactly as a crash there would; the log
//! is then dropped without a close and reopened. For every `k` the reopened log must hold every
//! acknowledged record, plus at most the whole in-flight append, and accept appends after it.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::support::*;
use crate::failpoint;
use crate::{LogConfig, PartitionLog};

/// Directory states seen right after a simulated crash.
#[derive(Debug, Default)]
struct Seen {
    states: BTreeSet<&'static str>,
    crash_points: u64,
}

fn note_states(dir: &Path, seen: &mut Seen) {
    let logs = log_files(dir);
    if logs.len() > 1 && logs.iter().any(|p| fs::metadata(p).unwrap().len() == 0) {
        seen.states.insert("new segment file created but empty");
    }
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name == "recovery-point.tmp" {
            seen.states.insert("checkpoint temp file left");
        }
        if name.ends_with(".index.tmp") || name.ends_with(".timeindex.tmp") {
            seen.states.insert("index file half written");
        }
        if name.ends_with(".snapshot.tmp") {
            seen.states.insert("producer snapshot half written");
        }
    }
}

fn values_of(log: &PartitionLog) -> Vec<Vec<u8>> {
    decode(&read_all(log))
        .into_iter()
        .map(|d| d.value)
        .collect()
}

/// Runs `step` on a log that `prepare` filled, crashing after `k` operations for every `k`
/// until the step completes; checks the reopened log each time. `in_flight` are the values the
/// step appends (empty when it appends nothing).
fn crash_everywhere(
    config: LogConfig,
    prepare: impl Fn(&PartitionLog),
    step: impl Fn(&PartitionLog),
    in_flight: &[&[u8]],
) -> Seen {
    let mut seen = Seen::default();
    for k in 0.. {
        failpoint::reset();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        let log = PartitionLog::open(&dir, config.clone(), NOW).unwrap();
        prepare(&log);
        let acked = values_of(&log);
        failpoint::reset();
        failpoint::crash_after(k);
        step(&log);
        let crashed = failpoint::operations() > k;
        failpoint::reset();
        note_states(&dir, &mut seen);
        drop(log); // no close: the process is gone

        let log = PartitionLog::open(&dir, config.clone(), NOW)
            .unwrap_or_else(|e| panic!("crash after {k} operations: reopen failed: {e}"));
        let got = values_of(&log);
        let mut with_in_flight = acked.clone();
        with_in_flight.extend(in_flight.iter().map(|v| v.to_vec()));
        if crashed {
            assert!(
                got == acked || got == with_in_flight,
                "crash after {k} operations: recovered {} records, acknowledged {}",
                got.len(),
                acked.len()
            );
        } else {
            assert_eq!(got, with_in_flight, "the step completed");
        }
        let next = log.append(bm(&[&batch(NOW, &[b"after"])]), NOW).unwrap();
        assert_eq!(
            next.base_offset,
            got.len() as i64,
            "crash after {k} operations"
        );
        log.close().unwrap();
        drop(log);
        let log = PartitionLog::open(&dir, config.clone(), NOW).unwrap();
        assert_eq!(log.log_end_offset(), got.len() as i64 + 1);
        if !crashed {
            seen.crash_points = k;
            break;
        }
    }
    seen
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 500,
        index_interval_bytes: 50,
        ..config()
    }
}

/// Five batches of two records: the segment is nearly full.
fn fill(log: &PartitionLog) {
    for i in 0..5 {
        let vals = values(&format!("acked{i}"), 2);
        log.append(bm(&[&batch(NOW + i, &refs(&vals))]), NOW)
            .unwrap();
    }
    assert_eq!(log.segment_count(), 1);
}

const IN_FLIGHT: [&[u8]; 2] = [b"in flight, part one", b"in flight, part two"];

fn append_in_flight(log: &PartitionLog) {
    let _ = log.append(bm(&[&batch(NOW + 9, &IN_FLIGHT)]), NOW);
}

#[test]
fn kill9_at_every_point_of_an_append_that_rolls_keeps_every_acknowledged_record() {
    let seen = crash_everywhere(small_segments(), fill, append_in_flight, &IN_FLIGHT);
    assert!(seen.crash_points >= 8, "{seen:?}");
    for state in [
        "new segment file created but empty",
        "index file half written",
        "checkpoint temp file left",
        "producer snapshot half written",
    ] {
        assert!(
            seen.states.contains(state),
            "never crashed with {state}: {seen:?}"
        );
    }
}

#[test]
fn kill9_at_every_point_of_a_roll_after_a_clean_close_keeps_every_acknowledged_record() {
    // The recovery point covers the whole old segment, so after the roll it is trusted and
    // only its index files and tail are checked.
    let prepare = |log: &PartitionLog| {
        fill(log);
        log.close().unwrap();
    };
    crash_everywhere(small_segments(), prepare, append_in_flight, &IN_FLIGHT);
}

#[test]
fn kill9_at_every_point_of_an_fsyncing_append_that_rolls_keeps_every_acknowledged_record() {
    let cfg = LogConfig {
        flush_interval_messages: 1,
        ..small_segments()
    };
    crash_everywhere(cfg, fill, append_in_flight, &IN_FLIGHT);
}

#[test]
fn kill9_at_every_point_of_a_ticker_roll_keeps_every_acknowledged_record() {
    let roll = |log: &PartitionLog| {
        let _ = log.roll_if_due(NOW + config().segment_ms + 1);
    };
    crash_everywhere(small_segments(), fill, roll, &[]);
}

#[test]
fn kill9_at_every_point_of_a_close_keeps_every_acknowledged_record() {
    let prepare = |log: &PartitionLog| {
        fill(log);
        assert!(log.roll_if_due(NOW + config().segment_ms + 1).unwrap());
        log.append(bm(&[&batch(NOW, &[b"in the new segment"])]), NOW)
            .unwrap();
    };
    let close = |log: &PartitionLog| {
        let _ = log.close();
    };
    let seen = crash_everywhere(small_segments(), prepare, close, &[]);
    assert!(
        seen.states.contains("checkpoint temp file left"),
        "{seen:?}"
    );
    assert!(seen.states.contains("index file half written"), "{seen:?}");
    assert!(
        seen.states.contains("producer snapshot half written"),
        "{seen:?}"
    );
}

#[test]
fn kill9_at_every_point_of_recovery_keeps_every_acknowledged_record() {
    // A log with sealed segments, no checkpoint and no index files, and a torn tail: opening it
    // truncates, rebuilds and writes indexes, and writes the checkpoint.
    for k in 0.. {
        failpoint::reset();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        let log = PartitionLog::open(&dir, small_segments(), NOW).unwrap();
        for i in 0..12 {
            let vals = values(&format!("acked{i}"), 2);
            log.append(bm(&[&batch(NOW + i, &refs(&vals))]), NOW)
                .unwrap();
        }
        assert!(log.segment_count() >= 3);
        let acked = values_of(&log);
        drop(log);
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e != "log") {
                fs::remove_file(path).unwrap();
            }
        }
        let last = log_files(&dir).pop().unwrap();
        let mut bytes = fs::read(&last).unwrap();
        bytes.extend_from_slice(&[0xab; 33]);
        fs::write(&last, bytes).unwrap();

        let (log, crashed) = reopen_after_recovery_crash(&dir, k);
        assert_eq!(
            values_of(&log),
            acked,
            "crash after {k} operations of recovery"
        );
        if !crashed {
            assert!(k >= 5, "recovery did only {k} file operations");
            break;
        }
    }
}

/// What lookups through a log's indexes answer.
fn index_answers(log: &PartitionLog) -> Vec<Option<(i64, i64)>> {
    let mut out = vec![log.max_timestamp().unwrap()];
    for target in [NOW, NOW + 3, NOW + 102, NOW + 104, NOW + 200] {
        out.push(log.offset_for_timestamp(target).unwrap());
    }
    out
}

#[test]
fn kill9_while_recovery_rewrites_the_indexes_of_a_checkpointed_segment_never_leaves_half_of_them() {
    // Three segments of five batches; the first holds the newest timestamps, so an index of
    // it cut short would answer time lookups wrongly.
    let build = |dir: &Path| {
        let log = PartitionLog::open(dir, small_segments(), NOW).unwrap();
        for i in 0..15i64 {
            let ts = if i < 5 { NOW + 100 + i } else { NOW + i };
            let vals = values(&format!("b{i}"), 2);
            log.append(bm(&[&batch(ts, &refs(&vals))]), NOW).unwrap();
        }
        assert_eq!(log.segment_count(), 3);
        log.close().unwrap();
        log
    };
    failpoint::reset();
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = index_answers(&build(&reference_dir.path().join("p")));
    assert_eq!(reference[0], Some((NOW + 104, 9)));

    for k in 0.. {
        failpoint::reset();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        drop(build(&dir));
        let first = log_files(&dir)[0].clone();
        let good_index = fs::read(first.with_extension("index")).unwrap();
        let good_timeindex = fs::read(first.with_extension("timeindex")).unwrap();
        // The first segment is below the recovery point; without index files it is rescanned
        // and its index files written again.
        fs::remove_file(first.with_extension("index")).unwrap();
        fs::remove_file(first.with_extension("timeindex")).unwrap();

        let (log, crashed) = reopen_after_recovery_crash(&dir, k);
        assert_eq!(index_answers(&log), reference, "crash after {k} operations");
        assert_eq!(fs::read(first.with_extension("index")).unwrap(), good_index);
        assert_eq!(
            fs::read(first.with_extension("timeindex")).unwrap(),
            good_timeindex
        );
        if !crashed {
            break;
        }
    }
}

/// Opens the log at `dir` with a crash injected after `k` operations of its recovery, then opens
/// it again as a restart would. Returns the reopened log and whether the crash happened (false
/// once `k` is past the last operation).
fn reopen_after_recovery_crash(dir: &Path, k: u64) -> (PartitionLog, bool) {
    failpoint::crash_after(k);
    let first_try = PartitionLog::open(dir, small_segments(), NOW);
    let crashed = failpoint::operations() > k;
    failpoint::reset();
    drop(first_try);
    let log = PartitionLog::open(dir, small_segments(), NOW)
        .unwrap_or_else(|e| panic!("crash after {k} operations of recovery: {e}"));
    (log, crashed)
}
