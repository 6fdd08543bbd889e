//! A group moving between coordinators, as in a cluster of nodes sharing one database: the
//! node that stops coordinating a group drops it ([`GroupCoordinator::unload_group`]), and the
//! node that takes it over loads the group's stored records
//! ([`GroupCoordinator::load_group`]) — the start-up replay, for one group. Nothing about a
//! group survives its unloading but what its records hold, so a coordinator never serves what
//! another node may have changed since.

use crate::{GroupCoordinator, GroupRequest, Now, Record};

impl GroupCoordinator {
    /// Forgets everything held about `group_id`: its state, its timers and its open rebalance
    /// history. Requests the group was holding (JoinGroup and SyncGroup waiting for the rest
    /// of the group) are the caller's to answer; the group no longer knows them.
    pub fn unload_group(&mut self, group_id: &str) {
        self.groups.remove(group_id);
        self.timers.cancel_group(group_id);
        self.consumer_history.forget_group(group_id);
        self.consumer_members = None;
    }

    /// Replaces whatever is held about `group_id` by its stored `records` (each of this group)
    /// and brings it to life as start-up does: members' sessions start at `now`, and a group
    /// stored in the middle of a rebalance rebalances. What that emits goes out with the next
    /// step's output.
    pub fn load_group(&mut self, now: impl Into<Now>, group_id: &str, records: &[Record]) {
        self.unload_group(group_id);
        self.loaded(now);
        // Applied as replayed records, not live ones: the group comes to life once, below.
        self.is_loaded = false;
        for record in records.iter().filter(|r| r.group_id() == group_id) {
            self.apply(record);
        }
        self.is_loaded = true;
        self.activate_group(group_id);
        self.ensure_offsets_expiry_scheduled();
    }

    /// The ids of every group the coordinator holds.
    pub fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }
}

impl GroupRequest {
    /// The groups this request is about (none for ListGroups, which is about every group
    /// the coordinator holds).
    pub fn group_ids(&self) -> Vec<&str> {
        match self {
            GroupRequest::Join(r) => vec![r.group_id.as_str()],
            GroupRequest::Sync(r) => vec![r.group_id.as_str()],
            GroupRequest::Heartbeat(r) => vec![r.group_id.as_str()],
            GroupRequest::Leave(r) => vec![r.group_id.as_str()],
            GroupRequest::OffsetCommit(r) => vec![r.group_id.as_str()],
            // v8 on: several groups, the group id field empty.
            GroupRequest::OffsetFetch(r) if !r.groups.is_empty() => {
                r.groups.iter().map(|g| g.group_id.as_str()).collect()
            }
            GroupRequest::OffsetFetch(r) => vec![r.group_id.as_str()],
            GroupRequest::DescribeGroups(r) => r.groups.iter().map(|g| g.as_str()).collect(),
            GroupRequest::ListGroups(_) => Vec::new(),
            GroupRequest::DeleteGroups(r) => r.groups_names.iter().map(|g| g.as_str()).collect(),
            GroupRequest::OffsetDelete(r) => vec![r.group_id.as_str()],
            GroupRequest::ConsumerGroupHeartbeat(r) => vec![r.group_id.as_str()],
            GroupRequest::ConsumerGroupDescribe(r) => {
                r.group_ids.iter().map(|g| g.as_str()).collect()
            }
            GroupRequest::TxnOffsetCommit(r) => vec![r.group_id.as_str()],
            GroupRequest::TxnEnd { group_id, .. } => vec![group_id.as_str()],
        }
    }
}
