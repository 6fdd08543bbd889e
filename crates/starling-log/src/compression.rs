//! Streaming decompression of a produced batch's records area, for validation,
//! and the encoders ([`compress`]) the cleaner and a topic's `compression.type` share.
//!
//! A compressed batch (codec 1-4: gzip, snappy, lz4, zstd) is stored as its
//! producer sent it (unless the topic's `compression.type` names another codec:
//! then it is recompressed, see `filter::recompress`), but only after its
//! records have been read back out of the codec and checked (see `batch`), as
//! Kafka does: a batch that no consumer could decompress must never reach the log. This module turns the
//! compressed bytes into a pull stream of decompressed bytes ([`Decompressed`])
//! without ever holding the whole output:
//!
//! * **gzip**: one gzip member (header, deflate data, CRC-32 and length
//!   trailer), nothing after it. Java's `GZIPInputStream` would also read
//!   further members, but librdkafka consumers stop after the first, so a
//!   second member would be silently lost to them.
//! * **snappy**: Kafka's Java clients use the xerial framing (magic
//!   `\x82SNAPPY\0`, version, compatible version, then `[i32 length][raw
//!   snappy block]` chunks), librdkafka a single raw snappy block; both are
//!   accepted, as Kafka does. A raw snappy block has no streaming form (a copy
//!   may reach back to any earlier byte), so each block is decompressed whole,
//!   after its declared size has been checked against the output limit and
//!   against the most a snappy block can expand (22 × its size).
//! * **lz4**: the standard LZ4 frame (magic `0x184D2204`, version 1, no
//!   dictionary, header checksum), its blocks each decoded on their own as
//!   Kafka's `Lz4BlockInputStream` does, with block and content checksums
//!   and the content size checked when the frame has them (Kafka skips the
//!   size, liblz4 checks it); nothing may follow the end mark.
//! * **zstd**: one or more zstd frames; a frame that needs a window larger
//!   than 16 MiB (`MAX_ZSTD_WINDOW_LOG`) is refused rather than allocated.
//!
//! **The output limit.** All batches of one appended record set (one
//! partition of a produce request) share an [`OutputBudget`] of
//! `max(16 MiB, 1024 × the record set's size in bytes)` decompressed bytes;
//! a batch whose output would go past it is refused (CORRUPT_MESSAGE, saying
//! so). Memory is a codec's window or block (at most 16 MiB for zstd, 4 MiB
//! for lz4, 32 KiB for gzip, one block for snappy) plus a 64 KiB buffer,
//! whatever the decompressed size, so a decompression bomb costs bounded
//! memory, and time in proportion to the limit.

use std::hash::Hasher;
use std::io::{self, BufRead, BufReader, Read};

/// Codec ids of the batch `attributes` bits 0-2.
pub(crate) const GZIP: i16 = 1;
pub(crate) const SNAPPY: i16 = 2;
pub(crate) const LZ4: i16 = 3;
pub(crate) const ZSTD: i16 = 4;

/// The output limit never goes below this many bytes per record set.
pub(crate) const MIN_OUTPUT_LIMIT: u64 = 16 << 20;
/// Nor below this many times the record set's size.
pub(crate) const OUTPUT_RATIO_LIMIT: u64 = 1024;
/// zstd frames may ask for a window of at most 2^24 bytes (16 MiB).
pub(crate) const MAX_ZSTD_WINDOW_LOG: u32 = 24;
/// How many decompressed bytes gzip and zstd produce per step.
const CHUNK: usize = 64 << 10;
/// A raw snappy block can expand to at most ~21.3 × its size (a 3-byte copy
/// yields 64 bytes); anything declaring more cannot be valid.
const SNAPPY_MAX_EXPANSION: u64 = 22;
/// An lz4 block can expand to at most ~255 × its size.
const LZ4_MAX_EXPANSION: usize = 255;

/// Decompressed bytes still allowed for one record set.
#[derive(Debug)]
pub(crate) struct OutputBudget {
    limit: u64,
    left: u64,
    record_set_bytes: usize,
}

