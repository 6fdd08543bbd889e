//! Property test of the cleaner: random keyed appends (tombstones among them, some batches
//! compressed, some in transactions that commit, abort or stay open), segment rolls, cleaning
//! passes (some after `delete.retention.ms`) and reopens.
//! Some passes have a dedupe buffer too small for the dirty range and clean only part of it.
//! After every pass the log must read as the model says: below the offset the passes have
//! cleaned up to, exactly the latest record of each key there (a tombstone until a pass ran
//! `delete.retention.ms` after the first pass that covered it; aborted records gone); at and
//! above it, every record as appended. Transaction markers are left out of the comparison.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::codecs::{compressed_batch, Codec};
use super::compaction::{keyed, records, set_producer, Kv};
use super::support::*;
use crate::producer_state::TxnMarker;
use crate::{CleanupPolicy, LogConfig, PartitionLog, Unthrottled};

const DELETE_RETENTION_MS: i64 = 10_000;
const SEGMENT_MS: i64 = 1_000;

#[derive(Debug, Clone)]
enum Op {
    /// One batch of (key, tombstone) records, compressed with gzip or not, and in a
    /// transaction of producer 7 or 8 or not.
    Append {
        records: Vec<(u8, bool)>,
        gzip: bool,
        producer: Option<i64>,
    },
    /// The transaction of the producer ends (if it has one open).
    EndTxn { producer: i64, commit: bool },
    /// Advance the clock past `segment.ms` and roll.
    Roll,
    /// A cleaning pass after advancing the clock by this much, with a dedupe buffer of this
    /// many bytes (a small one makes passes that clean only part of the dirty range).
    Clean { advance_ms: i64, buffer: u64 },
    /// Drop the log (no close) and open it again.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            prop::collection::vec((0u8..6, prop::bool::weighted(0.2)), 1..4),
            prop::bool::weighted(0.2),
            prop_oneof![4 => Just(None), 1 => Just(Some(7i64)), 1 => Just(Some(8i64))],
        )
            .prop_map(|(records, gzip, producer)| Op::Append { records, gzip, producer }),
        1 => (prop_oneof![Just(7i64), Just(8i64)], prop::bool::weighted(0.6))
            .prop_map(|(producer, commit)| Op::EndTxn { producer, commit }),
        2 => Just(Op::Roll),
        2 => (
            prop_oneof![Just(0i64), Just(DELETE_RETENTION_MS / 2), Just(DELETE_RETENTION_MS + 1)],
            // Room for 4 keys (a batch holds at most 3), or for all of them.
            prop_oneof![Just(5 * 24u64), Just(1u64 << 20)],
        )
            .prop_map(|(advance_ms, buffer)| Op::Clean { advance_ms, buffer }),
        1 => Just(Op::Reopen),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_ms: SEGMENT_MS,
        delete_retention_ms: DELETE_RETENTION_MS,
        cleanup_policy: CleanupPolicy::Compact,
        retention_ms: None,
        index_interval_bytes: 64,
        ..LogConfig::default()
    }
}

/// What became of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnState {
    Open,
    Committed,
    Aborted,
}

/// What the log must hold.
#[derive(Default)]
struct Model {
    /// Every record appended, by offset (markers too, as control records).
    appended: Vec<Kv>,
    /// For each record, the transaction it is part of (an index into `txns`).
    txn_of: Vec<Option<usize>>,
    txns: Vec<TxnState>,
    /// Each producer's open transaction and next sequence number.
    open: BTreeMap<i64, usize>,
    sequence: BTreeMap<i64, i32>,
    /// The offset the passes have cleaned up to.
    cleaned_to: i64,
    /// For each offset below `cleaned_to`: when a pass first covered it.
    first_covered: Vec<i64>,
    /// When the last pass ran.
    last_pass_ms: i64,
}

impl Model {
    fn aborted(&self, i: usize) -> bool {
        self.txn_of[i].is_some_and(|t| self.txns[t] == TxnState::Aborted)
    }

