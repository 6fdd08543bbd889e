-- Version 11: transactions across nodes (docs/design/cluster.md).
-- A partition leader that does not coordinate transactions looks a producer's transaction up
-- by producer id: the transaction records (keyed_records of kind 'txn') are indexed by it.
CREATE INDEX keyed_records_txn_producer_id
    ON keyed_records (((value -> 'value' ->> 'producer_id')::bigint))
    WHERE kind = 'txn';

-- The markers a transaction coordinator asks other nodes to write: one row per target (a
-- partition, or a group whose transactional offsets the transaction settles) and producer.
-- The node leading the partition (coordinating the group) writes the marker and deletes the
-- row; a producer has one decided transaction at a time, so one row per target and producer.
CREATE TABLE txn_markers (
    target_kind     text NOT NULL CHECK (target_kind IN ('partition', 'group')),
    -- The topic's name, or the group's id.
    target          text COLLATE "C" NOT NULL,
    -- The partition; -1 for a group.
    partition_index integer NOT NULL,
    producer_id     bigint NOT NULL,
    producer_epoch  smallint NOT NULL,
    is_commit       boolean NOT NULL,
    transactional_id text NOT NULL,
    PRIMARY KEY (target_kind, target, partition_index, producer_id)
);
CREATE INDEX txn_markers_producer_id ON txn_markers (producer_id);
