//! ACLs end to end: CreateAcls, DescribeAcls and DeleteAcls by raw requests at every served
//! version (every error Kafka gives, SECURITY_DISABLED without an authorizer, MATCH filters,
//! grouping by resource, per-filter deletion results), ACLs surviving a restart, and
//! `starling acl add|list|remove` against a real broker.

mod common;

use std::time::Duration;

use common::*;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
    DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const ALL: i8 = 2;
const ALLOW: i8 = 3;
const DENY: i8 = 2;

const INVALID_REQUEST: i16 = ResponseError::InvalidRequest.code();
const SECURITY_DISABLED: i16 = ResponseError::SecurityDisabled.code();

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A broker with the authorizer on, where the tests' connections (`User:ANONYMOUS` until SASL)
/// are super users: the ACL APIs need ALTER / DESCRIBE on the cluster, and these tests are
/// about the APIs, not about enforcement (see `acl_enforcement.rs`).
fn with_authorizer() -> Broker {
    Broker::with_overrides(&[
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("super.users", "User:ANONYMOUS"),
    ])
}

#[allow(clippy::too_many_arguments)]
fn creation(
    resource_type: i8,
    name: &str,
    pattern_type: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern_type)
        .with_principal(s(principal))
        .with_host(s(host))
        .with_operation(operation)
        .with_permission_type(permission)
}

fn allow_read(name: &str, pattern_type: i8, principal: &str) -> AclCreation {
    creation(TOPIC, name, pattern_type, principal, "*", READ, ALLOW)
}

/// A filter with every field "any".
fn any_filter() -> DeleteAclsFilter {
    DeleteAclsFilter::default()
        .with_resource_type_filter(ANY)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(ANY)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY)
}

fn describe_request(f: &DeleteAclsFilter) -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(f.resource_type_filter)
        .with_resource_name_filter(f.resource_name_filter.clone())
        .with_pattern_type_filter(f.pattern_type_filter)
        .with_principal_filter(f.principal_filter.clone())
        .with_host_filter(f.host_filter.clone())
        .with_operation(f.operation)
        .with_permission_type(f.permission_type)
}

