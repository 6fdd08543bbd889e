//! The `starling` CLI against a broker that requires TLS, SASL and ACLs: logging in with PLAIN
//! (from a `--command-config` file with Java's `sasl.jaas.config`) and SCRAM-SHA-512 (from
//! librdkafka-style `-X` properties) over SASL_SSL, with a client certificate over SSL,
//! managing users and ACLs as a super user, being refused as a user without ACLs, consuming in
//! a group while the broker makes the session re-authenticate, reading rebalances from an
//! HTTPS admin endpoint with basic credentials, and each failure told in words: a wrong
//! password, a disabled mechanism, an untrusted CA, TLS to a plaintext listener.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rcgen::DnType;

const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const CLI_LIMIT: Duration = Duration::from_secs(60);

/// `starling ARGS` with `stdin`; (exit code, stdout, stderr).
fn starling(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let (status, out, err) = run_with_stdin(args, Some(stdin), CLI_LIMIT);
    (status.code(), out, err)
}

/// `starling ARGS` that must succeed; its stdout.
fn ok(args: &[&str], stdin: &str) -> String {
    let (code, out, err) = starling(args, stdin);
    assert_eq!(
        code,
        Some(0),
        "`starling {}`:\n--- stdout ---\n{out}--- stderr ---\n{err}",
        args.join(" ")
    );
    out
}

/// `starling ARGS` that must fail; its stderr.
fn fails(args: &[&str], stdin: &str) -> String {
    let (code, out, err) = starling(args, stdin);
    assert_eq!(
        code,
        Some(1),
        "`starling {}`:\n--- stdout ---\n{out}--- stderr ---\n{err}",
        args.join(" ")
    );
    err
}

/// A SASL_SSL client properties file for a PLAIN user, in Java's `--command-config` form.
fn plain_command_config(dir: &Path, ca: &TestCa, user: &str, password: &str) -> PathBuf {
    let path = dir.join(format!("{user}.properties"));
    std::fs::write(
        &path,
        format!(
            "# as for kafka-topics.sh --command-config\n\
             security.protocol=SASL_SSL\n\
             sasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n    \
             username=\"{user}\" password=\"{password}\";\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={}\n",
            ca.ca_pem.display()
        ),
    )
    .unwrap();
    path
}

/// A broker with PLAINTEXT first (unused by the CLI here), SASL_SSL with PLAIN and
/// SCRAM-SHA-512, and SSL requiring client certificates; StandardAuthorizer with the PLAIN
/// user `admin` and the certificate `CN=ops` as super users. `extra` settings are added.
fn secured_broker(dir: &Path, extra: &[(&str, &str)]) -> (TestCa, Broker) {
    let ca = TestCa::new(dir, "cli");
    let server = ca.server("broker");
    let users = dir.join("plain-users");
    let admin =
        starling_broker::sasl::plain::users_file_line("admin", b"admin-secret", 10_000).unwrap();
    std::fs::write(&users, format!("{admin}\n")).unwrap();
    let mut overrides = vec![
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,SSL://127.0.0.1:0",
        ),
        ("ssl.keystore.location", path_str(&server.keystore)),
        ("ssl.truststore.location", path_str(&ca.ca_pem)),
        ("ssl.client.auth", "required"),
        ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
        ("sasl.plain.users.file", path_str(&users)),
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("super.users", "User:admin;User:CN=ops"),
    ];
    overrides.extend_from_slice(extra);
    let broker = Broker::with_overrides(&overrides);
    (ca, broker)
}

/// `-X` properties logging in as a SCRAM-SHA-512 user over SASL_SSL, trusting `ca`.
fn scram_properties(ca: &TestCa, user: &str, password: &str) -> Vec<String> {
    [
        "security.protocol=SASL_SSL".to_string(),
        "sasl.mechanisms=SCRAM-SHA-512".to_string(),
        format!("sasl.username={user}"),
        format!("sasl.password={password}"),
        format!("ssl.ca.location={}", ca.ca_pem.display()),
    ]
    .into_iter()
    .flat_map(|p| ["-X".to_string(), p])
    .collect()
}

fn with<'a>(args: &[&'a str], more: &'a [String]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(more.iter().map(String::as_str));
    all
}

