//! SASL on a `SASL_PLAINTEXT` listener, by raw requests for what no client sends and by
//! librdkafka (PLAIN, its built-in mechanism without OpenSSL) for the round trip: nothing but
//! ApiVersions before authentication, frames bounded by `sasl.server.max.receive.size` until
//! then, a disabled mechanism refused with the enabled list, a failed login answered with
//! Kafka's error and the connection closed, SASL requests after authentication and on a
//! PLAINTEXT listener answered ILLEGAL_SASL_STATE, and a librdkafka producer and consumer
//! that authenticate and then produce and fetch; with `connections.max.reauth.ms`, session
//! lifetimes, re-authentication on the connection (KIP-368) by raw requests and by librdkafka,
//! and expired sessions closed.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, MetadataRequest, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::Offset;

/// A broker whose only listener is SASL_PLAINTEXT, with the PLAIN user `carol`.
fn sasl_broker(dir: &tempfile::TempDir, extra: &[(&str, &str)]) -> Broker {
    let users = dir.path().join("users");
    let line = starling_broker::sasl::plain::users_file_line("carol", b"carol-secret", 10_000)
        .expect("a users-file line");
    std::fs::write(&users, format!("{line}\n")).unwrap();
    let users = users.display().to_string();
    let mut overrides = vec![
        ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
        ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256"),
        ("sasl.plain.users.file", users.as_str()),
    ];
    overrides.extend_from_slice(extra);
    Broker::with_overrides(&overrides)
}

fn handshake(raw: &mut RawClient, mechanism: &'static str) -> (i16, Vec<String>) {
    let response = raw.call(
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
    );
    let mechanisms = response.mechanisms.iter().map(|m| m.to_string()).collect();
    (response.error_code, mechanisms)
}

fn authenticate(raw: &mut RawClient, version: i16, bytes: &'static [u8]) -> (i16, Option<String>) {
    let response = raw.call(
        version,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(bytes)),
    );
    (
        response.error_code,
        response.error_message.map(|m| m.to_string()),
    )
}

#[test]
fn before_authentication_only_api_versions_and_the_sasl_requests_are_served() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(&dir, &[]);
    let mut raw = RawClient::connect(b.addr());
    let versions = raw.call(3, &ApiVersionsRequest::default());
    let range = |key: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(ApiKey::SaslHandshake), Some((0, 1)));
    assert_eq!(range(ApiKey::SaslAuthenticate), Some((0, 2)));
    raw.send(12, &MetadataRequest::default());
    assert_eq!(
        raw.wait_closed(Duration::from_secs(5)),
        CloseOutcome::Closed
    );

    // SaslAuthenticate before SaslHandshake closes the connection too.
    let mut raw = RawClient::connect(b.addr());
    raw.send(2, &SaslAuthenticateRequest::default());
    assert_eq!(
        raw.wait_closed(Duration::from_secs(5)),
        CloseOutcome::Closed
    );

    // A frame over sasl.server.max.receive.size (512 KiB) is refused unread.
    let mut raw = RawClient::connect(b.addr());
    raw.send_bytes(&(600_000i32).to_be_bytes()).unwrap();
    assert_eq!(
        raw.wait_closed(Duration::from_secs(5)),
        CloseOutcome::Closed
    );
}

#[test]
fn a_disabled_mechanism_is_refused_with_the_enabled_ones_and_the_connection_closed() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(&dir, &[]);
    let mut raw = RawClient::connect(b.addr());
    let (code, mechanisms) = handshake(&mut raw, "SCRAM-SHA-512");
    assert_eq!(code, ResponseError::UnsupportedSaslMechanism.code());
    assert_eq!(mechanisms, ["PLAIN", "SCRAM-SHA-256"]);
    assert_eq!(
        raw.wait_closed(Duration::from_secs(5)),
        CloseOutcome::Closed
    );
}

