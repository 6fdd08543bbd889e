//! One suite for the partition store seam ([`PartitionStore`]), run on both places a
//! partition's records can live: the node's own segment log (embedded) and PostgreSQL (a
//! partition led under its lease). The request handlers see only the seam, so whatever a
//! producer or a consumer can observe must be the same on both: the offsets an append gets,
//! what a read returns and refuses, idempotent producers, transactions and the last stable
//! offset, timestamp lookups, DeleteRecords, retention, and all of it again after a restart
//! (the embedded log recovered from its files; in PostgreSQL, another node taking the lease
//! over and rebuilding the partition from the stored rows).
//!
//! Each case starts on a fresh partition. Where the back ends differ by design (the leader
//! epoch, segment files), the suite does not look.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use starling_broker::partition_store::{PartitionStore, PgProduceError, PgReplica, StoreError};
use starling_log::producer_state::{ProducerError, TxnMarker};
use starling_log::{
    AppendError, AppendInfo, CleanupPolicy, Isolation, LogConfig, PartitionLog, ReadResult,
    Unthrottled,
};
use starling_postgres::lease::{self, Lease, LeaseKind};
use starling_postgres::partition::PgPartition;
use starling_postgres::partition_log;
use starling_postgres::testing::TestPostgres;
use starling_postgres::PgPool;
use uuid::Uuid;

/// The clock of every case: appends, retention and restarts all happen "now".
const NOW: i64 = 1_796_428_800_000;
const HOUR: i64 = 3_600_000;
const LEASE_TIME: Duration = Duration::from_secs(60);
/// The compaction key map's memory.
const DEDUPE_BUFFER: u64 = 1 << 20;

// ---- The two back ends ------------------------------------------------------------------

/// Where a case's partition lives.
enum Backend {
    Embedded(tempfile::TempDir),
    Postgres {
        pool: PgPool,
        topic: Uuid,
        /// The lease the current leader holds.
        lease: Lease,
    },
}

/// One partition, through the seam, on one back end.
struct Subject {
    backend: Backend,
    store: PartitionStore,
}

/// How to make a fresh [`Subject`].
#[derive(Clone)]
enum Kind {
    Embedded,
    Postgres(PgPool),
}

impl Subject {
    async fn fresh(kind: &Kind, config: LogConfig) -> Subject {
        match kind {
            Kind::Embedded => {
                let dir = tempfile::tempdir().unwrap();
                let log = PartitionLog::open(&dir.path().join("p-0"), config, NOW).unwrap();
                Subject {
                    backend: Backend::Embedded(dir),
                    store: PartitionStore::Embedded(log),
                }
            }
            Kind::Postgres(pool) => {
                let topic = Uuid::new_v4();
                let client = pool.get().await.unwrap();
                partition_log::create(&**client, topic, 1).await.unwrap();
                drop(client);
                let (lease, store) = lead(pool, topic, 1, config).await;
                Subject {
                    backend: Backend::Postgres {
                        pool: pool.clone(),
                        topic,
                        lease,
                    },
                    store,
                }
            }
        }
    }

    /// The partition as a broker sees it after the previous one stopped without a word (no
    /// clean close, no snapshot): the embedded log opened again from its files and recovered;
    /// in PostgreSQL, the leader's lease released and another node leading from the stored
    /// rows.
    async fn restart(&mut self) {
        let config = self.store.config();
        match &mut self.backend {
            Backend::Embedded(dir) => {
                let log = PartitionLog::open(&dir.path().join("p-0"), config, NOW).unwrap();
                self.store = PartitionStore::Embedded(log);
            }
            Backend::Postgres { pool, topic, lease } => {
                let client = pool.get().await.unwrap();
                lease::release(&**client, lease).await.unwrap();
                drop(client);
                let (taken, store) = lead(pool, *topic, lease.owner + 1, config).await;
                *lease = taken;
                self.store = store;
            }
        }
    }

    /// Appends a produced record set, as the produce path does.
    async fn append(&self, records: BytesMut) -> Result<AppendInfo, AppendError> {
        match &self.store {
            PartitionStore::Embedded(log) => log.append(records, NOW),
            PartitionStore::Postgres(replica) => match replica.append(records, NOW).await {
                Ok(info) => Ok(info),
                Err(PgProduceError::Log(e)) => Err(e),
                Err(PgProduceError::NotLeader) => panic!("the leader lost its partition"),
            },
        }
    }

    async fn appended(&self, records: BytesMut) -> AppendInfo {
        self.append(records).await.expect("appended")
    }

    /// A producer's refusal of `records`.
    async fn refused(&self, records: BytesMut) -> ProducerError {
        match self.append(records).await {
            Err(AppendError::Producer(e)) => e,
            other => panic!("expected a producer refusal, got {other:?}"),
        }
    }

    /// Writes a transaction marker: whether one was written.
    async fn marker(&self, producer_id: i64, epoch: i16, commit: bool) -> bool {
        let marker = TxnMarker {
            producer_id,
            epoch,
            commit,
            coordinator_epoch: 0,
        };
        match &self.store {
            PartitionStore::Embedded(log) => log.write_txn_marker(marker, NOW).unwrap().is_some(),
            PartitionStore::Postgres(replica) => {
                replica.write_txn_marker(marker, NOW).await.unwrap()
            }
        }
    }

    async fn read(&self, offset: i64, isolation: Isolation) -> Result<ReadResult, StoreError> {
        self.store.read(offset, usize::MAX, false, isolation).await
    }

    /// Everything from `offset`, uncommitted.
    async fn all_from(&self, offset: i64) -> ReadResult {
        self.read(offset, Isolation::ReadUncommitted).await.unwrap()
    }

    /// One compaction pass at `now_ms`, as the log cleaner runs it.
    async fn clean(&self, now_ms: i64) {
        match &self.store {
            PartitionStore::Embedded(log) => {
                log.clean(now_ms, &mut Unthrottled, DEDUPE_BUFFER).unwrap();
            }
            PartitionStore::Postgres(replica) => {
                let leader = replica.leader().unwrap();
                // Two rows a transaction, so a pass takes several.
                leader
                    .clean(&self.store.config(), now_ms, DEDUPE_BUFFER, 2)
                    .await
                    .unwrap();
            }
        }
    }

