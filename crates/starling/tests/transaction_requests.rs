//! Transactional requests a misbehaving (or raw) client may send, over a plain socket: each gets
//! Kafka's error code and leaves the log and the committed offsets as they were — a write to a
//! partition never added to the transaction, EndTxn with no transaction or for an unknown id,
//! offsets for a group never added, a bad timeout, unknown partitions, a fenced epoch. The
//! state machine behind them is unit-tested in starling-txn; these pin down what reaches the
//! wire.

mod common;

use std::time::Duration;

use common::*;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, FindCoordinatorRequest,
    GroupId, InitProducerIdRequest, OffsetFetchRequest, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

const TOPIC: &str = "txn-raw";
const GROUP: &str = "txn-raw-group";
const PRODUCE_VERSION: i16 = 9;

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

struct Setup {
    broker: Broker,
    raw: RawClient,
    id: String,
    producer_id: i64,
    epoch: i16,
}

impl Setup {
    async fn new(args: &[&str]) -> Setup {
        let broker = Broker::start(args);
        create_topic(&broker.bootstrap(), TOPIC, 2).await;
        let raw = RawClient::connect(broker.addr());
        let mut s = Setup {
            broker,
            raw,
            id: "raw-app".to_string(),
            producer_id: -1,
            epoch: -1,
        };
        let init = s.init(4, 60_000);
        assert_eq!(init.error_code, 0, "{init:?}");
        s.producer_id = init.producer_id.0;
        s.epoch = init.producer_epoch;
        s
    }