impl OutputBudget {
    /// The budget of a record set of `record_set_bytes` bytes:
    /// `max(16 MiB, 1024 × record_set_bytes)`.
    pub fn for_record_set(record_set_bytes: usize) -> OutputBudget {
        let limit = (record_set_bytes as u64)
            .saturating_mul(OUTPUT_RATIO_LIMIT)
            .max(MIN_OUTPUT_LIMIT);
        OutputBudget {
            limit,
            left: limit,
            record_set_bytes,
        }
    }

    /// Bytes that may still be decompressed.
    pub fn left(&self) -> u64 {
        self.left
    }

    /// Why a batch going past the budget is refused.
    pub fn exceeded(&self) -> String {
        format!(
            "decompressed records exceed the limit of {} bytes for this record set \
             (max(16 MiB, {OUTPUT_RATIO_LIMIT} × its {} bytes))",
            self.limit, self.record_set_bytes
        )
    }

    fn charge(&mut self, n: usize) -> Result<(), String> {
        match self.left.checked_sub(n as u64) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.left = 0;
                Err(self.exceeded())
            }
        }
    }
}

/// The name Kafka gives a codec id, for messages.
pub(crate) fn codec_name(codec: i16) -> &'static str {
    match codec {
        0 => "none",
        GZIP => "gzip",
        SNAPPY => "snappy",
        LZ4 => "lz4",
        ZSTD => "zstd",
        _ => "unknown",
    }
}

/// A pull stream of a batch's decompressed records area, charged to an
/// [`OutputBudget`]. Errors are messages for CORRUPT_MESSAGE: the payload is
/// not valid for its codec, or its output goes past the budget.
pub(crate) struct Decompressed<'a> {
    codec: i16,
    inner: Box<dyn BufRead + 'a>,
    budget: &'a mut OutputBudget,
    /// Length of the piece `inner` currently holds (already charged).
    piece: usize,
    /// How much of that piece has been consumed.
    used: usize,
}

impl<'a> Decompressed<'a> {
    /// Starts decompressing `data` (a records area) with codec 1-4.
    pub fn new(
        codec: i16,
        data: &'a [u8],
        budget: &'a mut OutputBudget,
    ) -> Result<Decompressed<'a>, String> {
        let name = codec_name(codec);
        if data.is_empty() {
            return Err(format!("{name}: the compressed records area is empty"));
        }
        let inner: Box<dyn BufRead + 'a> = match codec {
            GZIP => Box::new(BufReader::with_capacity(CHUNK, Gzip::new(data))),
            SNAPPY => Box::new(Snappy::new(data, budget.left())?),
            LZ4 => Box::new(Lz4Frame::new(data)?),
            ZSTD => {
                let mut decoder = zstd::stream::read::Decoder::with_buffer(data)
                    .map_err(|e| format!("zstd: {e}"))?;
                decoder
                    .window_log_max(MAX_ZSTD_WINDOW_LOG)
                    .map_err(|e| format!("zstd: {e}"))?;
                Box::new(BufReader::with_capacity(CHUNK, decoder))
            }
            other => return Err(format!("unknown compression codec {other}")),
        };
        Ok(Decompressed {
            codec,
            inner,
            budget,
            piece: 0,
            used: 0,
        })
    }

    /// The next decompressed bytes; empty once the stream has ended cleanly
    /// (trailers and checksums verified, no compressed bytes left over).
    pub fn fill(&mut self) -> Result<&[u8], String> {
        let codec = self.codec;
        let piece = match self.inner.fill_buf() {
            Ok(piece) => piece,
            Err(e) => return Err(format!("{}: {e}", codec_name(codec))),
        };
        if self.used == self.piece {
            // A new piece: charge all of it now.
            self.budget.charge(piece.len())?;
            self.piece = piece.len();
            self.used = 0;
        }
        Ok(piece)
    }

    /// Marks `n` bytes of the last [`fill`](Self::fill) as read.
    pub fn consume(&mut self, n: usize) {
        self.used += n;
        self.inner.consume(n);
    }

    /// The most bytes this stream may still yield: what is buffered plus the budget left.
    pub fn max_remaining(&self) -> u64 {
        self.piece.saturating_sub(self.used) as u64 + self.budget.left()
    }

    /// The budget's refusal message, for a record that declares more than
    /// [`max_remaining`](Self::max_remaining).
    pub fn exceeded(&self) -> String {
        self.budget.exceeded()
    }
}

