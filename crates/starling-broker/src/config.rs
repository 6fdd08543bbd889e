//! Broker configuration under Apache Kafka's property names.
//!
//! Values come from defaults, then a `server.properties` file, then `--override key=value`.
//! A key Kafka does not know, or a value that does not parse, is refused with an error naming
//! it. Keys Kafka knows that mean nothing on a single embedded node (thread pool sizes, ZooKeeper,
//! KRaft quorum settings…) are accepted with a warning so a stock file still loads.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use starling_group::GroupConfig;
use starling_log::{CleanupPolicy, CompressionType, LogConfig, TimestampType};
use starling_txn::TxnConfig;

use crate::config_keys;
pub use crate::listeners::{ListenerAddress, SecurityProtocol};

/// Why a property was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("unknown configuration key '{0}'")]
    UnknownKey(String),
    #[error("invalid value '{value}' for configuration key '{key}': {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{path}: line {line}: {reason}")]
    File {
        path: String,
        line: usize,
        reason: String,
    },
}

/// Everything the broker reads from configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `listeners`: each client listener's name and the address it binds, in order; the first
    /// is the one `--listen` sets and `listening on` names.
    pub listeners: Vec<ListenerAddress>,
    /// Starling's `admin.listen`: where the admin HTTP endpoint (`/metrics`, `/healthz`,
    /// `/groups`) listens; `None` (the value `none`) disables it.
    pub admin_listen: Option<SocketAddr>,
    /// `advertised.listeners`: listener name → the `host:port` its clients are handed; a
    /// listener it does not name advertises the address it is bound to.
    pub advertised_listeners: BTreeMap<String, String>,
    /// The `ssl.*` keys set without a listener prefix, as given (read by [`crate::tls`]).
    pub ssl: BTreeMap<String, String>,
    /// `listener.name.<NAME>.<key>` settings: listener name → key → value.
    pub listener_settings: BTreeMap<String, BTreeMap<String, String>>,
    /// `ssl.handshake.timeout.ms` (Starling's own): how long a client of a TLS listener has to
    /// complete the handshake.
    pub ssl_handshake_timeout_ms: u64,
    /// `ssl.keystore.reload.interval.ms` (Starling's own): how often TLS listeners read their
    /// key and trust stores again, taking changed ones for new connections; 0: never.
    pub ssl_keystore_reload_interval_ms: u64,
    /// Starling's `admin.auth`: whether the admin endpoint asks for credentials. `None` (not
    /// set): no credentials on a loopback `admin.listen`, and a non-loopback one is refused at
    /// start until the operator chooses ([`BrokerConfig::check`]).
    pub admin_auth: Option<AdminAuthMode>,
    /// Starling's `admin.auth.tokens.file`: the bearer tokens the admin endpoint accepts, one
    /// `PRINCIPAL:sha256$HASH` line each (see [`crate::admin::auth`]); `None`: no tokens.
    pub admin_auth_tokens_file: Option<PathBuf>,
    /// Starling's `admin.auth.basic.enable`: whether the admin endpoint accepts HTTP Basic
    /// credentials, checked against the SCRAM credentials and the PLAIN users file.
    pub admin_auth_basic_enable: bool,
    /// How often the web console samples topic rates and group lag (`admin.console.sample.interval.ms`).
    pub admin_console_sample_interval_ms: u64,
    /// Starling's `admin.ssl.enable`: whether the admin endpoint serves HTTPS, with the `ssl.*`
    /// settings (each overridable as `admin.ssl.<key>`, e.g. `admin.ssl.keystore.location`).
    pub admin_ssl_enable: bool,
    /// `listener.security.protocol.map`: listener name → security protocol, Kafka's default
    /// mapping each protocol's own name (and `CONTROLLER`) unless set.
    pub listener_security_protocol_map: BTreeMap<String, String>,
    /// `sasl.enabled.mechanisms` (Kafka's default: `GSSAPI`, which Starling does not offer).
    pub sasl_enabled_mechanisms: Vec<String>,
    /// `sasl.server.max.receive.size`: the largest frame a client may send before it has
    /// authenticated.
    pub sasl_server_max_receive_size: usize,
    /// `connection.failed.authentication.delay.ms`: how long a connection whose login failed
    /// is held before it is closed (doubled per recent failure from its address).
    pub connection_failed_authentication_delay_ms: u64,
    /// `sasl.authentication.timeout.ms` (Starling's own): how long a connection on a SASL
    /// listener has to authenticate before it is closed.
    pub sasl_authentication_timeout_ms: u64,
    pub data_dir: PathBuf,
    /// `storage` (Starling's own, also `starling serve --storage`): the metadata back end,
    /// embedded (the default) or a PostgreSQL URL.
    pub storage: crate::storage::StorageKind,
    /// `node.id` (alias `broker.id`).
    pub node_id: i32,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor` (only 1 is meaningful on one node).
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: usize,
    /// `connections.max.idle.ms`.
    pub connections_max_idle_ms: u64,
    /// `broker.session.timeout.ms`: with PostgreSQL storage, how long this node's registration
    /// lasts without a renewal (Kafka's KRaft broker lease).
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`: with PostgreSQL storage, how often the registration is
    /// renewed.
    pub broker_heartbeat_interval_ms: u64,
    /// `connections.max.reauth.ms` (KIP-368): how long a SASL session lasts before the client
    /// must re-authenticate on its connection; 0: sessions do not expire (and clients may not
    /// re-authenticate). A listener may set its own as
    /// `listener.name.<name>.connections.max.reauth.ms`.
    pub connections_max_reauth_ms: u64,
    /// `queued.max.request.bytes`: bytes of request frames being read or awaiting their answer,
    /// across all connections (`None`: unbounded, Kafka's `-1`).
    pub queued_max_request_bytes: Option<usize>,
    /// `socket.request.read.timeout.ms` (Starling's own): how long a client may take to send
    /// the rest of a frame it has started; a connection that stalls mid-frame is closed.
    pub socket_request_read_timeout_ms: u64,
    /// `max.connections`.
    pub max_connections: usize,
    /// `max.connections.per.ip`: connections one client address may hold open.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`: `address:count` exceptions to it.
    pub max_connections_per_ip_overrides: BTreeMap<std::net::IpAddr, usize>,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `log.flush.scheduler.interval.ms`: how often time-based flushes and rolls are checked.
    pub flush_scheduler_interval_ms: u64,
    /// `producer.id.expiration.ms`: a partition forgets an idempotent producer whose last batch
    /// there is this old (checked with retention).
    pub producer_id_expiration_ms: i64,
    /// Defaults every topic's log inherits (`log.segment.bytes`, `log.retention.ms`, …).
    pub log: LogConfig,
    /// The log cleaner (compaction) settings, `log.cleaner.*`.
    pub cleaner: CleanerConfig,
    /// The group coordinator's settings (`group.*`, `offsets.*`).
    pub group: GroupConfig,
    /// The transaction coordinator's settings (`transaction.max.timeout.ms`,
    /// `transactional.id.expiration.ms`).
    pub transaction: TxnConfig,
    /// `quota.window.num` and `quota.window.size.seconds`: client quotas are measured over
    /// this many windows of this many seconds.
    pub quota_window_num: u32,
    pub quota_window_size_seconds: u32,
    /// `authorizer.class.name`: empty (no authorizer: the ACL APIs answer SECURITY_DISABLED),
    /// or one of [`AUTHORIZER_CLASS_NAMES`], which turns ACLs on.
    pub authorizer_class_name: String,
    /// `super.users`: principals allowed everything, separated by `;`.
    pub super_users: String,
    /// `allow.everyone.if.no.acl.found`: whether a resource without any ACL is open to all.
    pub allow_everyone_if_no_acl_found: bool,
    /// `sasl.plain.users.file` (Starling's own): the users SASL/PLAIN accepts, one
    /// `user:pbkdf2-sha512$…` line each (see [`crate::sasl::plain`]); `None`: nobody.
    pub sasl_plain_users_file: Option<PathBuf>,
    /// Properties accepted but without effect here, kept for `describe` style reporting.
    pub ignored: BTreeMap<String, String>,
    /// Every property set through [`BrokerConfig::set`] (the properties file and `--override`),
    /// as given: DescribeConfigs reports these as static broker configs.
    pub explicit: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listeners: vec![ListenerAddress::plaintext(
                "127.0.0.1:9092".parse().expect("literal address"),
            )],
            admin_listen: Some(DEFAULT_ADMIN_LISTEN),
            advertised_listeners: BTreeMap::new(),
            ssl: BTreeMap::new(),
            listener_settings: BTreeMap::new(),
            ssl_handshake_timeout_ms: 10_000,
            ssl_keystore_reload_interval_ms: 60_000,
            admin_auth: None,
            admin_auth_tokens_file: None,
            admin_auth_basic_enable: true,
            admin_console_sample_interval_ms: 10_000,
            admin_ssl_enable: false,
            data_dir: PathBuf::from("./data"),
            storage: crate::storage::StorageKind::Embedded,
            node_id: 1,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics: true,
            delete_topic_enable: true,
            socket_request_max_bytes: 104_857_600,
            connections_max_idle_ms: 600_000,
            broker_session_timeout_ms: 9_000,
            broker_heartbeat_interval_ms: 2_000,
            connections_max_reauth_ms: 0,
            queued_max_request_bytes: Some(DEFAULT_QUEUED_MAX_REQUEST_BYTES),
            socket_request_read_timeout_ms: 30_000,
            max_connections: i32::MAX as usize,
            max_connections_per_ip: i32::MAX as usize,
            max_connections_per_ip_overrides: BTreeMap::new(),
            retention_check_interval_ms: 300_000,
            flush_scheduler_interval_ms: 1_000,
            producer_id_expiration_ms: 86_400_000,
            log: LogConfig::default(),
            cleaner: CleanerConfig::default(),
            group: GroupConfig::default(),
            transaction: TxnConfig::default(),
            quota_window_num: 11,
            quota_window_size_seconds: 1,
            authorizer_class_name: String::new(),
            super_users: String::new(),
            allow_everyone_if_no_acl_found: false,
            sasl_plain_users_file: None,
            listener_security_protocol_map: default_security_protocol_map(),
            sasl_enabled_mechanisms: vec!["GSSAPI".to_string()],
            sasl_server_max_receive_size: 524_288,
            connection_failed_authentication_delay_ms: 100,
            sasl_authentication_timeout_ms: 30_000,
            ignored: BTreeMap::new(),
            explicit: BTreeMap::new(),
        }
    }
}