/// (code, message) per creation.
fn create(raw: &mut RawClient, version: i16, creations: Vec<AclCreation>) -> Vec<(i16, String)> {
    let n = creations.len();
    let resp = raw.call(
        version,
        &CreateAclsRequest::default().with_creations(creations),
    );
    assert_eq!(resp.results.len(), n, "{resp:?}");
    resp.results
        .iter()
        .map(|r| {
            (
                r.error_code,
                r.error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// (resource type, name, pattern type, principal, operation, permission) per ACL described.
fn described(resp: &DescribeAclsResponse) -> Vec<(i8, String, i8, String, i8, i8)> {
    resp.resources
        .iter()
        .flat_map(|r| {
            r.acls.iter().map(|a| {
                (
                    r.resource_type,
                    r.resource_name.to_string(),
                    r.pattern_type,
                    a.principal.to_string(),
                    a.operation,
                    a.permission_type,
                )
            })
        })
        .collect()
}

#[test]
fn the_acl_apis_are_advertised_at_versions_1_to_3() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    let mut raw = RawClient::connect(broker.addr());
    let resp = raw.call(3, &ApiVersionsRequest::default());
    for key in [ApiKey::DescribeAcls, ApiKey::CreateAcls, ApiKey::DeleteAcls] {
        let api = resp
            .api_keys
            .iter()
            .find(|a| a.api_key == key as i16)
            .unwrap_or_else(|| panic!("{key:?} not advertised"));
        assert_eq!((api.min_version, api.max_version), (1, 3), "{key:?}");
    }
}

#[test]
fn without_an_authorizer_every_acl_api_answers_security_disabled() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    let mut raw = RawClient::connect(broker.addr());
    for version in 1..=3 {
        let results = create(
            &mut raw,
            version,
            vec![
                allow_read("t", LITERAL, "User:a"),
                allow_read("u", LITERAL, "User:a"),
            ],
        );
        for (code, message) in results {
            assert_eq!(code, SECURITY_DISABLED);
            assert_eq!(message, "No Authorizer is configured.");
        }
        let resp = raw.call(version, &describe_request(&any_filter()));
        assert_eq!(resp.error_code, SECURITY_DISABLED);
        assert_eq!(
            resp.error_message.as_deref(),
            Some("No Authorizer is configured on the broker")
        );
        assert!(resp.resources.is_empty());
        let resp = raw.call(
            version,
            &DeleteAclsRequest::default().with_filters(vec![any_filter()]),
        );
        assert_eq!(resp.filter_results.len(), 1);
        assert_eq!(resp.filter_results[0].error_code, SECURITY_DISABLED);
        assert_eq!(
            resp.filter_results[0].error_message.as_deref(),
            Some("No Authorizer is configured.")
        );
    }
}

#[test]
fn every_create_error_is_invalid_request_with_kafkas_message_and_fails_alone() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = with_authorizer();
    let mut raw = RawClient::connect(broker.addr());
    let cases: Vec<(AclCreation, &str)> = vec![
        (
            creation(CLUSTER, "my-cluster", LITERAL, "User:a", "*", ALL, ALLOW),
            "The only valid name for the CLUSTER resource is kafka-cluster",
        ),
        (
            allow_read("", LITERAL, "User:a"),
            "Invalid empty resource name",
        ),
        (
            creation(ANY, "t", LITERAL, "User:a", "*", READ, ALLOW),
            "Invalid resourceType ANY",
        ),
        (
            creation(99, "t", LITERAL, "User:a", "*", READ, ALLOW),
            "Invalid resourceType UNKNOWN",
        ),
        (
            allow_read("t", MATCH, "User:a"),
            "Invalid patternType MATCH",
        ),
        (allow_read("t", ANY, "User:a"), "Invalid patternType ANY"),
        (allow_read("t", 0, "User:a"), "Invalid patternType UNKNOWN"),
        (
            creation(TOPIC, "t", LITERAL, "User:a", "*", ANY, ALLOW),
            "Invalid operation ANY",
        ),
        (
            creation(TOPIC, "t", LITERAL, "User:a", "*", 42, ALLOW),
            "Invalid operation UNKNOWN",
        ),
        (
            creation(TOPIC, "t", LITERAL, "User:a", "*", READ, ANY),
            "Invalid permissionType ANY",
        ),
        (
            creation(TOPIC, "t", LITERAL, "User:a", "*", READ, 9),
            "Invalid permissionType UNKNOWN",
        ),
        (
            allow_read("t", LITERAL, "alice"),
            "Could not parse principal from `alice`",
        ),
    ];
    for version in 1..=3 {
        let mut creations: Vec<AclCreation> = cases.iter().map(|(c, _)| c.clone()).collect();
        creations.push(allow_read(&format!("good-v{version}"), LITERAL, "User:a"));
        let results = create(&mut raw, version, creations);
        for ((code, message), (_, expected)) in results.iter().zip(&cases) {
            assert_eq!(*code, INVALID_REQUEST, "v{version} {expected}");
            assert!(
                message.starts_with(expected),
                "v{version}: {message:?} should start with {expected:?}"
            );
        }
        assert_eq!(
            results.last().unwrap(),
            &(0, String::new()),
            "v{version}: the valid binding in the same request is created"
        );
    }
    let all = raw.call(3, &describe_request(&any_filter()));
    assert_eq!(all.error_code, 0);
    assert_eq!(
        described(&all).len(),
        3,
        "only the three good ones: {all:?}"
    );
}

#[test]
fn creating_the_same_acl_twice_succeeds_and_keeps_one() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = with_authorizer();
    let mut raw = RawClient::connect(broker.addr());
    let results = create(
        &mut raw,
        2,
        vec![
            allow_read("t", LITERAL, "User:a"),
            allow_read("t", LITERAL, "User:a"),
        ],
    );
    assert!(results.iter().all(|(code, _)| *code == 0), "{results:?}");
    assert_eq!(
        create(&mut raw, 3, vec![allow_read("t", LITERAL, "User:a")]),
        vec![(0, String::new())]
    );
    let all = raw.call(3, &describe_request(&any_filter()));
    assert_eq!(described(&all).len(), 1);
}

