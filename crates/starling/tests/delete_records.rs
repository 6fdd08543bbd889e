//! DeleteRecords through librdkafka's AdminClient: the log start offset moves to the offset
//! asked for (the high watermark for librdkafka's "end"), consumers starting from the beginning
//! start there, across a restart too; offsets past the end and unknown partitions get Kafka's
//! errors.

mod common;

use std::time::Duration;

use common::*;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{DeleteRecordsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_log_start_for_consumers_and_across_a_restart() {
    let _dog = watchdog(Duration::from_secs(120));
    let mut broker = Broker::start(&[]);
    broker.pin_port();
    let topic = "trimmed";
    create_topic(&broker.bootstrap(), topic, 2).await;
    let p = producer(&broker.bootstrap(), &[]);
    for i in 0..10 {
        within(
            Duration::from_secs(30),
            "send",
            send_to_partition0(&p, topic, "k", format!("v{i}").as_bytes()).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    }
    let admin = admin(&broker.bootstrap());
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, Offset::Offset(4))
        .unwrap();
    offsets.add_partition_offset(topic, 1, Offset::End).unwrap();
    let result = admin.delete_records(&offsets, &admin_opts()).await.unwrap();
    let low = |tpl: &TopicPartitionList, p: i32| {
        let e = tpl.find_partition(topic, p).unwrap();
        (e.error().is_ok(), e.offset())
    };
    assert_eq!(low(&result, 0), (true, Offset::Offset(4)));
    assert_eq!(
        low(&result, 1),
        (true, Offset::Offset(0)),
        "an empty partition"
    );
    assert_eq!(watermarks(&broker.bootstrap(), topic, 0), (4, 10));

    let read = consume_from_start_at_earliest(&broker.bootstrap(), topic, 6);
    assert_eq!(read.first().map(|m| m.offset), Some(4));
    assert_eq!(read.first().map(Msg::value_str).as_deref(), Some("v4"));

    broker.kill9();
    broker.start_again();
    assert_eq!(watermarks(&broker.bootstrap(), topic, 0), (4, 10));

    // Past the end, and a partition the broker does not have.
    let mut bad = TopicPartitionList::new();
    bad.add_partition_offset(topic, 0, Offset::Offset(11))
        .unwrap();
    bad.add_partition_offset(topic, 7, Offset::Offset(1))
        .unwrap();
    let admin = common::admin(&broker.bootstrap());
    let refused = admin.delete_records(&bad, &admin_opts()).await.unwrap();
    let code = |p: i32| {
        refused
            .find_partition(topic, p)
            .unwrap()
            .error()
            .err()
            .and_then(|e| e.rdkafka_error_code())
    };
    assert_eq!(code(0), Some(RDKafkaErrorCode::OffsetOutOfRange));
    // librdkafka refuses a partition its metadata lacks before sending anything…
    assert_eq!(code(7), Some(RDKafkaErrorCode::UnknownPartition));
    // … so ask the broker itself, with -1 (the high watermark) for a known partition too.
    let partition = |index, offset| {
        DeleteRecordsPartition::default()
            .with_partition_index(index)
            .with_offset(offset)
    };
    let request = DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
        .with_name(TopicName(StrBytes::from_static_str(topic)))
        .with_partitions(vec![partition(7, 1), partition(1, -1), partition(0, -5)])]);
    let response = RawClient::connect(broker.addr()).call(2, &request);
    let results: Vec<(i32, i64, i16)> = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.low_watermark, p.error_code))
        .collect();
    assert_eq!(
        results,
        vec![
            (7, -1, ResponseError::UnknownTopicOrPartition.code()),
            (1, 0, 0),
            (0, -1, ResponseError::OffsetOutOfRange.code()),
        ]
    );
    assert_eq!(watermarks(&broker.bootstrap(), topic, 0), (4, 10));
}

/// Reads `count` messages of partition 0 with `auto.offset.reset=earliest` from no position.
fn consume_from_start_at_earliest(bootstrap: &str, topic: &str, count: usize) -> Vec<Msg> {
    let c = consumer(bootstrap, &[("auto.offset.reset", "earliest")]);
    assign(&c, topic, &[(0, Offset::Beginning)]);
    consume_until(&c, Duration::from_secs(30), |got| got.len() >= count)
}
