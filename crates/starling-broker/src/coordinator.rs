//! The group coordinator's runtime: one task that owns the pure [`GroupCoordinator`] core and
//! drives it with a real clock and storage.
//!
//! Connections send requests over a channel and await their response. The task feeds each
//! request to the core with `now`, persists the records the core returns, and only then releases
//! the responses (some of which answer requests held earlier: JoinGroup and SyncGroup wait for
//! the rest of the group). It sleeps until the core's next timer deadline — no polling; deadlines
//! are on a monotonic clock and timestamps on the wall clock, both read from [`Clocks`]. Requests
//! that queue up while a write is in flight are handled together and their records written in
//! one transaction (group commit), so synchronous per-message offset commits from many
//! consumers share fsyncs.
//!
//! A step's records reach the store before anything of that step is visible: its responses, and
//! the answers to the admin endpoint's questions that arrived with it. When the write fails (a
//! full disk, an I/O error) the core has already applied records the store does not hold, so the
//! task answers every request of that step, and every JoinGroup and SyncGroup the core holds,
//! with the error Kafka's coordinator gives when its log append fails ([`refusal`]), drops the
//! core and loads it again from the store — the replay start-up runs — so nothing unstored is
//! ever served. A record that does not encode fails its step the same way.
//!
//! While the stored state cannot be loaded every request gets COORDINATOR_NOT_AVAILABLE at once,
//! and while the store reports a fault (after any failed write, topic changes included) the task
//! retries with a bounded backoff: loading, then [`MetadataStore::check_writable`] (a write as
//! large as the one that failed, taken back). The store re-opens its database after an I/O
//! error, so writes resume by themselves once the fault clears.
//! [`CoordinatorHandle::storage_health`] says how things stand, for `/healthz` and the metrics.
//!
//! With PostgreSQL storage a node coordinates only the groups whose lease it holds
//! ([`GroupStorage::take`]): before a step, every group a request names that the core does not
//! hold yet is taken — its lease, then its records replayed into the core
//! (`GroupCoordinator::load_group`) — or the request is refused with the error that sends the
//! client elsewhere (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS); a group whose lease is
//! gone is dropped from the core, its held requests answered NOT_COORDINATOR; a group left
//! with nothing after a step (deleted) gives its lease up. At start, and after a reload, the
//! node takes the stored groups placement gives it.
//!
//! The task also answers read-only questions from the admin endpoint (every group's overview, a
//! group's rebalance history) from the core's memory, and reports each rebalance the core
//! closes: one log line and the `starling_group_rebalance*` metrics.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use starling_group::{
    ClientInfo, GroupConfig, GroupCoordinator, GroupOverview, GroupRequest, GroupResponse, Output,
    RebalanceRecord, Record, RequestId, TopicsImage,
};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::Clocks;
use crate::metrics::Metrics;
pub use group_storage::{GroupStorage, GroupWriteError};

pub mod group_storage;
mod refusal;
#[cfg(test)]
mod tests;

pub use refusal::refusal;

/// How many queued requests one write may cover.
const MAX_BATCH: usize = 512;
/// The first retry after a storage fault; each failed attempt doubles the wait, up to
/// [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// What a group request gets when its records could not be stored (Kafka's coordinator turns a
/// `KafkaStorageException` from its log into NOT_COORDINATOR).
const STORE_FAILED: ResponseError = ResponseError::NotCoordinator;
/// What every group request gets while the coordinator holds no state.
const NOT_LOADED: ResponseError = ResponseError::CoordinatorNotAvailable;

// Nearly every command is a `Request`; boxing it to shrink the rare queries would cost an
// allocation per group request for nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// A Kafka group request, answered once the core's records for it are persisted.
    Request {
        version: i16,
        client: ClientInfo,
        request: GroupRequest,
        reply: oneshot::Sender<GroupResponse>,
    },
    /// Every group's overview, read from memory once it matches the store.
    Overview {
        reply: oneshot::Sender<Result<Vec<GroupOverview>, CoordinatorError>>,
    },
    /// One group's rebalance history, read from memory (`None`: no such group).
    Rebalances {
        group_id: String,
        reply: oneshot::Sender<Result<Option<Vec<RebalanceRecord>>, CoordinatorError>>,
    },
}

