"""TLS listeners with real clients: one broker with PLAINTEXT, SSL and SASL_SSL listeners at once,
its PEM key store and trust store made by `trustme` in the test.

- confluent-kafka (librdkafka 2.16) over SASL_SSL with SCRAM-SHA-512, and over SSL with a client
  certificate (`ssl.client.auth=required`) whose subject `ssl.principal.mapping.rules` turns into
  the principal the StandardAuthorizer judges: the mapped principal reads and writes its topic,
  commits in its group, and is refused another topic with TOPIC_AUTHORIZATION_FAILED; a subject
  no rule matches is the whole RFC 2253 name (DEFAULT).
- kcat (Debian's, on librdkafka 2.0.2) over SASL_SSL with SCRAM-SHA-512: producing, consuming in a
  group (its committed offset read back), and a wrong password refused.
- kafka-python over SASL_SSL with PLAIN: KafkaProducer, KafkaConsumer in a group with a commit,
  and a wrong password refused.
- Failures: a client that does not trust the broker's CA (confluent-kafka and kafka-python), an
  SSL client without a certificate when one is required, and a plaintext client on the SSL port,
  closed at once (a raw socket, and librdkafka giving up within seconds).

confluent-kafka's clients are told, in Metadata, the address of the listener they came in on. The
ACLs and SCRAM users are made through the PLAINTEXT listener, whose certificate-less clients are
`User:ANONYMOUS`, the only super user.
"""

from __future__ import annotations

import logging
import shutil
import socket
import struct
import subprocess
import time
import uuid

import pytest
import trustme
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from support import starling_bin

TIMEOUT = 30
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# CN=Alice,OU=Apps,O=Acme (RFC 2253 order: the certificate's last RDN first) -> User:alice.
MAPPING_RULES = "RULE:^CN=([^,]*),OU=Apps,.*$/$1/L,DEFAULT"
SCRAM_USER, SCRAM_PASSWORD = "dave", "dave-secret"
PLAIN_USER, PLAIN_PASSWORD = "carol", "carol-secret"
SCRAM_AUTH_FAILED = (
    "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
)


class Pki:
    """The test's certificates, as PEM files in `dir`."""

    def __init__(self, dir):
        self.dir = dir
        self.ca = trustme.CA(organization_name="Starling test CA")
        # librdkafka and kafka-python check the broker's name: 127.0.0.1 is an IP SAN.
        server = self.ca.issue_cert("localhost", "127.0.0.1")
        self.keystore = dir / "broker-keystore.pem"
        server.private_key_and_cert_chain_pem.write_to_path(str(self.keystore))
        self.ca_pem = dir / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_pem))
        stranger = trustme.CA(organization_name="Someone else")
        self.stranger_ca_pem = dir / "stranger-ca.pem"
        stranger.cert_pem.write_to_path(str(self.stranger_ca_pem))

    def client(self, name, **subject):
        """A client certificate and key (cert path, key path) with the given subject names."""
        leaf = self.ca.issue_cert(f"{name}@clients.example", **subject)
        cert, key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        return str(cert), str(key)


