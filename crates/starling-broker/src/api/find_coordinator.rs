//! FindCoordinator: consumer groups (key type 0) are coordinated by the node
//! [`crate::cluster::group_coordinator`] names (this one with embedded storage; on PostgreSQL
//! the live node placement gives the group to), transactional ids (key type 1) by the one
//! [`crate::cluster::transaction_coordinator`] names.
//! Other key types (KIP-939's share groups, 2) are not offered. v4+ batches keys.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::cluster::Node;
use crate::Broker;

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    // The coordinator of one key, or (error, message): Kafka checks DESCRIBE on the group or
    // transactional id first; key types other than groups and transactional ids are not
    // offered.
    let answer = |key: &str| -> Result<Node, (ResponseError, &'static str)> {
        let refused = match request.key_type {
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
        };
        if let Some(refused) = refused {
            return Err(refused);
        }
        let coordinator = match request.key_type {
            GROUP_KEY => crate::cluster::group_coordinator(broker, ctx, key),
            _ => crate::cluster::transaction_coordinator(broker, ctx),
        };
        coordinator.ok_or((
            ResponseError::CoordinatorNotAvailable,
            "No live node coordinates this key yet",
        ))
    };
    let mut response = FindCoordinatorResponse::default();
    if ctx.api_version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key.clone());
                match answer(key.as_str()) {
                    Ok(node) => c
                        .with_node_id(BrokerId(node.id))
                        .with_host(StrBytes::from_string(node.host))
                        .with_port(node.port),
                    Err((e, msg)) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(e.code())
                        .with_error_message(Some(StrBytes::from_static_str(msg))),
                }
            })
            .collect();
    } else {
        match answer(request.key.as_str()) {
            Ok(node) => {
                response.node_id = BrokerId(node.id);
                response.host = StrBytes::from_string(node.host);
                response.port = node.port;
            }
            Err((e, msg)) => {
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
