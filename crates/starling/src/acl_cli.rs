//! `starling acl ...`: add, list and remove ACLs on any Kafka-compatible broker (CreateAcls,
//! DescribeAcls, DeleteAcls through `starling-client`), in the spirit of `kafka-acls` and
//! `rpk acl`.
//!
//! * `add --allow-principal User:alice --operation read --topic orders`: one ACL for every
//!   combination of principal, operation, host and resource given (`kafka-acls --add`). The
//!   operation defaults to ALL, the host to `*`, the pattern type to literal.
//! * `list [RESOURCE...] [--principal P] [--operation OP] [--resource-pattern-type T]`: the ACLs
//!   that match; no resource lists every resource. `--resource-pattern-type match` lists the
//!   ACLs that apply to the named resource (literal, `*` and prefixes).
//! * `remove RESOURCE... | --principal P ...`: deletes the ACLs the same filters match, and
//!   prints them.
//!
//! Resources: `--topic`, `--group`, `--transactional-id` (repeatable) and `--cluster`. A table
//! by default; `--json` prints the same as JSON. Failures end with a non-zero exit.

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;
use starling_acl::{
    AccessControlEntry, AccessControlEntryFilter, AclBinding, AclBindingFilter, AclOperation,
    PatternType, Permission, ResourcePattern, ResourcePatternFilter, ResourceType,
    CLUSTER_RESOURCE_NAME,
};

use crate::group_cli::render_table;
use crate::topic_cli::BrokerArgs;

#[derive(Debug, clap::Args)]
pub struct AclArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(subcommand)]
    command: AclCommand,
}

/// The resource flags, shared by every command.
#[derive(Debug, Clone, Default, clap::Args)]
struct ResourceArgs {
    /// A topic. Repeatable.
    #[arg(long, value_name = "NAME")]
    topic: Vec<String>,
    /// A consumer group. Repeatable.
    #[arg(long, value_name = "NAME")]
    group: Vec<String>,
    /// A transactional id. Repeatable.
    #[arg(long, value_name = "ID")]
    transactional_id: Vec<String>,
    /// The cluster (`kafka-cluster`).
    #[arg(long)]
    cluster: bool,
    /// literal or prefixed for add (default literal); also match or any for list and remove
    /// (default literal when a resource is named).
    #[arg(long, value_name = "TYPE", value_parser = parse_pattern_type)]
    resource_pattern_type: Option<PatternType>,
}

impl ResourceArgs {
    /// Every resource named, as (type, name).
    fn resources(&self) -> Vec<(ResourceType, String)> {
        let named = |t: ResourceType, names: &[String]| {
            names
                .iter()
                .map(move |n| (t, n.clone()))
                .collect::<Vec<_>>()
        };
        let mut out = named(ResourceType::Topic, &self.topic);
        out.extend(named(ResourceType::Group, &self.group));
        out.extend(named(ResourceType::TransactionalId, &self.transactional_id));
        if self.cluster {
            out.push((ResourceType::Cluster, CLUSTER_RESOURCE_NAME.to_string()));
        }
        out
    }

    /// The resource pattern filters for list and remove: one per resource named, or every
    /// resource when none is.
    fn filters(&self) -> Vec<ResourcePatternFilter> {
        let resources = self.resources();
        if resources.is_empty() {
            return vec![ResourcePatternFilter {
                resource_type: ResourceType::Any,
                name: None,
                pattern_type: self.resource_pattern_type.unwrap_or(PatternType::Any),
            }];
        }
        let pattern_type = self.resource_pattern_type.unwrap_or(PatternType::Literal);
        resources
            .into_iter()
            .map(|(resource_type, name)| ResourcePatternFilter {
                resource_type,
                name: Some(name),
                pattern_type,
            })
            .collect()
    }
}

/// The entry flags, shared by every command.
#[derive(Debug, Clone, Default, clap::Args)]
struct EntryArgs {
    /// A principal to allow (`User:alice`, `User:*` for everyone). Repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    allow_principal: Vec<String>,
    /// A principal to deny. Repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    deny_principal: Vec<String>,
    /// An operation: all, read, write, create, delete, alter, describe, cluster-action,
    /// describe-configs, alter-configs, idempotent-write, create-tokens, describe-tokens.
    /// Repeatable; add defaults to all, list and remove to any.
    #[arg(long, value_name = "OPERATION", value_parser = parse_operation)]
    operation: Vec<AclOperation>,
    /// A client address the ACL is for; add defaults to `*` (every host). Repeatable.
    #[arg(long, value_name = "ADDRESS")]
    host: Vec<String>,
}

