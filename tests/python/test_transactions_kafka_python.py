"""kafka-python 3 transactions: an independent, pure-Python implementation of the transactional
producer and of read_committed fetching, against the real broker.

kafka-python writes its own FindCoordinator, InitProducerId, AddPartitionsToTxn,
AddOffsetsToTxn, TxnOffsetCommit and EndTxn requests and reads the aborted-transaction lists of
Fetch itself, so it checks the broker's transaction protocol apart from librdkafka.
"""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from support import unique_topic

TIMEOUT_S = 20
PER_TXN = 6  # messages in each transaction


def admin_client(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="starling-txn-tests", request_timeout_ms=30_000)


def create(bootstrap: str, name: str, partitions: int) -> None:
    admin = admin_client(bootstrap)
    try:
        admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}},
                            timeout_ms=30_000, wait_for_metadata=True)
    finally:
        admin.close()


def txn_producer(bootstrap: str, name: str) -> KafkaProducer:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"{name}-{uuid.uuid4().hex[:8]}",
        request_timeout_ms=30_000,
        max_block_ms=30_000,
    )
    producer.init_transactions()
    return producer


def reader(bootstrap: str, isolation: str, **extra) -> KafkaConsumer:
    conf = dict(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation,
        request_timeout_ms=30_000,
    )
    conf.update(extra)
    return KafkaConsumer(**conf)


def read_values(bootstrap: str, topic: str, partitions: int, isolation: str, count: int) -> dict[int, list[bytes]]:
    """Reads every partition from the beginning until `count` records arrived, then makes sure
    nothing more comes; returns each partition's values in offset order."""
    consumer = reader(bootstrap, isolation)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        got: dict[int, list] = {p: [] for p in range(partitions)}
        total = 0
        deadline = time.monotonic() + TIMEOUT_S
        while total < count and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=300).items():
                got[tp.partition].extend(records)
                total += len(records)
        assert total == count, (
            f"{isolation}: received {total} of {count} records within {TIMEOUT_S}s: "
            f"{ {p: [r.value for r in rs] for p, rs in got.items()} }")
        extra = [r.value for rs in consumer.poll(timeout_ms=1000).values() for r in rs]
        assert extra == [], f"{isolation}: records beyond the expected {count}: {extra}"
        for p, records in got.items():
            offsets = [r.offset for r in records]
            assert offsets == sorted(offsets), f"partition {p} out of offset order: {offsets}"
        return {p: [r.value for r in records] for p, records in got.items()}
    finally:
        consumer.close()


def send_all(producer: KafkaProducer, topic: str, values: list[bytes], partitions: int) -> None:
    futures = [producer.send(topic, value=v, key=v, partition=i % partitions) for i, v in enumerate(values)]
    producer.flush(timeout=TIMEOUT_S)
    for f in futures:
        f.get(timeout=TIMEOUT_S)  # raises the delivery error, if any


def by_partition(values: list[bytes], partitions: int) -> dict[int, list[bytes]]:
    return {p: values[p::partitions] for p in range(partitions)}


def test_read_committed_sees_committed_transactions_only(bootstrap):
    """Commit, abort, commit, then one transaction left open: read_committed reads the two
    committed transactions in order, read_uncommitted everything; an open transaction holds
    read_committed (and its end offset) at its first record until it commits."""
    topic = unique_topic("kp-txn")
    partitions = 2
    create(bootstrap, topic, partitions)
    first = [f"commit-1-{i}".encode() for i in range(PER_TXN)]
    aborted = [f"abort-{i}".encode() for i in range(PER_TXN)]
    second = [f"commit-2-{i}".encode() for i in range(PER_TXN)]
    held = [f"open-{i}".encode() for i in range(PER_TXN)]

    producer = txn_producer(bootstrap, "kp-visibility")
    try:
        producer.begin_transaction()
        send_all(producer, topic, first, partitions)
        producer.commit_transaction()

        producer.begin_transaction()
        # Flushed before the abort, so the aborted records are in the log and read_committed
        # has to skip them by the aborted-transaction list.
        send_all(producer, topic, aborted, partitions)
        producer.abort_transaction()

        producer.begin_transaction()
        send_all(producer, topic, second, partitions)
        producer.commit_transaction()

        committed = by_partition(first + second, partitions)
        assert read_values(bootstrap, topic, partitions, "read_committed", 2 * PER_TXN) == committed
        everything = by_partition(first + aborted + second, partitions)
        assert read_values(bootstrap, topic, partitions, "read_uncommitted", 3 * PER_TXN) == everything

        # A transaction written but not yet committed.
        producer.begin_transaction()
        send_all(producer, topic, held, partitions)
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        rc, ru = reader(bootstrap, "read_committed"), reader(bootstrap, "read_uncommitted")
        try:
            stable, high = rc.end_offsets(tps), ru.end_offsets(tps)
        finally:
            rc.close()
            ru.close()
        per_partition_held = PER_TXN // partitions
        for tp in tps:
            # The open transaction's records are the last ones of each partition.
            assert high[tp] - stable[tp] == per_partition_held, (
                f"{tp}: read_uncommitted end {high[tp]}, read_committed end {stable[tp]}")
        assert read_values(bootstrap, topic, partitions, "read_committed", 2 * PER_TXN) == committed

        producer.commit_transaction()
        assert read_values(bootstrap, topic, partitions, "read_committed", 3 * PER_TXN) == \
            by_partition(first + second + held, partitions)
    finally:
        producer.close(timeout=10)


