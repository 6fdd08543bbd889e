//! The broker's Prometheus metrics, every name prefixed `starling_`, encoded in the OpenMetrics
//! text format by `prometheus-client` for the admin endpoint's `/metrics`.
//!
//! Two kinds live here:
//!
//! - **Updated as things happen** ([`Metrics`]'s fields, in one registry): requests, their
//!   latency and the error codes of their responses per API; network bytes; connections; and the
//!   consumer-group rebalances the coordinator task reports; partition-log appends that failed on
//!   the storage ([`Metrics::log_appended`]). The request path never hashes a
//!   label set: each served API's counters and histogram are resolved once, at start-up, into a
//!   table indexed by API key ([`Metrics::api`]). Only non-zero error codes go through a labelled
//!   family lookup.
//! - **Read at scrape time** ([`Metrics::encode`]): partitions, log sizes and offsets, per-topic
//!   produced and fetched bytes (from the [`TopicRegistry`]), and each group's state, members,
//!   generation, committed offsets and lag (from the coordinator's [`GroupOverview`]s, fetched
//!   by the caller before encoding), the transactional ids per state, the oldest open
//!   transaction's age and each partition's open transactions (a [`TransactionsOverview`] of
//!   the transaction coordinator's state, also fetched by the caller), and the storage errors
//!   and degraded state of the metadata
//!   store (its [`StorageHealth`], also read by the caller) and of the partition logs. A custom
//!   collector in a per-scrape registry encodes that snapshot after the long-lived registry.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    text, DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, LabelValueEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use starling_group::{
    ConsumerGroupState, GroupOverview, GroupState, Millis, RebalanceCause, RebalanceRecord,
};
use starling_log::AppendError;
use starling_txn::{TransactionValue, TxnState};

use crate::api::error_codes::ErrorCodes;
use crate::coordinator::StorageHealth;
use crate::topics::TopicRegistry;

/// Every metric name starts with this.
const PREFIX: &str = "starling";

/// Request latency buckets in seconds: 0.1 ms to 60 s (a JoinGroup is held for a whole
/// rebalance, a Fetch for its `max.wait.ms`).
const REQUEST_BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Rebalance phase buckets in seconds: 5 ms to 10 minutes (a rebalance can wait out a whole
/// `max.poll.interval.ms`).
const REBALANCE_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

fn rebalance_histogram() -> Histogram {
    Histogram::new(REBALANCE_BUCKETS)
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// An API as a label value: Kafka's name for it (`Produce`, `JoinGroup`, …).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct ApiName(ApiKey);

impl EncodeLabelValue for ApiName {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        write!(encoder, "{:?}", self.0)
    }
}

/// An error code as a label value: Kafka's name for it (`NONE`, `UNKNOWN_TOPIC_OR_PARTITION`…).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct ErrorName(i16);

impl EncodeLabelValue for ErrorName {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        encoder.write_str(&error_name(self.0))
    }
}

/// A rebalance cause as a label value (`member_joined`, …).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct CauseName(RebalanceCause);

