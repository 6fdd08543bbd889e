//! Behaviour tests of the partition log, plus a property test.

mod alloc_meter;
mod append;
mod codecs;
mod compaction;
mod compaction_prop;
mod compressed;
mod compressed_prop;
mod crash_points;
mod delete_records;
mod idempotence;
mod producer_snapshots;
mod prop;
mod read;
mod recovery;
mod repair;
mod segments;
mod settings;
mod startup_damage;
mod support;
mod transactions;
mod write_faults;
