//! The catalogue of config keys as DescribeConfigs reports them: every topic config Kafka has,
//! with its type, the broker keys that set its default (Kafka's synonyms), what Starling does
//! with it and a line of documentation; and every broker key Starling reads, with its type,
//! whether it can change at run time and how its default renders.
//!
//! Parsing a value into the log's settings stays in [`crate::config`]; this module only knows
//! names, types and words, so the describe and alter paths and the tests share one list.

use crate::config::BrokerConfig;

/// Kafka's `ConfigType` as DescribeConfigs v3+ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
}

/// Kafka's `ConfigSource`: where a described value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    Topic = 1,
    /// Set at run time for this broker.
    DynamicBroker = 2,
    /// Set at run time as the cluster-wide default.
    DynamicDefaultBroker = 3,
    /// Set in server.properties or with `--override`.
    StaticBroker = 4,
    /// Nobody set it: the default.
    Default = 5,
}

/// What Starling does with a topic config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The log honours it, and a change takes effect at once.
    Honoured,
    /// Accepted, validated and reported, with no effect on one node (replication throttles,
    /// preallocation, tiered storage left off).
    NoEffect,
}

/// One topic config.
#[derive(Debug)]
pub struct TopicKey {
    pub name: &'static str,
    pub config_type: ConfigType,
    /// Broker keys that set this key's default, most specific first.
    pub broker_synonyms: &'static [&'static str],
    /// The value when neither the topic nor the broker sets it (Kafka's default).
    pub default: &'static str,
    pub effect: Effect,
    pub doc: &'static str,
}

macro_rules! topic_key {
    ($name:expr, $ty:ident, [$($syn:expr),*], $default:expr, $effect:ident, $doc:expr) => {
        TopicKey {
            name: $name,
            config_type: ConfigType::$ty,
            broker_synonyms: &[$($syn),*],
            default: $default,
            effect: Effect::$effect,
            doc: $doc,
        }
    };
}

