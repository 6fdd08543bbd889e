//! `starling txn ...`: find hanging transactions on any Kafka-compatible broker, in the spirit
//! of `kafka-transactions.sh` and `rpk cluster txn` (KIP-664's admin APIs, through
//! `starling-client`).
//!
//! * `list [--state S ...] [--producer-id N ...] [--duration-ms MS]`: every transactional id
//!   with its coordinator, producer id and state (ListTransactions to every broker).
//! * `describe ID`: its coordinator, producer id and epoch, state, timeout, when the
//!   transaction began and how long it has run, and its partitions (DescribeTransactions).
//! * `producers TOPIC [--partition N ...]`: the producers each partition remembers, with the
//!   first offset of their open transaction there (DescribeProducers).
//!
//! A table by default; `--json` prints the same as JSON (as `starling group rebalances --json`
//! does). Failures end with a non-zero exit.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;
use starling_client::transactions::{
    PartitionProducers, TransactionDescription, TransactionFilter, TransactionListing,
};
use starling_client::{describe_code, TopicPartition};

use crate::group_cli::{format_partitions, render_table};
use crate::topic_cli::BrokerArgs;

#[derive(Debug, clap::Args)]
pub struct TxnArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(subcommand)]
    command: TxnCommand,
}

#[derive(Debug, Subcommand)]
enum TxnCommand {
    /// List transactional ids with their coordinator, producer id and state.
    List {
        /// Only ids in this state (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit,
        /// CompleteAbort). Repeatable or comma-separated.
        #[arg(long = "state", value_name = "STATE", value_delimiter = ',')]
        states: Vec<String>,
        /// Only ids held by this producer id. Repeatable or comma-separated.
        #[arg(long = "producer-id", value_name = "ID", value_delimiter = ',')]
        producer_ids: Vec<i64>,
        /// Only transactions running longer than this many milliseconds (needs a broker with
        /// ListTransactions v1+, Kafka 3.8+).
        #[arg(long, value_name = "MS")]
        duration_ms: Option<i64>,
    },
    /// Show a transactional id's state, producer, timeout, start and partitions.
    Describe {
        /// The transactional id.
        transactional_id: String,
    },
    /// Show the producers each partition of a topic remembers, and their open transactions.
    Producers {
        /// The topic.
        topic: String,
        /// Only this partition (repeatable or comma-separated; default: every partition).
        #[arg(long = "partition", value_name = "N", value_delimiter = ',')]
        partitions: Vec<i32>,
    },
}

/// Kafka's transaction state names, for case-insensitive input.
const KNOWN_STATES: &[&str] = &[
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "PrepareEpochFence",
    "Dead",
];

/// The states in which a transaction is running (it has a duration).
const RUNNING_STATES: &[&str] = &["Ongoing", "PrepareCommit", "PrepareAbort"];