impl EncodeLabelValue for CauseName {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        encoder.write_str(self.0.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: ApiName,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    api: ApiName,
    error: ErrorName,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    listener: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabels {
    user: String,
    client_id: String,
    ip: String,
    quota_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RebalanceLabels {
    group: String,
    cause: CauseName,
}

/// Kafka's name for an error code, as its `Errors` enum spells it: `NONE` for 0,
/// `UNKNOWN_TOPIC_OR_PARTITION` for 3; a code Kafka does not define reads `UNKNOWN_CODE_<n>`.
pub fn error_name(code: i16) -> String {
    let error = match ResponseError::try_from_code(code) {
        None => return "NONE".to_string(),
        Some(ResponseError::Unknown(code)) => return format!("UNKNOWN_CODE_{code}"),
        Some(error) => error,
    };
    // The crate names each variant after Kafka's constant in CamelCase.
    let camel = error.to_string();
    let mut name = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// One served API's pre-resolved metrics.
#[derive(Clone)]
pub struct ApiMetrics {
    requests: Counter,
    duration: Histogram,
    /// `starling_response_error_codes_total{api, error="NONE"}`.
    no_error: Counter,
}

impl ApiMetrics {
    /// One request answered (or, for acks=0 Produce, handled). Counted before the response
    /// is written, so a client that has its response sees it counted.
    pub fn request_answered(&self) {
        self.requests.inc();
    }

    /// How long after its frame was read a request's response was written.
    pub fn observe_latency(&self, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
    }
}

/// Decrements the open-connections gauge when the connection's task ends, however it ends.
pub struct ConnectionGuard {
    open: Gauge,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// Every metric the broker keeps between scrapes.
pub struct Metrics {
    registry: Registry,
    /// Indexed by API key; `None` for APIs the broker does not serve.
    apis: Vec<Option<ApiMetrics>>,
    response_errors: Family<ErrorLabels, Counter>,
    network_received: Counter,
    network_sent: Counter,
    connections_open: Gauge,
    connections_accepted: Counter,
    tls_handshake_failures: Family<ListenerLabels, Counter>,
    tls_reloads: Family<ReloadLabels, Counter>,
    sasl_reauthentications: Family<OutcomeLabels, Counter>,
    sasl_reauthentication_seconds: Histogram,
    sasl_expired_sessions: Counter,
    rebalances: Family<RebalanceLabels, Counter>,
    rebalance_duration: HistogramFamily<GroupLabels>,
    rebalance_join: HistogramFamily<GroupLabels>,
    rebalance_sync: HistogramFamily<GroupLabels>,
    partition_handover: HistogramFamily<GroupLabels>,
    quota_throttle_time: Family<QuotaLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    quota_throttled: Family<QuotaLabels, Counter>,
    /// Partition-log appends that failed on the storage.
    log_storage_errors: AtomicU64,
    /// Partitions whose last append failed on the storage, with the error, until one succeeds.
    log_faults: Mutex<BTreeMap<(String, i32), String>>,
    /// Whether `log_faults` may be non-empty (spares successful appends the lock).
    any_log_fault: AtomicBool,
    /// The log cleaner's passes, bytes and dirty ratios.
    pub cleaner: crate::log_cleaner::CleanerMetrics,
}

/// A partition whose last append failed on the storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFault {
    pub topic: String,
    pub partition: i32,
    pub error: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let requests = Family::<ApiLabels, Counter>::default();
        let durations: HistogramFamily<ApiLabels> = Family::new_with_constructor(request_histogram);
        let response_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by API (acks=0 produces count when handled)",
            requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time from a request's frame being read to its response being written, by API",
            Unit::Seconds,
            durations.clone(),
        );
        registry.register(
            "response_error_codes",
            "Error codes in responses, by API and Kafka error name (NONE included), counted \
             per top-level, topic, partition, group or member code as Kafka's ErrorsPerSec",
            response_errors.clone(),
        );

        let served: Vec<ApiKey> = starling_protocol::versions::all()
            .map(|(key, _)| key)
            .collect();
        let table_len = served
            .iter()
            .map(|&key| key as i16 as usize + 1)
            .max()
            .unwrap_or(0);
        let mut apis: Vec<Option<ApiMetrics>> = vec![None; table_len];
        for key in served {
            let labels = ApiLabels { api: ApiName(key) };
            let none = ErrorLabels {
                api: ApiName(key),
                error: ErrorName(0),
            };
            apis[key as i16 as usize] = Some(ApiMetrics {
                requests: requests.get_or_create_owned(&labels),
                duration: durations.get_or_create_owned(&labels),
                no_error: response_errors.get_or_create_owned(&none),
            });
        }

        let network_received = Counter::default();
        let network_sent = Counter::default();
        let connections_open = Gauge::default();
        let connections_accepted = Counter::default();
        registry.register_with_unit(
            "network_received",
            "Bytes of Kafka request frames read, size prefixes included",
            Unit::Bytes,
            network_received.clone(),
        );
        registry.register_with_unit(
            "network_sent",
            "Bytes of Kafka response frames written, size prefixes included",
            Unit::Bytes,
            network_sent.clone(),
        );
        registry.register(
            "connections_open",
            "Kafka client connections currently open",
            connections_open.clone(),
        );
        registry.register(
            "connections_accepted",
            "Kafka client connections accepted",
            connections_accepted.clone(),
        );

        let tls_handshake_failures = Family::<ListenerLabels, Counter>::default();
        registry.register(
            "tls_handshake_failures",
            "Connections to a TLS listener closed before their TLS session was established (not TLS, handshake failed or timed out)",
            tls_handshake_failures.clone(),
        );
        let sasl_reauthentications = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sasl_reauthentications",
            "SASL re-authentications on authenticated connections (KIP-368), by outcome (succeeded, failed)",
            sasl_reauthentications.clone(),
        );
        let sasl_reauthentication_seconds = request_histogram();
        registry.register(
            "sasl_reauthentication_seconds",
            "Time from a re-authentication's SaslHandshake to its successful end (KIP-368; Kafka's reauthentication-latency)",
            sasl_reauthentication_seconds.clone(),
        );
        let sasl_expired_sessions = Counter::default();
        registry.register(
            "sasl_expired_sessions",
            "Connections closed because their SASL session expired (connections.max.reauth.ms) before they re-authenticated",
            sasl_expired_sessions.clone(),
        );
        let tls_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "tls_reloads",
            "TLS listeners' key and trust stores read again after their files changed, by outcome (reloaded, or failed and kept the old ones)",
            tls_reloads.clone(),
        );

        let rebalances = Family::<RebalanceLabels, Counter>::default();
        let rebalance_duration: HistogramFamily<GroupLabels> =
            Family::new_with_constructor(rebalance_histogram);
        let rebalance_join: HistogramFamily<GroupLabels> =
            Family::new_with_constructor(rebalance_histogram);
        let rebalance_sync: HistogramFamily<GroupLabels> =
            Family::new_with_constructor(rebalance_histogram);
        let partition_handover: HistogramFamily<GroupLabels> =
            Family::new_with_constructor(rebalance_histogram);
        registry.register(
            "group_rebalances",
            "Rebalances that ended, by group and the cause that started them",
            rebalances.clone(),
        );
        registry.register_with_unit(
            "group_rebalance_duration",
            "Rebalances from PreparingRebalance until they ended (Stable, Empty, restarted or \
             deleted), by group",
            Unit::Seconds,
            rebalance_duration.clone(),
        );
        registry.register_with_unit(
            "group_rebalance_join_phase",
            "Join phases (PreparingRebalance until the join barrier completed), by group",
            Unit::Seconds,
            rebalance_join.clone(),
        );
        registry.register_with_unit(
            "group_rebalance_sync_phase",
            "Sync phases (CompletingRebalance until the leader's assignment made the group \
             Stable), by group",
            Unit::Seconds,
            rebalance_sync.clone(),
        );
        registry.register_with_unit(
            "group_partition_handover",
            "Consumer protocol: for each partition that moved, the group-epoch bump until its \
             new owner was given it, by group",
            Unit::Seconds,
            partition_handover.clone(),
        );

        let cleaner = crate::log_cleaner::CleanerMetrics::register(&mut registry);
        let quota_throttle_time =
            Family::<QuotaLabels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        let quota_throttled = Family::<QuotaLabels, Counter>::default();
        registry.register_with_unit(
            "quota_throttle_time",
            "Throttle time given to clients over a quota, by the quota's user and client-id \
             metric tags (empty when the quota does not distinguish them), the ip of a \
             connection-rate quota, and quota type (produce, fetch, request, connection)",
            Unit::Seconds,
            quota_throttle_time.clone(),
        );
        registry.register(
            "quota_throttled_responses",
            "Responses (for connection: connections) throttled for a quota, by user, client-id, \
             ip and quota type",
            quota_throttled.clone(),
        );

        Metrics {
            quota_throttle_time,
            quota_throttled,
            registry,
            apis,
            response_errors,
            network_received,
            network_sent,
            connections_open,
            connections_accepted,
            tls_handshake_failures,
            tls_reloads,
            sasl_reauthentications,
            sasl_reauthentication_seconds,
            sasl_expired_sessions,
            rebalances,
            rebalance_duration,
            rebalance_join,
            rebalance_sync,
            partition_handover,
            log_storage_errors: AtomicU64::new(0),
            log_faults: Mutex::new(BTreeMap::new()),
            any_log_fault: AtomicBool::new(false),
            cleaner,
        }
    }