/// Every topic config, in Kafka's (alphabetical) order.
pub const TOPIC_KEYS: &[TopicKey] = &[
    topic_key!("cleanup.policy", List, ["log.cleanup.policy"], "delete", Honoured,
        "What happens to old segments: `delete` removes them by retention.ms and retention.bytes; `compact` keeps the latest record per key; both may be given."),
    topic_key!("compression.gzip.level", Int, ["compression.gzip.level"], "-1", Honoured,
        "Compression level when the broker compresses with gzip (1-9, or -1 for the codec's default)."),
    topic_key!("compression.lz4.level", Int, ["compression.lz4.level"], "9", Honoured,
        "Compression level when the broker compresses with lz4 (1-17; liblz4 compresses levels above 12 as 12)."),
    topic_key!("compression.type", String, ["compression.type"], "producer", Honoured,
        "The codec batches are stored with: `producer` keeps what the producer sent; uncompressed, gzip, snappy, lz4 or zstd."),
    topic_key!("compression.zstd.level", Int, ["compression.zstd.level"], "3", Honoured,
        "Compression level when the broker compresses with zstd (-131072 to 22)."),
    topic_key!("delete.retention.ms", Long, ["log.cleaner.delete.retention.ms"], "86400000", Honoured,
        "How long a tombstone (a record with a null value) stays in a compacted topic, so a consumer reading from the start sees the delete."),
    topic_key!("file.delete.delay.ms", Long, ["log.segment.delete.delay.ms"], "60000", NoEffect,
        "How long Kafka waits before removing a deleted segment's files; Starling removes them at once (open readers keep their handles)."),
    topic_key!("flush.messages", Long, ["log.flush.interval.messages"], "9223372036854775807", Honoured,
        "fsync the partition after this many records; 1 makes every acknowledged write durable on this disk."),
    topic_key!("flush.ms", Long, ["log.flush.interval.ms"], "9223372036854775807", Honoured,
        "fsync the partition when its last fsync is this old."),
    topic_key!("follower.replication.throttled.replicas", List, [], "", NoEffect,
        "Replicas whose follower fetches are throttled; a single node has no followers."),
    topic_key!("index.interval.bytes", Int, ["log.index.interval.bytes"], "4096", Honoured,
        "Bytes of batches between two entries of the offset and time indexes."),
    topic_key!("leader.replication.throttled.replicas", List, [], "", NoEffect,
        "Replicas whose leader-side replication is throttled; a single node has no followers."),
    topic_key!("local.retention.bytes", Long, ["log.local.retention.bytes"], "-2", NoEffect,
        "Tiered storage's local size bound; Starling has no tiered storage, so retention.bytes governs."),
    topic_key!("local.retention.ms", Long, ["log.local.retention.ms"], "-2", NoEffect,
        "Tiered storage's local time bound; Starling has no tiered storage, so retention.ms governs."),
    topic_key!("max.compaction.lag.ms", Long, ["log.cleaner.max.compaction.lag.ms"], "9223372036854775807", Honoured,
        "The longest a record may stay uncompacted in a compacted topic."),
    topic_key!("max.message.bytes", Int, ["message.max.bytes"], "1048588", Honoured,
        "The largest record batch the topic accepts."),
    topic_key!("message.timestamp.after.max.ms", Long, ["log.message.timestamp.after.max.ms"], "3600000", Honoured,
        "How far in the future a CreateTime timestamp may be, relative to the broker's clock; a record further ahead is refused with INVALID_TIMESTAMP."),
    topic_key!("message.timestamp.before.max.ms", Long, ["log.message.timestamp.before.max.ms"], "9223372036854775807", Honoured,
        "How far in the past a CreateTime timestamp may be, relative to the broker's clock; an older record is refused with INVALID_TIMESTAMP."),
    topic_key!("message.timestamp.type", String, ["log.message.timestamp.type"], "CreateTime", Honoured,
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the broker's clock."),
    topic_key!("min.cleanable.dirty.ratio", Double, ["log.cleaner.min.cleanable.ratio"], "0.5", Honoured,
        "The share of a compacted log not yet cleaned above which the cleaner cleans it."),
    topic_key!("min.compaction.lag.ms", Long, ["log.cleaner.min.compaction.lag.ms"], "0", Honoured,
        "The least time a record stays uncompacted in a compacted topic."),
    topic_key!("min.insync.replicas", Int, ["min.insync.replicas"], "1", Honoured,
        "Replicas that must hold a write acknowledged with acks=all; one node is one replica."),
    topic_key!("preallocate", Boolean, ["log.preallocate"], "false", NoEffect,
        "Whether Kafka preallocates segment files; Starling grows them as it writes."),
    topic_key!("remote.log.copy.disable", Boolean, [], "false", NoEffect,
        "Stops copying segments to tiered storage; Starling has no tiered storage."),
    topic_key!("remote.log.delete.on.disable", Boolean, [], "false", NoEffect,
        "Deletes tiered segments when tiering is turned off; Starling has no tiered storage."),
    topic_key!("remote.storage.enable", Boolean, [], "false", NoEffect,
        "Tiered storage for the topic; Starling has none, so only false is accepted."),
    topic_key!("retention.bytes", Long, ["log.retention.bytes"], "-1", Honoured,
        "Delete the oldest segments while the partition is larger than this; -1 for no bound."),
    topic_key!("retention.ms", Long, ["log.retention.ms", "log.retention.minutes", "log.retention.hours"], "604800000", Honoured,
        "Delete segments whose newest record is older than this; -1 keeps them forever."),
    topic_key!("segment.bytes", Int, ["log.segment.bytes"], "1073741824", Honoured,
        "Roll to a new segment when the active one would grow past this size."),
    topic_key!("segment.index.bytes", Int, ["log.index.size.max.bytes"], "10485760", NoEffect,
        "The largest offset index Kafka preallocates; Starling's indexes grow as needed."),
    topic_key!("segment.jitter.ms", Long, ["log.roll.jitter.ms", "log.roll.jitter.hours"], "0", NoEffect,
        "Random jitter Kafka subtracts from segment.ms; Starling rolls at segment.ms exactly."),
    topic_key!("segment.ms", Long, ["log.roll.ms", "log.roll.hours"], "604800000", Honoured,
        "Roll to a new segment when the active one's first batch is this old, so retention and compaction can act on it."),
    topic_key!("unclean.leader.election.enable", Boolean, ["unclean.leader.election.enable"], "false", NoEffect,
        "Whether an out-of-sync replica may become leader; one node is always the leader."),
];

/// The topic config named `name`.
pub fn topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.name == name)
}

/// The topic config a broker key sets the default of (`log.retention.hours` → `retention.ms`).
pub fn topic_key_for_broker_key(broker_key: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS
        .iter()
        .find(|k| k.broker_synonyms.contains(&broker_key))
}

