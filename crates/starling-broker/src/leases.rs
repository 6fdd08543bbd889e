//! With PostgreSQL storage: this node's leases in the database (`starling_postgres::ownership`)
//! on the partitions it leads and the consumer groups it coordinates.
//!
//! Groups are leased when the coordinator first stores records of one
//! ([`NodeLeases::group_lease`]); the coordinator's writes are fenced by those leases
//! (`starling_postgres::group_records`), and every round renews them with the partitions'.
//!
//! A round lists the live nodes and every partition, renews the leases this node keeps,
//! releases those placement gives another node and takes those that are free or lapsed
//! ([`Ownership::reconcile`]). Then every partition is made to match what is held: a partition
//! whose lease is held at an epoch it is not led under gets a [`PgPartition`] opened under that
//! lease (which rebuilds its producer state from the database); one whose lease is not held
//! stops being led. A partition that failed to open is tried again the next round.
//!
//! Rounds run every `broker.heartbeat.interval.ms`, with leases lasting
//! `broker.session.timeout.ms`, and at once when topics or partitions are created (the handler
//! waits for that round, so the new partitions have a leader when it answers). The first round
//! runs before the node serves clients. On a clean shutdown, after the last request is
//! answered, each partition's producer state is snapshotted and every lease released, so
//! another node takes the partitions at once and replays nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use starling_postgres::lease::{Lease, LeaseKind};
use starling_postgres::ownership::Ownership;
use starling_postgres::partition::PgPartition;
use starling_postgres::partition_log::lease_name;
use starling_postgres::{node, PgPool};
use uuid::Uuid;

use crate::topics::{Partition, TopicRegistry};
use crate::Broker;

/// Partitions opened (or snapshotted at shutdown) at once (each is a few round trips).
const OPENING_AT_ONCE: usize = 8;

/// This node's partition leases and the rounds that keep them.
pub struct NodeLeases {
    pool: PgPool,
    node_id: i32,
    interval: Duration,
    ownership: tokio::sync::Mutex<Ownership>,
    /// The groups this node coordinates: leased, and renewed by every round.
    groups: parking_lot::Mutex<BTreeSet<String>>,
}

/// Why a group's lease could not be had.
#[derive(Debug, thiserror::Error)]
pub enum GroupLeaseError {
    #[error("group '{0}' is coordinated by another node")]
    HeldElsewhere(String),
    #[error(transparent)]
    Lease(#[from] starling_postgres::lease::LeaseError),
}

impl NodeLeases {
    pub fn new(pool: PgPool, node_id: i32, lease_time: Duration, interval: Duration) -> NodeLeases {
        NodeLeases {
            pool,
            node_id,
            interval,
            ownership: tokio::sync::Mutex::new(Ownership::new(node_id, lease_time)),
            groups: parking_lot::Mutex::new(BTreeSet::new()),
        }
    }

