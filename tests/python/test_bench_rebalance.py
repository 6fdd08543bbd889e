"""Smoke test of `starling bench rebalance`: a tiny configuration runs, prints its table, writes
its JSON and timelines, loses nothing, and the coordinator still lists a crashed member after
the crash (it sent no LeaveGroup).

The figures themselves are printed (visible with `pytest -s`), never asserted.
"""

from __future__ import annotations

import json
import re
import subprocess

from support import starling_bin

BENCH_TIMEOUT = 180
STRATEGIES = ("cooperative", "eager", "consumer")
PAIRS = [(scenario, strategy) for scenario in ("scale-out", "crash") for strategy in STRATEGIES]


def test_bench_rebalance_tiny_run(tmp_path):
    out_json = tmp_path / "rebalance.json"
    svg_dir = tmp_path / "timelines"
    # A broker the bench starts itself, with group settings that keep the run short: no
    # initial rebalance delay and a 2 s session (the broker's minimum is lowered to allow it).
    proc = subprocess.run(
        [str(starling_bin()), "bench", "rebalance",
         "--scenarios", "scale-out,crash", "--strategies", ",".join(STRATEGIES),
         "--members", "2", "--partitions", "4", "--rate", "200",
         "--steady-secs", "2", "--settle-secs", "1",
         "--session-timeout-ms", "2000", "--heartbeat-interval-ms", "500",
         "--broker-override", "group.min.session.timeout.ms=1000",
         "--broker-override", "group.initial.rebalance.delay.ms=0",
         "--json", str(out_json), "--svg-dir", str(svg_dir)],
        capture_output=True, text=True, timeout=BENCH_TIMEOUT, stdin=subprocess.DEVNULL)
    print(proc.stdout)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"

    out = proc.stdout
    assert "started by the bench" in out, out
    for scenario, strategy in PAIRS:
        # scenario, strategy, nine figures (times in ms or "-", counts), lost = 0, pauses by member.
        row = rf"^{scenario}\s+{strategy}\s+(\S+\s+){{9}}0\s+\S.*$"
        assert re.search(row, out, re.M), f"no row for {scenario}/{strategy}:\n{out}"

    figures = json.loads(out_json.read_text())
    results = {(r["scenario"], r["strategy"]): r for r in figures["results"]}
    assert sorted(results) == sorted(PAIRS)
    assert figures["failures"] == []
    for pair, r in results.items():
        assert r["losses"] == 0, (pair, r["lost_seq_sample"])
        assert r["acknowledged"] > 0 and r["received"] >= r["acknowledged"], pair
        assert r["events"] and r["events"][0]["trigger_s"] > 0, pair
        svg = svg_dir / f"{pair[0]}-{pair[1]}.svg"
        assert r["svg"] == str(svg)
        text = svg.read_text()
        assert text.startswith("<svg") and text.rstrip().endswith("</svg>"), svg
    for strategy in ("cooperative", "eager"):
        check = results[("crash", strategy)]["leave_check"]
        assert check["ending"] == "crashed" and check["listed_after"] is True, check


def test_bench_heartbeat_tiny_run():
    """`starling bench heartbeat` joins its members, measures, and names an interval or says
    none stayed under the budget."""
    proc = subprocess.run(
        [str(starling_bin()), "bench", "heartbeat",
         "--members", "50", "--partitions", "50", "--connections", "4",
         "--rates", "50,200", "--secs", "1"],
        capture_output=True, text=True, timeout=BENCH_TIMEOUT, stdin=subprocess.DEVNULL)
    print(proc.stdout)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = proc.stdout
    assert "50 members joined and reconciled over 4 connections" in out, out
    # A row per rate: the figures, or "-" where the window held too few CPU clock ticks.
    for rate in (50, 200):
        assert re.search(rf"^\s+{rate}\s+\d+\s+\d+ ms\s+([\d.]+|-)\s+([\d.]+|-)\s+(\d+|-)$", out, re.M), out
    assert re.search(r"cost under 1% of a core: \d+ ms|no measured rate stayed under", out), out


def test_bench_console_tiny_run():
    """`starling bench console` fills its broker, times every console page over HTTP and
    compares Kafka round trips with the console idle and busy."""
    proc = subprocess.run(
        [str(starling_bin()), "bench", "console",
         "--topics", "8", "--groups", "20", "--records", "2", "--requests", "2",
         "--secs", "0.5", "--pollers", "1"],
        capture_output=True, text=True, timeout=BENCH_TIMEOUT, stdin=subprocess.DEVNULL)
    print(proc.stdout)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = proc.stdout
    # 8 topics cycling 5, 20, 50, 125 partitions: 400.
    assert "8 topics, 400 partitions, 2 records each, 20 groups + bench-console-all (400 offsets)" in out, out
    for page in ("overview", "group, 400 partitions", "same group, by lag", "topic, 125 partitions"):
        assert re.search(rf"^{re.escape(page)}\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+$", out, re.M), out
    for request in ("OffsetFetch (coordinator), idle", "OffsetFetch (coordinator), busy",
                    "Metadata, idle", "Metadata, busy"):
        assert re.search(rf"^{re.escape(request)}\s+[1-9]\d*\s+[\d.]+\s+[\d.]+\s+[\d.]+$", out, re.M), out
    assert re.search(r"p99 busy / idle: OffsetFetch [\d.]+×, Metadata [\d.]+×", out), out
