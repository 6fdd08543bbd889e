-- Version 7: each stored batch's producer fields in columns (docs/design/cluster.md), so the
-- node that takes a partition's lease rebuilds its idempotent-producer and transaction state
-- with one scan of small columns instead of reading every batch's bytes.
ALTER TABLE batches
    ADD COLUMN producer_id       bigint   NOT NULL DEFAULT -1,
    ADD COLUMN producer_epoch    smallint NOT NULL DEFAULT -1,
    ADD COLUMN base_sequence     integer  NOT NULL DEFAULT -1,
    ADD COLUMN is_transactional  boolean  NOT NULL DEFAULT false,
    ADD COLUMN is_control        boolean  NOT NULL DEFAULT false,
    -- A transaction marker's decision (true: commit); NULL for every other batch.
    ADD COLUMN marker_commits    boolean,
    -- The partition leader epoch written into the batch: the lease epoch of its writer.
    ADD COLUMN leader_epoch      integer  NOT NULL DEFAULT 0;

-- The batches that carry producer state, in offset order: what a new leader replays.
CREATE INDEX batches_with_producers ON batches (topic_id, partition, base_offset)
    WHERE producer_id >= 0;
