//! The group page (`/ui/groups/{id}`): one consumer group's members and what each owns, every
//! partition with its owner, committed offset, end offset and lag, and the rebalance history
//! — as the [`crate::timeline`] picture and as a table, newest first, with why each one
//! started, how long its phases took and what moved. A KIP-848 rebalance has a folded detail
//! row under it (`<details>`, so it opens without JavaScript) with each member's way to the
//! new assignment: its epochs, the partitions it was asked to revoke and was given, and how
//! long after the rebalance began it reconciled.

use std::collections::HashMap;

use starling_group::RebalanceRecord;

use crate::html::{self, escape, url_encode, Html, Section};
use crate::sparkline::{sparkline, sum_series};

/// Lag above this many records is highlighted.
const HIGH_LAG: i64 = 1_000;
/// The rebalance table's columns (a detail row spans them all).
const REBALANCE_COLUMNS: usize = 11;

/// One member of the group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberRow {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    /// Consumer protocol: the member's epoch.
    pub epoch: Option<i32>,
    /// The partitions assigned to it, sorted.
    pub assigned: Vec<(String, i32)>,
}

/// One partition the group owns or has committed offsets for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartitionRow {
    pub topic: String,
    pub partition: i32,
    /// The member it is assigned to, if any.
    pub owner: Option<String>,
    pub committed_offset: Option<i64>,
    pub log_end_offset: Option<i64>,
    pub lag: Option<i64>,
    /// Recent lag readings, oldest first: `(at_ms, lag)`.
    pub lag_history: Vec<(i64, i64)>,
}

/// Partition rows per page of the group page.
pub const PARTITIONS_PER_PAGE: usize = 100;

/// Which partitions the group page lists: its query parameters `psort=lag` (largest lag
/// first; otherwise by topic and partition) and `ppage` (zero-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionQuery {
    pub by_lag: bool,
    pub page: usize,
}

impl PartitionQuery {
    /// The query from `(name, value)` pairs (already percent-decoded); unknown names and
    /// unreadable values are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> PartitionQuery {
        let mut query = PartitionQuery::default();
        for (name, value) in pairs {
            match name {
                "psort" => query.by_lag = value == "lag",
                "ppage" => query.page = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        query
    }

    /// The group page's URL with this query, anchored at the partition list.
    fn url(self, group_id: &str) -> String {
        let mut parts = Vec::new();
        if self.by_lag {
            parts.push("psort=lag".to_string());
        }
        if self.page > 0 {
            parts.push(format!("ppage={}", self.page));
        }
        let query = if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        };
        format!("/ui/groups/{}{query}#partitions", url_encode(group_id))
    }
}

/// The page of partitions `query` selects.
pub fn select_partitions(partitions: &[PartitionRow], query: PartitionQuery) -> Vec<&PartitionRow> {
    let mut rows: Vec<&PartitionRow> = partitions.iter().collect();
    if query.by_lag {
        // Largest first, partitions without a lag last; ties in topic and partition order.
        rows.sort_by(|a, b| {
            b.lag
                .is_some()
                .cmp(&a.lag.is_some())
                .then(b.lag.cmp(&a.lag))
                .then_with(|| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)))
        });
    }
    rows.into_iter()
        .skip(query.page.saturating_mul(PARTITIONS_PER_PAGE))
        .take(PARTITIONS_PER_PAGE)
        .collect()
}

/// Everything the group page shows.
#[derive(Debug, Clone, Default)]
pub struct GroupView {
    pub group_id: String,
    /// `classic` or `consumer` (KIP-848).
    pub kind: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: Option<String>,
    /// The generation (classic) or group epoch (consumer).
    pub generation: i32,
    pub members: Vec<MemberRow>,
    /// Sorted by topic and partition.
    pub partitions: Vec<PartitionRow>,
    /// Which of them the partition list shows.
    pub partition_query: PartitionQuery,
    /// Oldest first, an open one last.
    pub rebalances: Vec<RebalanceRecord>,
    pub now_ms: i64,
}

