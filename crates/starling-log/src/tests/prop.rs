//! Property test: random appends, rolls and reopens never lose or reorder a record.

use proptest::prelude::*;

use super::support::*;
use crate::{LogConfig, PartitionLog};

#[derive(Debug, Clone)]
enum Op {
    /// Batches of records, given as value sizes.
    Append(Vec<Vec<usize>>),
    /// Advance the clock past `segment.ms` and let the ticker roll.
    Roll,
    /// Drop the log and open it again, after `close()` or not (a crash).
    Reopen { clean: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(prop::collection::vec(0usize..300, 1..6), 1..4).prop_map(Op::Append),
        1 => Just(Op::Roll),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

/// A payload unique to its record: its offset repeated as text, cut to `len`.
fn payload(offset: usize, len: usize) -> Vec<u8> {
    format!("<{offset}>").bytes().cycle().take(len).collect()
}

fn check(log: &PartitionLog, model: &[Vec<u8>]) {
    assert_eq!(log.log_end_offset(), model.len() as i64);
    let all = decode(&read_all(log));
    assert_eq!(all.len(), model.len());
    for (i, rec) in all.iter().enumerate() {
        assert_eq!(rec.offset, i as i64);
        assert_eq!(rec.value, model[i], "payload of offset {i}");
    }
    for (offset, value) in model.iter().enumerate() {
        let offset = offset as i64;
        let got = decode(&log.read(offset, 1, true).unwrap().records);
        assert!(got[0].offset <= offset);
        let rec = got
            .iter()
            .find(|d| d.offset == offset)
            .expect("read holds the offset");
        assert_eq!(&rec.value, value);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_appends_rolls_and_reopens_read_back_in_order(
        ops in prop::collection::vec(op(), 1..25),
        segment_bytes in 300u64..6_000,
        index_interval_bytes in 1u32..600,
    ) {
        let cfg = LogConfig { segment_bytes, index_interval_bytes, segment_ms: 1_000, ..config() };
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        let mut log = PartitionLog::open(&dir, cfg.clone(), NOW).unwrap();
        let mut model: Vec<Vec<u8>> = Vec::new();
        let mut now = NOW;
        for op in ops {
            match op {
                Op::Append(batches) => {
                    let mut input = Vec::new();
                    let first = model.len();
                    for sizes in &batches {
                        let vals: Vec<Vec<u8>> = sizes.iter().map(|&len| {
                            let v = payload(model.len(), len);
                            model.push(v.clone());
                            v
                        }).collect();
                        input.extend_from_slice(&batch(now, &refs(&vals)));
                    }
                    let info = log.append(bm(&[&input]), now).unwrap();
                    prop_assert_eq!(info.base_offset, first as i64);
                    prop_assert_eq!(info.last_offset, model.len() as i64 - 1);
                }
                Op::Roll => {
                    now += 1_001;
                    let before = log.segment_count();
                    let rolled = log.roll_if_due(now).unwrap();
                    prop_assert_eq!(log.segment_count(), before + usize::from(rolled));
                }
                Op::Reopen { clean } => {
                    if clean {
                        log.close().unwrap();
                    }
                    drop(log);
                    log = PartitionLog::open(&dir, cfg.clone(), now).unwrap();
                    check(&log, &model);
                }
            }
        }
        check(&log, &model);
        log.close().unwrap();
        drop(log);
        let log = PartitionLog::open(&dir, cfg, now).unwrap();
        check(&log, &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn append_never_panics_and_writes_nothing_on_refusal(
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..4),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        fix_the_crc in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let (_tmp, log) = open_log(config());
        let mut input = batch(NOW, &refs(&values));
        for (at, byte) in flips {
            let at = at.index(input.len());
            input[at] ^= byte;
        }
        if fix_the_crc {
            fix_crc(&mut input);
        }
        if do_cut {
            input.truncate(cut.index(input.len() + 1));
        }
        match log.append(bm(&[&input]), NOW) {
            Ok(info) => {
                prop_assert_eq!(info.base_offset, 0);
                prop_assert_eq!(log.log_end_offset(), info.last_offset + 1);
                let stored = split(&read_all(&log));
                prop_assert_eq!(stored.len(), 1);
                prop_assert!(stored[0].crc_ok);
            }
            Err(_) => {
                prop_assert_eq!(log.log_end_offset(), 0);
                prop_assert_eq!(log.size_bytes(), 0);
            }
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn open_never_panics_on_arbitrary_segment_files(
        good_batches in 0usize..4,
        garbage in prop::collection::vec(any::<u8>(), 0..300),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        sealed_too in any::<bool>(),
        index_garbage in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        let log = PartitionLog::open(&dir, config(), NOW).unwrap();
        for i in 0..good_batches {
            log.append(bm(&[&batch(NOW, &[format!("v{i}").as_bytes()])]), NOW).unwrap();
        }
        if sealed_too {
            log.roll_if_due(NOW + config().segment_ms + 1).unwrap();
            log.append(bm(&[&batch(NOW, &[b"in the last segment"])]), NOW).unwrap();
        }
        drop(log);
        let files = log_files(&dir);
        let target = files[0].clone();
        let mut bytes = std::fs::read(&target).unwrap();
        bytes.extend_from_slice(&garbage);
        for (at, byte) in flips {
            if !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] ^= byte;
            }
        }
        std::fs::write(&target, &bytes).unwrap();
        std::fs::write(target.with_extension("index"), &index_garbage).unwrap();
        std::fs::write(target.with_extension("timeindex"), &index_garbage).unwrap();
        if let Ok(log) = PartitionLog::open(&dir, config(), NOW) {
            // Whatever survived must read back as whole, valid batches.
            for offset in log.log_start_offset()..log.log_end_offset() {
                let got = log.read(offset, 1, true);
                prop_assert!(got.is_ok(), "{:?}", got.err());
            }
            prop_assert!(split(&read_all(&log)).iter().all(|b| b.crc_ok));
            log.append(bm(&[&batch(NOW, &[b"after"])]), NOW).unwrap();
        }
    }
}

/// What a read must return, computed from the stored batches alone: whole batches from the
/// one holding `offset`, while their total stays within `max_bytes`, the first one regardless
/// with `min_one_batch`.
fn expected_read(
    batches: &[Stored],
    offset: i64,
    max_bytes: usize,
    min_one_batch: bool,
) -> Vec<u8> {
    let start = batches
        .iter()
        .position(|b| b.base_offset + i64::from(b.last_offset_delta) >= offset);
    let mut out = Vec::new();
    for b in start.map_or(&[][..], |i| &batches[i..]) {
        if out.len() + b.bytes.len() > max_bytes {
            if out.is_empty() && min_one_batch {
                out.extend_from_slice(&b.bytes);
            }
            break;
        }
        out.extend_from_slice(&b.bytes);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// For any offset and byte limit over batches of random sizes, spread over several
    /// segments and found through a sparse index, reads return exactly the whole batches a
    /// scan of the stored batches would.
    #[test]
    fn reads_cut_at_the_same_batch_as_a_full_scan(
        sizes in prop::collection::vec(prop::collection::vec(1usize..300, 1..6), 1..80),
        interval in 1u32..400,
        segment_bytes in 600u64..4000,
        reads in prop::collection::vec((0usize..400, 0usize..3000, any::<bool>()), 1..40),
    ) {
        let (_tmp, log) = open_log(LogConfig {
            index_interval_bytes: interval,
            segment_bytes,
            ..config()
        });
        let mut next = 0usize;
        for batch_sizes in &sizes {
            let vals: Vec<Vec<u8>> = batch_sizes
                .iter()
                .map(|&len| { next += 1; payload(next, len) })
                .collect();
            log.append(bm(&[&batch(NOW, &refs(&vals))]), NOW).unwrap();
        }
        let stored = split(&read_all(&log));
        let end = log.log_end_offset();
        for (offset, max_bytes, min_one) in reads {
            let offset = (offset as i64) % (end + 1);
            let got = log.read(offset, max_bytes, min_one).unwrap();
            let want = expected_read(&stored, offset, max_bytes, min_one);
            prop_assert_eq!(got.records.to_vec(), want);
        }
    }
}
