//! The cost of produce-time validation per codec, against the CRC-only check
//! that was all a compressed batch got before.
//!
//! Each codec gets one realistic ~1 MB batch: 1,000 JSON-ish records of about
//! 1 KB, compressed with the real codec at its usual setting (gzip level 6,
//! snappy raw as librdkafka sends it, snappy in Java's xerial framing, lz4
//! frame with independent 64 KiB blocks, zstd level 3). For each, criterion
//! times `crc_only` (CRC-32C over the batch, compared with its header) and
//! `validate` (`starling_log::validate_record_set`: header, CRC, decompression
//! and the walk of every record). At the end a table gives, per codec, MB/s
//! of record data (uncompressed) through `validate` and its time as a
//! multiple of `crc_only` on the same batch.
//!
//! ```sh
//! cargo bench -p starling-log --bench produce_validation
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{Criterion, Throughput};

const RECORDS: usize = 1000;

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (u & 0x7f) as u8;
        u >>= 7;
        if u == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// ~1 KB of JSON per record, varying like real events do.
fn json_value(i: usize) -> Vec<u8> {
    let mut v = format!(
        "{{\"event_id\":\"{:016x}\",\"user\":\"user-{}\",\"type\":\"{}\",\"ts\":{},\"items\":[",
        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        i % 7919,
        ["click", "view", "purchase", "scroll"][i % 4],
        1_700_000_000_000u64 + i as u64 * 17
    );
    let mut n = 0;
    while v.len() < 960 {
        v.push_str(&format!(
            "{{\"sku\":\"SKU-{:05}\",\"qty\":{},\"price\":{}.{:02}}},",
            (i * 31 + n * 7) % 100_000,
            1 + (i + n) % 5,
            (i * 13 + n) % 500,
            (i + n * 3) % 100
        ));
        n += 1;
    }
    v.push_str("{}]}");
    v.into_bytes()
}

fn records_area() -> Vec<u8> {
    let mut area = Vec::new();
    for i in 0..RECORDS {
        let key = format!("user-{}", i % 7919).into_bytes();
        let value = json_value(i);
        let mut body = vec![0u8];
        put_varint(&mut body, (i * 3) as i64);
        put_varint(&mut body, i as i64);
        put_varint(&mut body, key.len() as i64);
        body.extend_from_slice(&key);
        put_varint(&mut body, value.len() as i64);
        body.extend_from_slice(&value);
        put_varint(&mut body, 1);
        put_varint(&mut body, 2);
        body.extend_from_slice(b"ct");
        put_varint(&mut body, 16);
        body.extend_from_slice(b"application/json");
        put_varint(&mut area, body.len() as i64);
        area.extend_from_slice(&body);
    }
    area
}

fn batch(codec: i16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(61 + payload.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((49 + payload.len()) as i32).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&codec.to_be_bytes());
    b.extend_from_slice(&(RECORDS as i32 - 1).to_be_bytes());
    b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&(RECORDS as i32).to_be_bytes());
    b.extend_from_slice(payload);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn xerial(data: &[u8]) -> Vec<u8> {
    let mut out = b"\x82SNAPPY\x00".to_vec();
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    for piece in data.chunks(32 << 10) {
        let block = snap::raw::Encoder::new().compress_vec(piece).unwrap();
        out.extend_from_slice(&(block.len() as i32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    out
}

/// (name, batch) per codec, all carrying the same records.
fn batches(area: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let gzip = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(area).unwrap();
        e.finish().unwrap()
    };
    let lz4 = {
        let info =
            lz4_flex::frame::FrameInfo::new().block_size(lz4_flex::frame::BlockSize::Max64KB);
        let mut e = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        e.write_all(area).unwrap();
        e.finish().unwrap()
    };
    vec![
        ("none", batch(0, area)),
        ("gzip", batch(1, &gzip)),
        (
            "snappy",
            batch(2, &snap::raw::Encoder::new().compress_vec(area).unwrap()),
        ),
        ("snappy-xerial", batch(2, &xerial(area))),
        ("lz4", batch(3, &lz4)),
        ("zstd", batch(4, &zstd::encode_all(area, 3).unwrap())),
    ]
}

fn crc_only(batch: &[u8]) -> bool {
    let stored = u32::from_be_bytes([batch[17], batch[18], batch[19], batch[20]]);
    crc32c::crc32c(&batch[21..]) == stored
}

/// The mean time criterion measured in this run (older results are ignored).
fn mean_ns(dir: &Path, group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(group).join(function).join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn main() {
    let started = SystemTime::now();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("criterion");
    let mut c = Criterion::default()
        .output_directory(&dir)
        .configure_from_args();
    let area = records_area();
    let batches = batches(&area);
    for (name, b) in &batches {
        assert!(crc_only(b));
        assert!(
            starling_log::validate_record_set(b, u32::MAX).is_ok(),
            "{name}: a real batch must validate"
        );
        // Guard against measuring a validator that does not look inside: the
        // same batch cut one byte short (length and CRC fixed) must be refused.
        let mut cut = b[..b.len() - 1].to_vec();
        let length = (cut.len() - 12) as i32;
        cut[8..12].copy_from_slice(&length.to_be_bytes());
        let crc = crc32c::crc32c(&cut[21..]);
        cut[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(
            starling_log::validate_record_set(&cut, u32::MAX).is_err(),
            "{name}: a cut batch must be refused"
        );
        let mut group = c.benchmark_group(format!("produce_validation_{name}"));
        group.throughput(Throughput::Bytes(area.len() as u64));
        group.bench_function("crc_only", |bench| bench.iter(|| crc_only(black_box(b))));
        group.bench_function("validate", |bench| {
            bench.iter(|| starling_log::validate_record_set(black_box(b), u32::MAX))
        });
        group.finish();
    }
    c.final_summary();

    println!();
    println!(
        "{} records, {} bytes of record data per batch; MB/s of record data (10^6 bytes/s)",
        RECORDS,
        area.len()
    );
    println!("| codec | batch bytes | CRC only | validate | validate MB/s | validate ÷ CRC only |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (name, b) in &batches {
        let group = format!("produce_validation_{name}");
        let (Some(crc), Some(full)) = (
            mean_ns(&dir, &group, "crc_only", started),
            mean_ns(&dir, &group, "validate", started),
        ) else {
            println!("| {name} | {} | (not measured) | | | |", b.len());
            continue;
        };
        println!(
            "| {name} | {} | {:.1} µs | {:.1} µs | {:.0} | {:.1}× |",
            b.len(),
            crc / 1e3,
            full / 1e3,
            area.len() as f64 / (full / 1e9) / 1e6,
            full / crc
        );
    }
}
