//! The admin HTTP endpoint (`admin.listen`, default 127.0.0.1:9644), for operators and
//! monitoring systems rather than Kafka clients:
//!
//! - `GET /`: this list of routes, as plain text.
//! - `GET /metrics`: the Prometheus metrics in the OpenMetrics text format ([`crate::metrics`]).
//! - `GET /healthz`: `200 ok` while the broker serves; `503 degraded: …` while a store is
//!   faulted, naming each fault (the metadata store until a write as large as the failed one
//!   commits, the group coordinator while it holds no state because it cannot load it, each
//!   partition log whose last append failed on the storage); `503 shutting down` once it is
//!   shutting down.
//! - `GET /groups`: every consumer group the coordinator holds, with committed offsets and lag,
//!   as JSON.
//! - `GET /groups/{id}/rebalances`: one group's rebalance history
//!   ([`starling_group::RebalanceRecord`]s, oldest first, an open one last) as JSON; a group the
//!   coordinator does not hold is a 404 with a JSON `{"error": …}`.
//!
//! Group data comes from the coordinator task, which answers from memory without persisting
//! anything. The endpoint stops with the broker: it stops accepting, closes idle connections and
//! gives requests in flight a few seconds to finish.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use starling_group::GroupOverview;
use tokio::net::TcpListener;

use crate::metrics::{lag, TransactionsOverview};
use crate::topics::TopicRegistry;
use crate::Broker;

/// The exposition format `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// How long `/metrics` waits for the coordinator's overview before leaving the group metrics out.
const OVERVIEW_TIMEOUT: Duration = Duration::from_secs(5);
/// How long requests in flight may go on once shutdown has begun.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves the admin endpoint on `listener` until the broker shuts down.
pub async fn serve(broker: Arc<Broker>, listener: TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin endpoint listening");
    }
    let shutdown = broker.shutdown.clone();
    let server = axum::serve(listener, router(broker))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    let grace_over = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => {
            if let Err(e) = result {
                tracing::error!(error = %e, "admin endpoint failed");
            }
        }
        _ = grace_over => {
            tracing::warn!("admin endpoint: requests still running {SHUTDOWN_GRACE:?} into shutdown; dropping them");
        }
    }
}

/// Every route the endpoint serves with what it answers, as `GET /` lists them.
pub const ROUTES: &[(&str, &str)] = &[
    ("/", "this list"),
    ("/metrics", "Prometheus metrics (OpenMetrics text format)"),
    (
        "/healthz",
        "200 ok while the broker serves; 503 naming each storage fault, or while shutting down",
    ),
    (
        "/groups",
        "every consumer group with its committed offsets and lag (JSON)",
    ),
    (
        "/groups/{id}/rebalances",
        "one group's rebalance history, oldest first (JSON)",
    ),
];

/// The endpoint's routes over a broker.
pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/groups", get(groups))
        .route("/groups/{id}/rebalances", get(rebalances))
        .with_state(broker)
}

async fn index() -> String {
    let width = ROUTES.iter().map(|(path, _)| path.len()).max().unwrap_or(0);
    let mut text = String::from("Starling admin endpoint\n\n");
    for (path, what) in ROUTES {
        text.push_str(&format!("GET {path:<width$}  {what}\n"));
    }
    text
}

async fn healthz(State(broker): State<Arc<Broker>>) -> (StatusCode, String) {
    if broker.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down".into());
    }
    let faults = storage_faults(&broker);
    if faults.is_empty() {
        (StatusCode::OK, "ok".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("degraded: {}", faults.join("; ")),
        )
    }
}

/// Each storage fault the broker is serving through, in words.
fn storage_faults(broker: &Broker) -> Vec<String> {
    let metadata = broker.groups.storage_health();
    let mut faults = Vec::new();
    // The store's errors read "metadata store: …" already.
    faults.extend(metadata.store_fault);
    if let Some(e) = metadata.coordinator_fault {
        faults.push(format!("group coordinator: {e}"));
    }
    for log in broker.metrics.log_faults(&broker.topics) {
        faults.push(format!(
            "partition log {}-{}: last append failed: {}",
            log.topic, log.partition, log.error
        ));
    }
    faults
}

