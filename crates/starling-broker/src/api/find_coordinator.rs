//! FindCoordinator: this broker coordinates every consumer group. Transaction coordinators
//! (key type 1) are not offered, as Starling has no transactions yet. v4+ batches keys.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::Broker;

const GROUP_KEY: i8 = 0;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let (host, port) = broker.advertised();
    let node = BrokerId(broker.config.node_id);
    // (error, message) for one key: groups are ours; anything else is not offered.
    let answer = |key: &str| -> Option<(ResponseError, &'static str)> {
        if request.key_type != GROUP_KEY {
            Some((
                ResponseError::CoordinatorNotAvailable,
                "Starling offers no transaction coordinator",
            ))
        } else if key.is_empty() {
            Some((
                ResponseError::InvalidRequest,
                "The group id must not be empty",
            ))
        } else {
            None
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
