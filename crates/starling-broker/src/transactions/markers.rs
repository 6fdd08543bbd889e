//! Carrying out marker jobs: for a decided transaction, a commit or abort marker (a control
//! batch) in every partition it wrote to, and the end of its offset commits in every group it
//! committed offsets for; then the coordinator is told, which completes the transaction.
//!
//! With PostgreSQL storage the partitions and groups may be other nodes': every marker is
//! queued in the database instead, and written by whichever node leads its target
//! ([`super::queued`]).
//!
//! A job that fails part-way (a full disk, a group coordinator reloading) is tried again, with
//! a growing pause, until it succeeds or the broker stops (a restart resumes it). Repeating a
//! job is harmless: a partition that already has the marker skips it
//! ([`starling_log::PartitionLog::write_txn_marker`]), and a group whose pending offsets are
//! settled has nothing left to settle. A partition whose topic was deleted needs no marker.

use std::sync::Arc;
use std::time::Duration;

use starling_group::{ClientInfo, GroupRequest, GroupResponse};
use starling_log::producer_state::TxnMarker;
use starling_txn::{MarkerJob, TopicPartition};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::JobEnd;
use crate::partition_store::PartitionStore;
use crate::topics::Partition;
use crate::{now_ms, Broker};

const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Takes jobs off `jobs` until the broker shuts down, each carried out by a task of its own on
/// `tasks` (so shutdown waits for a marker being written before it closes the logs).
pub async fn run(
    broker: Arc<Broker>,
    mut jobs: mpsc::UnboundedReceiver<MarkerJob>,
    tasks: TaskTracker,
) {
    loop {
        let job = tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        tasks.spawn(carry_out(broker.clone(), job));
    }
}

async fn carry_out(broker: Arc<Broker>, job: MarkerJob) {
    let mut pause = RETRY_MIN;
    loop {
        let written = match broker.transactions.marker_queue() {
            None => write(&broker, &job).await,
            Some(_) => match broker.transactions.lease() {
                Some(lease) => super::queued::write(&broker, &job, &lease).await,
                // The node coordinating transactions now carries the job out.
                None => return,
            },
        };
        match written {
            Ok(()) => match broker.transactions.markers_written(&job).await {
                JobEnd::Completed | JobEnd::NotHere => return,
                JobEnd::Retry => {}
            },
            Err(error) => tracing::warn!(
                transactional_id = job.transactional_id,
                producer_id = job.producer.producer_id,
                error,
                "transaction markers not written yet; retrying"
            ),
        }
        tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// Writes the job's markers and settles its groups' offsets.
async fn write(broker: &Arc<Broker>, job: &MarkerJob) -> Result<(), String> {
    let marker = TxnMarker {
        producer_id: job.producer.producer_id,
        epoch: job.producer.epoch,
        commit: job.commit,
        coordinator_epoch: 0,
    };
    for tp in &job.partitions {
        let Some(partition) = partition_of(broker, tp) else {
            continue;
        };
        write_marker(&partition, marker)
            .await
            .map_err(|e| format!("{tp}: {e}"))?;
    }
    for group_id in &job.groups {
        settle_group(broker, group_id, job.producer.producer_id, job.commit).await?;
    }
    Ok(())
}

/// The partition `tp` names, if its topic (still) exists here.
pub(super) fn partition_of(broker: &Broker, tp: &TopicPartition) -> Option<Arc<Partition>> {
    broker
        .topics
        .get(&tp.topic)
        .and_then(|t| t.partition(tp.partition).cloned())
}

/// Writes `marker` in `partition` (nothing when it has no transaction of the producer open).
pub(super) async fn write_marker(
    partition: &Arc<Partition>,
    marker: TxnMarker,
) -> Result<(), String> {
    let written = match &partition.log {
        PartitionStore::Embedded(_) => {
            let p = partition.clone();
            tokio::task::spawn_blocking(move || {
                let log = p.log.embedded().expect("an embedded partition");
                log.write_txn_marker(marker, now_ms())
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|written| written.map(|_| ()))
        }
        PartitionStore::Postgres(replica) => replica
            .write_txn_marker(marker, now_ms())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    written?;
    partition.appended.notify_waiters();
    Ok(())
}

/// Ends `producer_id`'s transactional offset commits in `group_id`: kept with `commit`,
/// dropped otherwise.
pub(super) async fn settle_group(
    broker: &Broker,
    group_id: &str,
    producer_id: i64,
    commit: bool,
) -> Result<(), String> {
    let request = GroupRequest::TxnEnd {
        group_id: group_id.to_string(),
        producer_id,
        commit,
    };
    let client = ClientInfo {
        client_id: "starling-transaction-markers".to_string(),
        client_host: String::new(),
    };
    match broker.groups.call(0, client, request).await {
        Ok(GroupResponse::TxnEnd(Ok(()))) => Ok(()),
        Ok(GroupResponse::TxnEnd(Err(e))) => Err(format!("group {group_id}: {e:?}")),
        Ok(other) => Err(format!("group {group_id}: answered {other:?}")),
        Err(e) => Err(format!("group {group_id}: {e}")),
    }
}