#[test]
fn describe_filters_as_kafka_grouped_by_resource() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = with_authorizer();
    let mut raw = RawClient::connect(broker.addr());
    let results = create(
        &mut raw,
        3,
        vec![
            allow_read("payments", LITERAL, "User:alice"),
            creation(TOPIC, "payments", LITERAL, "User:bob", "*", WRITE, DENY),
            allow_read("pay", PREFIXED, "User:alice"),
            allow_read("*", LITERAL, "User:carol"),
            allow_read("payroll", LITERAL, "User:alice"),
            creation(GROUP, "payments", LITERAL, "User:alice", "*", READ, ALLOW),
            creation(
                CLUSTER,
                "kafka-cluster",
                LITERAL,
                "User:admin",
                "*",
                ALL,
                ALLOW,
            ),
        ],
    );
    assert!(results.iter().all(|(code, _)| *code == 0), "{results:?}");

    let describe = |raw: &mut RawClient, version: i16, f: DeleteAclsFilter| {
        let resp = raw.call(version, &describe_request(&f));
        assert_eq!(resp.error_code, 0, "{resp:?}");
        resp
    };
    for version in 1..=3 {
        // Everything, two ACLs grouped under one resource.
        let all = describe(&mut raw, version, any_filter());
        assert_eq!(described(&all).len(), 7);
        let payments = all
            .resources
            .iter()
            .find(|r| r.resource_type == TOPIC && &*r.resource_name == "payments")
            .unwrap();
        assert_eq!(payments.acls.len(), 2);
        assert_eq!(payments.pattern_type, LITERAL);

        // MATCH: what applies to the topic `payments`.
        let matching = describe(
            &mut raw,
            version,
            any_filter()
                .with_resource_type_filter(TOPIC)
                .with_resource_name_filter(Some(s("payments")))
                .with_pattern_type_filter(MATCH),
        );
        let mut names: Vec<(String, i8)> = described(&matching)
            .into_iter()
            .map(|(_, n, p, ..)| (n, p))
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                ("*".to_string(), LITERAL),
                ("pay".to_string(), PREFIXED),
                ("payments".to_string(), LITERAL),
                ("payments".to_string(), LITERAL),
            ]
        );

        // LITERAL with a name: that literal pattern only.
        let literal = describe(
            &mut raw,
            version,
            any_filter()
                .with_resource_type_filter(TOPIC)
                .with_resource_name_filter(Some(s("pay")))
                .with_pattern_type_filter(LITERAL),
        );
        assert!(literal.resources.is_empty(), "{literal:?}");
        let prefixed = describe(
            &mut raw,
            version,
            any_filter()
                .with_resource_name_filter(Some(s("pay")))
                .with_pattern_type_filter(PREFIXED),
        );
        assert_eq!(described(&prefixed).len(), 1);

        // Principal, operation and permission are exact.
        let bob = describe(
            &mut raw,
            version,
            any_filter().with_principal_filter(Some(s("User:bob"))),
        );
        assert_eq!(
            described(&bob),
            vec![(
                TOPIC,
                "payments".into(),
                LITERAL,
                "User:bob".into(),
                WRITE,
                DENY
            )]
        );
        let denies = describe(&mut raw, version, any_filter().with_permission_type(DENY));
        assert_eq!(described(&denies).len(), 1);
        let alls = describe(&mut raw, version, any_filter().with_operation(ALL));
        assert_eq!(described(&alls).len(), 1);
        let groups = describe(
            &mut raw,
            version,
            any_filter().with_resource_type_filter(GROUP),
        );
        assert_eq!(described(&groups).len(), 1);
    }
}

#[test]
fn a_describe_filter_with_unknown_fields_is_invalid_request() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = with_authorizer();
    let mut raw = RawClient::connect(broker.addr());
    for f in [
        any_filter().with_resource_type_filter(0),
        any_filter().with_pattern_type_filter(0),
        any_filter().with_operation(0),
        any_filter().with_permission_type(0),
        any_filter().with_operation(77),
    ] {
        let resp = raw.call(3, &describe_request(&f));
        assert_eq!(resp.error_code, INVALID_REQUEST, "{f:?}");
        assert!(resp.resources.is_empty());
    }
}

