//! The rebalance timeline: an SVG picture of who owned which partition over one group's
//! rebalances.
//!
//! Time runs right, from a little before the first rebalance to now, with offsets from the
//! first rebalance's start on the axis. Each partition (`topic-partition`) is a row:
//!
//! - a bar for each stretch of time one member owned it, coloured by member, replayed from the
//!   records' decoded assignments (a record sets owners from its end; a KIP-848 hand-over
//!   moves the boundary to when the old owner released the partition and the new one got it);
//!   a grey bar where a Stable record's assignment could not be read, so the owner is unknown;
//! - a hatched red segment where a consumer-protocol hand-over left the partition with no
//!   consumer (released, or asked to revoke, until the new owner was given it);
//! - for a KIP-848 hand-over, each member's part in it: a striped stretch outlined in the old
//!   owner's colour while it was revoking (from being asked to revoke the partition until it
//!   released it, or until the rebalance's end or now if it has not), and a tick where the new
//!   owner was given it.
//!
//! Behind the rows, each rebalance is a translucent band, its join phase and sync phase in two
//! shades, labelled with its generation and cause. A legend names the members' colours (and,
//! when the picture shows hand-overs, their markings). Every
//! element carries a `<title>` with the details for hover; everything that came from clients is
//! escaped. The picture is bounded: at most [`MAX_ROWS`] partition rows and
//! [`MAX_LEGEND_MEMBERS`] legend entries, a fixed width, and a height that grows with the rows.

use std::collections::HashMap;
use std::fmt::Write as _;

use starling_group::{PartitionHandover, RebalanceOutcome, RebalanceRecord};

use crate::html::{duration_ms, escape, time_ms};

/// At most this many partition rows are drawn; a note counts the rest.
pub const MAX_ROWS: usize = 200;
/// At most this many members are named in the legend; a note counts the rest.
pub const MAX_LEGEND_MEMBERS: usize = 40;

const WIDTH: f64 = 1100.0;
/// The plot's left edge; row labels sit left of it.
const PLOT_LEFT: f64 = 190.0;
const PLOT_RIGHT: f64 = WIDTH - 16.0;
/// Where the rebalance bands (and their labels) begin.
const BANDS_TOP: f64 = 26.0;
/// Where the first partition row begins.
const PLOT_TOP: f64 = 68.0;
const ROW: f64 = 18.0;
const BAR: f64 = 12.0;
/// The plot's height when there are no partition rows, so the bands still show.
const EMPTY_PLOT: f64 = 24.0;
const ROW_LABEL_CHARS: usize = 28;
const BAND_LABEL_CHARS: usize = 40;
const LEGEND_LABEL_CHARS: usize = 26;
const LEGEND_COLUMNS: usize = 4;
const LEGEND_LINE: f64 = 18.0;
/// At most this many member ids in a band's hover text per list.
const TITLE_MEMBERS: usize = 20;

/// Member colours, by order of first appearance (red is left for no-owner gaps).
const PALETTE: [&str; 12] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
    "#393b79", "#637939", "#8c6d31", "#7b4173",
];
const UNKNOWN_FILL: &str = "#d0d0d0";
const JOIN_FILL: &str = "#f5c542";
const SYNC_FILL: &str = "#5b9bd5";
const GAP_STROKE: &str = "#d62728";
/// The outline of a revoking stretch whose old owner never owned a partition in the replay.
const NO_MEMBER_STROKE: &str = "#555555";
const ASSIGNED_MARK_STROKE: &str = "#222222";
/// Keys on the legend's first line (the shading and the hand-over markings).
const LEGEND_KEYS: usize = 6;

/// A partition: topic, then partition number (the rows' order).
type PartitionKey<'a> = (&'a str, i32);

/// An SVG picture of one group's rebalance history (`records`, oldest first) up to `now_ms`.
pub fn timeline_svg(records: &[RebalanceRecord], now_ms: i64) -> String {
    if records.is_empty() {
        return empty_svg();
    }
    let scale = Scale::for_history(records, now_ms);
    let partitions = Partitions::of(records);
    // Partition indices follow the rows' order, so the rows drawn are indices 0..rows.len().
    let rows = &partitions.keys[..partitions.keys.len().min(MAX_ROWS)];
    let hidden_rows = partitions.keys.len() - rows.len();
    let ownership = replay(records, &partitions, now_ms);

    let plot_bottom = if rows.is_empty() {
        PLOT_TOP + EMPTY_PLOT
    } else {
        PLOT_TOP + rows.len() as f64 * ROW
    };
    let axis_bottom = plot_bottom + 26.0;
    let note_bottom = if hidden_rows > 0 {
        axis_bottom + 16.0
    } else {
        axis_bottom
    };
    let legend_top = note_bottom + 10.0;
    let legend = Legend::new(&ownership.members);
    let height = legend_top + legend.height() + 8.0;

    let group_id = &records[0].group_id;
    let mut svg = String::with_capacity(8 * 1024 + rows.len() * 512);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0} {height:.0}" width="{WIDTH:.0}" height="{height:.0}" role="img" aria-label="Rebalance timeline of group {}: {} rebalances, {} partitions" font-family="sans-serif" font-size="11">"#,
        escape(group_id),
        records.len(),
        partitions.keys.len()
    );
    draw_defs(&mut svg);
    let _ = write!(
        svg,
        r##"<rect x="0" y="0" width="{WIDTH:.0}" height="{height:.0}" fill="#ffffff"/>"##
    );
    let _ = write!(
        svg,
        r#"<text x="{PLOT_LEFT:.0}" y="15" font-weight="bold">Rebalances from {} UTC</text>"#,
        time_ms(scale.origin_ms)
    );

    draw_row_backgrounds(&mut svg, rows);
    draw_bands(&mut svg, records, &scale, now_ms, plot_bottom);
    draw_bars(&mut svg, rows, &ownership, &scale);
    let handovers_shown = draw_handovers(
        &mut svg,
        records,
        &partitions,
        rows.len(),
        &ownership,
        &scale,
        now_ms,
    );
    draw_axis(&mut svg, &scale, now_ms, plot_bottom);
    if hidden_rows > 0 {
        let _ = write!(
            svg,
            r##"<text class="more-partitions" x="{PLOT_LEFT:.0}" y="{:.1}" fill="#444444">… and {hidden_rows} more partitions</text>"##,
            axis_bottom + 12.0
        );
    }
    legend.draw(&mut svg, legend_top, handovers_shown);
    svg.push_str("</svg>");
    svg
}

/// The patterns the picture fills with: the no-consumer hatching and the revoking stripes
/// (white, over the old owner's bar).
fn draw_defs(svg: &mut String) {
    let _ = write!(
        svg,
        r##"<defs><pattern id="starling-timeline-gap" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fbd5d3"/><line x1="0" y1="0" x2="0" y2="6" stroke="{GAP_STROKE}" stroke-width="3"/></pattern><pattern id="starling-timeline-revoking" patternUnits="userSpaceOnUse" width="5" height="5" patternTransform="rotate(-45)"><line x1="0" y1="0" x2="0" y2="5" stroke="#ffffff" stroke-opacity="0.75" stroke-width="2"/></pattern></defs>"##
    );
}

/// The picture of a group with no rebalances recorded.
fn empty_svg() -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0} 40" width="{WIDTH:.0}" height="40" role="img" aria-label="No rebalances recorded" font-family="sans-serif" font-size="12"><text x="12" y="24" fill="#444444">No rebalances recorded</text></svg>"##
    )
}

/// Maps wall-clock milliseconds to x positions in the plot.
#[derive(Debug, Clone, Copy)]
struct Scale {
    /// The first rebalance's start: the axis counts from here.
    origin_ms: i64,
    /// The plot's left edge in time (a little before `origin_ms`).
    from_ms: i64,
    /// The plot's right edge in time (now, or the latest time recorded if later).
    to_ms: i64,
}

impl Scale {
    /// The span of `records` up to `now_ms`, with a little margin on the left; never empty.
    fn for_history(records: &[RebalanceRecord], now_ms: i64) -> Scale {
        let origin_ms = records.iter().map(|r| r.started_ms).min().unwrap_or(now_ms);
        let latest = records
            .iter()
            .flat_map(|r| [Some(r.started_ms), r.join_completed_ms, r.ended_ms])
            .flatten()
            .fold(now_ms, i64::max);
        let span = latest.saturating_sub(origin_ms).max(0);
        let margin = (span / 50).max(200);
        let from_ms = origin_ms.saturating_sub(margin);
        let mut to_ms = latest.max(origin_ms);
        if to_ms <= from_ms {
            to_ms = from_ms.saturating_add(1000);
        }
        let from_ms = from_ms.min(to_ms - 1);
        Scale {
            origin_ms,
            from_ms,
            to_ms,
        }
    }

    /// The x position of `ms`, clamped to the plot.
    fn x(&self, ms: i64) -> f64 {
        let ms = ms.clamp(self.from_ms, self.to_ms);
        let offset = (i128::from(ms) - i128::from(self.from_ms)) as f64;
        let span = (i128::from(self.to_ms) - i128::from(self.from_ms)).max(1) as f64;
        PLOT_LEFT + offset / span * (PLOT_RIGHT - PLOT_LEFT)
    }

    /// The x positions of `from_ms`..`to_ms` as (left, width), at least `min_width` wide.
    fn span(&self, from_ms: i64, to_ms: i64, min_width: f64) -> (f64, f64) {
        let left = self.x(from_ms);
        let right = self.x(to_ms.max(from_ms));
        let width = (right - left).max(min_width);
        (left.min(PLOT_RIGHT - min_width), width)
    }

    /// `ms` as an offset from the first rebalance's start: `+12.5 s`, `-300 ms`.
    fn offset(&self, ms: i64) -> String {
        let delta = ms.saturating_sub(self.origin_ms);
        if delta < 0 {
            format!("-{}", duration_ms(delta.saturating_neg()))
        } else {
            format!("+{}", duration_ms(delta))
        }
    }
}

