//! Client quotas (KIP-13, KIP-55, KIP-124, KIP-219, KIP-546): the quotas set on `user`,
//! `client-id` and `ip` entities through AlterClientQuotas, persisted in the metadata store,
//! described through DescribeClientQuotas, and enforced on every request.
//!
//! **Storage and validation** follow Kafka's `ClientQuotaControlManager` (alter) and
//! `ClientQuotasImage` (describe), with their error messages: user and client-id entities take
//! `producer_byte_rate`, `consumer_byte_rate` (whole numbers), `request_percentage` and
//! `controller_mutation_rate`; an ip entity takes `connection_creation_rate` (a whole number).
//! Kafka also takes a host name for an ip entity (resolving
//! it); Starling takes IP addresses only, so an admin request never waits on a name lookup.
//!
//! **Enforcement** follows Kafka's `ClientQuotaManager`: for a request of (user, client-id), each
//! quota type takes the most specific quota set, in Kafka's order
//! `/users/<user>/clients/<client-id>`, `/users/<user>/clients/<default>`, `/users/<user>`,
//! `/users/<default>/clients/<client-id>`, `/users/<default>/clients/<default>`,
//! `/users/<default>`, `/clients/<client-id>`, `/clients/<default>`. Clients that match a quota
//! at the same (user, client-id) metric tags share one [`Rate`] (a quota on a user is shared by
//! all of its clients; a default client-id quota applies to each client-id apart). A rate is
//! Kafka's sampled rate: `quota.window.num` windows of `quota.window.size.seconds`; when a
//! recorded value takes it over the bound, the throttle time is
//! `(rate - bound) / bound * window`, the time until the rate is back at the bound. Without
//! SASL every client is the anonymous principal, user `ANONYMOUS` ([`ANONYMOUS`]); an
//! authenticated connection passes its principal's name instead ([`Principal`]).
//!
//! The request path: Produce records its request size against the produce quota, Fetch its
//! response size against the fetch quota (over quota, Kafka answers an empty response and takes
//! the bytes back), every request its handling time against the request quota (as a percentage
//! of one thread, capped at one window; time spent waiting — a fetch's long poll, a request
//! held by the group coordinator — is not handling time). The largest throttle time goes into
//! the response's `throttle_time_ms` and the connection reads nothing more from the client for
//! that long after sending it (KIP-219; for Produce before v6 and Fetch before v8, whose clients
//! do not back off, the response itself is delayed instead). A new connection over its ip's `connection_creation_rate` (the
//! ip's quota, else the default ip's, per address) is held for its throttle time and closed
//! unserved, as Kafka's `ConnectionQuotas` (KIP-612).
//!
//! **Topic mutations** (KIP-599): `controller_mutation_rate` bounds the partitions a client
//! creates or deletes per second, through CreateTopics, CreatePartitions and DeleteTopics. It is
//! a token bucket ([`TokenBucket`]) rather than a sampled rate, so bursts up to
//! `rate x quota.window.num x quota.window.size.seconds` pass: a mutation is admitted while
//! the bucket is not in debt, and takes its partitions from it, debt allowed. From CreateTopics
//! v6, CreatePartitions v3 and DeleteTopics v5 a topic met with the bucket in debt is refused
//! with THROTTLING_QUOTA_EXCEEDED ([`MutationQuota`] strict); older versions, whose clients
//! cannot take that error, are always served. Either way the response's throttle time is how
//! long the debt takes to repay.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use starling_meta::backend::MetadataBackend;
use starling_meta::{ClientQuotaRecord, MetaError};

use crate::metrics::Metrics;
use crate::storage::MetadataStorage;

pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// The user every connection is without authentication (Kafka's `KafkaPrincipal.ANONYMOUS`).
pub const ANONYMOUS: &str = "ANONYMOUS";

/// DescribeClientQuotas match types.
pub const MATCH_EXACT: i8 = 0;
pub const MATCH_DEFAULT: i8 = 1;
pub const MATCH_SPECIFIED: i8 = 2;

/// An entity: each of its types mapped to a name, `None` for the type's default entity.
pub type Entity = BTreeMap<String, Option<String>>;
/// The quotas set on an entity, by key.
pub type Values = BTreeMap<String, f64>;
/// An AlterClientQuotas result per entity: `Err` holds Kafka's INVALID_REQUEST message.
pub type AlterResults = Vec<(Entity, Result<(), String>)>;

/// Who a connection is, for quotas. Today always [`Principal::anonymous`]; SASL will give a
/// connection its authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
}

impl Principal {
    pub fn anonymous() -> Principal {
        Principal {
            user: ANONYMOUS.to_string(),
        }
    }
}

/// How a quota key's values are checked (Kafka's config types).
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Long,
    Int,
    Double,
}

fn key_type(entity: &Entity, key: &str) -> Option<KeyType> {
    if entity.contains_key(IP) {
        return (key == CONNECTION_CREATION_RATE).then_some(KeyType::Int);
    }
    match key {
        PRODUCER_BYTE_RATE | CONSUMER_BYTE_RATE => Some(KeyType::Long),
        REQUEST_PERCENTAGE | CONTROLLER_MUTATION_RATE => Some(KeyType::Double),
        _ => None,
    }
}

/// An entity as Kafka's `ClientQuotaEntity.toString` prints it.
pub fn entity_string(entity: &Entity) -> String {
    let entries: Vec<String> = entity
        .iter()
        .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("null")))
        .collect();
    format!("ClientQuotaEntity(entries={{{}}})", entries.join(", "))
}

