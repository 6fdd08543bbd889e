"""Fixtures that run the real `starling` binary for the client tests.

The broker is started as `$STARLING_BIN serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
--data-dir <tmp>`; the fixture waits for its stdout lines `listening on 127.0.0.1:PORT` and
`admin listening on 127.0.0.1:PORT` and hands out those addresses (`bootstrap`, `admin`). On teardown the broker gets SIGTERM (and SIGKILL if it does not exit in time).
When a test fails, the broker's stderr written during that test is attached to the report.

STARLING_BIN defaults to target/release/starling under the repository root; a relative
path is taken relative to the repository root.

For `--storage postgres://…` the `postgres` fixture starts a throw-away PostgreSQL server for the
session, as crates/starling-postgres/src/testing.rs does for the Rust tests (Debian's `initdb` and
`postgres`, or those in $STARLING_PG_BIN), and `postgres_url` gives each test a fresh database on
it. Without PostgreSQL those tests are skipped; under CI (`CI` set) they fail instead, since
`.ci/run` and `scripts/test` install it.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import pathlib
import pwd
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
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
        # Set by pin_port(): the Kafka address every later start listens on.
        self.pinned: str | None = None
        self.workdir.mkdir(parents=True, exist_ok=True)
        _ALL_BROKERS.append(self)

    # -- life cycle -------------------------------------------------------------------------

    def command(self) -> list[str]:
        listen = self.pinned or "127.0.0.1:0"
        cmd = [str(starling_bin()), "serve", "--listen", listen, "--data-dir", str(self.data_dir)]
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

    def pin_port(self) -> "Broker":
        """Makes every later start listen on the Kafka address this one got, so running clients
        (which know the broker by its advertised address) reconnect to it after a kill or restart."""
        assert self.bootstrap is not None, "pin_port() needs a started broker"
        self.pinned = self.bootstrap
        return self

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


# -- PostgreSQL -----------------------------------------------------------------------------

PG_READY_TIMEOUT = 60.0
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    # Runs in the child after the user change (which would clear the setting): the server dies
    # with the test process, so a run killed half-way leaves no server behind.
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def find_postgres_bin() -> pathlib.Path | None:
    """$STARLING_PG_BIN, or the newest of Debian's /usr/lib/postgresql/<version>/bin, if it holds
    `initdb` and `postgres`."""

    def has_server(d: pathlib.Path) -> bool:
        return (d / "initdb").is_file() and (d / "postgres").is_file()

    if os.environ.get("STARLING_PG_BIN"):
        d = pathlib.Path(os.environ["STARLING_PG_BIN"])
        return d if has_server(d) else None
    versions = []
    for entry in pathlib.Path("/usr/lib/postgresql").glob("*/bin"):
        if entry.parent.name.isdigit() and has_server(entry):
            versions.append((int(entry.parent.name), entry))
    return max(versions)[1] if versions else None


class Postgres:
    """A throw-away PostgreSQL server in a temporary directory, listening on a free port on
    127.0.0.1 with `trust` authentication and `fsync=off`, as crates/starling-postgres/src/testing.rs
    starts one for the Rust tests. PostgreSQL refuses to run as root: when the tests do, the
    directory is handed to the `postgres` system user (or `nobody`) and the server runs as that."""

    USER = "starling"

    def __init__(self, bin_dir: pathlib.Path):
        self.bin = bin_dir
        # Not under pytest's tmp_path: that is private to root, and the server's user must get in.
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="starling-pg-"))
        self.log_path = self.dir / "server.log"
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.run_as: tuple[int, int] | None = None
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
                self.run_as = (user.pw_uid, user.pw_gid)
            except KeyError:
                self.run_as = (65534, 65534)
            os.chown(self.dir, *self.run_as)

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess:
        """Runs one of the server's programs to completion as the server's user; raises with its
        output when it fails."""
        result = subprocess.run([str(self.bin / program), *args], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=60, **self._as_server_user())
        if result.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def _as_server_user(self) -> dict:
        options = {"cwd": self.dir}
        if self.run_as is not None:
            uid, gid = self.run_as
            # The user's own home, not root's, for anything that looks there.
            options.update(user=uid, group=gid, extra_groups=[], env={**os.environ, "HOME": str(self.dir)})
        return options

    def start(self) -> "Postgres":
        self._run("initdb", "-D", str(self.dir / "data"), "-U", self.USER, "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(self.dir / "data"), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
                 "-c", "fsync=off", "-c", "max_connections=200"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent,
                **self._as_server_user(),
            )
        deadline = time.monotonic() + PG_READY_TIMEOUT
        while True:
            ready = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                                    "-U", self.USER, "-q"], stdin=subprocess.DEVNULL, capture_output=True)
            if ready.returncode == 0:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not accept connections within {PG_READY_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.05)

    def create_database(self, name: str) -> str:
        """Creates database `name` and returns its URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER, name)
        return f"postgres://{self.USER}@127.0.0.1:{self.port}/{name}"

    def query(self, url: str, sql: str) -> str:
        """What `sql` returns in the database of `url` (one of this server's), through psql:
        unaligned rows, one a line."""
        database = url.rsplit("/", 1)[1]
        return self._run("psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                         "-p", str(self.port), "-U", self.USER, "-d", database, "-c", sql).stdout.strip()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """Stops the server (SIGQUIT: immediate shutdown, no checkpoint) and removes its files."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


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


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the whole session (see `Postgres`); skips the tests that use it
    where PostgreSQL is not installed, fails them under CI, which installs it."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        reason = ("PostgreSQL is not installed (no initdb and postgres under /usr/lib/postgresql/*/bin "
                  "or $STARLING_PG_BIN): apt-get install postgresql")
        if os.environ.get("CI"):
            pytest.fail(reason + " (.ci/run installs it)")
        pytest.skip(reason)
    server = Postgres(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


_DATABASE_SEQ = itertools.count()


@pytest.fixture
def postgres_url(postgres, request) -> str:
    """The URL of a new database of its own for this test, for `storage`."""
    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())
    return postgres.create_database(f"t{next(_DATABASE_SEQ)}_{name}"[:63])


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
