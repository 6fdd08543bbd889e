//! Hostile and broken input over raw sockets. Every bad case affects only the connection it
//! arrived on: after each one, a well-behaved librdkafka producer and consumer and a long-lived
//! raw connection are still served, and the broker process is alive at the end.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, MetadataRequest, ProduceRequest,
    ProduceResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Offset;

const CLOSE_WITHIN: Duration = Duration::from_secs(5);
const UNSUPPORTED_VERSION: i16 = 35;
const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const REQUEST_MAX: usize = 1024 * 1024;
const MESSAGE_MAX: usize = 10_000;

fn start_broker() -> Broker {
    Broker::with_overrides(&[
        ("socket.request.max.bytes", &REQUEST_MAX.to_string()),
        ("message.max.bytes", &MESSAGE_MAX.to_string()),
        ("auto.create.topics.enable", "false"),
    ])
}

/// The well-behaved side: a librdkafka producer and consumer on topic `healthy`, and a raw
/// connection opened before any bad input that must keep working.
struct Healthy {
    producer: FutureProducer,
    consumer: BaseConsumer,
    raw: RawClient,
    addr: std::net::SocketAddr,
    next_offset: i64,
}

impl Healthy {
    async fn new(broker: &Broker) -> Healthy {
        let bootstrap = broker.bootstrap();
        create_topic(&bootstrap, "healthy", 1).await;
        let consumer = consumer(&bootstrap, &[]);
        assign(&consumer, "healthy", &[(0, Offset::Offset(0))]);
        let mut h = Healthy {
            producer: producer(&bootstrap, &[("linger.ms", "0")]),
            consumer,
            raw: RawClient::connect(broker.addr()),
            addr: broker.addr(),
            next_offset: 0,
        };
        h.check("setup").await;
        h
    }

    /// Asserts the broker still serves well-behaved clients after `case`.
    async fn check(&mut self, case: &str) {
        // The long-lived raw connection.
        let av = self.raw.call(3, &api_versions_request());
        assert_eq!(
            av.error_code, 0,
            "after {case}: ApiVersions on the long-lived connection"
        );
        // A new connection.
        let md = raw_metadata(self.addr, None, false);
        assert!(
            md.topics
                .iter()
                .any(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("healthy")),
            "after {case}: metadata lists the healthy topic"
        );
        // librdkafka produce and consume.
        let value = format!("still served after {case}");
        let delivery = within(
            Duration::from_secs(20),
            "healthy produce",
            self.producer.send(
                FutureRecord::to("healthy")
                    .partition(0)
                    .key(case)
                    .payload(&value),
                Duration::from_secs(5),
            ),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("after {case}: healthy produce failed: {e}"));
        assert_eq!(
            delivery.offset, self.next_offset,
            "after {case}: healthy offset"
        );
        let msgs = consume_until(&self.consumer, Duration::from_secs(20), |got| {
            !got.is_empty()
        });
        assert_eq!(msgs.len(), 1, "after {case}: one healthy message");
        assert_eq!(
            msgs[0].offset, self.next_offset,
            "after {case}: consumed offset"
        );
        assert_eq!(msgs[0].value_str(), value, "after {case}: consumed value");
        self.next_offset += 1;
    }
}

fn api_versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("starling-e2e"))
        .with_client_software_version(StrBytes::from_static_str("1.0"))
}

fn assert_closed(raw: &mut RawClient, case: &str) {
    let outcome = raw.wait_closed(CLOSE_WITHIN);
    assert_eq!(
        outcome,
        CloseOutcome::Closed,
        "{case}: the broker should close the connection within {CLOSE_WITHIN:?}"
    );
}