async fn metrics(State(broker): State<Arc<Broker>>) -> Response {
    // Collectors are synchronous, so the groups are fetched first and encoded as a snapshot.
    let groups = match tokio::time::timeout(OVERVIEW_TIMEOUT, broker.groups.overview()).await {
        Ok(Ok(groups)) => Some(groups),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics scrape without group metrics");
            None
        }
        Err(_) => {
            tracing::warn!(
                "metrics scrape without group metrics: the coordinator did not answer within {OVERVIEW_TIMEOUT:?}"
            );
            None
        }
    };
    let transactions = match tokio::time::timeout(OVERVIEW_TIMEOUT, broker.transactions.snapshot())
        .await
    {
        Ok(Ok(snapshot)) => Some(TransactionsOverview::of(
            snapshot.iter().map(|(_, value)| value),
            crate::now_ms(),
        )),
        Ok(Err(e)) => {
            tracing::warn!(error = ?e, "metrics scrape without transaction metrics");
            None
        }
        Err(_) => {
            tracing::warn!(
                    "metrics scrape without transaction metrics: the transaction coordinator did not answer within {OVERVIEW_TIMEOUT:?}"
                );
            None
        }
    };
    // Reading every partition's log state takes locks that appends hold while they write;
    // that wait belongs on a blocking thread, not on an async worker.
    let b = broker.clone();
    let metadata = broker.groups.storage_health();
    match tokio::task::spawn_blocking(move || {
        b.metrics.encode(&b.topics, groups, transactions, &metadata)
    })
    .await
    {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Ok(Err(_)) | Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the metrics failed".into(),
        ),
    }
}

/// One group as `/groups` lists it.
#[derive(Debug, Serialize)]
struct GroupJson {
    group_id: String,
    /// `classic` or `consumer` (KIP-848), as ListGroups says.
    #[serde(rename = "type")]
    group_type: &'static str,
    state: &'static str,
    /// `""` for a group that only holds offsets.
    protocol_type: String,
    protocol: Option<String>,
    generation: i32,
    members: usize,
    offsets: Vec<OffsetJson>,
}

/// One committed offset, with the partition's end and the lag when the broker has the partition.
#[derive(Debug, Serialize)]
struct OffsetJson {
    topic: String,
    partition: i32,
    committed_offset: i64,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
}

fn group_json(group: GroupOverview, topics: &TopicRegistry) -> GroupJson {
    let offsets = group
        .offsets
        .into_iter()
        .map(|(topic, partition, committed_offset)| {
            let log_end_offset = topics.log_end_offset(&topic, partition);
            OffsetJson {
                lag: log_end_offset.map(|end| lag(end, committed_offset)),
                topic,
                partition,
                committed_offset,
                log_end_offset,
            }
        })
        .collect();
    GroupJson {
        group_id: group.group_id,
        group_type: if group.consumer_state.is_some() {
            "consumer"
        } else {
            "classic"
        },
        state: group
            .consumer_state
            .map_or(group.state.name(), |state| state.as_str()),
        protocol_type: group.protocol_type,
        protocol: group.protocol,
        generation: group.generation,
        members: group.members,
        offsets,
    }
}

