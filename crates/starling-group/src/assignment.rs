//! Reads the partitions of a consumer's assignment (the `ConsumerProtocolAssignment` a consumer
//! leader sends through SyncGroup: an i16 version, then the struct at that version) and
//! compares a new assignment with the last known owner of each partition, for the rebalance
//! history (see [`crate::history`] for the semantics).
//!
//! The bytes come from a client; [`starling_protocol::consumer_protocol`] reads them with every
//! length checked, so hostile input cannot make the coordinator allocate more than it holds.

use std::collections::BTreeMap;

use starling_protocol::consumer_protocol::decode_assignment;

use crate::history::{AssignmentChange, PartitionMove, PartitionOwner};

/// A (topic, partition).
pub(crate) type Partition = (String, i32);

/// Partition → the member that owns it.
pub(crate) type Owners = BTreeMap<Partition, String>;

/// The partitions of one member's assignment. Empty bytes are an empty assignment (what the
/// coordinator hands a member the leader left out); `None` when the bytes are not a consumer
/// assignment.
pub(crate) fn assigned_partitions(bytes: &[u8]) -> Option<Vec<Partition>> {
    decode_assignment(bytes).map(|a| a.partitions)
}

/// Every member's partitions as one map: `None` when some assignment cannot be read or two
/// members were given the same partition (the owner would be a guess).
pub(crate) fn owners<'a>(
    assignments: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Option<Owners> {
    let mut owners = Owners::new();
    for (member, bytes) in assignments {
        for partition in assigned_partitions(bytes)? {
            match owners.get(&partition) {
                Some(owner) if owner != member => return None,
                Some(_) => {}
                None => {
                    owners.insert(partition, member.to_string());
                }
            }
        }
    }
    Some(owners)
}

/// What the next readable assignment is compared with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ownership {
    /// The generation of the assignment this was read from; `None` before any was read.
    pub generation: Option<i32>,
    /// Who owned each partition in that assignment.
    pub owners: Owners,
    /// Partitions that assignment revoked (owned before, by nobody in it), with the member
    /// they were revoked from: their last known owner until the next readable assignment.
    pub released: Owners,
}

impl Ownership {
    /// The base after reading the assignment of a generation (a loaded Stable group).
    pub fn of(generation: i32, owners: Owners) -> Ownership {
        Ownership {
            generation: Some(generation),
            owners,
            released: Owners::new(),
        }
    }

    /// Compares the assignment of `generation` with this base; returns the change and the
    /// base for the next assignment.
    pub fn advance(&self, generation: i32, current: Owners) -> (AssignmentChange, Ownership) {
        let mut change = AssignmentChange::default();
        for ((topic, partition), owner) in &current {
            let key = (topic.clone(), *partition);
            let last = self.owners.get(&key).or_else(|| self.released.get(&key));
            match last {
                Some(last) if last == owner => change.stayed.push(PartitionOwner {
                    topic: topic.clone(),
                    partition: *partition,
                    member_id: owner.clone(),
                }),
                Some(last) => change.moved.push(PartitionMove {
                    topic: topic.clone(),
                    partition: *partition,
                    from: last.clone(),
                    to: owner.clone(),
                }),
                None => change.assigned.push(PartitionOwner {
                    topic: topic.clone(),
                    partition: *partition,
                    member_id: owner.clone(),
                }),
            }
        }
        let mut released = Owners::new();
        for (key, owner) in &self.owners {
            if !current.contains_key(key) {
                change.revoked.push(PartitionOwner {
                    topic: key.0.clone(),
                    partition: key.1,
                    member_id: owner.clone(),
                });
                released.insert(key.clone(), owner.clone());
            }
        }
        // Built from maps ordered by (topic, partition): every list is already sorted.
        let next = Ownership {
            generation: Some(generation),
            owners: current,
            released,
        };
        (change, next)
    }

    /// Whether the assignment of `generation` revoked partitions from `member`.
    pub fn revoked_from(&self, member: &str, generation: i32) -> bool {
        self.generation == Some(generation) && self.released.values().any(|m| m == member)
    }

    /// A static member now goes by a new member id; its partitions go with it.
    pub fn rename(&mut self, old: &str, new: &str) {
        for owner in self.owners.values_mut().chain(self.released.values_mut()) {
            if owner == old {
                *owner = new.to_string();
            }
        }
    }
}
