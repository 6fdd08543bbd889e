"""A stateful stream processor on confluent-kafka that keeps its state in a compacted changelog
topic (programs/changelog_word_counter.py, the Kafka Streams pattern): killed with SIGKILL
mid-run and restarted, it restores its state from the changelog and ends with exactly the
counts of its whole input, while the broker's cleaner compacts the changelog underneath it.
"""

from __future__ import annotations

import pathlib
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from support import admin, unique_topic
from test_transactions_confluent import Program, committed_offsets

PROGRAMS = pathlib.Path(__file__).resolve().parent / "programs"
WAIT_S = 60.0


def words(first: int, count: int) -> list[bytes]:
    """The input: 25 words in turn; from record 2000 on only the first 20, and the last five
    are deleted at 2000 (so their tombstones stay the latest record of their keys)."""
    out = []
    for n in range(first, first + count):
        if n == 2000:
            out.extend(f"-w{i}".encode() for i in range(20, 25))
        out.append(f"w{n % (25 if n < 2000 else 20)}".encode())
    return out


def expected_counts(inputs: list[bytes]) -> dict[bytes, int]:
    counts: dict[bytes, int] = {}
    for key in inputs:
        if key.startswith(b"-"):
            counts.pop(key[1:], None)
        else:
            counts[key] = counts.get(key, 0) + 1
    return counts


def read_changelog(bootstrap: str, topic: str) -> tuple[dict[bytes, int], int, list[int]]:
    """The changelog's state (latest value per key, tombstones removing keys), how many records
    it holds and their offsets, read_committed from the start to its end."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "unused-changelog-reader",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    })
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        state: dict[bytes, int] = {}
        offsets: list[int] = []
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return state, len(offsets), offsets
                raise KafkaException(msg.error())
            offsets.append(msg.offset())
            if msg.value() is None:
                state.pop(msg.key(), None)
            else:
                state[msg.key()] = int(msg.value())
        raise AssertionError(f"{topic}: no end of partition within {WAIT_S}s")
    finally:
        consumer.close()


def test_a_processor_killed_mid_run_recovers_its_state_from_a_compacted_changelog(broker_factory, tmp_path):
    broker = broker_factory({
        "group.initial.rebalance.delay.ms": "0",
        "log.cleaner.backoff.ms": "100",
    })
    boot = broker.bootstrap
    source, changelog, group = unique_topic("words"), unique_topic("counts-changelog"), unique_topic("counter")
    client = admin(boot)
    futures = client.create_topics([
        NewTopic(source, 1),
        NewTopic(changelog, 1, config={
            "cleanup.policy": "compact",
            "segment.bytes": "4096",
            "min.cleanable.dirty.ratio": "0.01",
            "min.compaction.lag.ms": "0",
        }),
    ])
    for future in futures.values():
        future.result(30)

    first_half, second_half = words(0, 1500), words(1500, 1500)
    plain = Producer({"bootstrap.servers": boot, "acks": "all", "linger.ms": 5})
    for key in first_half:
        plain.produce(source, key=key, value=b"1", partition=0)
    plain.flush(30)

    args = [str(PROGRAMS / "changelog_word_counter.py"), boot, source, changelog, group]
    first = Program(tmp_path, "first", args)
    try:
        first.wait_for(lambda: first.lines("restored ") != [], "the restore", WAIT_S)
        assert first.lines("restored ") == ["restored 0 keys from 0 records"], first.text()
        first.wait_for(lambda: len(first.processed()) >= 900, "900 processed records", WAIT_S)
    finally:
        first.kill()

    for key in second_half:
        plain.produce(source, key=key, value=b"1", partition=0)
    plain.flush(30)
    total = len(first_half) + len(second_half)

    second = Program(tmp_path, "second", args)
    try:
        second.wait_for(lambda: second.lines("restored ") != [], "the restore", WAIT_S)
        second.wait_for(lambda: committed_offsets(boot, group, source, 1) == {0: total},
                        "group offsets at the input's end", WAIT_S)
        assert second.stop() == 0, second.text()
    finally:
        second.kill()
    # The second instance started from the committed state, not from nothing.
    restored_keys = int(second.lines("restored ")[0].split()[1])
    assert restored_keys == 25, second.text()

    expected = expected_counts(first_half + second_half)
    assert sorted(expected) == sorted(f"w{i}".encode() for i in range(20))

    # The cleaner compacts the changelog: of ~3000 updates, about one per key remains (plus
    # the active segment), and the state read from it is exactly the expected one.
    deadline = time.monotonic() + WAIT_S
    while True:
        state, records, offsets = read_changelog(boot, changelog)
        assert state == expected
        assert offsets == sorted(set(offsets)), "offsets must keep increasing"
        if records < 300:
            break
        assert time.monotonic() < deadline, f"the changelog still holds {records} records"
        time.sleep(0.5)
