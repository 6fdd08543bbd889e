//! FindCoordinator: this broker coordinates every consumer group (key type 0) and every
//! transactional id (key type 1). Other key types (KIP-939's share groups, 2) are not offered.
//! v4+ batches keys.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::Broker;

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let (host, port) = ctx.listener.advertised.clone();
    let node = BrokerId(broker.config.node_id);
    // (error, message) for one key: groups and transactional ids are ours; anything else is
    // not offered.
    // Kafka checks DESCRIBE on the group or transactional id first.
    let answer = |key: &str| -> Option<(ResponseError, &'static str)> {
        match request.key_type {
            GROUP_KEY
                if !ctx.authorize(broker, AclOperation::Describe, ResourceType::Group, key) =>
            {
                Some((
                    ResponseError::GroupAuthorizationFailed,
                    "Not authorized to describe the group",
                ))
            }
            TRANSACTION_KEY
                if !ctx.authorize(
                    broker,
                    AclOperation::Describe,
                    ResourceType::TransactionalId,
                    key,
                ) =>
            {
                Some((
                    ResponseError::TransactionalIdAuthorizationFailed,
                    "Not authorized to describe the transactional id",
                ))
            }
            GROUP_KEY if key.is_empty() => Some((
                ResponseError::InvalidRequest,
                "The group id must not be empty",
            )),
            TRANSACTION_KEY if key.is_empty() => Some((
                ResponseError::InvalidRequest,
                "The transactional id must not be empty",
            )),
            GROUP_KEY | TRANSACTION_KEY => None,
            _ => Some((
                ResponseError::InvalidRequest,
                "Starling coordinates consumer groups and transactions only",
            )),
        }
    };
    let mut response = FindCoordinatorResponse::default();
    if ctx.api_version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key.clone());
                match answer(key.as_str()) {
                    None => c
                        .with_node_id(node)
                        .with_host(StrBytes::from_string(host.clone()))
                        .with_port(port),
                    Some((e, msg)) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(e.code())
                        .with_error_message(Some(StrBytes::from_static_str(msg))),
                }
            })
            .collect();
    } else {
        match answer(request.key.as_str()) {
            None => {
                response.node_id = node;
                response.host = StrBytes::from_string(host);
                response.port = port;
            }
            Some((e, msg)) => {
                response.error_code = e.code();
                response.node_id = BrokerId(-1);
                response.port = -1;
                if ctx.api_version >= 1 {
                    response.error_message = Some(StrBytes::from_static_str(msg));
                }
            }
        }
    }
    response
}
