//! The authorizer's behaviour, rule by rule, and a property test comparing the indexed
//! authorizer with a naive reading of Kafka's rules over random ACL sets.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::*;
use crate::model::{AccessControlEntry, ResourcePattern};

const ALICE: &str = "User:alice";
const BOB: &str = "User:bob";

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn acl(
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    host: &str,
    operation: AclOperation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        pattern: ResourcePattern {
            resource_type,
            name: name.into(),
            pattern_type,
        },
        entry: AccessControlEntry {
            principal: principal.into(),
            host: host.into(),
            operation,
            permission,
        },
    }
}

fn allow_topic(name: &str, principal: &str, operation: AclOperation) -> AclBinding {
    acl(
        ResourceType::Topic,
        name,
        PatternType::Literal,
        principal,
        "*",
        operation,
        Permission::Allow,
    )
}

fn deny_topic(name: &str, principal: &str, operation: AclOperation) -> AclBinding {
    acl(
        ResourceType::Topic,
        name,
        PatternType::Literal,
        principal,
        "*",
        operation,
        Permission::Deny,
    )
}

fn allow_prefix(name: &str, principal: &str, operation: AclOperation) -> AclBinding {
    acl(
        ResourceType::Topic,
        name,
        PatternType::Prefixed,
        principal,
        "*",
        operation,
        Permission::Allow,
    )
}

fn deny_prefix(name: &str, principal: &str, operation: AclOperation) -> AclBinding {
    acl(
        ResourceType::Topic,
        name,
        PatternType::Prefixed,
        principal,
        "*",
        operation,
        Permission::Deny,
    )
}

fn with(acls: &[AclBinding]) -> Authorizer {
    let authorizer = Authorizer::new(AuthorizerSettings::default());
    authorizer.replace(acls.iter().cloned());
    authorizer
}

fn can(authorizer: &Authorizer, principal: &str, operation: AclOperation, topic: &str) -> bool {
    authorizer.authorize(principal, ip(1), operation, ResourceType::Topic, topic)
}

fn can_any_topic(authorizer: &Authorizer, principal: &str, operation: AclOperation) -> bool {
    authorizer.authorize_by_resource_type(principal, ip(1), operation, ResourceType::Topic)
}

use AclOperation::*;

// ---- defaults, super users and allow.everyone.if.no.acl.found ----

#[test]
fn no_acls_denies_by_default() {
    assert!(!can(&with(&[]), ALICE, Read, "t"));
}

#[test]
fn no_acls_allows_when_allow_everyone_if_no_acl_found() {
    let a = Authorizer::new(AuthorizerSettings {
        allow_everyone_if_no_acl_found: true,
        ..Default::default()
    });
    assert!(can(&a, ALICE, Read, "t"));
}

#[test]
fn allow_everyone_does_not_apply_to_a_resource_with_acls_for_someone_else() {
    let a = Authorizer::new(AuthorizerSettings {
        allow_everyone_if_no_acl_found: true,
        ..Default::default()
    });
    a.replace([allow_topic("t", BOB, Read)]);
    assert!(!can(&a, ALICE, Read, "t"));
    assert!(can(&a, ALICE, Read, "other"));
}

#[test]
fn allow_everyone_does_not_apply_when_a_prefix_acl_covers_the_resource() {
    let a = Authorizer::new(AuthorizerSettings {
        allow_everyone_if_no_acl_found: true,
        ..Default::default()
    });
    a.replace([allow_prefix("pay", BOB, Write)]);
    assert!(!can(&a, ALICE, Read, "payments"));
    assert!(can(&a, ALICE, Read, "orders"));
}

#[test]
fn allow_everyone_does_not_apply_when_a_wildcard_acl_exists() {
    let a = Authorizer::new(AuthorizerSettings {
        allow_everyone_if_no_acl_found: true,
        ..Default::default()
    });
    a.replace([allow_topic("*", BOB, Write)]);
    assert!(!can(&a, ALICE, Read, "anything"));
}

#[test]
fn allow_everyone_is_per_resource_type() {
    let a = Authorizer::new(AuthorizerSettings {
        allow_everyone_if_no_acl_found: true,
        ..Default::default()
    });
    a.replace([allow_topic("x", BOB, Read)]);
    assert!(a.authorize(ALICE, ip(1), Read, ResourceType::Group, "x"));
}

#[test]
fn super_users_are_allowed_everything() {
    let a = Authorizer::new(AuthorizerSettings {
        super_users: AuthorizerSettings::parse_super_users("User:admin"),
        ..Default::default()
    });
    assert!(can(&a, "User:admin", Alter, "t"));
    assert!(a.authorize(
        "User:admin",
        ip(9),
        ClusterAction,
        ResourceType::Cluster,
        "kafka-cluster"
    ));
}

