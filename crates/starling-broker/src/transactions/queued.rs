//! Transaction markers across nodes (PostgreSQL storage): the coordinator queues every marker
//! of a decided transaction in the database (`starling_postgres::transactions`), under its
//! lease, and each node writes those whose partition it leads or whose group it coordinates.
//!
//! - [`write()`], on the coordinator: queues the job's markers, carries out this node's share at
//!   once, and waits until every marker of the producer is written (woken by the database's
//!   notifications; a row for a topic deleted since is dropped). A marker not written within
//!   [`WAIT`] fails the attempt, and the job is tried again (queuing again is harmless).
//! - [`run`], on every node: carries out the queued markers of what the node leads whenever the
//!   database says markers were queued, and every heartbeat interval (a partition or group
//!   taken over from a node that died has its markers written by its new owner).
//! - Each node's `LISTEN` connection (`crate::cluster::listen`) wakes both through
//!   [`MarkerQueue::heard_queued`] and [`MarkerQueue::heard_done`].
//!
//! A node carries out queued markers one pass at a time, and deletes each row only after its
//! marker is written: the coordinator completes the transaction only when the rows are gone,
//! so no marker of that transaction can be written after the producer's next one began. A
//! queue that is not the coordinator's (its lease lost) is refused by the database.

use std::sync::Arc;
use std::time::Duration;

use starling_log::producer_state::TxnMarker;
use starling_postgres::lease::Lease;
use starling_postgres::transactions::{self, MarkerTarget, QueuedMarker};
use starling_txn::MarkerJob;
use tokio::sync::{Mutex, Notify};

use super::markers::{partition_of, settle_group, write_marker};
use crate::Broker;

/// How long one attempt waits for other nodes to write their markers.
pub const WAIT: Duration = Duration::from_secs(10);

/// How often a waiting coordinator looks at the queue again without being woken (a
/// notification lost while the listener reconnects).
const LOOK_AGAIN: Duration = Duration::from_millis(500);

/// What the nodes' notifications wake, and the one pass at a time this node makes.
#[derive(Default)]
pub struct MarkerQueue {
    /// Markers were queued: [`run`] makes a pass.
    queued: Notify,
    /// A marker was written: waiting coordinators look at the queue again.
    done: Notify,
    /// Held by a pass over the queue.
    pass: Mutex<()>,
}

impl MarkerQueue {
    /// The database said markers were queued: [`run`] makes a pass.
    pub fn heard_queued(&self) {
        self.queued.notify_one();
    }

    /// The database said a marker was written: waiting coordinators look again.
    pub fn heard_done(&self) {
        self.done.notify_waiters();
    }
}

/// Queues the job's markers under the coordinator's `lease`, writes this node's share and waits
/// for the rest.
pub async fn write(broker: &Arc<Broker>, job: &MarkerJob, lease: &Lease) -> Result<(), String> {
    let (Some(leases), Some(queue)) = (
        broker.topics.leadership(),
        broker.transactions.marker_queue(),
    ) else {
        return Err("no PostgreSQL storage".to_string());
    };
    let producer_id = job.producer.producer_id;
    let markers: Vec<QueuedMarker> = job
        .partitions
        .iter()
        .map(|tp| MarkerTarget::Partition(tp.clone()))
        .chain(job.groups.iter().map(|g| MarkerTarget::Group(g.clone())))
        .map(|target| QueuedMarker {
            target,
            producer_id,
            producer_epoch: job.producer.epoch,
            commit: job.commit,
            transactional_id: job.transactional_id.clone(),
        })
        .collect();
    let mut client = leases.pool().get().await.map_err(|e| e.to_string())?;
    transactions::queue(&mut client, lease, &markers)
        .await
        .map_err(|e| e.to_string())?;
    carry_out_queued(broker).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let woken = queue.done.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let mut left = Vec::new();
        for marker in transactions::pending(&**client, producer_id)
            .await
            .map_err(|e| e.to_string())?
        {
            match &marker.target {
                // The topic was deleted: nobody will write it, and nobody needs it.
                MarkerTarget::Partition(tp) if broker.topics.get(&tp.topic).is_none() => {
                    transactions::done(&**client, &marker)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                _ => left.push(marker),
            }
        }
        let Some(first) = left.first() else {
            return Ok(());
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{} markers not written yet, the first for {:?}",
                left.len(),
                first.target
            ));
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(LOOK_AGAIN) => {}
            _ = broker.shutdown.cancelled() => return Err("shutting down".to_string()),
        }
    }
}

/// Makes a pass over the queued markers whenever markers are queued, and every heartbeat
/// interval, until the broker shuts down.
pub async fn run(broker: Arc<Broker>) {
    let Some(queue) = broker.transactions.marker_queue() else {
        return;
    };
    let every = Duration::from_millis(broker.config.broker_heartbeat_interval_ms);
    loop {
        tokio::select! {
            _ = queue.queued.notified() => {}
            _ = tokio::time::sleep(every) => {}
            _ = broker.shutdown.cancelled() => return,
        }
        carry_out_queued(&broker).await;
    }
}

/// One pass: writes every queued marker whose partition this node leads or whose group it
/// coordinates, deleting each row once written. Failures are logged and left for a later pass.
pub async fn carry_out_queued(broker: &Broker) {
    let (Some(leases), Some(queue)) = (
        broker.topics.leadership(),
        broker.transactions.marker_queue(),
    ) else {
        return;
    };
    let _pass = queue.pass.lock().await;
    let client = match leases.pool().get().await {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the queued transaction markers");
            return;
        }
    };
    let markers = match transactions::queued(&**client).await {
        Ok(markers) => markers,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the queued transaction markers");
            return;
        }
    };
    let view = leases.view();
    for marker in markers {
        let written = match &marker.target {
            MarkerTarget::Partition(tp) => {
                let Some(partition) = partition_of(broker, tp) else {
                    continue;
                };
                let led_here = partition
                    .log
                    .postgres()
                    .is_some_and(|replica| replica.leader().is_some());
                if !led_here {
                    continue;
                }
                let txn_marker = TxnMarker {
                    producer_id: marker.producer_id,
                    epoch: marker.producer_epoch,
                    commit: marker.commit,
                    coordinator_epoch: 0,
                };
                write_marker(&partition, txn_marker)
                    .await
                    .map_err(|e| format!("{tp}: {e}"))
            }
            MarkerTarget::Group(group) => {
                let here = leases.held_group(group).is_some()
                    || view.coordinator_of(group).map(|n| n.node_id) == Some(leases.node_id());
                if !here {
                    continue;
                }
                settle_group(broker, group, marker.producer_id, marker.commit).await
            }
        };
        let result = match written {
            Ok(()) => transactions::done(&**client, &marker)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(error) = result {
            tracing::warn!(
                transactional_id = marker.transactional_id,
                producer_id = marker.producer_id,
                error,
                "a queued transaction marker is not written yet; retrying"
            );
        }
    }
}