/// One broker config.
pub struct BrokerKey {
    pub name: &'static str,
    pub config_type: ConfigType,
    /// Whether AlterConfigs and IncrementalAlterConfigs may change it at run time.
    pub dynamic: bool,
    /// Its default as Kafka would show it (`None`: Kafka's default is null, another key governs).
    pub default: fn(&BrokerConfig) -> Option<String>,
    pub doc: &'static str,
}

macro_rules! broker_key {
    ($name:expr, $ty:ident, $dynamic:expr, $default:expr, $doc:expr) => {
        BrokerKey {
            name: $name,
            config_type: ConfigType::$ty,
            dynamic: $dynamic,
            default: $default,
            doc: $doc,
        }
    };
}

fn none(_: &BrokerConfig) -> Option<String> {
    None
}

/// Every broker key Starling reads, sorted by name. The `log.*` topic defaults, `message.max.bytes`,
/// `compression.type`, `min.insync.replicas`, the cleaner's rates and sizes and
/// `max.connections` change at run time; the rest need a restart.
pub const BROKER_KEYS: &[BrokerKey] = &[
    broker_key!("admin.auth", String, false, |c| c.admin_auth.map(|m| m.name().to_string()),
        "Starling's own: `required` makes every admin endpoint route but /healthz ask for a bearer token or Basic credentials; `none` asks for none. Unset: none on a loopback admin.listen, and another address is refused at start."),
    broker_key!("admin.auth.basic.enable", Boolean, false, |c| Some(c.admin_auth_basic_enable.to_string()),
        "Starling's own: whether the admin endpoint accepts HTTP Basic credentials of SCRAM users and sasl.plain.users.file users."),
    broker_key!("admin.auth.tokens.file", String, false, |c| c.admin_auth_tokens_file.as_ref().map(|p| p.display().to_string()),
        "Starling's own: the admin endpoint's bearer tokens, one PRINCIPAL:sha256$HASH line each (starling admin-token create)."),
    broker_key!("admin.console.sample.interval.ms", Long, false, |c| Some(c.admin_console_sample_interval_ms.to_string()),
        "Starling's own: how often the web console samples topic produce and fetch rates and each group's lag; it keeps the last 90 samples."),
    broker_key!("admin.listen", String, false, |c| Some(c.admin_listen.map_or_else(|| "none".into(), |a| a.to_string())),
        "Starling's admin HTTP endpoint (/metrics, /healthz, /groups); `none` turns it off."),
    broker_key!("admin.ssl.enable", Boolean, false, |c| Some(c.admin_ssl_enable.to_string()),
        "Whether the admin endpoint serves HTTPS, with the ssl.* settings, each overridable as admin.ssl.<key>."),
    broker_key!("advertised.listeners", String, false, |c| (!c.advertised_listeners.is_empty()).then(|| c.advertised_listeners.iter().map(|(n, a)| format!("{n}://{a}")).collect::<Vec<_>>().join(",")),
        "Per listener name, the address handed to its clients, when it differs from the bound one."),
    broker_key!("allow.everyone.if.no.acl.found", Boolean, false, |c| Some(c.allow_everyone_if_no_acl_found.to_string()),
        "With an authorizer: whether a resource without any ACL is open to every principal."),
    broker_key!("authorizer.class.name", String, false, |c| Some(c.authorizer_class_name.clone()),
        "Kafka's org.apache.kafka.metadata.authorizer.StandardAuthorizer turns ACLs on; empty: no authorizer."),
    broker_key!("auto.create.topics.enable", Boolean, false, |c| Some(c.auto_create_topics.to_string()),
        "Whether Metadata for an unknown topic creates it."),
    broker_key!("broker.heartbeat.interval.ms", Int, false, |c| Some(c.broker_heartbeat_interval_ms.to_string()),
        "With storage=postgres://…: how often this node renews its registration in the database."),
    broker_key!("broker.id", Int, false, |c| Some(c.node_id.to_string()),
        "This broker's id (the same as node.id)."),
    broker_key!("broker.session.timeout.ms", Int, false, |c| Some(c.broker_session_timeout_ms.to_string()),
        "With storage=postgres://…: how long this node's registration lasts without a renewal; another node may take its id after that."),
    broker_key!("compression.type", String, true, |c| Some(c.log.compression_type.name().into()),
        "The default compression.type of topics."),
    broker_key!("connection.failed.authentication.delay.ms", Int, false, |c| Some(c.connection_failed_authentication_delay_ms.to_string()),
        "How long a connection whose login failed is held before it is closed (doubled per recent failure from its address, up to 10 s)."),
    broker_key!("connections.max.idle.ms", Long, false, |c| Some(c.connections_max_idle_ms.to_string()),
        "Idle connections are closed after this long."),
    broker_key!("connections.max.reauth.ms", Long, false, |c| Some(c.connections_max_reauth_ms.to_string()),
        "How long a SASL session lasts before the client must re-authenticate on its connection (KIP-368); 0: sessions do not expire."),
    broker_key!("default.replication.factor", Short, false, |c| Some(c.default_replication_factor.to_string()),
        "The replication factor of auto-created topics; one node holds one replica."),
    broker_key!("delete.topic.enable", Boolean, false, |c| Some(c.delete_topic_enable.to_string()),
        "Whether DeleteTopics may delete topics."),
    broker_key!("group.consumer.heartbeat.interval.ms", Int, false, |c| Some(c.group.consumer_heartbeat_interval_ms.to_string()),
        "The heartbeat interval handed to consumer-protocol (KIP-848) members."),
    broker_key!("group.consumer.max.size", Int, false, |c| Some(c.group.consumer_max_size.to_string()),
        "The most members a consumer-protocol group may have."),
    broker_key!("group.consumer.session.timeout.ms", Int, false, |c| Some(c.group.consumer_session_timeout_ms.to_string()),
        "The session timeout of consumer-protocol (KIP-848) members."),
    broker_key!("group.initial.rebalance.delay.ms", Int, false, |c| Some(c.group.initial_rebalance_delay_ms.to_string()),
        "How long the first rebalance of an empty classic group waits for more members."),
    broker_key!("group.max.session.timeout.ms", Int, false, |c| Some(c.group.max_session_timeout_ms.to_string()),
        "The longest session timeout a classic member may ask for."),
    broker_key!("group.max.size", Int, false, |c| Some(c.group.max_size.to_string()),
        "The most members a classic group may have."),
    broker_key!("group.min.session.timeout.ms", Int, false, |c| Some(c.group.min_session_timeout_ms.to_string()),
        "The shortest session timeout a classic member may ask for."),
    broker_key!("listener.security.protocol.map", String, false, |c| Some(c.listener_security_protocol_map.iter().map(|(n, p)| format!("{n}:{p}")).collect::<Vec<_>>().join(",")),
        "Each listener name's security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."),
    broker_key!("listeners", String, false, |c| Some(c.listeners.iter().map(|l| format!("{}://{}", l.name, l.addr)).collect::<Vec<_>>().join(",")),
        "The listeners clients connect to, NAME://host:port each."),
    broker_key!("log.cleaner.backoff.ms", Long, true, |c| Some(c.cleaner.backoff_ms.to_string()),
        "How long the cleaner waits when no compacted log needs cleaning."),
    broker_key!("log.cleaner.dedupe.buffer.size", Long, true, |c| Some(c.cleaner.dedupe_buffer_size.to_string()),
        "Memory for the cleaner's key-to-offset map, across its threads; a log with more keys is cleaned in several passes."),
    broker_key!("log.cleaner.enable", Boolean, false, |c| Some(c.cleaner.enable.to_string()),
        "Whether compacted topics are cleaned."),
    broker_key!("log.cleaner.io.max.bytes.per.second", Double, true, |_| Some(f64::MAX.to_string()),
        "The most bytes per second the cleaner reads plus writes, across its threads."),
    broker_key!("log.cleaner.threads", Int, true, |c| Some(c.cleaner.threads.to_string()),
        "Partitions cleaned at the same time."),
    broker_key!("log.cleanup.policy", List, true, |_| Some("delete".into()),
        "The default cleanup.policy of topics."),
    broker_key!("log.dirs", String, false, |c| Some(c.data_dir.display().to_string()),
        "The data directory holding the partition logs and the metadata store."),
    broker_key!("log.flush.interval.messages", Long, true, |c| Some(c.log.flush_interval_messages.min(i64::MAX as u64).to_string()),
        "The default flush.messages of topics."),
    broker_key!("log.flush.interval.ms", Long, true, none,
        "The default flush.ms of topics (null: leave it to the OS)."),
    broker_key!("log.flush.scheduler.interval.ms", Long, false, |c| Some(c.flush_scheduler_interval_ms.to_string()),
        "How often time-based flushes and segment rolls are checked."),
    broker_key!("log.index.interval.bytes", Int, true, |c| Some(c.log.index_interval_bytes.to_string()),
        "The default index.interval.bytes of topics."),
    broker_key!("log.message.timestamp.type", String, true, |_| Some("CreateTime".into()),
        "The default message.timestamp.type of topics."),
    broker_key!("log.retention.bytes", Long, true, |c| Some(c.log.retention_bytes.map_or(-1, |b| b as i64).to_string()),
        "The default retention.bytes of topics."),
    broker_key!("log.retention.check.interval.ms", Long, false, |c| Some(c.retention_check_interval_ms.to_string()),
        "How often retention is enforced."),
    broker_key!("log.retention.hours", Int, true, |_| Some("168".into()),
        "The default retention.ms of topics, in hours (log.retention.minutes and log.retention.ms take precedence)."),
    broker_key!("log.retention.minutes", Int, true, none,
        "The default retention.ms of topics, in minutes (log.retention.ms takes precedence)."),
    broker_key!("log.retention.ms", Long, true, none,
        "The default retention.ms of topics."),
    broker_key!("log.roll.hours", Int, true, |_| Some("168".into()),
        "The default segment.ms of topics, in hours (log.roll.ms takes precedence)."),
    broker_key!("log.roll.ms", Long, true, none,
        "The default segment.ms of topics."),
    broker_key!("log.segment.bytes", Int, true, |c| Some(c.log.segment_bytes.to_string()),
        "The default segment.bytes of topics."),
    broker_key!("max.connections", Int, true, |c| Some(c.max_connections.to_string()),
        "The most client connections the broker accepts at once."),
    broker_key!("max.connections.per.ip", Int, true, |c| Some(c.max_connections_per_ip.to_string()),
        "Connections one client address may hold open; more are closed as they arrive."),
    broker_key!("max.connections.per.ip.overrides", String, true, |c| Some(c.max_connections_per_ip_overrides.iter().map(|(ip, n)| format!("{ip}:{n}")).collect::<Vec<_>>().join(",")),
        "ADDRESS:COUNT exceptions to max.connections.per.ip."),
    broker_key!("message.max.bytes", Int, true, |c| Some(c.log.max_message_bytes.to_string()),
        "The default max.message.bytes of topics."),
    broker_key!("min.insync.replicas", Int, true, |_| Some("1".into()),
        "The default min.insync.replicas of topics."),
    broker_key!("node.id", Int, false, |c| Some(c.node_id.to_string()),
        "This broker's id."),
    broker_key!("num.partitions", Int, false, |c| Some(c.num_partitions.to_string()),
        "The partition count of auto-created topics."),
    broker_key!("offset.metadata.max.bytes", Int, false, |c| Some(c.group.offset_metadata_max_bytes.to_string()),
        "The longest metadata string an offset commit may carry."),
    broker_key!("offsets.retention.check.interval.ms", Long, false, |c| Some(c.group.offsets_retention_check_interval_ms.to_string()),
        "How often expired committed offsets are removed."),
    broker_key!("offsets.retention.minutes", Int, false, |c| Some((c.group.offsets_retention_ms / 60_000).to_string()),
        "How long an empty group's committed offsets are kept."),
    broker_key!("producer.id.expiration.ms", Int, true, |c| Some(c.producer_id_expiration_ms.to_string()),
        "A partition forgets an idempotent producer idle this long."),
    broker_key!("queued.max.request.bytes", Long, false, |c| Some(c.queued_max_request_bytes.map_or(-1, |b| b as i64).to_string()),
        "Bytes of requests being read or awaiting their answer, across connections; -1 for no bound."),
    broker_key!("sasl.authentication.timeout.ms", Long, false, |c| Some(c.sasl_authentication_timeout_ms.to_string()),
        "Starling's own: how long a client on a SASL listener has to authenticate."),
    broker_key!("sasl.enabled.mechanisms", List, false, |c| Some(c.sasl_enabled_mechanisms.join(",")),
        "The SASL mechanisms a SASL listener offers: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512."),
    broker_key!("sasl.server.max.receive.size", Int, false, |c| Some(c.sasl_server_max_receive_size.to_string()),
        "The largest frame a client may send before it has authenticated."),
    broker_key!("socket.request.max.bytes", Int, false, |c| Some(c.socket_request_max_bytes.to_string()),
        "The largest request the broker reads."),
    broker_key!("ssl.cipher.suites", List, false, |_| Some(String::new()),
        "The TLS cipher suites offered (IANA names); empty: all of rustls's."),
    broker_key!("ssl.client.auth", String, false, |_| Some("none".into()),
        "Whether TLS clients are asked for a certificate: required, requested or none."),
    broker_key!("ssl.enabled.protocols", List, false, |_| Some("TLSv1.2,TLSv1.3".into()),
        "The TLS versions offered."),
    broker_key!("ssl.handshake.timeout.ms", Long, false, |c| Some(c.ssl_handshake_timeout_ms.to_string()),
        "Starling's own: how long a client of a TLS listener has to complete the handshake."),
    broker_key!("ssl.keystore.reload.interval.ms", Long, false, |c| Some(c.ssl_keystore_reload_interval_ms.to_string()),
        "Starling's own: how often TLS key and trust store files are read again (changes apply to new connections); 0: never."),
    broker_key!("ssl.keystore.type", String, false, |_| Some("PEM".into()),
        "The key store format; Starling reads PEM."),
    broker_key!("ssl.principal.mapping.rules", String, false, |_| Some("DEFAULT".into()),
        "Rules turning a client certificate's distinguished name into a principal name."),
    broker_key!("ssl.truststore.type", String, false, |_| Some("PEM".into()),
        "The trust store format; Starling reads PEM."),
    broker_key!("storage", String, false, |c| Some(c.storage.display()),
        "Starling's own: where the metadata lives: `embedded` (redb under log.dirs, the default) or a postgres:// URL (the cluster back end: metadata, partition logs and group records in the database)."),
    broker_key!("super.users", String, false, |c| Some(c.super_users.clone()),
        "With an authorizer: principals (User:name) allowed everything, separated by `;`."),
    broker_key!("transaction.max.timeout.ms", Int, false, |c| Some(c.transaction.max_timeout_ms.to_string()),
        "The longest transaction timeout a producer may ask for."),
    broker_key!("transactional.id.expiration.ms", Int, false, |c| Some(c.transaction.id_expiration_ms.to_string()),
        "A transactional id idle this long is forgotten."),
];

