//! `starling group ...`: inspect and manage consumer groups on any Kafka-compatible broker, in
//! the spirit of `rpk group` and `kafka-consumer-groups.sh`.
//!
//! * `list [--state S ...]`: groups with their state and protocol type (ListGroups).
//! * `describe GROUP`: coordinator, state, members with their assignments, and per partition
//!   the committed offset, log end offset and lag.
//! * `delete GROUP...`: delete groups that have no members.
//! * `offsets reset GROUP --topic T (--to-earliest | --to-latest | --to-offset N |
//!   --to-datetime TIME) [--partitions 0,1] [--dry-run]`: commit new offsets for an inactive
//!   group, as `kafka-consumer-groups.sh --reset-offsets --execute` does.
//!
//! * `rebalances GROUP`: the group's rebalance history from a Starling broker's admin
//!   endpoint (see `rebalances_cli`).
//!
//! Everything else goes through `starling-client`; failures end with a non-zero exit.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{bail, Context};
use clap::{ArgGroup, Subcommand};
use starling_client::consumer_group::ConsumerGroupDescription;
use starling_client::{
    describe_code, Client, GroupDescription, OffsetSpec, ResponseError, TopicPartition,
};

#[derive(Debug, clap::Args)]
pub struct GroupArgs {
    #[command(flatten)]
    connect: crate::connect_args::ConnectArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// List groups with their state and protocol type.
    List {
        /// Only groups in this state (Empty, Stable, PreparingRebalance, CompletingRebalance,
        /// Dead). Repeatable or comma-separated. Needs a broker with ListGroups v4+.
        #[arg(long = "state", value_name = "STATE", value_delimiter = ',', value_parser = parse_state)]
        states: Vec<String>,
    },
    /// Show a group's members, their assignments, committed offsets and lag.
    Describe {
        /// The group id.
        group: String,
    },
    /// Delete groups; a group with members is refused by the broker.
    Delete {
        /// The group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Manage a group's committed offsets.
    #[command(subcommand)]
    Offsets(OffsetsCommand),
    /// Show a group's recent rebalances: cause, phase durations, members joined and left,
    /// partitions moved (from a Starling broker's admin endpoint).
    Rebalances(crate::rebalances_cli::RebalancesArgs),
}

#[derive(Debug, Subcommand)]
enum OffsetsCommand {
    /// Commit new offsets for a group that has no active members.
    Reset(ResetArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(
    ArgGroup::new("target")
        .required(true)
        .args(["to_earliest", "to_latest", "to_offset", "to_datetime"])
))]
struct ResetArgs {
    /// The group id.
    group: String,
    /// The topic whose offsets to reset.
    #[arg(long)]
    topic: String,
    /// Only these partitions (comma-separated; default: all partitions of the topic).
    #[arg(long, value_delimiter = ',', value_name = "P,P,...")]
    partitions: Vec<i32>,
    /// Reset to the earliest offset still in the log.
    #[arg(long)]
    to_earliest: bool,
    /// Reset to the log end offset.
    #[arg(long)]
    to_latest: bool,
    /// Reset to this offset, clamped into [earliest, latest].
    #[arg(long, value_name = "OFFSET", allow_negative_numbers = true)]
    to_offset: Option<i64>,
    /// Reset to the first offset whose timestamp is at or after TIME: RFC 3339
    /// (2026-11-21T06:00:00Z, 2026-11-21T08:00:00.250+02:00) or milliseconds since the epoch.
    #[arg(long, value_name = "TIME", value_parser = parse_datetime)]
    to_datetime: Option<i64>,
    /// Print the new offsets without committing them.
    #[arg(long)]
    dry_run: bool,
}

/// Runs one `starling group` command, printing its output on stdout. A failure is printed as
/// one `error: ...` line on stderr and ends the process with exit status 1.
pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    crate::topic_cli::exit_on_error(execute(args).await)
}

async fn execute(args: GroupArgs) -> anyhow::Result<()> {
    match args.command {
        // Read from the admin endpoint: no Kafka connection needed.
        GroupCommand::Rebalances(rebalances) => {
            crate::rebalances_cli::run(&rebalances, &args.connect).await
        }
        command => {
            let mut client = args.connect.connect().await?;
            execute_with_client(&mut client, command).await
        }
    }
}

