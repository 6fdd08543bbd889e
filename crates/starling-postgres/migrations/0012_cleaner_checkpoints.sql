-- Version 12: log compaction of PostgreSQL partitions (docs/design/cluster.md, "Compaction on
-- PostgreSQL"). Each compacted partition's cleaner checkpoint, in the embedded log's text form:
-- where the dirty part starts, and the recent passes the delete horizon counts from.
CREATE TABLE cleaner_checkpoints (
    topic_id    uuid    NOT NULL,
    partition   integer NOT NULL,
    checkpoint  text    NOT NULL,
    PRIMARY KEY (topic_id, partition)
);