/// The whole decompressed records area of a stored batch (`data` compressed with codec 1-4),
/// under the same output limit as a produced record set of `batch_size` bytes: for the
/// cleaner, which reads back what validation once accepted.
pub(crate) fn decompress_all(
    codec: i16,
    data: &[u8],
    batch_size: usize,
) -> Result<Vec<u8>, String> {
    let mut budget = OutputBudget::for_record_set(batch_size);
    let mut source = Decompressed::new(codec, data, &mut budget)?;
    let mut out = Vec::with_capacity(data.len().saturating_mul(2));
    loop {
        let piece = source.fill()?;
        if piece.is_empty() {
            return Ok(out);
        }
        let n = piece.len();
        out.extend_from_slice(piece);
        source.consume(n);
    }
}

/// How to compress a records area: the codec (1-4), the levels of the codecs that have them
/// (KIP-390's `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`), and
/// for snappy whether to write the xerial framing of Kafka's Java clients (which the broker
/// writes when it compresses) or a single raw block (librdkafka's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encoding {
    pub codec: i16,
    pub levels: crate::CompressionLevels,
    pub snappy_xerial: bool,
}

impl Encoding {
    /// Recompressing a stored batch with its own codec at the default levels, keeping its
    /// snappy framing (`original` is its compressed records area): the cleaner's rewrite.
    pub fn same_as(codec: i16, original: &[u8]) -> Encoding {
        Encoding {
            codec,
            levels: crate::CompressionLevels::default(),
            snappy_xerial: original.starts_with(XERIAL_MAGIC),
        }
    }
}

/// Compresses a records area as `encoding` says: the one set of encoders the cleaner's rewritten
/// batches and the broker's recompression (a topic's `compression.type`) share.
///
/// * gzip: one member at the gzip level (-1: zlib's default, 6);
/// * snappy: xerial chunks of 32 KiB input, or one raw block;
/// * lz4: an LZ4 frame of independent 64 KiB blocks without content checksum (as Kafka's
///   `Lz4BlockOutputStream` writes it, each block decodable on its own), liblz4's fast mode at
///   levels 1-2 and its high-compression mode above (levels past 12 count as 12);
/// * zstd: one frame at the zstd level.
pub(crate) fn compress(encoding: &Encoding, data: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let codec = encoding.codec;
    let levels = encoding.levels;
    let name = codec_name(codec);
    let fail = |e: &dyn std::fmt::Display| format!("{name}: {e}");
    match codec {
        GZIP => {
            let level = match u32::try_from(levels.gzip) {
                Ok(level) => flate2::Compression::new(level.min(9)),
                Err(_) => flate2::Compression::default(),
            };
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
            encoder.write_all(data).map_err(|e| fail(&e))?;
            encoder.finish().map_err(|e| fail(&e))
        }
        SNAPPY if encoding.snappy_xerial => {
            let mut out = XERIAL_MAGIC.to_vec();
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for piece in data.chunks(XERIAL_CHUNK) {
                let block = encoder.compress_vec(piece).map_err(|e| fail(&e))?;
                let len = i32::try_from(block.len()).map_err(|e| fail(&e))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        SNAPPY => snap::raw::Encoder::new()
            .compress_vec(data)
            .map_err(|e| fail(&e)),
        LZ4 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .level(u32::try_from(levels.lz4).unwrap_or(1).max(1))
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::with_capacity(data.len() / 2 + 64))
                .map_err(|e| fail(&e))?;
            encoder.write_all(data).map_err(|e| fail(&e))?;
            let (out, done) = encoder.finish();
            done.map_err(|e| fail(&e))?;
            Ok(out)
        }
        ZSTD => zstd::encode_all(data, levels.zstd).map_err(|e| fail(&e)),
        other => Err(format!("unknown compression codec {other}")),
    }
}

