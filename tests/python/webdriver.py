"""A small W3C WebDriver client (the protocol chromedriver speaks), enough to drive the web
console in headless Chromium: open pages, find elements by CSS selector, read text, type,
click, run a script and take screenshots. Debian's `chromium` and `chromium-driver` packages
provide the browser and the driver; nothing is downloaded.
"""

from __future__ import annotations

import base64
import json
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> tuple[str | None, str | None]:
    """(chromium, chromedriver) paths, or None for what is missing."""
    browser = next((p for p in map(shutil.which, CHROMIUM_CANDIDATES) if p), None)
    return browser, shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriverError(RuntimeError):
    pass


class Browser:
    """A chromedriver process and one headless Chromium session."""

    def __init__(self, chromium: str, chromedriver: str, log: pathlib.Path):
        self.port = _free_port()
        self._log = open(log, "ab")
        self.proc = subprocess.Popen(
            [chromedriver, f"--port={self.port}"],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                self._call("GET", "/status")
                break
            except (OSError, WebDriverError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise WebDriverError(f"chromedriver did not start (see {log})")
                time.sleep(0.1)
        capabilities = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--window-size=1300,1200",
                        ],
                    },
                }
            }
        }
        session = self._call("POST", "/session", capabilities)
        self.session = f"/session/{session['sessionId']}"

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise WebDriverError(f"{method} {path}: {e.code} {e.read()[:500]!r}") from None
        return answer.get("value")

    def _session(self, method: str, path: str, body: dict | None = None):
        return self._call(method, self.session + path, body)

    # -- navigation and elements ---------------------------------------------------------------

    def get(self, url: str) -> None:
        self._session("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return self._session("GET", "/url")

    def find(self, css: str) -> "Element":
        found = self._session("POST", "/element", {"using": "css selector", "value": css})
        return Element(self, found[ELEMENT])

    def find_all(self, css: str) -> list["Element"]:
        found = self._session("POST", "/elements", {"using": "css selector", "value": css})
        return [Element(self, f[ELEMENT]) for f in found]

    def run(self, script: str, *args):
        return self._session("POST", "/execute/sync", {"script": script, "args": list(args)})

    def screenshot(self, path: pathlib.Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._session("GET", "/screenshot")))

    def close(self) -> None:
        try:
            self._call("DELETE", self.session)
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


class Element:
    def __init__(self, browser: Browser, element_id: str):
        self.browser = browser
        self.path = f"/element/{element_id}"

    @property
    def text(self) -> str:
        return self.browser._session("GET", self.path + "/text")

    def attribute(self, name: str):
        return self.browser._session("GET", f"{self.path}/property/{name}")

    def click(self) -> None:
        self.browser._session("POST", self.path + "/click", {})

    def clear(self) -> None:
        self.browser._session("POST", self.path + "/clear", {})

    def type(self, text: str) -> None:
        self.browser._session("POST", self.path + "/value", {"text": text})