    /// The metrics of the API with this key, if the broker serves it.
    pub fn api(&self, api_key: i16) -> Option<&ApiMetrics> {
        let index = usize::try_from(api_key).ok()?;
        self.apis.get(index)?.as_ref()
    }

    /// Counts every error code in `response`, an answer of `api` at `version`.
    pub fn count_error_codes<R: ErrorCodes>(&self, api: ApiKey, version: i16, response: &R) {
        let Some(metrics) = self.api(api as i16) else {
            return;
        };
        let mut none = 0u64;
        response.error_codes(version, &mut |code| {
            if code == 0 {
                none += 1;
            } else {
                let labels = ErrorLabels {
                    api: ApiName(api),
                    error: ErrorName(code),
                };
                self.response_errors.get_or_create(&labels).inc();
            }
        });
        if none > 0 {
            metrics.no_error.inc_by(none);
        }
    }

    /// A request frame of `bytes` (size prefix included) was read.
    pub fn received(&self, bytes: usize) {
        self.network_received.inc_by(bytes as u64);
    }

    /// A response frame of `bytes` (size prefix included) was written.
    pub fn sent(&self, bytes: usize) {
        self.network_sent.inc_by(bytes as u64);
    }

    /// A connection was accepted; it counts as open until the guard is dropped.
    pub fn connection_opened(&self) -> ConnectionGuard {
        self.connections_accepted.inc();
        self.connections_open.inc();
        ConnectionGuard {
            open: self.connections_open.clone(),
        }
    }

    /// A client of the TLS listener `listener` was closed before its session was established.
    pub fn tls_handshake_failed(&self, listener: &str) {
        self.tls_handshake_failures
            .get_or_create(&ListenerLabels {
                listener: listener.to_string(),
            })
            .inc();
    }

    /// A re-authentication ended: `succeeded` or `failed`.
    pub fn sasl_reauthenticated(&self, outcome: &'static str) {
        self.sasl_reauthentications
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// A re-authentication completed `took` after its SaslHandshake.
    pub fn sasl_reauthentication_took(&self, took: std::time::Duration) {
        self.sasl_reauthentication_seconds
            .observe(took.as_secs_f64());
    }

    /// A connection was closed because its SASL session had expired.
    pub fn sasl_session_expired(&self) {
        self.sasl_expired_sessions.inc();
    }

    /// A TLS listener's changed stores were taken (`reloaded`) or refused (`failed`).
    pub fn tls_reload(&self, listener: &str, outcome: &'static str) {
        self.tls_reloads
            .get_or_create(&ReloadLabels {
                listener: listener.to_string(),
                outcome,
            })
            .inc();
    }

    /// A rebalance record closed: counts it by cause and observes the phases it went through.
    /// A client over a quota of `quota_type` was throttled for `ms`: the quota's user and
    /// client-id metric tags, or the ip of a connection-rate quota (the others empty).
    pub fn quota_throttled(
        &self,
        user: &str,
        client_id: &str,
        ip: &str,
        quota_type: &'static str,
        ms: i64,
    ) {
        let labels = QuotaLabels {
            user: user.to_string(),
            client_id: client_id.to_string(),
            ip: ip.to_string(),
            quota_type,
        };
        self.quota_throttled.get_or_create(&labels).inc();
        self.quota_throttle_time
            .get_or_create(&labels)
            .inc_by(ms as f64 / 1000.0);
    }

    pub fn rebalance_closed(&self, record: &RebalanceRecord) {
        let cause = RebalanceLabels {
            group: record.group_id.clone(),
            cause: CauseName(record.cause),
        };
        self.rebalances.get_or_create(&cause).inc();
        let group = GroupLabels {
            group: record.group_id.clone(),
        };
        let phases = [
            (&self.rebalance_duration, record.duration_ms()),
            (&self.rebalance_join, record.join_phase_ms()),
            (&self.rebalance_sync, record.sync_phase_ms()),
        ];
        for (family, ms) in phases {
            if let Some(ms) = ms {
                family.get_or_create(&group).observe(seconds(ms));
            }
        }
        for handover in &record.handovers {
            if let Some(assigned) = handover.assigned_ms {
                self.partition_handover
                    .get_or_create(&group)
                    .observe(seconds(assigned - record.started_ms));
            }
        }
    }

    /// Keeps a partition-log append's outcome for the storage metrics and `/healthz`: an I/O
    /// error is counted and leaves the partition degraded until an append to it succeeds.
    /// Returns `result` as it came.
    pub fn log_appended<T>(
        &self,
        topic: &str,
        partition: i32,
        result: Result<T, AppendError>,
    ) -> Result<T, AppendError> {
        match &result {
            Ok(_) => {
                if self.any_log_fault.load(Ordering::Acquire) {
                    let mut faults = self.log_faults.lock();
                    faults.remove(&(topic.to_string(), partition));
                    self.any_log_fault
                        .store(!faults.is_empty(), Ordering::Release);
                }
            }
            Err(AppendError::Io(e)) => {
                self.log_storage_errors.fetch_add(1, Ordering::Relaxed);
                let mut faults = self.log_faults.lock();
                faults.insert((topic.to_string(), partition), e.to_string());
                self.any_log_fault.store(true, Ordering::Release);
            }
            // Refused input, not a storage fault.
            Err(_) => {}
        }
        result
    }

    /// The partitions of `topics` whose last append failed on the storage (a partition deleted
    /// since no longer counts).
    pub fn log_faults(&self, topics: &TopicRegistry) -> Vec<LogFault> {
        if !self.any_log_fault.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.log_faults
            .lock()
            .iter()
            .filter(|((topic, partition), _)| {
                topics
                    .get(topic)
                    .is_some_and(|t| t.partition(*partition).is_some())
            })
            .map(|((topic, partition), error)| LogFault {
                topic: topic.clone(),
                partition: *partition,
                error: error.clone(),
            })
            .collect()
    }

    /// The whole exposition: the metrics kept here, then a snapshot of the topics, of `groups`
    /// and `transactions` (each omitted when `None`, e.g. when its coordinator did not answer
    /// in time) and of the stores' health (`metadata`: the metadata store's, as the
    /// coordinator reports it).
    pub fn encode(
        &self,
        topics: &TopicRegistry,
        groups: Option<Vec<GroupOverview>>,
        transactions: Option<TransactionsOverview>,
        metadata: &StorageHealth,
    ) -> Result<String, fmt::Error> {
        let storage = StorageStats {
            metadata_errors: metadata.storage_errors,
            metadata_degraded: metadata.is_degraded(),
            log_errors: self.log_storage_errors.load(Ordering::Relaxed),
            log_degraded: !self.log_faults(topics).is_empty(),
        };
        let mut snapshot = Snapshot::take(topics, groups.unwrap_or_default(), storage);
        snapshot.transactions = transactions;
        self.encode_snapshot(snapshot)
    }

    fn encode_snapshot(&self, snapshot: Snapshot) -> Result<String, fmt::Error> {
        let mut scrape = Registry::with_prefix(PREFIX);
        scrape.register_collector(Box::new(snapshot));
        let mut out = String::with_capacity(16 * 1024);
        text::encode_registry(&mut out, &self.registry)?;
        text::encode_registry(&mut out, &scrape)?;
        text::encode_eof(&mut out)?;
        Ok(out)
    }
}

fn seconds(ms: Millis) -> f64 {
    ms.max(0) as f64 / 1000.0
}

/// Kafka's transaction states, in the order the metrics list them.
const TXN_STATES: [TxnState; 6] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
];

