//! `starling topic ...` and `starling cluster info`: manage topics and look at the cluster on
//! any Kafka-compatible broker, in the spirit of `rpk topic` and `rpk cluster info`.
//!
//! * `topic create NAME [-p PARTITIONS] [-r REPLICAS] [-c key=value ...]` (CreateTopics).
//! * `topic list`: topics with their partition count (Metadata).
//! * `topic describe NAME`: per partition the leader, log start and log end offsets
//!   (Metadata, ListOffsets); the topic's configs when the broker serves DescribeConfigs.
//! * `topic alter-config NAME [--set k=v] [--delete k] [--append k=v] [--subtract k=v]
//!   [--dry-run]`: change configs one key at a time (IncrementalAlterConfigs).
//! * `topic delete NAME...` (DeleteTopics).
//! * `topic trim NAME --partition P --offset O`: move the log start offset (DeleteRecords).
//! * `cluster info`: cluster id, controller and brokers (Metadata).
//!
//! A table by default, `--json` for scripts. Failures print one `error: ...` line on stderr
//! and end with exit status 1.

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;
use starling_client::{
    ApiKey, Client, ConfigChange, ConfigOp, NewTopic, OffsetSpec, ResponseError, TopicPartition,
};

use crate::group_cli::render_table;

/// The options every command that talks to a broker takes, for any of its subcommands.
#[derive(Debug, clap::Args)]
pub(crate) struct BrokerArgs {
    #[command(flatten)]
    pub connect: crate::connect_args::ConnectArgs,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct TopicArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        /// The topic name.
        name: String,
        /// Number of partitions [default: the broker's num.partitions].
        #[arg(short = 'p', long, allow_negative_numbers = true)]
        partitions: Option<i32>,
        /// Replication factor [default: the broker's default.replication.factor].
        #[arg(short = 'r', long, allow_negative_numbers = true)]
        replicas: Option<i16>,
        /// A topic config, e.g. `-c retention.ms=3600000`. Repeatable.
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// List topics with their partition counts.
    List {
        /// Include internal topics (__consumer_offsets, __transaction_state).
        #[arg(long)]
        internal: bool,
    },
    /// Show a topic's partitions (leader, log start and end offsets) and configs.
    Describe {
        /// The topic name.
        name: String,
    },
    /// Change a topic's configs (IncrementalAlterConfigs), like `kafka-configs --alter`.
    AlterConfig {
        /// The topic name.
        name: String,
        /// Set a config, e.g. `--set retention.ms=3600000`. Repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Remove a topic override, so the broker's default applies again. Repeatable.
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
        /// Add items to a list config, e.g. `--append cleanup.policy=compact`. Repeatable.
        #[arg(long = "append", value_name = "KEY=VALUE")]
        append: Vec<String>,
        /// Remove items from a list config. Repeatable.
        #[arg(long = "subtract", value_name = "KEY=VALUE")]
        subtract: Vec<String>,
        /// Have the broker check the changes without applying them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete topics.
    Delete {
        /// The topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Delete a partition's records below an offset (moves its log start offset).
    Trim {
        /// The topic name.
        name: String,
        /// The partition.
        #[arg(long)]
        partition: i32,
        /// The new log start offset; -1 for the log end offset (delete everything).
        #[arg(long, allow_negative_numbers = true)]
        offset: i64,
    },
}

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Cluster id, controller and brokers.
    Info,
    /// A cluster on PostgreSQL as its database says: the nodes, and which node leads each
    /// partition, coordinates each group and coordinates transactions (read from the database,
    /// not from a broker).
    Status {
        /// The cluster's database, as the nodes' `storage` (`postgres://user:password@host/db`).
        #[arg(long, value_name = "URL")]
        storage: String,
    },
}

/// Runs `starling topic ...`; a failure is one `error: ...` line and exit status 1.
pub async fn run(args: TopicArgs) -> anyhow::Result<()> {
    exit_on_error(topic(args).await)
}

/// Runs `starling cluster ...`; a failure is one `error: ...` line and exit status 1.
pub async fn run_cluster(args: ClusterArgs) -> anyhow::Result<()> {
    exit_on_error(cluster(args).await)
}

pub(crate) fn exit_on_error(result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn pretty(value: serde_json::Value) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(&value).expect("JSON values serialize")
    )
}