#[test]
fn the_cli_logs_in_over_sasl_ssl_and_is_refused_what_its_acls_do_not_allow() {
    let _dog = watchdog(Duration::from_secs(240));
    let dir = tempfile::tempdir().unwrap();
    let (ca, b) = secured_broker(dir.path(), &[]);
    let sasl_ssl = b.listener_addr("SASL_SSL").to_string();
    let admin = plain_command_config(dir.path(), &ca, "admin", "admin-secret");
    let admin_args = [
        "--bootstrap",
        &sasl_ssl,
        "--command-config",
        path_str(&admin),
    ];

    // The super user creates a SCRAM user and a topic.
    ok(
        &with(
            &["user", "create", "carol", "--mechanism", "scram-sha-512"],
            &admin_args.map(String::from),
        ),
        "carol-secret\n",
    );
    ok(
        &with(
            &["topic", "create", "orders", "-p", "2"],
            &admin_args.map(String::from),
        ),
        "",
    );

    // carol, with no ACLs, sees no topics and may not produce.
    let carol = scram_properties(&ca, "carol", "carol-secret");
    let carol_args: Vec<String> = ["-b".to_string(), sasl_ssl.clone()]
        .into_iter()
        .chain(carol.iter().cloned())
        .collect();
    let listed = ok(&with(&["topic", "list", "--json"], &carol_args), "");
    assert!(!listed.contains("orders"), "{listed}");
    let refused = fails(&with(&["produce", "orders"], &carol_args), "x\n");
    assert!(refused.contains("TOPIC_AUTHORIZATION_FAILED"), "{refused}");

    // Allowed to write and describe `orders` and read it in group `g`, she can.
    for acl in [
        vec![
            "--topic",
            "orders",
            "--operation",
            "write",
            "--operation",
            "describe",
        ],
        vec!["--topic", "orders", "--operation", "read"],
        vec!["--group", "g", "--operation", "read"],
    ] {
        let mut args = vec!["acl", "add", "--allow-principal", "User:carol"];
        args.extend(acl);
        ok(&with(&args, &admin_args.map(String::from)), "");
    }
    let produced = ok(
        &with(&["produce", "orders", "-p", "0"], &carol_args),
        "a\nb\n",
    );
    assert!(
        produced.starts_with("produced 2 records to orders"),
        "{produced}"
    );
    let consumed = ok(
        &with(
            &["consume", "orders", "--group", "g", "-n", "2"],
            &carol_args,
        ),
        "",
    );
    assert_eq!(consumed, "a\nb\n");
    // Another group is still refused.
    let refused = fails(
        &with(
            &["consume", "orders", "--group", "other", "-n", "1"],
            &carol_args,
        ),
        "",
    );
    assert!(refused.contains("GROUP_AUTHORIZATION_FAILED"), "{refused}");

    // Each failure to connect says why.
    let wrong_password = scram_properties(&ca, "carol", "not-her-password");
    let error = fails(
        &with(&["topic", "list", "-b", &sasl_ssl], &wrong_password),
        "",
    );
    assert!(
        error.contains("SCRAM-SHA-512 login as \"carol\"")
            && error.contains("invalid credentials with SASL mechanism SCRAM-SHA-512"),
        "{error}"
    );
    let error = fails(
        &with(
            &[
                "topic",
                "list",
                "-b",
                &sasl_ssl,
                "-X",
                "sasl.mechanism=SCRAM-SHA-256",
            ],
            &carol,
        ),
        "",
    );
    assert!(
        error.contains(
            "does not enable SCRAM-SHA-256 on this listener; it enables PLAIN, SCRAM-SHA-512"
        ),
        "{error}"
    );
    let stranger = TestCa::new(dir.path(), "stranger");
    let untrusted = format!("ssl.ca.location={}", stranger.ca_pem.display());
    let error = fails(
        &with(&["topic", "list", "-b", &sasl_ssl], &carol)
            .into_iter()
            .chain(["-X", untrusted.as_str()])
            .collect::<Vec<_>>(),
        "",
    );
    assert!(error.contains("not signed by a trusted CA"), "{error}");
    // Unless certificates are not checked at all (tests only).
    let unchecked = with(&["topic", "list", "-b", &sasl_ssl], &carol)
        .into_iter()
        .chain(["-X", untrusted.as_str()])
        .chain(["-X", "enable.ssl.certificate.verification=false"])
        .collect::<Vec<_>>();
    ok(&unchecked, "");
    let error = fails(&with(&["topic", "list", "-b", &b.bootstrap()], &carol), "");
    assert!(error.contains("is this a TLS listener?"), "{error}");
    let error = fails(
        &[
            "topic",
            "list",
            "-b",
            &sasl_ssl,
            "-X",
            "security.protocl=SSL",
        ],
        "",
    );
    assert!(
        error.contains("unknown client property \"security.protocl\""),
        "{error}"
    );
}