/// Kafka's checks of an entity's types and names (`validateEntity`, `configKeysForEntityType`).
fn validate_entity(entity: &Entity) -> Result<(), String> {
    if entity.is_empty() {
        return Err("Invalid empty client quota entity".into());
    }
    for (entity_type, name) in entity {
        if ![USER, CLIENT_ID, IP].contains(&entity_type.as_str()) {
            return Err(format!("Unhandled client quota entity type: {entity_type}"));
        }
        if name.as_deref() == Some("") {
            return Err(format!("Empty {entity_type} not supported"));
        }
    }
    if let Some(ip) = entity.get(IP) {
        if entity.contains_key(USER) || entity.contains_key(CLIENT_ID) {
            // Kafka's message, its missing space included.
            return Err(
                "Invalid quota entity combination, IP entity shouldnot be combined with User or \
                 ClientId"
                    .into(),
            );
        }
        if let Some(ip) = ip {
            if !valid_ip_entity(ip) {
                return Err(format!("{ip} is not a valid IP or resolvable host."));
            }
        }
    }
    Ok(())
}

/// Kafka also accepts a host name `InetAddress.getByName` resolves; Starling takes IP
/// addresses only, so an admin request never waits on a name lookup.
fn valid_ip_entity(ip: &str) -> bool {
    ip.parse::<std::net::IpAddr>().is_ok()
}

/// Kafka's `validateQuotaKeyValue`.
fn validate_value(entity: &Entity, key: &str, value: f64) -> Result<(), String> {
    let Some(kind) = key_type(entity, key) else {
        return Err(format!("Invalid configuration key {key}"));
    };
    // Kafka's comparisons let NaN through; Starling refuses it, as no rate can be held to it.
    if value <= 0.0 || value.is_nan() {
        return Err(format!("Quota {key} must be greater than 0"));
    }
    let too_large = match kind {
        KeyType::Double => return Ok(()),
        KeyType::Int => (value > f64::from(i32::MAX)).then_some("an INT"),
        KeyType::Long => (value > i64::MAX as f64).then_some("a LONG"),
    };
    if let Some(what) = too_large {
        return Err(format!("Proposed value for {key} is too large for {what}."));
    }
    if (value % 1.0).abs() > 1e-6 {
        return Err(format!("{key} cannot be a fractional value."));
    }
    Ok(())
}

/// One entry of an AlterClientQuotas request: the entity and its ops, `None` removing a key.
#[derive(Debug, Clone)]
pub struct Alteration {
    pub entity: Entity,
    pub ops: Vec<(String, Option<f64>)>,
}

/// A DescribeClientQuotas filter component.
#[derive(Debug, Clone)]
pub struct Component {
    pub entity_type: String,
    pub match_type: i8,
    pub name: Option<String>,
}

/// Why a describe was refused: Kafka answers the whole request with this error and message.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeError {
    pub unsupported: bool,
    pub message: String,
}

fn invalid(message: impl Into<String>) -> DescribeError {
    DescribeError {
        unsupported: false,
        message: message.into(),
    }
}

/// The entities matching a filter, as Kafka's `ClientQuotasImage.describe`.
pub fn describe(
    quotas: &BTreeMap<Entity, Values>,
    components: &[Component],
    strict: bool,
) -> Result<Vec<(Entity, Values)>, DescribeError> {
    let mut exact: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut typed: Vec<&str> = Vec::new();
    for c in components {
        let t = c.entity_type.as_str();
        if t.is_empty() {
            return Err(invalid("Invalid empty entity type."));
        }
        if exact.contains_key(t) || typed.contains(&t) {
            return Err(invalid(format!(
                "Entity type {t} cannot appear more than once in the filter."
            )));
        }
        if ![IP, USER, CLIENT_ID].contains(&t) {
            return Err(DescribeError {
                unsupported: true,
                message: format!("Unsupported entity type {t}"),
            });
        }
        match c.match_type {
            MATCH_EXACT => match &c.name {
                None => {
                    return Err(invalid(
                        "Request specified MATCH_TYPE_EXACT, but set match string to null.",
                    ))
                }
                Some(name) => {
                    exact.insert(t, Some(name.as_str()));
                }
            },
            MATCH_DEFAULT => {
                if c.name.is_some() {
                    return Err(invalid(
                        "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.",
                    ));
                }
                exact.insert(t, None);
            }
            MATCH_SPECIFIED => {
                if c.name.is_some() {
                    return Err(invalid(
                        "Request specified MATCH_TYPE_SPECIFIED, but also specified a match \
                         string.",
                    ));
                }
                typed.push(t);
            }
            other => return Err(invalid(format!("Unknown match type {other}"))),
        }
    }
    let has = |t: &str| exact.contains_key(t) || typed.contains(&t);
    if has(IP) && (has(USER) || has(CLIENT_ID)) {
        return Err(invalid(
            "Invalid entity filter component combination. IP filter component should not be \
             used with user or clientId filter component.",
        ));
    }
    if exact.is_empty() && typed.is_empty() && strict {
        return Ok(Vec::new());
    }
    Ok(quotas
        .iter()
        .filter(|(entity, _)| {
            (!strict || entity.len() == exact.len() + typed.len())
                && exact
                    .iter()
                    .all(|(t, name)| entity.get(*t).is_some_and(|n| n.as_deref() == *name))
                && typed.iter().all(|t| entity.contains_key(*t))
        })
        .map(|(e, v)| (e.clone(), v.clone()))
        .collect())
}

/// Applies alterations to `quotas` as Kafka's `ClientQuotaControlManager.alterClientQuotas`:
/// one result per distinct entity, in request order. Returns the results and the entities
/// whose quotas changed (with their new quotas, empty when all were removed).
pub fn alter(
    quotas: &mut BTreeMap<Entity, Values>,
    alterations: &[Alteration],
) -> (AlterResults, Vec<(Entity, Values)>) {
    let mut results: AlterResults = Vec::new();
    let mut changed: BTreeMap<Entity, Values> = BTreeMap::new();
    for a in alterations {
        let mut ops: BTreeMap<&str, Option<f64>> = BTreeMap::new();
        let mut duplicate_key = false;
        for (key, value) in &a.ops {
            if ops.contains_key(key.as_str()) {
                duplicate_key = true;
            } else {
                ops.insert(key.as_str(), *value);
            }
        }
        let ignored = || {
            Err(format!(
                "Ignoring duplicate entity {}",
                entity_string(&a.entity)
            ))
        };
        // An entity named again: Kafka answers it with this error, though the changes of its
        // first entry were made.
        if let Some(i) = results.iter().position(|(e, _)| *e == a.entity) {
            results[i].1 = ignored();
            continue;
        }
        // A key named twice: Kafka notes "Duplicate quota key ...", then finds the entity
        // already answered, and the duplicate-entity message is the one the client gets.
        if duplicate_key {
            results.push((a.entity.clone(), ignored()));
            continue;
        }
        let result = alter_entity(quotas, &a.entity, &ops, &mut changed);
        results.push((a.entity.clone(), result));
    }
    (results, changed.into_iter().collect())
}