    fn init(
        &mut self,
        version: i16,
        timeout_ms: i32,
    ) -> kafka_protocol::messages::InitProducerIdResponse {
        self.raw.call(
            version,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(sb(&self.id))))
                .with_transaction_timeout_ms(timeout_ms)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        )
    }

    /// AddPartitionsToTxn at `version` for `partitions` of `topic`: each partition's code.
    fn add_partitions(
        &mut self,
        version: i16,
        epoch: i16,
        topic: &str,
        partitions: &[i32],
    ) -> Vec<i16> {
        let mut t = AddPartitionsToTxnTopic::default();
        t.name = TopicName(sb(topic));
        t.partitions = partitions.to_vec();
        let mut r = AddPartitionsToTxnRequest::default();
        r.v3_and_below_transactional_id = TransactionalId(sb(&self.id));
        r.v3_and_below_producer_id = ProducerId(self.producer_id);
        r.v3_and_below_producer_epoch = epoch;
        r.v3_and_below_topics = vec![t];
        let resp = self.raw.call(version, &r);
        resp.results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            })
            .collect()
    }

    fn end(&mut self, commit: bool) -> i16 {
        let r = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(sb(&self.id)))
            .with_producer_id(ProducerId(self.producer_id))
            .with_producer_epoch(self.epoch)
            .with_committed(commit);
        self.raw.call(3, &r).error_code
    }

    /// A transactional batch for `partition`, in a request naming the transactional id (as
    /// clients send them): the partition's code.
    fn produce(&mut self, partition: i32, sequence: i32) -> i16 {
        let id = self.id.clone();
        self.produce_as(Some(&id), partition, sequence)
    }

    /// The same with the request's transactional id `id` (`None`: left out).
    fn produce_as(&mut self, id: Option<&str>, partition: i32, sequence: i32) -> i16 {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::ProduceRequest;
        let batch = producer_batch(self.producer_id, self.epoch, sequence, 2, true);
        let request = ProduceRequest::default()
            .with_transactional_id(id.map(|id| TransactionalId(sb(id))))
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(sb(TOPIC)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))])]);
        let response = self.raw.call(PRODUCE_VERSION, &request);
        response.responses[0].partition_responses[0].error_code
    }

    fn txn_commit(&mut self, offset: i64) -> Vec<i16> {
        let mut p = TxnOffsetCommitRequestPartition::default();
        p.partition_index = 0;
        p.committed_offset = offset;
        let mut t = TxnOffsetCommitRequestTopic::default();
        t.name = TopicName(sb(TOPIC));
        t.partitions = vec![p];
        let mut r = TxnOffsetCommitRequest::default();
        r.transactional_id = TransactionalId(sb(&self.id));
        r.group_id = GroupId(sb(GROUP));
        r.producer_id = ProducerId(self.producer_id);
        r.producer_epoch = self.epoch;
        r.generation_id = -1;
        r.topics = vec![t];
        let resp = self.raw.call(3, &r);
        resp.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }

    /// The group's committed offset for partition 0 (-1 for none).
    fn committed(&mut self) -> i64 {
        let mut r = OffsetFetchRequest::default();
        r.group_id = GroupId(sb(GROUP));
        r.topics = None;
        let resp = self.raw.call(5, &r);
        resp.topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == 0)
            .map_or(-1, |p| p.committed_offset)
    }

    fn log_end(&self, partition: i32) -> i64 {
        watermarks(&self.broker.bootstrap(), TOPIC, partition).1
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_write_to_a_partition_never_added_is_invalid_txn_state() {
    let _dog = watchdog(Duration::from_secs(60));
    let mut s = Setup::new(&[]).await;
    // A transactional batch in a request without its transactional id: Kafka refuses the whole
    // request, authorizer or not.
    assert_eq!(
        s.produce_as(None, 0, 0),
        code(ResponseError::TransactionalIdAuthorizationFailed)
    );
    // No transaction at all.
    assert_eq!(s.produce(0, 0), code(ResponseError::InvalidTxnState));
    // A transaction on partition 1 only.
    assert_eq!(s.add_partitions(3, s.epoch, TOPIC, &[1]), vec![0]);
    assert_eq!(s.produce(0, 0), code(ResponseError::InvalidTxnState));
    assert_eq!(s.produce(1, 0), 0);
    assert_eq!(s.end(true), 0);
    // (The watermarks are read at read_committed, librdkafka's default: wait for the marker.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.log_end(1) != 3 {
        assert!(std::time::Instant::now() < deadline, "marker never written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        s.log_end(0),
        0,
        "nothing written where the write was refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_txn_without_a_transaction_or_for_an_unknown_id_is_refused() {
    let _dog = watchdog(Duration::from_secs(60));
    let mut s = Setup::new(&[]).await;
    assert_eq!(s.end(true), code(ResponseError::InvalidTxnState));
    assert_eq!(s.end(false), code(ResponseError::InvalidTxnState));
    s.id = "nobody".into();
    assert_eq!(s.end(true), code(ResponseError::InvalidProducerIdMapping));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_a_group_never_added_are_invalid_txn_state_and_not_stored() {
    let _dog = watchdog(Duration::from_secs(60));
    let mut s = Setup::new(&[]).await;
    assert_eq!(s.add_partitions(3, s.epoch, TOPIC, &[0]), vec![0]);
    assert_eq!(s.txn_commit(7), vec![code(ResponseError::InvalidTxnState)]);
    assert_eq!(s.end(true), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.committed(), -1);

    // Added properly, the offsets land with the commit (and only then).
    let r = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(sb(&s.id)))
        .with_producer_id(ProducerId(s.producer_id))
        .with_producer_epoch(s.epoch)
        .with_group_id(GroupId(sb(GROUP)));
    // The last transaction's markers may still be in flight: retry as clients do.
    let mut added = s.raw.call(3, &r).error_code;
    for _ in 0..50 {
        if added != code(ResponseError::ConcurrentTransactions) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        added = s.raw.call(3, &r).error_code;
    }
    assert_eq!(added, 0);
    assert_eq!(s.txn_commit(7), vec![0]);
    assert_eq!(s.committed(), -1, "pending until the commit");
    assert_eq!(s.end(true), 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.committed() != 7 {
        assert!(
            std::time::Instant::now() < deadline,
            "offset never committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_of_zero_or_above_the_maximum_is_invalid_transaction_timeout() {
    let _dog = watchdog(Duration::from_secs(60));
    let mut s = Setup::new(&["--override", "transaction.max.timeout.ms=60000"]).await;
    s.id = "other-app".into();
    for timeout in [0, -1, 60_001] {
        let r = s.init(4, timeout);
        assert_eq!(
            r.error_code,
            code(ResponseError::InvalidTransactionTimeout),
            "{timeout}: {r:?}"
        );
        assert_eq!(r.producer_id.0, -1);
    }
    assert_eq!(s.init(4, 60_000).error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_an_unknown_partition_adds_nothing() {
    let _dog = watchdog(Duration::from_secs(60));
    let mut s = Setup::new(&[]).await;
    assert_eq!(
        s.add_partitions(3, s.epoch, TOPIC, &[0, 7]),
        vec![
            code(ResponseError::OperationNotAttempted),
            code(ResponseError::UnknownTopicOrPartition)
        ]
    );
    assert_eq!(
        s.add_partitions(3, s.epoch, "no-such-topic", &[0]),
        vec![code(ResponseError::UnknownTopicOrPartition)]
    );
    // Nothing was added: there is no transaction to end, and partition 0 takes no write.
    assert_eq!(s.end(true), code(ResponseError::InvalidTxnState));
    assert_eq!(s.produce(0, 0), code(ResponseError::InvalidTxnState));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_epoch_is_producer_fenced_or_invalid_producer_epoch_by_version() {
    let _dog = watchdog(Duration::from_secs(60));
    let mut s = Setup::new(&[]).await;
    let old = s.epoch;
    let again = s.init(4, 60_000);
    assert_eq!(again.producer_epoch, old + 1, "{again:?}");
    assert_eq!(
        s.add_partitions(3, old, TOPIC, &[0]),
        vec![code(ResponseError::ProducerFenced)]
    );
    assert_eq!(
        s.add_partitions(1, old, TOPIC, &[0]),
        vec![code(ResponseError::InvalidProducerEpoch)],
        "versions before KIP-588 get INVALID_PRODUCER_EPOCH"
    );
    // The fenced epoch cannot write either.
    assert_eq!(s.produce(0, 0), code(ResponseError::InvalidProducerEpoch));
    assert_eq!(s.log_end(0), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_coordinator_answers_for_transactional_ids() {
    let _dog = watchdog(Duration::from_secs(60));
    let s = Setup::new(&[]).await;
    let mut raw = RawClient::connect(s.broker.addr());
    let r = raw.call(
        3,
        &FindCoordinatorRequest::default()
            .with_key(sb("some-app"))
            .with_key_type(1),
    );
    assert_eq!(r.error_code, 0, "{r:?}");
    assert_eq!(r.port, i32::from(s.broker.addr().port()));
    let empty = raw.call(
        3,
        &FindCoordinatorRequest::default()
            .with_key(sb(""))
            .with_key_type(1),
    );
    assert_eq!(empty.error_code, code(ResponseError::InvalidRequest));
    let unknown = raw.call(
        3,
        &FindCoordinatorRequest::default()
            .with_key(sb("x"))
            .with_key_type(5),
    );
    assert_eq!(unknown.error_code, code(ResponseError::InvalidRequest));
}