#[test]
fn super_users_are_allowed_despite_deny_acls() {
    let a = Authorizer::new(AuthorizerSettings {
        super_users: AuthorizerSettings::parse_super_users("User:admin"),
        ..Default::default()
    });
    a.replace([
        deny_topic("t", "User:admin", All),
        deny_topic("*", "User:*", All),
    ]);
    assert!(can(&a, "User:admin", Write, "t"));
}

#[test]
fn super_users_parse_from_a_semicolon_separated_list_with_blanks() {
    let users = AuthorizerSettings::parse_super_users(" User:a ; User:b;;");
    assert_eq!(users.len(), 2);
    assert!(users.contains("User:a") && users.contains("User:b"));
}

#[test]
fn super_user_match_is_on_the_whole_principal() {
    let a = Authorizer::new(AuthorizerSettings {
        super_users: AuthorizerSettings::parse_super_users("User:admin"),
        ..Default::default()
    });
    assert!(!can(&a, "Group:admin", Read, "t"));
    assert!(!can(&a, "User:admin2", Read, "t"));
    assert!(a.is_super_user("User:admin"));
}

// ---- literal, wildcard and prefixed patterns ----

#[test]
fn literal_allow_allows_that_topic() {
    assert!(can(
        &with(&[allow_topic("t", ALICE, Read)]),
        ALICE,
        Read,
        "t"
    ));
}

#[test]
fn literal_allow_does_not_allow_another_topic() {
    assert!(!can(
        &with(&[allow_topic("t", ALICE, Read)]),
        ALICE,
        Read,
        "t2"
    ));
}

#[test]
fn literal_allow_does_not_act_as_a_prefix() {
    assert!(!can(
        &with(&[allow_topic("pay", ALICE, Read)]),
        ALICE,
        Read,
        "payments"
    ));
}

#[test]
fn literal_wildcard_allows_every_topic() {
    let a = with(&[allow_topic("*", ALICE, Read)]);
    assert!(can(&a, ALICE, Read, "x"));
    assert!(can(&a, ALICE, Read, "*"));
}

#[test]
fn prefixed_allow_allows_names_starting_with_it() {
    let a = with(&[allow_prefix("pay", ALICE, Read)]);
    assert!(can(&a, ALICE, Read, "payments"));
    assert!(can(&a, ALICE, Read, "pay"));
    assert!(!can(&a, ALICE, Read, "pa"));
    assert!(!can(&a, ALICE, Read, "xpay"));
}

#[test]
fn prefixed_star_is_a_prefix_not_a_wildcard() {
    let a = with(&[allow_prefix("*", ALICE, Read)]);
    assert!(!can(&a, ALICE, Read, "x"));
    assert!(can(&a, ALICE, Read, "*x"));
}

#[test]
fn prefixes_work_on_multibyte_names() {
    let a = with(&[allow_prefix("zé", ALICE, Read)]);
    assert!(can(&a, ALICE, Read, "zébra"));
    assert!(!can(&a, ALICE, Read, "zebra"));
}

#[test]
fn acls_do_not_cross_resource_types() {
    let a = with(&[allow_topic("x", ALICE, Read)]);
    assert!(!a.authorize(ALICE, ip(1), Read, ResourceType::Group, "x"));
    assert!(!a.authorize(ALICE, ip(1), Read, ResourceType::TransactionalId, "x"));
}

#[test]
fn group_acls_allow_groups() {
    let a = with(&[acl(
        ResourceType::Group,
        "g",
        PatternType::Literal,
        ALICE,
        "*",
        Read,
        Permission::Allow,
    )]);
    assert!(a.authorize(ALICE, ip(1), Read, ResourceType::Group, "g"));
    assert!(!a.authorize(ALICE, ip(1), Read, ResourceType::Topic, "g"));
}

// ---- principals ----

#[test]
fn acl_for_another_principal_does_not_allow() {
    assert!(!can(
        &with(&[allow_topic("t", BOB, Read)]),
        ALICE,
        Read,
        "t"
    ));
}

#[test]
fn wildcard_principal_allows_every_user() {
    let a = with(&[allow_topic("t", "User:*", Read)]);
    assert!(can(&a, ALICE, Read, "t"));
    assert!(can(&a, BOB, Read, "t"));
}

#[test]
fn wildcard_principal_deny_denies_every_user() {
    let a = with(&[
        allow_topic("t", ALICE, Read),
        deny_topic("t", "User:*", Read),
    ]);
    assert!(!can(&a, ALICE, Read, "t"));
}

#[test]
fn principal_type_matters() {
    let a = with(&[allow_topic("t", "Group:alice", Read)]);
    assert!(!can(&a, ALICE, Read, "t"));
}