fn alter_entity(
    quotas: &mut BTreeMap<Entity, Values>,
    entity: &Entity,
    ops: &BTreeMap<&str, Option<f64>>,
    changed: &mut BTreeMap<Entity, Values>,
) -> Result<(), String> {
    validate_entity(entity)?;
    for (key, value) in ops {
        if let Some(v) = value {
            validate_value(entity, key, *v)?;
        }
    }
    let mut values = quotas.get(entity).cloned().unwrap_or_default();
    let before = values.clone();
    for (key, value) in ops {
        match value {
            Some(v) => {
                values.insert(key.to_string(), *v);
            }
            None => {
                values.remove(*key);
            }
        }
    }
    if values != before {
        if values.is_empty() {
            quotas.remove(entity);
        } else {
            quotas.insert(entity.clone(), values.clone());
        }
        changed.insert(entity.clone(), values);
    }
    Ok(())
}

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaType {
    Produce,
    Fetch,
    Request,
    /// New connections from one IP address.
    Connection,
    /// Partitions created or deleted (KIP-599).
    ControllerMutation,
}

impl QuotaType {
    fn key(self) -> &'static str {
        match self {
            QuotaType::Produce => PRODUCER_BYTE_RATE,
            QuotaType::Fetch => CONSUMER_BYTE_RATE,
            QuotaType::Request => REQUEST_PERCENTAGE,
            QuotaType::Connection => CONNECTION_CREATION_RATE,
            QuotaType::ControllerMutation => CONTROLLER_MUTATION_RATE,
        }
    }

    /// The label value in metrics, as Kafka's quota type names.
    pub fn name(self) -> &'static str {
        match self {
            QuotaType::Produce => "produce",
            QuotaType::Fetch => "fetch",
            QuotaType::Request => "request",
            QuotaType::Connection => "connection",
            QuotaType::ControllerMutation => "controller_mutation",
        }
    }
}

/// The quota a (user, client-id) is under for one quota type, and the (user, client-id)
/// metric tags of the rate it shares (`""` for a tag the quota does not distinguish), as
/// Kafka's `DefaultQuotaCallback`.
pub fn resolve(
    quotas: &BTreeMap<Entity, Values>,
    kind: QuotaType,
    user: &str,
    client_id: &str,
) -> Option<(f64, (String, String))> {
    let u = Some(user.to_string());
    let c = Some(client_id.to_string());
    let both = (user.to_string(), client_id.to_string());
    let user_only = (user.to_string(), String::new());
    let client_only = (String::new(), client_id.to_string());
    type Level<'a> = (Vec<(&'a str, &'a Option<String>)>, &'a (String, String));
    let levels: [Level; 8] = [
        (vec![(USER, &u), (CLIENT_ID, &c)], &both),
        (vec![(USER, &u), (CLIENT_ID, &None)], &both),
        (vec![(USER, &u)], &user_only),
        (vec![(USER, &None), (CLIENT_ID, &c)], &both),
        (vec![(USER, &None), (CLIENT_ID, &None)], &both),
        (vec![(USER, &None)], &user_only),
        (vec![(CLIENT_ID, &c)], &client_only),
        (vec![(CLIENT_ID, &None)], &client_only),
    ];
    levels.iter().find_map(|(entity, tags)| {
        let entity: Entity = entity
            .iter()
            .map(|(t, n)| (t.to_string(), (*n).clone()))
            .collect();
        let bound = *quotas.get(&entity)?.get(kind.key())?;
        Some((bound, (*tags).clone()))
    })
}

/// One window of a [`Rate`].
#[derive(Debug, Clone)]
struct Sample {
    start_ms: i64,
    value: f64,
}

/// Kafka's sampled `Rate`: the values recorded over the last `windows` windows of `window_ms`,
/// per second of the time they span (at least `windows - 1` whole windows, so a first burst is
/// spread over the full span rather than measured against a few milliseconds).
#[derive(Debug, Clone)]
pub struct Rate {
    /// When a value was last recorded.
    last_ms: i64,
    samples: Vec<Sample>,
    current: usize,
    windows: usize,
    window_ms: i64,
}

impl Rate {
    pub fn new(windows: usize, window_ms: i64) -> Rate {
        Rate {
            last_ms: 0,
            samples: Vec::new(),
            current: 0,
            windows: windows.max(1),
            window_ms: window_ms.max(1),
        }
    }

    pub fn record(&mut self, value: f64, now_ms: i64) {
        self.last_ms = now_ms;
        if self.samples.is_empty() {
            self.samples.push(Sample {
                start_ms: now_ms,
                value: 0.0,
            });
        }
        if now_ms - self.samples[self.current].start_ms >= self.window_ms {
            self.current = (self.current + 1) % self.windows;
            let fresh = Sample {
                start_ms: now_ms,
                value: 0.0,
            };
            if self.current >= self.samples.len() {
                self.samples.push(fresh);
            } else {
                self.samples[self.current] = fresh;
            }
        }
        self.samples[self.current].value += value;
    }

