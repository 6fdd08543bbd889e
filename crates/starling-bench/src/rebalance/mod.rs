//! `starling bench rebalance`: how long real librdkafka consumers stop while their group
//! rebalances, per scenario (scale-out, scale-in, crash, rolling restart) and strategy (eager,
//! cooperative, static, manual).
//!
//! Every (scenario, strategy) pair runs on a fresh topic and group against one broker. A
//! producer writes at a steady rate for the whole pair; each consumer polls in its own thread
//! and records every message and every rebalance callback on one shared clock. The figures
//! are computed afterwards from those records alone.
//!
//! | module | what lives there |
//! | --- | --- |
//! | [`plan`] | the scenarios and strategies |
//! | [`scenario`] | the driver of one pair: members, triggers, settling, draining |
//! | [`consumer`] | one member: its thread, callbacks, close and crash |
//! | [`producer`] | the steady-rate producer and the payload header |
//! | [`assignment`] | the even, sticky assignment the bench hands out for `manual` |
//! | [`trace`] | what a pair records |
//! | [`analysis`] | gaps, pauses, hand-overs, total time, duplicates and losses |
//! | [`svg`] | the timeline of a pair |
//! | [`output`] | the table and the JSON document |

mod analysis;
mod assignment;
mod consumer;
mod output;
mod plan;
mod producer;
mod scenario;
mod svg;
mod trace;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

pub use plan::{Scenario, Strategy};

use crate::broker::Broker;
use output::PairResult;
use scenario::PairConfig;
use trace::Clock;

/// Arguments of `starling bench rebalance`.
#[derive(Debug, Clone, clap::Args)]
pub struct RebalanceArgs {
    /// Broker to measure. Without it the bench starts its own broker (this same binary,
    /// `serve --listen 127.0.0.1:0`) on a temporary data directory and stops it at the end.
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap: Option<String>,
    /// Group members before the trigger.
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// Partitions of each pair's topic.
    #[arg(long, default_value_t = 12)]
    pub partitions: i32,
    /// Messages per second the producer writes, spread evenly over the partitions, for the
    /// whole run of each pair.
    #[arg(long, value_name = "MSGS_PER_SEC", default_value_t = 2000)]
    pub rate: u32,
    /// Payload bytes per message (at least 16: the sequence number and the send time).
    #[arg(long, value_name = "BYTES", default_value_t = 128)]
    pub size: usize,
    /// Consumer `session.timeout.ms`. 10000 was Kafka's client default before 3.0 (it is 45000
    /// since); the broker accepts 6000 and up unless `group.min.session.timeout.ms` is lowered.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub session_timeout_ms: u32,
    /// Consumer `heartbeat.interval.ms`: how soon a member hears of a rebalance. 3000 is the
    /// default of librdkafka and of the Java client.
    #[arg(long, value_name = "MS", default_value_t = 3_000)]
    pub heartbeat_interval_ms: u32,
    /// Consumer `max.poll.interval.ms`, which librdkafka also sends as the rebalance timeout.
    /// 300000 is librdkafka's default.
    #[arg(long, value_name = "MS", default_value_t = 300_000)]
    pub max_poll_interval_ms: u32,
    /// Consumer `auto.commit.interval.ms` (offsets are auto-committed; librdkafka's default).
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub commit_interval_ms: u32,
    /// Scenarios to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "scale-out,scale-in,crash,rolling-restart"
    )]
    pub scenarios: Vec<Scenario>,
    /// Strategies to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "eager,cooperative,static,manual,consumer,consumer-static"
    )]
    pub strategies: Vec<Strategy>,
    /// Seconds of steady state observed before the trigger.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub steady_secs: f64,
    /// Seconds observed after the group has settled (after each restart, for rolling-restart).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub settle_secs: f64,
    /// Also write every figure, with per-member, per-partition and per-event detail, as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Directory for the SVG timelines, one per pair (`SCENARIO-STRATEGY.svg`).
    #[arg(long, value_name = "DIR", default_value = "rebalance-timelines")]
    pub svg_dir: PathBuf,
    /// Broker property for the broker the bench starts itself, e.g.
    /// `group.initial.rebalance.delay.ms=0`. Repeatable.
    #[arg(long = "broker-override", value_name = "KEY=VALUE")]
    pub broker_overrides: Vec<String>,
    /// Extra librdkafka property for every consumer, e.g. `fetch.wait.max.ms=100`. Repeatable.
    /// `debug=cgrp,...` shows librdkafka's debug log with `RUST_LOG=librdkafka=debug`, each
    /// line stamped with the bench clock.
    #[arg(long = "consumer-config", value_name = "KEY=VALUE", value_parser = crate::parse_key_value)]
    pub consumer_config: Vec<(String, String)>,
}

