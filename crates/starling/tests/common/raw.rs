//! [`RawClient`]: a plain TCP connection speaking the Kafka framing by hand, for requests no
//! well-behaved client would send, and typed requests over it ([`raw_metadata`],
//! [`raw_produce`], [`raw_produce_many`], [`raw_fetch`]). [`tcp_connect`] opens the
//! connection (and the admin endpoint's, for [`http_get`](super::http_get)).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData as FetchPartitionData;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, MetadataRequest, MetadataResponse, ProduceRequest,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

/// A TCP connection to `addr` (`what` names it in the panic if there is none within 5
/// seconds), with 10-second read and write timeouts.
pub fn tcp_connect(addr: SocketAddr, what: &str) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connecting to {what} {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// A plain TCP connection that frames Kafka requests by hand.
pub struct RawClient {
    pub stream: TcpStream,
    next_correlation: i32,
}

/// Outcome of waiting for the broker to close a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    Closed,
    /// The broker sent bytes instead (how many).
    Answered(usize),
    StillOpen,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = tcp_connect(addr, "the broker");
        stream.set_nodelay(true).unwrap();
        RawClient {
            stream,
            next_correlation: 1,
        }
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Frames `header ++ body` with its size prefix and sends it. Returns the correlation id.
    pub fn send_parts(
        &mut self,
        api_key: i16,
        api_version: i16,
        header_version: i16,
        body: &[u8],
    ) -> i32 {
        let correlation_id = self.next_correlation;
        self.next_correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(api_version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("starling-e2e-raw")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, header_version)
            .expect("encode header");
        buf.extend_from_slice(body);
        let mut frame = Vec::with_capacity(buf.len() + 4);
        frame.extend_from_slice(&(buf.len() as i32).to_be_bytes());
        frame.extend_from_slice(&buf);
        self.send_bytes(&frame).expect("send request");
        correlation_id
    }

    /// Sends a typed request at `version`. Returns the correlation id.
    pub fn send<R: Request>(&mut self, version: i16, req: &R) -> i32 {
        let key = ApiKey::try_from(R::KEY).expect("known api key");
        let mut body = BytesMut::new();
        req.encode(&mut body, version).expect("encode body");
        self.send_parts(R::KEY, version, key.request_header_version(version), &body)
    }

    /// Reads one response frame (without its size prefix).
    pub fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        if !(0..=256 * 1024 * 1024).contains(&size) {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                format!("response size {size}"),
            ));
        }
        let mut body = vec![0u8; size as usize];
        self.stream.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }

    /// Reads a response frame, checks its correlation id and returns the body after the header.
    pub fn read_response(&mut self, correlation_id: i32, header_version: i16) -> Bytes {
        let mut frame = self
            .read_frame()
            .unwrap_or_else(|e| panic!("reading response to correlation id {correlation_id}: {e}"));
        let header = ResponseHeader::decode(&mut frame, header_version).expect("response header");
        assert_eq!(
            header.correlation_id, correlation_id,
            "response correlation id"
        );
        frame
    }

    /// Sends a typed request and decodes its response at the same version.
    pub fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let key = ApiKey::try_from(R::KEY).expect("known api key");
        let corr = self.send(version, req);
        let mut body = self.read_response(corr, key.response_header_version(version));
        let resp = R::Response::decode(&mut body, version)
            .unwrap_or_else(|e| panic!("decoding {key:?} v{version} response: {e}"));
        assert_eq!(
            body.remaining(),
            0,
            "{key:?} v{version} response has trailing bytes"
        );
        resp
    }

    /// Waits up to `within` for the broker to close the connection.
    pub fn wait_closed(&mut self, within: Duration) -> CloseOutcome {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut buf = [0u8; 4096];
        let outcome = match self.stream.read(&mut buf) {
            Ok(0) => CloseOutcome::Closed,
            Ok(n) => CloseOutcome::Answered(n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                CloseOutcome::StillOpen
            }
            Err(_) => CloseOutcome::Closed, // reset
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        outcome
    }

    /// Half-closes our side (we send no more bytes).
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Stores a SCRAM credential for `user` with an AlterUserScramCredentials request, salting
/// `password` as a client does (`iterations` rounds of `mechanism`); panics on an error.
pub fn raw_scram_user(
    raw: &mut RawClient,
    mechanism: starling_broker::sasl::scram::ScramMechanism,
    user: &str,
    password: &str,
    iterations: i32,
) {
    use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
    use kafka_protocol::messages::AlterUserScramCredentialsRequest;
    let salt = b"a-salt-for-tests".to_vec();
    let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations as u32);
    let response = raw.call(
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(StrBytes::from_string(user.to_string()))
                .with_mechanism(mechanism.type_id())
                .with_iterations(iterations)
                .with_salt(Bytes::from(salt))
                .with_salted_password(Bytes::from(salted)),
        ]),
    );
    assert!(
        response.results.iter().all(|r| r.error_code == 0),
        "{response:?}"
    );
}