#[test]
fn plain_logs_in_then_serves_and_a_second_authenticate_is_an_illegal_state() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(&dir, &[]);

    // A wrong password: SASL_AUTHENTICATION_FAILED with PlainSaslServer's message, then closed.
    let mut raw = RawClient::connect(b.addr());
    assert_eq!(handshake(&mut raw, "PLAIN").0, 0);
    let (code, message) = authenticate(&mut raw, 2, b"\0carol\0wrong");
    assert_eq!(code, ResponseError::SaslAuthenticationFailed.code());
    assert_eq!(
        message.as_deref(),
        Some("Authentication failed: Invalid username or password")
    );
    assert_eq!(
        raw.wait_closed(Duration::from_secs(5)),
        CloseOutcome::Closed
    );

    let mut raw = RawClient::connect(b.addr());
    assert_eq!(handshake(&mut raw, "PLAIN").0, 0);
    // Kafka leaves the message at its default, the empty string.
    assert_eq!(
        authenticate(&mut raw, 1, b"\0carol\0carol-secret"),
        (0, Some(String::new()))
    );
    // Authenticated: any request is served, frames may be large again, and the SASL requests
    // are an illegal state.
    let metadata = raw.call(12, &MetadataRequest::default());
    assert_eq!(metadata.brokers.len(), 1);
    let (code, message) = authenticate(&mut raw, 2, b"\0carol\0carol-secret");
    assert_eq!(code, ResponseError::IllegalSaslState.code());
    assert_eq!(
        message.as_deref(),
        Some("SaslAuthenticate request received after successful authentication")
    );
    assert_eq!(
        handshake(&mut raw, "PLAIN").0,
        ResponseError::IllegalSaslState.code()
    );
}

#[test]
fn on_a_plaintext_listener_the_sasl_requests_are_an_illegal_state() {
    let _dog = watchdog(Duration::from_secs(60));
    let b = Broker::start(&[]);
    let mut raw = RawClient::connect(b.addr());
    assert_eq!(
        handshake(&mut raw, "PLAIN").0,
        ResponseError::IllegalSaslState.code()
    );
    // The connection stays usable.
    assert_eq!(raw.call(12, &MetadataRequest::default()).brokers.len(), 1);
}

#[test]
fn a_sasl_listener_without_a_usable_mechanism_is_refused_at_start() {
    for (overrides, expected) in [
        (
            vec![("listeners", "SASL_PLAINTEXT://127.0.0.1:0")],
            "GSSAPI is not offered",
        ),
        (
            vec![
                ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
                ("sasl.enabled.mechanisms", "PLAIN"),
            ],
            "PLAIN needs its users in sasl.plain.users.file",
        ),
        (
            vec![
                ("listeners", "SASL_SSL://127.0.0.1:0"),
                ("sasl.enabled.mechanisms", "PLAIN"),
            ],
            "PLAIN needs its users in sasl.plain.users.file",
        ),
    ] {
        let mut args = vec!["serve", "--data-dir", "/nonexistent-starling-sasl"];
        let pairs: Vec<String> = overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for pair in &pairs {
            args.extend_from_slice(&["--override", pair]);
        }
        let (status, _, stderr) = run_to_exit(&args, Duration::from_secs(30));
        assert!(!status.success());
        assert!(stderr.contains(expected), "{overrides:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_authenticates_with_plain_then_produces_and_fetches() {
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(&dir, &[("auto.create.topics.enable", "true")]);
    let bootstrap = b.bootstrap();
    let auth = [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "PLAIN"),
        ("sasl.username", "carol"),
        ("sasl.password", "carol-secret"),
    ];
    let p = producer(&bootstrap, &auth);
    for i in 0..5 {
        let delivery =
            send_to_partition0(&p, "sasl-topic", "k", format!("v{i}").as_bytes()).expect("enqueue");
        within(Duration::from_secs(30), "delivery", delivery)
            .await
            .expect("delivered")
            .expect("delivered");
    }
    let c = consumer(&bootstrap, &auth);
    assign(&c, "sasl-topic", &[(0, Offset::Beginning)]);
    let got = consume_until(&c, Duration::from_secs(30), |got| got.len() >= 5);
    let values: Vec<String> = got.iter().map(|m| m.value_str()).collect();
    assert_eq!(values, ["v0", "v1", "v2", "v3", "v4"]);
}

#[test]
fn after_a_version_0_handshake_raw_tokens_carry_the_exchange() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(&dir, &[]);
    let token = |password: &str| {
        let body = format!("\0carol\0{password}");
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(body.as_bytes());
        frame
    };
    let v0_handshake = |raw: &mut RawClient| {
        let response = raw.call(
            0,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        );
        assert_eq!(response.error_code, 0);
    };

    let mut raw = RawClient::connect(b.addr());
    v0_handshake(&mut raw);
    raw.send_bytes(&token("carol-secret")).unwrap();
    // PLAIN's answer is an empty token.
    assert_eq!(&raw.read_frame().unwrap()[..], b"");
    assert_eq!(raw.call(12, &MetadataRequest::default()).brokers.len(), 1);

    // A refused token closes the connection: v0 has no way to say why.
    let mut raw = RawClient::connect(b.addr());
    v0_handshake(&mut raw);
    raw.send_bytes(&token("wrong")).unwrap();
    assert_eq!(
        raw.wait_closed(Duration::from_secs(5)),
        CloseOutcome::Closed
    );
}

