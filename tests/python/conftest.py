"""Fixtures that run the real `starling` binary for the client tests.

The broker is started as `$STARLING_BIN serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
--data-dir <tmp>`; the fixture waits for its stdout lines `listening on 127.0.0.1:PORT` and
`admin listening on 127.0.0.1:PORT` and hands out those addresses (`bootstrap`, `admin`). On teardown the broker gets SIGTERM (and SIGKILL if it does not exit in time).
When a test fails, the broker's stderr written during that test is attached to the report.

STARLING_BIN defaults to target/release/starling under the repository root; a relative
path is taken relative to the repository root.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import queue
import re
import signal
import subprocess
import threading
import time

import pytest

from support import starling_bin

STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 15.0
REPORT_LOG_LINES = 200
ANSI = re.compile(r"\x1b\[[0-9;]*m")

_ALL_BROKERS: list["Broker"] = []
_SEQ = itertools.count()


class Broker:
    """One `starling serve` process on a data directory that outlives restarts."""

    def __init__(self, workdir: pathlib.Path, overrides: dict[str, str] | None = None):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_path = workdir / "broker.stderr.log"
        self.overrides = dict(overrides or {})
        self.proc: subprocess.Popen | None = None
        self.bootstrap: str | None = None
        self.admin: str | None = None
        # Listener name -> "127.0.0.1:PORT", from the broker's `listener NAME on ADDR` lines.
        self.listeners: dict[str, str] = {}
        self.seq = next(_SEQ)
        self.starts = 0
        self.workdir.mkdir(parents=True, exist_ok=True)
        _ALL_BROKERS.append(self)

    # -- life cycle -------------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [str(starling_bin()), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir)]
        if "admin.listen" not in self.overrides:
            # Never the default admin port: brokers of different tests run side by side.
            cmd += ["--admin-listen", "127.0.0.1:0"]
        for key, value in self.overrides.items():
            cmd += ["--override", f"{key}={value}"]
        return cmd

    def start(self) -> "Broker":
        binary = starling_bin()
        if not binary.exists():
            raise RuntimeError(
                f"{binary} does not exist: build it with `cargo build --release -p starling` "
                "or point STARLING_BIN at the binary"
            )
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts}: {' '.join(self.command())}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=self.workdir,
            env={**os.environ, "NO_COLOR": "1"},
        )
        log.close()
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_pump_lines, args=(self.proc.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        self.listeners = {}
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise RuntimeError(
                    f"broker printed no `listening on` line within {STARTUP_TIMEOUT}s\n{self.log_tail()}"
                )
            try:
                line = lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None and lines.empty():
                    raise RuntimeError(
                        f"broker exited with {self.proc.returncode} before listening\n{self.log_tail()}"
                    )
                continue
            if line is None:
                continue
            if line.startswith("listener ") and " on " in line:
                # `listener NAME on ADDR`, one per listener, between `listening on` and the admin line.
                name, addr = line[len("listener ") :].strip().split(" on ", 1)
                self.listeners[name] = addr
            elif line.startswith("listening on "):
                self.bootstrap = line[len("listening on ") :].strip()
                if self.overrides.get("admin.listen", "").strip().lower() == "none":
                    # No admin line ends the list: take the listener lines written with this one.
                    self.admin = None
                    while True:
                        try:
                            line = lines.get(timeout=0.2)
                        except queue.Empty:
                            return self
                        if not line or not line.startswith("listener ") or " on " not in line:
                            return self
                        name, addr = line[len("listener ") :].strip().split(" on ", 1)
                        self.listeners[name] = addr
            elif line.startswith("admin listening on "):
                # Printed after the Kafka address and the listener lines.
                self.admin = line[len("admin listening on ") :].strip()
                return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = SHUTDOWN_TIMEOUT) -> int | None:
        """SIGTERM and wait; SIGKILL after `timeout`. Returns the exit code (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> "Broker":
        code = self.terminate()
        assert code == 0, f"broker exited with {code} on SIGTERM\n{self.log_tail()}"
        return self.start()

    # -- logs -------------------------------------------------------------------------------

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return ANSI.sub("", f.read().decode("utf-8", "replace"))
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60, since: int = 0) -> str:
        text = self.log_text(since).splitlines()
        return "--- broker stderr (last lines) ---\n" + "\n".join(text[-lines:])


def _pump_lines(stream, out: queue.Queue) -> None:
    # Keeps reading the broker's stdout for its whole life so it never blocks on a full pipe.
    for raw in iter(stream.readline, b""):
        out.put(raw.decode("utf-8", "replace").rstrip("\n"))
    out.put(None)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A broker shared by the tests of one module (each test uses its own topics)."""
    b = Broker(tmp_path_factory.mktemp("broker")).start()
    yield b
    crashed = None if b.running() else b.proc.returncode
    b.terminate()
    if crashed is not None:
        pytest.fail(f"the shared broker exited by itself with {crashed}\n{b.log_tail()}")


@pytest.fixture
def bootstrap(broker) -> str:
    if not broker.running():
        pytest.fail(f"the shared broker is not running (exit {broker.proc.returncode})\n{broker.log_tail()}")
    return broker.bootstrap


@pytest.fixture
def broker_factory(tmp_path_factory):
    """Starts private brokers, e.g. with `--override` properties: `broker_factory(**{"num.partitions": "3"})`."""
    started: list[Broker] = []

    def make(overrides: dict[str, str] | None = None) -> Broker:
        b = Broker(tmp_path_factory.mktemp("broker"), overrides).start()
        started.append(b)
        return b

    yield make
    for b in started:
        b.terminate()


@pytest.fixture(autouse=True)
def _mark_broker_logs(request):
    # Remember where each live broker's log stood when the test began, for failure reports.
    request.node._starling_marks = {b.seq: b.log_size() for b in _ALL_BROKERS if b.running()}
    request.node._starling_seq = next(_SEQ)
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    marks = getattr(item, "_starling_marks", None)
    if marks is None:
        return
    first_seq = getattr(item, "_starling_seq", 0)
    for b in _ALL_BROKERS:
        if b.seq in marks:
            since = marks[b.seq]
        elif b.seq > first_seq:
            since = 0
        else:
            continue
        text = b.log_text(since).splitlines()[-REPORT_LOG_LINES:]
        state = "running" if b.running() else f"exited with {b.proc.returncode if b.proc else None}"
        report.sections.append(
            (f"starling stderr ({b.bootstrap}, {state}, {report.when})", "\n".join(text) or "(nothing)")
        )
