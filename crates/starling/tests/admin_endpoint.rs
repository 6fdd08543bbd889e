//! The admin HTTP endpoint exposed safely, end to end against the real binary:
//! `admin.auth=required` answers 401 with a challenge without credentials and with wrong ones
//! (slowed down per address, logged without the secret), and 200 with a bearer token made by
//! `starling admin-token create` or Basic credentials of a SCRAM user (`starling user create`)
//! or a `sasl.plain.users.file` user; with an authorizer, a token's principal sees only the
//! groups and topics it may DESCRIBE and needs DESCRIBE on the cluster for `/metrics`; and a
//! non-loopback `admin.listen` without `admin.auth` stops the broker at start.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const REFUSED: &str = r#"{"error":"authentication required"}"#;

/// Runs `starling ARGS` with `input` on standard input; (success, stdout, stderr).
fn starling_with_stdin(args: &[&str], input: &str) -> (bool, String, String) {
    let (status, out, err) = run_with_stdin(args, Some(input), Duration::from_secs(60));
    (status.success(), out, err)
}

/// `starling admin-token create --principal PRINCIPAL`: the token and its tokens-file line.
fn create_token(principal: &str) -> (String, String) {
    let (status, out, err) = run_to_exit(
        &["admin-token", "create", "--principal", principal],
        Duration::from_secs(30),
    );
    assert!(status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let (token, line) = (lines[0], lines[1]);
    assert!(
        token.starts_with("starling_") && token.len() == 52,
        "{token}"
    );
    assert!(line.starts_with(&format!("{principal}:sha256$")), "{line}");
    assert!(
        !line.contains(token),
        "the file line holds the token: {line}"
    );
    (token.to_string(), line.to_string())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// `GET path` on the broker's admin endpoint, with `authorization` if given.
fn get(
    broker: &Broker,
    path: &str,
    authorization: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    http_get_with(broker.admin_addr(), path, &headers)
}

fn status_and_body(broker: &Broker, path: &str, authorization: Option<&str>) -> (u16, String) {
    let (status, _, body) = get(broker, path, authorization);
    (status, body)
}

#[test]
fn the_endpoint_refuses_missing_and_wrong_credentials_and_admits_tokens_and_users() {
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let (token, line) = create_token("User:ops");
    let tokens = dir.path().join("admin-tokens");
    std::fs::write(&tokens, format!("# admin endpoint tokens\n{line}\n")).unwrap();
    let users = dir.path().join("plain-users");
    let carol = starling_broker::sasl::plain::users_file_line("carol", b"carol-pw", 10_000)
        .expect("a users-file line");
    std::fs::write(&users, format!("{carol}\n")).unwrap();
    let broker = Broker::with_overrides(&[
        ("admin.auth", "required"),
        ("admin.auth.tokens.file", tokens.to_str().unwrap()),
        ("sasl.plain.users.file", users.to_str().unwrap()),
        // Failures double this per recent failure from the address: keep the test quick.
        ("connection.failed.authentication.delay.ms", "10"),
    ]);
    let (ok, out, err) = starling_with_stdin(
        &[
            "user",
            "--bootstrap",
            &broker.bootstrap(),
            "create",
            "alice",
        ],
        "alice-pw\n",
    );
    assert!(ok, "{out}{err}");

    // No credentials: 401 on every route but /healthz, with a challenge per scheme.
    let (status, headers, body) = get(&broker, "/groups", None);
    assert_eq!((status, body.as_str()), (401, REFUSED));
    let challenges: Vec<&str> = headers
        .iter()
        .filter(|(name, _)| name == "www-authenticate")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(
        challenges,
        [
            r#"Bearer realm="starling-admin""#,
            r#"Basic realm="starling-admin", charset="UTF-8""#
        ]
    );
    for path in ["/", "/metrics", "/groups/g/rebalances"] {
        assert_eq!(status_and_body(&broker, path, None), (401, REFUSED.into()));
    }
    assert_eq!(
        status_and_body(&broker, "/healthz", None),
        (200, "ok".into())
    );

    // Wrong credentials: the same 401, each failure slower than the one before.
    let unknown_token = format!("starling_{}", "A".repeat(43));
    let wrong = [
        bearer(&unknown_token),
        bearer(&token[..token.len() - 1]),
        basic("alice", "wrong-pw"),
        basic("nobody", "alice-pw"),
        basic("carol", "alice-pw"),
        "Digest username=\"alice\"".to_string(),
    ];
    let mut last_failure = Duration::ZERO;
    for authorization in &wrong {
        let started = Instant::now();
        let (status, body) = status_and_body(&broker, "/groups", Some(authorization));
        last_failure = started.elapsed();
        assert_eq!((status, body.as_str()), (401, REFUSED), "{authorization}");
    }
    // The sixth failure in a row from this address waits 10 ms × 2^5.
    assert!(
        last_failure >= Duration::from_millis(300),
        "{last_failure:?}"
    );
    assert_eq!(
        status_and_body(&broker, "/healthz", Some(&basic("alice", "wrong-pw"))).0,
        401
    );

    // The right ones: a token, a SCRAM user, a PLAIN user.
    for authorization in [
        bearer(&token),
        basic("alice", "alice-pw"),
        basic("carol", "carol-pw"),
    ] {
        let auth = Some(authorization.as_str());
        assert_eq!(
            status_and_body(&broker, "/groups", auth),
            (200, "[]".into()),
            "{authorization}"
        );
        let (status, metrics) = status_and_body(&broker, "/metrics", auth);
        assert_eq!(status, 200, "{authorization}");
        assert!(metrics.contains("starling_requests_total"), "{metrics}");
        let (status, routes) = status_and_body(&broker, "/", auth);
        assert_eq!(status, 200);
        assert!(routes.contains("GET /groups/{id}/rebalances"), "{routes}");
        assert_eq!(
            status_and_body(&broker, "/groups/nowhere/rebalances", auth),
            (404, r#"{"error":"group 'nowhere' not found"}"#.into())
        );
    }

    // Failures were logged with the address and reason, never the secret.
    let stderr = broker.stderr();
    assert_eq!(
        stderr
            .matches("admin endpoint: authentication failed")
            .count(),
        wrong.len() + 1,
        "{stderr}"
    );
    assert!(stderr.contains("user=alice") || stderr.contains("user=\"alice\""));
    for secret in [
        "wrong-pw",
        "alice-pw",
        unknown_token.as_str(),
        token.as_str(),
    ] {
        assert!(!stderr.contains(secret), "{secret} logged:\n{stderr}");
    }
}

fn create_topics(raw: &mut RawClient, topics: &[&str]) {
    raw_create_topics(raw, topics);
}

/// Commits offset 1 of partition 0 of each topic for `group`, as an `assign()` consumer.
fn commit(raw: &mut RawClient, group: &str, topics: &[&str]) {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(vec![OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(1)])
                })
                .collect(),
        );
    let response = raw.call(8, &request);
    for topic in &response.topics {
        for partition in &topic.partitions {
            assert_eq!(partition.error_code, 0, "{group}: {response:?}");
        }
    }
}

