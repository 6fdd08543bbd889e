"""The broker with its partition logs in PostgreSQL (`--storage postgres://…`), driven by
independent clients: kafka-python (its own protocol code and group client) and confluent-kafka
(librdkafka). The Rust end-to-end tests (crates/starling/tests/postgres_partitions.rs) drive the
same storage with librdkafka through the rdkafka crate; these make sure a second, independent
implementation of the protocol sees the same thing.

Each test gets a database of its own on a throw-away PostgreSQL server (the `postgres` and
`postgres_url` fixtures in conftest.py) and a broker on it with node leases short enough that a
start after kill -9 waits about three seconds for the old registration to lapse. What the
clients produced is counted again with SQL in the `batches` table (through psql), so a test
passes only when the records really live in the database. Group state (committed offsets) is
in the database too. The last tests run two nodes on one database: groups whose coordinator is
killed, transactions spanning both nodes.
"""

from __future__ import annotations

import collections
import time

from confluent_kafka import (OFFSET_BEGINNING, ConsumerGroupTopicPartitions, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import NewTopic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaPythonTopicPartition
from kafka.errors import KafkaError as KafkaPythonError

from support import OP_TIMEOUT, admin, consume_all, create_topic, make_consumer, produce_and_track, unique_topic

WAIT_S = 30.0


def postgres_broker(broker_factory, url: str):
    """A broker on the database `url`, with node leases that lapse three seconds after a kill."""
    return broker_factory({
        "storage": url,
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
    })


def stored_records(postgres, url: str, topic: str) -> int:
    """How many records (not transaction markers) of `topic` the database holds, by SQL."""
    return int(postgres.query(url, f"""
        SELECT coalesce(sum(b.last_offset - b.base_offset + 1), 0)
        FROM batches b JOIN topics t USING (topic_id)
        WHERE t.name = '{topic}' AND NOT b.is_control"""))


def group_consume(bootstrap: str, topic: str, group: str, count: int) -> list:
    """Joins `group` with a kafka-python KafkaConsumer subscribed to `topic`, reads from the
    earliest offset until `count` records arrived, makes sure no more come, commits and leaves."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        request_timeout_ms=30_000,
    )
    try:
        got = []
        deadline = time.monotonic() + WAIT_S
        while len(got) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(records)
        assert len(got) == count, f"group {group} received {len(got)} of {count} records within {WAIT_S}s"
        extra = [(r.partition, r.offset) for rs in consumer.poll(timeout_ms=1000).values() for r in rs]
        assert extra == [], f"records beyond the {count} produced: {extra}"
        consumer.commit()
        return got
    finally:
        consumer.close()


def by_partition(records) -> dict[int, list[tuple[int, bytes]]]:
    """kafka-python records as {partition: [(offset, value), ...]} in the order they arrived."""
    out: dict[int, list[tuple[int, bytes]]] = collections.defaultdict(list)
    for r in records:
        out[r.partition].append((r.offset, r.value))
    return dict(out)


def test_kafka_python_reads_every_record_from_postgres_once_in_offset_order_before_and_after_a_restart(
        broker_factory, postgres, postgres_url):
    b = postgres_broker(broker_factory, postgres_url)
    topic = unique_topic("pg-kafka-python")
    client = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=30_000)
    try:
        client.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}},
                             timeout_ms=30_000, wait_for_metadata=True)
    finally:
        client.close()

    producer = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all", linger_ms=5, request_timeout_ms=30_000)
    try:
        futures = [producer.send(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode()) for i in range(300)]
        producer.flush(timeout=WAIT_S)
        placed = [f.get(timeout=WAIT_S) for f in futures]
    finally:
        producer.close()
    # What each partition must hold, as the acknowledgements placed it: dense offsets from 0,
    # in the order the records were sent (one producer, keys spread over all three partitions).
    expected: dict[int, list[tuple[int, bytes]]] = collections.defaultdict(list)
    for i, meta in enumerate(placed):
        expected[meta.partition].append((meta.offset, f"value-{i}".encode()))
    expected = dict(expected)
    assert sorted(expected) == [0, 1, 2], {p: len(v) for p, v in expected.items()}
    for p, rows in expected.items():
        assert [offset for offset, _ in rows] == list(range(len(rows))), f"partition {p}"
    assert stored_records(postgres, postgres_url, topic) == 300

    first_group = unique_topic("pg-group")
    assert by_partition(group_consume(b.bootstrap, topic, first_group, 300)) == expected

    b.restart()

    # The records come back from the database, the same ones at the same offsets.
    assert by_partition(group_consume(b.bootstrap, topic, unique_topic("pg-group"), 300)) == expected
    # The first group's committed offsets (rows in group_records) survived the restart too.
    client = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=30_000)
    try:
        tps = [KafkaPythonTopicPartition(topic, p) for p in range(3)]
        committed = client.list_group_offsets({first_group: tps}).get(first_group, {})
    finally:
        client.close()
    assert {tp.partition: meta.offset for tp, meta in committed.items()} == \
        {p: len(rows) for p, rows in expected.items()}


def test_an_idempotent_producer_carries_on_after_kill_9_without_losing_or_duplicating_records(
        broker_factory, postgres, postgres_url):
    # The same producer (same producer id, sequence numbers continuing) writes before and after
    # the kill, so the broker comes back on the same port and must rebuild its producer state
    # from the rows.
    b = postgres_broker(broker_factory, postgres_url).pin_port()
    topic = unique_topic("pg-idempotent")
    create_topic(b.bootstrap, topic, partitions=2)
    producer = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    records = [{"key": f"key-{i}".encode(), "value": f"value-{i}".encode(), "partition": i % 2} for i in range(250)]

    placed = produce_and_track(producer, topic, records[:200])
    assert stored_records(postgres, postgres_url, topic) == 200

    b.kill()
    b.start()
    assert b.bootstrap == b.pinned

    placed += produce_and_track(producer, topic, records[200:])
    # Dense offsets per partition, continuing where the acknowledged records before the kill ended.
    assert placed == [(i % 2, i // 2) for i in range(250)]
    assert stored_records(postgres, postgres_url, topic) == 250
    # All of them under the producer id and epoch it started with: the broker accepted the
    # sequence numbers continuing after the kill rather than making it start over.
    assert postgres.query(postgres_url, f"""
        SELECT count(DISTINCT b.producer_id), count(DISTINCT b.producer_epoch), max(b.base_sequence) > 0
        FROM batches b JOIN topics t USING (topic_id)
        WHERE t.name = '{topic}'""") == "1|1|t"

    got = consume_all(b.bootstrap, topic, 2, 250)
    assert sorted((m.partition(), m.offset(), m.value()) for m in got) == \
        [(p, i // 2, f"value-{i}".encode()) for p in (0, 1) for i in range(p, 250, 2)]


def read_values(bootstrap: str, topic: str, partitions: int, isolation: str, count: int) -> dict[int, list[bytes]]:
    """Every partition of `topic` read from the beginning at `isolation` until `count` records
    arrived (and no more come): {partition: [value, ...]} in offset order."""
    consumer = make_consumer(bootstrap, **{"isolation.level": isolation})
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got = []
        deadline = time.monotonic() + WAIT_S
        while len(got) < count and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=100, timeout=0.5):
                if msg.error():
                    raise KafkaException(msg.error())
                got.append(msg)
        assert len(got) == count, f"{isolation}: received {len(got)} of {count} records within {WAIT_S}s"
        extra = [(m.partition(), m.offset()) for m in consumer.consume(num_messages=100, timeout=2.0) if not m.error()]
        assert extra == [], f"{isolation}: records beyond the {count} expected: {extra}"
        values: dict[int, list[bytes]] = collections.defaultdict(list)
        for m in sorted(got, key=lambda m: (m.partition(), m.offset())):
            values[m.partition()].append(m.value())
        return dict(values)
    finally:
        consumer.close()


def test_read_committed_consumers_see_only_committed_transactions_on_postgres(
        broker_factory, postgres, postgres_url):
    b = postgres_broker(broker_factory, postgres_url)
    topic = unique_topic("pg-txn")
    create_topic(b.bootstrap, topic, partitions=2)
    producer = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": unique_topic("pg-txn-writer"),
                         "linger.ms": 5})
    producer.init_transactions(OP_TIMEOUT)

    def transaction(values: list[str], commit: bool) -> None:
        producer.begin_transaction()
        for i, value in enumerate(values):
            producer.produce(topic, value=value.encode(), partition=i % 2)
        if commit:
            producer.commit_transaction(OP_TIMEOUT)
        else:
            # Flushed first, so the aborted records really are in the log before the marker.
            assert producer.flush(OP_TIMEOUT) == 0
            producer.abort_transaction(OP_TIMEOUT)

    transaction(["a1", "a2", "a3", "a4"], commit=True)
    transaction(["x1", "x2", "x3", "x4"], commit=False)
    transaction(["b1", "b2", "b3", "b4"], commit=True)

    assert read_values(b.bootstrap, topic, 2, "read_committed", 8) == {
        0: [b"a1", b"a3", b"b1", b"b3"],
        1: [b"a2", b"a4", b"b2", b"b4"],
    }
    # The aborted records are stored, only hidden: read_uncommitted sees all twelve.
    assert read_values(b.bootstrap, topic, 2, "read_uncommitted", 12) == {
        0: [b"a1", b"a3", b"x1", b"x3", b"b1", b"b3"],
        1: [b"a2", b"a4", b"x2", b"x4", b"b2", b"b4"],
    }
    assert stored_records(postgres, postgres_url, topic) == 12
    markers = postgres.query(postgres_url, f"""
        SELECT b.marker_commits, count(*)
        FROM batches b JOIN topics t USING (topic_id)
        WHERE t.name = '{topic}' AND b.is_control
        GROUP BY b.marker_commits ORDER BY b.marker_commits""")
    # One marker per partition per transaction: two aborts, four commits.
    assert markers.splitlines() == ["f|2", "t|4"]


def test_a_compacted_topic_keeps_the_latest_value_of_each_key_on_postgres(broker_factory, postgres, postgres_url):
    """The log cleaner compacts a PostgreSQL partition as it compacts an embedded one: the
    latest value of each key stays at its offset, the superseded records are gone."""
    b = broker_factory({
        "storage": postgres_url,
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
        "log.cleaner.backoff.ms": "100",
    })
    topic = unique_topic("pg-compacted")
    client = admin(b.bootstrap)
    futures = client.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1,
                  config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"})],
        operation_timeout=OP_TIMEOUT, request_timeout=OP_TIMEOUT)
    futures[topic].result(timeout=OP_TIMEOUT)
    # Three rounds over five keys: offsets 10-14 hold the latest values.
    producer = Producer({"bootstrap.servers": b.bootstrap})
    produce_and_track(producer, topic, [{"key": f"k{i % 5}".encode(), "value": f"r{i // 5}-k{i % 5}".encode(),
                                         "partition": 0} for i in range(15)])
    latest = [(10 + k, f"r2-k{k}".encode()) for k in range(5)]
    tp = KafkaPythonTopicPartition(topic, 0)
    deadline = time.monotonic() + WAIT_S
    while True:
        consumer = KafkaConsumer(bootstrap_servers=b.bootstrap, enable_auto_commit=False, request_timeout_ms=30_000)
        try:
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            got = []
            until = time.monotonic() + 10
            while len(got) < 5 and time.monotonic() < until:
                for records in consumer.poll(timeout_ms=200).values():
                    got.extend((r.offset, r.value) for r in records)
        finally:
            consumer.close()
        if got[:5] == latest:
            break
        assert time.monotonic() < deadline, f"not compacted: {got}"
        time.sleep(0.3)
    # No offset moved: the log still ends at 15.
    consumer = KafkaConsumer(bootstrap_servers=b.bootstrap, request_timeout_ms=30_000)
    try:
        assert consumer.end_offsets([tp]) == {tp: 15}
    finally:
        consumer.close()


def test_a_group_whose_strings_hold_nul_is_stored_and_read_back_as_sent_on_postgres(
        broker_factory, postgres, postgres_url):
    """Kafka's strings may hold NUL, PostgreSQL's text cannot: a kafka-python member whose
    client id holds one commits offset metadata holding one, and both are stored (escaped) and
    read back as sent, across a restart. (Such a write used to fail as a storage fault.)"""
    from kafka.structs import OffsetAndMetadata

    b = postgres_broker(broker_factory, postgres_url)
    topic = unique_topic("pg-nul")
    create_topic(b.bootstrap, topic, partitions=1)
    produce_and_track(Producer({"bootstrap.servers": b.bootstrap}), topic,
                      [{"value": f"v{i}".encode(), "partition": 0} for i in range(3)])
    group = unique_topic("pg-nul-group")
    tp = KafkaPythonTopicPartition(topic, 0)
    metadata = "from\x00a client\x01"

    # Stored escaped (NUL as U+0001 U+0001, U+0001 as U+0001 U+0002) in the group's rows.
    def rows_holding(text: str) -> int:
        return int(postgres.query(postgres_url, f"""
            SELECT count(*) FROM group_records
            WHERE group_id = '{group}' AND strpos(value::text, '{text}') > 0"""))

    consumer = KafkaConsumer(topic, bootstrap_servers=b.bootstrap, group_id=group, client_id="odd\x00client",
                             auto_offset_reset="earliest", enable_auto_commit=False, request_timeout_ms=30_000)
    try:
        deadline = time.monotonic() + WAIT_S
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
        assert consumer.assignment() == {tp}
        consumer.commit({tp: OffsetAndMetadata(2, metadata, -1)})
        assert consumer.committed(tp, metadata=True).metadata == metadata
        assert rows_holding(r"odd\u0001\u0001client") == 1  # the member, in the group's row
    finally:
        consumer.close()
    assert rows_holding(r"from\u0001\u0001a client\u0001\u0002") == 1  # the committed offset

    b.restart()
    client = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=30_000)
    try:
        committed = client.list_group_offsets({group: [tp]}).get(group, {})
    finally:
        client.close()
    assert committed[tp].offset == 2
    assert committed[tp].metadata == metadata


def cluster_node(broker_factory, url: str, node_id: int):
    """Node `node_id` of a cluster sharing the database `url`."""
    return broker_factory({
        "storage": url,
        "node.id": str(node_id),
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
        "group.initial.rebalance.delay.ms": "0",
    })


def leaders_seen(bootstrap: str, topic: str) -> tuple[set[int], dict[int, int]]:
    """(broker ids, {partition: leader}) as the node at `bootstrap` answers Metadata."""
    md = admin(bootstrap).list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    leaders = {} if t is None or t.error is not None else {p: pm.leader for p, pm in t.partitions.items()}
    return set(md.brokers), leaders


def test_kafka_python_group_members_on_two_nodes_carry_on_when_one_node_is_killed(
        broker_factory, postgres, postgres_url):
    """Two nodes share one database: confluent-kafka produces through both, a kafka-python group
    with one member bootstrapped at each node consumes everything; node 2 is killed and the
    group, the producer and every partition carry on through node 1, with nothing lost and the
    committed offsets at the end."""
    n1 = cluster_node(broker_factory, postgres_url, 1)
    n2 = cluster_node(broker_factory, postgres_url, 2)
    topic, group = unique_topic("pg-cluster"), unique_topic("pg-cluster-group")
    create_topic(n1.bootstrap, topic, partitions=6)
    deadline = time.monotonic() + WAIT_S
    while True:
        seen = [leaders_seen(n.bootstrap, topic) for n in (n1, n2)]
        if all(brokers == {1, 2} and len(leaders) == 6 and set(leaders.values()) <= {1, 2}
               and leaders == seen[0][1] for brokers, leaders in seen):
            break
        assert time.monotonic() < deadline, f"the nodes never agreed on the leaders: {seen}"
        time.sleep(0.2)

    producer = Producer({"bootstrap.servers": f"{n1.bootstrap},{n2.bootstrap}", "enable.idempotence": True,
                         "linger.ms": 5})
    records = [{"key": f"key-{i}".encode(), "value": f"value-{i}".encode(), "partition": i % 6} for i in range(600)]
    placed = produce_and_track(producer, topic, records[:300])

    members = [KafkaConsumer(topic, bootstrap_servers=n.bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, request_timeout_ms=30_000, session_timeout_ms=6_000,
                             heartbeat_interval_ms=500)
               for n in (n1, n2)]
    got: dict[bytes, tuple[int, int]] = {}

    def consume_until(count: int) -> None:
        deadline = time.monotonic() + 90
        while len(got) < count:
            assert time.monotonic() < deadline, f"the group consumed {len(got)} of {count} records"
            for m in members:
                for rs in m.poll(timeout_ms=200).values():
                    for r in rs:
                        got[r.key] = (r.partition, r.offset)
                try:
                    m.commit()
                except KafkaPythonError:
                    pass  # a rebalance in progress (a node went away): the next poll rejoins

    try:
        consume_until(300)
        n2.kill()
        placed += produce_and_track(producer, topic, records[300:])
        consume_until(600)
        assert got == {rec["key"]: at for rec, at in zip(records, placed)}
        # Commit what each member holds once the group has settled.
        deadline = time.monotonic() + 30
        pending = list(members)
        while pending:
            assert time.monotonic() < deadline, "the final commits never went through"
            m = pending.pop(0)
            m.poll(timeout_ms=200)
            try:
                m.commit()
            except KafkaPythonError:
                pending.append(m)
    finally:
        for m in members:
            m.close()
    client = KafkaAdminClient(bootstrap_servers=n1.bootstrap, request_timeout_ms=30_000)
    try:
        tps = [KafkaPythonTopicPartition(topic, p) for p in range(6)]
        committed = client.list_group_offsets({group: tps}).get(group, {})
    finally:
        client.close()
    assert {tp.partition: meta.offset for tp, meta in committed.items()} == {p: 100 for p in range(6)}


def test_confluent_kafka_cooperative_group_on_two_nodes_survives_its_coordinator_being_killed(
        broker_factory, postgres, postgres_url):
    """confluent-kafka (librdkafka 2.16) members with the cooperative-sticky assignor, one
    bootstrapped at each node: the node coordinating the group is killed, the group moves to
    the other node and every record is consumed, the committed offsets at the end."""
    nodes = {1: cluster_node(broker_factory, postgres_url, 1), 2: cluster_node(broker_factory, postgres_url, 2)}
    topic, group = unique_topic("pg-coop"), unique_topic("pg-coop-group")
    create_topic(nodes[1].bootstrap, topic, partitions=4)
    bootstrap = ",".join(n.bootstrap for n in nodes.values())
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    records = [{"key": f"key-{i}".encode(), "value": b"v", "partition": i % 4} for i in range(400)]
    placed = produce_and_track(producer, topic, records[:200])

    members = [make_consumer(n.bootstrap, **{"group.id": group, "auto.offset.reset": "earliest",
                                             "partition.assignment.strategy": "cooperative-sticky",
                                             "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
               for n in nodes.values()]
    got: dict[bytes, tuple[int, int]] = {}

    def consume_until(count: int) -> None:
        deadline = time.monotonic() + 90
        while len(got) < count:
            assert time.monotonic() < deadline, f"the group consumed {len(got)} of {count} records"
            for m in members:
                for msg in m.consume(num_messages=100, timeout=0.2):
                    if msg.error() is None:
                        got[msg.key()] = (msg.partition(), msg.offset())
                try:
                    m.commit(asynchronous=False)
                except KafkaException:
                    pass  # nothing to commit yet, or a rebalance in progress

    try:
        for m in members:
            m.subscribe([topic])
        consume_until(200)
        client = admin(nodes[1].bootstrap)
        coordinator = client.describe_consumer_groups([group])[group].result(timeout=30).coordinator.id
        nodes[coordinator].kill()
        survivor = nodes[3 - coordinator]
        placed += produce_and_track(producer, topic, records[200:])
        consume_until(400)
        assert got == {rec["key"]: at for rec, at in zip(records, placed)}
        deadline = time.monotonic() + 30
        while True:
            for m in members:
                m.consume(num_messages=10, timeout=0.2)
                try:
                    m.commit(asynchronous=False)
                except KafkaException:
                    pass
            client = admin(survivor.bootstrap)
            offsets = client.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group)])[group].result(timeout=30).topic_partitions
            if {tp.partition: tp.offset for tp in offsets} == {p: 100 for p in range(4)}:
                break
            assert time.monotonic() < deadline, f"committed offsets: {offsets}"
    finally:
        for m in members:
            m.close()


def test_confluent_kafka_transactions_span_both_nodes_and_kafka_python_reads_them_committed(
        broker_factory, postgres, postgres_url):
    """Two nodes share one database: a confluent-kafka transactional producer bootstrapped at
    both writes to partitions each node leads and commits a group's offsets in its transactions
    (whichever node coordinates the group and the transactions); kafka-python, reading
    read_committed through the other node, sees exactly the committed records, and the group's
    offset is the last committed transaction's."""
    n1 = cluster_node(broker_factory, postgres_url, 1)
    n2 = cluster_node(broker_factory, postgres_url, 2)
    topic, source = unique_topic("pg-cluster-txn"), unique_topic("pg-cluster-txn-in")
    group = unique_topic("pg-cluster-txn-group")
    create_topic(n1.bootstrap, topic, partitions=8)
    create_topic(n1.bootstrap, source, partitions=1)
    deadline = time.monotonic() + WAIT_S
    while True:
        seen = [leaders_seen(n.bootstrap, topic) for n in (n1, n2)]
        if all(brokers == {1, 2} and len(leaders) == 8 and set(leaders.values()) == {1, 2}
               and leaders == seen[0][1] for brokers, leaders in seen):
            break
        assert time.monotonic() < deadline, f"the nodes never agreed on leaders spread over both: {seen}"
        time.sleep(0.2)

    producer = Producer({"bootstrap.servers": f"{n1.bootstrap},{n2.bootstrap}",
                         "transactional.id": unique_topic("pg-cluster-txn-writer"), "linger.ms": 5})
    producer.init_transactions(OP_TIMEOUT)
    metadata = make_consumer(n2.bootstrap, **{"group.id": group}).consumer_group_metadata()

    def transaction(prefix: str, offset: int, commit: bool) -> None:
        producer.begin_transaction()
        for p in range(8):
            producer.produce(topic, value=f"{prefix}-{p}".encode(), partition=p)
        producer.send_offsets_to_transaction([TopicPartition(source, 0, offset)], metadata, OP_TIMEOUT)
        if commit:
            producer.commit_transaction(OP_TIMEOUT)
        else:
            assert producer.flush(OP_TIMEOUT) == 0
            producer.abort_transaction(OP_TIMEOUT)

    transaction("first", 10, commit=True)
    transaction("dropped", 20, commit=False)
    transaction("second", 30, commit=True)

    consumer = KafkaConsumer(bootstrap_servers=n2.bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, request_timeout_ms=30_000)
    try:
        consumer.assign([KafkaPythonTopicPartition(topic, p) for p in range(8)])
        consumer.seek_to_beginning()
        got = []
        deadline = time.monotonic() + WAIT_S
        while len(got) < 16 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(r.value.decode() for r in records)
        extra = [r.value for rs in consumer.poll(timeout_ms=1500).values() for r in rs]
    finally:
        consumer.close()
    assert sorted(got) == sorted(f"{prefix}-{p}" for prefix in ("first", "second") for p in range(8))
    assert extra == []

    reader = KafkaConsumer(bootstrap_servers=n1.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        assert reader.committed(KafkaPythonTopicPartition(source, 0)) == 30
    finally:
        reader.close()
    assert postgres.query(postgres_url, "SELECT count(*) FROM txn_markers").strip() == "0"
