//! With PostgreSQL storage: this node's leases in the database (`starling_postgres::ownership`)
//! on the partitions it leads, the consumer groups it coordinates and, on one node of the
//! cluster, the transaction coordinator's. The group coordinator's writes are fenced by the
//! group leases (`starling_postgres::group_records`), the transaction coordinator's by its
//! lease (`starling_postgres::transactions`), and every round renews them with the
//! partitions'.
//!
//! A round lists the live nodes and every partition, renews the leases this node keeps,
//! releases those placement gives another node and takes those that are free or lapsed
//! ([`Ownership::reconcile`]). Then every partition is made to match what is held: a partition
//! whose lease is held at an epoch it is not led under gets a [`PgPartition`] opened under that
//! lease (which rebuilds its producer state from the database); one whose lease is not held
//! stops being led. A partition that failed to open is tried again the next round.
//!
//! Groups are coordinated where placement puts them: [`NodeLeases::coordinate`] takes a group's
//! lease for the coordinator on the first request for it when placement over the live nodes
//! names this node, and refuses otherwise (the client asks FindCoordinator again, which
//! answers [`ClusterView::coordinator_of`]). Rounds renew the group leases held and release
//! those placement now gives another node (a node joined).
//!
//! The transaction coordinator's lease is wanted by the node placement names for it: a round
//! takes it when it is free, renews it, or releases it when placement moves it (a node joined);
//! after the round the transaction coordinator follows what is held
//! (`crate::transactions::Transactions::follow_lease`).
//!
//! Each round also notes what the other nodes hold ([`ClusterView`]): the live nodes, every
//! partition's leader and the transaction coordinator, for Metadata and FindCoordinator to
//! answer without a round trip.
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
use starling_postgres::lease::{self, Lease, LeaseKind};
use starling_postgres::metadata::MetadataKind;
use starling_postgres::node::NodeInfo;
use starling_postgres::ownership::{placement_key, Ownership};
use starling_postgres::partition::PgPartition;
use starling_postgres::partition_log::lease_name;
use starling_postgres::transactions::COORDINATOR;
use starling_postgres::{node, placement, PgPool};
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
    /// The group leases held (renewed by every round), by group (what the coordinator checks on every step, without
    /// waiting for a round in progress).
    held_groups: parking_lot::Mutex<HashMap<String, Lease>>,
    /// Bumped whenever `held_groups` changes (what [`NodeLeases::held_groups_version`] says).
    held_groups_version: std::sync::atomic::AtomicU64,
    /// The transaction coordinator's lease, if this node holds it.
    held_transactions: parking_lot::Mutex<Option<Lease>>,
    /// What the last round saw of the cluster.
    view: parking_lot::RwLock<Arc<ClusterView>>,
    /// The kinds of metadata changed in the database (by any node) and not read again yet.
    metadata_changed: parking_lot::Mutex<BTreeSet<MetadataKind>>,
}

/// The cluster as the last round saw it.
#[derive(Debug, Default)]
pub struct ClusterView {
    /// The live nodes, by id.
    pub nodes: Vec<NodeInfo>,
    /// Each led partition's leader and epoch, by lease name (`topic_id:partition`).
    pub partition_leaders: HashMap<String, (i32, i64)>,
    /// The node holding the transaction coordinator's lease, if one does.
    pub transactions_holder: Option<i32>,
}

impl ClusterView {
    /// The live node `node_id`, if it is one.
    pub fn node(&self, node_id: i32) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.node_id == node_id)
    }

    /// The live node placement gives `group` to.
    pub fn coordinator_of(&self, group: &str) -> Option<&NodeInfo> {
        self.placed(LeaseKind::Group, group)
    }

    /// The node coordinating transactions: the live holder of the coordinator's lease, else the
    /// node placement gives it to (which takes it on its next round).
    pub fn transaction_coordinator(&self) -> Option<&NodeInfo> {
        self.transactions_holder
            .and_then(|id| self.node(id))
            .or_else(|| self.placed(LeaseKind::Transactions, COORDINATOR))
    }

    fn placed(&self, kind: LeaseKind, name: &str) -> Option<&NodeInfo> {
        let live: Vec<i32> = self.nodes.iter().map(|n| n.node_id).collect();
        placement::owner(&placement_key(kind, name), &live).and_then(|id| self.node(id))
    }
}

