"""SASL on a SASL_PLAINTEXT listener with real clients: confluent-kafka (librdkafka 2.16) with
SCRAM-SHA-512 and PLAIN, kafka-python with SCRAM-SHA-256 and PLAIN, each producing, consuming
in a group and committing; a wrong password and an unknown user refused with Kafka's message.

The SCRAM users are created on the broker while it still has its PLAINTEXT listener (through
AlterUserScramCredentials), the PLAIN user's line comes from `starling user hash-password`;
then the broker restarts with `listeners=SASL_PLAINTEXT://...`.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import (
    AdminClient,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from conftest import starling_bin

TIMEOUT = 30
MECHANISMS = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory):
    from conftest import Broker

    workdir = tmp_path_factory.mktemp("sasl-broker")
    broker = Broker(workdir).start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    upserts = [
        UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"alice-secret"),
        UserScramCredentialUpsertion("bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"bob-secret"),
    ]
    for future in admin.alter_user_scram_credentials(upserts, request_timeout=TIMEOUT).values():
        future.result(timeout=TIMEOUT)
    futures = admin.create_topics([NewTopic(t, 1, 1) for t in ("sasl-a", "sasl-b", "sasl-c", "sasl-d")])
    for future in futures.values():
        future.result(timeout=TIMEOUT)
    del admin
    line = subprocess.run(
        [str(starling_bin()), "user", "hash-password", "carol"],
        input="carol-secret\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    ).stdout.strip()
    users = workdir / "plain-users"
    users.write_text(line + "\n")
    broker.overrides.update(
        {
            "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
            "sasl.enabled.mechanisms": MECHANISMS,
            "sasl.plain.users.file": str(users),
        }
    )
    broker.restart()
    yield broker
    broker.terminate()


def librdkafka_config(broker, mechanism, user, password, **extra):
    config = {
        "bootstrap.servers": broker.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }
    config.update(extra)
    return config


@pytest.mark.parametrize(
    "mechanism,user,password,topic",
    [("SCRAM-SHA-512", "bob", "bob-secret", "sasl-a"), ("PLAIN", "carol", "carol-secret", "sasl-b")],
)
def test_confluent_kafka_produces_and_consumes_in_a_group_after_authenticating(
    sasl_broker, mechanism, user, password, topic
):
    producer = Producer(librdkafka_config(sasl_broker, mechanism, user, password))
    for i in range(10):
        producer.produce(topic, key=b"k", value=f"v{i}".encode())
    assert producer.flush(TIMEOUT) == 0
    group = f"sasl-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(
        librdkafka_config(
            sasl_broker,
            mechanism,
            user,
            password,
            **{"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False},
        )
    )
    consumer.subscribe([topic])
    values = []
    while len(values) < 10:
        msg = consumer.poll(TIMEOUT)
        assert msg is not None, f"only {values} arrived"
        assert msg.error() is None, msg.error()
        values.append(msg.value().decode())
    consumer.commit(asynchronous=False)
    committed = consumer.committed(consumer.assignment(), timeout=TIMEOUT)
    assert [tp.offset for tp in committed] == [10]
    consumer.close()
    assert values == [f"v{i}" for i in range(10)]


@pytest.mark.parametrize(
    "mechanism,user,password",
    [("SCRAM-SHA-512", "bob", "wrong"), ("SCRAM-SHA-512", "nobody", "x"), ("PLAIN", "carol", "wrong")],
)
def test_confluent_kafka_reports_a_refused_login_as_an_authentication_error(sasl_broker, mechanism, user, password):
    errors = []
    config = librdkafka_config(sasl_broker, mechanism, user, password, error_cb=errors.append)
    producer = Producer(config)
    producer.produce("sasl-a", value=b"never")
    producer.flush(5)
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, errors
    # Kafka's messages: SCRAM's never says whether the user exists; PLAIN's is PlainSaslServer's.
    expected = (
        "Authentication failed: Invalid username or password"
        if mechanism == "PLAIN"
        else f"Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
    )
    assert expected in auth[0].str(), auth[0].str()


def test_a_mechanism_not_enabled_is_refused(sasl_broker):
    # OAUTHBEARER is not offered: librdkafka reports the broker's list.
    errors = []
    config = librdkafka_config(sasl_broker, "OAUTHBEARER", "bob", "bob-secret", error_cb=errors.append)
    config.pop("sasl.username")
    config.pop("sasl.password")
    config["enable.sasl.oauthbearer.unsecure.jwt"] = True
    config["sasl.oauthbearer.config"] = "principal=bob"
    producer = Producer(config)
    producer.produce("sasl-a", value=b"never")
    producer.flush(5)
    assert any("SCRAM-SHA-512" in e.str() for e in errors), errors


@pytest.mark.parametrize(
    "mechanism,user,password,topic",
    [("SCRAM-SHA-256", "alice", "alice-secret", "sasl-c"), ("PLAIN", "carol", "carol-secret", "sasl-d")],
)
def test_kafka_python_produces_and_consumes_in_a_group_after_authenticating(
    sasl_broker, mechanism, user, password, topic
):
    from kafka import KafkaConsumer, KafkaProducer

    auth = {
        "bootstrap_servers": sasl_broker.bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }
    producer = KafkaProducer(**auth)
    for i in range(5):
        producer.send(topic, f"w{i}".encode()).get(timeout=TIMEOUT)
    producer.close()
    consumer = KafkaConsumer(
        topic,
        group_id=f"kp-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=TIMEOUT * 1000,
        **auth,
    )
    values = []
    for message in consumer:
        values.append(message.value.decode())
        if len(values) == 5:
            break
    consumer.commit()
    consumer.close()
    assert values == [f"w{i}" for i in range(5)]


def test_kafka_python_sees_kafkas_authentication_error_for_a_wrong_password(sasl_broker, caplog):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KafkaPythonError

    # kafka-python logs the broker's error (58, SASL_AUTHENTICATION_FAILED, with its message)
    # and keeps retrying until it gives up bootstrapping.
    with pytest.raises(KafkaPythonError):
        KafkaProducer(
            bootstrap_servers=sasl_broker.bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_plain_username="alice",
            sasl_plain_password="wrong",
            max_block_ms=5000,
        )
    expected = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
    assert any("SaslAuthenticationFailedError" in r.getMessage() and expected in r.getMessage() for r in caplog.records)


def test_kcat_produces_and_consumes_with_scram_sha_512(sasl_broker):
    """Debian's kcat (librdkafka 2.0.2, an older client) through SCRAM-SHA-512."""
    import shutil

    path = shutil.which("kcat")
    if path is None:
        pytest.fail("kcat is not installed (scripts/test installs it; Debian: apt-get install kcat)")
    auth = [
        "-b", sasl_broker.bootstrap,
        "-X", "security.protocol=SASL_PLAINTEXT",
        "-X", "sasl.mechanism=SCRAM-SHA-512",
        "-X", "sasl.username=bob",
        "-X", "sasl.password=bob-secret",
    ]
    lines = "".join(f"kcat-{i}\n" for i in range(3))
    subprocess.run([path, *auth, "-P", "-t", "sasl-a", "-p", "0"], input=lines, text=True, check=True, timeout=TIMEOUT)
    out = subprocess.run(
        [path, *auth, "-C", "-t", "sasl-a", "-p", "0", "-o", "-3", "-e", "-q"],
        capture_output=True, text=True, check=True, timeout=TIMEOUT,
    ).stdout
    assert out.splitlines() == ["kcat-0", "kcat-1", "kcat-2"]
    refused = subprocess.run(
        [path, *auth[:-1], "sasl.password=wrong", "-L", "-m", "5"],
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert refused.returncode != 0
    assert "Authentication failed during authentication due to invalid credentials" in refused.stderr, refused.stderr