/// Input bytes per xerial chunk (the Java client's 32 KiB).
const XERIAL_CHUNK: usize = 32 << 10;

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// One gzip member, with nothing after it.
struct Gzip<'a> {
    decoder: flate2::bufread::GzDecoder<&'a [u8]>,
}

impl<'a> Gzip<'a> {
    fn new(data: &'a [u8]) -> Gzip<'a> {
        Gzip {
            decoder: flate2::bufread::GzDecoder::new(data),
        }
    }
}

impl Read for Gzip<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.decoder.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let rest = self.decoder.get_ref().len();
            if rest > 0 {
                return Err(invalid(format!(
                    "{rest} bytes follow the end of the gzip stream"
                )));
            }
        }
        Ok(n)
    }
}

/// The xerial framing's magic, as Kafka's Java clients write it.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// Magic plus version and compatible version.
const XERIAL_HEADER_LEN: usize = 16;

/// Raw snappy, or xerial-framed chunks of raw snappy.
struct Snappy<'a> {
    /// Compressed bytes not yet decoded (the chunks, or the raw block).
    rest: &'a [u8],
    xerial: bool,
    /// Output bytes the blocks may still declare.
    allowed: u64,
    /// The current block's output is `out[..len]` (the buffer is reused).
    out: Vec<u8>,
    len: usize,
    pos: usize,
    decoder: snap::raw::Decoder,
}

impl<'a> Snappy<'a> {
    fn new(data: &'a [u8], allowed: u64) -> Result<Snappy<'a>, String> {
        let xerial = data.starts_with(XERIAL_MAGIC);
        let rest = if xerial {
            data.get(XERIAL_HEADER_LEN..).ok_or_else(|| {
                format!(
                    "snappy: xerial header cut off after {} of {XERIAL_HEADER_LEN} bytes",
                    data.len()
                )
            })?
        } else {
            data
        };
        Ok(Snappy {
            rest,
            xerial,
            allowed,
            out: Vec::new(),
            len: 0,
            pos: 0,
            decoder: snap::raw::Decoder::new(),
        })
    }

    /// The next raw block's bytes, or `None` at the end.
    fn next_block(&mut self) -> io::Result<Option<&'a [u8]>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        if !self.xerial {
            return Ok(Some(std::mem::take(&mut self.rest)));
        }
        let Some((len, after)) = self.rest.split_first_chunk::<4>() else {
            return Err(invalid(format!(
                "xerial chunk length cut off ({} bytes left)",
                self.rest.len()
            )));
        };
        let len = i32::from_be_bytes(*len);
        let block = usize::try_from(len)
            .ok()
            .and_then(|len| after.get(..len))
            .ok_or_else(|| {
                invalid(format!(
                    "xerial chunk declares {len} bytes, {} remain",
                    after.len()
                ))
            })?;
        self.rest = &after[block.len()..];
        Ok(Some(block))
    }

    /// Decodes blocks until one yields output; false at the end.
    fn decode_next(&mut self) -> io::Result<bool> {
        while let Some(block) = self.next_block()? {
            let declared = snap::raw::decompress_len(block).map_err(|e| invalid(e.to_string()))?;
            let declared64 = declared as u64;
            if declared64 > (block.len() as u64).saturating_mul(SNAPPY_MAX_EXPANSION) {
                return Err(invalid(format!(
                    "a block of {} bytes declares {declared} decompressed bytes, more than snappy can expand to",
                    block.len()
                )));
            }
            if declared64 > self.allowed {
                return Err(invalid(format!(
                    "a block declares {declared} decompressed bytes, more than the {} left of the output limit",
                    self.allowed
                )));
            }
            self.allowed -= declared64;
            if self.out.len() < declared {
                self.out.resize(declared, 0);
            }
            self.len = self
                .decoder
                .decompress(block, &mut self.out[..declared])
                .map_err(|e| invalid(e.to_string()))?;
            self.pos = 0;
            if self.len > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// `Read::read` for a decoder whose output lives in its own buffer: copy from `fill_buf`.
fn read_through_buffer(reader: &mut impl BufRead, buf: &mut [u8]) -> io::Result<usize> {
    let available = reader.fill_buf()?;
    let n = available.len().min(buf.len());
    buf[..n].copy_from_slice(&available[..n]);
    reader.consume(n);
    Ok(n)
}

impl Read for Snappy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_through_buffer(self, buf)
    }
}

