"""The web console in a real browser: headless Chromium (Debian's `chromium`) driven through
Debian's `chromedriver` against a real broker and real confluent-kafka consumers.

The overview lists the group; the group page shows the members and the lag the clients left;
after a scale-out the timeline shows the new member owning the partitions it took; an offset
reset done in the browser (preview, then confirm) is where a consumer then reads from; a group
id full of markup is shown as text. Screenshots of the pages are written to
target/console-screenshots/ as test artifacts.
"""

from __future__ import annotations

import os
import pathlib
import re
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer

from support import create_topic, unique_topic
from webdriver import Browser, find_browser

SCREENSHOTS = pathlib.Path(__file__).resolve().parents[2] / "target" / "console-screenshots"
WAIT_S = 60.0


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, chromedriver = find_browser()
    if chromium is None or chromedriver is None:
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are missing (.ci/run installs them)")
        pytest.skip("chromium or chromedriver is not installed (apt-get install chromium chromium-driver)")
    b = Browser(chromium, chromedriver, tmp_path_factory.mktemp("chromedriver") / "chromedriver.log")
    yield b
    b.close()


def wait_until(what: str, check, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.25)


class GroupConsumer:
    """A confluent-kafka consumer in a group, polling in a thread and committing each record.

    The consumer is only ever called from its thread (librdkafka calls made from another
    thread while it polls can wait for that poll); its member id and assignment are noted in
    the rebalance callbacks, which run inside poll.
    """

    def __init__(self, bootstrap: str, group: str, topic: str, client_id: str):
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "client.id": client_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 500,
            }
        )
        self.topic = topic
        self.consumed: list[tuple[int, int]] = []
        self.assigned: set[int] = set()
        self.member = ""
        self.paused = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_assign(self, consumer, partitions):
        self.assigned = {tp.partition for tp in partitions}
        self.member = consumer.memberid() or ""

    def _on_revoke(self, consumer, partitions):
        self.assigned -= {tp.partition for tp in partitions}

    def _run(self):
        self.consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        while not self.stopped.is_set():
            if self.paused.is_set():
                # Not polling for a few seconds: librdkafka keeps heartbeating meanwhile.
                time.sleep(0.1)
                continue
            msg = self.consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            self.consumed.append((msg.partition(), msg.offset()))
            self.consumer.commit(message=msg, asynchronous=False)
        self.consumer.close()

    def member_id(self) -> str:
        return self.member

    def assignment(self) -> set[int]:
        return set(self.assigned)

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=30)


def html_of(browser: Browser, css: str) -> str:
    return browser.run("return document.querySelector(arguments[0]).outerHTML;", css)


def test_the_console_shows_a_group_its_lag_a_scale_out_and_resets_its_offsets(broker, bootstrap, browser):
    topic = unique_topic("console")
    group = f"{topic}-readers"
    create_topic(bootstrap, topic, partitions=4)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(40):
        producer.produce(topic, key=f"k{i}", value=f"v{i}", partition=i % 4)
    producer.flush(30)
    base = f"http://{broker.admin}"

    a = GroupConsumer(bootstrap, group, topic, "console-a")
    wait_until("a consumed everything", lambda: len(a.consumed) >= 40)

    # The overview lists the group; its link leads to the group page.
    browser.get(f"{base}/ui/")
    link = browser.find(f'a[href="/ui/groups/{group}"]')
    assert link.text == group
    browser.screenshot(SCREENSHOTS / "overview.png")
    link.click()
    wait_until("the group page", lambda: browser.url.endswith(f"/ui/groups/{group}"))
    members = browser.find("table.members").text
    assert "console-a" in members and a.member_id() in members
    facts = browser.find("dl.facts").text
    assert re.search(r"Total lag\s+0\b", facts), facts

    # Lag: ten more records on partition 0 while a is paused show as lag there.
    a.paused.set()
    for i in range(10):
        producer.produce(topic, key=f"late{i}", value="x", partition=0)
    producer.flush(30)

    seen = []

    def lag_of_partition_0():
        browser.get(f"{base}/ui/groups/{group}")
        for row in browser.find_all("table.partitions tbody tr"):
            cells = row.text.split()
            seen.append(row.text)
            if cells[:2] == [topic, "0"]:
                # Committed, end, lag: a may have handled one more record as it paused.
                committed, end, lag = (int(c) for c in cells[-3:])
                return end == 20 and lag == end - committed and lag >= 9
        return False

    try:
        wait_until("partition 0's lag", lag_of_partition_0)
    except AssertionError as e:
        raise AssertionError(f"{e}; last row {seen}") from None
    a.paused.clear()

    # Scale out: b joins and takes two partitions; the timeline shows it owning them.
    b = GroupConsumer(bootstrap, group, topic, "console-b")
    wait_until("b has two partitions", lambda: len(b.assignment()) == 2 and len(a.assignment()) == 2)
    b_id = wait_until("b's member id", b.member_id)

    def timeline_shows_b():
        browser.get(f"{base}/ui/groups/{group}")
        svg = html_of(browser, ".timeline svg")
        return b_id in svg and all(f"{topic}-{p}" in svg for p in b.assignment())

    wait_until("the timeline shows b", timeline_shows_b)
    browser.screenshot(SCREENSHOTS / "group.png")

    # An offset reset from the browser: stop both, preview, confirm.
    a.close()
    b.close()
    wait_until(
        "the group is empty",
        lambda: (browser.get(f"{base}/ui/groups/{group}") or True)
        and "Empty" in browser.find("dl.facts").text,
    )
    browser.find('select[name="to"] option[value="offset"]').click()
    browser.find('input[name="value"]').type("3")
    browser.find("form[action$=\"/reset\"] button").click()
    wait_until("the dry run", lambda: "/reset?" in browser.url)
    preview = browser.find("table.reset").text
    assert preview.count("\n") >= 4, preview
    browser.screenshot(SCREENSHOTS / "reset-preview.png")
    browser.find('form[method="post"] button').click()
    wait_until("the reset done", lambda: "Done." in browser.find("main").text)

    c = GroupConsumer(bootstrap, group, topic, "console-c")
    try:
        wait_until("c read every partition", lambda: {p for p, _ in c.consumed} == {0, 1, 2, 3})
        first = {p: min(o for q, o in c.consumed if q == p) for p in range(4)}
        assert first == {0: 3, 1: 3, 2: 3, 3: 3}, first
    finally:
        c.close()


def test_a_group_id_made_of_markup_is_shown_as_text(broker, bootstrap, browser):
    topic = unique_topic("console-markup")
    create_topic(bootstrap, topic, partitions=1)
    group = "<b>bold</b><script>window.pwned=1</script>"
    consumer = GroupConsumer(bootstrap, group, topic, "<i>client</i>")
    try:
        wait_until("assigned", lambda: consumer.assignment() == {0})
        browser.get(f"http://{broker.admin}/ui/")
        assert browser.run("return window.pwned === undefined;")
        assert browser.run("return document.querySelectorAll('table.groups b').length;") == 0
        assert group in browser.find("table.groups").text
        browser.find("table.groups a[href*='%3Cb%3E']").click()
        wait_until("the group page", lambda: "%3Cb%3E" in browser.url)
        assert browser.run("return window.pwned === undefined;")
        assert browser.run("return document.querySelectorAll('main i').length;") == 0
        assert "<i>client</i>" in browser.find("table.members").text
    finally:
        consumer.close()
