"""kafka-python 3 exactly-once pipelines across crashes: programs/eos_kafka_python_processor.py
(a static group member, read_committed, whose output and consumer offsets go in one
transaction) is killed with SIGKILL again and again and the broker once with kill -9; every
input must still come out of the pipeline exactly once for read_committed readers.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from conftest import Broker
from support import unique_topic

PROGRAM = pathlib.Path(__file__).resolve().parent / "programs" / "eos_kafka_python_processor.py"
WAIT_S = 20.0
PARTITIONS = 3
PER_PARTITION = 50


class SamePortBroker(Broker):
    """A broker that comes back on the Kafka port it first got, so running clients reconnect to it."""

    def command(self) -> list[str]:
        cmd = super().command()
        if self.bootstrap is not None:
            cmd[cmd.index("--listen") + 1] = self.bootstrap
        return cmd


class Program:
    """The processor as a subprocess, its stdout and stderr in a log file."""

    def __init__(self, tmp: pathlib.Path, name: str, args: list[str], **env: str):
        self.name = name
        self.log = tmp / f"{name}.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(PROGRAM), *args], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.text(), re.M))

    def wait_for(self, cond, what: str, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} waiting for {what}\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {what} within {timeout}s\n{self.text()[-4000:]}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL; the program must still have been running."""
        assert self.proc.poll() is None, f"{self.name} exited with {self.proc.returncode} before the kill\n{self.text()}"
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"{self.name} did not exit within {WAIT_S}s of SIGTERM\n{self.text()}")


def value(partition: int, i: int) -> bytes:
    return f"in-{partition}-{i:03d}".encode()


def group_offsets(admin: KafkaAdminClient, group: str, topic: str) -> dict[int, int]:
    got = admin.list_group_offsets({group: [TopicPartition(topic, p) for p in range(PARTITIONS)]}).get(group, {})
    return {tp.partition: meta.offset for tp, meta in got.items() if meta is not None and meta.offset >= 0}


def wait_group_offsets(admin: KafkaAdminClient, group: str, topic: str, cond, what: str, programs=()) -> dict:
    deadline = time.monotonic() + WAIT_S
    while True:
        offsets = group_offsets(admin, group, topic)
        if cond(offsets):
            return offsets
        for p in programs:
            if p.proc.poll() is not None:
                raise AssertionError(f"{p.name} exited with {p.proc.returncode} waiting for {what}\n{p.text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {WAIT_S}s: the group's offsets are {offsets}")
        time.sleep(0.1)