#[test]
fn principal_names_are_case_sensitive() {
    let a = with(&[allow_topic("t", "User:Alice", Read)]);
    assert!(!can(&a, ALICE, Read, "t"));
}

// ---- hosts ----

#[test]
fn host_specific_allow_allows_only_that_host() {
    let a = with(&[acl(
        ResourceType::Topic,
        "t",
        PatternType::Literal,
        ALICE,
        "10.0.0.1",
        Read,
        Permission::Allow,
    )]);
    assert!(a.authorize(ALICE, ip(1), Read, ResourceType::Topic, "t"));
    assert!(!a.authorize(ALICE, ip(2), Read, ResourceType::Topic, "t"));
}

#[test]
fn host_specific_deny_denies_only_that_host() {
    let a = with(&[
        allow_topic("t", ALICE, Read),
        acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            ALICE,
            "10.0.0.2",
            Read,
            Permission::Deny,
        ),
    ]);
    assert!(a.authorize(ALICE, ip(1), Read, ResourceType::Topic, "t"));
    assert!(!a.authorize(ALICE, ip(2), Read, ResourceType::Topic, "t"));
}

#[test]
fn ipv6_hosts_compare_as_addresses() {
    let a = with(&[acl(
        ResourceType::Topic,
        "t",
        PatternType::Literal,
        ALICE,
        "0:0:0:0:0:0:0:1",
        Read,
        Permission::Allow,
    )]);
    let localhost: IpAddr = "::1".parse().unwrap();
    assert!(a.authorize(ALICE, localhost, Read, ResourceType::Topic, "t"));
}

#[test]
fn a_host_that_is_not_an_address_matches_no_client() {
    let a = with(&[acl(
        ResourceType::Topic,
        "t",
        PatternType::Literal,
        ALICE,
        "localhost",
        Read,
        Permission::Allow,
    )]);
    assert!(!a.authorize(ALICE, ip(1), Read, ResourceType::Topic, "t"));
}

// ---- deny wins ----

#[test]
fn deny_wins_over_allow_on_the_same_literal() {
    let a = with(&[allow_topic("t", ALICE, Read), deny_topic("t", ALICE, Read)]);
    assert!(!can(&a, ALICE, Read, "t"));
}

#[test]
fn literal_deny_wins_over_wildcard_allow() {
    let a = with(&[allow_topic("*", ALICE, Read), deny_topic("t", ALICE, Read)]);
    assert!(!can(&a, ALICE, Read, "t"));
    assert!(can(&a, ALICE, Read, "u"));
}

#[test]
fn wildcard_deny_wins_over_literal_allow() {
    let a = with(&[allow_topic("t", ALICE, Read), deny_topic("*", ALICE, Read)]);
    assert!(!can(&a, ALICE, Read, "t"));
}

#[test]
fn prefix_deny_wins_over_literal_allow() {
    let a = with(&[
        allow_topic("payments", ALICE, Read),
        deny_prefix("pay", ALICE, Read),
    ]);
    assert!(!can(&a, ALICE, Read, "payments"));
}

#[test]
fn literal_deny_wins_over_prefix_allow() {
    let a = with(&[
        allow_prefix("pay", ALICE, Read),
        deny_topic("payroll", ALICE, Read),
    ]);
    assert!(can(&a, ALICE, Read, "payments"));
    assert!(!can(&a, ALICE, Read, "payroll"));
}

#[test]
fn longer_prefix_deny_wins_over_shorter_prefix_allow() {
    let a = with(&[
        allow_prefix("pay", ALICE, Read),
        deny_prefix("payroll", ALICE, Read),
    ]);
    assert!(can(&a, ALICE, Read, "payments"));
    assert!(!can(&a, ALICE, Read, "payroll-2024"));
}

#[test]
fn shorter_prefix_deny_wins_over_longer_prefix_allow() {
    let a = with(&[
        allow_prefix("payroll", ALICE, Read),
        deny_prefix("pay", ALICE, Read),
    ]);
    assert!(!can(&a, ALICE, Read, "payroll-2024"));
}

#[test]
fn deny_all_denies_every_operation() {
    let a = with(&[allow_topic("t", ALICE, All), deny_topic("t", ALICE, All)]);
    for op in [Read, Write, Describe, Alter, DescribeConfigs] {
        assert!(!can(&a, ALICE, op, "t"), "{op}");
    }
}

#[test]
fn deny_of_one_operation_leaves_others_allowed() {
    let a = with(&[allow_topic("t", ALICE, All), deny_topic("t", ALICE, Write)]);
    assert!(can(&a, ALICE, Read, "t"));
    assert!(!can(&a, ALICE, Write, "t"));
}

