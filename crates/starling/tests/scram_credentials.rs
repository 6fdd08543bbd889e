//! SCRAM credentials end to end: every error DescribeUserScramCredentials and
//! AlterUserScramCredentials give (by raw requests, with Kafka's codes and messages), stored
//! keys a SCRAM exchange accepts for the password the client salted, persistence across a
//! restart, `starling user create|delete|list|hash-password` against a real broker, and the
//! broker's check of `sasl.plain.users.file` at start-up.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use starling_broker::sasl::scram::{ScramMechanism, ScramServer, ScramStep};

const SHA256: i8 = 1;
const SHA512: i8 = 2;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn upsertion(user: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
    ScramCredentialUpsertion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::from_static(b"a-salt-of-16-byt"))
        .with_salted_password(Bytes::from(vec![0x42; 32]))
}

fn deletion(user: &str, mechanism: i8) -> ScramCredentialDeletion {
    ScramCredentialDeletion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
}

fn alter(
    raw: &mut RawClient,
    deletions: Vec<ScramCredentialDeletion>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> AlterUserScramCredentialsResponse {
    raw.call(
        0,
        &AlterUserScramCredentialsRequest::default()
            .with_deletions(deletions)
            .with_upsertions(upsertions),
    )
}

fn describe(raw: &mut RawClient, users: Option<&[&str]>) -> DescribeUserScramCredentialsResponse {
    raw.call(
        0,
        &DescribeUserScramCredentialsRequest::default().with_users(users.map(|users| {
            users
                .iter()
                .map(|u| UserName::default().with_name(s(u)))
                .collect()
        })),
    )
}

/// (user, error code, message) of each alteration result, sorted by user.
fn alter_results(
    response: &AlterUserScramCredentialsResponse,
) -> Vec<(String, i16, Option<String>)> {
    let mut results: Vec<_> = response
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    results.sort();
    results
}

/// (user, error code, message, [(mechanism, iterations)]) of each described user, sorted. A
/// described user's message is `""`, the field's default, as Kafka leaves it.
type Described = Vec<(String, i16, Option<String>, Vec<(i8, i32)>)>;

fn described(response: &DescribeUserScramCredentialsResponse) -> Described {
    assert_eq!(response.error_code, 0, "{response:?}");
    let mut results: Described = response
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
                r.credential_infos
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect(),
            )
        })
        .collect();
    results.sort();
    results
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

