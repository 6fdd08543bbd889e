-- Version 6: the rest of the cluster metadata (docs/design/cluster.md) as keyed records, one
-- table for every kind the embedded store keeps a redb table of: client quotas, ACL bindings,
-- SCRAM credentials, transaction records. Each row is the latest value of its key, as JSON;
-- a deleted key has no row. Keys compare byte-wise (COLLATE "C"), as in the embedded store.
CREATE TABLE keyed_records (
    kind        text NOT NULL,
    record_key  text COLLATE "C" NOT NULL,
    value       jsonb NOT NULL,
    PRIMARY KEY (kind, record_key)
);