#[test]
fn deny_for_another_principal_does_not_deny() {
    let a = with(&[allow_topic("t", ALICE, Read), deny_topic("t", BOB, Read)]);
    assert!(can(&a, ALICE, Read, "t"));
}

// ---- operations and implication ----

#[test]
fn allow_all_allows_every_operation() {
    let a = with(&[allow_topic("t", ALICE, All)]);
    for op in [
        Read,
        Write,
        Create,
        Delete,
        Alter,
        Describe,
        ClusterAction,
        DescribeConfigs,
        AlterConfigs,
        IdempotentWrite,
        CreateTokens,
        DescribeTokens,
    ] {
        assert!(can(&a, ALICE, op, "t"), "{op}");
    }
}

#[test]
fn allow_of_one_operation_does_not_allow_another() {
    let a = with(&[allow_topic("t", ALICE, Read)]);
    assert!(!can(&a, ALICE, Write, "t"));
    assert!(!can(&a, ALICE, Delete, "t"));
    assert!(!can(&a, ALICE, DescribeConfigs, "t"));
}

#[test]
fn read_write_delete_and_alter_imply_describe() {
    for op in [Read, Write, Delete, Alter] {
        let a = with(&[allow_topic("t", ALICE, op)]);
        assert!(can(&a, ALICE, Describe, "t"), "{op}");
    }
}

#[test]
fn create_and_alter_configs_do_not_imply_describe() {
    for op in [
        Create,
        AlterConfigs,
        DescribeConfigs,
        ClusterAction,
        IdempotentWrite,
    ] {
        let a = with(&[allow_topic("t", ALICE, op)]);
        assert!(!can(&a, ALICE, Describe, "t"), "{op}");
    }
}

#[test]
fn alter_configs_implies_describe_configs() {
    let a = with(&[allow_topic("t", ALICE, AlterConfigs)]);
    assert!(can(&a, ALICE, DescribeConfigs, "t"));
}

#[test]
fn alter_does_not_imply_describe_configs() {
    let a = with(&[allow_topic("t", ALICE, Alter)]);
    assert!(!can(&a, ALICE, DescribeConfigs, "t"));
}

#[test]
fn describe_does_not_imply_read() {
    let a = with(&[allow_topic("t", ALICE, Describe)]);
    assert!(!can(&a, ALICE, Read, "t"));
}

#[test]
fn implication_works_through_prefixes_and_wildcards() {
    let a = with(&[allow_prefix("p", ALICE, Write), allow_topic("*", BOB, Read)]);
    assert!(can(&a, ALICE, Describe, "p1"));
    assert!(can(&a, BOB, Describe, "anything"));
}

#[test]
fn deny_read_does_not_deny_describe() {
    let a = with(&[
        allow_topic("t", ALICE, Describe),
        deny_topic("t", ALICE, Read),
    ]);
    assert!(can(&a, ALICE, Describe, "t"));
    assert!(!can(&a, ALICE, Read, "t"));
}

#[test]
fn deny_describe_does_not_deny_read() {
    let a = with(&[
        allow_topic("t", ALICE, Read),
        deny_topic("t", ALICE, Describe),
    ]);
    assert!(can(&a, ALICE, Read, "t"));
    assert!(!can(&a, ALICE, Describe, "t"));
}

#[test]
fn deny_alter_configs_does_not_deny_describe_configs() {
    let a = with(&[
        allow_topic("t", ALICE, DescribeConfigs),
        deny_topic("t", ALICE, AlterConfigs),
    ]);
    assert!(can(&a, ALICE, DescribeConfigs, "t"));
}

#[test]
fn cluster_operations_need_cluster_acls() {
    let a = with(&[acl(
        ResourceType::Cluster,
        "kafka-cluster",
        PatternType::Literal,
        ALICE,
        "*",
        IdempotentWrite,
        Permission::Allow,
    )]);
    assert!(a.authorize(
        ALICE,
        ip(1),
        IdempotentWrite,
        ResourceType::Cluster,
        "kafka-cluster"
    ));
    assert!(!a.authorize(ALICE, ip(1), Alter, ResourceType::Cluster, "kafka-cluster"));
}

// ---- changes ----

#[test]
fn update_adds_and_removes() {
    let a = with(&[allow_topic("t", ALICE, Read)]);
    a.update(
        &[allow_topic("u", ALICE, Read)],
        &[allow_topic("t", ALICE, Read)],
    );
    assert!(!can(&a, ALICE, Read, "t"));
    assert!(can(&a, ALICE, Read, "u"));
    assert_eq!(a.len(), 1);
}

