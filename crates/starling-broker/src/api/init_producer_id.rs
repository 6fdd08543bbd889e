//! InitProducerId: an idempotent producer (no transactional id) gets a producer id of its own
//! at epoch 0, as from Kafka, which hands out a fresh id for every such request (a producer
//! that sends its old id and epoch, KIP-360, gets a new id too). The partitions check its
//! batches' epochs and sequences (`starling_log::producer_state`).
//!
//! A transactional id needs a transaction coordinator, which this broker does not run yet:
//! such a request is refused with INVALID_REQUEST, as FindCoordinator for a transaction is.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::Broker;

pub async fn handle(
    broker: &std::sync::Arc<Broker>,
    _ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default()
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        response.error_code = ResponseError::InvalidRequest.code();
        return response;
    }
    let b = broker.clone();
    match tokio::task::spawn_blocking(move || b.producer_ids.next()).await {
        Ok(Ok(id)) => response.with_producer_id(id.into()).with_producer_epoch(0),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot reserve producer ids");
            response.with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
        Err(e) => {
            tracing::error!(error = %e, "producer id task failed");
            response.with_error_code(ResponseError::UnknownServerError.code())
        }
    }
}
