"""Client quotas from Python: kafka-python's protocol messages for DescribeClientQuotas and
AlterClientQuotas (kafka-python's KafkaAdminClient has no quota methods; confluent-kafka has
none either), and confluent-kafka producers throttled by a producer_byte_rate, seen through
librdkafka's statistics (`brokers.*.throttle`) and their achieved rate.
"""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Producer
from kafka import KafkaAdminClient
from kafka.protocol.admin import AlterClientQuotasRequest, DescribeClientQuotasRequest

from support import create_topic, unique_topic

INVALID_REQUEST = 42
Entry = AlterClientQuotasRequest.EntryData
Component = DescribeClientQuotasRequest.ComponentData


def send(admin: KafkaAdminClient, request):
    return admin._manager.run(admin._manager.send, request)


def alter(admin, entity, ops, validate_only=False, **version):
    request = AlterClientQuotasRequest(
        entries=[Entry(entity=[Entry.EntityData(entity_type=t, entity_name=n) for t, n in entity],
                       ops=[Entry.OpData(key=k, value=v if v is not None else 0.0, remove=v is None)
                            for k, v in ops])],
        validate_only=validate_only, **version)
    response = send(admin, request)
    assert len(response.entries) == 1
    return response.entries[0].error_code, response.entries[0].error_message


def describe(admin, components, strict=False, **version):
    request = DescribeClientQuotasRequest(
        components=[Component(entity_type=t, match_type=m, match=n) for t, m, n in components],
        strict=strict, **version)
    return send(admin, request)


def as_dict(response):
    return {tuple(sorted((e.entity_type, e.entity_name) for e in entry.entity)):
            {v.key: v.value for v in entry.values} for entry in response.entries}


@pytest.fixture
def admin(bootstrap):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="py-quotas", request_timeout_ms=30_000)
    yield client
    client.close()


@pytest.mark.parametrize("version", [0, 1])
def test_kafka_python_alters_and_describes_quotas_at_each_version(admin, version):
    v = {"min_version": version, "max_version": version}
    client = f"py-app-{version}"
    assert alter(admin, [("client-id", client)], [("producer_byte_rate", 1024.0), ("request_percentage", 25.0)], **v)[0] == 0
    assert alter(admin, [("user", None), ("client-id", client)], [("consumer_byte_rate", 4096.0)], **v)[0] == 0
    # validate_only checks and changes nothing
    assert alter(admin, [("client-id", client)], [("producer_byte_rate", 1.0)], validate_only=True, **v)[0] == 0

    found = as_dict(describe(admin, [("client-id", 0, client)], **v))
    assert found == {
        (("client-id", client),): {"producer_byte_rate": 1024.0, "request_percentage": 25.0},
        (("client-id", client), ("user", None)): {"consumer_byte_rate": 4096.0},
    }
    strict = as_dict(describe(admin, [("client-id", 0, client)], strict=True, **v))
    assert list(strict) == [(("client-id", client),)]
    default_user = as_dict(describe(admin, [("user", 1, None), ("client-id", 0, client)], **v))
    assert list(default_user) == [(("client-id", client), ("user", None))]

    # remove one key, then the other: the entity is gone
    assert alter(admin, [("client-id", client)], [("request_percentage", None)], **v)[0] == 0
    assert alter(admin, [("client-id", client)], [("producer_byte_rate", None)], **v)[0] == 0
    assert as_dict(describe(admin, [("client-id", 0, client)], strict=True, **v)) == {}


@pytest.mark.parametrize("entity, ops, message", [
    ([], [("producer_byte_rate", 1.0)], "Invalid empty client quota entity"),
    ([("topic", "t")], [("producer_byte_rate", 1.0)], "Unhandled client quota entity type: topic"),
    ([("client-id", "a")], [("bogus", 1.0)], "Invalid configuration key bogus"),
    ([("client-id", "a")], [("producer_byte_rate", 0.0)], "Quota producer_byte_rate must be greater than 0"),
    ([("client-id", "a")], [("consumer_byte_rate", 2.5)], "consumer_byte_rate cannot be a fractional value."),
    ([("ip", "1.2.3.4"), ("user", "u")], [("connection_creation_rate", 1.0)],
     "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"),
])
def test_kafka_python_gets_kafkas_alter_errors(admin, entity, ops, message):
    assert alter(admin, entity, ops) == (INVALID_REQUEST, message)


def test_kafka_python_gets_kafkas_describe_errors(admin):
    response = describe(admin, [("client-id", 0, None)])
    assert response.error_code == INVALID_REQUEST
    assert response.error_message == "Request specified MATCH_TYPE_EXACT, but set match string to null."
    response = describe(admin, [("ip", 2, None), ("user", 2, None)])
    assert response.error_code == INVALID_REQUEST
    assert "IP filter component should not be used" in response.error_message


def produce_for(bootstrap: str, topic: str, client_id: str, seconds: float):
    """Produces 1 kB messages as fast as delivery allows; returns (bytes/s, max throttle ms seen
    in librdkafka's statistics)."""
    throttles = []

    def on_stats(raw):
        stats = json.loads(raw)
        for b in stats.get("brokers", {}).values():
            throttles.append(b.get("throttle", {}).get("max", 0))

    producer = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 0,
                         "statistics.interval.ms": 200, "stats_cb": on_stats,
                         "queue.buffering.max.kbytes": 256})
    value = b"q" * 1000
    sent = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for _ in range(32):
            try:
                producer.produce(topic, value=value)
                sent += len(value)
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(30) == 0
    elapsed = time.monotonic() - started
    producer.poll(0.5)
    return sent / elapsed, max(throttles, default=0)


def test_a_confluent_producer_over_its_byte_rate_is_throttled_and_another_client_id_is_not(admin, bootstrap):
    topic = unique_topic("quota")
    create_topic(bootstrap, topic)
    quota = 40_000.0
    assert alter(admin, [("client-id", "py-slow")], [("producer_byte_rate", quota)])[0] == 0

    rate, throttle = produce_for(bootstrap, topic, "py-slow", 6.0)
    # The first 10 s window's allowance spread over ~6 s is ~1.7x the quota; loosely under 3x.
    assert rate < 3 * quota, f"{rate:.0f} B/s against {quota:.0f}"
    assert throttle > 0, "librdkafka saw no throttle_time_ms"

    free_rate, free_throttle = produce_for(bootstrap, topic, "py-free", 2.0)
    assert free_throttle == 0
    assert free_rate > 3 * quota, f"unthrottled client id reached only {free_rate:.0f} B/s"
