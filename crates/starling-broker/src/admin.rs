//! The admin HTTP endpoint (`admin.listen`, default 127.0.0.1:9644), for operators and
//! monitoring systems rather than Kafka clients:
//!
//! - `GET /`: this list of routes, as plain text.
//! - `GET /metrics`: the Prometheus metrics in the OpenMetrics text format ([`crate::metrics`]).
//! - `GET /healthz`: `200 ok` while the broker serves; `503 degraded: …` while a store is
//!   faulted, naming each fault (the metadata store until a write as large as the failed one
//!   commits, the group coordinator while it holds no state because it cannot load it, each
//!   partition log whose last append failed on the storage, and with PostgreSQL storage a
//!   database that does not answer within 2 s); `503 shutting down` once it is shutting down.
//! - `GET /groups`: every consumer group the coordinator holds, with committed offsets and lag,
//!   as JSON.
//! - `GET /ui/`: the web console ([`ui`]), HTML pages rendered by `starling-console`, with
//!   topic rates and lag histories from the endpoint's sampler ([`activity`]).
//! - `GET /groups/{id}/rebalances`: one group's rebalance history
//!   ([`starling_group::RebalanceRecord`]s, oldest first, an open one last) as JSON; a group the
//!   coordinator does not hold is a 404 with a JSON `{"error": …}`.
//!
//! **Who may ask** ([`auth`]). `admin.auth=required` makes every route but `/healthz` need a
//! bearer token from `admin.auth.tokens.file` or HTTP Basic credentials of a SCRAM or
//! `sasl.plain.users.file` user (`admin.auth.basic.enable`); without them the answer is a 401
//! with a `WWW-Authenticate` challenge. `admin.auth=none` asks for nothing and every caller is
//! `User:ANONYMOUS`. Unset, it is `none` on a loopback `admin.listen`, and any other address
//! stops the broker at start until `admin.auth` is chosen (an explicit `none` there is served,
//! with a warning at start). Without `admin.ssl.enable` credentials travel in clear, which the
//! broker warns about when it listens beyond loopback.
//!
//! `/healthz` stays open to anybody, since load balancers probe it without credentials; its
//! status code is the same for all, but the faults it names (which name topics) are only told
//! to a caller who may DESCRIBE the cluster, and with `admin.auth=required` only once
//! authenticated; others get `503 degraded`. Credentials that do not verify are a 401 there
//! too.
//!
//! **What they may see.** With an authorizer (`authorizer.class.name`) every view is filtered
//! by the caller's principal, as Kafka filters its APIs: `/groups` lists the groups it may
//! DESCRIBE (Kafka's DescribeGroups), with only the offsets and lag of topics it may DESCRIBE
//! (OffsetFetch); `/groups/{id}/rebalances` needs DESCRIBE on the group, else a 403 whether or
//! not the group exists (Kafka's GROUP_AUTHORIZATION_FAILED), and leaves out of each record's
//! assignment and hand-overs the partitions of topics it may not DESCRIBE; `/metrics` needs
//! DESCRIBE on the cluster (the metrics name every topic and group), else a 403. `/` is there
//! for any authenticated caller. Without an authorizer nothing is filtered.
//!
//! Group data comes from the coordinator task, which answers from memory without persisting
//! anything. The endpoint stops with the broker: it stops accepting, closes idle connections and
//! gives requests in flight a few seconds to finish.
//!
//! **HTTPS** ([`https`]): with `admin.ssl.enable=true` the endpoint serves TLS with the `ssl.*`
//! settings a Kafka TLS listener reads (each overridable as `admin.ssl.<key>`, e.g.
//! `admin.ssl.keystore.location`; `admin.ssl.client.auth=required` asks for client
//! certificates), reloaded with them.
//!
//! The routes ([`router`]) are built apart from the accept loop ([`serve_on`], generic over
//! axum's [`Listener`](axum::serve::Listener) with socket addresses), which serves plain TCP
//! or [`https::HttpsListener`].

pub mod activity;
pub mod auth;
pub mod https;
pub mod ui;

use std::collections::HashMap;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::{IncomingStream, Listener};
use axum::{Json, Router};
use serde::Serialize;
use starling_acl::{AclOperation, ResourceType};
use starling_group::{GroupOverview, RebalanceRecord};
use tokio::net::TcpListener;