/// What a scrape reads of the transaction coordinator: how many transactional ids are in each
/// state and how long the oldest open transaction has been running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionsOverview {
    /// Count per state, in [`TXN_STATES`] order.
    pub per_state: [usize; 6],
    /// `now - start` of the oldest transaction that is open or being completed (Ongoing,
    /// PrepareCommit, PrepareAbort); 0 when none is.
    pub oldest_open_age_ms: i64,
}

impl TransactionsOverview {
    pub fn of<'a>(
        values: impl IntoIterator<Item = &'a TransactionValue>,
        now_ms: i64,
    ) -> TransactionsOverview {
        let mut per_state = [0; 6];
        let mut oldest_open_age_ms = 0;
        for v in values {
            if let Some(i) = TXN_STATES.iter().position(|s| *s == v.state) {
                per_state[i] += 1;
            }
            if v.state.has_pending_transaction() {
                oldest_open_age_ms = oldest_open_age_ms.max(now_ms.saturating_sub(v.start_ms));
            }
        }
        TransactionsOverview {
            per_state,
            oldest_open_age_ms,
        }
    }
}

/// What one scrape reads from the topics, the coordinators and the stores.
#[derive(Debug)]
struct Snapshot {
    topics: Vec<TopicStats>,
    groups: Vec<GroupOverview>,
    transactions: Option<TransactionsOverview>,
    storage: StorageStats,
    cluster: ClusterStats,
}

/// This node's share of the cluster: every partition and group when it is alone.
#[derive(Debug, Default)]
struct ClusterStats {
    nodes_live: usize,
    partitions_led: usize,
}

/// Storage errors and degraded state of the two stores.
#[derive(Debug, Default)]
struct StorageStats {
    metadata_errors: u64,
    metadata_degraded: bool,
    log_errors: u64,
    log_degraded: bool,
}

#[derive(Debug)]
struct TopicStats {
    name: String,
    partitions: Vec<PartitionStats>,
}

#[derive(Debug)]
struct PartitionStats {
    index: i32,
    size_bytes: u64,
    log_start_offset: i64,
    log_end_offset: i64,
    /// Idempotent producer ids the partition remembers.
    producers: usize,
    /// Producers with a transaction open in the partition.
    open_transactions: usize,
    produced_bytes: u64,
    fetched_bytes: u64,
}

