-- Version 5: cluster metadata (docs/design/cluster.md), the PostgreSQL side of
-- starling_meta::backend::MetadataBackend.

-- The next producer id not handed out (blocks are reserved by moving it forward).
CREATE TABLE producer_ids (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    next_id    bigint NOT NULL CHECK (next_id >= 0)
);

CREATE TABLE topics (
    name        text PRIMARY KEY,
    topic_id    uuid NOT NULL,
    partitions  integer NOT NULL CHECK (partitions >= 0),
    -- Topic-level overrides by Kafka name.
    configs     jsonb NOT NULL DEFAULT '{}'
);

-- Run-time broker configs by scope: '' is the cluster-wide default, a node id one node.
CREATE TABLE broker_configs (
    scope    text PRIMARY KEY,
    configs  jsonb NOT NULL
);
