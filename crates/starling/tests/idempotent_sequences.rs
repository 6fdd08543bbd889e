//! An idempotent producer's batches that break the sequence rules, sent over a raw socket
//! with a producer id from InitProducerId, as a misbehaving client would: each is refused with
//! Kafka's error code and nothing of it is written (the log end offset does not move), and a
//! retry of a batch already written gets its original offsets back without a second copy.
//! The rules themselves are unit-tested in starling-log (`producer_state.rs`,
//! `tests/idempotence.rs`); these pin down what reaches the wire.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::*;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::InitProducerIdRequest;
use kafka_protocol::ResponseError;

const TOPIC: &str = "sequences";
const PRODUCE_VERSION: i16 = 9;

/// A broker with a one-partition topic, a raw connection to it and a producer id it handed out.
struct Setup {
    broker: Broker,
    raw: RawClient,
    producer_id: i64,
}

impl Setup {
    async fn new() -> Setup {
        let broker = Broker::start(&[]);
        create_topic(&broker.bootstrap(), TOPIC, 1).await;
        let mut raw = RawClient::connect(broker.addr());
        let init = raw.call(
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(-1)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        );
        assert_eq!(init.error_code, 0, "InitProducerId: {init:?}");
        assert_eq!(init.producer_epoch, 0, "{init:?}");
        let producer_id = init.producer_id.0;
        assert!(producer_id >= 0, "{init:?}");
        Setup {
            broker,
            raw,
            producer_id,
        }
    }

    /// Produces `records` records of this producer at `epoch` from sequence `sequence`.
    fn produce(&mut self, epoch: i16, sequence: i32, records: usize) -> PartitionProduceResponse {
        let batch = producer_batch(self.producer_id, epoch, sequence, records, false);
        raw_produce(&mut self.raw, PRODUCE_VERSION, TOPIC, 0, batch)
    }

    /// Produces and expects the batch to be written at `base_offset`.
    fn written_at(&mut self, epoch: i16, sequence: i32, records: usize, base_offset: i64) {
        let r = self.produce(epoch, sequence, records);
        assert_eq!(
            (r.error_code, r.base_offset),
            (0, base_offset),
            "epoch {epoch} sequence {sequence}: {r:?}"
        );
    }

    /// Produces and expects the batch to be refused with `error`.
    fn refused(&mut self, epoch: i16, sequence: i32, records: usize, error: ResponseError) {
        let r = self.produce(epoch, sequence, records);
        assert_eq!(
            r.error_code,
            error.code(),
            "epoch {epoch} sequence {sequence}: expected {error:?}, got {r:?}"
        );
        assert_eq!(r.base_offset, -1, "{r:?}");
    }

    fn log_end_offset(&self) -> i64 {
        watermarks(&self.broker.bootstrap(), TOPIC, 0).1
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_gap_is_out_of_order_and_writes_nothing() {
    let _dog = watchdog(Duration::from_secs(60));
    let mut s = Setup::new().await;
    s.written_at(0, 0, 3, 0);
    s.refused(0, 5, 2, ResponseError::OutOfOrderSequenceNumber);
    assert_eq!(s.log_end_offset(), 3);
    // The producer goes on where it really left off.
    s.written_at(0, 3, 2, 3);
    assert_eq!(s.log_end_offset(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_epoch_is_fenced_and_a_new_epoch_must_start_at_sequence_zero() {
    let _dog = watchdog(Duration::from_secs(60));
    let mut s = Setup::new().await;
    s.written_at(0, 0, 2, 0);
    // The producer bumps its epoch: sequences start again from 0.
    s.written_at(1, 0, 1, 2);
    // Epoch 0, even continuing its own sequence, is fenced now.
    s.refused(0, 2, 1, ResponseError::InvalidProducerEpoch);
    assert_eq!(s.log_end_offset(), 3);
    // A newer epoch that does not start at sequence 0.
    s.refused(2, 5, 1, ResponseError::OutOfOrderSequenceNumber);
    s.refused(2, 1, 1, ResponseError::OutOfOrderSequenceNumber);
    assert_eq!(s.log_end_offset(), 3);
    s.written_at(2, 0, 1, 3);
    // Epoch 1 is fenced in turn.
    s.refused(1, 1, 1, ResponseError::InvalidProducerEpoch);
    assert_eq!(s.log_end_offset(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_of_the_last_five_batches_get_their_offsets_and_older_ones_are_out_of_order() {
    let _dog = watchdog(Duration::from_secs(60));
    let mut s = Setup::new().await;
    // Seven batches of two records: sequences 0-1, 2-3, ..., 12-13 at offsets 0-13.
    for b in 0..7 {
        s.written_at(0, b * 2, 2, i64::from(b) * 2);
    }
    assert_eq!(s.log_end_offset(), 14);
    // The last five (sequences 4 to 13), each retried, newest first: its own base offset.
    for b in (2..7).rev() {
        s.written_at(0, b * 2, 2, i64::from(b) * 2);
    }
    assert_eq!(s.log_end_offset(), 14, "a retry writes nothing");
    // The two before them are no longer remembered: a retry of either is out of order.
    s.refused(0, 0, 2, ResponseError::OutOfOrderSequenceNumber);
    s.refused(0, 2, 2, ResponseError::OutOfOrderSequenceNumber);
    // A retry must match a batch's range exactly: part of one is out of order too.
    s.refused(0, 12, 1, ResponseError::OutOfOrderSequenceNumber);
    assert_eq!(s.log_end_offset(), 14);
    // Every record is stored once.
    let fetched = raw_fetch(s.broker.addr(), TOPIC, 0, 0, 0);
    let batches = count_records(&fetched.records.expect("records"));
    let expected: Vec<(i64, i32)> = (0..7).map(|b| (b * 2, 2)).collect();
    assert_eq!(batches, expected);
    s.written_at(0, 14, 1, 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_set_of_two_batches_with_a_producer_id_is_an_invalid_record() {
    let _dog = watchdog(Duration::from_secs(60));
    let mut s = Setup::new().await;
    let mut two = BytesMut::new();
    two.extend_from_slice(&producer_batch(s.producer_id, 0, 0, 2, false));
    two.extend_from_slice(&producer_batch(s.producer_id, 0, 2, 2, false));
    let r = raw_produce(&mut s.raw, PRODUCE_VERSION, TOPIC, 0, two.freeze());
    assert_eq!(r.error_code, ResponseError::InvalidRecord.code(), "{r:?}");
    assert_eq!(r.base_offset, -1, "{r:?}");
    assert!(r.error_message.is_some(), "{r:?}");
    assert_eq!(s.log_end_offset(), 0);
    // Nothing of it was taken as written: the first batch alone is new, not a retry.
    s.written_at(0, 0, 2, 0);
    assert_eq!(s.log_end_offset(), 2);
}
