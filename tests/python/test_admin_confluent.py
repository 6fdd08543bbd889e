"""confluent-kafka's AdminClient (librdkafka 2.16) for the admin calls beyond topics and
configs: describe_cluster (with authorized operations) and delete_records (moving the log start
offset, and its errors).
"""

from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from support import admin, unique_topic

TIMEOUT_S = 30


def create(client, name: str, partitions: int = 1) -> None:
    client.create_topics([NewTopic(name, partitions)])[name].result(TIMEOUT_S)


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(count):
        producer.produce(topic, f"v{i}".encode(), partition=0)
    assert producer.flush(TIMEOUT_S) == 0


def watermarks(bootstrap: str, topic: str) -> tuple[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-watermarks"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        consumer.close()


def test_describe_cluster_names_this_node_as_controller_and_only_broker(bootstrap):
    client = admin(bootstrap)
    described = client.describe_cluster(include_authorized_operations=True).result(TIMEOUT_S)
    assert described.cluster_id
    host, port = bootstrap.rsplit(":", 1)
    assert [(n.id, n.host, n.port) for n in described.nodes] == [(1, host, int(port))]
    assert described.controller.id == 1
    # No authorizer: every cluster operation is allowed, ALTER_CONFIGS and DESCRIBE_CONFIGS too.
    names = {op.name for op in described.authorized_operations}
    assert {"DESCRIBE", "ALTER", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE"} <= names


def test_delete_records_moves_the_log_start_and_refuses_what_kafka_refuses(bootstrap):
    client = admin(bootstrap)
    topic = unique_topic("trimmed")
    create(client, topic)
    produce(bootstrap, topic, 10)

    futures = client.delete_records([TopicPartition(topic, 0, 4)])
    deleted = futures[TopicPartition(topic, 0)].result(TIMEOUT_S)
    assert deleted.low_watermark == 4
    assert watermarks(bootstrap, topic) == (4, 10)

    # A consumer from the beginning starts at the new log start.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-trimmed",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = []
        while len(got) < 6:
            msg = consumer.poll(TIMEOUT_S)
            assert msg is not None and not msg.error(), msg and msg.error()
            got.append((msg.offset(), msg.value()))
        assert got[0] == (4, b"v4")
    finally:
        consumer.close()

    # Past the high watermark: OFFSET_OUT_OF_RANGE, nothing changes.
    futures = client.delete_records([TopicPartition(topic, 0, 11)])
    with pytest.raises(KafkaException) as caught:
        futures[TopicPartition(topic, 0)].result(TIMEOUT_S)
    assert caught.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE
    assert watermarks(bootstrap, topic) == (4, 10)

    # A partition the topic does not have: librdkafka finds no leader for it in the broker's
    # Metadata and refuses without sending (the broker's own answer, UNKNOWN_TOPIC_OR_PARTITION,
    # is tested with raw requests in crates/starling/tests/delete_records.rs).
    futures = client.delete_records([TopicPartition(topic, 3, 1)])
    with pytest.raises(KafkaException) as caught:
        futures[TopicPartition(topic, 3)].result(TIMEOUT_S)
    assert caught.value.args[0].code() == KafkaError._NOENT
    assert watermarks(bootstrap, topic) == (4, 10)

    # OFFSET_END deletes everything: the log start meets the end.
    futures = client.delete_records([TopicPartition(topic, 0, OFFSET_END)])
    assert futures[TopicPartition(topic, 0)].result(TIMEOUT_S).low_watermark == 10
    assert watermarks(bootstrap, topic) == (10, 10)