    /// Resets the windows that ended more than `windows` windows ago.
    fn purge(&mut self, now_ms: i64) {
        let expiry = self.windows as i64 * self.window_ms;
        for s in &mut self.samples {
            if now_ms - s.start_ms >= expiry {
                *s = Sample {
                    start_ms: now_ms,
                    value: 0.0,
                };
            }
        }
    }

    /// The time the rate is measured over, in ms (Kafka's `Rate.windowSize`).
    pub fn window_size(&mut self, now_ms: i64) -> i64 {
        self.purge(now_ms);
        let oldest = self
            .samples
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed = now_ms - oldest;
        let full = elapsed / self.window_ms;
        let min_full = self.windows as i64 - 1;
        if full < min_full {
            elapsed += (min_full - full) * self.window_ms;
        }
        elapsed
    }

    /// Recorded values per second.
    pub fn measure(&mut self, now_ms: i64) -> f64 {
        let window = self.window_size(now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (window as f64 / 1000.0)
    }

    /// Records `value` and returns how long the client must wait for the rate to come back to
    /// `bound` (0 if it is within it): Kafka's `(rate - bound) / bound * window`.
    pub fn record_and_throttle_ms(&mut self, value: f64, bound: f64, now_ms: i64) -> i64 {
        self.record(value, now_ms);
        let rate = self.measure(now_ms);
        if rate <= bound {
            return 0;
        }
        let window = self.window_size(now_ms) as f64;
        ((rate - bound) / bound * window).round() as i64
    }
}

/// Kafka's `TokenBucket` for the controller mutation quota: tokens accrue at the quota's rate
/// up to a burst, and a recording takes its value out, going into debt if it must.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last_ms: i64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: f64, now_ms: i64) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            last_ms: now_ms,
        }
    }

    /// Adds the tokens accrued at `rate` (per second) since the last look, up to `burst`; returns
    /// the tokens now held (negative: in debt).
    pub fn refill(&mut self, rate: f64, burst: f64, now_ms: i64) -> f64 {
        let elapsed = (now_ms - self.last_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + rate * elapsed).min(burst);
        self.last_ms = now_ms.max(self.last_ms);
        self.tokens
    }

    pub fn take(&mut self, value: f64) {
        self.tokens -= value;
    }

    /// How long (ms) until the debt is repaid at `rate`: Kafka's `-tokens / quota * 1000`.
    pub fn debt_ms(&self, rate: f64) -> i64 {
        if self.tokens >= 0.0 {
            0
        } else {
            (-self.tokens / rate * 1000.0).round() as i64
        }
    }
}

/// The clients' rates, by quota type and metric tags (user, client-id). A rate idle for all of
/// its windows measures nothing and is dropped when the map grows (as Kafka expires idle quota
/// sensors), so clients that come and go under a default quota do not accumulate.
struct Rates {
    by_tags: HashMap<(QuotaType, String, String), Rate>,
    /// The controller mutation token buckets, by metric tags (user, client-id).
    buckets: HashMap<(String, String), TokenBucket>,
    /// The size at which idle rates are next dropped.
    prune_at: usize,
}

/// The fewest rates kept before idle ones are dropped.
const MIN_PRUNE_AT: usize = 1024;

/// The broker's quotas: what is set, and the rates of the clients under them.
pub struct ClientQuotas {
    store: MetadataStorage,
    quotas: RwLock<BTreeMap<Entity, Values>>,
    /// Serializes changes, so each starts from the quotas the one before left.
    changes: tokio::sync::Mutex<()>,
    /// The rate of each quota type per metric tags (user, client-id).
    rates: Mutex<Rates>,
    windows: usize,
    window_ms: i64,
    origin: Instant,
    metrics: Arc<Metrics>,
}

/// A request's throttle, when some quota was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub ms: i32,
}

impl ClientQuotas {
    /// Loads the stored quotas. `windows` and `window_seconds` are `quota.window.num` and
    /// `quota.window.size.seconds`.
    pub async fn open(
        store: MetadataStorage,
        windows: u32,
        window_seconds: u32,
        metrics: Arc<Metrics>,
    ) -> Result<ClientQuotas, MetaError> {
        let quotas = store
            .client_quotas()
            .await?
            .into_iter()
            .map(|r| (r.entity, r.quotas))
            .collect();
        Ok(ClientQuotas {
            store,
            quotas: RwLock::new(quotas),
            changes: tokio::sync::Mutex::new(()),
            rates: Mutex::new(Rates {
                by_tags: HashMap::new(),
                buckets: HashMap::new(),
                prune_at: MIN_PRUNE_AT,
            }),
            windows: windows as usize,
            window_ms: i64::from(window_seconds) * 1000,
            origin: Instant::now(),
            metrics,
        })
    }

    /// Takes in the quotas other nodes sharing the storage set (PostgreSQL).
    pub async fn follow_stored(&self) -> Result<(), MetaError> {
        let _changes = self.changes.lock().await;
        let stored: BTreeMap<Entity, Values> = self
            .store
            .client_quotas()
            .await?
            .into_iter()
            .map(|r| (r.entity, r.quotas))
            .collect();
        let mut quotas = self.quotas.write();
        if *quotas != stored {
            *quotas = stored;
        }
        Ok(())
    }

    /// Every entity with quotas.
    pub fn snapshot(&self) -> BTreeMap<Entity, Values> {
        self.quotas.read().clone()
    }

    pub fn describe(
        &self,
        components: &[Component],
        strict: bool,
    ) -> Result<Vec<(Entity, Values)>, DescribeError> {
        describe(&self.quotas.read(), components, strict)
    }

    /// Validates and (unless `validate_only`) applies and persists the alterations. A failed
    /// write leaves the quotas as they were and is the error.
    pub async fn alter(
        &self,
        alterations: &[Alteration],
        validate_only: bool,
    ) -> Result<AlterResults, MetaError> {
        let _change = self.changes.lock().await;
        let mut next = self.quotas.read().clone();
        let (results, changed) = alter(&mut next, alterations);
        if !validate_only && !changed.is_empty() {
            let records: Vec<ClientQuotaRecord> = changed
                .into_iter()
                .map(|(entity, quotas)| ClientQuotaRecord { entity, quotas })
                .collect();
            self.store.put_client_quotas(&records).await?;
            *self.quotas.write() = next;
        }
        Ok(results)
    }

