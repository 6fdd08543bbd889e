"""kcat (Debian's build, on librdkafka 2.0.2: an older client) against the real broker."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from support import create_topic, unique_topic

KCAT_TIMEOUT = 60


@pytest.fixture(scope="module")
def kcat_features() -> str:
    path = shutil.which("kcat")
    if path is None:
        pytest.fail("kcat is not installed (scripts/test installs it; Debian: apt-get install kcat)")
    out = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    return out.stdout + out.stderr


def kcat(*args: str, stdin: str | None = None, timeout: float = KCAT_TIMEOUT) -> str:
    stdin_args = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    proc = subprocess.run(["kcat", *args], capture_output=True, text=True, timeout=timeout, **stdin_args)
    assert proc.returncode == 0, f"kcat {' '.join(args)} exited {proc.returncode}\nstderr:\n{proc.stderr}"
    return proc.stdout


def produce(bootstrap: str, topic: str, lines: list[str], *extra: str) -> None:
    kcat("-P", "-b", bootstrap, "-t", topic, *extra, stdin="".join(line + "\n" for line in lines))


def consume_json(bootstrap: str, topic: str, *extra: str) -> list[dict]:
    """All messages from the beginning to the current end (-e), as kcat's JSON envelopes."""
    out = kcat("-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-J", *extra)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def by_partition(messages: list[dict]) -> dict[int, list[tuple[int, str | None, str]]]:
    out: dict[int, list[tuple[int, str | None, str]]] = {}
    for m in messages:
        out.setdefault(m["partition"], []).append((m["offset"], m["key"], m["payload"]))
    return out


def test_metadata_lists_topic(bootstrap, kcat_features):
    topic = unique_topic("kcat-md")
    create_topic(bootstrap, topic, partitions=3)
    md = json.loads(kcat("-L", "-b", bootstrap, "-t", topic, "-J"))
    broker_ids = {b["id"] for b in md["brokers"]}
    # One broker, advertised at the address it listens on.
    assert [b["name"] for b in md["brokers"]] == [bootstrap], md["brokers"]
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics, md
    t = topics[topic]
    assert "error" not in t or not t["error"], t
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]
    for p in t["partitions"]:
        assert p["leader"] in broker_ids, p

    # The all-topics listing includes it as well.
    all_md = json.loads(kcat("-L", "-b", bootstrap, "-J"))
    assert topic in {t["topic"] for t in all_md["topics"]}


def test_keyed_round_trip_per_partition(bootstrap, kcat_features):
    topic = unique_topic("kcat-keys")
    create_topic(bootstrap, topic, partitions=3)
    expected: dict[int, list[tuple[int, str | None, str]]] = {}
    for p in (0, 2):
        lines = [f"key-{p}-{i}:value {i} on partition {p} ✓ äöü" for i in range(25)]
        produce(bootstrap, topic, lines, "-p", str(p), "-K:")
        expected[p] = [(i, f"key-{p}-{i}", f"value {i} on partition {p} ✓ äöü") for i in range(25)]
    got = by_partition(consume_json(bootstrap, topic))
    assert got == expected


def test_unkeyed_round_trip_and_format_string(bootstrap, kcat_features):
    topic = unique_topic("kcat-plain")
    create_topic(bootstrap, topic, partitions=1)
    values = ["first", "second message", "x" * 5000, "tab\there", "last"]
    kcat("-P", "-b", bootstrap, "-t", topic, "-p", "0", "-D", "|", stdin="|".join(values) + "|")
    messages = consume_json(bootstrap, topic)
    assert [(m["offset"], m["key"], m["payload"]) for m in messages] == [(i, None, v) for i, v in enumerate(values)]
    out = kcat("-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p:%o:%S:%s\n")
    assert out == "".join(f"0:{i}:{len(v)}:{v}\n" for i, v in enumerate(values))


