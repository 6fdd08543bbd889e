//! What a group member saw, as plain data: rebalance callbacks and errors ([`Event`]),
//! messages ([`Consumption`]) and commits ([`CommitRec`]), gathered in a [`MemberLog`].

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::tp::Tp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Assign,
    Revoke {
        lost: bool,
    },
    RebalanceError(String),
    /// A client error (error callback or a consumer error returned by poll).
    Error(String),
    /// A fatal error (`rd_kafka_fatal_error`), after which the consumer stops polling.
    Fatal(String),
}

/// A rebalance callback (or error) seen by a member.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: Instant,
    pub kind: EventKind,
    pub partitions: BTreeSet<Tp>,
    /// The member's group generation when the callback ran.
    pub generation: Option<i32>,
}

/// One message handed to the application.
#[derive(Debug, Clone)]
pub struct Consumption {
    pub member: String,
    /// Distinguishes separate ownerships of the partition by the same member: the number of the
    /// Assign event that (last) gave this partition to the member.
    pub tenure: u64,
    pub at: Instant,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    /// Whether the partition was in the member's assignment (per its callbacks) at the time.
    pub assigned: bool,
}

/// One synchronous commit of one partition.
#[derive(Debug, Clone)]
pub struct CommitRec {
    pub member: String,
    pub at: Instant,
    pub topic: String,
    pub partition: i32,
    /// The committed offset (the next message to read).
    pub offset: i64,
    pub result: Result<(), String>,
    pub context: &'static str,
}

/// Everything a member saw.
#[derive(Debug, Clone, Default)]
pub struct MemberLog {
    pub events: Vec<Event>,
    pub consumed: Vec<Consumption>,
    pub commits: Vec<CommitRec>,
    /// Current assignment per the rebalance callbacks.
    pub assignment: BTreeSet<Tp>,
    /// Group generation and member id per `rd_kafka_consumer_group_metadata`, updated after
    /// every poll.
    pub generation: Option<i32>,
    pub member_id: String,
    /// Next offset to process per partition (after the last processed message).
    pub positions: HashMap<Tp, i64>,
    pub fatal: Option<String>,
    /// Assign callbacks so far, and the one that (last) gave each partition: the tenure of
    /// a [`Consumption`].
    pub(super) assign_count: u64,
    pub(super) tenure_of: HashMap<Tp, u64>,
    pub polls: u64,
    pub closed_at: Option<Instant>,
}

impl MemberLog {
    pub fn assigns(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.kind == EventKind::Assign)
            .collect()
    }

    pub fn revokes(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Revoke { .. }))
            .collect()
    }

    /// Rebalance callbacks (Assign/Revoke) after `t`.
    pub fn rebalances_after(&self, t: Instant) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.at > t && matches!(e.kind, EventKind::Assign | EventKind::Revoke { .. }))
            .collect()
    }

    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Error(s) | EventKind::Fatal(s) | EventKind::RebalanceError(s) => {
                    Some(s.clone())
                }
                _ => None,
            })
            .collect()
    }
}
