//! `starling produce TOPIC` and `starling consume TOPIC`: write lines from stdin to a topic and
//! read records back, in the spirit of `kcat -P` / `kcat -C`, against any Kafka-compatible
//! broker.
//!
//! Produce reads stdin line by line: with `-k SEP` each line is `KEY SEP VALUE` (split at the
//! first SEP; a line without it is an error naming the line), `-H key=value` adds headers to
//! every record, `-p P` picks the partition (otherwise keyed records go where Kafka's default
//! partitioner puts them, murmur2 of the key, and keyless records round-robin), `-z CODEC`
//! compresses the batches (gzip, snappy, lz4, zstd). Records are sent in batches with acks=all,
//! plain Produce (no idempotence); a summary per partition ends the run. A progress bar shows on stderr when it is a terminal and the run is long.
//!
//! Consume reads each partition (or just `-p P`) from `-o beginning|end|OFFSET` or the first
//! offset at `--timestamp MS` (compressed batches decoded, whatever their codec), up to the end offset seen at the start (the last stable offset
//! under `--isolation read_committed`), or forever with `-f`; `-n COUNT` stops early. Partitions
//! are read one after another in partition order, so output is deterministic. `--format plain`
//! prints the value (with `-k SEP`: key SEP value), `--format json` one object per record.
//! With `-g GROUP` it consumes as a member of a classic consumer group instead (like
//! `kcat -G`): the group assigns the partitions, reading starts at the group's committed offsets
//! (`-o beginning|end` where there are none), and what was printed is committed as it goes and
//! at the end, before leaving the group.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use serde_json::json;
use starling_client::{
    Client, Compression, GroupMember, Heartbeat, Isolation, OffsetSpec, OutgoingRecord,
    TopicPartition,
};

use crate::group_cli::render_table;
use crate::topic_cli::{existing_topic, exit_on_error, parse_key_value};

/// Records per Produce request.
const BATCH_RECORDS: usize = 500;
/// Bytes (keys plus values) per Produce request.
const BATCH_BYTES: usize = 512 * 1024;
/// Records after which a run counts as long enough for a progress bar.
const PROGRESS_AFTER: u64 = 10_000;

#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// The topic to produce to.
    topic: String,
    #[command(flatten)]
    connect: crate::connect_args::ConnectArgs,
    /// Split each line into key and value at the first SEP.
    #[arg(short = 'k', long = "key-separator", value_name = "SEP")]
    key_separator: Option<String>,
    /// A header added to every record. Repeatable.
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Produce every record to this partition.
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Compress the batches with this codec.
    #[arg(short = 'z', long, value_enum, default_value = "none")]
    compression: CompressionArg,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(arg: CompressionArg) -> Compression {
        match arg {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Plain,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum IsolationArg {
    ReadCommitted,
    ReadUncommitted,
}

#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// The topic to consume.
    topic: String,
    #[command(flatten)]
    connect: crate::connect_args::ConnectArgs,
    /// Where to start: beginning, end, or an offset (in every partition read).
    #[arg(
        short = 'o',
        long,
        default_value = "beginning",
        value_name = "beginning|end|OFFSET"
    )]
    offset: String,
    /// Start at the first record whose timestamp is at or after MS (ms since the epoch).
    #[arg(long, value_name = "MS", conflicts_with = "offset")]
    timestamp: Option<i64>,
    /// Only this partition.
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Stop after COUNT records.
    #[arg(short = 'n', long, value_name = "COUNT")]
    count: Option<u64>,
    /// Keep waiting for new records instead of stopping at the end.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "plain")]
    format: Format,
    /// With --format plain, print the key, then SEP, then the value.
    #[arg(short = 'k', long = "key-separator", value_name = "SEP")]
    key_separator: Option<String>,
    /// Whether to show records of open and aborted transactions.
    #[arg(long, value_enum, default_value = "read-uncommitted")]
    isolation: IsolationArg,
    /// Consume as a member of this consumer group: the group assigns the partitions, reading
    /// starts at its committed offsets (-o beginning|end where it has none), and offsets are
    /// committed as records are printed and at the end.
    #[arg(short = 'g', long, value_name = "GROUP", conflicts_with_all = ["partition", "timestamp"])]
    group: Option<String>,
}

pub async fn run_produce(args: ProduceArgs) -> anyhow::Result<()> {
    exit_on_error(produce(args).await)
}

