//! The transaction coordinator's runtime: the pure [`TransactionCoordinator`] core
//! (`starling-txn`) driven with the wall clock, its records persisted in the metadata store, its
//! marker jobs carried out by [`markers`].
//!
//! Every step — a request, a timeout sweep, a marker job's completion — runs under one async
//! lock: the core takes the step, the step's records are written (one durable redb
//! transaction), and only then is the lock released and the result answered, so nothing a client
//! or a partition can see is ahead of the store. When the write fails, the core has applied
//! records the store does not hold: the step is answered with NOT_COORDINATOR (what Kafka's
//! transaction coordinator answers when its log append fails; clients look it up again and
//! retry) and the core is loaded again from the store. While the store cannot be read every
//! request gets COORDINATOR_NOT_AVAILABLE.
//!
//! EndTxn is answered once its decision is stored, as in Kafka, but not before its markers are
//! written either (or [`MARKER_WAIT`] has passed): on one node the markers take milliseconds,
//! and answering after them means the producer's next transaction does not meet
//! CONCURRENT_TRANSACTIONS (which librdkafka retries only after `retry.backoff.ms`) and a
//! read_committed reader sees a commit as soon as the producer has been told of it.
//!
//! Marker jobs go to the [`markers`] task over a channel once their step is stored; at start-up
//! the core hands back the jobs of every transaction decided before the broker stopped, so a
//! commit or abort that was decided is always finished. A timer task wakes at the core's next
//! deadline (transaction timeouts, transactional id expiry).
//!
//! With PostgreSQL storage one node of the cluster coordinates transactions: the one holding the
//! transaction coordinator's lease (`crate::leases`). The core exists only while that lease is
//! held, loaded from the database under it ([`Transactions::follow_lease`]); its records are
//! written in a database transaction that checks the lease, requests to other nodes are
//! answered NOT_COORDINATOR, and those nodes check producers' transactional writes against the
//! stored state. Markers go through the database's queue ([`queued`]).

pub mod markers;
pub mod queued;

use std::sync::Arc;
use std::time::Duration;

/// The longest EndTxn waits for its transaction's markers before it is answered anyway (the
/// decision is stored: the markers follow whatever happens).
pub const MARKER_WAIT: Duration = Duration::from_secs(5);

use kafka_protocol::ResponseError;
use starling_meta::backend::MetadataBackend;
use starling_txn::{
    Changes, MarkerJob, ProducerIdAndEpoch, TopicPartition, TransactionCoordinator,
    TransactionValue, TxnConfig, TxnError, TxnRequest,
};
use tokio::sync::{mpsc, Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::leases::NodeLeases;
use crate::now_ms;
use crate::producer_ids::ProducerIds;
use crate::storage::MetadataStorage;
use starling_postgres::lease::Lease;
use starling_postgres::PgPool;

/// Why a transaction request got no answer from the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnFailure {
    /// The core refused it (Kafka's error for it).
    Refused(TxnError),
    /// Its records could not be stored: NOT_COORDINATOR.
    NotStored,
    /// The stored state cannot be loaded, or no producer id could be reserved:
    /// COORDINATOR_NOT_AVAILABLE.
    Unavailable,
    /// Another node coordinates transactions (PostgreSQL storage): NOT_COORDINATOR.
    NotHere,
}

impl TxnFailure {
    /// The error code for the failure, for a request version that knows PRODUCER_FENCED
    /// (`fenced_known`) or predates it (KIP-588: INVALID_PRODUCER_EPOCH instead).
    pub fn error(self, fenced_known: bool) -> ResponseError {
        match self {
            TxnFailure::Refused(e) => match e {
                TxnError::InvalidRequest => ResponseError::InvalidRequest,
                TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
                TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
                TxnError::ProducerFenced if fenced_known => ResponseError::ProducerFenced,
                TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch,
                TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
                TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
            },
            TxnFailure::NotStored | TxnFailure::NotHere => ResponseError::NotCoordinator,
            TxnFailure::Unavailable => ResponseError::CoordinatorNotAvailable,
        }
    }
}

