//! What the database says about the cluster right now, for `starling cluster status`: the
//! registered nodes and every lease — who leads each partition, coordinates each group and
//! coordinates transactions, at which epoch, and how long each has left. Read only: nothing is
//! written and the schema is not migrated.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::GenericClient;

/// The cluster as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    /// `None` before the first node started.
    pub cluster_id: Option<String>,
    /// Every node that ever registered, by id.
    pub nodes: Vec<NodeStatus>,
    /// Every lease, live or lapsed, by kind and name.
    pub leases: Vec<LeaseStatus>,
}

/// One registered node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// Every listener's address, by name.
    pub listeners: BTreeMap<String, (String, i32)>,
    /// Whether its registration is live.
    pub live: bool,
    /// Milliseconds until its registration lapses (negative: since it lapsed).
    pub lease_left_ms: i64,
}

/// One lease.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseStatus {
    /// `partition`, `group` or `transactions`.
    pub kind: String,
    /// The lease's name (`topic_id:partition`, the group id, or `coordinator`).
    pub name: String,
    /// For a partition: its topic's name (`None` once the topic is deleted) and index.
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub owner: i32,
    pub epoch: i64,
    /// Whether it is live (not lapsed).
    pub live: bool,
    /// Milliseconds until it lapses (negative: since it lapsed).
    pub left_ms: i64,
}

impl ClusterStatus {
    /// The live leases of `kind` held by `node`.
    pub fn held_by<'a>(
        &'a self,
        node: i32,
        kind: &'a str,
    ) -> impl Iterator<Item = &'a LeaseStatus> {
        self.leases
            .iter()
            .filter(move |l| l.live && l.owner == node && l.kind == kind)
    }
}

/// Reads the cluster's status.
pub async fn read(client: &impl GenericClient) -> Result<ClusterStatus, tokio_postgres::Error> {
    let cluster_id = client
        .query_opt("SELECT cluster_id FROM cluster", &[])
        .await?
        .map(|row| row.get(0));
    let nodes = client
        .query(
            "SELECT node_id, host, port, rack, listeners,
                    (extract(epoch FROM lease_expires_at - clock_timestamp()) * 1000)::bigint
             FROM nodes ORDER BY node_id",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            let left: i64 = row.get(5);
            NodeStatus {
                node_id: row.get(0),
                host: row.get(1),
                port: row.get(2),
                rack: row.get(3),
                listeners: serde_json::from_value(row.get(4)).unwrap_or_default(),
                live: left > 0,
                lease_left_ms: left,
            }
        })
        .collect();
    let leases = client
        .query(
            "SELECT l.kind, l.name, l.owner, l.epoch,
                    (extract(epoch FROM l.expires_at - clock_timestamp()) * 1000)::bigint,
                    t.name,
                    CASE WHEN l.kind = 'partition'
                         THEN split_part(l.name, ':', 2)::integer END
             FROM leases l
             LEFT JOIN topics t
                    ON l.kind = 'partition' AND t.topic_id::text = split_part(l.name, ':', 1)
             ORDER BY l.kind, t.name, 7, l.name",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            let left: i64 = row.get(4);
            LeaseStatus {
                kind: row.get(0),
                name: row.get(1),
                owner: row.get(2),
                epoch: row.get(3),
                live: left > 0,
                left_ms: left,
                topic: row.get(5),
                partition: row.get(6),
            }
        })
        .collect();
    Ok(ClusterStatus {
        cluster_id,
        nodes,
        leases,
    })
}

/// Connects to `url` (one connection, no schema migration) and reads the cluster's status.
pub async fn read_url(url: &str) -> Result<ClusterStatus, tokio_postgres::Error> {
    crate::on_one_connection(url, async |client| read(client).await).await?
}
