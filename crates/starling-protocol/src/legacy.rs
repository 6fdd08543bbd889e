//! Answers for request versions that are advertised but refused, encoded by hand because the
//! `kafka-protocol` crate no longer knows their layout.
//!
//! Produce v0–2 (pre-KIP-98 message formats) are listed in ApiVersions, as Apache Kafka 4 lists
//! them, because librdkafka decides whether to compress from the advertised minimum. A client
//! that does send one gets every partition back with UNSUPPORTED_VERSION.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;

/// Why a Produce v0–2 request could not be answered: the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LegacyProduceError {
    #[error("malformed Produce v{0} header")]
    Header(i16),
    #[error("malformed Produce v{0} request")]
    Body(i16),
}

/// Builds the Produce v0–2 response frame refusing every partition of a whole request `frame`
/// (without its size prefix): its v1 header (api key, version, correlation id, client id) is
/// read here, then its body.
pub fn refuse_produce_v0_to_v2(frame: &[u8]) -> Result<Bytes, LegacyProduceError> {
    let mut header = frame;
    if header.remaining() < 10 {
        return Err(LegacyProduceError::Header(0));
    }
    header.advance(2);
    let version = header.get_i16();
    let correlation_id = header.get_i32();
    let client_id_len = usize::try_from(header.get_i16()).unwrap_or(0);
    let body = header
        .get(client_id_len..)
        .ok_or(LegacyProduceError::Header(version))?;
    produce_v0_to_v2_unsupported(version, correlation_id, body)
        .ok_or(LegacyProduceError::Body(version))
}

/// Builds the Produce v0–2 response frame refusing every partition in `body` (the request
/// after its header). Returns `None` if the body does not parse, so the caller closes.
pub fn produce_v0_to_v2_unsupported(
    version: i16,
    correlation_id: i32,
    mut body: &[u8],
) -> Option<Bytes> {
    fn string(b: &mut &[u8]) -> Option<Bytes> {
        if b.remaining() < 2 {
            return None;
        }
        let len = b.get_i16();
        let len = usize::try_from(len).ok()?;
        if b.remaining() < len {
            return None;
        }
        let s = Bytes::copy_from_slice(&b[..len]);
        b.advance(len);
        Some(s)
    }
    fn count(b: &mut &[u8], min_item: usize) -> Option<usize> {
        if b.remaining() < 4 {
            return None;
        }
        let n = usize::try_from(b.get_i32()).ok()?;
        // Every item needs at least `min_item` bytes: refuse counts the frame cannot hold.
        (n.saturating_mul(min_item) <= b.remaining()).then_some(n)
    }

    if body.remaining() < 6 {
        return None;
    }
    body.advance(6); // acks i16, timeout i32
    let mut out = BytesMut::new();
    out.put_i32(0); // size, patched below
    out.put_i32(correlation_id);
    let topics = count(&mut body, 6)?;
    out.put_i32(topics as i32);
    for _ in 0..topics {
        let name = string(&mut body)?;
        out.put_i16(name.len() as i16);
        out.put_slice(&name);
        let partitions = count(&mut body, 8)?;
        out.put_i32(partitions as i32);
        for _ in 0..partitions {
            if body.remaining() < 8 {
                return None;
            }
            let index = body.get_i32();
            let set = usize::try_from(body.get_i32()).unwrap_or(0);
            if body.remaining() < set {
                return None;
            }
            body.advance(set);
            out.put_i32(index);
            out.put_i16(ResponseError::UnsupportedVersion.code());
            out.put_i64(-1); // base offset
            if version >= 2 {
                out.put_i64(-1); // log append time
            }
        }
    }
    if version >= 1 {
        out.put_i32(0); // throttle time
    }
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_each_partition_with_unsupported_version() {
        let mut req = BytesMut::new();
        req.put_i16(1);
        req.put_i32(1000);
        req.put_i32(1);
        req.put_i16(1);
        req.put_slice(b"t");
        req.put_i32(1);
        req.put_i32(3);
        req.put_i32(2);
        req.put_slice(&[9, 9]);
        let frame = produce_v0_to_v2_unsupported(2, 5, &req).unwrap();
        let mut f = &frame[..];
        assert_eq!(f.get_i32() as usize, frame.len() - 4);
        assert_eq!(f.get_i32(), 5);
        assert_eq!(f.get_i32(), 1);
        assert_eq!(f.get_i16(), 1);
        f.advance(1);
        assert_eq!(f.get_i32(), 1);
        assert_eq!(f.get_i32(), 3);
        assert_eq!(f.get_i16(), 35);
        assert_eq!(f.get_i64(), -1);
        assert_eq!(f.get_i64(), -1);
        assert_eq!(f.get_i32(), 0);
        assert!(f.is_empty());
    }

    #[test]
    fn a_count_the_body_cannot_hold_is_refused() {
        let mut req = BytesMut::new();
        req.put_i16(1);
        req.put_i32(1000);
        req.put_i32(i32::MAX);
        assert!(produce_v0_to_v2_unsupported(1, 5, &req).is_none());
    }

    #[test]
    fn a_whole_frame_is_read_past_its_header_and_client_id() {
        let mut frame = BytesMut::new();
        frame.put_i16(0);
        frame.put_i16(1);
        frame.put_i32(77);
        frame.put_i16(3);
        frame.put_slice(b"cli");
        frame.put_i16(1);
        frame.put_i32(1000);
        frame.put_i32(0);
        let reply = refuse_produce_v0_to_v2(&frame).unwrap();
        assert_eq!(&reply[4..8], &77i32.to_be_bytes());
        // A client id longer than the frame, and a body cut short, close the connection.
        let mut bad = frame.clone();
        bad[8..10].copy_from_slice(&500i16.to_be_bytes());
        assert_eq!(
            refuse_produce_v0_to_v2(&bad),
            Err(LegacyProduceError::Header(1))
        );
        let cut = &frame[..frame.len() - 2];
        assert_eq!(
            refuse_produce_v0_to_v2(cut),
            Err(LegacyProduceError::Body(1))
        );
    }
}