/// A read-only question held until its step is stored.
enum Query {
    Overview(oneshot::Sender<Result<Vec<GroupOverview>, CoordinatorError>>),
    Rebalances(
        String,
        oneshot::Sender<Result<Option<Vec<RebalanceRecord>>, CoordinatorError>>,
    ),
}

/// Why the coordinator did not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CoordinatorError {
    #[error("the group coordinator is shutting down")]
    Unavailable,
    #[error("the group coordinator holds no state: {0}")]
    NotLoaded(String),
}

/// How the metadata store, and the coordinator's state loaded from it, stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageHealth {
    /// The store's last storage error, while no write has committed since.
    pub store_fault: Option<String>,
    /// Why the coordinator holds no state (it is loading it again after a failed write, or
    /// loading failed), if it holds none.
    pub coordinator_fault: Option<String>,
    /// Store operations that failed on the storage since the broker started.
    pub storage_errors: u64,
}

impl StorageHealth {
    pub fn is_degraded(&self) -> bool {
        self.store_fault.is_some() || self.coordinator_fault.is_some()
    }
}

/// A cheap handle the API handlers use to reach the coordinator task.
#[derive(Clone)]
pub struct CoordinatorHandle {
    tx: mpsc::Sender<Command>,
    store: GroupStorage,
    not_loaded: Arc<Mutex<Option<String>>>,
}

impl CoordinatorHandle {
    /// Sends a request and waits for its response (which may be held until a rebalance
    /// completes). A request the coordinator could not carry out gets an error response, not
    /// an `Err`; `Err` means the coordinator is shutting down.
    pub async fn call(
        &self,
        version: i16,
        client: ClientInfo,
        request: GroupRequest,
    ) -> Result<GroupResponse, CoordinatorError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Request {
                version,
                client,
                request,
                reply,
            })
            .await
            .map_err(|_| CoordinatorError::Unavailable)?;
        rx.await.map_err(|_| CoordinatorError::Unavailable)
    }

    /// Every group the coordinator holds, sorted by id.
    pub async fn overview(&self) -> Result<Vec<GroupOverview>, CoordinatorError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Overview { reply })
            .await
            .map_err(|_| CoordinatorError::Unavailable)?;
        rx.await.map_err(|_| CoordinatorError::Unavailable)?
    }

    /// A group's rebalance history, oldest first (the open record last); `None` if the
    /// coordinator does not hold the group.
    pub async fn rebalances(
        &self,
        group_id: String,
    ) -> Result<Option<Vec<RebalanceRecord>>, CoordinatorError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Rebalances { group_id, reply })
            .await
            .map_err(|_| CoordinatorError::Unavailable)?;
        rx.await.map_err(|_| CoordinatorError::Unavailable)?
    }

    /// The store the coordinator persists to and recovers (tests reach the embedded store's
    /// failpoint here).
    pub fn store(&self) -> &GroupStorage {
        &self.store
    }

    /// The metadata store's fault and error count, and whether the coordinator holds its state.
    pub fn storage_health(&self) -> StorageHealth {
        StorageHealth {
            store_fault: self.store.fault(),
            coordinator_fault: self.not_loaded.lock().clone(),
            storage_errors: self.store.storage_errors(),
        }
    }
}

/// Loads the coordinator's state from the store (replaying every stored record) and starts its
/// task on the system's clocks. Returns the handle and the task's join handle.
pub async fn start(
    config: GroupConfig,
    store: GroupStorage,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    topics: watch::Receiver<TopicsImage>,
) -> anyhow::Result<(CoordinatorHandle, tokio::task::JoinHandle<()>)> {
    start_with_clocks(config, store, metrics, shutdown, topics, Clocks::system()).await
}