pub async fn run_consume(args: ConsumeArgs) -> anyhow::Result<()> {
    exit_on_error(consume(args).await)
}

// ---------------------------------------------------------------------------------------------
// produce
// ---------------------------------------------------------------------------------------------

/// Kafka's murmur2 (as in its default partitioner).
fn murmur2(data: &[u8]) -> i32 {
    let seed: u32 = 0x9747_b28c;
    let m: u32 = 0x5bd1_e995;
    let r = 24;
    let len = data.len();
    let mut h: u32 = seed ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(m);
        k ^= k >> r;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= (tail[2] as u32) << 16;
            h ^= (tail[1] as u32) << 8;
            h ^= tail[0] as u32;
            h = h.wrapping_mul(m);
        }
        2 => {
            h ^= (tail[1] as u32) << 8;
            h ^= tail[0] as u32;
            h = h.wrapping_mul(m);
        }
        1 => {
            h ^= tail[0] as u32;
            h = h.wrapping_mul(m);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner gives `key` among `partitions`.
fn key_partition(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// Splits one input line into key and value.
fn parse_line(
    line: &str,
    number: u64,
    separator: Option<&str>,
) -> anyhow::Result<(Option<Bytes>, Bytes)> {
    match separator {
        None => Ok((None, Bytes::copy_from_slice(line.as_bytes()))),
        Some(sep) => match line.split_once(sep) {
            Some((k, v)) => Ok((
                Some(Bytes::copy_from_slice(k.as_bytes())),
                Bytes::copy_from_slice(v.as_bytes()),
            )),
            None => bail!("line {number} has no key separator {sep:?}: {line:?}"),
        },
    }
}

/// Per partition: records written, first and last offset.
#[derive(Debug, Default)]
struct Written {
    records: u64,
    first: Option<i64>,
    last: i64,
}

async fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    if matches!(args.key_separator.as_deref(), Some("")) {
        bail!("--key-separator must not be empty");
    }
    let headers: Vec<(String, Option<Bytes>)> = args
        .headers
        .iter()
        .map(|h| {
            parse_key_value(h, "--header").map(|(k, v)| (k, Some(Bytes::from(v.into_bytes()))))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut client = args.connect.connect().await?;
    let topic = existing_topic(&mut client, &args.topic).await?;
    let partitions = topic.partitions.len() as i32;
    if partitions == 0 {
        bail!("topic '{}' has no partitions", args.topic);
    }
    if let Some(p) = args.partition {
        if !(0..partitions).contains(&p) {
            bail!(
                "topic '{}' has no partition {p} (it has {partitions})",
                args.topic
            );
        }
    }

    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::hidden();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} records, {per_sec} {msg}")
                .expect("valid template"),
        );
        bar
    });

    let mut pending: BTreeMap<i32, (Vec<OutgoingRecord>, usize)> = BTreeMap::new();
    let mut written: BTreeMap<i32, Written> = BTreeMap::new();
    let mut round_robin = 0i32;
    let mut number = 0u64;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    let mut buf = String::new();
    loop {
        buf.clear();
        let n = lines
            .read_line(&mut buf)
            .context("reading standard input")?;
        if n == 0 {
            break;
        }
        number += 1;
        let line = buf
            .strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&buf);
        let (key, value) = match parse_line(line, number, args.key_separator.as_deref()) {
            Ok(parsed) => parsed,
            Err(e) => {
                let sent: u64 = written.values().map(|w| w.records).sum();
                if sent > 0 {
                    bail!("{e} ({sent} records before it were produced)");
                }
                bail!("{e} (nothing was produced)");
            }
        };
        let partition = match (args.partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => key_partition(k, partitions),
            (None, None) => {
                round_robin = (round_robin + 1) % partitions;
                round_robin
            }
        };
        let size = key.as_ref().map_or(0, Bytes::len) + value.len();
        let entry = pending.entry(partition).or_default();
        entry.0.push(OutgoingRecord {
            key,
            value: Some(value),
            headers: headers.clone(),
            timestamp: now_ms(),
        });
        entry.1 += size;
        if entry.0.len() >= BATCH_RECORDS || entry.1 >= BATCH_BYTES {
            let (records, _) = pending.remove(&partition).expect("just added");
            send(&mut client, &args, partition, records, &mut written).await?;
        }
        if let Some(bar) = &progress {
            if number == PROGRESS_AFTER {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            bar.set_position(number);
        }
    }
    for (partition, (records, _)) in std::mem::take(&mut pending) {
        send(&mut client, &args, partition, records, &mut written).await?;
    }
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }

    let total: u64 = written.values().map(|w| w.records).sum();
    if args.json {
        let parts: Vec<_> = written
            .iter()
            .map(|(p, w)| {
                json!({
                    "partition": p,
                    "records": w.records,
                    "first_offset": w.first,
                    "last_offset": w.last,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "topic": args.topic,
                "records": total,
                "partitions": parts,
            }))
            .expect("JSON values serialize")
        );
    } else {
        let rows: Vec<Vec<String>> = written
            .iter()
            .map(|(p, w)| {
                vec![
                    p.to_string(),
                    w.records.to_string(),
                    w.first.map_or("-".to_string(), |o| o.to_string()),
                    w.last.to_string(),
                ]
            })
            .collect();
        println!("produced {total} records to {}", args.topic);
        if !rows.is_empty() {
            print!(
                "{}",
                render_table(
                    &["PARTITION", "RECORDS", "FIRST-OFFSET", "LAST-OFFSET"],
                    &rows
                )
            );
        }
    }
    Ok(())
}