#[test]
fn delete_reports_what_each_filter_matched_and_refuses_unknown_filters() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = with_authorizer();
    let mut raw = RawClient::connect(broker.addr());
    for version in 1..=3 {
        create(
            &mut raw,
            version,
            vec![
                allow_read("a", LITERAL, "User:alice"),
                allow_read("a", PREFIXED, "User:alice"),
                allow_read("b", LITERAL, "User:bob"),
                allow_read("c", LITERAL, "User:carol"),
            ],
        );
        let resp = raw.call(
            version,
            &DeleteAclsRequest::default().with_filters(vec![
                // Both of alice's: literal a and prefixed a.
                any_filter().with_principal_filter(Some(s("User:alice"))),
                // Literal a again (reported by both filters) and nothing else.
                any_filter()
                    .with_resource_name_filter(Some(s("a")))
                    .with_pattern_type_filter(LITERAL),
                any_filter().with_operation(0),
                any_filter().with_pattern_type_filter(0),
                // Matches nothing.
                any_filter().with_principal_filter(Some(s("User:nobody"))),
            ]),
        );
        let results = &resp.filter_results;
        assert_eq!(results.len(), 5);
        assert_eq!(results[0].error_code, 0);
        assert_eq!(results[0].matching_acls.len(), 2);
        assert!(results[0]
            .matching_acls
            .iter()
            .all(|a| &*a.principal == "User:alice" && a.error_code == 0 && a.operation == READ));
        assert_eq!(results[1].matching_acls.len(), 1);
        assert_eq!(results[1].matching_acls[0].pattern_type, LITERAL);
        assert_eq!(&*results[1].matching_acls[0].resource_name, "a");
        assert_eq!(results[2].error_code, INVALID_REQUEST);
        assert_eq!(
            results[2].error_message.as_deref(),
            Some("Unknown entryFilter.")
        );
        assert_eq!(results[3].error_code, INVALID_REQUEST);
        assert_eq!(
            results[3].error_message.as_deref(),
            Some("Unknown patternFilter.")
        );
        assert_eq!(results[4].error_code, 0);
        assert!(results[4].matching_acls.is_empty());

        let left = raw.call(version, &describe_request(&any_filter()));
        let mut principals: Vec<String> = described(&left).into_iter().map(|a| a.3).collect();
        principals.sort();
        assert_eq!(principals, vec!["User:bob", "User:carol"]);
        let resp = raw.call(
            version,
            &DeleteAclsRequest::default().with_filters(vec![any_filter()]),
        );
        assert_eq!(resp.filter_results[0].matching_acls.len(), 2);
    }
}

#[test]
fn acls_survive_a_restart() {
    let _dog = watchdog(Duration::from_secs(90));
    let mut broker = with_authorizer();
    let mut raw = RawClient::connect(broker.addr());
    create(
        &mut raw,
        3,
        vec![
            allow_read("pay", PREFIXED, "User:alice"),
            creation(TOPIC, "t", LITERAL, "User:bob", "10.0.0.1", WRITE, DENY),
        ],
    );
    let before = described(&raw.call(3, &describe_request(&any_filter())));
    drop(raw);
    broker.restart();
    let mut raw = RawClient::connect(broker.addr());
    let after = described(&raw.call(3, &describe_request(&any_filter())));
    assert_eq!(before.len(), 2);
    assert_eq!(before, after);
    // A deletion survives too.
    raw.call(
        3,
        &DeleteAclsRequest::default()
            .with_filters(vec![any_filter().with_principal_filter(Some(s("User:bob")))]),
    );
    drop(raw);
    broker.restart();
    let mut raw = RawClient::connect(broker.addr());
    let last = described(&raw.call(3, &describe_request(&any_filter())));
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].3, "User:alice");
}

fn acl(bootstrap: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["acl", "--bootstrap", bootstrap];
    all.extend_from_slice(args);
    let (status, out, err) = run_to_exit(&all, Duration::from_secs(30));
    (status.success(), out, err)
}

