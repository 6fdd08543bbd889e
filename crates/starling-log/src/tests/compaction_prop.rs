//! Property test of the cleaner: random keyed appends (tombstones among them, some batches
//! compressed), segment rolls, cleaning passes (some after `delete.retention.ms`) and reopens.
//! Some passes have a dedupe buffer too small for the dirty range and clean only part of it.
//! After every pass the log must read as the model says: below the offset the passes have
//! cleaned up to, exactly the latest record of each key there (a tombstone until a pass ran
//! `delete.retention.ms` after the first pass that covered it); at and above it, every record
//! as appended.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::codecs::{compressed_batch, Codec};
use super::compaction::{keyed, records, Kv};
use super::support::*;
use crate::{CleanupPolicy, LogConfig, PartitionLog, Unthrottled};

const DELETE_RETENTION_MS: i64 = 10_000;
const SEGMENT_MS: i64 = 1_000;

#[derive(Debug, Clone)]
enum Op {
    /// One batch of (key, tombstone) records, compressed with gzip or not.
    Append {
        records: Vec<(u8, bool)>,
        gzip: bool,
    },
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
        6 => (prop::collection::vec((0u8..6, prop::bool::weighted(0.2)), 1..4), prop::bool::weighted(0.2))
            .prop_map(|(records, gzip)| Op::Append { records, gzip }),
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

/// What the log must hold.
#[derive(Default)]
struct Model {
    /// Every record appended, by offset.
    appended: Vec<Kv>,
    /// The offset the passes have cleaned up to.
    cleaned_to: i64,
    /// For each offset below `cleaned_to`: when a pass first covered it.
    first_covered: Vec<i64>,
    /// When the last pass ran.
    last_pass_ms: i64,
}

impl Model {
    fn expected(&self) -> Vec<Kv> {
        let mut latest: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for (i, r) in self.appended.iter().enumerate() {
            if r.offset < self.cleaned_to {
                latest.insert(r.key.clone().unwrap(), i);
            }
        }
        self.appended
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                if r.offset >= self.cleaned_to {
                    return true;
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
            } => {
                let base = model.appended.len() as i64;
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
                        r
                    })
                    .collect();
                let b = if gzip {
                    compressed_batch(Codec::Gzip, now, &recs)
                } else {
                    batch_of(now, &recs)
                };
                log.append(bm(&[&b]), now).unwrap();
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
                let got: Vec<Kv> = records(&read_all(&log));
                assert_eq!(got, model.expected());
            }
            Op::Reopen => {
                drop(log);
                log = PartitionLog::open(&dir, config(), now).unwrap();
            }
        }
        assert_eq!(log.log_end_offset(), model.appended.len() as i64);
    }
    let got: Vec<Kv> = records(&read_all(&log));
    assert_eq!(got, model.expected());
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
