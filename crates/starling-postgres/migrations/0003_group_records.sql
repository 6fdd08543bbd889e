-- Version 3: the group coordinator's records (docs/design/cluster.md), one row per key as in
-- the embedded store: the latest record of each key, a deleted key has no row. `value` is the
-- record as JSON (readable with SQL), `format` the version of that JSON.
CREATE TABLE group_records (
    group_id    text NOT NULL,
    record_key  text NOT NULL,
    format      smallint NOT NULL,
    value       jsonb NOT NULL,
    PRIMARY KEY (group_id, record_key)
);
