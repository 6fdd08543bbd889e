//! Valid requests made from the schemas, for tests and fuzzing seeds: every field of the
//! version present, arrays of a few elements, strings of printable ASCII, nullable fields now
//! and then null. Each sample also lists where its lengths and counts are, so a test can smash
//! every one of them in turn.
//!
//! Tagged fields are left out (they are optional by definition, and the `kafka-protocol` crate
//! drops default-valued ones when it re-encodes, which would spoil byte-for-byte comparisons).

use super::spec::{Field, Kind, Message};

/// How a length or count is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthForm {
    /// `int16` (a non-compact string).
    I16,
    /// `int32` (non-compact bytes and arrays).
    I32,
    /// Unsigned varint of `n + 1` (compact strings, bytes and arrays).
    Compact,
}

/// Where a length or count sits in a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthSite {
    /// Offset of the length's first byte.
    pub at: usize,
    /// Its encoded size in bytes.
    pub size: usize,
    pub form: LengthForm,
}

/// A generated request body (or header) and the places of its lengths.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub bytes: Vec<u8>,
    pub lengths: Vec<LengthSite>,
}

/// A small deterministic generator (xorshift), so samples are reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A valid encoding of `message` at `version`, varied by `seed`.
pub fn sample(message: &Message, version: i16, seed: u64) -> Sample {
    let mut gen = Generator {
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        out: Sample::default(),
    };
    gen.fields(
        &message.fields,
        version,
        message.flexible.contains(version),
        0,
    );
    gen.out
}

struct Generator {
    rng: Rng,
    out: Sample,
}

impl Generator {
    fn fields(&mut self, fields: &[Field], version: i16, flexible: bool, depth: usize) {
        for field in fields {
            if field.versions.contains(version) && !field.is_tagged_at(version) {
                let compact = field.is_compact(version, flexible);
                let nullable = field.nullable.contains(version);
                self.value(&field.kind, version, flexible, compact, nullable, depth);
            }
        }
        if flexible {
            self.out.bytes.push(0); // no tagged fields
        }
    }

    fn value(
        &mut self,
        kind: &Kind,
        version: i16,
        flexible: bool,
        compact: bool,
        nullable: bool,
        depth: usize,
    ) {
        let null = nullable && self.rng.below(4) == 0;
        match kind {
            Kind::Fixed(1) => {
                // bools must stay 0 or 1 to re-encode identically
                let b = self.rng.below(2) as u8;
                self.out.bytes.push(b);
            }
            Kind::Fixed(n) => {
                for _ in 0..*n {
                    let b = self.rng.next() as u8;
                    self.out.bytes.push(b);
                }
            }
            Kind::String | Kind::Bytes => {
                let form = match (kind, compact) {
                    (_, true) => LengthForm::Compact,
                    (Kind::String, false) => LengthForm::I16,
                    _ => LengthForm::I32,
                };
                if null {
                    self.length(form, -1);
                } else {
                    let len = self.rng.below(12) as i64;
                    self.length(form, len);
                    for _ in 0..len {
                        let c = b'a' + self.rng.below(26) as u8;
                        self.out.bytes.push(c);
                    }
                }
            }
            Kind::Array(element) => {
                let form = if compact {
                    LengthForm::Compact
                } else {
                    LengthForm::I32
                };
                if null {
                    self.length(form, -1);
                    return;
                }
                let count = if depth > 3 {
                    0
                } else {
                    self.rng.below(3) as i64 + 1
                };
                self.length(form, count);
                for _ in 0..count {
                    self.value(element, version, flexible, compact, false, depth + 1);
                }
            }
            Kind::Struct(fields) => {
                // A nullable struct: an int8 presence byte, -1 for null, 1 before the struct.
                if nullable {
                    self.out.bytes.push(if null { 0xff } else { 1 });
                    if null {
                        return;
                    }
                }
                self.fields(fields, version, flexible, depth + 1)
            }
        }
    }

    fn length(&mut self, form: LengthForm, n: i64) {
        let at = self.out.bytes.len();
        match form {
            LengthForm::I16 => self.out.bytes.extend_from_slice(&(n as i16).to_be_bytes()),
            LengthForm::I32 => self.out.bytes.extend_from_slice(&(n as i32).to_be_bytes()),
            LengthForm::Compact => put_uvarint(&mut self.out.bytes, (n + 1) as u32),
        }
        let size = self.out.bytes.len() - at;
        self.out.lengths.push(LengthSite { at, size, form });
    }
}

/// Appends an unsigned varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `bytes` with the length at `site` replaced by `value` (in the same form; a compact length
/// may change size).
pub fn with_length(bytes: &[u8], site: LengthSite, value: i64) -> Vec<u8> {
    let mut out = bytes[..site.at].to_vec();
    match site.form {
        LengthForm::I16 => out.extend_from_slice(&(value as i16).to_be_bytes()),
        LengthForm::I32 => out.extend_from_slice(&(value as i32).to_be_bytes()),
        LengthForm::Compact => put_uvarint(&mut out, (value + 1) as u32),
    }
    out.extend_from_slice(&bytes[site.at + site.size..]);
    out
}