/// Why this node does not coordinate a group.
#[derive(Debug, thiserror::Error)]
pub enum GroupLeaseError {
    /// Placement gives the group to another node (or no node is live).
    #[error("group '{group}' is coordinated by node {owner:?}")]
    NotHere { group: String, owner: Option<i32> },
    /// Placement gives the group to this node, but the node that had it still holds its lease
    /// (it releases it on its next round, or it lapses).
    #[error("group '{0}' is still held by the node that coordinated it")]
    TakingOver(String),
    #[error(transparent)]
    Lease(#[from] starling_postgres::lease::LeaseError),
    #[error("PostgreSQL: {0}")]
    Pool(String),
}

impl NodeLeases {
    pub fn new(pool: PgPool, node_id: i32, lease_time: Duration, interval: Duration) -> NodeLeases {
        NodeLeases {
            pool,
            node_id,
            interval,
            ownership: tokio::sync::Mutex::new(Ownership::new(node_id, lease_time)),
            held_groups: parking_lot::Mutex::new(HashMap::new()),
            held_groups_version: std::sync::atomic::AtomicU64::new(0),
            held_transactions: parking_lot::Mutex::new(None),
            view: parking_lot::RwLock::new(Arc::new(ClusterView::default())),
            metadata_changed: parking_lot::Mutex::new(BTreeSet::new()),
        }
    }

    /// Notes that `kinds` of metadata changed in the database (heard from its notifications).
    pub fn metadata_changed(&self, kinds: impl IntoIterator<Item = MetadataKind>) {
        self.metadata_changed.lock().extend(kinds);
    }

    /// The kinds of metadata changed since the last call, to be read again.
    pub fn take_metadata_changed(&self) -> BTreeSet<MetadataKind> {
        std::mem::take(&mut *self.metadata_changed.lock())
    }

    /// The database's connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// What the last round saw of the cluster.
    pub fn view(&self) -> Arc<ClusterView> {
        self.view.read().clone()
    }

