-- Version 1: the cluster's identity and its nodes (docs/design/cluster.md).

-- One row: the cluster id every node hands to clients (Metadata, DescribeCluster).
CREATE TABLE cluster (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    cluster_id  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The nodes that have joined the cluster and their leases. Times are the database's, so
-- the nodes' clocks never decide whose lease is live.
CREATE TABLE nodes (
    node_id           integer PRIMARY KEY CHECK (node_id >= 0),
    -- Changes every time the node starts: a restarted node is a new incarnation.
    incarnation       uuid NOT NULL,
    host              text NOT NULL,
    port              integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    rack              text,
    registered_at     timestamptz NOT NULL DEFAULT now(),
    lease_expires_at  timestamptz NOT NULL
);