impl From<TxnError> for TxnFailure {
    fn from(e: TxnError) -> Self {
        TxnFailure::Refused(e)
    }
}

/// A cheap handle to the transaction coordinator, shared by the API handlers.
#[derive(Clone)]
pub struct Transactions {
    inner: Arc<Inner>,
}

struct Inner {
    config: TxnConfig,
    store: MetadataStorage,
    producer_ids: Arc<ProducerIds>,
    /// `None` while the stored state cannot be loaded.
    core: Mutex<Option<TransactionCoordinator>>,
    /// Marker jobs, once stored, for the [`markers`] task.
    jobs: mpsc::UnboundedSender<MarkerJob>,
    /// Wakes the timer task when a step may have moved the next deadline.
    deadline_changed: Notify,
    /// Wakes the EndTxn requests waiting for their markers when a transaction completes.
    completed: Notify,
    /// With PostgreSQL storage: where the coordinator's lease is held.
    shared: Option<Shared>,
}

/// The coordinator on PostgreSQL: it runs only on the node holding the cluster's transaction
/// coordinator lease, and its records are written under it.
struct Shared {
    pool: PgPool,
    /// The lease as the last leadership round found it held, if it is.
    lease: parking_lot::Mutex<Option<Lease>>,
    /// The epoch of the lease the core was loaded under.
    loaded_under: parking_lot::Mutex<Option<i64>>,
    /// The markers queued for (and carried out by) the nodes leading their targets.
    markers: queued::MarkerQueue,
}

/// How a marker job's completion went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// Its transaction is complete (or was already).
    Completed,
    /// The completion could not be stored: carry the job out again.
    Retry,
    /// This node no longer coordinates transactions: the node that does carries it out.
    NotHere,
}

impl Transactions {
    /// Loads the coordinator from the store; returns the handle and the receiver of its marker
    /// jobs (the jobs of transactions decided before the last stop are already queued on it).
    ///
    /// With PostgreSQL storage (`leases`), the coordinator runs only while this node holds the
    /// transaction coordinator's lease ([`Transactions::follow_lease`]).
    pub async fn start(
        config: TxnConfig,
        store: MetadataStorage,
        producer_ids: Arc<ProducerIds>,
        leases: Option<&NodeLeases>,
    ) -> anyhow::Result<(Transactions, mpsc::UnboundedReceiver<MarkerJob>)> {
        let (jobs, rx) = mpsc::unbounded_channel();
        let core = match leases {
            Some(_) => None,
            None => Some(load(&config, &store).await?),
        };
        let resumed = core
            .as_ref()
            .map(|c| c.loaded().markers)
            .unwrap_or_default();
        let transactions = Transactions {
            inner: Arc::new(Inner {
                config,
                store,
                producer_ids,
                core: Mutex::new(core),
                jobs,
                deadline_changed: Notify::new(),
                completed: Notify::new(),
                shared: leases.map(|l| Shared {
                    pool: l.pool().clone(),
                    lease: parking_lot::Mutex::new(None),
                    loaded_under: parking_lot::Mutex::new(None),
                    markers: queued::MarkerQueue::default(),
                }),
            }),
        };
        if !resumed.is_empty() {
            tracing::info!(
                transactions = resumed.len(),
                "finishing transactions decided before the last stop"
            );
        }
        transactions.start_jobs(resumed);
        if let Some(leases) = leases {
            transactions.follow_lease(leases.transaction_lease()).await;
        }
        Ok((transactions, rx))
    }