def allow(principal, restype, name, pattern=ResourcePatternType.LITERAL):
    return AclBinding(restype, name, pattern, principal, "*", AclOperation.ALL, AclPermissionType.ALLOW)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory, pki):
    from conftest import Broker

    workdir = tmp_path_factory.mktemp("tls-broker")
    line = subprocess.run(
        [str(starling_bin()), "user", "hash-password", PLAIN_USER],
        input=PLAIN_PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    ).stdout.strip()
    users = workdir / "plain-users"
    users.write_text(line + "\n")
    broker = Broker(
        workdir,
        {
            "listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(pki.keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(pki.ca_pem),
            # The SSL listener wants a certificate; SASL_SSL would only heed
            # listener.name.sasl_ssl.ssl.client.auth, so its clients show none.
            "ssl.client.auth": "required",
            "ssl.principal.mapping.rules": MAPPING_RULES,
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
            "sasl.plain.users.file": str(users),
            "authorizer.class.name": AUTHORIZER,
            "super.users": "User:ANONYMOUS",
        },
    ).start()
    assert list(broker.listeners) == ["PLAINTEXT", "SSL", "SASL_SSL"], broker.listeners
    assert broker.bootstrap == broker.listeners["PLAINTEXT"]

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    upsert = UserScramCredentialUpsertion(
        SCRAM_USER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), SCRAM_PASSWORD.encode()
    )
    for future in admin.alter_user_scram_credentials([upsert], request_timeout=TIMEOUT).values():
        future.result(timeout=TIMEOUT)
    # Each SASL user owns the topics and groups named after it; alice (by her certificate)
    # owns alice-topic and alice-group; bob's unmapped subject owns bob-topic.
    acls = []
    for user in (SCRAM_USER, PLAIN_USER):
        for restype in (ResourceType.TOPIC, ResourceType.GROUP):
            acls.append(allow(f"User:{user}", restype, f"{user}-", ResourcePatternType.PREFIXED))
    acls += [
        allow("User:alice", ResourceType.TOPIC, "alice-topic"),
        allow("User:alice", ResourceType.GROUP, "alice-group"),
        allow("User:CN=bob,OU=Staff,O=Acme", ResourceType.TOPIC, "bob-topic"),
    ]
    for future in admin.create_acls(acls, request_timeout=TIMEOUT).values():
        future.result(timeout=TIMEOUT)
    topics = ["alice-topic", "bob-topic", "secret-topic", "dave-kcat", "dave-confluent", "carol-kp"]
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics], operation_timeout=TIMEOUT).values():
        future.result(timeout=TIMEOUT)
    del admin
    yield broker
    crashed = None if broker.running() else broker.proc.returncode
    broker.terminate()
    if crashed is not None:
        pytest.fail(f"the TLS broker exited by itself with {crashed}\n{broker.log_tail()}")


# -- confluent-kafka ----------------------------------------------------------------------------


def sasl_ssl_config(broker, pki, mechanism, user, password, **extra):
    config = {
        "bootstrap.servers": broker.listeners["SASL_SSL"],
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(pki.ca_pem),
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }
    config.update(extra)
    return config


def ssl_config(broker, pki, client=None, **extra):
    config = {
        "bootstrap.servers": broker.listeners["SSL"],
        "security.protocol": "SSL",
        "ssl.ca.location": str(pki.ca_pem),
    }
    if client is not None:
        config["ssl.certificate.location"], config["ssl.key.location"] = client
    config.update(extra)
    return config


def advertised(config):
    """The brokers Metadata names to a client with `config`, as "host:port"."""
    md = AdminClient(config).list_topics(timeout=TIMEOUT)
    return sorted(f"{b.host}:{b.port}" for b in md.brokers.values())


def produce(config, topic, values):
    """Produces `values` to partition 0; returns the delivery errors (empty when all arrived)."""
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(err)

    producer = Producer(config)
    for value in values:
        producer.produce(topic, value=value.encode(), partition=0, on_delivery=delivered)
    assert producer.flush(TIMEOUT) == 0, "deliveries still outstanding"
    return errors


def consume_in_group(config, group, topic, n):
    """Joins `group`, reads `n` records of `topic`, commits; returns the values and the committed offset."""
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        values = []
        deadline = time.monotonic() + TIMEOUT
        while len(values) < n:
            assert time.monotonic() < deadline, f"only {values} arrived"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            values.append(msg.value().decode())
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=TIMEOUT)
        return values, committed[0].offset
    finally:
        consumer.close()


class _Lines(logging.Handler):
    """Appends each log record's message to `lines`."""

    def __init__(self, lines):
        super().__init__()
        self.lines = lines

    def emit(self, record):
        self.lines.append(record.getMessage())


def client_errors(config, seconds=5.0, logs=None):
    """The errors librdkafka reports (error_cb) while a producer tries to reach the broker; its
    log lines go to `logs` (a list) when given."""
    errors = []
    config = {**config, "error_cb": errors.append}
    if logs is not None:
        logger = logging.getLogger(f"librdkafka-{uuid.uuid4().hex[:8]}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(_Lines(logs))
        config["logger"] = logger
    producer = Producer(config)
    producer.produce("never-delivered", value=b"x")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not errors:
        producer.poll(0.2)
    producer.purge()
    producer.flush(1)
    return errors


def test_confluent_kafka_over_sasl_ssl_with_scram_sha_512(tls_broker, pki):
    config = sasl_ssl_config(tls_broker, pki, "SCRAM-SHA-512", SCRAM_USER, SCRAM_PASSWORD)
    assert advertised(config) == [tls_broker.listeners["SASL_SSL"]]
    values = [f"scram-{i}" for i in range(10)]
    assert produce(config, "dave-confluent", values) == []
    got, committed = consume_in_group(config, f"dave-{uuid.uuid4().hex[:8]}", "dave-confluent", 10)
    assert got == values
    assert committed == 10
    # The same user is judged by its ACLs: secret-topic is not among its prefixes.
    refused = produce(config, "secret-topic", ["no"])
    assert [e.code() for e in refused] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], refused