/// Creates `topics` (one partition each) with a CreateTopics v5 request; panics on an error.
pub fn raw_create_topics(raw: &mut RawClient, topics: &[&str]) {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::CreateTopicsRequest;
    let created = raw.call(
        5,
        &CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(topic_name(t))
                            .with_num_partitions(1)
                            .with_replication_factor(1)
                    })
                    .collect(),
            ),
    );
    assert!(
        created.topics.iter().all(|t| t.error_code == 0),
        "{created:?}"
    );
}

/// Metadata v12 (topic ids included) on a fresh connection. `topics: None` asks for all topics.
pub fn raw_metadata(
    addr: SocketAddr,
    topics: Option<&[&str]>,
    allow_auto_create: bool,
) -> MetadataResponse {
    let req = MetadataRequest::default()
        .with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                .collect()
        }))
        .with_allow_auto_topic_creation(allow_auto_create);
    RawClient::connect(addr).call(12, &req)
}

/// Produce one batch to one partition at `version` (>= 3, < 13) and return that partition's
/// response.
pub fn raw_produce(
    raw: &mut RawClient,
    version: i16,
    topic: &str,
    partition: i32,
    batch: Bytes,
) -> PartitionProduceResponse {
    let resp = raw_produce_many(raw, version, &[(topic, partition, batch)]);
    assert_eq!(resp.len(), 1, "one partition response");
    resp.into_iter().next().unwrap().2
}

/// Produce several (topic, partition, batch) in one request; returns the responses with their
/// topic and partition.
pub fn raw_produce_many(
    raw: &mut RawClient,
    version: i16,
    parts: &[(&str, i32, Bytes)],
) -> Vec<(String, i32, PartitionProduceResponse)> {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (topic, partition, batch) in parts {
        let pd = PartitionProduceData::default()
            .with_index(*partition)
            .with_records(Some(batch.clone()));
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partition_data.push(pd),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(topic_name(topic))
                    .with_partition_data(vec![pd]),
            ),
        }
    }
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(topics);
    let resp = raw.call(version, &req);
    resp.responses
        .into_iter()
        .flat_map(|t| {
            let name = t.name.0.to_string();
            t.partition_responses
                .into_iter()
                .map(move |p| (name.clone(), p.index, p))
        })
        .collect()
}

/// Fetch v4 of one partition on a fresh connection.
pub fn raw_fetch(
    addr: SocketAddr,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
) -> FetchPartitionData {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let mut raw = RawClient::connect(addr);
    raw.stream
        .set_read_timeout(Some(
            Duration::from_millis(max_wait_ms as u64) + Duration::from_secs(10),
        ))
        .unwrap();
    let resp = raw.call(4, &req);
    let mut parts: Vec<FetchPartitionData> = resp
        .responses
        .into_iter()
        .filter(|t| t.topic.0.as_str() == topic)
        .flat_map(|t| t.partitions)
        .filter(|p| p.partition_index == partition)
        .collect();
    assert_eq!(parts.len(), 1, "one partition in the fetch response");
    parts.pop().unwrap()
}
