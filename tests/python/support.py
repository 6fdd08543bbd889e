"""Small helpers shared by the client tests."""

from __future__ import annotations

import os
import pathlib
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

OP_TIMEOUT = 30.0
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def starling_bin() -> pathlib.Path:
    """$STARLING_BIN (relative paths are taken from the repository root), default target/release/starling."""
    path = pathlib.Path(os.environ.get("STARLING_BIN", "target/release/starling"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    """Creates a topic through confluent-kafka's AdminClient and waits until Metadata shows it."""
    client = admin(bootstrap)
    futures = client.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                   operation_timeout=OP_TIMEOUT, request_timeout=OP_TIMEOUT)
    futures[name].result(timeout=OP_TIMEOUT)
    wait_for_partitions(client, name, partitions)


def wait_for_partitions(client: AdminClient, name: str, partitions: int, timeout: float = OP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        md = client.list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None:
            seen = sorted(t.partitions)
            if seen == list(range(partitions)):
                return
        time.sleep(0.1)
    raise AssertionError(f"topic {name} never showed partitions 0..{partitions - 1} in Metadata (last: {seen})")


def error_code(exc: BaseException) -> int | None:
    """The Kafka error code carried by a confluent-kafka exception."""
    if isinstance(exc, KafkaException) and exc.args:
        return exc.args[0].code()
    return None

def make_consumer(bootstrap: str, **extra) -> Consumer:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": f"assign-only-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    }
    conf.update(extra)
    return Consumer(conf)


def consume_all(bootstrap: str, topic: str, partitions: int, count: int, timeout: float = 60.0):
    """Assigns every partition from the beginning and returns the first `count` messages."""
    consumer = make_consumer(bootstrap)
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error():
                    raise KafkaException(msg.error())
                got.append(msg)
        assert len(got) == count, f"received {len(got)} of {count} messages within {timeout}s"
        # Nothing beyond what was produced.
        extra = [m for m in consumer.consume(num_messages=100, timeout=1.0) if not m.error()]
        assert extra == [], f"unexpected extra messages: {[(m.partition(), m.offset()) for m in extra]}"
        return got
    finally:
        consumer.close()


def produce_and_track(producer: Producer, topic: str, records: list[dict]) -> list[tuple[int, int]]:
    """Produces `records` (kwargs of Producer.produce) and returns their (partition, offset) in order."""
    results: list = [None] * len(records)
    errors = []

    def on_delivery(index):
        def cb(err, msg):
            if err is not None:
                errors.append((index, err))
            else:
                results[index] = (msg.partition(), msg.offset())

        return cb

    for i, rec in enumerate(records):
        while True:
            try:
                producer.produce(topic, on_delivery=on_delivery(i), **rec)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(OP_TIMEOUT)
    assert remaining == 0, f"{remaining} messages still undelivered after {OP_TIMEOUT}s"
    assert errors == [], f"delivery errors: {errors[:5]}"
    return results
