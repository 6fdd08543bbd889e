//! `starling quota ...`: describe and alter client quotas on any Kafka-compatible broker
//! (KIP-546's DescribeClientQuotas and AlterClientQuotas, through `starling-client`), in the
//! spirit of `kafka-configs --entity-type users/clients/ips`.
//!
//! * `describe [ENTITY...] [--strict]`: the entities with quotas that have every given entity
//!   type with that name (`--user alice`), the default one (`--user-defaults`) or any name, the
//!   default included (`--user-any`, Kafka's "specified" match); `--strict` leaves out entities
//!   with other types too. No entity flag lists every entity with quotas.
//! * `alter ENTITY... [--add-config K=V,...] [--delete-config K,...] [--validate-only]`:
//!   `starling quota alter --client app --add-config producer_byte_rate=1024` is
//!   `kafka-configs --alter --entity-type clients --entity-name app --add-config
//!   producer_byte_rate=1024`.
//!
//! A table by default; `--json` prints the same as JSON. Failures end with a non-zero exit.

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;
use starling_client::quotas::{
    ClientQuotaEntry, QuotaAlterResult, QuotaAlteration, QuotaEntity, QuotaFilter, QuotaMatch,
};

use crate::group_cli::render_table;
use crate::topic_cli::BrokerArgs;

#[derive(Debug, clap::Args)]
pub struct QuotaArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(subcommand)]
    command: QuotaCommand,
}

/// The entity flags, shared by both commands.
#[derive(Debug, Clone, clap::Args)]
struct EntityArgs {
    /// The user (principal name; `ANONYMOUS` for clients without SASL).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["user_defaults", "user_any"])]
    user: Option<String>,
    /// The default user entity (`<default>`).
    #[arg(long)]
    user_defaults: bool,
    /// describe: any user entity, the default included.
    #[arg(long)]
    user_any: bool,
    /// The client id.
    #[arg(long, alias = "client-id", value_name = "ID", conflicts_with_all = ["client_defaults", "client_any"])]
    client: Option<String>,
    /// The default client-id entity (`<default>`).
    #[arg(long)]
    client_defaults: bool,
    /// describe: any client-id entity, the default included.
    #[arg(long)]
    client_any: bool,
    /// The client IP address (quota key `connection_creation_rate`).
    #[arg(long, value_name = "ADDRESS", conflicts_with_all = ["ip_defaults", "ip_any"])]
    ip: Option<String>,
    /// The default ip entity (`<default>`).
    #[arg(long)]
    ip_defaults: bool,
    /// describe: any ip entity, the default included.
    #[arg(long)]
    ip_any: bool,
}

impl EntityArgs {
    /// (type, match) for each type given, in Kafka's user, client-id, ip order.
    fn components(&self) -> Vec<(&'static str, QuotaMatch)> {
        let one = |name: &Option<String>, default: bool, any: bool| match (name, default, any) {
            (Some(n), _, _) => Some(QuotaMatch::Exact(n.clone())),
            (None, true, _) => Some(QuotaMatch::Default),
            (None, false, true) => Some(QuotaMatch::Any),
            (None, false, false) => None,
        };
        [
            ("user", one(&self.user, self.user_defaults, self.user_any)),
            (
                "client-id",
                one(&self.client, self.client_defaults, self.client_any),
            ),
            ("ip", one(&self.ip, self.ip_defaults, self.ip_any)),
        ]
        .into_iter()
        .filter_map(|(t, m)| m.map(|m| (t, m)))
        .collect()
    }
}

#[derive(Debug, Subcommand)]
enum QuotaCommand {
    /// Show the quotas of the entities that match.
    Describe {
        #[command(flatten)]
        entity: EntityArgs,
        /// Only entities with no entity type besides those given.
        #[arg(long)]
        strict: bool,
    },
    /// Set or remove quotas of one entity.
    Alter {
        #[command(flatten)]
        entity: EntityArgs,
        /// Quotas to set, `KEY=VALUE` (producer_byte_rate, consumer_byte_rate,
        /// request_percentage, controller_mutation_rate; connection_creation_rate for an ip).
        /// Repeatable or comma-separated.
        #[arg(long = "add-config", value_name = "KEY=VALUE", value_delimiter = ',')]
        add: Vec<String>,
        /// Quotas to remove. Repeatable or comma-separated.
        #[arg(long = "delete-config", value_name = "KEY", value_delimiter = ',')]
        delete: Vec<String>,
        /// Have the broker check the change without making it.
        #[arg(long)]
        validate_only: bool,
    },
}