async fn execute_with_client(client: &mut Client, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List { states } => list(client, &states).await,
        GroupCommand::Describe { group } => describe(client, &group).await,
        GroupCommand::Delete { groups } => delete(client, &groups).await,
        GroupCommand::Offsets(OffsetsCommand::Reset(reset_args)) => {
            reset(client, &reset_args).await
        }
        GroupCommand::Rebalances(_) => {
            bail!("rebalances are read from the admin endpoint, not a Kafka connection")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------------

/// Kafka's spelling of the classic and consumer group states, for case-insensitive input.
const KNOWN_STATES: &[&str] = &[
    "Empty",
    "Stable",
    "PreparingRebalance",
    "CompletingRebalance",
    "Dead",
    "Assigning",
    "Reconciling",
    "NotReady",
];

/// `--state`: one of [`KNOWN_STATES`] in any case, as Kafka spells it; anything else is refused
/// naming the valid states, rather than asking the broker for a state no group can be in.
fn parse_state(s: &str) -> Result<String, String> {
    let s = s.trim();
    KNOWN_STATES
        .iter()
        .find(|k| k.eq_ignore_ascii_case(s))
        .map(|k| k.to_string())
        .ok_or_else(|| {
            format!(
                "unknown group state '{s}'; valid states: {}",
                KNOWN_STATES.join(", ")
            )
        })
}

async fn list(client: &mut Client, states: &[String]) -> anyhow::Result<()> {
    let state_refs: Vec<&str> = states.iter().map(String::as_str).collect();
    let groups = client.list_groups(&state_refs).await?;
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.group_id.clone(),
                g.state.clone().unwrap_or_else(|| "-".to_string()),
                dash_if_empty(&g.protocol_type),
            ]
        })
        .collect();
    print!(
        "{}",
        render_table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// describe
// ---------------------------------------------------------------------------------------------

async fn describe(client: &mut Client, group: &str) -> anyhow::Result<()> {
    let desc = client.describe_group(group).await?;
    // DescribeGroups does not describe a KIP-848 consumer-protocol group.
    let modern = if desc.is_missing() {
        client.describe_consumer_group(group).await?
    } else {
        None
    };
    let committed = match client.offset_fetch(group).await {
        Err(e) if e.kafka_error() == Some(ResponseError::GroupIdNotFound) => BTreeMap::new(),
        other => other?,
    };
    if desc.is_missing() && modern.is_none() && committed.is_empty() {
        bail!("consumer group '{group}' does not exist");
    }

    // Who owns which partition (consumer-protocol groups only).
    let mut owner: BTreeMap<TopicPartition, String> = BTreeMap::new();
    let mut member_rows = Vec::new();
    if let Some(modern) = &modern {
        for m in &modern.members {
            for tp in &m.assigned {
                owner.insert(tp.clone(), m.member_id.clone());
            }
            member_rows.push(vec![
                dash_if_empty(&m.member_id),
                m.instance_id
                    .as_deref()
                    .map(dash_if_empty)
                    .unwrap_or_else(|| "-".to_string()),
                m.member_epoch.to_string(),
                dash_if_empty(&m.client_id),
                dash_if_empty(&m.client_host),
                format_partitions(&m.assigned),
                format_partitions(&m.target),
                m.member_type.unwrap_or("-").to_string(),
            ]);
        }
    }
    for m in &desc.members {
        let partitions = if desc.is_consumer_group() {
            match m.assigned_partitions() {
                Ok(tps) => {
                    for tp in &tps {
                        owner.insert(tp.clone(), m.member_id.clone());
                    }
                    format_partitions(&tps)
                }
                Err(e) => {
                    eprintln!("warning: member {}: {e}", m.member_id);
                    "?".to_string()
                }
            }
        } else {
            "-".to_string()
        };
        member_rows.push(vec![
            dash_if_empty(&m.member_id),
            m.group_instance_id
                .as_deref()
                .map(dash_if_empty)
                .unwrap_or_else(|| "-".to_string()),
            dash_if_empty(&m.client_id),
            dash_if_empty(&m.client_host),
            partitions,
        ]);
    }

    let partitions: BTreeSet<TopicPartition> =
        committed.keys().chain(owner.keys()).cloned().collect();
    let partitions: Vec<TopicPartition> = partitions.into_iter().collect();
    let ends = client.list_offsets(&partitions, OffsetSpec::Latest).await?;

    let mut out = String::new();
    match &modern {
        Some(modern) => out.push_str(&consumer_group_header(modern)),
        None => out.push_str(&describe_header(&desc)),
    }
    if !member_rows.is_empty() {
        out.push('\n');
        let headers: &[&str] = if modern.is_some() {
            &[
                "MEMBER-ID",
                "INSTANCE-ID",
                "EPOCH",
                "CLIENT-ID",
                "HOST",
                "PARTITIONS",
                "TARGET",
                "TYPE",
            ]
        } else {
            &[
                "MEMBER-ID",
                "INSTANCE-ID",
                "CLIENT-ID",
                "HOST",
                "PARTITIONS",
            ]
        };
        out.push_str(&render_table(headers, &member_rows));
    }
    out.push('\n');
    if partitions.is_empty() {
        out.push_str("(no committed offsets and no assigned partitions)\n");
    } else {
        let rows: Vec<Vec<String>> = partitions
            .iter()
            .map(|tp| {
                let current = committed.get(tp).map(|c| c.offset);
                let end = ends.get(tp).and_then(|r| r.as_ref().ok()).map(|l| l.offset);
                vec![
                    tp.topic.clone(),
                    tp.partition.to_string(),
                    opt(current),
                    opt(end),
                    opt(lag(current, end)),
                    owner.get(tp).cloned().unwrap_or_else(|| "-".to_string()),
                ]
            })
            .collect();
        out.push_str(&render_table(
            &[
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "MEMBER-ID",
            ],
            &rows,
        ));
    }
    print!("{out}");
    for (tp, result) in &ends {
        if let Err(e) = result {
            eprintln!(
                "warning: log end offset of {tp} unavailable: {}",
                describe_code(*e)
            );
        }
    }
    Ok(())
}

fn describe_header(desc: &GroupDescription) -> String {
    let c = &desc.coordinator;
    let rows = [
        ("GROUP", desc.group_id.clone()),
        ("COORDINATOR", format!("{} ({})", c.node_id, c.addr())),
        ("STATE", dash_if_empty(&desc.state)),
        ("PROTOCOL-TYPE", dash_if_empty(&desc.protocol_type)),
        ("PROTOCOL", dash_if_empty(&desc.protocol)),
        ("MEMBERS", desc.members.len().to_string()),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<15}{v}");
    }
    out
}

