//! Leases: which node owns a partition or a group, decided in the database and fenced.
//!
//! A lease is a row `(kind, name) → (owner, epoch, expires_at)`. A node [`acquire`]s it when
//! nobody holds it or the holder's time ran out, which bumps the epoch; it keeps it by
//! [`renew`]ing before it lapses, and gives it up with [`release`]. Every write a node makes on
//! behalf of what it owns runs in a transaction that first calls [`check`]: it locks the row
//! (`FOR SHARE`) and fails with [`LeaseError::Fenced`] unless the row still names this owner
//! and epoch and has not lapsed. A node that takes the lease over updates the row, which waits
//! for every transaction holding that share lock, and bumps the epoch, so once it has the
//! lease no write of the old holder can commit: a node that was paused past its lease (SIGSTOP,
//! a network partition) and resumes believing it still owns the thing writes nothing.
//!
//! All times are the database's (`now()`, `clock_timestamp()`), never a node's clock.

use std::time::Duration;

use tokio_postgres::GenericClient;

/// What a lease is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseKind {
    /// A partition's leadership, named `topic_id:partition`.
    Partition,
    /// A consumer group's coordination, named by the group id.
    Group,
    /// The transaction coordinator's, one for the cluster, named
    /// [`crate::transactions::COORDINATOR`].
    Transactions,
}

impl LeaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseKind::Partition => "partition",
            LeaseKind::Group => "group",
            LeaseKind::Transactions => "transactions",
        }
    }
}

/// A lease a node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub kind: LeaseKind,
    pub name: String,
    pub owner: i32,
    pub epoch: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The lease is not (or no longer) this node's at this epoch: the write must not happen.
    #[error("{kind} lease '{name}' is not held by node {owner} at epoch {epoch} any more")]
    Fenced {
        kind: &'static str,
        name: String,
        owner: i32,
        epoch: i64,
    },
    #[error("PostgreSQL: {}", crate::describe(.0))]
    Database(#[from] tokio_postgres::Error),
}

/// Takes the lease for `owner` for `ttl` if it is free, has lapsed, or is already `owner`'s;
/// `None` while another node holds it. Taking a free or lapsed lease bumps its epoch; taking
/// one `owner` still holds keeps the epoch and extends it.
pub async fn acquire(
    client: &impl GenericClient,
    kind: LeaseKind,
    name: &str,
    owner: i32,
    ttl: Duration,
) -> Result<Option<Lease>, LeaseError> {
    let row = client
        .query_opt(
            "INSERT INTO leases (kind, name, owner, epoch, expires_at)
             VALUES ($1, $2, $3, 1, clock_timestamp() + make_interval(secs => $4))
             ON CONFLICT (kind, name) DO UPDATE SET
                 epoch = CASE
                     WHEN leases.owner = EXCLUDED.owner AND leases.expires_at > clock_timestamp()
                     THEN leases.epoch
                     ELSE leases.epoch + 1
                 END,
                 owner = EXCLUDED.owner,
                 expires_at = EXCLUDED.expires_at
             WHERE leases.expires_at <= clock_timestamp() OR leases.owner = EXCLUDED.owner
             RETURNING epoch",
            &[&kind.as_str(), &name, &owner, &ttl.as_secs_f64()],
        )
        .await?;
    Ok(row.map(|row| Lease {
        kind,
        name: name.to_string(),
        owner,
        epoch: row.get(0),
    }))
}

/// Extends a lease still held (same owner and epoch, not lapsed) by `ttl` from now; a lease
/// that lapsed must be [`acquire`]d again, under a new epoch.
pub async fn renew(
    client: &impl GenericClient,
    lease: &Lease,
    ttl: Duration,
) -> Result<(), LeaseError> {
    let renewed = client
        .execute(
            "UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => $5)
             WHERE kind = $1 AND name = $2 AND owner = $3 AND epoch = $4
               AND expires_at > clock_timestamp()",
            &[
                &lease.kind.as_str(),
                &lease.name,
                &lease.owner,
                &lease.epoch,
                &ttl.as_secs_f64(),
            ],
        )
        .await?;
    if renewed == 1 {
        Ok(())
    } else {
        Err(fenced(lease))
    }
}