fn pseudo_random(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_violations_close_only_the_offending_connection() {
    let _dog = watchdog(Duration::from_secs(180));
    let mut broker = start_broker();
    let mut healthy = Healthy::new(&broker).await;
    let addr = broker.addr();

    // Text that is not Kafka at all: "GET " read as a size is ~1.2 GB, over the limit.
    let mut raw = RawClient::connect(addr);
    raw.send_bytes(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_closed(&mut raw, "HTTP request");
    healthy.check("HTTP request").await;

    // A plausible size followed by random bytes (api key 0x7f7f is not a Kafka API).
    let mut raw = RawClient::connect(addr);
    let mut frame = 64i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0x7f, 0x7f]);
    frame.extend(pseudo_random(62, 7));
    raw.send_bytes(&frame).unwrap();
    assert_closed(&mut raw, "random frame body");
    healthy.check("random frame body").await;

    // A frame cut short, then the client goes away.
    let mut raw = RawClient::connect(addr);
    let mut frame = 100i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0, 18, 0, 3, 0, 0, 0, 1]); // ApiVersions v3, correlation 1 ...
    frame.extend(pseudo_random(22, 11));
    raw.send_bytes(&frame).unwrap();
    raw.shutdown_write();
    assert_closed(&mut raw, "truncated frame");
    drop(raw);
    healthy.check("truncated frame").await;

    // A 2 GiB size prefix and no body: closed without waiting for the body.
    let mut raw = RawClient::connect(addr);
    raw.send_bytes(&i32::MAX.to_be_bytes()).unwrap();
    assert_closed(&mut raw, "2 GiB size prefix");
    healthy.check("2 GiB size prefix").await;

    // One byte over socket.request.max.bytes, with only a little of the body sent.
    let mut raw = RawClient::connect(addr);
    let mut frame = ((REQUEST_MAX + 1) as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&[0, 18, 0, 3, 0, 0, 0, 2, 0, 0]);
    raw.send_bytes(&frame).unwrap();
    assert_closed(&mut raw, "size one over socket.request.max.bytes");
    healthy
        .check("size one over socket.request.max.bytes")
        .await;

    // Negative size.
    let mut raw = RawClient::connect(addr);
    raw.send_bytes(&(-1i32).to_be_bytes()).unwrap();
    assert_closed(&mut raw, "negative size prefix");
    healthy.check("negative size prefix").await;

    // Empty frame.
    let mut raw = RawClient::connect(addr);
    raw.send_bytes(&0i32.to_be_bytes()).unwrap();
    assert_closed(&mut raw, "zero size prefix");
    healthy.check("zero size prefix").await;

    // A valid request, then garbage on the same connection: the valid one is answered first.
    let mut raw = RawClient::connect(addr);
    let resp = raw.call(3, &api_versions_request());
    assert_eq!(resp.error_code, 0);
    raw.send_bytes(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3]).unwrap();
    assert_closed(&mut raw, "garbage after a valid request");
    healthy.check("garbage after a valid request").await;

    assert!(broker.is_alive(), "broker process must still be running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_is_not_read_when_size_exceeds_the_limit() {
    let _dog = watchdog(Duration::from_secs(120));
    let mut broker = start_broker();
    let mut healthy = Healthy::new(&broker).await;
    // Announce 64 MiB (under any sane default but over our 1 MiB limit) and keep the connection
    // open without sending any body: the broker must close it by itself, promptly.
    let mut raw = RawClient::connect(broker.addr());
    raw.send_bytes(&(64i32 << 20).to_be_bytes()).unwrap();
    assert_closed(&mut raw, "64 MiB announced, no body");
    healthy.check("64 MiB announced").await;

    // A frame exactly at the limit is read in full (it is then refused: api key 0xffff is
    // unknown), so the connection must still be open until its last byte has arrived.
    let mut raw = RawClient::connect(broker.addr());
    let mut frame = (REQUEST_MAX as i32).to_be_bytes().to_vec();
    frame.extend(std::iter::repeat_n(0xffu8, REQUEST_MAX - 1));
    raw.send_bytes(&frame).unwrap();
    assert_eq!(
        raw.wait_closed(Duration::from_millis(500)),
        CloseOutcome::StillOpen,
        "a frame at the limit is waited for until complete"
    );
    raw.send_bytes(&[0xff]).unwrap();
    assert_closed(&mut raw, "malformed frame at the size limit");
    healthy.check("frame at the limit").await;
    assert!(broker.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_newer_than_known_gets_v0_response_with_unsupported_version() {
    let _dog = watchdog(Duration::from_secs(120));
    let mut broker = start_broker();
    let mut healthy = Healthy::new(&broker).await;
    let mut raw = RawClient::connect(broker.addr());

    // v99 with a flexible (v2) request header as a newer client would send.
    let mut body = BytesMut::new();
    api_versions_request().encode(&mut body, 3).unwrap();
    let corr = raw.send_parts(ApiKey::ApiVersions as i16, 99, 2, &body);
    let mut resp = raw.read_response(corr, 0); // ApiVersions responses use header v0
    let av = ApiVersionsResponse::decode(&mut resp, 0).expect("v0 ApiVersions response");
    assert_eq!(av.error_code, UNSUPPORTED_VERSION, "error code");
    assert!(
        resp.is_empty(),
        "a v0 response has nothing after api_keys ({} bytes left)",
        resp.len()
    );
    assert!(!av.api_keys.is_empty(), "api_keys must be listed");
    let range = |key: ApiKey| {
        av.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
            .unwrap_or_else(|| panic!("{key:?} missing from {:?}", av.api_keys))
    };
    assert_eq!(range(ApiKey::ApiVersions), (0, 4));
    for key in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::CreatePartitions,
    ] {
        let (min, max) = range(key);
        assert!(min <= max, "{key:?} range {min}..{max}");
    }
    assert!(range(ApiKey::Produce).1 >= 3, "Produce v3+ served");
    assert!(
        range(ApiKey::Fetch).0 <= 4 && range(ApiKey::Fetch).1 >= 4,
        "Fetch v4 served"
    );

    // The same connection then negotiates down and is served normally.
    for v in [0i16, 1, 2, 3, 4] {
        let resp = raw.call(v, &api_versions_request());
        assert_eq!(resp.error_code, 0, "ApiVersions v{v}");
        assert_eq!(
            resp.api_keys, av.api_keys,
            "ApiVersions v{v} lists the same ranges"
        );
    }
    healthy.check("ApiVersions v99").await;
    assert!(broker.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_keys_and_unsupported_versions_are_refused() {
    let _dog = watchdog(Duration::from_secs(120));
    let mut broker = start_broker();
    let mut healthy = Healthy::new(&broker).await;
    let addr = broker.addr();

    // Unknown API key 9999 (v1 header): closed.
    let mut raw = RawClient::connect(addr);
    raw.send_parts(9999, 0, 1, &[]);
    assert_closed(&mut raw, "api key 9999");
    healthy.check("api key 9999").await;

    // Metadata v99: either closed or answered with UNSUPPORTED_VERSION.
    let mut raw = RawClient::connect(addr);
    let mut body = BytesMut::new();
    MetadataRequest::default().encode(&mut body, 12).unwrap();
    let corr = raw.send_parts(ApiKey::Metadata as i16, 99, 2, &body);
    match raw.read_frame() {
        Err(_) => {} // closed
        Ok(frame) => {
            assert_eq!(
                &frame[..4],
                &corr.to_be_bytes(),
                "Metadata v99 response correlation id"
            );
            assert!(
                frame
                    .windows(2)
                    .any(|w| w == UNSUPPORTED_VERSION.to_be_bytes()),
                "a Metadata v99 answer must carry UNSUPPORTED_VERSION: {frame:?}"
            );
        }
    }
    healthy.check("Metadata v99").await;

    // Fetch v3 is below what the broker serves (v4+): refused the same way.
    let mut raw = RawClient::connect(addr);
    let mut body = BytesMut::new();
    FetchRequest::default().encode(&mut body, 4).unwrap();
    let corr = raw.send_parts(ApiKey::Fetch as i16, 3, 1, &body);
    match raw.read_frame() {
        Err(_) => {}
        Ok(frame) => {
            assert_eq!(&frame[..4], &corr.to_be_bytes());
            assert!(frame
                .windows(2)
                .any(|w| w == UNSUPPORTED_VERSION.to_be_bytes()));
        }
    }
    healthy.check("Fetch v3").await;

    // A known API whose body is cut short: closed.
    let mut raw = RawClient::connect(addr);
    let mut body = BytesMut::new();
    MetadataRequest::default()
        .with_topics(Some(vec![Default::default()]))
        .encode(&mut body, 1)
        .unwrap();
    let cut = &body[..body.len() - 3];
    raw.send_parts(ApiKey::Metadata as i16, 1, 1, cut);
    assert_closed(&mut raw, "malformed Metadata body");
    healthy.check("malformed Metadata body").await;

    assert!(broker.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_v2_is_answered_with_unsupported_version_and_appends_nothing() {
    let _dog = watchdog(Duration::from_secs(120));
    let mut broker = start_broker();
    let mut healthy = Healthy::new(&broker).await;
    create_topic(&broker.bootstrap(), "victim", 1).await;
    let mut raw = RawClient::connect(broker.addr());

    let batch = record_batch(&[(Some(b"k"), Some(b"v2 must not land"))], now_ms());
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            kafka_protocol::messages::produce_request::TopicProduceData::default()
                .with_name(topic_name("victim"))
                .with_partition_data(vec![
                    kafka_protocol::messages::produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch)),
                ]),
        ]);
    // v2's body is v3's without the leading transactional_id (a null string: 0xffff).
    let mut body = BytesMut::new();
    req.encode(&mut body, 3).unwrap();
    assert_eq!(&body[..2], &[0xff, 0xff]);
    let corr = raw.send_parts(ApiKey::Produce as i16, 2, 1, &body[2..]);
    let mut resp = raw.read_response(corr, 0);
    // The v2 and v3 response layouts are identical.
    let pr = ProduceResponse::decode(&mut resp, 3).expect("Produce v2 response");
    assert!(resp.is_empty());
    let parts: Vec<_> = pr
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter())
        .collect();
    assert_eq!(parts.len(), 1, "one partition answered: {pr:?}");
    assert_eq!(parts[0].index, 0);
    assert_eq!(
        parts[0].error_code, UNSUPPORTED_VERSION,
        "Produce v2 error code"
    );
    assert_eq!(
        watermarks(&broker.bootstrap(), "victim", 0),
        (0, 0),
        "nothing appended"
    );

    // The connection stays usable.
    assert_eq!(raw.call(3, &api_versions_request()).error_code, 0);
    healthy.check("Produce v2").await;
    assert!(broker.is_alive());
}

