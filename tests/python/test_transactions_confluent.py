"""confluent-kafka (Python) transactions: consume-transform-produce programs written for Apache
Kafka, run unchanged as subprocesses against the real broker, checked by read_committed readers.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from support import create_topic, make_consumer, produce_and_track, unique_topic

PROGRAMS = pathlib.Path(__file__).resolve().parent / "programs"
WAIT_S = 20.0


class Program:
    """A program run as a subprocess, its stdout and stderr in a log file."""

    def __init__(self, tmp: pathlib.Path, name: str, args: list[str]):
        self.name = name
        self.log = tmp / f"{name}.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, *args], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.text().splitlines() if line.startswith(prefix)]

    def processed(self) -> list[tuple[int, int]]:
        return [(int(p), int(o)) for p, o in re.findall(r"^processed (\d+) (\d+)$", self.text(), re.M)]

    def wait_for(self, cond, what: str, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode} waiting for {what}\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {what} within {timeout}s\n{self.text()[-4000:]}")
            time.sleep(0.05)

    def stop(self, timeout: float = WAIT_S) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not exit within {timeout}s of SIGTERM\n{self.text()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def read_all(bootstrap: str, topic: str, isolation: str, count: int, timeout: float = WAIT_S) -> list:
    """Reads partition 0 of `topic` from the beginning at `isolation` until `count` messages
    arrived, then makes sure no more come."""
    consumer = make_consumer(bootstrap, **{"isolation.level": isolation})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.3):
                if msg.error():
                    raise KafkaException(msg.error())
                got.append(msg)
        assert len(got) == count, f"{isolation}: read {len(got)} of {count} messages of {topic} within {timeout}s"
        extra = [m.offset() for m in consumer.consume(num_messages=100, timeout=1.0) if not m.error()]
        assert extra == [], f"{isolation}: messages beyond the expected {count} at offsets {extra}"
        return got
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in got}
    finally:
        consumer.close()


def orders(first: int, count: int) -> list[dict]:
    return [{"key": f"order-{n}".encode(),
             "value": json.dumps({"order": n, "qty": n % 7 + 1, "price_cents": 100 + n}).encode()}
            for n in range(first, first + count)]


def test_eos_processor_killed_mid_transaction_leaves_every_order_once(broker_factory, tmp_path):
    """eos_order_processor.py, a static group member with a transactional producer, is killed
    (SIGKILL) with a transaction open; the open transaction holds read_committed and the
    group's offsets where the last commit left them. A restarted instance (same transactional
    and instance id) aborts it, goes on from the committed offsets, and after SIGTERM the
    read_committed output has every input order exactly once, in each input partition's order."""
    broker = broker_factory({"group.initial.rebalance.delay.ms": "0"})
    boot = broker.bootstrap
    source, sink, group = unique_topic("eos-orders"), unique_topic("eos-priced"), unique_topic("eos-group")
    partitions = 3
    create_topic(boot, source, partitions)
    create_topic(boot, sink, 1)
    plain = Producer({"bootstrap.servers": boot, "acks": "all"})
    where = produce_and_track(plain, source, orders(0, 130))  # two full batches of 50 and 30 more
    args = [str(PROGRAMS / "eos_order_processor.py"), boot, source, sink, group, "processor-1"]

    first = Program(tmp_path, "first", args)
    try:
        first.wait_for(lambda: len(first.processed()) == 130, "130 processed records")
        time.sleep(0.5)  # the open transaction's records reach the broker (it commits after 3 s)
        assert len(first.lines("committed ")) == 2, first.text()
    finally:
        first.kill()
    assert first.lines("committed ") == ["committed 50 records"] * 2, first.text()
    committed_first, in_open_txn = first.processed()[:100], first.processed()[100:]

    # Each partition's offset is the one after its last record in the two committed transactions.
    ends_first = collections.Counter(p for p, _ in committed_first)
    assert committed_offsets(boot, group, source, partitions) == \
        {p: ends_first[p] or -1001 for p in range(partitions)}
    read_all(boot, sink, "read_committed", 100)
    read_all(boot, sink, "read_uncommitted", 130)

    where += produce_and_track(plain, source, orders(130, 170))
    second = Program(tmp_path, "second", args)
    try:
        ends = collections.Counter(p for p, _ in where)
        second.wait_for(lambda: committed_offsets(boot, group, source, partitions) == dict(ends),
                        "group offsets at the input's end")
        assert second.stop() == 0, second.text()
    finally:
        second.kill()
    # Exactly the records of the aborted transaction were processed again, and nothing else.
    assert sorted(second.processed()) == sorted(set(where) - set(committed_first)), second.text()
    assert set(in_open_txn) <= set(second.processed())

    output = read_all(boot, sink, "read_committed", 300)
    priced = [json.loads(m.value()) for m in output]
    sources = [tuple(int(x) for x in p["source"].rsplit("/", 2)[1:]) for p in priced]
    assert collections.Counter(sources) == collections.Counter(where), "not every input exactly once"
    for p in priced:
        n = p["order"]
        assert p["total_cents"] == (n % 7 + 1) * (100 + n), p
    assert sorted(p["order"] for p in priced) == list(range(300))
    for part in range(partitions):
        offsets = [o for p, o in sources if p == part]
        assert offsets == sorted(offsets), f"input partition {part} out of order in the output: {offsets}"
    # The aborted transaction's records are in the log, skipped by read_committed only.
    everything = read_all(boot, sink, "read_uncommitted", 300 + len(in_open_txn))
    assert len({m.offset() for m in everything} - {m.offset() for m in output}) == len(in_open_txn)


