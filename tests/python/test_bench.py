"""Smoke tests of `starling bench`: it runs, prints its figures and exits 0 (no speed checks)."""

from __future__ import annotations

import json
import re
import subprocess

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