    async fn enforce_retention(&self, now_ms: i64) {
        match &self.store {
            PartitionStore::Embedded(log) => {
                log.enforce_retention(now_ms).unwrap();
            }
            PartitionStore::Postgres(replica) => {
                replica.enforce_retention(now_ms).await.unwrap();
            }
        }
    }

    fn bounds(&self) -> (i64, i64, i64) {
        (
            self.store.log_start_offset(),
            self.store.last_stable_offset(),
            self.store.log_end_offset(),
        )
    }
}

/// Node `node` takes the partition's lease and leads it from what is stored.
async fn lead(pool: &PgPool, topic: Uuid, node: i32, config: LogConfig) -> (Lease, PartitionStore) {
    let client = pool.get().await.unwrap();
    let name = partition_log::lease_name(topic, 0);
    let lease = lease::acquire(&**client, LeaseKind::Partition, &name, node, LEASE_TIME)
        .await
        .unwrap()
        .expect("the partition's lease is free");
    drop(client);
    let led = PgPartition::open(pool.clone(), lease.clone(), topic, 0)
        .await
        .unwrap();
    let replica = PgReplica::new(config);
    replica.set_leader(Some(Arc::new(led)));
    (lease, PartitionStore::Postgres(replica))
}

// ---- Record sets ------------------------------------------------------------------------

/// Who writes a batch: no producer, an idempotent one, or a transactional one.
#[derive(Clone, Copy)]
struct Writer {
    producer_id: i64,
    epoch: i16,
    transactional: bool,
}

const PLAIN: Writer = Writer {
    producer_id: -1,
    epoch: -1,
    transactional: false,
};

fn idempotent(producer_id: i64, epoch: i16) -> Writer {
    Writer {
        producer_id,
        epoch,
        transactional: false,
    }
}

fn transactional(producer_id: i64, epoch: i16) -> Writer {
    Writer {
        producer_id,
        epoch,
        transactional: true,
    }
}

/// `count` records "{tag}-0".., stamped `timestamp`, `timestamp + 1`, ...; the first's
/// sequence `sequence` (ignored for [`PLAIN`]).
fn records(writer: Writer, sequence: i32, count: i32, tag: &str, timestamp: i64) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            transactional: writer.transactional,
            control: false,
            partition_leader_epoch: -1,
            producer_id: writer.producer_id,
            producer_epoch: writer.epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            // Without a producer the base sequence is -1, and the encoder wants
            // `offset - sequence` equal across one batch.
            sequence: if writer.producer_id < 0 {
                i - 1
            } else {
                sequence + i
            },
            timestamp: timestamp + i64::from(i),
            key: None,
            value: Some(Bytes::from(format!("{tag}-{i}"))),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect()
}

/// One batch of keyed records from `writer` (its first sequence `sequence`), stamped `NOW`:
/// `(key, Some(value))`, or `(key, None)` for a tombstone.
fn keyed(writer: Writer, sequence: i32, pairs: &[(&str, Option<&str>)]) -> BytesMut {
    let mut out = records(writer, sequence, pairs.len() as i32, "", NOW);
    for (record, (key, value)) in out.iter_mut().zip(pairs) {
        record.key = Some(Bytes::from(key.to_string()));
        record.value = value.map(|v| Bytes::from(v.to_string()));
    }
    encode(out, Compression::None)
}

/// `records` as one v2 batch.
fn encode(records: Vec<Record>, compression: Compression) -> BytesMut {
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut out, &records, &options).unwrap();
    out
}

/// One uncompressed batch stamped `timestamp`.. (see [`records`]).
fn batch_at(writer: Writer, sequence: i32, count: i32, tag: &str, timestamp: i64) -> BytesMut {
    encode(
        records(writer, sequence, count, tag, timestamp),
        Compression::None,
    )
}

fn batch(writer: Writer, sequence: i32, count: i32, tag: &str) -> BytesMut {
    compressed_batch(writer, sequence, count, tag, Compression::None)
}

fn compressed_batch(
    writer: Writer,
    sequence: i32,
    count: i32,
    tag: &str,
    compression: Compression,
) -> BytesMut {
    encode(records(writer, sequence, count, tag, NOW), compression)
}

/// One stored batch, as a reader sees it.
#[derive(Debug, PartialEq)]
struct Stored {
    base_offset: i64,
    producer_id: i64,
    /// Data records' values with their offsets; a control batch has none.
    values: Vec<(i64, String)>,
    control: bool,
    bytes: usize,
    /// The compression codec of the batch's attributes, as stored.
    codec: u8,
    /// Whether the batch is stamped with its append time (then the batch's largest timestamp,
    /// `max_timestamp`, is every record's).
    log_append_time: bool,
    max_timestamp: i64,
}

fn batches(records: &Bytes) -> Vec<Stored> {
    let mut buf = records.clone();
    let mut out = Vec::new();
    while !buf.is_empty() {
        let before = buf.len();
        // The attributes follow base offset, length, leader epoch, magic and CRC; then come
        // the last offset delta, the base timestamp and the largest timestamp.
        let codec = buf[22] & 0x07;
        let log_append_time = buf[22] & 0x08 != 0;
        let max_timestamp = i64::from_be_bytes(buf[35..43].try_into().unwrap());
        let set = RecordBatchDecoder::decode(&mut buf).expect("a valid stored batch");
        let first = &set.records[0];
        out.push(Stored {
            base_offset: first.offset,
            producer_id: first.producer_id,
            values: set
                .records
                .iter()
                .filter(|r| !r.control)
                .map(|r| {
                    let value = r.value.as_ref().map_or("(tombstone)".to_string(), |v| {
                        String::from_utf8(v.to_vec()).unwrap()
                    });
                    (r.offset, value)
                })
                .collect(),
            control: first.control,
            bytes: before - buf.len(),
            codec,
            log_append_time,
            max_timestamp,
        });
    }
    out
}