    /// Whether any quota is set (the request path skips all accounting when none is).
    fn any(&self) -> bool {
        !self.quotas.read().is_empty()
    }

    fn now_ms(&self) -> i64 {
        self.origin.elapsed().as_millis() as i64
    }

    /// Records `value` against the client's quota of `kind` and returns its throttle time in
    /// ms (0 when within the quota or under none).
    pub fn record(
        &self,
        principal: &Principal,
        client_id: &str,
        kind: QuotaType,
        value: f64,
    ) -> i64 {
        if !self.any() {
            return 0;
        }
        let Some((bound, (user_tag, client_tag))) =
            resolve(&self.quotas.read(), kind, &principal.user, client_id)
        else {
            return 0;
        };
        let now = self.now_ms();
        let mut rates = self.rates.lock();
        if rates.by_tags.len() >= rates.prune_at {
            let expiry = self.windows as i64 * self.window_ms;
            rates.by_tags.retain(|_, r| now - r.last_ms < expiry);
            // A bucket idle that long is full again, as good as a new one.
            rates.buckets.retain(|_, b| now - b.last_ms < expiry);
            rates.prune_at = ((rates.by_tags.len() + rates.buckets.len()) * 2).max(MIN_PRUNE_AT);
        }
        let rate = rates
            .by_tags
            .entry((kind, user_tag.clone(), client_tag.clone()))
            .or_insert_with(|| Rate::new(self.windows, self.window_ms));
        let mut ms = rate.record_and_throttle_ms(value, bound, now);
        if kind == QuotaType::Request {
            // Kafka's ClientRequestQuotaManager bounds the throttle to one window.
            ms = ms.min(self.window_ms);
        }
        drop(rates);
        if ms > 0 {
            self.metrics
                .quota_throttled(&user_tag, &client_tag, "", kind.name(), ms);
        }
        ms
    }

    /// Records a new connection from `ip` against its `connection_creation_rate` (the ip's own
    /// quota, else the default ip's; each address has its own rate) and returns how long to
    /// hold the connection before closing it unserved, 0 to serve it. As Kafka's
    /// `ConnectionQuotas`: a throttled connection is taken back from the rate, and the throttle
    /// is at most one window.
    pub fn connection_throttle_ms(&self, ip: std::net::IpAddr) -> i64 {
        if !self.any() {
            return 0;
        }
        let bound = {
            let quotas = self.quotas.read();
            let rate_of = |name: Option<&str>| {
                quotas
                    .iter()
                    .find(|(entity, _)| {
                        entity.len() == 1
                            && entity.get(IP).is_some_and(|n| match (n, name) {
                                (None, None) => true,
                                (Some(n), Some(_)) => n.parse::<std::net::IpAddr>() == Ok(ip),
                                _ => false,
                            })
                    })
                    .and_then(|(_, values)| values.get(CONNECTION_CREATION_RATE).copied())
            };
            match rate_of(Some("")).or_else(|| rate_of(None)) {
                Some(bound) => bound,
                None => return 0,
            }
        };
        let now = self.now_ms();
        let address = ip.to_string();
        let mut rates = self.rates.lock();
        let rate = rates
            .by_tags
            .entry((QuotaType::Connection, address.clone(), String::new()))
            .or_insert_with(|| Rate::new(self.windows, self.window_ms));
        let ms = rate
            .record_and_throttle_ms(1.0, bound, now)
            .min(self.window_ms);
        if ms > 0 {
            rate.record(-1.0, now);
            drop(rates);
            self.metrics
                .quota_throttled("", "", &address, QuotaType::Connection.name(), ms);
        }
        ms
    }

    /// Takes back a value recorded against the fetch quota (a throttled fetch answers nothing).
    pub fn unrecord(&self, principal: &Principal, client_id: &str, kind: QuotaType, value: f64) {
        if let Some((_, (user_tag, client_tag))) =
            resolve(&self.quotas.read(), kind, &principal.user, client_id)
        {
            let now = self.now_ms();
            if let Some(rate) = self
                .rates
                .lock()
                .by_tags
                .get_mut(&(kind, user_tag, client_tag))
            {
                rate.record(-value, now);
            }
        }
    }

    /// The most bytes a fetch may return while within the quota window (Kafka's
    /// `getMaxValueInQuotaWindow`: the bound times the span of `quota.window.num - 1` windows).
    pub fn fetch_window_bytes(&self, principal: &Principal, client_id: &str) -> Option<usize> {
        if !self.any() {
            return None;
        }
        let (bound, _) = resolve(
            &self.quotas.read(),
            QuotaType::Fetch,
            &principal.user,
            client_id,
        )?;
        let bytes = bound * (self.windows as f64 - 1.0) * (self.window_ms as f64 / 1000.0);
        Some(bytes.min(i32::MAX as f64).max(1.0) as usize)
    }