# Confluent's own example of exactly-once processing: examples/eos-transactions.py of the
# confluentinc/confluent-kafka-python repository (Apache-2.0; the version at commit
# c77a87249794386b0f8a1069713ef70600ed8c30), 7199 bytes with the sha256 below. The PyPI sdists of
# confluent-kafka (2.16.1, 2.16.0, 2.12.0, 2.6.0, 2.3.0 and 1.9.2 were looked at) and Debian's
# python3-confluent-kafka do not ship examples/, so the file is not vendored: point
# STARLING_EOS_EXAMPLE at an unchanged copy to run this test (it is skipped otherwise).
EOS_EXAMPLE_SHA256 = "2b71565385ab695ee7137231b9088f607a29bc561089b5b2d7ae1d41d961e4eb"
EOS_EXAMPLE_INPUT = 250  # two transactions of 100 and a last one of 50


def test_confluent_eos_transactions_example_unchanged(bootstrap, tmp_path):
    """confluent-kafka-python's examples/eos-transactions.py, run unchanged: it assigns partition 0
    of the input topic in group -g, base64-encodes key and value of every message into the output
    topic in transactions of 100 that carry the consumer's position, and exits at the end of the
    input. The read_committed output is every input message once, in order, and the group's
    offset is the input's end."""
    path = os.environ.get("STARLING_EOS_EXAMPLE")
    if not path:
        pytest.skip("STARLING_EOS_EXAMPLE (a copy of confluent-kafka-python's examples/eos-transactions.py) is not set")
    program = pathlib.Path(path)
    digest = hashlib.sha256(program.read_bytes()).hexdigest()
    assert digest == EOS_EXAMPLE_SHA256, f"{program} is not the unchanged example (sha256 {digest})"

    source, sink, group = unique_topic("eos-example-in"), unique_topic("eos-example-out"), unique_topic("eos-example")
    create_topic(bootstrap, source, 1)
    create_topic(bootstrap, sink, 1)
    inputs = [{"key": f"key-{i}".encode(), "value": f"value {i}".encode()} for i in range(EOS_EXAMPLE_INPUT)]
    produce_and_track(Producer({"bootstrap.servers": bootstrap, "acks": "all"}), source, inputs)

    proc = subprocess.run([sys.executable, str(program), "-b", bootstrap, "-t", source, "-o", sink, "-g", group],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "=== Committing final transaction with 50 messages ===" in proc.stdout, proc.stdout
    assert "delivery failed" not in proc.stdout, proc.stdout

    output = read_all(bootstrap, sink, "read_committed", EOS_EXAMPLE_INPUT)
    assert [(base64.b64decode(m.key()), base64.b64decode(m.value())) for m in output] == \
        [(i["key"], i["value"]) for i in inputs]
    assert committed_offsets(bootstrap, group, source, 1) == {0: EOS_EXAMPLE_INPUT}
    read_all(bootstrap, sink, "read_uncommitted", EOS_EXAMPLE_INPUT)  # nothing was aborted
