-- Version 2: leases, the fenced ownership of partitions and groups (docs/design/cluster.md).
--
-- At most one row per (kind, name); `epoch` grows by one each time the lease changes hands
-- (or is taken again after it lapsed), so a write checked against (owner, epoch) under a
-- row lock can never come from a node that lost the lease. Expiry is the database's clock.
CREATE TABLE leases (
    kind        text NOT NULL,
    name        text NOT NULL,
    owner       integer NOT NULL,
    epoch       bigint NOT NULL CHECK (epoch > 0),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE INDEX leases_by_owner ON leases (owner);