    /// With PostgreSQL storage, after each leadership round: the coordinator's lease as held
    /// now. Taken (or taken again under a new epoch), the state is loaded from the database
    /// and the transactions decided before are finished; lost, the state is dropped.
    pub async fn follow_lease(&self, lease: Option<Lease>) {
        let Some(shared) = &self.inner.shared else {
            return;
        };
        let was = std::mem::replace(&mut *shared.lease.lock(), lease.clone());
        if was.as_ref().map(|l| l.epoch) == lease.as_ref().map(|l| l.epoch) {
            return;
        }
        match &lease {
            Some(l) => tracing::info!(epoch = l.epoch, "coordinating transactions"),
            None => tracing::info!("no longer coordinating transactions"),
        }
        let mut guard = self.inner.core.lock().await;
        // Loads (and resumes) under the new lease, or drops the state without one.
        let _ = self.loaded(&mut guard).await;
        self.inner.deadline_changed.notify_one();
    }

    /// With PostgreSQL storage: the coordinator's lease, if this node holds it (`None` with
    /// embedded storage).
    pub fn lease(&self) -> Option<Lease> {
        self.inner
            .shared
            .as_ref()
            .and_then(|shared| shared.lease.lock().clone())
    }

    /// With PostgreSQL storage: the queue of markers between nodes.
    pub fn marker_queue(&self) -> Option<&queued::MarkerQueue> {
        self.inner.shared.as_ref().map(|shared| &shared.markers)
    }

    /// Whether this node coordinates transactions now.
    pub fn coordinates(&self) -> bool {
        self.inner
            .shared
            .as_ref()
            .is_none_or(|shared| shared.lease.lock().is_some())
    }

    pub fn config(&self) -> &TxnConfig {
        &self.inner.config
    }

    /// InitProducerId for `transactional_id`: reserves a fresh producer id (used if the id is
    /// new or its epochs are exhausted) and asks the core.
    pub async fn init_producer_id(
        &self,
        transactional_id: String,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
    ) -> Result<ProducerIdAndEpoch, TxnFailure> {
        if !self.coordinates() {
            return Err(TxnFailure::NotHere);
        }
        let fresh_producer_id = self.fresh_producer_id().await?;
        self.call(TxnRequest::InitProducerId {
            transactional_id,
            timeout_ms,
            expected,
            fresh_producer_id,
        })
        .await
    }

    /// Handles one request; `Ok` carries the producer id and epoch the producer is at.
    pub async fn call(&self, request: TxnRequest) -> Result<ProducerIdAndEpoch, TxnFailure> {
        let ends = matches!(request, TxnRequest::EndTxn { .. });
        let id = request.transactional_id().to_string();
        let mut guard = self.inner.core.lock().await;
        let core = self.loaded(&mut guard).await?;
        let output = core.handle(request, now_ms());
        let decided = ends && output.result.is_ok() && !output.changes.markers.is_empty();
        // Registered while the lock is held: the markers cannot complete before it is released.
        let completed = self.inner.completed.notified();
        tokio::pin!(completed);
        completed.as_mut().enable();
        self.store_step(&mut guard, output.changes).await?;
        let result = output.result?;
        drop(guard);
        if decided {
            self.wait_for_markers(&id, completed).await;
        }
        Ok(result)
    }

    /// Waits until `id`'s transaction is no longer being completed, or [`MARKER_WAIT`] passes.
    async fn wait_for_markers(
        &self,
        id: &str,
        first: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    ) {
        let deadline = tokio::time::Instant::now() + MARKER_WAIT;
        if tokio::time::timeout_at(deadline, first).await.is_err() {
            return;
        }
        loop {
            let next = {
                let guard = self.inner.core.lock().await;
                let preparing = guard
                    .as_ref()
                    .and_then(|c| c.get(id))
                    .is_some_and(|v| v.state.is_preparing());
                if !preparing {
                    return;
                }
                let next = self.inner.completed.notified();
                let mut next = Box::pin(next);
                next.as_mut().enable();
                next
            };
            if tokio::time::timeout_at(deadline, next).await.is_err() {
                return;
            }
        }
    }

