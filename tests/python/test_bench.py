"""Smoke tests of `starling bench`: it runs, prints its figures and exits 0 (no speed checks);
interrupted, it stops the broker it started and deletes its data."""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import subprocess
import time

import pytest

from support import starling_bin

BENCH_TIMEOUT = 300
ROW = r"\s+\d+\s+\d+\.\d+\s+\d+\s+\d+\.\d+\s+\d+\.\d%"


def bench(*args: str) -> str:
    proc = subprocess.run([str(starling_bin()), "bench", *args], capture_output=True, text=True,
                          timeout=BENCH_TIMEOUT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def test_bench_produce_against_running_broker(bootstrap, tmp_path):
    out_json = tmp_path / "figures.json"
    out = bench("produce", "--bootstrap", bootstrap, "--messages", "2000", "--json", str(out_json))
    assert re.search(r"^loopback TCP ceiling\s+-\s+\d+\.\d+\s+-\s+\d+\.\d+\s+100\.0%$", out, re.M), out
    assert re.search(r"^produce" + ROW + "$", out, re.M), out
    figures = json.loads(out_json.read_text())
    (phase,) = figures["phases"]
    assert phase["phase"] == "produce" and phase["messages"] == 2000 and phase["bytes"] == 2000 * 1024
    assert phase["mb_per_sec"] > 0 and figures["ceiling"]["mb_per_sec"] > 0


def test_bench_all_with_its_own_broker():
    # No --bootstrap: the bench starts (and stops) a broker itself.
    out = bench("all", "--messages", "3000", "--size", "100", "--partitions", "2", "--compression", "lz4")
    assert "started by the bench" in out, out
    assert re.search(r"^produce" + ROW + "$", out, re.M), out
    assert re.search(r"^consume\s+3000" + ROW[len(r"\s+\d+"):] + "$", out, re.M), out


def _children(pid: int) -> list[int]:
    """The pids of `pid`'s child processes, from /proc."""
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2:].split()[0] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_bench_interrupted_stops_its_broker_and_deletes_its_data(sig, tmp_path):
    # The bench's temporary directory goes under TMPDIR, so this test sees all it leaves behind.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch))
    proc = subprocess.Popen([str(starling_bin()), "bench", "produce", "--messages", "100000000",
                             "--no-ceiling"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    brokers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not list(scratch.glob("starling-bench-*/data/meta.redb")):
            assert proc.poll() is None, f"bench exited early: {proc.communicate()}"
            assert time.monotonic() < deadline, "the bench's broker did not start"
            time.sleep(0.05)
        brokers = _children(proc.pid)
        assert brokers, "the bench's broker is its child"
        time.sleep(1.0)  # well into producing
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in brokers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 128 + sig, f"exit {proc.returncode}\n{err}"
    assert "stopped the broker it started and removed its temporary data" in err, err
    assert not [pid for pid in brokers if _running(pid)], "the bench's broker still runs"
    assert list(scratch.iterdir()) == [], "the bench left data behind"


def test_bench_compaction_runs_bounded_and_unbounded(tmp_path):
    # Tiny: small segments so a pass can run within 2 s; only the figures' shape is checked.
    out_json = tmp_path / "compaction.json"
    out = bench("compaction", "--duration", "2", "--keys", "200", "--value-size", "100",
                "--segment-bytes", "65536", "--topic-config", "min.cleanable.dirty.ratio=0.1",
                "--cleaner-rate", "4MiB", "--json", str(out_json))
    assert re.search(r"^bounded\s+4\.00\s+\d+\s+\d+\.\d\s+\d+\s+\d+\.\d$", out, re.M), out
    assert re.search(r"^unbounded\s+none\s+\d+\s+\d+\.\d\s+\d+\s+\d+\.\d$", out, re.M), out
    num = r"\d+\.\d+"
    assert re.search(rf"^bounded(\s+{num}){{2}}\s+({num}|-)(\s+{num}){{2}}\s+{num}\s+\d+\s+\d+\s+({num}|-)$",
                     out, re.M), out
    assert re.search(rf"^unbounded(\s+{num}){{2}}\s+({num}|-)\s+-\s+-\s+{num}\s+\d+\s+\d+\s+({num}|-)$",
                     out, re.M), out
    assert re.search(rf"^producer throughput, bounded / unbounded cleaner: {num} ", out, re.M), out
    figures = json.loads(out_json.read_text())
    bounded, unbounded = figures["runs"]
    assert bounded["bound_bytes_per_sec"] == 4 << 20 and unbounded["bound_bytes_per_sec"] is None
    for run in (bounded, unbounded):
        assert run["produce"]["messages"] > 0 and run["consume"]["messages"] > 0
        assert run["cleaner"]["mean_bytes_per_sec"] >= 0 and len(run["samples"]) >= 2
    assert unbounded["cleaner"]["max_over_bound"] is None
    assert figures["produce_bounded_over_unbounded"] > 0
