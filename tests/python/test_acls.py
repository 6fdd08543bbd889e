"""ACLs from Python: confluent-kafka's AdminClient (create_acls, describe_acls, delete_acls with
AclBinding / AclBindingFilter, librdkafka underneath) and kafka-python's KafkaAdminClient
(create_acls, describe_acls, delete_acls) against a broker with Kafka's StandardAuthorizer
configured, and SECURITY_DISABLED from a broker without one.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, ResourcePatternType, ResourceType)
from kafka import KafkaAdminClient
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         ResourcePattern, ResourcePatternFilter)
from kafka.admin import ResourceType as PyResourceType
from kafka.errors import SecurityDisabledError

# Every connection is User:ANONYMOUS until SASL; as a super user it may use the ACL APIs (which
# need ALTER / DESCRIBE on the cluster). Enforcement itself: test_acl_enforcement.py.
AUTHORIZER = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
              "super.users": "User:ANONYMOUS"}
TIMEOUT = 30


@pytest.fixture
def acl_broker(broker_factory):
    return broker_factory(AUTHORIZER)


def confluent_admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "client.id": "py-acls"})


def binding(name, pattern=ResourcePatternType.LITERAL, principal="User:alice", operation=AclOperation.READ,
            permission=AclPermissionType.ALLOW, restype=ResourceType.TOPIC, host="*"):
    return AclBinding(restype, name, pattern, principal, host, operation, permission)


def any_filter(restype=ResourceType.ANY, name=None, pattern=ResourcePatternType.ANY, principal=None,
               operation=AclOperation.ANY, permission=AclPermissionType.ANY):
    return AclBindingFilter(restype, name, pattern, principal, None, operation, permission)


def key(b: AclBinding):
    return (b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type)


def create(admin: AdminClient, bindings):
    futures = admin.create_acls(bindings, request_timeout=TIMEOUT)
    for f in futures.values():
        f.result(timeout=TIMEOUT)


def describe(admin: AdminClient, acl_filter):
    return sorted(admin.describe_acls(acl_filter, request_timeout=TIMEOUT).result(timeout=TIMEOUT), key=key)


def test_confluent_creates_describes_and_deletes_acls(acl_broker):
    admin = confluent_admin(acl_broker.bootstrap)
    wanted = [
        binding("payments"),
        binding("pay", pattern=ResourcePatternType.PREFIXED, operation=AclOperation.WRITE),
        binding("*", principal="User:*", operation=AclOperation.DESCRIBE),
        binding("payroll", principal="User:bob", permission=AclPermissionType.DENY),
        binding("billing", restype=ResourceType.GROUP),
        binding("kafka-cluster", restype=ResourceType.BROKER, operation=AclOperation.IDEMPOTENT_WRITE),
    ]
    create(admin, wanted)
    assert [key(b) for b in describe(admin, any_filter())] == sorted(key(b) for b in wanted)

    # MATCH: the ACLs that apply to the topic `payments`: literal, `*` and the `pay` prefix.
    applies = describe(admin, any_filter(ResourceType.TOPIC, "payments", ResourcePatternType.MATCH))
    assert sorted((b.name, b.resource_pattern_type) for b in applies) == [
        ("*", ResourcePatternType.LITERAL),
        ("pay", ResourcePatternType.PREFIXED),
        ("payments", ResourcePatternType.LITERAL),
    ]
    bob = describe(admin, any_filter(principal="User:bob"))
    assert [(b.name, b.permission_type) for b in bob] == [("payroll", AclPermissionType.DENY)]

    futures = admin.delete_acls([any_filter(ResourceType.TOPIC, "pay", ResourcePatternType.PREFIXED),
                                 any_filter(principal="User:alice")], request_timeout=TIMEOUT)
    deleted = [sorted(f.result(timeout=TIMEOUT), key=key) for f in futures.values()]
    assert [len(d) for d in deleted] == [1, 4]  # the prefixed one is matched by both filters
    left = describe(admin, any_filter())
    assert sorted(b.principal for b in left) == ["User:*", "User:bob"]


def test_confluent_gets_invalid_request_for_a_binding_kafka_refuses(acl_broker):
    admin = confluent_admin(acl_broker.bootstrap)
    futures = admin.create_acls([
        binding("my-cluster", restype=ResourceType.BROKER, operation=AclOperation.ALTER),
        binding("fine"),
    ], request_timeout=TIMEOUT)
    results = list(futures.values())
    with pytest.raises(KafkaException) as refused:
        results[0].result(timeout=TIMEOUT)
    error = refused.value.args[0]
    assert error.code() == KafkaError.INVALID_REQUEST
    assert "kafka-cluster" in error.str()
    results[1].result(timeout=TIMEOUT)
    assert [b.name for b in describe(admin, any_filter())] == ["fine"]


def test_confluent_acls_survive_a_restart(acl_broker):
    admin = confluent_admin(acl_broker.bootstrap)
    create(admin, [binding("durable", pattern=ResourcePatternType.PREFIXED, host="10.0.0.1")])
    acl_broker.restart()
    admin = confluent_admin(acl_broker.bootstrap)
    [b] = describe(admin, any_filter())
    assert (b.name, b.resource_pattern_type, b.host) == ("durable", ResourcePatternType.PREFIXED, "10.0.0.1")


def test_confluent_without_an_authorizer_gets_security_disabled(bootstrap):
    admin = confluent_admin(bootstrap)
    # librdkafka (2.x) answers DescribeAcls' top-level SECURITY_DISABLED with no ACLs rather than
    # an error; kafka-python raises it (below), and the raw answer is checked in tests/acls.rs.
    assert admin.describe_acls(any_filter(), request_timeout=TIMEOUT).result(timeout=TIMEOUT) == []
    futures = admin.create_acls([binding("t")], request_timeout=TIMEOUT)
    with pytest.raises(KafkaException) as refused:
        list(futures.values())[0].result(timeout=TIMEOUT)
    assert refused.value.args[0].code() == KafkaError.SECURITY_DISABLED


def py_acl(name, pattern=ACLResourcePatternType.LITERAL, principal="User:alice", operation=ACLOperation.READ,
           permission=ACLPermissionType.ALLOW, restype=PyResourceType.TOPIC):
    return ACL(principal=principal, host="*", operation=operation, permission_type=permission,
               resource_pattern=ResourcePattern(restype, name, pattern))


def py_filter(restype=PyResourceType.ANY, name=None, pattern=ACLResourcePatternType.ANY, principal=None):
    return ACLFilter(principal=principal, host=None, operation=ACLOperation.ANY,
                     permission_type=ACLPermissionType.ANY,
                     resource_pattern=ResourcePatternFilter(restype, name, pattern))


def py_admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="py-acls", request_timeout_ms=30_000)


def test_kafka_python_creates_describes_and_deletes_acls(acl_broker):
    admin = py_admin(acl_broker.bootstrap)
    try:
        created = admin.create_acls([
            py_acl("orders"),
            py_acl("ord", pattern=ACLResourcePatternType.PREFIXED, operation=ACLOperation.WRITE),
            py_acl("tx-", pattern=ACLResourcePatternType.PREFIXED, restype=PyResourceType.TRANSACTIONAL_ID,
                   operation=ACLOperation.WRITE, principal="User:producer"),
            py_acl("orders", principal="User:mallory", permission=ACLPermissionType.DENY),
        ])
        assert len(created["succeeded"]) == 4 and created["failed"] == []

        acls, error = admin.describe_acls(py_filter())
        assert len(acls) == 4
        matching, _ = admin.describe_acls(
            py_filter(PyResourceType.TOPIC, "orders-eu", ACLResourcePatternType.MATCH))
        assert [(a.resource_pattern.resource_name, a.operation) for a in matching] == [("ord", ACLOperation.WRITE)]
        txn, _ = admin.describe_acls(py_filter(PyResourceType.TRANSACTIONAL_ID))
        assert [a.principal for a in txn] == ["User:producer"]

        failed = admin.create_acls([py_acl("", principal="User:x")])
        assert failed["succeeded"] == [] and len(failed["failed"]) == 1

        results = admin.delete_acls([py_filter(principal="User:mallory"), py_filter(PyResourceType.TOPIC)])
        (_, first, first_error), (_, second, second_error) = results
        assert [a.principal for a in first] == ["User:mallory"]
        assert len(second) == 3
        left, _ = admin.describe_acls(py_filter())
        assert [a.principal for a in left] == ["User:producer"]
    finally:
        admin.close()


def test_kafka_python_without_an_authorizer_gets_security_disabled(bootstrap):
    admin = py_admin(bootstrap)
    try:
        with pytest.raises(SecurityDisabledError):
            admin.describe_acls(py_filter())
        results = admin.delete_acls([py_filter()])
        assert results[0][2] is SecurityDisabledError
    finally:
        admin.close()