impl Snapshot {
    fn take(
        registry: &TopicRegistry,
        groups: Vec<GroupOverview>,
        storage: StorageStats,
    ) -> Snapshot {
        use std::sync::atomic::Ordering::Relaxed;
        let topics = registry
            .all()
            .iter()
            .map(|topic| TopicStats {
                name: topic.name.clone(),
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| PartitionStats {
                        index: p.index,
                        size_bytes: p.log.size_bytes(),
                        log_start_offset: p.log.log_start_offset(),
                        log_end_offset: p.log.log_end_offset(),
                        producers: p.log.producer_count(),
                        open_transactions: p.log.open_transaction_count(),
                        produced_bytes: p.produced_bytes.load(Relaxed),
                        fetched_bytes: p.fetched_bytes.load(Relaxed),
                    })
                    .collect(),
            })
            .collect();
        let partitions_led = registry
            .all()
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| p.log.leader_epoch().is_some())
            .count();
        let nodes_live = registry
            .leadership()
            .map_or(1, |leases| leases.view().nodes.len().max(1));
        Snapshot {
            topics,
            groups,
            transactions: None,
            storage,
            cluster: ClusterStats {
                nodes_live,
                partitions_led,
            },
        }
    }

    fn encode_cluster(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        let gauges = [
            (
                "cluster_nodes_live",
                "Nodes live in the cluster as this node last saw it (1 with embedded storage)",
                self.cluster.nodes_live,
            ),
            (
                "partitions_led",
                "Partitions this node leads (all of them with embedded storage)",
                self.cluster.partitions_led,
            ),
            (
                "groups_coordinated",
                "Consumer groups this node coordinates",
                self.groups.len(),
            ),
        ];
        for (name, help, value) in gauges {
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&i64::try_from(value).unwrap_or(i64::MAX))?;
        }
        Ok(())
    }

    fn encode_storage(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        let stores = [
            (
                "metadata",
                self.storage.metadata_errors,
                self.storage.metadata_degraded,
            ),
            ("log", self.storage.log_errors, self.storage.log_degraded),
        ];
        {
            let mut family = encoder.encode_descriptor(
                "storage_errors",
                "Operations that failed on the storage (a full disk, an I/O error), by store: \
                 metadata (topics and group records) or log (partition appends)",
                None,
                MetricType::Counter,
            )?;
            for (store, errors, _) in &stores {
                family
                    .encode_family(&[("store", *store)])?
                    .encode_counter::<NoLabelSet, _, u64>(errors, None)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "storage_degraded",
            "1 while a store is degraded by a storage fault (/healthz says why): the metadata \
             store until a write commits again, the logs while a partition's last append failed",
            None,
            MetricType::Gauge,
        )?;
        for (store, _, degraded) in &stores {
            family
                .encode_family(&[("store", *store)])?
                .encode_gauge(&i64::from(*degraded))?;
        }
        Ok(())
    }

    fn encode_topics(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        {
            let mut family = encoder.encode_descriptor(
                "partitions",
                "Partitions of each topic",
                None,
                MetricType::Gauge,
            )?;
            for topic in &self.topics {
                let labels = [("topic", topic.name.as_str())];
                family
                    .encode_family(&labels)?
                    .encode_gauge(&(topic.partitions.len() as i64))?;
            }
        }
        type PartitionValue = fn(&PartitionStats) -> i64;
        let per_partition: [(&str, &str, Option<Unit>, PartitionValue); 5] = [
            (
                "log_size",
                "Bytes of a partition's segment files",
                Some(Unit::Bytes),
                |p| i64::try_from(p.size_bytes).unwrap_or(i64::MAX),
            ),
            (
                "log_start_offset",
                "First offset still in a partition's log",
                None,
                |p| p.log_start_offset,
            ),
            (
                "log_end_offset",
                "Offset the next record appended to a partition gets (its high watermark)",
                None,
                |p| p.log_end_offset,
            ),
            (
                "producer_state_producers",
                "Idempotent producer ids a partition remembers (epoch and last batches of each), \
                 until producer.id.expiration.ms after their last batch",
                None,
                |p| i64::try_from(p.producers).unwrap_or(i64::MAX),
            ),
            (
                "partition_open_transactions",
                "Transactions open in a partition (each holds its last stable offset at its \
                 first offset until its commit or abort marker is written)",
                None,
                |p| i64::try_from(p.open_transactions).unwrap_or(i64::MAX),
            ),
        ];
        for (name, help, unit, value) in &per_partition {
            let mut family =
                encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for topic in &self.topics {
                for p in &topic.partitions {
                    let labels = ([("topic", topic.name.as_str())], [("partition", p.index)]);
                    family.encode_family(&labels)?.encode_gauge(&value(p))?;
                }
            }
        }
        type TopicTotal = fn(&PartitionStats) -> u64;
        let per_topic: [(&str, &str, TopicTotal); 2] = [
            (
                "produced",
                "Record bytes appended by Produce, by topic",
                |p| p.produced_bytes,
            ),
            ("fetched", "Record bytes returned by Fetch, by topic", |p| {
                p.fetched_bytes
            }),
        ];
        for (name, help, value) in &per_topic {
            let mut family =
                encoder.encode_descriptor(name, help, Some(&Unit::Bytes), MetricType::Counter)?;
            for topic in &self.topics {
                let total: u64 = topic.partitions.iter().map(value).sum();
                let labels = [("topic", topic.name.as_str())];
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&total, None)?;
            }
        }
        Ok(())
    }

    fn encode_groups(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        {
            let mut family = encoder.encode_descriptor(
                "group_state",
                "1 for the state each consumer group is in, 0 for the others",
                None,
                MetricType::Gauge,
            )?;
            for group in &self.groups {
                for state in GroupState::ALL {
                    let labels = [("group", group.group_id.as_str()), ("state", state.name())];
                    family
                        .encode_family(&labels)?
                        .encode_gauge(&i64::from(group.state == state))?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "consumer_group_state",
                "1 for the state each consumer-protocol (KIP-848) group is in, 0 for the others",
                None,
                MetricType::Gauge,
            )?;
            for group in &self.groups {
                let Some(current) = group.consumer_state else {
                    continue;
                };
                for state in ConsumerGroupState::ALL {
                    let labels = [
                        ("group", group.group_id.as_str()),
                        ("state", state.as_str()),
                    ];
                    family
                        .encode_family(&labels)?
                        .encode_gauge(&i64::from(current == state))?;
                }
            }
        }
        type GroupValue = fn(&GroupOverview) -> i64;
        let per_group: [(&str, &str, GroupValue); 2] = [
            ("group_members", "Members of each consumer group", |g| {
                g.members as i64
            }),
            (
                "group_generation",
                "Generation of each consumer group",
                |g| i64::from(g.generation),
            ),
        ];
        for (name, help, value) in &per_group {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for group in &self.groups {
                let labels = [("group", group.group_id.as_str())];
                family.encode_family(&labels)?.encode_gauge(&value(group))?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "group_committed_offset",
                "Offset each consumer group committed, by partition",
                None,
                MetricType::Gauge,
            )?;
            for group in &self.groups {
                for (topic, partition, offset) in &group.offsets {
                    let labels = (
                        [
                            ("group", group.group_id.as_str()),
                            ("topic", topic.as_str()),
                        ],
                        [("partition", *partition)],
                    );
                    family.encode_family(&labels)?.encode_gauge(offset)?;
                }
            }
        }
        let log_ends: HashMap<(&str, i32), i64> = self
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| ((t.name.as_str(), p.index), p.log_end_offset))
            })
            .collect();
        let mut family = encoder.encode_descriptor(
            "group_lag",
            "Records behind the high watermark each consumer group's committed offset is, by \
             partition (never below 0; absent for partitions the broker does not have)",
            None,
            MetricType::Gauge,
        )?;
        for group in &self.groups {
            for (topic, partition, offset) in &group.offsets {
                let Some(&end) = log_ends.get(&(topic.as_str(), *partition)) else {
                    continue;
                };
                let labels = (
                    [
                        ("group", group.group_id.as_str()),
                        ("topic", topic.as_str()),
                    ],
                    [("partition", *partition)],
                );
                family
                    .encode_family(&labels)?
                    .encode_gauge(&lag(end, *offset))?;
            }
        }
        Ok(())
    }
}

