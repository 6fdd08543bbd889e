//! The request decoder target: a frame as a client would send it (without the size prefix).

use std::sync::OnceLock;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::protocol::VersionRange;
use starling_protocol::{request, versions};

/// What the broker does with a frame before a handler sees it: decode it, and for a Produce
/// validate each partition's record set as the log would on append (see
/// [`crate::record_batch`]). The frame is decoded as
/// given and, when its header names an API or version the broker does not serve, a second time
/// with the header moved onto a served pair (see [`served_variant`]).
pub fn request_decoder(data: &[u8]) {
    decode(data);
    if let Some(frame) = served_variant(data) {
        decode(&frame);
    }
}

fn decode(frame: &[u8]) {
    let Ok(decoded) = request::decode(Bytes::copy_from_slice(frame)) else {
        return;
    };
    if let RequestKind::Produce(produce) = &decoded.body {
        for topic in &produce.topic_data {
            for partition in &topic.partition_data {
                if let Some(records) = &partition.records {
                    crate::record_batch::validate(records);
                }
            }
        }
    }
}

/// Every served (api, versions), in api-key order.
fn served() -> &'static [(ApiKey, VersionRange)] {
    static SERVED: OnceLock<Vec<(ApiKey, VersionRange)>> = OnceLock::new();
    SERVED.get_or_init(|| versions::all().collect())
}

/// `data` with its api key and version replaced by a served, decodable pair when they are not
/// one already (`None` then, and for frames shorter than the fixed header): an unknown key
/// becomes the served API at index `key mod count`, an unserved version the one at
/// `version mod width` in the API's range (past the refused legacy Produce versions). A frame
/// that already names a served pair is left alone, so the seeds (real requests) are decoded
/// once, as they are.
pub fn served_variant(data: &[u8]) -> Option<Vec<u8>> {
    let prefix = request::header_prefix(data)?;
    let served = served();
    let (api, range) = served
        .iter()
        .find(|(key, _)| *key as i16 == prefix.api_key)
        .or_else(|| served.get(usize::from(prefix.api_key as u16) % served.len()))
        .copied()?;
    let mut version = if (range.min..=range.max).contains(&prefix.api_version) {
        prefix.api_version
    } else {
        let width = (range.max - range.min + 1) as u16;
        range.min + (prefix.api_version as u16 % width) as i16
    };
    while versions::is_refused_legacy(api, version) && version < range.max {
        version += 1;
    }
    if (api as i16, version) == (prefix.api_key, prefix.api_version) {
        return None;
    }
    let mut frame = data.to_vec();
    frame[0..2].copy_from_slice(&(api as i16).to_be_bytes());
    frame[2..4].copy_from_slice(&version.to_be_bytes());
    Some(frame)
}