def test_confluent_kafka_refuses_a_wrong_scram_password_over_sasl_ssl(tls_broker, pki):
    errors = client_errors(sasl_ssl_config(tls_broker, pki, "SCRAM-SHA-512", SCRAM_USER, "wrong"))
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, errors
    assert SCRAM_AUTH_FAILED in auth[0].str(), auth[0].str()


def test_a_client_certificate_names_the_principal_the_acls_judge(tls_broker, pki):
    alice = pki.client("alice", common_name="Alice", organization_unit_name="Apps", organization_name="Acme")
    config = ssl_config(tls_broker, pki, alice)
    assert advertised(config) == [tls_broker.listeners["SSL"]]
    values = ["x", "y", "z"]
    assert produce(config, "alice-topic", values) == []
    got, committed = consume_in_group(config, "alice-group", "alice-topic", 3)
    assert (got, committed) == (values, 3)
    refused = produce(config, "secret-topic", ["no"])
    assert [e.code() for e in refused] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], refused
    # Another group is refused as well.
    consumer = Consumer({**config, "group.id": "not-alices", "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe(["alice-topic"])
        msg = None
        deadline = time.monotonic() + TIMEOUT
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
        assert msg is not None and msg.error() is not None, "a record from a group alice may not use"
        assert msg.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED, msg.error()
    finally:
        consumer.close()


def test_a_subject_no_rule_matches_is_the_whole_name(tls_broker, pki):
    # OU=Staff, not Apps: DEFAULT keeps "CN=bob,OU=Staff,O=Acme", which the ACLs grant bob-topic
    # and not alice's.
    bob = pki.client("bob", common_name="bob", organization_unit_name="Staff", organization_name="Acme")
    config = ssl_config(tls_broker, pki, bob)
    assert produce(config, "bob-topic", ["b1", "b2"]) == []
    refused = produce(config, "alice-topic", ["no"])
    assert [e.code() for e in refused] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], refused


def test_an_ssl_client_without_a_certificate_is_refused(tls_broker, pki):
    errors = client_errors(ssl_config(tls_broker, pki))
    # With TLS 1.3 the client learns of the refusal on its first read, as the broker's alert.
    assert any("alert certificate required" in e.str() for e in errors), [e.str() for e in errors]


def test_a_client_that_does_not_trust_the_broker_fails_the_handshake(tls_broker, pki):
    config = sasl_ssl_config(tls_broker, pki, "SCRAM-SHA-512", SCRAM_USER, SCRAM_PASSWORD)
    config["ssl.ca.location"] = str(pki.stranger_ca_pem)
    errors = client_errors(config)
    assert any("certificate verify failed" in e.str() for e in errors), [e.str() for e in errors]
    # And it never got as far as authenticating.
    assert not any(e.code() == KafkaError._AUTHENTICATION for e in errors), [e.str() for e in errors]


def test_a_plaintext_client_on_the_ssl_port_is_closed_at_once(tls_broker):
    host, port = tls_broker.listeners["SSL"].rsplit(":", 1)
    # ApiVersions v0 in Kafka's plaintext framing: no TLS record.
    client_id = b"plain"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(struct.pack(">i", len(body)) + body)
        sock.settimeout(3)
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            data = b""
        elapsed = time.monotonic() - started
    # Whatever comes back is no Kafka response (at most a TLS alert), and the connection ends.
    assert data == b"" or data[:1] == b"\x15", data
    assert elapsed < 2, elapsed

    # librdkafka told PLAINTEXT is cut off during its first request (ApiVersions) and gives up.
    logs = []
    started = time.monotonic()
    errors = client_errors({"bootstrap.servers": tls_broker.listeners["SSL"]}, logs=logs)
    assert time.monotonic() - started < 5
    assert [e.code() for e in errors] == [KafkaError._ALL_BROKERS_DOWN], [e.str() for e in errors]
    assert any("Disconnected" in line and "APIVERSION_QUERY" in line for line in logs), logs


# -- kcat -----------------------------------------------------------------------------------------


def test_kcat_over_sasl_ssl_with_scram_sha_512(tls_broker, pki):
    path = shutil.which("kcat")
    if path is None:
        pytest.fail("kcat is not installed (scripts/test installs it; Debian: apt-get install kcat)")
    auth = [
        "-b", tls_broker.listeners["SASL_SSL"],
        "-X", "security.protocol=SASL_SSL",
        "-X", f"ssl.ca.location={pki.ca_pem}",
        "-X", "sasl.mechanism=SCRAM-SHA-512",
        "-X", f"sasl.username={SCRAM_USER}",
        "-X", f"sasl.password={SCRAM_PASSWORD}",
    ]  # fmt: skip

    def kcat(*args, stdin=None):
        io = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        return subprocess.run([path, *args], capture_output=True, text=True, timeout=60, **io)

    lines = [f"kcat-{i}" for i in range(5)]
    done = kcat(*auth, "-P", "-t", "dave-kcat", "-p", "0", stdin="".join(f"{line}\n" for line in lines))
    assert done.returncode == 0, done.stderr
    done = kcat(*auth, "-C", "-t", "dave-kcat", "-o", "beginning", "-e", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == lines

    # In a group: kcat's balanced consumer, which commits what it read when it closes.
    group = f"dave-kcat-{uuid.uuid4().hex[:8]}"
    done = kcat(*auth, "-C", "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-q", "dave-kcat")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == lines
    admin = AdminClient({"bootstrap.servers": tls_broker.bootstrap})
    [future] = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]).values()
    offsets = future.result(timeout=TIMEOUT).topic_partitions
    assert [(tp.topic, tp.partition, tp.offset) for tp in offsets] == [("dave-kcat", 0, 5)]

    refused = kcat(*auth[:-1], "sasl.password=wrong", "-L", "-m", "5")
    assert refused.returncode != 0
    assert "Authentication failed during authentication due to invalid credentials" in refused.stderr, refused.stderr


