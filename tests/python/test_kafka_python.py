"""kafka-python: an independent, pure-Python client implementation, against the real broker.

kafka-python negotiates API versions itself (it probes ApiVersions), so it exercises the
broker's version table differently from librdkafka.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    InvalidPartitionsError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

from support import unique_topic

TIMEOUT_S = 30


def admin_client(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="starling-tests", request_timeout_ms=30_000)


def create(admin: KafkaAdminClient, name: str, partitions: int) -> None:
    admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}},
                        timeout_ms=30_000, wait_for_metadata=True)


def read_back(bootstrap: str, topic: str, partitions: int, count: int):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=30_000,
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(records)
        assert len(got) == count, f"received {len(got)} of {count} messages within {TIMEOUT_S}s"
        extra = [r for rs in consumer.poll(timeout_ms=1000).values() for r in rs]
        assert extra == [], extra
        return got
    finally:
        consumer.close()


def test_admin_create_list_partitions_delete(bootstrap):
    admin = admin_client(bootstrap)
    try:
        name = unique_topic("kp-admin")
        create(admin, name, 2)
        assert name in admin.list_topics()

        with pytest.raises(TopicAlreadyExistsError):
            create(admin, name, 2)

        admin.create_partitions({name: 4}, timeout_ms=30_000)
        deadline = time.monotonic() + TIMEOUT_S
        count = None
        while time.monotonic() < deadline:
            described = {t["name"]: t for t in admin.describe_topics([name])}
            count = len(described[name]["partitions"])
            if count == 4:
                break
            time.sleep(0.1)
        assert count == 4
        with pytest.raises(InvalidPartitionsError):
            admin.create_partitions({name: 3}, timeout_ms=30_000)

        admin.delete_topics([name], timeout_ms=30_000)
        deadline = time.monotonic() + TIMEOUT_S
        while name in admin.list_topics() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert name not in admin.list_topics()

        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_topics([name], timeout_ms=30_000)
    finally:
        admin.close()


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_producer_consumer_round_trip(bootstrap, compression):
    topic = unique_topic(f"kp-rt-{compression or 'none'}")
    admin = admin_client(bootstrap)
    try:
        create(admin, topic, 2)
    finally:
        admin.close()

    # Idempotence off: the broker has no InitProducerId yet (see test_default_producer_config).
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=10, enable_idempotence=False,
                             compression_type=compression, request_timeout_ms=30_000)
    base_ts = int(time.time() * 1000) - 10_000
    sent = []
    futures = []
    for i in range(300):
        rec = dict(
            partition=i % 2,
            key=None if i % 40 == 3 else f"k{i}".encode(),
            value=f"kafka-python value {i} ".encode() * (1 + i % 5),
            headers=[("seq", str(i).encode())],
            timestamp_ms=base_ts + i,
        )
        sent.append(rec)
        futures.append(producer.send(topic, **rec))
    producer.flush(timeout=TIMEOUT_S)
    placed = [(md.partition, md.offset) for md in (f.get(timeout=TIMEOUT_S) for f in futures)]
    producer.close(timeout=10)

    expected_offsets = {0: 0, 1: 0}
    for rec, (p, off) in zip(sent, placed):
        assert (p, off) == (rec["partition"], expected_offsets[p])
        expected_offsets[p] += 1

    got = read_back(bootstrap, topic, 2, len(sent))
    by_pos = {pos: rec for pos, rec in zip(placed, sent)}
    per_partition = {0: [], 1: []}
    for r in got:
        rec = by_pos[(r.partition, r.offset)]
        per_partition[r.partition].append(r.offset)
        assert r.key == rec["key"]
        assert r.value == rec["value"]
        assert list(r.headers) == rec["headers"]
        assert r.timestamp == rec["timestamp_ms"]
    assert per_partition == {p: list(range(n)) for p, n in expected_offsets.items()}


def test_default_producer_config(bootstrap):
    """A KafkaProducer with nothing but bootstrap_servers, as most applications create it:
    kafka-python 3 makes it idempotent (KIP-679), so it gets a producer id from InitProducerId
    and its batches carry sequence numbers."""
    topic = unique_topic("kp-default")
    admin = admin_client(bootstrap)
    try:
        create(admin, topic, 1)
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        futures = [producer.send(topic, value=f"m{i}".encode(), partition=0) for i in range(50)]
        producer.flush(timeout=TIMEOUT_S)
        offsets = [f.get(timeout=TIMEOUT_S).offset for f in futures]
        assert offsets == list(range(50))
    finally:
        producer.close(timeout=10)
    got = read_back(bootstrap, topic, 1, 50)
    assert [(r.offset, r.value) for r in got] == [(i, f"m{i}".encode()) for i in range(50)]


def test_offsets_lookups(bootstrap):
    topic = unique_topic("kp-offsets")
    admin = admin_client(bootstrap)
    try:
        create(admin, topic, 1)
    finally:
        admin.close()
    base = int(time.time() * 1000) - 100_000
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, request_timeout_ms=30_000)
    for i in range(8):
        producer.send(topic, value=f"v{i}".encode(), partition=0, timestamp_ms=base + 1000 * i).get(timeout=TIMEOUT_S)
    producer.close(timeout=10)

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        assert consumer.beginning_offsets([tp]) == {tp: 0}
        assert consumer.end_offsets([tp]) == {tp: 8}
        found = consumer.offsets_for_times({tp: base + 2500})
        assert found[tp].offset == 3 and found[tp].timestamp == base + 3000
        assert consumer.offsets_for_times({tp: base + 1_000_000})[tp] is None

        consumer.assign([tp])
        consumer.seek(tp, 5)
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < 3 and time.monotonic() < deadline:
            for rs in consumer.poll(timeout_ms=500).values():
                got.extend(rs)
        assert [(r.offset, r.value) for r in got] == [(i, f"v{i}".encode()) for i in range(5, 8)]
    finally:
        consumer.close()


def test_librdkafka_to_kafka_python_interop(bootstrap):
    """Batches written by librdkafka (gzip) are read back intact by kafka-python."""
    topic = unique_topic("kp-interop")
    admin = admin_client(bootstrap)
    try:
        create(admin, topic, 1)
    finally:
        admin.close()
    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": "gzip", "linger.ms": 20})
    values = [f"from librdkafka {i}".encode() for i in range(250)]
    for v in values:
        producer.produce(topic, value=v, key=b"same-key", partition=0)
    assert producer.flush(TIMEOUT_S) == 0
    got = read_back(bootstrap, topic, 1, len(values))
    assert [(r.offset, r.key, r.value) for r in got] == [(i, b"same-key", v) for i, v in enumerate(values)]