async fn groups(State(broker): State<Arc<Broker>>) -> Response {
    match broker.groups.overview().await {
        Ok(groups) => {
            let list: Vec<GroupJson> = groups
                .into_iter()
                .map(|g| group_json(g, &broker.topics))
                .collect();
            Json(list).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn rebalances(State(broker): State<Arc<Broker>>, Path(id): Path<String>) -> Response {
    match broker.groups.rebalances(id.clone()).await {
        Ok(Some(records)) => Json(records).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("group '{id}' not found")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Debug, Serialize)]
struct ErrorJson {
    error: String,
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorJson { error: message })).into_response()
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::net::SocketAddr;

    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::OffsetCommitRequest;
    use kafka_protocol::protocol::StrBytes;
    use starling_group::{ClientInfo, GroupRequest, GroupResponse};
    use starling_log::AppendError;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::config::BrokerConfig;

    /// `GET path` over HTTP/1.1: the status code and the body.
    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }

    async fn commit(broker: &Broker) -> i16 {
        let mut partition = OffsetCommitRequestPartition::default();
        partition.committed_offset = 1;
        let mut topic = OffsetCommitRequestTopic::default();
        topic.name = StrBytes::from_static_str("t").into();
        topic.partitions = vec![partition];
        let mut request = OffsetCommitRequest::default();
        request.group_id = StrBytes::from_static_str("g").into();
        request.generation_id_or_member_epoch = -1;
        request.topics = vec![topic];
        let client = ClientInfo {
            client_id: "test".into(),
            client_host: "/127.0.0.1".into(),
        };
        let response = broker
            .groups
            .call(8, client, GroupRequest::OffsetCommit(request))
            .await
            .unwrap();
        let GroupResponse::OffsetCommit(response) = response else {
            panic!("not an OffsetCommit response");
        };
        response.topics[0].partitions[0].error_code
    }

    #[tokio::test]
    async fn the_root_lists_every_route_and_each_listed_route_answers() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            listeners: vec![crate::listeners::ListenerAddress::plaintext(
                "127.0.0.1:0".parse().unwrap(),
            )],
            admin_listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: dir.path().to_path_buf(),
            ..BrokerConfig::default()
        };
        let running = crate::server::start(config).await.unwrap();
        let admin = running.admin_addr().unwrap();
        let (status, body) = get(admin, "/").await;
        assert_eq!(status, 200, "{body}");
        for route in ["/metrics", "/healthz", "/groups", "/groups/{id}/rebalances"] {
            assert!(
                body.lines()
                    .any(|l| l.starts_with(&format!("GET {route} "))),
                "{route} in\n{body}"
            );
        }
        // Every listed route is served (a group that does not exist is a 404 from the route,
        // with a JSON error, not the router's empty 404).
        for (path, _) in ROUTES {
            let (status, body) = get(admin, &path.replace("{id}", "nobody")).await;
            assert!(
                status == 200 || body.contains("group 'nobody' not found"),
                "{path}: {status} {body}"
            );
        }
        running.shutdown().await;
    }

    #[tokio::test]
    async fn healthz_names_each_storage_fault_while_it_lasts_and_says_ok_once_writes_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            listeners: vec![crate::listeners::ListenerAddress::plaintext(
                "127.0.0.1:0".parse().unwrap(),
            )],
            admin_listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: dir.path().to_path_buf(),
            ..BrokerConfig::default()
        };
        let running = crate::server::start(config).await.unwrap();
        let admin = running.admin_addr().unwrap();
        let broker = running.broker().clone();
        broker
            .topics
            .create("t", 1, Default::default(), true)
            .unwrap();
        assert_eq!(get(admin, "/healthz").await, (200, "ok".to_string()));

        // The disk is full: a commit fails, and the stored state cannot be loaded again.
        broker
            .groups
            .store()
            .failpoint()
            .fail_writes(u64::MAX, ErrorKind::StorageFull);
        assert_ne!(commit(&broker).await, 0);
        // A partition's append failed on the storage too.
        let failed: Result<(), _> = Err(AppendError::Io(std::io::Error::other("disk gone")));
        assert!(broker.metrics.log_appended("t", 0, failed).is_err());
        let (status, body) = get(admin, "/healthz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.starts_with("degraded: metadata store"), "{body}");
        assert!(body.contains("no storage space"), "{body}");
        assert!(body.contains("group coordinator: "), "{body}");
        assert!(
            body.contains("partition log t-0: last append failed: disk gone"),
            "{body}"
        );
        let (_, metrics) = get(admin, "/metrics").await;
        for line in [
            r#"starling_storage_degraded{store="metadata"} 1"#,
            r#"starling_storage_degraded{store="log"} 1"#,
            r#"starling_storage_errors_total{store="log"} 1"#,
        ] {
            assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
        }

        // Space again, and the next append to the partition succeeds.
        broker.groups.store().failpoint().clear();
        assert!(broker.metrics.log_appended("t", 0, Ok(())).is_ok());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = get(admin, "/healthz").await;
            if status == 200 {
                assert_eq!(body, "ok");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(commit(&broker).await, 0);
        drop(broker);
        running.shutdown().await;
    }
}
