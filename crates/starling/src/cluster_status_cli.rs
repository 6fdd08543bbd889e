//! `starling cluster status --storage postgres://…`: a cluster on PostgreSQL as its database
//! says — every registered node with its share, and who leads each partition, coordinates each
//! group and coordinates transactions. Read from the database (one connection, nothing
//! written), so it works with every node down.

use anyhow::Context;
use starling_postgres::status::{ClusterStatus, LeaseStatus};

use crate::group_cli::render_table;

pub async fn status(storage: &str, json: bool) -> anyhow::Result<()> {
    let status = starling_postgres::status::read_url(storage)
        .await
        .context("reading the cluster's status from its database")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(())
}

/// Seconds with one decimal, for lease times (negative: lapsed that long ago).
fn seconds(ms: i64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn state(live: bool) -> &'static str {
    if live {
        "live"
    } else {
        "lapsed"
    }
}

/// A lease's holder, epoch, state and time left, as table cells.
fn holder(l: &LeaseStatus) -> [String; 4] {
    [
        l.owner.to_string(),
        l.epoch.to_string(),
        state(l.live).to_string(),
        seconds(l.left_ms),
    ]
}

fn render(status: &ClusterStatus) -> String {
    let mut out = format!(
        "CLUSTER  {}\n\n",
        status.cluster_id.as_deref().unwrap_or("-")
    );
    let nodes: Vec<Vec<String>> = status
        .nodes
        .iter()
        .map(|n| {
            let coordinates_transactions = status.held_by(n.node_id, "transactions").count() > 0;
            vec![
                n.node_id.to_string(),
                format!("{}:{}", n.host, n.port),
                state(n.live).to_string(),
                seconds(n.lease_left_ms),
                status.held_by(n.node_id, "partition").count().to_string(),
                status.held_by(n.node_id, "group").count().to_string(),
                if coordinates_transactions { "yes" } else { "-" }.to_string(),
            ]
        })
        .collect();
    out.push_str(&render_table(
        &[
            "NODE",
            "ADDRESS",
            "REGISTRATION",
            "LEFT",
            "PARTITIONS",
            "GROUPS",
            "TRANSACTIONS",
        ],
        &nodes,
    ));
    let of_kind = |kind: &str| -> Vec<&LeaseStatus> {
        status.leases.iter().filter(|l| l.kind == kind).collect()
    };
    let partitions: Vec<Vec<String>> = of_kind("partition")
        .iter()
        .map(|l| {
            [
                l.topic
                    .clone()
                    .unwrap_or_else(|| format!("(deleted) {}", l.name)),
                l.partition.map_or("-".to_string(), |p| p.to_string()),
            ]
            .into_iter()
            .chain(holder(l))
            .collect()
        })
        .collect();
    out.push('\n');
    out.push_str(&render_table(
        &["TOPIC", "PARTITION", "LEADER", "EPOCH", "LEASE", "LEFT"],
        &partitions,
    ));
    let groups: Vec<Vec<String>> = of_kind("group")
        .iter()
        .map(|l| std::iter::once(l.name.clone()).chain(holder(l)).collect())
        .collect();
    out.push('\n');
    out.push_str(&render_table(
        &["GROUP", "COORDINATOR", "EPOCH", "LEASE", "LEFT"],
        &groups,
    ));
    out.push('\n');
    match of_kind("transactions").first() {
        Some(l) => out.push_str(&format!(
            "TRANSACTION COORDINATOR  node {} (epoch {}, lease {}, {} left)\n",
            l.owner,
            l.epoch,
            state(l.live),
            seconds(l.left_ms)
        )),
        None => out.push_str("TRANSACTION COORDINATOR  -\n"),
    }
    out
}
