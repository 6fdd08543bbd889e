//! A bounds-checked reader over client-supplied bytes (consumer subscriptions and
//! assignments): every read checks the length against the bytes left and fails with `None`
//! instead of panicking or allocating what the input merely claims.

pub(crate) struct ByteReader<'a> {
    /// The bytes not read yet.
    pub rest: &'a [u8],
}

impl<'a> ByteReader<'a> {
    pub fn new(bytes: &'a [u8]) -> ByteReader<'a> {
        ByteReader { rest: bytes }
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    pub fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A Kafka `string`: i16 length, then UTF-8 bytes.
    pub fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).ok()
    }
}
