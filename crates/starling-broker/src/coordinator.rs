//! The group coordinator's runtime: one task that owns the pure [`GroupCoordinator`] core and
//! drives it with a real clock and storage.
//!
//! Connections send requests over a channel and await their response. The task feeds each
//! request to the core with `now`, persists the records the core returns, and only then releases
//! the responses (some of which answer requests held earlier: JoinGroup and SyncGroup wait for
//! the rest of the group). It sleeps until the core's next timer deadline — no polling. Requests
//! that queue up while a write is in flight are handled together and their records written in
//! one transaction (group commit), so synchronous per-message offset commits from many
//! consumers share fsyncs.
//!
//! The task also answers read-only questions from the admin endpoint (every group's overview, a
//! group's rebalance history) from the core's memory, and reports each rebalance the core
//! closes: one log line and the `starling_group_rebalance*` metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use starling_group::{
    ClientInfo, GroupConfig, GroupCoordinator, GroupOverview, GroupRequest, GroupResponse, Output,
    RebalanceRecord, Record, RequestId,
};
use starling_meta::MetadataStore;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::now_ms;

/// How many queued requests one write may cover.
const MAX_BATCH: usize = 512;

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
    /// Every group's overview, read from memory.
    Overview {
        reply: oneshot::Sender<Vec<GroupOverview>>,
    },
    /// One group's rebalance history, read from memory (`None`: no such group).
    Rebalances {
        group_id: String,
        reply: oneshot::Sender<Option<Vec<RebalanceRecord>>>,
    },
}

/// Why a request got no response from the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("the group coordinator is shutting down")]
    Unavailable,
    #[error("the group coordinator could not persist the change")]
    StorageFailed,
}

/// A cheap handle the API handlers use to reach the coordinator task.
#[derive(Clone)]
pub struct CoordinatorHandle {
    tx: mpsc::Sender<Command>,
}

impl CoordinatorHandle {
    /// Sends a request and waits for its response (which may be held until a rebalance completes).
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
        rx.await.map_err(|_| CoordinatorError::StorageFailed)
    }

    /// Every group the coordinator holds, sorted by id.
    pub async fn overview(&self) -> Result<Vec<GroupOverview>, CoordinatorError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Overview { reply })
            .await
            .map_err(|_| CoordinatorError::Unavailable)?;
        rx.await.map_err(|_| CoordinatorError::Unavailable)
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
        rx.await.map_err(|_| CoordinatorError::Unavailable)
    }
}

/// Loads the coordinator's state from the store (replaying every stored record) and starts its
/// task. Returns the handle and the task's join handle.
pub fn start(
    config: GroupConfig,
    store: Arc<MetadataStore>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<(CoordinatorHandle, tokio::task::JoinHandle<()>)> {
    let mut core = GroupCoordinator::new(config);
    let stored = store.group_records()?;
    let count = stored.len();
    for (key, bytes) in stored {
        let record: Record = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("unreadable group record {key}: {e}"))?;
        core.replay(&record);
    }
    core.loaded(now_ms());
    tracing::info!(records = count, "group coordinator loaded");
    let (tx, rx) = mpsc::channel(4096);
    let task = tokio::spawn(run(core, store, metrics, rx, shutdown));
    Ok((CoordinatorHandle { tx }, task))
}

async fn run(
    mut core: GroupCoordinator,
    store: Arc<MetadataStore>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Command>,
    shutdown: CancellationToken,
) {
    let mut next_id: RequestId = 0;
    let mut waiting: HashMap<RequestId, oneshot::Sender<GroupResponse>> = HashMap::new();
    loop {
        let deadline = core.next_deadline().map(deadline_instant);
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            cmd = rx.recv() => match cmd {
                Some(cmd) => Some(cmd),
                None => break,
            },
            _ = sleep_until(deadline) => None,
        };
        let mut output = Output::default();
        if let Some(cmd) = first {
            let mut batch = vec![cmd];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            for cmd in batch {
                match cmd {
                    Command::Request {
                        version,
                        client,
                        request,
                        reply,
                    } => {
                        next_id += 1;
                        waiting.insert(next_id, reply);
                        merge(
                            &mut output,
                            core.handle(now_ms(), next_id, version, &client, request),
                        );
                    }
                    Command::Overview { reply } => {
                        let _ = reply.send(core.overview());
                    }
                    Command::Rebalances { group_id, reply } => {
                        let _ = reply.send(core.rebalances(&group_id));
                    }
                }
            }
        }
        // Timers due now fire whether we woke for them or for a request.
        merge(&mut output, core.expire(now_ms()));
        for record in &output.rebalances {
            report_rebalance(&metrics, record);
        }
        if !persist(&store, &output.records).await {
            // Nothing of this step is acknowledged: its responders are dropped, which closes those
            // clients' connections so they retry.
            for (id, _) in output.responses {
                waiting.remove(&id);
            }
            continue;
        }
        for (id, response) in output.responses {
            if let Some(reply) = waiting.remove(&id) {
                let _ = reply.send(response);
            }
        }
    }
    tracing::info!(held = waiting.len(), "group coordinator stopped");
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

async fn persist(store: &Arc<MetadataStore>, records: &[Record]) -> bool {
    if records.is_empty() {
        return true;
    }
    let batch: Vec<(String, Option<Vec<u8>>)> = records
        .iter()
        .map(|r| {
            let deleted = matches!(
                r,
                Record::Group { value: None, .. } | Record::Offset { value: None, .. }
            );
            let value = if deleted {
                None
            } else {
                serde_json::to_vec(r).ok()
            };
            (r.key(), value)
        })
        .collect();
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.write_group_records(&batch)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "persisting group records failed");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "group record writer failed");
            false
        }
    }
}

/// Converts a wall-clock deadline (ms since the epoch) into a tokio instant.
fn deadline_instant(deadline_ms: i64) -> tokio::time::Instant {
    let wait = (deadline_ms - now_ms()).max(0) as u64;
    tokio::time::Instant::now() + Duration::from_millis(wait)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