async fn topic(args: TopicArgs) -> anyhow::Result<()> {
    // Check what needs no broker before connecting.
    if let TopicCommand::Create {
        partitions: Some(p),
        ..
    } = &args.command
    {
        if *p < 1 {
            bail!("--partitions must be at least 1, got {p}");
        }
    }
    let mut client = args.broker.connect.connect().await?;
    let out = match args.command {
        TopicCommand::Create {
            name,
            partitions,
            replicas,
            configs,
        } => {
            create(
                &mut client,
                name,
                partitions,
                replicas,
                &configs,
                args.broker.json,
            )
            .await?
        }
        TopicCommand::List { internal } => list(&mut client, internal, args.broker.json).await?,
        TopicCommand::Describe { name } => describe(&mut client, &name, args.broker.json).await?,
        TopicCommand::AlterConfig {
            name,
            set,
            delete,
            append,
            subtract,
            dry_run,
        } => {
            let changes = config_changes(&set, &delete, &append, &subtract)?;
            alter_config(&mut client, &name, &changes, dry_run, args.broker.json).await?
        }
        TopicCommand::Delete { names } => delete(&mut client, &names, args.broker.json).await?,
        TopicCommand::Trim {
            name,
            partition,
            offset,
        } => trim(&mut client, &name, partition, offset, args.broker.json).await?,
    };
    print!("{out}");
    Ok(())
}

pub(crate) fn parse_key_value(item: &str, flag: &str) -> anyhow::Result<(String, String)> {
    match item.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => bail!("{flag} {item:?} is not of the form key=value"),
    }
}

async fn create(
    client: &mut Client,
    name: String,
    partitions: Option<i32>,
    replicas: Option<i16>,
    configs: &[String],
    as_json: bool,
) -> anyhow::Result<String> {
    let configs = configs
        .iter()
        .map(|c| parse_key_value(c, "--config"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let topic = NewTopic {
        name: name.clone(),
        partitions: partitions.unwrap_or(-1),
        replication_factor: replicas.unwrap_or(-1),
        configs,
    };
    let results = client.create_topics(&[topic], false).await?;
    for (topic, outcome) in results {
        if let Err(e) = outcome {
            bail!("cannot create topic '{topic}': {e}");
        }
    }
    // Report what the broker made of the defaults.
    let count = match client.metadata(Some(&[name.as_str()])).await {
        Ok(m) => m.topic(&name).map(|t| t.partitions.len()),
        Err(_) => None,
    };
    let count_text = count.map_or("-".to_string(), |c| c.to_string());
    Ok(if as_json {
        pretty(json!({ "topic": name, "created": true, "partitions": count }))
    } else {
        render_table(
            &["TOPIC", "PARTITIONS", "STATUS"],
            &[vec![name, count_text, "created".to_string()]],
        )
    })
}

/// The changes `topic alter-config` asks for, in the order of the flags' kinds.
fn config_changes(
    set: &[String],
    delete: &[String],
    append: &[String],
    subtract: &[String],
) -> anyhow::Result<Vec<ConfigChange>> {
    let mut changes = Vec::new();
    for (items, op, flag) in [
        (set, ConfigOp::Set, "--set"),
        (append, ConfigOp::Append, "--append"),
        (subtract, ConfigOp::Subtract, "--subtract"),
    ] {
        for item in items {
            let (name, value) = parse_key_value(item, flag)?;
            changes.push(ConfigChange {
                name,
                op,
                value: Some(value),
            });
        }
    }
    for name in delete {
        if name.trim().is_empty() || name.contains('=') {
            bail!("--delete takes a config name, not {name:?}");
        }
        changes.push(ConfigChange {
            name: name.trim().to_string(),
            op: ConfigOp::Delete,
            value: None,
        });
    }
    if changes.is_empty() {
        bail!("nothing to change: give --set, --delete, --append or --subtract");
    }
    Ok(changes)
}

async fn alter_config(
    client: &mut Client,
    name: &str,
    changes: &[ConfigChange],
    dry_run: bool,
    as_json: bool,
) -> anyhow::Result<String> {
    client.alter_topic_configs(name, changes, dry_run).await?;
    let status = if dry_run { "valid" } else { "changed" };
    let op_name = |op: ConfigOp| match op {
        ConfigOp::Set => "set",
        ConfigOp::Delete => "delete",
        ConfigOp::Append => "append",
        ConfigOp::Subtract => "subtract",
    };
    Ok(if as_json {
        pretty(json!({
            "topic": name,
            "applied": !dry_run,
            "changes": changes
                .iter()
                .map(|c| json!({"config": c.name, "op": op_name(c.op), "value": c.value}))
                .collect::<Vec<_>>(),
        }))
    } else {
        let rows: Vec<Vec<String>> = changes
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    op_name(c.op).to_string(),
                    c.value.clone().unwrap_or_else(|| "-".into()),
                    status.to_string(),
                ]
            })
            .collect();
        render_table(&["CONFIG", "OP", "VALUE", "STATUS"], &rows)
    })
}

