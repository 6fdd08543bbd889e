-- Version 8: snapshots of a partition's producer state (docs/design/cluster.md), in the
-- embedded log's snapshot format, so a new leader replays only the batches after the newest
-- one, and producers whose batches retention deleted are still remembered.
CREATE TABLE producer_snapshots (
    topic_id         uuid    NOT NULL,
    partition        integer NOT NULL,
    -- Every batch below this offset is in the snapshot.
    snapshot_offset  bigint  NOT NULL,
    state            bytea   NOT NULL,
    PRIMARY KEY (topic_id, partition, snapshot_offset)
);
