"""Topic and broker configs through confluent-kafka's AdminClient (librdkafka 2.16) and
kafka-python's KafkaAdminClient (its own protocol code): describe with sources and synonyms,
IncrementalAlterConfigs and AlterConfigs, validate_only, run-time broker defaults that reach
topics and survive a restart, and every refusal with Kafka's error.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
)
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType

from support import admin, unique_topic

TIMEOUT_S = 30


def create(bootstrap: str, name: str, config: dict[str, str] | None = None) -> None:
    client = admin(bootstrap)
    client.create_topics([NewTopic(name, 1, config=config or {})])[name].result(TIMEOUT_S)


def describe(bootstrap: str, kind: str, name: str) -> dict:
    resource = ConfigResource(kind, name)
    client = admin(bootstrap)
    return client.describe_configs([resource])[resource].result(TIMEOUT_S)


def incremental(bootstrap: str, kind: str, name: str, entries, validate_only: bool = False):
    resource = ConfigResource(kind, name, incremental_configs=entries)
    client = admin(bootstrap)
    futures = client.incremental_alter_configs([resource], validate_only=validate_only)
    return futures[resource].result(TIMEOUT_S)


def refused(bootstrap: str, kind: str, name: str, entries) -> KafkaError:
    with pytest.raises(KafkaException) as caught:
        incremental(bootstrap, kind, name, entries)
    return caught.value.args[0]


def entry(name: str, value: str | None, op=AlterConfigOpType.SET) -> ConfigEntry:
    return ConfigEntry(name, value, incremental_operation=op)


def produce(bootstrap: str, topic: str, size: int) -> KafkaError | None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 10_000})
    outcome: list[KafkaError | None] = []
    producer.produce(topic, b"x" * size, partition=0, on_delivery=lambda err, _msg: outcome.append(err))
    producer.flush(TIMEOUT_S)
    assert len(outcome) == 1
    return outcome[0]


def test_confluent_describes_a_topic_with_sources_and_synonyms(bootstrap):
    topic = unique_topic("described")
    create(bootstrap, topic, {"retention.ms": "3600000"})
    configs = describe(bootstrap, "topic", topic)
    retention = configs["retention.ms"]
    assert (retention.value, retention.source) == ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert not retention.is_read_only and not retention.is_default
    synonyms = [(s.name, s.value) for s in retention.synonyms.values()]
    assert synonyms[0] == ("retention.ms", "3600000")
    assert ("log.retention.hours", "168") in synonyms
    segment = configs["segment.bytes"]
    assert (segment.value, segment.source) == ("1073741824", ConfigSource.DEFAULT_CONFIG.value)
    assert segment.is_default
    assert configs["cleanup.policy"].value == "delete"


def test_confluent_incremental_changes_take_effect_at_once(bootstrap):
    topic = unique_topic("altered")
    create(bootstrap, topic)
    assert produce(bootstrap, topic, 5000) is None
    incremental(bootstrap, "topic", topic, [
        entry("max.message.bytes", "2000"),
        entry("cleanup.policy", "delete", AlterConfigOpType.APPEND),
    ])
    error = produce(bootstrap, topic, 5000)
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE
    configs = describe(bootstrap, "topic", topic)
    assert configs["max.message.bytes"].value == "2000"
    assert configs["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    # validate_only: accepted, nothing changes.
    incremental(bootstrap, "topic", topic, [entry("max.message.bytes", "9000")], validate_only=True)
    assert describe(bootstrap, "topic", topic)["max.message.bytes"].value == "2000"

    incremental(bootstrap, "topic", topic, [entry("max.message.bytes", None, AlterConfigOpType.DELETE)])
    assert produce(bootstrap, topic, 5000) is None
    assert describe(bootstrap, "topic", topic)["max.message.bytes"].source == ConfigSource.DEFAULT_CONFIG.value


def test_confluent_sees_kafkas_errors_naming_the_key(bootstrap):
    topic = unique_topic("guarded")
    create(bootstrap, topic)
    error = refused(bootstrap, "topic", topic, [entry("no.such.config", "1")])
    assert error.code() == KafkaError.INVALID_CONFIG
    assert "no.such.config" in error.str()
    error = refused(bootstrap, "topic", topic, [entry("retention.ms", "soon")])
    assert error.code() == KafkaError.INVALID_CONFIG
    assert "retention.ms" in error.str()
    error = refused(bootstrap, "topic", topic, [entry("retention.ms", "5", AlterConfigOpType.APPEND)])
    assert error.code() == KafkaError.INVALID_CONFIG
    assert error.str() == "Config value append is not allowed for config key: retention.ms"
    error = refused(bootstrap, "topic", unique_topic("missing"), [entry("retention.ms", "5")])
    assert error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    error = refused(bootstrap, "broker", "1", [entry("num.partitions", "3")])
    assert error.code() == KafkaError.INVALID_REQUEST
    assert "num.partitions" in error.str()
    with pytest.raises(KafkaException) as caught:
        describe(bootstrap, "topic", unique_topic("missing"))
    assert caught.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_a_run_time_broker_default_reaches_topics_and_survives_a_restart(broker_factory):
    b = broker_factory()
    topic = unique_topic("inherits")
    create(b.bootstrap, topic)
    configs = describe(b.bootstrap, "broker", "1")
    assert not configs["log.retention.ms"].is_read_only
    assert configs["node.id"].is_read_only
    incremental(b.bootstrap, "broker", "1", [entry("log.retention.ms", "120000")])
    retention = describe(b.bootstrap, "topic", topic)["retention.ms"]
    assert (retention.value, retention.source) == ("120000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    b.restart()
    retention = describe(b.bootstrap, "topic", topic)["retention.ms"]
    assert (retention.value, retention.source) == ("120000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    broker = describe(b.bootstrap, "broker", "1")["log.retention.ms"]
    assert (broker.value, broker.source) == ("120000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)


def test_kafka_python_reads_modified_configs_alters_and_resets_them(bootstrap):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="starling-tests", request_timeout_ms=30_000)
    try:
        topic = unique_topic("kp-configs")
        client.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}}, timeout_ms=30_000)
        resource = KpConfigResource(ConfigResourceType.TOPIC, topic)
        assert client.describe_configs([resource])["topic"][topic] == {}

        result = client.alter_configs([KpConfigResource(ConfigResourceType.TOPIC, topic,
                                                        configs={"retention.ms": "60000"})])
        assert result == {"topic": {topic: "OK"}}
        modified = client.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
        assert set(modified) == {"retention.ms"}
        assert modified["retention.ms"]["value"] == "60000"

        # The legacy AlterConfigs replaces the set; kafka-python carries the other overrides along.
        result = client.alter_configs([KpConfigResource(ConfigResourceType.TOPIC, topic,
                                                        configs={"segment.ms": "600000"})], incremental=False)
        assert result == {"topic": {topic: "OK"}}
        modified = client.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
        assert {k: v["value"] for k, v in modified.items()} == {"retention.ms": "60000", "segment.ms": "600000"}

        result = client.alter_configs([KpConfigResource(ConfigResourceType.TOPIC, topic,
                                                        configs={"retention.ms": "later"})])
        assert "InvalidConfigurationError" in result["topic"][topic]

        # Every override back to its default (an empty set of keys means all of them).
        client.reset_configs([KpConfigResource(ConfigResourceType.TOPIC, topic, configs={})])
        assert client.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic] == {}
    finally:
        client.close()
