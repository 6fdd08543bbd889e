"""Consumer groups with ordinary confluent-kafka programs written for Apache Kafka.

Each program in programs/ is a plain Kafka application; the tests run several copies of it as
subprocesses against the real broker, start more of them midway, and check from the files
they write that the topic was consumed completely and that the group's committed offsets end
where the data ends.
"""

from __future__ import annotations

import collections
import pathlib
import re
import signal
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from support import create_topic, produce_and_track, unique_topic

PROGRAMS = pathlib.Path(__file__).resolve().parent / "programs"
WAIT_S = 90.0


class Program:
    """One program run as a subprocess; stdout and stderr go to a log file."""

    def __init__(self, tmp: pathlib.Path, name: str, script: str, *args: str):
        self.name = name
        self.output = tmp / f"{name}.consumed"
        self.log = tmp / f"{name}.log"
        self.output.touch()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(PROGRAMS / script), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def consumed(self) -> list[tuple[int, int, str]]:
        rows = []
        for line in self.output.read_text(encoding="utf-8").splitlines():
            p, o, k = line.split(" ", 2)
            rows.append((int(p), int(o), k))
        return rows

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def assigned(self) -> set[int]:
        """Partitions named in the program's `assigned [...]` lines."""
        got = set()
        for m in re.finditer(r"^assigned \[([^\]]*)\]", self.log_text(), re.M):
            got.update(int(x) for x in re.findall(r"\d+", m.group(1)))
        return got

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"{self.name} did not exit within {timeout}s of SIGTERM\n{self.log_text()}")

    def wait(self, timeout: float = WAIT_S) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"{self.name} still running after {timeout}s\n{self.log_text()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def wait_until(cond, timeout: float, what: str, describe=lambda: "") -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not reached within {timeout}s. {describe()}")
        time.sleep(0.1)
    return time.monotonic() - start


def keyed(topic_partitions: int, first: int, count: int) -> list[dict]:
    return [
        {"key": f"key-{i:06d}", "value": f"order {i}", "partition": i % topic_partitions}
        for i in range(first, first + count)
    ]


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in got}
    finally:
        consumer.close()


def seen_keys(programs: list[Program]) -> collections.Counter:
    return collections.Counter(k for prog in programs for (_, _, k) in prog.consumed())


def summary(programs: list[Program]) -> str:
    return "\n".join(
        f"--- {p.name} (exit {p.proc.poll()}), {len(p.consumed())} consumed ---\n{p.log_text()[-3000:]}"
        for p in programs
    )


def membership_churn(broker, tmp_path, name: str, start_member, leave_one: bool) -> tuple[list[Program], Program]:
    """Three members consume a 6-partition topic, a fourth joins midway (and, with
    `leave_one`, the first then leaves), 600 keyed messages in all. Checks that every key was
    consumed, that the fourth consumed some of the later messages, that every message sits at
    the offset its delivery report named, and that the committed offsets end where the data
    ends; returns the programs and the fourth."""
    boot = broker.bootstrap
    topic, group = unique_topic(name), unique_topic(f"{name}-group")
    create_topic(boot, topic, 6)
    producer = Producer({"bootstrap.servers": boot, "acks": "all"})
    produced = produce_and_track(producer, topic, keyed(6, 0, 300))

    def member(i: int) -> Program:
        return start_member(i, boot, topic, group)

    programs = [member(i) for i in range(3)]
    try:
        wait_until(lambda: sum(seen_keys(programs).values()) >= 100, WAIT_S,
                   "three members consuming", lambda: summary(programs))
        fourth = member(3)
        programs.append(fourth)
        wait_until(lambda: fourth.assigned(), WAIT_S, "the fourth member getting partitions",
                   lambda: summary(programs))
        if leave_one:
            # One of the first three leaves; the others take its partitions.
            assert programs[0].stop() == 0, summary(programs)
        produced += produce_and_track(producer, topic, keyed(6, 300, 300))
        expected = {f"key-{i:06d}" for i in range(600)}
        wait_until(lambda: expected <= set(seen_keys(programs)), WAIT_S,
                   "every produced key consumed",
                   lambda: f"missing {sorted(expected - set(seen_keys(programs)))[:20]}\n{summary(programs)}")
        codes = {p.name: p.stop() for p in programs}
    finally:
        for p in programs:
            p.kill()
    assert codes == {p.name: 0 for p in programs}, summary(programs)

    counts = seen_keys(programs)
    assert set(counts) == expected, f"unexpected keys {sorted(set(counts) - expected)[:20]}"
    assert {k for (_, _, k) in fourth.consumed()} & {f"key-{i:06d}" for i in range(300, 600)}, \
        f"the member that joined midway consumed none of the later messages\n{summary(programs)}"
    # Every message sits at the offset its delivery report named, and commits reached the end.
    by_position = {(p, o): k for prog in programs for (p, o, k) in prog.consumed()}
    for rec, (p, o) in zip(keyed(6, 0, 600), produced):
        assert by_position.get((p, o)) == rec["key"], (p, o, rec["key"])
    ends = collections.Counter(p for (p, _) in produced)
    assert committed_offsets(boot, group, topic, 6) == dict(ends)
    duplicates = sum(n - 1 for n in counts.values())
    print(f"{name}: {len(counts)} keys, {duplicates} consumed twice")
    return programs, fourth