impl Snapshot {
    fn encode_transactions(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        let Some(txns) = &self.transactions else {
            return Ok(());
        };
        {
            let mut family = encoder.encode_descriptor(
                "transactions",
                "Transactional ids the transaction coordinator holds, by the state of their \
                 current or last transaction",
                None,
                MetricType::Gauge,
            )?;
            for (state, count) in TXN_STATES.iter().zip(txns.per_state) {
                family
                    .encode_family(&[("state", state.name())])?
                    .encode_gauge(&i64::try_from(count).unwrap_or(i64::MAX))?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "transaction_open_age_seconds_max",
            "How long the oldest transaction that is open or being completed has been running \
             (0 when none is)",
            None,
            MetricType::Gauge,
        )?;
        family.encode_gauge(&(txns.oldest_open_age_ms.max(0) as f64 / 1000.0))?;
        Ok(())
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        self.encode_topics(&mut encoder)?;
        self.encode_groups(&mut encoder)?;
        self.encode_transactions(&mut encoder)?;
        self.encode_cluster(&mut encoder)?;
        self.encode_storage(&mut encoder)
    }
}

/// How far `committed` is behind `log_end`, never below 0.
pub fn lag(log_end: i64, committed: i64) -> i64 {
    log_end.saturating_sub(committed).max(0)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::ProduceResponse;
    use starling_group::RebalanceOutcome;

    use super::*;

    fn rebalance(group: &str, cause: RebalanceCause, outcome: RebalanceOutcome) -> RebalanceRecord {
        RebalanceRecord {
            group_id: group.into(),
            generation: 2,
            cause,
            trigger_member: None,
            client_reason: None,
            protocol_type: "consumer".into(),
            protocol: Some("range".into()),
            started_ms: 1_000,
            join_completed_ms: Some(1_250),
            ended_ms: Some(1_300),
            outcome,
            members_before: Vec::new(),
            members: Vec::new(),
            joined: Vec::new(),
            left: Vec::new(),
            assignment: None,
            handovers: Vec::new(),
            consumer_protocol: false,
            reconciliation: Vec::new(),
        }
    }

    fn snapshot() -> Snapshot {
        let partition = |index, log_end_offset, produced_bytes| PartitionStats {
            index,
            size_bytes: 4096,
            log_start_offset: 0,
            log_end_offset,
            producers: index as usize * 3,
            open_transactions: index as usize,
            produced_bytes,
            fetched_bytes: 10,
        };
        Snapshot {
            topics: vec![TopicStats {
                name: "orders".into(),
                partitions: vec![partition(0, 10, 100), partition(1, 5, 50)],
            }],
            groups: vec![GroupOverview {
                group_id: "billing".into(),
                state: GroupState::Stable,
                consumer_state: None,
                protocol_type: "consumer".into(),
                protocol: Some("range".into()),
                generation: 3,
                members: 2,
                offsets: vec![
                    ("gone".into(), 0, 7),
                    ("orders".into(), 0, 4),
                    ("orders".into(), 1, 9),
                ],
                last_rebalance: None,
            }],
            transactions: None,
            storage: StorageStats {
                metadata_errors: 3,
                metadata_degraded: true,
                log_errors: 0,
                log_degraded: false,
            },
            cluster: ClusterStats {
                nodes_live: 3,
                partitions_led: 1,
            },
        }
    }

    #[test]
    fn the_exposition_has_this_nodes_share_of_the_cluster() {
        let text = Metrics::new().encode_snapshot(snapshot()).unwrap();
        for line in [
            "starling_cluster_nodes_live 3",
            "starling_partitions_led 1",
            "starling_groups_coordinated 1",
        ] {
            assert!(has_line(&text, line), "{line} missing:\n{text}");
        }
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn the_exposition_has_requests_errors_and_rebalances() {
        let metrics = Metrics::new();
        let produce =
            ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
                .with_partition_responses(vec![
                    PartitionProduceResponse::default(),
                    PartitionProduceResponse::default().with_error_code(3),
                    PartitionProduceResponse::default(),
                ])]);
        metrics.count_error_codes(ApiKey::Produce, 9, &produce);
        let join = metrics.api(ApiKey::JoinGroup as i16).unwrap();
        join.request_answered();
        join.observe_latency(Duration::from_millis(3));
        join.request_answered();
        join.observe_latency(Duration::from_secs(2));
        metrics.received(100);
        metrics.sent(40);
        let open = metrics.connection_opened();
        metrics.rebalance_closed(&rebalance(
            "billing",
            RebalanceCause::MemberJoined,
            RebalanceOutcome::Stable,
        ));
        metrics.rebalance_closed(&rebalance(
            "billing",
            RebalanceCause::MemberJoined,
            RebalanceOutcome::Restarted,
        ));

        let text = metrics.encode_snapshot(snapshot()).unwrap();
        for line in [
            r#"starling_requests_total{api="JoinGroup"} 2"#,
            r#"starling_requests_total{api="Produce"} 0"#,
            r#"starling_request_duration_seconds_count{api="JoinGroup"} 2"#,
            r#"starling_request_duration_seconds_bucket{le="0.005",api="JoinGroup"} 1"#,
            r#"starling_response_error_codes_total{api="Produce",error="NONE"} 2"#,
            r#"starling_response_error_codes_total{api="Produce",error="UNKNOWN_TOPIC_OR_PARTITION"} 1"#,
            r#"starling_response_error_codes_total{api="Fetch",error="NONE"} 0"#,
            "starling_network_received_bytes_total 100",
            "starling_network_sent_bytes_total 40",
            "starling_connections_open 1",
            "starling_connections_accepted_total 1",
            r#"starling_group_rebalances_total{group="billing",cause="member_joined"} 2"#,
            r#"starling_group_rebalance_duration_seconds_count{group="billing"} 2"#,
            r#"starling_group_rebalance_join_phase_seconds_count{group="billing"} 2"#,
            // Only the rebalance that reached Stable had a sync phase.
            r#"starling_group_rebalance_sync_phase_seconds_count{group="billing"} 1"#,
            r#"starling_group_rebalance_sync_phase_seconds_sum{group="billing"} 0.05"#,
        ] {
            assert!(has_line(&text, line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1);
        drop(open);
        let text = metrics.encode_snapshot(snapshot()).unwrap();
        assert!(has_line(&text, "starling_connections_open 0"), "{text}");
    }

    #[test]
    fn consumer_protocol_groups_show_their_own_state_and_each_handover() {
        let metrics = Metrics::new();
        let handover = |partition, assigned_ms| starling_group::PartitionHandover {
            topic: "orders".into(),
            partition,
            from: "m1".into(),
            to: "m2".into(),
            revoke_asked_ms: Some(1_010),
            released_ms: Some(1_100),
            assigned_ms,
        };
        metrics.rebalance_closed(&RebalanceRecord {
            join_completed_ms: None,
            handovers: vec![handover(0, Some(1_300)), handover(1, None)],
            ..rebalance(
                "billing",
                RebalanceCause::MemberJoined,
                RebalanceOutcome::Stable,
            )
        });
        let mut snap = snapshot();
        snap.groups[0].consumer_state = Some(ConsumerGroupState::Reconciling);
        snap.groups[0].state = GroupState::CompletingRebalance;
        let text = metrics.encode_snapshot(snap).unwrap();
        for line in [
            r#"starling_consumer_group_state{group="billing",state="Reconciling"} 1"#,
            r#"starling_consumer_group_state{group="billing",state="Assigning"} 0"#,
            r#"starling_consumer_group_state{group="billing",state="Stable"} 0"#,
            r#"starling_group_state{group="billing",state="CompletingRebalance"} 1"#,
            // One hand-over had reached its new owner: 300 ms after the bump.
            r#"starling_group_partition_handover_seconds_count{group="billing"} 1"#,
            r#"starling_group_partition_handover_seconds_sum{group="billing"} 0.3"#,
        ] {
            assert!(has_line(&text, line), "missing {line:?} in\n{text}");
        }
        // A classic group has no consumer-protocol state.
        let text = metrics.encode_snapshot(snapshot()).unwrap();
        assert!(!text.contains("starling_consumer_group_state{"), "{text}");
    }

    #[test]
    fn the_snapshot_has_topics_and_groups_with_lag() {
        let text = Metrics::new().encode_snapshot(snapshot()).unwrap();
        for line in [
            r#"starling_partitions{topic="orders"} 2"#,
            r#"starling_log_size_bytes{topic="orders",partition="1"} 4096"#,
            r#"starling_log_start_offset{topic="orders",partition="0"} 0"#,
            r#"starling_log_end_offset{topic="orders",partition="0"} 10"#,
            r#"starling_producer_state_producers{topic="orders",partition="0"} 0"#,
            r#"starling_producer_state_producers{topic="orders",partition="1"} 3"#,
            r#"starling_partition_open_transactions{topic="orders",partition="0"} 0"#,
            r#"starling_partition_open_transactions{topic="orders",partition="1"} 1"#,
            r#"starling_produced_bytes_total{topic="orders"} 150"#,
            r#"starling_fetched_bytes_total{topic="orders"} 20"#,
            r#"starling_group_state{group="billing",state="Stable"} 1"#,
            r#"starling_group_state{group="billing",state="Empty"} 0"#,
            r#"starling_group_members{group="billing"} 2"#,
            r#"starling_group_generation{group="billing"} 3"#,
            r#"starling_group_committed_offset{group="billing",topic="orders",partition="0"} 4"#,
            r#"starling_group_committed_offset{group="billing",topic="gone",partition="0"} 7"#,
            r#"starling_group_lag{group="billing",topic="orders",partition="0"} 6"#,
            // Committed past the end (the log was truncated): no negative lag.
            r#"starling_group_lag{group="billing",topic="orders",partition="1"} 0"#,
            r#"starling_storage_errors_total{store="metadata"} 3"#,
            r#"starling_storage_errors_total{store="log"} 0"#,
            r#"starling_storage_degraded{store="metadata"} 1"#,
            r#"starling_storage_degraded{store="log"} 0"#,
        ] {
            assert!(has_line(&text, line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains(r#"starling_group_lag{group="billing",topic="gone""#));
        // No transaction overview (the coordinator did not answer): no transaction metrics.
        assert!(!text.contains("starling_transactions{"), "{text}");
        assert!(!text.contains("starling_transaction_open_age"), "{text}");
    }

    fn txn(state: TxnState, start_ms: i64) -> TransactionValue {
        TransactionValue {
            producer_id: 1,
            last_producer_id: -1,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state,
            partitions: Default::default(),
            groups: Default::default(),
            start_ms,
            last_update_ms: start_ms,
        }
    }

    #[test]
    fn transactional_ids_are_counted_per_state_and_the_oldest_open_one_is_timed() {
        let values = [
            txn(TxnState::Ongoing, 7_000),
            txn(TxnState::Ongoing, 9_500),
            txn(TxnState::PrepareCommit, 8_000),
            // Completed long ago: not open, so not the oldest open one.
            txn(TxnState::CompleteCommit, 1_000),
            txn(TxnState::Empty, -1),
        ];
        let overview = TransactionsOverview::of(&values, 10_000);
        assert_eq!(overview.per_state, [1, 2, 1, 0, 1, 0]);
        assert_eq!(overview.oldest_open_age_ms, 3_000);
        let mut snap = snapshot();
        snap.transactions = Some(overview);
        let text = Metrics::new().encode_snapshot(snap).unwrap();
        for line in [
            r#"starling_transactions{state="Empty"} 1"#,
            r#"starling_transactions{state="Ongoing"} 2"#,
            r#"starling_transactions{state="PrepareCommit"} 1"#,
            r#"starling_transactions{state="PrepareAbort"} 0"#,
            r#"starling_transactions{state="CompleteCommit"} 1"#,
            r#"starling_transactions{state="CompleteAbort"} 0"#,
            "starling_transaction_open_age_seconds_max 3.0",
        ] {
            assert!(has_line(&text, line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn with_no_open_transaction_the_oldest_age_is_zero() {
        let values = [
            txn(TxnState::CompleteAbort, 1_000),
            txn(TxnState::Empty, -1),
        ];
        let overview = TransactionsOverview::of(&values, 10_000);
        assert_eq!(overview.oldest_open_age_ms, 0);
        assert_eq!(TransactionsOverview::of([], 10_000).per_state, [0; 6]);
        let mut snap = snapshot();
        snap.transactions = Some(overview);
        let text = Metrics::new().encode_snapshot(snap).unwrap();
        assert!(
            has_line(&text, "starling_transaction_open_age_seconds_max 0.0"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn only_storage_failures_of_appends_count_and_a_partition_is_degraded_until_an_append_succeeds(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::BrokerConfig {
            data_dir: dir.path().to_path_buf(),
            ..crate::config::BrokerConfig::default()
        };
        let store = starling_meta::MetadataStore::open(&dir.path().join("meta.redb")).unwrap();
        let topics =
            TopicRegistry::open(&config, std::sync::Arc::new(store).into(), Vec::new()).unwrap();
        topics
            .create("t", 2, Default::default(), true)
            .await
            .unwrap();
        let metrics = Metrics::new();
        let io = || Err::<(), _>(AppendError::Io(std::io::Error::other("disk gone")));
        let scrape = |metrics: &Metrics| {
            metrics
                .encode(&topics, None, None, &StorageHealth::default())
                .unwrap()
        };

        assert!(metrics
            .log_appended("t", 0, Err::<(), _>(AppendError::Corrupt("bad crc".into())))
            .is_err());
        assert!(metrics.log_faults(&topics).is_empty());
        assert!(metrics.log_appended("t", 0, io()).is_err());
        assert!(metrics.log_appended("t", 1, io()).is_err());
        // A partition that no longer exists is no fault of the broker's.
        assert!(metrics.log_appended("gone", 0, io()).is_err());
        let faulted: Vec<i32> = metrics
            .log_faults(&topics)
            .iter()
            .map(|f| f.partition)
            .collect();
        assert_eq!(faulted, vec![0, 1]);
        let text = scrape(&metrics);
        assert!(
            has_line(&text, r#"starling_storage_errors_total{store="log"} 3"#),
            "{text}"
        );
        assert!(
            has_line(&text, r#"starling_storage_degraded{store="log"} 1"#),
            "{text}"
        );

        metrics.log_appended("t", 0, Ok(())).unwrap();
        assert_eq!(metrics.log_faults(&topics)[0].partition, 1);
        metrics.log_appended("t", 1, Ok(())).unwrap();
        assert!(metrics.log_faults(&topics).is_empty());
        let text = scrape(&metrics);
        assert!(
            has_line(&text, r#"starling_storage_degraded{store="log"} 0"#),
            "{text}"
        );
    }

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(17), "INVALID_TOPIC_EXCEPTION");
        assert_eq!(error_name(79), "MEMBER_ID_REQUIRED");
        assert_eq!(error_name(100), "UNKNOWN_TOPIC_ID");
        assert_eq!(error_name(9999), "UNKNOWN_CODE_9999");
    }

    #[test]
    fn lag_is_never_negative() {
        assert_eq!(lag(10, 4), 6);
        assert_eq!(lag(10, 10), 0);
        assert_eq!(lag(3, 10), 0);
    }

    #[test]
    fn every_served_api_is_pre_resolved() {
        let metrics = Metrics::new();
        for (key, _) in starling_protocol::versions::all() {
            assert!(metrics.api(key as i16).is_some(), "{key:?}");
        }
        assert!(metrics.api(ApiKey::ExpireDelegationToken as i16).is_none());
        assert!(metrics.api(-1).is_none());
        assert!(metrics.api(i16::MAX).is_none());
    }
}
