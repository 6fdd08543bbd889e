//! The figures of one (scenario, strategy) pair, computed from its [`Trace`] alone.
//!
//! Ownership comes from the consumers' own callbacks: a member owns a partition from the
//! assign that gave it until the revoke that took it, or until the member closed or crashed.
//! Each scenario event (a rolling restart has one per member) is judged on its own, from its
//! trigger `T` to the next trigger or the end of the run (`until`):
//!
//! - **owner before / after**: who owned each partition just before `T` and just before
//!   `until`. A partition is *kept* when the same instance owns it at both moments (in eager
//!   mode it is still revoked and assigned again in between), *moved* otherwise.
//! - **resume**: the first message of a partition its final owner received at or after both
//!   `T` and the start of that ownership.
//! - **settled**: the last assignment change of any member in the event, or the last resume,
//!   whichever is later: every member has its final assignment and every partition is
//!   consumed again. The event's *total rebalance time* is `settled − T`.
//! - **pause** of a member: the longest gap between two consecutive messages it received on
//!   one of its kept partitions, over gaps that overlap `[T, settled]` (a gap is measured
//!   whole, from the message before to the message after it).
//! - **detected**: the first callback of a member that was there before `T` and still is at
//!   `until`: when the rebalance reached the members that stay (a heartbeat after the
//!   coordinator started it, or the session timeout for a crash).
//! - **hand-over** of a moved partition: `resume − T`. The old owner may go on consuming
//!   for most of that time (until it hears of the rebalance), so the partition's own
//!   **moved gap** is reported too: its longest silence (any member) overlapping `[T, resume]`.
//!
//! The pair's figures aggregate its events: the worst pause per member and overall, every
//! hand-over, and the total rebalance time summed over the events (for a rolling restart, the
//! time the group spent unsettled, without the observation between restarts). Duplicates
//! are receipts of a sequence number already received; losses are acknowledged sequence
//! numbers never received.

use std::collections::{BTreeMap, HashSet};

use super::trace::{CallbackKind, MemberId, Micros, Trace, Trigger};

/// Gaps below this are never shaded as pauses in the timelines.
const MIN_PAUSE_THRESHOLD: Micros = 50_000;

pub fn ms(us: Micros) -> f64 {
    us as f64 / 1000.0
}

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Distribution {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Distribution {
    /// Nearest-rank percentiles; all zero for an empty set.
    pub fn of(mut values: Vec<Micros>) -> Distribution {
        if values.is_empty() {
            return Distribution::default();
        }
        values.sort_unstable();
        let rank = |q: f64| {
            let i = (q * values.len() as f64).ceil() as usize;
            values[i.clamp(1, values.len()) - 1]
        };
        Distribution {
            count: values.len(),
            p50_ms: ms(rank(0.50)),
            p99_ms: ms(rank(0.99)),
            max_ms: ms(*values.last().expect("not empty")),
        }
    }
}

/// One member's ownership of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    pub member: MemberId,
    pub partition: i32,
    pub from: Micros,
    /// `Micros::MAX` while still owned at the end of the trace.
    pub to: Micros,
}

/// Every ownership, sorted by partition and start.
pub fn ownerships(trace: &Trace) -> Vec<Ownership> {
    let mut open: BTreeMap<(MemberId, i32), Micros> = BTreeMap::new();
    let mut out = Vec::new();
    for c in &trace.callbacks {
        for &p in &c.partitions {
            match c.kind {
                CallbackKind::Assign => {
                    open.entry((c.member, p)).or_insert(c.at);
                }
                CallbackKind::Revoke | CallbackKind::Lost => {
                    if let Some(from) = open.remove(&(c.member, p)) {
                        out.push(Ownership {
                            member: c.member,
                            partition: p,
                            from,
                            to: c.at,
                        });
                    }
                }
            }
        }
    }
    for ((member, partition), from) in open {
        let end = trace
            .members
            .get(member)
            .and_then(|m| m.ended)
            .unwrap_or(Micros::MAX);
        out.push(Ownership {
            member,
            partition,
            from,
            to: end.max(from),
        });
    }
    out.sort_by_key(|o| (o.partition, o.from, o.member));
    out
}

