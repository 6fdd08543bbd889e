//! `starling bench heartbeat`: what one steady KIP-848 heartbeat costs the broker, which is
//! what `group.consumer.heartbeat.interval.ms` multiplies.
//!
//! The bench starts its own broker, creates a topic and lets `--members` members join one
//! consumer-protocol group over `--connections` connections (raw ConsumerGroupHeartbeat
//! requests, each member acting as a client would: it reports what it was assigned and gives up
//! what it is asked to revoke). Once every member is reconciled it measures the broker idle for
//! `--secs`, then, for each `--rates` value, sends steady heartbeats (epoch and owned partitions,
//! nothing changing) at that many per second for `--secs`, and reads the broker process's CPU
//! time (`/proc/PID/stat`) before and after. The CPU above the idle baseline divided by the
//! heartbeats sent is the cost of one heartbeat: decoding, the hop to the coordinator task, the
//! core's work and encoding, with the socket reads and writes.
//!
//! Each rate stands for an interval: `--members` members heartbeating every
//! `members / rate` seconds. The bench prints the shortest measured interval whose heartbeats
//! cost under 1% of a core above the idle broker.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as Owned;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, CreateTopicsRequest, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use starling_client::{Connection, Options};

use crate::broker::Broker;

/// Arguments of `starling bench heartbeat`.
#[derive(Debug, Clone, clap::Args)]
pub struct HeartbeatArgs {
    /// Members of the group.
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Partitions of the topic they subscribe to.
    #[arg(long, default_value_t = 1000)]
    pub partitions: i32,
    /// Connections the members share (round robin).
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Heartbeats per second to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "200,250,333,500,1000")]
    pub rates: Vec<u32>,
    /// Seconds measured per rate (and for the idle baseline).
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
    /// Broker property for the broker the bench starts (`KEY=VALUE`). Repeatable.
    #[arg(long = "broker-override", value_name = "KEY=VALUE")]
    pub broker_overrides: Vec<String>,
}

/// One simulated member.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    epoch: i32,
    owned: Vec<Owned>,
    /// The broker's last answer said it is reconciled (the steady interval).
    steady: bool,
}

const GROUP: &str = "bench-heartbeat";
const TOPIC: &str = "bench-heartbeat";

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

pub async fn run(args: HeartbeatArgs) -> anyhow::Result<()> {
    if args.members == 0 || args.connections == 0 || args.rates.is_empty() {
        bail!("--members, --connections and --rates must not be empty or zero");
    }
    let broker = Broker::start(None, args.broker_overrides.clone()).await?;
    let outcome = measure(&args, &broker).await;
    broker.finish(outcome)
}

