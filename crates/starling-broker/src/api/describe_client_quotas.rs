//! DescribeClientQuotas: the entities with quotas that match the request's filter, with their
//! quotas, as Kafka's `ClientQuotasImage.describe` (see [`crate::quotas::describe`]). A filter
//! Kafka refuses answers the whole request with INVALID_REQUEST (UNSUPPORTED_VERSION for an
//! entity type it does not know), its message and no entries.

use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use starling_acl::AclOperation;

use super::RequestContext;
use crate::quotas::Component;
use crate::Broker;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    // Kafka's rule: DESCRIBE_CONFIGS on the cluster.
    if !ctx.authorize_cluster(broker, AclOperation::DescribeConfigs) {
        return DescribeClientQuotasResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str("Authorization failed.")))
            .with_entries(None);
    }
    let components: Vec<Component> = request
        .components
        .into_iter()
        .map(|c| Component {
            entity_type: c.entity_type.to_string(),
            match_type: c.match_type,
            name: c._match.map(|m| m.to_string()),
        })
        .collect();
    match broker.quotas.describe(&components, request.strict) {
        Ok(found) => {
            let entries = found
                .into_iter()
                .map(|(entity, values)| {
                    EntryData::default()
                        .with_entity(
                            entity
                                .into_iter()
                                .map(|(t, n)| {
                                    EntityData::default()
                                        .with_entity_type(StrBytes::from_string(t))
                                        .with_entity_name(n.map(StrBytes::from_string))
                                })
                                .collect(),
                        )
                        .with_values(
                            values
                                .into_iter()
                                .map(|(k, v)| {
                                    ValueData::default()
                                        .with_key(StrBytes::from_string(k))
                                        .with_value(v)
                                })
                                .collect(),
                        )
                })
                .collect();
            DescribeClientQuotasResponse::default().with_entries(Some(entries))
        }
        Err(e) => {
            let error = if e.unsupported {
                ResponseError::UnsupportedVersion
            } else {
                ResponseError::InvalidRequest
            };
            DescribeClientQuotasResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(e.message)))
                .with_entries(None)
        }
    }
}
