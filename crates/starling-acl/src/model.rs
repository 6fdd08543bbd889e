//! The ACL model with Kafka's wire codes and names: resource types, pattern types, operations
//! and permissions; a binding (a resource pattern plus an access control entry) and the filters
//! that select bindings, with Kafka's matching rules (`AclBindingFilter.matches`) and the
//! validation Kafka applies to a binding before storing it.

use std::fmt;

/// The resource name that, in a LITERAL pattern, stands for every resource of its type.
pub const WILDCARD: &str = "*";
/// The principal that stands for every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The only name a CLUSTER resource has.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// Declares an enum of Kafka wire codes with their names (as Kafka spells them), parsing
/// from a code (unknown codes are `Unknown`) and from a name.
macro_rules! kafka_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($variant,)*
        }

        impl $name {
            /// Every value, `Unknown` first.
            pub const ALL_VALUES: &'static [$name] = &[$($name::$variant,)*];

            /// The wire code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)*
                }
            }

            /// The value for a wire code; a code Kafka does not define is `Unknown`.
            pub fn from_code(code: i8) -> $name {
                match code {
                    $($code => $name::$variant,)*
                    _ => $name::Unknown,
                }
            }

            /// Kafka's name (`TRANSACTIONAL_ID`, `IDEMPOTENT_WRITE`, …).
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value named `text`, ignoring case, `_` and `-` (so `IdempotentWrite`,
            /// `idempotent-write` and `IDEMPOTENT_WRITE` all name the same operation).
            pub fn parse(text: &str) -> Option<$name> {
                let wanted = squash(text);
                Self::ALL_VALUES
                    .iter()
                    .copied()
                    .find(|v| squash(v.name()) == wanted)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

/// `text` upper-cased without `_` and `-`, for lenient name matching.
fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

kafka_enum!(
    /// Kafka's `ResourceType`. `Any` only has a meaning in filters.
    ResourceType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

kafka_enum!(
    /// Kafka's `PatternType`. `Any` and `Match` only have a meaning in filters.
    PatternType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

kafka_enum!(
    /// Kafka's `AclOperation`. `Any` only has a meaning in filters.
    AclOperation {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
);

kafka_enum!(
    /// Kafka's `AclPermissionType`. `Any` only has a meaning in filters.
    Permission {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

/// What an ACL is about: resources of one type, by literal name (`*` for all) or by prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
}

/// Who may (or may not) do what from where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccessControlEntry {
    /// `Type:name`, e.g. `User:alice`, or `User:*` for every user.
    pub principal: String,
    /// A client address, or `*` for any.
    pub host: String,
    pub operation: AclOperation,
    pub permission: Permission,
}

/// One ACL: Kafka's `AclBinding`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub pattern: ResourcePattern,
    pub entry: AccessControlEntry,
}

/// Selects resource patterns: Kafka's `ResourcePatternFilter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePatternFilter {
    /// `Any` matches every type.
    pub resource_type: ResourceType,
    /// `None` matches every name.
    pub name: Option<String>,
    /// `Any` matches both pattern types by exact name; `Match` matches the patterns that
    /// apply to a resource called `name` (literal, the literal wildcard, and prefixes of it).
    pub pattern_type: PatternType,
}

/// Selects access control entries: Kafka's `AccessControlEntryFilter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessControlEntryFilter {
    /// `None` matches every principal (exact comparison otherwise).
    pub principal: Option<String>,
    /// `None` matches every host (exact comparison otherwise).
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: Permission,
}

/// Selects bindings: Kafka's `AclBindingFilter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub pattern: ResourcePatternFilter,
    pub entry: AccessControlEntryFilter,
}

impl ResourcePatternFilter {
    /// Whether a filter field is UNKNOWN (Kafka refuses such filters).
    pub fn is_unknown(&self) -> bool {
        self.resource_type == ResourceType::Unknown || self.pattern_type == PatternType::Unknown
    }

    /// Kafka's `ResourcePatternFilter.matches`.
    pub fn matches(&self, pattern: &ResourcePattern) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != pattern.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != pattern.pattern_type
        {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == pattern.pattern_type {
            return *name == pattern.name;
        }
        // A MATCH filter: the patterns that would apply to a resource called `name`.
        match pattern.pattern_type {
            PatternType::Literal => *name == pattern.name || pattern.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&pattern.name),
            _ => false,
        }
    }
}

impl AccessControlEntryFilter {
    /// Whether a filter field is UNKNOWN (Kafka refuses such filters).
    pub fn is_unknown(&self) -> bool {
        self.operation == AclOperation::Unknown || self.permission == Permission::Unknown
    }