/// The log cleaner's settings, under Kafka's names.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`: whether compacted topics are cleaned at all.
    pub enable: bool,
    /// `log.cleaner.threads`: partitions cleaned at the same time.
    pub threads: usize,
    /// `log.cleaner.io.max.bytes.per.second`: the cleaner's read plus write rate, across its
    /// threads (`None`: unbounded, Kafka's default).
    pub io_max_bytes_per_second: Option<f64>,
    /// `log.cleaner.dedupe.buffer.size`: memory for the key → offset map, across threads.
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.backoff.ms`: the pause when no log needs cleaning.
    pub backoff_ms: u64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enable: true,
            threads: 1,
            io_max_bytes_per_second: None,
            dedupe_buffer_size: 128 * 1024 * 1024,
            backoff_ms: 15_000,
        }
    }
}

/// The `authorizer.class.name` values that turn ACLs on: Kafka's KRaft authorizer, and the
/// ZooKeeper-era one (whose ACL semantics are the same), accepted for old properties files.
pub const AUTHORIZER_CLASS_NAMES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
];

/// `queued.max.request.bytes` unless configured: room for two and a half of the largest
/// requests at the default `socket.request.max.bytes`.
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: usize = 256 * 1024 * 1024;

/// `address:count,...` (Kafka also takes host names; Starling takes IP addresses, so a
/// configuration never waits on a name lookup).
fn parse_ip_overrides(
    key: &str,
    value: &str,
) -> Result<BTreeMap<std::net::IpAddr, usize>, ConfigError> {
    let mut overrides = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (ip, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, value, "expected ADDRESS:COUNT,..."))?;
        let ip: std::net::IpAddr = ip
            .trim_matches(['[', ']'])
            .parse()
            .map_err(|_| invalid(key, value, format!("{ip} is not an IP address")))?;
        let count = count
            .parse()
            .map_err(|_| invalid(key, value, format!("{count} is not a connection count")))?;
        overrides.insert(ip, count);
    }
    Ok(overrides)
}

impl BrokerConfig {
    /// The per-address connection limits these settings make.
    pub fn ip_limits(&self) -> crate::connection_limit::IpLimits {
        crate::connection_limit::IpLimits {
            default: self.max_connections_per_ip,
            overrides: self.max_connections_per_ip_overrides.clone(),
        }
    }
}

/// The SASL mechanisms Starling's broker offers.
pub const SUPPORTED_SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// Kafka's default `listener.security.protocol.map`.
fn default_security_protocol_map() -> BTreeMap<String, String> {
    [
        ("CONTROLLER", "PLAINTEXT"),
        ("PLAINTEXT", "PLAINTEXT"),
        ("SSL", "SSL"),
        ("SASL_PLAINTEXT", "SASL_PLAINTEXT"),
        ("SASL_SSL", "SASL_SSL"),
    ]
    .into_iter()
    .map(|(n, p)| (n.to_string(), p.to_string()))
    .collect()
}

/// `NAME:PROTOCOL,...`, names upper-cased as Kafka does.
fn parse_security_protocol_map(
    key: &str,
    value: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut map = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry
            .split_once(':')
            .ok_or_else(|| invalid(key, value, "expected NAME:PROTOCOL,..."))?;
        let protocol = protocol.trim().to_ascii_uppercase();
        if SecurityProtocol::parse(&protocol).is_none() {
            return Err(invalid(
                key,
                value,
                format!("unknown security protocol {protocol}"),
            ));
        }
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

impl BrokerConfig {
    /// The security protocol of the listener `name`, refused when the map names none or when
    /// a SASL listener has no usable mechanism.
    pub fn listener_protocol(&self, name: &str) -> Result<SecurityProtocol, ConfigError> {
        let protocol = self
            .listener_security_protocol_map
            .get(name)
            .and_then(|p| SecurityProtocol::parse(p))
            .ok_or_else(|| {
                invalid(
                    "listener.security.protocol.map",
                    &format!("{:?}", self.listener_security_protocol_map),
                    format!("no security protocol is defined for listener {name}"),
                )
            })?;
        if protocol.uses_sasl() {
            self.check_sasl_mechanisms(name)?;
        }
        Ok(protocol)
    }

    /// `listener.name.<name>.<key>`: `ssl.*`, `sasl.enabled.mechanisms` and
    /// `connections.max.reauth.ms` for one listener;
    /// JAAS and callback-handler settings are accepted without effect.
    fn set_listener_setting(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let rest = &key["listener.name.".len()..];
        let (listener, setting) = rest
            .split_once('.')
            .filter(|(l, s)| !l.is_empty() && !s.is_empty())
            .ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
        let listener = listener.to_ascii_uppercase();
        if setting.starts_with("ssl.") {
            check_ssl_key(key, setting, value)?;
        } else if setting == "sasl.enabled.mechanisms" {
            // Checked with the listener's protocol.
        } else if setting == "connections.max.reauth.ms" {
            parse_num::<u64>(key, value)?;
        } else if let Some(mechanism) =
            setting
                .strip_suffix(".connections.max.reauth.ms")
                .filter(|m| {
                    SUPPORTED_SASL_MECHANISMS
                        .iter()
                        .any(|known| known.eq_ignore_ascii_case(m))
                })
        {
            // Kafka's `listener.name.<listener>.<mechanism>.connections.max.reauth.ms`.
            parse_num::<u64>(key, value)?;
            self.listener_settings.entry(listener).or_default().insert(
                format!(
                    "{}.connections.max.reauth.ms",
                    mechanism.to_ascii_uppercase()
                ),
                value.to_string(),
            );
            return Ok(());
        } else if setting.ends_with("sasl.jaas.config")
            || setting.ends_with("callback.handler.class")
            || setting.ends_with("sasl.server.callback.handler.class")
        {
            tracing::warn!(
                key,
                "configuration key has no effect: Starling's SASL users are its SCRAM credentials \
                 and sasl.plain.users.file"
            );
            self.ignored.insert(key.into(), value.into());
            return Ok(());
        } else {
            return Err(ConfigError::UnknownKey(key.to_string()));
        }
        self.listener_settings
            .entry(listener)
            .or_default()
            .insert(setting.to_string(), value.to_string());
        Ok(())
    }

    /// The first listener (the one `--listen` sets and the `listening on` line names).
    pub fn first_listener(&self) -> &ListenerAddress {
        &self.listeners[0]
    }

    /// A listener's own setting `key` (`listener.name.<name>.<key>`), if set.
    pub fn listener_own_value(&self, listener: &str, key: &str) -> Option<&str> {
        self.listener_settings
            .get(listener)
            .and_then(|m| m.get(key))
            .map(String::as_str)
    }

    /// A listener's `ssl.*` setting: its own, else the unprefixed one.
    pub fn listener_value(&self, listener: &str, key: &str) -> Option<&str> {
        self.listener_own_value(listener, key)
            .or_else(|| self.ssl.get(key).map(String::as_str))
    }

    /// The key that sets `key` for `listener`, for messages: the prefixed one when set.
    pub fn listener_key_name(&self, listener: &str, key: &str) -> String {
        match self.listener_own_value(listener, key) {
            Some(_) if listener == ADMIN_TLS => format!("admin.{key}"),
            Some(_) => format!("listener.name.{}.{key}", listener.to_ascii_lowercase()),
            None => key.to_string(),
        }
    }

    /// The SASL mechanisms a listener offers: its own `sasl.enabled.mechanisms`, else the
    /// broker's.
    pub fn sasl_mechanisms_for(&self, listener: &str) -> Vec<String> {
        match self.listener_own_value(listener, "sasl.enabled.mechanisms") {
            Some(list) => parse_mechanisms(list),
            None => self.sasl_enabled_mechanisms.clone(),
        }
    }

    /// How long a session of `mechanism` on `listener` lasts (`connections.max.reauth.ms`):
    /// the listener's own for the mechanism, else the listener's, else the broker's.
    pub fn connections_max_reauth_ms_for(&self, listener: &str, mechanism: &str) -> u64 {
        let for_mechanism = format!(
            "{}.connections.max.reauth.ms",
            mechanism.to_ascii_uppercase()
        );
        self.listener_own_value(listener, &for_mechanism)
            .or_else(|| self.listener_own_value(listener, "connections.max.reauth.ms"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(self.connections_max_reauth_ms)
    }

    /// The host and port handed to the clients of `listener`, bound to `bound`: its entry in
    /// `advertised.listeners`, else the bound address.
    pub fn advertised_for(&self, listener: &str, bound: SocketAddr) -> (String, i32) {
        let Some(advertised) = self.advertised_listeners.get(listener) else {
            return (bound.ip().to_string(), i32::from(bound.port()));
        };
        match advertised.rsplit_once(':') {
            Some((host, port)) => (
                host.trim_matches(['[', ']']).to_string(),
                port.parse().unwrap_or(9092),
            ),
            None => (advertised.clone(), 9092),
        }
    }

    fn check_sasl_mechanisms(&self, listener: &str) -> Result<(), ConfigError> {
        let mechanisms = self.sasl_mechanisms_for(listener);
        let key = self.listener_key_name(listener, "sasl.enabled.mechanisms");
        let key = key.as_str();
        let value = mechanisms.join(",");
        if mechanisms.is_empty() {
            return Err(invalid(
                key,
                &value,
                format!("the SASL listener {listener} needs at least one mechanism"),
            ));
        }
        for mechanism in &mechanisms {
            if !SUPPORTED_SASL_MECHANISMS.contains(&mechanism.as_str()) {
                return Err(invalid(
                    key,
                    &value,
                    format!(
                        "{mechanism} is not offered; Starling's mechanisms are {}",
                        SUPPORTED_SASL_MECHANISMS.join(", ")
                    ),
                ));
            }
        }
        if mechanisms.iter().any(|m| m == "PLAIN") && self.sasl_plain_users_file.is_none() {
            return Err(invalid(
                key,
                &value,
                "PLAIN needs its users in sasl.plain.users.file",
            ));
        }
        Ok(())
    }
}

/// A `sasl.enabled.mechanisms` list.
fn parse_mechanisms(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// The `ssl.*` keys TLS listeners read ([`crate::tls`]), globally or per listener.
pub const SSL_KEYS: &[&str] = &[
    "ssl.cipher.suites",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.type",
    "ssl.principal.mapping.rules",
    "ssl.protocol",
    "ssl.truststore.certificates",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.type",
];

/// `ssl.*` keys that tune Java's TLS engine or a broker's own outgoing connections: accepted
/// with a warning, without effect (rustls has no such knobs; one node connects to nobody).
pub const SSL_KEYS_WITHOUT_EFFECT: &[&str] = &[
    "ssl.allow.dn.changes",
    "ssl.allow.san.changes",
    "ssl.endpoint.identification.algorithm",
    "ssl.keymanager.algorithm",
    "ssl.provider",
    "ssl.secure.random.implementation",
    "ssl.trustmanager.algorithm",
];

/// Checks one `ssl.*` setting on its own, given as `key` (which may carry a listener's or the
/// admin endpoint's prefix, and names the setting in errors) for the plain `setting`; how the
/// settings combine is checked per listener when the configuration is
/// ([`crate::tls::TlsSettings::of`]) and the stores are loaded at start.
fn check_ssl_key(key: &str, setting: &str, value: &str) -> Result<(), ConfigError> {
    match setting {
        "ssl.keystore.type" | "ssl.truststore.type" => {
            if !value.trim().eq_ignore_ascii_case("PEM") {
                return Err(invalid(
                    key,
                    value,
                    "Starling reads PEM key and trust stores only: set PEM, and convert a JKS \
                     or PKCS12 store (keytool -importkeystore to PKCS12, then openssl pkcs12 \
                     -nodes to PEM)",
                ));
            }
        }
        "ssl.client.auth" => {
            crate::tls::ClientAuth::parse(value)
                .ok_or_else(|| invalid(key, value, "expected required, requested or none"))?;
        }
        "ssl.principal.mapping.rules" => {
            crate::ssl_principal::MappingRules::parse(value)
                .map_err(|reason| invalid(key, value, reason))?;
        }
        "ssl.enabled.protocols" => {
            crate::tls::parse_enabled_protocols(value)
                .map_err(|reason| invalid(key, value, reason))?;
        }
        "ssl.protocol" => {
            if !["TLS", "TLSv1.2", "TLSv1.3"].contains(&value.trim()) {
                return Err(invalid(key, value, "expected TLS, TLSv1.2 or TLSv1.3"));
            }
        }
        "ssl.engine.factory.class" => {
            return Err(invalid(
                key,
                value,
                "Starling's TLS is rustls; a Java SslEngineFactory cannot be loaded",
            ))
        }
        k if SSL_KEYS.contains(&k) => {}
        k if SSL_KEYS_WITHOUT_EFFECT.contains(&k) => {
            tracing::warn!(
                key,
                value,
                "configuration key has no effect on Starling's TLS"
            );
        }
        _ => return Err(ConfigError::UnknownKey(key.to_string())),
    }
    Ok(())
}

/// The name the admin endpoint's TLS settings go by where a listener's would (`admin.ssl.*`
/// keys); no Kafka listener can be called this.
pub const ADMIN_TLS: &str = "admin endpoint";

/// Keys whose values are secrets: DescribeConfigs reports them as sensitive, without a value.
pub fn is_sensitive_key(key: &str) -> bool {
    // `storage` is a database URL, which may carry a password.
    key == "storage"
        || key.ends_with("password")
        || key.ends_with("ssl.keystore.key")
        || key.ends_with("sasl.jaas.config")
}

/// Starling's `admin.auth`: whether the admin HTTP endpoint asks for credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAuthMode {
    /// `none`: every request is `User:ANONYMOUS` (ACLs still apply with an authorizer).
    None,
    /// `required`: every route but `/healthz` needs a bearer token or Basic credentials.
    Required,
}

impl AdminAuthMode {
    pub fn name(self) -> &'static str {
        match self {
            AdminAuthMode::None => "none",
            AdminAuthMode::Required => "required",
        }
    }
}

/// Where the admin HTTP endpoint listens unless `admin.listen` says otherwise.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    9644,
));

/// Kafka broker keys that have no effect on a single embedded node but are legal to set.
pub const ACCEPTED_WITHOUT_EFFECT: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "background.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "offsets.topic.replication.factor",
    "offsets.topic.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "inter.broker.listener.name",
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
    "log.segment.delete.delay.ms",
    "unclean.leader.election.enable",
    "auto.leader.rebalance.enable",
    "queued.max.requests",
    "replica.lag.time.max.ms",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
];

/// Of [`ACCEPTED_WITHOUT_EFFECT`], the thread-pool sizes Kafka lets AlterConfigs change at run
/// time (its DynamicThreadPool): accepted there too, still without effect (Starling's work runs
/// on one async runtime and blocking threads it sizes itself).
pub const DYNAMIC_WITHOUT_EFFECT: &[&str] = &[
    "background.threads",
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
];

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .parse::<T>()
        .map_err(|e| invalid(key, value, e.to_string()))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

fn parse_positive<T>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + Default,
    T::Err: std::fmt::Display,
{
    let v: T = parse_num(key, value)?;
    if v <= T::default() {
        return Err(invalid(key, value, "must be greater than 0"));
    }
    Ok(v)
}

/// A duration in ms where -1 means "unlimited" (Kafka's convention for retention).
fn parse_ms_or_unlimited(key: &str, value: &str, unit_ms: i64) -> Result<Option<i64>, ConfigError> {
    let v: i64 = parse_num(key, value)?;
    match v {
        -1 => Ok(None),
        v if v >= 0 => v
            .checked_mul(unit_ms)
            .map(Some)
            .ok_or_else(|| invalid(key, value, "too large")),
        _ => Err(invalid(key, value, "must be -1 (unlimited) or at least 0")),
    }
}

/// `host:port` to one socket address: an IP address as it is, an empty host as every
/// interface (Kafka's `PLAINTEXT://:9092`), a host name resolved (its first IPv4 address,
/// else its first address). Port 0 picks a free port when bound.
pub fn resolve_address(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| invalid(key, value, "expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(key, value, "expected HOST:PORT with a port from 0 to 65535"))?;
    let host = host.trim_matches(['[', ']']);
    if host.is_empty() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| invalid(key, value, format!("cannot resolve host '{host}': {e}")))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| invalid(key, value, format!("host '{host}' has no address")))
}