fn allow_ops(resource_type: i8, name: &str) -> AclCreation {
    const LITERAL: i8 = 3;
    const DESCRIBE: i8 = 8;
    const ALLOW: i8 = 3;
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_resource_pattern_type(LITERAL)
        .with_principal(StrBytes::from_static_str("User:ops"))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(DESCRIBE)
        .with_permission_type(ALLOW)
}

/// The listed groups' ids, and each group's offsets as (topic, committed, log end, lag).
type Listing = Vec<(String, Vec<(String, i64, i64, i64)>)>;

fn listing(body: &str) -> Listing {
    let groups: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
    groups
        .iter()
        .map(|g| {
            let offsets = g["offsets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    (
                        o["topic"].as_str().unwrap().to_string(),
                        o["committed_offset"].as_i64().unwrap(),
                        o["log_end_offset"].as_i64().unwrap(),
                        o["lag"].as_i64().unwrap(),
                    )
                })
                .collect();
            (g["group_id"].as_str().unwrap().to_string(), offsets)
        })
        .collect()
}

#[test]
fn with_an_authorizer_a_principal_sees_only_the_groups_and_topics_it_may_describe() {
    const TOPIC: i8 = 2;
    const GROUP: i8 = 3;
    let _dog = watchdog(Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let (ops, ops_line) = create_token("User:ops");
    let (admin, admin_line) = create_token("User:admin");
    let tokens = dir.path().join("admin-tokens");
    std::fs::write(&tokens, format!("{ops_line}\n{admin_line}\n")).unwrap();
    // Kafka clients are ANONYMOUS here, a super user, to set things up; the endpoint's callers
    // are the tokens' principals.
    let broker = Broker::with_overrides(&[
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("super.users", "User:admin;User:ANONYMOUS"),
        ("admin.auth", "required"),
        ("admin.auth.tokens.file", tokens.to_str().unwrap()),
        ("admin.auth.basic.enable", "false"),
    ]);
    let mut raw = RawClient::connect(broker.addr());
    create_topics(&mut raw, &["a", "b"]);
    for topic in ["a", "b"] {
        let batch = record_batch(
            &[
                (Some(b"k"), Some(b"one")),
                (Some(b"k"), Some(b"two")),
                (Some(b"k"), Some(b"three")),
            ],
            now_ms(),
        );
        assert_eq!(raw_produce(&mut raw, 7, topic, 0, batch).error_code, 0);
    }
    commit(&mut raw, "g1", &["a", "b"]);
    commit(&mut raw, "g2", &["a"]);
    let made = raw.call(
        3,
        &CreateAclsRequest::default()
            .with_creations(vec![allow_ops(GROUP, "g1"), allow_ops(TOPIC, "a")]),
    );
    assert!(made.results.iter().all(|r| r.error_code == 0), "{made:?}");

    let ops_token = ops;
    let ops = bearer(&ops_token);
    let ops = Some(ops.as_str());
    let admin = bearer(&admin);
    let admin = Some(admin.as_str());

    // ops: g1 only, and in it only topic a's offset and lag.
    let (status, body) = status_and_body(&broker, "/groups", ops);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        listing(&body),
        vec![("g1".to_string(), vec![("a".to_string(), 1, 3, 2)])]
    );
    assert!(!body.contains("g2") && !body.contains(r#""b""#), "{body}");
    assert_eq!(
        status_and_body(&broker, "/groups/g1/rebalances", ops),
        (200, "[]".into())
    );
    // A group it may not describe is refused whether it exists or not.
    for group in ["g2", "nowhere"] {
        assert_eq!(
            status_and_body(&broker, &format!("/groups/{group}/rebalances"), ops),
            (
                403,
                format!(r#"{{"error":"User:ops may not DESCRIBE group '{group}'"}}"#)
            )
        );
    }
    assert_eq!(
        status_and_body(&broker, "/metrics", ops),
        (
            403,
            r#"{"error":"User:ops may not DESCRIBE the cluster, which the metrics need"}"#.into()
        )
    );

    // The console shows ops the same: g1 with topic a's lag, no g2, no topic b.
    let (status, overview) = status_and_body(&broker, "/ui/", ops);
    assert_eq!(status, 200, "{overview}");
    assert!(overview.contains("href=\"/ui/groups/g1\""), "{overview}");
    assert!(!overview.contains("/ui/groups/g2"), "{overview}");
    assert!(
        overview.contains("href=\"/ui/topics/a\"") && !overview.contains("/ui/topics/b"),
        "{overview}"
    );
    let (status, page) = status_and_body(&broker, "/ui/groups/g1", ops);
    assert_eq!(status, 200, "{page}");
    // The lag of topic a only (a lag history, once read twice, sums the shown rows too).
    assert!(
        ["</dd>", " <svg"]
            .iter()
            .any(|after| page.contains(&format!("<dt>Total lag</dt><dd>2{after}"))),
        "{page}"
    );
    assert!(!page.contains("/ui/topics/b"), "{page}");
    for group in ["g2", "nowhere"] {
        let (status, page) = status_and_body(&broker, &format!("/ui/groups/{group}"), ops);
        assert_eq!(status, 403, "{page}");
        assert!(
            page.contains(&format!(
                "User:ops may not DESCRIBE group &#39;{group}&#39;"
            )),
            "{page}"
        );
    }
    assert_eq!(status_and_body(&broker, "/ui/", None).0, 401);

    // `starling group rebalances` sends the token in STARLING_ADMIN_TOKEN.
    let rebalances = |group: &str, token: Option<&str>| {
        let mut cmd = Command::new(STARLING);
        cmd.args(["group", "rebalances", group, "--admin"])
            .arg(broker.admin_addr().to_string())
            .env_remove("STARLING_ADMIN_TOKEN")
            .stdin(Stdio::null());
        if let Some(token) = token {
            cmd.env("STARLING_ADMIN_TOKEN", token);
        }
        die_with_parent(&mut cmd);
        let output = cmd.output().expect("run starling group rebalances");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(
        rebalances("g1", Some(&ops_token)),
        (true, "no rebalances recorded\n".into(), String::new())
    );
    let (ok, _, err) = rebalances("g2", Some(&ops_token));
    assert!(!ok);
    assert_eq!(
        err.trim(),
        r#"error: the admin endpoint answered 403: {"error":"User:ops may not DESCRIBE group 'g2'"}"#
    );
    let (ok, _, err) = rebalances("g1", None);
    assert!(!ok);
    assert!(err.contains("set STARLING_ADMIN_TOKEN"), "{err}");

    // admin, a super user: everything.
    let (status, body) = status_and_body(&broker, "/groups", admin);
    assert_eq!(status, 200, "{body}");
    let mut all = listing(&body);
    all.sort();
    assert_eq!(
        all,
        vec![
            (
                "g1".to_string(),
                vec![("a".to_string(), 1, 3, 2), ("b".to_string(), 1, 3, 2)]
            ),
            ("g2".to_string(), vec![("a".to_string(), 1, 3, 2)]),
        ]
    );
    let (status, metrics) = status_and_body(&broker, "/metrics", admin);
    assert_eq!(status, 200);
    assert!(metrics.contains("starling_requests_total"), "{metrics}");
}

#[test]
fn a_non_loopback_admin_endpoint_needs_admin_auth_chosen_and_an_open_one_is_warned_about() {
    let _dog = watchdog(Duration::from_secs(60));
    let failure = match Broker::try_start(&["--admin-listen", "0.0.0.0:0"]) {
        Ok(_) => panic!("a broker with its admin endpoint on 0.0.0.0 and no admin.auth started"),
        Err(failure) => failure,
    };
    assert!(
        failure.stderr.contains("'admin.listen'")
            && failure.stderr.contains("set admin.auth=required"),
        "{}",
        failure.stderr
    );

    let broker = Broker::start(&[
        "--admin-listen",
        "0.0.0.0:0",
        "--override",
        "admin.auth=none",
    ]);
    assert!(
        broker
            .stderr()
            .contains("THE ADMIN ENDPOINT IS OPEN TO ANY HOST"),
        "{}",
        broker.stderr()
    );
    assert_eq!(http_get(broker.admin_addr(), "/groups"), (200, "[]".into()));
}
