//! One member of a classic group: its durable description (what a [`MemberValue`] holds) and
//! its runtime state (held JoinGroup/SyncGroup requests, join order, "new member" flag).

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::{MemberValue, RequestId};

/// A request whose response is being held until a rebalance step completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    pub id: RequestId,
    pub version: i16,
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// Join order within the group: the leader fallback and every member listing follow it.
    pub seq: u64,
    /// Added in the current join phase and not yet through a completed one (KAFKA-7610: such
    /// members may be expired while their JoinGroup is held).
    pub is_new: bool,
    pub awaiting_join: Option<Held>,
    pub awaiting_sync: Option<Held>,
}

impl Member {
    pub fn from_value(value: &MemberValue, seq: u64) -> Member {
        Member {
            id: value.member_id.clone(),
            instance_id: value.group_instance_id.clone(),
            client_id: value.client_id.clone(),
            client_host: value.client_host.clone(),
            rebalance_timeout_ms: value.rebalance_timeout_ms,
            session_timeout_ms: value.session_timeout_ms,
            protocol_type: value.protocol_type.clone(),
            protocols: value.protocols.clone(),
            assignment: value.assignment.clone(),
            seq,
            is_new: false,
            awaiting_join: None,
            awaiting_sync: None,
        }
    }

    /// Overwrites the durable fields from a record, keeping the runtime ones.
    pub fn update_from_value(&mut self, value: &MemberValue) {
        self.instance_id = value.group_instance_id.clone();
        self.client_id = value.client_id.clone();
        self.client_host = value.client_host.clone();
        self.rebalance_timeout_ms = value.rebalance_timeout_ms;
        self.session_timeout_ms = value.session_timeout_ms;
        self.protocol_type = value.protocol_type.clone();
        self.protocols = value.protocols.clone();
        self.assignment = value.assignment.clone();
    }

    /// The member as persisted, with the given assignment.
    pub fn to_value(&self, assignment: Bytes) -> MemberValue {
        MemberValue {
            member_id: self.id.clone(),
            group_instance_id: self.instance_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            session_timeout_ms: self.session_timeout_ms,
            protocol_type: self.protocol_type.clone(),
            protocols: self.protocols.clone(),
            assignment,
        }
    }

    /// Whether a JoinGroup's protocols are exactly the member's (names, metadata and order).
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// The member's metadata for one protocol.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata)
    }

    /// The member's most preferred protocol among the candidates.
    pub fn vote<'a>(&'a self, candidates: &BTreeSet<&str>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| candidates.contains(name))
    }

    /// Kafka's `hasSatisfiedHeartbeat`: a member parked in a join or sync barrier needs no
    /// heartbeat, unless it is new (new members may be expired while their join is held).
    pub fn heartbeat_satisfied(&self) -> bool {
        !self.is_new && (self.awaiting_join.is_some() || self.awaiting_sync.is_some())
    }
}
