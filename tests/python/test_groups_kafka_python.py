"""Consumer groups through kafka-python, a pure-Python client with its own protocol code and
its own group coordinator client (JoinGroup/SyncGroup/Heartbeat/LeaveGroup/OffsetCommit).

Three KafkaConsumer members share a topic, consume it completely and commit; one leaves with
close() and its partitions move to the other two, which consume what is produced afterwards.
The broker's rebalance record of that leave names the leaver and says which partitions went
where, as the two remaining kafka-python members report them.
"""

from __future__ import annotations

import collections
import json
import queue
import threading
import time
import urllib.request

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from support import create_topic, unique_topic

WAIT_S = 60.0
SESSION_MS = 30_000  # a clean leave must move partitions long before this


class Member:
    """One KafkaConsumer, used only from its own thread, which polls and commits after every
    non-empty poll until told to close."""

    def __init__(self, bootstrap: str, group: str, topic: str, name: str):
        self.name = name
        self.lock = threading.Lock()
        self.records: list[tuple[int, int, str]] = []
        self.assignment: set[int] = set()
        self.commits = 0
        self.error: BaseException | None = None
        self.commands: queue.Queue = queue.Queue()
        self.closed = threading.Event()
        self.args = (bootstrap, group, topic)
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        bootstrap, group, topic = self.args
        try:
            consumer = KafkaConsumer(
                topic,
                bootstrap_servers=bootstrap,
                group_id=group,
                client_id=self.name,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=SESSION_MS,
                heartbeat_interval_ms=1000,
                request_timeout_ms=40_000,
            )
        except BaseException as e:  # noqa: BLE001 - reported to the test thread
            self.error = e
            self.closed.set()
            return
        try:
            while self.commands.empty():
                batch = consumer.poll(timeout_ms=200)
                got = [(r.partition, r.offset, r.key.decode()) for rs in batch.values() for r in rs]
                if got:
                    consumer.commit()
                with self.lock:
                    self.records.extend(got)
                    self.commits += bool(got)
                    self.assignment = {tp.partition for tp in consumer.assignment()}
        except BaseException as e:  # noqa: BLE001
            self.error = e
        finally:
            consumer.close()
            with self.lock:
                self.assignment = set()
            self.closed.set()

    def close(self, timeout: float = 30.0) -> None:
        self.commands.put("close")
        assert self.closed.wait(timeout), f"{self.name} did not close within {timeout}s"
        self.thread.join(timeout)
        assert self.error is None, f"{self.name}: {self.error!r}"

    def snapshot(self) -> tuple[set[int], list[tuple[int, int, str]]]:
        with self.lock:
            return set(self.assignment), list(self.records)


def partitioned(members: list[Member], partitions: int) -> bool:
    sets = [m.snapshot()[0] for m in members]
    union = set().union(*sets)
    return all(sets) and sum(len(s) for s in sets) == len(union) and union == set(range(partitions))


def describe(members: list[Member]) -> str:
    return "; ".join(
        f"{m.name}: {sorted(m.snapshot()[0])} ({len(m.snapshot()[1])} records, error {m.error!r})" for m in members
    )


def wait_until(cond, timeout: float, what: str, describe_state=lambda: "") -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not reached within {timeout}s; {describe_state()}")
        time.sleep(0.05)
    return time.monotonic() - start


def produce(bootstrap: str, topic: str, partitions: int, first: int, count: int) -> dict[str, tuple[int, int]]:
    # Starling has no InitProducerId (idempotence), which kafka-python 3 enables by default.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    try:
        futures = {
            f"key-{i:06d}": producer.send(topic, key=f"key-{i:06d}".encode(), value=b"v", partition=i % partitions)
            for i in range(first, first + count)
        }
        producer.flush(timeout=30)
        out = {}
        for key, fut in futures.items():
            md = fut.get(timeout=30)
            out[key] = (md.partition, md.offset)
        return out
    finally:
        producer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        consumer.close()


def rebalance_records(admin: str, group: str) -> list[dict]:
    with urllib.request.urlopen(f"http://{admin}/groups/{group}/rebalances", timeout=10) as resp:
        return json.loads(resp.read())


