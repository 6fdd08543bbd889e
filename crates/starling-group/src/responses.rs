//! Building responses that encode at the version of the request they answer: fields a
//! version lacks stay at their defaults (the encoder refuses anything else).

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{HeartbeatResponse, JoinGroupResponse, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::GroupResponse;

pub(crate) fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// The error code of an optional error.
pub(crate) fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}

/// A successful (or informational) JoinGroup response.
pub(crate) struct JoinReply<'a> {
    pub member_id: &'a str,
    pub generation: i32,
    pub protocol_type: Option<&'a str>,
    pub protocol_name: Option<&'a str>,
    pub leader: &'a str,
    pub skip_assignment: bool,
    /// (member id, group instance id, metadata) — only for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

pub(crate) fn join(
    version: i16,
    error: Option<ResponseError>,
    reply: JoinReply<'_>,
) -> GroupResponse {
    let mut response = JoinGroupResponse::default();
    response.error_code = code(error);
    response.generation_id = reply.generation;
    response.member_id = s(reply.member_id);
    response.leader = s(reply.leader);
    // ProtocolName is nullable from v7 on; older versions carry "" instead of null.
    response.protocol_name = match reply.protocol_name {
        Some(name) => Some(s(name)),
        None if version < 7 => Some(StrBytes::default()),
        None => None,
    };
    if version >= 7 {
        response.protocol_type = reply.protocol_type.map(s);
    }
    if version >= 9 {
        response.skip_assignment = reply.skip_assignment;
    }
    response.members = reply
        .members
        .into_iter()
        .map(|(member_id, instance_id, metadata)| {
            let mut member = JoinGroupResponseMember::default();
            member.member_id = s(&member_id);
            if version >= 5 {
                member.group_instance_id = instance_id.map(|i| s(&i));
            }
            member.metadata = metadata;
            member
        })
        .collect();
    GroupResponse::Join(response)
}

/// A JoinGroup error: no generation, protocol or leader.
pub(crate) fn join_error(version: i16, error: ResponseError, member_id: &str) -> GroupResponse {
    join(
        version,
        Some(error),
        JoinReply {
            member_id,
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: "",
            skip_assignment: false,
            members: Vec::new(),
        },
    )
}

pub(crate) fn sync(
    version: i16,
    error: Option<ResponseError>,
    protocol: Option<(&str, &str)>,
    assignment: Bytes,
) -> GroupResponse {
    let mut response = SyncGroupResponse::default();
    response.error_code = code(error);
    if version >= 5 {
        if let Some((protocol_type, protocol_name)) = protocol {
            response.protocol_type = Some(s(protocol_type));
            response.protocol_name = Some(s(protocol_name));
        }
    }
    response.assignment = assignment;
    GroupResponse::Sync(response)
}

pub(crate) fn sync_error(version: i16, error: ResponseError) -> GroupResponse {
    sync(version, Some(error), None, Bytes::new())
}

pub(crate) fn heartbeat(error: Option<ResponseError>) -> GroupResponse {
    let mut response = HeartbeatResponse::default();
    response.error_code = code(error);
    GroupResponse::Heartbeat(response)
}