async fn send(
    client: &mut Client,
    args: &ProduceArgs,
    partition: i32,
    records: Vec<OutgoingRecord>,
    written: &mut BTreeMap<i32, Written>,
) -> anyhow::Result<()> {
    let tp = TopicPartition::new(&args.topic, partition);
    let base = client
        .produce_compressed(&tp, &records, -1, args.compression.into())
        .await?;
    let w = written.entry(partition).or_default();
    w.records += records.len() as u64;
    w.first.get_or_insert(base);
    w.last = base + records.len() as i64 - 1;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// consume
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Beginning,
    End,
    Offset(i64),
    Timestamp(i64),
}

fn parse_start(offset: &str, timestamp: Option<i64>) -> anyhow::Result<Start> {
    if let Some(ms) = timestamp {
        return Ok(Start::Timestamp(ms));
    }
    match offset {
        "beginning" | "earliest" => Ok(Start::Beginning),
        "end" | "latest" => Ok(Start::End),
        n => match n.parse::<i64>() {
            Ok(o) if o >= 0 => Ok(Start::Offset(o)),
            _ => bail!("--offset {n:?} is not beginning, end or an offset of 0 or more"),
        },
    }
}

fn text(bytes: &Option<Bytes>) -> Option<String> {
    bytes
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

async fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let start = parse_start(&args.offset, args.timestamp)?;
    let isolation = match args.isolation {
        IsolationArg::ReadCommitted => Isolation::ReadCommitted,
        IsolationArg::ReadUncommitted => Isolation::ReadUncommitted,
    };
    if let Some(group) = args.group.clone() {
        return consume_in_group(&args, &group, start, isolation).await;
    }
    let mut client = args.connect.connect().await?;
    let topic = existing_topic(&mut client, &args.topic).await?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) if topic.partitions.iter().any(|m| m.partition == p) => vec![p],
        Some(p) => bail!(
            "topic '{}' has no partition {p} (it has {})",
            args.topic,
            topic.partitions.len()
        ),
        None => topic.partitions.iter().map(|p| p.partition).collect(),
    };
    let tps: Vec<TopicPartition> = partitions
        .iter()
        .map(|&p| TopicPartition::new(&args.topic, p))
        .collect();

    // Start positions.
    let earliest = client.list_offsets(&tps, OffsetSpec::Earliest).await?;
    let latest = client.list_offsets(&tps, OffsetSpec::Latest).await?;
    let at_time = match start {
        Start::Timestamp(ms) => Some(client.list_offsets(&tps, OffsetSpec::Timestamp(ms)).await?),
        _ => None,
    };
    let mut positions: BTreeMap<TopicPartition, (i64, i64)> = BTreeMap::new();
    for tp in &tps {
        let offset_of = |m: &BTreeMap<TopicPartition, Result<starling_client::ListedOffset, _>>| {
            match m.get(tp) {
                Some(Ok(o)) => Ok(o.offset),
                Some(Err(e)) => Err(anyhow::anyhow!(
                    "cannot read the offsets of {tp}: {}",
                    starling_client::describe_code(*e)
                )),
                None => Err(anyhow::anyhow!("no offsets for {tp}")),
            }
        };
        let log_start = offset_of(&earliest)?;
        let end = offset_of(&latest)?;
        let from = match start {
            Start::Beginning => log_start,
            Start::End => end,
            Start::Offset(o) => o.clamp(log_start, end),
            Start::Timestamp(_) => match offset_of(at_time.as_ref().expect("looked up"))? {
                -1 => end,
                o => o,
            },
        };
        positions.insert(tp.clone(), (from, end));
    }

    let mut stdout = std::io::stdout().lock();
    let mut printed = 0u64;
    let limit = args.count.unwrap_or(u64::MAX);
    let max_bytes = 1024 * 1024;
    // Without --follow: each partition up to its end, in order.
    if !args.follow {
        for tp in &tps {
            let (mut position, _) = positions[tp];
            let mut end = None;
            loop {
                if printed >= limit {
                    return Ok(());
                }
                if let Some(end) = end {
                    if position >= end {
                        break;
                    }
                }
                let fetched = client.fetch(tp, position, isolation, 0, max_bytes).await?;
                // The end as of the first fetch: the stable end under read_committed.
                let stop = *end.get_or_insert(match isolation {
                    Isolation::ReadCommitted if fetched.last_stable_offset >= 0 => {
                        fetched.last_stable_offset
                    }
                    _ => fetched.high_watermark,
                });
                for r in &fetched.records {
                    if printed >= limit || r.offset >= stop {
                        break;
                    }
                    print_record(&mut stdout, &args, tp, r)?;
                    printed += 1;
                }
                if fetched.next_offset <= position {
                    // Nothing came back below the end: stop rather than spin.
                    break;
                }
                position = fetched.next_offset;
            }
        }
        return Ok(());
    }
    // --follow: round-robin over the partitions, waiting briefly on each.
    let mut at: BTreeMap<TopicPartition, i64> = positions
        .iter()
        .map(|(tp, (from, _))| (tp.clone(), *from))
        .collect();
    let wait_ms = (500 / tps.len().max(1)).max(50) as i32;
    loop {
        for tp in &tps {
            let position = at[tp];
            let fetched = client
                .fetch(tp, position, isolation, wait_ms, max_bytes)
                .await?;
            for r in &fetched.records {
                if printed >= limit {
                    return Ok(());
                }
                print_record(&mut stdout, &args, tp, r)?;
                printed += 1;
            }
            stdout.flush().ok();
            at.insert(tp.clone(), fetched.next_offset.max(position));
        }
        if printed >= limit {
            return Ok(());
        }
    }
}