#[test]
fn every_alter_error_carries_kafkas_code_and_message_and_changes_nothing_of_that_user() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    let mut raw = RawClient::connect(broker.addr());
    assert_eq!(
        alter_results(&alter(
            &mut raw,
            vec![],
            vec![upsertion("existing", SHA256, 4096)]
        )),
        [("existing".into(), 0, None)]
    );
    let response = alter(
        &mut raw,
        vec![
            deletion("ghost", SHA256),
            deletion("", SHA256),
            deletion("bad-mechanism", 0),
            deletion("existing", SHA512),
            deletion("twice-deleted", SHA256),
        ],
        vec![
            upsertion("few", SHA256, 4095),
            upsertion("many", SHA512, 16385),
            upsertion("", SHA256, 4096),
            upsertion("unknown-mechanism", 3, 4096),
            upsertion("upserted-twice", SHA256, 4096),
            upsertion("upserted-twice", SHA512, 4096),
            upsertion("existing", SHA512, 8192),
            upsertion("lowest", SHA256, 4096),
            upsertion("highest", SHA512, 16384),
        ],
    );
    let not_found = Some("Attempt to delete a user credential that does not exist".to_string());
    let duplicate =
        Some("A user credential cannot be altered twice in the same request".to_string());
    let empty = Some("Username must not be empty".to_string());
    let unknown = Some("Unknown SCRAM mechanism".to_string());
    let unacceptable = code(ResponseError::UnacceptableCredential);
    assert_eq!(
        alter_results(&response),
        [
            ("".into(), unacceptable, empty),
            (
                "bad-mechanism".into(),
                code(ResponseError::UnsupportedSaslMechanism),
                unknown.clone()
            ),
            // Deleting SHA-512 (which it lacks) fails first; the upsertion of the same user is
            // then not looked at.
            (
                "existing".into(),
                code(ResponseError::ResourceNotFound),
                not_found.clone()
            ),
            (
                "few".into(),
                unacceptable,
                Some("Too few iterations".into())
            ),
            (
                "ghost".into(),
                code(ResponseError::ResourceNotFound),
                not_found.clone()
            ),
            ("highest".into(), 0, None),
            ("lowest".into(), 0, None),
            (
                "many".into(),
                unacceptable,
                Some("Too many iterations".into())
            ),
            (
                "twice-deleted".into(),
                code(ResponseError::ResourceNotFound),
                not_found
            ),
            (
                "unknown-mechanism".into(),
                code(ResponseError::UnsupportedSaslMechanism),
                unknown
            ),
            (
                "upserted-twice".into(),
                code(ResponseError::DuplicateResource),
                duplicate.clone()
            ),
        ]
    );

    // A user both deleted and upserted in one request.
    let response = alter(
        &mut raw,
        vec![deletion("existing", SHA256)],
        vec![upsertion("existing", SHA512, 4096)],
    );
    assert_eq!(
        alter_results(&response),
        [(
            "existing".into(),
            code(ResponseError::DuplicateResource),
            duplicate
        )]
    );
    assert_eq!(
        described(&describe(&mut raw, None)),
        [
            ("existing".into(), 0, Some("".into()), vec![(SHA256, 4096)]),
            ("highest".into(), 0, Some("".into()), vec![(SHA512, 16384)]),
            ("lowest".into(), 0, Some("".into()), vec![(SHA256, 4096)]),
        ]
    );
}

#[test]
fn describe_answers_every_user_missing_ones_and_users_named_twice_as_kafka() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    let mut raw = RawClient::connect(broker.addr());
    assert!(describe(&mut raw, None).results.is_empty());
    alter(
        &mut raw,
        vec![],
        vec![
            upsertion("alice", SHA256, 4096),
            upsertion("bob", SHA512, 8192),
        ],
    );
    alter(&mut raw, vec![], vec![upsertion("alice", SHA512, 16384)]);
    let everyone = described(&describe(&mut raw, None));
    assert_eq!(everyone, described(&describe(&mut raw, Some(&[]))));
    assert_eq!(
        everyone,
        [
            (
                "alice".into(),
                0,
                Some("".into()),
                vec![(SHA256, 4096), (SHA512, 16384)]
            ),
            ("bob".into(), 0, Some("".into()), vec![(SHA512, 8192)]),
        ]
    );
    assert_eq!(
        described(&describe(&mut raw, Some(&["bob", "nobody", "alice", "alice"]))),
        [
            (
                "alice".into(),
                code(ResponseError::DuplicateResource),
                Some(
                    "Cannot describe SCRAM credentials for the same user twice in a single request: alice"
                        .into()
                ),
                vec![]
            ),
            ("bob".into(), 0, Some("".into()), vec![(SHA512, 8192)]),
            (
                "nobody".into(),
                code(ResponseError::ResourceNotFound),
                Some("Attempt to describe a user credential that does not exist: nobody".into()),
                vec![]
            ),
        ]
    );
    // Deleting a user's last credential makes it unknown.
    alter(&mut raw, vec![deletion("bob", SHA512)], vec![]);
    assert_eq!(
        described(&describe(&mut raw, Some(&["bob"])))[0].1,
        code(ResponseError::ResourceNotFound)
    );
}

