//! Background upkeep of the partition logs: retention and the expiry of idle idempotent
//! producers (`log.retention.check.interval.ms`, `producer.id.expiration.ms`), and time-based
//! flushes and segment rolls (`log.flush.scheduler.interval.ms`).
//! Each pass over the embedded logs runs on a blocking thread, as it does file I/O; the
//! PostgreSQL partitions this node leads get retention, producer expiry and producer snapshots
//! (every [`SNAPSHOT_EVERY_OFFSETS`]) after it.

use std::sync::Arc;
use std::time::Duration;

use crate::{now_ms, Broker};

pub async fn run(broker: Arc<Broker>) {
    let mut retention = tokio::time::interval(Duration::from_millis(
        broker.config.retention_check_interval_ms,
    ));
    let mut flush = tokio::time::interval(Duration::from_millis(
        broker.config.flush_scheduler_interval_ms,
    ));
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let enforce_retention = tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            _ = retention.tick() => true,
            _ = flush.tick() => false,
        };
        let b = broker.clone();
        let pass = tokio::task::spawn_blocking(move || upkeep(&b, enforce_retention));
        if let Err(e) = pass.await {
            tracing::error!(error = %e, "log upkeep task failed");
        }
        if enforce_retention {
            upkeep_postgres(&broker).await;
        }
    }
}

/// Offsets written to a PostgreSQL partition after which its producer state is snapshotted
/// again, so a node taking it over replays at most about this many batches' columns.
pub const SNAPSHOT_EVERY_OFFSETS: i64 = 100_000;

/// Retention, producer expiry and producer snapshots for the PostgreSQL partitions this node
/// leads, one after another (each is a few statements).
async fn upkeep_postgres(broker: &Broker) {
    let now = now_ms();
    let producer_id_expiration_ms = broker.dynamic.effective().producer_id_expiration_ms;
    for topic in broker.topics.all() {
        for p in &topic.partitions {
            let Some(replica) = p.log.postgres() else {
                continue;
            };
            let Some(leader) = replica.leader() else {
                continue;
            };
            leader.expire_producers(now, producer_id_expiration_ms);
            if leader.offsets_since_snapshot() >= SNAPSHOT_EVERY_OFFSETS {
                if let Err(e) = leader.snapshot().await {
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "storing a producer snapshot");
                }
            }
            match replica.enforce_retention(now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    topic = %p.topic,
                    partition = p.index,
                    deleted_batches = n,
                    log_start_offset = p.log.log_start_offset(),
                    "retention deleted batches"
                ),
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "enforcing retention")
                }
            }
        }
    }
}

fn upkeep(broker: &Broker, enforce_retention: bool) {
    let now = now_ms();
    // A dynamic setting: the value in force now, not the one the broker started with.
    let producer_id_expiration_ms = broker.dynamic.effective().producer_id_expiration_ms;
    broker.topics.for_each_partition(|p| {
        let Some(log) = p.log.embedded() else {
            return;
        };
        if let Err(e) = log.roll_if_due(now) {
            tracing::error!(topic = %p.topic, partition = p.index, error = %e, "rolling segment");
        }
        if let Err(e) = log.maybe_flush(now) {
            tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flushing log");
        }
        if enforce_retention {
            let expired = log.expire_producers(now, producer_id_expiration_ms);
            if expired > 0 {
                tracing::debug!(topic = %p.topic, partition = p.index, expired, "producer ids expired");
            }
            match log.enforce_retention(now) {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    topic = %p.topic,
                    partition = p.index,
                    deleted_segments = n,
                    log_start_offset = log.log_start_offset(),
                    "retention deleted segments"
                ),
                Err(e) => tracing::error!(topic = %p.topic, partition = p.index, error = %e, "enforcing retention"),
            }
        }
    });
}
