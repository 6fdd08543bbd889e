//! `starling bench console`: what the web console costs on a broker holding many groups and
//! partitions, end to end over HTTP, and whether it slows Kafka requests down.
//!
//! The bench starts its own broker and fills it: `--topics` topics whose partitions (5, 20,
//! 50 and 125 in turn) sum to 10,000 by default, `--records` records on every partition,
//! `--groups` groups with committed offsets on 10 partitions each, behind the end so each has
//! a lag, and one group (`bench-console-all`) with an offset on every partition. Then:
//!
//! 1. **Pages**: it asks for each console page (`/ui/`, the overview filtered and sorted, the
//!    large group's page by partition and by lag, the largest topic's page) `--requests`
//!    times in turn, and prints the mean, median, 99th percentile and largest answer time and
//!    the page's size. The budget is 100 ms a page.
//! 2. **The request path**: for `--secs` it sends OffsetFetch requests (answered by the group
//!    coordinator task, which the console also asks) and Metadata requests (which it does
//!    not) one after another and records each round trip; then again while `--pollers` loops
//!    fetch the overview and the large group's page (back to back, or every
//!    `--poll-interval-ms`). It prints both
//!    distributions and their ratio: how much a console left open on the busiest pages slows
//!    the clients down.
//!
//! Client and broker share the machine, so the second phase measures the console's whole
//! cost, HTTP and rendering included, not only its time on the coordinator task.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{GroupId, MetadataRequest, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use starling_client::{Client, Connection, NewTopic, Options, OutgoingRecord, TopicPartition};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::broker::Broker;

/// Arguments of `starling bench console`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// Topics to create; their partitions cycle through 5, 20, 50 and 125.
    #[arg(long, default_value_t = 200)]
    pub topics: usize,
    /// Groups with committed offsets on 10 partitions each.
    #[arg(long, default_value_t = 1000)]
    pub groups: usize,
    /// Records produced to every partition.
    #[arg(long, default_value_t = 20)]
    pub records: usize,
    /// Times each page is fetched.
    #[arg(long, default_value_t = 20)]
    pub requests: usize,
    /// Seconds of Kafka requests measured without, then with, the console busy.
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
    /// Loops fetching console pages during the second measurement.
    #[arg(long, default_value_t = 2)]
    pub pollers: usize,
    /// Milliseconds each poller waits between pages (0: back to back, the worst case; a
    /// browser on a console page asks every 5,000).
    #[arg(long, default_value_t = 0)]
    pub poll_interval_ms: u64,
    /// Broker property for the broker the bench starts (`KEY=VALUE`). Repeatable.
    #[arg(long = "broker-override", value_name = "KEY=VALUE")]
    pub broker_overrides: Vec<String>,
}

const PARTITION_CYCLE: [i32; 4] = [5, 20, 50, 125];
const LARGE_GROUP: &str = "bench-console-all";
const PARTITIONS_PER_GROUP: usize = 10;

fn topic_name(i: usize) -> String {
    format!("bench-console-{i:04}")
}

pub async fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    if args.topics == 0 || args.requests == 0 || args.secs <= 0.0 {
        bail!("--topics, --requests and --secs must be above zero");
    }
    let broker = Broker::start(None, args.broker_overrides.clone()).await?;
    let outcome = measure(&args, &broker).await;
    broker.finish(outcome)
}

