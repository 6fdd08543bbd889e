//! [`Ownership`]: what this node owns — the partitions it leads and the groups it coordinates —
//! kept in step with placement, one reconciliation round at a time.
//!
//! Each round takes the live nodes and every ownable thing (a partition's or a group's lease
//! name) and, for each: placement ([`crate::placement::owner`] over the live nodes) says whether
//! this node should own it. What it holds and should keep it renews; what it holds and
//! placement now gives another node (a node joined) it releases at once, so that node takes it
//! on its next round instead of waiting for the lease to lapse; what it should own and does not
//! hold it acquires when the lease is free or has lapsed (its previous owner died or handed it
//! over), under a new epoch. A lease found lapsed or taken when renewing is lost. The round
//! reports what was gained and lost, for the broker to start and stop serving it.
//!
//! Rounds run every third of the lease time or so: a dead node's things move to the live nodes
//! within its node lease plus one lease time and a round. Nothing here decides alone: two nodes
//! with different views of the live nodes may both try, and the lease lets one win.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_postgres::GenericClient;

use crate::lease::{self, Lease, LeaseError, LeaseKind};
use crate::placement;

/// Something a node can own: a lease kind and name.
pub type Ownable = (LeaseKind, String);

/// What one round changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Leases taken this round: start serving these.
    pub gained: Vec<Lease>,
    /// Leases given up or found lost this round: stop serving these.
    pub lost: Vec<Lease>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.gained.is_empty() && self.lost.is_empty()
    }
}

/// The leases this node holds, and the rounds that keep them in step with placement.
#[derive(Debug)]
pub struct Ownership {
    node_id: i32,
    ttl: Duration,
    held: BTreeMap<(&'static str, String), Lease>,
}

/// The placement key of an ownable thing: `partition:<name>` or `group:<name>`.
pub fn placement_key(kind: LeaseKind, name: &str) -> String {
    format!("{}:{name}", kind.as_str())
}

impl Ownership {
    /// Nothing held yet; leases are taken for `ttl` at a time.
    pub fn new(node_id: i32, ttl: Duration) -> Ownership {
        Ownership {
            node_id,
            ttl,
            held: BTreeMap::new(),
        }
    }

    /// The leases held after the last round.
    pub fn held(&self) -> impl Iterator<Item = &Lease> {
        self.held.values()
    }

    /// The lease held on `name` of `kind`, if any.
    pub fn lease(&self, kind: LeaseKind, name: &str) -> Option<&Lease> {
        self.held.get(&(kind.as_str(), name.to_string()))
    }

    /// One round over `things`, with `live` the node ids whose registration is live. A
    /// database error ends the round early: what was done so far is reported by the next
    /// round (held leases are only forgotten once found lost or released).
    pub async fn reconcile(
        &mut self,
        client: &impl GenericClient,
        live: &[i32],
        things: &[Ownable],
    ) -> Result<Changes, LeaseError> {
        let mut changes = Changes::default();
        let mut wanted: BTreeMap<(&'static str, String), LeaseKind> = BTreeMap::new();
        for (kind, name) in things {
            let mine = placement::owner(&placement_key(*kind, name), live) == Some(self.node_id);
            if mine {
                wanted.insert((kind.as_str(), name.clone()), *kind);
            }
        }
        // Held: renew what stays, release what goes elsewhere (or is gone).
        let held: Vec<((&'static str, String), Lease)> = self
            .held
            .iter()
            .map(|(k, l)| (k.clone(), l.clone()))
            .collect();
        let mut keep = Vec::new();
        for (key, held_lease) in held {
            if wanted.contains_key(&key) {
                keep.push(held_lease);
            } else {
                lease::release(client, &held_lease).await?;
                self.held.remove(&key);
                changes.lost.push(held_lease);
            }
        }
        // Everything kept is renewed in one statement, however much a node holds.
        for lost in lease::renew_many(client, &keep, self.ttl).await? {
            self.held.remove(&(lost.kind.as_str(), lost.name.clone()));
            changes.lost.push(lost);
        }
        // Wanted and not held: take what is free or lapsed.
        for (key, kind) in wanted {
            if self.held.contains_key(&key) {
                continue;
            }
            if let Some(taken) =
                lease::acquire(client, kind, &key.1, self.node_id, self.ttl).await?
            {
                self.held.insert(key, taken.clone());
                changes.gained.push(taken);
            }
        }
        Ok(changes)
    }

    /// Takes `name` of `kind` now, between rounds, when it is free, lapsed or already this
    /// node's (a group first heard of): `None` when another node holds it. Later rounds renew
    /// it while it is among their things.
    pub async fn acquire(
        &mut self,
        client: &impl GenericClient,
        kind: LeaseKind,
        name: &str,
    ) -> Result<Option<Lease>, LeaseError> {
        let key = (kind.as_str(), name.to_string());
        if let Some(held) = self.held.get(&key) {
            return Ok(Some(held.clone()));
        }
        let taken = lease::acquire(client, kind, name, self.node_id, self.ttl).await?;
        if let Some(taken) = &taken {
            self.held.insert(key, taken.clone());
        }
        Ok(taken)
    }

    /// Forgets a lease found lost outside a round (a write fenced by it).
    pub fn forget(&mut self, lost: &Lease) {
        let key = (lost.kind.as_str(), lost.name.clone());
        if self.held.get(&key).is_some_and(|l| l.epoch == lost.epoch) {
            self.held.remove(&key);
        }
    }

    /// Releases `held` now (its thing is gone), if this node still holds it at that epoch.
    pub async fn release(
        &mut self,
        client: &impl GenericClient,
        held: &Lease,
    ) -> Result<(), LeaseError> {
        let key = (held.kind.as_str(), held.name.clone());
        if self.held.get(&key).is_some_and(|l| l.epoch == held.epoch) {
            lease::release(client, held).await?;
            self.held.remove(&key);
        }
        Ok(())
    }

    /// Releases everything held (a clean shutdown), so the other nodes take it at once.
    pub async fn release_all(&mut self, client: &impl GenericClient) -> Result<(), LeaseError> {
        while let Some((_, held)) = self.held.pop_first() {
            lease::release(client, &held).await?;
        }
        Ok(())
    }
}
