//! What a node says about the cluster: the brokers Metadata and DescribeCluster list, each
//! partition's leader, each group's coordinator and the transaction coordinator.
//!
//! With embedded storage the cluster is this node, leading every partition and coordinating
//! every group. On PostgreSQL it is the live nodes and the leases as this node's last
//! leadership round saw them ([`crate::leases::ClusterView`]); what this node leads itself it
//! knows first-hand. Every node is listed at its address on the listener the asking client
//! connected to (this node's from its configuration, another's as it registered it; a node
//! without a listener of that name at its first listener's address).
//!
//! [`listen`] hears what other nodes changed and [`follow_other_nodes`] takes it in.

use std::sync::Arc;
use std::time::Duration;

use starling_postgres::metadata::MetadataKind;
use starling_postgres::notify::{Event, Listener};
use uuid::Uuid;

use crate::api::RequestContext;
use crate::topics::Partition;
use crate::Broker;

/// A broker as the clients are told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// This node, at the address of the listener `ctx` came in on.
pub fn this_node(broker: &Broker, ctx: &RequestContext) -> Node {
    let (host, port) = ctx.listener.advertised.clone();
    Node {
        id: broker.config.node_id,
        host,
        port,
        rack: None,
    }
}

/// Every live broker, by id (this one whatever the database says: it is answering).
pub fn nodes(broker: &Broker, ctx: &RequestContext) -> Vec<Node> {
    let me = this_node(broker, ctx);
    let Some(leases) = broker.topics.leadership() else {
        return vec![me];
    };
    let view = leases.view();
    let mut nodes: Vec<Node> = view
        .nodes
        .iter()
        .filter(|n| n.node_id != me.id)
        .map(|n| other_node(n, ctx))
        .collect();
    nodes.push(me);
    nodes.sort_by_key(|n| n.id);
    nodes
}

/// The node leading `partition` of topic `topic_id`, and its leader epoch; `None` while no
/// live node leads it.
pub fn partition_leader(
    broker: &Broker,
    topic_id: Uuid,
    partition: &Partition,
) -> Option<(i32, i32)> {
    if let Some(epoch) = partition.log.leader_epoch() {
        return Some((broker.config.node_id, epoch));
    }
    let leases = broker.topics.leadership()?;
    let view = leases.view();
    let name = starling_postgres::partition_log::lease_name(topic_id, partition.index);
    let (owner, epoch) = *view.partition_leaders.get(&name)?;
    // This node's own lease without a leader: it is being opened (or failed to).
    if owner == broker.config.node_id || view.node(owner).is_none() {
        return None;
    }
    Some((owner, i32::try_from(epoch).unwrap_or(i32::MAX)))
}

/// The node coordinating `group`: placement over the live nodes (the node it names takes the
/// group's lease on the first request). `None` while no node is known live.
pub fn group_coordinator(broker: &Broker, ctx: &RequestContext, group: &str) -> Option<Node> {
    let Some(leases) = broker.topics.leadership() else {
        return Some(this_node(broker, ctx));
    };
    let view = leases.view();
    let owner = view.coordinator_of(group)?;
    if owner.node_id == broker.config.node_id {
        return Some(this_node(broker, ctx));
    }
    Some(other_node(owner, ctx))
}

/// The node coordinating transactions: this one with embedded storage; on PostgreSQL the
/// holder of the transaction coordinator's lease, or the live node placement gives it to while
/// nobody holds it.
pub fn transaction_coordinator(broker: &Broker, ctx: &RequestContext) -> Option<Node> {
    let Some(leases) = broker.topics.leadership() else {
        return Some(this_node(broker, ctx));
    };
    if broker.transactions.coordinates() {
        return Some(this_node(broker, ctx));
    }
    let view = leases.view();
    let owner = view.transaction_coordinator()?;
    if owner.node_id == broker.config.node_id {
        return Some(this_node(broker, ctx));
    }
    Some(other_node(owner, ctx))
}

/// Another node, at its address on the listener `ctx` came in on.
fn other_node(node: &starling_postgres::node::NodeInfo, ctx: &RequestContext) -> Node {
    let (host, port) = node.address_on(&ctx.listener.name);
    Node {
        id: node.node_id,
        host,
        port,
        rack: node.rack.clone(),
    }
}

/// With PostgreSQL storage: takes in what other nodes sharing the database changed — topics,
/// ACLs, client quotas, SCRAM credentials and run-time broker configs — by reading back each
/// kind the database said changed ([`listen`]). Run before every leadership round, so a
/// change made on one node is in force on the others within a heartbeat interval. A read that
/// fails is logged and tried again next time.
pub async fn follow_other_nodes(broker: &Broker) {
    let Some(leases) = broker.topics.leadership() else {
        return;
    };
    for kind in leases.take_metadata_changed() {
        let read: anyhow::Result<()> = match kind {
            MetadataKind::Topics => broker.topics.follow_stored().await.map_err(Into::into),
            MetadataKind::Acls => broker.acls.follow_stored().await.map_err(Into::into),
            MetadataKind::ClientQuotas => broker.quotas.follow_stored().await.map_err(Into::into),
            MetadataKind::ScramCredentials => {
                broker.scram.follow_stored().await.map_err(Into::into)
            }
            MetadataKind::BrokerConfigs => broker.dynamic.follow_stored().await.map(|in_force| {
                if let Some(in_force) = in_force {
                    broker.apply_in_force(&in_force);
                }
            }),
        };
        if let Err(e) = read {
            tracing::warn!(kind = kind.as_str(), error = %e, "reading what another node changed failed; trying again");
            leases.metadata_changed([kind]);
        }
    }
}

/// With PostgreSQL storage: hears what the nodes tell each other through the database until
/// the broker shuts down — metadata changed (read again by [`follow_other_nodes`]) and
/// transaction markers queued or written (`crate::transactions::queued`). Whenever it starts
/// listening (at start, and again after losing its connection) it counts every kind of
/// metadata as changed, since what was notified before was not heard.
pub async fn listen(broker: Arc<Broker>, url: String) {
    let Some(leases) = broker.topics.leadership() else {
        return;
    };
    let markers = broker.transactions.marker_queue();
    let heard_everything_again = || {
        leases.metadata_changed(MetadataKind::ALL);
        if let Some(markers) = markers {
            markers.heard_queued();
            markers.heard_done();
        }
    };
    let mut listener = loop {
        match Listener::connect(&url).await {
            Ok(listener) => break listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen to the other nodes yet");
                tokio::select! {
                    _ = tokio::time::sleep(LISTEN_RETRY) => {}
                    _ = broker.shutdown.cancelled() => return,
                }
            }
        }
    };
    heard_everything_again();
    loop {
        let event = tokio::select! {
            event = listener.next(Duration::from_secs(3600)) => event,
            _ = broker.shutdown.cancelled() => return,
        };
        match event {
            Some(Event::MetadataChanged(kind)) => leases.metadata_changed([kind]),
            Some(Event::MarkersQueued) => {
                if let Some(markers) = markers {
                    markers.heard_queued();
                }
            }
            Some(Event::MarkersDone) => {
                if let Some(markers) = markers {
                    markers.heard_done();
                }
            }
            Some(Event::Reconnected) => heard_everything_again(),
            Some(Event::Appended(..)) | None => {}
        }
    }
}

/// How long [`listen`] waits before connecting again after failing to.
const LISTEN_RETRY: Duration = Duration::from_secs(1);