impl BufRead for Snappy<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.len && !self.decode_next()? {
            return Ok(&[]);
        }
        Ok(&self.out[self.pos..self.len])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.len);
    }
}

const LZ4_MAGIC: u32 = 0x184D_2204;
const LZ4_FLG_VERSION_MASK: u8 = 0b1100_0000;
const LZ4_FLG_VERSION_1: u8 = 0b0100_0000;
const LZ4_FLG_BLOCK_CHECKSUM: u8 = 0b0001_0000;
const LZ4_FLG_CONTENT_SIZE: u8 = 0b0000_1000;
const LZ4_FLG_CONTENT_CHECKSUM: u8 = 0b0000_0100;
/// Bit 1 is reserved; bit 0 (dictionary id) is reserved to Kafka too.
const LZ4_FLG_RESERVED: u8 = 0b0000_0011;
const LZ4_BD_RESERVED: u8 = 0b1000_1111;
const LZ4_UNCOMPRESSED_BLOCK: u32 = 0x8000_0000;

fn xxh32(data: &[u8]) -> u32 {
    twox_hash::XxHash32::oneshot(0, data)
}

/// An LZ4 frame whose blocks are decoded independently, as Kafka does.
struct Lz4Frame<'a> {
    rest: &'a [u8],
    block_max: usize,
    block_checksum: bool,
    content_checksum: Option<twox_hash::XxHash32>,
    /// The content size the frame declares, if it does.
    content_size: Option<u64>,
    /// Decompressed bytes so far.
    produced: u64,
    /// Output of the current compressed block.
    out: Vec<u8>,
    /// The current uncompressed block, served straight from the input.
    stored: &'a [u8],
    /// Whether the current block is `stored` rather than `out[..out_len]`.
    serving_stored: bool,
    out_len: usize,
    pos: usize,
    ended: bool,
}