    /// One round (see the module docs). Rounds do not overlap.
    pub async fn round(&self, topics: &TopicRegistry) -> anyhow::Result<()> {
        let mut ownership = self.ownership.lock().await;
        // By lease name: the partition and its topic's id.
        let partitions: HashMap<String, (Uuid, Arc<Partition>)> = topics
            .all()
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.log.postgres().is_some())
                    .map(|p| (lease_name(t.id, p.index), (t.id, p.clone())))
            })
            .collect();
        let groups: Vec<String> = self.groups.lock().iter().cloned().collect();
        let things: Vec<(LeaseKind, String)> = partitions
            .keys()
            .map(|name| (LeaseKind::Partition, name.clone()))
            .chain(groups.into_iter().map(|g| (LeaseKind::Group, g)))
            .collect();
        let client = self.pool.get().await?;
        let live: Vec<i32> = node::live_nodes(&**client)
            .await?
            .iter()
            .map(|n| n.node_id)
            .collect();
        let reconciled = ownership.reconcile(&**client, &live, &things).await;
        drop(client);
        // Even after a failed round, what is known held and lost is applied.
        let mut opening = Vec::new();
        for (name, (topic_id, partition)) in &partitions {
            let Some(replica) = partition.log.postgres() else {
                continue;
            };
            let held = ownership.lease(LeaseKind::Partition, name);
            let led = replica.leader();
            match (held, led) {
                (Some(lease), Some(led)) if led.lease().epoch == lease.epoch => {}
                (Some(lease), _) => opening.push((*topic_id, partition.clone(), lease.clone())),
                (None, Some(_)) => {
                    tracing::info!(topic = %partition.topic, partition = partition.index, "no longer leading");
                    replica.set_leader(None);
                }
                (None, None) => {}
            }
        }
        drop(ownership);
        let pool = &self.pool;
        futures::stream::iter(opening)
            .for_each_concurrent(OPENING_AT_ONCE, |(topic_id, partition, lease)| async move {
                let epoch = lease.epoch;
                match PgPartition::open(pool.clone(), lease, topic_id, partition.index).await {
                    Ok(led) => {
                        if let Some(replica) = partition.log.postgres() {
                            replica.set_leader(Some(Arc::new(led)));
                            tracing::info!(topic = %partition.topic, partition = partition.index, epoch, "leading");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "opening a partition this node leads failed; trying again next round")
                    }
                }
            })
            .await;
        reconciled?;
        Ok(())
    }

    /// The lease this node coordinates `group` under, taken now if it is free: the coordinator
    /// writes the group's records under it.
    pub async fn group_lease(
        &self,
        client: &starling_postgres::PgClient,
        group: &str,
    ) -> Result<Lease, GroupLeaseError> {
        let mut ownership = self.ownership.lock().await;
        if let Some(held) = ownership.lease(LeaseKind::Group, group) {
            return Ok(held.clone());
        }
        match ownership
            .acquire(&***client, LeaseKind::Group, group)
            .await?
        {
            Some(lease) => {
                self.groups.lock().insert(group.to_string());
                Ok(lease)
            }
            None => Err(GroupLeaseError::HeldElsewhere(group.to_string())),
        }
    }

    /// Forgets a group lease a write found lost; the next write takes it again if it can.
    pub async fn group_lease_lost(&self, lost: &Lease) {
        self.ownership.lock().await.forget(lost);
    }

    /// Runs a round every heartbeat interval until the broker shuts down.
    pub async fn run(self: Arc<Self>, broker: Arc<Broker>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = broker.shutdown.cancelled() => return,
            }
            if let Err(e) = self.round(&broker.topics).await {
                tracing::warn!(node_id = self.node_id, error = %e, "partition leadership round failed");
            }
        }
    }

    /// Stops leading every partition and releases their leases (a clean shutdown), after
    /// storing a producer snapshot of each written to since its last, so the next leader
    /// replays nothing.
    pub async fn release_all(&self, topics: &TopicRegistry) {
        let mut ownership = self.ownership.lock().await;
        let mut led = Vec::new();
        topics.for_each_partition(|p| {
            if let Some(replica) = p.log.postgres() {
                if let Some(leader) = replica.leader() {
                    led.push((p.topic.clone(), p.index, leader));
                }
                replica.set_leader(None);
            }
        });
        futures::stream::iter(led)
            .for_each_concurrent(OPENING_AT_ONCE, |(topic, index, leader)| async move {
                if leader.offsets_since_snapshot() == 0 {
                    return;
                }
                if let Err(e) = leader.snapshot().await {
                    tracing::warn!(%topic, partition = index, error = %e, "storing a producer snapshot at shutdown");
                }
            })
            .await;
        let released = match self.pool.get().await {
            Ok(client) => ownership
                .release_all(&**client)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = released {
            tracing::warn!(error = %e, "releasing this node's partition leases failed; they lapse by themselves");
        }
    }
}