impl RebalanceArgs {
    fn validate(&mut self) -> anyhow::Result<()> {
        dedup(&mut self.scenarios);
        dedup(&mut self.strategies);
        if self.members < 1 {
            bail!("--members must be at least 1");
        }
        for s in &self.scenarios {
            if self.members < s.min_members() {
                bail!(
                    "{} needs --members {} or more (a member must remain)",
                    s.name(),
                    s.min_members()
                );
            }
        }
        let needed = self.members + usize::from(self.scenarios.contains(&Scenario::ScaleOut));
        if self.partitions < 1 || (self.partitions as usize) < needed {
            bail!("--partitions must be at least {needed}, so that every member can own one");
        }
        if self.rate < 1 {
            bail!("--rate must be at least 1 message per second");
        }
        if self.size < producer::HEADER_LEN {
            bail!("--size must be at least {} bytes", producer::HEADER_LEN);
        }
        if self.heartbeat_interval_ms >= self.session_timeout_ms {
            bail!("--heartbeat-interval-ms must be below --session-timeout-ms");
        }
        if !(self.steady_secs >= 0.0 && self.settle_secs >= 0.0) {
            bail!("--steady-secs and --settle-secs must not be negative");
        }
        Ok(())
    }
}

fn dedup<T: PartialEq + Copy>(v: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::new();
    v.retain(|x| {
        let new = !seen.contains(x);
        seen.push(*x);
        new
    });
}

pub async fn run(mut args: RebalanceArgs) -> anyhow::Result<()> {
    args.validate()?;
    let clock = Clock::start();
    let broker = match &args.bootstrap {
        Some(addr) => Broker::external(addr.clone()),
        None => {
            let mut overrides = args.broker_overrides.clone();
            // The consumer protocol's session timeout is the broker's: the same as the classic
            // members' so a crash is detected as late in both (unless set explicitly).
            let set = |overrides: &[String], key: &str| {
                overrides.iter().any(|o| o.starts_with(&format!("{key}=")))
            };
            let session = "group.consumer.session.timeout.ms";
            if !set(&overrides, session) {
                overrides.push(format!("{session}={}", args.session_timeout_ms));
            }
            // The broker's steady heartbeat interval stays its own unless the session is too
            // short for it; then it is the classic members' interval.
            let heartbeat = "group.consumer.heartbeat.interval.ms";
            let broker_default =
                starling_group::GroupConfig::default().consumer_heartbeat_interval_ms;
            if !set(&overrides, heartbeat)
                && args.session_timeout_ms as i64 <= i64::from(broker_default)
            {
                overrides.push(format!("{heartbeat}={}", args.heartbeat_interval_ms));
            }
            Broker::start(None, overrides).await?
        }
    };
    let bootstrap = broker.bootstrap().to_string();
    let description = broker.description();
    let runtime = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        measure(&args, &bootstrap, &description, clock, &runtime)
    })
    .await
    .context("joining the rebalance bench")?;
    broker.finish(outcome)
}