def group_offset(admin: KafkaAdminClient, group: str, tp: TopicPartition) -> int | None:
    """The group's committed offset as a plain OffsetFetch (no require_stable) answers it."""
    meta = admin.list_group_offsets({group: [tp]}).get(group, {}).get(tp)
    return None if meta is None or meta.offset < 0 else meta.offset


def test_consume_transform_produce_commits_group_offsets_with_the_transaction(bootstrap):
    """A subscribed group consumer and a transactional producer: each round's output and the
    group's offsets go in one transaction (send_offsets_to_transaction with the consumer's
    group metadata). The committed offset moves on commit only: not while the transaction is
    open and not on abort; redoing the aborted round leaves every input transformed exactly once
    in read_committed output.

    EndTxn answers before the markers are written (as in Kafka), so a plain OffsetFetch right
    after a commit may still show the old offset; the consumer (read_committed, so its
    OffsetFetch sets require_stable and is retried while the broker answers
    UNSTABLE_OFFSET_COMMIT) is asked first, and the plain answer is read after it."""
    source, sink = unique_topic("kp-ctp-in"), unique_topic("kp-ctp-out")
    group = f"kp-ctp-{uuid.uuid4().hex[:8]}"
    create(bootstrap, source, 1)
    create(bootstrap, sink, 1)
    inputs = [f"item-{i:02d}".encode() for i in range(3 * PER_TXN)]
    plain = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        send_all(plain, source, inputs, 1)
    finally:
        plain.close(timeout=10)

    tp = TopicPartition(source, 0)
    consumer = KafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        request_timeout_ms=30_000,
        max_poll_records=PER_TXN,
    )
    admin = admin_client(bootstrap)
    producer = txn_producer(bootstrap, "kp-ctp")

    def next_round() -> list:
        records = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(records) < PER_TXN and time.monotonic() < deadline:
            for rs in consumer.poll(timeout_ms=300, max_records=PER_TXN - len(records)).values():
                records.extend(rs)
        assert len(records) == PER_TXN, f"polled {len(records)} of {PER_TXN} input records within {TIMEOUT_S}s"
        return records

    def transform_in_transaction(records) -> int:
        producer.begin_transaction()
        send_all(producer, sink, [r.value.upper() for r in records], 1)
        end = records[-1].offset + 1
        producer.send_offsets_to_transaction({tp: OffsetAndMetadata(end, "", -1)}, consumer.group_metadata())
        return end

    def assert_offset_held(before: int | None) -> None:
        # The transaction's offset is pending: a plain fetch answers the one before it, and a
        # require_stable fetch gets UNSTABLE_OFFSET_COMMIT until the transaction ends.
        assert group_offset(admin, group, tp) == before, "the offset moved before the transaction committed"
        with pytest.raises(KafkaTimeoutError):
            consumer.committed(tp, timeout_ms=1000)

    def assert_committed(offset: int) -> None:
        assert consumer.committed(tp, timeout_ms=TIMEOUT_S * 1000) == offset
        assert group_offset(admin, group, tp) == offset

    try:
        # Round 1: committed.
        round1 = next_round()
        assert [r.offset for r in round1] == list(range(PER_TXN))
        end1 = transform_in_transaction(round1)
        assert_offset_held(None)
        producer.commit_transaction()
        assert_committed(end1)

        # Round 2: aborted; the group's offset stays where round 1 left it.
        round2 = next_round()
        transform_in_transaction(round2)
        assert_offset_held(end1)
        producer.abort_transaction()
        assert_committed(end1)

        # As an application does after an abort: go back to the committed offset and redo.
        consumer.seek(tp, consumer.committed(tp))
        redo = next_round()
        assert [r.value for r in redo] == [r.value for r in round2]
        end2 = transform_in_transaction(redo)
        assert_offset_held(end1)
        producer.commit_transaction()
        assert_committed(end2)

        # Round 3: committed; the input's end.
        round3 = next_round()
        end3 = transform_in_transaction(round3)
        producer.commit_transaction()
        assert end3 == len(inputs)
        assert_committed(len(inputs))
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)
        admin.close()

    expected = [v.upper() for v in inputs]
    assert read_values(bootstrap, sink, 1, "read_committed", len(expected)) == {0: expected}
    aborted = [v.upper() for v in inputs[PER_TXN:2 * PER_TXN]]
    assert read_values(bootstrap, sink, 1, "read_uncommitted", len(expected) + PER_TXN) == \
        {0: expected[:PER_TXN] + aborted + expected[PER_TXN:]}
