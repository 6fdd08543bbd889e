//! The length check itself: one pass over a request's bytes, driven by its schema, that
//! allocates nothing and refuses any length or count the remaining bytes cannot hold.
//!
//! Every string and bytes length must fit in the bytes left; every array count times the
//! smallest possible size of one element must fit too, before a single element is looked at.
//! Known tagged fields are walked inside the size their tag declares; unknown ones are skipped.

use super::spec::{Field, Kind, Message};

/// Why a request's bytes do not fit its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason} (at byte {at})")]
pub struct LengthError {
    /// The field, as `Outer.Inner` names from the schema.
    pub path: String,
    pub reason: String,
    /// Offset in the walked bytes where the bad length was read.
    pub at: usize,
}

impl LengthError {
    fn within(mut self, name: &str) -> LengthError {
        self.path = if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{name}.{}", self.path)
        };
        self
    }
}

/// A cursor over the request bytes.
pub(crate) struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
}

type Walked = Result<(), LengthError>;

impl<'a> Walker<'a> {
    pub fn new(buf: &'a [u8]) -> Walker<'a> {
        Walker { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn fail(&self, at: usize, reason: String) -> LengthError {
        LengthError {
            path: String::new(),
            reason,
            at,
        }
    }

    /// Walks one whole message at `version`.
    pub fn message(&mut self, message: &Message, version: i16) -> Walked {
        self.fields(&message.fields, version, message.flexible.contains(version))
    }

    fn fields(&mut self, fields: &[Field], version: i16, flexible: bool) -> Walked {
        for field in fields {
            if field.versions.contains(version) && !field.is_tagged_at(version) {
                self.field(field, version, flexible)
                    .map_err(|e| e.within(&field.name))?;
            }
        }
        if flexible {
            self.tagged_fields(fields, version)?;
        }
        Ok(())
    }

    fn field(&mut self, field: &Field, version: i16, flexible: bool) -> Walked {
        let compact = field.is_compact(version, flexible);
        if is_nullable_struct(field, version) {
            // A nullable struct starts with an int8: -1 for null, 1 when the struct follows.
            let at = self.pos;
            let Some(&marker) = self.buf.get(self.pos) else {
                return Err(self.fail(at, "no presence byte for a nullable struct".to_string()));
            };
            self.pos += 1;
            if marker as i8 == -1 {
                return Ok(());
            }
        }
        self.value(&field.kind, version, flexible, compact)
    }

    fn value(&mut self, kind: &Kind, version: i16, flexible: bool, compact: bool) -> Walked {
        match kind {
            Kind::Fixed(n) => self.skip(*n, "value"),
            Kind::String => {
                let at = self.pos;
                let len = if compact {
                    self.compact_length()?
                } else {
                    i64::from(self.i16()?)
                };
                self.length_prefixed(at, len, "string")
            }
            Kind::Bytes => {
                let at = self.pos;
                let len = if compact {
                    self.compact_length()?
                } else {
                    i64::from(self.i32()?)
                };
                self.length_prefixed(at, len, "bytes")
            }
            Kind::Array(element) => {
                let at = self.pos;
                let count = if compact {
                    self.compact_length()?
                } else {
                    i64::from(self.i32()?)
                };
                if count < -1 {
                    return Err(self.fail(at, format!("negative array count {count}")));
                }
                if count <= 0 {
                    return Ok(());
                }
                let least = min_size(element, version, flexible, compact).max(1) as u128;
                let needed = count as u128 * least;
                if needed > self.remaining() as u128 {
                    return Err(self.fail(
                        at,
                        format!(
                            "array of {count} elements needs at least {needed} bytes, {} remain",
                            self.remaining()
                        ),
                    ));
                }
                for index in 0..count {
                    self.value(element, version, flexible, compact)
                        .map_err(|e| e.within(&format!("[{index}]")))?;
                }
                Ok(())
            }
            Kind::Struct(fields) => self.fields(fields, version, flexible),
        }
    }

    /// The tagged-field section of a flexible struct: a count, then `(tag, size, bytes)` each.
    fn tagged_fields(&mut self, fields: &[Field], version: i16) -> Walked {
        let at = self.pos;
        let count = self.uvarint()?;
        if u64::from(count) > self.remaining() as u64 {
            return Err(self.fail(
                at,
                format!(
                    "{count} tagged fields cannot fit in {} bytes",
                    self.remaining()
                ),
            ));
        }
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size_at = self.pos;
            let size = self.uvarint()? as usize;
            if size > self.remaining() {
                return Err(self.fail(
                    size_at,
                    format!(
                        "tagged field {tag} of {size} bytes, {} remain",
                        self.remaining()
                    ),
                ));
            }
            let end = self.pos + size;
            let known = fields.iter().find(|f| {
                f.versions.contains(version)
                    && f.tagged
                        .is_some_and(|(v, t)| t == tag && v.contains(version))
            });
            if let Some(field) = known {
                let mut inner = Walker {
                    buf: &self.buf[..end],
                    pos: self.pos,
                };
                inner
                    .field(field, version, true)
                    .map_err(|e| e.within(&field.name))?;
            }
            self.pos = end;
        }
        Ok(())
    }

    fn length_prefixed(&mut self, at: usize, len: i64, what: &str) -> Walked {
        if len < -1 {
            return Err(self.fail(at, format!("negative {what} length {len}")));
        }
        if len > self.remaining() as i64 {
            return Err(self.fail(
                at,
                format!("{what} of {len} bytes, {} remain", self.remaining()),
            ));
        }
        if len > 0 {
            self.pos += len as usize;
        }
        Ok(())
    }

    fn skip(&mut self, n: usize, what: &str) -> Walked {
        if n > self.remaining() {
            return Err(self.fail(
                self.pos,
                format!("{what} of {n} bytes, {} remain", self.remaining()),
            ));
        }
        self.pos += n;
        Ok(())
    }

    fn i16(&mut self) -> Result<i16, LengthError> {
        let at = self.pos;
        self.skip(2, "length")?;
        Ok(i16::from_be_bytes([self.buf[at], self.buf[at + 1]]))
    }

    fn i32(&mut self) -> Result<i32, LengthError> {
        let at = self.pos;
        self.skip(4, "length")?;
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.buf[at..at + 4]);
        Ok(i32::from_be_bytes(b))
    }

    /// An unsigned varint of at most 5 bytes (a `u32`), as Kafka writes compact lengths.
    fn uvarint(&mut self) -> Result<u32, LengthError> {
        let at = self.pos;
        let mut value = 0u64;
        for i in 0..5 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.fail(at, "varint runs past the end".to_string()));
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return u32::try_from(value)
                    .map_err(|_| self.fail(at, format!("varint {value} overflows 32 bits")));
            }
        }
        Err(self.fail(at, "varint longer than 5 bytes".to_string()))
    }

    /// A compact length or count: the varint holds `n + 1`, and 0 means null (`-1`).
    fn compact_length(&mut self) -> Result<i64, LengthError> {
        Ok(i64::from(self.uvarint()?) - 1)
    }
}

/// Whether `field` is a struct that may be null at `version` (then written after a presence byte).
fn is_nullable_struct(field: &Field, version: i16) -> bool {
    matches!(field.kind, Kind::Struct(_)) && field.nullable.contains(version)
}

/// The fewest bytes one value of `kind` can take at `version`.
pub(crate) fn min_size(kind: &Kind, version: i16, flexible: bool, compact: bool) -> usize {
    match kind {
        Kind::Fixed(n) => *n,
        Kind::String if compact => 1,
        Kind::String => 2,
        Kind::Bytes | Kind::Array(_) if compact => 1,
        Kind::Bytes | Kind::Array(_) => 4,
        Kind::Struct(fields) => {
            let own: usize = fields
                .iter()
                .filter(|f| f.versions.contains(version) && !f.is_tagged_at(version))
                .map(|f| {
                    if is_nullable_struct(f, version) {
                        1
                    } else {
                        min_size(&f.kind, version, flexible, f.is_compact(version, flexible))
                    }
                })
                .sum();
            own + usize::from(flexible)
        }
    }
}