    /// Kafka's `AccessControlEntryFilter.matches`.
    pub fn matches(&self, entry: &AccessControlEntry) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| *p == entry.principal)
            && self.host.as_ref().is_none_or(|h| *h == entry.host)
            && (self.operation == AclOperation::Any || self.operation == entry.operation)
            && (self.permission == Permission::Any || self.permission == entry.permission)
    }
}

impl AclBindingFilter {
    /// The filter that matches every binding.
    pub fn any() -> AclBindingFilter {
        AclBindingFilter {
            pattern: ResourcePatternFilter {
                resource_type: ResourceType::Any,
                name: None,
                pattern_type: PatternType::Any,
            },
            entry: AccessControlEntryFilter {
                principal: None,
                host: None,
                operation: AclOperation::Any,
                permission: Permission::Any,
            },
        }
    }

    /// Whether a field is UNKNOWN.
    pub fn is_unknown(&self) -> bool {
        self.pattern.is_unknown() || self.entry.is_unknown()
    }

    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.pattern.matches(&binding.pattern) && self.entry.matches(&binding.entry)
    }

    /// Why Kafka's controller refuses this filter for DeleteAcls
    /// (`AclControlManager.validateFilter`), if it does.
    pub fn validate_for_delete(&self) -> Result<(), String> {
        if self.pattern.is_unknown() {
            return Err("Unknown patternFilter.".into());
        }
        if self.entry.is_unknown() {
            return Err("Unknown entryFilter.".into());
        }
        Ok(())
    }
}

/// Splits `Type:name` at its first colon, as Kafka's `SecurityUtils.parseKafkaPrincipal`.
pub fn parse_principal(principal: &str) -> Result<(&str, &str), String> {
    match principal.split_once(':') {
        Some((kind, name)) if !principal.is_empty() => Ok((kind, name)),
        _ => Err(format!(
            "expected a string in format principalType:principalName but got {principal}"
        )),
    }
}