/// The owner of `partition` at `t` and when that ownership began (the latest-starting one,
/// should two overlap).
pub fn owner_at(owns: &[Ownership], partition: i32, t: Micros) -> Option<(MemberId, Micros)> {
    owns.iter()
        .filter(|o| o.partition == partition && o.from <= t && t < o.to)
        .max_by_key(|o| o.from)
        .map(|o| (o.member, o.from))
}

/// The longest gap between consecutive `times` (sorted) that overlaps `[from, to]`, as
/// `(start, length)`. When the last time falls before `to`, the silence from it up to
/// `horizon` counts as a gap too.
pub fn longest_gap(
    times: &[Micros],
    from: Micros,
    to: Micros,
    horizon: Micros,
) -> Option<(Micros, Micros)> {
    let mut best: Option<(Micros, Micros)> = None;
    let mut consider = |a: Micros, b: Micros| {
        if b >= from && a <= to && best.is_none_or(|(_, len)| b - a > len) {
            best = Some((a, b - a));
        }
    };
    for w in times.windows(2) {
        consider(w[0], w[1]);
    }
    if let Some(&last) = times.last() {
        if last < to && horizon > last {
            consider(last, horizon);
        }
    }
    best
}

/// A kept partition's worst gap within an event.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptPartition {
    pub partition: i32,
    pub gap_ms: f64,
    /// When the gap began (its message before).
    pub gap_from: Micros,
}

/// A member's stop-the-world pause in one event: its worst kept-partition gap.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberPause {
    pub member: MemberId,
    pub pause_ms: f64,
    pub partitions: Vec<KeptPartition>,
}

/// One moved partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Handover {
    pub event: usize,
    pub partition: i32,
    pub from: Option<MemberId>,
    pub to: Option<MemberId>,
    /// Trigger → first message at the new owner; `None` if that never came in the event.
    pub ms: Option<f64>,
    /// The partition's longest silence overlapping trigger → resume (up to the end of the
    /// event when it never resumed).
    pub gap_ms: Option<f64>,
}

/// A callback within an event, relative to its trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct EventCallback {
    pub member: MemberId,
    pub kind: CallbackKind,
    pub after_ms: f64,
    pub partitions: Vec<i32>,
}

/// The figures of one scenario event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFigures {
    pub trigger: Trigger,
    pub until: Micros,
    pub settled_at: Option<Micros>,
    pub total_ms: Option<f64>,
    pub pauses: Vec<MemberPause>,
    pub handovers: Vec<Handover>,
    pub callbacks: Vec<EventCallback>,
    /// Trigger → first callback of a member present throughout the event; `None` when none
    /// of them had one (a static restart without rebalance).
    pub detected_ms: Option<f64>,
}

/// The figures of one pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Gaps between consecutive messages of a partition (any member) in the steady window.
    pub steady_gap: Distribution,
    /// End-to-end latency (send → receipt) in the steady window.
    pub steady_latency: Distribution,
    /// Largest end-to-end latency of a message received between the first trigger and the
    /// last settling (or the end of the run).
    pub rebalance_latency_max_ms: Option<f64>,
    pub events: Vec<EventFigures>,
    /// Worst pause per member over all events (members with kept partitions only).
    pub member_pauses: BTreeMap<MemberId, f64>,
    pub pause_max_ms: Option<f64>,
    pub handover: Distribution,
    /// The moved partitions' longest silences during their hand-over.
    pub moved_gap: Distribution,
    /// Moved partitions never consumed again within their event.
    pub handovers_unresolved: usize,
    /// Sum of the events' total rebalance times; `None` if an event never settled.
    pub total_ms: Option<f64>,
    pub received: usize,
    pub duplicates: usize,
    pub acked: usize,
    pub losses: usize,
    /// The first lost sequence numbers (at most 20).
    pub lost_sample: Vec<u64>,
    /// Gaps longer than this are drawn as pauses: the longest steady gap, at least 50 ms.
    pub pause_threshold: Micros,
}

