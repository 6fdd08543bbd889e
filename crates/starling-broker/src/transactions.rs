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

pub mod markers;

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

use crate::now_ms;
use crate::producer_ids::ProducerIds;
use crate::storage::MetadataStorage;

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
            TxnFailure::NotStored => ResponseError::NotCoordinator,
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
}

impl Transactions {
    /// Loads the coordinator from the store; returns the handle and the receiver of its marker
    /// jobs (the jobs of transactions decided before the last stop are already queued on it).
    pub async fn start(
        config: TxnConfig,
        store: MetadataStorage,
        producer_ids: Arc<ProducerIds>,
    ) -> anyhow::Result<(Transactions, mpsc::UnboundedReceiver<MarkerJob>)> {
        let (jobs, rx) = mpsc::unbounded_channel();
        let core = load(&config, &store).await?;
        let resumed = core.loaded();
        let transactions = Transactions {
            inner: Arc::new(Inner {
                config,
                store,
                producer_ids,
                core: Mutex::new(Some(core)),
                jobs,
                deadline_changed: Notify::new(),
                completed: Notify::new(),
            }),
        };
        if !resumed.markers.is_empty() {
            tracing::info!(
                transactions = resumed.markers.len(),
                "finishing transactions decided before the last stop"
            );
        }
        transactions.start_jobs(resumed.markers);
        Ok((transactions, rx))
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

    /// Reports a marker job carried out: completes its transaction. `false` if the completion
    /// could not be stored (the job is to be carried out again).
    pub async fn markers_written(&self, job: &MarkerJob) -> bool {
        let mut guard = self.inner.core.lock().await;
        let Ok(core) = self.loaded(&mut guard).await else {
            return false;
        };
        let changes = core.markers_written(job, now_ms());
        let completes = !changes.records.is_empty();
        let stored = self.store_step(&mut guard, changes).await.is_ok();
        if stored && completes {
            self.inner.completed.notify_waiters();
        }
        stored
    }

    /// Whether `producer` may write transactional data to `partition` now (the partition was
    /// added to its open transaction).
    pub async fn verify_partition(
        &self,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<(), TxnFailure> {
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
        let mut guard = self.inner.core.lock().await;
        let core = self.loaded(&mut guard).await?;
        Ok(core.verify_group(producer, group_id)?)
    }

    /// Every transactional id and its state (DescribeTransactions, ListTransactions, metrics).
    pub async fn snapshot(&self) -> Result<Vec<(String, TransactionValue)>, TxnFailure> {
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
        if guard.is_none() {
            match load(&self.inner.config, &self.inner.store).await {
                Ok(core) => {
                    let resumed = core.loaded();
                    *guard = Some(core);
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
            if let Err(e) = self.inner.store.write_txn_records(&changes.records).await {
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