/// The header of a KIP-848 consumer-protocol group.
fn consumer_group_header(desc: &ConsumerGroupDescription) -> String {
    let c = &desc.coordinator;
    let rows = [
        ("GROUP", desc.group_id.clone()),
        ("COORDINATOR", format!("{} ({})", c.node_id, c.addr())),
        ("TYPE", "consumer (KIP-848)".to_string()),
        ("STATE", dash_if_empty(&desc.state)),
        ("GROUP-EPOCH", desc.group_epoch.to_string()),
        ("TARGET-EPOCH", desc.assignment_epoch.to_string()),
        ("ASSIGNOR", dash_if_empty(&desc.assignor)),
        ("MEMBERS", desc.members.len().to_string()),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<15}{v}");
    }
    out
}

/// `orders:0,1 audit:3`, or `-` for none.
pub(crate) fn format_partitions(tps: &[TopicPartition]) -> String {
    if tps.is_empty() {
        return "-".to_string();
    }
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    by_topic
        .iter_mut()
        .map(|(t, ps)| {
            ps.sort_unstable();
            let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{t}:{}", ps.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn lag(current: Option<i64>, end: Option<i64>) -> Option<i64> {
    Some(end? - current?)
}

// ---------------------------------------------------------------------------------------------
// delete
// ---------------------------------------------------------------------------------------------

async fn delete(client: &mut Client, groups: &[String]) -> anyhow::Result<()> {
    let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    let results = client.delete_groups(&refs).await?;
    let mut failed = 0;
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(g, e)| {
            let status = match e {
                None => "deleted".to_string(),
                Some(e) => {
                    failed += 1;
                    delete_failure(*e)
                }
            };
            vec![g.clone(), status]
        })
        .collect();
    print!("{}", render_table(&["GROUP", "RESULT"], &rows));
    if failed > 0 {
        bail!("{failed} of {} groups could not be deleted", results.len());
    }
    Ok(())
}

fn delete_failure(e: ResponseError) -> String {
    let why = match e {
        ResponseError::NonEmptyGroup => "the group has active members",
        ResponseError::GroupIdNotFound => "the group does not exist",
        ResponseError::GroupAuthorizationFailed => "not authorized",
        _ => "",
    };
    if why.is_empty() {
        format!("failed: {}", describe_code(e))
    } else {
        format!("failed: {}: {why}", describe_code(e))
    }
}

// ---------------------------------------------------------------------------------------------
// offsets reset
// ---------------------------------------------------------------------------------------------

async fn reset(client: &mut Client, args: &ResetArgs) -> anyhow::Result<()> {
    let group = args.group.as_str();
    let desc = client.describe_group(group).await?;
    if !desc.is_missing() && desc.state != "Empty" {
        bail!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
            desc.state
        );
    }

    let metadata = client.metadata(Some(&[args.topic.as_str()])).await?;
    let topic = metadata
        .topic(&args.topic)
        .with_context(|| format!("topic '{}' is not in the metadata response", args.topic))?;
    match topic.error {
        None => {}
        Some(ResponseError::UnknownTopicOrPartition) => {
            bail!("topic '{}' does not exist", args.topic)
        }
        Some(e) => bail!("topic '{}': {}", args.topic, describe_code(e)),
    }
    let existing: BTreeSet<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    let chosen: BTreeSet<i32> = if args.partitions.is_empty() {
        existing.clone()
    } else {
        args.partitions.iter().copied().collect()
    };
    if let Some(p) = chosen.iter().find(|p| !existing.contains(p)) {
        bail!(
            "partition {p} of topic '{}' does not exist (the topic has {} partitions)",
            args.topic,
            existing.len()
        );
    }
    let tps: Vec<TopicPartition> = chosen
        .iter()
        .map(|&p| TopicPartition::new(&args.topic, p))
        .collect();

    let targets = target_offsets(client, args, &tps).await?;

    let rows: Vec<Vec<String>> = targets
        .iter()
        .map(|(tp, o)| {
            vec![
                group.to_string(),
                tp.topic.clone(),
                tp.partition.to_string(),
                o.to_string(),
            ]
        })
        .collect();
    let table = render_table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows);
    if args.dry_run {
        print!("{table}");
        // On stderr, so that stdout is the same table as a real reset's.
        eprintln!("dry run: nothing was committed");
        return Ok(());
    }

    let offsets: Vec<(TopicPartition, i64)> =
        targets.iter().map(|(tp, o)| (tp.clone(), *o)).collect();
    let results = client.offset_commit(group, &offsets).await?;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(tp, e)| e.map(|e| format!("{tp}: {}", describe_code(e))))
        .collect();
    if !failures.is_empty() {
        let mut msg = format!(
            "committing offsets for group '{group}' failed: {}",
            failures.join(", ")
        );
        if results.values().flatten().any(|e| {
            matches!(
                e,
                ResponseError::UnknownMemberId
                    | ResponseError::IllegalGeneration
                    | ResponseError::RebalanceInProgress
            )
        }) {
            msg.push_str(" (did a consumer join the group meanwhile?)");
        }
        bail!(msg);
    }
    print!("{table}");
    Ok(())
}

