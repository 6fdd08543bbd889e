//! AddOffsetsToTxn: a transactional producer is about to commit offsets for a consumer group
//! (TxnOffsetCommit follows); the group joins its transaction, so the transaction's end settles
//! those offsets.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use kafka_protocol::ResponseError;
use starling_txn::{ProducerIdAndEpoch, TxnRequest};

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::Broker;

/// The first version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    // Kafka's rule: WRITE on the transactional id, then READ on the group.
    if !ctx.authorize(
        broker,
        AclOperation::Write,
        ResourceType::TransactionalId,
        request.transactional_id.as_str(),
    ) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if !ctx.authorize(
        broker,
        AclOperation::Read,
        ResourceType::Group,
        request.group_id.as_str(),
    ) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let result = broker
        .transactions
        .call(TxnRequest::AddGroup {
            transactional_id: request.transactional_id.to_string(),
            producer: ProducerIdAndEpoch::new(request.producer_id.0, request.producer_epoch),
            group_id: request.group_id.to_string(),
        })
        .await;
    let code = result.err().map_or(0, |f| {
        f.error(ctx.api_version >= PRODUCER_FENCED_SINCE).code()
    });
    AddOffsetsToTxnResponse::default().with_error_code(code)
}