use self::auth::{AdminAuth, Caller};

use crate::metrics::{lag, TransactionsOverview};
use crate::topics::TopicRegistry;
use crate::Broker;

/// The exposition format `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// How long `/metrics` waits for the coordinator's overview before leaving the group metrics out.
const OVERVIEW_TIMEOUT: Duration = Duration::from_secs(5);
/// How long requests in flight may go on once shutdown has begun.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves the admin endpoint on a TCP `listener` until the broker shuts down.
pub async fn serve(broker: Arc<Broker>, auth: AdminAuth, listener: TcpListener) {
    serve_on(broker, auth, listener).await
}

/// The peer of an admin connection, as the handlers see it: its address and, over HTTPS with
/// `admin.ssl.client.auth`, the client certificate the handshake verified. A listener provides
/// it with an `impl Connected<IncomingStream<'_, ItsListener>> for Peer` (as here for TCP and
/// in [`https`] for TLS).
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub certificate: Option<Arc<rustls_pki_types::CertificateDer<'static>>>,
}

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Peer {
            addr: *stream.remote_addr(),
            certificate: None,
        }
    }
}

/// Serves the admin endpoint on any `listener` with socket addresses until the broker shuts
/// down: the accept loop, apart from the routes ([`router`]).
pub async fn serve_on<L>(broker: Arc<Broker>, auth: AdminAuth, listener: L)
where
    L: Listener<Addr = SocketAddr>,
    for<'a> Peer: Connected<IncomingStream<'a, L>>,
{
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, auth = if auth.required() { "required" } else { "none" }, "admin endpoint listening");
    }
    let shutdown = broker.shutdown.clone();
    let activity = Arc::new(activity::Activity::new(
        broker.config.admin_console_sample_interval_ms,
    ));
    tokio::spawn(activity::run(broker.clone(), activity.clone()));
    let app = router(broker, auth, activity).into_make_service_with_connect_info::<Peer>();
    let server = axum::serve(listener, app)
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