#[test]
fn a_client_that_does_not_authenticate_in_time_is_closed() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(&dir, &[("sasl.authentication.timeout.ms", "300")]);
    let mut raw = RawClient::connect(b.addr());
    // ApiVersions is served, but does not buy time.
    assert_eq!(raw.call(3, &ApiVersionsRequest::default()).error_code, 0);
    assert_eq!(handshake(&mut raw, "PLAIN").0, 0);
    assert_eq!(
        raw.wait_closed(Duration::from_secs(10)),
        CloseOutcome::Closed
    );
    // An authenticated client is not held to it.
    let mut raw = RawClient::connect(b.addr());
    assert_eq!(handshake(&mut raw, "PLAIN").0, 0);
    assert_eq!(authenticate(&mut raw, 2, b"\0carol\0carol-secret").0, 0);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(raw.call(12, &MetadataRequest::default()).brokers.len(), 1);
}

/// The value of the metric line starting `name` (0 when absent).
fn metric(b: &Broker, name: &str) -> f64 {
    let (status, body) = http_get(b.admin_addr(), "/metrics");
    assert_eq!(status, 200);
    body.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

fn lifetime(raw: &mut RawClient, version: i16, bytes: &'static [u8]) -> (i16, i64) {
    let response = raw.call(
        version,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(bytes)),
    );
    (response.error_code, response.session_lifetime_ms)
}

#[test]
fn with_connections_max_reauth_ms_sessions_last_that_long_and_are_renewed_on_the_connection() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(&dir, &[("connections.max.reauth.ms", "2000")]);
    let carol = b"\0carol\0carol-secret";

    // SaslAuthenticate v1+ is told the session's lifetime; v0 cannot be.
    let mut raw = RawClient::connect(b.addr());
    assert_eq!(handshake(&mut raw, "PLAIN").0, 0);
    assert_eq!(lifetime(&mut raw, 0, carol), (0, 0));
    let mut raw = RawClient::connect(b.addr());
    assert_eq!(handshake(&mut raw, "PLAIN").0, 0);
    assert_eq!(lifetime(&mut raw, 1, carol), (0, 2000));

    // Re-authentication as the same user on the same connection; requests keep being served,
    // past the first session's end.
    assert_eq!(raw.call(12, &MetadataRequest::default()).brokers.len(), 1);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(handshake(&mut raw, "PLAIN").0, 0);
    assert_eq!(lifetime(&mut raw, 2, carol), (0, 2000));
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(raw.call(12, &MetadataRequest::default()).brokers.len(), 1);
    assert_eq!(
        metric(
            &b,
            "starling_sasl_reauthentications_total{outcome=\"succeeded\"}"
        ),
        1.0
    );

    // Left to expire, the next request other than a re-authentication closes the connection.
    std::thread::sleep(Duration::from_millis(1000));
    raw.send(12, &MetadataRequest::default());
    assert_eq!(
        raw.wait_closed(Duration::from_secs(5)),
        CloseOutcome::Closed
    );
    assert_eq!(metric(&b, "starling_sasl_expired_sessions_total"), 1.0);
}

#[test]
fn a_reauthentication_as_another_user_fails_and_closes_the_connection() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let lines: Vec<String> = [("carol", "carol-secret"), ("dave", "dave-secret")]
        .iter()
        .map(|(u, p)| {
            starling_broker::sasl::plain::users_file_line(u, p.as_bytes(), 10_000).unwrap()
        })
        .collect();
    std::fs::write(&users, lines.join("\n") + "\n").unwrap();
    let users = users.display().to_string();
    let b = Broker::with_overrides(&[
        ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("sasl.plain.users.file", users.as_str()),
        ("connections.max.reauth.ms", "2000"),
    ]);
    let mut raw = RawClient::connect(b.addr());
    assert_eq!(handshake(&mut raw, "PLAIN").0, 0);
    assert_eq!(lifetime(&mut raw, 2, b"\0carol\0carol-secret"), (0, 2000));
    assert_eq!(handshake(&mut raw, "PLAIN").0, 0);
    let (code, message) = authenticate(&mut raw, 2, b"\0dave\0dave-secret");
    assert_eq!(code, ResponseError::SaslAuthenticationFailed.code());
    assert_eq!(
        message.as_deref(),
        Some("Cannot change principals during re-authentication from User:carol: User:dave")
    );
    assert_eq!(
        raw.wait_closed(Duration::from_secs(15)),
        CloseOutcome::Closed
    );
    assert_eq!(
        metric(
            &b,
            "starling_sasl_reauthentications_total{outcome=\"failed\"}"
        ),
        1.0
    );
}

