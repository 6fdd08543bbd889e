//! Timers as data: every deadline the coordinator waits for, keyed so that rescheduling a
//! key replaces its previous deadline, kept in deadline order.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::Millis;

/// What a timer is for. Its [`Display`](fmt::Display) form is the key's name
/// (`heartbeat:<group>:<member>`, `join:<group>`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    /// A member's session: it must heartbeat (or join/sync) before this.
    Heartbeat { group: String, member: String },
    /// The join barrier's rebalance timeout.
    Join { group: String },
    /// The sync barrier: members that have not sent SyncGroup by then are removed.
    Sync { group: String },
    /// The delayed first join of an empty group (`group.initial.rebalance.delay.ms`).
    InitialDelay { group: String },
    /// A KIP-394 pending member must rejoin with its member id before this.
    Pending { group: String, member: String },
    /// The periodic offset expiry check.
    OffsetsExpiry,
    /// A consumer-protocol member's session: it must heartbeat before this.
    ConsumerSession { group: String, member: String },
    /// A consumer-protocol member must give up the partitions it was asked to revoke before
    /// this.
    ConsumerRebalance { group: String, member: String },
    /// A classic member of a consumer-protocol group, told to rejoin, must send JoinGroup
    /// before this (its rebalance timeout).
    ClassicJoin { group: String, member: String },
    /// A classic member of a consumer-protocol group that joined must send SyncGroup before
    /// this (its rebalance timeout).
    ClassicSync { group: String, member: String },
}

impl TimerKey {
    /// The group the timer belongs to, if any.
    pub fn group(&self) -> Option<&str> {
        match self {
            TimerKey::Heartbeat { group, .. }
            | TimerKey::Join { group }
            | TimerKey::Sync { group }
            | TimerKey::InitialDelay { group }
            | TimerKey::Pending { group, .. }
            | TimerKey::ConsumerSession { group, .. }
            | TimerKey::ConsumerRebalance { group, .. }
            | TimerKey::ClassicJoin { group, .. }
            | TimerKey::ClassicSync { group, .. } => Some(group),
            TimerKey::OffsetsExpiry => None,
        }
    }

    /// Whether the timer belongs to a consumer-protocol group (rather than a classic one).
    pub fn is_consumer_group_timer(&self) -> bool {
        matches!(
            self,
            TimerKey::ConsumerSession { .. }
                | TimerKey::ConsumerRebalance { .. }
                | TimerKey::ClassicJoin { .. }
                | TimerKey::ClassicSync { .. }
        )
    }
}

impl fmt::Display for TimerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerKey::Heartbeat { group, member } => write!(f, "heartbeat:{group}:{member}"),
            TimerKey::Join { group } => write!(f, "join:{group}"),
            TimerKey::Sync { group } => write!(f, "sync:{group}"),
            TimerKey::InitialDelay { group } => write!(f, "initial-delay:{group}"),
            TimerKey::Pending { group, member } => write!(f, "pending:{group}:{member}"),
            TimerKey::OffsetsExpiry => f.write_str("offsets-expiry"),
            TimerKey::ConsumerSession { group, member } => {
                write!(f, "consumer-session:{group}:{member}")
            }
            TimerKey::ConsumerRebalance { group, member } => {
                write!(f, "consumer-rebalance:{group}:{member}")
            }
            TimerKey::ClassicJoin { group, member } => write!(f, "classic-join:{group}:{member}"),
            TimerKey::ClassicSync { group, member } => write!(f, "classic-sync:{group}:{member}"),
        }
    }
}

/// Deadlines ordered by (deadline, insertion sequence), each key at most once.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    ordered: BTreeSet<(Millis, u64, TimerKey)>,
    by_key: HashMap<TimerKey, (Millis, u64)>,
    seq: u64,
}

impl Timers {
    /// Sets `key` to fire at `deadline`, replacing any earlier deadline of the same key.
    pub fn schedule(&mut self, key: TimerKey, deadline: Millis) {
        self.cancel(&key);
        self.seq += 1;
        self.ordered.insert((deadline, self.seq, key.clone()));
        self.by_key.insert(key, (deadline, self.seq));
    }

    pub fn cancel(&mut self, key: &TimerKey) {
        if let Some((deadline, seq)) = self.by_key.remove(key) {
            self.ordered.remove(&(deadline, seq, key.clone()));
        }
    }

    /// Cancels every timer of one group.
    pub fn cancel_group(&mut self, group: &str) {
        self.cancel_group_where(group, |_| true);
    }

    /// Cancels the timers of one group that `which` picks.
    pub fn cancel_group_where(&mut self, group: &str, which: impl Fn(&TimerKey) -> bool) {
        let keys: Vec<TimerKey> = self
            .by_key
            .keys()
            .filter(|k| k.group() == Some(group) && which(k))
            .cloned()
            .collect();
        for key in keys {
            self.cancel(&key);
        }
    }

    pub fn is_scheduled(&self, key: &TimerKey) -> bool {
        self.by_key.contains_key(key)
    }

    pub fn deadline(&self, key: &TimerKey) -> Option<Millis> {
        self.by_key.get(key).map(|(deadline, _)| *deadline)
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        self.ordered.first().map(|(deadline, _, _)| *deadline)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Millis) -> Option<(Millis, TimerKey)> {
        let (deadline, _, _) = self.ordered.first()?;
        if *deadline > now {
            return None;
        }
        let (deadline, _, key) = self.ordered.pop_first()?;
        self.by_key.remove(&key);
        Some((deadline, key))
    }

    /// Every pending timer as (key name, deadline), earliest first.
    pub fn list(&self) -> Vec<(String, Millis)> {
        self.ordered
            .iter()
            .map(|(deadline, _, key)| (key.to_string(), *deadline))
            .collect()
    }
}
