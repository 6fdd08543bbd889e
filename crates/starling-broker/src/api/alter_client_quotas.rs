//! AlterClientQuotas: sets and removes quotas on entities, as Kafka's
//! `ClientQuotaControlManager` (see [`crate::quotas::alter`]): one result per distinct entity,
//! INVALID_REQUEST with Kafka's message for an entity, key or value it refuses (the entity's
//! other changes are not made), `validate_only` checking without changing anything. The changes
//! of one request are persisted in one write before the response; a failed write answers every
//! entity KAFKA_STORAGE_ERROR and changes nothing.

use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use starling_acl::AclOperation;

use super::RequestContext;
use crate::quotas::{Alteration, Entity};
use crate::Broker;

fn entity_data(entity: &Entity) -> Vec<EntityData> {
    entity
        .iter()
        .map(|(t, n)| {
            EntityData::default()
                .with_entity_type(StrBytes::from_string(t.clone()))
                .with_entity_name(n.clone().map(StrBytes::from_string))
        })
        .collect()
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let alterations: Vec<Alteration> = request
        .entries
        .into_iter()
        .map(|e| Alteration {
            // Kafka makes the entity a map: a type named twice keeps its last name.
            entity: e
                .entity
                .into_iter()
                .map(|d| {
                    (
                        d.entity_type.to_string(),
                        d.entity_name.map(|n| n.to_string()),
                    )
                })
                .collect(),
            ops: e
                .ops
                .into_iter()
                .map(|op| (op.key.to_string(), (!op.remove).then_some(op.value)))
                .collect(),
        })
        .collect();
    // Kafka's rule: ALTER_CONFIGS on the cluster, or every entry is CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authorize_cluster(broker, AclOperation::AlterConfigs) {
        let entries = every_entity(
            &alterations,
            ResponseError::ClusterAuthorizationFailed,
            "Authorization failed.",
        );
        return AlterClientQuotasResponse::default().with_entries(entries);
    }
    let entries = match broker
        .quotas
        .alter(&alterations, request.validate_only)
        .await
    {
        Ok(results) => results
            .into_iter()
            .map(|(entity, result)| {
                let entry = EntryData::default().with_entity(entity_data(&entity));
                match result {
                    Ok(()) => entry,
                    Err(message) => entry
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(StrBytes::from_string(message))),
                }
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "storing client quotas");
            every_entity(
                &alterations,
                ResponseError::KafkaStorageError,
                &e.to_string(),
            )
        }
    };
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// One entry per distinct entity of `alterations`, in request order, each failed with `error`
/// and `message`: the answer when the whole request is refused.
fn every_entity(alterations: &[Alteration], error: ResponseError, message: &str) -> Vec<EntryData> {
    let mut seen: Vec<&Entity> = Vec::new();
    alterations
        .iter()
        .filter(|a| {
            let new = !seen.contains(&&a.entity);
            seen.push(&a.entity);
            new
        })
        .map(|a| {
            EntryData::default()
                .with_entity(entity_data(&a.entity))
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(message.to_string())))
        })
        .collect()
}