def read_partitions(bootstrap: str, topic: str, isolation: str) -> dict[int, list[bytes]]:
    """Every partition from the beginning up to its end at `isolation` (the last stable offset
    for read_committed, the high watermark for read_uncommitted), values in offset order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", isolation_level=isolation, request_timeout_ms=30_000)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(tps)
        got: dict[int, list] = {p: [] for p in range(PARTITIONS)}
        deadline = time.monotonic() + WAIT_S
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, (
                f"{isolation}: positions {[consumer.position(tp) for tp in tps]} short of the ends {ends} "
                f"after {WAIT_S}s")
            for tp, records in consumer.poll(timeout_ms=300).items():
                got[tp.partition].extend(records)
        for p, records in got.items():
            offsets = [r.offset for r in records]
            assert offsets == sorted(set(offsets)), f"{isolation}: partition {p} offsets out of order: {offsets}"
        return {p: [r.value for r in records] for p, records in got.items()}
    finally:
        consumer.close()


def test_kafka_python_eos_pipeline_survives_kill_9_of_processor_and_broker(tmp_path_factory, tmp_path):
    """Five instances of the processor (one transactional id, one static group instance id) run
    in turn against input numbered per partition:
    1. killed with its third transaction open (records written, offsets not yet sent);
    2. killed right after init_transactions, which fenced instance 1 and aborted that transaction;
    3. killed just after its second commit, while it goes on to the next poll and transaction;
    4. has its second transaction open when the broker is killed with kill -9 and restarted on
       the same data directory and port; it carries on (committing, or aborting and going back
       to the committed offsets) and is killed after two more commits;
    5. finishes the input and stops on SIGTERM.
    A read_committed reader then sees every input transformed exactly once, in input order in
    each partition; the group's committed offsets are the input's end; and read_uncommitted
    sees more records than read_committed: aborted work was written and skipped."""
    broker = SamePortBroker(tmp_path_factory.mktemp("broker"), {"group.initial.rebalance.delay.ms": "0"}).start()
    admin = None
    programs: list[Program] = []
    try:
        boot = broker.bootstrap
        source, sink = unique_topic("kp-eos-crash-in"), unique_topic("kp-eos-crash-out")
        group = f"kp-eos-crash-{uuid.uuid4().hex[:8]}"
        admin = KafkaAdminClient(bootstrap_servers=boot, request_timeout_ms=30_000, reconnect_backoff_max_ms=1_000)
        admin.create_topics({source: {"num_partitions": PARTITIONS, "replication_factor": 1},
                             sink: {"num_partitions": PARTITIONS, "replication_factor": 1}},
                            timeout_ms=30_000, wait_for_metadata=True)
        plain = KafkaProducer(bootstrap_servers=boot, acks="all", request_timeout_ms=30_000)
        try:
            futures = [plain.send(source, key=value(p, i), value=value(p, i), partition=p)
                       for i in range(PER_PARTITION) for p in range(PARTITIONS)]
            plain.flush(timeout=WAIT_S)
            where = [f.get(timeout=WAIT_S) for f in futures]
        finally:
            plain.close(timeout=10)
        assert sorted((m.partition, m.offset) for m in where) == \
            sorted((p, i) for p in range(PARTITIONS) for i in range(PER_PARTITION))
        ends = {p: PER_PARTITION for p in range(PARTITIONS)}

        args = [boot, source, sink, group, "processor-1"]
        pause = tmp_path / "pause"
        paced = {"EOS_TXN_DELAY_S": "0.1"}

        def run(name: str, **env: str) -> Program:
            program = Program(tmp_path, name, args, **{**paced, **env})
            programs.append(program)
            return program

        # 1: killed with transaction 3 open.
        pause.touch()
        first = run("first", EOS_PAUSE_AT="3", EOS_PAUSE_FILE=str(pause))
        first.wait_for(lambda: first.count(r"^open 3 ") == 1, "open transaction 3")
        first.kill()
        assert first.count(r"^committed ") == 2, first.text()
        committed_first = sum(int(n) for n in re.findall(r"^committed \d+ (\d+)$", first.text(), re.M))
        wait_group_offsets(admin, group, source, lambda o: sum(o.values()) == committed_first,
                           f"group offsets covering the {committed_first} records of two commits")

        # 2: killed right after taking over the transactional id.
        second = run("second")
        second.wait_for(lambda: second.count(r"^ready$") == 1, "ready")
        second.kill()

        # 3: killed right after its second commit.
        third = run("third")
        third.wait_for(lambda: third.count(r"^committed ") >= 2, "two commits")
        third.kill()

        # 4: the broker is killed (-9) and restarted while transaction 2 is open.
        pause.touch()
        fourth = run("fourth", EOS_PAUSE_AT="2", EOS_PAUSE_FILE=str(pause))
        fourth.wait_for(lambda: fourth.count(r"^open 2 ") == 1, "open transaction 2")
        broker.kill()
        broker.start()
        assert broker.bootstrap == boot, f"the broker came back on {broker.bootstrap}, not {boot}"
        pause.unlink()
        fourth.wait_for(lambda: fourth.count(r"^(committed|aborted) 2 ") == 1, "the end of transaction 2")
        fourth.wait_for(lambda: fourth.count(r"^committed ([3-9]|\d\d+) ") >= 2, "two commits after the restart")
        fourth.kill()

        # 5: finishes the input.
        fifth = run("fifth")
        wait_group_offsets(admin, group, source, lambda o: o == ends, "group offsets at the input's end", [fifth])
        assert fifth.stop() == 0, fifth.text()
        assert fifth.count(r"^committed ") >= 1, f"the last instance had nothing left to do\n{fifth.text()}"

        committed = read_partitions(boot, sink, "read_committed")
        expected = {p: [b"done:" + value(p, i) + b"@" + str(i).encode() for i in range(PER_PARTITION)]
                    for p in range(PARTITIONS)}
        for p in range(PARTITIONS):
            assert committed[p] == expected[p], (
                f"output partition {p} is not every input once in order: "
                f"{len(committed[p])} records, duplicates {sorted({v for v in committed[p] if committed[p].count(v) > 1})}, "
                f"missing {[v for v in expected[p] if v not in committed[p]]}")
        assert group_offsets(admin, group, source) == ends
        everything = read_partitions(boot, sink, "read_uncommitted")
        assert sum(map(len, everything.values())) > sum(map(len, committed.values())), \
            "read_uncommitted saw no aborted records"
        valid = {v for vs in expected.values() for v in vs}
        assert all(v in valid for vs in everything.values() for v in vs)
    finally:
        for p in programs:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(timeout=10)
        if admin is not None:
            admin.close()
        code = broker.terminate()
    assert code == 0, f"broker exited with {code} on SIGTERM\n{broker.log_tail()}"