#[test]
fn the_cli_authenticates_with_a_client_certificate_over_ssl() {
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let (ca, b) = secured_broker(dir.path(), &[]);
    let ssl = b.listener_addr("SSL").to_string();
    let ops = ca.client("ops", &[(DnType::CommonName, "ops")]);
    let nobody = ca.client("nobody", &[(DnType::CommonName, "nobody")]);
    let ca_location = format!("ssl.ca.location={}", ca.ca_pem.display());
    let as_client = |client: &Issued| {
        vec![
            "-X".to_string(),
            "security.protocol=SSL".to_string(),
            "-X".to_string(),
            ca_location.clone(),
            "-X".to_string(),
            format!("ssl.certificate.location={}", client.cert.display()),
            "-X".to_string(),
            format!("ssl.key.location={}", client.key.display()),
        ]
    };
    let ops_args = as_client(&ops);
    ok(
        &with(&["topic", "create", "audit", "-b", &ssl], &ops_args),
        "",
    );
    let listed = ok(&with(&["topic", "list", "-b", &ssl], &ops_args), "");
    assert!(listed.contains("audit"), "{listed}");
    // CN=nobody is authenticated but has no ACLs.
    let error = fails(
        &with(
            &["topic", "create", "other", "-b", &ssl],
            &as_client(&nobody),
        ),
        "",
    );
    assert!(
        error.contains("CLUSTER_AUTHORIZATION_FAILED")
            || error.contains("TOPIC_AUTHORIZATION_FAILED"),
        "{error}"
    );
    // Without a certificate the broker ends the handshake.
    let error = fails(
        &[
            "topic",
            "list",
            "-b",
            &ssl,
            "-X",
            "security.protocol=SSL",
            "-X",
            &ca_location,
        ],
        "",
    );
    assert!(
        error.starts_with("error: cannot connect to") && error.contains("client certificate"),
        "{error}"
    );
}

#[test]
fn a_long_consume_logs_in_again_when_the_broker_ends_sessions() {
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let (ca, b) = secured_broker(
        dir.path(),
        &[
            ("connections.max.reauth.ms", "1500"),
            ("admin.auth", "required"),
            ("admin.auth.basic.enable", "true"),
        ],
    );
    let sasl_ssl = b.listener_addr("SASL_SSL").to_string();
    let admin = plain_command_config(dir.path(), &ca, "admin", "admin-secret");
    let admin_args = ["-b", &sasl_ssl, "-F", path_str(&admin)];
    ok(
        &with(
            &["topic", "create", "ticks", "-p", "1"],
            &admin_args.map(String::from),
        ),
        "",
    );

    // A follower that outlives several sessions.
    let mut cmd = Command::new(STARLING);
    cmd.args(["consume", "ticks", "-f", "-n", "2"])
        .args(admin_args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let follower = cmd.spawn().unwrap();
    ok(
        &with(&["produce", "ticks"], &admin_args.map(String::from)),
        "first\n",
    );
    std::thread::sleep(Duration::from_secs(4));
    ok(
        &with(&["produce", "ticks"], &admin_args.map(String::from)),
        "second\n",
    );
    let output = follower.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "first\nsecond\n");

    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:admin-secret")
    );
    let (_, _, metrics) = http_get_with(b.admin_addr(), "/metrics", &[("Authorization", &basic)]);
    let renewed = metrics
        .lines()
        .find(|l| l.starts_with("starling_sasl_reauthentications_total") && l.contains("succeeded"))
        .unwrap_or_else(|| panic!("no successful re-authentication counted:\n{metrics}"));
    let count: f64 = renewed.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 2.0, "{renewed}");
}

