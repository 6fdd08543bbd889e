"""confluent-kafka (librdkafka 2.x bundled in the wheel) against the real broker.

Consumer groups are not part of the broker yet, so consumers use assign() with explicit
offsets and never commit (librdkafka still requires a group.id to be configured).
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

import pytest
from confluent_kafka import (
    OFFSET_END,
    TIMESTAMP_CREATE_TIME,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import NewPartitions, NewTopic

from support import (
    OP_TIMEOUT,
    admin,
    consume_all,
    create_topic,
    error_code,
    make_consumer,
    produce_and_track,
    unique_topic,
    wait_for_partitions,
)

PROGRAMS = pathlib.Path(__file__).resolve().parent / "programs"


# -- admin ----------------------------------------------------------------------------------


def test_admin_create_list_delete(bootstrap):
    client = admin(bootstrap)
    t1, t2 = unique_topic("ck-admin-a"), unique_topic("ck-admin-b")
    futures = client.create_topics(
        [NewTopic(t1, num_partitions=3, replication_factor=1), NewTopic(t2, num_partitions=1, replication_factor=1)],
        operation_timeout=OP_TIMEOUT,
    )
    for name, fut in futures.items():
        assert fut.result(timeout=OP_TIMEOUT) is None, name
    wait_for_partitions(client, t1, 3)
    wait_for_partitions(client, t2, 1)

    listed = client.list_topics(timeout=10).topics
    assert sorted(listed[t1].partitions) == [0, 1, 2]
    assert sorted(listed[t2].partitions) == [0]
    for p in listed[t1].partitions.values():
        assert p.leader >= 0 and p.replicas == [p.leader] and p.isrs == [p.leader], p

    # A second create of the same name fails with TOPIC_ALREADY_EXISTS.
    dup = client.create_topics([NewTopic(t1, num_partitions=1, replication_factor=1)], operation_timeout=OP_TIMEOUT)
    with pytest.raises(KafkaException) as exc:
        dup[t1].result(timeout=OP_TIMEOUT)
    assert error_code(exc.value) == KafkaError.TOPIC_ALREADY_EXISTS, exc.value

    # Deleting both.
    futures = client.delete_topics([t1, t2], operation_timeout=OP_TIMEOUT)
    for name, fut in futures.items():
        assert fut.result(timeout=OP_TIMEOUT) is None, name
    deadline = time.monotonic() + OP_TIMEOUT
    while time.monotonic() < deadline:
        names = set(client.list_topics(timeout=10).topics)
        if t1 not in names and t2 not in names:
            break
        time.sleep(0.1)
    assert t1 not in names and t2 not in names

    # Deleting a topic that does not exist.
    gone = client.delete_topics([t1], operation_timeout=OP_TIMEOUT)
    with pytest.raises(KafkaException) as exc:
        gone[t1].result(timeout=OP_TIMEOUT)
    assert error_code(exc.value) == KafkaError.UNKNOWN_TOPIC_OR_PART, exc.value


@pytest.mark.parametrize("bad_name", ["has spaces", "slash/in/name", "x" * 250, "..", "."])
def test_admin_rejects_invalid_topic_name(bootstrap, bad_name):
    client = admin(bootstrap)
    futures = client.create_topics([NewTopic(bad_name, num_partitions=1, replication_factor=1)],
                                   operation_timeout=OP_TIMEOUT)
    with pytest.raises(KafkaException) as exc:
        futures[bad_name].result(timeout=OP_TIMEOUT)
    assert error_code(exc.value) == KafkaError.TOPIC_EXCEPTION, exc.value
    assert bad_name not in client.list_topics(timeout=10).topics


def test_admin_rejects_bad_partition_count(bootstrap):
    client = admin(bootstrap)
    name = unique_topic("ck-zero")
    futures = client.create_topics([NewTopic(name, num_partitions=0, replication_factor=1)],
                                   operation_timeout=OP_TIMEOUT)
    with pytest.raises(KafkaException) as exc:
        futures[name].result(timeout=OP_TIMEOUT)
    assert error_code(exc.value) == KafkaError.INVALID_PARTITIONS, exc.value


def test_admin_validate_only_creates_nothing(bootstrap):
    client = admin(bootstrap)
    name = unique_topic("ck-validate")
    futures = client.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)],
                                   operation_timeout=OP_TIMEOUT, validate_only=True)
    assert futures[name].result(timeout=OP_TIMEOUT) is None
    assert name not in client.list_topics(timeout=10).topics


def test_create_partitions(bootstrap):
    client = admin(bootstrap)
    topic = unique_topic("ck-grow")
    create_topic(bootstrap, topic, partitions=2)

    futures = client.create_partitions([NewPartitions(topic, 5)], operation_timeout=OP_TIMEOUT)
    assert futures[topic].result(timeout=OP_TIMEOUT) is None
    wait_for_partitions(client, topic, 5)

    # Shrinking is refused.
    futures = client.create_partitions([NewPartitions(topic, 3)], operation_timeout=OP_TIMEOUT)
    with pytest.raises(KafkaException) as exc:
        futures[topic].result(timeout=OP_TIMEOUT)
    assert error_code(exc.value) == KafkaError.INVALID_PARTITIONS, exc.value

    # The new partitions take writes and give them back.
    producer = Producer({"bootstrap.servers": bootstrap, "topic.metadata.refresh.interval.ms": 1000})
    placed = produce_and_track(producer, topic, [{"value": f"p{p}".encode(), "partition": p} for p in range(5)])
    assert placed == [(p, 0) for p in range(5)]
    got = consume_all(bootstrap, topic, 5, 5)
    assert sorted((m.partition(), m.offset(), m.value()) for m in got) == [(p, 0, f"p{p}".encode()) for p in range(5)]


# -- produce / consume ----------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_round_trip_exact_contents(bootstrap, compression):
    topic = unique_topic(f"ck-rt-{compression}")
    partitions = 3
    create_topic(bootstrap, topic, partitions=partitions)
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "compression.type": compression,
        "linger.ms": 20,
        "acks": "all",
    })
    base_ts = int(time.time() * 1000) - 60_000
    records = []
    for i in range(600):
        rec = {
            "partition": i % partitions,
            "key": f"key-{i}".encode(),
            "value": (f"value {i} " * (1 + i % 9)).encode() + bytes([i % 256, 0, 255]),
            "timestamp": base_ts + i,
            "headers": [("h-index", str(i).encode()), ("h-empty", b"")],
        }
        if i % 50 == 7:
            rec["key"] = None  # null key
        if i % 50 == 9:
            rec["value"] = None  # null value (tombstone)
        records.append(rec)
    placed = produce_and_track(producer, topic, records)

    # Offsets are dense and follow produce order within each partition.
    next_offset = [0] * partitions
    for rec, (p, off) in zip(records, placed):
        assert p == rec["partition"]
        assert off == next_offset[p], f"partition {p}: offset {off}, expected {next_offset[p]}"
        next_offset[p] += 1

    got = consume_all(bootstrap, topic, partitions, len(records))
    expected_by_pos = {placed[i]: rec for i, rec in enumerate(records)}
    seen_offsets = {p: [] for p in range(partitions)}
    for msg in got:
        rec = expected_by_pos[(msg.partition(), msg.offset())]
        seen_offsets[msg.partition()].append(msg.offset())
        assert msg.topic() == topic
        assert msg.key() == rec["key"]
        assert msg.value() == rec["value"]
        assert msg.timestamp() == (TIMESTAMP_CREATE_TIME, rec["timestamp"])
        assert msg.headers() == rec["headers"]
    for p in range(partitions):
        assert seen_offsets[p] == list(range(next_offset[p])), f"partition {p} out of order"


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks_settings(bootstrap, acks):
    topic = unique_topic(f"ck-acks{acks}")
    create_topic(bootstrap, topic, partitions=1)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5})
    values = [f"acks={acks} #{i}".encode() for i in range(200)]
    produce_and_track(producer, topic, [{"value": v, "partition": 0} for v in values])
    got = consume_all(bootstrap, topic, 1, len(values))
    assert [(m.offset(), m.value()) for m in got] == list(enumerate(values))


def test_key_partitioning_keeps_per_key_order(bootstrap):
    topic = unique_topic("ck-keyed")
    partitions = 4
    create_topic(bootstrap, topic, partitions=partitions)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10})
    records = [{"key": f"user-{i % 10}".encode(), "value": f"event {i}".encode()} for i in range(500)]
    placed = produce_and_track(producer, topic, records)
    got = consume_all(bootstrap, topic, partitions, len(records))

    per_key_partition: dict[bytes, set[int]] = {}
    for msg in got:
        per_key_partition.setdefault(msg.key(), set()).add(msg.partition())
    assert all(len(ps) == 1 for ps in per_key_partition.values()), per_key_partition
    assert len({p for p, _ in placed}) > 1, "all keys landed in one partition"

    got_sorted = sorted(got, key=lambda m: (m.partition(), m.offset()))
    for key in per_key_partition:
        values = [m.value() for m in got_sorted if m.key() == key]
        assert values == [r["value"] for r in records if r["key"] == key]


def test_large_messages(bootstrap):
    topic = unique_topic("ck-large")
    create_topic(bootstrap, topic, partitions=1)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    values = [bytes([i]) * 900_000 for i in range(4)] + [b"small"]
    produce_and_track(producer, topic, [{"value": v, "partition": 0} for v in values])
    got = consume_all(bootstrap, topic, 1, len(values))
    assert [m.value() for m in got] == values


def test_consume_from_explicit_offset(bootstrap):
    topic = unique_topic("ck-seek")
    create_topic(bootstrap, topic, partitions=1)
    producer = Producer({"bootstrap.servers": bootstrap})
    produce_and_track(producer, topic, [{"value": f"m{i}".encode(), "partition": 0} for i in range(100)])
    consumer = make_consumer(bootstrap)
    try:
        consumer.assign([TopicPartition(topic, 0, 42)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 58 and time.monotonic() < deadline:
            got += [m for m in consumer.consume(num_messages=100, timeout=0.5) if not m.error()]
        assert [(m.offset(), m.value()) for m in got] == [(i, f"m{i}".encode()) for i in range(42, 100)]

        # OFFSET_END sees only what is produced afterwards.
        consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
        time.sleep(1.0)
        produce_and_track(producer, topic, [{"value": b"after", "partition": 0}])
        got = []
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            got += [m for m in consumer.consume(num_messages=10, timeout=0.5) if not m.error()]
        assert [(m.offset(), m.value()) for m in got] == [(100, b"after")]
    finally:
        consumer.close()


def test_watermarks_and_offsets_for_times(bootstrap):
    topic = unique_topic("ck-times")
    create_topic(bootstrap, topic, partitions=2)
    producer = Producer({"bootstrap.servers": bootstrap})
    base = int(time.time() * 1000) - 3_600_000
    produce_and_track(
        producer, topic, [{"value": f"t{i}".encode(), "partition": 0, "timestamp": base + 1000 * i} for i in range(10)]
    )
    consumer = make_consumer(bootstrap)
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 10)
        assert consumer.get_watermark_offsets(TopicPartition(topic, 1), timeout=10) == (0, 0)

        # One partition per request (a ListOffsets request names each partition once).
        def lookup(ts: int) -> int:
            (answer,) = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert answer.error is None, answer.error
            return answer.offset

        assert lookup(base - 5000) == 0  # before everything: the first offset
        assert lookup(base) == 0  # exact match
        assert lookup(base + 3500) == 4  # between 3 and 4: the first at or after
        assert lookup(base + 9000) == 9  # the last one
        assert lookup(base + 60_000) == OFFSET_END  # after everything

        # Both partitions in one request.
        both = consumer.offsets_for_times([TopicPartition(topic, 0, base + 6000), TopicPartition(topic, 1, base)],
                                          timeout=10)
        assert sorted((a.partition, a.offset) for a in both) == [(0, 6), (1, OFFSET_END)]

        empty = consumer.offsets_for_times([TopicPartition(topic, 1, base)], timeout=10)
        assert empty[0].offset == OFFSET_END
    finally:
        consumer.close()


def test_offsets_for_times_inside_a_compressed_batch_and_above_deleted_records(bootstrap):
    """Kafka walks a compressed batch record by record for a timestamp, and never answers an
    offset DeleteRecords removed: neither does Starling."""
    topic = unique_topic("ck-times-gzip")
    create_topic(bootstrap, topic, partitions=1)
    # Lingering, the ten records go in one gzip batch.
    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": "gzip", "linger.ms": 500})
    base = int(time.time() * 1000) - 3_600_000
    offsets = produce_and_track(
        producer, topic, [{"value": f"t{i}".encode(), "partition": 0, "timestamp": base + 1000 * i} for i in range(10)]
    )
    assert [o for _, o in offsets] == list(range(10))
    consumer = make_consumer(bootstrap)
    try:

        def lookup(ts: int) -> int:
            (answer,) = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert answer.error is None, answer.error
            return answer.offset

        assert lookup(base + 3500) == 4
        assert lookup(base + 9000) == 9
        client = admin(bootstrap)  # kept while its future is waited for
        deleted = client.delete_records([TopicPartition(topic, 0, 6)])
        assert deleted[TopicPartition(topic, 0)].result(timeout=OP_TIMEOUT).low_watermark == 6
        assert lookup(base) == 6  # the first record left, not one deleted
        assert lookup(base + 7000) == 7
    finally:
        consumer.close()


# -- acceptance -----------------------------------------------------------------------------


def test_unmodified_apache_kafka_program(bootstrap):
    """A plain confluent-kafka program written for Apache Kafka runs unmodified."""
    proc = subprocess.run(
        [sys.executable, str(PROGRAMS / "apache_kafka_example.py"), bootstrap],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "all messages consumed back" in proc.stdout, proc.stdout