/// The stored keys of `user` accept a SCRAM exchange with `password` (looked up the way the
/// connection layer will), and refuse a wrong one.
fn assert_password_authenticates(
    broker: &Broker,
    user: &str,
    mechanism: ScramMechanism,
    password: &str,
) {
    // Read the store through a copy: the broker holds the database file's lock.
    let copy = tempfile::tempdir().unwrap();
    let path = copy.path().join("meta.redb");
    std::fs::copy(broker.data_dir().join("meta.redb"), &path).unwrap();
    let store = starling_meta::MetadataStore::open(&path).unwrap();
    let record = store
        .scram_credential(user, mechanism.name())
        .unwrap()
        .expect("a stored credential");
    let credential = starling_broker::sasl::scram::ScramCredential {
        salt: record.salt,
        stored_key: record.stored_key,
        server_key: record.server_key,
        iterations: record.iterations,
    };
    for (attempt, accepted) in [(password, true), ("not-the-password", false)] {
        let mut server = ScramServer::new(mechanism);
        let bare = format!("n={user},r=e2e-client-nonce");
        let ScramStep::Challenge(first) = server
            .evaluate(format!("n,,{bare}").as_bytes(), |_| {
                Some(credential.clone())
            })
            .unwrap()
        else {
            panic!("expected a challenge");
        };
        let first = String::from_utf8(first).unwrap();
        let fields: Vec<&str> = first.split(',').collect();
        let nonce = &fields[0][2..];
        let salt = base64_decode(&fields[1][2..]);
        let iterations: u32 = fields[2][2..].parse().unwrap();
        let salted = mechanism.salted_password(attempt.as_bytes(), &salt, iterations);
        let keys = starling_broker::sasl::scram::credential_from_salted_password(
            mechanism, &salt, &salted, iterations,
        );
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{bare},{first},{without_proof}");
        let client_key = mechanism.hmac(&salted, b"Client Key");
        let signature = mechanism.hmac(&keys.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let last = format!("{without_proof},p={}", base64_encode(&proof));
        let outcome = server.evaluate(last.as_bytes(), |_| None);
        assert_eq!(outcome.is_ok(), accepted, "{attempt}: {outcome:?}");
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// Runs `starling ARGS` with `input` on standard input; (success, stdout, stderr).
fn starling_with_stdin(args: &[&str], input: &str) -> (bool, String, String) {
    let (status, out, err) = run_with_stdin(args, Some(input), Duration::from_secs(60));
    (status.success(), out, err)
}

fn user(bootstrap: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["user", "--bootstrap", bootstrap];
    all.extend_from_slice(args);
    let (status, out, err) = run_to_exit(&all, Duration::from_secs(30));
    (status.success(), out, err)
}

fn create(bootstrap: &str, args: &[&str], password: &str) -> (bool, String, String) {
    let mut all = vec!["user", "--bootstrap", bootstrap, "create"];
    all.extend_from_slice(args);
    starling_with_stdin(&all, &format!("{password}\n"))
}

#[test]
fn users_created_with_the_cli_authenticate_are_listed_deleted_and_survive_a_restart() {
    let _dog = watchdog(Duration::from_secs(120));
    let mut broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let (ok, out, err) = create(&b, &["alice"], "alice-pw");
    assert!(
        ok && out.contains("alice") && out.contains("created"),
        "{out}{err}"
    );
    let (ok, _, err) = create(
        &b,
        &[
            "alice",
            "--mechanism",
            "SCRAM-SHA-512",
            "--iterations",
            "8192",
        ],
        "alice-pw-512",
    );
    assert!(ok, "{err}");
    let (ok, _, err) = create(&b, &["bob,=x", "--mechanism", "scram-sha-512"], "bob-pw");
    assert!(ok, "{err}");

    let (ok, out, err) = user(&b, &["list"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "USER    MECHANISM      ITERATIONS\n\
         alice   SCRAM-SHA-256  4096\n\
         alice   SCRAM-SHA-512  8192\n\
         bob,=x  SCRAM-SHA-512  4096\n"
    );

    broker.restart();
    let b = broker.bootstrap();
    let (ok, out, err) = user(&b, &["list", "alice", "--json"]);
    assert!(ok, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{
            "user": "alice",
            "credentials": [
                {"mechanism": "SCRAM-SHA-256", "iterations": 4096},
                {"mechanism": "SCRAM-SHA-512", "iterations": 8192},
            ]
        }])
    );
    assert_password_authenticates(&broker, "alice", ScramMechanism::Sha256, "alice-pw");
    assert_password_authenticates(&broker, "alice", ScramMechanism::Sha512, "alice-pw-512");

    // Changing a password replaces the credential.
    let (ok, _, err) = create(&b, &["alice"], "new-pw");
    assert!(ok, "{err}");
    assert_password_authenticates(&broker, "alice", ScramMechanism::Sha256, "new-pw");

    let (ok, out, err) = user(&b, &["delete", "alice", "--mechanism", "SCRAM-SHA-256"]);
    assert!(ok && out.contains("deleted"), "{out}{err}");
    let (ok, out, err) = user(&b, &["delete", "bob,=x"]);
    assert!(ok && out.contains("deleted"), "{out}{err}");
    let (ok, out, _) = user(&b, &["list", "--json"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!([{
            "user": "alice",
            "credentials": [{"mechanism": "SCRAM-SHA-512", "iterations": 8192}]
        }])
    );
}

#[test]
fn the_cli_reports_the_brokers_refusals_and_exits_non_zero() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let (ok, out, err) = create(&b, &["weak", "--iterations", "100"], "pw");
    assert!(!ok);
    assert!(
        out.contains("UNACCEPTABLE_CREDENTIAL") && out.contains("Too few iterations"),
        "{out}"
    );
    assert!(err.contains("error: cannot alter weak"), "{err}");

    let (ok, _, err) = create(&b, &["nopassword"], "");
    assert!(
        !ok && err.contains("no password on standard input"),
        "{err}"
    );

    let (ok, _, err) = user(&b, &["delete", "ghost"]);
    assert!(!ok && err.contains("RESOURCE_NOT_FOUND"), "{err}");
    let (ok, out, err) = user(&b, &["delete", "ghost", "--mechanism", "SCRAM-SHA-256"]);
    assert!(
        !ok && out.contains("Attempt to delete a user credential that does not exist"),
        "{out}{err}"
    );

    let (ok, out, err) = user(&b, &["list", "ghost"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("Attempt to describe a user credential that does not exist: ghost"),
        "{err}"
    );

    let (ok, _, err) = user(&b, &["create", "x", "--mechanism", "SCRAM-SHA-1"]);
    assert!(!ok && err.contains("unknown SCRAM mechanism"), "{err}");
}

#[test]
fn a_plain_users_file_from_hash_password_is_accepted_and_a_bad_one_stops_the_broker() {
    let _dog = watchdog(Duration::from_secs(60));
    let (ok, line, err) = starling_with_stdin(
        &["user", "hash-password", "alice", "--iterations", "10000"],
        "alice-secret\n",
    );
    assert!(ok, "{err}");
    let line = line.trim_end();
    assert!(line.starts_with("alice:pbkdf2-sha512$10000$"), "{line}");
    assert!(!line.contains("alice-secret"));
    let users = starling_broker::sasl::plain::PlainUsers::parse(line).unwrap();
    assert_eq!(
        users.authenticate(b"\0alice\0alice-secret"),
        Ok("alice".into())
    );

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("users");
    std::fs::write(&good, format!("# PLAIN users\n{line}\n")).unwrap();
    let good = good.display().to_string();
    let broker = Broker::with_overrides(&[("sasl.plain.users.file", &good)]);
    drop(broker);

    let bad = dir.path().join("bad-users");
    std::fs::write(&bad, "alice:alice-secret\n").unwrap();
    let bad = bad.display().to_string();
    let failure = Broker::try_start(
        &override_args(&[("sasl.plain.users.file", &bad)])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .err()
    .expect("a users file with a plain password must stop the broker");
    assert!(
        failure.stderr.contains("sasl.plain.users.file") && failure.stderr.contains("line 1"),
        "{}",
        failure.stderr
    );
}