#[test]
fn adding_a_binding_twice_keeps_one() {
    let a = with(&[]);
    a.update(&[allow_topic("t", ALICE, Read)], &[]);
    a.update(&[allow_topic("t", ALICE, Read)], &[]);
    assert_eq!(a.len(), 1);
    assert!(a.contains(&allow_topic("t", ALICE, Read)));
}

#[test]
fn removing_an_absent_binding_changes_nothing() {
    let a = with(&[allow_topic("t", ALICE, Read)]);
    a.update(&[], &[allow_topic("u", ALICE, Read)]);
    assert_eq!(a.len(), 1);
}

#[test]
fn bindings_lists_what_the_filter_matches() {
    let a = with(&[
        allow_topic("t", ALICE, Read),
        allow_prefix("t", BOB, Write),
        deny_topic("*", BOB, Read),
    ]);
    assert_eq!(a.bindings(&AclBindingFilter::any()).len(), 3);
    let mut f = AclBindingFilter::any();
    f.pattern.name = Some("t".into());
    f.pattern.pattern_type = PatternType::Match;
    assert_eq!(a.bindings(&f).len(), 3);
    f.pattern.pattern_type = PatternType::Literal;
    assert_eq!(a.bindings(&f), vec![allow_topic("t", ALICE, Read)]);
}

#[test]
fn many_readers_share_one_authorizer() {
    let a = Arc::new(with(&[allow_topic("t", ALICE, Read)]));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let a = a.clone();
            std::thread::spawn(move || (0..1000).all(|_| can(&a, ALICE, Read, "t")))
        })
        .collect();
    a.update(&[allow_topic("u", ALICE, Read)], &[]);
    for r in readers {
        assert!(r.join().unwrap());
    }
}

// ---- authorize_by_resource_type ----

#[test]
fn by_type_denies_without_acls() {
    assert!(!can_any_topic(&with(&[]), ALICE, Write));
}