    /// The controller mutation quota of one topic-mutation request from (principal, client-id);
    /// `strict` for the versions that may refuse a topic with THROTTLING_QUOTA_EXCEEDED.
    pub fn mutation_quota<'a>(
        &'a self,
        principal: &Principal,
        client_id: &str,
        strict: bool,
    ) -> MutationQuota<'a> {
        let bound = if self.any() {
            resolve(
                &self.quotas.read(),
                QuotaType::ControllerMutation,
                &principal.user,
                client_id,
            )
        } else {
            None
        };
        MutationQuota {
            quotas: self,
            bound,
            strict,
        }
    }

    /// Runs `f` on the bucket of `tags` under `rate`, refilled to now.
    fn with_bucket<T>(
        &self,
        rate: f64,
        tags: &(String, String),
        f: impl FnOnce(&mut TokenBucket) -> T,
    ) -> T {
        let now = self.now_ms();
        let burst = rate * self.windows as f64 * (self.window_ms as f64 / 1000.0);
        let mut rates = self.rates.lock();
        let bucket = rates
            .buckets
            .entry(tags.clone())
            .or_insert_with(|| TokenBucket::new(burst, now));
        bucket.refill(rate, burst, now);
        f(bucket)
    }

    /// Records the time a request took to handle against the request quota (as a percentage
    /// of one thread's second).
    pub fn record_request_time(
        &self,
        principal: &Principal,
        client_id: &str,
        elapsed: Duration,
    ) -> i64 {
        let percent_seconds = elapsed.as_nanos() as f64 * 100.0 / 1e9;
        self.record(principal, client_id, QuotaType::Request, percent_seconds)
    }
}

/// Why a topic mutation was refused: the bucket is in debt (Kafka's
/// `ThrottlingQuotaExceededException`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MutationThrottled {
    pub throttle_ms: i64,
}

impl MutationThrottled {
    /// Kafka's message.
    pub const MESSAGE: &'static str = "The throttling quota has been exceeded.";
}

/// One request's view of its client's `controller_mutation_rate` (see the module doc).
pub struct MutationQuota<'a> {
    quotas: &'a ClientQuotas,
    /// The quota and the (user, client-id) tags of the bucket it fills; `None`: no quota.
    bound: Option<(f64, (String, String))>,
    strict: bool,
}

impl MutationQuota<'_> {
    /// Whether a mutation may go ahead: always, unless the quota is strict and its bucket is in
    /// debt. Nothing is taken until [`MutationQuota::record`].
    pub fn admit(&self) -> Result<(), MutationThrottled> {
        let Some((rate, tags)) = &self.bound else {
            return Ok(());
        };
        if !self.strict {
            return Ok(());
        }
        self.quotas.with_bucket(*rate, tags, |bucket| {
            if bucket.tokens < 0.0 {
                Err(MutationThrottled {
                    throttle_ms: bucket.debt_ms(*rate),
                })
            } else {
                Ok(())
            }
        })
    }

    /// Takes `partitions` mutations made from the bucket.
    pub fn record(&self, partitions: i32) {
        if let Some((rate, tags)) = &self.bound {
            self.quotas.with_bucket(*rate, tags, |bucket| {
                bucket.take(f64::from(partitions.max(0)))
            });
        }
    }

    /// How long the client must wait before its next mutation is admitted (0: not in debt),
    /// counted in the throttle metrics when positive.
    pub fn throttle_ms(&self) -> i64 {
        let Some((rate, tags)) = &self.bound else {
            return 0;
        };
        let ms = self
            .quotas
            .with_bucket(*rate, tags, |bucket| bucket.debt_ms(*rate));
        if ms > 0 {
            self.quotas.metrics.quota_throttled(
                &tags.0,
                &tags.1,
                "",
                QuotaType::ControllerMutation.name(),
                ms,
            );
        }
        ms
    }
}

#[cfg(test)]
mod tests {
    use starling_meta::MetadataStore;

    use super::*;

    fn entity(pairs: &[(&str, Option<&str>)]) -> Entity {
        pairs
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect()
    }

    fn set(entity: Entity, ops: &[(&str, f64)]) -> Alteration {
        Alteration {
            entity,
            ops: ops.iter().map(|(k, v)| (k.to_string(), Some(*v))).collect(),
        }
    }

    #[tokio::test]
    async fn a_rate_under_its_bound_is_not_throttled_and_over_it_waits_out_the_excess() {
        // 11 windows of 1 s: a first recording is spread over the 10 full windows.
        let mut rate = Rate::new(11, 1000);
        assert_eq!(rate.record_and_throttle_ms(10_000.0, 1000.0, 0), 0);
        // 11 000 bytes over 10 s is 1 100 B/s: 10% over, for 10 s, is 1 s.
        assert_eq!(rate.record_and_throttle_ms(1_000.0, 1000.0, 0), 1000);
    }

    #[tokio::test]
    async fn a_rate_forgets_windows_older_than_the_window_count() {
        let mut rate = Rate::new(11, 1000);
        rate.record(50_000.0, 0);
        assert!(rate.measure(5_000) > 1000.0);
        // 11 s later every sample has expired.
        assert_eq!(rate.measure(11_000), 0.0);
        assert_eq!(rate.record_and_throttle_ms(100.0, 1000.0, 11_000), 0);
    }

    #[tokio::test]
    async fn a_steady_rate_at_twice_the_bound_is_throttled_about_as_long_as_it_sent() {
        // 2 000 B every 100 ms against 1 000 B/s: after the first 10 s the throttle for each
        // further send is about the time the excess takes to drain.
        let mut rate = Rate::new(11, 1000);
        let mut last = 0;
        for step in 0..200 {
            last = rate.record_and_throttle_ms(200.0, 1000.0, step * 100);
        }
        // At 19.9 s the 11 windows hold 22 000 B over 10.9 s: 2 018 B/s, 101.8% over the
        // bound for the 10.9 s window: 11.1 s.
        assert_eq!(last, 11_100);
    }

    #[tokio::test]
    async fn the_window_size_counts_at_least_all_but_one_window() {
        let mut rate = Rate::new(11, 1000);
        rate.record(1.0, 0);
        assert_eq!(rate.window_size(0), 10_000);
        assert_eq!(rate.window_size(500), 10_500);
        rate.record(1.0, 15_000);
        assert_eq!(rate.window_size(15_000), 10_000);
    }