/// Every partition the history names (assignment lists or hand-overs), interned to a dense
/// index so the replay works on `Vec` slots rather than string-keyed maps. The indices follow
/// the rows' order (topic, then partition number): partition `i` is row `i`.
struct Partitions<'a> {
    /// Each partition's key, by index: sorted, no duplicates.
    keys: Vec<PartitionKey<'a>>,
    /// For each record (same position as in `records`), the index of every partition it names.
    named: Vec<RecordPartitions>,
}

/// The partition indices one record names, list by list, in the lists' order.
#[derive(Debug, Default)]
struct RecordPartitions {
    moved: Vec<usize>,
    stayed: Vec<usize>,
    assigned: Vec<usize>,
    revoked: Vec<usize>,
    handovers: Vec<usize>,
}

impl<'a> Partitions<'a> {
    fn of(records: &'a [RebalanceRecord]) -> Partitions<'a> {
        // Index in order of first appearance, then renumber in sorted order.
        let mut interner = Interner::default();
        let mut named: Vec<RecordPartitions> = records
            .iter()
            .map(|record| {
                let mut named = RecordPartitions::default();
                if let Some(change) = &record.assignment {
                    let mut index =
                        |topic: &'a String, partition| interner.index((topic.as_str(), partition));
                    named.moved = change
                        .moved
                        .iter()
                        .map(|p| index(&p.topic, p.partition))
                        .collect();
                    for (list, owners) in [
                        (&mut named.stayed, &change.stayed),
                        (&mut named.assigned, &change.assigned),
                        (&mut named.revoked, &change.revoked),
                    ] {
                        *list = owners
                            .iter()
                            .map(|p| index(&p.topic, p.partition))
                            .collect();
                    }
                }
                named.handovers = record
                    .handovers
                    .iter()
                    .map(|h| interner.index((h.topic.as_str(), h.partition)))
                    .collect();
                named
            })
            .collect();

        // Most often the first record names every partition, in order: nothing to renumber.
        if interner.keys.is_sorted() {
            return Partitions {
                keys: interner.keys,
                named,
            };
        }
        // `order[rank]` is the first-appearance index of the partition at `rank`.
        let mut order: Vec<usize> = (0..interner.keys.len()).collect();
        order.sort_unstable_by_key(|&i| interner.keys[i]);
        let mut rank = vec![0; order.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        for record in &mut named {
            for list in [
                &mut record.moved,
                &mut record.stayed,
                &mut record.assigned,
                &mut record.revoked,
                &mut record.handovers,
            ] {
                list.iter_mut().for_each(|i| *i = rank[*i]);
            }
        }
        Partitions {
            keys: order.iter().map(|&i| interner.keys[i]).collect(),
            named,
        }
    }
}

/// Partition keys to dense indices, in order of first appearance.
#[derive(Debug, Default)]
struct Interner<'a> {
    /// Each index's key.
    keys: Vec<PartitionKey<'a>>,
    /// Each key's index.
    indices: HashMap<PartitionKey<'a>, usize>,
    /// The index given last. Records list partitions in order, so the next key is most often
    /// the one interned after it: one comparison finds it without hashing.
    last: Option<usize>,
}

impl<'a> Interner<'a> {
    fn index(&mut self, key: PartitionKey<'a>) -> usize {
        let guess = self.last.map_or(0, |last| last + 1);
        let index = match self.keys.get(guess) {
            Some(&(topic, partition)) if partition == key.1 && topic == key.0 => guess,
            _ => *self.indices.entry(key).or_insert_with(|| {
                self.keys.push(key);
                self.keys.len() - 1
            }),
        };
        self.last = Some(index);
        index
    }
}

/// Who owned a partition over one stretch of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// The member at this index of [`Ownership::members`].
    Member(usize),
    /// A Stable rebalance's assignment could not be read.
    Unknown,
}

/// One owner of one partition from `from_ms` to `to_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stretch {
    owner: Owner,
    from_ms: i64,
    to_ms: i64,
}

/// The history's partition ownership, replayed. Partitions are [`Partitions`] indices.
#[derive(Debug)]
struct Ownership<'a> {
    /// Member ids in order of first appearance as an owner (their colour index).
    members: Vec<&'a str>,
    /// Each member id's index in `members`.
    member_indices: HashMap<&'a str, usize>,
    /// Each partition's stretches, in time order, without overlaps.
    stretches: Vec<Vec<Stretch>>,
    /// The stretch each partition is in now, with its start; `None` when it has no owner.
    open: Vec<Option<(Owner, i64)>>,
}

impl<'a> Ownership<'a> {
    /// No owners yet, for `partitions` partitions.
    fn new(partitions: usize) -> Ownership<'a> {
        Ownership {
            members: Vec::new(),
            member_indices: HashMap::new(),
            stretches: vec![Vec::new(); partitions],
            open: vec![None; partitions],
        }
    }

    /// The owner `member_id` is, indexed the first time it is met.
    fn member(&mut self, member_id: &'a str) -> Owner {
        let next = self.members.len();
        let index = *self.member_indices.entry(member_id).or_insert(next);
        if index == next {
            self.members.push(member_id);
        }
        Owner::Member(index)
    }

    /// [`Ownership::member`] for a partition `current` owns: no look-up if it is that member.
    fn member_after(&mut self, member_id: &'a str, current: Owner) -> Owner {
        match current {
            Owner::Member(index) if self.members[index] == member_id => current,
            _ => self.member(member_id),
        }
    }

    /// Ends `partition`'s open stretch at `at_ms` (not before it began).
    fn close(&mut self, partition: usize, at_ms: i64) {
        if let Some((owner, from_ms)) = self.open[partition].take() {
            self.stretches[partition].push(Stretch {
                owner,
                from_ms,
                to_ms: at_ms.max(from_ms),
            });
        }
    }

    /// Opens a stretch of `owner` on `partition` at `at_ms` (not before its last stretch
    /// ended).
    fn open(&mut self, partition: usize, owner: Owner, at_ms: i64) {
        let last_end = self.stretches[partition].last().map_or(at_ms, |s| s.to_ms);
        self.open[partition] = Some((owner, at_ms.max(last_end)));
    }
}

/// When a hand-over left the partition with no consumer: when its owner released it. Until
/// then (asked to revoke or not) the owner still consumes it: that is the revoking stretch,
/// not a gap.
fn gap_start(handover: &PartitionHandover) -> Option<i64> {
    handover.released_ms
}

/// Replays the records' assignments, in the order they closed, into ownership stretches up to
/// `now_ms`. Partitions are visited in index (row) order, so members are met, and coloured, in
/// the same order as a replay keyed by (topic, partition) would meet them.
fn replay<'a>(
    records: &'a [RebalanceRecord],
    partitions: &Partitions<'a>,
    now_ms: i64,
) -> Ownership<'a> {
    let mut closed: Vec<(i64, usize)> = records
        .iter()
        .enumerate()
        .filter_map(|(r, record)| record.ended_ms.map(|ended| (ended, r)))
        .collect();
    closed.sort_by_key(|(ended, _)| *ended);

    let count = partitions.keys.len();
    let mut ownership = Ownership::new(count);
    // Whether a replayed record has named the partition, or it has had an owner.
    let mut seen = vec![false; count];
    // One record's assignment, by partition: the member that owns it next (the last one its
    // lists name) and its hand-over (the last one). Emptied after each record.
    let mut next: Vec<Option<&str>> = vec![None; count];
    let mut handovers: Vec<Option<&PartitionHandover>> = vec![None; count];
    for (at_ms, r) in closed {
        let record = &records[r];
        let named = &partitions.named[r];
        match &record.assignment {
            Some(change) => {
                for (m, &p) in change.moved.iter().zip(&named.moved) {
                    next[p] = Some(m.to.as_str());
                }
                let owners = (change.stayed.iter().zip(&named.stayed))
                    .chain(change.assigned.iter().zip(&named.assigned));
                for (owner, &p) in owners {
                    next[p] = Some(owner.member_id.as_str());
                }
                for &p in &named.revoked {
                    seen[p] = true;
                }
                for (h, &p) in record.handovers.iter().zip(&named.handovers) {
                    handovers[p] = Some(h);
                }

                for p in 0..count {
                    let Some((owner, _)) = ownership.open[p] else {
                        continue;
                    };
                    let next_owner = next[p].map(|m| ownership.member_after(m, owner));
                    if next_owner != Some(owner) {
                        let released = handovers[p].and_then(gap_start);
                        ownership.close(p, released.map_or(at_ms, |r| r.min(at_ms)));
                    }
                }
                for p in 0..count {
                    let Some(member_id) = next[p].take() else {
                        continue;
                    };
                    seen[p] = true;
                    if ownership.open[p].is_some() {
                        continue;
                    }
                    let owner = ownership.member(member_id);
                    let assigned = handovers[p]
                        .filter(|h| h.to == member_id)
                        .and_then(|h| h.assigned_ms);
                    ownership.open(p, owner, assigned.map_or(at_ms, |a| a.min(at_ms)));
                }
                for &p in &named.handovers {
                    handovers[p] = None;
                }
            }
            None if record.outcome == RebalanceOutcome::Stable => {
                for (p, seen) in seen.iter_mut().enumerate() {
                    let owner = ownership.open[p].map(|(owner, _)| owner);
                    *seen |= owner.is_some();
                    if *seen && owner != Some(Owner::Unknown) {
                        ownership.close(p, at_ms);
                        ownership.open(p, Owner::Unknown, at_ms);
                    }
                }
            }
            None if matches!(
                record.outcome,
                RebalanceOutcome::Empty | RebalanceOutcome::Deleted
            ) =>
            {
                for p in 0..count {
                    ownership.close(p, at_ms);
                }
            }
            None => {}
        }
    }
    for p in 0..count {
        ownership.close(p, now_ms);
    }
    ownership
}