/// [`start`] on the given clocks (tests pause tokio's time and bring their own wall clock).
pub async fn start_with_clocks(
    config: GroupConfig,
    store: GroupStorage,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    topics: watch::Receiver<TopicsImage>,
    clocks: Clocks,
) -> anyhow::Result<(CoordinatorHandle, tokio::task::JoinHandle<()>)> {
    let core = load(&config, &store, &clocks).await?;
    let not_loaded = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel(4096);
    let runtime = Runtime {
        config,
        clocks,
        topics,
        topics_changed: true,
        topics_closed: false,
        store: store.clone(),
        metrics,
        core: Some(core),
        not_loaded: not_loaded.clone(),
        next_id: 0,
        waiting: HashMap::new(),
        taken: HashMap::new(),
        checked_version: None,
        retry_at: None,
        backoff: RETRY_MIN,
    };
    let task = tokio::spawn(runtime.run(rx, shutdown));
    Ok((
        CoordinatorHandle {
            tx,
            store,
            not_loaded,
        },
        task,
    ))
}

/// A new core holding what the store holds: every stored record replayed, then `loaded`.
/// Start-up and the recovery from a failed write both come through here.
async fn load(
    config: &GroupConfig,
    store: &GroupStorage,
    clocks: &Clocks,
) -> anyhow::Result<GroupCoordinator> {
    let mut core = GroupCoordinator::new(config.clone());
    let stored = store.load().await.map_err(anyhow::Error::msg)?;
    let count = stored.len();
    for record in &stored {
        core.replay(record);
    }
    core.loaded(clocks.now());
    tracing::info!(records = count, "group coordinator loaded");
    Ok(core)
}

/// A request the core has not answered yet, with what answers it if its step cannot be stored.
struct Waiting {
    reply: oneshot::Sender<GroupResponse>,
    version: i16,
    request: GroupRequest,
}

/// The task's state.
struct Runtime {
    config: GroupConfig,
    clocks: Clocks,
    /// The broker's topics, for consumer-protocol subscriptions.
    topics: watch::Receiver<TopicsImage>,
    /// The core has not seen the latest topics yet (it must before it handles a request: it
    /// is told them at the start of the next step, which comes at once).
    topics_changed: bool,
    /// The topics' sender is gone (no more changes will come).
    topics_closed: bool,
    store: GroupStorage,
    metrics: Arc<Metrics>,
    /// `None` while the stored state cannot be loaded.
    core: Option<GroupCoordinator>,
    /// Why `core` is `None`, shared with the handles.
    not_loaded: Arc<Mutex<Option<String>>>,
    next_id: RequestId,
    /// Requests in the current step, and JoinGroups and SyncGroups the core holds.
    waiting: HashMap<RequestId, Waiting>,
    /// With shared (PostgreSQL) storage: the groups the core holds, each with the epoch of
    /// the lease it was loaded under.
    taken: HashMap<String, i64>,
    /// The version of the held group leases `taken` was last checked against
    /// ([`GroupStorage::held_version`]): unchanged, no lease was gained or lost since.
    checked_version: Option<u64>,
    /// When to try again to load the state or to write to a faulted store.
    retry_at: Option<Instant>,
    /// The wait before the next retry after this one.
    backoff: Duration,
}