async fn list(client: &mut Client, internal: bool, as_json: bool) -> anyhow::Result<String> {
    let metadata = client.metadata(None).await?;
    let mut topics: Vec<_> = metadata
        .topics
        .iter()
        .filter(|t| internal || !(t.is_internal || t.name.starts_with("__")))
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(if as_json {
        pretty(json!(topics
            .iter()
            .map(|t| json!({
                "topic": t.name,
                "partitions": t.partitions.len(),
                "internal": t.is_internal,
            }))
            .collect::<Vec<_>>()))
    } else {
        let rows: Vec<Vec<String>> = topics
            .iter()
            .map(|t| vec![t.name.clone(), t.partitions.len().to_string()])
            .collect();
        render_table(&["TOPIC", "PARTITIONS"], &rows)
    })
}

/// Metadata for one topic that must exist.
pub(crate) async fn existing_topic(
    client: &mut Client,
    name: &str,
) -> anyhow::Result<starling_client::TopicMetadata> {
    let metadata = client.metadata(Some(&[name])).await?;
    match metadata.topic(name) {
        None
        | Some(starling_client::TopicMetadata {
            error: Some(ResponseError::UnknownTopicOrPartition),
            ..
        }) => bail!("topic '{name}' does not exist"),
        Some(t) => match t.error {
            Some(e) => bail!("topic '{name}': {}", starling_client::describe_code(e)),
            None => Ok(t.clone()),
        },
    }
}

fn offset_text(r: Option<&Result<starling_client::ListedOffset, ResponseError>>) -> String {
    match r {
        Some(Ok(o)) => o.offset.to_string(),
        Some(Err(e)) => starling_client::error_name(*e),
        None => "-".to_string(),
    }
}

async fn describe(client: &mut Client, name: &str, as_json: bool) -> anyhow::Result<String> {
    let topic = existing_topic(client, name).await?;
    let tps: Vec<TopicPartition> = topic
        .partitions
        .iter()
        .map(|p| TopicPartition::new(name, p.partition))
        .collect();
    let start = client.list_offsets(&tps, OffsetSpec::Earliest).await?;
    let end = client.list_offsets(&tps, OffsetSpec::Latest).await?;
    let configs_served = client
        .bootstrap_connection()
        .broker_versions(ApiKey::DescribeConfigs)
        .is_some();
    let configs = if configs_served {
        match client.describe_topic_configs(name).await {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("warning: cannot read the configs of '{name}': {e}");
                None
            }
        }
    } else {
        None
    };
    if as_json {
        let partitions: Vec<_> = topic
            .partitions
            .iter()
            .zip(&tps)
            .map(|(p, tp)| {
                let num = |r: Option<&Result<starling_client::ListedOffset, ResponseError>>| match r
                {
                    Some(Ok(o)) => json!(o.offset),
                    Some(Err(e)) => json!({ "error": starling_client::error_name(*e) }),
                    None => json!(null),
                };
                json!({
                    "partition": p.partition,
                    "leader": p.leader,
                    "log_start_offset": num(start.get(tp)),
                    "log_end_offset": num(end.get(tp)),
                })
            })
            .collect();
        let configs = configs.as_ref().map(|cs| {
            cs.iter()
                .map(|c| (c.name.clone(), json!(c.value)))
                .collect::<serde_json::Map<_, _>>()
        });
        return Ok(pretty(json!({
            "topic": name,
            "internal": topic.is_internal,
            "partitions": partitions,
            "configs": configs,
        })));
    }
    let mut out = String::new();
    out.push_str(&format!("NAME        {name}\n"));
    out.push_str(&format!("PARTITIONS  {}\n", topic.partitions.len()));
    out.push('\n');
    let rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .zip(&tps)
        .map(|(p, tp)| {
            vec![
                p.partition.to_string(),
                p.leader.to_string(),
                offset_text(start.get(tp)),
                offset_text(end.get(tp)),
            ]
        })
        .collect();
    out.push_str(&render_table(
        &["PARTITION", "LEADER", "LOG-START", "LOG-END"],
        &rows,
    ));
    out.push('\n');
    match configs {
        Some(configs) => {
            let rows: Vec<Vec<String>> = configs
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.value.clone().unwrap_or_else(|| "-".to_string()),
                        c.source.clone(),
                    ]
                })
                .collect();
            out.push_str(&render_table(&["CONFIG", "VALUE", "SOURCE"], &rows));
        }
        None if !configs_served => {
            out.push_str("CONFIGS     (this broker does not serve DescribeConfigs)\n")
        }
        None => out.push_str("CONFIGS     (unavailable)\n"),
    }
    Ok(out)
}

