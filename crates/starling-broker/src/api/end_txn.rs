//! EndTxn: commit or abort the producer's open transaction. The answer comes once the decision
//! is stored; the markers are written after it (CONCURRENT_TRANSACTIONS to the producer's next
//! transactional request until they are), as in Kafka.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
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
    request: EndTxnRequest,
) -> EndTxnResponse {
    // Kafka's rule: WRITE on the transactional id.
    if !ctx.authorize(
        broker,
        AclOperation::Write,
        ResourceType::TransactionalId,
        request.transactional_id.as_str(),
    ) {
        return EndTxnResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    let result = broker
        .transactions
        .call(TxnRequest::EndTxn {
            transactional_id: request.transactional_id.to_string(),
            producer: ProducerIdAndEpoch::new(request.producer_id.0, request.producer_epoch),
            commit: request.committed,
        })
        .await;
    let code = result.err().map_or(0, |f| {
        f.error(ctx.api_version >= PRODUCER_FENCED_SINCE).code()
    });
    EndTxnResponse::default().with_error_code(code)
}