impl<'a> Lz4Frame<'a> {
    fn new(data: &'a [u8]) -> Result<Lz4Frame<'a>, String> {
        let cut = || format!("lz4: frame header cut off ({} bytes)", data.len());
        let (magic, _) = data.split_first_chunk::<4>().ok_or_else(cut)?;
        if u32::from_le_bytes(*magic) != LZ4_MAGIC {
            return Err("lz4: not an LZ4 frame (bad magic)".to_string());
        }
        let (flg, bd) = match data.get(4..6) {
            Some(&[flg, bd]) => (flg, bd),
            _ => return Err(cut()),
        };
        if flg & LZ4_FLG_VERSION_MASK != LZ4_FLG_VERSION_1 {
            return Err(format!("lz4: unsupported frame version in FLG {flg:#04x}"));
        }
        if flg & LZ4_FLG_RESERVED != 0 || bd & LZ4_BD_RESERVED != 0 {
            return Err(format!(
                "lz4: reserved bits set (FLG {flg:#04x}, BD {bd:#04x})"
            ));
        }
        let block_max = match (bd >> 4) & 0x07 {
            4 => 64 << 10,
            5 => 256 << 10,
            6 => 1 << 20,
            7 => 4 << 20,
            other => return Err(format!("lz4: invalid block maximum size code {other}")),
        };
        // FLG, BD and the optional content size (skipped, as Kafka does), then
        // the descriptor's checksum byte.
        let descriptor_len = if flg & LZ4_FLG_CONTENT_SIZE != 0 {
            10
        } else {
            2
        };
        let descriptor = data.get(4..4 + descriptor_len).ok_or_else(cut)?;
        let content_size = descriptor
            .get(2..10)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
        let checksum = *data.get(4 + descriptor_len).ok_or_else(cut)?;
        if checksum != (xxh32(descriptor) >> 8) as u8 {
            return Err("lz4: frame descriptor checksum mismatch".to_string());
        }
        Ok(Lz4Frame {
            rest: &data[5 + descriptor_len..],
            block_max,
            block_checksum: flg & LZ4_FLG_BLOCK_CHECKSUM != 0,
            content_checksum: (flg & LZ4_FLG_CONTENT_CHECKSUM != 0)
                .then(|| twox_hash::XxHash32::with_seed(0)),
            content_size,
            produced: 0,
            out: Vec::new(),
            stored: &[],
            serving_stored: false,
            out_len: 0,
            pos: 0,
            ended: false,
        })
    }

    fn take(&mut self, n: usize, what: &str) -> io::Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(invalid(format!(
                "{what} cut off: needs {n} bytes, {} remain",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn take_u32(&mut self, what: &str) -> io::Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Decodes blocks until one yields output; false at the end mark.
    fn decode_next(&mut self) -> io::Result<bool> {
        while !self.ended {
            let size = self.take_u32("block size")?;
            let stored = size & LZ4_UNCOMPRESSED_BLOCK != 0;
            let len = (size & !LZ4_UNCOMPRESSED_BLOCK) as usize;
            if len == 0 {
                // The end mark (whatever its high bit, as Kafka and liblz4 read it).
                self.ended = true;
                if let Some(hasher) = self.content_checksum.take() {
                    let expected = self.take_u32("content checksum")?;
                    if hasher.finish_32() != expected {
                        return Err(invalid("content checksum mismatch".to_string()));
                    }
                }
                if let Some(declared) = self.content_size {
                    if declared != self.produced {
                        return Err(invalid(format!(
                            "content size mismatch: the frame declares {declared} bytes, holds {}",
                            self.produced
                        )));
                    }
                }
                if !self.rest.is_empty() {
                    return Err(invalid(format!(
                        "{} bytes follow the end of the LZ4 frame",
                        self.rest.len()
                    )));
                }
                return Ok(false);
            }
            if len > self.block_max {
                return Err(invalid(format!(
                    "block of {len} bytes exceeds the frame's maximum {}",
                    self.block_max
                )));
            }
            let data = self.take(len, "block")?;
            if self.block_checksum {
                let expected = self.take_u32("block checksum")?;
                if xxh32(data) != expected {
                    return Err(invalid("block checksum mismatch".to_string()));
                }
            }
            let output: &[u8] = if stored {
                self.stored = data;
                self.serving_stored = true;
                data
            } else {
                // Never more than the block maximum, nor more than this block can expand to.
                let room = self
                    .block_max
                    .min(len.saturating_mul(LZ4_MAX_EXPANSION).saturating_add(64));
                if self.out.len() < room {
                    self.out.resize(room, 0);
                }
                let n = lz4_flex::block::decompress_into(data, &mut self.out[..room])
                    .map_err(|e| invalid(format!("bad block: {e}")))?;
                self.out_len = n;
                self.serving_stored = false;
                &self.out[..n]
            };
            if let Some(hasher) = self.content_checksum.as_mut() {
                hasher.write(output);
            }
            self.produced += output.len() as u64;
            self.pos = 0;
            if !output.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn current(&self) -> &[u8] {
        if self.serving_stored {
            self.stored
        } else {
            &self.out[..self.out_len]
        }
    }
}

impl Read for Lz4Frame<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_through_buffer(self, buf)
    }
}

impl BufRead for Lz4Frame<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.current().len() && !self.decode_next()? {
            return Ok(&[]);
        }
        let pos = self.pos;
        Ok(&self.current()[pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.current().len());
    }
}
