//! Test helpers for compressed batches: each codec's real encoder (flate2,
//! snap, lz4_flex, zstd) wrapped as Kafka frames it, batch builders, and an
//! independent whole-buffer decoder used as the oracle of what a consumer
//! could read.

use std::io::{Read, Write};

use super::support::{encode_record, raw_batch, Rec};

/// The codecs a batch can use, with snappy in both of its framings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    SnappyRaw,
    SnappyXerial,
    Lz4,
    Zstd,
}

pub const ALL: [Codec; 5] = [
    Codec::Gzip,
    Codec::SnappyRaw,
    Codec::SnappyXerial,
    Codec::Lz4,
    Codec::Zstd,
];

impl Codec {
    /// The attribute bits of a batch using this codec.
    pub fn id(self) -> i16 {
        match self {
            Codec::Gzip => 1,
            Codec::SnappyRaw | Codec::SnappyXerial => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }

    /// Compresses `data` as a producer of this codec would.
    pub fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Codec::Gzip => gzip(data),
            Codec::SnappyRaw => snap::raw::Encoder::new().compress_vec(data).unwrap(),
            Codec::SnappyXerial => xerial(data, 32 << 10),
            Codec::Lz4 => lz4_frame(data, lz4_flex::frame::FrameInfo::new()),
            Codec::Zstd => zstd::encode_all(data, 3).unwrap(),
        }
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The xerial framing Kafka's Java clients write: header, then chunks of at
/// most `chunk` input bytes, each `[i32 length][raw snappy block]`.
pub fn xerial(data: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = b"\x82SNAPPY\x00".to_vec();
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    for piece in data.chunks(chunk) {
        let block = snap::raw::Encoder::new().compress_vec(piece).unwrap();
        out.extend_from_slice(&(block.len() as i32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    out
}

pub fn lz4_frame(data: &[u8], info: lz4_flex::frame::FrameInfo) -> Vec<u8> {
    let mut e = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The records area (uncompressed) of `recs`, offset deltas 0, 1, ...
pub fn records_area(recs: &[Rec]) -> Vec<u8> {
    let mut area = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        area.extend_from_slice(&encode_record(r, i as i32));
    }
    area
}

/// A batch declaring `count` records whose records area is `area` compressed with `codec`.
pub fn compressed_area_batch(codec: Codec, ts: i64, count: i32, area: &[u8]) -> Vec<u8> {
    raw_batch(codec.id(), count - 1, ts, ts, count, &codec.compress(area))
}

/// A valid batch of `recs` compressed with `codec`.
pub fn compressed_batch(codec: Codec, ts: i64, recs: &[Rec]) -> Vec<u8> {
    compressed_area_batch(codec, ts, recs.len() as i32, &records_area(recs))
}

/// A valid gzip batch of `count` records, each with value `value`.
pub fn gzip_batch(ts: i64, count: i32, value: &[u8]) -> Vec<u8> {
    let recs: Vec<Rec> = (0..count).map(|_| Rec::value(value)).collect();
    compressed_batch(Codec::Gzip, ts, &recs)
}

/// Records of varied shape: keys or not, headers or not, values of 0..600 bytes.
pub fn varied_records(n: usize) -> Vec<Rec> {
    (0..n)
        .map(|i| Rec {
            key: (i % 3 != 0).then(|| format!("key-{i}").into_bytes()),
            value: format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i * 37 % 600)).into_bytes(),
            timestamp_delta: i as i64 * 3,
            headers: if i % 4 == 1 {
                vec![(b"h".to_vec(), format!("v{i}").into_bytes())]
            } else {
                vec![]
            },
            null_value: false,
        })
        .collect()
}

/// Decompresses a whole records area with the codec crates' plain decoders,
/// the way a consumer library would (librdkafka accepts what these accept).
pub fn oracle_decompress(codec_id: i16, payload: &[u8]) -> Option<Vec<u8>> {
    match codec_id {
        1 => {
            let mut d = flate2::read::GzDecoder::new(payload);
            let mut out = Vec::new();
            d.read_to_end(&mut out).ok()?;
            Some(out)
        }
        2 => {
            if payload.starts_with(b"\x82SNAPPY\x00") {
                let mut rest = payload.get(16..)?;
                let mut out = Vec::new();
                while !rest.is_empty() {
                    let len = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
                    let block = rest.get(4..4 + usize::try_from(len).ok()?)?;
                    out.extend(snap::raw::Decoder::new().decompress_vec(block).ok()?);
                    rest = &rest[4 + block.len()..];
                }
                Some(out)
            } else {
                snap::raw::Decoder::new().decompress_vec(payload).ok()
            }
        }
        3 => {
            let mut d = lz4_flex::frame::FrameDecoder::new(payload);
            let mut out = Vec::new();
            d.read_to_end(&mut out).ok()?;
            Some(out)
        }
        4 => zstd::decode_all(payload).ok(),
        _ => None,
    }
}

/// Parses a records area strictly: exactly `count` records with offset
/// deltas 0..count, each filling its length, nothing after. The oracle's
/// record check, written apart from the validator.
pub fn oracle_records_ok(area: &[u8], count: i32) -> bool {
    fn varint(b: &[u8], p: &mut usize) -> Option<i64> {
        let mut v = 0u64;
        for i in 0..10 {
            let byte = *b.get(*p)?;
            *p += 1;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(((v >> 1) as i64) ^ -((v & 1) as i64));
            }
        }
        None
    }
    fn fits_i32(v: i64) -> Option<i64> {
        i32::try_from(v).ok().map(i64::from)
    }
    let mut p = 0usize;
    for i in 0..i64::from(count) {
        let Some(len) = varint(area, &mut p).and_then(fits_i32) else {
            return false;
        };
        let Some(end) = usize::try_from(len).ok().and_then(|l| p.checked_add(l)) else {
            return false;
        };
        let Some(body) = area.get(p..end) else {
            return false;
        };
        let mut q = 1usize;
        let ok = (|| {
            body.first()?;
            varint(body, &mut q)?; // timestamp delta
            let delta = varint(body, &mut q).and_then(fits_i32)?;
            if delta != i {
                return None;
            }
            for _ in 0..2 {
                let n = varint(body, &mut q).and_then(fits_i32)?;
                if n < -1 {
                    return None;
                }
                q = q.checked_add(n.max(0) as usize)?;
            }
            let headers = varint(body, &mut q).and_then(fits_i32)?;
            if headers < 0 {
                return None;
            }
            for _ in 0..headers {
                let k = varint(body, &mut q).and_then(fits_i32)?;
                if k < 0 {
                    return None;
                }
                q = q.checked_add(k as usize)?;
                let v = varint(body, &mut q).and_then(fits_i32)?;
                if v < -1 {
                    return None;
                }
                q = q.checked_add(v.max(0) as usize)?;
                if q > body.len() {
                    return None;
                }
            }
            (q == body.len()).then_some(())
        })();
        if ok.is_none() {
            return false;
        }
        p = end;
    }
    p == area.len()
}