/// As the PLAIN super user over SASL_SSL: a topic `jobs` with one record, consumed in group
/// `workers` (so the group has a rebalance on record). Returns the super user's CLI options.
fn group_with_a_rebalance(dir: &Path, ca: &TestCa, b: &Broker) -> Vec<String> {
    let sasl_ssl = b.listener_addr("SASL_SSL").to_string();
    let admin = plain_command_config(dir, ca, "admin", "admin-secret");
    let admin_args = ["-b", &sasl_ssl, "-F", path_str(&admin)].map(String::from);
    ok(&with(&["topic", "create", "jobs"], &admin_args), "");
    ok(&with(&["produce", "jobs"], &admin_args), "one\n");
    ok(
        &with(
            &["consume", "jobs", "--group", "workers", "-n", "1"],
            &admin_args,
        ),
        "",
    );
    admin_args.to_vec()
}

#[test]
fn group_rebalances_reads_an_https_admin_endpoint_as_a_sasl_user() {
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let (ca, b) = secured_broker(
        dir.path(),
        &[
            ("admin.ssl.enable", "true"),
            // The Kafka listeners' ssl.client.auth=required would apply to HTTPS too.
            ("admin.ssl.client.auth", "none"),
            ("admin.auth", "required"),
            ("admin.auth.basic.enable", "true"),
        ],
    );
    let admin_args = group_with_a_rebalance(dir.path(), &ca, &b);

    let endpoint = format!("https://{}", b.admin_addr());
    let table = ok(
        &with(
            &["group", "rebalances", "workers", "--admin", &endpoint],
            &admin_args,
        ),
        "",
    );
    assert!(
        table.lines().count() >= 2,
        "a header and a rebalance:\n{table}"
    );

    // The same without credentials, or without trusting the endpoint's CA.
    let error = fails(
        &[
            "group",
            "rebalances",
            "workers",
            "--admin",
            &endpoint,
            "-X",
            &format!("ssl.ca.location={}", ca.ca_pem.display()),
        ],
        "",
    );
    assert!(error.contains("asks for credentials"), "{error}");
    let error = fails(
        &["group", "rebalances", "workers", "--admin", &endpoint],
        "",
    );
    // The system's CAs (or none at all) do not vouch for the test CA.
    assert!(
        error.contains("TLS to the admin endpoint") || error.contains("ssl.ca.location"),
        "{error}"
    );
}

#[test]
fn a_verified_client_certificate_names_the_admin_endpoints_caller() {
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    // ssl.client.auth=required applies to the HTTPS endpoint too.
    let (ca, b) = secured_broker(
        dir.path(),
        &[("admin.ssl.enable", "true"), ("admin.auth", "required")],
    );
    group_with_a_rebalance(dir.path(), &ca, &b);

    let endpoint = format!("https://{}", b.admin_addr());
    let holder = |name: &str| {
        let issued = ca.client(name, &[(DnType::CommonName, name)]);
        [
            format!("ssl.ca.location={}", ca.ca_pem.display()),
            format!("ssl.certificate.location={}", issued.cert.display()),
            format!("ssl.key.location={}", issued.key.display()),
        ]
        .into_iter()
        .flat_map(|p| ["-X".to_string(), p])
        .collect::<Vec<_>>()
    };
    // CN=ops is a super user: no token, no password, the certificate is enough.
    let table = ok(
        &with(
            &["group", "rebalances", "workers", "--admin", &endpoint],
            &holder("ops"),
        ),
        "",
    );
    assert!(table.lines().count() >= 2, "{table}");
    // CN=nobody is who the endpoint judges, and has no ACLs.
    let error = fails(
        &with(
            &["group", "rebalances", "workers", "--admin", &endpoint],
            &holder("nobody"),
        ),
        "",
    );
    assert!(
        error.contains("User:CN=nobody may not DESCRIBE group 'workers'"),
        "{error}"
    );
}