/// The data records' values in `records`, in order.
fn values(records: &Bytes) -> Vec<String> {
    batches(records)
        .into_iter()
        .flat_map(|b| b.values.into_iter().map(|(_, v)| v))
        .collect()
}

fn out_of_range(read: Result<ReadResult, StoreError>) -> (i64, i64, i64) {
    match read {
        Err(StoreError::OffsetOutOfRange {
            offset,
            log_start,
            log_end,
        }) => (offset, log_start, log_end),
        Err(e) => panic!("expected OFFSET_OUT_OF_RANGE, got {e}"),
        Ok(r) => panic!(
            "expected OFFSET_OUT_OF_RANGE, got {} bytes",
            r.records.len()
        ),
    }
}

// ---- The cases --------------------------------------------------------------------------

type Case = fn(Kind) -> futures::future::LocalBoxFuture<'static, ()>;

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        const CASES: &[(&str, Case)] = &[$((stringify!($case), |kind| Box::pin($case(kind)))),*];
    };
}

cases!(
    appends_take_consecutive_offsets_and_read_back_whole_batches,
    a_read_at_the_log_end_is_empty_and_one_outside_the_log_is_out_of_range,
    max_bytes_bounds_a_read_but_min_one_returns_the_first_batch_whole,
    a_refused_record_set_stores_nothing,
    an_idempotent_retry_gets_its_first_offsets_and_a_gap_or_an_old_epoch_is_refused,
    idempotent_producers_are_known_again_after_a_restart,
    an_open_transaction_holds_the_last_stable_offset_and_read_committed_stops_there,
    an_aborted_transaction_is_listed_for_read_committed_readers_and_a_committed_one_is_not,
    a_marker_for_a_producer_without_an_open_transaction_writes_nothing,
    open_transactions_survive_a_restart_and_end_with_their_marker,
    timestamps_are_looked_up_by_first_record_at_or_after_and_by_the_largest,
    delete_records_moves_the_log_start_which_a_restart_keeps,
    retention_by_time_deletes_only_batches_older_than_retention_ms,
    retention_by_size_keeps_at_least_retention_bytes,
    sizes_and_counts_follow_the_stored_batches,
    a_compressed_batch_is_stored_as_sent_and_its_records_take_offsets,
    log_append_time_stamps_each_batch_with_the_time_of_its_append,
    a_marker_with_a_bumped_epoch_fences_the_producers_older_epoch,
    a_timestamp_lookup_never_answers_an_offset_below_the_log_start,
    compaction_keeps_the_latest_value_of_each_key_and_tombstones_until_their_horizon,
    compaction_drops_aborted_data_then_its_marker_and_stops_at_an_open_transaction,
    a_compacted_partition_still_knows_its_producers_after_a_restart,
);

async fn appends_take_consecutive_offsets_and_read_back_whole_batches(kind: Kind) {
    let s = Subject::fresh(&kind, LogConfig::default()).await;
    assert_eq!(s.bounds(), (0, 0, 0));
    let a = s.appended(batch(PLAIN, 0, 3, "a")).await;
    let b = s.appended(batch(PLAIN, 0, 1, "b")).await;
    let c = s.appended(batch(idempotent(7, 0), 0, 2, "c")).await;
    assert_eq!((a.base_offset, a.last_offset, a.record_count), (0, 2, 3));
    assert_eq!((b.base_offset, b.last_offset, b.record_count), (3, 3, 1));
    assert_eq!((c.base_offset, c.last_offset, c.record_count), (4, 5, 2));
    assert_eq!(c.log_start_offset, 0);
    assert_eq!(s.bounds(), (0, 6, 6));

    let read = s.all_from(0).await;
    assert_eq!((read.high_watermark, read.last_stable_offset), (6, 6));
    assert_eq!(read.log_start_offset, 0);
    let stored = batches(&read.records);
    let offsets: Vec<(i64, Vec<i64>)> = stored
        .iter()
        .map(|b| (b.base_offset, b.values.iter().map(|(o, _)| *o).collect()))
        .collect();
    assert_eq!(offsets, [(0, vec![0, 1, 2]), (3, vec![3]), (4, vec![4, 5])]);
    assert_eq!(stored[2].producer_id, 7);
    assert_eq!(
        values(&read.records),
        ["a-0", "a-1", "a-2", "b-0", "c-0", "c-1"]
    );
    // An offset inside a batch reads from the start of the batch holding it.
    let inside = s.all_from(1).await;
    assert_eq!(batches(&inside.records)[0].base_offset, 0);
    let last = s.all_from(5).await;
    assert_eq!(batches(&last.records)[0].base_offset, 4);
    assert_eq!(batches(&last.records).len(), 1);
}

async fn a_read_at_the_log_end_is_empty_and_one_outside_the_log_is_out_of_range(kind: Kind) {
    let s = Subject::fresh(&kind, LogConfig::default()).await;
    let empty = s.all_from(0).await;
    assert!(empty.records.is_empty());
    assert_eq!(empty.high_watermark, 0);
    assert_eq!(
        out_of_range(s.read(1, Isolation::ReadUncommitted).await),
        (1, 0, 0)
    );

    s.appended(batch(PLAIN, 0, 2, "a")).await;
    let at_end = s.all_from(2).await;
    assert!(at_end.records.is_empty());
    assert_eq!(at_end.high_watermark, 2);
    assert_eq!(
        out_of_range(s.read(3, Isolation::ReadUncommitted).await),
        (3, 0, 2)
    );
    assert_eq!(
        out_of_range(s.read(-1, Isolation::ReadUncommitted).await),
        (-1, 0, 2)
    );
    assert_eq!(
        out_of_range(s.read(3, Isolation::ReadCommitted).await),
        (3, 0, 2)
    );
}

