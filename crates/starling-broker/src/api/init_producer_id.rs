//! InitProducerId. Without a transactional id, an idempotent producer gets a producer id of its
//! own at epoch 0, as from Kafka, which hands out a fresh id for every such request (a producer
//! that sends its old id and epoch, KIP-360, gets a new id too); the partitions check its
//! batches' epochs and sequences (`starling_log::producer_state`).
//!
//! With a transactional id the transaction coordinator answers ([`crate::transactions`]): a
//! new id gets a fresh producer id, a known one its producer id at the next epoch (fencing any
//! earlier instance, and aborting its open transaction first: CONCURRENT_TRANSACTIONS until
//! that is done, the client retries).

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use kafka_protocol::ResponseError;
use starling_txn::ProducerIdAndEpoch;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::Broker;

/// The first version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 4;

pub async fn handle(
    broker: &std::sync::Arc<Broker>,
    ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    // Kafka's rule: a transactional id needs WRITE on it; an idempotent producer needs
    // IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679).
    let allowed = match &request.transactional_id {
        Some(id) => ctx.authorize(
            broker,
            AclOperation::Write,
            ResourceType::TransactionalId,
            id.as_str(),
        ),
        None => {
            ctx.authorize_cluster(broker, AclOperation::IdempotentWrite)
                || ctx.authorize_by_resource_type(broker, AclOperation::Write, ResourceType::Topic)
        }
    };
    if !allowed {
        let error = if request.transactional_id.is_some() {
            ResponseError::TransactionalIdAuthorizationFailed
        } else {
            ResponseError::ClusterAuthorizationFailed
        };
        return response.with_error_code(error.code());
    }
    if let Some(transactional_id) = request.transactional_id {
        // v3+ carry the producer's current id and epoch (KIP-360); -1 means none.
        let expected = (ctx.api_version >= 3 && request.producer_id.0 >= 0)
            .then(|| ProducerIdAndEpoch::new(request.producer_id.0, request.producer_epoch));
        let result = broker
            .transactions
            .init_producer_id(
                transactional_id.to_string(),
                request.transaction_timeout_ms,
                expected,
            )
            .await;
        return match result {
            Ok(p) => response
                .with_producer_id(p.producer_id.into())
                .with_producer_epoch(p.epoch),
            Err(f) => {
                response.with_error_code(f.error(ctx.api_version >= PRODUCER_FENCED_SINCE).code())
            }
        };
    }
    match broker.producer_ids.next().await {
        Ok(id) => response.with_producer_id(id.into()).with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "cannot reserve producer ids");
            response.with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
    }
}
