-- Version 4: partition logs (docs/design/cluster.md). `partitions` holds each partition's log
-- start and the next offset to assign; its row lock serialises appends across nodes, so no two
-- batches ever get the same offsets. `batches` holds record batches in Kafka's v2 format, with
-- their offsets already written in: fetch serves the stored bytes.
CREATE TABLE partitions (
    topic_id          uuid NOT NULL,
    partition         integer NOT NULL CHECK (partition >= 0),
    log_start_offset  bigint NOT NULL DEFAULT 0,
    next_offset       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition),
    CHECK (0 <= log_start_offset AND log_start_offset <= next_offset)
);

CREATE TABLE batches (
    topic_id       uuid NOT NULL,
    partition      integer NOT NULL,
    base_offset    bigint NOT NULL,
    last_offset    bigint NOT NULL,
    max_timestamp  bigint NOT NULL,
    bytes          bytea NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset),
    CHECK (base_offset <= last_offset)
);