/// The new offset of each partition.
async fn target_offsets(
    client: &mut Client,
    args: &ResetArgs,
    tps: &[TopicPartition],
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    if args.to_earliest {
        return fetch_offsets(client, tps, OffsetSpec::Earliest).await;
    }
    if args.to_latest {
        return fetch_offsets(client, tps, OffsetSpec::Latest).await;
    }
    if let Some(wanted) = args.to_offset {
        let earliest = fetch_offsets(client, tps, OffsetSpec::Earliest).await?;
        let latest = fetch_offsets(client, tps, OffsetSpec::Latest).await?;
        return Ok(earliest
            .iter()
            .map(|(tp, &lo)| (tp.clone(), clamp_offset(wanted, lo, latest[tp])))
            .collect());
    }
    if let Some(ms) = args.to_datetime {
        let at = fetch_offsets(client, tps, OffsetSpec::Timestamp(ms)).await?;
        let latest = fetch_offsets(client, tps, OffsetSpec::Latest).await?;
        // No record at or after the time: the log end, as kafka-consumer-groups.sh does.
        return Ok(at
            .iter()
            .map(|(tp, &o)| (tp.clone(), if o < 0 { latest[tp] } else { o }))
            .collect());
    }
    unreachable!("clap requires one of the --to-* options")
}

