"""The web console in a real browser: headless Chromium (Debian's `chromium`) driven through
Debian's `chromedriver` against a real broker and real confluent-kafka consumers.

The overview lists the group; the group page shows the members and the lag the clients left;
after a scale-out the timeline shows the new member owning the partitions it took; an offset
reset done in the browser (preview, then confirm) is where a consumer then reads from; a group
id full of markup is shown as text. A KIP-848 (`group.protocol=consumer`) scale-out shows the
group as a consumer-protocol group with member epochs, its timeline shows the hand-overs (the
old owner revoking, the gap with no consumer, the new owner's tick) of the partitions that
moved, and its reconciliation detail row stays open across the live refresh. The topic page's
message browser shows keys, values and headers, as text and as indented JSON. Screenshots of
the pages are written to target/console-screenshots/ as test artifacts.
"""

from __future__ import annotations

import os
import pathlib
import re
import threading
import time
import urllib.parse

import pytest
from confluent_kafka import Consumer, Producer

from support import create_topic, unique_topic
from webdriver import Browser, WebDriverError, find_browser

SCREENSHOTS = pathlib.Path(__file__).resolve().parents[2] / "target" / "console-screenshots"
WAIT_S = 60.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """This module's broker: the console's readings every 500 ms, so lag histories fill fast."""
    from conftest import Broker

    b = Broker(
        tmp_path_factory.mktemp("broker"), {"admin.console.sample.interval.ms": "500"}
    ).start()
    yield b
    b.terminate()


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
    """`check()`'s first true value within `timeout`. A WebDriver error counts as not yet: an
    element found just before a navigation or a live refresh replaced the page goes stale."""
    deadline = time.monotonic() + timeout
    error = None
    while True:
        try:
            value = check()
        except WebDriverError as e:
            value, error = None, e
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}" + (f" (last error: {error})" if error else ""))
        time.sleep(0.25)


