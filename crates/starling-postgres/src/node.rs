//! Node registration: each node of a cluster holds a lease on its own `node.id` in the `nodes`
//! table, renewed while it runs, and finds the other nodes there.
//!
//! A node registers with a fresh incarnation (a random id per start). The `node.id` is its own
//! while its lease is live: a second process started with the same `node.id` (a
//! misconfiguration, or the old process not dead yet) is refused until the first one's lease
//! lapses, so two nodes never answer as the same id. A node that restarts after its lease
//! lapsed takes its id again under the new incarnation. [`live_nodes`] is what Metadata lists:
//! the nodes whose lease has not lapsed, by the database's clock.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_postgres::GenericClient;
use uuid::Uuid;

/// One registered node, as the others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub node_id: i32,
    /// The address of its first listener.
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// Every listener's advertised address, by listener name.
    pub listeners: BTreeMap<String, (String, i32)>,
}

impl NodeInfo {
    /// The node's address on the listener named `listener`, or its first listener's.
    pub fn address_on(&self, listener: &str) -> (String, i32) {
        self.listeners
            .get(listener)
            .cloned()
            .unwrap_or_else(|| (self.host.clone(), self.port))
    }
}

/// This node's registration: its id and this start's incarnation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub node_id: i32,
    pub incarnation: Uuid,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node.id {node_id} is in use by another live node (at {host}:{port}); its lease lapses within {ttl:?} of its last renewal")]
    IdInUse {
        node_id: i32,
        host: String,
        port: i32,
        ttl: Duration,
    },
    /// This node's lease lapsed and its id may have been taken: it must stop serving as that id.
    #[error("node {0}'s registration lapsed")]
    Lapsed(i32),
    #[error("PostgreSQL: {}", crate::describe(.0))]
    Database(#[from] tokio_postgres::Error),
}

/// Registers `node` for `ttl`, or fails with [`NodeError::IdInUse`] while another incarnation
/// holds the id.
pub async fn register(
    client: &impl GenericClient,
    node: &NodeInfo,
    ttl: Duration,
) -> Result<Registration, NodeError> {
    let incarnation = Uuid::new_v4();
    let taken = client
        .query_opt(
            "INSERT INTO nodes (node_id, incarnation, host, port, rack, lease_expires_at, listeners)
             VALUES ($1, $2, $3, $4, $5, clock_timestamp() + make_interval(secs => $6), $7)
             ON CONFLICT (node_id) DO UPDATE SET
                 incarnation = EXCLUDED.incarnation,
                 host = EXCLUDED.host,
                 port = EXCLUDED.port,
                 rack = EXCLUDED.rack,
                 listeners = EXCLUDED.listeners,
                 registered_at = now(),
                 lease_expires_at = EXCLUDED.lease_expires_at
             WHERE nodes.lease_expires_at <= clock_timestamp()
             RETURNING node_id",
            &[
                &node.node_id,
                &incarnation,
                &node.host,
                &node.port,
                &node.rack,
                &ttl.as_secs_f64(),
                &serde_json::to_value(&node.listeners).unwrap_or_default(),
            ],
        )
        .await?;
    if taken.is_some() {
        return Ok(Registration {
            node_id: node.node_id,
            incarnation,
        });
    }
    let holder = client
        .query_opt(
            "SELECT host, port FROM nodes WHERE node_id = $1",
            &[&node.node_id],
        )
        .await?;
    let (host, port) = holder.map_or((String::new(), 0), |row| (row.get(0), row.get(1)));
    Err(NodeError::IdInUse {
        node_id: node.node_id,
        host,
        port,
        ttl,
    })
}

/// Extends this node's lease by `ttl` from now; [`NodeError::Lapsed`] if it lapsed first (the
/// id may belong to another process by now).
pub async fn renew(
    client: &impl GenericClient,
    registration: &Registration,
    ttl: Duration,
) -> Result<(), NodeError> {
    let renewed = client
        .execute(
            "UPDATE nodes SET lease_expires_at = clock_timestamp() + make_interval(secs => $3)
             WHERE node_id = $1 AND incarnation = $2 AND lease_expires_at > clock_timestamp()",
            &[
                &registration.node_id,
                &registration.incarnation,
                &ttl.as_secs_f64(),
            ],
        )
        .await?;
    if renewed == 1 {
        Ok(())
    } else {
        Err(NodeError::Lapsed(registration.node_id))
    }
}

/// Ends this node's lease at once, on a clean shutdown, so the others need not wait for it.
pub async fn deregister(
    client: &impl GenericClient,
    registration: &Registration,
) -> Result<(), NodeError> {
    client
        .execute(
            "UPDATE nodes SET lease_expires_at = clock_timestamp() - interval '1 microsecond'
             WHERE node_id = $1 AND incarnation = $2",
            &[&registration.node_id, &registration.incarnation],
        )
        .await?;
    Ok(())
}

/// The nodes whose lease is live, by id.
pub async fn live_nodes(client: &impl GenericClient) -> Result<Vec<NodeInfo>, NodeError> {
    Ok(client
        .query(
            "SELECT node_id, host, port, rack, listeners FROM nodes
             WHERE lease_expires_at > clock_timestamp() ORDER BY node_id",
            &[],
        )
        .await?
        .iter()
        .map(|row| NodeInfo {
            node_id: row.get(0),
            host: row.get(1),
            port: row.get(2),
            rack: row.get(3),
            // Written by this code; anything unreadable reads as no listeners (the first
            // listener's address stands in).
            listeners: serde_json::from_value(row.get(4)).unwrap_or_default(),
        })
        .collect())
}