/// Session timeout of `consume -g`: heartbeats go out every third of it, between fetches.
const GROUP_SESSION_TIMEOUT_MS: i32 = 10_000;
/// How often `consume -g` commits what it has printed (and always at the end).
const GROUP_COMMIT_INTERVAL: Duration = Duration::from_secs(2);

/// `consume -g GROUP`: a member of the group, reading the partitions it is assigned from the
/// group's committed offsets (or `start` where there are none), committing what it printed.
/// Without --follow it stops once every assigned partition reached the end it had at the
/// (latest) join; Ctrl-C stops it too. Either way it commits and leaves the group.
async fn consume_in_group(
    args: &ConsumeArgs,
    group: &str,
    start: Start,
    isolation: Isolation,
) -> anyhow::Result<()> {
    if let Start::Offset(_) = start {
        bail!(
            "with --group, --offset is where to start without a committed offset: beginning or end"
        );
    }
    let mut client = args.connect.connect().await?;
    existing_topic(&mut client, &args.topic).await?;
    let mut member = GroupMember::new(
        group,
        std::slice::from_ref(&args.topic),
        GROUP_SESSION_TIMEOUT_MS,
    );
    let mut stdout = std::io::stdout().lock();
    let limit = args.count.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    'join: loop {
        let assigned = member.join(&mut client).await?;
        eprintln!(
            "joined group {group} (generation {}) with partitions [{}]",
            member.generation(),
            assigned
                .iter()
                .map(|tp| tp.partition.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let committed = client.offset_fetch(group).await?;
        let latest = client.list_offsets(&assigned, OffsetSpec::Latest).await?;
        let reset = client
            .list_offsets(
                &assigned,
                if start == Start::End {
                    OffsetSpec::Latest
                } else {
                    OffsetSpec::Earliest
                },
            )
            .await?;
        let mut at: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut ends: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for tp in &assigned {
            let listed = |m: &BTreeMap<
                TopicPartition,
                Result<starling_client::ListedOffset, _>,
            >| match m.get(tp) {
                Some(Ok(o)) => Ok(o.offset),
                Some(Err(e)) => Err(anyhow::anyhow!(
                    "cannot read the offsets of {tp}: {}",
                    starling_client::describe_code(*e)
                )),
                None => Err(anyhow::anyhow!("no offsets for {tp}")),
            };
            let from = match committed.get(tp) {
                Some(c) => c.offset,
                None => listed(&reset)?,
            };
            at.insert(tp.clone(), from);
            ends.insert(tp.clone(), listed(&latest)?);
        }
        let mut done_at: BTreeMap<TopicPartition, i64> = at.clone();
        let mut last_commit = Instant::now();
        let wait_ms = if args.follow {
            (500 / assigned.len().max(1)).max(50) as i32
        } else {
            0
        };
        loop {
            let finished =
                printed >= limit || (!args.follow && at.iter().all(|(tp, pos)| *pos >= ends[tp]));
            let stop = finished || futures_ready(&mut interrupted);
            if stop {
                member.commit(&mut client, &done_at).await?;
                member.leave(&mut client).await?;
                return Ok(());
            }
            if member.heartbeat_due() && member.heartbeat(&mut client).await? == Heartbeat::Rejoin {
                // Partitions may move: hand over what was printed, then join again.
                if let Err(e) = member.commit(&mut client, &done_at).await {
                    eprintln!("warning: commit before rejoining: {e}");
                }
                continue 'join;
            }
            if assigned.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for tp in &assigned {
                let position = at[tp];
                if !args.follow && position >= ends[tp] {
                    continue;
                }
                let fetched = client
                    .fetch(tp, position, isolation, wait_ms, 1024 * 1024)
                    .await?;
                for r in &fetched.records {
                    if printed >= limit {
                        break;
                    }
                    print_record(&mut stdout, args, tp, r)?;
                    printed += 1;
                    done_at.insert(tp.clone(), r.offset + 1);
                }
                stdout.flush().ok();
                let next = fetched.next_offset.max(position);
                if printed < limit {
                    done_at.insert(tp.clone(), next.max(done_at[tp]));
                }
                at.insert(tp.clone(), next);
            }
            if last_commit.elapsed() >= GROUP_COMMIT_INTERVAL {
                member.commit(&mut client, &done_at).await?;
                last_commit = Instant::now();
            }
        }
    }
}

/// Whether `future` has completed, without waiting for it.
fn futures_ready<F: std::future::Future + Unpin>(future: &mut F) -> bool {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    std::pin::Pin::new(future).poll(&mut cx).is_ready()
}

fn print_record(
    out: &mut impl Write,
    args: &ConsumeArgs,
    tp: &TopicPartition,
    r: &starling_client::ConsumedRecord,
) -> anyhow::Result<()> {
    match args.format {
        Format::Plain => {
            let value = text(&r.value).unwrap_or_default();
            match &args.key_separator {
                Some(sep) => writeln!(out, "{}{sep}{value}", text(&r.key).unwrap_or_default()),
                None => writeln!(out, "{value}"),
            }
        }
        Format::Json => {
            let headers: serde_json::Map<String, serde_json::Value> = r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), json!(text(v))))
                .collect();
            writeln!(
                out,
                "{}",
                json!({
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "offset": r.offset,
                    "timestamp": r.timestamp,
                    "key": text(&r.key),
                    "value": text(&r.value),
                    "headers": headers,
                })
            )
        }
    }
    .context("writing to standard output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn a_line_without_the_separator_names_its_number() {
        let e = parse_line("novalue", 3, Some("=")).unwrap_err().to_string();
        assert_eq!(e, "line 3 has no key separator \"=\": \"novalue\"");
        let (k, v) = parse_line("k=v=w", 1, Some("=")).unwrap();
        assert_eq!(k.as_deref(), Some(&b"k"[..]));
        assert_eq!(&v[..], b"v=w");
    }

    #[test]
    fn start_positions_parse() {
        assert_eq!(parse_start("beginning", None).unwrap(), Start::Beginning);
        assert_eq!(parse_start("end", None).unwrap(), Start::End);
        assert_eq!(parse_start("42", None).unwrap(), Start::Offset(42));
        assert_eq!(
            parse_start("beginning", Some(5)).unwrap(),
            Start::Timestamp(5)
        );
        assert!(parse_start("-3", None).is_err());
        assert!(parse_start("soon", None).is_err());
    }
}