class GroupConsumer:
    """A confluent-kafka consumer in a group, polling in a thread and committing each record.

    The consumer is only ever called from its thread (librdkafka calls made from another
    thread while it polls can wait for that poll); its member id and assignment are noted in
    the rebalance callbacks, which run inside poll.
    """

    def __init__(self, bootstrap: str, group: str, topic: str, client_id: str, protocol: str = "classic"):
        config = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": client_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
        if protocol == "consumer":
            # KIP-848: the broker assigns and sets the heartbeat interval; librdkafka rejects
            # session.timeout.ms, heartbeat.interval.ms and partition.assignment.strategy here.
            config["group.protocol"] = "consumer"
        else:
            config.update({"session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
        self.consumer = Consumer(config)
        # The consumer protocol assigns and revokes incrementally; the classic (eager) one
        # hands over the whole assignment each time.
        self.incremental = protocol == "consumer"
        self.topic = topic
        self.consumed: list[tuple[int, int]] = []
        self.assigned: set[int] = set()
        self.member = ""
        self.paused = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_assign(self, consumer, partitions):
        given = {tp.partition for tp in partitions}
        self.assigned = self.assigned | given if self.incremental else given
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
        # Topic, partition, owner, committed, end, lag, recent lag (a sparkline or "–").
        rows = browser.run(
            "return Array.from(document.querySelectorAll('table.partitions tbody tr'))"
            ".map(r => Array.from(r.cells).map(c => c.textContent.trim()));"
        )
        for cells in rows:
            seen.append(cells)
            if cells[:2] == [topic, "0"]:
                # Committed, end, lag: a may have handled one more record as it paused.
                committed, end, lag = (int(c) for c in cells[3:6])
                return end == 20 and lag == end - committed and lag >= 9
        return False

    try:
        wait_until("partition 0's lag", lag_of_partition_0)
    except AssertionError as e:
        raise AssertionError(f"{e}; last row {seen}") from None

    # The broker's readings (every 500 ms here) draw partition 0's lag rising from 0.
    def rising_sparkline():
        browser.get(f"{base}/ui/groups/{group}")
        return browser.run(
            "return Array.from(document.querySelectorAll('table.partitions tbody tr'))"
            ".filter(r => r.cells[1].textContent.trim() === '0')"
            ".map(r => r.querySelector('svg.sparkline.rising title'))"
            ".filter(t => t).map(t => t.textContent)[0];"
        )

    title = wait_until("a rising lag sparkline on partition 0", rising_sparkline)
    assert re.fullmatch(r"lag over .+: 0 then, \d+ now, \d+ at most", title), title
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
        # Kafka refuses such a topic name (CreateTopics: INVALID_TOPIC_EXCEPTION), so the only
        # way one reaches a page is the URL: the answer names it, as text.
        name = "<img src=x onerror=window.pwned=2>"
        browser.get(f"http://{broker.admin}/ui/topics/" + urllib.parse.quote(name, safe=""))
        assert browser.run("return window.pwned === undefined;")
        assert browser.run("return document.querySelectorAll('main img').length;") == 0
        assert f"There is no topic '{name}'." in browser.find("main").text
    finally:
        consumer.close()


def texts_of(browser: Browser, css: str) -> list[str]:
    """The text content of every element matching `css` (hidden ones included), read in one go."""
    return browser.run(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent);", css
    )


def test_a_consumer_protocol_scale_out_shows_epochs_handovers_and_reconciliation(broker, bootstrap, browser):
    topic = unique_topic("console-kip848")
    group = f"{topic}-readers"
    create_topic(bootstrap, topic, partitions=4)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(20):
        producer.produce(topic, key=f"k{i}", value=f"v{i}", partition=i % 4)
    producer.flush(30)
    base = f"http://{broker.admin}"

    a = GroupConsumer(bootstrap, group, topic, "kip848-a", protocol="consumer")
    b = None
    try:
        wait_until("a owns all four partitions", lambda: a.assignment() == {0, 1, 2, 3})
        a_id = wait_until("a's member id", a.member_id)

        # Scale out: b joins; the broker moves two partitions from a to b.
        b = GroupConsumer(bootstrap, group, topic, "kip848-b", protocol="consumer")
        wait_until(
            "a and b own two partitions each",
            lambda: len(b.assignment()) == 2 and len(a.assignment()) == 2 and not a.assignment() & b.assignment(),
        )
        b_id = wait_until("b's member id", b.member_id)
        moved = sorted(b.assignment())

        # The overview lists the group as a consumer-protocol group.
        browser.get(f"{base}/ui/")
        protocol = browser.run(
            "const a = document.querySelector(`table.groups a[href='/ui/groups/${arguments[0]}']`);"
            "return a && a.closest('tr').cells[1].textContent;",
            group,
        )
        assert protocol is not None and protocol.split()[0] == "consumer", protocol

        # The group page: both members, each with its epoch.
        browser.get(f"{base}/ui/groups/{group}")
        headers = browser.run(
            "return Array.from(document.querySelectorAll('table.members thead th')).map(th => th.textContent);"
        )
        assert "Epoch" in headers, headers
        epoch_column = headers.index("Epoch")

        def member_rows():
            browser.get(f"{base}/ui/groups/{group}")
            rows = browser.run(
                "return Array.from(document.querySelectorAll('table.members tbody tr'))"
                ".map(r => Array.from(r.cells).map(c => c.textContent));"
            )
            by_id = {cells[0]: cells for cells in rows}
            if set(by_id) != {a_id, b_id}:
                return None
            return by_id

        rows = wait_until("the members table lists a and b", member_rows)
        for member, client in ((a_id, "kip848-a"), (b_id, "kip848-b")):
            cells = rows[member]
            assert client in cells, cells
            assert re.fullmatch(r"[1-9][0-9]*", cells[epoch_column]), cells

        # The timeline: for each moved partition, a revoking a, the gap with no consumer and
        # b's tick where it was given the partition.
        def handovers_drawn():
            browser.get(f"{base}/ui/groups/{group}")
            revoking = texts_of(browser, ".timeline svg rect.revoking title")
            gaps = texts_of(browser, ".timeline svg rect.handover-gap title")
            marks = texts_of(browser, ".timeline svg line.assigned-mark title")
            for p in moved:
                name = f"{topic}-{p}"
                if not any(t.startswith(f"{a_id} asked to revoke {name} at ") for t in revoking):
                    return None
                if not any(t.startswith(f"{name}: {a_id} → {b_id};") for t in gaps):
                    return None
                if not any(t.startswith(f"{b_id} was given {name} at ") for t in marks):
                    return None
            # Only partitions that moved, and none of a's that stayed.
            stayed = {f"{topic}-{p}" for p in a.assignment()}
            assert not any(t.split(" at ")[0].split()[-1] in stayed for t in revoking), revoking
            return revoking, gaps, marks

        try:
            wait_until("the timeline shows the hand-overs", handovers_drawn)
        except AssertionError as e:
            svg = html_of(browser, ".timeline svg")
            raise AssertionError(f"{e}; moved {moved}, a {a_id}, b {b_id}\n{svg}") from None
        legend = texts_of(browser, ".timeline svg g.legend text")
        assert "revoking (until released)" in legend and "no consumer (hand-over)" in legend, legend
        # The table says what the scale-out stopped: only the moved partitions, for the longest
        # release-to-assignment gap.
        stopped_column = texts_of(browser, "table.rebalances thead th").index("Consumption stopped")
        newest = browser.run(
            "return Array.from(document.querySelector('table.rebalances tbody tr').cells)"
            ".map(c => c.textContent);"
        )
        assert re.fullmatch(rf"{len(moved)} partitions, up to \d+(\.\d)? m?s", newest[stopped_column]), newest

        # The reconciliation row under the rebalance: folded, opened with a click, and still
        # open after the page's live refresh has swapped its content.
        def detail_with_b():
            browser.get(f"{base}/ui/groups/{group}")
            details = browser.run(
                "return Array.from(document.querySelectorAll('tr.reconciliation details'))"
                ".map(d => [d.id, d.textContent]);"
            )
            return next((i for i, text in details if b_id in text and "joined →" in text), None)

        details = f"details#{wait_until('a reconciliation row naming b', detail_with_b)}"
        table = f"{details} table.reconciliation"
        assert not browser.find(table).text, "the detail row starts folded"
        browser.run("document.querySelector('main').dataset.before = 'refresh';")
        browser.find(f"{details} summary").click()
        detail_text = browser.find(table).text
        b_row = next(line for line in detail_text.splitlines() if line.startswith(b_id))
        assert "joined →" in b_row and f"{topic} {moved[0]}" in b_row, detail_text
        a_row = next(line for line in detail_text.splitlines() if line.startswith(a_id))
        assert f"{topic} {moved[0]}" in a_row, detail_text
        browser.run("document.getElementById('timeline').scrollIntoView();")
        browser.screenshot(SCREENSHOTS / "group-consumer-protocol.png")
        wait_until(
            "the live refresh",
            lambda: browser.run("return document.querySelector('main').dataset.before === undefined;"),
            timeout=20,
        )
        assert browser.run("return document.querySelector(arguments[0]).open;", details), "closed by the refresh"
    finally:
        if b is not None:
            b.close()
        a.close()


def test_the_topic_page_browses_keys_values_and_headers_as_text_and_json(broker, bootstrap, browser):
    topic = unique_topic("console-browse")
    create_topic(bootstrap, topic, partitions=1)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key="order-17", value='{"item":"tea","qty":3,"tags":["green"]}',
                     headers=[("trace-id", b"abc-123")])
    producer.produce(topic, key="order-18", value="plain words", headers=[("source", b"web")])
    producer.produce(topic, key=None, value=None)
    assert producer.flush(30) == 0
    base = f"http://{broker.admin}"

    browser.get(f"{base}/ui/topics/{topic}")
    wait_until("the topic page", lambda: topic in browser.find("h1").text)

    def messages() -> list[list[str]]:
        return browser.run(
            "return Array.from(document.querySelectorAll('table.messages tbody tr'))"
            ".map(r => Array.from(r.cells).map(c => c.innerText.trim()));"
        )

    # Offset, timestamp, key, headers, value: as text by default.
    rows = messages()
    assert [r[0] for r in rows] == ["0", "1", "2"], rows
    assert rows[0][2] == "order-17" and rows[0][3] == "trace-id=abc-123", rows[0]
    assert rows[0][4] == '{"item":"tea","qty":3,"tags":["green"]}', rows[0]
    assert rows[1][2:] == ["order-18", "source=web", "plain words"], rows[1]
    assert rows[2][2] == "null" and rows[2][4] == "null", rows[2]

    # The form: JSON from offset 0 shows the JSON value indented, the rest as it is.
    browser.find('select[name="format"] option[value="json"]').click()
    browser.find('input[name="offset"]').clear()
    browser.find('input[name="offset"]').type("0")
    browser.find("form.filter button").click()
    wait_until("the JSON view", lambda: "format=json" in browser.url)
    rows = messages()
    assert [r[0] for r in rows] == ["0", "1", "2"], rows
    assert rows[0][4] == '{\n  "item": "tea",\n  "qty": 3,\n  "tags": [\n    "green"\n  ]\n}', rows[0]
    assert rows[0][2] == "order-17" and rows[0][3] == "trace-id=abc-123", rows[0]
    assert rows[1][2:] == ["order-18", "source=web", "plain words"], rows[1]
    browser.screenshot(SCREENSHOTS / "topic-json.png")

    # And back to text, from offset 1.
    browser.find('select[name="format"] option[value="text"]').click()
    browser.find('input[name="offset"]').clear()
    browser.find('input[name="offset"]').type("1")
    browser.find("form.filter button").click()
    wait_until("the text view from offset 1", lambda: "format=text" in browser.url and "offset=1" in browser.url)
    rows = messages()
    assert [r[0] for r in rows] == ["1", "2"], rows
    assert rows[0][2:] == ["order-18", "source=web", "plain words"], rows[0]
    browser.screenshot(SCREENSHOTS / "topic-text.png")