/// Computes every figure of a pair.
pub fn analyse(trace: &Trace) -> Figures {
    let owns = ownerships(trace);
    let mut by_member_partition: BTreeMap<(MemberId, i32), Vec<Micros>> = BTreeMap::new();
    let mut by_partition: BTreeMap<i32, Vec<Micros>> = BTreeMap::new();
    for r in &trace.receipts {
        by_member_partition
            .entry((r.member, r.partition))
            .or_default()
            .push(r.at);
        by_partition.entry(r.partition).or_default().push(r.at);
    }
    for v in by_member_partition
        .values_mut()
        .chain(by_partition.values_mut())
    {
        v.sort_unstable();
    }

    let first_trigger = trace
        .triggers
        .first()
        .map(|t| t.at)
        .unwrap_or(trace.stopped_at);
    let in_steady = |at: Micros| at >= trace.steady_from && at < first_trigger;
    let mut steady_gaps = Vec::new();
    for times in by_partition.values() {
        let steady: Vec<Micros> = times.iter().copied().filter(|&t| in_steady(t)).collect();
        steady_gaps.extend(steady.windows(2).map(|w| w[1] - w[0]));
    }
    let steady_gap = Distribution::of(steady_gaps);
    let steady_latency = Distribution::of(
        trace
            .receipts
            .iter()
            .filter(|r| in_steady(r.at))
            .map(|r| r.at.saturating_sub(r.sent))
            .collect(),
    );

    let events: Vec<EventFigures> = (0..trace.triggers.len())
        .map(|i| analyse_event(trace, i, &owns, &by_member_partition, &by_partition))
        .collect();

    let mut member_pauses: BTreeMap<MemberId, f64> = BTreeMap::new();
    for p in events.iter().flat_map(|e| &e.pauses) {
        let e = member_pauses.entry(p.member).or_insert(p.pause_ms);
        *e = e.max(p.pause_ms);
    }
    let pause_max_ms = member_pauses.values().copied().reduce(f64::max);
    let handover_us: Vec<Micros> = events
        .iter()
        .flat_map(|e| &e.handovers)
        .filter_map(|h| h.ms.map(|ms| (ms * 1000.0).round() as Micros))
        .collect();
    let moved_gap_us: Vec<Micros> = events
        .iter()
        .flat_map(|e| &e.handovers)
        .filter_map(|h| h.gap_ms.map(|ms| (ms * 1000.0).round() as Micros))
        .collect();
    let handovers_unresolved = events
        .iter()
        .flat_map(|e| &e.handovers)
        .filter(|h| h.ms.is_none())
        .count();
    let total_ms = events
        .iter()
        .map(|e| e.total_ms)
        .sum::<Option<f64>>()
        .filter(|_| !events.is_empty());
    let window_end = events
        .last()
        .map(|e| e.settled_at.unwrap_or(e.until))
        .unwrap_or(first_trigger);
    let rebalance_latency_max_ms = trace
        .receipts
        .iter()
        .filter(|r| r.at >= first_trigger && r.at <= window_end)
        .map(|r| r.at.saturating_sub(r.sent))
        .max()
        .map(ms);

    let mut seen: HashSet<u64> = HashSet::with_capacity(trace.receipts.len());
    let mut duplicates = 0;
    for r in &trace.receipts {
        if !seen.insert(r.seq) {
            duplicates += 1;
        }
    }
    let mut lost: Vec<u64> = trace
        .acked
        .iter()
        .map(|a| a.seq)
        .filter(|s| !seen.contains(s))
        .collect();
    lost.sort_unstable();
    let losses = lost.len();
    lost.truncate(20);

    let pause_threshold = ((steady_gap.max_ms * 1000.0) as Micros).max(MIN_PAUSE_THRESHOLD);
    Figures {
        steady_gap,
        steady_latency,
        rebalance_latency_max_ms,
        events,
        member_pauses,
        pause_max_ms,
        handover: Distribution::of(handover_us),
        moved_gap: Distribution::of(moved_gap_us),
        handovers_unresolved,
        total_ms,
        received: trace.receipts.len(),
        duplicates,
        acked: trace.acked.len(),
        losses,
        lost_sample: lost,
        pause_threshold,
    }
}

