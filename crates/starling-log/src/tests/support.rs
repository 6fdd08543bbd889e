//! Test helpers: an encoder for uncompressed v2 batches with real CRCs, a
//! decoder to check what comes back, and file helpers. Compressed batches
//! are made in `codecs`.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use tempfile::TempDir;

use crate::{LogConfig, PartitionLog};

/// A fixed "now" far from zero, so timestamps are realistic.
pub const NOW: i64 = 1_700_000_000_000;

fn put_unsigned(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
}

pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// One record to encode.
#[derive(Debug, Clone)]
pub struct Rec {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub timestamp_delta: i64,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Encode the value as null (a tombstone); `value` is then ignored.
    pub null_value: bool,
}

impl Rec {
    pub fn value(v: &[u8]) -> Rec {
        Rec {
            key: None,
            value: v.to_vec(),
            timestamp_delta: 0,
            headers: Vec::new(),
            null_value: false,
        }
    }
}

/// Encodes one record with the given offset delta (length prefix included).
pub fn encode_record(rec: &Rec, offset_delta: i32) -> Vec<u8> {
    let mut body = vec![0u8];
    put_varlong(&mut body, rec.timestamp_delta);
    put_varint(&mut body, offset_delta);
    match &rec.key {
        Some(k) => {
            put_varint(&mut body, k.len() as i32);
            body.extend_from_slice(k);
        }
        None => put_varint(&mut body, -1),
    }
    if rec.null_value {
        put_varint(&mut body, -1);
    } else {
        put_varint(&mut body, rec.value.len() as i32);
        body.extend_from_slice(&rec.value);
    }
    put_varint(&mut body, rec.headers.len() as i32);
    for (k, v) in &rec.headers {
        put_varint(&mut body, k.len() as i32);
        body.extend_from_slice(k);
        put_varint(&mut body, v.len() as i32);
        body.extend_from_slice(v);
    }
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i32);
    out.extend_from_slice(&body);
    out
}

/// Assembles a batch from its header fields and records area, with a correct CRC.
pub fn raw_batch(
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    record_count: i32,
    records_area: &[u8],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(61 + records_area.len());
    b.extend_from_slice(&12345i64.to_be_bytes()); // producers send anything here
    b.extend_from_slice(&((49 + records_area.len()) as i32).to_be_bytes());
    b.extend_from_slice(&7i32.to_be_bytes()); // partitionLeaderEpoch, reset on append
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&last_offset_delta.to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&max_timestamp.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&record_count.to_be_bytes());
    b.extend_from_slice(records_area);
    fix_crc(&mut b);
    b
}

/// Recomputes the CRC of one batch in place.
pub fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// An uncompressed CreateTime batch of `recs` with base timestamp `base_ts`.
pub fn batch_of(base_ts: i64, recs: &[Rec]) -> Vec<u8> {
    let mut area = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        area.extend_from_slice(&encode_record(r, i as i32));
    }
    let max_ts = recs
        .iter()
        .map(|r| base_ts + r.timestamp_delta)
        .max()
        .unwrap_or(base_ts);
    raw_batch(
        0,
        recs.len() as i32 - 1,
        base_ts,
        max_ts,
        recs.len() as i32,
        &area,
    )
}

/// An uncompressed batch of values, all at timestamp `ts`.
pub fn batch(ts: i64, values: &[&[u8]]) -> Vec<u8> {
    let recs: Vec<Rec> = values.iter().map(|v| Rec::value(v)).collect();
    batch_of(ts, &recs)
}

pub fn bm(parts: &[&[u8]]) -> BytesMut {
    let mut out = BytesMut::new();
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// Header fields of a stored batch, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub base_offset: i64,
    pub leader_epoch: i32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub record_count: i32,
    pub crc_ok: bool,
    pub bytes: Vec<u8>,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// Splits a byte run into batches, asserting it is made of whole batches.
pub fn split(mut bytes: &[u8]) -> Vec<Stored> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 61, "trailing partial batch header");
        let total = 12 + be_i32(bytes, 8) as usize;
        assert!(total <= bytes.len(), "trailing partial batch");
        let b = &bytes[..total];
        let crc = u32::from_be_bytes(b[17..21].try_into().unwrap());
        out.push(Stored {
            base_offset: be_i64(b, 0),
            leader_epoch: be_i32(b, 12),
            attributes: i16::from_be_bytes(b[21..23].try_into().unwrap()),
            last_offset_delta: be_i32(b, 23),
            base_timestamp: be_i64(b, 27),
            max_timestamp: be_i64(b, 35),
            record_count: be_i32(b, 57),
            crc_ok: crc32c::crc32c(&b[21..]) == crc,
            bytes: b.to_vec(),
        });
        bytes = &bytes[total..];
    }
    out
}