def test_cooperative_static_members_consume_everything_while_a_fourth_joins(broker_factory, tmp_path):
    broker = broker_factory({"group.initial.rebalance.delay.ms": "1000"})

    def member(i: int, boot: str, topic: str, group: str) -> Program:
        return Program(tmp_path, f"member-{i}", "groups_coop_static_consumer.py",
                       boot, topic, group, f"{group}-instance-{i}", str(tmp_path / f"member-{i}.consumed"))

    membership_churn(broker, tmp_path, "coop-static", member, leave_one=False)


def test_assign_consumers_resume_from_their_committed_offsets(broker_factory, tmp_path):
    broker = broker_factory({"group.initial.rebalance.delay.ms": "0"})
    boot = broker.bootstrap
    topic, group = unique_topic("assign-resume"), unique_topic("assign-resume-group")
    create_topic(boot, topic, 4)
    producer = Producer({"bootstrap.servers": boot, "acks": "all"})
    produced = produce_and_track(producer, topic, keyed(4, 0, 400))

    def run(label: str, parts: str, max_messages: int) -> Program:
        return Program(tmp_path, f"{label}-{parts.replace(',', '')}", "groups_assign_consumer.py",
                       boot, topic, group, parts, str(tmp_path / f"{label}-{parts.replace(',', '')}.consumed"),
                       str(max_messages), "3")

    first = [run("first", "0,1", 70), run("first", "2,3", 130)]
    for p in first:
        assert p.wait() == 0, summary(first)
    assert [len(p.consumed()) for p in first] == [70, 130], summary(first)
    after_first = committed_offsets(boot, group, topic, 4)
    consumed_first = collections.Counter(p for prog in first for (p, _, _) in prog.consumed())
    # A partition a first run never reached has no committed offset (OFFSET_INVALID, -1001).
    assert after_first == {p: consumed_first[p] or -1001 for p in range(4)}, (after_first, consumed_first)
    resume_at = {p: max(o, 0) for p, o in after_first.items()}

    second = [run("second", "0,1", 10_000), run("second", "2,3", 10_000)]
    for p in second:
        assert p.wait() == 0, summary(second)
    # The rerun starts exactly at the committed offsets: together the runs read every message
    # once.
    for prog in second:
        firsts = {}
        for (p, o, _) in prog.consumed():
            firsts.setdefault(p, o)
        for p, o in firsts.items():
            assert o == resume_at[p], f"{prog.name} started partition {p} at {o}, committed {after_first[p]}"
    counts = seen_keys(first + second)
    assert counts == collections.Counter({f"key-{i:06d}": 1 for i in range(400)}), \
        f"keys not read exactly once: {[k for k, n in counts.items() if n != 1][:20]}"
    assert committed_offsets(boot, group, topic, 4) == {p: 100 for p in range(4)}
    assert len(produced) == 400


def test_rebalance_callbacks_save_and_restore_positions_without_loss(broker_factory, tmp_path):
    broker = broker_factory({"group.initial.rebalance.delay.ms": "1000"})
    boot = broker.bootstrap
    topic, group = unique_topic("callbacks"), unique_topic("callbacks-group")
    create_topic(boot, topic, 6)
    producer = Producer({"bootstrap.servers": boot, "acks": "all"})
    produced = produce_and_track(producer, topic, keyed(6, 0, 300))

    def member(i: int) -> Program:
        return Program(tmp_path, f"member-{i}", "groups_rebalance_callbacks_consumer.py",
                       boot, topic, group, str(tmp_path / f"member-{i}.consumed"))

    programs = [member(i) for i in range(2)]
    try:
        wait_until(lambda: sum(seen_keys(programs).values()) >= 100, WAIT_S,
                   "two members consuming", lambda: summary(programs))
        third = member(2)
        programs.append(third)
        wait_until(lambda: third.assigned(), WAIT_S, "the third member getting partitions",
                   lambda: summary(programs))
        produced += produce_and_track(producer, topic, keyed(6, 300, 300))
        expected = {f"key-{i:06d}" for i in range(600)}
        wait_until(lambda: expected <= set(seen_keys(programs)), WAIT_S,
                   "every produced key consumed",
                   lambda: f"missing {sorted(expected - set(seen_keys(programs)))[:20]}\n{summary(programs)}")
        codes = {p.name: p.stop() for p in programs}
    finally:
        for p in programs:
            p.kill()
    assert codes == {p.name: 0 for p in programs}, summary(programs)

    counts = seen_keys(programs)
    assert set(counts) == expected
    twice = sorted(k for k, n in counts.items() if n > 1)
    assert twice == [], f"positions saved on revoke and restored on assign, yet {len(twice)} " \
                        f"messages were processed twice, e.g. {twice[:10]}\n{summary(programs)}"
    assert {k for (_, _, k) in third.consumed()}, "the member that joined midway consumed messages"
    ends = collections.Counter(p for (p, _) in produced)
    assert committed_offsets(boot, group, topic, 6) == dict(ends), \
        "closing committed every member's final positions"


def test_consumer_protocol_members_consume_everything_while_one_joins_and_one_leaves(broker_factory, tmp_path):
    """KIP-848: the same kind of program with `group.protocol=consumer`; the broker assigns."""
    broker = broker_factory({})

    def member(i: int, boot: str, topic: str, group: str) -> Program:
        return Program(tmp_path, f"member-{i}", "groups_consumer_protocol_consumer.py",
                       boot, topic, group, str(tmp_path / f"member-{i}.consumed"))

    membership_churn(broker, tmp_path, "kip848", member, leave_one=True)