async fn delete(client: &mut Client, names: &[String], as_json: bool) -> anyhow::Result<String> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let results = client.delete_topics(&refs).await?;
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for (topic, outcome) in &results {
        match outcome {
            Ok(()) => {
                rows.push(vec![topic.clone(), "deleted".to_string()]);
                items.push(json!({ "topic": topic, "deleted": true }));
            }
            Err(e) => {
                let text = if e.error == ResponseError::UnknownTopicOrPartition {
                    format!("topic '{topic}' does not exist")
                } else {
                    format!("cannot delete topic '{topic}': {e}")
                };
                rows.push(vec![topic.clone(), e.to_string()]);
                items.push(json!({ "topic": topic, "deleted": false, "error": text }));
                failures.push(text);
            }
        }
    }
    if !failures.is_empty() {
        // Say what did happen before failing.
        if failures.len() < results.len() {
            print!(
                "{}",
                if as_json {
                    pretty(json!(items))
                } else {
                    render_table(&["TOPIC", "STATUS"], &rows)
                }
            );
        }
        bail!("{}", failures.join("; "));
    }
    Ok(if as_json {
        pretty(json!(items))
    } else {
        render_table(&["TOPIC", "STATUS"], &rows)
    })
}

async fn trim(
    client: &mut Client,
    name: &str,
    partition: i32,
    offset: i64,
    as_json: bool,
) -> anyhow::Result<String> {
    let topic = existing_topic(client, name).await?;
    if !topic.partitions.iter().any(|p| p.partition == partition) {
        bail!(
            "topic '{name}' has no partition {partition} (it has {})",
            topic.partitions.len()
        );
    }
    let tp = TopicPartition::new(name, partition);
    let results = client.delete_records(&[(tp.clone(), offset)]).await?;
    let low = match results.get(&tp) {
        Some(Ok(low)) => *low,
        Some(Err(ResponseError::OffsetOutOfRange)) => {
            let end = client
                .list_offsets(std::slice::from_ref(&tp), OffsetSpec::Latest)
                .await?;
            let end = offset_text(end.get(&tp));
            bail!("cannot trim {tp} to offset {offset}: it is past the log end offset {end}")
        }
        Some(Err(e)) => bail!(
            "cannot trim {tp} to offset {offset}: {}",
            starling_client::describe_code(*e)
        ),
        None => bail!("cannot trim {tp}: the broker did not answer for it"),
    };
    Ok(if as_json {
        pretty(json!({ "topic": name, "partition": partition, "log_start_offset": low }))
    } else {
        render_table(
            &["TOPIC", "PARTITION", "LOG-START"],
            &[vec![
                name.to_string(),
                partition.to_string(),
                low.to_string(),
            ]],
        )
    })
}

async fn cluster(args: ClusterArgs) -> anyhow::Result<()> {
    if let ClusterCommand::Status { storage } = &args.command {
        return crate::cluster_status_cli::status(storage, args.broker.json).await;
    }
    let mut client = args.broker.connect.connect().await?;
    let info = client.cluster_info().await?;
    if args.broker.json {
        print!(
            "{}",
            pretty(json!({
                "cluster_id": info.cluster_id,
                "controller": info.controller_id,
                "brokers": info.brokers.iter().map(|b| json!({
                    "node_id": b.node_id, "host": b.host, "port": b.port,
                })).collect::<Vec<_>>(),
            }))
        );
        return Ok(());
    }
    println!("CLUSTER     {}", info.cluster_id.as_deref().unwrap_or("-"));
    println!("CONTROLLER  {}", info.controller_id);
    println!();
    let rows: Vec<Vec<String>> = info
        .brokers
        .iter()
        .map(|b| vec![b.node_id.to_string(), b.host.clone(), b.port.to_string()])
        .collect();
    print!("{}", render_table(&["BROKER", "HOST", "PORT"], &rows));
    Ok(())
}