impl Runtime {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        self.take_placed_groups().await;
        loop {
            let timer = self
                .core
                .as_ref()
                .and_then(|core| core.next_deadline())
                .map(|deadline| self.clocks.instant_of(deadline));
            let wake = earliest(timer, self.retry_at);
            let first = if self.topics_changed && self.core.is_some() {
                None
            } else {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    cmd = rx.recv() => match cmd {
                        Some(cmd) => Some(cmd),
                        None => break,
                    },
                    changed = self.topics.changed(), if !self.topics_closed => {
                        match changed {
                            Ok(()) => self.topics_changed = true,
                            // The registry is gone: its last image stays.
                            Err(_) => self.topics_closed = true,
                        }
                        None
                    }
                    _ = sleep_until(wake) => None,
                }
            };
            let mut batch = Vec::new();
            if let Some(cmd) = first {
                batch.push(cmd);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(cmd) => batch.push(cmd),
                        Err(_) => break,
                    }
                }
            }
            if self.retry_at.is_some_and(|at| at <= Instant::now()) {
                self.recover().await;
            }
            self.step(batch).await;
            if self.retry_at.is_none() && (self.core.is_none() || self.store.fault().is_some()) {
                self.retry_later();
            }
        }
        tracing::info!(held = self.waiting.len(), "group coordinator stopped");
    }

    /// Feeds `batch` and the due timers to the core, stores the records, then answers.
    async fn step(&mut self, batch: Vec<Command>) {
        if self.core.is_none() {
            self.refuse(batch);
            return;
        }
        let batch = self.admit(batch).await;
        let Some(core) = self.core.as_mut() else {
            self.refuse(batch);
            return;
        };
        let mut output = Output::default();
        // A topic created (or grown, or deleted) before a request in this batch was sent is
        // published before that request arrives: checking here orders the two.
        if self.topics_changed || self.topics.has_changed().unwrap_or(false) {
            self.topics_changed = false;
            let image = self.topics.borrow_and_update().clone();
            merge(&mut output, core.set_topics(self.clocks.now(), image));
        }
        let mut queries = Vec::new();
        // The groups this step may leave empty: those its requests and its records name.
        let mut touched: HashSet<String> = HashSet::new();
        for cmd in batch {
            match cmd {
                Command::Request {
                    version,
                    client,
                    request,
                    reply,
                } => {
                    touched.extend(request.group_ids().into_iter().map(str::to_string));
                    self.next_id += 1;
                    self.waiting.insert(
                        self.next_id,
                        Waiting {
                            reply,
                            version,
                            request: request.clone(),
                        },
                    );
                    merge(
                        &mut output,
                        core.handle(self.clocks.now(), self.next_id, version, &client, request),
                    );
                }
                Command::Overview { reply } => queries.push(Query::Overview(reply)),
                Command::Rebalances { group_id, reply } => {
                    queries.push(Query::Rebalances(group_id, reply))
                }
            }
        }
        // Timers due now fire whether we woke for them or for a request.
        merge(&mut output, core.expire(self.clocks.now()));
        for record in &output.records {
            if !touched.contains(record.group_id()) {
                touched.insert(record.group_id().to_string());
            }
        }
        match self.write(std::mem::take(&mut output.records)).await {
            Ok(()) => {
                for record in &output.rebalances {
                    report_rebalance(&self.metrics, record);
                }
                for (id, response) in output.responses {
                    if let Some(waiting) = self.waiting.remove(&id) {
                        let _ = waiting.reply.send(response);
                    }
                }
                self.release_emptied_groups(touched).await;
            }
            Err(e) => self.step_failed(e).await,
        }
        // Answered from what is stored: after the write, or from the state loaded again.
        self.answer(queries);
    }

    /// Stores a step's records. A group whose lease turns out lost (PostgreSQL) is dropped,
    /// its requests refused with NOT_COORDINATOR, and the other groups' records are stored
    /// without it: one group moving away does not disturb the others.
    async fn write(&mut self, mut records: Vec<Record>) -> Result<(), GroupWriteError> {
        loop {
            match self.store.write(records).await {
                Err(GroupWriteError::Fenced {
                    group,
                    message,
                    rest,
                }) => {
                    tracing::warn!(%group, reason = message, "a group's lease was lost during a step; dropping the group");
                    self.drop_group(&group);
                    // Whatever else changed is looked at on the next step.
                    self.checked_version = None;
                    records = rest;
                }
                written => return written,
            }
        }
    }

    /// With shared storage: drops the groups whose lease is gone, then takes every group a
    /// request of `batch` names that the core does not hold. Returns the requests to feed to
    /// the core; the others are answered here.
    async fn admit(&mut self, batch: Vec<Command>) -> Vec<Command> {
        if !self.store.is_shared() {
            return batch;
        }
        self.drop_lost_groups();
        let mut refused: HashMap<String, ResponseError> = HashMap::new();
        let mut admitted = Vec::with_capacity(batch.len());
        for cmd in batch {
            let mut error = None;
            if let Command::Request { request, .. } = &cmd {
                for group in request.group_ids() {
                    // An empty id is the core's to refuse (INVALID_GROUP_ID).
                    if group.is_empty() || self.taken.contains_key(group) {
                        continue;
                    }
                    let taken = match refused.get(group) {
                        Some(e) => Err(*e),
                        None => self.take_group(group).await,
                    };
                    if let Err(e) = taken {
                        refused.insert(group.to_string(), e);
                        error = Some(e);
                        break;
                    }
                }
            }
            match (error, cmd) {
                (
                    Some(e),
                    Command::Request {
                        version,
                        request,
                        reply,
                        ..
                    },
                ) => {
                    let _ = reply.send(refusal(&request, version, e));
                }
                (_, cmd) => admitted.push(cmd),
            }
        }
        admitted
    }

    /// Takes `group` (its lease, then its records) into the core.
    async fn take_group(&mut self, group: &str) -> Result<(), ResponseError> {
        let (epoch, records) = self.store.take(group).await?;
        let Some(core) = self.core.as_mut() else {
            return Err(NOT_LOADED);
        };
        core.load_group(self.clocks.now(), group, &records);
        self.taken.insert(group.to_string(), epoch);
        tracing::info!(%group, epoch, records = records.len(), "coordinating group");
        Ok(())
    }

    /// Drops from the core every group whose lease this node no longer holds at the epoch it
    /// loaded the group under; requests the group held get NOT_COORDINATOR.
    fn drop_lost_groups(&mut self) {
        let version = self.store.held_version();
        if self.checked_version == Some(version) {
            return;
        }
        self.checked_version = Some(version);
        let lost: Vec<String> = self
            .taken
            .iter()
            .filter(|(group, epoch)| self.store.held_epoch(group) != Some(**epoch))
            .map(|(group, _)| group.clone())
            .collect();
        for group in lost {
            self.drop_group(&group);
        }
    }

    /// Drops `group` from the core; the requests it holds get NOT_COORDINATOR.
    fn drop_group(&mut self, group: &str) {
        self.taken.remove(group);
        if let Some(core) = self.core.as_mut() {
            core.unload_group(group);
        }
        let held: Vec<RequestId> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.request.group_ids().contains(&group))
            .map(|(id, _)| *id)
            .collect();
        for id in &held {
            if let Some(waiting) = self.waiting.remove(id) {
                let response = refusal(
                    &waiting.request,
                    waiting.version,
                    ResponseError::NotCoordinator,
                );
                let _ = waiting.reply.send(response);
            }
        }
        tracing::info!(%group, refused = held.len(), "no longer coordinating group");
    }

    /// Gives up the groups of `touched` (what a step named) the core holds nothing of any more
    /// (deleted, or never there).
    async fn release_emptied_groups(&mut self, touched: HashSet<String>) {
        let Some(core) = self.core.as_ref() else {
            return;
        };
        let emptied: Vec<String> = touched
            .into_iter()
            .filter(|group| self.taken.contains_key(group) && !core.has_group(group))
            .collect();
        for group in emptied {
            self.taken.remove(&group);
            self.store.release(&group).await;
        }
    }

    /// With shared storage, at start and after a reload: takes the stored groups placement
    /// gives this node, so their members' sessions and their offsets' retention run without
    /// waiting for a request. A group not taken now is taken on its first request.
    async fn take_placed_groups(&mut self) {
        self.taken.clear();
        self.checked_version = None;
        if !self.store.is_shared() || self.core.is_none() {
            return;
        }
        let groups = match self.store.placed_here().await {
            Ok(groups) => groups,
            Err(e) => {
                tracing::warn!(error = %e, "listing the stored groups failed; each is taken on its first request");
                return;
            }
        };
        let mut taken = 0;
        for group in &groups {
            match self.take_group(group).await {
                Ok(()) => taken += 1,
                Err(e) => tracing::debug!(%group, error = ?e, "not taking a group at start"),
            }
        }
        tracing::info!(
            taken,
            placed = groups.len(),
            "took this node's stored groups"
        );
    }

    /// The step's records were not stored, so memory is ahead of the store: every request
    /// waiting on the core gets an error, and the core is loaded again from the store.
    async fn step_failed(&mut self, error: GroupWriteError) {
        let code = match &error {
            GroupWriteError::Encode(_) => ResponseError::UnknownServerError,
            GroupWriteError::Storage(_) | GroupWriteError::Fenced { .. } => STORE_FAILED,
        };
        tracing::error!(
            error = %error,
            refused = self.waiting.len(),
            "group records could not be stored; refusing the requests waiting on the coordinator and loading its state again"
        );
        // Known before the refused clients hear of it.
        self.core = None;
        *self.not_loaded.lock() = Some(format!(
            "loading its state again after a failed write: {error}"
        ));
        for (_, waiting) in self.waiting.drain() {
            let response = refusal(&waiting.request, waiting.version, code);
            let _ = waiting.reply.send(response);
        }
        self.backoff = RETRY_MIN;
        self.recover().await;
    }

    /// Answers a batch at once while no state is loaded.
    fn refuse(&mut self, batch: Vec<Command>) {
        let reason = self.not_loaded.lock().clone().unwrap_or_default();
        for cmd in batch {
            match cmd {
                Command::Request {
                    version,
                    request,
                    reply,
                    ..
                } => {
                    let _ = reply.send(refusal(&request, version, NOT_LOADED));
                }
                Command::Overview { reply } => {
                    let _ = reply.send(Err(CoordinatorError::NotLoaded(reason.clone())));
                }
                Command::Rebalances { reply, .. } => {
                    let _ = reply.send(Err(CoordinatorError::NotLoaded(reason.clone())));
                }
            }
        }
    }

    fn answer(&self, queries: Vec<Query>) {
        let unloaded =
            || CoordinatorError::NotLoaded(self.not_loaded.lock().clone().unwrap_or_default());
        for query in queries {
            match query {
                Query::Overview(reply) => {
                    let _ = reply.send(match &self.core {
                        Some(core) => Ok(core.overview()),
                        None => Err(unloaded()),
                    });
                }
                Query::Rebalances(group_id, reply) => {
                    let _ = reply.send(match &self.core {
                        Some(core) => Ok(core.rebalances(&group_id)),
                        None => Err(unloaded()),
                    });
                }
            }
        }
    }

    /// One recovery attempt: load the state if none is held, then, if the store still reports
    /// a fault, check that it takes writes again. Schedules the next attempt unless both worked.
    async fn recover(&mut self) {
        self.retry_at = None;
        if self.core.is_none() {
            let loaded = load(&self.config, &self.store, &self.clocks).await;
            match loaded {
                Ok(core) => {
                    self.core = Some(core);
                    // A new core knows no topics yet.
                    self.topics_changed = true;
                    *self.not_loaded.lock() = None;
                    self.take_placed_groups().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?self.backoff, "group coordinator cannot load its state");
                    *self.not_loaded.lock() = Some(format!("cannot load its state: {e:#}"));
                    self.retry_later();
                    return;
                }
            }
        }
        if self.store.fault().is_some() {
            match self.store.check_writable().await {
                Ok(()) => tracing::info!("the metadata store takes writes again"),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?self.backoff, "the metadata store still refuses writes");
                    self.retry_later();
                    return;
                }
            }
        }
        self.backoff = RETRY_MIN;
    }

    fn retry_later(&mut self) {
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(RETRY_MAX);
    }
}

/// One log line and the rebalance metrics for a closed rebalance record.
fn report_rebalance(metrics: &Metrics, record: &RebalanceRecord) {
    let (moved, stayed) = match &record.assignment {
        Some(change) => (Some(change.moved.len()), Some(change.stayed.len())),
        None => (None, None),
    };
    tracing::info!(
        group = %record.group_id,
        generation = record.generation,
        cause = %record.cause.as_str(),
        outcome = record.outcome.as_str(),
        duration_ms = record.duration_ms(),
        join_ms = record.join_phase_ms(),
        sync_ms = record.sync_phase_ms(),
        joined = record.joined.len(),
        left = record.left.len(),
        moved,
        stayed,
        "rebalance ended"
    );
    metrics.rebalance_closed(record);
}

fn merge(into: &mut Output, from: Output) {
    into.responses.extend(from.responses);
    into.records.extend(from.records);
    into.rebalances.extend(from.rebalances);
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