/// `text` cut to `max_chars` characters, with an ellipsis if it was longer (not escaped).
fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn partition_name((topic, partition): PartitionKey<'_>) -> String {
    format!("{topic}-{partition}")
}

fn member_colour(owner: Owner) -> &'static str {
    match owner {
        Owner::Member(index) => PALETTE[index % PALETTE.len()],
        Owner::Unknown => UNKNOWN_FILL,
    }
}

fn row_top(row: usize) -> f64 {
    PLOT_TOP + row as f64 * ROW
}

/// Zebra stripes and the partition names left of the plot.
fn draw_row_backgrounds(svg: &mut String, rows: &[PartitionKey<'_>]) {
    for (row, key) in rows.iter().enumerate() {
        let top = row_top(row);
        if row % 2 == 0 {
            let _ = write!(
                svg,
                r##"<rect x="{PLOT_LEFT:.1}" y="{top:.1}" width="{:.1}" height="{ROW:.1}" fill="#f4f4f4"/>"##,
                PLOT_RIGHT - PLOT_LEFT
            );
        }
        let name = partition_name(*key);
        let _ = write!(
            svg,
            r#"<text class="partition" x="{:.1}" y="{:.1}" text-anchor="end"><title>{}</title>{}</text>"#,
            PLOT_LEFT - 6.0,
            top + ROW / 2.0 + 4.0,
            escape(&name),
            escape(&truncate(&name, ROW_LABEL_CHARS))
        );
    }
}

/// Member ids for hover text, at most [`TITLE_MEMBERS`] of them.
fn member_list<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = ids.len();
    let mut list: Vec<&str> = ids.take(TITLE_MEMBERS).collect();
    let more = total - list.len();
    let more_text = format!("… {more} more");
    if more > 0 {
        list.push(&more_text);
    }
    if list.is_empty() {
        "none".to_string()
    } else {
        escape(&list.join(", "))
    }
}