    /// The data records the log must hold (markers left out).
    fn expected(&self) -> Vec<Kv> {
        let mut latest: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for (i, r) in self.appended.iter().enumerate() {
            if r.offset < self.cleaned_to && !r.control && !self.aborted(i) {
                latest.insert(r.key.clone().unwrap(), i);
            }
        }
        self.appended
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                if r.control {
                    return false;
                }
                if r.offset >= self.cleaned_to {
                    return true;
                }
                if self.aborted(*i) {
                    return false;
                }
                let is_latest = latest[r.key.as_ref().unwrap()] == *i;
                let tombstone_gone = r.value.is_none()
                    && self.first_covered[r.offset as usize] + DELETE_RETENTION_MS
                        <= self.last_pass_ms;
                is_latest && !tombstone_gone
            })
            .map(|(_, r)| r.clone())
            .collect()
    }
}

fn run(ops: Vec<Op>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let mut now = NOW;
    let mut log = PartitionLog::open(&dir, config(), now).unwrap();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append {
                records: recs,
                gzip,
                producer,
            } => {
                let base = model.appended.len() as i64;
                let txn = producer.map(|pid| {
                    *model.open.entry(pid).or_insert_with(|| {
                        model.txns.push(TxnState::Open);
                        model.txns.len() - 1
                    })
                });
                let recs: Vec<Rec> = recs
                    .iter()
                    .enumerate()
                    .map(|(i, &(key, tombstone))| {
                        let key = format!("k{key}");
                        let value = format!("{key}@{}", base + i as i64);
                        let r = keyed(&key, (!tombstone).then_some(value.as_str()));
                        model.appended.push(Kv {
                            offset: base + i as i64,
                            key: Some(key.into_bytes()),
                            value: (!tombstone).then(|| value.into_bytes()),
                            control: false,
                        });
                        model.txn_of.push(txn);
                        r
                    })
                    .collect();
                let mut b = if gzip {
                    compressed_batch(Codec::Gzip, now, &recs)
                } else {
                    batch_of(now, &recs)
                };
                if let Some(pid) = producer {
                    let sequence = model.sequence.entry(pid).or_insert(0);
                    set_producer(&mut b, pid, 0, *sequence, true);
                    *sequence += recs.len() as i32;
                }
                log.append(bm(&[&b]), now).unwrap();
            }
            Op::EndTxn { producer, commit } => {
                let marker = TxnMarker {
                    producer_id: producer,
                    epoch: 0,
                    commit,
                    coordinator_epoch: 0,
                };
                let written = log.write_txn_marker(marker, now).unwrap();
                match model.open.remove(&producer) {
                    Some(txn) => {
                        let info = written.expect("an open transaction gets its marker");
                        assert_eq!(info.base_offset, model.appended.len() as i64);
                        model.txns[txn] = if commit {
                            TxnState::Committed
                        } else {
                            TxnState::Aborted
                        };
                        model.appended.push(Kv {
                            offset: info.base_offset,
                            key: None,
                            value: None,
                            control: true,
                        });
                        model.txn_of.push(Some(txn));
                    }
                    None => assert!(written.is_none()),
                }
            }
            Op::Roll => {
                now += SEGMENT_MS + 1;
                log.roll_if_due(now).unwrap();
            }
            Op::Clean { advance_ms, buffer } => {
                now += advance_ms;
                let uncleanable = log.cleanable_info(now).unwrap().first_uncleanable_offset;
                if let Some(stats) = log.clean(now, &mut Unthrottled, buffer).unwrap() {
                    model.last_pass_ms = now;
                    let end = stats.end_offset;
                    while (model.first_covered.len() as i64) < end {
                        model.first_covered.push(now);
                    }
                    model.cleaned_to = model.cleaned_to.max(end);
                    assert!(end <= uncleanable);
                    if buffer > 1 << 10 {
                        assert_eq!(end, uncleanable, "a big enough map covers the dirty range");
                    }
                }
                assert_eq!(data(&log), model.expected());
            }
            Op::Reopen => {
                drop(log);
                log = PartitionLog::open(&dir, config(), now).unwrap();
            }
        }
        assert_eq!(log.log_end_offset(), model.appended.len() as i64);
    }
    assert_eq!(data(&log), model.expected());
}

/// The data records of the log (markers left out).
fn data(log: &PartitionLog) -> Vec<Kv> {
    records(&read_all(log))
        .into_iter()
        .filter(|r| !r.control)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_cleaned_log_reads_as_the_latest_record_per_key_below_the_cleaned_offset(
        ops in prop::collection::vec(op(), 1..60)
    ) {
        run(ops);
    }
}