#[test]
fn by_type_allows_with_allow_everyone_and_no_acls() {
    let a = Authorizer::new(AuthorizerSettings {
        allow_everyone_if_no_acl_found: true,
        ..Default::default()
    });
    assert!(can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_allows_super_users() {
    let a = Authorizer::new(AuthorizerSettings {
        super_users: AuthorizerSettings::parse_super_users("User:alice"),
        ..Default::default()
    });
    a.replace([deny_topic("*", ALICE, All)]);
    assert!(can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_allows_with_one_literal_allow() {
    assert!(can_any_topic(
        &with(&[allow_topic("t", ALICE, Write)]),
        ALICE,
        Write
    ));
}

#[test]
fn by_type_allows_with_one_prefix_allow() {
    assert!(can_any_topic(
        &with(&[allow_prefix("p", ALICE, Write)]),
        ALICE,
        Write
    ));
}

#[test]
fn by_type_allows_with_a_wildcard_allow() {
    assert!(can_any_topic(
        &with(&[allow_topic("*", ALICE, Write)]),
        ALICE,
        Write
    ));
}

#[test]
fn by_type_allows_with_allow_all() {
    assert!(can_any_topic(
        &with(&[allow_topic("t", ALICE, All)]),
        ALICE,
        Write
    ));
}

#[test]
fn by_type_does_not_apply_implication() {
    assert!(!can_any_topic(
        &with(&[allow_topic("t", ALICE, Write)]),
        ALICE,
        Describe
    ));
}

#[test]
fn by_type_wildcard_deny_denies_everything() {
    let a = with(&[
        allow_topic("t", ALICE, Write),
        deny_topic("*", ALICE, Write),
    ]);
    assert!(!can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_literal_deny_cancels_the_same_literal_allow() {
    let a = with(&[
        allow_topic("t", ALICE, Write),
        deny_topic("t", ALICE, Write),
    ]);
    assert!(!can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_literal_deny_does_not_cancel_a_prefix_allow() {
    let a = with(&[
        allow_prefix("t", ALICE, Write),
        deny_topic("t", ALICE, Write),
    ]);
    assert!(can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_prefix_deny_cancels_allows_it_covers() {
    let a = with(&[
        allow_topic("pay1", ALICE, Write),
        allow_prefix("payroll", ALICE, Write),
        deny_prefix("pay", ALICE, Write),
    ]);
    assert!(!can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_prefix_deny_leaves_other_allows() {
    let a = with(&[
        allow_topic("orders", ALICE, Write),
        deny_prefix("pay", ALICE, Write),
    ]);
    assert!(can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_longer_prefix_deny_does_not_cancel_a_shorter_prefix_allow() {
    let a = with(&[
        allow_prefix("pay", ALICE, Write),
        deny_prefix("payroll", ALICE, Write),
    ]);
    assert!(can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_ignores_other_principals_hosts_and_types() {
    let a = with(&[
        allow_topic("t", BOB, Write),
        acl(
            ResourceType::Topic,
            "u",
            PatternType::Literal,
            ALICE,
            "10.0.0.9",
            Write,
            Permission::Allow,
        ),
        acl(
            ResourceType::Group,
            "g",
            PatternType::Literal,
            ALICE,
            "*",
            Write,
            Permission::Allow,
        ),
    ]);
    assert!(!can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_wildcard_principal_counts() {
    assert!(can_any_topic(
        &with(&[allow_topic("t", "User:*", Write)]),
        ALICE,
        Write
    ));
}

#[test]
fn by_type_deny_for_another_principal_does_not_count() {
    let a = with(&[allow_topic("t", ALICE, Write), deny_topic("*", BOB, Write)]);
    assert!(can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_refuses_filter_only_values() {
    let a = Authorizer::new(AuthorizerSettings {
        allow_everyone_if_no_acl_found: true,
        ..Default::default()
    });
    assert!(!a.authorize_by_resource_type(ALICE, ip(1), Any, ResourceType::Topic));
    assert!(!a.authorize_by_resource_type(ALICE, ip(1), Write, ResourceType::Any));
    assert!(!a.authorize_by_resource_type(ALICE, ip(1), Unknown, ResourceType::Topic));
}

#[test]
fn by_type_transactional_ids() {
    let a = with(&[acl(
        ResourceType::TransactionalId,
        "tx-",
        PatternType::Prefixed,
        ALICE,
        "*",
        Write,
        Permission::Allow,
    )]);
    assert!(a.authorize_by_resource_type(ALICE, ip(1), Write, ResourceType::TransactionalId));
    assert!(!a.authorize_by_resource_type(BOB, ip(1), Write, ResourceType::TransactionalId));
}

// ---- the indexed authorizer against a naive reading of the rules ----

/// Kafka's rules read literally, scanning every ACL.
fn naive_authorize(
    acls: &[AclBinding],
    allow_everyone: bool,
    principal: &str,
    host: IpAddr,
    operation: AclOperation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    let applicable: Vec<&AclBinding> = acls
        .iter()
        .filter(|b| {
            b.pattern.resource_type == resource_type
                && match b.pattern.pattern_type {
                    PatternType::Literal => b.pattern.name == name || b.pattern.name == "*",
                    PatternType::Prefixed => name.starts_with(b.pattern.name.as_str()),
                    _ => false,
                }
        })
        .collect();
    if applicable.is_empty() {
        return allow_everyone;
    }
    let counts = |b: &&&AclBinding| {
        (b.entry.principal == principal || b.entry.principal == "User:*")
            && (b.entry.host == "*" || b.entry.host == host.to_string())
    };
    let denied = applicable.iter().filter(counts).any(|b| {
        b.entry.permission == Permission::Deny
            && (b.entry.operation == All || b.entry.operation == operation)
    });
    if denied {
        return false;
    }
    applicable.iter().filter(counts).any(|b| {
        b.entry.permission == Permission::Allow
            && (b.entry.operation == All
                || b.entry.operation == operation
                || (operation == Describe
                    && [Read, Write, Delete, Alter].contains(&b.entry.operation))
                || (operation == DescribeConfigs && b.entry.operation == AlterConfigs))
    })
}

const NAMES: &[&str] = &["a", "ab", "abc", "b", "*", "ba"];
const PRINCIPALS: &[&str] = &["User:alice", "User:bob", "User:*"];
const HOSTS: &[&str] = &["*", "10.0.0.1", "10.0.0.2"];
const OPERATIONS: &[AclOperation] = &[
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
];

fn arb_acl() -> impl Strategy<Value = AclBinding> {
    (
        prop::sample::select(vec![ResourceType::Topic, ResourceType::Group]),
        prop::sample::select(NAMES),
        prop::sample::select(vec![PatternType::Literal, PatternType::Prefixed]),
        prop::sample::select(PRINCIPALS),
        prop::sample::select(HOSTS),
        prop::sample::select(OPERATIONS),
        prop::sample::select(vec![Permission::Allow, Permission::Deny]),
    )
        .prop_map(|(t, n, p, who, host, op, perm)| acl(t, n, p, who, host, op, perm))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn indexed_authorizer_agrees_with_the_naive_rules(
        acls in prop::collection::vec(arb_acl(), 0..12),
        allow_everyone in any::<bool>(),
        principal in prop::sample::select(&["User:alice", "User:bob", "User:carol"][..]),
        host in 1u8..4,
        operation in prop::sample::select(OPERATIONS),
        resource_type in prop::sample::select(vec![ResourceType::Topic, ResourceType::Group]),
        name in prop::sample::select(&["a", "ab", "abc", "abcd", "b", "ba", "c", "*"][..]),
    ) {
        let authorizer = Authorizer::new(AuthorizerSettings {
            allow_everyone_if_no_acl_found: allow_everyone,
            ..Default::default()
        });
        authorizer.replace(acls.iter().cloned());
        let host = ip(host);
        prop_assert_eq!(
            authorizer.authorize(principal, host, operation, resource_type, name),
            naive_authorize(&acls, allow_everyone, principal, host, operation, resource_type, name),
        );
    }

    #[test]
    fn updates_reach_the_same_state_as_a_fresh_load(
        first in prop::collection::vec(arb_acl(), 0..10),
        added in prop::collection::vec(arb_acl(), 0..5),
        removed in prop::collection::vec(arb_acl(), 0..5),
    ) {
        let updated = Authorizer::new(AuthorizerSettings::default());
        updated.replace(first.iter().cloned());
        updated.update(&added, &removed);
        let mut expected: BTreeSet<AclBinding> = first.into_iter().collect();
        for r in &removed {
            expected.remove(r);
        }
        expected.extend(added);
        prop_assert_eq!(
            updated.bindings(&AclBindingFilter::any()),
            expected.into_iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn by_type_allows_only_if_some_allow_acl_on_the_type_exists(
        acls in prop::collection::vec(arb_acl(), 0..12),
        operation in prop::sample::select(OPERATIONS),
    ) {
        let authorizer = with(&acls);
        // (Its first step is `authorize` on a made-up name, so implication can count there.)
        if authorizer.authorize_by_resource_type(ALICE, ip(1), operation, ResourceType::Topic) {
            prop_assert!(acls.iter().any(|b| b.pattern.resource_type == ResourceType::Topic
                && b.entry.permission == Permission::Allow));
        }
    }
}

// ---- more rules, one behaviour each ----

#[test]
fn allow_on_one_host_and_deny_on_all_hosts_denies() {
    let a = with(&[
        acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            ALICE,
            "10.0.0.1",
            Read,
            Permission::Allow,
        ),
        deny_topic("t", ALICE, Read),
    ]);
    assert!(!can(&a, ALICE, Read, "t"));
}

#[test]
fn a_deny_on_another_host_leaves_the_allow() {
    let a = with(&[
        allow_topic("t", ALICE, Read),
        acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            "User:*",
            "10.0.0.9",
            All,
            Permission::Deny,
        ),
    ]);
    assert!(can(&a, ALICE, Read, "t"));
    assert!(!a.authorize(ALICE, ip(9), Read, ResourceType::Topic, "t"));
}

#[test]
fn a_topic_literally_named_star_is_matched_by_the_wildcard_acl() {
    let a = with(&[allow_topic("*", ALICE, Write)]);
    assert!(can(&a, ALICE, Write, "*"));
}

#[test]
fn a_literal_acl_for_a_longer_name_does_not_apply() {
    let a = with(&[allow_topic("payments", ALICE, Read)]);
    assert!(!can(&a, ALICE, Read, "pay"));
}

#[test]
fn a_prefixed_acl_longer_than_the_name_does_not_apply() {
    let a = with(&[allow_prefix("payments", ALICE, Read)]);
    assert!(!can(&a, ALICE, Read, "pay"));
}

#[test]
fn several_prefixes_of_one_name_all_count() {
    let a = with(&[
        allow_prefix("p", ALICE, Read),
        allow_prefix("pa", BOB, Read),
        allow_prefix("pay", "User:carol", Read),
    ]);
    for who in [ALICE, BOB, "User:carol"] {
        assert!(can(&a, who, Read, "payments"), "{who}");
    }
    assert!(!can(&a, "User:carol", Read, "pa"));
}

#[test]
fn an_acl_of_any_principal_makes_the_resource_closed_to_others() {
    let a = Authorizer::new(AuthorizerSettings {
        allow_everyone_if_no_acl_found: true,
        ..Default::default()
    });
    a.replace([deny_topic("t", BOB, Read)]);
    assert!(
        !can(&a, ALICE, Read, "t"),
        "a resource with ACLs is no longer 'no ACL found'"
    );
}

#[test]
fn wildcard_principal_is_only_user_star() {
    let a = with(&[allow_topic("t", "Group:*", Read)]);
    assert!(!can(&a, "Group:g", Read, "t"));
}

#[test]
fn cluster_action_is_its_own_operation() {
    let a = with(&[acl(
        ResourceType::Cluster,
        "kafka-cluster",
        PatternType::Literal,
        ALICE,
        "*",
        Alter,
        Permission::Allow,
    )]);
    assert!(!a.authorize(
        ALICE,
        ip(1),
        ClusterAction,
        ResourceType::Cluster,
        "kafka-cluster"
    ));
    assert!(a.authorize(
        ALICE,
        ip(1),
        Describe,
        ResourceType::Cluster,
        "kafka-cluster"
    ));
}

#[test]
fn token_operations_are_plain_operations() {
    let a = with(&[acl(
        ResourceType::User,
        "bob",
        PatternType::Literal,
        ALICE,
        "*",
        CreateTokens,
        Permission::Allow,
    )]);
    assert!(a.authorize(ALICE, ip(1), CreateTokens, ResourceType::User, "bob"));
    assert!(!a.authorize(ALICE, ip(1), DescribeTokens, ResourceType::User, "bob"));
    assert!(!a.authorize(ALICE, ip(1), Describe, ResourceType::User, "bob"));
}

#[test]
fn replace_drops_what_was_there() {
    let a = with(&[allow_topic("t", ALICE, Read)]);
    a.replace([allow_topic("u", ALICE, Read)]);
    assert!(!can(&a, ALICE, Read, "t"));
    assert!(can(&a, ALICE, Read, "u"));
}

#[test]
fn an_empty_authorizer_reports_empty() {
    let a = with(&[]);
    assert!(a.is_empty());
    a.update(&[allow_topic("t", ALICE, Read)], &[]);
    assert!(!a.is_empty());
}

#[test]
fn by_type_uses_the_principal_exactly() {
    let a = with(&[allow_topic("t", "User:alice2", Write)]);
    assert!(!can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_counts_host_specific_acls_only_for_that_host() {
    let a = with(&[acl(
        ResourceType::Topic,
        "t",
        PatternType::Literal,
        ALICE,
        "10.0.0.1",
        Write,
        Permission::Allow,
    )]);
    assert!(a.authorize_by_resource_type(ALICE, ip(1), Write, ResourceType::Topic));
    assert!(!a.authorize_by_resource_type(ALICE, ip(2), Write, ResourceType::Topic));
}

#[test]
fn by_type_deny_all_cancels_an_allow_of_one_operation() {
    let a = with(&[allow_topic("t", ALICE, Write), deny_topic("t", ALICE, All)]);
    assert!(!can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_a_wildcard_allow_wins_over_prefix_denies() {
    let a = with(&[
        allow_topic("*", ALICE, Write),
        deny_prefix("a", ALICE, Write),
    ]);
    assert!(can_any_topic(&a, ALICE, Write));
}

#[test]
fn by_type_a_prefix_deny_equal_to_a_literal_allow_cancels_it() {
    let a = with(&[
        allow_topic("abc", ALICE, Write),
        deny_prefix("abc", ALICE, Write),
    ]);
    assert!(!can_any_topic(&a, ALICE, Write));
}

// ---- filters and the authorizer agree on which ACLs apply to a resource ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_match_filter_lists_exactly_the_acls_that_apply_to_the_resource(
        acls in prop::collection::vec(arb_acl(), 0..12),
        resource_type in prop::sample::select(vec![ResourceType::Topic, ResourceType::Group]),
        name in prop::sample::select(&["a", "ab", "abc", "abcd", "b", "ba", "c", "*"][..]),
    ) {
        let authorizer = with(&acls);
        let mut filter = AclBindingFilter::any();
        filter.pattern.resource_type = resource_type;
        filter.pattern.name = Some(name.to_string());
        filter.pattern.pattern_type = PatternType::Match;
        let listed: BTreeSet<AclBinding> = authorizer.bindings(&filter).into_iter().collect();
        let applies: BTreeSet<AclBinding> = acls
            .iter()
            .filter(|b| {
                b.pattern.resource_type == resource_type
                    && match b.pattern.pattern_type {
                        PatternType::Literal => b.pattern.name == name || b.pattern.name == "*",
                        PatternType::Prefixed => name.starts_with(b.pattern.name.as_str()),
                        _ => false,
                    }
            })
            .cloned()
            .collect();
        prop_assert_eq!(listed, applies);
    }

    #[test]
    fn deleting_what_a_filter_matches_leaves_nothing_it_matches(
        acls in prop::collection::vec(arb_acl(), 0..12),
        principal in prop::sample::select(PRINCIPALS),
        operation in prop::sample::select(OPERATIONS),
    ) {
        let authorizer = with(&acls);
        let mut filter = AclBindingFilter::any();
        filter.entry.principal = Some(principal.to_string());
        filter.entry.operation = operation;
        let doomed = authorizer.bindings(&filter);
        authorizer.update(&[], &doomed);
        prop_assert!(authorizer.bindings(&filter).is_empty());
        let kept = authorizer.bindings(&AclBindingFilter::any());
        prop_assert!(kept.iter().all(|b| !filter.matches(b)));
    }
}
