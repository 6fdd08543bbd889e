//! `starling group rebalances GROUP`: a group's rebalance history as a Starling broker records
//! it — why each rebalance started, how long its join and sync phases took, who joined and
//! left, and which partitions moved — read from the broker's admin endpoint
//! (`GET /groups/<id>/rebalances`). Kafka's protocol has no API for this, so it is the one
//! `starling group` command that needs a Starling broker rather than any Kafka broker.
//!
//! An endpoint with `admin.auth=required` is sent the bearer token in the
//! `STARLING_ADMIN_TOKEN` environment variable (`starling admin-token create`), kept out of the
//! command line where other users could read it; without a token, the SASL user of the client
//! properties (`sasl.username` and `sasl.password`, or `sasl.jaas.config`) is sent as basic
//! credentials
//! (`admin.auth.basic.enable`). An `https://` endpoint is checked with the same TLS client
//! properties (`ssl.ca.location`, ...) as the Kafka listeners.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine;
use starling_group::{RebalanceOutcome, RebalanceRecord};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::connect_args::ConnectArgs;

/// How long the whole HTTP exchange may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response accepted (a full history is a few hundred KiB at most).
const MAX_RESPONSE: usize = 64 << 20;
/// The environment variable holding a bearer token for the admin endpoint.
pub const ADMIN_TOKEN_ENV: &str = "STARLING_ADMIN_TOKEN";

#[derive(Debug, clap::Args)]
pub struct RebalancesArgs {
    /// The group id.
    group: String,
    /// The broker's admin HTTP endpoint (`starling serve --admin-listen`); `https://HOST:PORT`
    /// for one with admin.ssl.enable.
    #[arg(
        long,
        default_value = "127.0.0.1:9644",
        value_name = "[https://]HOST:PORT"
    )]
    admin: String,
    /// Also list, under the table, each rebalance's members that joined and left and the
    /// partitions that moved, were assigned or revoked.
    #[arg(long)]
    details: bool,
    /// Print the records as the broker serves them (JSON) instead of a table.
    #[arg(long, conflicts_with = "details")]
    json: bool,
}

pub async fn run(args: &RebalancesArgs, connect: &ConnectArgs) -> anyhow::Result<()> {
    let path = format!("/groups/{}/rebalances", percent_encode(&args.group));
    let properties = connect.properties()?;
    let token = std::env::var(ADMIN_TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty());
    let authorization = match (&token, properties.user_and_password()?) {
        (Some(token), _) if token.contains(['\r', '\n']) => {
            bail!("{ADMIN_TOKEN_ENV} holds a line break")
        }
        (Some(token), _) => Some(format!("Bearer {}", token.trim())),
        (None, Some((user, password))) => {
            let pair = format!("{user}:{password}");
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        }
        (None, None) => None,
    };
    let (tls, addr) = match args.admin.strip_prefix("https://") {
        Some(addr) => (Some(properties.tls_config()?), addr),
        None => (None, args.admin.trim_start_matches("http://")),
    };
    let addr = addr.trim_end_matches('/');
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot reach the admin endpoint at {}", args.admin))?;
        match tls {
            None => http_get(stream, addr, &path, authorization.as_deref()).await,
            Some(config) => {
                let name = starling_client::connection::server_name(addr)?;
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                    .with_context(|| format!("TLS to the admin endpoint {}", args.admin))?;
                http_get(stream, addr, &path, authorization.as_deref()).await
            }
        }
    };
    let (status, body) = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .with_context(|| format!("no answer from the admin endpoint {} in time", args.admin))??;
    match status {
        200 => {}
        404 => bail!("consumer group '{}' does not exist", args.group),
        401 if authorization.is_none() => bail!(
            "the admin endpoint {} asks for credentials: set {ADMIN_TOKEN_ENV} to a bearer token \
             (starling admin-token create), or name a user (-X sasl.username=... -X sasl.password=...)",
            args.admin
        ),
        401 if token.is_some() => bail!(
            "the admin endpoint {} refused the token in {ADMIN_TOKEN_ENV}",
            args.admin
        ),
        401 => bail!(
            "the admin endpoint {} refused the user's credentials",
            args.admin
        ),
        _ => bail!(
            "the admin endpoint answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ),
    }
    if args.json {
        println!("{}", String::from_utf8_lossy(&body).trim());
        return Ok(());
    }
    let records: Vec<RebalanceRecord> =
        serde_json::from_slice(&body).context("the admin endpoint sent unreadable records")?;
    print!("{}", render(&records, args.details));
    Ok(())
}

/// The table (oldest first), then the details of each rebalance if asked for.
fn render(records: &[RebalanceRecord], details: bool) -> String {
    if records.is_empty() {
        return "no rebalances recorded\n".to_string();
    }
    let headers = [
        "GEN", "CAUSE", "STARTED", "JOIN-MS", "SYNC-MS", "TOTAL-MS", "MEMBERS", "JOINED", "LEFT",
        "MOVED", "STAYED", "OUTCOME",
    ];
    let rows: Vec<Vec<String>> = records.iter().map(row).collect();
    let mut out = crate::group_cli::render_table(&headers, &rows);
    if details {
        for record in records {
            out.push('\n');
            out.push_str(&detail(record));
        }
    }
    out
}

