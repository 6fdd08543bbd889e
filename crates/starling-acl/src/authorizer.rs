//! The authorizer: the stored ACLs, indexed by resource, answering whether a principal may
//! perform an operation on a resource with the semantics of Kafka's `StandardAuthorizer`
//! (`StandardAuthorizerData.authorize`), and whether it may perform an operation on any
//! resource of a type (Kafka's `Authorizer.authorizeByResourceType`).
//!
//! The rules, for `authorize`:
//! - a super user (`super.users`) is allowed everything;
//! - the ACLs that apply are those on the resource's type whose pattern is the literal name,
//!   the literal wildcard `*`, or a prefix of the name;
//! - of those, an ACL counts if its principal is the caller's or `User:*`, and its host is the
//!   caller's address or `*`;
//! - a DENY counts for its own operation and for ALL; a DENY anywhere wins;
//! - an ALLOW counts for its own operation and for ALL, and also implies DESCRIBE (from READ,
//!   WRITE, DELETE, ALTER) and DESCRIBE_CONFIGS (from ALTER_CONFIGS);
//! - with no ALLOW counting: denied if the resource has any ACL at all (for anyone), otherwise
//!   `allow.everyone.if.no.acl.found` decides.
//!
//! The ACLs change rarely and are read on every request: a change builds a new index and swaps
//! it in, so readers only ever take a read lock long enough to clone an `Arc`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::model::{
    parse_principal, AclBinding, AclBindingFilter, AclOperation, PatternType, Permission,
    ResourceType, WILDCARD, WILDCARD_PRINCIPAL,
};

/// The authorizer's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    /// `super.users`: principals (`User:admin`) allowed everything.
    pub super_users: HashSet<String>,
    /// `allow.everyone.if.no.acl.found`: what to answer for a resource without any ACL.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerSettings {
    /// Parses Kafka's `super.users` value: principals separated by `;`, blanks ignored.
    pub fn parse_super_users(value: &str) -> HashSet<String> {
        value
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Which client addresses an ACL's host admits.
#[derive(Debug, Clone)]
enum HostMatch {
    Any,
    /// An address, compared as an address (so `::1` and `0:0:0:0:0:0:0:1`, Java's spelling,
    /// are the same host).
    Address(IpAddr),
    /// Something that is not an address: matches no client.
    Unparsed,
}

impl HostMatch {
    fn new(host: &str) -> HostMatch {
        if host == WILDCARD {
            HostMatch::Any
        } else {
            host.parse()
                .map(HostMatch::Address)
                .unwrap_or(HostMatch::Unparsed)
        }
    }

    fn admits(&self, client: IpAddr) -> bool {
        match self {
            HostMatch::Any => true,
            HostMatch::Address(address) => *address == client,
            HostMatch::Unparsed => false,
        }
    }
}

/// One ACL's entry as the index keeps it under its resource pattern.
#[derive(Debug, Clone)]
struct Rule {
    principal: String,
    host: HostMatch,
    operation: AclOperation,
    permission: Permission,
}

/// What one ACL says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allow,
    Deny,
}

impl Rule {
    /// Kafka's `StandardAuthorizerData.findResult`: whether this ACL allows or denies the
    /// request, or does not apply to it (`None`). The resource is already known to match.
    fn verdict(&self, principal: &str, host: IpAddr, operation: AclOperation) -> Option<Verdict> {
        if self.principal != principal && self.principal != WILDCARD_PRINCIPAL {
            return None;
        }
        if !self.host.admits(host) {
            return None;
        }
        if self.operation != AclOperation::All {
            let applies = match self.permission {
                Permission::Allow => implied_by_allow(self.operation, operation),
                _ => self.operation == operation,
            };
            if !applies {
                return None;
            }
        }
        match self.permission {
            Permission::Allow => Some(Verdict::Allow),
            Permission::Deny => Some(Verdict::Deny),
            _ => None,
        }
    }
}

/// Whether an ALLOW ACL for `granted` (not ALL) allows `requested`.
fn implied_by_allow(granted: AclOperation, requested: AclOperation) -> bool {
    use AclOperation::*;
    match requested {
        Describe => matches!(granted, Describe | Read | Write | Delete | Alter),
        DescribeConfigs => matches!(granted, DescribeConfigs | AlterConfigs),
        _ => granted == requested,
    }
}