async fn measure(args: &HeartbeatArgs, broker: &Broker) -> anyhow::Result<()> {
    let pid = broker.pid().context("the broker's pid")?;
    let options = Options {
        client_id: "bench-heartbeat".to_string(),
        ..Options::default()
    };
    let mut connections = Vec::new();
    for _ in 0..args.connections {
        connections.push(Connection::connect(broker.bootstrap(), &options).await?);
    }
    create_topic(&mut connections[0], args.partitions).await?;

    let mut members: Vec<Member> = (0..args.members)
        .map(|i| Member {
            id: format!("bench-member-{i:06}"),
            epoch: 0,
            owned: Vec::new(),
            steady: false,
        })
        .collect();
    // Join and reconcile: rounds of one heartbeat per member until every member is steady.
    let joined = Instant::now();
    for round in 0.. {
        if round == 50 {
            bail!("the group did not settle in 50 rounds");
        }
        let pending: Vec<usize> = (0..members.len()).filter(|&i| !members[i].steady).collect();
        if pending.is_empty() {
            break;
        }
        beat_all(&mut connections, &mut members, &pending).await?;
    }
    println!(
        "{} members joined and reconciled over {} connections in {:.1} s",
        members.len(),
        connections.len(),
        joined.elapsed().as_secs_f64()
    );

    let window = Duration::from_secs_f64(args.secs);
    let before = cpu_seconds(pid)?;
    tokio::time::sleep(window).await;
    let idle = (cpu_seconds(pid)? - before) / window.as_secs_f64();
    println!("broker idle: {:.2}% of a core", idle * 100.0);
    println!();
    println!(
        "{:>12} {:>12} {:>22} {:>16} {:>16} {:>18}",
        "target hb/s",
        "sent hb/s",
        "interval (N members)",
        "busy % of core",
        "µs per heartbeat",
        "heartbeats/s/core"
    );
    // (interval, heartbeats per second) of the fastest rate under 1% of a core.
    let mut shortest: Option<(f64, f64)> = None;
    let mut unmeasured = false;
    for &rate in &args.rates {
        let (sent, elapsed, cpu) =
            steady_load(&mut connections, &mut members, rate, window, pid).await?;
        let busy = (cpu - idle * elapsed).max(0.0);
        // The interval at which the group's members would send this many heartbeats.
        let interval_ms = 1000.0 * members.len() as f64 / (sent as f64 / elapsed);
        if cpu < MIN_TICKS * clock_tick_seconds() {
            // Too few clock ticks for a figure: say so rather than print a guess.
            unmeasured = true;
            println!(
                "{:>12} {:>12.0} {:>19.0} ms {:>16} {:>16} {:>18}",
                rate,
                sent as f64 / elapsed,
                interval_ms,
                "-",
                "-",
                "-"
            );
            continue;
        }
        let per_hb = busy / sent as f64;
        let busy_share = busy / elapsed;
        if busy_share < 0.01 && shortest.is_none_or(|(ms, _)| interval_ms < ms) {
            shortest = Some((interval_ms, sent as f64 / elapsed));
        }
        println!(
            "{:>12} {:>12.0} {:>19.0} ms {:>16.2} {:>16.1} {:>18.0}",
            rate,
            sent as f64 / elapsed,
            interval_ms,
            busy_share * 100.0,
            per_hb * 1e6,
            1.0 / per_hb.max(f64::MIN_POSITIVE)
        );
    }
    println!();
    if unmeasured {
        println!(
            "-: the broker used fewer than {MIN_TICKS} clock ticks of CPU in the window, too few to measure; use a longer --secs"
        );
    }
    match shortest {
        Some((ms, rate)) => println!(
            "the shortest measured interval whose heartbeats from {} members cost under 1% of a core: {ms:.0} ms \
             ({rate:.0} heartbeats/s: the budget for group.consumer.heartbeat.rate.budget)",
            members.len()
        ),
        None => println!("no measured rate stayed under 1% of a core"),
    }
    Ok(())
}

async fn create_topic(connection: &mut Connection, partitions: i32) -> anyhow::Result<()> {
    let mut request = CreateTopicsRequest::default();
    request.timeout_ms = 10_000;
    request.topics = vec![CreatableTopic::default()
        .with_name(TopicName(s(TOPIC)))
        .with_num_partitions(partitions)
        .with_replication_factor(1)];
    let response = connection.send(5, &request).await?;
    let code = response.topics.first().map_or(-1, |t| t.error_code);
    if code != 0 {
        bail!("CreateTopics failed with error code {code}");
    }
    Ok(())
}

/// The heartbeat `member` sends next (a join at epoch 0).
fn request_of(member: &Member) -> ConsumerGroupHeartbeatRequest {
    let mut r = ConsumerGroupHeartbeatRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.member_id = s(&member.id);
    r.member_epoch = member.epoch;
    if member.epoch == 0 {
        r.rebalance_timeout_ms = 300_000;
        r.subscribed_topic_names = Some(vec![TopicName(s(TOPIC))]);
    }
    r.topic_partitions = Some(member.owned.clone());
    r
}