/// `HOST:PORT` (port 0 picks a free port) or `none`.
fn admin_address(key: &str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    resolve_address(key, value).map(Some).map_err(|e| match e {
        ConfigError::InvalidValue { reason, .. } => invalid(
            key,
            value,
            format!("{reason} (expected HOST:PORT, or none to disable the admin endpoint)"),
        ),
        other => other,
    })
}

/// Applies a topic-level config (Kafka's topic property names) onto a log config.
/// Shared by the broker's `log.*` defaults and CreateTopics' per-topic configs.
pub fn apply_topic_config(log: &mut LogConfig, key: &str, value: &str) -> Result<(), ConfigError> {
    match key {
        "segment.bytes" => {
            let v: u64 = parse_num(key, value)?;
            if v < 14 {
                return Err(invalid(key, value, "must be at least 14"));
            }
            log.segment_bytes = v;
        }
        "segment.ms" => log.segment_ms = parse_positive(key, value)?,
        "retention.ms" => log.retention_ms = parse_ms_or_unlimited(key, value, 1)?,
        "retention.bytes" => {
            let v: i64 = parse_num(key, value)?;
            log.retention_bytes = match v {
                -1 => None,
                v if v >= 0 => Some(v as u64),
                _ => return Err(invalid(key, value, "must be -1 (unlimited) or at least 0")),
            }
        }
        "flush.messages" => log.flush_interval_messages = parse_positive(key, value)?,
        "flush.ms" => {
            let v: i64 = parse_num(key, value)?;
            if v < 0 {
                return Err(invalid(key, value, "must be at least 0"));
            }
            log.flush_interval_ms = if v == i64::MAX { None } else { Some(v) };
        }
        "index.interval.bytes" => log.index_interval_bytes = parse_positive(key, value)?,
        "max.message.bytes" => log.max_message_bytes = parse_positive(key, value)?,
        "message.timestamp.type" => {
            log.timestamp_type = match value {
                "CreateTime" => TimestampType::CreateTime,
                "LogAppendTime" => TimestampType::LogAppendTime,
                _ => return Err(invalid(key, value, "expected CreateTime or LogAppendTime")),
            }
        }
        "cleanup.policy" => {
            let mut items: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            items.sort_unstable();
            items.dedup();
            log.cleanup_policy = match items.as_slice() {
                ["delete"] => CleanupPolicy::Delete,
                ["compact"] => CleanupPolicy::Compact,
                ["compact", "delete"] => CleanupPolicy::CompactDelete,
                _ => {
                    return Err(invalid(
                        key,
                        value,
                        "expected delete, compact, or both (compact,delete)",
                    ))
                }
            };
        }
        "min.cleanable.dirty.ratio" => {
            let v: f64 = parse_num(key, value)?;
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(key, value, "must be from 0 to 1"));
            }
            log.min_cleanable_dirty_ratio = v;
        }
        "min.compaction.lag.ms" => {
            let v: i64 = parse_num(key, value)?;
            if v < 0 {
                return Err(invalid(key, value, "must be at least 0"));
            }
            log.min_compaction_lag_ms = v;
        }
        "max.compaction.lag.ms" => log.max_compaction_lag_ms = parse_positive(key, value)?,
        "delete.retention.ms" => {
            let v: i64 = parse_num(key, value)?;
            if v < 0 {
                return Err(invalid(key, value, "must be at least 0"));
            }
            log.delete_retention_ms = v;
        }
        "compression.type" => {
            log.compression_type = CompressionType::parse(value).ok_or_else(|| {
                invalid(
                    key,
                    value,
                    "expected one of uncompressed, zstd, lz4, snappy, gzip, producer",
                )
            })?
        }
        "compression.gzip.level" => {
            let v: i32 = parse_num(key, value)?;
            if !(v == -1 || (1..=9).contains(&v)) {
                return Err(invalid(key, value, "must be -1 or from 1 to 9"));
            }
            log.compression_levels.gzip = v;
        }
        "compression.lz4.level" => {
            let v: i32 = parse_num(key, value)?;
            if !(1..=17).contains(&v) {
                return Err(invalid(key, value, "must be from 1 to 17"));
            }
            log.compression_levels.lz4 = v;
        }
        "compression.zstd.level" => {
            let v: i32 = parse_num(key, value)?;
            if !(-131072..=22).contains(&v) {
                return Err(invalid(key, value, "must be from -131072 to 22"));
            }
            log.compression_levels.zstd = v;
        }
        "message.timestamp.before.max.ms" | "message.timestamp.after.max.ms" => {
            let v: i64 = parse_num(key, value)?;
            if v < 0 {
                return Err(invalid(key, value, "must be at least 0"));
            }
            if key == "message.timestamp.before.max.ms" {
                log.timestamp_before_max_ms = v;
            } else {
                log.timestamp_after_max_ms = v;
            }
        }
        "min.insync.replicas" => {
            let v: i32 = parse_num(key, value)?;
            if v < 1 {
                return Err(invalid(key, value, "must be at least 1"));
            }
            log.min_insync_replicas = v as u32;
        }
        _ => return validate_unapplied_topic_config(key, value),
    }
    Ok(())
}