fn corrupt_records(batch: &Bytes) -> Bytes {
    let mut b = batch.to_vec();
    let at = 61 + (b.len() - 61) / 2;
    b[at] ^= 0x20;
    assert!(!batch_crc_ok(&b));
    Bytes::from(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_produce_batches_are_rejected_per_partition_and_append_nothing() {
    let _dog = watchdog(Duration::from_secs(180));
    let mut broker = start_broker();
    let bootstrap = broker.bootstrap();
    let mut healthy = Healthy::new(&broker).await;
    create_topic(&bootstrap, "victim", 2).await;
    let mut raw = RawClient::connect(broker.addr());
    let ts = now_ms();

    // A good batch first, so "nothing appended" below is measured against a non-empty log.
    let good = record_batch(
        &[
            (Some(b"g0"), Some(b"good 0")),
            (Some(b"g1"), Some(b"good 1")),
            (Some(b"g2"), Some(b"good 2")),
        ],
        ts,
    );
    let r = raw_produce(&mut raw, 9, "victim", 0, good.clone());
    assert_eq!((r.error_code, r.base_offset), (0, 0), "good batch");
    assert_eq!(watermarks(&bootstrap, "victim", 0), (0, 3));
    healthy.check("good raw produce").await;

    // Bad CRC.
    let r = raw_produce(&mut raw, 9, "victim", 0, corrupt_records(&good));
    assert_eq!(r.error_code, CORRUPT_MESSAGE, "bad CRC error code");
    assert_eq!(
        watermarks(&bootstrap, "victim", 0),
        (0, 3),
        "bad CRC: nothing appended"
    );
    healthy.check("bad CRC").await;

    // Over message.max.bytes.
    let big = vec![b'x'; MESSAGE_MAX * 2];
    let r = raw_produce(
        &mut raw,
        9,
        "victim",
        0,
        record_batch(&[(Some(b"big"), Some(&big))], ts),
    );
    assert_eq!(
        r.error_code, MESSAGE_TOO_LARGE,
        "oversized batch error code"
    );
    assert_eq!(
        watermarks(&bootstrap, "victim", 0),
        (0, 3),
        "oversized: nothing appended"
    );
    healthy.check("oversized batch").await;

    // Unknown topic (auto-creation is off) and unknown partition of a known topic.
    let r = raw_produce(&mut raw, 9, "no-such-topic", 0, good.clone());
    assert_eq!(
        r.error_code, UNKNOWN_TOPIC_OR_PARTITION,
        "unknown topic error code"
    );
    assert!(
        !topics_in_metadata(&bootstrap).contains_key("no-such-topic"),
        "produce must not create the topic"
    );
    let r = raw_produce(&mut raw, 9, "victim", 7, good.clone());
    assert_eq!(
        r.error_code, UNKNOWN_TOPIC_OR_PARTITION,
        "unknown partition error code"
    );
    healthy.check("unknown topic/partition").await;

    // One request, two partitions: the good one is appended, the corrupt one is not.
    let resp = raw_produce_many(
        &mut raw,
        9,
        &[
            ("victim", 0, good.clone()),
            ("victim", 1, corrupt_records(&good)),
        ],
    );
    let by_part: std::collections::BTreeMap<i32, (i16, i64)> = resp
        .iter()
        .map(|(_, p, r)| (*p, (r.error_code, r.base_offset)))
        .collect();
    assert_eq!(
        by_part.get(&0),
        Some(&(0, 3)),
        "good partition in a mixed request"
    );
    assert_eq!(
        by_part.get(&1).map(|x| x.0),
        Some(CORRUPT_MESSAGE),
        "corrupt partition in a mixed request"
    );
    assert_eq!(watermarks(&bootstrap, "victim", 0), (0, 6));
    assert_eq!(watermarks(&bootstrap, "victim", 1), (0, 0));
    healthy.check("mixed request").await;

    // The log holds exactly the two good batches.
    let by_part = consume_from_start(&bootstrap, "victim", &[(0, 6)], Duration::from_secs(30));
    let got: Vec<(i64, String, String)> = by_part[&0]
        .iter()
        .map(|m| (m.offset, m.key_str(), m.value_str()))
        .collect();
    let want: Vec<(i64, String, String)> = (0..6)
        .map(|i| (i as i64, format!("g{}", i % 3), format!("good {}", i % 3)))
        .collect();
    assert_eq!(got, want);
    assert!(broker.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_bad_connections_at_once_do_not_disturb_good_clients() {
    let _dog = watchdog(Duration::from_secs(120));
    let mut broker = start_broker();
    let mut healthy = Healthy::new(&broker).await;
    let addr = broker.addr();
    // 50 connections that announce large frames and stall, plus 50 that send garbage.
    let mut stalled: Vec<RawClient> = (0..50)
        .map(|_| {
            let mut r = RawClient::connect(addr);
            r.send_bytes(&((REQUEST_MAX - 10) as i32).to_be_bytes())
                .unwrap();
            r.send_bytes(&[0, 3, 0, 9]).unwrap();
            r
        })
        .collect();
    for i in 0..50 {
        let mut r = RawClient::connect(addr);
        let _ = r.send_bytes(&pseudo_random(200, i + 1));
    }
    healthy.check("100 bad connections").await;
    // The stalled ones are not answered (their frames are incomplete) and cost no response.
    for r in stalled.iter_mut().take(3) {
        assert_eq!(
            r.wait_closed(Duration::from_millis(200)),
            CloseOutcome::StillOpen
        );
    }
    drop(stalled);
    healthy.check("stalled connections dropped").await;
    assert!(broker.is_alive());
}

/// The broker's resident memory, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// `body` with its size prefix.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nineteen_byte_metadata_request_closes_only_its_connection() {
    let _dog = watchdog(Duration::from_secs(120));
    let mut broker = start_broker();
    let mut healthy = Healthy::new(&broker).await;
    // Metadata v1: client id null, then a topics array claiming 2^31-1 entries. Decoding it used
    // to reserve ~150 GB and abort the process.
    let mut body = vec![0, 3, 0, 1, 0, 0, 0, 7, 0xff, 0xff];
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    body.extend_from_slice(&[0; 5]);
    assert_eq!(body.len(), 19);
    let mut raw = RawClient::connect(broker.addr());
    raw.send_bytes(&framed(&body)).unwrap();
    assert_closed(&mut raw, "19-byte metadata");
    assert!(broker.is_alive(), "the broker died on a 19-byte request");
    healthy.check("19-byte metadata").await;
}

/// Every served API at every served version, with its array counts and lengths set far past
/// the bytes sent: each closes its own connection, the broker stays up and its memory flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_lengths_in_every_served_request_close_only_their_connection() {
    use starling_protocol::schema::{sample, sample_request, LengthForm};
    let _dog = watchdog(Duration::from_secs(300));
    let mut broker = start_broker();
    let mut healthy = Healthy::new(&broker).await;
    let rss_before = rss_bytes(broker.pid());
    let mut cases = 0;
    for (api, range) in starling_protocol::versions::all() {
        for version in range.min..=range.max {
            if starling_protocol::versions::is_refused_legacy(api, version) {
                continue;
            }
            let good = sample_request(api, version, 5).expect("a schema for every served version");
            // The first few lengths of each request, each set to its form's maximum in turn.
            for site in good.lengths.iter().take(4) {
                let huge = match site.form {
                    LengthForm::I16 => i16::MAX as i64,
                    LengthForm::I32 | LengthForm::Compact => i32::MAX as i64,
                };
                let bad = sample::with_length(&good.bytes, *site, huge);
                let mut raw = RawClient::connect(broker.addr());
                raw.send_bytes(&framed(&bad)).unwrap();
                assert_closed(
                    &mut raw,
                    &format!("{api:?} v{version} length at {}", site.at),
                );
                cases += 1;
            }
        }
        assert!(broker.is_alive(), "the broker died on {api:?}");
    }
    assert!(cases > 300, "only {cases} cases");
    healthy.check("oversized lengths in every request").await;
    let grown = rss_bytes(broker.pid()).saturating_sub(rss_before);
    println!("{cases} hostile requests; RSS grew by {} KiB", grown / 1024);
    assert!(grown < 64 << 20, "RSS grew by {grown} bytes");
}

/// Ten connections each announce a 60 MB frame and send half of it. Only the frames that fit in
/// `queued.max.request.bytes` (two and a half frames here) are read — the rest wait, unread:
/// back-pressure — so the broker's memory tracks what it admitted, small requests are still
/// served from what is left, and the stalled frames are dropped after
/// `socket.request.read.timeout.ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_large_frames_are_bounded_by_the_request_memory_budget_and_time_out() {
    let _dog = watchdog(Duration::from_secs(240));
    const FRAME: usize = 60 << 20;
    const SENT: usize = 30 << 20;
    let mut broker = Broker::with_overrides(&[
        ("socket.request.max.bytes", &(FRAME + 100).to_string()),
        ("queued.max.request.bytes", &(5 * FRAME / 2).to_string()),
        ("socket.request.read.timeout.ms", "8000"),
    ]);
    let mut healthy = Healthy::new(&broker).await;
    let rss_before = rss_bytes(broker.pid());
    let addr = broker.addr();
    let senders: Vec<_> = (0..10)
        .map(|_| {
            std::thread::spawn(move || {
                let mut raw = RawClient::connect(addr);
                raw.stream
                    .set_write_timeout(Some(Duration::from_secs(4)))
                    .unwrap();
                // A Metadata v1 header, then bytes that never complete the frame.
                let _ = raw.send_bytes(&(FRAME as i32).to_be_bytes());
                let _ = raw.send_bytes(&[0, 3, 0, 1, 0, 0, 0, 9, 0xff, 0xff]);
                let chunk = vec![0u8; 1 << 20];
                let mut sent = 0;
                while sent < SENT {
                    if raw.send_bytes(&chunk).is_err() {
                        break; // the broker stopped reading: back-pressure
                    }
                    sent += chunk.len();
                }
                (raw, sent)
            })
        })
        .collect();
    let mut connections = Vec::new();
    for s in senders {
        connections.push(s.join().unwrap());
    }
    let fully_sent = connections.iter().filter(|(_, sent)| *sent >= SENT).count();
    let rss_during = rss_bytes(broker.pid());
    let grown = rss_during.saturating_sub(rss_before);
    println!(
        "{fully_sent} of 10 connections sent {} MiB each; RSS grew by {} MiB",
        SENT >> 20,
        grown >> 20
    );
    // Two frames fit the budget; the others' bytes wait in kernel buffers, not in the broker.
    assert!(
        grown < (2 * SENT + (40 << 20)) as u64,
        "RSS grew by {} MiB for 10 partial frames",
        grown >> 20
    );
    healthy.check("10 stalled large frames").await;
    // The stalled frames are closed once their read deadline passes.
    for (raw, _) in connections.iter_mut() {
        assert_eq!(
            raw.wait_closed(Duration::from_secs(30)),
            CloseOutcome::Closed,
            "a stalled frame's connection was not closed"
        );
    }
    healthy.check("stalled frames timed out").await;
    assert!(broker.is_alive());
}

/// Thousands of connections that each ask one question and go: what they cost is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_short_lived_connections_leave_memory_where_it_was() {
    let _dog = watchdog(Duration::from_secs(240));
    let broker = start_broker();
    let mut healthy = Healthy::new(&broker).await;
    let rss_before = rss_bytes(broker.pid());
    let open_at_once = 1000;
    let mut per_connection = Vec::new();
    for round in 0..3 {
        let before_round = rss_bytes(broker.pid());
        let mut open: Vec<RawClient> = (0..open_at_once)
            .map(|_| RawClient::connect(broker.addr()))
            .collect();
        for raw in open.iter_mut() {
            let av = raw.call(3, &api_versions_request());
            assert_eq!(av.error_code, 0, "round {round}");
        }
        per_connection.push(rss_bytes(broker.pid()).saturating_sub(before_round) / open_at_once);
        drop(open);
    }
    println!("RSS per open idle connection: {per_connection:?} bytes");
    // An idle connection keeps a small read buffer and its task, not 128 KiB of buffers.
    assert!(
        per_connection.iter().all(|&b| b < 32 * 1024),
        "idle connections cost {per_connection:?} bytes each"
    );
    healthy.check("3,000 short-lived connections").await;
    // Let the broker notice the closes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let grown = rss_bytes(broker.pid()).saturating_sub(rss_before);
    println!(
        "3,000 short-lived connections; RSS grew by {} MiB",
        grown >> 20
    );
    assert!(grown < 64 << 20, "RSS grew by {} MiB", grown >> 20);
}