/// Says loudly when the endpoint is reachable beyond this host without authentication, and
/// that credentials travel in clear when it asks for them there. Called at start, before the
/// broker announces it listens.
pub fn warn_if_exposed(broker: &Broker, auth: &AdminAuth, addr: SocketAddr) {
    if addr.ip().is_loopback() {
        return;
    }
    let https = broker.config.admin_ssl_enable;
    if !auth.required() {
        tracing::warn!(
            %addr,
            authorizer = broker.acls.authorizer().is_some(),
            "THE ADMIN ENDPOINT IS OPEN TO ANY HOST THAT CAN REACH {addr} WITHOUT AUTHENTICATION \
             (admin.auth=none): anyone may read its metrics, groups and rebalances as \
             User:ANONYMOUS; set admin.auth=required to ask for credentials"
        );
    } else if !https {
        tracing::warn!(
            %addr,
            "the admin endpoint listens beyond loopback over plain HTTP: its bearer tokens and \
             Basic passwords travel in clear; set admin.ssl.enable=true to serve HTTPS, or keep \
             it on a trusted network"
        );
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
    (
        "/ui/",
        "the web console: topics, groups, members, lag and rebalance timelines (HTML)",
    ),
];

/// What every handler has: the broker and who may ask.
#[derive(Clone)]
pub struct AdminState {
    broker: Arc<Broker>,
    auth: Arc<AdminAuth>,
    /// Signs the console's form tokens.
    console_key: Arc<ui::actions::CsrfKey>,
    /// The console's recent topic rates and group lag.
    activity: Arc<activity::Activity>,
}

/// The endpoint's routes over a broker, the console reading its history from `activity`.
/// Handlers read the caller's address from [`ConnectInfo<Peer>`]: serve it with
/// `into_make_service_with_connect_info::<Peer>()`.
pub fn router(broker: Arc<Broker>, auth: AdminAuth, activity: Arc<activity::Activity>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/groups", get(groups))
        .route("/groups/{id}/rebalances", get(rebalances))
        .merge(ui::routes())
        .with_state(AdminState {
            broker,
            auth: Arc::new(auth),
            console_key: Arc::new(ui::actions::CsrfKey::random()),
            activity,
        })
}

impl AdminState {
    /// The caller, or the 401 to answer.
    async fn caller(&self, headers: &HeaderMap, peer: Peer) -> Result<Caller, Response> {
        match self.auth.caller(&self.broker, headers, &peer).await? {
            Some(caller) => Ok(caller),
            None => Err(self.auth.challenge()),
        }
    }

    /// Whether `caller` may perform `operation` on the resource; always without an authorizer.
    fn may(
        &self,
        caller: &Caller,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.broker
            .acls
            .authorize(&caller.principal, caller.ip, operation, resource_type, name)
    }

    fn may_describe_cluster(&self, caller: &Caller) -> bool {
        self.may(
            caller,
            AclOperation::Describe,
            ResourceType::Cluster,
            starling_acl::CLUSTER_RESOURCE_NAME,
        )
    }

    /// Whether `caller` may DESCRIBE each topic asked about, each asked once per request.
    fn topic_filter<'a>(&'a self, caller: &'a Caller) -> impl FnMut(&str) -> bool + 'a {
        let mut decided: HashMap<String, bool> = HashMap::new();
        move |topic: &str| {
            if let Some(&allowed) = decided.get(topic) {
                return allowed;
            }
            let allowed = self.may(caller, AclOperation::Describe, ResourceType::Topic, topic);
            decided.insert(topic.to_string(), allowed);
            allowed
        }
    }
}

/// The 403 for a caller the authorizer refuses.
fn forbidden(what: String) -> Response {
    error(StatusCode::FORBIDDEN, what)
}

async fn index(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = state.caller(&headers, peer).await {
        return refused;
    }
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if browser {
        let mut body = starling_console::html::Html::new();
        body.raw("<p>")
            .link("/ui/", "Open the console")
            .raw("</p><ul>");
        for (path, what) in ROUTES {
            body.raw("<li>");
            if path.contains('{') {
                body.raw("<code>").text(path).raw("</code>");
            } else {
                body.link(path, path);
            }
            body.raw(" — ").text(what).raw("</li>");
        }
        body.raw("</ul>");
        let page = starling_console::html::page(
            "Admin endpoint",
            starling_console::html::Section::Overview,
            &body.into_string(),
            None,
        );
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    }
    let width = ROUTES.iter().map(|(path, _)| path.len()).max().unwrap_or(0);
    let mut text = String::from("Starling admin endpoint\n\n");
    for (path, what) in ROUTES {
        text.push_str(&format!("GET {path:<width$}  {what}\n"));
    }
    text.into_response()
}

async fn healthz(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    // Open to load balancers: only credentials that are there and wrong are refused.
    let caller = match state.auth.caller(&state.broker, &headers, &peer).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let broker = &state.broker;
    if broker.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let mut faults = storage_faults(broker);
    if let Err(e) = broker.storage.reachable(DATABASE_PROBE).await {
        faults.push(format!("database unreachable: {e}"));
    }
    if faults.is_empty() {
        return (StatusCode::OK, "ok").into_response();
    }
    let told = caller.is_some_and(|c| state.may_describe_cluster(&c));
    let text = if told {
        format!("degraded: {}", faults.join("; "))
    } else {
        "degraded".to_string()
    };
    (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
}

/// How long `/healthz` waits for PostgreSQL (with that storage) to answer.
const DATABASE_PROBE: std::time::Duration = std::time::Duration::from_secs(2);

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

async fn metrics(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    let caller = match state.caller(&headers, peer).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    if !state.may_describe_cluster(&caller) {
        return forbidden(format!(
            "{} may not DESCRIBE the cluster, which the metrics need",
            caller.principal
        ));
    }
    let broker = state.broker;
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

/// A group as `/groups` lists it, with only the offsets of topics `may_describe` lets through.
fn group_json(
    group: GroupOverview,
    topics: &TopicRegistry,
    mut may_describe: impl FnMut(&str) -> bool,
) -> GroupJson {
    let offsets = group
        .offsets
        .into_iter()
        .filter(|(topic, _, _)| may_describe(topic))
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

async fn groups(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    let caller = match state.caller(&headers, peer).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    match state.broker.groups.overview().await {
        Ok(groups) => {
            let mut may_describe_topic = state.topic_filter(&caller);
            let list: Vec<GroupJson> = groups
                .into_iter()
                .filter(|g| {
                    state.may(
                        &caller,
                        AclOperation::Describe,
                        ResourceType::Group,
                        &g.group_id,
                    )
                })
                .map(|g| group_json(g, &state.broker.topics, &mut may_describe_topic))
                .collect();
            Json(list).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn rebalances(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match state.caller(&headers, peer).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    // Refused before the lookup, so the answer does not say whether the group exists.
    if !state.may(&caller, AclOperation::Describe, ResourceType::Group, &id) {
        return forbidden(format!(
            "{} may not DESCRIBE group '{id}'",
            caller.principal
        ));
    }
    match state.broker.groups.rebalances(id.clone()).await {
        Ok(Some(mut records)) => {
            let mut may_describe_topic = state.topic_filter(&caller);
            for record in &mut records {
                hide_topics(record, &mut may_describe_topic);
            }
            Json(records).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("group '{id}' not found")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Leaves out of a rebalance record's assignment and hand-overs every partition of a topic
/// `may_describe` refuses.
fn hide_topics(record: &mut RebalanceRecord, mut may_describe: impl FnMut(&str) -> bool) {
    if let Some(assignment) = &mut record.assignment {
        assignment.moved.retain(|p| may_describe(&p.topic));
        assignment.stayed.retain(|p| may_describe(&p.topic));
        assignment.assigned.retain(|p| may_describe(&p.topic));
        assignment.revoked.retain(|p| may_describe(&p.topic));
    }
    record.handovers.retain(|h| may_describe(&h.topic));
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
        commit_to(broker, "g", "t").await
    }

    /// Commits offset 1 of `topic`'s partition 0 for `group` (as an `assign()` consumer would).
    async fn commit_to(broker: &Broker, group: &str, topic_name: &str) -> i16 {
        let mut partition = OffsetCommitRequestPartition::default();
        partition.committed_offset = 1;
        let mut topic = OffsetCommitRequestTopic::default();
        topic.name = StrBytes::from_string(topic_name.to_string()).into();
        topic.partitions = vec![partition];
        let mut request = OffsetCommitRequest::default();
        request.group_id = StrBytes::from_string(group.to_string()).into();
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

    fn allow_anonymous(
        resource_type: ResourceType,
        name: &str,
        operation: AclOperation,
    ) -> starling_acl::AclBinding {
        starling_acl::AclBinding {
            pattern: starling_acl::ResourcePattern {
                resource_type,
                name: name.into(),
                pattern_type: starling_acl::PatternType::Literal,
            },
            entry: starling_acl::AccessControlEntry {
                principal: "User:ANONYMOUS".into(),
                host: "*".into(),
                operation,
                permission: starling_acl::Permission::Allow,
            },
        }
    }

    /// A broker on free loopback ports (Kafka and admin) with its data in `dir`.
    fn on_free_ports(dir: &std::path::Path) -> BrokerConfig {
        BrokerConfig {
            listeners: vec![crate::listeners::ListenerAddress::plaintext(
                "127.0.0.1:0".parse().unwrap(),
            )],
            admin_listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: dir.to_path_buf(),
            ..BrokerConfig::default()
        }
    }

    #[tokio::test]
    async fn with_an_authorizer_and_no_authentication_anonymous_sees_what_its_acls_allow() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            authorizer_class_name: crate::config::AUTHORIZER_CLASS_NAMES[0].into(),
            ..on_free_ports(dir.path())
        };
        let running = crate::server::start(config).await.unwrap();
        let admin = running.admin_addr().unwrap();
        let broker = running.broker().clone();
        for topic in ["a", "secret"] {
            broker
                .topics
                .create(topic, 1, Default::default(), true)
                .await
                .unwrap();
        }
        for (group, topic) in [("g1", "a"), ("g1", "secret"), ("g2", "a")] {
            assert_eq!(commit_to(&broker, group, topic).await, 0);
        }

        // No ACLs yet: nothing is visible, the metrics and a named group are refused.
        assert_eq!(get(admin, "/groups").await, (200, "[]".to_string()));
        let (status, body) = get(admin, "/metrics").await;
        assert_eq!(
            (status, body.as_str()),
            (
                403,
                r#"{"error":"User:ANONYMOUS may not DESCRIBE the cluster, which the metrics need"}"#
            )
        );
        for group in ["g2", "nobody"] {
            let (status, body) = get(admin, &format!("/groups/{group}/rebalances")).await;
            assert_eq!(status, 403, "{body}");
            assert_eq!(
                body,
                format!(r#"{{"error":"User:ANONYMOUS may not DESCRIBE group '{group}'"}}"#)
            );
        }
        assert_eq!(get(admin, "/healthz").await, (200, "ok".to_string()));

        let created = broker
            .acls
            .create(&[
                allow_anonymous(ResourceType::Group, "g1", AclOperation::Describe),
                allow_anonymous(ResourceType::Topic, "a", AclOperation::Describe),
                allow_anonymous(
                    ResourceType::Cluster,
                    starling_acl::CLUSTER_RESOURCE_NAME,
                    AclOperation::Describe,
                ),
            ])
            .await
            .unwrap();
        assert!(created.iter().all(Result::is_ok), "{created:?}");
        let (status, body) = get(admin, "/groups").await;
        assert_eq!(status, 200, "{body}");
        let groups: serde_json::Value = serde_json::from_str(&body).unwrap();
        let listed: Vec<&str> = groups
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["group_id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, ["g1"]);
        assert_eq!(
            groups[0]["offsets"],
            serde_json::json!([{
                "topic": "a",
                "partition": 0,
                "committed_offset": 1,
                "log_end_offset": 0,
                "lag": 0
            }])
        );
        assert_eq!(get(admin, "/groups/g1/rebalances").await.0, 200);
        assert_eq!(get(admin, "/groups/g2/rebalances").await.0, 403);
        let (status, metrics) = get(admin, "/metrics").await;
        assert_eq!(status, 200);
        assert!(metrics.contains("starling_"), "{metrics}");
        drop(broker);
        running.shutdown().await;
    }

    #[test]
    fn rebalance_records_lose_the_partitions_of_topics_the_caller_may_not_describe() {
        let mut record: RebalanceRecord = serde_json::from_value(serde_json::json!({
            "group_id": "g",
            "generation": 2,
            "cause": "member_joined",
            "protocol_type": "consumer",
            "started_ms": 1,
            "outcome": "stable",
            "members_before": [],
            "members": [],
            "joined": [],
            "left": [],
            "assignment": {
                "moved": [
                    {"topic": "a", "partition": 0, "from": "m1", "to": "m2"},
                    {"topic": "secret", "partition": 0, "from": "m1", "to": "m2"}
                ],
                "stayed": [{"topic": "secret", "partition": 1, "member_id": "m1"}],
                "assigned": [{"topic": "a", "partition": 1, "member_id": "m2"}],
                "revoked": [{"topic": "secret", "partition": 2, "member_id": "m1"}]
            },
            "handovers": [
                {"topic": "secret", "partition": 0, "from": "m1", "to": "m2"},
                {"topic": "a", "partition": 0, "from": "m1", "to": "m2"}
            ]
        }))
        .unwrap();
        let mut asked = Vec::new();
        hide_topics(&mut record, |topic| {
            asked.push(topic.to_string());
            topic != "secret"
        });
        let shown = serde_json::to_value(&record).unwrap();
        assert_eq!(
            shown["assignment"],
            serde_json::json!({
                "moved": [{"topic": "a", "partition": 0, "from": "m1", "to": "m2"}],
                "stayed": [],
                "assigned": [{"topic": "a", "partition": 1, "member_id": "m2"}],
                "revoked": []
            })
        );
        assert_eq!(shown["handovers"][0]["topic"], "a");
        assert_eq!(shown["handovers"].as_array().unwrap().len(), 1);
        assert!(!shown.to_string().contains("secret"), "{shown}");
        assert_eq!(asked.len(), 7);
    }

    #[tokio::test]
    async fn the_root_lists_every_route_and_each_listed_route_answers() {
        let dir = tempfile::tempdir().unwrap();
        let config = on_free_ports(dir.path());
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
        let config = on_free_ports(dir.path());
        let running = crate::server::start(config).await.unwrap();
        let admin = running.admin_addr().unwrap();
        let broker = running.broker().clone();
        broker
            .topics
            .create("t", 1, Default::default(), true)
            .await
            .unwrap();
        assert_eq!(get(admin, "/healthz").await, (200, "ok".to_string()));

        // The disk is full: a commit fails, and the stored state cannot be loaded again.
        broker
            .groups
            .store()
            .embedded()
            .unwrap()
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
        broker
            .groups
            .store()
            .embedded()
            .unwrap()
            .failpoint()
            .clear();
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