/// One translucent band per rebalance: the join phase, then the sync phase, with a label.
fn draw_bands(
    svg: &mut String,
    records: &[RebalanceRecord],
    scale: &Scale,
    now_ms: i64,
    plot_bottom: f64,
) {
    for (index, record) in records.iter().enumerate() {
        let start = record.started_ms;
        let end = record.ended_ms.unwrap_or(now_ms).max(start);
        let join_end = record.join_completed_ms.unwrap_or(end).clamp(start, end);
        let height = plot_bottom - BANDS_TOP;

        let mut title = format!(
            "generation {}: {}",
            record.generation,
            record.cause.as_str()
        );
        if let Some(trigger) = &record.trigger_member {
            let _ = write!(title, " by {}", escape(trigger));
        }
        if let Some(reason) = &record.client_reason {
            let _ = write!(title, " (“{}”)", escape(reason));
        }
        let _ = write!(
            title,
            "\noutcome: {}\nstarted {} UTC ({})",
            record.outcome.as_str(),
            time_ms(start),
            scale.offset(start)
        );
        // The record's own phase methods subtract unchecked; these saturate.
        let phase = |from: Option<i64>, to: Option<i64>| match (from, to) {
            (Some(from), Some(to)) => duration_ms(to.saturating_sub(from)),
            _ => "–".to_string(),
        };
        let sync_end = record
            .ended_ms
            .filter(|_| record.outcome == RebalanceOutcome::Stable);
        let join = phase(Some(start), record.join_completed_ms);
        match record.ended_ms {
            Some(ended) => {
                let _ = write!(
                    title,
                    "\njoin {join}, sync {}, total {}",
                    phase(record.join_completed_ms, sync_end),
                    duration_ms(ended.saturating_sub(start))
                );
            }
            None => {
                let _ = write!(
                    title,
                    "\njoin {join}, open for {}",
                    duration_ms(now_ms.saturating_sub(start))
                );
            }
        }
        let _ = write!(
            title,
            "\njoined: {}\nleft: {}",
            member_list(record.joined.iter().map(String::as_str)),
            member_list(record.left.iter().map(|d| d.member_id.as_str()))
        );

        let _ = write!(svg, r#"<g class="rebalance"><title>{title}</title>"#);
        let (join_x, join_w) = scale.span(start, join_end, 2.0);
        let _ = write!(
            svg,
            r#"<rect class="join-phase" x="{join_x:.1}" y="{BANDS_TOP:.1}" width="{join_w:.1}" height="{height:.1}" fill="{JOIN_FILL}" fill-opacity="0.3"/>"#
        );
        if end > join_end {
            let (sync_x, sync_w) = scale.span(join_end, end, 1.0);
            let _ = write!(
                svg,
                r#"<rect class="sync-phase" x="{sync_x:.1}" y="{BANDS_TOP:.1}" width="{sync_w:.1}" height="{height:.1}" fill="{SYNC_FILL}" fill-opacity="0.25"/>"#
            );
        }
        let mut label = format!("g{} {}", record.generation, record.cause.as_str());
        if let Some(trigger) = &record.trigger_member {
            let _ = write!(label, " by {trigger}");
        }
        let label = truncate(&label, BAND_LABEL_CHARS);
        let label_y = BANDS_TOP + 11.0 + (index % 3) as f64 * 12.0;
        // About 6.5 units a character at this size: a label that would run off the right edge
        // ends there instead.
        let label_width = label.chars().count() as f64 * 6.5;
        let (label_x, anchor) = if join_x + 2.0 + label_width > WIDTH {
            (PLOT_RIGHT - 2.0, "end")
        } else {
            (join_x + 2.0, "start")
        };
        let _ = write!(
            svg,
            r##"<text class="band-label" x="{label_x:.1}" y="{label_y:.1}" text-anchor="{anchor}" fill="#333333">{}</text></g>"##,
            escape(&label)
        );
    }
}

/// The ownership bars of the rows shown (partition `i` is row `i`).
fn draw_bars(
    svg: &mut String,
    rows: &[PartitionKey<'_>],
    ownership: &Ownership<'_>,
    scale: &Scale,
) {
    for (row, key) in rows.iter().enumerate() {
        let stretches = &ownership.stretches[row];
        if stretches.is_empty() {
            continue;
        }
        let y = row_top(row) + (ROW - BAR) / 2.0;
        let name = partition_name(*key);
        for stretch in stretches {
            if stretch.to_ms <= stretch.from_ms {
                continue;
            }
            let (x, width) = scale.span(stretch.from_ms, stretch.to_ms, 1.0);
            let who = match stretch.owner {
                Owner::Member(index) => escape(ownership.members[index]),
                Owner::Unknown => "owner unknown (assignment not readable)".to_string(),
            };
            let _ = write!(
                svg,
                r#"<rect class="owner" x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{BAR:.1}" fill="{}"><title>{who}: {} from {} for {}</title></rect>"#,
                member_colour(stretch.owner),
                escape(&name),
                scale.offset(stretch.from_ms),
                duration_ms(stretch.to_ms.saturating_sub(stretch.from_ms))
            );
        }
    }
}

/// The consumer-protocol hand-overs on the first `rows` rows (see [`draw_handover`]); whether
/// any was drawn.
fn draw_handovers(
    svg: &mut String,
    records: &[RebalanceRecord],
    partitions: &Partitions<'_>,
    rows: usize,
    ownership: &Ownership<'_>,
    scale: &Scale,
    now_ms: i64,
) -> bool {
    let mut drawn = false;
    for (record, named) in records.iter().zip(&partitions.named) {
        for (handover, &row) in record.handovers.iter().zip(&named.handovers) {
            if row >= rows {
                continue;
            }
            let from_colour = ownership
                .member_indices
                .get(handover.from.as_str())
                .map_or(NO_MEMBER_STROKE, |&index| {
                    member_colour(Owner::Member(index))
                });
            drawn |= draw_handover(
                svg,
                record,
                handover,
                (row, partitions.keys[row]),
                from_colour,
                scale,
                now_ms,
            );
        }
    }
    drawn
}

/// One consumer-protocol hand-over on its row (`row`, with its partition): the old owner's
/// revoking stretch (outlined in `from_colour`, its colour), the gap with no consumer, and a
/// tick where the new owner was given the partition — those its times allow; whether any was
/// drawn.
fn draw_handover(
    svg: &mut String,
    record: &RebalanceRecord,
    handover: &PartitionHandover,
    (row, key): (usize, PartitionKey<'_>),
    from_colour: &str,
    scale: &Scale,
    now_ms: i64,
) -> bool {
    let mut drawn = false;
    let name = escape(&partition_name(key));
    let from = escape(&handover.from);
    let to = escape(&handover.to);
    let bar_top = row_top(row) + (ROW - BAR) / 2.0;
    let record_end = record.ended_ms.unwrap_or(now_ms);

    if let Some(start) = gap_start(handover) {
        let time = |ms: Option<i64>| ms.map_or("–".to_string(), |ms| scale.offset(ms));
        let end = handover.assigned_ms.unwrap_or(record_end).max(start);
        let (x, width) = scale.span(start, end, 1.5);
        let waited = match handover.assigned_ms {
            Some(_) => format!("no consumer for {}", duration_ms(end.saturating_sub(start))),
            None => format!(
                "not yet assigned after {}",
                duration_ms(end.saturating_sub(start))
            ),
        };
        let _ = write!(
            svg,
            r#"<rect class="handover-gap" x="{x:.1}" y="{:.1}" width="{width:.1}" height="{:.1}" fill="url(#starling-timeline-gap)" stroke="{GAP_STROKE}" stroke-width="0.8"><title>{name}: {from} → {to}; revoke asked {}, released {}, assigned {}; {waited}</title></rect>"#,
            bar_top - 1.0,
            BAR + 2.0,
            time(handover.revoke_asked_ms),
            time(handover.released_ms),
            time(handover.assigned_ms),
        );
        drawn = true;
    }

    if let Some(asked) = handover.revoke_asked_ms {
        let end = handover.released_ms.unwrap_or(record_end).max(asked);
        let held = duration_ms(end.saturating_sub(asked));
        let until = match (handover.released_ms, record.ended_ms) {
            (Some(released), _) => format!(
                "released at {} (held {held} after being asked)",
                scale.offset(released)
            ),
            (None, None) => format!("not yet released (held {held} so far)"),
            (None, Some(ended)) => format!(
                "not released when the rebalance ended at {} (held {held} after being asked)",
                scale.offset(ended)
            ),
        };
        let (x, width) = scale.span(asked, end, 1.5);
        let _ = write!(
            svg,
            r#"<rect class="revoking" x="{x:.1}" y="{bar_top:.1}" width="{width:.1}" height="{BAR:.1}" fill="url(#starling-timeline-revoking)" stroke="{from_colour}" stroke-width="1.5"><title>{from} asked to revoke {name} at {}, {until}</title></rect>"#,
            scale.offset(asked),
        );
        drawn = true;
    }

    if let Some(assigned) = handover.assigned_ms {
        let x = scale.x(assigned);
        let _ = write!(
            svg,
            r#"<line class="assigned-mark" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{ASSIGNED_MARK_STROKE}" stroke-width="2"><title>{to} was given {name} at {}</title></line>"#,
            row_top(row) + 1.0,
            row_top(row) + ROW - 1.0,
            scale.offset(assigned),
        );
        drawn = true;
    }
    drawn
}

/// A tick step (ms) giving at most about eight ticks over `span_ms`.
fn tick_step(span_ms: i64) -> i64 {
    const STEPS: [i64; 27] = [
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000,
        120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000,
        21_600_000, 43_200_000, 86_400_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|step| span_ms / step <= 8)
        .unwrap_or_else(|| (span_ms / 8).max(1))
}

/// The time axis under the rows: ticks at offsets from the first rebalance, and now.
fn draw_axis(svg: &mut String, scale: &Scale, now_ms: i64, plot_bottom: f64) {
    let _ = write!(
        svg,
        r##"<line x1="{PLOT_LEFT:.1}" y1="{plot_bottom:.1}" x2="{PLOT_RIGHT:.1}" y2="{plot_bottom:.1}" stroke="#888888"/>"##
    );
    let span = scale.to_ms.saturating_sub(scale.origin_ms).max(0);
    let step = tick_step(span);
    let mut offset: i64 = 0;
    while offset <= span {
        let x = scale.x(scale.origin_ms.saturating_add(offset));
        let label = if offset == 0 {
            "0".to_string()
        } else {
            format!("+{}", duration_ms(offset))
        };
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{plot_bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="#888888"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#444444">{label}</text>"##,
            plot_bottom + 4.0,
            plot_bottom + 16.0
        );
        offset = match offset.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    let now_x = scale.x(now_ms);
    let _ = write!(
        svg,
        r##"<line class="now" x1="{now_x:.1}" y1="{BANDS_TOP:.1}" x2="{now_x:.1}" y2="{plot_bottom:.1}" stroke="#444444" stroke-dasharray="3,3"><title>now: {} UTC</title></line>"##,
        time_ms(now_ms)
    );
}

/// The key to the picture's shading and the members' colours.
struct Legend<'a> {
    members: &'a [&'a str],
}

impl<'a> Legend<'a> {
    fn new(members: &'a [&'a str]) -> Legend<'a> {
        Legend { members }
    }

    fn member_lines(&self) -> usize {
        let shown = self.members.len().min(MAX_LEGEND_MEMBERS);
        let notes = usize::from(self.members.len() > MAX_LEGEND_MEMBERS);
        (shown + notes).div_ceil(LEGEND_COLUMNS)
    }

    fn height(&self) -> f64 {
        (1 + self.member_lines()) as f64 * LEGEND_LINE
    }

    /// The legend at `top`; `handovers` adds the keys to the hand-over markings.
    fn draw(&self, svg: &mut String, top: f64, handovers: bool) {
        let column = (PLOT_RIGHT - 12.0) / LEGEND_COLUMNS as f64;
        let key_column = (PLOT_RIGHT - 12.0) / LEGEND_KEYS as f64;
        // (label, the swatch's fill attributes, a colour under it for a see-through fill).
        let mut keys: Vec<(&str, String, Option<&str>)> = vec![
            (
                "join phase",
                format!(r#"fill="{JOIN_FILL}" fill-opacity="0.45""#),
                None,
            ),
            (
                "sync phase",
                format!(r#"fill="{SYNC_FILL}" fill-opacity="0.4""#),
                None,
            ),
            ("owner unknown", format!(r#"fill="{UNKNOWN_FILL}""#), None),
        ];
        if handovers {
            keys.extend([
                (
                    "revoking (until released)",
                    format!(
                        r#"fill="url(#starling-timeline-revoking)" stroke="{NO_MEMBER_STROKE}" stroke-width="1.5""#
                    ),
                    // The stripes are white: show them over a member's bar.
                    Some(PALETTE[0]),
                ),
                (
                    "no consumer (hand-over)",
                    format!(r#"fill="url(#starling-timeline-gap)" stroke="{GAP_STROKE}""#),
                    None,
                ),
            ]);
        }
        let _ = write!(svg, r#"<g class="legend">"#);
        for (i, (label, fill, under)) in keys.iter().enumerate() {
            let x = 12.0 + i as f64 * key_column;
            if let Some(under) = under {
                let _ = write!(
                    svg,
                    r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{under}"/>"#,
                    top + 1.0
                );
            }
            swatch(svg, x, top, fill, label);
        }
        if handovers {
            let x = 12.0 + keys.len() as f64 * key_column;
            let _ = write!(
                svg,
                r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{ASSIGNED_MARK_STROKE}" stroke-width="2"/><text x="{:.1}" y="{:.1}">given to the new owner</text>"#,
                x + 6.0,
                top,
                x + 6.0,
                top + 14.0,
                x + 17.0,
                top + 11.0
            );
        }
        for (i, member) in self.members.iter().take(MAX_LEGEND_MEMBERS).enumerate() {
            let x = 12.0 + (i % LEGEND_COLUMNS) as f64 * column;
            let y = top + (1 + i / LEGEND_COLUMNS) as f64 * LEGEND_LINE;
            let fill = format!(r#"fill="{}""#, member_colour(Owner::Member(i)));
            let _ = write!(svg, "<g><title>{}</title>", escape(member));
            swatch(
                svg,
                x,
                y,
                &fill,
                &escape(&truncate(member, LEGEND_LABEL_CHARS)),
            );
            svg.push_str("</g>");
        }
        if self.members.len() > MAX_LEGEND_MEMBERS {
            let i = MAX_LEGEND_MEMBERS;
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="#444444">… and {} more members</text>"##,
                12.0 + (i % LEGEND_COLUMNS) as f64 * column,
                top + (1 + i / LEGEND_COLUMNS) as f64 * LEGEND_LINE + 11.0,
                self.members.len() - MAX_LEGEND_MEMBERS
            );
        }
        svg.push_str("</g>");
    }
}

/// One legend entry: a square with `fill` (attributes) and `label` (already escaped).
fn swatch(svg: &mut String, x: f64, y: f64, fill: &str, label: &str) {
    let _ = write!(
        svg,
        r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" {fill}/><text x="{:.1}" y="{:.1}">{label}</text>"#,
        y + 1.0,
        x + 17.0,
        y + 11.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_group::{
        AssignmentChange, MemberDeparture, PartitionMove, PartitionOwner, RebalanceCause,
    };

    const T: i64 = 1_796_504_351_000;

    fn record(generation: i32, cause: RebalanceCause, started_ms: i64) -> RebalanceRecord {
        RebalanceRecord {
            group_id: "g".to_string(),
            generation,
            cause,
            trigger_member: None,
            client_reason: None,
            protocol_type: "consumer".to_string(),
            protocol: Some("range".to_string()),
            started_ms,
            join_completed_ms: Some(started_ms + 300),
            ended_ms: Some(started_ms + 500),
            outcome: RebalanceOutcome::Stable,
            members_before: Vec::new(),
            members: Vec::new(),
            joined: Vec::new(),
            left: Vec::new(),
            assignment: Some(AssignmentChange::default()),
            handovers: Vec::new(),
            consumer_protocol: false,
            reconciliation: Vec::new(),
        }
    }

    fn owner(topic: &str, partition: i32, member_id: &str) -> PartitionOwner {
        PartitionOwner {
            topic: topic.to_string(),
            partition,
            member_id: member_id.to_string(),
        }
    }

    fn moved(topic: &str, partition: i32, from: &str, to: &str) -> PartitionMove {
        PartitionMove {
            topic: topic.to_string(),
            partition,
            from: from.to_string(),
            to: to.to_string(),
        }
    }

    /// Member a gets p0–p3; 10 s later member b joins and takes p2 and p3.
    fn scale_out() -> Vec<RebalanceRecord> {
        let mut first = record(1, RebalanceCause::MemberJoined, T);
        first.joined = vec!["a".to_string()];
        first.trigger_member = Some("a".to_string());
        first.assignment = Some(AssignmentChange {
            assigned: (0..4).map(|p| owner("orders", p, "a")).collect(),
            ..AssignmentChange::default()
        });
        let mut second = record(2, RebalanceCause::MemberJoined, T + 10_000);
        second.trigger_member = Some("b".to_string());
        second.joined = vec!["b".to_string()];
        second.assignment = Some(AssignmentChange {
            moved: vec![moved("orders", 2, "a", "b"), moved("orders", 3, "a", "b")],
            stayed: vec![owner("orders", 0, "a"), owner("orders", 1, "a")],
            ..AssignmentChange::default()
        });
        vec![first, second]
    }

    /// The `<rect class="owner" ...>` elements, each as its whole markup.
    fn bars(svg: &str) -> Vec<&str> {
        elements(svg, r#"<rect class="owner""#, "</rect>")
    }

    fn elements<'s>(svg: &'s str, open: &str, close: &str) -> Vec<&'s str> {
        let mut found = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find(open) {
            let end = start + rest[start..].find(close).expect("element closes") + close.len();
            found.push(&rest[start..end]);
            rest = &rest[end..];
        }
        found
    }

    fn attribute(element: &str, name: &str) -> f64 {
        let key = format!(" {name}=\"");
        let start = element.find(&key).expect("attribute present") + key.len();
        let end = start + element[start..].find('"').expect("attribute closes");
        element[start..end].parse().expect("a number")
    }

    fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn a_scale_out_moves_two_partitions_to_the_new_member_at_the_second_rebalance() {
        let records = scale_out();
        let now = T + 20_000;
        let svg = timeline_svg(&records, now);
        assert_well_formed(&svg);
        assert_eq!(
            svg.matches(r#"<text class="partition""#).count(),
            4,
            "{svg}"
        );
        for p in 0..4 {
            assert!(svg.contains(&format!("<title>orders-{p}</title>")), "{svg}");
        }

        let bars = bars(&svg);
        let of = |member: &str, partition: i32| -> Vec<&str> {
            bars.iter()
                .copied()
                .filter(|b| b.contains(&format!("<title>{member}: orders-{partition} ")))
                .collect()
        };
        let scale = Scale::for_history(&records, now);
        let first_end = scale.x(T + 500);
        let second_end = scale.x(T + 10_500);
        for p in [0, 1] {
            let a = of("a", p);
            assert_eq!(a.len(), 1, "{p}: one bar for a, to now: {a:?}");
            assert!((attribute(a[0], "x") - first_end).abs() < 0.2);
            assert!(of("b", p).is_empty());
        }
        for p in [2, 3] {
            let (a, b) = (of("a", p), of("b", p));
            assert_eq!((a.len(), b.len()), (1, 1), "{p}: {a:?} {b:?}");
            let a_right = attribute(a[0], "x") + attribute(a[0], "width");
            assert!(
                (a_right - second_end).abs() < 0.2,
                "{a_right} vs {second_end}"
            );
            assert!((attribute(b[0], "x") - second_end).abs() < 0.2);
            assert!((attribute(b[0], "x") + attribute(b[0], "width") - scale.x(now)).abs() < 0.2);
            assert_ne!(a[0].split("fill=").nth(1), b[0].split("fill=").nth(1));
        }
        assert!(svg.contains(">g2 member_joined by b</text>"), "{svg}");
        let band_labels = elements(&svg, r#"<text class="band-label""#, "</text>");
        assert_eq!(band_labels.len(), 2, "{svg}");
        assert!(band_labels[1].contains(&format!(r#" x="{:.1}""#, scale.x(T + 10_000) + 2.0)));
        assert!(svg.contains("generation 2: member_joined by b"), "{svg}");
        assert!(
            svg.contains("join 300 ms, sync 200 ms, total 500 ms"),
            "{svg}"
        );
        // Both members in the legend, a first.
        let legend = &svg[svg.find(r#"<g class="legend">"#).unwrap()..];
        let (a_at, b_at) = (
            legend.find("<title>a</title>"),
            legend.find("<title>b</title>"),
        );
        assert!(a_at.is_some() && b_at.is_some() && a_at < b_at, "{legend}");
        assert!(svg.contains("Rebalances from 2026-12-05 20:59:11.000 UTC"));
    }

    #[test]
    fn markup_in_topic_names_and_member_ids_is_escaped() {
        let mut first = record(1, RebalanceCause::MemberJoined, T);
        first.group_id = "<script>g".to_string();
        first.trigger_member = Some("<script>m".to_string());
        first.joined = vec!["<script>m".to_string()];
        first.client_reason = Some("<script>why".to_string());
        first.left = vec![MemberDeparture {
            member_id: "<script>gone".to_string(),
            group_instance_id: None,
            reason: starling_group::DepartureReason::Left,
        }];
        first.assignment = Some(AssignmentChange {
            assigned: vec![owner("<script>alert(1)</script>", 0, "<script>m")],
            ..AssignmentChange::default()
        });
        first.handovers = vec![PartitionHandover {
            topic: "<script>t".to_string(),
            partition: 1,
            from: "<script>x".to_string(),
            to: "<script>y\"'".to_string(),
            revoke_asked_ms: Some(T + 10),
            released_ms: None,
            assigned_ms: Some(T + 50),
        }];
        let svg = timeline_svg(&[first], T + 1_000);
        assert_well_formed(&svg);
        assert!(!svg.contains("<script"), "{svg}");
        assert!(
            svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;-0"),
            "{svg}"
        );
        assert!(svg.contains("&lt;script&gt;m"), "{svg}");
        assert!(svg.contains("&lt;script&gt;y&quot;&#39;"), "{svg}");
        let stretch = revoking(&svg);
        assert_eq!(stretch.len(), 1, "{svg}");
        assert!(
            stretch[0].contains("<title>&lt;script&gt;x asked to revoke &lt;script&gt;t-1 at "),
            "{}",
            stretch[0]
        );
        let mark = assigned_marks(&svg);
        assert_eq!(mark.len(), 1, "{svg}");
        assert!(
            mark[0].contains("<title>&lt;script&gt;y&quot;&#39; was given &lt;script&gt;t-1 at "),
            "{}",
            mark[0]
        );
    }

    #[test]
    fn a_consumer_protocol_handover_draws_the_gap_with_no_consumer() {
        let mut first = record(1, RebalanceCause::MemberJoined, T);
        first.assignment = Some(AssignmentChange {
            assigned: vec![owner("t", 0, "a")],
            ..AssignmentChange::default()
        });
        let mut second = record(2, RebalanceCause::MemberJoined, T + 5_000);
        second.join_completed_ms = Some(T + 5_000);
        second.ended_ms = Some(T + 8_000);
        second.assignment = Some(AssignmentChange {
            moved: vec![moved("t", 0, "a", "b")],
            ..AssignmentChange::default()
        });
        second.handovers = vec![PartitionHandover {
            topic: "t".to_string(),
            partition: 0,
            from: "a".to_string(),
            to: "b".to_string(),
            revoke_asked_ms: Some(T + 5_100),
            released_ms: Some(T + 6_000),
            assigned_ms: Some(T + 7_500),
        }];
        let records = vec![first, second];
        let now = T + 10_000;
        let svg = timeline_svg(&records, now);
        assert_well_formed(&svg);
        let gaps = elements(&svg, r#"<rect class="handover-gap""#, "</rect>");
        assert_eq!(gaps.len(), 1, "{svg}");
        let gap = gaps[0];
        assert!(
            gap.contains(
                "<title>t-0: a → b; revoke asked +5.1 s, released +6.0 s, assigned +7.5 s; \
                 no consumer for 1.5 s</title>"
            ),
            "{gap}"
        );
        let scale = Scale::for_history(&records, now);
        assert!((attribute(gap, "x") - scale.x(T + 6_000)).abs() < 0.2);
        let right = attribute(gap, "x") + attribute(gap, "width");
        assert!((right - scale.x(T + 7_500)).abs() < 0.2);
        // The bars meet the gap: a until released, b from assigned.
        let bars = bars(&svg);
        let a = bars.iter().find(|b| b.contains("<title>a: ")).unwrap();
        let b = bars.iter().find(|b| b.contains("<title>b: ")).unwrap();
        assert!((attribute(a, "x") + attribute(a, "width") - scale.x(T + 6_000)).abs() < 0.2);
        assert!((attribute(b, "x") - scale.x(T + 7_500)).abs() < 0.2);
    }

    /// a owns t-0 and t-1; at the second rebalance (from +5.0 s, open or closed at +8.0 s)
    /// t-1 is handed over from a to b with the given times.
    fn consumer_protocol_handover(
        revoke_asked_ms: Option<i64>,
        released_ms: Option<i64>,
        assigned_ms: Option<i64>,
        open: bool,
    ) -> Vec<RebalanceRecord> {
        let mut first = record(1, RebalanceCause::MemberJoined, T);
        first.assignment = Some(AssignmentChange {
            assigned: vec![owner("t", 0, "a"), owner("t", 1, "a")],
            ..AssignmentChange::default()
        });
        let mut second = record(2, RebalanceCause::MemberJoined, T + 5_000);
        second.join_completed_ms = Some(T + 5_000);
        second.ended_ms = Some(T + 8_000);
        second.assignment = Some(AssignmentChange {
            moved: vec![moved("t", 1, "a", "b")],
            stayed: vec![owner("t", 0, "a")],
            ..AssignmentChange::default()
        });
        if open {
            second.ended_ms = None;
            second.outcome = RebalanceOutcome::InProgress;
            second.assignment = None;
        }
        second.handovers = vec![PartitionHandover {
            topic: "t".to_string(),
            partition: 1,
            from: "a".to_string(),
            to: "b".to_string(),
            revoke_asked_ms,
            released_ms,
            assigned_ms,
        }];
        vec![first, second]
    }

    fn revoking(svg: &str) -> Vec<&str> {
        elements(svg, r#"<rect class="revoking""#, "</rect>")
    }

    fn assigned_marks(svg: &str) -> Vec<&str> {
        elements(svg, r#"<line class="assigned-mark""#, "</line>")
    }

    #[test]
    fn a_handover_draws_the_old_owners_revoking_stretch_and_a_mark_where_the_new_owner_got_it() {
        let records =
            consumer_protocol_handover(Some(T + 5_100), Some(T + 6_000), Some(T + 7_500), false);
        let now = T + 10_000;
        let svg = timeline_svg(&records, now);
        assert_well_formed(&svg);
        let scale = Scale::for_history(&records, now);

        let stretches = revoking(&svg);
        assert_eq!(stretches.len(), 1, "{svg}");
        let stretch = stretches[0];
        // On t-1's row (the second), over a's bar, outlined in a's colour.
        assert!(
            (attribute(stretch, "y") - (row_top(1) + (ROW - BAR) / 2.0)).abs() < 0.01,
            "{stretch}"
        );
        assert!((attribute(stretch, "x") - scale.x(T + 5_100)).abs() < 0.2);
        let right = attribute(stretch, "x") + attribute(stretch, "width");
        assert!((right - scale.x(T + 6_000)).abs() < 0.2, "{stretch}");
        assert!(
            stretch.contains(&format!(r#"stroke="{}""#, PALETTE[0])),
            "{stretch}"
        );
        assert!(
            stretch.contains(
                "<title>a asked to revoke t-1 at +5.1 s, released at +6.0 s \
                 (held 900 ms after being asked)</title>"
            ),
            "{stretch}"
        );
        let a_bar = bars(&svg)
            .into_iter()
            .find(|b| b.contains("<title>a: t-1 "))
            .unwrap();
        let a_right = attribute(a_bar, "x") + attribute(a_bar, "width");
        assert!(attribute(a_bar, "x") <= attribute(stretch, "x") && right <= a_right + 0.2);

        let marks = assigned_marks(&svg);
        assert_eq!(marks.len(), 1, "{svg}");
        let mark = marks[0];
        assert!(
            (attribute(mark, "x1") - scale.x(T + 7_500)).abs() < 0.2,
            "{mark}"
        );
        assert!(attribute(mark, "y1") > row_top(1) && attribute(mark, "y2") < row_top(2));
        assert!(
            mark.contains("<title>b was given t-1 at +7.5 s</title>"),
            "{mark}"
        );

        let legend = &svg[svg.find(r#"<g class="legend">"#).unwrap()..];
        for key in [
            "revoking (until released)",
            "no consumer (hand-over)",
            "given to the new owner",
        ] {
            assert!(
                legend.contains(&format!(">{key}</text>")),
                "{key}: {legend}"
            );
        }
    }

    #[test]
    fn a_handover_nobody_was_asked_to_revoke_draws_no_revoking_stretch() {
        // The old owner left: released, never asked.
        let records = consumer_protocol_handover(None, Some(T + 6_000), Some(T + 7_500), false);
        let svg = timeline_svg(&records, T + 10_000);
        assert_well_formed(&svg);
        assert!(revoking(&svg).is_empty(), "{svg}");
        assert_eq!(
            elements(&svg, r#"<rect class="handover-gap""#, "</rect>").len(),
            1
        );
        assert_eq!(assigned_marks(&svg).len(), 1, "{svg}");
    }

    #[test]
    fn a_revoking_stretch_not_yet_released_extends_to_now() {
        let records = consumer_protocol_handover(Some(T + 5_100), None, None, true);
        let now = T + 10_000;
        let svg = timeline_svg(&records, now);
        assert_well_formed(&svg);
        let scale = Scale::for_history(&records, now);
        let stretches = revoking(&svg);
        assert_eq!(stretches.len(), 1, "{svg}");
        let stretch = stretches[0];
        assert!((attribute(stretch, "x") - scale.x(T + 5_100)).abs() < 0.2);
        let right = attribute(stretch, "x") + attribute(stretch, "width");
        assert!((right - scale.x(now)).abs() < 0.2, "{stretch}");
        assert!(
            stretch.contains("not yet released (held 4.9 s so far)</title>"),
            "{stretch}"
        );
        assert!(assigned_marks(&svg).is_empty(), "{svg}");
        // The owner still holds it: no gap with no consumer, and its bar goes on under the
        // stripes.
        assert!(!svg.contains(r#"<rect class="handover-gap""#), "{svg}");
        let owner_bars: Vec<&str> = elements(&svg, r#"<rect class="owner""#, "</rect>")
            .into_iter()
            .filter(|bar| (attribute(bar, "y") - attribute(stretch, "y")).abs() < ROW / 2.0)
            .collect();
        let bar_right = owner_bars
            .iter()
            .map(|bar| attribute(bar, "x") + attribute(bar, "width"))
            .fold(0.0, f64::max);
        assert!((bar_right - scale.x(now)).abs() < 0.2, "{owner_bars:?}");

        // Closed without a release: to the record's end.
        let mut closed = records;
        closed[1].ended_ms = Some(T + 8_000);
        closed[1].outcome = RebalanceOutcome::Stable;
        let svg = timeline_svg(&closed, now);
        let stretch = revoking(&svg)[0];
        let right = attribute(stretch, "x") + attribute(stretch, "width");
        assert!((right - scale.x(T + 8_000)).abs() < 0.2, "{stretch}");
        assert!(
            stretch.contains("not released when the rebalance ended at +8.0 s"),
            "{stretch}"
        );
    }

    #[test]
    fn a_history_without_handovers_has_no_handover_keys_in_its_legend() {
        let svg = timeline_svg(&scale_out(), T + 20_000);
        assert!(!svg.contains("revoking ("), "{svg}");
        assert!(!svg.contains("no consumer"), "{svg}");
        assert!(!svg.contains("given to the new owner"), "{svg}");
        assert!(svg.contains(">owner unknown</text>"), "{svg}");
    }

    #[test]
    fn an_open_rebalance_band_extends_to_now() {
        let mut records = scale_out();
        let mut open = record(3, RebalanceCause::SessionExpired, T + 15_000);
        open.ended_ms = None;
        open.join_completed_ms = Some(T + 16_000);
        open.outcome = RebalanceOutcome::InProgress;
        open.assignment = None;
        records.push(open);
        let now = T + 20_000;
        let svg = timeline_svg(&records, now);
        assert_well_formed(&svg);
        let scale = Scale::for_history(&records, now);
        let syncs = elements(&svg, r#"<rect class="sync-phase""#, "/>");
        assert_eq!(syncs.len(), 3, "{svg}");
        let last = syncs[2];
        assert!((attribute(last, "x") - scale.x(T + 16_000)).abs() < 0.2);
        let right = attribute(last, "x") + attribute(last, "width");
        assert!((right - scale.x(now)).abs() < 0.2, "{right}");
        assert!((right - PLOT_RIGHT).abs() < 0.2, "{right}");
        assert!(svg.contains("open for 5.0 s"), "{svg}");
        assert!(svg.contains(">g3 session_expired</text>"), "{svg}");
    }

    #[test]
    fn an_unreadable_assignment_leaves_owners_unknown_until_a_readable_one() {
        let mut records = scale_out();
        let mut unreadable = record(3, RebalanceCause::MemberRejoined, T + 12_000);
        unreadable.assignment = None;
        records.push(unreadable);
        let mut readable = record(4, RebalanceCause::MemberLeft, T + 15_000);
        readable.assignment = Some(AssignmentChange {
            stayed: vec![owner("orders", 0, "a")],
            ..AssignmentChange::default()
        });
        records.push(readable);
        let now = T + 20_000;
        let svg = timeline_svg(&records, now);
        assert_well_formed(&svg);
        let scale = Scale::for_history(&records, now);
        let unknown: Vec<&str> = bars(&svg)
            .into_iter()
            .filter(|b| b.contains(UNKNOWN_FILL))
            .collect();
        assert_eq!(unknown.len(), 4, "{svg}");
        for bar in &unknown {
            assert!((attribute(bar, "x") - scale.x(T + 12_500)).abs() < 0.2);
            let right = attribute(bar, "x") + attribute(bar, "width");
            assert!((right - scale.x(T + 15_500)).abs() < 0.2, "{bar}");
        }
        // Then p0 is a's again, and the others nobody's.
        let last: Vec<&str> = bars(&svg)
            .into_iter()
            .filter(|b| (attribute(b, "x") - scale.x(T + 15_500)).abs() < 0.2)
            .collect();
        assert_eq!(last.len(), 1, "{last:?}");
        assert!(last[0].contains("<title>a: orders-0 "), "{last:?}");
    }

    #[test]
    fn an_empty_history_says_so() {
        let svg = timeline_svg(&[], T);
        assert_well_formed(&svg);
        assert!(svg.contains("No rebalances recorded"));
    }

    #[test]
    fn rebalances_without_partitions_still_draw_their_bands() {
        let mut only = record(1, RebalanceCause::MemberJoined, T);
        only.assignment = None;
        let svg = timeline_svg(&[only], T + 1_000);
        assert_well_formed(&svg);
        assert!(!svg.contains(r#"class="partition""#));
        assert_eq!(svg.matches(r#"<g class="rebalance">"#).count(), 1);
    }

    #[test]
    fn degenerate_times_do_not_panic() {
        // All times equal.
        let mut same = record(1, RebalanceCause::MemberJoined, T);
        same.join_completed_ms = Some(T);
        same.ended_ms = Some(T);
        same.assignment = Some(AssignmentChange {
            assigned: vec![owner("t", 0, "a")],
            ..AssignmentChange::default()
        });
        assert_well_formed(&timeline_svg(std::slice::from_ref(&same), T));

        // Ended before started, joined after ended, now before everything.
        let mut backwards = same.clone();
        backwards.generation = 2;
        backwards.join_completed_ms = Some(T + 5_000);
        backwards.ended_ms = Some(T - 5_000);
        assert_well_formed(&timeline_svg(
            &[same.clone(), backwards.clone()],
            T - 60_000,
        ));

        // Records out of order, hand-overs with times out of order or missing.
        let mut later = scale_out();
        later[1].handovers = vec![
            PartitionHandover {
                topic: "orders".to_string(),
                partition: 2,
                from: "a".to_string(),
                to: "b".to_string(),
                revoke_asked_ms: None,
                released_ms: Some(T + 99_000),
                assigned_ms: Some(T - 99_000),
            },
            PartitionHandover {
                topic: "orders".to_string(),
                partition: 3,
                from: "a".to_string(),
                to: "b".to_string(),
                revoke_asked_ms: None,
                released_ms: None,
                assigned_ms: None,
            },
        ];
        later.reverse();
        later.push(backwards);
        assert_well_formed(&timeline_svg(&later, T + 1_000));

        // Extreme times.
        let mut extreme = same.clone();
        extreme.started_ms = i64::MIN;
        extreme.join_completed_ms = Some(i64::MAX);
        extreme.ended_ms = Some(0);
        let mut huge = same;
        huge.started_ms = i64::MAX;
        huge.join_completed_ms = None;
        huge.ended_ms = None;
        huge.outcome = RebalanceOutcome::InProgress;
        for now in [i64::MIN, 0, i64::MAX] {
            assert_well_formed(&timeline_svg(&[extreme.clone(), huge.clone()], now));
            assert_well_formed(&timeline_svg(std::slice::from_ref(&huge), now));
        }
    }

    #[test]
    fn rows_are_capped_with_a_note_counting_the_rest() {
        let mut only = record(1, RebalanceCause::MemberJoined, T);
        only.assignment = Some(AssignmentChange {
            assigned: (0..500)
                .map(|p| owner("events", p, &format!("m{}", p % 60)))
                .collect(),
            ..AssignmentChange::default()
        });
        let svg = timeline_svg(&[only], T + 5_000);
        assert_well_formed(&svg);
        assert_eq!(svg.matches(r#"<text class="partition""#).count(), MAX_ROWS);
        assert!(svg.contains("… and 300 more partitions"), "{svg}");
        assert!(svg.contains("… and 20 more members"), "{svg}");
        // Rows sort by partition number, not as text.
        let second = svg.find("<title>events-1</title>").unwrap();
        let tenth = svg.find("<title>events-10</title>").unwrap();
        assert!(second < tenth);
    }

    #[test]
    fn long_names_are_cut_with_an_ellipsis_and_shown_whole_on_hover() {
        let topic = "a-very-long-topic-name-that-goes-on-and-on";
        let mut only = record(1, RebalanceCause::MemberJoined, T);
        only.assignment = Some(AssignmentChange {
            assigned: vec![owner(topic, 7, "m")],
            ..AssignmentChange::default()
        });
        let svg = timeline_svg(&[only], T + 5_000);
        assert!(svg.contains(&format!("<title>{topic}-7</title>")), "{svg}");
        assert!(svg.contains(&format!("{}…</text>", &topic[..ROW_LABEL_CHARS - 1])));
    }

    /// A deterministic generator of odd histories (a fixed-seed LCG).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n.max(1)
        }

        fn time(&mut self, base: i64) -> Option<i64> {
            (self.below(6) != 0).then(|| base + self.below(3_000) as i64 - 500)
        }
    }

    /// A history with `records` rebalances over `topics` × `partitions` partitions and
    /// `members` members: lists unsorted and with duplicates, moves, revokes, hand-overs with
    /// missing and out-of-order times, unreadable assignments, Empty, Deleted and open records.
    fn random_history(
        rng: &mut Lcg,
        records: usize,
        topics: usize,
        partitions: i32,
        members: usize,
    ) -> Vec<RebalanceRecord> {
        let topic = |t: u64| format!("prod.orders.events-{t:02}");
        let member = |m: u64| format!("consumer-{m:03}");
        let mut history = Vec::new();
        for r in 0..records {
            let started = T + r as i64 * 2_000 + rng.below(1_500) as i64;
            let mut record = record(r as i32 + 1, RebalanceCause::MemberJoined, started);
            record.join_completed_ms = rng.time(started + 300);
            record.ended_ms = rng.time(started + 600);
            record.outcome = match rng.below(10) {
                0 => RebalanceOutcome::Empty,
                1 => RebalanceOutcome::Deleted,
                2 => RebalanceOutcome::Restarted,
                3 => RebalanceOutcome::InProgress,
                _ => RebalanceOutcome::Stable,
            };
            let names = (partitions as u64 * topics as u64).max(1);
            let key = |rng: &mut Lcg| {
                let p = rng.below(names);
                (
                    topic(p / partitions.max(1) as u64),
                    (p % partitions.max(1) as u64) as i32 - 2,
                )
            };
            let mut change = AssignmentChange::default();
            let entries = rng.below(names * 2);
            for _ in 0..entries {
                let (t, p) = key(rng);
                let m = member(rng.below(members as u64));
                match rng.below(8) {
                    0 => change.moved.push(moved(&t, p, "x", &m)),
                    1 => change.revoked.push(owner(&t, p, &m)),
                    2 => change.assigned.push(owner(&t, p, &m)),
                    _ => change.stayed.push(owner(&t, p, &m)),
                }
            }
            if rng.below(3) == 0 {
                change
                    .stayed
                    .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            }
            record.assignment = (rng.below(5) != 0).then_some(change);
            for _ in 0..rng.below(6) {
                let (topic, partition) = key(rng);
                record.handovers.push(PartitionHandover {
                    topic,
                    partition,
                    from: member(rng.below(members as u64)),
                    to: member(rng.below(members as u64)),
                    revoke_asked_ms: rng.time(started + 400),
                    released_ms: rng.time(started + 500),
                    assigned_ms: rng.time(started + 700),
                });
            }
            history.push(record);
        }
        if rng.below(4) == 0 {
            history.reverse();
        }
        history
    }

    #[test]
    fn the_interned_replay_draws_what_the_replay_keyed_by_names_drew() {
        let mut histories = vec![scale_out()];
        let mut rng = Lcg(42);
        for case in 0..300 {
            let records = 1 + rng.below(12) as usize;
            let topics = 1 + rng.below(4) as usize;
            let partitions = rng.below(if case % 10 == 0 { 120 } else { 12 }) as i32;
            let members = 1 + rng.below(if case % 7 == 0 { 60 } else { 6 }) as usize;
            histories.push(random_history(
                &mut rng, records, topics, partitions, members,
            ));
        }
        for (case, records) in histories.iter().enumerate() {
            for now in [T - 1_000, T + 30_000] {
                let (new, old) = (timeline_svg(records, now), old::timeline_svg(records, now));
                assert!(new == old, "case {case}, now {now}:\n{new}\n{old}");
            }
        }
    }

    #[test]
    fn a_history_over_the_row_cap_draws_its_first_rows_as_before() {
        // 3 topics × 150 partitions, listed in order as a real assignment lists them; each
        // later rebalance moves every seventh partition to the next member, with a hand-over.
        let members: Vec<String> = (0..12).map(|m| format!("m{m:02}")).collect();
        let keys: Vec<(String, i32)> = (0..3)
            .flat_map(|t| (0..150).map(move |p| (format!("topic-{t}"), p)))
            .collect();
        let mut owners: Vec<usize> = (0..keys.len()).map(|i| i % members.len()).collect();
        let mut records = Vec::new();
        for r in 0..6 {
            let mut record = record(r + 1, RebalanceCause::MemberJoined, T + r as i64 * 5_000);
            let mut change = AssignmentChange::default();
            for (i, (topic, partition)) in keys.iter().enumerate() {
                let from = &members[owners[i]];
                if r == 0 {
                    change.assigned.push(owner(topic, *partition, from));
                } else if (i + r as usize) % 7 == 0 {
                    owners[i] = (owners[i] + 1) % members.len();
                    let to = &members[owners[i]];
                    change.moved.push(moved(topic, *partition, from, to));
                    record.handovers.push(PartitionHandover {
                        topic: topic.clone(),
                        partition: *partition,
                        from: from.clone(),
                        to: to.clone(),
                        revoke_asked_ms: Some(record.started_ms + 310),
                        released_ms: Some(record.started_ms + 350),
                        assigned_ms: Some(record.started_ms + 450),
                    });
                } else {
                    change.stayed.push(owner(topic, *partition, from));
                }
            }
            record.assignment = Some(change);
            records.push(record);
        }
        let now = T + 40_000;
        let svg = timeline_svg(&records, now);
        assert_eq!(svg, old::timeline_svg(&records, now));
        assert_eq!(svg.matches(r#"<text class="partition""#).count(), MAX_ROWS);
        assert!(svg.contains("… and 250 more partitions"), "{svg}");
        // The rows are topic-0's 150 partitions, then topic-1's first 50.
        let rows = elements(&svg, r#"<text class="partition""#, "</text>");
        assert!(rows[0].contains("<title>topic-0-0</title>"), "{}", rows[0]);
        assert!(
            rows[199].contains("<title>topic-1-49</title>"),
            "{}",
            rows[199]
        );
        assert!(!svg.contains("<title>topic-1-50</title>"));
        assert!(!bars(&svg).is_empty());
        assert!(svg.contains(r#"<rect class="handover-gap""#));
    }

    /// The timeline as it was before partitions were interned: every map keyed by (topic,
    /// partition). Kept to check that the interned replay draws the same picture.
    mod old {
        use super::super::*;
        use std::collections::{BTreeMap, BTreeSet};

        /// An SVG picture of one group's rebalance history (`records`, oldest first) up to `now_ms`.
        pub fn timeline_svg(records: &[RebalanceRecord], now_ms: i64) -> String {
            if records.is_empty() {
                return empty_svg();
            }
            let scale = Scale::for_history(records, now_ms);
            let partitions = partitions(records);
            let rows: Vec<PartitionKey<'_>> = partitions.iter().copied().take(MAX_ROWS).collect();
            let hidden_rows = partitions.len() - rows.len();
            let ownership = replay(records, now_ms);

            let plot_bottom = if rows.is_empty() {
                PLOT_TOP + EMPTY_PLOT
            } else {
                PLOT_TOP + rows.len() as f64 * ROW
            };
            let axis_bottom = plot_bottom + 26.0;
            let note_bottom = if hidden_rows > 0 {
                axis_bottom + 16.0
            } else {
                axis_bottom
            };
            let legend_top = note_bottom + 10.0;
            let legend = Legend::new(&ownership.members);
            let height = legend_top + legend.height() + 8.0;

            let group_id = &records[0].group_id;
            let mut svg = String::with_capacity(8 * 1024 + rows.len() * 512);
            let _ = write!(
                svg,
                r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0} {height:.0}" width="{WIDTH:.0}" height="{height:.0}" role="img" aria-label="Rebalance timeline of group {}: {} rebalances, {} partitions" font-family="sans-serif" font-size="11">"#,
                escape(group_id),
                records.len(),
                partitions.len()
            );
            draw_defs(&mut svg);
            let _ = write!(
                svg,
                r##"<rect x="0" y="0" width="{WIDTH:.0}" height="{height:.0}" fill="#ffffff"/>"##
            );
            let _ = write!(
                svg,
                r#"<text x="{PLOT_LEFT:.0}" y="15" font-weight="bold">Rebalances from {} UTC</text>"#,
                time_ms(scale.origin_ms)
            );

            draw_row_backgrounds(&mut svg, &rows);
            draw_bands(&mut svg, records, &scale, now_ms, plot_bottom);
            draw_bars(&mut svg, &rows, &ownership, &scale);
            let handovers_shown =
                draw_handovers(&mut svg, records, &rows, &ownership, &scale, now_ms);
            draw_axis(&mut svg, &scale, now_ms, plot_bottom);
            if hidden_rows > 0 {
                let _ = write!(
                    svg,
                    r##"<text class="more-partitions" x="{PLOT_LEFT:.0}" y="{:.1}" fill="#444444">… and {hidden_rows} more partitions</text>"##,
                    axis_bottom + 12.0
                );
            }
            legend.draw(&mut svg, legend_top, handovers_shown);
            svg.push_str("</svg>");
            svg
        }

        /// Every partition any record names (assignment lists or hand-overs), sorted.
        fn partitions(records: &[RebalanceRecord]) -> BTreeSet<PartitionKey<'_>> {
            let mut partitions = BTreeSet::new();
            for record in records {
                if let Some(change) = &record.assignment {
                    partitions.extend(change.moved.iter().map(|p| (p.topic.as_str(), p.partition)));
                    for owners in [&change.stayed, &change.assigned, &change.revoked] {
                        partitions.extend(owners.iter().map(|p| (p.topic.as_str(), p.partition)));
                    }
                }
                partitions.extend(
                    record
                        .handovers
                        .iter()
                        .map(|h| (h.topic.as_str(), h.partition)),
                );
            }
            partitions
        }

        /// The history's partition ownership, replayed.
        #[derive(Debug, Default)]
        struct Ownership<'a> {
            /// Member ids in order of first appearance as an owner (their colour index).
            members: Vec<&'a str>,
            /// Each partition's stretches, in time order, without overlaps.
            stretches: BTreeMap<PartitionKey<'a>, Vec<Stretch>>,
            /// The stretch each partition is in now, with its start.
            open: BTreeMap<PartitionKey<'a>, (Owner, i64)>,
        }

        impl<'a> Ownership<'a> {
            fn member(&mut self, member_id: &'a str) -> Owner {
                let index = match self.members.iter().position(|m| *m == member_id) {
                    Some(index) => index,
                    None => {
                        self.members.push(member_id);
                        self.members.len() - 1
                    }
                };
                Owner::Member(index)
            }

            /// Ends `key`'s open stretch at `at_ms` (not before it began).
            fn close(&mut self, key: PartitionKey<'a>, at_ms: i64) {
                if let Some((owner, from_ms)) = self.open.remove(&key) {
                    self.stretches.entry(key).or_default().push(Stretch {
                        owner,
                        from_ms,
                        to_ms: at_ms.max(from_ms),
                    });
                }
            }

            /// Opens a stretch of `owner` on `key` at `at_ms` (not before its last stretch ended).
            fn open(&mut self, key: PartitionKey<'a>, owner: Owner, at_ms: i64) {
                let last_end = self
                    .stretches
                    .get(&key)
                    .and_then(|s| s.last())
                    .map_or(at_ms, |s| s.to_ms);
                self.open.insert(key, (owner, at_ms.max(last_end)));
            }
        }

        /// Replays the records' assignments, in the order they closed, into ownership stretches up to
        /// `now_ms`.
        fn replay(records: &[RebalanceRecord], now_ms: i64) -> Ownership<'_> {
            let mut closed: Vec<(i64, &RebalanceRecord)> = records
                .iter()
                .filter_map(|r| r.ended_ms.map(|ended| (ended, r)))
                .collect();
            closed.sort_by_key(|(ended, _)| *ended);

            let mut ownership = Ownership::default();
            let mut seen: BTreeSet<PartitionKey<'_>> = BTreeSet::new();
            for (at_ms, record) in closed {
                match &record.assignment {
                    Some(change) => {
                        let mut next: BTreeMap<PartitionKey<'_>, &str> = BTreeMap::new();
                        for m in &change.moved {
                            next.insert((m.topic.as_str(), m.partition), m.to.as_str());
                        }
                        for p in change.stayed.iter().chain(&change.assigned) {
                            next.insert((p.topic.as_str(), p.partition), p.member_id.as_str());
                        }
                        seen.extend(next.keys().copied());
                        seen.extend(
                            change
                                .revoked
                                .iter()
                                .map(|p| (p.topic.as_str(), p.partition)),
                        );
                        let handovers: BTreeMap<PartitionKey<'_>, &PartitionHandover> = record
                            .handovers
                            .iter()
                            .map(|h| ((h.topic.as_str(), h.partition), h))
                            .collect();

                        let owned: Vec<(PartitionKey<'_>, Owner)> = ownership
                            .open
                            .iter()
                            .map(|(key, (owner, _))| (*key, *owner))
                            .collect();
                        for (key, owner) in owned {
                            let next_owner = next.get(&key).map(|m| ownership.member(m));
                            if next_owner != Some(owner) {
                                let released = handovers.get(&key).and_then(|h| gap_start(h));
                                ownership.close(key, released.map_or(at_ms, |r| r.min(at_ms)));
                            }
                        }
                        for (key, member_id) in next {
                            if ownership.open.contains_key(&key) {
                                continue;
                            }
                            let owner = ownership.member(member_id);
                            let assigned = handovers
                                .get(&key)
                                .filter(|h| h.to == member_id)
                                .and_then(|h| h.assigned_ms);
                            ownership.open(key, owner, assigned.map_or(at_ms, |a| a.min(at_ms)));
                        }
                    }
                    None if record.outcome == RebalanceOutcome::Stable => {
                        seen.extend(ownership.open.keys().copied());
                        for key in seen.iter().copied() {
                            if ownership.open.get(&key).map(|(owner, _)| *owner)
                                != Some(Owner::Unknown)
                            {
                                ownership.close(key, at_ms);
                                ownership.open(key, Owner::Unknown, at_ms);
                            }
                        }
                    }
                    None if matches!(
                        record.outcome,
                        RebalanceOutcome::Empty | RebalanceOutcome::Deleted
                    ) =>
                    {
                        let keys: Vec<PartitionKey<'_>> = ownership.open.keys().copied().collect();
                        for key in keys {
                            ownership.close(key, at_ms);
                        }
                    }
                    None => {}
                }
            }
            let keys: Vec<PartitionKey<'_>> = ownership.open.keys().copied().collect();
            for key in keys {
                ownership.close(key, now_ms);
            }
            ownership
        }

        /// The ownership bars of the rows shown.
        fn draw_bars(
            svg: &mut String,
            rows: &[PartitionKey<'_>],
            ownership: &Ownership<'_>,
            scale: &Scale,
        ) {
            for (row, key) in rows.iter().enumerate() {
                let Some(stretches) = ownership.stretches.get(key) else {
                    continue;
                };
                let y = row_top(row) + (ROW - BAR) / 2.0;
                let name = partition_name(*key);
                for stretch in stretches {
                    if stretch.to_ms <= stretch.from_ms {
                        continue;
                    }
                    let (x, width) = scale.span(stretch.from_ms, stretch.to_ms, 1.0);
                    let who = match stretch.owner {
                        Owner::Member(index) => escape(ownership.members[index]),
                        Owner::Unknown => "owner unknown (assignment not readable)".to_string(),
                    };
                    let _ = write!(
                        svg,
                        r#"<rect class="owner" x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{BAR:.1}" fill="{}"><title>{who}: {} from {} for {}</title></rect>"#,
                        member_colour(stretch.owner),
                        escape(&name),
                        scale.offset(stretch.from_ms),
                        duration_ms(stretch.to_ms.saturating_sub(stretch.from_ms))
                    );
                }
            }
        }

        /// The consumer-protocol hand-overs on the rows shown, each drawn as the interned
        /// timeline draws one; whether any was drawn.
        fn draw_handovers(
            svg: &mut String,
            records: &[RebalanceRecord],
            rows: &[PartitionKey<'_>],
            ownership: &Ownership<'_>,
            scale: &Scale,
            now_ms: i64,
        ) -> bool {
            let row_of: BTreeMap<PartitionKey<'_>, usize> = rows
                .iter()
                .enumerate()
                .map(|(row, key)| (*key, row))
                .collect();
            let mut drawn = false;
            for record in records {
                for handover in &record.handovers {
                    let key = (handover.topic.as_str(), handover.partition);
                    let Some(&row) = row_of.get(&key) else {
                        continue;
                    };
                    let from_colour = ownership
                        .members
                        .iter()
                        .position(|m| *m == handover.from)
                        .map_or(NO_MEMBER_STROKE, |index| {
                            member_colour(Owner::Member(index))
                        });
                    drawn |= draw_handover(
                        svg,
                        record,
                        handover,
                        (row, key),
                        from_colour,
                        scale,
                        now_ms,
                    );
                }
            }
            drawn
        }
    }
}
