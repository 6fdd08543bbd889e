"""ACL enforcement from Python: a broker with Kafka's StandardAuthorizer and `super.users=User:admin`
serves `User:ANONYMOUS` (every connection until SASL) exactly what its ACLs grant. The ACLs and
topics are set up while ANONYMOUS is a super user, then the broker restarts without that.
kafka-python and confluent-kafka consume in a group, commit, produce, and are refused where the
ACLs say so, with Kafka's authorization errors.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as CTopicPartition
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType)
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
from kafka.structs import TopicPartition

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
TIMEOUT = 30


def grant(name, operation, restype=ResourceType.TOPIC, pattern=ResourcePatternType.LITERAL,
          permission=AclPermissionType.ALLOW):
    return AclBinding(restype, name, pattern, "User:ANONYMOUS", "*", operation, permission)


@pytest.fixture
def restricted(broker_factory):
    """Makes a broker holding `topics` (three records each) whose ANONYMOUS has only `acls`."""

    def make(topics, acls):
        broker = broker_factory({"authorizer.class.name": AUTHORIZER,
                                 "super.users": "User:admin;User:ANONYMOUS"})
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for f in admin.create_topics([NewTopic(t, 1, 1) for t in topics]).values():
            f.result(timeout=TIMEOUT)
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for t in topics:
            for v in (b"one", b"two", b"three"):
                producer.produce(t, v, partition=0)
        assert producer.flush(TIMEOUT) == 0
        for f in admin.create_acls(acls, request_timeout=TIMEOUT).values():
            f.result(timeout=TIMEOUT)
        broker.overrides["super.users"] = "User:admin"
        return broker.restart()

    return make


def confluent_consume(bootstrap, group, topic, wanted):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    values, error = [], None
    deadline = time.time() + TIMEOUT
    try:
        while len(values) < wanted and error is None and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                error = msg.error()
            else:
                values.append(msg.value())
        if error is None and values:
            consumer.commit(asynchronous=False)
            committed = consumer.committed([CTopicPartition(topic, 0)], timeout=TIMEOUT)
            assert committed[0].offset == len(values)
    finally:
        consumer.close()
    return values, error


def test_confluent_consumes_only_what_it_may_read(restricted):
    broker = restricted(["a", "b"], [grant("a", AclOperation.READ),
                                     grant("g", AclOperation.READ, ResourceType.GROUP)])
    values, error = confluent_consume(broker.bootstrap, "g", "a", 3)
    assert error is None and values == [b"one", b"two", b"three"]

    values, error = confluent_consume(broker.bootstrap, "g", "b", 1)
    assert values == [] and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    values, error = confluent_consume(broker.bootstrap, "h", "a", 1)
    assert values == [] and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED

    # Metadata hides b.
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert sorted(admin.list_topics(timeout=TIMEOUT).topics) == ["a"]


def test_confluent_producer_is_refused_without_write(restricted):
    broker = restricted(["a", "b"], [grant("a", AclOperation.WRITE)])
    results = {}

    def report(err, msg):
        results[msg.topic()] = err

    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                         "message.timeout.ms": 20000})
    producer.produce("a", b"x", partition=0, on_delivery=report)
    producer.produce("b", b"x", partition=0, on_delivery=report)
    producer.flush(TIMEOUT)
    assert results["a"] is None
    assert results["b"].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_deny_beats_a_prefixed_allow(restricted):
    broker = restricted(["app-one", "app-secret"], [
        grant("app-", AclOperation.READ, pattern=ResourcePatternType.PREFIXED),
        grant("app-secret", AclOperation.READ, permission=AclPermissionType.DENY),
        grant("g", AclOperation.READ, ResourceType.GROUP),
    ])
    values, error = confluent_consume(broker.bootstrap, "g", "app-one", 3)
    assert error is None and len(values) == 3
    values, error = confluent_consume(broker.bootstrap, "g", "app-secret", 1)
    assert values == [] and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_kafka_python_group_consumer_and_producer(restricted):
    broker = restricted(["a", "b"], [grant("a", AclOperation.READ),
                                     grant("g", AclOperation.READ, ResourceType.GROUP)])
    consumer = KafkaConsumer("a", bootstrap_servers=broker.bootstrap, group_id="g",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=20000)
    values = []
    for msg in consumer:
        values.append(msg.value)
        if len(values) == 3:
            break
    assert values == [b"one", b"two", b"three"]
    consumer.commit()
    assert consumer.committed(TopicPartition("a", 0)) == 3
    consumer.close()

    # A group it may not read.
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="h",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    consumer.subscribe(["a"])
    with pytest.raises(GroupAuthorizationFailedError):
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            consumer.poll(timeout_ms=500)
    consumer.close()

    # Reading a is not writing it.
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, retries=0, max_block_ms=10000)
    with pytest.raises(TopicAuthorizationFailedError):
        producer.send("a", b"x", partition=0).get(timeout=TIMEOUT)
    producer.close()