    /// Reports a marker job carried out: completes its transaction.
    pub async fn markers_written(&self, job: &MarkerJob) -> JobEnd {
        let mut guard = self.inner.core.lock().await;
        let core = match self.loaded(&mut guard).await {
            Ok(core) => core,
            Err(TxnFailure::NotHere) => return JobEnd::NotHere,
            Err(_) => return JobEnd::Retry,
        };
        let changes = core.markers_written(job, now_ms());
        let completes = !changes.records.is_empty();
        match self.store_step(&mut guard, changes).await {
            Ok(()) => {
                if completes {
                    self.inner.completed.notify_waiters();
                }
                JobEnd::Completed
            }
            // Not stored: the next attempt finds out whether this node still coordinates.
            Err(_) => JobEnd::Retry,
        }
    }

    /// Whether `producer` may write transactional data to `partition` now (the partition was
    /// added to its open transaction).
    pub async fn verify_partition(
        &self,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<(), TxnFailure> {
        if !self.coordinates() {
            return self
                .verify_stored(producer, |v| v.partitions.contains(partition))
                .await;
        }
        let mut guard = self.inner.core.lock().await;
        let core = self.loaded(&mut guard).await?;
        Ok(core.verify_partition(producer, partition)?)
    }

    /// Whether `producer` may commit offsets for `group_id` in its open transaction.
    pub async fn verify_group(
        &self,
        producer: ProducerIdAndEpoch,
        group_id: &str,
    ) -> Result<(), TxnFailure> {
        if !self.coordinates() {
            return self
                .verify_stored(producer, |v| v.groups.contains(group_id))
                .await;
        }
        let mut guard = self.inner.core.lock().await;
        let core = self.loaded(&mut guard).await?;
        Ok(core.verify_group(producer, group_id)?)
    }

    /// The coordinator's check made from the producer's stored transaction, on a node that does
    /// not coordinate transactions (the coordinator stores a step before answering it, so what
    /// the producer was told is there).
    async fn verify_stored(
        &self,
        producer: ProducerIdAndEpoch,
        added: impl FnOnce(&TransactionValue) -> bool,
    ) -> Result<(), TxnFailure> {
        let shared = self.inner.shared.as_ref().ok_or(TxnFailure::Unavailable)?;
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "cannot look a producer's transaction up");
            TxnFailure::Unavailable
        };
        let client = shared.pool.get().await.map_err(|e| unavailable(&e))?;
        let stored = starling_postgres::transactions::by_producer(&**client, producer.producer_id)
            .await
            .map_err(|e| unavailable(&e))?;
        let value = stored.as_ref().and_then(|r| r.value.as_ref());
        Ok(starling_txn::verify_open(value, producer, added)?)
    }

    /// Every transactional id and its state (DescribeTransactions, ListTransactions, metrics).
    /// A node that does not coordinate transactions has none.
    pub async fn snapshot(&self) -> Result<Vec<(String, TransactionValue)>, TxnFailure> {
        if !self.coordinates() {
            return Ok(Vec::new());
        }
        let mut guard = self.inner.core.lock().await;
        let core = self.loaded(&mut guard).await?;
        Ok(core
            .iter()
            .map(|(id, v)| (id.to_string(), v.clone()))
            .collect())
    }

    /// The state of each of `ids` (`None` for an id the coordinator does not know), in order
    /// (DescribeTransactions).
    pub async fn describe(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<TransactionValue>>, TxnFailure> {
        let mut guard = self.inner.core.lock().await;
        let core = self.loaded(&mut guard).await?;
        Ok(ids.iter().map(|id| core.get(id).cloned()).collect())
    }

    /// Aborts timed-out transactions and forgets expired ids whenever the core's next deadline
    /// comes, until `shutdown`.
    pub async fn run_timers(self, shutdown: CancellationToken) {
        loop {
            let next = {
                let guard = self.inner.core.lock().await;
                guard.as_ref().and_then(|c| c.next_deadline())
            };
            // A missing core is retried now and then; no deadline means sleeping until a step
            // makes one.
            let wait = match next {
                Some(deadline) => {
                    Duration::from_millis(deadline.saturating_sub(now_ms()).max(0) as u64)
                }
                None if self.inner.core.lock().await.is_none() => Duration::from_secs(1),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.inner.deadline_changed.notified() => continue,
                _ = tokio::time::sleep(wait) => {}
            }
            let mut guard = self.inner.core.lock().await;
            let Ok(core) = self.loaded(&mut guard).await else {
                continue;
            };
            let changes = core.expire(now_ms());
            for job in &changes.markers {
                tracing::info!(
                    transactional_id = job.transactional_id,
                    producer_id = job.producer.producer_id,
                    "aborting a transaction that ran past its timeout"
                );
            }
            let _ = self.store_step(&mut guard, changes).await;
        }
    }

    /// The core, loading it again first if a failed write dropped it.
    async fn loaded<'a>(
        &self,
        guard: &'a mut Option<TransactionCoordinator>,
    ) -> Result<&'a mut TransactionCoordinator, TxnFailure> {
        if let Some(shared) = &self.inner.shared {
            // The state is this node's only under the lease it was loaded under.
            let epoch = shared.lease.lock().as_ref().map(|l| l.epoch);
            let mut loaded_under = shared.loaded_under.lock();
            if epoch.is_none() || *loaded_under != epoch {
                *guard = None;
                *loaded_under = None;
            }
            if epoch.is_none() {
                return Err(TxnFailure::NotHere);
            }
        }
        if guard.is_none() {
            match load(&self.inner.config, &self.inner.store).await {
                Ok(core) => {
                    let resumed = core.loaded();
                    *guard = Some(core);
                    if let Some(shared) = &self.inner.shared {
                        *shared.loaded_under.lock() = shared.lease.lock().as_ref().map(|l| l.epoch);
                    }
                    self.start_jobs(resumed.markers);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the transaction coordinator's state cannot be loaded");
                    return Err(TxnFailure::Unavailable);
                }
            }
        }
        Ok(guard.as_mut().expect("loaded above"))
    }

    /// Stores a step's records, then starts its marker jobs. When the write fails the core is
    /// dropped (it holds what the store does not) and loaded again on next use.
    async fn store_step(
        &self,
        guard: &mut Option<TransactionCoordinator>,
        changes: Changes,
    ) -> Result<(), TxnFailure> {
        if !changes.records.is_empty() {
            if let Err(e) = self.write(&changes.records).await {
                tracing::error!(
                    error = %e,
                    "transaction records could not be stored; loading the coordinator's state again"
                );
                *guard = None;
                return Err(TxnFailure::NotStored);
            }
        }
        self.start_jobs(changes.markers);
        self.inner.deadline_changed.notify_one();
        Ok(())
    }

    /// Writes records to the store; on PostgreSQL under the coordinator's lease.
    async fn write(&self, records: &[starling_txn::TxnRecord]) -> anyhow::Result<()> {
        let Some(shared) = &self.inner.shared else {
            return Ok(self.inner.store.write_txn_records(records).await?);
        };
        let lease =
            shared.lease.lock().clone().ok_or_else(|| {
                anyhow::anyhow!("the transaction coordinator's lease is not held")
            })?;
        let mut client = shared.pool.get().await?;
        starling_postgres::transactions::write_records(&mut client, &lease, records).await?;
        Ok(())
    }

    fn start_jobs(&self, jobs: Vec<MarkerJob>) {
        for job in jobs {
            // The receiver goes only at shutdown; a restart redoes the job.
            let _ = self.inner.jobs.send(job);
        }
    }

    async fn fresh_producer_id(&self) -> Result<i64, TxnFailure> {
        self.inner.producer_ids.next().await.map_err(|e| {
            tracing::warn!(error = %e, "cannot reserve producer ids");
            TxnFailure::Unavailable
        })
    }
}

/// A core holding what the store holds.
async fn load(
    config: &TxnConfig,
    store: &MetadataStorage,
) -> anyhow::Result<TransactionCoordinator> {
    let mut core = TransactionCoordinator::new(config.clone());
    let records = store.txn_records().await?;
    for record in &records {
        core.replay(record);
    }
    tracing::info!(
        transactional_ids = records.len(),
        "transaction coordinator loaded"
    );
    Ok(core)
}
