//! TLS listeners with librdkafka (built with OpenSSL): several listeners at once, Metadata
//! answering with the listener the client came in on, producing and consuming in a group over
//! `SSL` and over `SASL_SSL` with SCRAM-SHA-512, client certificates naming the principal that
//! ACLs then judge, the failures a client reports for Kafka (no certificate, an expired or
//! untrusted one, a broker it does not trust, a wrong password, a disabled mechanism), clients
//! speaking the wrong protocol closed at once, and certificates reloaded without a restart.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateAclsRequest, FindCoordinatorRequest, MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;
use rcgen::DnType;
use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use starling_broker::sasl::scram::ScramMechanism;

const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// A CA in `dir` and a broker with a PLAINTEXT listener first and `listeners` after it, the
/// TLS ones using the CA's server certificate, plus `extra` settings.
fn tls_broker(
    dir: &tempfile::TempDir,
    listeners: &str,
    extra: &[(&str, &str)],
) -> (TestCa, Broker) {
    let ca = TestCa::new(dir.path(), "test");
    let server = ca.server("broker");
    let all = format!("PLAINTEXT://127.0.0.1:0,{listeners}");
    let mut overrides = vec![
        ("listeners", all.as_str()),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", path_str(&server.keystore)),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.location", path_str(&ca.ca_pem)),
    ];
    overrides.extend_from_slice(extra);
    let broker = Broker::with_overrides(&overrides);
    (ca, broker)
}

/// librdkafka settings for an SSL client trusting `ca`, with `client` as its certificate.
fn ssl_settings<'a>(ca: &'a TestCa, client: Option<&'a Issued>) -> Vec<(&'a str, &'a str)> {
    let mut settings = vec![
        ("security.protocol", "SSL"),
        ("ssl.ca.location", path_str(&ca.ca_pem)),
    ];
    if let Some(client) = client {
        settings.push(("ssl.certificate.location", path_str(&client.cert)));
        settings.push(("ssl.key.location", path_str(&client.key)));
    }
    settings
}

/// Records the errors librdkafka reports (its error callback): the reason a connection failed,
/// which `fetch_metadata` only calls a transport failure.
#[derive(Default)]
struct ErrorLog(Mutex<Vec<String>>);