/// The group page.
pub fn render(view: &GroupView) -> String {
    let mut body = Html::new();
    facts(&mut body, view);
    members(&mut body, view);
    partitions(&mut body, view);
    body.raw("<h2 id=\"timeline\">Rebalances</h2>");
    body.raw("<div class=\"timeline\">")
        .raw(&crate::timeline::timeline_svg(
            &view.rebalances,
            view.now_ms,
        ))
        .raw("</div>");
    rebalance_table(&mut body, &view.rebalances, view.now_ms);
    let mut topics: Vec<String> = view.partitions.iter().map(|p| p.topic.clone()).collect();
    topics.dedup();
    crate::actions::actions_section(&mut body, &view.group_id, &topics);
    html::page(
        &format!("Group {}", view.group_id),
        Section::Groups,
        &body.into_string(),
        Some(5),
    )
}

fn facts(html: &mut Html, view: &GroupView) {
    let total_lag: Option<i64> = view
        .partitions
        .iter()
        .filter_map(|p| p.lag)
        .fold(None, |sum, lag| Some(sum.unwrap_or(0) + lag));
    html.raw("<dl class=\"facts\"><dt>State</dt>")
        .raw(&format!("<dd class=\"state-{}\">", escape(&view.state)))
        .text(&view.state)
        .raw("</dd><dt>Protocol</dt><dd>")
        .text(&view.kind);
    if !view.protocol_type.is_empty() {
        html.text(&format!(" ({})", view.protocol_type));
    }
    if let Some(protocol) = &view.protocol {
        html.text(&format!(", {protocol}"));
    }
    let generation = if view.kind == "consumer" {
        "Group epoch"
    } else {
        "Generation"
    };
    html.raw("</dd><dt>")
        .text(generation)
        .raw("</dt><dd>")
        .text(&view.generation.to_string())
        .raw("</dd><dt>Members</dt><dd>")
        .text(&view.members.len().to_string())
        .raw("</dd><dt>Total lag</dt><dd>")
        .text(&total_lag.map_or("–".to_string(), html::count));
    let history = sum_series(view.partitions.iter().map(|p| p.lag_history.as_slice()));
    if history.len() >= 2 {
        html.raw(" ").raw(&sparkline(&history, "total lag"));
    }
    html.raw("</dd></dl>");
}

fn members(html: &mut Html, view: &GroupView) {
    html.raw("<h2 id=\"members\">Members</h2>");
    if view.members.is_empty() {
        html.raw("<p class=\"muted\">No members.</p>");
        return;
    }
    let epoch = if view.kind == "consumer" {
        "<th class=\"num\">Epoch</th>"
    } else {
        ""
    };
    html.raw("<table class=\"members\"><thead><tr><th>Member</th><th>Instance</th>")
        .raw("<th>Client</th><th>Host</th>")
        .raw(epoch)
        .raw("<th>Assigned partitions</th></tr></thead><tbody>");
    for m in &view.members {
        html.raw("<tr><td class=\"id\">")
            .text(&m.member_id)
            .raw("</td><td class=\"id\">")
            .text(m.instance_id.as_deref().unwrap_or("–"))
            .raw("</td><td>")
            .text(&m.client_id)
            .raw("</td><td>")
            .text(&m.host)
            .raw("</td>");
        if view.kind == "consumer" {
            html.raw("<td class=\"num\">")
                .text(&m.epoch.map_or("–".to_string(), |e| e.to_string()))
                .raw("</td>");
        }
        html.raw("<td>")
            .text(&partition_list(&m.assigned))
            .raw("</td></tr>");
    }
    html.raw("</tbody></table>");
}