    async fn quotas() -> (tempfile::TempDir, ClientQuotas) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MetadataStore::open(&dir.path().join("meta.redb")).unwrap());
        let q = ClientQuotas::open(store.into(), 11, 1, Arc::new(Metrics::new()))
            .await
            .unwrap();
        (dir, q)
    }

    #[tokio::test]
    async fn a_token_bucket_refills_at_its_rate_up_to_its_burst_and_goes_into_debt() {
        let mut b = TokenBucket::new(10.0, 0);
        b.take(4.0);
        assert_eq!(b.refill(2.0, 10.0, 1000), 8.0);
        assert_eq!(b.refill(2.0, 10.0, 60_000), 10.0);
        b.take(16.0);
        assert_eq!(b.refill(2.0, 10.0, 60_000), -6.0);
        // 6 tokens at 2 a second: 3 s.
        assert_eq!(b.debt_ms(2.0), 3000);
        assert_eq!(b.refill(2.0, 10.0, 63_000), 0.0);
        assert_eq!(b.debt_ms(2.0), 0);
    }

    #[tokio::test]
    async fn a_strict_mutation_quota_admits_a_burst_into_debt_then_refuses_until_repaid() {
        let (_dir, q) = quotas().await;
        q.alter(
            &[set(
                entity(&[("client-id", Some("admin"))]),
                &[(CONTROLLER_MUTATION_RATE, 1.0)],
            )],
            false,
        )
        .await
        .unwrap();
        let anon = Principal::anonymous();
        // 11 windows of 1 s at 1 a second: a burst of 11, spent by one topic of 30 partitions.
        let quota = q.mutation_quota(&anon, "admin", true);
        assert_eq!(quota.admit(), Ok(()));
        quota.record(30);
        let debt = quota.throttle_ms();
        assert!((18_000..=19_000).contains(&debt), "{debt}");
        let refused = quota.admit().unwrap_err();
        assert!((18_000..=19_000).contains(&refused.throttle_ms));
        // The same client on an old version is served, and its debt grows.
        let permissive = q.mutation_quota(&anon, "admin", false);
        assert_eq!(permissive.admit(), Ok(()));
        permissive.record(1);
        assert!(permissive.throttle_ms() > debt);
        // Another client is under no quota.
        let other = q.mutation_quota(&anon, "other", true);
        assert_eq!(other.admit(), Ok(()));
        other.record(1000);
        assert_eq!(other.throttle_ms(), 0);
    }

    #[tokio::test]
    async fn connections_over_an_ips_creation_rate_are_throttled_per_address_and_not_counted() {
        let (_dir, q) = quotas().await;
        let results = q
            .alter(
                &[
                    set(entity(&[("ip", None)]), &[(CONNECTION_CREATION_RATE, 2.0)]),
                    set(
                        entity(&[("ip", Some("10.0.0.1"))]),
                        &[(CONNECTION_CREATION_RATE, 5.0)],
                    ),
                ],
                false,
            )
            .await
            .unwrap();
        assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        // The default: 2 a second, 20 over the first 10 s; each address on its own.
        for address in ["127.0.0.1", "127.0.0.2"] {
            for _ in 0..20 {
                assert_eq!(q.connection_throttle_ms(ip(address)), 0);
            }
            // Throttled connections are taken back: each further one is throttled alike,
            // at most one window.
            for _ in 0..3 {
                let ms = q.connection_throttle_ms(ip(address));
                assert!((1..=1000).contains(&ms), "{ms}");
            }
        }
        // 10.0.0.1 has its own quota.
        for _ in 0..50 {
            assert_eq!(q.connection_throttle_ms(ip("10.0.0.1")), 0);
        }
        assert!(q.connection_throttle_ms(ip("10.0.0.1")) > 0);
    }

    #[tokio::test]
    async fn quotas_persist_and_validate_only_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let open = || async {
            let store = Arc::new(MetadataStore::open(&path).unwrap());
            ClientQuotas::open(store.into(), 11, 1, Arc::new(Metrics::new()))
                .await
                .unwrap()
        };
        let q = open().await;
        let app = entity(&[("client-id", Some("app"))]);
        q.alter(&[set(app.clone(), &[(PRODUCER_BYTE_RATE, 10.0)])], true)
            .await
            .unwrap();
        assert!(q.snapshot().is_empty());
        q.alter(&[set(app.clone(), &[(PRODUCER_BYTE_RATE, 10.0)])], false)
            .await
            .unwrap();
        drop(q);
        let q = open().await;
        assert_eq!(
            q.snapshot(),
            BTreeMap::from([(app, Values::from([(PRODUCER_BYTE_RATE.to_string(), 10.0)]))])
        );
    }

    #[tokio::test]
    async fn the_most_specific_quota_wins_in_kafkas_order_per_quota_type() {
        let mut q = BTreeMap::new();
        let (results, _) = alter(
            &mut q,
            &[
                set(entity(&[("client-id", None)]), &[(PRODUCER_BYTE_RATE, 1.0)]),
                set(
                    entity(&[("client-id", Some("app"))]),
                    &[(PRODUCER_BYTE_RATE, 2.0)],
                ),
                set(entity(&[("user", None)]), &[(PRODUCER_BYTE_RATE, 3.0)]),
                set(
                    entity(&[("user", Some("ANONYMOUS")), ("client-id", Some("app"))]),
                    &[(CONSUMER_BYTE_RATE, 4.0)],
                ),
            ],
        );
        assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
        let p = |kind, user: &str, client: &str| resolve(&q, kind, user, client);
        // The default user beats any client-id quota; the tags share per user.
        assert_eq!(
            p(QuotaType::Produce, "ANONYMOUS", "app"),
            Some((3.0, ("ANONYMOUS".into(), "".into())))
        );
        // The user+client quota only sets the consumer rate.
        assert_eq!(
            p(QuotaType::Fetch, "ANONYMOUS", "app"),
            Some((4.0, ("ANONYMOUS".into(), "app".into())))
        );
        assert_eq!(p(QuotaType::Fetch, "ANONYMOUS", "other"), None);
        let mut q2 = BTreeMap::new();
        alter(
            &mut q2,
            &[
                set(entity(&[("client-id", None)]), &[(PRODUCER_BYTE_RATE, 1.0)]),
                set(
                    entity(&[("client-id", Some("app"))]),
                    &[(PRODUCER_BYTE_RATE, 2.0)],
                ),
            ],
        );
        assert_eq!(
            resolve(&q2, QuotaType::Produce, "ANONYMOUS", "app"),
            Some((2.0, ("".into(), "app".into())))
        );
        assert_eq!(
            resolve(&q2, QuotaType::Produce, "ANONYMOUS", "x"),
            Some((1.0, ("".into(), "x".into())))
        );
    }

    #[tokio::test]
    async fn alterations_are_validated_with_kafkas_messages() {
        let mut q = BTreeMap::new();
        let cases: Vec<(Alteration, &str)> = vec![
            (set(entity(&[]), &[(PRODUCER_BYTE_RATE, 1.0)]), "Invalid empty client quota entity"),
            (
                set(entity(&[("group", Some("g"))]), &[(PRODUCER_BYTE_RATE, 1.0)]),
                "Unhandled client quota entity type: group",
            ),
            (
                set(entity(&[("user", Some(""))]), &[(PRODUCER_BYTE_RATE, 1.0)]),
                "Empty user not supported",
            ),
            (
                set(entity(&[("ip", Some("1.2.3.4")), ("user", None)]), &[]),
                "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId",
            ),
            (
                set(entity(&[("client-id", Some("a"))]), &[("bogus", 1.0)]),
                "Invalid configuration key bogus",
            ),
            (
                set(entity(&[("client-id", Some("a"))]), &[(PRODUCER_BYTE_RATE, 0.0)]),
                "Quota producer_byte_rate must be greater than 0",
            ),
            (
                set(entity(&[("client-id", Some("a"))]), &[(PRODUCER_BYTE_RATE, 1.5)]),
                "producer_byte_rate cannot be a fractional value.",
            ),
            (
                set(entity(&[("ip", None)]), &[(CONNECTION_CREATION_RATE, 3e9)]),
                "Proposed value for connection_creation_rate is too large for an INT.",
            ),
            (
                set(entity(&[("ip", None)]), &[(PRODUCER_BYTE_RATE, 10.0)]),
                "Invalid configuration key producer_byte_rate",
            ),
        ];
        for (alteration, message) in cases {
            let (results, changed) = alter(&mut q, std::slice::from_ref(&alteration));
            assert_eq!(results[0].1, Err(message.to_string()), "{alteration:?}");
            assert!(changed.is_empty());
        }
        assert!(q.is_empty());
        // Fractions are fine for percentages; a duplicate entity is refused as Kafka does.
        let a = set(
            entity(&[("client-id", Some("a"))]),
            &[(REQUEST_PERCENTAGE, 12.5)],
        );
        let (results, _) = alter(&mut q, &[a.clone(), a]);
        assert_eq!(
            results,
            vec![(
                entity(&[("client-id", Some("a"))]),
                Err("Ignoring duplicate entity ClientQuotaEntity(entries={client-id=a})".into())
            )]
        );
    }

    #[tokio::test]
    async fn describe_matches_exact_default_and_specified_names_strictly_or_not() {
        let mut q = BTreeMap::new();
        alter(
            &mut q,
            &[
                set(entity(&[("client-id", None)]), &[(PRODUCER_BYTE_RATE, 1.0)]),
                set(
                    entity(&[("client-id", Some("app"))]),
                    &[(PRODUCER_BYTE_RATE, 2.0)],
                ),
                set(
                    entity(&[("user", Some("u")), ("client-id", Some("app"))]),
                    &[(PRODUCER_BYTE_RATE, 3.0)],
                ),
            ],
        );
        let c = |t: &str, m, n: Option<&str>| Component {
            entity_type: t.into(),
            match_type: m,
            name: n.map(str::to_string),
        };
        let names = |r: Result<Vec<(Entity, Values)>, DescribeError>| -> Vec<f64> {
            r.unwrap()
                .iter()
                .map(|(_, v)| v[PRODUCER_BYTE_RATE])
                .collect()
        };
        assert_eq!(names(describe(&q, &[], false)), vec![1.0, 2.0, 3.0]);
        assert_eq!(names(describe(&q, &[], true)), Vec::<f64>::new());
        let app = c("client-id", MATCH_EXACT, Some("app"));
        assert_eq!(
            names(describe(&q, std::slice::from_ref(&app), false)),
            vec![2.0, 3.0]
        );
        assert_eq!(names(describe(&q, &[app], true)), vec![2.0]);
        let default = c("client-id", MATCH_DEFAULT, None);
        assert_eq!(names(describe(&q, &[default], false)), vec![1.0]);
        let any = c("client-id", MATCH_SPECIFIED, None);
        assert_eq!(names(describe(&q, &[any], true)), vec![1.0, 2.0]);
        let errors = [
            (vec![c("", 0, Some("x"))], "Invalid empty entity type."),
            (
                vec![c("user", 0, Some("x")), c("user", 2, None)],
                "Entity type user cannot appear more than once in the filter.",
            ),
            (
                vec![c("user", 0, None)],
                "Request specified MATCH_TYPE_EXACT, but set match string to null.",
            ),
            (
                vec![c("user", 1, Some("x"))],
                "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.",
            ),
            (
                vec![c("user", 2, Some("x"))],
                "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.",
            ),
            (vec![c("user", 7, None)], "Unknown match type 7"),
            (
                vec![c("ip", 2, None), c("user", 2, None)],
                "Invalid entity filter component combination. IP filter component should not \
                 be used with user or clientId filter component.",
            ),
        ];
        for (components, message) in errors {
            assert_eq!(describe(&q, &components, false), Err(invalid(message)));
        }
        assert_eq!(
            describe(&q, &[c("group", 0, Some("g"))], false),
            Err(DescribeError {
                unsupported: true,
                message: "Unsupported entity type group".into()
            })
        );
    }
}