fn row(r: &RebalanceRecord) -> Vec<String> {
    let ms = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    let (moved, stayed) = match &r.assignment {
        Some(a) => (a.moved.len().to_string(), a.stayed.len().to_string()),
        None => ("-".to_string(), "-".to_string()),
    };
    // A consumer-protocol record has no join phase: its members are known once it closes.
    let members = if r.join_completed_ms.is_some() || !r.members.is_empty() {
        r.members.len().to_string()
    } else {
        "-".to_string()
    };
    vec![
        r.generation.to_string(),
        r.cause.as_str().to_string(),
        starling_console::html::time_ms(r.started_ms),
        ms(r.join_phase_ms()),
        ms(r.sync_phase_ms()),
        ms(r.duration_ms()),
        members,
        r.joined.len().to_string(),
        r.left.len().to_string(),
        moved,
        stayed,
        r.outcome.as_str().to_string(),
    ]
}

/// One rebalance in words: trigger, members in and out, partition movements.
fn detail(r: &RebalanceRecord) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "generation {} ({}, {})",
        r.generation,
        r.cause.as_str(),
        r.outcome.as_str()
    );
    if let Some(protocol) = &r.protocol {
        let _ = write!(out, ", protocol {protocol}");
    }
    out.push('\n');
    if let Some(member) = &r.trigger_member {
        let _ = writeln!(out, "  trigger: {member}");
    }
    if let Some(reason) = &r.client_reason {
        let _ = writeln!(out, "  reason:  {reason}");
    }
    for member in &r.joined {
        let _ = writeln!(out, "  joined:  {member}");
    }
    for left in &r.left {
        let _ = writeln!(
            out,
            "  left:    {} ({})",
            left.member_id,
            left.reason.as_str()
        );
    }
    match &r.assignment {
        None if r.outcome == RebalanceOutcome::Stable => {
            let _ = writeln!(out, "  assignment: not a readable consumer assignment");
        }
        None => {}
        Some(a) => {
            for m in &a.moved {
                let _ = writeln!(
                    out,
                    "  moved:    {}-{}  {} -> {}",
                    m.topic, m.partition, m.from, m.to
                );
            }
            for p in &a.assigned {
                let _ = writeln!(
                    out,
                    "  assigned: {}-{}  -> {}",
                    p.topic, p.partition, p.member_id
                );
            }
            for p in &a.revoked {
                let _ = writeln!(
                    out,
                    "  revoked:  {}-{}  {} ->",
                    p.topic, p.partition, p.member_id
                );
            }
            let _ = writeln!(out, "  stayed:   {} partitions", a.stayed.len());
        }
    }
    // Consumer protocol: the times of each hand-over and member, from the bump.
    let since =
        |at: Option<i64>| at.map_or("-".to_string(), |at| format!("+{} ms", at - r.started_ms));
    for h in &r.handovers {
        let _ = writeln!(
            out,
            "  handover: {}-{}  {} -> {}  revoke asked {}, released {}, assigned {}",
            h.topic,
            h.partition,
            h.from,
            h.to,
            since(h.revoke_asked_ms),
            since(h.released_ms),
            since(h.assigned_ms)
        );
    }
    for m in &r.reconciliation {
        let before = m.epoch_before.map_or("new".to_string(), |e| e.to_string());
        let _ = writeln!(
            out,
            "  member:   {}  epoch {} -> {}, reconciled {}",
            m.member_id,
            before,
            m.epoch,
            since(m.reconciled_ms)
        );
    }
    out
}

/// Percent-encodes a group id for use as one path segment.
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// An HTTP/1.1 GET over `stream`: (status, body). Handles `Content-Length`, chunked and
/// read-to-close bodies.
async fn http_get(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    addr: &str,
    path: &str,
    authorization: Option<&str>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let authorization = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n{authorization}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE as u64 + 1)
        .read_to_end(&mut response)
        .await
        .with_context(|| format!("reading the answer of {addr}"))?;
    if response.len() > MAX_RESPONSE {
        bail!("the admin endpoint's answer is larger than {MAX_RESPONSE} bytes");
    }
    parse_response(&response)
}