async fn measure(args: &ConsoleArgs, broker: &Broker) -> anyhow::Result<()> {
    let admin = broker
        .admin()
        .context("the broker's admin endpoint")?
        .to_string();
    let options = Options {
        client_id: "bench-console".to_string(),
        ..Options::default()
    };
    let mut client = Client::connect(broker.bootstrap(), options.clone()).await?;
    let filled = Instant::now();
    let partitions = fill(&mut client, args).await?;
    println!(
        "{} topics, {} partitions, {} records each, {} groups + {LARGE_GROUP} ({} offsets) in {:.1} s",
        args.topics,
        partitions.len(),
        args.records,
        args.groups,
        partitions.len(),
        filled.elapsed().as_secs_f64()
    );

    // 1. Pages.
    let largest = (0..args.topics)
        .max_by_key(|&i| PARTITION_CYCLE[i % PARTITION_CYCLE.len()])
        .map(topic_name)
        .unwrap_or_default();
    let pages = [
        ("overview".to_string(), "/ui/".to_string()),
        (
            "overview, filtered, lag ↓, page 2".to_string(),
            "/ui/?q=bench&sort=lag&desc=1&page=1".to_string(),
        ),
        (
            format!("group, {} partitions", partitions.len()),
            format!("/ui/groups/{LARGE_GROUP}"),
        ),
        (
            "same group, by lag".to_string(),
            format!("/ui/groups/{LARGE_GROUP}?psort=lag"),
        ),
        (
            format!(
                "topic, {} partitions",
                PARTITION_CYCLE.iter().max().unwrap()
            ),
            format!("/ui/topics/{largest}"),
        ),
    ];
    println!();
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "page", "mean ms", "p50 ms", "p99 ms", "max ms", "size KiB"
    );
    for (label, path) in &pages {
        let mut times = Vec::with_capacity(args.requests);
        let mut size = 0;
        for _ in 0..args.requests {
            let started = Instant::now();
            size = get(&admin, path).await?;
            times.push(started.elapsed());
        }
        let s = Summary::of(&mut times);
        println!(
            "{:<36} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10.1}",
            label,
            s.mean,
            s.p50,
            s.p99,
            s.max,
            size as f64 / 1024.0
        );
    }

    // 2. The request path, with the console idle, then busy.
    let mut connection = Connection::connect(broker.bootstrap(), &options).await?;
    let window = Duration::from_secs_f64(args.secs);
    let idle = kafka_round_trips(&mut connection, window).await?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pollers = Vec::new();
    for i in 0..args.pollers {
        let (admin, stop) = (admin.clone(), stop.clone());
        let path = if i % 2 == 0 {
            "/ui/".to_string()
        } else {
            format!("/ui/groups/{LARGE_GROUP}")
        };
        let pause = Duration::from_millis(args.poll_interval_ms);
        pollers.push(tokio::spawn(async move {
            let mut served = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                get(&admin, &path).await?;
                served += 1;
                tokio::time::sleep(pause).await;
            }
            anyhow::Ok(served)
        }));
    }
    let busy_started = Instant::now();
    let busy = kafka_round_trips(&mut connection, window).await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut served = 0;
    for poller in pollers {
        served += poller.await.context("joining a console poller")??;
    }
    let pages_per_sec = served as f64 / busy_started.elapsed().as_secs_f64();
    println!();
    println!(
        "Kafka round trips, {:.0} s each, console idle vs {} pollers fetching the overview and the large group's page every {} ms ({pages_per_sec:.1} pages/s):",
        args.secs, args.pollers, args.poll_interval_ms
    );
    println!(
        "{:<34} {:>8} {:>9} {:>9} {:>9}",
        "request", "count", "p50 ms", "p99 ms", "max ms"
    );
    for (label, times) in [
        ("OffsetFetch (coordinator), idle", &idle.offset_fetch),
        ("OffsetFetch (coordinator), busy", &busy.offset_fetch),
        ("Metadata, idle", &idle.metadata),
        ("Metadata, busy", &busy.metadata),
    ] {
        let mut times = times.clone();
        let s = Summary::of(&mut times);
        println!(
            "{:<34} {:>8} {:>9.3} {:>9.3} {:>9.3}",
            label,
            times.len(),
            s.p50,
            s.p99,
            s.max
        );
    }
    let ratio = |busy: &[Duration], idle: &[Duration]| {
        let (mut b, mut i) = (busy.to_vec(), idle.to_vec());
        Summary::of(&mut b).p99 / Summary::of(&mut i).p99.max(1e-6)
    };
    println!(
        "p99 busy / idle: OffsetFetch {:.2}×, Metadata {:.2}×",
        ratio(&busy.offset_fetch, &idle.offset_fetch),
        ratio(&busy.metadata, &idle.metadata)
    );
    Ok(())
}

