-- Version 9: record batches are stored out of line without PostgreSQL's own compression
-- (docs/BENCHMARKS.md, "A node on PostgreSQL"). A batch is already in its final form, and
-- compressed by the producer when the topic wants it; pglz on every append cost more CPU
-- than anything else in the write path (a node's produce throughput was 3.4x lower with it),
-- and every fetch paid to decompress it again.
ALTER TABLE batches ALTER COLUMN bytes SET STORAGE EXTERNAL;
