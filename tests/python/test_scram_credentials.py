"""SCRAM credentials from Python: confluent-kafka's AdminClient `alter_user_scram_credentials`
and `describe_user_scram_credentials` (librdkafka salts the password client-side and sends
AlterUserScramCredentials v0; DescribeUserScramCredentials v0 answers mechanisms and
iterations), with the errors Kafka gives as the exceptions librdkafka raises, and the
credentials surviving a broker restart.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

TIMEOUT = 30


def admin_client(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "client.id": "py-scram"})


def upsert(user, mechanism=ScramMechanism.SCRAM_SHA_256, iterations=4096, password=b"secret"):
    return UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, iterations), password)


def alter(admin: AdminClient, alterations):
    """{user: None or the KafkaError} for one request."""
    futures = admin.alter_user_scram_credentials(alterations, request_timeout=TIMEOUT)
    outcome = {}
    for user, future in futures.items():
        try:
            future.result(timeout=TIMEOUT)
            outcome[user] = None
        except KafkaException as e:
            outcome[user] = e.args[0]
    return outcome


def describe(admin: AdminClient, users=None):
    """{user: {mechanism: iterations}} for the users the broker describes."""
    if users is None:
        found = admin.describe_user_scram_credentials(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    else:
        futures = admin.describe_user_scram_credentials(users, request_timeout=TIMEOUT)
        found = {user: future.result(timeout=TIMEOUT) for user, future in futures.items()}
    return {
        user: {info.mechanism: info.iterations for info in description.scram_credential_infos}
        for user, description in found.items()
    }


@pytest.fixture
def admin(bootstrap):
    return admin_client(bootstrap)


def test_confluent_kafka_creates_describes_and_deletes_scram_users(admin):
    assert alter(admin, [upsert("py-alice"), upsert("py-bob", ScramMechanism.SCRAM_SHA_512, 8192)]) == {
        "py-alice": None,
        "py-bob": None,
    }
    assert alter(admin, [upsert("py-alice", ScramMechanism.SCRAM_SHA_512, 16384)]) == {"py-alice": None}

    everyone = describe(admin)
    assert everyone["py-alice"] == {ScramMechanism.SCRAM_SHA_256: 4096, ScramMechanism.SCRAM_SHA_512: 16384}
    assert everyone["py-bob"] == {ScramMechanism.SCRAM_SHA_512: 8192}
    assert describe(admin, ["py-bob"]) == {"py-bob": {ScramMechanism.SCRAM_SHA_512: 8192}}

    deletion = UserScramCredentialDeletion("py-alice", ScramMechanism.SCRAM_SHA_256)
    assert alter(admin, [deletion]) == {"py-alice": None}
    assert describe(admin, ["py-alice"]) == {"py-alice": {ScramMechanism.SCRAM_SHA_512: 16384}}


def test_a_described_user_without_credentials_is_resource_not_found(admin):
    futures = admin.describe_user_scram_credentials(["py-nobody"], request_timeout=TIMEOUT)
    with pytest.raises(KafkaException) as raised:
        futures["py-nobody"].result(timeout=TIMEOUT)
    error = raised.value.args[0]
    assert error.code() == KafkaError.RESOURCE_NOT_FOUND
    assert "Attempt to describe a user credential that does not exist: py-nobody" in error.str()


def test_alteration_errors_arrive_per_user_with_kafkas_codes(admin):
    outcome = alter(
        admin,
        [
            upsert("py-few", iterations=4095),
            upsert("py-many", ScramMechanism.SCRAM_SHA_512, iterations=16385),
            UserScramCredentialDeletion("py-ghost", ScramMechanism.SCRAM_SHA_256),
            upsert("py-twice"),
            upsert("py-twice", ScramMechanism.SCRAM_SHA_512),
            upsert("py-fine"),
        ],
    )
    assert outcome["py-fine"] is None
    assert outcome["py-few"].code() == KafkaError.UNACCEPTABLE_CREDENTIAL
    assert "Too few iterations" in outcome["py-few"].str()
    assert outcome["py-many"].code() == KafkaError.UNACCEPTABLE_CREDENTIAL
    assert "Too many iterations" in outcome["py-many"].str()
    assert outcome["py-ghost"].code() == KafkaError.RESOURCE_NOT_FOUND
    assert outcome["py-twice"].code() == KafkaError.DUPLICATE_RESOURCE
    assert "py-few" not in describe(admin)


def test_credentials_survive_a_restart(broker_factory):
    private = broker_factory()
    assert alter(admin_client(private.bootstrap), [upsert("py-durable", ScramMechanism.SCRAM_SHA_512, 4096)]) == {
        "py-durable": None
    }
    private.restart()
    assert describe(admin_client(private.bootstrap), ["py-durable"]) == {
        "py-durable": {ScramMechanism.SCRAM_SHA_512: 4096}
    }