/// One offset per partition, or an error naming the first partition that has none.
async fn fetch_offsets(
    client: &mut Client,
    tps: &[TopicPartition],
    spec: OffsetSpec,
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    let listed = client.list_offsets(tps, spec).await?;
    let mut out = BTreeMap::new();
    for tp in tps {
        match listed.get(tp) {
            Some(Ok(l)) => {
                out.insert(tp.clone(), l.offset);
            }
            Some(Err(e)) => bail!("listing offsets of {tp}: {}", describe_code(*e)),
            None => bail!("listing offsets of {tp}: no answer"),
        }
    }
    Ok(out)
}

/// Kafka's rule for `--to-offset`: below the log start goes to the log start, beyond the log
/// end to the log end.
fn clamp_offset(wanted: i64, earliest: i64, latest: i64) -> i64 {
    if wanted < earliest {
        earliest
    } else if wanted > latest {
        latest
    } else {
        wanted
    }
}

/// Milliseconds since the epoch from either a plain number of milliseconds or an RFC 3339 time
/// with a UTC offset (`2026-11-21T06:00:00Z`, `2026-11-21T07:00:00.5+01:00`).
pub fn parse_datetime(input: &str) -> Result<i64, String> {
    let s = input.trim();
    let invalid = |why: &str| {
        format!(
            "invalid time {input:?}: {why}; expected RFC 3339 such as 2026-11-21T06:00:00Z \
             (or with an offset like +02:00), or milliseconds since the epoch"
        )
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().map_err(|_| invalid("number out of range"));
    }
    let b = s.as_bytes();
    if b.len() < 19 {
        return Err(invalid("too short"));
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = &s[range];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            Ok(part.parse::<i64>().expect("digits"))
        } else {
            Err(invalid(&format!("{part:?} is not a number")))
        }
    };
    let sep = |i: usize, allowed: &[u8]| -> Result<(), String> {
        if allowed.contains(&b[i]) {
            Ok(())
        } else {
            Err(invalid(&format!(
                "unexpected character at position {}",
                i + 1
            )))
        }
    };
    let year = num(0..4)?;
    sep(4, b"-")?;
    let month = num(5..7)?;
    sep(7, b"-")?;
    let day = num(8..10)?;
    sep(10, b"Tt ")?;
    let hour = num(11..13)?;
    sep(13, b":")?;
    let minute = num(14..16)?;
    sep(16, b":")?;
    let second = num(17..19)?;

    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(invalid("bad fraction of a second"));
        }
        let mut ms_digits: String = frac[..digits.min(3)].to_string();
        while ms_digits.len() < 3 {
            ms_digits.push('0');
        }
        millis = ms_digits.parse::<i64>().expect("digits");
        rest = &frac[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        "" => return Err(invalid("missing UTC offset (add Z for UTC)")),
        zone => {
            let zb = zone.as_bytes();
            if zb.len() != 6 || !matches!(zb[0], b'+' | b'-') || zb[3] != b':' {
                return Err(invalid(&format!("bad UTC offset {zone:?}")));
            }
            let digits = |r: std::ops::Range<usize>| {
                let p = &zone[r];
                if p.bytes().all(|c| c.is_ascii_digit()) {
                    Ok(p.parse::<i64>().expect("digits"))
                } else {
                    Err(invalid(&format!("bad UTC offset {zone:?}")))
                }
            };
            let (h, m) = (digits(1..3)?, digits(4..6)?);
            if h > 23 || m > 59 {
                return Err(invalid(&format!("bad UTC offset {zone:?}")));
            }
            let sign = if zb[0] == b'-' { -1 } else { 1 };
            sign * (h * 60 + m)
        }
    };
    if !(1..=12).contains(&month) {
        return Err(invalid("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(invalid("day out of range"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(invalid("time of day out of range"));
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1_000 + millis)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

fn dash_if_empty(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_string())
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub(crate) fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                l.push_str(cell);
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_as_rfc3339_or_epoch_millis() {
        assert_eq!(parse_datetime("0").unwrap(), 0);
        assert_eq!(parse_datetime("1700000000123").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z").unwrap(), 0);
        // date -u -d 2026-11-21T06:00:00Z +%s -> 1795240800
        assert_eq!(
            parse_datetime("2026-11-21T06:00:00Z").unwrap(),
            1_795_240_800_000
        );
        assert_eq!(
            parse_datetime("2026-11-21T08:00:00.25+02:00").unwrap(),
            1_795_240_800_250
        );
        assert_eq!(
            parse_datetime("2026-11-21 01:30:00.123456-04:30").unwrap(),
            1_795_240_800_123
        );
        assert_eq!(
            parse_datetime("2024-02-29T00:00:00Z").unwrap(),
            1_709_164_800_000
        );
        assert_eq!(parse_datetime("1969-12-31T23:59:59Z").unwrap(), -1_000);
    }

    #[test]
    fn bad_datetimes_are_refused_with_the_expected_format() {
        for bad in [
            "",
            "yesterday",
            "2026-11-21T06:00:00",
            "2026-11-21",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T06:00:00+2:00",
            "2026-11-21T06:00:00.Z",
            "2026/11/21T06:00:00Z",
        ] {
            let e = parse_datetime(bad).unwrap_err();
            assert!(e.contains("RFC 3339"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn to_offset_is_clamped_into_the_log() {
        assert_eq!(clamp_offset(5, 10, 20), 10);
        assert_eq!(clamp_offset(15, 10, 20), 15);
        assert_eq!(clamp_offset(25, 10, 20), 20);
        assert_eq!(clamp_offset(-3, 0, 0), 0);
    }

    #[test]
    fn lag_needs_both_offsets() {
        assert_eq!(lag(Some(3), Some(10)), Some(7));
        assert_eq!(lag(None, Some(10)), None);
        assert_eq!(lag(Some(3), None), None);
    }

    #[test]
    fn tables_align_columns() {
        let t = render_table(
            &["GROUP", "STATE"],
            &[
                vec!["a-long-group".into(), "Stable".into()],
                vec!["b".into(), "Empty".into()],
            ],
        );
        assert_eq!(
            t,
            "GROUP         STATE\na-long-group  Stable\nb             Empty\n"
        );
    }

    #[test]
    fn partitions_are_grouped_by_topic() {
        let tps = vec![
            TopicPartition::new("b", 2),
            TopicPartition::new("a", 0),
            TopicPartition::new("b", 0),
        ];
        assert_eq!(format_partitions(&tps), "a:0 b:0,2");
        assert_eq!(format_partitions(&[]), "-");
    }

    #[test]
    fn state_names_are_matched_case_insensitively() {
        assert_eq!(parse_state("stable").unwrap(), "Stable");
        assert_eq!(
            parse_state(" preparingrebalance").unwrap(),
            "PreparingRebalance"
        );
        let e = parse_state("Whatever").unwrap_err();
        assert!(
            e.contains("'Whatever'") && e.contains("CompletingRebalance"),
            "{e}"
        );
    }
}