async fn max_bytes_bounds_a_read_but_min_one_returns_the_first_batch_whole(kind: Kind) {
    let s = Subject::fresh(&kind, LogConfig::default()).await;
    for tag in ["a", "b", "c"] {
        s.appended(batch(PLAIN, 0, 4, tag)).await;
    }
    let all = batches(&s.all_from(0).await.records);
    let first = all[0].bytes;
    let read = |max_bytes: usize, min_one: bool| {
        let store = &s.store;
        async move {
            let read = store
                .read(0, max_bytes, min_one, Isolation::ReadUncommitted)
                .await
                .unwrap();
            batches(&read.records)
                .iter()
                .map(|b| b.base_offset)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(read(1, true).await, [0], "one batch larger than max_bytes");
    assert_eq!(read(1, false).await, Vec::<i64>::new());
    assert_eq!(read(first, false).await, [0]);
    assert_eq!(read(first + all[1].bytes, false).await, [0, 4]);
    assert_eq!(read(first + all[1].bytes - 1, true).await, [0]);
    assert_eq!(read(usize::MAX, false).await, [0, 4, 8]);
}

async fn a_refused_record_set_stores_nothing(kind: Kind) {
    let config = LogConfig {
        max_message_bytes: 200,
        ..LogConfig::default()
    };
    let s = Subject::fresh(&kind, config).await;
    s.appended(batch(PLAIN, 0, 1, "kept")).await;
    let mut corrupt = batch(PLAIN, 0, 2, "corrupt");
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert!(matches!(
        s.append(corrupt).await,
        Err(AppendError::Corrupt(_))
    ));
    assert!(matches!(
        s.append(batch(PLAIN, 0, 40, "large")).await,
        Err(AppendError::TooLarge { max: 200, .. })
    ));
    assert!(matches!(
        s.append(BytesMut::from(&b"not a batch"[..])).await,
        Err(AppendError::Corrupt(_))
    ));
    assert_eq!(s.bounds(), (0, 1, 1));
    assert_eq!(values(&s.all_from(0).await.records), ["kept-0"]);
    // The next append takes the next offset: nothing was reserved for what was refused.
    assert_eq!(s.appended(batch(PLAIN, 0, 1, "next")).await.base_offset, 1);
}

async fn an_idempotent_retry_gets_its_first_offsets_and_a_gap_or_an_old_epoch_is_refused(
    kind: Kind,
) {
    let s = Subject::fresh(&kind, LogConfig::default()).await;
    let p = idempotent(5, 0);
    s.appended(batch(p, 0, 2, "a")).await;
    let b = s.appended(batch(p, 2, 1, "b")).await;
    // The answer to `b` was lost: the producer sends it again and gets its offsets back.
    let retried = s.appended(batch(p, 2, 1, "b")).await;
    assert_eq!(
        (retried.base_offset, retried.last_offset),
        (b.base_offset, b.last_offset)
    );
    assert_eq!(retried.record_count, 0, "nothing stored twice");
    assert!(matches!(
        s.refused(batch(p, 9, 1, "gap")).await,
        ProducerError::OutOfOrder {
            producer_id: 5,
            expected: 3,
            base_sequence: 9,
            ..
        }
    ));
    // A new epoch starts again at sequence 0, and fences the old one.
    s.appended(batch(idempotent(5, 1), 0, 1, "c")).await;
    assert!(matches!(
        s.refused(batch(p, 3, 1, "old")).await,
        ProducerError::InvalidEpoch {
            producer_id: 5,
            epoch: 0,
            current: 1
        }
    ));
    assert_eq!(
        values(&s.all_from(0).await.records),
        ["a-0", "a-1", "b-0", "c-0"]
    );
    let producers = s.store.active_producers();
    assert_eq!(producers.len(), 1);
    assert_eq!((producers[0].producer_id, producers[0].epoch), (5, 1));
    assert_eq!(producers[0].last_sequence, 0);
    assert_eq!(producers[0].current_txn_start_offset, None);
}

async fn idempotent_producers_are_known_again_after_a_restart(kind: Kind) {
    let mut s = Subject::fresh(&kind, LogConfig::default()).await;
    s.appended(batch(idempotent(5, 0), 0, 2, "a")).await;
    let b = s.appended(batch(idempotent(5, 0), 2, 1, "b")).await;
    s.appended(batch(idempotent(6, 3), 0, 1, "other")).await;
    let before = s.store.active_producers();
    s.restart().await;
    assert_eq!(s.store.active_producers(), before);
    assert_eq!(s.bounds(), (0, 4, 4));
    let retried = s.appended(batch(idempotent(5, 0), 2, 1, "b")).await;
    assert_eq!(
        (retried.base_offset, retried.record_count),
        (b.base_offset, 0)
    );
    assert!(matches!(
        s.refused(batch(idempotent(5, 0), 4, 1, "gap")).await,
        ProducerError::OutOfOrder { expected: 3, .. }
    ));
    assert!(matches!(
        s.refused(batch(idempotent(6, 2), 0, 1, "old")).await,
        ProducerError::InvalidEpoch { current: 3, .. }
    ));
    assert_eq!(
        s.appended(batch(idempotent(5, 0), 3, 1, "c"))
            .await
            .base_offset,
        4
    );
}

async fn an_open_transaction_holds_the_last_stable_offset_and_read_committed_stops_there(
    kind: Kind,
) {
    let s = Subject::fresh(&kind, LogConfig::default()).await;
    s.appended(batch(PLAIN, 0, 1, "plain")).await;
    s.appended(batch(transactional(9, 0), 0, 2, "t9")).await;
    s.appended(batch(PLAIN, 0, 1, "after")).await;
    assert!(s.store.has_open_transaction(9));
    assert!(!s.store.has_open_transaction(10));
    assert_eq!(s.store.open_transaction_count(), 1);
    assert_eq!(s.bounds(), (0, 1, 4));

    let committed = s.read(0, Isolation::ReadCommitted).await.unwrap();
    assert_eq!(values(&committed.records), ["plain-0"]);
    assert_eq!(
        (committed.last_stable_offset, committed.high_watermark),
        (1, 4)
    );
    let uncommitted = s.all_from(0).await;
    assert_eq!(
        values(&uncommitted.records),
        ["plain-0", "t9-0", "t9-1", "after-0"]
    );
    assert_eq!(uncommitted.last_stable_offset, 1);
    // A read_committed read at the last stable offset has nothing yet.
    let waiting = s.read(1, Isolation::ReadCommitted).await.unwrap();
    assert!(waiting.records.is_empty());

    // A plain batch from a producer inside its transaction is refused.
    assert!(matches!(
        s.refused(batch(idempotent(9, 0), 2, 1, "plain")).await,
        ProducerError::InvalidTxnState { producer_id: 9 }
    ));
    let producers = s.store.active_producers();
    assert_eq!(producers[0].current_txn_start_offset, Some(1));

    assert!(s.marker(9, 0, true).await);
    assert_eq!(s.bounds(), (0, 5, 5));
    assert!(!s.store.has_open_transaction(9));
    let committed = s.read(0, Isolation::ReadCommitted).await.unwrap();
    assert_eq!(
        values(&committed.records),
        ["plain-0", "t9-0", "t9-1", "after-0"]
    );
    assert!(committed.aborted_transactions.is_empty());
    let stored = batches(&committed.records);
    let marker = stored.last().unwrap();
    assert!(marker.control && marker.base_offset == 4 && marker.producer_id == 9);
}

async fn an_aborted_transaction_is_listed_for_read_committed_readers_and_a_committed_one_is_not(
    kind: Kind,
) {
    let s = Subject::fresh(&kind, LogConfig::default()).await;
    s.appended(batch(PLAIN, 0, 1, "plain")).await;
    s.appended(batch(transactional(9, 0), 0, 2, "t9")).await;
    s.appended(batch(transactional(10, 0), 0, 1, "t10")).await;
    assert_eq!(s.bounds(), (0, 1, 4));
    assert!(s.marker(9, 0, false).await);
    // Producer 10's transaction, open since offset 3, still holds the stable offset.
    assert_eq!(s.bounds(), (0, 3, 5));
    assert!(s.marker(10, 0, true).await);
    assert_eq!(s.bounds(), (0, 6, 6));

    let read = s.read(0, Isolation::ReadCommitted).await.unwrap();
    assert_eq!(values(&read.records), ["plain-0", "t9-0", "t9-1", "t10-0"]);
    let aborted: Vec<(i64, i64, i64)> = read
        .aborted_transactions
        .iter()
        .map(|a| (a.producer_id, a.first_offset, a.last_offset))
        .collect();
    assert_eq!(aborted, [(9, 1, 4)]);
    // A read_uncommitted read lists none; a read past the aborted range neither.
    assert!(s.all_from(0).await.aborted_transactions.is_empty());
    let past = s.read(5, Isolation::ReadCommitted).await.unwrap();
    assert!(past.aborted_transactions.is_empty());
    // A read from inside the aborted range lists it.
    let inside = s.read(2, Isolation::ReadCommitted).await.unwrap();
    assert_eq!(inside.aborted_transactions.len(), 1);
    assert_eq!(inside.aborted_transactions[0].first_offset, 1);
}

async fn a_marker_for_a_producer_without_an_open_transaction_writes_nothing(kind: Kind) {
    let s = Subject::fresh(&kind, LogConfig::default()).await;
    assert!(!s.marker(9, 0, true).await, "an unknown producer");
    s.appended(batch(idempotent(9, 0), 0, 1, "idempotent"))
        .await;
    assert!(!s.marker(9, 0, false).await, "no transaction open");
    s.appended(batch(transactional(9, 0), 1, 1, "t")).await;
    assert!(s.marker(9, 0, false).await);
    assert!(
        !s.marker(9, 0, false).await,
        "the transaction already ended"
    );
    assert_eq!(s.bounds(), (0, 3, 3));
}

async fn open_transactions_survive_a_restart_and_end_with_their_marker(kind: Kind) {
    let mut s = Subject::fresh(&kind, LogConfig::default()).await;
    s.appended(batch(transactional(9, 0), 0, 2, "aborted"))
        .await;
    assert!(s.marker(9, 0, false).await);
    s.appended(batch(PLAIN, 0, 1, "plain")).await;
    s.appended(batch(transactional(9, 0), 2, 1, "open")).await;
    s.appended(batch(transactional(11, 4), 0, 1, "other")).await;
    assert_eq!(s.bounds(), (0, 4, 6));
    s.restart().await;
    assert_eq!(s.bounds(), (0, 4, 6));
    assert!(s.store.has_open_transaction(9));
    assert!(s.store.has_open_transaction(11));
    assert_eq!(s.store.open_transaction_count(), 2);
    let read = s.read(0, Isolation::ReadCommitted).await.unwrap();
    assert_eq!(values(&read.records), ["aborted-0", "aborted-1", "plain-0"]);
    assert_eq!(read.aborted_transactions.len(), 1);

    assert!(s.marker(9, 0, true).await);
    assert_eq!(s.bounds(), (0, 5, 7));
    assert!(s.marker(11, 4, false).await);
    assert_eq!(s.bounds(), (0, 8, 8));
    let read = s.read(0, Isolation::ReadCommitted).await.unwrap();
    let aborted: Vec<(i64, i64)> = read
        .aborted_transactions
        .iter()
        .map(|a| (a.producer_id, a.first_offset))
        .collect();
    assert_eq!(aborted, [(9, 0), (11, 5)]);
}

async fn timestamps_are_looked_up_by_first_record_at_or_after_and_by_the_largest(kind: Kind) {
    let s = Subject::fresh(&kind, LogConfig::default()).await;
    assert_eq!(s.store.max_timestamp().await.unwrap(), None);
    assert_eq!(s.store.offset_for_timestamp(0).await.unwrap(), None);
    // Offsets 0-2 at 1000.., 3-4 at 5000.., 5 at 3000: timestamps need not grow.
    s.appended(batch_at(PLAIN, 0, 3, "a", NOW + 1000)).await;
    s.appended(batch_at(PLAIN, 0, 2, "b", NOW + 5000)).await;
    s.appended(batch_at(PLAIN, 0, 1, "c", NOW + 3000)).await;
    let lookup = |timestamp: i64| s.store.offset_for_timestamp(timestamp);
    assert_eq!(lookup(0).await.unwrap(), Some((0, NOW + 1000)));
    assert_eq!(lookup(NOW + 1001).await.unwrap(), Some((1, NOW + 1001)));
    assert_eq!(lookup(NOW + 1003).await.unwrap(), Some((3, NOW + 5000)));
    assert_eq!(lookup(NOW + 5001).await.unwrap(), Some((4, NOW + 5001)));
    assert_eq!(lookup(NOW + 5002).await.unwrap(), None);
    assert_eq!(
        s.store.max_timestamp().await.unwrap(),
        Some((NOW + 5001, 4))
    );
}

async fn delete_records_moves_the_log_start_which_a_restart_keeps(kind: Kind) {
    let mut s = Subject::fresh(&kind, LogConfig::default()).await;
    for tag in ["a", "b", "c"] {
        s.appended(batch(PLAIN, 0, 2, tag)).await;
    }
    assert_eq!(s.store.delete_records_before(3, NOW).await.unwrap(), 3);
    assert_eq!(s.bounds(), (3, 6, 6));
    // Moving it back changes nothing; past the log end is refused.
    assert_eq!(s.store.delete_records_before(1, NOW).await.unwrap(), 3);
    assert!(matches!(
        s.store.delete_records_before(7, NOW).await,
        Err(StoreError::OffsetOutOfRange { offset: 7, .. })
    ));
    assert_eq!(
        out_of_range(s.read(2, Isolation::ReadUncommitted).await),
        (2, 3, 6)
    );
    // Offset 3 is inside the second batch, which is read whole: the reader skips offset 2.
    let read = s.all_from(3).await;
    assert_eq!(read.log_start_offset, 3);
    assert_eq!(batches(&read.records)[0].base_offset, 2);
    assert_eq!(values(&read.records), ["b-0", "b-1", "c-0", "c-1"]);

    s.restart().await;
    assert_eq!(s.bounds(), (3, 6, 6));
    assert_eq!(
        out_of_range(s.read(2, Isolation::ReadUncommitted).await),
        (2, 3, 6)
    );
    assert_eq!(
        s.appended(batch(PLAIN, 0, 1, "d")).await.log_start_offset,
        3
    );
    // Up to the log end: an empty log that keeps its offsets.
    assert_eq!(s.store.delete_records_before(7, NOW).await.unwrap(), 7);
    assert_eq!(s.bounds(), (7, 7, 7));
    assert!(s.all_from(7).await.records.is_empty());
    assert_eq!(s.appended(batch(PLAIN, 0, 1, "e")).await.base_offset, 7);
}

/// Settings under which each batch is a segment of its own in the embedded log, so its
/// retention (by whole segments) and PostgreSQL's (by batches) delete the same.
fn a_segment_per_batch() -> LogConfig {
    LogConfig {
        segment_bytes: 1,
        ..LogConfig::default()
    }
}

async fn retention_by_time_deletes_only_batches_older_than_retention_ms(kind: Kind) {
    let s = Subject::fresh(&kind, a_segment_per_batch()).await;
    s.appended(batch_at(PLAIN, 0, 2, "old", NOW - 3 * HOUR))
        .await;
    s.appended(batch_at(PLAIN, 0, 2, "older", NOW - 5 * HOUR))
        .await;
    s.appended(batch_at(PLAIN, 0, 2, "recent", NOW - HOUR))
        .await;
    s.appended(batch_at(PLAIN, 0, 1, "new", NOW)).await;
    // Without a limit nothing goes.
    s.store.set_config(LogConfig {
        retention_ms: None,
        ..a_segment_per_batch()
    });
    s.enforce_retention(NOW).await;
    assert_eq!(s.bounds(), (0, 7, 7));

    s.store.set_config(LogConfig {
        retention_ms: Some(2 * HOUR),
        ..a_segment_per_batch()
    });
    s.enforce_retention(NOW).await;
    assert_eq!(s.bounds(), (4, 7, 7));
    assert_eq!(
        values(&s.all_from(4).await.records),
        ["recent-0", "recent-1", "new-0"]
    );
    assert_eq!(
        out_of_range(s.read(3, Isolation::ReadUncommitted).await),
        (3, 4, 7)
    );
    // Later, the recent batch has aged too.
    s.enforce_retention(NOW + 2 * HOUR - 1).await;
    assert_eq!(s.store.log_start_offset(), 6);
}

async fn retention_by_size_keeps_at_least_retention_bytes(kind: Kind) {
    let s = Subject::fresh(&kind, a_segment_per_batch()).await;
    for tag in ["a", "b", "c", "d"] {
        s.appended(batch(PLAIN, 0, 2, tag)).await;
    }
    let sizes: Vec<u64> = batches(&s.all_from(0).await.records)
        .iter()
        .map(|b| b.bytes as u64)
        .collect();
    // The last two batches and one byte more: the second batch has to stay as well.
    s.store.set_config(LogConfig {
        retention_bytes: Some(sizes[2] + sizes[3] + 1),
        ..a_segment_per_batch()
    });
    s.enforce_retention(NOW).await;
    assert_eq!(s.bounds(), (2, 8, 8));
    s.store.set_config(LogConfig {
        retention_bytes: Some(sizes[2] + sizes[3]),
        ..a_segment_per_batch()
    });
    s.enforce_retention(NOW).await;
    assert_eq!(s.bounds(), (4, 8, 8));
    assert_eq!(
        values(&s.all_from(4).await.records),
        ["c-0", "c-1", "d-0", "d-1"]
    );
}

async fn sizes_and_counts_follow_the_stored_batches(kind: Kind) {
    let s = Subject::fresh(&kind, a_segment_per_batch()).await;
    assert_eq!(s.store.size_bytes(), 0);
    s.appended(batch(idempotent(1, 0), 0, 3, "a")).await;
    s.appended(batch(transactional(2, 0), 0, 1, "b")).await;
    s.appended(batch(PLAIN, 0, 2, "c")).await;
    let stored: usize = batches(&s.all_from(0).await.records)
        .iter()
        .map(|b| b.bytes)
        .sum();
    assert_eq!(s.store.size_bytes(), stored as u64);
    assert_eq!(s.store.producer_count(), 2);
    assert_eq!(s.store.open_transaction_count(), 1);
    s.store.delete_records_before(4, NOW).await.unwrap();
    let left: usize = batches(&s.all_from(4).await.records)
        .iter()
        .map(|b| b.bytes)
        .sum();
    assert_eq!(s.store.size_bytes(), left as u64);
    // Producers outlive their deleted batches.
    assert_eq!(s.store.producer_count(), 2);
}

async fn a_compressed_batch_is_stored_as_sent_and_its_records_take_offsets(kind: Kind) {
    let s = Subject::fresh(&kind, LogConfig::default()).await;
    s.appended(batch(PLAIN, 0, 1, "plain")).await;
    let gzip = compressed_batch(idempotent(3, 0), 0, 3, "gzip", Compression::Gzip);
    let info = s.appended(gzip).await;
    assert_eq!(
        (info.base_offset, info.last_offset, info.record_count),
        (1, 3, 3)
    );
    s.appended(batch(PLAIN, 0, 1, "after")).await;
    let stored = batches(&s.all_from(0).await.records);
    assert_eq!(stored[1].codec, 1, "gzip, as the producer sent it");
    assert_eq!(
        stored[1].values,
        [
            (1, "gzip-0".into()),
            (2, "gzip-1".into()),
            (3, "gzip-2".into())
        ]
    );
    assert_eq!(stored[2].base_offset, 4);
    // An offset inside the compressed batch reads from its start; a timestamp lookup finds
    // the very record inside it.
    assert_eq!(batches(&s.all_from(2).await.records)[0].base_offset, 1);
    assert_eq!(
        s.store.offset_for_timestamp(NOW + 1).await.unwrap(),
        Some((2, NOW + 1))
    );
}

async fn log_append_time_stamps_each_batch_with_the_time_of_its_append(kind: Kind) {
    let config = LogConfig {
        timestamp_type: starling_log::TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let s = Subject::fresh(&kind, config).await;
    let info = s.appended(batch_at(PLAIN, 0, 2, "a", NOW - HOUR)).await;
    assert_eq!(info.log_append_time, NOW);
    let stored = batches(&s.all_from(0).await.records);
    assert!(stored[0].log_append_time);
    assert_eq!(stored[0].max_timestamp, NOW);
    assert_eq!(
        s.store.offset_for_timestamp(NOW - HOUR).await.unwrap(),
        Some((0, NOW))
    );
    assert_eq!(
        s.store.max_timestamp().await.unwrap().map(|(t, _)| t),
        Some(NOW)
    );
}

async fn a_marker_with_a_bumped_epoch_fences_the_producers_older_epoch(kind: Kind) {
    let s = Subject::fresh(&kind, LogConfig::default()).await;
    s.appended(batch(transactional(9, 0), 0, 1, "t")).await;
    // The coordinator aborted the transaction on its own (a timeout) and bumped the epoch.
    assert!(s.marker(9, 1, false).await);
    assert!(!s.store.has_open_transaction(9));
    assert!(matches!(
        s.refused(batch(transactional(9, 0), 1, 1, "zombie")).await,
        ProducerError::InvalidEpoch {
            producer_id: 9,
            epoch: 0,
            current: 1
        }
    ));
    assert_eq!(
        s.appended(batch(transactional(9, 1), 0, 1, "t"))
            .await
            .base_offset,
        2
    );
    assert_eq!(s.store.active_producers()[0].epoch, 1);
}

async fn a_timestamp_lookup_never_answers_an_offset_below_the_log_start(kind: Kind) {
    let s = Subject::fresh(&kind, LogConfig::default()).await;
    s.appended(batch_at(PLAIN, 0, 2, "a", NOW)).await;
    s.appended(batch_at(PLAIN, 0, 2, "b", NOW + 10)).await;
    s.store.delete_records_before(3, NOW).await.unwrap();
    assert_eq!(
        s.store.offset_for_timestamp(NOW).await.unwrap(),
        Some((3, NOW + 11))
    );
    // Offset 4 is newer than offset 5: only offset 4, deleted now, was that recent.
    let out_of_order = vec![
        records(PLAIN, 0, 1, "new", NOW + 100).remove(0),
        Record {
            offset: 1,
            sequence: 0,
            ..records(PLAIN, 0, 1, "old", NOW + 50).remove(0)
        },
    ];
    s.appended(encode(out_of_order, Compression::None)).await;
    s.appended(batch_at(PLAIN, 0, 1, "later", NOW + 200)).await;
    assert_eq!(
        s.store.offset_for_timestamp(NOW + 60).await.unwrap(),
        Some((4, NOW + 100))
    );
    s.store.delete_records_before(5, NOW).await.unwrap();
    assert_eq!(
        s.store.offset_for_timestamp(NOW + 60).await.unwrap(),
        Some((6, NOW + 200))
    );
}

/// Settings of a compacted topic whose every batch is a segment of its own in the embedded log,
/// cleaned whatever its dirty ratio, tombstones kept an hour.
fn compacted() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: HOUR,
        ..a_segment_per_batch()
    }
}

/// The offsets of the transaction markers from the log start.
async fn markers(s: &Subject) -> Vec<i64> {
    let read = s.all_from(s.store.log_start_offset()).await;
    batches(&read.records)
        .iter()
        .filter(|b| b.control)
        .map(|b| b.base_offset)
        .collect()
}

/// Every record from the log start as (offset, value), control batches left out.
async fn offsets_and_values(s: &Subject) -> Vec<(i64, String)> {
    let read = s.all_from(s.store.log_start_offset()).await;
    batches(&read.records)
        .into_iter()
        .flat_map(|b| b.values)
        .collect()
}

// Where the embedded log's active segment (never cleaned) and PostgreSQL's cleanable range
// differ, at the last batch, the cases end with a key of its own, which no pass changes.

async fn compaction_keeps_the_latest_value_of_each_key_and_tombstones_until_their_horizon(
    kind: Kind,
) {
    let s = Subject::fresh(&kind, compacted()).await;
    s.appended(keyed(PLAIN, 0, &[("k1", Some("a1")), ("k2", Some("b1"))]))
        .await;
    s.appended(keyed(PLAIN, 0, &[("k1", Some("a2"))])).await;
    s.appended(keyed(PLAIN, 0, &[("k3", Some("c1")), ("k2", None)]))
        .await;
    s.appended(keyed(PLAIN, 0, &[("k4", Some("d1"))])).await;
    s.clean(NOW).await;
    let expected = |tombstone: bool| {
        let mut kept = vec![(2, "a2".to_string()), (3, "c1".to_string())];
        if tombstone {
            kept.push((4, "(tombstone)".to_string()));
        }
        kept.push((5, "d1".to_string()));
        kept
    };
    assert_eq!(offsets_and_values(&s).await, expected(true));
    // No offset moved: the log's bounds are what they were, and reading from an offset of a
    // batch that went reads the next batch.
    assert_eq!(s.bounds(), (0, 6, 6));
    assert_eq!(batches(&s.all_from(1).await.records)[0].base_offset, 2);
    // Within the tombstone's horizon another pass keeps it; after it, the tombstone goes.
    s.clean(NOW + HOUR - 1).await;
    assert_eq!(offsets_and_values(&s).await, expected(true));
    s.clean(NOW + HOUR).await;
    assert_eq!(offsets_and_values(&s).await, expected(false));
    assert_eq!(
        s.appended(keyed(PLAIN, 0, &[("k1", Some("a3"))]))
            .await
            .base_offset,
        6
    );
    // A compacted topic refuses records without a key, naming each.
    match s.append(batch(PLAIN, 0, 2, "keyless")).await {
        Err(AppendError::InvalidRecord { record_errors, .. }) => assert_eq!(record_errors.len(), 2),
        other => panic!("a keyless record was not refused: {other:?}"),
    }
    assert_eq!(s.store.log_end_offset(), 7);
}

async fn compaction_drops_aborted_data_then_its_marker_and_stops_at_an_open_transaction(
    kind: Kind,
) {
    let s = Subject::fresh(&kind, compacted()).await;
    s.appended(keyed(transactional(9, 0), 0, &[("k1", Some("aborted"))]))
        .await;
    assert!(s.marker(9, 0, false).await);
    s.appended(keyed(PLAIN, 0, &[("k1", Some("v1"))])).await;
    s.appended(keyed(PLAIN, 0, &[("k1", Some("v2"))])).await;
    s.appended(keyed(transactional(10, 0), 0, &[("k1", Some("open"))]))
        .await;
    s.appended(keyed(PLAIN, 0, &[("k5", Some("late"))])).await;
    assert_eq!(s.bounds(), (0, 4, 6));
    s.clean(NOW).await;
    // The aborted data and the superseded value went; the marker stays this pass (its
    // transaction's data was seen), and nothing from the open transaction on was touched.
    let expected = vec![
        (3, "v2".to_string()),
        (4, "open".to_string()),
        (5, "late".to_string()),
    ];
    assert_eq!(offsets_and_values(&s).await, expected);
    assert_eq!(markers(&s).await, [1]);
    let committed = s.read(0, Isolation::ReadCommitted).await.unwrap();
    assert_eq!(values(&committed.records), ["v2"]);
    // Once its horizon passed, the marker of a transaction with no data left goes too.
    s.clean(NOW + HOUR).await;
    assert_eq!(offsets_and_values(&s).await, expected);
    assert_eq!(markers(&s).await, Vec::<i64>::new());
    assert!(s.store.has_open_transaction(10));
    assert_eq!(s.bounds(), (0, 4, 6));
}

async fn a_compacted_partition_still_knows_its_producers_after_a_restart(kind: Kind) {
    let mut s = Subject::fresh(&kind, compacted()).await;
    let p = idempotent(5, 0);
    s.appended(keyed(p, 0, &[("k1", Some("a"))])).await;
    let b = s.appended(keyed(p, 1, &[("k1", Some("b"))])).await;
    // Every batch of the producer goes.
    s.appended(keyed(PLAIN, 0, &[("k1", Some("c"))])).await;
    s.appended(keyed(PLAIN, 0, &[("k2", Some("own"))])).await;
    s.clean(NOW).await;
    assert_eq!(
        offsets_and_values(&s).await,
        [(2, "c".to_string()), (3, "own".to_string())]
    );
    s.restart().await;
    let retried = s.appended(keyed(p, 1, &[("k1", Some("b"))])).await;
    assert_eq!(
        (retried.base_offset, retried.record_count),
        (b.base_offset, 0)
    );
    assert!(matches!(
        s.refused(keyed(p, 5, &[("k1", Some("gap"))])).await,
        ProducerError::OutOfOrder { expected: 2, .. }
    ));
    assert_eq!(
        s.appended(keyed(p, 2, &[("k1", Some("d"))]))
            .await
            .base_offset,
        4
    );
}

// ---- The runs ---------------------------------------------------------------------------

async fn run_all(kind: Kind) {
    for (name, case) in CASES {
        eprintln!("case: {name}");
        case(kind.clone()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    run_all(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("partitions", 8).await;
    run_all(Kind::Postgres(pool)).await;
}