#[test]
fn without_connections_max_reauth_ms_the_lifetime_is_0_and_the_session_does_not_expire() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(&dir, &[]);
    let mut raw = RawClient::connect(b.addr());
    assert_eq!(handshake(&mut raw, "PLAIN").0, 0);
    assert_eq!(lifetime(&mut raw, 2, b"\0carol\0carol-secret"), (0, 0));
    // No re-authentication either: the handshake is an illegal state, as before.
    assert_eq!(
        handshake(&mut raw, "PLAIN").0,
        ResponseError::IllegalSaslState.code()
    );
    assert_eq!(raw.call(12, &MetadataRequest::default()).brokers.len(), 1);
}

#[test]
fn a_listener_sets_its_own_connections_max_reauth_ms() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(
        &dir,
        &[
            ("connections.max.reauth.ms", "60000"),
            (
                "listener.name.sasl_plaintext.connections.max.reauth.ms",
                "3000",
            ),
        ],
    );
    let mut raw = RawClient::connect(b.addr());
    assert_eq!(handshake(&mut raw, "PLAIN").0, 0);
    assert_eq!(lifetime(&mut raw, 1, b"\0carol\0carol-secret"), (0, 3000));
}

/// librdkafka (2.2+) re-authenticates on its own before the session's lifetime ends (KIP-368).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_reauthenticates_across_several_session_lifetimes() {
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(
        &dir,
        &[
            ("auto.create.topics.enable", "true"),
            ("connections.max.reauth.ms", "3000"),
        ],
    );
    let bootstrap = b.bootstrap();
    let auth = [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "PLAIN"),
        ("sasl.username", "carol"),
        ("sasl.password", "carol-secret"),
    ];
    let p = producer(&bootstrap, &auth);
    let c = consumer(&bootstrap, &auth);
    let started = std::time::Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(10) {
        let delivery = send_to_partition0(&p, "reauth-topic", "k", format!("v{sent}").as_bytes())
            .expect("enqueue");
        within(Duration::from_secs(30), "delivery", delivery)
            .await
            .expect("delivered")
            .expect("delivered");
        sent += 1;
        if sent == 1 {
            assign(&c, "reauth-topic", &[(0, Offset::Beginning)]);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let got = consume_until(&c, Duration::from_secs(30), |got| got.len() >= sent);
    let values: Vec<String> = got.iter().map(|m| m.value_str()).collect();
    let expected: Vec<String> = (0..sent).map(|i| format!("v{i}")).collect();
    assert_eq!(values, expected);
    assert!(
        metric(
            &b,
            "starling_sasl_reauthentications_total{outcome=\"succeeded\"}"
        ) >= 4.0,
        "{}",
        b.stderr()
    );
    assert_eq!(
        metric(
            &b,
            "starling_sasl_reauthentications_total{outcome=\"failed\"}"
        ),
        0.0
    );
    assert_eq!(metric(&b, "starling_sasl_expired_sessions_total"), 0.0);
}

/// librdkafka re-authenticates with SCRAM-SHA-256 too: each re-authentication is a whole new
/// SCRAM exchange against the stored credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_reauthenticates_with_scram() {
    use starling_broker::sasl::scram::ScramMechanism;
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let b = sasl_broker(
        &dir,
        &[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            ),
            ("auto.create.topics.enable", "true"),
            ("connections.max.reauth.ms", "2000"),
        ],
    );
    // The credential goes in over the PLAINTEXT listener.
    raw_scram_user(
        &mut RawClient::connect(b.addr()),
        ScramMechanism::Sha256,
        "erin",
        "erin-secret",
        4096,
    );
    let sasl = b.listener_addr("SASL_PLAINTEXT").to_string();
    let auth = [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", "erin"),
        ("sasl.password", "erin-secret"),
    ];
    let p = producer(&sasl, &auth);
    let started = std::time::Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(7) {
        let delivery = send_to_partition0(&p, "scram-reauth", "k", format!("v{sent}").as_bytes())
            .expect("enqueue");
        within(Duration::from_secs(30), "delivery", delivery)
            .await
            .expect("delivered")
            .expect("delivered");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        metric(
            &b,
            "starling_sasl_reauthentications_total{outcome=\"succeeded\"}"
        ) >= 2.0,
        "{}",
        b.stderr()
    );
    assert_eq!(
        metric(
            &b,
            "starling_sasl_reauthentications_total{outcome=\"failed\"}"
        ),
        0.0
    );
    assert_eq!(metric(&b, "starling_sasl_expired_sessions_total"), 0.0);
}