/// Checks a topic config the log does not read (see [`config_keys::Effect::NoEffect`]) by its
/// type and Kafka's bounds; an unknown key is refused.
fn validate_unapplied_topic_config(key: &str, value: &str) -> Result<(), ConfigError> {
    let Some(spec) = config_keys::topic_key(key) else {
        return Err(ConfigError::UnknownKey(key.to_string()));
    };
    let at_least = |min: i64| -> Result<(), ConfigError> {
        let v: i64 = parse_num(key, value)?;
        if v < min {
            return Err(invalid(key, value, format!("must be at least {min}")));
        }
        Ok(())
    };
    match key {
        "remote.storage.enable" => {
            if parse_bool(key, value)? {
                return Err(invalid(
                    key,
                    value,
                    "Starling has no tiered storage; only false is accepted",
                ));
            }
        }
        "local.retention.ms" | "local.retention.bytes" => at_least(-2)?,
        "segment.index.bytes" => {
            let v: i32 = parse_num(key, value)?;
            if v < 4 {
                return Err(invalid(key, value, "must be at least 4"));
            }
        }
        _ => match spec.config_type {
            config_keys::ConfigType::Boolean => {
                parse_bool(key, value)?;
            }
            config_keys::ConfigType::Int => {
                let v: i32 = parse_num(key, value)?;
                if v < 0 {
                    return Err(invalid(key, value, "must be at least 0"));
                }
            }
            config_keys::ConfigType::Long => at_least(0)?,
            config_keys::ConfigType::Double => {
                parse_num::<f64>(key, value)?;
            }
            config_keys::ConfigType::Short
            | config_keys::ConfigType::String
            | config_keys::ConfigType::List => {}
        },
    }
    Ok(())
}

impl BrokerConfig {
    /// Whether an authorizer is configured (ACLs are on).
    pub fn authorizer_enabled(&self) -> bool {
        !self.authorizer_class_name.is_empty()
    }