fn measure(
    args: &RebalanceArgs,
    bootstrap: &str,
    broker: &str,
    clock: Clock,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = PairConfig {
        bootstrap: bootstrap.to_string(),
        members: args.members,
        partitions: args.partitions,
        rate: args.rate,
        size: args.size,
        session_timeout_ms: args.session_timeout_ms,
        heartbeat_interval_ms: args.heartbeat_interval_ms,
        max_poll_interval_ms: args.max_poll_interval_ms,
        commit_interval_ms: args.commit_interval_ms,
        steady: Duration::from_secs_f64(args.steady_secs),
        settle: Duration::from_secs_f64(args.settle_secs),
        consumer_config: args.consumer_config.clone(),
    };
    std::fs::create_dir_all(&args.svg_dir)
        .with_context(|| format!("creating --svg-dir {}", args.svg_dir.display()))?;

    let pairs: Vec<(Scenario, Strategy)> = args
        .scenarios
        .iter()
        .flat_map(|&sc| args.strategies.iter().map(move |&st| (sc, st)))
        .collect();
    let bar = ProgressBar::new(pairs.len() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {elapsed:>4} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix("rebalance");

    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    let subtitle = format!(
        "{} members, {} partitions, {} msg/s; session {} ms, heartbeat {} ms; librdkafka {librdkafka}",
        args.members,
        args.partitions,
        args.rate,
        args.session_timeout_ms,
        args.heartbeat_interval_ms
    );
    let mut results: Vec<PairResult> = Vec::new();
    let mut failures: Vec<(String, String)> = Vec::new();
    for (scenario, strategy) in pairs {
        let pair = format!("{}/{}", scenario.name(), strategy.name());
        let pair_started = Instant::now();
        let status = |s: &str| bar.set_message(format!("{pair}: {s}"));
        match scenario::run_pair(&config, scenario, strategy, clock, runtime, &status) {
            Ok(run) => {
                let figures = analysis::analyse(&run.trace);
                let path =
                    args.svg_dir
                        .join(format!("{}-{}.svg", scenario.name(), strategy.name()));
                let svg_text = svg::render(
                    &run.trace,
                    &figures,
                    &format!("{} / {}", scenario.name(), strategy.name()),
                    &subtitle,
                );
                let svg = match std::fs::write(&path, svg_text) {
                    Ok(()) => Some(path),
                    Err(e) => {
                        bar.suspend(|| eprintln!("writing {}: {e}", path.display()));
                        None
                    }
                };
                results.push(PairResult {
                    run,
                    figures,
                    svg,
                    seconds: pair_started.elapsed().as_secs_f64(),
                });
            }
            Err(e) => {
                bar.suspend(|| eprintln!("{pair} failed: {e:#}"));
                failures.push((pair, format!("{e:#}")));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();

    let heading = format!(
        "starling bench rebalance: {} members, {} partitions, {} msg/s x {} B; session {} ms, \
         heartbeat {} ms, max.poll {} ms, auto-commit every {} ms; librdkafka {librdkafka}\n\
         broker {bootstrap} ({broker}); {} pair(s) in {:.0} s; timelines in {}",
        args.members,
        args.partitions,
        args.rate,
        args.size,
        args.session_timeout_ms,
        args.heartbeat_interval_ms,
        args.max_poll_interval_ms,
        args.commit_interval_ms,
        results.len(),
        wall,
        args.svg_dir.display()
    );
    output::print_table(&results, &heading);
    for (pair, e) in &failures {
        println!("{pair}: FAILED: {e}");
    }

    if let Some(path) = &args.json {
        let doc = json!({
            "command": "rebalance",
            "config": {
                "members": args.members,
                "partitions": args.partitions,
                "rate": args.rate,
                "size": args.size,
                "session_timeout_ms": args.session_timeout_ms,
                "heartbeat_interval_ms": args.heartbeat_interval_ms,
                "max_poll_interval_ms": args.max_poll_interval_ms,
                "commit_interval_ms": args.commit_interval_ms,
                "steady_secs": args.steady_secs,
                "settle_secs": args.settle_secs,
                "consumer_config": args.consumer_config.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                "broker_overrides": args.broker_overrides,
                "bootstrap": bootstrap,
                "broker": broker,
                "librdkafka": librdkafka,
            },
            "wall_seconds": wall,
            "results": results.iter().map(output::pair_json).collect::<Vec<_>>(),
            "failures": failures.iter().map(|(p, e)| json!({"pair": p, "error": e})).collect::<Vec<_>>(),
        });
        let mut text = serde_json::to_string_pretty(&doc)?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("writing --json {}", path.display()))?;
    }

    let losses: usize = results.iter().map(|r| r.figures.losses).sum();
    if losses > 0 {
        bail!("{losses} acknowledged message(s) were never received");
    }
    if !failures.is_empty() {
        bail!("{} pair(s) failed", failures.len());
    }
    Ok(())
}
