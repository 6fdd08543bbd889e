//! Client quotas (KIP-546): DescribeClientQuotas and AlterClientQuotas, sent to the bootstrap
//! broker, as Kafka's `Admin.describeClientQuotas` / `alterClientQuotas` do.
//!
//! An entity is a list of (type, name) pairs, the types being `user`, `client-id` and `ip`; a
//! `None` name is the type's default entity (`<default>` in `kafka-configs`).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, ApiKey, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;

use crate::admin::TopicError;
use crate::client::{err, Client};
use crate::error::{Error, Result};

const DESCRIBE_CLIENT_QUOTAS: RangeInclusive<i16> = 0..=1;
const ALTER_CLIENT_QUOTAS: RangeInclusive<i16> = 0..=1;

/// A quota entity: (type, name) pairs, `None` naming the default entity of the type.
pub type QuotaEntity = Vec<(String, Option<String>)>;

/// How a DescribeClientQuotas filter component matches an entity type's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaMatch {
    /// This name (match type 0).
    Exact(String),
    /// The default entity (match type 1).
    Default,
    /// Any entity of the type, the default included (match type 2, "specified", as Kafka's
    /// `ClientQuotasImage` matches it).
    Any,
}

/// One filter component: entities that have `entity_type` with a name that matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaFilter {
    pub entity_type: String,
    pub matching: QuotaMatch,
}

/// An entity's quotas, as described.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientQuotaEntry {
    pub entity: QuotaEntity,
    pub values: BTreeMap<String, f64>,
}

/// Changes to one entity's quotas: each key set to `Some(value)` or removed (`None`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaAlteration {
    pub entity: QuotaEntity,
    pub ops: Vec<(String, Option<f64>)>,
}

/// The broker's answer for one altered entity: `Err` with its error and message.
pub type QuotaAlterResult = (QuotaEntity, std::result::Result<(), TopicError>);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

impl Client {
    /// The entities with quotas that match every component (and, with `strict`, no other
    /// entity type), with their quotas.
    pub async fn describe_client_quotas(
        &mut self,
        filter: &[QuotaFilter],
        strict: bool,
    ) -> Result<Vec<ClientQuotaEntry>> {
        let conn = self.bootstrap_conn().await?;
        let version = conn.version_for(ApiKey::DescribeClientQuotas, DESCRIBE_CLIENT_QUOTAS)?;
        let components = filter
            .iter()
            .map(|f| {
                let (match_type, name) = match &f.matching {
                    QuotaMatch::Exact(name) => (0, Some(s(name))),
                    QuotaMatch::Default => (1, None),
                    QuotaMatch::Any => (2, None),
                };
                ComponentData::default()
                    .with_entity_type(s(&f.entity_type))
                    .with_match_type(match_type)
                    .with_match(name)
            })
            .collect();
        let request = DescribeClientQuotasRequest::default()
            .with_components(components)
            .with_strict(strict);
        let response = conn.send(version, &request).await?;
        if let Some(e) = err(response.error_code) {
            let mut context = "DescribeClientQuotas".to_string();
            if let Some(m) = response.error_message.as_ref().filter(|m| !m.is_empty()) {
                context.push_str(&format!(" ({m})"));
            }
            return Err(Error::kafka(context, e));
        }
        let mut entries: Vec<ClientQuotaEntry> = response
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| ClientQuotaEntry {
                entity: e
                    .entity
                    .iter()
                    .map(|d| {
                        (
                            d.entity_type.to_string(),
                            d.entity_name.as_ref().map(|n| n.to_string()),
                        )
                    })
                    .collect(),
                values: e
                    .values
                    .iter()
                    .map(|v| (v.key.to_string(), v.value))
                    .collect(),
            })
            .collect();
        entries.sort_by(|a, b| a.entity.cmp(&b.entity));
        Ok(entries)
    }

    /// Sets and removes quotas; with `validate_only` the broker only checks them. One result
    /// per entity the broker answered.
    pub async fn alter_client_quotas(
        &mut self,
        alterations: &[QuotaAlteration],
        validate_only: bool,
    ) -> Result<Vec<QuotaAlterResult>> {
        let conn = self.bootstrap_conn().await?;
        let version = conn.version_for(ApiKey::AlterClientQuotas, ALTER_CLIENT_QUOTAS)?;
        let entries = alterations
            .iter()
            .map(|a| {
                EntryData::default()
                    .with_entity(
                        a.entity
                            .iter()
                            .map(|(t, n)| {
                                EntityData::default()
                                    .with_entity_type(s(t))
                                    .with_entity_name(n.as_deref().map(s))
                            })
                            .collect(),
                    )
                    .with_ops(
                        a.ops
                            .iter()
                            .map(|(key, value)| {
                                OpData::default()
                                    .with_key(s(key))
                                    .with_value(value.unwrap_or(0.0))
                                    .with_remove(value.is_none())
                            })
                            .collect(),
                    )
            })
            .collect();
        let request = AlterClientQuotasRequest::default()
            .with_entries(entries)
            .with_validate_only(validate_only);
        let response = conn.send(version, &request).await?;
        Ok(response
            .entries
            .iter()
            .map(|e| {
                let entity = e
                    .entity
                    .iter()
                    .map(|d| {
                        (
                            d.entity_type.to_string(),
                            d.entity_name.as_ref().map(|n| n.to_string()),
                        )
                    })
                    .collect();
                let result = match err(e.error_code) {
                    None => Ok(()),
                    Some(error) => Err(TopicError {
                        error,
                        message: e.error_message.as_ref().map(|m| m.to_string()),
                    }),
                };
                (entity, result)
            })
            .collect())
    }
}