fn parse_response(response: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the admin endpoint sent no complete HTTP header")?;
    let head = std::str::from_utf8(&response[..head_end]).context("non-UTF-8 HTTP header")?;
    let body = &response[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .context("the admin endpoint sent no HTTP status line")?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else if let Some(length) = length {
        body.get(..length)
            .context("the admin endpoint's answer ended early")?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("truncated chunk header")?;
        let size_text = std::str::from_utf8(&body[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).context("bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).context("truncated chunk")?);
        body = body.get(size + 2..).context("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_group::{
        AssignmentChange, DepartureReason, MemberDeparture, PartitionMove, PartitionOwner,
        RebalanceCause,
    };

    fn record() -> RebalanceRecord {
        RebalanceRecord {
            group_id: "orders".into(),
            generation: 4,
            cause: RebalanceCause::CooperativeFollowUp,
            trigger_member: Some("c-1".into()),
            client_reason: None,
            protocol_type: "consumer".into(),
            protocol: Some("cooperative-sticky".into()),
            started_ms: 1_763_712_000_250,
            join_completed_ms: Some(1_763_712_000_262),
            ended_ms: Some(1_763_712_000_270),
            outcome: RebalanceOutcome::Stable,
            members_before: vec!["c-1".into(), "c-2".into()],
            members: Vec::new(),
            joined: vec!["c-3".into()],
            left: vec![MemberDeparture {
                member_id: "c-2".into(),
                group_instance_id: None,
                reason: DepartureReason::SessionExpired,
            }],
            assignment: Some(AssignmentChange {
                moved: vec![PartitionMove {
                    topic: "t".into(),
                    partition: 1,
                    from: "c-1".into(),
                    to: "c-3".into(),
                }],
                stayed: vec![PartitionOwner {
                    topic: "t".into(),
                    partition: 0,
                    member_id: "c-1".into(),
                }],
                assigned: Vec::new(),
                revoked: Vec::new(),
            }),
            handovers: Vec::new(),
            consumer_protocol: false,
            reconciliation: Vec::new(),
        }
    }

    #[test]
    fn a_consumer_protocol_record_shows_its_members_and_each_handover_from_the_bump() {
        let r = RebalanceRecord {
            cause: RebalanceCause::MemberJoined,
            protocol: Some("uniform".into()),
            join_completed_ms: None,
            members: vec![starling_group::RebalanceMember {
                member_id: "c-3".into(),
                group_instance_id: None,
                client_id: "rdkafka".into(),
                client_host: "/127.0.0.1".into(),
            }],
            handovers: vec![starling_group::PartitionHandover {
                topic: "t".into(),
                partition: 1,
                from: "c-1".into(),
                to: "c-3".into(),
                revoke_asked_ms: Some(1_763_712_000_262),
                released_ms: Some(1_763_712_000_265),
                assigned_ms: None,
            }],
            consumer_protocol: true,
            reconciliation: vec![starling_group::MemberReconciliation {
                member_id: "c-3".into(),
                epoch_before: None,
                epoch: 4,
                reconciled_ms: Some(1_763_712_000_270),
            }],
            ..record()
        };
        let table = render(std::slice::from_ref(&r), false);
        let cells: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
        // No join or sync phase; one member once closed.
        assert_eq!(&cells[4..8], ["-", "-", "20", "1"]);
        let details = render(&[r], true);
        assert!(
            details.contains(
                "  handover: t-1  c-1 -> c-3  revoke asked +12 ms, released +15 ms, assigned -\n"
            ),
            "{details}"
        );
        assert!(
            details.contains("  member:   c-3  epoch new -> 4, reconciled +20 ms\n"),
            "{details}"
        );
    }

    #[test]
    fn table_rows_show_phases_and_partition_counts() {
        let out = render(&[record()], false);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("GEN"));
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "4",
                "cooperative_follow_up",
                "2025-11-21",
                "08:00:00.250",
                "12",
                "8",
                "20",
                "0",
                "1",
                "1",
                "1",
                "1",
                "stable"
            ]
        );
    }

    #[test]
    fn details_list_moves_and_departures() {
        let out = render(&[record()], true);
        assert!(out.contains("moved:    t-1  c-1 -> c-3"), "{out}");
        assert!(out.contains("left:    c-2 (session_expired)"), "{out}");
        assert!(out.contains("joined:  c-3"), "{out}");
    }

    #[test]
    fn an_empty_history_says_so() {
        assert_eq!(render(&[], false), "no rebalances recorded\n");
    }

    #[test]
    fn group_ids_are_percent_encoded_as_one_path_segment() {
        assert_eq!(percent_encode("a b/c%é"), "a%20b%2Fc%25%C3%A9");
        assert_eq!(percent_encode("orders-1.x_y~"), "orders-1.x_y~");
    }

    #[test]
    fn http_bodies_are_read_by_length_chunked_or_to_close() {
        let by_length = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]trailing";
        assert_eq!(parse_response(by_length).unwrap(), (200, b"[]".to_vec()));
        let chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (404, b"abcde".to_vec()));
        let to_close = b"HTTP/1.0 200 OK\r\n\r\nbody";
        assert_eq!(parse_response(to_close).unwrap(), (200, b"body".to_vec()));
        assert!(parse_response(b"HTTP/1.1 200").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort").is_err());
    }

    #[test]
    fn times_are_printed_in_utc() {
        assert_eq!(
            starling_console::html::time_ms(0),
            "1970-01-01 00:00:00.000"
        );
        assert_eq!(
            starling_console::html::time_ms(951_782_400_001),
            "2000-02-29 00:00:00.001"
        );
    }
}