/// Runs one `starling quota` command, printing its output on stdout. A failure is printed as
/// one `error: ...` line on stderr and ends the process with exit status 1.
pub async fn run(args: QuotaArgs) -> anyhow::Result<()> {
    match execute(args).await {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

async fn execute(args: QuotaArgs) -> anyhow::Result<()> {
    match args.command {
        QuotaCommand::Describe { entity, strict } => {
            let filter: Vec<QuotaFilter> = entity
                .components()
                .into_iter()
                .map(|(t, matching)| QuotaFilter {
                    entity_type: t.to_string(),
                    matching,
                })
                .collect();
            let mut client = args.broker.connect.connect().await?;
            let entries = client.describe_client_quotas(&filter, strict).await?;
            print!("{}", render_describe(&entries, args.broker.json));
        }
        QuotaCommand::Alter {
            entity,
            add,
            delete,
            validate_only,
        } => {
            let mut target: QuotaEntity = Vec::new();
            for (t, m) in entity.components() {
                target.push(match m {
                    QuotaMatch::Exact(name) => (t.to_string(), Some(name)),
                    QuotaMatch::Default => (t.to_string(), None),
                    QuotaMatch::Any => bail!("--{t}-any only applies to describe"),
                });
            }
            let ops = parse_ops(&add, &delete)?;
            if ops.is_empty() {
                bail!("nothing to alter: give --add-config KEY=VALUE and/or --delete-config KEY");
            }
            let mut client = args.broker.connect.connect().await?;
            let results = client
                .alter_client_quotas(
                    &[QuotaAlteration {
                        entity: target,
                        ops,
                    }],
                    validate_only,
                )
                .await?;
            print!(
                "{}",
                render_alter(&results, validate_only, args.broker.json)
            );
            let failed: Vec<String> = results
                .iter()
                .filter_map(|(e, r)| {
                    r.as_ref()
                        .err()
                        .map(|err| format!("{}: {err}", entity_name(e)))
                })
                .collect();
            if !failed.is_empty() {
                bail!("cannot alter the quotas of {}", failed.join("; "));
            }
        }
    }
    Ok(())
}

fn parse_ops(add: &[String], delete: &[String]) -> anyhow::Result<Vec<(String, Option<f64>)>> {
    let mut ops = Vec::new();
    for a in add {
        let (key, value) = a
            .split_once('=')
            .with_context(|| format!("--add-config {a:?}: expected KEY=VALUE"))?;
        let value: f64 = value
            .trim()
            .parse()
            .with_context(|| format!("--add-config {a:?}: {value:?} is not a number"))?;
        ops.push((key.trim().to_string(), Some(value)));
    }
    for key in delete {
        ops.push((key.trim().to_string(), None));
    }
    Ok(ops)
}

/// `user=alice, client-id=<default>`.
fn entity_name(entity: &QuotaEntity) -> String {
    let mut parts: Vec<(usize, String)> = entity
        .iter()
        .map(|(t, n)| {
            let order = ["user", "client-id", "ip"]
                .iter()
                .position(|k| k == t)
                .unwrap_or(3);
            (
                order,
                format!("{t}={}", n.as_deref().unwrap_or("<default>")),
            )
        })
        .collect();
    parts.sort();
    parts
        .into_iter()
        .map(|(_, p)| p)
        .collect::<Vec<_>>()
        .join(", ")
}

fn entity_json(entity: &QuotaEntity) -> serde_json::Value {
    serde_json::Value::Object(entity.iter().map(|(t, n)| (t.clone(), json!(n))).collect())
}

/// A quota value as Kafka prints it: whole numbers without a fraction.
fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        v.to_string()
    }
}

fn pretty(value: serde_json::Value) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(&value).expect("JSON values serialize")
    )
}

fn render_describe(entries: &[ClientQuotaEntry], as_json: bool) -> String {
    if as_json {
        return pretty(json!(entries
            .iter()
            .map(|e| json!({ "entity": entity_json(&e.entity), "quotas": e.values }))
            .collect::<Vec<_>>()));
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .flat_map(|e| {
            e.values
                .iter()
                .map(|(k, v)| vec![entity_name(&e.entity), k.clone(), format_value(*v)])
        })
        .collect();
    render_table(&["ENTITY", "QUOTA", "VALUE"], &rows)
}

fn render_alter(results: &[QuotaAlterResult], validate_only: bool, as_json: bool) -> String {
    if as_json {
        return pretty(json!(results
            .iter()
            .map(|(e, r)| match r {
                Ok(()) => json!({ "entity": entity_json(e), "error": null, "message": null }),
                Err(err) => json!({
                    "entity": entity_json(e),
                    "error": starling_client::error_name(err.error),
                    "message": err.message,
                }),
            })
            .collect::<Vec<_>>()));
    }
    let done = if validate_only { "valid" } else { "altered" };
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(e, r)| {
            vec![
                entity_name(e),
                match r {
                    Ok(()) => done.to_string(),
                    Err(err) => err.to_string(),
                },
            ]
        })
        .collect();
    render_table(&["ENTITY", "RESULT"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_print_in_kafkas_type_order_with_defaults_named() {
        let e: QuotaEntity = vec![
            ("client-id".into(), Some("app".into())),
            ("user".into(), None),
        ];
        assert_eq!(entity_name(&e), "user=<default>, client-id=app");
    }

    #[test]
    fn describe_prints_one_row_per_quota_and_json_keeps_null_defaults() {
        let entries = vec![ClientQuotaEntry {
            entity: vec![("client-id".into(), None)],
            values: [
                ("producer_byte_rate".to_string(), 1024.0),
                ("request_percentage".to_string(), 12.5),
            ]
            .into(),
        }];
        assert_eq!(
            render_describe(&entries, false),
            "ENTITY               QUOTA               VALUE\n\
             client-id=<default>  producer_byte_rate  1024\n\
             client-id=<default>  request_percentage  12.5\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_describe(&entries, true)).unwrap();
        assert_eq!(json[0]["entity"]["client-id"], serde_json::Value::Null);
        assert_eq!(json[0]["quotas"]["producer_byte_rate"], 1024.0);
    }

    #[test]
    fn add_and_delete_configs_parse_into_ops_and_bad_numbers_are_refused() {
        let ops = parse_ops(
            &[
                "producer_byte_rate=1024".into(),
                "request_percentage = 2.5".into(),
            ],
            &["consumer_byte_rate".into()],
        )
        .unwrap();
        assert_eq!(
            ops,
            vec![
                ("producer_byte_rate".into(), Some(1024.0)),
                ("request_percentage".into(), Some(2.5)),
                ("consumer_byte_rate".into(), None),
            ]
        );
        assert!(parse_ops(&["producer_byte_rate".into()], &[]).is_err());
        assert!(parse_ops(&["producer_byte_rate=fast".into()], &[]).is_err());
    }
}
