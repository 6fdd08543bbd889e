//! With PostgreSQL storage: this node's registration in the database (`starling_postgres::node`),
//! a lease on its `node.id` renewed every `broker.heartbeat.interval.ms` and lasting
//! `broker.session.timeout.ms` (Kafka's KRaft broker lease), released on a clean shutdown.
//!
//! A node started again soon after a kill finds its previous run's registration still live and
//! waits, at most the session timeout, for it to lapse, as a Kafka broker does.
//!
//! Nodes share the database's partitions, groups and transactions by leases (`crate::leases`);
//! each needs its own `node.id`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use starling_postgres::node::{self, NodeError, NodeInfo, Registration};
use starling_postgres::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::BrokerConfig;

/// This node's live registration.
pub struct NodeRegistration {
    pool: PgPool,
    registration: Registration,
    info: NodeInfo,
    ttl: Duration,
    interval: Duration,
}

impl NodeRegistration {
    /// Registers this node at its listeners' advertised addresses (`listeners`, by name; the
    /// first is the node's main address).
    pub async fn register(
        pool: PgPool,
        config: &BrokerConfig,
        listeners: &[(String, (String, i32))],
    ) -> anyhow::Result<Arc<NodeRegistration>> {
        let ttl = Duration::from_millis(config.broker_session_timeout_ms);
        let interval = Duration::from_millis(config.broker_heartbeat_interval_ms);
        if interval >= ttl {
            bail!(
                "broker.heartbeat.interval.ms ({}) must be shorter than broker.session.timeout.ms ({})",
                config.broker_heartbeat_interval_ms,
                config.broker_session_timeout_ms
            );
        }
        let Some((_, (host, port))) = listeners.first().cloned() else {
            bail!("a node needs a listener to register");
        };
        let info = NodeInfo {
            node_id: config.node_id,
            host,
            port,
            rack: None,
            listeners: listeners.iter().cloned().collect(),
        };
        let client = pool.get().await?;
        // A node killed and started again finds its own previous registration still live: as
        // a Kafka broker waits out its old session, wait for it to lapse.
        let patience = tokio::time::Instant::now() + ttl + Duration::from_secs(2);
        let registration = loop {
            match node::register(&**client, &info, ttl).await {
                Ok(registration) => break registration,
                Err(NodeError::IdInUse { .. }) if tokio::time::Instant::now() < patience => {
                    tracing::info!(
                        node_id = info.node_id,
                        "node.id is still registered by a previous run; waiting for it to lapse"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        drop(client);
        tracing::info!(
            node_id = info.node_id,
            ttl_ms = ttl.as_millis() as u64,
            "registered in the cluster database"
        );
        Ok(Arc::new(NodeRegistration {
            pool,
            registration,
            info,
            ttl,
            interval,
        }))
    }

    /// Renews the registration every heartbeat interval until `shutdown`, then releases it. A
    /// registration found lapsed (the database was out of reach longer than the session
    /// timeout) is taken again when the id is free.
    pub async fn run(self: Arc<NodeRegistration>, shutdown: CancellationToken) {
        let mut registration = self.registration.clone();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => break,
            }
            let client = match self.pool.get().await {
                Ok(client) => client,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach the database to renew this node's registration");
                    continue;
                }
            };
            match node::renew(&**client, &registration, self.ttl).await {
                Ok(()) => {}
                Err(NodeError::Lapsed(_)) => {
                    tracing::warn!(
                        node_id = self.info.node_id,
                        "this node's registration lapsed; registering again"
                    );
                    match node::register(&**client, &self.info, self.ttl).await {
                        Ok(again) => registration = again,
                        Err(e) => tracing::error!(error = %e, "registering again failed"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "renewing this node's registration failed"),
            }
        }
        match self.pool.get().await {
            Ok(client) => {
                if let Err(e) = node::deregister(&**client, &registration).await {
                    tracing::warn!(error = %e, "releasing this node's registration failed");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the database to release this node's registration")
            }
        }
    }
}