# -- kafka-python ---------------------------------------------------------------------------------


def kafka_python_auth(broker, pki, password=PLAIN_PASSWORD):
    return {
        "bootstrap_servers": broker.listeners["SASL_SSL"],
        "security_protocol": "SASL_SSL",
        "ssl_cafile": str(pki.ca_pem),
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": PLAIN_USER,
        "sasl_plain_password": password,
    }


def test_kafka_python_over_sasl_ssl_with_plain(tls_broker, pki):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import TopicPartition as KpTopicPartition

    auth = kafka_python_auth(tls_broker, pki)
    producer = KafkaProducer(**auth)
    sent = [producer.send("carol-kp", f"w{i}".encode(), partition=0).get(timeout=TIMEOUT) for i in range(5)]
    producer.close()
    assert [m.offset for m in sent] == [0, 1, 2, 3, 4]
    group = f"carol-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(
        "carol-kp",
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=TIMEOUT * 1000,
        **auth,
    )
    try:
        values = []
        for message in consumer:
            values.append(message.value.decode())
            if len(values) == 5:
                break
        consumer.commit()
        committed = consumer.committed(KpTopicPartition("carol-kp", 0))
    finally:
        consumer.close()
    assert values == [f"w{i}" for i in range(5)]
    assert committed == 5


def test_kafka_python_refuses_a_wrong_plain_password_over_sasl_ssl(tls_broker, pki, caplog):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KafkaPythonError

    with pytest.raises(KafkaPythonError):
        KafkaProducer(
            **kafka_python_auth(tls_broker, pki, password="wrong"), max_block_ms=5000, bootstrap_timeout_ms=5000
        )
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "SaslAuthenticationFailedError" in m and "Authentication failed: Invalid username or password" in m
        for m in messages
    ), messages


def test_kafka_python_does_not_connect_to_a_broker_it_does_not_trust(tls_broker, pki, caplog):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KafkaPythonError

    auth = kafka_python_auth(tls_broker, pki)
    auth["ssl_cafile"] = str(pki.stranger_ca_pem)
    with pytest.raises(KafkaPythonError):
        KafkaProducer(**auth, max_block_ms=5000, bootstrap_timeout_ms=5000)
    messages = [r.getMessage() for r in caplog.records]
    assert any("CERTIFICATE_VERIFY_FAILED" in m for m in messages), messages
