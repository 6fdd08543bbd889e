//! `starling bench cluster`: produce and consume throughput on the embedded log and on
//! PostgreSQL with one node and with several, in one run, side by side.
//!
//! Each setup gets brokers the bench starts itself and, on PostgreSQL, a database of its own
//! created on the server `--storage` names (and dropped afterwards): N nodes with `node.id`
//! 1..N share it, the producer and the consumer bootstrap at all of them, and the measured
//! topic's partitions are spread over the nodes by the cluster itself. The setups take turns
//! `--rounds` times, so none always runs on a warmer machine than another.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::broker::Broker;
use crate::report::{median, Phase};
use crate::{client, run_consume, run_produce, unique_topic, CommonArgs, ConsumerArgs};

/// Arguments of `starling bench cluster`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
    /// A PostgreSQL server to measure on, as a URL of any database on it the user may create
    /// databases from (`postgres://user@host:port/postgres`): each setup gets a fresh
    /// database there, dropped at the end.
    #[arg(long, value_name = "URL")]
    pub storage: String,
    /// Cluster sizes to measure on PostgreSQL (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 3])]
    pub nodes: Vec<usize>,
    /// How many times each setup is measured.
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
}

/// One setup's figures.
struct Measured {
    setup: String,
    produce: Phase,
    consume: Phase,
}

/// Runs every setup `rounds` times and prints them side by side.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    if args.common.bootstrap.is_some() {
        bail!("bench cluster starts its own brokers: --bootstrap does not apply");
    }
    if args.nodes.contains(&0) || args.rounds == 0 {
        bail!("--nodes and --rounds must be at least 1");
    }
    let mut setups = vec![None];
    setups.extend(args.nodes.iter().map(|n| Some(*n)));
    let mut measured = Vec::new();
    for round in 0..args.rounds {
        // Each round starts one setup later, so none always runs first.
        for i in 0..setups.len() {
            let nodes = setups[(i + round as usize) % setups.len()];
            let m = measure(&args, nodes).await?;
            eprintln!(
                "{}: produce {:.1} MB/s, consume {:.1} MB/s",
                m.setup,
                m.produce.mb_per_sec(),
                m.consume.mb_per_sec()
            );
            measured.push(m);
        }
    }
    print(&args, &measured);
    Ok(())
}

fn nodes_label(nodes: Option<usize>) -> String {
    match nodes {
        None => "embedded log".to_string(),
        Some(1) => "postgres, 1 node".to_string(),
        Some(n) => format!("postgres, {n} nodes"),
    }
}

/// Starts the setup's brokers, produces and consumes, stops them.
async fn measure(args: &ClusterArgs, nodes: Option<usize>) -> anyhow::Result<Measured> {
    let common = &args.common;
    let setup = nodes_label(nodes);
    let database = format!(
        "starling_bench_{}",
        unique_topic().replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    let mut brokers = Vec::new();
    let started: anyhow::Result<()> = async {
        match nodes {
            None => brokers.push(Broker::start(None, common.broker_overrides.clone()).await?),
            Some(n) => {
                let url = starling_postgres::create_database(&args.storage, &database)
                    .await
                    .context("creating the setup's database")?;
                for id in 1..=n {
                    let mut overrides = common.broker_overrides.clone();
                    overrides.push(format!("storage={url}"));
                    overrides.push(format!("node.id={id}"));
                    brokers.push(Broker::start(None, overrides).await?);
                }
            }
        }
        Ok(())
    }
    .await;
    let outcome = match started {
        Ok(()) => produce_and_consume(args, &brokers, &setup).await,
        Err(e) => Err(e),
    };
    for broker in brokers {
        if let Err(e) = broker.finish(Ok(())) {
            eprintln!("stopping a broker of {setup}: {e:#}");
        }
    }
    if nodes.is_some() {
        if let Err(e) = starling_postgres::drop_database(&args.storage, &database).await {
            eprintln!("dropping database {database}: {e}");
        }
    }
    outcome
}

async fn produce_and_consume(
    args: &ClusterArgs,
    brokers: &[Broker],
    setup: &str,
) -> anyhow::Result<Measured> {
    let common = &args.common;
    let bootstrap = brokers
        .iter()
        .map(|b| b.bootstrap().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let topic = unique_topic();
    let partitions = client::ensure_topic(&bootstrap, &topic, common.partitions).await?;
    wait_for_leaders(&bootstrap, &topic, partitions).await?;
    let settings = client::Settings {
        bootstrap,
        topic,
        size: common.size,
        compression: common.compression,
        acks: common.acks.clone(),
        stall: Duration::from_secs(common.stall_timeout.max(1)),
        producer_config: common.producer_config.clone(),
        consumer_config: args.consumer.consumer_config.clone(),
    };
    let produce = run_produce(&settings, partitions, common.messages, "produce")
        .await
        .with_context(|| format!("producing on {setup}"))?;
    let consume = run_consume(&settings, common.messages)
        .await
        .with_context(|| format!("consuming on {setup}"))?;
    Ok(Measured {
        setup: setup.to_string(),
        produce,
        consume,
    })
}

/// Waits until every partition of `topic` has a leader (on several nodes, each node takes its
/// share on its next round).
async fn wait_for_leaders(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let led = client::led_partitions(bootstrap, topic).await?;
        if led >= partitions {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{topic}: {led} of {partitions} partitions have a leader after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print(args: &ClusterArgs, measured: &[Measured]) {
    let common = &args.common;
    println!();
    println!(
        "starling bench cluster: {} messages x {} B, {} partitions, compression {}, acks {}, {} round(s)",
        common.messages,
        common.size,
        common.partitions,
        common.compression.as_str(),
        common.acks,
        args.rounds
    );
    println!();
    println!(
        "{:<22} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "setup", "produce MB/s", "msgs/s", "consume MB/s", "msgs/s", "produce ×", "consume ×"
    );
    println!("{}", "-".repeat(22 + 12 * 4 + 10 * 2 + 6));
    let embedded: Vec<&Measured> = measured
        .iter()
        .filter(|m| m.setup == nodes_label(None))
        .collect();
    // The embedded log is measured every round, so there is a median.
    let median_of = |rate: fn(&Measured) -> f64| -> f64 {
        let mut rates: Vec<f64> = embedded.iter().map(|m| rate(m)).collect();
        median(&mut rates).unwrap_or(f64::NAN)
    };
    let base_produce = median_of(|m| m.produce.mb_per_sec());
    let base_consume = median_of(|m| m.consume.mb_per_sec());
    for m in measured {
        println!(
            "{:<22} {:>12.1} {:>12.0} {:>12.1} {:>12.0} {:>10.2} {:>10.2}",
            m.setup,
            m.produce.mb_per_sec(),
            m.produce.messages_per_sec(),
            m.consume.mb_per_sec(),
            m.consume.messages_per_sec(),
            m.produce.mb_per_sec() / base_produce,
            m.consume.mb_per_sec() / base_consume,
        );
    }
    println!();
    println!("×: against the median of the embedded log's runs in this run");
}