/// The broker config named `name`.
pub fn broker_key(name: &str) -> Option<&'static BrokerKey> {
    BROKER_KEYS.iter().find(|k| k.name == name)
}

/// Kafka's synonyms of a broker key, most specific first: `log.retention.ms` is also set by
/// `log.retention.minutes` and `log.retention.hours`; most keys have only themselves.
pub fn broker_synonyms(name: &str) -> Vec<&str> {
    match topic_key_for_broker_key(name) {
        Some(topic) if topic.broker_synonyms.len() > 1 => {
            let position = topic
                .broker_synonyms
                .iter()
                .position(|s| *s == name)
                .unwrap_or(0);
            topic.broker_synonyms[position..].to_vec()
        }
        _ => vec![name],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_and_unique_so_describe_lists_them_in_kafkas_order() {
        for pair in TOPIC_KEYS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
        for pair in BROKER_KEYS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn every_topic_default_is_accepted_as_a_topic_value() {
        for key in TOPIC_KEYS {
            let mut log = starling_log::LogConfig::default();
            crate::config::apply_topic_config(&mut log, key.name, key.default)
                .unwrap_or_else(|e| panic!("{}: {e}", key.name));
        }
    }

    #[test]
    fn every_broker_default_parses_back_into_the_broker_config() {
        let defaults = BrokerConfig::default();
        for key in BROKER_KEYS {
            if let Some(value) = (key.default)(&defaults) {
                let mut config = BrokerConfig::default();
                config
                    .set(key.name, &value)
                    .unwrap_or_else(|e| panic!("{} = {value}: {e}", key.name));
            }
        }
    }

    #[test]
    fn dynamic_broker_keys_are_topic_defaults_cleaner_settings_or_named_exceptions() {
        for key in BROKER_KEYS.iter().filter(|k| {
            k.dynamic
                && !k.name.starts_with("log.cleaner.")
                && ![
                    "max.connections",
                    "max.connections.per.ip",
                    "max.connections.per.ip.overrides",
                    "producer.id.expiration.ms",
                ]
                .contains(&k.name)
        }) {
            assert!(
                topic_key_for_broker_key(key.name).is_some(),
                "{} is dynamic but sets no topic default",
                key.name
            );
        }
    }

    #[test]
    fn retention_synonyms_run_from_the_most_specific_key() {
        assert_eq!(
            broker_synonyms("log.retention.ms"),
            [
                "log.retention.ms",
                "log.retention.minutes",
                "log.retention.hours"
            ]
        );
        assert_eq!(
            broker_synonyms("log.retention.hours"),
            ["log.retention.hours"]
        );
        assert_eq!(broker_synonyms("num.partitions"), ["num.partitions"]);
    }
}
