"""The broker as a process: start-up line, graceful SIGTERM, data surviving a restart,
segment rolling under a small log.segment.bytes."""

from __future__ import annotations

import http.client
import re
import time

from confluent_kafka import Producer

from support import admin, consume_all, create_topic, produce_and_track, unique_topic, wait_for_partitions


def test_listening_line_and_sigterm(broker_factory):
    b = broker_factory()
    assert re.fullmatch(r"127\.0\.0\.1:\d+", b.bootstrap), b.bootstrap
    assert not b.bootstrap.endswith(":0")
    # The second line names the admin endpoint, which answers plain HTTP.
    assert b.admin and re.fullmatch(r"127\.0\.0\.1:\d+", b.admin), b.admin
    host, port = b.admin.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/healthz")
    health = conn.getresponse()
    assert (health.status, health.read()) == (200, b"ok")
    conn.close()
    started = time.monotonic()
    code = b.terminate(timeout=15)
    assert code == 0, f"exit code {code} after SIGTERM\n{b.log_tail()}"
    assert time.monotonic() - started < 15


def test_data_survives_restart(broker_factory):
    b = broker_factory()
    topic = unique_topic("restart")
    create_topic(b.bootstrap, topic, partitions=2)
    producer = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5})
    first = [{"value": f"before-{i}".encode(), "key": f"k{i}".encode(), "partition": i % 2} for i in range(100)]
    produce_and_track(producer, topic, first)
    producer.flush(10)
    del producer

    b.restart()

    # The topic is still there, with its partitions and its messages.
    wait_for_partitions(admin(b.bootstrap), topic, 2)
    got = consume_all(b.bootstrap, topic, 2, len(first))
    assert sorted((m.partition(), m.offset(), m.key(), m.value()) for m in got) == sorted(
        (i % 2, i // 2, f"k{i}".encode(), f"before-{i}".encode()) for i in range(100)
    )

    # New writes continue the offsets.
    producer = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5})
    placed = produce_and_track(producer, topic, [{"value": b"after", "partition": 0}, {"value": b"after", "partition": 1}])
    assert placed == [(0, 50), (1, 50)]


def test_many_small_segments(broker_factory):
    b = broker_factory({"log.segment.bytes": "65536"})
    topic = unique_topic("segments")
    create_topic(b.bootstrap, topic, partitions=1)
    producer = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5, "batch.size": 16384})
    values = [f"{i:08d}".encode() + b"." * 300 for i in range(4000)]  # ~1.2 MB: ~20 segments
    placed = produce_and_track(producer, topic, [{"value": v, "partition": 0} for v in values])
    assert placed == [(0, i) for i in range(len(values))]
    got = consume_all(b.bootstrap, topic, 1, len(values))
    assert [(m.offset(), m.value()) for m in got] == list(enumerate(values))

    b.restart()
    got = consume_all(b.bootstrap, topic, 1, len(values))
    assert [(m.offset(), m.value()) for m in got] == list(enumerate(values))


def test_every_listener_is_announced_with_or_without_the_admin_line(broker_factory):
    settings = {
        "listeners": "PLAINTEXT://127.0.0.1:0,INTERNAL://127.0.0.1:0",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
    }
    for admin_listen in ("127.0.0.1:0", "none"):
        b = broker_factory({**settings, "admin.listen": admin_listen})
        assert set(b.listeners) == {"PLAINTEXT", "INTERNAL"}, b.listeners
        assert b.listeners["PLAINTEXT"] == b.bootstrap
        assert b.listeners["INTERNAL"] != b.bootstrap
        # Each listener serves Kafka clients and advertises its own address.
        for name, address in b.listeners.items():
            metadata = admin(address).list_topics(timeout=10)
            brokers = [f"{m.host}:{m.port}" for m in metadata.brokers.values()]
            assert brokers == [address], (name, brokers)
        assert (b.admin is None) == (admin_listen == "none")