/// One heartbeat from each of `which`, spread over the connections, taking in the answers.
async fn beat_all(
    connections: &mut [Connection],
    members: &mut [Member],
    which: &[usize],
) -> anyhow::Result<()> {
    let lanes = connections.len();
    let mut per_lane: Vec<Vec<usize>> = vec![Vec::new(); lanes];
    for (n, &i) in which.iter().enumerate() {
        per_lane[n % lanes].push(i);
    }
    let snapshot: Vec<Member> = members.to_vec();
    let tasks = connections
        .iter_mut()
        .zip(per_lane)
        .map(|(connection, idx)| {
            let snapshot = &snapshot;
            async move {
                let mut answers = Vec::new();
                for i in idx {
                    let response = connection.send(1, &request_of(&snapshot[i])).await?;
                    answers.push((i, response));
                }
                anyhow::Ok(answers)
            }
        });
    for answers in futures::future::try_join_all(tasks).await? {
        for (i, response) in answers {
            let m = &mut members[i];
            if response.error_code != 0 {
                bail!(
                    "{}: heartbeat error {}: {:?}",
                    m.id,
                    response.error_code,
                    response.error_message
                );
            }
            m.epoch = response.member_epoch;
            m.steady = response.heartbeat_interval_ms
                != starling_group::GroupConfig::default().consumer_pending_heartbeat_interval_ms
                && response.assignment.is_none();
            if let Some(assignment) = response.assignment {
                m.owned = assignment
                    .topic_partitions
                    .into_iter()
                    .map(|t| {
                        let mut o = Owned::default();
                        o.topic_id = t.topic_id;
                        o.partitions = t.partitions;
                        o
                    })
                    .collect();
            }
        }
    }
    Ok(())
}

/// Steady heartbeats at `rate` per second for `window`: (sent, seconds, broker CPU seconds).
async fn steady_load(
    connections: &mut [Connection],
    members: &mut [Member],
    rate: u32,
    window: Duration,
    pid: u32,
) -> anyhow::Result<(u64, f64, f64)> {
    let lanes = connections.len();
    let per_lane_interval = Duration::from_secs_f64(lanes as f64 / f64::from(rate.max(1)));
    let requests: Vec<ConsumerGroupHeartbeatRequest> = members.iter().map(request_of).collect();
    let cpu_before = cpu_seconds(pid)?;
    let started = Instant::now();
    let tasks = connections
        .iter_mut()
        .enumerate()
        .map(|(lane, connection)| {
            let requests = &requests;
            async move {
                let mut ticker = tokio::time::interval(per_lane_interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut sent = 0u64;
                let mut next = lane;
                while started.elapsed() < window {
                    ticker.tick().await;
                    let response = connection.send(1, &requests[next % requests.len()]).await?;
                    if response.error_code != 0 || response.assignment.is_some() {
                        bail!("a steady heartbeat changed something: {response:?}");
                    }
                    sent += 1;
                    next += lanes;
                }
                anyhow::Ok(sent)
            }
        });
    let sent: u64 = futures::future::try_join_all(tasks)
        .await?
        .into_iter()
        .sum();
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid)? - cpu_before;
    Ok((sent, elapsed, cpu))
}

/// A rate's CPU must span at least this many clock ticks to give a figure.
const MIN_TICKS: f64 = 20.0;

/// One clock tick of `/proc` CPU accounting, in seconds.
fn clock_tick_seconds() -> f64 {
    // SAFETY: sysconf has no preconditions.
    1.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The process's user + system CPU time, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(cpu_ticks(&stat)? * clock_tick_seconds())
}

/// utime + stime (fields 14 and 15 of `/proc/PID/stat`), in clock ticks.
fn cpu_ticks(stat: &str) -> anyhow::Result<f64> {
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name, the state is field 3: utime (14) and stime (15) are at 11 and 12.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i)
            .context("short /proc stat")?
            .parse::<f64>()
            .context("parsing /proc stat")
    };
    Ok(ticks(11)? + ticks(12)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_spaces_in_the_name() {
        let stat = "4242 (star ling) S 1 4242 4242 0 -1 4194560 900 0 0 0 170 33 0 0 20 0 9 0";
        assert_eq!(cpu_ticks(stat).unwrap(), 203.0);
        assert!(cpu_ticks("4242 (x) S 1").is_err());
    }

    #[test]
    fn this_process_stat_reads() {
        // Busy for a while so that at least one clock tick is counted.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(cpu_seconds(std::process::id()).unwrap() > 0.0);
    }
}
