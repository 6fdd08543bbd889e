//! Compressed batches at append: each codec's real batches are stored as
//! sent; payloads not valid for their codec are CORRUPT_MESSAGE, valid
//! compression of broken records is INVALID_RECORD, and a decompression bomb
//! is refused within bounded memory and time. Nothing refused is written.

use std::io::Write;
use std::time::{Duration, Instant};

use super::alloc_meter::peak_heap;
use super::codecs::*;
use super::support::*;
use crate::batch::{validate_produce, RecordRules};
use crate::{AppendError, LogConfig, PartitionLog, RecordError};

/// A log holding one uncompressed record, big enough a max.message.bytes for the tests.
fn log_with_one_record() -> (tempfile::TempDir, PartitionLog) {
    let (tmp, log) = open_log(LogConfig {
        max_message_bytes: 64 << 20,
        ..config()
    });
    log.append(bm(&[&batch(NOW, &[b"kept"])]), NOW).unwrap();
    (tmp, log)
}

/// Appends `batch`, expecting a refusal, and checks that nothing was written.
fn refuse(log: &PartitionLog, batch: &[u8], what: &str) -> AppendError {
    let end = log.log_end_offset();
    let stored = read_all(log).len();
    let err = match log.append(bm(&[batch]), NOW) {
        Err(e) => e,
        Ok(info) => panic!("{what}: accepted at offset {}", info.base_offset),
    };
    assert_eq!(log.log_end_offset(), end, "{what}: log end offset moved");
    assert_eq!(read_all(log).len(), stored, "{what}: bytes were stored");
    err
}

fn expect_corrupt(log: &PartitionLog, batch: &[u8], what: &str) -> String {
    match refuse(log, batch, what) {
        AppendError::Corrupt(m) => m,
        other => panic!("{what}: expected CORRUPT_MESSAGE, got {other:?}"),
    }
}

fn expect_invalid(log: &PartitionLog, batch: &[u8], what: &str) -> (String, Vec<RecordError>) {
    match refuse(log, batch, what) {
        AppendError::InvalidRecord {
            message,
            record_errors,
        } => (message, record_errors),
        other => panic!("{what}: expected INVALID_RECORD, got {other:?}"),
    }
}