    /// Sets one property by its Kafka name.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        self.set_value(key, value)?;
        self.explicit.insert(key.to_string(), value.to_string());
        Ok(())
    }

    fn set_value(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let hours = 3_600_000;
        match key {
            "node.id" | "broker.id" => self.node_id = parse_num(key, value)?,
            "listeners" => self.listeners = crate::listeners::parse_listeners(key, value)?,
            "listener.security.protocol.map" => {
                self.listener_security_protocol_map = parse_security_protocol_map(key, value)?
            }
            "sasl.enabled.mechanisms" => self.sasl_enabled_mechanisms = parse_mechanisms(value),
            "ssl.handshake.timeout.ms" => {
                self.ssl_handshake_timeout_ms = parse_positive(key, value)?
            }
            "ssl.keystore.reload.interval.ms" => {
                self.ssl_keystore_reload_interval_ms = parse_num(key, value)?
            }
            k if k.starts_with("ssl.") => {
                check_ssl_key(k, k, value)?;
                self.ssl.insert(k.to_string(), value.to_string());
            }
            k if k.starts_with("listener.name.") => self.set_listener_setting(k, value)?,
            "connection.failed.authentication.delay.ms" => {
                self.connection_failed_authentication_delay_ms = parse_num(key, value)?
            }
            "sasl.authentication.timeout.ms" => {
                self.sasl_authentication_timeout_ms = parse_positive(key, value)?
            }
            "sasl.server.max.receive.size" => {
                self.sasl_server_max_receive_size = parse_positive(key, value)?
            }
            "advertised.listeners" => {
                self.advertised_listeners = crate::listeners::parse_listener_list(key, value)?
                    .into_iter()
                    .collect()
            }
            "admin.listen" => self.admin_listen = admin_address(key, value)?,
            "admin.auth" => {
                self.admin_auth = match value.trim().to_ascii_lowercase().as_str() {
                    "none" => Some(AdminAuthMode::None),
                    "required" => Some(AdminAuthMode::Required),
                    _ => return Err(invalid(key, value, "expected none or required")),
                }
            }
            "admin.auth.tokens.file" => {
                self.admin_auth_tokens_file =
                    (!value.trim().is_empty()).then(|| PathBuf::from(value.trim()))
            }
            "admin.auth.basic.enable" => self.admin_auth_basic_enable = parse_bool(key, value)?,
            "admin.console.sample.interval.ms" => {
                self.admin_console_sample_interval_ms = parse_positive(key, value)?
            }
            "admin.ssl.enable" => self.admin_ssl_enable = parse_bool(key, value)?,
            k if k.starts_with("admin.ssl.") => {
                let setting = &k["admin.".len()..];
                check_ssl_key(k, setting, value)?;
                self.listener_settings
                    .entry(ADMIN_TLS.to_string())
                    .or_default()
                    .insert(setting.to_string(), value.to_string());
            }
            "log.dirs" | "log.dir" => {
                self.data_dir = PathBuf::from(value.split(',').next().unwrap_or(value))
            }
            "storage" => {
                self.storage = crate::storage::StorageKind::parse(value)
                    .map_err(|reason| invalid(key, &crate::storage::redact_url(value), reason))?
            }
            "num.partitions" => self.num_partitions = parse_positive(key, value)?,
            "default.replication.factor" => {
                self.default_replication_factor = parse_positive(key, value)?
            }
            "auto.create.topics.enable" => self.auto_create_topics = parse_bool(key, value)?,
            "delete.topic.enable" => self.delete_topic_enable = parse_bool(key, value)?,
            "socket.request.max.bytes" => {
                self.socket_request_max_bytes = parse_positive(key, value)?
            }
            "connections.max.idle.ms" => self.connections_max_idle_ms = parse_positive(key, value)?,
            "broker.session.timeout.ms" => {
                self.broker_session_timeout_ms = parse_positive(key, value)?
            }
            "broker.heartbeat.interval.ms" => {
                self.broker_heartbeat_interval_ms = parse_positive(key, value)?
            }
            "connections.max.reauth.ms" => self.connections_max_reauth_ms = parse_num(key, value)?,
            "queued.max.request.bytes" => {
                self.queued_max_request_bytes = if value.trim() == "-1" {
                    None
                } else {
                    Some(parse_positive(key, value)?)
                }
            }
            "socket.request.read.timeout.ms" => {
                self.socket_request_read_timeout_ms = parse_positive(key, value)?
            }
            "max.connections" => self.max_connections = parse_positive(key, value)?,
            "max.connections.per.ip" => self.max_connections_per_ip = parse_num(key, value)?,
            "max.connections.per.ip.overrides" => {
                self.max_connections_per_ip_overrides = parse_ip_overrides(key, value)?
            }
            "log.retention.check.interval.ms" => {
                self.retention_check_interval_ms = parse_positive(key, value)?
            }
            "log.flush.scheduler.interval.ms" => {
                self.flush_scheduler_interval_ms = parse_positive(key, value)?
            }
            "transaction.max.timeout.ms" => {
                self.transaction.max_timeout_ms = parse_positive(key, value)?
            }
            "transactional.id.expiration.ms" => {
                self.transaction.id_expiration_ms = parse_positive(key, value)?
            }
            "producer.id.expiration.ms" => {
                self.producer_id_expiration_ms = parse_positive(key, value)?
            }
            "log.segment.bytes" => apply_topic_config(&mut self.log, "segment.bytes", value)
                .map_err(|e| rename(e, key))?,
            "log.roll.ms" => apply_topic_config(&mut self.log, "segment.ms", value)
                .map_err(|e| rename(e, key))?,
            "log.roll.hours" => {
                self.log.segment_ms = parse_positive::<i64>(key, value)?.saturating_mul(hours);
            }
            "log.retention.ms" => apply_topic_config(&mut self.log, "retention.ms", value)
                .map_err(|e| rename(e, key))?,
            "log.retention.minutes" => {
                self.log.retention_ms = parse_ms_or_unlimited(key, value, 60_000)?
            }
            "log.retention.hours" => {
                self.log.retention_ms = parse_ms_or_unlimited(key, value, hours)?
            }
            "log.retention.bytes" => apply_topic_config(&mut self.log, "retention.bytes", value)
                .map_err(|e| rename(e, key))?,
            "log.flush.interval.messages" => {
                apply_topic_config(&mut self.log, "flush.messages", value)
                    .map_err(|e| rename(e, key))?
            }
            "log.flush.interval.ms" => {
                apply_topic_config(&mut self.log, "flush.ms", value).map_err(|e| rename(e, key))?
            }
            "log.index.interval.bytes" => {
                apply_topic_config(&mut self.log, "index.interval.bytes", value)
                    .map_err(|e| rename(e, key))?
            }
            "message.max.bytes" => apply_topic_config(&mut self.log, "max.message.bytes", value)
                .map_err(|e| rename(e, key))?,
            "log.message.timestamp.type" => {
                apply_topic_config(&mut self.log, "message.timestamp.type", value)
                    .map_err(|e| rename(e, key))?
            }
            "log.cleanup.policy" => apply_topic_config(&mut self.log, "cleanup.policy", value)
                .map_err(|e| rename(e, key))?,
            "compression.type"
            | "compression.gzip.level"
            | "compression.lz4.level"
            | "compression.zstd.level" => apply_topic_config(&mut self.log, key, value)?,
            "log.message.timestamp.before.max.ms" | "log.message.timestamp.after.max.ms" => {
                apply_topic_config(&mut self.log, &key["log.".len()..], value)
                    .map_err(|e| rename(e, key))?
            }
            "min.insync.replicas" => apply_topic_config(&mut self.log, key, value)?,
            "log.cleaner.min.cleanable.ratio" => {
                apply_topic_config(&mut self.log, "min.cleanable.dirty.ratio", value)
                    .map_err(|e| rename(e, key))?
            }
            "log.cleaner.min.compaction.lag.ms" => {
                apply_topic_config(&mut self.log, "min.compaction.lag.ms", value)
                    .map_err(|e| rename(e, key))?
            }
            "log.cleaner.max.compaction.lag.ms" => {
                apply_topic_config(&mut self.log, "max.compaction.lag.ms", value)
                    .map_err(|e| rename(e, key))?
            }
            "log.cleaner.delete.retention.ms" => {
                apply_topic_config(&mut self.log, "delete.retention.ms", value)
                    .map_err(|e| rename(e, key))?
            }
            "log.cleaner.enable" => self.cleaner.enable = parse_bool(key, value)?,
            "log.cleaner.threads" => self.cleaner.threads = parse_positive(key, value)?,
            "log.cleaner.io.max.bytes.per.second" => {
                let v: f64 = parse_num(key, value)?;
                if v.is_nan() || v <= 0.0 {
                    return Err(invalid(key, value, "must be above 0"));
                }
                // Kafka's default is Double.MAX_VALUE: no bound.
                self.cleaner.io_max_bytes_per_second = (v < f64::MAX / 2.0).then_some(v);
            }
            "log.cleaner.dedupe.buffer.size" => {
                let v: u64 = parse_num(key, value)?;
                if v < 1024 * 1024 {
                    return Err(invalid(key, value, "must be at least 1048576 (1 MiB)"));
                }
                self.cleaner.dedupe_buffer_size = v;
            }
            "log.cleaner.backoff.ms" => self.cleaner.backoff_ms = parse_positive(key, value)?,
            "log.cleaner.io.buffer.size" | "log.cleaner.io.buffer.load.factor" => {
                // Kafka's read/write buffer sizing; the cleaner here sizes its own buffers.
                parse_num::<f64>(key, value)?;
            }
            "group.min.session.timeout.ms" => {
                self.group.min_session_timeout_ms = parse_positive(key, value)?
            }
            "group.max.session.timeout.ms" => {
                self.group.max_session_timeout_ms = parse_positive(key, value)?
            }
            "group.initial.rebalance.delay.ms" => {
                let v: i32 = parse_num(key, value)?;
                if v < 0 {
                    return Err(invalid(key, value, "must be at least 0"));
                }
                self.group.initial_rebalance_delay_ms = v;
            }
            "group.max.size" => self.group.max_size = parse_positive(key, value)?,
            "offsets.retention.minutes" => {
                self.group.offsets_retention_ms =
                    parse_positive::<i64>(key, value)?.saturating_mul(60_000)
            }
            "offsets.retention.check.interval.ms" => {
                self.group.offsets_retention_check_interval_ms = parse_positive(key, value)?
            }
            "offset.metadata.max.bytes" => {
                self.group.offset_metadata_max_bytes = parse_positive(key, value)?
            }
            "group.rebalance.history.size" => {
                self.group.rebalance_history = parse_positive(key, value)?
            }
            "group.consumer.session.timeout.ms" => {
                self.group.consumer_session_timeout_ms = parse_positive(key, value)?
            }
            "group.consumer.heartbeat.interval.ms" => {
                self.group.consumer_heartbeat_interval_ms = parse_positive(key, value)?
            }
            "group.consumer.pending.heartbeat.interval.ms" => {
                self.group.consumer_pending_heartbeat_interval_ms = parse_positive(key, value)?
            }
            "group.consumer.heartbeat.rate.budget" => {
                // 0: no budget, every reconciled member gets the longest interval.
                self.group.consumer_heartbeat_rate_budget = parse_num(key, value)?
            }
            "group.consumer.heartbeat.interval.min.ms" => {
                self.group.consumer_min_heartbeat_interval_ms = parse_positive(key, value)?
            }
            "group.consumer.max.size" => self.group.consumer_max_size = parse_positive(key, value)?,
            "group.consumer.assignors" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(|name| name.trim().to_string())
                    .filter(|name| !name.is_empty())
                    .collect();
                if names.is_empty() {
                    return Err(invalid(key, value, "must name at least one assignor"));
                }
                let mut short = Vec::new();
                for name in &names {
                    let assignor = starling_group::assignor::by_name(name).ok_or_else(|| {
                        invalid(
                            key,
                            value,
                            format!("unknown assignor {name}; Starling has uniform and range"),
                        )
                    })?;
                    short.push(assignor.name().to_string());
                }
                self.group.consumer_assignors = short;
            }
            "group.consumer.migration.policy" => {
                self.group.consumer_migration_policy = value
                    .parse()
                    .map_err(|reason: String| invalid(key, value, reason))?
            }
            "quota.window.num" => self.quota_window_num = parse_positive(key, value)?,
            "quota.window.size.seconds" => {
                self.quota_window_size_seconds = parse_positive(key, value)?
            }
            "authorizer.class.name" => {
                let name = value.trim();
                if !name.is_empty() && !AUTHORIZER_CLASS_NAMES.contains(&name) {
                    return Err(invalid(
                        key,
                        value,
                        format!(
                            "Starling's authorizer is Kafka's {}; leave it empty for none",
                            AUTHORIZER_CLASS_NAMES[0]
                        ),
                    ));
                }
                self.authorizer_class_name = name.to_string();
            }
            "super.users" => self.super_users = value.to_string(),
            "allow.everyone.if.no.acl.found" => {
                self.allow_everyone_if_no_acl_found = parse_bool(key, value)?
            }
            "sasl.plain.users.file" => {
                self.sasl_plain_users_file = (!value.is_empty()).then(|| PathBuf::from(value))
            }
            _ if ACCEPTED_WITHOUT_EFFECT.contains(&key) => {
                tracing::warn!(
                    key,
                    value,
                    "configuration key has no effect on a single-node Starling broker"
                );
                self.ignored.insert(key.into(), value.into());
            }
            _ => match config_keys::topic_key_for_broker_key(key) {
                // The default of a topic config the log does not read: checked like the topic
                // key and reported (from `explicit`) by DescribeConfigs.
                Some(topic_key) => {
                    validate_unapplied_topic_config(topic_key.name, value)
                        .map_err(|e| rename(e, key))?;
                }
                None => return Err(ConfigError::UnknownKey(key.to_string())),
            },
        }
        Ok(())
    }

    /// Reads a Java-style properties file (`key=value` or `key: value`, `#`/`!` comments).
    pub fn apply_properties_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)?;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (key, value) = line
                .split_once(['=', ':'])
                .ok_or_else(|| ConfigError::File {
                    path: path.display().to_string(),
                    line: i + 1,
                    reason: format!("expected key=value, found {line:?}"),
                })?;
            self.set(key.trim(), value.trim())?;
        }
        Ok(())
    }

    /// Checks rules that span several keys, once every key is set.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.listeners.is_empty() {
            return Err(invalid(
                "listeners",
                "",
                "expected NAME://host:port for clients",
            ));
        }
        for listener in &self.listeners {
            let protocol = self.listener_protocol(&listener.name)?;
            if protocol.uses_tls() {
                crate::tls::TlsSettings::of(self, &listener.name, protocol)?;
            }
        }
        for name in self.advertised_listeners.keys() {
            if !self.listeners.iter().any(|l| l.name == *name) {
                return Err(invalid(
                    "advertised.listeners",
                    name,
                    format!("advertises listener {name}, which listeners does not define"),
                ));
            }
        }
        if self.admin_ssl_enable {
            crate::tls::TlsSettings::of(self, ADMIN_TLS, SecurityProtocol::Ssl)?;
        }
        for name in self.listener_settings.keys().filter(|n| *n != ADMIN_TLS) {
            if !self.listeners.iter().any(|l| l.name == *name) {
                return Err(invalid(
                    &format!("listener.name.{}", name.to_ascii_lowercase()),
                    name,
                    format!("configures listener {name}, which listeners does not define"),
                ));
            }
        }
        if self.max_connections_per_ip == 0 && self.max_connections_per_ip_overrides.is_empty() {
            return Err(invalid(
                "max.connections.per.ip",
                "0",
                "0 refuses every client unless max.connections.per.ip.overrides lets some in",
            ));
        }
        if let Some(path) = &self.sasl_plain_users_file {
            // A users file that does not read would lock every PLAIN user out: refuse to start.
            crate::sasl::plain::PlainUsers::load(path).map_err(|reason| {
                invalid("sasl.plain.users.file", &path.display().to_string(), reason)
            })?;
        }
        self.check_admin_auth()?;
        let group = &self.group;
        if group.min_session_timeout_ms > group.max_session_timeout_ms {
            return Err(invalid(
                "group.min.session.timeout.ms",
                &group.min_session_timeout_ms.to_string(),
                format!(
                    "must not exceed group.max.session.timeout.ms ({}), or no session timeout \
                     a consumer asks for could be accepted",
                    group.max_session_timeout_ms
                ),
            ));
        }
        if group.consumer_heartbeat_interval_ms >= group.consumer_session_timeout_ms {
            return Err(invalid(
                "group.consumer.heartbeat.interval.ms",
                &group.consumer_heartbeat_interval_ms.to_string(),
                format!(
                    "must be below group.consumer.session.timeout.ms ({}), or every member \
                     would time out between two heartbeats",
                    group.consumer_session_timeout_ms
                ),
            ));
        }
        if group.consumer_min_heartbeat_interval_ms > group.consumer_heartbeat_interval_ms {
            return Err(invalid(
                "group.consumer.heartbeat.interval.min.ms",
                &group.consumer_min_heartbeat_interval_ms.to_string(),
                format!(
                    "must not exceed group.consumer.heartbeat.interval.ms ({}), the longest \
                     steady interval",
                    group.consumer_heartbeat_interval_ms
                ),
            ));
        }
        if let Some(queued) = self.queued_max_request_bytes {
            if queued < self.socket_request_max_bytes {
                return Err(invalid(
                    "queued.max.request.bytes",
                    &queued.to_string(),
                    format!(
                        "must be -1 or at least socket.request.max.bytes ({}), or the largest \
                         request could never be read",
                        self.socket_request_max_bytes
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The admin endpoint's authentication settings: a tokens file that does not read, or
    /// `admin.auth=required` with no way to log in, stops the broker; so does a non-loopback
    /// `admin.listen` while `admin.auth` is not set (`none` serves it openly, on purpose).
    fn check_admin_auth(&self) -> Result<(), ConfigError> {
        if let Some(path) = &self.admin_auth_tokens_file {
            crate::admin::auth::AdminTokens::load(path).map_err(|reason| {
                invalid(
                    "admin.auth.tokens.file",
                    &path.display().to_string(),
                    reason,
                )
            })?;
        }
        if self.admin_auth == Some(AdminAuthMode::Required)
            && self.admin_auth_tokens_file.is_none()
            && !self.admin_auth_basic_enable
        {
            return Err(invalid(
                "admin.auth",
                "required",
                "nobody could log in: set admin.auth.tokens.file or admin.auth.basic.enable=true",
            ));
        }
        if let Some(addr) = self.admin_listen {
            if self.admin_auth.is_none() && !addr.ip().is_loopback() {
                return Err(invalid(
                    "admin.listen",
                    &addr.to_string(),
                    "the admin endpoint would be reachable from other hosts without \
                     authentication: set admin.auth=required (with admin.auth.tokens.file or \
                     SCRAM/PLAIN users), or admin.auth=none to serve it openly anyway",
                ));
            }
        }
        Ok(())
    }

    /// Whether the admin endpoint asks for credentials (`admin.auth=required`).
    pub fn admin_auth_required(&self) -> bool {
        self.admin_auth == Some(AdminAuthMode::Required)
    }
}

fn rename(e: ConfigError, key: &str) -> ConfigError {
    match e {
        ConfigError::InvalidValue { value, reason, .. } => ConfigError::InvalidValue {
            key: key.into(),
            value,
            reason,
        },
        other => other,
    }
}

/// A log config as topic properties (name, effective value), for CreateTopics responses.
pub fn describe_log_config(log: &LogConfig) -> Vec<(&'static str, String)> {
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-1".into());
    vec![
        (
            "cleanup.policy",
            match log.cleanup_policy {
                CleanupPolicy::Delete => "delete",
                CleanupPolicy::Compact => "compact",
                CleanupPolicy::CompactDelete => "compact,delete",
            }
            .into(),
        ),
        ("delete.retention.ms", log.delete_retention_ms.to_string()),
        (
            "max.compaction.lag.ms",
            log.max_compaction_lag_ms.to_string(),
        ),
        (
            "min.cleanable.dirty.ratio",
            log.min_cleanable_dirty_ratio.to_string(),
        ),
        (
            "min.compaction.lag.ms",
            log.min_compaction_lag_ms.to_string(),
        ),
        (
            "compression.gzip.level",
            log.compression_levels.gzip.to_string(),
        ),
        (
            "compression.lz4.level",
            log.compression_levels.lz4.to_string(),
        ),
        ("compression.type", log.compression_type.name().into()),
        (
            "compression.zstd.level",
            log.compression_levels.zstd.to_string(),
        ),
        (
            "flush.messages",
            log.flush_interval_messages.min(i64::MAX as u64).to_string(),
        ),
        (
            "flush.ms",
            log.flush_interval_ms.unwrap_or(i64::MAX).to_string(),
        ),
        ("index.interval.bytes", log.index_interval_bytes.to_string()),
        ("max.message.bytes", log.max_message_bytes.to_string()),
        (
            "message.timestamp.after.max.ms",
            log.timestamp_after_max_ms.to_string(),
        ),
        (
            "message.timestamp.before.max.ms",
            log.timestamp_before_max_ms.to_string(),
        ),
        (
            "message.timestamp.type",
            match log.timestamp_type {
                TimestampType::CreateTime => "CreateTime".into(),
                TimestampType::LogAppendTime => "LogAppendTime".into(),
            },
        ),
        ("min.insync.replicas", log.min_insync_replicas.to_string()),
        (
            "retention.bytes",
            log.retention_bytes
                .map(|b| b as i64)
                .map_or_else(|| "-1".into(), |b| b.to_string()),
        ),
        ("retention.ms", opt(log.retention_ms)),
        ("segment.bytes", log.segment_bytes.to_string()),
        ("segment.ms", log.segment_ms.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_protocol_settings_take_kafkas_names_and_assignors_are_checked() {
        let mut c = BrokerConfig::default();
        c.set("group.consumer.session.timeout.ms", "10000").unwrap();
        c.set("group.consumer.heartbeat.interval.ms", "1000")
            .unwrap();
        c.set("group.consumer.pending.heartbeat.interval.ms", "50")
            .unwrap();
        c.set("group.consumer.max.size", "7").unwrap();
        c.set(
            "group.consumer.assignors",
            "range, org.apache.kafka.coordinator.group.assignor.UniformAssignor",
        )
        .unwrap();
        assert_eq!(c.group.consumer_session_timeout_ms, 10_000);
        assert_eq!(c.group.consumer_heartbeat_interval_ms, 1_000);
        assert_eq!(c.group.consumer_pending_heartbeat_interval_ms, 50);
        c.set("group.consumer.heartbeat.rate.budget", "0").unwrap();
        assert_eq!(c.group.consumer_heartbeat_rate_budget, 0);
        assert!(c.set("group.consumer.heartbeat.rate.budget", "-1").is_err());
        c.set("group.consumer.heartbeat.interval.min.ms", "250")
            .unwrap();
        assert_eq!(c.group.consumer_min_heartbeat_interval_ms, 250);
        assert!(c
            .set("group.consumer.heartbeat.interval.min.ms", "0")
            .is_err());
        assert_eq!(c.group.consumer_max_size, 7);
        assert_eq!(c.group.consumer_assignors, ["range", "uniform"]);
        assert_eq!(
            c.group.consumer_migration_policy,
            starling_group::MigrationPolicy::Bidirectional
        );
        c.set("group.consumer.migration.policy", "UPGRADE").unwrap();
        assert_eq!(
            c.group.consumer_migration_policy,
            starling_group::MigrationPolicy::Upgrade
        );
        let e = c
            .set("group.consumer.migration.policy", "sideways")
            .unwrap_err();
        assert!(e.to_string().contains("downgrade"), "{e}");
        c.check().unwrap();
        let e = c.set("group.consumer.assignors", "sticky").unwrap_err();
        assert!(e.to_string().contains("sticky"), "{e}");
        assert!(c.set("group.consumer.assignors", " , ").is_err());
        c.set("group.consumer.heartbeat.interval.ms", "10000")
            .unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("group.consumer.session.timeout.ms"), "{e}");
        c.set("group.consumer.heartbeat.interval.ms", "1000")
            .unwrap();
        c.set("group.consumer.heartbeat.interval.min.ms", "2000")
            .unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(
            e.contains("group.consumer.heartbeat.interval.min.ms"),
            "{e}"
        );
    }

    #[test]
    fn request_memory_is_bounded_by_default_and_minus_one_lifts_the_bound() {
        let mut c = BrokerConfig::default();
        assert_eq!(
            c.queued_max_request_bytes,
            Some(DEFAULT_QUEUED_MAX_REQUEST_BYTES)
        );
        c.check().unwrap();
        c.set("queued.max.request.bytes", "-1").unwrap();
        assert_eq!(c.queued_max_request_bytes, None);
        c.set("socket.request.read.timeout.ms", "5000").unwrap();
        assert_eq!(c.socket_request_read_timeout_ms, 5000);
        assert!(c.set("socket.request.read.timeout.ms", "0").is_err());
    }

    #[test]
    fn transaction_limits_are_kafkas_unless_configured() {
        let mut c = BrokerConfig::default();
        assert_eq!(c.transaction.max_timeout_ms, 900_000);
        assert_eq!(c.transaction.id_expiration_ms, 604_800_000);
        c.set("transaction.max.timeout.ms", "60000").unwrap();
        c.set("transactional.id.expiration.ms", "3600000").unwrap();
        assert_eq!(c.transaction.max_timeout_ms, 60_000);
        assert_eq!(c.transaction.id_expiration_ms, 3_600_000);
        assert!(c.set("transaction.max.timeout.ms", "0").is_err());
        assert!(c.set("transactional.id.expiration.ms", "-1").is_err());
        assert!(!c.ignored.contains_key("transaction.max.timeout.ms"));
    }

    #[test]
    fn producer_ids_expire_after_a_day_unless_configured() {
        let mut c = BrokerConfig::default();
        assert_eq!(c.producer_id_expiration_ms, 86_400_000);
        c.set("producer.id.expiration.ms", "60000").unwrap();
        assert_eq!(c.producer_id_expiration_ms, 60_000);
        assert!(c.set("producer.id.expiration.ms", "0").is_err());
        assert!(!c.ignored.contains_key("producer.id.expiration.ms"));
    }

    #[test]
    fn a_request_budget_smaller_than_the_largest_request_is_refused_naming_both_keys() {
        let mut c = BrokerConfig::default();
        c.set("socket.request.max.bytes", "1000").unwrap();
        c.set("queued.max.request.bytes", "999").unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(
            e.contains("queued.max.request.bytes") && e.contains("socket.request.max.bytes"),
            "{e}"
        );
        c.set("queued.max.request.bytes", "1000").unwrap();
        c.check().unwrap();
    }

    #[test]
    fn kafka_names_set_the_log_defaults() {
        let mut c = BrokerConfig::default();
        c.set("log.segment.bytes", "1024").unwrap();
        c.set("log.retention.ms", "-1").unwrap();
        c.set("log.retention.hours", "2").unwrap();
        c.set("log.flush.interval.messages", "1").unwrap();
        c.set("message.max.bytes", "2000").unwrap();
        assert_eq!(c.log.segment_bytes, 1024);
        assert_eq!(c.log.retention_ms, Some(7_200_000));
        assert_eq!(c.log.flush_interval_messages, 1);
        assert_eq!(c.log.max_message_bytes, 2000);
    }

    #[test]
    fn unknown_key_is_refused_by_name() {
        let err = BrokerConfig::default()
            .set("log.segmnet.bytes", "1")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown configuration key 'log.segmnet.bytes'"
        );
    }

    #[test]
    fn bad_value_is_refused_naming_the_key() {
        let err = BrokerConfig::default()
            .set("num.partitions", "many")
            .unwrap_err();
        assert!(err.to_string().contains("'num.partitions'"), "{err}");
        let err = BrokerConfig::default()
            .set("log.segment.bytes", "-5")
            .unwrap_err();
        assert!(err.to_string().contains("'log.segment.bytes'"), "{err}");
        let err = BrokerConfig::default()
            .set("auto.create.topics.enable", "yes")
            .unwrap_err();
        assert!(
            err.to_string().contains("auto.create.topics.enable"),
            "{err}"
        );
    }

    #[test]
    fn without_advertised_listeners_the_bound_address_is_advertised() {
        let c = BrokerConfig::default();
        assert_eq!(
            c.advertised_for("PLAINTEXT", "127.0.0.1:40123".parse().unwrap()),
            ("127.0.0.1".to_string(), 40123)
        );
    }

    #[test]
    fn listeners_set_bind_and_advertised_addresses_per_listener() {
        let mut c = BrokerConfig::default();
        c.set(
            "listeners",
            "PLAINTEXT://127.0.0.1:19092,SASL_PLAINTEXT://127.0.0.1:19093",
        )
        .unwrap();
        c.set("advertised.listeners", "PLAINTEXT://kafka.local:29092")
            .unwrap();
        c.set("sasl.enabled.mechanisms", "SCRAM-SHA-512").unwrap();
        c.check().unwrap();
        assert_eq!(c.first_listener().addr.port(), 19092);
        let bound = "127.0.0.1:19092".parse().unwrap();
        assert_eq!(
            c.advertised_for("PLAINTEXT", bound),
            ("kafka.local".to_string(), 29092)
        );
        let bound = "127.0.0.1:19093".parse().unwrap();
        assert_eq!(
            c.advertised_for("SASL_PLAINTEXT", bound),
            ("127.0.0.1".to_string(), 19093)
        );
        assert_eq!(
            c.listener_protocol("SASL_PLAINTEXT").unwrap(),
            SecurityProtocol::SaslPlaintext
        );
        // Advertising a listener that is not defined is refused.
        c.set("advertised.listeners", "SSL://kafka.local:29093")
            .unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("which listeners does not define"), "{e}");
    }

    #[test]
    fn named_listeners_take_their_protocol_from_the_map() {
        let mut c = BrokerConfig::default();
        c.set("listeners", "INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0")
            .unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(
            e.contains("no security protocol is defined for listener INTERNAL"),
            "{e}"
        );
        c.set(
            "listener.security.protocol.map",
            "INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT",
        )
        .unwrap();
        // The external listener's own mechanisms.
        c.set(
            "listener.name.external.sasl.enabled.mechanisms",
            "SCRAM-SHA-256",
        )
        .unwrap();
        c.check().unwrap();
        assert_eq!(c.sasl_mechanisms_for("EXTERNAL"), ["SCRAM-SHA-256"]);
        assert_eq!(c.sasl_mechanisms_for("INTERNAL"), ["GSSAPI"]);
        c.set("listener.name.external.sasl.enabled.mechanisms", "GSSAPI")
            .unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(
            e.contains("listener.name.external.sasl.enabled.mechanisms")
                && e.contains("GSSAPI is not offered"),
            "{e}"
        );
        c.set(
            "listener.name.external.sasl.enabled.mechanisms",
            "SCRAM-SHA-256",
        )
        .unwrap();
        let e = c
            .set("listener.name.other.ssl.client.auth", "sometimes")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("expected required, requested or none"),
            "{e}"
        );
        c.set("listener.name.other.ssl.client.auth", "required")
            .unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("configures listener OTHER"), "{e}");
        let e = c
            .set("listener.name.external.num.io.threads", "3")
            .unwrap_err();
        assert_eq!(
            e,
            ConfigError::UnknownKey("listener.name.external.num.io.threads".into())
        );
    }

    #[test]
    fn ssl_keys_are_checked_one_by_one_and_unknown_ones_refused() {
        let mut c = BrokerConfig::default();
        for (key, value, says) in [
            ("ssl.keystore.type", "JKS", "PEM key and trust stores only"),
            (
                "ssl.truststore.type",
                "PKCS12",
                "PEM key and trust stores only",
            ),
            ("ssl.client.auth", "maybe", "expected required"),
            (
                "ssl.enabled.protocols",
                "TLSv1.1",
                "no protocol Starling offers",
            ),
            ("ssl.enabled.protocols", "TLSv9", "unknown protocol TLSv9"),
            ("ssl.principal.mapping.rules", "RULE:x", "closing '/'"),
            ("ssl.engine.factory.class", "com.x.Y", "rustls"),
        ] {
            let e = c.set(key, value).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains(key), "{key}={value}: {e}");
        }
        assert_eq!(
            c.set("ssl.no.such.key", "1").unwrap_err(),
            ConfigError::UnknownKey("ssl.no.such.key".into())
        );
        c.set("ssl.keystore.type", "pem").unwrap();
        c.set("ssl.enabled.protocols", "TLSv1.2,TLSv1.3,TLSv1.1")
            .unwrap();
        c.set("ssl.endpoint.identification.algorithm", "https")
            .unwrap();
        assert!(is_sensitive_key("ssl.key.password"));
        assert!(is_sensitive_key("listener.name.ssl.ssl.keystore.key"));
        assert!(!is_sensitive_key("ssl.keystore.location"));
    }

    #[test]
    fn a_tls_listener_needs_its_certificate_and_key() {
        let mut c = BrokerConfig::default();
        c.set("listeners", "SSL://127.0.0.1:0").unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("needs its certificate and key"), "{e}");
        c.set("ssl.keystore.location", "/nonexistent/ks.pem")
            .unwrap();
        c.check().unwrap();
        c.set("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----")
            .unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
        let mut c = BrokerConfig::default();
        c.set("listeners", "SSL://127.0.0.1:0").unwrap();
        c.set("ssl.keystore.location", "/ks.pem").unwrap();
        c.set("ssl.client.auth", "required").unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("need a trust store"), "{e}");
        // On SASL_SSL only the listener's own ssl.client.auth counts (KIP-684).
        c.set("listeners", "SASL_SSL://127.0.0.1:0").unwrap();
        c.set("sasl.enabled.mechanisms", "SCRAM-SHA-512").unwrap();
        c.check().unwrap();
        c.set("listener.name.sasl_ssl.ssl.client.auth", "required")
            .unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(
            e.contains("listener.name.sasl_ssl.ssl.client.auth")
                && e.contains("need a trust store"),
            "{e}"
        );
    }

    #[test]
    fn an_admin_endpoint_beyond_loopback_needs_admin_auth_chosen() {
        let mut c = BrokerConfig::default();
        c.check().unwrap();
        c.set("admin.listen", "0.0.0.0:9644").unwrap();
        let err = c.check().unwrap_err().to_string();
        assert!(
            err.contains("'admin.listen'") && err.contains("set admin.auth=required"),
            "{err}"
        );
        c.set("admin.auth", "none").unwrap();
        c.check().unwrap();
        c.set("admin.auth", "Required").unwrap();
        assert!(c.admin_auth_required());
        c.check().unwrap();
        // Required with no way in at all is refused.
        c.set("admin.auth.basic.enable", "false").unwrap();
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("nobody could log in"), "{err}");
        let err = c.set("admin.auth", "maybe").unwrap_err().to_string();
        assert!(err.contains("expected none or required"), "{err}");
        // A loopback address needs no choice.
        let mut c = BrokerConfig::default();
        c.set("admin.listen", "[::1]:0").unwrap();
        c.check().unwrap();
    }

    #[test]
    fn an_admin_tokens_file_is_read_at_check_and_one_that_does_not_parse_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("tokens");
        let token = crate::admin::auth::new_token();
        let line = crate::admin::auth::tokens_file_line("User:ops", &token).unwrap();
        std::fs::write(&good, format!("{line}\n")).unwrap();
        let mut c = BrokerConfig::default();
        c.set("admin.auth", "required").unwrap();
        c.set("admin.auth.basic.enable", "false").unwrap();
        c.set("admin.auth.tokens.file", good.to_str().unwrap())
            .unwrap();
        c.check().unwrap();
        let bad = dir.path().join("bad");
        std::fs::write(&bad, format!("{token}\n")).unwrap();
        c.set("admin.auth.tokens.file", bad.to_str().unwrap())
            .unwrap();
        let err = c.check().unwrap_err().to_string();
        assert!(
            err.contains("'admin.auth.tokens.file'") && err.contains("line 1"),
            "{err}"
        );
        assert!(!err.contains(&token), "{err}");
        c.set("admin.auth.tokens.file", "/nonexistent/tokens")
            .unwrap();
        assert!(c.check().is_err());
    }

    #[test]
    fn admin_listen_takes_an_address_or_none() {
        let mut c = BrokerConfig::default();
        assert_eq!(c.admin_listen, Some("127.0.0.1:9644".parse().unwrap()));
        c.set("admin.listen", "0.0.0.0:0").unwrap();
        assert_eq!(c.admin_listen, Some("0.0.0.0:0".parse().unwrap()));
        c.set("admin.listen", "none").unwrap();
        assert_eq!(c.admin_listen, None);
        let err = c.set("admin.listen", "localhost").unwrap_err();
        assert!(err.to_string().contains("'admin.listen'"), "{err}");
    }

    #[test]
    fn a_stock_properties_file_loads_and_unknown_lines_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.properties");
        std::fs::write(
            &path,
            "# comment\nnum.network.threads=3\nnum.partitions = 4\nlog.retention.hours=168\n",
        )
        .unwrap();
        let mut c = BrokerConfig::default();
        c.apply_properties_file(&path).unwrap();
        assert_eq!(c.num_partitions, 4);
        std::fs::write(&path, "bogus.key=1\n").unwrap();
        let err = c.apply_properties_file(&path).unwrap_err();
        assert!(err.to_string().contains("bogus.key"));
    }

    /// `config/server.properties` as Apache Kafka 4 ships it (KRaft, combined broker and
    /// controller), comments left out; the end-to-end tests start a broker with it too.
    const KAFKA_STOCK_SERVER_PROPERTIES: &str =
        include_str!("../testdata/kafka-4-server.properties");

    #[test]
    fn kafkas_stock_server_properties_load_with_the_client_listener_and_the_rest_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.properties");
        std::fs::write(&path, KAFKA_STOCK_SERVER_PROPERTIES).unwrap();
        let mut c = BrokerConfig::default();
        c.apply_properties_file(&path).unwrap();
        c.check().unwrap();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.first_listener().addr, "0.0.0.0:9092".parse().unwrap());
        assert_eq!(
            c.advertised_for("PLAINTEXT", c.first_listener().addr),
            ("localhost".to_string(), 9092)
        );
        assert_eq!(c.data_dir, PathBuf::from("/tmp/kraft-combined-logs"));
        assert_eq!(c.log.retention_ms, Some(168 * 3_600_000));
        for key in [
            "process.roles",
            "controller.quorum.bootstrap.servers",
            "controller.listener.names",
            "inter.broker.listener.name",
        ] {
            assert!(c.ignored.contains_key(key), "{key} ignored");
        }
        // Kafka 3's KRaft file names the voters instead.
        c.set("controller.quorum.voters", "1@localhost:9093")
            .unwrap();
    }

    #[test]
    fn listener_hosts_may_be_names_or_empty() {
        let mut c = BrokerConfig::default();
        c.set("listeners", "PLAINTEXT://localhost:0").unwrap();
        let first = c.first_listener().addr;
        assert!(first.ip().is_loopback(), "{first}");
        c.set("listeners", "CONTROLLER://:9093,PLAINTEXT://:19092")
            .unwrap();
        assert_eq!(c.first_listener().addr, "0.0.0.0:19092".parse().unwrap());
        c.set("listeners", "PLAINTEXT://[::1]:19093").unwrap();
        assert_eq!(c.first_listener().addr, "[::1]:19093".parse().unwrap());
        let e = c
            .set("listeners", "CONTROLLER://:9093")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'listeners'") && e.contains("for clients"),
            "{e}"
        );
        let e = c
            .set("listeners", "PLAINTEXT://no-such-host.invalid:9092")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot resolve host 'no-such-host.invalid'"),
            "{e}"
        );
        assert_eq!(
            resolve_address("--listen", "localhost:9092")
                .unwrap()
                .port(),
            9092
        );
        c.set("admin.listen", "localhost:0").unwrap();
        assert!(c.admin_listen.unwrap().ip().is_loopback());
    }

    #[test]
    fn a_minimum_session_timeout_above_the_maximum_is_refused_naming_both_keys() {
        let mut c = BrokerConfig::default();
        c.set("group.min.session.timeout.ms", "60000").unwrap();
        c.set("group.max.session.timeout.ms", "30000").unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(
            e.contains("group.min.session.timeout.ms")
                && e.contains("group.max.session.timeout.ms"),
            "{e}"
        );
        c.set("group.max.session.timeout.ms", "60000").unwrap();
        c.check().unwrap();
    }

    #[test]
    fn no_authorizer_by_default() {
        let c = BrokerConfig::default();
        assert!(!c.authorizer_enabled());
        assert_eq!(c.super_users, "");
        assert!(!c.allow_everyone_if_no_acl_found);
    }

    #[test]
    fn kafkas_authorizer_class_names_turn_acls_on() {
        for name in AUTHORIZER_CLASS_NAMES {
            let mut c = BrokerConfig::default();
            c.set("authorizer.class.name", name).unwrap();
            assert!(c.authorizer_enabled(), "{name}");
        }
    }

    #[test]
    fn an_empty_authorizer_class_name_turns_acls_off() {
        let mut c = BrokerConfig::default();
        c.set("authorizer.class.name", AUTHORIZER_CLASS_NAMES[0])
            .unwrap();
        c.set("authorizer.class.name", "").unwrap();
        assert!(!c.authorizer_enabled());
    }

    #[test]
    fn another_authorizer_class_is_refused_naming_ours() {
        let mut c = BrokerConfig::default();
        let e = c
            .set("authorizer.class.name", "com.example.MyAuthorizer")
            .unwrap_err()
            .to_string();
        assert!(e.contains("StandardAuthorizer"), "{e}");
    }

    #[test]
    fn super_users_and_allow_everyone_are_read() {
        let mut c = BrokerConfig::default();
        c.set("super.users", "User:admin;User:ops").unwrap();
        c.set("allow.everyone.if.no.acl.found", "true").unwrap();
        assert_eq!(c.super_users, "User:admin;User:ops");
        assert!(c.allow_everyone_if_no_acl_found);
        assert!(c.set("allow.everyone.if.no.acl.found", "yes").is_err());
    }

    #[test]
    fn a_plain_users_file_is_read_at_check_and_one_that_does_not_parse_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("users");
        let line = crate::sasl::plain::users_file_line("alice", b"pw", 10_000).unwrap();
        std::fs::write(&good, format!("{line}\n")).unwrap();
        let mut c = BrokerConfig::default();
        c.set("sasl.plain.users.file", &good.display().to_string())
            .unwrap();
        assert_eq!(c.sasl_plain_users_file.as_deref(), Some(good.as_path()));
        c.check().unwrap();
        for (name, text) in [("plain", "alice:pw\n"), ("missing", "")] {
            let path = dir.path().join(name);
            if !text.is_empty() {
                std::fs::write(&path, text).unwrap();
            }
            c.set("sasl.plain.users.file", &path.display().to_string())
                .unwrap();
            let e = c.check().unwrap_err().to_string();
            assert!(e.contains("sasl.plain.users.file"), "{e}");
        }
        c.set("sasl.plain.users.file", "").unwrap();
        assert_eq!(c.sasl_plain_users_file, None);
        c.check().unwrap();
    }

    #[test]
    fn topic_configs_refuse_what_we_cannot_honour() {
        let mut log = LogConfig::default();
        assert!(apply_topic_config(&mut log, "cleanup.policy", "shred").is_err());
        assert!(apply_topic_config(&mut log, "cleanup.policy", "").is_err());
        apply_topic_config(&mut log, "cleanup.policy", "delete, compact").unwrap();
        assert_eq!(log.cleanup_policy, CleanupPolicy::CompactDelete);
        assert!(apply_topic_config(&mut log, "min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(apply_topic_config(&mut log, "max.compaction.lag.ms", "0").is_err());
        assert!(apply_topic_config(&mut log, "retention.ms", "60000").is_ok());
        assert_eq!(log.retention_ms, Some(60000));
        assert!(matches!(
            apply_topic_config(&mut log, "nope", "1"),
            Err(ConfigError::UnknownKey(_))
        ));
    }

    #[test]
    fn compression_and_timestamp_bounds_are_parsed_described_and_set_by_their_broker_keys() {
        let mut log = LogConfig::default();
        for name in ["uncompressed", "gzip", "snappy", "lz4", "zstd", "producer"] {
            apply_topic_config(&mut log, "compression.type", name).unwrap();
            assert_eq!(log.compression_type.name(), name);
        }
        assert!(apply_topic_config(&mut log, "compression.type", "brotli").is_err());
        assert!(apply_topic_config(&mut log, "compression.type", "ZSTD").is_err());
        apply_topic_config(&mut log, "compression.type", "zstd").unwrap();
        apply_topic_config(&mut log, "compression.gzip.level", "9").unwrap();
        apply_topic_config(&mut log, "compression.lz4.level", "17").unwrap();
        apply_topic_config(&mut log, "compression.zstd.level", "-7").unwrap();
        assert!(apply_topic_config(&mut log, "compression.gzip.level", "0").is_err());
        assert!(apply_topic_config(&mut log, "compression.lz4.level", "0").is_err());
        assert!(apply_topic_config(&mut log, "compression.zstd.level", "23").is_err());
        assert_eq!(
            (
                log.compression_levels.gzip,
                log.compression_levels.lz4,
                log.compression_levels.zstd
            ),
            (9, 17, -7)
        );
        apply_topic_config(&mut log, "message.timestamp.after.max.ms", "7200000").unwrap();
        apply_topic_config(&mut log, "message.timestamp.before.max.ms", "0").unwrap();
        assert!(apply_topic_config(&mut log, "message.timestamp.after.max.ms", "-1").is_err());
        assert_eq!(
            (log.timestamp_before_max_ms, log.timestamp_after_max_ms),
            (0, 7_200_000)
        );
        // Kafka 4 removed the deprecated key.
        assert!(matches!(
            apply_topic_config(&mut log, "message.timestamp.difference.max.ms", "1000"),
            Err(ConfigError::UnknownKey(_))
        ));
        let described = describe_log_config(&log);
        let get = |k: &str| {
            described
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("compression.type"), Some("zstd"));
        assert_eq!(get("compression.gzip.level"), Some("9"));
        assert_eq!(get("compression.lz4.level"), Some("17"));
        assert_eq!(get("compression.zstd.level"), Some("-7"));
        assert_eq!(get("message.timestamp.after.max.ms"), Some("7200000"));
        assert_eq!(get("message.timestamp.before.max.ms"), Some("0"));

        let mut c = BrokerConfig::default();
        assert_eq!(c.log.timestamp_after_max_ms, 3_600_000);
        c.set("compression.type", "lz4").unwrap();
        c.set("compression.lz4.level", "3").unwrap();
        c.set("log.message.timestamp.after.max.ms", "60000")
            .unwrap();
        c.set("log.message.timestamp.before.max.ms", "120000")
            .unwrap();
        assert_eq!(c.log.compression_type, starling_log::CompressionType::Lz4);
        assert_eq!(c.log.compression_levels.lz4, 3);
        assert_eq!(
            (c.log.timestamp_before_max_ms, c.log.timestamp_after_max_ms),
            (120_000, 60_000)
        );
        let e = c
            .set("log.message.timestamp.after.max.ms", "-5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.message.timestamp.after.max.ms"), "{e}");
    }
}