/// `orders 0-2, 5; audit 1` for a sorted partition list.
pub fn partition_list(partitions: &[(String, i32)]) -> String {
    if partitions.is_empty() {
        return "none".to_string();
    }
    let mut topics: Vec<(String, Vec<i32>)> = Vec::new();
    for (topic, partition) in partitions {
        match topics.last_mut() {
            Some((t, ps)) if t == topic => ps.push(*partition),
            _ => topics.push((topic.clone(), vec![*partition])),
        }
    }
    topics
        .into_iter()
        .map(|(topic, mut ps)| {
            ps.sort_unstable();
            let mut ranges: Vec<String> = Vec::new();
            let mut i = 0;
            while i < ps.len() {
                let start = ps[i];
                while i + 1 < ps.len() && ps[i + 1] == ps[i] + 1 {
                    i += 1;
                }
                ranges.push(if ps[i] == start {
                    start.to_string()
                } else {
                    format!("{start}-{}", ps[i])
                });
                i += 1;
            }
            format!("{topic} {}", ranges.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn partitions(html: &mut Html, view: &GroupView) {
    html.raw(&format!(
        "<h2 id=\"partitions\">Partitions <span class=\"muted\">({})</span></h2>",
        html::count(view.partitions.len() as i64)
    ));
    if view.partitions.is_empty() {
        html.raw("<p class=\"muted\">No assigned partitions and no committed offsets.</p>");
        return;
    }
    let query = view.partition_query;
    html.raw("<p class=\"muted\">Sorted ");
    let by_partition = PartitionQuery {
        by_lag: false,
        page: 0,
    };
    let by_lag = PartitionQuery {
        by_lag: true,
        page: 0,
    };
    if query.by_lag {
        html.link(&by_partition.url(&view.group_id), "by partition")
            .raw(" · <strong>by lag, largest first</strong>");
    } else {
        html.raw("<strong>by partition</strong> · ")
            .link(&by_lag.url(&view.group_id), "by lag, largest first");
    }
    html.raw("</p>");
    html.raw(
        "<table class=\"partitions\"><thead><tr><th>Topic</th><th class=\"num\">Partition</th>\
         <th>Owner</th><th class=\"num\">Committed</th><th class=\"num\">End</th>\
         <th class=\"num\">Lag</th><th>Recent lag</th></tr></thead><tbody>",
    );
    let offset = |o: Option<i64>| o.map_or("–".to_string(), html::count);
    for p in select_partitions(&view.partitions, query) {
        html.raw("<tr><td class=\"id\">")
            .link(&format!("/ui/topics/{}", url_encode(&p.topic)), &p.topic)
            .raw("</td><td class=\"num\">")
            .text(&p.partition.to_string())
            .raw("</td><td class=\"id\">")
            .text(p.owner.as_deref().unwrap_or("–"))
            .raw("</td><td class=\"num\">")
            .text(&offset(p.committed_offset))
            .raw("</td><td class=\"num\">")
            .text(&offset(p.log_end_offset))
            .raw("</td>");
        match p.lag {
            Some(lag) if lag > HIGH_LAG => html.raw("<td class=\"num lag-high\">"),
            _ => html.raw("<td class=\"num\">"),
        };
        html.text(&offset(p.lag))
            .raw("</td><td class=\"spark\">")
            .raw(&sparkline(&p.lag_history, "lag"))
            .raw("</td></tr>");
    }
    html.raw("</tbody></table>");
    html::pager(
        html,
        view.partitions.len(),
        PARTITIONS_PER_PAGE,
        query.page,
        |page| PartitionQuery { page, ..query }.url(&view.group_id),
    );
}

fn rebalance_table(html: &mut Html, records: &[RebalanceRecord], now_ms: i64) {
    if records.is_empty() {
        return;
    }
    html.raw(
        "<table class=\"rebalances\"><thead><tr><th class=\"num\">Gen</th><th>Started</th>\
         <th>Cause</th><th>Outcome</th><th class=\"num\">Join</th><th class=\"num\">Sync</th>\
         <th class=\"num\">Total</th><th>Consumption stopped</th><th>Joined</th><th>Left</th>\
         <th>Moved</th></tr></thead><tbody>",
    );
    let ms = |v: Option<i64>| v.map_or("–".to_string(), html::duration_ms);
    for (i, r) in records.iter().enumerate().rev() {
        html.raw("<tr><td class=\"num\">")
            .text(&r.generation.to_string())
            .raw("</td><td>")
            .text(&html::time_ms(r.started_ms))
            .raw("</td><td>")
            .text(r.cause.as_str());
        if let Some(member) = &r.trigger_member {
            html.raw("<br><span class=\"muted id\">by ")
                .text(member)
                .raw("</span>");
        }
        if let Some(reason) = &r.client_reason {
            html.raw("<br><span class=\"muted\">“")
                .text(reason)
                .raw("”</span>");
        }
        html.raw("</td><td>")
            .text(r.outcome.as_str())
            .raw("</td><td class=\"num\">")
            .text(&ms(r.join_phase_ms()))
            .raw("</td><td class=\"num\">")
            .text(&ms(r.sync_phase_ms()))
            .raw("</td><td class=\"num\">")
            .text(&ms(r.duration_ms()))
            .raw("</td><td>")
            .text(&stopped(records, i, now_ms))
            .raw("</td><td class=\"id\">")
            .text(&r.joined.join(", "))
            .raw("</td><td class=\"id\">");
        let left: Vec<String> = r
            .left
            .iter()
            .map(|d| format!("{} ({})", d.member_id, d.reason.as_str()))
            .collect();
        html.text(&left.join(", ")).raw("</td><td>");
        let moved: Vec<(String, i32)> = match &r.assignment {
            Some(change) => change
                .moved
                .iter()
                .map(|m| (m.topic.clone(), m.partition))
                .collect(),
            None => r
                .handovers
                .iter()
                .map(|h| (h.topic.clone(), h.partition))
                .collect(),
        };
        let stayed = r.assignment.as_ref().map_or(0, |c| c.stayed.len());
        if moved.is_empty() {
            html.raw("<span class=\"muted\">none</span>");
        } else {
            let mut moved = moved;
            moved.sort();
            html.text(&partition_list(&moved));
        }
        if stayed > 0 {
            html.raw(&format!(" <span class=\"muted\">({stayed} stayed)</span>"));
        }
        html.raw("</td></tr>");
        reconciliation_row(html, r);
    }
    html.raw("</tbody></table>");
}

/// What a rebalance (`records[i]`) stopped, as far as the broker can tell from its side:
///
/// - consumer protocol (KIP-848): only the partitions handed over, each from its release by
///   the old owner to its assignment to the new one — the longest of those gaps;
/// - classic cooperative (`cooperative-sticky`): only the partitions that moved, from the
///   first round (which revoked them) to the end of the round that handed them out;
/// - classic eager (every other assignor): every partition of the group, for the whole
///   rebalance, since every member gives up everything when it rejoins.
///
/// Client-side work (a rebalance callback, the first fetch) comes on top.
pub fn stopped(records: &[RebalanceRecord], i: usize, now_ms: i64) -> String {
    let r = &records[i];
    if !r.consumer_protocol && r.protocol_type != "consumer" {
        // Not consumers (Kafka Connect, Streams' own protocols): no partitions to stop.
        return "–".to_string();
    }
    if r.consumer_protocol {
        if r.handovers.is_empty() {
            // The hand-overs are known once every member holds its target.
            return match r.ended_ms {
                Some(_) => "nothing".to_string(),
                None => "only moved partitions; in progress".to_string(),
            };
        }
        let end = r.ended_ms.unwrap_or(now_ms);
        let mut waiting = false;
        let longest = r
            .handovers
            .iter()
            .filter_map(|h| {
                let released = h.released_ms?;
                let assigned = h.assigned_ms.unwrap_or_else(|| {
                    waiting = true;
                    end
                });
                Some(assigned.saturating_sub(released).max(0))
            })
            .max();
        let n = r.handovers.len();
        let partitions = if n == 1 { "partition" } else { "partitions" };
        return match longest {
            Some(gap) if waiting => format!(
                "{n} {partitions}, still waiting after {}",
                html::duration_ms(gap)
            ),
            Some(gap) => format!("{n} {partitions}, up to {}", html::duration_ms(gap)),
            None => format!("{n} {partitions}, not yet released"),
        };
    }
    if r.protocol.as_deref() == Some("cooperative-sticky") {
        let Some(change) = &r.assignment else {
            return "–".to_string();
        };
        if !change.revoked.is_empty() {
            let n = change.revoked.len();
            return format!("{n} revoked, handed out in the next round");
        }
        if change.moved.is_empty() {
            return "nothing".to_string();
        }
        let n = change.moved.len();
        let partitions = if n == 1 { "partition" } else { "partitions" };
        // The round before revoked them: their pause began when it did.
        let began = i
            .checked_sub(1)
            .map(|p| &records[p])
            .filter(|p| p.assignment.as_ref().is_some_and(|c| !c.revoked.is_empty()))
            .map_or(r.started_ms, |p| p.started_ms);
        return match r.ended_ms {
            Some(ended) => format!(
                "{n} {partitions}, ≈ {}",
                html::duration_ms(ended.saturating_sub(began))
            ),
            None => format!("{n} {partitions}, in progress"),
        };
    }
    match r.duration_ms() {
        Some(ms) => format!("every partition, ≈ {}", html::duration_ms(ms)),
        None => format!(
            "every partition, {} so far",
            html::duration_ms(now_ms.saturating_sub(r.started_ms))
        ),
    }
}

/// Consumer protocol: a folded row under `record` with each member's way to the new target —
/// epoch before and after, the partitions it was asked to revoke and was given, and how long
/// after the rebalance began it reconciled. Nothing for a record without reconciliation.
fn reconciliation_row(html: &mut Html, record: &RebalanceRecord) {
    if record.reconciliation.is_empty() {
        return;
    }
    // Each member's hand-overs: (asked to revoke, given).
    type Moves = (Vec<(String, i32)>, Vec<(String, i32)>);
    let mut moves: HashMap<&str, Moves> = HashMap::new();
    for h in &record.handovers {
        let partition = (h.topic.clone(), h.partition);
        moves
            .entry(h.from.as_str())
            .or_default()
            .0
            .push(partition.clone());
        moves.entry(h.to.as_str()).or_default().1.push(partition);
    }
    let members = record.reconciliation.len();
    let reconciled = record
        .reconciliation
        .iter()
        .filter(|m| m.reconciled_ms.is_some())
        .count();
    // The id keeps it open across the page's live refresh (console.js).
    html.raw(&format!(
        "<tr class=\"reconciliation\"><td colspan=\"{REBALANCE_COLUMNS}\">\
         <details id=\"reconciliation-{}-{}\"><summary>",
        record.generation, record.started_ms
    ))
    .text(&format!(
        "Reconciliation: {reconciled} of {members} member{} reconciled",
        if members == 1 { "" } else { "s" }
    ))
    .raw(
        "</summary><table class=\"reconciliation\"><thead><tr><th>Member</th>\
         <th class=\"num\">Epoch</th><th>Asked to revoke</th><th>Given</th>\
         <th class=\"num\">Reconciled after</th></tr></thead><tbody>",
    );
    for m in &record.reconciliation {
        let epochs = match m.epoch_before {
            Some(before) => format!("{before} → {}", m.epoch),
            None => format!("joined → {}", m.epoch),
        };
        let (mut revoked, mut given) = moves.remove(m.member_id.as_str()).unwrap_or_default();
        revoked.sort();
        given.sort();
        html.raw("<tr><td class=\"id\">")
            .text(&m.member_id)
            .raw("</td><td class=\"num\">")
            .text(&epochs)
            .raw("</td><td>")
            .text(&partition_list(&revoked))
            .raw("</td><td>")
            .text(&partition_list(&given))
            .raw("</td>");
        match m.reconciled_ms {
            Some(at) => html
                .raw("<td class=\"num\">")
                .text(&html::duration_ms(at.saturating_sub(record.started_ms))),
            None => html.raw("<td class=\"num muted\">not yet"),
        };
        html.raw("</td></tr>");
    }
    html.raw("</tbody></table></details></td></tr>");
}

#[cfg(test)]
mod tests {
    use starling_group::{
        AssignmentChange, MemberReconciliation, PartitionHandover, PartitionMove, PartitionOwner,
        RebalanceCause, RebalanceOutcome,
    };

    use super::*;

    fn view() -> GroupView {
        GroupView {
            partition_query: PartitionQuery::default(),
            group_id: "orders".to_string(),
            kind: "classic".to_string(),
            state: "Stable".to_string(),
            protocol_type: "consumer".to_string(),
            protocol: Some("range".to_string()),
            generation: 2,
            members: vec![MemberRow {
                member_id: "rdkafka-1".to_string(),
                instance_id: None,
                client_id: "<client>".to_string(),
                host: "/127.0.0.1".to_string(),
                epoch: None,
                assigned: vec![("t".to_string(), 0), ("t".to_string(), 1)],
            }],
            partitions: vec![
                PartitionRow {
                    topic: "t".to_string(),
                    partition: 0,
                    owner: Some("rdkafka-1".to_string()),
                    committed_offset: Some(10),
                    log_end_offset: Some(20),
                    lag: Some(10),
                    lag_history: vec![(0, 100), (10_000, 50), (20_000, 10)],
                },
                PartitionRow {
                    topic: "t".to_string(),
                    partition: 1,
                    owner: Some("rdkafka-1".to_string()),
                    committed_offset: None,
                    log_end_offset: Some(5000),
                    lag: Some(5000),
                    lag_history: vec![(0, 4000), (10_000, 4500), (20_000, 5000)],
                },
            ],
            rebalances: vec![RebalanceRecord {
                group_id: "orders".to_string(),
                generation: 2,
                cause: RebalanceCause::MemberJoined,
                trigger_member: Some("rdkafka-2".to_string()),
                client_reason: None,
                protocol_type: "consumer".to_string(),
                protocol: Some("range".to_string()),
                started_ms: 1_000,
                join_completed_ms: Some(4_000),
                ended_ms: Some(4_010),
                outcome: RebalanceOutcome::Stable,
                members_before: vec!["rdkafka-1".to_string()],
                members: vec![],
                joined: vec!["rdkafka-2".to_string()],
                left: vec![],
                assignment: Some(AssignmentChange {
                    moved: vec![PartitionMove {
                        topic: "t".to_string(),
                        partition: 1,
                        from: "rdkafka-1".to_string(),
                        to: "rdkafka-2".to_string(),
                    }],
                    stayed: vec![PartitionOwner {
                        topic: "t".to_string(),
                        partition: 0,
                        member_id: "rdkafka-1".to_string(),
                    }],
                    assigned: vec![],
                    revoked: vec![],
                }),
                handovers: vec![],
                consumer_protocol: false,
                reconciliation: vec![],
            }],
            now_ms: 10_000,
        }
    }

    #[test]
    fn partitions_are_paged_and_sorted_by_lag_on_request() {
        let mut v = view();
        v.partitions = (0..250)
            .map(|i| PartitionRow {
                topic: "t".to_string(),
                partition: i,
                lag: (i % 7 != 0).then_some(i64::from(i % 50)),
                ..PartitionRow::default()
            })
            .collect();
        let page = |pairs: &[(&str, &str)]| -> Vec<(i32, Option<i64>)> {
            select_partitions(
                &v.partitions,
                PartitionQuery::from_pairs(pairs.iter().copied()),
            )
            .iter()
            .map(|p| (p.partition, p.lag))
            .collect()
        };
        let first = page(&[]);
        assert_eq!(first.len(), PARTITIONS_PER_PAGE);
        assert_eq!(first[0].0, 0);
        assert_eq!(page(&[("ppage", "2")]).len(), 50);
        let worst = page(&[("psort", "lag")]);
        // Partition 49 has no lag (a multiple of 7).
        assert_eq!(
            worst[0],
            (99, Some(49)),
            "largest lag first, lowest partition on a tie"
        );
        assert_eq!(worst[1], (149, Some(49)));
        let last = page(&[("psort", "lag"), ("ppage", "2")]);
        assert_eq!(last.last().unwrap().1, None, "no lag sorts last");

        v.group_id = "a b".to_string();
        v.partition_query = PartitionQuery::from_pairs([("psort", "lag"), ("ppage", "1")]);
        let html = render(&v);
        assert!(
            html.contains("Partitions <span class=\"muted\">(250)</span>"),
            "{html}"
        );
        assert!(html.contains("page 2 of 3"), "{html}");
        assert!(
            html.contains("href=\"/ui/groups/a%20b?psort=lag&amp;ppage=2#partitions\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/ui/groups/a%20b#partitions\">by partition</a>"),
            "{html}"
        );
        assert_eq!(
            html.matches("<td class=\"spark\">").count(),
            PARTITIONS_PER_PAGE
        );
    }

    #[test]
    fn partition_lists_collapse_runs_per_topic() {
        let list = |ps: &[(&str, i32)]| {
            partition_list(
                &ps.iter()
                    .map(|(t, p)| (t.to_string(), *p))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(list(&[]), "none");
        assert_eq!(
            list(&[("a", 0), ("a", 1), ("a", 2), ("a", 5), ("b", 3)]),
            "a 0-2, 5; b 3"
        );
    }

    #[test]
    fn the_page_shows_members_partitions_lag_and_each_rebalance() {
        let html = render(&view());
        assert!(
            html.contains("<title>Group orders · Starling</title>"),
            "{html}"
        );
        assert!(html.contains("&lt;client&gt;"), "{html}");
        assert!(html.contains("t 0-1"), "{html}");
        assert!(
            html.contains("<dt>Total lag</dt><dd>5\u{202f}010 <svg class=\"sparkline rising\""),
            "{html}"
        );
        assert!(
            html.contains("<title>total lag over 20.0 s: 4\u{202f}100 then, 5\u{202f}010 now, 5\u{202f}010 at most</title>"),
            "{html}"
        );
        assert!(
            html.contains("<title>lag over 20.0 s: 100 then, 10 now, 100 at most</title>"),
            "partition 0's own history: {html}"
        );
        assert!(
            html.contains("<td class=\"num lag-high\">5\u{202f}000</td>"),
            "{html}"
        );
        assert!(html.contains("by rdkafka-2"), "{html}");
        assert!(html.contains(">3.0 s<"), "join phase: {html}");
        assert!(html.contains(">10 ms<"), "sync phase: {html}");
        assert!(
            html.contains("t 1 <span class=\"muted\">(1 stayed)</span>"),
            "{html}"
        );
        assert!(html.contains("<div class=\"timeline\">"), "{html}");
    }

    #[test]
    fn a_consumer_group_shows_member_epochs_and_an_empty_group_says_so() {
        let mut v = view();
        v.kind = "consumer".to_string();
        v.members[0].epoch = Some(7);
        let html = render(&v);
        assert!(html.contains("<dt>Group epoch</dt>"), "{html}");
        assert!(html.contains("<td class=\"num\">7</td>"), "{html}");
        let empty = render(&GroupView {
            group_id: "idle".to_string(),
            ..GroupView::default()
        });
        assert!(empty.contains("No members."), "{empty}");
        assert!(empty.contains("No assigned partitions"), "{empty}");
    }

    #[test]
    fn what_each_kind_of_rebalance_stopped() {
        // Classic eager (range): everything, for the whole rebalance.
        let eager = view().rebalances;
        assert_eq!(stopped(&eager, 0, 10_000), "every partition, ≈ 3.0 s");
        let mut open = eager.clone();
        open[0].ended_ms = None;
        assert_eq!(stopped(&open, 0, 6_000), "every partition, 5.0 s so far");
        let mut connect = eager.clone();
        connect[0].protocol_type = "connect".to_string();
        assert_eq!(stopped(&connect, 0, 10_000), "–");

        // Classic cooperative: the first round revokes t-1, the second hands it out; t-1 was
        // stopped from the first round's start to the second's end.
        let mut first = eager[0].clone();
        first.protocol = Some("cooperative-sticky".to_string());
        let mut second = first.clone();
        first.assignment = Some(AssignmentChange {
            revoked: vec![PartitionOwner {
                topic: "t".to_string(),
                partition: 1,
                member_id: "rdkafka-1".to_string(),
            }],
            ..first.assignment.clone().unwrap()
        });
        first.assignment.as_mut().unwrap().moved.clear();
        second.generation = 3;
        second.started_ms = 4_100;
        second.ended_ms = Some(4_600);
        let rounds = vec![first, second];
        assert_eq!(
            stopped(&rounds, 0, 10_000),
            "1 revoked, handed out in the next round"
        );
        assert_eq!(stopped(&rounds, 1, 10_000), "1 partition, ≈ 3.6 s");
        let mut nothing = rounds[1].clone();
        nothing.assignment.as_mut().unwrap().moved.clear();
        assert_eq!(stopped(&[nothing], 0, 10_000), "nothing");

        // Consumer protocol: the longest release-to-assignment gap of the moved partitions.
        let mut v = consumer_view();
        let record = &mut v.rebalances[0];
        record.handovers[1].assigned_ms = Some(1_450);
        assert_eq!(
            stopped(&v.rebalances, 0, 10_000),
            "3 partitions, up to 250 ms"
        );
        v.rebalances[0].handovers[2].assigned_ms = None;
        v.rebalances[0].ended_ms = None;
        assert_eq!(
            stopped(&v.rebalances, 0, 2_000),
            "3 partitions, still waiting after 800 ms"
        );
        // Open, with no hand-over known yet: not every partition, as for an eager group.
        v.rebalances[0].handovers.clear();
        v.rebalances[0].reconciliation.clear();
        assert_eq!(
            stopped(&v.rebalances, 0, 2_000),
            "only moved partitions; in progress"
        );
        v.rebalances[0].ended_ms = Some(1_900);
        assert_eq!(stopped(&v.rebalances, 0, 2_000), "nothing");
        let html = render(&consumer_view());
        assert!(html.contains("<th>Consumption stopped</th>"), "{html}");
        assert!(
            html.contains("<td>3 partitions, up to 100 ms</td>"),
            "{html}"
        );
    }

    fn handover(topic: &str, partition: i32, from: &str, to: &str) -> PartitionHandover {
        PartitionHandover {
            topic: topic.to_string(),
            partition,
            from: from.to_string(),
            to: to.to_string(),
            revoke_asked_ms: Some(1_100),
            released_ms: Some(1_200),
            assigned_ms: Some(1_300),
        }
    }

    fn reconciled(
        member_id: &str,
        epoch_before: Option<i32>,
        epoch: i32,
        reconciled_ms: Option<i64>,
    ) -> MemberReconciliation {
        MemberReconciliation {
            member_id: member_id.to_string(),
            epoch_before,
            epoch,
            reconciled_ms,
        }
    }

    /// A consumer-protocol scale-out at +0: a (epoch 3) hands t-2 and t-3 to b, which joined,
    /// and u-0 to c (epoch 4). a reconciled after 2.5 s, c after 800 ms, b not yet.
    fn consumer_view() -> GroupView {
        let mut v = view();
        v.kind = "consumer".to_string();
        let record = &mut v.rebalances[0];
        record.consumer_protocol = true;
        record.assignment = None;
        record.handovers = vec![
            handover("t", 3, "a", "b"),
            handover("u", 0, "a", "c"),
            handover("t", 2, "a", "b"),
        ];
        record.reconciliation = vec![
            reconciled("a", Some(3), 5, Some(3_500)),
            reconciled("b", None, 5, None),
            reconciled("c", Some(4), 5, Some(1_800)),
        ];
        v
    }

    /// The reconciliation table's rows, each as its cells' text.
    fn reconciliation_rows(html: &str) -> Vec<Vec<String>> {
        let start = html
            .find("<table class=\"reconciliation\">")
            .expect("a reconciliation table");
        let table = &html[start..start + html[start..].find("</table>").unwrap()];
        let body = &table[table.find("<tbody>").unwrap() + "<tbody>".len()..];
        body.split("<tr>")
            .filter(|row| !row.is_empty())
            .map(|row| {
                row.split("<td")
                    .skip(1)
                    .map(|cell| {
                        let text = &cell[cell.find('>').unwrap() + 1..];
                        text[..text.find("</td>").unwrap()].to_string()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_consumer_rebalance_folds_each_members_epochs_revokes_gains_and_reconcile_time() {
        let html = render(&consumer_view());
        assert!(
            html.contains(
                "<tr class=\"reconciliation\"><td colspan=\"11\">\
                 <details id=\"reconciliation-2-1000\"><summary>\
                 Reconciliation: 2 of 3 members reconciled</summary>"
            ),
            "{html}"
        );
        let rows = reconciliation_rows(&html);
        let row = |cells: [&str; 5]| cells.map(str::to_string).to_vec();
        assert_eq!(
            rows,
            vec![
                row(["a", "3 → 5", "t 2-3; u 0", "none", "2.5 s"]),
                row(["b", "joined → 5", "none", "t 2-3", "not yet"]),
                row(["c", "4 → 5", "none", "u 0", "800 ms"]),
            ],
            "{html}"
        );
        // The detail row sits right under its rebalance's row.
        let moved = html
            .find("<td>t 2-3; u 0</td></tr>")
            .expect("the moved cell");
        let details = html.find("<tr class=\"reconciliation\">").unwrap();
        assert!(moved < details, "{html}");
    }

    #[test]
    fn a_rebalance_without_reconciliation_has_no_detail_row() {
        let html = render(&view());
        assert!(!html.contains("reconciliation"), "{html}");
        assert!(!html.contains("<details"), "{html}");
    }

    #[test]
    fn member_ids_and_topics_in_the_reconciliation_are_escaped() {
        let mut v = consumer_view();
        let record = &mut v.rebalances[0];
        record.handovers = vec![handover("<t>", 0, "<a onclick=x>", "<b>")];
        record.reconciliation = vec![
            reconciled("<a onclick=x>", Some(1), 2, Some(1_500)),
            reconciled("<b>", None, 2, None),
        ];
        let html = render(&v);
        for raw in ["<t>", "<a onclick", "<b>"] {
            assert!(!html.contains(raw), "{raw} in {html}");
        }
        let rows = reconciliation_rows(&html);
        assert_eq!(rows[0][0], "&lt;a onclick=x&gt;", "{html}");
        assert_eq!(rows[0][2], "&lt;t&gt; 0", "{html}");
        assert_eq!(rows[1][3], "&lt;t&gt; 0", "{html}");
    }

    #[test]
    fn client_supplied_ids_and_reasons_are_escaped() {
        let mut v = view();
        v.group_id = "<grp>".to_string();
        v.members[0].member_id = "<m onclick=x>".to_string();
        v.rebalances[0].client_reason = Some("</td><script>".to_string());
        let html = render(&v);
        for raw in ["<grp>", "<m onclick", "<script>"] {
            assert!(!html.contains(raw), "{raw} in {html}");
        }
    }
}
