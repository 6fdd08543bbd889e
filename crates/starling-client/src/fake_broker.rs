//! A tiny scripted broker on 127.0.0.1 for the unit tests: it accepts connections, decodes each
//! request header and hands the request to a handler that returns the raw response (header
//! and body) to send back, or nothing to stay silent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the fake broker saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub header: RequestHeader,
    pub body: Bytes,
}

pub type Handler = dyn Fn(&Seen) -> Option<Vec<u8>> + Send + Sync;

pub struct FakeBroker {
    pub addr: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub accepted: Arc<AtomicUsize>,
}

impl FakeBroker {
    pub async fn start(handler: Arc<Handler>) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (seen2, accepted2) = (seen.clone(), accepted.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepted2.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, handler.clone(), seen2.clone()));
            }
        });
        FakeBroker {
            addr,
            seen,
            accepted,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, handler: Arc<Handler>, seen: Arc<Mutex<Vec<Seen>>>) {
    loop {
        let Ok(size) = stream.read_i32().await else {
            return;
        };
        let mut frame = vec![0u8; size as usize];
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        let mut frame = Bytes::from(frame);
        let header = decode_request_header_from_buffer(&mut frame).expect("request header");
        let s = Seen {
            header,
            body: frame,
        };
        seen.lock().unwrap().push(s.clone());
        match handler(&s) {
            Some(response) => {
                let mut out = BytesMut::new();
                out.put_i32(response.len() as i32);
                out.put_slice(&response);
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
            None => {
                // Stay silent; keep the connection open.
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
        }
    }
}

/// Response header (at the version the API/version pair calls for) plus body.
pub fn respond<M: Encodable>(seen: &Seen, body: &M) -> Vec<u8> {
    respond_at(seen, seen.header.request_api_version, body)
}

/// Like [`respond`], with the body encoded at `body_version`.
pub fn respond_at<M: Encodable>(seen: &Seen, body_version: i16, body: &M) -> Vec<u8> {
    let api = ApiKey::try_from(seen.header.request_api_key).unwrap();
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(seen.header.correlation_id)
        .encode(
            &mut buf,
            api.response_header_version(seen.header.request_api_version),
        )
        .unwrap();
    body.encode(&mut buf, body_version).unwrap();
    buf.to_vec()
}

/// An ApiVersions response announcing `apis`.
pub fn api_versions(apis: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        apis.iter()
            .map(|&(k, min, max)| {
                ApiVersion::default()
                    .with_api_key(k as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

/// Decodes a request body seen by the fake broker.
pub fn decode_body<M: kafka_protocol::protocol::Decodable>(seen: &Seen) -> M {
    let mut body = seen.body.clone();
    let m = M::decode(&mut body, seen.header.request_api_version).expect("request body");
    assert_eq!(body.remaining(), 0, "trailing bytes in the request body");
    m
}
