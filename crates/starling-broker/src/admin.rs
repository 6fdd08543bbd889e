//! The admin HTTP endpoint (`admin.listen`, default 127.0.0.1:9644), for operators and
//! monitoring systems rather than Kafka clients:
//!
//! - `GET /metrics`: the Prometheus metrics in the OpenMetrics text format ([`crate::metrics`]).
//! - `GET /healthz`: `200 ok` while the broker serves, `503` once it is shutting down.
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

use crate::metrics::lag;
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

/// The endpoint's routes over a broker.
pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/groups", get(groups))
        .route("/groups/{id}/rebalances", get(rebalances))
        .with_state(broker)
}

async fn healthz(State(broker): State<Arc<Broker>>) -> (StatusCode, &'static str) {
    if broker.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else {
        (StatusCode::OK, "ok")
    }
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
    // Reading every partition's log state takes locks that appends hold while they write;
    // that wait belongs on a blocking thread, not on an async worker.
    let b = broker.clone();
    match tokio::task::spawn_blocking(move || b.metrics.encode(&b.topics, groups)).await {
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
        state: group.state.name(),
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