impl ClientContext for ErrorLog {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.lock().unwrap().push(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for ErrorLog {}

/// Metadata through librdkafka: the brokers it was told about, or every error it reported.
fn metadata_brokers(
    bootstrap: &str,
    settings: &[(&str, &str)],
) -> Result<Vec<(String, u16)>, String> {
    let consumer: BaseConsumer<ErrorLog> = client_config(bootstrap, settings)
        .create_with_context(ErrorLog::default())
        .expect("create a client");
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .map(|m| {
            m.brokers()
                .iter()
                .map(|b| (b.host().to_string(), b.port() as u16))
                .collect()
        })
        .map_err(|e| {
            // Reported errors reach the context as the client is polled.
            for _ in 0..5 {
                let _ = consumer.poll(Duration::from_millis(100));
            }
            format!("{e}; reported: {:?}", consumer.context().0.lock().unwrap())
        })
}

/// Produces `values` to partition 0 of `topic`, each acknowledged.
async fn produce_all(producer: &FutureProducer, topic: &str, values: &[&str]) {
    for value in values {
        let delivery = send_to_partition0(producer, topic, "k", value.as_bytes()).expect("enqueue");
        within(Duration::from_secs(30), "delivery", delivery)
            .await
            .expect("delivered in time")
            .unwrap_or_else(|(e, _)| panic!("delivery of {value}: {e}"));
    }
}

/// A record for `topic` is refused with TOPIC_AUTHORIZATION_FAILED.
async fn write_refused(producer: &FutureProducer, topic: &str) {
    let delivery = send_to_partition0(producer, topic, "k", b"v").expect("enqueue");
    let refused = within(Duration::from_secs(30), "delivery", delivery)
        .await
        .expect("answered in time")
        .expect_err("refused");
    assert!(
        refused.0.to_string().contains("TopicAuthorization"),
        "{topic}: {}",
        refused.0
    );
}

/// Joins `group`, reads `n` records of `topic` and commits them; returns the values.
fn consume_in_group(
    bootstrap: &str,
    settings: &[(&str, &str)],
    group: &str,
    topic: &str,
    n: usize,
) -> Vec<String> {
    let mut all: Vec<(&str, &str)> = vec![
        ("group.id", group),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
    ];
    all.extend_from_slice(settings);
    let consumer: BaseConsumer = client_config(bootstrap, &all).create().expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while values.len() < n {
        assert!(Instant::now() < deadline, "only {values:?} within 60 s");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            use rdkafka::Message;
            let message = message.expect("no consumer error");
            values
                .push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
        }
    }
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    let mut partition = TopicPartitionList::new();
    partition.add_partition(topic, 0);
    let committed = consumer
        .committed_offsets(partition, Duration::from_secs(10))
        .expect("committed offsets");
    let offset = committed.find_partition(topic, 0).unwrap().offset();
    assert_eq!(
        offset,
        Offset::Offset(n as i64),
        "committed after {n} records"
    );
    consumer.unsubscribe();
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_produces_and_consumes_in_a_group_over_ssl() {
    let _dog = watchdog(Duration::from_secs(180));
    let dir = tempfile::tempdir().unwrap();
    let (ca, b) = tls_broker(&dir, "SSL://127.0.0.1:0", &[]);
    let ssl = b.listener_addr("SSL").to_string();
    let settings = ssl_settings(&ca, None);
    let p = producer(&ssl, &settings);
    produce_all(&p, "over-tls", &["a", "b", "c"]).await;
    let values = consume_in_group(&ssl, &settings, "tls-group", "over-tls", 3);
    assert_eq!(values, ["a", "b", "c"]);
    // The plaintext listener serves the same data.
    let c = consumer(&b.bootstrap(), &[]);
    assign(&c, "over-tls", &[(0, Offset::Beginning)]);
    let got = consume_until(&c, Duration::from_secs(30), |got| got.len() >= 3);
    assert_eq!(got.len(), 3);
}

#[test]
fn each_client_is_told_the_advertised_address_of_the_listener_it_connected_to() {
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let (ca, b) = tls_broker(
        &dir,
        "SSL://127.0.0.1:0",
        &[(
            "advertised.listeners",
            "PLAINTEXT://plain.example:1111,SSL://secure.example:2222",
        )],
    );
    let mut raw = RawClient::connect(b.addr());
    let metadata = raw.call(12, &MetadataRequest::default());
    let brokers: Vec<(String, i32)> = metadata
        .brokers
        .iter()
        .map(|b| (b.host.to_string(), b.port))
        .collect();
    assert_eq!(brokers, [("plain.example".to_string(), 1111)]);
    let coordinator = raw.call(
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![StrBytes::from_static_str("g")]),
    );
    let c = &coordinator.coordinators[0];
    assert_eq!((c.host.as_str(), c.port), ("plain.example", 1111));

    let ssl = b.listener_addr("SSL").to_string();
    let brokers = metadata_brokers(&ssl, &ssl_settings(&ca, None)).expect("metadata over SSL");
    assert_eq!(brokers, [("secure.example".to_string(), 2222)]);
}

#[test]
fn a_client_that_does_not_trust_the_broker_certificate_fails_the_handshake() {
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let (_ca, b) = tls_broker(&dir, "SSL://127.0.0.1:0", &[]);
    let stranger = TestCa::new(dir.path(), "stranger");
    let ssl = b.listener_addr("SSL").to_string();
    let e = metadata_brokers(&ssl, &ssl_settings(&stranger, None)).unwrap_err();
    assert!(e.contains("certificate verify failed"), "{e}");
}

/// A broker whose SSL listener requires client certificates, naming principals by their CN
/// (lower-cased) when their OU is `Apps`, with ACLs on. Only the plaintext listener's anonymous
/// clients (the test's own raw requests) are super users: every TLS client shows a certificate.
fn client_auth_broker(dir: &tempfile::TempDir) -> (TestCa, Broker) {
    tls_broker(
        dir,
        "SSL://127.0.0.1:0",
        &[
            ("ssl.client.auth", "required"),
            (
                "ssl.principal.mapping.rules",
                "RULE:^CN=([^,]*),OU=Apps,.*$/$1/L,DEFAULT",
            ),
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("super.users", "User:ANONYMOUS"),
            ("auto.create.topics.enable", "true"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_names_the_principal_the_acls_judge() {
    let _dog = watchdog(Duration::from_secs(180));
    let dir = tempfile::tempdir().unwrap();
    let (ca, b) = client_auth_broker(&dir);
    let allow = |name: &str, resource_type: i8, operation: i8| {
        AclCreation::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_resource_pattern_type(3) // LITERAL
            .with_principal(StrBytes::from_static_str("User:alice"))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(operation)
            .with_permission_type(3) // ALLOW
    };
    const TOPIC: i8 = 2;
    const GROUP: i8 = 3;
    const WRITE: i8 = 4;
    const READ: i8 = 3;
    const CREATE: i8 = 5;
    let mut raw = RawClient::connect(b.addr());
    let made = raw.call(
        3,
        &CreateAclsRequest::default().with_creations(vec![
            allow("alice-topic", TOPIC, WRITE),
            allow("alice-topic", TOPIC, READ),
            allow("alice-topic", TOPIC, CREATE),
            allow("alice-group", GROUP, READ),
        ]),
    );
    assert!(made.results.iter().all(|r| r.error_code == 0), "{made:?}");
    drop(raw);
    let ssl = b.listener_addr("SSL").to_string();

    // CN=Alice,OU=Apps,… maps to User:alice.
    let alice = ca.client(
        "alice",
        &[
            (DnType::OrganizationName, "Acme"),
            (DnType::OrganizationalUnitName, "Apps"),
            (DnType::CommonName, "Alice"),
        ],
    );
    let settings = ssl_settings(&ca, Some(&alice));
    let p = producer(&ssl, &settings);
    produce_all(&p, "alice-topic", &["x", "y"]).await;
    let values = consume_in_group(&ssl, &settings, "alice-group", "alice-topic", 2);
    assert_eq!(values, ["x", "y"]);
    // Another topic is refused with Kafka's error.
    write_refused(&p, "other-topic").await;

    // Bob's certificate maps by DEFAULT to his whole name, which no ACL grants.
    let bob = ca.client(
        "bob",
        &[
            (DnType::OrganizationName, "Acme"),
            (DnType::CommonName, "bob"),
        ],
    );
    let p = producer(&ssl, &ssl_settings(&ca, Some(&bob)));
    write_refused(&p, "alice-topic").await;
}

#[test]
fn without_a_trusted_valid_certificate_a_client_is_refused_when_client_auth_is_required() {
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let (ca, b) = client_auth_broker(&dir);
    let ssl = b.listener_addr("SSL").to_string();
    let subject = [
        (DnType::OrganizationalUnitName, "Apps"),
        (DnType::CommonName, "carol"),
    ];
    // With a good certificate the client gets in.
    let good = ca.client("carol", &subject);
    metadata_brokers(&ssl, &ssl_settings(&ca, Some(&good))).expect("a trusted certificate");
    // No certificate, an expired one, one from an untrusted CA: the handshake fails.
    let expired = ca.expired_client("carol-expired", &subject);
    let stranger = TestCa::new(dir.path(), "stranger");
    let untrusted = stranger.client("carol", &subject);
    for (what, client, alert) in [
        ("no certificate", None, "certificate required"),
        (
            "an expired certificate",
            Some(&expired),
            "certificate expired",
        ),
        // OpenSSL withholds a certificate whose issuer is not among the CAs the broker names.
        (
            "an untrusted certificate",
            Some(&untrusted),
            "certificate required",
        ),
    ] {
        let e = metadata_brokers(&ssl, &ssl_settings(&ca, client)).unwrap_err();
        // With TLS 1.3 the client learns of the refusal on its first read, as an alert.
        assert!(e.contains(&format!("alert {alert}")), "{what}: {e}");
    }
    let failures = http_get(b.admin_addr(), "/metrics").1;
    let line = failures
        .lines()
        .find(|l| l.starts_with("starling_tls_handshake_failures_total{listener=\"SSL\"}"))
        .unwrap_or_else(|| panic!("no handshake failure counted:\n{failures}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{line}");
}

#[test]
fn a_client_speaking_the_wrong_protocol_is_closed_at_once() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let (_ca, b) = tls_broker(
        &dir,
        "SSL://127.0.0.1:0",
        &[("ssl.handshake.timeout.ms", "1500")],
    );
    // A plaintext Kafka request on the TLS listener.
    let mut raw = RawClient::connect(b.listener_addr("SSL"));
    raw.send(3, &ApiVersionsRequest::default());
    assert_eq!(
        raw.wait_closed(Duration::from_secs(2)),
        CloseOutcome::Closed
    );
    // A TLS ClientHello's record header on the plaintext listener.
    let mut raw = RawClient::connect(b.addr());
    raw.send_bytes(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4])
        .unwrap();
    assert_eq!(
        raw.wait_closed(Duration::from_secs(2)),
        CloseOutcome::Closed
    );
    // A connection that never starts its handshake is closed after ssl.handshake.timeout.ms.
    let started = Instant::now();
    let mut raw = RawClient::connect(b.listener_addr("SSL"));
    assert_eq!(
        raw.wait_closed(Duration::from_secs(30)),
        CloseOutcome::Closed
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

fn sasl_ssl_settings<'a>(
    ca: &'a TestCa,
    mechanism: &'a str,
    user: &'a str,
    password: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("security.protocol", "SASL_SSL"),
        ("ssl.ca.location", path_str(&ca.ca_pem)),
        ("sasl.mechanism", mechanism),
        ("sasl.username", user),
        ("sasl.password", password),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_with_scram_sha_512_produces_consumes_and_commits() {
    let _dog = watchdog(Duration::from_secs(180));
    let dir = tempfile::tempdir().unwrap();
    let (ca, b) = tls_broker(
        &dir,
        "SASL_SSL://127.0.0.1:0",
        &[("sasl.enabled.mechanisms", "SCRAM-SHA-512")],
    );
    raw_scram_user(
        &mut RawClient::connect(b.addr()),
        ScramMechanism::Sha512,
        "dave",
        "dave-secret",
        8192,
    );
    let sasl_ssl = b.listener_addr("SASL_SSL").to_string();
    let settings = sasl_ssl_settings(&ca, "SCRAM-SHA-512", "dave", "dave-secret");
    let p = producer(&sasl_ssl, &settings);
    produce_all(&p, "scram-over-tls", &["1", "2", "3", "4"]).await;
    let values = consume_in_group(&sasl_ssl, &settings, "scram-group", "scram-over-tls", 4);
    assert_eq!(values, ["1", "2", "3", "4"]);

    // A wrong password, an unknown user, a mechanism the listener does not offer.
    let invalid = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";
    for (what, settings, says) in [
        (
            "a wrong password",
            sasl_ssl_settings(&ca, "SCRAM-SHA-512", "dave", "wrong"),
            invalid,
        ),
        (
            "an unknown user",
            sasl_ssl_settings(&ca, "SCRAM-SHA-512", "nobody", "x"),
            invalid,
        ),
        (
            "a disabled mechanism",
            sasl_ssl_settings(&ca, "SCRAM-SHA-256", "dave", "dave-secret"),
            "supported mechanisms: SCRAM-SHA-512",
        ),
    ] {
        let e = metadata_brokers(&sasl_ssl, &settings).unwrap_err();
        assert!(e.contains(says), "{what}: {e}");
    }
}

#[test]
fn changed_certificate_files_are_taken_without_a_restart() {
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let first = TestCa::new(dir.path(), "first");
    let second = TestCa::new(dir.path(), "second");
    let keystore = dir.path().join("keystore.pem");
    std::fs::copy(first.server("broker").keystore, &keystore).unwrap();
    let all = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0";
    let b = Broker::with_overrides(&[
        ("listeners", all),
        ("ssl.keystore.location", path_str(&keystore)),
        ("ssl.keystore.reload.interval.ms", "200"),
    ]);
    let ssl = b.listener_addr("SSL").to_string();
    metadata_brokers(&ssl, &ssl_settings(&first, None)).expect("the first CA's certificate");
    metadata_brokers(&ssl, &ssl_settings(&second, None)).unwrap_err();

    // A file that does not load is refused and the certificate in use stays.
    std::fs::write(&keystore, "not PEM").unwrap();
    let reloads = |outcome: &str| -> f64 {
        let metrics = http_get(b.admin_addr(), "/metrics").1;
        let prefix =
            format!("starling_tls_reloads_total{{listener=\"SSL\",outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map_or(0.0, |v| v.parse().unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while reloads("failed") < 1.0 {
        assert!(Instant::now() < deadline, "a broken key store not noticed");
        std::thread::sleep(Duration::from_millis(100));
    }
    metadata_brokers(&ssl, &ssl_settings(&first, None)).expect("the old certificate stays");

    std::fs::copy(second.server("broker").keystore, &keystore).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while reloads("reloaded") < 1.0 {
        assert!(Instant::now() < deadline, "the new key store not taken");
        std::thread::sleep(Duration::from_millis(100));
    }
    metadata_brokers(&ssl, &ssl_settings(&second, None)).expect("the second CA's certificate");
    metadata_brokers(&ssl, &ssl_settings(&first, None)).unwrap_err();
}

#[test]
fn a_tls_listener_without_usable_material_stops_the_broker_at_start_with_why() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "test");
    let server = ca.server("broker");
    let other = ca.server("other");
    for (overrides, says) in [
        (
            vec![("listeners", "SSL://127.0.0.1:0")],
            "needs its certificate and key",
        ),
        (
            vec![
                ("listeners", "SSL://127.0.0.1:0"),
                ("ssl.keystore.location", "/nonexistent/keystore.pem"),
            ],
            "/nonexistent/keystore.pem",
        ),
        (
            vec![
                ("listeners", "SSL://127.0.0.1:0"),
                (
                    "ssl.keystore.certificate.chain",
                    &std::fs::read_to_string(&server.cert).unwrap(),
                ),
                (
                    "ssl.keystore.key",
                    &std::fs::read_to_string(&other.key).unwrap(),
                ),
            ],
            "do not go together",
        ),
    ] {
        let args = override_args(&overrides);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let failure = match Broker::try_start(&args) {
            Ok(_) => panic!("started with {overrides:?}"),
            Err(f) => f,
        };
        assert!(failure.stderr.contains(says), "{says}: {}", failure.stderr);
    }
}

#[test]
fn the_admin_endpoint_serves_https_with_its_own_or_the_brokers_ssl_settings() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let kafka_ca = TestCa::new(dir.path(), "kafka");
    let admin_ca = TestCa::new(dir.path(), "admin");
    let kafka_keystore = kafka_ca.server("broker").keystore;
    let admin_keystore = admin_ca.server("admin").keystore;
    let b = Broker::with_overrides(&[
        ("listeners", "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"),
        ("ssl.keystore.location", path_str(&kafka_keystore)),
        ("admin.ssl.enable", "true"),
        ("admin.ssl.keystore.location", path_str(&admin_keystore)),
    ]);
    let (status, _, body) =
        https_get_with(b.admin_addr(), &admin_ca.ca_pem, "/healthz", &[]).expect("HTTPS");
    assert_eq!((status, body.trim()), (200, "ok"));
    // The admin endpoint has its own certificate, not the Kafka listeners'.
    let e = https_get_with(b.admin_addr(), &kafka_ca.ca_pem, "/healthz", &[]).unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
    metadata_brokers(
        &b.listener_addr("SSL").to_string(),
        &ssl_settings(&kafka_ca, None),
    )
    .expect("the Kafka listener keeps its certificate");
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    use std::io::{Read, Write};
    let mut plain = std::net::TcpStream::connect(b.admin_addr()).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}