    /// Publishes the group leases `ownership` holds to [`NodeLeases::held_group`], and the
    /// transaction coordinator's to [`NodeLeases::transaction_lease`].
    fn publish_held(&self, ownership: &Ownership) {
        let held: HashMap<String, Lease> = ownership
            .held()
            .filter(|l| l.kind == LeaseKind::Group)
            .map(|l| (l.name.clone(), l.clone()))
            .collect();
        let mut published = self.held_groups.lock();
        if *published != held {
            *published = held;
            // Bumped while the map is locked: whoever reads the new version reads the new map.
            self.held_groups_version
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        drop(published);
        *self.held_transactions.lock() = ownership
            .lease(LeaseKind::Transactions, COORDINATOR)
            .cloned();
    }

    /// Changes whenever the group leases held change (gained, lost, released, taken again).
    pub fn held_groups_version(&self) -> u64 {
        self.held_groups_version
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The transaction coordinator's lease, if this node holds it.
    pub fn transaction_lease(&self) -> Option<Lease> {
        self.held_transactions.lock().clone()
    }

    /// A connection from the pool, for a group lease change.
    async fn client(&self) -> Result<starling_postgres::PgClient, GroupLeaseError> {
        self.pool
            .get()
            .await
            .map_err(|e| GroupLeaseError::Pool(e.to_string()))
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
        // The groups coordinated here: those whose lease is held.
        let groups: Vec<String> = ownership
            .held()
            .filter(|l| l.kind == LeaseKind::Group)
            .map(|l| l.name.clone())
            .collect();
        // The transaction coordinator's lease is always wanted by the node placement names.
        let things: Vec<(LeaseKind, String)> = partitions
            .keys()
            .map(|name| (LeaseKind::Partition, name.clone()))
            .chain(groups.into_iter().map(|g| (LeaseKind::Group, g)))
            .chain([(LeaseKind::Transactions, COORDINATOR.to_string())])
            .collect();
        let client = self.pool.get().await?;
        let nodes = node::live_nodes(&**client).await?;
        let live: Vec<i32> = nodes.iter().map(|n| n.node_id).collect();
        let reconciled = ownership.reconcile(&**client, &live, &things).await;
        self.publish_held(&ownership);
        if reconciled.is_ok() {
            let leaders = lease::holders(&**client, LeaseKind::Partition).await;
            let transactions = lease::holder(&**client, LeaseKind::Transactions, COORDINATOR).await;
            match (leaders, transactions) {
                (Ok(leaders), Ok(transactions)) => {
                    *self.view.write() = Arc::new(ClusterView {
                        nodes,
                        partition_leaders: leaders
                            .into_iter()
                            .map(|l| (l.name, (l.owner, l.epoch)))
                            .collect(),
                        transactions_holder: transactions.map(|(owner, _)| owner),
                    })
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "listing the leases' holders failed")
                }
            }
        }
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

    /// The lease this node coordinates `group` under, if it holds one.
    pub fn held_group(&self, group: &str) -> Option<Lease> {
        self.held_groups.lock().get(group).cloned()
    }

    /// The lease this node coordinates `group` under: the one held, or taken now when
    /// placement over the live nodes gives the group to this node and the lease is free.
    pub async fn coordinate(&self, group: &str) -> Result<Lease, GroupLeaseError> {
        if let Some(held) = self.held_group(group) {
            return Ok(held);
        }
        let owner = self.view().coordinator_of(group).map(|n| n.node_id);
        if owner != Some(self.node_id) {
            return Err(GroupLeaseError::NotHere {
                group: group.to_string(),
                owner,
            });
        }
        let client = self.client().await?;
        let mut ownership = self.ownership.lock().await;
        let taken = ownership
            .acquire(&**client, LeaseKind::Group, group)
            .await?;
        match taken {
            Some(lease) => {
                self.publish_held(&ownership);
                Ok(lease)
            }
            None => Err(GroupLeaseError::TakingOver(group.to_string())),
        }
    }

    /// Gives up a group the coordinator no longer holds anything of (deleted, or never
    /// there), so its lease is not renewed forever.
    pub async fn release_group(&self, group: &str) -> Result<(), GroupLeaseError> {
        let Some(held) = self.held_group(group) else {
            return Ok(());
        };
        let client = self.client().await?;
        let mut ownership = self.ownership.lock().await;
        ownership.release(&**client, &held).await?;
        self.publish_held(&ownership);
        Ok(())
    }

    /// Forgets a group lease a write found lost.
    pub async fn group_lease_lost(&self, lost: &Lease) {
        let mut ownership = self.ownership.lock().await;
        ownership.forget(lost);
        self.publish_held(&ownership);
    }

    /// Runs a round every heartbeat interval until the broker shuts down.
    pub async fn run(self: Arc<Self>, broker: Arc<Broker>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = broker.shutdown.cancelled() => return,
            }
            // What other nodes changed first, so this round leads the topics they created.
            crate::cluster::follow_other_nodes(&broker).await;
            if let Err(e) = self.round(&broker.topics).await {
                tracing::warn!(node_id = self.node_id, error = %e, "partition leadership round failed");
            }
            broker
                .transactions
                .follow_lease(self.transaction_lease())
                .await;
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
        self.publish_held(&ownership);
        if let Err(e) = released {
            tracing::warn!(error = %e, "releasing this node's partition leases failed; they lapse by themselves");
        }
    }
}