/// The rules of one resource type, by pattern name.
type RulesByName = HashMap<String, Vec<Rule>>;

/// An immutable snapshot of the ACLs: the bindings, and the rules indexed for lookups.
#[derive(Debug, Default)]
struct AclIndex {
    bindings: BTreeSet<AclBinding>,
    literal: HashMap<ResourceType, RulesByName>,
    prefixed: HashMap<ResourceType, RulesByName>,
}

impl AclIndex {
    fn build(bindings: BTreeSet<AclBinding>) -> AclIndex {
        let mut literal: HashMap<ResourceType, RulesByName> = HashMap::new();
        let mut prefixed: HashMap<ResourceType, RulesByName> = HashMap::new();
        for binding in &bindings {
            let by_type = match binding.pattern.pattern_type {
                PatternType::Literal => &mut literal,
                PatternType::Prefixed => &mut prefixed,
                // Validation keeps other pattern types out; they would match nothing.
                _ => continue,
            };
            by_type
                .entry(binding.pattern.resource_type)
                .or_default()
                .entry(binding.pattern.name.clone())
                .or_default()
                .push(Rule {
                    principal: binding.entry.principal.clone(),
                    host: HostMatch::new(&binding.entry.host),
                    operation: binding.entry.operation,
                    permission: binding.entry.permission,
                });
        }
        AclIndex {
            bindings,
            literal,
            prefixed,
        }
    }

    /// Every rule whose pattern applies to the resource: the literal name, the literal
    /// wildcard, and every prefix of the name.
    fn rules_for<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        let literal = self.literal.get(&resource_type);
        let exact = literal.and_then(|rules| rules.get(name));
        let wildcard = if name == WILDCARD {
            None
        } else {
            literal.and_then(|rules| rules.get(WILDCARD))
        };
        let prefixed = self.prefixed.get(&resource_type);
        let prefixes = name
            .char_indices()
            .skip(1)
            .map(|(i, _)| i)
            .chain(std::iter::once(name.len()))
            .filter_map(move |end| prefixed.and_then(|rules| rules.get(&name[..end])));
        exact.into_iter().chain(wildcard).chain(prefixes).flatten()
    }
}

/// The ACLs and the decisions they make. Cheap to share: wrap it in an `Arc`.
#[derive(Debug)]
pub struct Authorizer {
    settings: AuthorizerSettings,
    index: RwLock<Arc<AclIndex>>,
}

impl Authorizer {
    /// An authorizer without ACLs.
    pub fn new(settings: AuthorizerSettings) -> Authorizer {
        Authorizer {
            settings,
            index: RwLock::new(Arc::new(AclIndex::default())),
        }
    }

    pub fn settings(&self) -> &AuthorizerSettings {
        &self.settings
    }

    fn snapshot(&self) -> Arc<AclIndex> {
        self.index.read().clone()
    }

    /// Replaces the ACLs with `bindings` (as when loading them at start).
    pub fn replace(&self, bindings: impl IntoIterator<Item = AclBinding>) {
        let index = AclIndex::build(bindings.into_iter().collect());
        *self.index.write() = Arc::new(index);
    }

    /// Adds and removes bindings in one step; adding one already there, or removing one not
    /// there, changes nothing.
    pub fn update(&self, add: &[AclBinding], remove: &[AclBinding]) {
        let mut guard = self.index.write();
        let mut bindings = guard.bindings.clone();
        for binding in remove {
            bindings.remove(binding);
        }
        bindings.extend(add.iter().cloned());
        *guard = Arc::new(AclIndex::build(bindings));
    }

    /// Whether `binding` is stored.
    pub fn contains(&self, binding: &AclBinding) -> bool {
        self.snapshot().bindings.contains(binding)
    }

