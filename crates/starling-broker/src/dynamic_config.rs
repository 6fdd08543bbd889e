//! Configs as DescribeConfigs, AlterConfigs and IncrementalAlterConfigs see them: the broker
//! configs changed at run time (persisted in the metadata store, cluster-wide defaults and this
//! node's own), and the resolution that gives every topic and broker key its value, its source
//! and its synonyms in Kafka's order (topic, dynamic broker, dynamic default, static, default).
//!
//! Topic overrides live with their topic ([`crate::topics::TopicRegistry`]); this module owns
//! the broker side and the rules both share (incremental operations, request checks).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use parking_lot::RwLock;
use starling_log::LogConfig;
use starling_meta::backend::MetadataBackend;
use starling_meta::MetaError;

use crate::config::{describe_log_config, BrokerConfig};
use crate::config_keys::{self, ConfigSource, ConfigType, Effect, TopicKey};
use crate::storage::MetadataStorage;
use crate::topics::AdminError;

/// Kafka's `ConfigResource.Type` ids.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Which broker configs an operation names: the cluster-wide defaults (resource name `""`)
/// or this node's own (its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerScope {
    ClusterDefault,
    Node,
}

/// One config as described.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribedConfig {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    pub source: ConfigSource,
    /// Where the value could come from, most specific first (Kafka's synonyms).
    pub synonyms: Vec<Synonym>,
    pub config_type: ConfigType,
    pub documentation: &'static str,
}

/// One synonym of a described config.
#[derive(Debug, Clone, PartialEq)]
pub struct Synonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// Kafka's AlterConfigOp types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterOp {
    Set,
    Delete,
    Append,
    Subtract,
}

impl AlterOp {
    /// The op with wire id `id`, or Kafka's error for an unknown one.
    pub fn from_id(id: i8) -> Result<AlterOp, AdminError> {
        match id {
            0 => Ok(AlterOp::Set),
            1 => Ok(AlterOp::Delete),
            2 => Ok(AlterOp::Append),
            3 => Ok(AlterOp::Subtract),
            other => Err(invalid_request(format!("Unknown operations type {other}"))),
        }
    }
}

fn invalid_request(message: impl Into<String>) -> AdminError {
    AdminError::new(ResponseError::InvalidRequest, message)
}

fn invalid_config(message: impl Into<String>) -> AdminError {
    AdminError::new(ResponseError::InvalidConfig, message)
}

/// The broker's run-time configs.
pub struct DynamicConfigs {
    node_id: i32,
    /// The configuration the broker started with (properties file and `--override`).
    static_config: BrokerConfig,
    store: MetadataStorage,
    overrides: RwLock<Overrides>,
    /// Serializes changes, so each validates against the state it replaces.
    admin: tokio::sync::Mutex<()>,
}

