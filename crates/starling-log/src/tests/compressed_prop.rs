//! Property tests of produce validation on compressed batches: real batches
//! of random records are always accepted; after random damage (bytes
//! flipped, cut, inserted, the CRC recomputed) or as arbitrary bytes,
//! validation never panics, and it accepts a batch only if a plain
//! whole-buffer decoder reads exactly its declared records, in order — so no
//! accepted batch can stall a consumer.

use proptest::prelude::*;

use super::codecs::*;
use super::support::*;
use crate::batch::{validate_produce, BatchHeader, RecordRules, HEADER_LEN};
use crate::AppendError;

fn codec() -> impl Strategy<Value = Codec> {
    prop::sample::select(ALL.to_vec())
}

fn records() -> impl Strategy<Value = Vec<Rec>> {
    let rec = (
        prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            (0usize..3000).prop_map(|n| b"{\"k\":1}".repeat(n / 7 + 1)),
        ],
        -1000i64..1000,
        prop::collection::vec(
            (
                prop::collection::vec(any::<u8>(), 0..8),
                prop::collection::vec(any::<u8>(), 0..8),
            ),
            0..3,
        ),
    )
        .prop_map(|(key, value, timestamp_delta, headers)| Rec {
            key,
            value,
            timestamp_delta,
            headers,
            null_value: false,
        });
    prop::collection::vec(rec, 1..30)
}

#[derive(Debug, Clone)]
enum Damage {
    Flip { at: usize, bits: u8 },
    Cut { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
    SetCount { count: i32 },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(at, bits)| Damage::Flip { at, bits }),
        1 => any::<usize>().prop_map(|at| Damage::Cut { at }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, bytes)| Damage::Insert { at, bytes }),
        1 => (any::<usize>(), 1usize..16).prop_map(|(at, len)| Damage::Remove { at, len }),
        1 => (-2i32..40).prop_map(|count| Damage::SetCount { count }),
    ]
}

/// Applies `d` to the payload (after the header) of one batch, then fixes the
/// batch length and CRC so only the records area is wrong.
fn apply(batch: &[u8], damages: &[Damage]) -> Vec<u8> {
    let mut header = batch[..HEADER_LEN].to_vec();
    let mut payload = batch[HEADER_LEN..].to_vec();
    for d in damages {
        let n = payload.len().max(1);
        match d {
            Damage::Flip { at, bits } => {
                if let Some(b) = payload.get_mut(at % n) {
                    *b ^= bits;
                }
            }
            Damage::Cut { at } => payload.truncate(at % n),
            Damage::Insert { at, bytes } => {
                let at = at % (payload.len() + 1);
                payload.splice(at..at, bytes.iter().copied());
            }
            Damage::Remove { at, len } => {
                let at = at % n;
                let end = (at + len).min(payload.len());
                if at < end {
                    payload.drain(at..end);
                }
            }
            Damage::SetCount { count } => {
                header[23..27].copy_from_slice(&(count - 1).to_be_bytes());
                header[57..61].copy_from_slice(&count.to_be_bytes());
            }
        }
    }
    header[8..12].copy_from_slice(&((49 + payload.len()) as i32).to_be_bytes());
    header.extend_from_slice(&payload);
    fix_crc(&mut header);
    header
}

/// What the oracle says of an accepted batch: its payload decodes in full
/// with the plain decoders and holds exactly the declared records.
fn readable_by_a_consumer(batch: &[u8]) -> bool {
    let Some(h) = BatchHeader::parse(batch) else {
        return false;
    };
    let payload = &batch[HEADER_LEN..];
    let area = match h.compression() {
        0 => Some(payload.to_vec()),
        codec => oracle_decompress(codec, payload),
    };
    area.is_some_and(|area| oracle_records_ok(&area, h.record_count))
}

fn check(batch: &[u8]) -> Result<(), TestCaseError> {
    match validate_produce(batch, u32::MAX, &RecordRules::default()) {
        Ok(_) => prop_assert!(
            readable_by_a_consumer(batch),
            "accepted a batch a consumer could not read"
        ),
        Err(AppendError::Corrupt(_) | AppendError::InvalidRecord { .. }) => {}
        Err(other) => prop_assert!(false, "unexpected refusal {other:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn real_batches_are_accepted_and_damaged_ones_only_if_still_readable(
        codec in codec(),
        recs in records(),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let good = compressed_batch(codec, NOW, &recs);
        prop_assert!(validate_produce(&good, u32::MAX, &RecordRules::default()).is_ok(), "{codec:?}: a real batch was refused");
        check(&apply(&good, &damages))?;
    }

    #[test]
    fn arbitrary_payloads_are_accepted_only_if_readable(
        codec_id in 0i16..=4,
        count in 1i32..5,
        opening in prop::sample::select(vec![
            &b""[..],
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff",
            b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01",
            b"\x04\x22\x4d\x18\x64\x40\xa7",
            b"\x04\x22\x4d\x18\x60\x70\x73",
            b"\x28\xb5\x2f\xfd",
        ]),
        rest in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let payload = [opening, &rest[..]].concat();
        check(&raw_batch(codec_id, count - 1, NOW, NOW, count, &payload))?;
    }
}