    /// The stored bindings `filter` matches, in a stable order.
    pub fn bindings(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.snapshot()
            .bindings
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// How many bindings are stored.
    pub fn len(&self) -> usize {
        self.snapshot().bindings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `principal` (`Type:name`) is a super user.
    pub fn is_super_user(&self, principal: &str) -> bool {
        self.settings.super_users.contains(principal)
    }

    /// Whether `principal` (`Type:name`, e.g. `User:alice`) connected from `host` may perform
    /// `operation` on the resource of `resource_type` called `name`.
    pub fn authorize(
        &self,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        let index = self.snapshot();
        let mut resource_has_acls = false;
        let mut allowed = false;
        for rule in index.rules_for(resource_type, name) {
            resource_has_acls = true;
            match rule.verdict(principal, host, operation) {
                Some(Verdict::Deny) => return false,
                Some(Verdict::Allow) => allowed = true,
                None => {}
            }
        }
        if allowed {
            true
        } else if resource_has_acls {
            false
        } else {
            self.settings.allow_everyone_if_no_acl_found
        }
    }

    /// Whether `principal` from `host` may perform `operation` on at least one resource of
    /// `resource_type`, as Kafka's `Authorizer.authorizeByResourceType` decides it (used for
    /// IDEMPOTENT_WRITE and transactional producers): allowed if `authorize` allows some
    /// resource with no ACL of its own; otherwise allowed if an ALLOW (for the operation or
    /// ALL, no implication) exists whose name no DENY covers: a literal `*` DENY covers
    /// everything, a literal DENY its own name, a prefixed DENY every name starting with it.
    /// Filter-only values (ANY, UNKNOWN) are never allowed.
    pub fn authorize_by_resource_type(
        &self,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if matches!(operation, AclOperation::Any | AclOperation::Unknown)
            || matches!(resource_type, ResourceType::Any | ResourceType::Unknown)
        {
            return false;
        }
        // Kafka checks a made-up resource name first, so super users and
        // allow.everyone.if.no.acl.found (with no ACL covering that name) pass.
        if self.authorize(principal, host, operation, resource_type, "hardcode") {
            return true;
        }
        let index = self.snapshot();
        let mut denied_literals: HashSet<&str> = HashSet::new();
        let mut denied_prefixes: HashSet<&str> = HashSet::new();
        let mut allowed_literals: Vec<&str> = Vec::new();
        let mut allowed_prefixes: Vec<&str> = Vec::new();
        let mut wildcard_allowed = false;
        for binding in index
            .bindings
            .iter()
            .filter(|b| b.pattern.resource_type == resource_type)
        {
            let entry = &binding.entry;
            if !HostMatch::new(&entry.host).admits(host) {
                continue;
            }
            if !same_principal(&entry.principal, principal) && entry.principal != WILDCARD_PRINCIPAL
            {
                continue;
            }
            if entry.operation != operation && entry.operation != AclOperation::All {
                continue;
            }
            let name = binding.pattern.name.as_str();
            match (entry.permission, binding.pattern.pattern_type) {
                (Permission::Deny, PatternType::Literal) if name == WILDCARD => return false,
                (Permission::Deny, PatternType::Literal) => {
                    denied_literals.insert(name);
                }
                (Permission::Deny, PatternType::Prefixed) => {
                    denied_prefixes.insert(name);
                }
                (Permission::Allow, PatternType::Literal) if name == WILDCARD => {
                    wildcard_allowed = true;
                }
                (Permission::Allow, PatternType::Literal) => allowed_literals.push(name),
                (Permission::Allow, PatternType::Prefixed) => allowed_prefixes.push(name),
                _ => {}
            }
        }
        if wildcard_allowed {
            return true;
        }
        let prefix_denied = |name: &str| {
            name.char_indices()
                .skip(1)
                .map(|(i, _)| i)
                .chain(std::iter::once(name.len()))
                .any(|end| denied_prefixes.contains(&name[..end]))
        };
        allowed_literals
            .iter()
            .any(|name| !denied_literals.contains(name) && !prefix_denied(name))
            || allowed_prefixes.iter().any(|name| !prefix_denied(name))
    }
}

/// Whether two `Type:name` principals are the same principal (Kafka compares them parsed).
fn same_principal(acl_principal: &str, principal: &str) -> bool {
    match (parse_principal(acl_principal), parse_principal(principal)) {
        (Ok(a), Ok(b)) => a == b,
        _ => acl_principal == principal,
    }
}

#[cfg(test)]
mod tests;
