-- Version 10: every listener a node serves, by name ({"SASL_SSL": ["host", 9094], ...}), so a
-- client connected to one listener is told the other nodes' addresses on the same listener
-- (`host` and `port` stay the node's first listener's).
ALTER TABLE nodes ADD COLUMN listeners jsonb NOT NULL DEFAULT '{}'::jsonb;