fn acl_ok(bootstrap: &str, args: &[&str]) -> String {
    let (ok, out, err) = acl(bootstrap, args);
    assert!(ok, "starling acl {args:?} failed\n{out}\n{err}");
    out
}

fn list_json(bootstrap: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["list", "--json"];
    all.extend_from_slice(args);
    let out = acl_ok(bootstrap, &all);
    serde_json::from_str::<serde_json::Value>(&out)
        .expect("list --json is JSON")
        .as_array()
        .expect("a JSON array")
        .clone()
}

#[test]
fn the_cli_adds_lists_and_removes_acls_on_a_real_broker() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = with_authorizer();
    let b = broker.bootstrap();
    let out = acl_ok(
        &b,
        &[
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "read",
            "--operation",
            "describe",
            "--topic",
            "orders",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    assert!(
        out.contains("User:alice") && out.contains("prefixed") && out.contains("added"),
        "{out}"
    );
    acl_ok(
        &b,
        &[
            "add",
            "--deny-principal",
            "User:bob",
            "--host",
            "10.0.0.7",
            "--group",
            "billing",
            "--cluster",
        ],
    );
    acl_ok(
        &b,
        &[
            "add",
            "--allow-principal",
            "User:tx",
            "--operation",
            "IdempotentWrite",
            "--transactional-id",
            "tx-1",
        ],
    );
    assert_eq!(list_json(&b, &[]).len(), 5);

    // MATCH lists what applies to a topic named orders-eu.
    let applies = list_json(
        &b,
        &["--topic", "orders-eu", "--resource-pattern-type", "match"],
    );
    assert_eq!(applies.len(), 2, "{applies:?}");
    assert!(applies.iter().all(|a| a["principal"] == "User:alice"));
    let bob = list_json(&b, &["--principal", "User:bob"]);
    assert_eq!(bob.len(), 2);
    assert!(bob
        .iter()
        .all(|a| a["permission"] == "deny" && a["host"] == "10.0.0.7" && a["operation"] == "all"));
    let cluster = list_json(&b, &["--cluster"]);
    assert_eq!(cluster.len(), 1);
    assert_eq!(cluster[0]["name"], "kafka-cluster");
    let table = acl_ok(&b, &["list", "--transactional-id", "tx-1"]);
    assert!(
        table.contains("idempotent_write") && table.contains("transactional_id"),
        "{table}"
    );

    // Remove prints what went.
    let removed = acl_ok(&b, &["remove", "--principal", "User:bob", "--json"]);
    let removed: serde_json::Value = serde_json::from_str(&removed).unwrap();
    assert_eq!(removed.as_array().unwrap().len(), 2);
    assert_eq!(list_json(&b, &[]).len(), 3);
    acl_ok(
        &b,
        &[
            "remove",
            "--topic",
            "orders",
            "--resource-pattern-type",
            "prefixed",
            "--operation",
            "read",
        ],
    );
    let left = list_json(&b, &["--topic", "orders", "--resource-pattern-type", "any"]);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["operation"], "describe");
}

#[test]
fn the_cli_prints_kafkas_errors_and_exits_non_zero() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = with_authorizer();
    let b = broker.bootstrap();
    let (ok, out, err) = acl(&b, &["add", "--allow-principal", "alice", "--topic", "t"]);
    assert!(!ok);
    assert!(out.contains("INVALID_REQUEST"), "{out}");
    assert!(err.contains("not added"), "{err}");
    let (ok, _, err) = acl(&b, &["add", "--allow-principal", "User:a"]);
    assert!(!ok);
    assert!(err.contains("name a resource"), "{err}");
    let (ok, _, err) = acl(&b, &["remove"]);
    assert!(!ok);
    assert!(err.contains("name what to remove"), "{err}");
    let (ok, _, _) = acl(
        &b,
        &[
            "add",
            "--allow-principal",
            "User:a",
            "--topic",
            "t",
            "--operation",
            "fly",
        ],
    );
    assert!(!ok);

    let plain = Broker::start(&[]);
    let (ok, _, err) = acl(&plain.bootstrap(), &["list"]);
    assert!(!ok);
    assert!(
        err.contains("No Authorizer is configured on the broker"),
        "{err}"
    );
}
