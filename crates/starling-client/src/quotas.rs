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
use crate::client::{check, err, Client};
use crate::error::Result;

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
        check(
            response.error_code,
            response.error_message.as_deref(),
            || "DescribeClientQuotas".to_string(),
        )?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use kafka_protocol::messages::alter_client_quotas_response::{
        EntityData as AlteredEntity, EntryData as AlteredEntry,
    };
    use kafka_protocol::messages::describe_client_quotas_response::{
        EntityData as DescribedEntity, EntryData as DescribedEntry, ValueData,
    };
    use kafka_protocol::messages::{AlterClientQuotasResponse, DescribeClientQuotasResponse};
    use kafka_protocol::ResponseError;

    use super::*;
    use crate::fake_broker::{api_versions, decode_body, respond, FakeBroker, Seen};
    use crate::Options;

    /// Answers DescribeClientQuotas with one entity, or INVALID_REQUEST for an exact match on
    /// "bad"; AlterClientQuotas with INVALID_REQUEST for a key named "bogus".
    async fn quota_broker() -> FakeBroker {
        FakeBroker::start(Arc::new(|seen: &Seen| {
            match ApiKey::try_from(seen.header.request_api_key).unwrap() {
                ApiKey::ApiVersions => Some(respond(
                    seen,
                    &api_versions(&[
                        (ApiKey::ApiVersions, 0, 3),
                        (ApiKey::DescribeClientQuotas, 0, 1),
                        (ApiKey::AlterClientQuotas, 0, 1),
                    ]),
                )),
                ApiKey::DescribeClientQuotas => {
                    let req: DescribeClientQuotasRequest = decode_body(seen);
                    if req
                        .components
                        .iter()
                        .any(|c| c._match.as_deref() == Some("bad"))
                    {
                        return Some(respond(
                            seen,
                            &DescribeClientQuotasResponse::default()
                                .with_error_code(ResponseError::InvalidRequest.code())
                                .with_error_message(Some(s("no good"))),
                        ));
                    }
                    Some(respond(
                        seen,
                        &DescribeClientQuotasResponse::default().with_entries(Some(vec![
                            DescribedEntry::default()
                                .with_entity(vec![DescribedEntity::default()
                                    .with_entity_type(s("client-id"))
                                    .with_entity_name(None)])
                                .with_values(vec![ValueData::default()
                                    .with_key(s("producer_byte_rate"))
                                    .with_value(1024.0)]),
                        ])),
                    ))
                }
                ApiKey::AlterClientQuotas => {
                    let req: AlterClientQuotasRequest = decode_body(seen);
                    let entries = req
                        .entries
                        .iter()
                        .map(|e| {
                            let entry = AlteredEntry::default().with_entity(
                                e.entity
                                    .iter()
                                    .map(|d| {
                                        AlteredEntity::default()
                                            .with_entity_type(d.entity_type.clone())
                                            .with_entity_name(d.entity_name.clone())
                                    })
                                    .collect(),
                            );
                            if e.ops.iter().any(|o| o.key.as_str() == "bogus") {
                                entry
                                    .with_error_code(ResponseError::InvalidRequest.code())
                                    .with_error_message(Some(s("Invalid configuration key bogus")))
                            } else {
                                entry
                            }
                        })
                        .collect();
                    Some(respond(
                        seen,
                        &AlterClientQuotasResponse::default().with_entries(entries),
                    ))
                }
                _ => None,
            }
        }))
        .await
    }

    fn opts() -> Options {
        Options {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            ..Options::default()
        }
    }

    #[tokio::test]
    async fn describe_sends_each_match_type_and_reads_default_entities() {
        let fake = quota_broker().await;
        let mut client = Client::connect(&fake.addr, opts()).await.unwrap();
        let filter = [
            QuotaFilter {
                entity_type: "user".into(),
                matching: QuotaMatch::Default,
            },
            QuotaFilter {
                entity_type: "client-id".into(),
                matching: QuotaMatch::Exact("app".into()),
            },
            QuotaFilter {
                entity_type: "ip".into(),
                matching: QuotaMatch::Any,
            },
        ];
        let entries = client.describe_client_quotas(&filter, true).await.unwrap();
        assert_eq!(
            entries,
            vec![ClientQuotaEntry {
                entity: vec![("client-id".into(), None)],
                values: [("producer_byte_rate".to_string(), 1024.0)].into(),
            }]
        );
        let sent = fake
            .seen()
            .into_iter()
            .find(|s| s.header.request_api_key == ApiKey::DescribeClientQuotas as i16)
            .unwrap();
        assert_eq!(sent.header.request_api_version, 1);
        let req: DescribeClientQuotasRequest = decode_body(&sent);
        let components: Vec<(String, i8, Option<String>)> = req
            .components
            .iter()
            .map(|c| {
                (
                    c.entity_type.to_string(),
                    c.match_type,
                    c._match.as_ref().map(|m| m.to_string()),
                )
            })
            .collect();
        assert_eq!(
            components,
            vec![
                ("user".into(), 1, None),
                ("client-id".into(), 0, Some("app".into())),
                ("ip".into(), 2, None),
            ]
        );
        assert!(req.strict);

        let bad = [QuotaFilter {
            entity_type: "client-id".into(),
            matching: QuotaMatch::Exact("bad".into()),
        }];
        let err = client
            .describe_client_quotas(&bad, false)
            .await
            .unwrap_err();
        assert_eq!(err.kafka_error(), Some(ResponseError::InvalidRequest));
        assert!(err.to_string().contains("no good"), "{err}");
    }

    #[tokio::test]
    async fn alter_sends_sets_and_removals_and_reports_each_entity() {
        let fake = quota_broker().await;
        let mut client = Client::connect(&fake.addr, opts()).await.unwrap();
        let results = client
            .alter_client_quotas(
                &[
                    QuotaAlteration {
                        entity: vec![
                            ("user".into(), None),
                            ("client-id".into(), Some("a".into())),
                        ],
                        ops: vec![
                            ("producer_byte_rate".into(), Some(2048.0)),
                            ("request_percentage".into(), None),
                        ],
                    },
                    QuotaAlteration {
                        entity: vec![("client-id".into(), Some("b".into()))],
                        ops: vec![("bogus".into(), Some(1.0))],
                    },
                ],
                true,
            )
            .await
            .unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(
            results[0],
            (
                vec![
                    ("user".into(), None),
                    ("client-id".into(), Some("a".into()))
                ],
                Ok(())
            )
        );
        let err = results[1].1.as_ref().unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidRequest);
        assert_eq!(
            err.message.as_deref(),
            Some("Invalid configuration key bogus")
        );
        let sent = fake
            .seen()
            .into_iter()
            .find(|s| s.header.request_api_key == ApiKey::AlterClientQuotas as i16)
            .unwrap();
        let req: AlterClientQuotasRequest = decode_body(&sent);
        assert!(req.validate_only);
        let ops: Vec<(String, f64, bool)> = req.entries[0]
            .ops
            .iter()
            .map(|o| (o.key.to_string(), o.value, o.remove))
            .collect();
        assert_eq!(
            ops,
            vec![
                ("producer_byte_rate".into(), 2048.0, false),
                ("request_percentage".into(), 0.0, true),
            ]
        );
    }
}