impl AclBinding {
    /// Why Kafka refuses to store this binding, if it does: the checks of the broker's
    /// `AclApis.handleCreateAcls` and the controller's `AclControlManager.validateNewAcl`, in
    /// Kafka's order, with its messages. A principal not of the form `Type:name` is refused too
    /// (Kafka's authorizer cannot use one).
    pub fn validate_new(&self) -> Result<(), String> {
        let pattern = &self.pattern;
        if pattern.resource_type == ResourceType::Cluster && pattern.name != CLUSTER_RESOURCE_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}"
            ));
        }
        if pattern.name.is_empty() {
            return Err("Invalid empty resource name".into());
        }
        if matches!(
            pattern.resource_type,
            ResourceType::Unknown | ResourceType::Any
        ) {
            return Err(format!("Invalid resourceType {}", pattern.resource_type));
        }
        if !matches!(
            pattern.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(format!("Invalid patternType {}", pattern.pattern_type));
        }
        if matches!(
            self.entry.operation,
            AclOperation::Unknown | AclOperation::Any
        ) {
            return Err(format!("Invalid operation {}", self.entry.operation));
        }
        if !matches!(self.entry.permission, Permission::Allow | Permission::Deny) {
            return Err(format!("Invalid permissionType {}", self.entry.permission));
        }
        parse_principal(&self.entry.principal)
            .map(|_| ())
            .map_err(|_| {
                format!(
                    "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
                    self.entry.principal
                )
            })
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.resource_type, self.pattern_type, self.name
        )
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} from {} on {}",
            self.entry.principal,
            self.entry.permission,
            self.entry.operation,
            self.entry.host,
            self.pattern
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
    ) -> ResourcePattern {
        ResourcePattern {
            resource_type,
            name: name.into(),
            pattern_type,
        }
    }

    fn binding(pattern: ResourcePattern) -> AclBinding {
        AclBinding {
            pattern,
            entry: AccessControlEntry {
                principal: "User:alice".into(),
                host: "*".into(),
                operation: AclOperation::Read,
                permission: Permission::Allow,
            },
        }
    }

    fn pattern_filter(
        resource_type: ResourceType,
        name: Option<&str>,
        pattern_type: PatternType,
    ) -> ResourcePatternFilter {
        ResourcePatternFilter {
            resource_type,
            name: name.map(str::to_string),
            pattern_type,
        }
    }

    fn topic(name: &str) -> ResourcePattern {
        pattern(ResourceType::Topic, name, PatternType::Literal)
    }

    fn topic_prefix(name: &str) -> ResourcePattern {
        pattern(ResourceType::Topic, name, PatternType::Prefixed)
    }

    #[test]
    fn codes_round_trip_for_every_value() {
        for v in ResourceType::ALL_VALUES {
            assert_eq!(ResourceType::from_code(v.code()), *v);
        }
        for v in PatternType::ALL_VALUES {
            assert_eq!(PatternType::from_code(v.code()), *v);
        }
        for v in AclOperation::ALL_VALUES {
            assert_eq!(AclOperation::from_code(v.code()), *v);
        }
        for v in Permission::ALL_VALUES {
            assert_eq!(Permission::from_code(v.code()), *v);
        }
    }

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(ResourceType::Topic.code(), 2);
        assert_eq!(ResourceType::User.code(), 7);
        assert_eq!(PatternType::Match.code(), 2);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(AclOperation::IdempotentWrite.code(), 12);
        assert_eq!(AclOperation::DescribeTokens.code(), 14);
        assert_eq!(Permission::Deny.code(), 2);
        assert_eq!(Permission::Allow.code(), 3);
    }

    #[test]
    fn undefined_codes_are_unknown() {
        assert_eq!(ResourceType::from_code(8), ResourceType::Unknown);
        assert_eq!(ResourceType::from_code(-1), ResourceType::Unknown);
        assert_eq!(PatternType::from_code(5), PatternType::Unknown);
        assert_eq!(AclOperation::from_code(15), AclOperation::Unknown);
        assert_eq!(Permission::from_code(4), Permission::Unknown);
    }

    #[test]
    fn names_parse_ignoring_case_underscores_and_dashes() {
        assert_eq!(
            AclOperation::parse("IdempotentWrite"),
            Some(AclOperation::IdempotentWrite)
        );
        assert_eq!(
            AclOperation::parse("describe-configs"),
            Some(AclOperation::DescribeConfigs)
        );
        assert_eq!(
            ResourceType::parse("transactional_id"),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(PatternType::parse("prefixed"), Some(PatternType::Prefixed));
        assert_eq!(Permission::parse("Deny"), Some(Permission::Deny));
        assert_eq!(AclOperation::parse("fly"), None);
    }

    #[test]
    fn literal_filter_matches_only_the_same_name() {
        let f = pattern_filter(ResourceType::Topic, Some("a"), PatternType::Literal);
        assert!(f.matches(&topic("a")));
        assert!(!f.matches(&topic("ab")));
        assert!(!f.matches(&topic("*")));
        assert!(!f.matches(&topic_prefix("a")));
    }

    #[test]
    fn prefixed_filter_matches_only_the_same_prefix() {
        let f = pattern_filter(ResourceType::Topic, Some("a"), PatternType::Prefixed);
        assert!(f.matches(&topic_prefix("a")));
        assert!(!f.matches(&topic_prefix("")));
        assert!(!f.matches(&topic("a")));
    }

    #[test]
    fn any_pattern_filter_matches_both_pattern_types_by_exact_name() {
        let f = pattern_filter(ResourceType::Topic, Some("ab"), PatternType::Any);
        assert!(f.matches(&topic("ab")));
        assert!(f.matches(&topic_prefix("ab")));
        assert!(!f.matches(&topic_prefix("a")));
        assert!(!f.matches(&topic("*")));
    }

    #[test]
    fn match_filter_matches_literal_wildcard_and_prefixes_of_the_name() {
        let f = pattern_filter(ResourceType::Topic, Some("payments"), PatternType::Match);
        assert!(f.matches(&topic("payments")));
        assert!(f.matches(&topic("*")));
        assert!(f.matches(&topic_prefix("pay")));
        assert!(f.matches(&topic_prefix("payments")));
        assert!(!f.matches(&topic_prefix("paymentsX")));
        assert!(!f.matches(&topic("pay")));
        assert!(!f.matches(&topic_prefix("x")));
    }

    #[test]
    fn match_filter_without_a_name_matches_everything_of_its_type() {
        let f = pattern_filter(ResourceType::Topic, None, PatternType::Match);
        assert!(f.matches(&topic("x")));
        assert!(f.matches(&topic_prefix("y")));
        assert!(!f.matches(&pattern(ResourceType::Group, "x", PatternType::Literal)));
    }

    #[test]
    fn resource_type_any_matches_every_type() {
        let f = pattern_filter(ResourceType::Any, None, PatternType::Any);
        for t in [
            ResourceType::Topic,
            ResourceType::Group,
            ResourceType::Cluster,
        ] {
            assert!(f.matches(&pattern(t, "x", PatternType::Literal)));
        }
    }

    #[test]
    fn resource_type_filter_excludes_other_types() {
        let f = pattern_filter(ResourceType::Group, None, PatternType::Any);
        assert!(!f.matches(&topic("x")));
    }

    #[test]
    fn entry_filter_compares_principal_and_host_exactly() {
        let b = binding(topic("t"));
        let mut f = AclBindingFilter::any();
        assert!(f.matches(&b));
        f.entry.principal = Some("User:*".into());
        assert!(!f.matches(&b), "User:* is not a wildcard in filters");
        f.entry.principal = Some("User:alice".into());
        assert!(f.matches(&b));
        f.entry.host = Some("10.0.0.1".into());
        assert!(
            !f.matches(&b),
            "host * is not matched by a specific host filter"
        );
        f.entry.host = Some("*".into());
        assert!(f.matches(&b));
    }

    #[test]
    fn entry_filter_operation_and_permission_are_exact_unless_any() {
        let b = binding(topic("t"));
        let mut f = AclBindingFilter::any();
        f.entry.operation = AclOperation::Describe;
        assert!(!f.matches(&b), "filters do not apply implication");
        f.entry.operation = AclOperation::Read;
        assert!(f.matches(&b));
        f.entry.permission = Permission::Deny;
        assert!(!f.matches(&b));
        f.entry.permission = Permission::Allow;
        assert!(f.matches(&b));
    }

    #[test]
    fn unknown_filters_are_refused_for_delete_with_kafkas_messages() {
        let mut f = AclBindingFilter::any();
        assert_eq!(f.validate_for_delete(), Ok(()));
        f.pattern.pattern_type = PatternType::Unknown;
        assert_eq!(
            f.validate_for_delete(),
            Err("Unknown patternFilter.".into())
        );
        let mut f = AclBindingFilter::any();
        f.pattern.resource_type = ResourceType::Unknown;
        assert!(f.is_unknown());
        let mut f = AclBindingFilter::any();
        f.entry.permission = Permission::Unknown;
        assert_eq!(f.validate_for_delete(), Err("Unknown entryFilter.".into()));
        let mut f = AclBindingFilter::any();
        f.entry.operation = AclOperation::Unknown;
        assert_eq!(f.validate_for_delete(), Err("Unknown entryFilter.".into()));
    }

    #[test]
    fn a_valid_binding_passes() {
        assert_eq!(binding(topic("t")).validate_new(), Ok(()));
        assert_eq!(binding(topic_prefix("t")).validate_new(), Ok(()));
        assert_eq!(binding(topic("*")).validate_new(), Ok(()));
    }

    #[test]
    fn cluster_resource_must_be_named_kafka_cluster() {
        let b = binding(pattern(ResourceType::Cluster, "c", PatternType::Literal));
        assert_eq!(
            b.validate_new(),
            Err("The only valid name for the CLUSTER resource is kafka-cluster".into())
        );
        let b = binding(pattern(
            ResourceType::Cluster,
            "kafka-cluster",
            PatternType::Literal,
        ));
        assert_eq!(b.validate_new(), Ok(()));
    }

    #[test]
    fn empty_resource_name_is_refused() {
        assert_eq!(
            binding(topic("")).validate_new(),
            Err("Invalid empty resource name".into())
        );
    }

    #[test]
    fn filter_only_resource_types_are_refused() {
        for t in [ResourceType::Any, ResourceType::Unknown] {
            let b = binding(pattern(t, "x", PatternType::Literal));
            assert_eq!(b.validate_new(), Err(format!("Invalid resourceType {t}")));
        }
    }

    #[test]
    fn filter_only_pattern_types_are_refused() {
        for p in [PatternType::Any, PatternType::Match, PatternType::Unknown] {
            let b = binding(pattern(ResourceType::Topic, "x", p));
            assert_eq!(b.validate_new(), Err(format!("Invalid patternType {p}")));
        }
    }

    #[test]
    fn filter_only_operations_are_refused() {
        for op in [AclOperation::Any, AclOperation::Unknown] {
            let mut b = binding(topic("x"));
            b.entry.operation = op;
            assert_eq!(b.validate_new(), Err(format!("Invalid operation {op}")));
        }
    }

    #[test]
    fn filter_only_permissions_are_refused() {
        for p in [Permission::Any, Permission::Unknown] {
            let mut b = binding(topic("x"));
            b.entry.permission = p;
            assert_eq!(b.validate_new(), Err(format!("Invalid permissionType {p}")));
        }
    }

    #[test]
    fn a_principal_without_a_colon_is_refused() {
        for principal in ["alice", ""] {
            let mut b = binding(topic("x"));
            b.entry.principal = principal.into();
            assert!(b
                .validate_new()
                .unwrap_err()
                .contains("Could not parse principal"));
        }
    }

    #[test]
    fn a_principal_splits_at_its_first_colon() {
        assert_eq!(parse_principal("User:a:b"), Ok(("User", "a:b")));
        assert_eq!(parse_principal("User:"), Ok(("User", "")));
        assert!(parse_principal("User").is_err());
    }

    #[test]
    fn bindings_display_for_humans() {
        let b = binding(topic_prefix("pay"));
        assert_eq!(
            b.to_string(),
            "User:alice ALLOW READ from * on TOPIC:PREFIXED:pay"
        );
    }
}