/// [`renew`] of many leases in one statement (a node's round over everything it holds):
/// returns those that were no longer held, lapsed or taken, which must not be written under.
pub async fn renew_many(
    client: &impl GenericClient,
    leases: &[Lease],
    ttl: Duration,
) -> Result<Vec<Lease>, LeaseError> {
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    let kinds: Vec<&str> = leases.iter().map(|l| l.kind.as_str()).collect();
    let names: Vec<&str> = leases.iter().map(|l| l.name.as_str()).collect();
    let owners: Vec<i32> = leases.iter().map(|l| l.owner).collect();
    let epochs: Vec<i64> = leases.iter().map(|l| l.epoch).collect();
    let rows = client
        .query(
            "UPDATE leases l SET expires_at = clock_timestamp() + make_interval(secs => $5)
             FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])
                 AS held(kind, name, owner, epoch)
             WHERE l.kind = held.kind AND l.name = held.name AND l.owner = held.owner
               AND l.epoch = held.epoch AND l.expires_at > clock_timestamp()
             RETURNING l.kind, l.name",
            &[&kinds, &names, &owners, &epochs, &ttl.as_secs_f64()],
        )
        .await?;
    let renewed: std::collections::HashSet<(String, String)> =
        rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    Ok(leases
        .iter()
        .filter(|l| !renewed.contains(&(l.kind.as_str().to_string(), l.name.clone())))
        .cloned()
        .collect())
}

/// Gives the lease up at once (so another node need not wait for it to lapse); nothing if
/// it is no longer this holder's.
pub async fn release(client: &impl GenericClient, lease: &Lease) -> Result<(), LeaseError> {
    client
        .execute(
            "UPDATE leases SET expires_at = clock_timestamp() - interval '1 microsecond'
             WHERE kind = $1 AND name = $2 AND owner = $3 AND epoch = $4",
            &[
                &lease.kind.as_str(),
                &lease.name,
                &lease.owner,
                &lease.epoch,
            ],
        )
        .await?;
    Ok(())
}

/// Inside a write transaction, before its writes: fails unless `lease` is still held, and
/// keeps it from changing hands until the transaction ends.
pub async fn check(
    transaction: &tokio_postgres::Transaction<'_>,
    lease: &Lease,
) -> Result<(), LeaseError> {
    let held = transaction
        .query_opt(
            "SELECT 1 FROM leases
             WHERE kind = $1 AND name = $2 AND owner = $3 AND epoch = $4
               AND expires_at > clock_timestamp()
             FOR SHARE",
            &[
                &lease.kind.as_str(),
                &lease.name,
                &lease.owner,
                &lease.epoch,
            ],
        )
        .await?;
    match held {
        Some(_) => Ok(()),
        None => Err(fenced(lease)),
    }
}

/// Who holds a lease now, and at which epoch (`None`: nobody, or it lapsed).
pub async fn holder(
    client: &impl GenericClient,
    kind: LeaseKind,
    name: &str,
) -> Result<Option<(i32, i64)>, LeaseError> {
    Ok(client
        .query_opt(
            "SELECT owner, epoch FROM leases
             WHERE kind = $1 AND name = $2 AND expires_at > clock_timestamp()",
            &[&kind.as_str(), &name],
        )
        .await?
        .map(|row| (row.get(0), row.get(1))))
}

/// Every live lease of `kind`: who holds it, at which epoch (what the cluster's Metadata
/// answers name as each partition's leader).
pub async fn holders(
    client: &impl GenericClient,
    kind: LeaseKind,
) -> Result<Vec<Lease>, LeaseError> {
    Ok(client
        .query(
            "SELECT name, owner, epoch FROM leases
             WHERE kind = $1 AND expires_at > clock_timestamp()",
            &[&kind.as_str()],
        )
        .await?
        .iter()
        .map(|row| Lease {
            kind,
            name: row.get(0),
            owner: row.get(1),
            epoch: row.get(2),
        })
        .collect())
}

fn fenced(lease: &Lease) -> LeaseError {
    LeaseError::Fenced {
        kind: lease.kind.as_str(),
        name: lease.name.clone(),
        owner: lease.owner,
        epoch: lease.epoch,
    }
}
