//! The classic consumer-group APIs — JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete — forwarded to the group
//! coordinator task. Their logic lives in the pure core, `starling-group`, one module per API
//! there; this module only routes a request in and encodes the response at the request's version
//! (counting its error codes on the way).

use std::sync::Arc;

use kafka_protocol::messages::ApiKey;
use starling_group::{ClientInfo, GroupRequest, GroupResponse};

use super::{respond, Reply, RequestContext};
use crate::Broker;

pub async fn forward(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    api_key: ApiKey,
    request: GroupRequest,
) -> Reply {
    let client = ClientInfo {
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    match broker.groups.call(ctx.api_version, client, request).await {
        Ok(response) => match response {
            GroupResponse::Join(r) => respond(broker, api_key, ctx, &r),
            GroupResponse::Sync(r) => respond(broker, api_key, ctx, &r),
            GroupResponse::Heartbeat(r) => respond(broker, api_key, ctx, &r),
            GroupResponse::Leave(r) => respond(broker, api_key, ctx, &r),
            GroupResponse::OffsetCommit(r) => respond(broker, api_key, ctx, &r),
            GroupResponse::OffsetFetch(r) => respond(broker, api_key, ctx, &r),
            GroupResponse::DescribeGroups(r) => respond(broker, api_key, ctx, &r),
            GroupResponse::ListGroups(r) => respond(broker, api_key, ctx, &r),
            GroupResponse::DeleteGroups(r) => respond(broker, api_key, ctx, &r),
            GroupResponse::OffsetDelete(r) => respond(broker, api_key, ctx, &r),
        },
        Err(e) => Reply::Close(format!("{api_key:?}: {e}")),
    }
}