impl EntryArgs {
    /// (principal, permission) for each principal flag.
    fn principals(&self) -> Vec<(String, Permission)> {
        let mut out: Vec<(String, Permission)> = self
            .allow_principal
            .iter()
            .map(|p| (p.clone(), Permission::Allow))
            .collect();
        out.extend(
            self.deny_principal
                .iter()
                .map(|p| (p.clone(), Permission::Deny)),
        );
        out
    }
}

#[derive(Debug, Subcommand)]
enum AclCommand {
    /// Add ACLs: every combination of the principals, operations, hosts and resources given.
    Add {
        #[command(flatten)]
        resource: ResourceArgs,
        #[command(flatten)]
        entry: EntryArgs,
    },
    /// List the ACLs that match.
    List {
        #[command(flatten)]
        resource: ResourceArgs,
        #[command(flatten)]
        entry: EntryArgs,
        /// Only ACLs for this principal, allowed or denied. Repeatable.
        #[arg(long, value_name = "PRINCIPAL")]
        principal: Vec<String>,
    },
    /// Remove the ACLs that match, printing them.
    Remove {
        #[command(flatten)]
        resource: ResourceArgs,
        #[command(flatten)]
        entry: EntryArgs,
        /// Only ACLs for this principal, allowed or denied. Repeatable.
        #[arg(long, value_name = "PRINCIPAL")]
        principal: Vec<String>,
    },
}

fn parse_pattern_type(text: &str) -> Result<PatternType, String> {
    match PatternType::parse(text) {
        Some(p @ (PatternType::Literal | PatternType::Prefixed | PatternType::Match)) => Ok(p),
        Some(PatternType::Any) => Ok(PatternType::Any),
        _ => Err(format!(
            "{text:?}: expected literal, prefixed, match or any"
        )),
    }
}

fn parse_operation(text: &str) -> Result<AclOperation, String> {
    match AclOperation::parse(text) {
        Some(AclOperation::Unknown | AclOperation::Any) | None => {
            Err(format!("{text:?} is not an ACL operation"))
        }
        Some(op) => Ok(op),
    }
}