fn analyse_event(
    trace: &Trace,
    index: usize,
    owns: &[Ownership],
    receipts: &BTreeMap<(MemberId, i32), Vec<Micros>>,
    by_partition: &BTreeMap<i32, Vec<Micros>>,
) -> EventFigures {
    let trigger = trace.triggers[index].clone();
    let t = trigger.at;
    let until = trace.event_until(index);
    let empty = Vec::new();
    let times = |m: MemberId, p: i32| receipts.get(&(m, p)).unwrap_or(&empty);

    let mut kept: BTreeMap<MemberId, Vec<i32>> = BTreeMap::new();
    let mut handovers = Vec::new();
    let mut resumes: Vec<Option<Micros>> = Vec::new();
    for p in 0..trace.partitions {
        let before = owner_at(owns, p, t.saturating_sub(1)).map(|(m, _)| m);
        let after = owner_at(owns, p, until.saturating_sub(1));
        let resume = after.and_then(|(m, since)| {
            let start = t.max(since);
            times(m, p)
                .iter()
                .copied()
                .find(|&at| at >= start && at < until)
        });
        resumes.push(resume);
        match (before, after) {
            (Some(b), Some((a, _))) if a == b => kept.entry(a).or_default().push(p),
            _ => {
                let all = by_partition.get(&p).unwrap_or(&empty);
                let gap = longest_gap(all, t, resume.unwrap_or(until), until);
                handovers.push(Handover {
                    event: index,
                    partition: p,
                    from: before,
                    to: after.map(|(m, _)| m),
                    ms: resume.map(|r| ms(r.saturating_sub(t))),
                    gap_ms: gap.map(|(_, len)| ms(len)),
                });
            }
        }
    }

    let callbacks: Vec<EventCallback> = trace
        .callbacks
        .iter()
        .filter(|c| c.at >= t && c.at < until)
        .map(|c| EventCallback {
            member: c.member,
            kind: c.kind,
            after_ms: ms(c.at - t),
            partitions: c.partitions.clone(),
        })
        .collect();
    let last_change = trace
        .callbacks
        .iter()
        .filter(|c| c.at >= t && c.at < until)
        .map(|c| c.at)
        .max()
        .unwrap_or(t);
    let settled_at = if resumes.iter().all(Option::is_some) {
        resumes
            .iter()
            .flatten()
            .copied()
            .max()
            .map(|r| r.max(last_change))
    } else {
        None
    };
    let window_end = settled_at.unwrap_or(until);

    let pauses = kept
        .into_iter()
        .map(|(member, partitions)| {
            let partitions: Vec<KeptPartition> = partitions
                .into_iter()
                .filter_map(|p| {
                    longest_gap(times(member, p), t, window_end, until).map(|(from, len)| {
                        KeptPartition {
                            partition: p,
                            gap_ms: ms(len),
                            gap_from: from,
                        }
                    })
                })
                .collect();
            let pause_ms = partitions.iter().map(|k| k.gap_ms).fold(0.0, f64::max);
            MemberPause {
                member,
                pause_ms,
                partitions,
            }
        })
        .collect();

    let stays = |m: MemberId| {
        let info = &trace.members[m];
        info.started < t && info.ended.is_none_or(|e| e >= until)
    };
    let detected_ms = callbacks
        .iter()
        .find(|c| stays(c.member))
        .map(|c| c.after_ms);
    EventFigures {
        trigger,
        until,
        settled_at,
        total_ms: settled_at.map(|s| ms(s - t)),
        pauses,
        handovers,
        callbacks,
        detected_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rebalance::trace::{Acked, Callback, Ending, MemberInfo, Receipt};

    const MS: Micros = 1000;

    fn member(name: &str) -> MemberInfo {
        MemberInfo::for_test(name)
    }

    fn callback(member: MemberId, at_ms: u64, kind: CallbackKind, partitions: &[i32]) -> Callback {
        Callback {
            member,
            at: at_ms * MS,
            kind,
            partitions: partitions.to_vec(),
        }
    }

    /// Receipts of `partition` by `member` every `every_ms` in `[from_ms, to_ms)`, with
    /// sequence numbers starting at `seq`.
    fn stream(
        member: MemberId,
        partition: i32,
        from_ms: u64,
        to_ms: u64,
        every_ms: u64,
        seq: u64,
    ) -> Vec<Receipt> {
        (from_ms..to_ms)
            .step_by(every_ms as usize)
            .enumerate()
            .map(|(i, t)| Receipt {
                member,
                partition,
                offset: i as i64,
                seq: seq + i as u64,
                sent: t * MS - 2 * MS,
                at: t * MS,
            })
            .collect()
    }

    fn finish(mut trace: Trace) -> Trace {
        trace
            .receipts
            .sort_by_key(|r| (r.at, r.member, r.partition));
        trace.callbacks.sort_by_key(|c| (c.at, c.member));
        trace.acked = trace
            .receipts
            .iter()
            .map(|r| Acked {
                seq: r.seq,
                partition: r.partition,
                offset: r.offset,
            })
            .collect();
        trace.acked.sort_by_key(|a| a.seq);
        trace.acked.dedup();
        trace
    }

    /// Two members, two partitions; at 10 s member 1 joins and partition 1 moves to it.
    /// Cooperative shape: member 0 keeps partition 0 and never stops on it.
    fn cooperative_scale_out() -> Trace {
        let mut t = Trace {
            partitions: 2,
            members: vec![member("m0"), member("m1")],
            steady_from: 1000 * MS,
            triggers: vec![Trigger {
                at: 10_000 * MS,
                label: "+m1".into(),
            }],
            stopped_at: 20_000 * MS,
            ..Trace::default()
        };
        t.callbacks = vec![
            callback(0, 500, CallbackKind::Assign, &[0, 1]),
            callback(0, 11_000, CallbackKind::Revoke, &[1]),
            callback(1, 11_500, CallbackKind::Assign, &[1]),
            callback(0, 11_500, CallbackKind::Assign, &[]),
        ];
        t.receipts.extend(stream(0, 0, 600, 20_000, 10, 0));
        t.receipts.extend(stream(0, 1, 600, 11_000, 10, 100_000));
        // The new owner starts where the old one stopped, re-reading 200 ms (duplicates).
        t.receipts
            .extend(stream(1, 1, 11_600, 20_000, 10, 100_000 + 1020));
        finish(t)
    }

    #[test]
    fn distribution_uses_nearest_rank() {
        let d = Distribution::of((1..=100).map(|v| v * MS).collect());
        assert_eq!(d.count, 100);
        assert_eq!(d.p50_ms, 50.0);
        assert_eq!(d.p99_ms, 99.0);
        assert_eq!(d.max_ms, 100.0);
        assert_eq!(Distribution::of(vec![]), Distribution::default());
        assert_eq!(Distribution::of(vec![7 * MS]).p99_ms, 7.0);
    }

    #[test]
    fn longest_gap_counts_gaps_overlapping_the_window() {
        let times = [0, 10, 20, 100, 110, 300];
        assert_eq!(longest_gap(&times, 50, 60, 400), Some((20, 80)));
        assert_eq!(longest_gap(&times, 0, 400, 400), Some((110, 190)));
        // A gap before the window does not count.
        assert_eq!(longest_gap(&times, 105, 108, 400), Some((100, 10)));
        // Silence after the last message counts up to the horizon.
        assert_eq!(longest_gap(&[0, 10], 5, 50, 1000), Some((10, 990)));
        assert_eq!(longest_gap(&[], 0, 10, 10), None);
    }

    #[test]
    fn ownership_follows_callbacks_and_member_end() {
        let mut t = cooperative_scale_out();
        t.members[1].ended = Some(15_000 * MS);
        t.members[1].ending = Some(Ending::Crashed);
        let owns = ownerships(&t);
        assert_eq!(
            owns,
            vec![
                Ownership {
                    member: 0,
                    partition: 0,
                    from: 500 * MS,
                    to: Micros::MAX
                },
                Ownership {
                    member: 0,
                    partition: 1,
                    from: 500 * MS,
                    to: 11_000 * MS
                },
                Ownership {
                    member: 1,
                    partition: 1,
                    from: 11_500 * MS,
                    to: 15_000 * MS
                },
            ]
        );
        assert_eq!(owner_at(&owns, 1, 10_000 * MS), Some((0, 500 * MS)));
        assert_eq!(owner_at(&owns, 1, 11_200 * MS), None);
        assert_eq!(owner_at(&owns, 1, 12_000 * MS), Some((1, 11_500 * MS)));
    }

    #[test]
    fn cooperative_scale_out_figures() {
        let f = analyse(&cooperative_scale_out());
        assert_eq!(f.steady_gap.max_ms, 10.0);
        assert_eq!(f.steady_latency.max_ms, 2.0);
        let e = &f.events[0];
        // Partition 0 is kept by m0 with no gap beyond the steady 10 ms.
        assert_eq!(e.pauses.len(), 1);
        assert_eq!(e.pauses[0].member, 0);
        assert_eq!(e.pauses[0].pause_ms, 10.0);
        // Partition 1 moves to m1, whose first message comes 1.6 s after the trigger.
        assert_eq!(
            e.handovers,
            vec![Handover {
                event: 0,
                partition: 1,
                from: Some(0),
                to: Some(1),
                ms: Some(1600.0),
                // m0 read it until 10 990 ms, m1 from 11 600 ms.
                gap_ms: Some(610.0),
            }]
        );
        assert_eq!(e.settled_at, Some(11_600 * MS));
        assert_eq!(f.total_ms, Some(1600.0));
        assert_eq!(f.pause_max_ms, Some(10.0));
        assert_eq!(f.handover.max_ms, 1600.0);
        assert_eq!(f.handovers_unresolved, 0);
        // m0 read seqs up to 100 000 + 1039; m1 re-reads from 100 000 + 1020.
        assert_eq!(f.duplicates, 20);
        assert_eq!(f.losses, 0);
        assert_eq!(e.callbacks.len(), 3);
        assert_eq!(e.callbacks[0].after_ms, 1000.0);
        assert_eq!(e.detected_ms, Some(1000.0));
    }

    #[test]
    fn eager_pause_is_the_gap_on_kept_partitions() {
        // m0 owns both partitions, m1 owns none until it joins at 10 s. Eager: m0 loses both
        // at 11 s and gets partition 0 back at 12 s; m1 gets partition 1.
        let mut t = Trace {
            partitions: 2,
            members: vec![member("m0"), member("m1")],
            steady_from: 1000 * MS,
            triggers: vec![Trigger {
                at: 10_000 * MS,
                label: "+m1".into(),
            }],
            stopped_at: 20_000 * MS,
            ..Trace::default()
        };
        t.callbacks = vec![
            callback(0, 500, CallbackKind::Assign, &[0, 1]),
            callback(0, 11_000, CallbackKind::Revoke, &[0, 1]),
            callback(0, 12_000, CallbackKind::Assign, &[0]),
            callback(1, 12_000, CallbackKind::Assign, &[1]),
        ];
        t.receipts.extend(stream(0, 0, 600, 11_000, 10, 0));
        t.receipts.extend(stream(0, 0, 12_050, 20_000, 10, 1040));
        t.receipts.extend(stream(0, 1, 600, 11_000, 10, 100_000));
        t.receipts
            .extend(stream(1, 1, 12_100, 20_000, 10, 100_000 + 1040));
        let f = analyse(&finish(t));
        let e = &f.events[0];
        assert_eq!(e.pauses[0].member, 0);
        // Last message at 10 990 ms, next at 12 050 ms.
        assert_eq!(e.pauses[0].pause_ms, 1060.0);
        assert_eq!(e.pauses[0].partitions[0].gap_from, 10_990 * MS);
        assert_eq!(e.handovers[0].ms, Some(2100.0));
        assert_eq!(e.handovers[0].gap_ms, Some(1110.0));
        assert_eq!(f.moved_gap.max_ms, 1110.0);
        assert_eq!(f.total_ms, Some(2100.0));
        assert_eq!(f.member_pauses, BTreeMap::from([(0, 1060.0)]));
        // The synthetic stream is received 2 ms after it is sent, pause or not.
        assert_eq!(f.rebalance_latency_max_ms, Some(2.0));
        assert_eq!(f.losses, 0);
    }

    #[test]
    fn crash_counts_losses_and_waits_for_resume() {
        // m1 crashes at 10 s owning partition 1; m0 takes it over at 20 s (session timeout)
        // from an older committed offset.
        let mut t = Trace {
            partitions: 2,
            members: vec![member("m0"), member("m1")],
            steady_from: 1000 * MS,
            triggers: vec![Trigger {
                at: 10_000 * MS,
                label: "m1 crashes".into(),
            }],
            stopped_at: 30_000 * MS,
            ..Trace::default()
        };
        t.members[1].ended = Some(10_000 * MS);
        t.members[1].ending = Some(Ending::Crashed);
        t.callbacks = vec![
            callback(0, 500, CallbackKind::Assign, &[0]),
            callback(1, 500, CallbackKind::Assign, &[1]),
            callback(0, 20_000, CallbackKind::Assign, &[1]),
        ];
        t.receipts.extend(stream(0, 0, 600, 30_000, 10, 0));
        t.receipts.extend(stream(1, 1, 600, 10_000, 10, 100_000));
        t.receipts
            .extend(stream(0, 1, 20_010, 30_000, 10, 100_000 + 500));
        let mut t = finish(t);
        // One acknowledged message nobody received.
        t.acked.push(Acked {
            seq: 999_999,
            partition: 1,
            offset: 99_999,
        });
        let f = analyse(&t);
        let e = &f.events[0];
        assert_eq!(e.detected_ms, Some(10_000.0));
        assert_eq!(e.handovers.len(), 1);
        assert_eq!(e.handovers[0].from, Some(1));
        assert_eq!(e.handovers[0].to, Some(0));
        assert_eq!(e.handovers[0].ms, Some(10_010.0));
        // m1 last read it at 9 990 ms, m0 from 20 010 ms.
        assert_eq!(e.handovers[0].gap_ms, Some(10_020.0));
        assert_eq!(e.pauses[0].pause_ms, 10.0);
        assert_eq!(f.total_ms, Some(10_010.0));
        assert_eq!(f.losses, 1);
        assert_eq!(f.lost_sample, vec![999_999]);
        assert!(f.duplicates > 0);
    }

    #[test]
    fn an_unresumed_partition_leaves_the_event_unsettled() {
        let mut t = cooperative_scale_out();
        // m1 never receives anything of partition 1.
        t.receipts.retain(|r| r.member != 1);
        let f = analyse(&t);
        assert_eq!(f.events[0].settled_at, None);
        assert_eq!(f.total_ms, None);
        assert_eq!(f.handovers_unresolved, 1);
        assert!(f.losses > 0);
    }

    #[test]
    fn each_rolling_restart_event_ends_at_the_next_trigger() {
        // m0 restarts as m2 at 10 s (static-like: same partition), then m1 as m3 at 20 s.
        let mut t = Trace {
            partitions: 2,
            members: vec![member("m0"), member("m1"), member("m0#2"), member("m1#2")],
            steady_from: 1000 * MS,
            triggers: vec![
                Trigger {
                    at: 10_000 * MS,
                    label: "restart m0".into(),
                },
                Trigger {
                    at: 20_000 * MS,
                    label: "restart m1".into(),
                },
            ],
            stopped_at: 30_000 * MS,
            ..Trace::default()
        };
        t.members[0].ended = Some(10_100 * MS);
        t.members[1].ended = Some(20_100 * MS);
        t.callbacks = vec![
            callback(0, 500, CallbackKind::Assign, &[0]),
            callback(1, 500, CallbackKind::Assign, &[1]),
            callback(0, 10_050, CallbackKind::Revoke, &[0]),
            callback(2, 10_700, CallbackKind::Assign, &[0]),
            callback(1, 20_050, CallbackKind::Revoke, &[1]),
            callback(3, 20_900, CallbackKind::Assign, &[1]),
        ];
        t.receipts.extend(stream(0, 0, 600, 10_050, 10, 0));
        t.receipts.extend(stream(2, 0, 10_800, 30_000, 10, 945));
        t.receipts.extend(stream(1, 1, 600, 20_050, 10, 100_000));
        t.receipts
            .extend(stream(3, 1, 21_000, 30_000, 10, 100_000 + 1945));
        let f = analyse(&finish(t));
        assert_eq!(f.events.len(), 2);
        assert_eq!(f.events[0].handovers[0].ms, Some(800.0));
        assert_eq!(f.events[0].pauses[0].member, 1);
        assert_eq!(f.events[1].handovers[0].ms, Some(1000.0));
        // In the second event the replacement m0#2 keeps partition 0.
        assert_eq!(f.events[1].pauses[0].member, 2);
        // 800 ms for the first restart, 1000 ms for the second.
        assert_eq!(f.total_ms, Some(1800.0));
        assert_eq!(f.handover.count, 2);
        assert_eq!(f.handover.p50_ms, 800.0);
        assert_eq!(f.losses, 0);
    }
}