def check_leave_record(admin: str, group: str, topic: str, leaver: Member, leaver_parts: set[int],
                       stayers: list[Member]) -> None:
    """The last rebalance is the leave: cause, departure and every partition's new owner match
    what the kafka-python members themselves report."""
    records = rebalance_records(admin, group)
    at = max(i for i, r in enumerate(records) if r["cause"] == "member_left")
    leave, before = records[at], records[at - 1]
    assert leave["outcome"] == "stable", leave
    # kafka-python's new leader rejoins once more when its metadata grows to the whole group's
    # subscription (cause metadata_changed); such a rebalance must keep every owner where it is.
    for later in records[at + 1:]:
        assert later["cause"] == "metadata_changed" and later["outcome"] == "stable", later
        change = later["assignment"]
        assert change is not None and not (change["moved"] or change["assigned"] or change["revoked"]), later
    ids = {m["client_id"]: m["member_id"] for m in before["members"]}
    assert [(d["member_id"], d["reason"]) for d in leave["left"]] == [(ids[leaver.name], "left")], leave
    assert leave["trigger_member"] == ids[leaver.name]
    owner_client = {m["member_id"]: m["client_id"] for m in leave["members"]}
    assert sorted(owner_client.values()) == sorted(m.name for m in stayers), leave
    change = leave["assignment"]
    assert change is not None and not change["assigned"] and not change["revoked"], change
    now_owned = {(p["topic"], p["partition"]): p["member_id"] for p in change["stayed"]}
    now_owned.update({(m["topic"], m["partition"]): m["to"] for m in change["moved"]})
    reported = {(topic, p): m.name for m in stayers for p in m.snapshot()[0]}
    assert {tp: owner_client[mid] for tp, mid in now_owned.items()} == reported, (change, reported)
    from_leaver = {m["partition"] for m in change["moved"] if m["from"] == ids[leaver.name]}
    assert from_leaver == leaver_parts, (change, leaver_parts)
    assert not any(p["member_id"] == ids[leaver.name] for p in change["stayed"]), change


def test_kafka_python_group_shares_a_topic_and_a_leaver_hands_its_partitions_over(broker_factory):
    broker = broker_factory({"group.initial.rebalance.delay.ms": "0"})
    boot = broker.bootstrap
    topic, group = unique_topic("kp-group"), unique_topic("kp-group-id")
    create_topic(boot, topic, 6)
    produced = produce(boot, topic, 6, 0, 300)

    members = [Member(boot, group, topic, f"kp-{i}") for i in range(3)]
    try:
        wait_until(lambda: partitioned(members, 6), WAIT_S, "three members sharing 6 partitions",
                   lambda: describe(members))
        all_keys = lambda ms: {k for m in ms for (_, _, k) in m.snapshot()[1]}  # noqa: E731
        wait_until(lambda: set(produced) <= all_keys(members), WAIT_S, "all 300 messages consumed",
                   lambda: describe(members))
        for m in members:
            assert m.error is None, describe(members)
        # The commits after each poll add up to the end of every partition.
        ends = collections.Counter(p for (p, _) in produced.values())
        wait_until(lambda: committed(boot, group, topic, 6) == dict(ends), 10, "commits at the end",
                   lambda: str(committed(boot, group, topic, 6)))

        leaver, stayers = members[2], members[:2]
        leaver_parts = leaver.snapshot()[0]
        assert leaver_parts, describe(members)
        left_at = time.monotonic()
        leaver.close()
        moved = wait_until(lambda: partitioned(stayers, 6), WAIT_S, "the leaver's partitions moving",
                           lambda: describe(stayers))
        moved_after = time.monotonic() - left_at
        assert moved_after < SESSION_MS / 1000 / 3, \
            f"partitions moved {moved_after:.1f}s after close(), as if LeaveGroup were ignored"
        assert leaver_parts <= set().union(*(m.snapshot()[0] for m in stayers))
        check_leave_record(broker.admin, group, topic, leaver, leaver_parts, stayers)

        later = produce(boot, topic, 6, 300, 120)
        wait_until(lambda: set(later) <= all_keys(stayers), WAIT_S, "the remaining members consuming new messages",
                   lambda: describe(stayers))
        later_on_leaver_parts = {k for k, (p, _) in later.items() if p in leaver_parts}
        assert later_on_leaver_parts and later_on_leaver_parts <= all_keys(stayers)
        produced.update(later)
        ends = collections.Counter(p for (p, _) in produced.values())
        wait_until(lambda: committed(boot, group, topic, 6) == dict(ends), 10, "commits at the new end",
                   lambda: str(committed(boot, group, topic, 6)))
        # Every consumed record is the one produced at its position.
        by_position = {pos: k for k, pos in produced.items()}
        for m in members:
            for (p, o, k) in m.snapshot()[1]:
                assert by_position[(p, o)] == k, (m.name, p, o, k)
        print(f"kafka-python group: leaver's partitions moved after {moved:.2f}s")
    finally:
        for m in members:
            if not m.closed.is_set():
                m.commands.put("close")
        for m in members:
            m.closed.wait(30)
    for m in stayers:
        m.close()