/// The bindings `add` creates.
fn bindings_to_add(resource: &ResourceArgs, entry: &EntryArgs) -> anyhow::Result<Vec<AclBinding>> {
    let pattern_type = match resource.resource_pattern_type {
        None | Some(PatternType::Literal) => PatternType::Literal,
        Some(PatternType::Prefixed) => PatternType::Prefixed,
        Some(other) => bail!(
            "--resource-pattern-type {} only applies to list and remove; add takes literal or prefixed",
            other.name().to_lowercase()
        ),
    };
    let resources = resource.resources();
    if resources.is_empty() {
        bail!("name a resource: --topic, --group, --transactional-id or --cluster");
    }
    let principals = entry.principals();
    if principals.is_empty() {
        bail!("name a principal: --allow-principal or --deny-principal (User:NAME)");
    }
    let operations = if entry.operation.is_empty() {
        vec![AclOperation::All]
    } else {
        entry.operation.clone()
    };
    let hosts = if entry.host.is_empty() {
        vec!["*".to_string()]
    } else {
        entry.host.clone()
    };
    let mut out = Vec::new();
    for (resource_type, name) in &resources {
        for (principal, permission) in &principals {
            for host in &hosts {
                for operation in &operations {
                    out.push(AclBinding {
                        pattern: ResourcePattern {
                            resource_type: *resource_type,
                            name: name.clone(),
                            pattern_type,
                        },
                        entry: AccessControlEntry {
                            principal: principal.clone(),
                            host: host.clone(),
                            operation: *operation,
                            permission: *permission,
                        },
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The filters `list` and `remove` send: every combination of resource, principal, operation
/// and host given (a flag not given matches anything).
fn filters(
    resource: &ResourceArgs,
    entry: &EntryArgs,
    principal: &[String],
) -> Vec<AclBindingFilter> {
    let mut principals: Vec<(Option<String>, Permission)> = entry
        .principals()
        .into_iter()
        .map(|(p, permission)| (Some(p), permission))
        .collect();
    principals.extend(principal.iter().map(|p| (Some(p.clone()), Permission::Any)));
    if principals.is_empty() {
        principals.push((None, Permission::Any));
    }
    let operations = if entry.operation.is_empty() {
        vec![AclOperation::Any]
    } else {
        entry.operation.clone()
    };
    let hosts: Vec<Option<String>> = if entry.host.is_empty() {
        vec![None]
    } else {
        entry.host.iter().cloned().map(Some).collect()
    };
    let mut out = Vec::new();
    for pattern in resource.filters() {
        for (principal, permission) in &principals {
            for host in &hosts {
                for operation in &operations {
                    out.push(AclBindingFilter {
                        pattern: pattern.clone(),
                        entry: AccessControlEntryFilter {
                            principal: principal.clone(),
                            host: host.clone(),
                            operation: *operation,
                            permission: *permission,
                        },
                    });
                }
            }
        }
    }
    out
}

/// Runs one `starling acl` command, printing its output on stdout. A failure is printed as
/// one `error: ...` line on stderr and ends the process with exit status 1.
pub async fn run(args: AclArgs) -> anyhow::Result<()> {
    match execute(args).await {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

async fn execute(args: AclArgs) -> anyhow::Result<()> {
    let as_json = args.broker.json;
    match args.command {
        AclCommand::Add { resource, entry } => {
            let bindings = bindings_to_add(&resource, &entry)?;
            let mut client = args.broker.connect.connect().await?;
            let results = client.create_acls(&bindings).await?;
            let outcomes: Vec<(AclBinding, Result<(), String>)> = bindings
                .into_iter()
                .zip(results)
                .map(|(b, r)| (b, r.map_err(|e| e.to_string())))
                .collect();
            print!("{}", render_outcomes(&outcomes, "added", as_json));
            let failed = outcomes.iter().filter(|(_, r)| r.is_err()).count();
            if failed > 0 {
                bail!("{failed} of {} ACLs were not added", outcomes.len());
            }
        }
        AclCommand::List {
            resource,
            entry,
            principal,
        } => {
            let mut client = args.broker.connect.connect().await?;
            let mut found: Vec<AclBinding> = Vec::new();
            for filter in filters(&resource, &entry, &principal) {
                found.extend(client.describe_acls(&filter).await?);
            }
            found.sort();
            found.dedup();
            print!("{}", render_bindings(&found, as_json));
        }
        AclCommand::Remove {
            resource,
            entry,
            principal,
        } => {
            if resource.resources().is_empty()
                && entry.principals().is_empty()
                && principal.is_empty()
            {
                bail!(
                    "name what to remove: a resource (--topic, --group, --transactional-id, --cluster) or a principal"
                );
            }
            let mut client = args.broker.connect.connect().await?;
            let results = client
                .delete_acls(&filters(&resource, &entry, &principal))
                .await?;
            let mut removed: Vec<AclBinding> = Vec::new();
            let mut errors: Vec<String> = Vec::new();
            for result in results {
                match result {
                    Ok(bindings) => removed.extend(bindings),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            removed.sort();
            removed.dedup();
            print!("{}", render_bindings(&removed, as_json));
            if !errors.is_empty() {
                bail!("cannot remove ACLs: {}", errors.join("; "));
            }
        }
    }
    Ok(())
}

fn lower(name: &str) -> String {
    name.to_lowercase()
}

fn binding_row(b: &AclBinding) -> Vec<String> {
    vec![
        b.entry.principal.clone(),
        b.entry.host.clone(),
        lower(b.entry.operation.name()),
        lower(b.entry.permission.name()),
        lower(b.pattern.resource_type.name()),
        lower(b.pattern.pattern_type.name()),
        b.pattern.name.clone(),
    ]
}

const BINDING_HEADERS: [&str; 7] = [
    "PRINCIPAL",
    "HOST",
    "OPERATION",
    "PERMISSION",
    "RESOURCE-TYPE",
    "PATTERN",
    "NAME",
];

fn binding_json(b: &AclBinding) -> serde_json::Value {
    json!({
        "principal": b.entry.principal,
        "host": b.entry.host,
        "operation": lower(b.entry.operation.name()),
        "permission": lower(b.entry.permission.name()),
        "resource_type": lower(b.pattern.resource_type.name()),
        "pattern_type": lower(b.pattern.pattern_type.name()),
        "name": b.pattern.name,
    })
}

fn pretty(value: serde_json::Value) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(&value).expect("JSON values serialize")
    )
}

fn render_bindings(bindings: &[AclBinding], as_json: bool) -> String {
    if as_json {
        return pretty(json!(bindings.iter().map(binding_json).collect::<Vec<_>>()));
    }
    let rows: Vec<Vec<String>> = bindings.iter().map(binding_row).collect();
    render_table(&BINDING_HEADERS, &rows)
}

fn render_outcomes(
    outcomes: &[(AclBinding, Result<(), String>)],
    done: &str,
    as_json: bool,
) -> String {
    if as_json {
        return pretty(json!(outcomes
            .iter()
            .map(|(b, r)| {
                let mut v = binding_json(b);
                v["error"] = json!(r.as_ref().err());
                v
            })
            .collect::<Vec<_>>()));
    }
    let mut headers = BINDING_HEADERS.to_vec();
    headers.push("RESULT");
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|(b, r)| {
            let mut row = binding_row(b);
            row.push(match r {
                Ok(()) => done.to_string(),
                Err(e) => e.clone(),
            });
            row
        })
        .collect();
    render_table(&headers, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(allow: &[&str], deny: &[&str], ops: &[AclOperation]) -> EntryArgs {
        EntryArgs {
            allow_principal: allow.iter().map(|s| s.to_string()).collect(),
            deny_principal: deny.iter().map(|s| s.to_string()).collect(),
            operation: ops.to_vec(),
            host: vec![],
        }
    }

    fn topics(names: &[&str]) -> ResourceArgs {
        ResourceArgs {
            topic: names.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn add_makes_every_combination_with_kafka_acls_defaults() {
        let bindings = bindings_to_add(
            &topics(&["a", "b"]),
            &entry(&["User:alice"], &["User:bob"], &[]),
        )
        .unwrap();
        assert_eq!(bindings.len(), 4);
        assert!(bindings
            .iter()
            .all(|b| b.entry.operation == AclOperation::All
                && b.entry.host == "*"
                && b.pattern.pattern_type == PatternType::Literal));
        assert_eq!(
            bindings
                .iter()
                .filter(|b| b.entry.permission == Permission::Deny)
                .count(),
            2
        );
    }

    #[test]
    fn add_needs_a_resource_and_a_principal() {
        assert!(bindings_to_add(&topics(&[]), &entry(&["User:a"], &[], &[])).is_err());
        assert!(bindings_to_add(&topics(&["t"]), &entry(&[], &[], &[])).is_err());
    }

    #[test]
    fn add_refuses_filter_pattern_types() {
        let mut resource = topics(&["t"]);
        resource.resource_pattern_type = Some(PatternType::Match);
        assert!(bindings_to_add(&resource, &entry(&["User:a"], &[], &[])).is_err());
    }

    #[test]
    fn the_cluster_flag_names_kafka_cluster() {
        let resource = ResourceArgs {
            cluster: true,
            ..Default::default()
        };
        assert_eq!(
            resource.resources(),
            vec![(ResourceType::Cluster, "kafka-cluster".to_string())]
        );
    }

    #[test]
    fn list_without_flags_matches_everything() {
        let f = filters(&ResourceArgs::default(), &EntryArgs::default(), &[]);
        assert_eq!(f, vec![AclBindingFilter::any()]);
    }

    #[test]
    fn list_filters_combine_resource_principal_and_operation() {
        let f = filters(
            &topics(&["t"]),
            &entry(&[], &[], &[AclOperation::Read, AclOperation::Write]),
            &["User:alice".to_string()],
        );
        assert_eq!(f.len(), 2);
        assert!(f
            .iter()
            .all(|f| f.pattern.pattern_type == PatternType::Literal
                && f.entry.principal.as_deref() == Some("User:alice")
                && f.entry.permission == Permission::Any));
    }

    #[test]
    fn operations_and_pattern_types_parse_leniently() {
        assert_eq!(
            parse_operation("IdempotentWrite"),
            Ok(AclOperation::IdempotentWrite)
        );
        assert!(parse_operation("any").is_err());
        assert_eq!(parse_pattern_type("PREFIXED"), Ok(PatternType::Prefixed));
        assert!(parse_pattern_type("regex").is_err());
    }

    #[test]
    fn bindings_print_one_row_each() {
        let b = bindings_to_add(
            &topics(&["t"]),
            &entry(&["User:alice"], &[], &[AclOperation::Read]),
        )
        .unwrap();
        assert_eq!(
            render_bindings(&b, false),
            "PRINCIPAL   HOST  OPERATION  PERMISSION  RESOURCE-TYPE  PATTERN  NAME\n\
             User:alice  *     read       allow       topic          literal  t\n"
        );
    }
}