/// Creates the topics, produces to every partition and commits the groups' offsets; the
/// partitions.
async fn fill(client: &mut Client, args: &ConsoleArgs) -> anyhow::Result<Vec<TopicPartition>> {
    let topics: Vec<NewTopic> = (0..args.topics)
        .map(|i| NewTopic {
            name: topic_name(i),
            partitions: PARTITION_CYCLE[i % PARTITION_CYCLE.len()],
            replication_factor: -1,
            configs: Vec::new(),
        })
        .collect();
    for chunk in topics.chunks(50) {
        for (name, result) in client.create_topics(chunk, false).await? {
            result.map_err(|e| anyhow::anyhow!("creating {name}: {e:?}"))?;
        }
    }
    let partitions: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|t| {
            (0..t.partitions).map(|partition| TopicPartition {
                topic: t.name.clone(),
                partition,
            })
        })
        .collect();
    let records: Vec<OutgoingRecord> = (0..args.records.max(1))
        .map(|i| OutgoingRecord {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("{{\"n\":{i}}}"))),
            headers: Vec::new(),
            timestamp: now_ms(),
        })
        .collect();
    for tp in &partitions {
        client.produce(tp, &records, 1).await?;
    }
    let end = records.len() as i64;
    // Group i commits on 10 partitions starting at i * 10 (wrapping), each a few behind.
    for g in 0..args.groups {
        let offsets: Vec<(TopicPartition, i64)> = (0..PARTITIONS_PER_GROUP)
            .map(|k| {
                let tp = &partitions[(g * PARTITIONS_PER_GROUP + k) % partitions.len()];
                (tp.clone(), (end - ((g + k) % 7) as i64).max(0))
            })
            .collect();
        commit(client, &format!("bench-console-group-{g:05}"), &offsets).await?;
    }
    let all: Vec<(TopicPartition, i64)> = partitions
        .iter()
        .enumerate()
        .map(|(i, tp)| (tp.clone(), (end - (i % 13) as i64).max(0)))
        .collect();
    for chunk in all.chunks(2000) {
        commit(client, LARGE_GROUP, chunk).await?;
    }
    Ok(partitions)
}

async fn commit(
    client: &mut Client,
    group: &str,
    offsets: &[(TopicPartition, i64)],
) -> anyhow::Result<()> {
    for (tp, error) in client.offset_commit(group, offsets).await? {
        if let Some(error) = error {
            bail!(
                "committing {group} {}-{}: {error:?}",
                tp.topic,
                tp.partition
            );
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `GET path` from the admin endpoint as a browser asks; the body's size. Anything but a 200
/// is an error.
async fn get(admin: &str, path: &str) -> anyhow::Result<usize> {
    let mut stream = tokio::net::TcpStream::connect(admin)
        .await
        .with_context(|| format!("connecting to the admin endpoint {admin}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("GET {path}: no end of the HTTP header"))?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    if head.split_whitespace().nth(1) != Some("200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(raw.len() - head_end - 4)
}

/// Round trips of each kind, sent alternately.
struct RoundTrips {
    offset_fetch: Vec<Duration>,
    metadata: Vec<Duration>,
}

async fn kafka_round_trips(
    connection: &mut Connection,
    window: Duration,
) -> anyhow::Result<RoundTrips> {
    let offset_fetch =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_static_str(
                "bench-console-group-00000",
            )))
            .with_topics(None)]);
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic_name(0)))))]));
    let mut trips = RoundTrips {
        offset_fetch: Vec::new(),
        metadata: Vec::new(),
    };
    let started = Instant::now();
    while started.elapsed() < window {
        let sent = Instant::now();
        let response = connection.send(8, &offset_fetch).await?;
        trips.offset_fetch.push(sent.elapsed());
        if response.groups.first().map_or(-1, |g| g.error_code) != 0 {
            bail!("OffsetFetch failed: {response:?}");
        }
        let sent = Instant::now();
        connection.send(12, &metadata).await?;
        trips.metadata.push(sent.elapsed());
    }
    Ok(trips)
}

/// Milliseconds: mean, median, 99th percentile, largest.
struct Summary {
    mean: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

impl Summary {
    fn of(times: &mut [Duration]) -> Summary {
        if times.is_empty() {
            return Summary {
                mean: 0.0,
                p50: 0.0,
                p99: 0.0,
                max: 0.0,
            };
        }
        times.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| ms(times[((times.len() - 1) as f64 * q).round() as usize]);
        Summary {
            mean: times.iter().map(|&d| ms(d)).sum::<f64>() / times.len() as f64,
            p50: at(0.5),
            p99: at(0.99),
            max: ms(times[times.len() - 1]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_read_from_the_sorted_times() {
        let mut times: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = Summary::of(&mut times);
        assert_eq!(s.p50, 51.0);
        assert_eq!(s.p99, 99.0);
        assert_eq!(s.max, 100.0);
        assert_eq!(s.mean, 50.5);
        assert_eq!(Summary::of(&mut []).max, 0.0);
    }

    #[test]
    fn the_default_topics_hold_ten_thousand_partitions() {
        let sum: i32 = (0..200)
            .map(|i| PARTITION_CYCLE[i % PARTITION_CYCLE.len()])
            .sum();
        assert_eq!(sum, 10_000);
    }
}