struct Reader<'a>(&'a [u8], usize);

impl Reader<'_> {
    fn unsigned(&mut self) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = self.0[self.1];
            self.1 += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }
    fn varint(&mut self) -> i64 {
        let u = self.unsigned();
        ((u >> 1) as i64) ^ -((u & 1) as i64)
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.varint();
        if n < 0 {
            return None;
        }
        let v = self.0[self.1..self.1 + n as usize].to_vec();
        self.1 += n as usize;
        Some(v)
    }
}

/// A decoded record: absolute offset, timestamp, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub offset: i64,
    pub timestamp: i64,
    pub value: Vec<u8>,
}

/// Decodes every record of every (uncompressed) batch in `bytes`.
pub fn decode(bytes: &[u8]) -> Vec<Decoded> {
    let mut out = Vec::new();
    for b in split(bytes) {
        assert!(
            b.crc_ok,
            "stored batch at offset {} has a bad crc",
            b.base_offset
        );
        assert_eq!(
            b.attributes & 7,
            0,
            "decode only handles uncompressed batches"
        );
        let mut r = Reader(&b.bytes[61..], 0);
        for _ in 0..b.record_count {
            let len = r.varint() as usize;
            let end = r.1 + len;
            r.1 += 1; // attributes
            let ts_delta = r.varint();
            let off_delta = r.varint();
            let _key = r.bytes();
            let value = r.bytes().unwrap_or_default();
            r.1 = end;
            let timestamp = if b.attributes & 8 != 0 {
                b.max_timestamp
            } else {
                b.base_timestamp + ts_delta
            };
            out.push(Decoded {
                offset: b.base_offset + off_delta,
                timestamp,
                value,
            });
        }
        assert_eq!(r.1, b.bytes.len() - 61);
    }
    out
}

/// A fresh temporary directory with a log open in a `p0` subdirectory.
pub fn open_log(config: LogConfig) -> (TempDir, PartitionLog) {
    let tmp = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(&tmp.path().join("p0"), config, NOW).unwrap();
    (tmp, log)
}

/// A closed log with one segment per entry of `segments`, each holding the given encoded
/// batches (appended one by one), rolled by time between segments. Returns the temporary
/// directory, the partition directory and the segment files in order.
pub fn closed_log_of_segments(segments: &[Vec<Vec<u8>>]) -> (TempDir, PathBuf, Vec<PathBuf>) {
    let (tmp, log) = open_log(config());
    let mut now = NOW;
    for (i, batches) in segments.iter().enumerate() {
        if i > 0 {
            now += config().segment_ms + 1;
            assert!(log.roll_if_due(now).unwrap());
        }
        for b in batches {
            log.append(bm(&[b]), now).unwrap();
        }
    }
    let dir = log.dir().to_path_buf();
    drop(log);
    let files = log_files(&dir);
    assert_eq!(files.len(), segments.len());
    (tmp, dir, files)
}

/// Segment data files in a partition directory, sorted.
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    files_with_ext(dir, "log")
}

pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Reads the whole log from its start.
pub fn read_all(log: &PartitionLog) -> Vec<u8> {
    log.read(log.log_start_offset(), usize::MAX, true)
        .unwrap()
        .records
        .to_vec()
}

/// A config that keeps everything and rolls only when told.
pub fn config() -> LogConfig {
    LogConfig {
        retention_ms: None,
        ..LogConfig::default()
    }
}

/// Values `prefix-0`, `prefix-1`, ... as owned vectors.
pub fn values(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}-{i}").into_bytes())
        .collect()
}

pub fn refs(v: &[Vec<u8>]) -> Vec<&[u8]> {
    v.iter().map(|x| x.as_slice()).collect()
}