def test_empty_and_null_keys_and_payloads(bootstrap, kcat_features):
    topic = unique_topic("kcat-nulls")
    create_topic(bootstrap, topic, partitions=2)
    # Partition 0: "k:" is an empty payload and ":v" an empty key.
    produce(bootstrap, topic, ["k1:", ":v2", "k3:v3"], "-p", "0", "-K:")
    # Partition 1, with -Z: the same lines give null payloads and null keys.
    produce(bootstrap, topic, ["k1:", ":v2", "k3:v3"], "-p", "1", "-K:", "-Z")
    got = by_partition(consume_json(bootstrap, topic))
    assert got == {
        0: [(0, "k1", ""), (1, "", "v2"), (2, "k3", "v3")],
        1: [(0, "k1", None), (1, None, "v2"), (2, "k3", "v3")],
    }
    out = kcat("-C", "-b", bootstrap, "-t", topic, "-p", "1", "-o", "beginning", "-e", "-q", "-Z",
               "-f", "%k|%s|%K|%S\n")
    assert out == "k1|NULL|2|-1\nNULL|v2|-1|2\nk3|v3|2|2\n"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_round_trip(bootstrap, kcat_features, codec):
    if codec not in kcat_features:
        pytest.skip(f"this kcat build lacks {codec}")
    topic = unique_topic(f"kcat-{codec}")
    create_topic(bootstrap, topic, partitions=2)
    expected = {}
    for p in (0, 1):
        lines = [f"k{i % 7}:{codec} payload {i} " + "lorem ipsum dolor " * (i % 13) for i in range(300)]
        produce(bootstrap, topic, lines, "-p", str(p), "-K:", "-z", codec, "-X", "linger.ms=50")
        expected[p] = [(i, line.split(":", 1)[0], line.split(":", 1)[1]) for i, line in enumerate(lines)]
    got = by_partition(consume_json(bootstrap, topic))
    assert got == expected


def test_many_messages_one_partition(bootstrap, kcat_features):
    topic = unique_topic("kcat-many")
    create_topic(bootstrap, topic, partitions=1)
    lines = [f"message-{i:06d}" for i in range(20000)]
    produce(bootstrap, topic, lines, "-p", "0")
    messages = consume_json(bootstrap, topic)
    assert [m["offset"] for m in messages] == list(range(len(lines)))
    assert [m["payload"] for m in messages] == lines


def test_start_offsets(bootstrap, kcat_features):
    topic = unique_topic("kcat-offsets")
    create_topic(bootstrap, topic, partitions=1)
    produce(bootstrap, topic, [f"early-{i}" for i in range(10)], "-p", "0")
    time.sleep(1.0)
    boundary_ms = int(time.time() * 1000)
    time.sleep(1.0)
    produce(bootstrap, topic, [f"late-{i}" for i in range(5)], "-p", "0")

    def payloads(*args: str) -> list[str]:
        out = kcat("-C", "-b", bootstrap, "-t", topic, "-p", "0", "-e", "-q", "-f", "%o=%s\n", *args)
        return out.splitlines()

    # Absolute offset, with a count.
    assert payloads("-o", "4", "-c", "3") == ["4=early-4", "5=early-5", "6=early-6"]
    # Relative to the end (ListOffsets latest).
    assert payloads("-o", "-2") == ["13=late-3", "14=late-4"]
    # By timestamp (ListOffsets with a time).
    assert payloads("-o", f"s@{boundary_ms}") == [f"{10 + i}=late-{i}" for i in range(5)]
    # From the end: nothing.
    assert payloads("-o", "end") == []


def test_auto_create_on_produce(broker_factory, kcat_features):
    b = broker_factory({"auto.create.topics.enable": "true", "num.partitions": "3"})
    topic = unique_topic("kcat-auto")
    produce(b.bootstrap, topic, ["a:1", "b:2"], "-K:", "-p", "1")
    md = json.loads(kcat("-L", "-b", b.bootstrap, "-t", topic, "-J"))
    t = {t["topic"]: t for t in md["topics"]}[topic]
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]
    got = by_partition(consume_json(b.bootstrap, topic))
    assert got == {1: [(0, "a", "1"), (1, "b", "2")]}