#[test]
fn each_codec_stores_real_batches_unchanged_and_refuses_garbage_with_a_correct_crc() {
    let (_tmp, log) = log_with_one_record();
    let recs = varied_records(40);
    let mut next = 1;
    for codec in ALL {
        let produced = compressed_batch(codec, NOW, &recs);
        let info = log.append(bm(&[&produced]), NOW).unwrap();
        assert_eq!(
            (info.base_offset, info.last_offset),
            (next, next + 39),
            "{codec:?}"
        );
        let stored = log.read(next, 1 << 20, false).unwrap().records;
        let stored = &split(&stored)[0];
        assert!(stored.crc_ok, "{codec:?}");
        assert_eq!(
            &stored.bytes[16..],
            &produced[16..],
            "{codec:?}: stored as sent"
        );
        next += 40;
    }

    // The same codecs over bytes that are not valid for them, CRC recomputed.
    let (_tmp, log) = log_with_one_record();
    let noise: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let openings: [(&str, i16, &[u8]); 6] = [
        ("gzip", 1, b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"),
        ("snappy raw", 2, b""),
        (
            "snappy xerial",
            2,
            b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01",
        ),
        ("lz4", 3, b"\x04\x22\x4d\x18\x64\x40\xa7"),
        ("zstd", 4, b"\x28\xb5\x2f\xfd"),
        ("gzip without a header", 1, b""),
    ];
    for (what, codec, opening) in openings {
        let mut payload = opening.to_vec();
        payload.extend_from_slice(&noise);
        let bad = raw_batch(codec, 4, NOW, NOW, 5, &payload);
        let msg = expect_corrupt(&log, &bad, what);
        assert!(msg.contains("batch 0 at byte 0"), "{what}: {msg}");
    }
    // A compressed batch with no payload at all.
    for codec in 1..=4 {
        expect_corrupt(
            &log,
            &raw_batch(codec, 0, NOW, NOW, 1, &[]),
            "empty payload",
        );
    }
    log.append(bm(&[&batch(NOW, &[b"after"])]), NOW).unwrap();
}

#[test]
fn truncated_compressed_streams_are_refused_as_corrupt() {
    let (_tmp, log) = log_with_one_record();
    let area = records_area(&varied_records(200));
    for codec in ALL {
        let payload = codec.compress(&area);
        for cut in [payload.len() - 1, payload.len() - 4, payload.len() / 2, 20] {
            let bad = raw_batch(codec.id(), 199, NOW, NOW, 200, &payload[..cut]);
            expect_corrupt(
                &log,
                &bad,
                &format!("{codec:?} cut at {cut} of {}", payload.len()),
            );
        }
    }
}

#[test]
fn bytes_after_the_end_of_a_compressed_stream_are_refused() {
    let (_tmp, log) = log_with_one_record();
    let area = records_area(&varied_records(5));
    for codec in [Codec::Gzip, Codec::Lz4, Codec::Zstd] {
        let mut payload = codec.compress(&area);
        payload.extend_from_slice(b"trailing");
        let bad = raw_batch(codec.id(), 4, NOW, NOW, 5, &payload);
        expect_corrupt(&log, &bad, &format!("{codec:?} with trailing bytes"));
    }
    // A second gzip member: Java would read it, librdkafka would drop it.
    let mut two = gzip(&area);
    two.extend_from_slice(&gzip(&area));
    expect_corrupt(
        &log,
        &raw_batch(1, 4, NOW, NOW, 5, &two),
        "two gzip members",
    );
}

/// A well-formed compressed stream of broken records, per codec: refused as
/// INVALID_RECORD, naming the record when one is at fault.
#[test]
fn valid_compression_of_invalid_records_is_refused_as_invalid_record() {
    let (_tmp, log) = log_with_one_record();
    let a = encode_record(&Rec::value(b"alpha"), 0);
    let b = encode_record(&Rec::value(b"beta"), 1);
    let c = encode_record(&Rec::value(b"gamma"), 2);
    let mut long_prefix = encode_record(&Rec::value(b"beta"), 1);
    long_prefix[0] += 2; // one more byte than the fields fill (zigzag)
    long_prefix.push(0);
    let mut past_end = encode_record(&Rec::value(b"beta"), 1);
    past_end[0] += 40; // 20 bytes more than the stream holds
    let negative_headers = {
        let mut r = encode_record(&Rec::value(b"beta"), 1);
        let last = r.len() - 1;
        r[last] = 1; // header count -1
        r
    };
    // (case, records area, declared count, record at fault)
    let cases: Vec<(&str, Vec<u8>, i32, Option<i32>)> = vec![
        (
            "fewer records than declared",
            [&a[..], &b].concat(),
            3,
            None,
        ),
        (
            "more records than declared",
            [&a[..], &b, &c].concat(),
            2,
            None,
        ),
        (
            "trailing bytes after the last record",
            [&a[..], &b, b"\x00"].concat(),
            2,
            None,
        ),
        (
            "offset deltas not 0, 1, 2",
            [&a[..], &encode_record(&Rec::value(b"b"), 5), &c].concat(),
            3,
            Some(1),
        ),
        (
            "length longer than the fields",
            [&a[..], &long_prefix, &c].concat(),
            3,
            Some(1),
        ),
        (
            "length past the end of the data",
            [&a[..], &past_end].concat(),
            2,
            Some(1),
        ),
        (
            "negative header count",
            [&a[..], &negative_headers].concat(),
            2,
            Some(1),
        ),
        (
            "negative record length",
            [&a[..], b"\x03"].concat(),
            2,
            Some(1),
        ),
    ];
    for codec in ALL {
        for (what, area, count, at_fault) in &cases {
            let bad = compressed_area_batch(codec, NOW, *count, area);
            let (message, errors) = expect_invalid(&log, &bad, &format!("{codec:?}: {what}"));
            let indexes: Vec<i32> = errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(
                indexes,
                at_fault.iter().copied().collect::<Vec<_>>(),
                "{codec:?}: {what}: {message}"
            );
            if let Some(e) = errors.first() {
                assert!(message.contains(&e.message), "{message} / {}", e.message);
            }
        }
    }
}

#[test]
fn snappy_is_accepted_in_both_framings_and_a_broken_block_in_either_is_refused() {
    let (_tmp, log) = log_with_one_record();
    let recs = varied_records(300);
    let area = records_area(&recs);
    let raw = Codec::SnappyRaw.compress(&area);
    let framed = xerial(&area, 4096);
    assert!(framed.len() > 16 + 4 * 5, "several xerial chunks");
    for (what, payload) in [("raw", &raw), ("xerial", &framed)] {
        let good = raw_batch(2, 299, NOW, NOW, 300, payload);
        let before = log.log_end_offset();
        let info = log.append(bm(&[&good]), NOW).unwrap();
        assert_eq!(
            (info.base_offset, info.record_count),
            (before, 300),
            "{what}"
        );
    }
    // A raw block whose declared length is far beyond what its bytes can hold.
    let mut inflated = vec![0xff, 0xff, 0xff, 0xff, 0x07];
    inflated.extend_from_slice(&raw[raw.len().min(5)..]);
    let msg = expect_corrupt(
        &log,
        &raw_batch(2, 299, NOW, NOW, 300, &inflated),
        "raw, inflated length",
    );
    assert!(msg.contains("more than snappy can expand to"), "{msg}");
    // A xerial chunk that claims more bytes than remain, and one that is not snappy.
    let mut long_chunk = framed.clone();
    long_chunk[16..20].copy_from_slice(&i32::MAX.to_be_bytes());
    expect_corrupt(
        &log,
        &raw_batch(2, 299, NOW, NOW, 300, &long_chunk),
        "xerial, chunk too long",
    );
    let mut bad_block = framed.clone();
    bad_block[20..26].copy_from_slice(&[0xff; 6]);
    expect_corrupt(
        &log,
        &raw_batch(2, 299, NOW, NOW, 300, &bad_block),
        "xerial, bad block",
    );
    expect_corrupt(
        &log,
        &raw_batch(2, 299, NOW, NOW, 300, &framed[..12]),
        "xerial, header cut",
    );
}

#[test]
fn lz4_frames_are_checked_as_kafka_reads_them() {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameInfo};
    let (_tmp, log) = log_with_one_record();
    // Noise that repeats only from one 64 KiB block to the next, so linked
    // blocks reach back into earlier ones.
    let noise = |i: u64| -> Vec<u8> {
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let recs: Vec<Rec> = (0..400).map(|i| Rec::value(&noise(i % 200))).collect();
    let area = records_area(&recs);
    let checked = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_checksums(true)
        .content_checksum(true)
        .content_size(Some(area.len() as u64));
    let good = lz4_frame(&area, checked.clone());
    let info = log
        .append(bm(&[&raw_batch(3, 399, NOW, NOW, 400, &good)]), NOW)
        .unwrap();
    assert_eq!(info.record_count, 400);

    // Blocks that depend on earlier ones: Kafka decodes each block alone and fails.
    let linked = lz4_frame(
        &area,
        FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .block_mode(BlockMode::Linked),
    );
    assert!(
        oracle_decompress(3, &linked).is_some(),
        "a valid linked frame"
    );
    expect_corrupt(
        &log,
        &raw_batch(3, 399, NOW, NOW, 400, &linked),
        "linked blocks",
    );

    // Block checksum, content checksum, descriptor checksum.
    let header = 4 + 3 + 8; // magic, FLG, BD, content size, HC
    let mut block_sum = good.clone();
    block_sum[header + 4 + 10] ^= 1; // a byte of the first block's data
    let msg = expect_corrupt(
        &log,
        &raw_batch(3, 399, NOW, NOW, 400, &block_sum),
        "block checksum",
    );
    assert!(msg.contains("checksum"), "{msg}");
    let mut content_sum = good.clone();
    let last = content_sum.len() - 1;
    content_sum[last] ^= 1;
    let msg = expect_corrupt(
        &log,
        &raw_batch(3, 399, NOW, NOW, 400, &content_sum),
        "content checksum",
    );
    assert!(msg.contains("content checksum"), "{msg}");
    let mut descriptor = good.clone();
    descriptor[14] ^= 1; // the header checksum byte
    expect_corrupt(
        &log,
        &raw_batch(3, 399, NOW, NOW, 400, &descriptor),
        "descriptor checksum",
    );
    // A dictionary id (FLG bit 0) is reserved to Kafka.
    let mut dict = lz4_frame(&area, FrameInfo::new());
    dict[4] |= 1;
    expect_corrupt(
        &log,
        &raw_batch(3, 399, NOW, NOW, 400, &dict),
        "dictionary id",
    );
}

#[test]
fn zstd_frame_asking_for_a_window_over_16_mib_is_refused() {
    let (_tmp, log) = log_with_one_record();
    let area = records_area(&varied_records(50));
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    e.window_log(25).unwrap();
    e.write_all(&area).unwrap();
    let payload = e.finish().unwrap();
    let msg = expect_corrupt(
        &log,
        &raw_batch(4, 49, NOW, NOW, 50, &payload),
        "window log 25",
    );
    assert!(msg.contains("zstd"), "{msg}");
    // The same records with the default window are fine.
    log.append(
        bm(&[&compressed_batch(Codec::Zstd, NOW, &varied_records(50))]),
        NOW,
    )
    .unwrap();
}

/// Feeds `total` bytes of well-formed records (1 MiB values of zeros, offset
/// deltas in order) into `sink`; returns how many records that was.
fn write_zero_records(sink: &mut impl Write, total: u64) -> i32 {
    let value = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let mut count = 0i32;
    while written < total {
        // attributes, timestamp delta 0, offset delta, null key, then the value's length.
        let mut head = vec![0u8, 0];
        put_varint(&mut head, count);
        put_varint(&mut head, -1);
        put_varint(&mut head, value.len() as i32);
        let headers = [0u8]; // no headers
        let mut record = Vec::new();
        put_varint(
            &mut record,
            (head.len() + value.len() + headers.len()) as i32,
        );
        record.extend_from_slice(&head);
        sink.write_all(&record).unwrap();
        sink.write_all(&value).unwrap();
        sink.write_all(&headers).unwrap();
        written += (record.len() + value.len() + headers.len()) as u64;
        count += 1;
    }
    count
}

/// 2 GiB of zeros in well-formed records, zstd-compressed to a small batch:
/// refused once the output passes the limit, quickly, without buffering it.
#[test]
fn zstd_bomb_is_refused_quickly_with_bounded_memory() {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    let count = write_zero_records(&mut e, 2 << 30);
    let payload = e.finish().unwrap();
    assert!(
        payload.len() < 1 << 20,
        "the bomb is small: {} bytes",
        payload.len()
    );
    let bomb = raw_batch(4, count - 1, NOW, NOW, count, &payload);

    let started = Instant::now();
    let (result, peak) = peak_heap(|| validate_produce(&bomb, u32::MAX, &RecordRules::default()));
    let elapsed = started.elapsed();
    match result {
        Err(AppendError::Corrupt(m)) => assert!(m.contains("exceed the limit"), "{m}"),
        other => panic!("expected CORRUPT_MESSAGE, got {other:?}"),
    }
    eprintln!(
        "zstd bomb: {count} records in a {}-byte batch refused in {elapsed:?}, {peak} bytes of heap",
        bomb.len()
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(peak < 1 << 20, "validation held {peak} bytes of heap");
}

/// gzip cannot pass the limit (deflate stops near 1032:1, real encoders
/// below 1024:1), so its cost is bounded by its own ratio; what matters is that it is read
/// as a stream. 2 GiB of zeros is refused at its first record, at once; 256
/// MiB of well-formed records in a ~260 KB batch is read through, accepted,
/// in well under 1 MiB of heap.
#[test]
fn gzip_bombs_are_read_as_a_stream_with_bounded_memory() {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..2048 {
        e.write_all(&zeros).unwrap();
    }
    let payload = e.finish().unwrap();
    let zeros_bomb = raw_batch(1, 0, NOW, NOW, 1, &payload);
    let started = Instant::now();
    let (result, peak) =
        peak_heap(|| validate_produce(&zeros_bomb, u32::MAX, &RecordRules::default()));
    assert!(
        matches!(&result, Err(AppendError::InvalidRecord { record_errors, .. })
            if record_errors.iter().map(|e| e.batch_index).eq([0])),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert!(peak < 1 << 20, "validation held {peak} bytes of heap");

    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let count = write_zero_records(&mut e, 256 << 20);
    let payload = e.finish().unwrap();
    let records_bomb = raw_batch(1, count - 1, NOW, NOW, count, &payload);
    let started = Instant::now();
    let (result, peak) =
        peak_heap(|| validate_produce(&records_bomb, u32::MAX, &RecordRules::default()));
    eprintln!(
        "gzip: {count} records of 1 MiB in a {}-byte batch validated in {:?}, {peak} bytes of heap",
        records_bomb.len(),
        started.elapsed()
    );
    assert!(result.is_ok(), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(peak < 1 << 20, "validation held {peak} bytes of heap");
}

/// A record declaring more bytes than the limit leaves is refused at its
/// length prefix, before anything more is decompressed; huge counts are
/// never used to size anything.
#[test]
fn untrusted_lengths_and_counts_allocate_nothing() {
    // One record announcing a 1.5 GiB value, then a little of it.
    let mut area = Vec::new();
    put_varint(&mut area, 1_500_000_000);
    area.extend_from_slice(&[0, 0, 0, 1]);
    put_varint(&mut area, 1_499_999_990);
    area.extend_from_slice(&[0u8; 4096]);
    for codec in ALL {
        let bomb = compressed_area_batch(codec, NOW, 1, &area);
        let started = Instant::now();
        let (result, peak) =
            peak_heap(|| validate_produce(&bomb, u32::MAX, &RecordRules::default()));
        match result {
            Err(AppendError::Corrupt(m)) => assert!(
                m.contains("record 0 declares 1500000000 bytes"),
                "{codec:?}: {m}"
            ),
            other => panic!("{codec:?}: expected CORRUPT_MESSAGE, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(1), "{codec:?}");
        assert!(peak < 1 << 20, "{codec:?}: {peak} bytes of heap");
    }

    // i32::MAX records declared (with a matching last offset delta), a few present;
    // a record with i32::MAX headers.
    let few = records_area(&varied_records(3));
    let mut many_headers = Vec::new();
    let mut body = vec![0u8, 0, 0, 1, 0];
    put_varint(&mut body, i32::MAX);
    put_varint(&mut many_headers, body.len() as i32);
    many_headers.extend_from_slice(&body);
    for codec in ALL {
        for (what, area, count) in [("count", &few, i32::MAX), ("headers", &many_headers, 1)] {
            let batch = compressed_area_batch(codec, NOW, count, area);
            let (result, peak) =
                peak_heap(|| validate_produce(&batch, u32::MAX, &RecordRules::default()));
            assert!(
                matches!(result, Err(AppendError::InvalidRecord { .. })),
                "{codec:?} {what}: {result:?}"
            );
            assert!(peak < 1 << 20, "{codec:?} {what}: {peak} bytes of heap");
        }
    }
}

/// The limit is shared by every batch of a record set: a set of small
/// zstd batches that each stay under it, but not together, is refused.
#[test]
fn the_output_limit_covers_the_whole_record_set() {
    let mut batches = Vec::new();
    for _ in 0..3 {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        let count = write_zero_records(&mut e, 7 << 20);
        let payload = e.finish().unwrap();
        batches.push(raw_batch(4, count - 1, NOW, NOW, count, &payload));
    }
    // Each alone: 7 MiB of output, under the 16 MiB floor.
    assert!(validate_produce(&batches[0], u32::MAX, &RecordRules::default()).is_ok());
    let together = batches.concat();
    assert!(together.len() * 1024 < 16 << 20);
    match validate_produce(&together, u32::MAX, &RecordRules::default()) {
        Err(AppendError::Corrupt(m)) => assert!(m.contains("batch 2 at byte"), "{m}"),
        other => panic!("expected CORRUPT_MESSAGE, got {other:?}"),
    }
}
