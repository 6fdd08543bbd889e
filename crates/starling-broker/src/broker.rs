//! [`Broker`]: the state every connection shares — the configuration in force, the topics and
//! their logs, the group and transaction coordinators, quotas, metrics and the shutdown signal.
//! The server builds it once ([`crate::server::start`]); each API module reads what it needs.

use std::sync::Arc;

use crate::config::BrokerConfig;
use crate::metrics::Metrics;
use crate::topics::TopicRegistry;
use crate::{
    connection_limit, coordinator, dynamic_config, producer_ids, quotas, request_memory,
    transactions,
};

/// State shared by every connection.
pub struct Broker {
    /// The configuration the broker started with; [`Broker::dynamic`] has the one in force.
    pub config: BrokerConfig,
    /// Broker configs changed at run time, and how every config resolves (DescribeConfigs).
    pub dynamic: dynamic_config::DynamicConfigs,
    /// `max.connections` and the connections counted against it.
    pub connection_limit: Arc<connection_limit::ConnectionLimit>,
    /// `max.connections.per.ip` and its overrides, and the connections counted per address.
    pub per_ip_limit: Arc<connection_limit::PerIpLimit>,
    pub cluster_id: String,
    /// When the broker began serving (ms since the epoch).
    pub started_ms: i64,
    pub topics: TopicRegistry,
    /// The consumer-group coordinator task.
    pub groups: coordinator::CoordinatorHandle,
    /// Producer ids, for idempotent and transactional producers.
    pub producer_ids: Arc<producer_ids::ProducerIds>,
    /// The transaction coordinator.
    pub transactions: transactions::Transactions,
    pub metrics: Arc<Metrics>,
    /// Client quotas: what is set, and each client's rates against them.
    pub quotas: quotas::ClientQuotas,
    /// Failed SASL logins per client address, which slow that address down.
    pub failed_logins: crate::authentication::FailedLogins,
    /// The SCRAM users' credentials, served from memory, changed through the metadata storage.
    pub scram: crate::sasl::credentials::ScramCredentials,
    /// Where the metadata lives: the embedded store, or PostgreSQL.
    pub storage: crate::storage::MetadataStorage,
    /// The users SASL/PLAIN accepts (`sasl.plain.users.file`), loaded at start.
    pub plain_users: Option<crate::sasl::plain::PlainUsers>,
    /// ACLs and the authorizer (`authorizer.class.name`), if one is configured.
    pub acls: crate::acls::Acls,
    /// `queued.max.request.bytes`: what request frames in flight may hold, across connections.
    pub request_memory: request_memory::RequestMemory,
    /// Cancelled when the broker shuts down; long polls end early on it.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl Broker {
    /// Puts a configuration now in force (a run-time broker config change, here or on another
    /// node) into effect: connection limits and the topics' log defaults.
    pub fn apply_in_force(&self, in_force: &BrokerConfig) {
        self.connection_limit.set_max(in_force.max_connections);
        self.per_ip_limit.set(in_force.ip_limits());
        self.topics.set_defaults(in_force.log.clone());
    }
}