/// The stored run-time configs that concern this node (the cluster-wide defaults and its own).
/// A stored value this build refuses (a key it no longer knows) is skipped, with a warning
/// when `warn`.
async fn stored_overrides(
    static_config: &BrokerConfig,
    store: &MetadataStorage,
    warn: bool,
) -> Result<Overrides, MetaError> {
    let node_scope = static_config.node_id.to_string();
    let mut overrides = Overrides::default();
    for (scope, configs) in store.broker_configs().await? {
        let target = if scope.is_empty() {
            &mut overrides.cluster_default
        } else if scope == node_scope {
            &mut overrides.node
        } else {
            continue;
        };
        for (key, value) in configs {
            let mut probe = static_config.clone();
            match probe.set(&key, &value) {
                Ok(()) if is_dynamic(&key) => {
                    target.insert(key, value);
                }
                Ok(()) if warn => tracing::warn!(
                    key,
                    "ignoring a stored run-time config that can no longer change at run time"
                ),
                Err(e) if warn => tracing::warn!(error = %e, "ignoring a stored run-time config"),
                _ => {}
            }
        }
    }
    Ok(overrides)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Overrides {
    cluster_default: BTreeMap<String, String>,
    node: BTreeMap<String, String>,
}

impl Overrides {
    fn get(&self, scope: BrokerScope) -> &BTreeMap<String, String> {
        match scope {
            BrokerScope::ClusterDefault => &self.cluster_default,
            BrokerScope::Node => &self.node,
        }
    }

    fn get_mut(&mut self, scope: BrokerScope) -> &mut BTreeMap<String, String> {
        match scope {
            BrokerScope::ClusterDefault => &mut self.cluster_default,
            BrokerScope::Node => &mut self.node,
        }
    }
}

impl DynamicConfigs {
    /// Loads the persisted run-time configs over `static_config`. A stored value this build
    /// refuses (a key it no longer knows) is skipped with a warning rather than stopping the
    /// broker.
    pub async fn open(
        static_config: &BrokerConfig,
        store: MetadataStorage,
    ) -> anyhow::Result<DynamicConfigs> {
        let overrides = stored_overrides(static_config, &store, true).await?;
        let configs = DynamicConfigs {
            node_id: static_config.node_id,
            static_config: static_config.clone(),
            store,
            overrides: RwLock::new(overrides),
            admin: tokio::sync::Mutex::new(()),
        };
        if configs.effective_with(&configs.overrides.read()).is_err() {
            tracing::warn!(
                "the stored run-time configs contradict each other; starting without them"
            );
            *configs.overrides.write() = Overrides::default();
        }
        Ok(configs)
    }

    /// Takes in the run-time configs other nodes sharing the storage changed (PostgreSQL):
    /// the cluster-wide defaults, and this node's own if another node set them. Returns the
    /// configuration now in force when it changed, for the caller to apply.
    pub async fn follow_stored(&self) -> anyhow::Result<Option<BrokerConfig>> {
        let _guard = self.admin.lock().await;
        let stored = stored_overrides(&self.static_config, &self.store, false).await?;
        if stored == *self.overrides.read() {
            return Ok(None);
        }
        let effective = self.effective_with(&stored).map_err(|e| {
            anyhow::anyhow!(
                "the run-time configs another node stored do not hold together: {}",
                e.message
            )
        })?;
        *self.overrides.write() = stored;
        tracing::info!("took in run-time broker configs changed by another node");
        Ok(Some(effective))
    }

    /// The configuration in force: the static one with the cluster-wide run-time defaults,
    /// then this node's own, applied over it.
    pub fn effective(&self) -> BrokerConfig {
        let overrides = self.overrides.read();
        self.effective_with(&overrides)
            .unwrap_or_else(|_| self.static_config.clone())
    }

    fn effective_with(&self, overrides: &Overrides) -> Result<BrokerConfig, AdminError> {
        // Per key the most specific level wins; then the keys are applied in name order, so
        // among synonyms the finest unit wins (`log.retention.ms` over `log.retention.hours`)
        // whichever level set it, as in Kafka.
        let mut merged: BTreeMap<&str, &str> = self
            .static_config
            .explicit
            .iter()
            .filter(|(key, _)| is_dynamic(key))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (key, value) in overrides.cluster_default.iter().chain(&overrides.node) {
            merged.insert(key, value);
        }
        let mut config = self.static_config.clone();
        for (key, value) in merged {
            config
                .set(key, value)
                .map_err(|e| invalid_config(e.to_string()))?;
        }
        config.check().map_err(|e| invalid_config(e.to_string()))?;
        Ok(config)
    }

    /// The scope a BROKER resource name names: `""` for the cluster-wide defaults, this node's
    /// id for its own; anything else is refused as Kafka refuses it.
    pub fn scope(&self, resource_name: &str) -> Result<BrokerScope, AdminError> {
        if resource_name.is_empty() {
            return Ok(BrokerScope::ClusterDefault);
        }
        let id: i32 = resource_name.parse().map_err(|_| {
            invalid_request(format!(
                "Broker id must be an integer, but it is: {resource_name}"
            ))
        })?;
        if id != self.node_id {
            return Err(invalid_request(format!(
                "Unexpected broker id, expected {} or empty string, but received {resource_name}",
                self.node_id
            )));
        }
        Ok(BrokerScope::Node)
    }

    /// Replaces the run-time configs of `scope` with what `next` makes of the current ones,
    /// after checking every key is a broker config that may change at run time and every value
    /// parses; with `apply`, persists them, hands the configuration now in force to `in_force`
    /// (to apply it) and returns it. All of it happens under one lock, so concurrent changes
    /// neither lose each other's keys nor apply their results out of order.
    pub async fn alter(
        &self,
        scope: BrokerScope,
        next: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, AdminError>,
        apply: bool,
        in_force: impl FnOnce(&BrokerConfig),
    ) -> Result<Option<BrokerConfig>, AdminError> {
        let _guard = self.admin.lock().await;
        let configs = next(self.overrides.read().get(scope))?;
        let mut unknown = Vec::new();
        let mut fixed = Vec::new();
        for key in configs.keys() {
            if broker_key_info(key).is_none() {
                unknown.push(key.as_str());
            } else if !is_dynamic(key) {
                fixed.push(key.as_str());
            }
        }
        if !unknown.is_empty() {
            return Err(invalid_config(format!(
                "Unknown broker config name: {}",
                unknown.join(", ")
            )));
        }
        if !fixed.is_empty() {
            return Err(invalid_request(format!(
                "Cannot update these configs dynamically: {}",
                fixed.join(", ")
            )));
        }
        let mut next = self.overrides.read().clone();
        *next.get_mut(scope) = configs.clone();
        let effective = self.effective_with(&next)?;
        if !apply {
            return Ok(None);
        }
        let key = match scope {
            BrokerScope::ClusterDefault => String::new(),
            BrokerScope::Node => self.node_id.to_string(),
        };
        self.store
            .put_broker_configs(&key, &configs)
            .await
            .map_err(|e| AdminError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        *self.overrides.write() = next;
        tracing::info!(?scope, ?configs, "broker configs changed at run time");
        in_force(&effective);
        Ok(Some(effective))
    }

    /// The broker configs of `scope` as DescribeConfigs reports them: for this node every key
    /// it has; for the cluster-wide scope only the keys set there.
    pub fn describe_broker(&self, scope: BrokerScope) -> Vec<DescribedConfig> {
        let overrides = self.overrides.read();
        let names: BTreeSet<&str> = match scope {
            BrokerScope::ClusterDefault => overrides
                .cluster_default
                .keys()
                .map(String::as_str)
                .collect(),
            BrokerScope::Node => config_keys::BROKER_KEYS
                .iter()
                .map(|k| k.name)
                .chain(self.static_config.explicit.keys().map(String::as_str))
                .chain(overrides.cluster_default.keys().map(String::as_str))
                .chain(overrides.node.keys().map(String::as_str))
                .collect(),
        };
        names
            .into_iter()
            .map(|name| {
                let info = broker_key_info(name);
                let mut synonyms = self.broker_synonyms(&overrides, name);
                if scope == BrokerScope::ClusterDefault {
                    synonyms.retain(|s| s.source == ConfigSource::DynamicDefaultBroker);
                }
                let value = synonyms
                    .iter()
                    .find(|s| s.name == name)
                    .and_then(|s| s.value.clone());
                DescribedConfig {
                    name: name.to_string(),
                    value,
                    read_only: !is_dynamic(name),
                    source: synonyms.first().map_or(ConfigSource::Default, |s| s.source),
                    synonyms,
                    config_type: info.as_ref().map_or(ConfigType::String, |i| i.config_type),
                    documentation: info.map_or(
                        "Accepted for compatibility; it has no effect on a single Starling node.",
                        |i| i.doc,
                    ),
                }
            })
            .collect()
    }

    /// A broker key's synonyms at every level, most specific first.
    fn broker_synonyms(&self, overrides: &Overrides, name: &str) -> Vec<Synonym> {
        let names = config_keys::broker_synonyms(name);
        self.levels(overrides, &names)
    }

    /// The values the broker keys `names` have at each level: this node's run-time configs,
    /// the cluster-wide ones, the static ones, then the defaults.
    fn levels(&self, overrides: &Overrides, names: &[&str]) -> Vec<Synonym> {
        let mut out = Vec::new();
        let maps = [
            (&overrides.node, ConfigSource::DynamicBroker),
            (
                &overrides.cluster_default,
                ConfigSource::DynamicDefaultBroker,
            ),
            (&self.static_config.explicit, ConfigSource::StaticBroker),
        ];
        for (map, source) in maps {
            for name in names {
                if let Some(value) = map.get(*name) {
                    out.push(Synonym {
                        name: name.to_string(),
                        value: Some(value.clone()),
                        source,
                    });
                }
            }
        }
        for name in names {
            if let Some(default) = broker_key_info(name).and_then(|i| i.default) {
                out.push(Synonym {
                    name: name.to_string(),
                    value: Some(default),
                    source: ConfigSource::Default,
                });
            }
        }
        out
    }

    /// A topic's configs as DescribeConfigs reports them: every topic config, its value in
    /// force (`log` for the keys the log reads), where it comes from and its synonyms.
    pub fn describe_topic(
        &self,
        topic_overrides: &BTreeMap<String, String>,
        log: &LogConfig,
    ) -> Vec<DescribedConfig> {
        let overrides = self.overrides.read();
        let in_force: BTreeMap<&str, String> = describe_log_config(log).into_iter().collect();
        config_keys::TOPIC_KEYS
            .iter()
            .map(|key| {
                let mut synonyms = Vec::new();
                if let Some(value) = topic_overrides.get(key.name) {
                    synonyms.push(Synonym {
                        name: key.name.to_string(),
                        value: Some(value.clone()),
                        source: ConfigSource::Topic,
                    });
                }
                synonyms.extend(self.levels(&overrides, key.broker_synonyms));
                let value = match (key.effect, in_force.get(key.name)) {
                    (Effect::Honoured, Some(value)) => value.clone(),
                    _ => unapplied_value(key, &synonyms),
                };
                DescribedConfig {
                    name: key.name.to_string(),
                    value: Some(value),
                    read_only: false,
                    source: synonyms.first().map_or(ConfigSource::Default, |s| s.source),
                    synonyms,
                    config_type: key.config_type,
                    documentation: key.doc,
                }
            })
            .collect()
    }
}

/// The value of a topic config the log does not read: the most specific setting of it that is
/// not a unit-converted synonym (`log.roll.jitter.hours`), else its default.
fn unapplied_value(key: &TopicKey, synonyms: &[Synonym]) -> String {
    synonyms
        .iter()
        .find(|s| {
            s.name == key.name || s.name == key.broker_synonyms.first().copied().unwrap_or("")
        })
        .and_then(|s| s.value.clone())
        .unwrap_or_else(|| key.default.to_string())
}

/// What DescribeConfigs says about a broker key.
pub struct BrokerKeyInfo {
    pub config_type: ConfigType,
    pub default: Option<String>,
    pub doc: &'static str,
}

/// A broker key Starling knows: one of [`config_keys::BROKER_KEYS`], or a key that sets a
/// topic config's default (`log.cleaner.delete.retention.ms`).
pub fn broker_key_info(name: &str) -> Option<BrokerKeyInfo> {
    if let Some(key) = config_keys::broker_key(name) {
        return Some(BrokerKeyInfo {
            config_type: key.config_type,
            default: (key.default)(&BrokerConfig::default()),
            doc: key.doc,
        });
    }
    if crate::config::ACCEPTED_WITHOUT_EFFECT.contains(&name) {
        return Some(BrokerKeyInfo {
            config_type: ConfigType::Int,
            default: None,
            doc: "Accepted for compatibility; it has no effect on a single Starling node.",
        });
    }
    let topic = config_keys::topic_key_for_broker_key(name)?;
    // Of several synonyms (`log.roll.jitter.ms`, `log.roll.jitter.hours`) only the coarsest
    // has a default, as in Kafka.
    let last = topic.broker_synonyms.last().copied() == Some(name);
    Some(BrokerKeyInfo {
        config_type: topic.config_type,
        default: last.then(|| topic.default.to_string()),
        doc: topic.doc,
    })
}

/// Whether a broker key may change at run time: the defaults of topic configs may, and the
/// thread-pool sizes Kafka lets change (without effect here).
pub fn is_dynamic(name: &str) -> bool {
    match config_keys::broker_key(name) {
        Some(key) => key.dynamic,
        None => {
            config_keys::topic_key_for_broker_key(name).is_some()
                || crate::config::DYNAMIC_WITHOUT_EFFECT.contains(&name)
        }
    }
}

/// Kafka's request checks before any resource is touched: the same config twice, or a null
/// value for anything but a DELETE, is INVALID_REQUEST.
pub fn check_entries<'a>(
    entries: impl IntoIterator<Item = (&'a str, Option<&'a str>, AlterOp)>,
) -> Result<(), AdminError> {
    let mut seen = BTreeSet::new();
    let mut nulls = Vec::new();
    for (name, value, op) in entries {
        if !seen.insert(name) {
            return Err(invalid_request("Error due to duplicate config keys"));
        }
        if value.is_none() && op != AlterOp::Delete {
            nulls.push(name);
        }
    }
    if !nulls.is_empty() {
        return Err(invalid_request(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    Ok(())
}

/// Applies IncrementalAlterConfigs operations to a resource's current settings. APPEND and
/// SUBTRACT work on list configs only, starting from the key's default when it is not set.
pub fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[(String, Option<String>, AlterOp)],
    is_list: impl Fn(&str) -> Option<bool>,
    default: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, AdminError> {
    let mut next = current.clone();
    for (name, value, op) in ops {
        let value = value.clone().unwrap_or_default();
        match op {
            AlterOp::Set => {
                next.insert(name.clone(), value);
            }
            AlterOp::Delete => {
                next.remove(name);
            }
            AlterOp::Append | AlterOp::Subtract => {
                let verb = if *op == AlterOp::Append {
                    "append"
                } else {
                    "subtract"
                };
                match is_list(name) {
                    None => return Err(invalid_config(format!("Unknown config name: {name}"))),
                    Some(false) => {
                        return Err(invalid_config(format!(
                            "Config value {verb} is not allowed for config key: {name}"
                        )))
                    }
                    Some(true) => {}
                }
                let old: Vec<String> = next
                    .get(name)
                    .cloned()
                    .or_else(|| default(name))
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                let items: Vec<String> = value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                let merged: Vec<String> = if *op == AlterOp::Append {
                    let mut merged = old.clone();
                    merged.extend(items.into_iter().filter(|i| !old.contains(i)));
                    merged
                } else {
                    old.into_iter().filter(|o| !items.contains(o)).collect()
                };
                next.insert(name.clone(), merged.join(","));
            }
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use starling_meta::MetadataStore;

    use super::*;

    fn store() -> (tempfile::TempDir, Arc<MetadataStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MetadataStore::open(&dir.path().join("meta.redb")).unwrap());
        (dir, store)
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn find<'a>(configs: &'a [DescribedConfig], name: &str) -> &'a DescribedConfig {
        configs.iter().find(|c| c.name == name).unwrap()
    }

    #[tokio::test]
    async fn a_topic_value_comes_from_the_topic_then_the_broker_levels_then_the_default() {
        let (_dir, store) = store();
        let mut config = BrokerConfig::default();
        config.set("log.retention.hours", "24").unwrap();
        let dynamic = DynamicConfigs::open(&config, store.into()).await.unwrap();
        dynamic
            .alter(
                BrokerScope::ClusterDefault,
                |_| Ok(map(&[("log.retention.ms", "5000")])),
                true,
                |_| {},
            )
            .await
            .unwrap();
        let log = dynamic.effective().log;
        let described = dynamic.describe_topic(&BTreeMap::new(), &log);
        let retention = find(&described, "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("5000"));
        assert_eq!(retention.source, ConfigSource::DynamicDefaultBroker);
        let sources: Vec<_> = retention
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.source))
            .collect();
        assert_eq!(
            sources,
            [
                ("log.retention.ms", ConfigSource::DynamicDefaultBroker),
                ("log.retention.hours", ConfigSource::StaticBroker),
                ("log.retention.hours", ConfigSource::Default),
            ]
        );
        let overridden = dynamic.describe_topic(&map(&[("retention.ms", "7")]), &log);
        let retention = find(&overridden, "retention.ms");
        assert_eq!(retention.source, ConfigSource::Topic);
        assert_eq!(retention.synonyms[0].value.as_deref(), Some("7"));
        let segment = find(&described, "segment.bytes");
        assert_eq!(segment.source, ConfigSource::Default);
        assert_eq!(segment.value.as_deref(), Some("1073741824"));
    }

    #[tokio::test]
    async fn keys_the_log_does_not_read_report_their_setting_or_kafkas_default() {
        let (_dir, store) = store();
        let dynamic = DynamicConfigs::open(&BrokerConfig::default(), store.into())
            .await
            .unwrap();
        dynamic
            .alter(
                BrokerScope::Node,
                |_| Ok(map(&[("log.preallocate", "true")])),
                true,
                |_| {},
            )
            .await
            .unwrap();
        let described = dynamic.describe_topic(&BTreeMap::new(), &dynamic.effective().log);
        let preallocate = find(&described, "preallocate");
        assert_eq!(preallocate.value.as_deref(), Some("true"));
        assert_eq!(preallocate.source, ConfigSource::DynamicBroker);
        let dirty = find(&described, "min.cleanable.dirty.ratio");
        assert_eq!(dirty.value.as_deref(), Some("0.5"));
        assert_eq!(dirty.config_type, ConfigType::Double);
    }

    #[tokio::test]
    async fn run_time_broker_configs_persist_and_apply_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let store = Arc::new(MetadataStore::open(&path).unwrap());
            let dynamic = DynamicConfigs::open(&BrokerConfig::default(), store.into())
                .await
                .unwrap();
            let effective = dynamic
                .alter(
                    BrokerScope::Node,
                    |_| Ok(map(&[("message.max.bytes", "4096")])),
                    true,
                    |_| {},
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(effective.log.max_message_bytes, 4096);
        }
        let store = Arc::new(MetadataStore::open(&path).unwrap());
        let dynamic = DynamicConfigs::open(&BrokerConfig::default(), store.into())
            .await
            .unwrap();
        assert_eq!(dynamic.effective().log.max_message_bytes, 4096);
        let described = dynamic.describe_broker(BrokerScope::Node);
        let max = find(&described, "message.max.bytes");
        assert_eq!(max.source, ConfigSource::DynamicBroker);
        assert!(!max.read_only);
        assert!(find(&described, "node.id").read_only);
    }

    #[tokio::test]
    async fn validate_only_changes_nothing() {
        let (_dir, store) = store();
        let dynamic = DynamicConfigs::open(&BrokerConfig::default(), store.clone().into())
            .await
            .unwrap();
        assert!(dynamic
            .alter(
                BrokerScope::Node,
                |_| Ok(map(&[("message.max.bytes", "4096")])),
                false,
                |_| {}
            )
            .await
            .unwrap()
            .is_none());
        assert_eq!(dynamic.effective().log.max_message_bytes, 1_048_588);
        assert!(MetadataStore::broker_configs(&store).unwrap().is_empty());
    }

    #[tokio::test]
    async fn static_only_unknown_and_bad_broker_configs_are_refused_by_name() {
        let (_dir, store) = store();
        let dynamic = DynamicConfigs::open(&BrokerConfig::default(), store.into())
            .await
            .unwrap();
        let e = dynamic
            .alter(
                BrokerScope::Node,
                |_| Ok(map(&[("num.partitions", "3")])),
                true,
                |_| {},
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidRequest);
        assert!(e.message.contains("num.partitions"), "{}", e.message);
        let e = dynamic
            .alter(
                BrokerScope::Node,
                |_| Ok(map(&[("no.such.key", "3")])),
                true,
                |_| {},
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidConfig);
        assert!(e.message.contains("no.such.key"), "{}", e.message);
        let e = dynamic
            .alter(
                BrokerScope::Node,
                |_| Ok(map(&[("log.retention.ms", "soon")])),
                true,
                |_| {},
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidConfig);
        assert!(e.message.contains("log.retention.ms"), "{}", e.message);
    }

    #[tokio::test]
    async fn thread_pool_sizes_change_at_run_time_without_effect_and_other_ignored_keys_do_not() {
        let (_dir, store) = store();
        let dynamic = DynamicConfigs::open(&BrokerConfig::default(), store.into())
            .await
            .unwrap();
        dynamic
            .alter(
                BrokerScope::Node,
                |_| Ok(map(&[("num.io.threads", "16")])),
                true,
                |_| {},
            )
            .await
            .unwrap();
        let described = dynamic.describe_broker(BrokerScope::Node);
        let io = find(&described, "num.io.threads");
        assert_eq!(io.value.as_deref(), Some("16"));
        assert_eq!(io.source, ConfigSource::DynamicBroker);
        assert!(!io.read_only);
        let e = dynamic
            .alter(
                BrokerScope::Node,
                |_| Ok(map(&[("zookeeper.connect", "zk:2181")])),
                true,
                |_| {},
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidRequest);
    }

    #[tokio::test]
    async fn the_cluster_scope_describes_only_what_is_set_there() {
        let (_dir, store) = store();
        let dynamic = DynamicConfigs::open(&BrokerConfig::default(), store.into())
            .await
            .unwrap();
        assert!(dynamic
            .describe_broker(BrokerScope::ClusterDefault)
            .is_empty());
        dynamic
            .alter(
                BrokerScope::ClusterDefault,
                |_| Ok(map(&[("log.segment.bytes", "100000")])),
                true,
                |_| {},
            )
            .await
            .unwrap();
        let described = dynamic.describe_broker(BrokerScope::ClusterDefault);
        assert_eq!(described.len(), 1);
        assert_eq!(described[0].source, ConfigSource::DynamicDefaultBroker);
        assert_eq!(described[0].synonyms.len(), 1);
    }

    #[tokio::test]
    async fn broker_resource_names_are_empty_or_this_node() {
        let (_dir, store) = store();
        let dynamic = DynamicConfigs::open(&BrokerConfig::default(), store.into())
            .await
            .unwrap();
        assert_eq!(dynamic.scope("").unwrap(), BrokerScope::ClusterDefault);
        assert_eq!(dynamic.scope("1").unwrap(), BrokerScope::Node);
        assert_eq!(
            dynamic.scope("2").unwrap_err().code,
            ResponseError::InvalidRequest
        );
        assert_eq!(
            dynamic.scope("x").unwrap_err().code,
            ResponseError::InvalidRequest
        );
    }

    #[tokio::test]
    async fn append_and_subtract_work_on_lists_from_the_default() {
        let is_list =
            |name: &str| config_keys::topic_key(name).map(|k| k.config_type == ConfigType::List);
        let default = |name: &str| config_keys::topic_key(name).map(|k| k.default.to_string());
        let ops = vec![(
            "cleanup.policy".to_string(),
            Some("compact".to_string()),
            AlterOp::Append,
        )];
        let next = apply_ops(&BTreeMap::new(), &ops, is_list, default).unwrap();
        assert_eq!(next["cleanup.policy"], "delete,compact");
        let ops = vec![(
            "cleanup.policy".to_string(),
            Some("delete".to_string()),
            AlterOp::Subtract,
        )];
        let next = apply_ops(&next, &ops, is_list, default).unwrap();
        assert_eq!(next["cleanup.policy"], "compact");
        let ops = vec![(
            "retention.ms".to_string(),
            Some("1".to_string()),
            AlterOp::Append,
        )];
        let e = apply_ops(&next, &ops, is_list, default).unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidConfig);
        assert_eq!(
            e.message,
            "Config value append is not allowed for config key: retention.ms"
        );
        let ops = vec![
            (
                "retention.ms".to_string(),
                Some("1".to_string()),
                AlterOp::Set,
            ),
            ("cleanup.policy".to_string(), None, AlterOp::Delete),
        ];
        let next = apply_ops(&next, &ops, is_list, default).unwrap();
        assert_eq!(next, map(&[("retention.ms", "1")]));
    }

    #[tokio::test]
    async fn duplicate_keys_and_null_values_are_invalid_requests() {
        let e = check_entries([
            ("a", Some("1"), AlterOp::Set),
            ("a", Some("2"), AlterOp::Set),
        ])
        .unwrap_err();
        assert_eq!(e.message, "Error due to duplicate config keys");
        let e =
            check_entries([("a", None, AlterOp::Set), ("b", None, AlterOp::Delete)]).unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidRequest);
        assert_eq!(e.message, "Null value not supported for : a");
        assert!(check_entries([("b", None, AlterOp::Delete)]).is_ok());
    }
}