/// Runs one `starling txn` command, printing its output on stdout. A failure is printed as one
/// `error: ...` line on stderr and ends the process with exit status 1.
pub async fn run(args: TxnArgs) -> anyhow::Result<()> {
    match execute(args).await {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

async fn execute(args: TxnArgs) -> anyhow::Result<()> {
    let mut client = args.broker.connect.connect().await?;
    match args.command {
        TxnCommand::List {
            states,
            producer_ids,
            duration_ms,
        } => {
            let filter = TransactionFilter {
                states: states.iter().map(|s| canonical_state(s)).collect(),
                producer_ids,
                min_duration_ms: duration_ms,
            };
            let listing = client.list_transactions(&filter).await?;
            if !listing.unknown_state_filters.is_empty() {
                eprintln!(
                    "warning: unknown state filter(s) {}; the states are {}",
                    listing.unknown_state_filters.join(", "),
                    KNOWN_STATES.join(", ")
                );
            }
            print!("{}", render_list(&listing, args.broker.json));
        }
        TxnCommand::Describe { transactional_id } => {
            let d = client.describe_transaction(&transactional_id).await?;
            print!("{}", render_describe(&d, now_ms(), args.broker.json));
        }
        TxnCommand::Producers { topic, partitions } => {
            let wanted = (!partitions.is_empty()).then_some(partitions.as_slice());
            let producers = client.describe_producers(&topic, wanted).await?;
            print!("{}", render_producers(&producers, args.broker.json));
            let failed: Vec<String> = producers
                .iter()
                .filter_map(|p| {
                    p.result
                        .as_ref()
                        .err()
                        .map(|e| format!("{}: {}", p.partition, describe_code(*e)))
                })
                .collect();
            if !failed.is_empty() {
                bail!("cannot describe the producers of {}", failed.join(", "));
            }
        }
    }
    Ok(())
}

fn canonical_state(s: &str) -> String {
    let s = s.trim();
    KNOWN_STATES
        .iter()
        .find(|k| k.eq_ignore_ascii_case(s))
        .map(|k| k.to_string())
        .unwrap_or_else(|| s.to_string())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `-` for Kafka's "none" values (-1).
fn or_dash(v: i64) -> String {
    if v < 0 {
        "-".to_string()
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

fn render_list(listing: &TransactionListing, as_json: bool) -> String {
    if as_json {
        return pretty(json!(listing
            .transactions
            .iter()
            .map(|t| json!({
                "transactional_id": t.transactional_id,
                "coordinator": t.coordinator.node_id,
                "producer_id": t.producer_id,
                "state": t.state,
            }))
            .collect::<Vec<_>>()));
    }
    let rows: Vec<Vec<String>> = listing
        .transactions
        .iter()
        .map(|t| {
            vec![
                t.transactional_id.clone(),
                t.coordinator.node_id.to_string(),
                t.producer_id.to_string(),
                t.state.clone(),
            ]
        })
        .collect();
    render_table(
        &["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"],
        &rows,
    )
}

/// How long the transaction has been running at `now_ms`, if it is running.
fn duration_ms(d: &TransactionDescription, now_ms: i64) -> Option<i64> {
    (RUNNING_STATES.contains(&d.state.as_str()) && d.start_time_ms >= 0)
        .then(|| now_ms.saturating_sub(d.start_time_ms).max(0))
}

fn render_describe(d: &TransactionDescription, now_ms: i64, as_json: bool) -> String {
    let duration = duration_ms(d, now_ms);
    if as_json {
        return pretty(json!({
            "transactional_id": d.transactional_id,
            "coordinator": d.coordinator.node_id,
            "producer_id": d.producer_id,
            "producer_epoch": d.producer_epoch,
            "state": d.state,
            "timeout_ms": d.timeout_ms,
            "start_time_ms": (d.start_time_ms >= 0).then_some(d.start_time_ms),
            "duration_ms": duration,
            "partitions": d.partitions.iter().map(|tp| json!({
                "topic": tp.topic,
                "partition": tp.partition,
            })).collect::<Vec<_>>(),
        }));
    }
    let row = vec![
        d.coordinator.node_id.to_string(),
        d.transactional_id.clone(),
        d.producer_id.to_string(),
        d.producer_epoch.to_string(),
        d.state.clone(),
        d.timeout_ms.to_string(),
        or_dash(d.start_time_ms),
        duration.map_or_else(|| "-".to_string(), |ms| ms.to_string()),
        format_partitions(&d.partitions),
    ];
    render_table(
        &[
            "COORDINATOR",
            "TRANSACTIONAL-ID",
            "PRODUCER-ID",
            "PRODUCER-EPOCH",
            "STATE",
            "TIMEOUT-MS",
            "START-TIME-MS",
            "DURATION-MS",
            "PARTITIONS",
        ],
        &[row],
    )
}

fn render_producers(partitions: &[PartitionProducers], as_json: bool) -> String {
    if as_json {
        return pretty(json!(partitions
            .iter()
            .map(|p| {
                let TopicPartition { topic, partition } = &p.partition;
                match &p.result {
                    Ok(producers) => json!({
                        "topic": topic,
                        "partition": partition,
                        "producers": producers.iter().map(|s| json!({
                            "producer_id": s.producer_id,
                            "producer_epoch": s.producer_epoch,
                            "last_sequence": s.last_sequence,
                            "last_timestamp": s.last_timestamp,
                            "coordinator_epoch": s.coordinator_epoch,
                            "current_txn_start_offset":
                                (s.current_txn_start_offset >= 0)
                                    .then_some(s.current_txn_start_offset),
                        })).collect::<Vec<_>>(),
                    }),
                    Err(e) => json!({
                        "topic": topic,
                        "partition": partition,
                        "error": describe_code(*e),
                    }),
                }
            })
            .collect::<Vec<_>>()));
    }
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .filter_map(|p| p.result.as_ref().ok().map(|ps| (p.partition.partition, ps)))
        .flat_map(|(partition, producers)| {
            producers.iter().map(move |s| {
                vec![
                    partition.to_string(),
                    s.producer_id.to_string(),
                    s.producer_epoch.to_string(),
                    or_dash(i64::from(s.coordinator_epoch)),
                    or_dash(i64::from(s.last_sequence)),
                    or_dash(s.last_timestamp),
                    or_dash(s.current_txn_start_offset),
                ]
            })
        })
        .collect();
    render_table(
        &[
            "PARTITION",
            "PRODUCER-ID",
            "PRODUCER-EPOCH",
            "LATEST-COORDINATOR-EPOCH",
            "LAST-SEQUENCE",
            "LAST-TIMESTAMP",
            "CURRENT-TXN-START-OFFSET",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use starling_client::transactions::{ListedTransaction, ProducerDescription};
    use starling_client::{Broker, ResponseError};

    use super::*;

    fn broker() -> Broker {
        Broker {
            node_id: 0,
            host: "127.0.0.1".into(),
            port: 9092,
        }
    }

    fn description(state: &str, start_time_ms: i64) -> TransactionDescription {
        TransactionDescription {
            transactional_id: "app".into(),
            coordinator: broker(),
            state: state.into(),
            producer_id: 12,
            producer_epoch: 3,
            timeout_ms: 60_000,
            start_time_ms,
            partitions: vec![
                TopicPartition::new("orders", 0),
                TopicPartition::new("orders", 1),
            ],
        }
    }

    #[test]
    fn state_names_are_matched_case_insensitively() {
        assert_eq!(canonical_state("ongoing"), "Ongoing");
        assert_eq!(canonical_state(" COMPLETECOMMIT "), "CompleteCommit");
        assert_eq!(canonical_state("bogus"), "bogus");
    }

    #[test]
    fn a_running_transaction_shows_its_duration_and_partitions() {
        let out = render_describe(&description("Ongoing", 1_000), 4_500, false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            vec![
                "0",
                "app",
                "12",
                "3",
                "Ongoing",
                "60000",
                "1000",
                "3500",
                "orders:0,1"
            ]
        );
    }

    #[test]
    fn a_completed_transaction_has_no_duration() {
        let out = render_describe(&description("CompleteCommit", 1_000), 4_500, false);
        let cells: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(cells[4], "CompleteCommit");
        assert_eq!(cells[7], "-");
        let json: serde_json::Value =
            serde_json::from_str(&render_describe(&description("Empty", -1), 4_500, true)).unwrap();
        assert_eq!(json["start_time_ms"], serde_json::Value::Null);
        assert_eq!(json["duration_ms"], serde_json::Value::Null);
        assert_eq!(json["partitions"][1]["partition"], 1);
    }

    #[test]
    fn producers_show_minus_one_as_a_dash_and_skip_failed_partitions() {
        let producer = ProducerDescription {
            producer_id: 12,
            producer_epoch: 3,
            last_sequence: 9,
            last_timestamp: 1_700,
            coordinator_epoch: -1,
            current_txn_start_offset: 40,
        };
        let partitions = vec![
            PartitionProducers {
                partition: TopicPartition::new("orders", 0),
                result: Ok(vec![producer]),
            },
            PartitionProducers {
                partition: TopicPartition::new("orders", 9),
                result: Err(ResponseError::UnknownTopicOrPartition),
            },
        ];
        let out = render_producers(&partitions, false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(cells, vec!["0", "12", "3", "-", "9", "1700", "40"]);
        let json: serde_json::Value =
            serde_json::from_str(&render_producers(&partitions, true)).unwrap();
        assert_eq!(json[0]["producers"][0]["current_txn_start_offset"], 40);
        assert_eq!(json[1]["error"], "UNKNOWN_TOPIC_OR_PARTITION (3)");
    }

    #[test]
    fn the_list_has_one_row_per_transactional_id() {
        let listing = TransactionListing {
            transactions: vec![ListedTransaction {
                transactional_id: "app".into(),
                coordinator: broker(),
                producer_id: 12,
                state: "Ongoing".into(),
            }],
            unknown_state_filters: Vec::new(),
        };
        let out = render_list(&listing, false);
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            vec![
                "TRANSACTIONAL-ID  COORDINATOR  PRODUCER-ID  STATE",
                "app               0            12           Ongoing",
            ]
        );
        let json: serde_json::Value = serde_json::from_str(&render_list(&listing, true)).unwrap();
        assert_eq!(json[0]["state"], "Ongoing");
    }
}
