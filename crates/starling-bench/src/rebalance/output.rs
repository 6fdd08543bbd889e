//! The rebalance bench's results: the table on stdout and the JSON document.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::analysis::{ms, Figures};
use super::scenario::PairRun;
use super::trace::Trace;

/// One finished pair with its figures.
pub struct PairResult {
    pub run: PairRun,
    pub figures: Figures,
    /// Where its timeline was written.
    pub svg: Option<PathBuf>,
    /// Wall time of the pair, seconds.
    pub seconds: f64,
}

fn opt_ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}"))
        .unwrap_or_else(|| "-".to_string())
}

/// `m0 12, m1 3012` (members that kept partitions only).
fn member_pauses(result: &PairResult) -> String {
    let names: Vec<String> = result
        .figures
        .member_pauses
        .iter()
        .map(|(&m, &p)| format!("{} {p:.0}", result.run.trace.member_name(m)))
        .collect();
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(", ")
    }
}

const HEADER: [(&str, usize); 12] = [
    ("scenario", 16),
    ("strategy", 12),
    ("gap p99", 8),
    ("gap max", 8),
    ("pause max", 10),
    ("moved", 6),
    ("handover p50", 13),
    ("handover max", 13),
    ("moved gap", 10),
    ("total", 8),
    ("dups", 6),
    ("lost", 5),
];

/// Lays out one line of cells by the widths in [`HEADER`]: names left, figures right.
fn row(cells: &[String]) -> String {
    let mut line = String::new();
    for (i, ((_, width), cell)) in HEADER.iter().zip(cells).enumerate() {
        if i < 2 {
            line.push_str(&format!("{cell:<width$}"));
        } else {
            line.push_str(&format!("{cell:>width$}"));
        }
    }
    line
}

/// Prints the table, one row per pair, and the notes under it.
pub fn print_table(results: &[PairResult], heading: &str) {
    println!();
    println!("{heading}");
    println!();
    let names: Vec<String> = HEADER.iter().map(|(n, _)| n.to_string()).collect();
    let header = format!("{}  pause by member", row(&names));
    println!("{header}");
    println!("{}", "-".repeat(header.len() + 14));
    for r in results {
        let f = &r.figures;
        let handover = |v: f64| {
            if f.handover.count == 0 {
                "-".to_string()
            } else {
                format!("{v:.0}")
            }
        };
        let cells = [
            r.run.scenario.name().to_string(),
            r.run.strategy.name().to_string(),
            format!("{:.0}", f.steady_gap.p99_ms),
            format!("{:.0}", f.steady_gap.max_ms),
            opt_ms(f.pause_max_ms),
            (f.handover.count + f.handovers_unresolved).to_string(),
            handover(f.handover.p50_ms),
            if f.handovers_unresolved > 0 {
                "never".to_string()
            } else {
                handover(f.handover.max_ms)
            },
            handover(f.moved_gap.max_ms),
            opt_ms(f.total_ms),
            f.duplicates.to_string(),
            f.losses.to_string(),
        ];
        println!("{}  {}", row(&cells), member_pauses(r));
    }
    println!();
    println!(
        "All times in ms. gap: between consecutive messages of a partition before the trigger. \
         pause: a member's longest gap on partitions it kept. handover: trigger -> first message \
         at a moved partition's new owner (p50, max). moved gap: a moved partition's longest \
         silence during its hand-over (max). total: trigger -> every member has its final \
         assignment and every partition is consumed again (summed over the restarts of a rolling \
         restart). dups: messages received more than once. lost: acknowledged, never received."
    );
    for r in results {
        let pair = format!("{}/{}", r.run.scenario.name(), r.run.strategy.name());
        if let Some(c) = &r.run.leave_check {
            let sent = match c.leave_requests_sent {
                Some(n) => format!("sent {n} LeaveGroup request(s)"),
                None => "handle destroyed without consumer close".to_string(),
            };
            let listed = match (c.listed_after, &c.group_state_after) {
                (Some(true), Some(state)) => format!(
                    "still listed by the coordinator {:.0} ms later (group {state})",
                    c.checked_after_ms
                ),
                (Some(false), Some(state)) => format!(
                    "no longer listed by the coordinator {:.0} ms later (group {state})",
                    c.checked_after_ms
                ),
                _ => "not a group member".to_string(),
            };
            println!("{pair}: {} {}: {sent}; {listed}", c.member, c.ending.name());
        }
        for note in &r.run.notes {
            println!("{pair}: note: {note}");
        }
        if r.figures.losses > 0 {
            println!(
                "{pair}: LOST {} acknowledged message(s), first seqs {:?}",
                r.figures.losses, r.figures.lost_sample
            );
        }
    }
}

fn member_json(trace: &Trace) -> Value {
    Value::Array(
        trace
            .members
            .iter()
            .map(|m| {
                json!({
                    "name": m.name,
                    "slot": m.slot,
                    "started_s": m.started as f64 / 1e6,
                    "ended_s": m.ended.map(|e| e as f64 / 1e6),
                    "ending": m.ending.map(|e| e.name()),
                    "group_instance_id": m.instance_id,
                    "member_id": m.member_id,
                    "leave_requests_sent": m.leave_requests_sent,
                    "client_errors": m.errors,
                    "last_client_error": m.last_error,
                })
            })
            .collect(),
    )
}

/// Every figure of a pair, with per-member, per-partition and per-event detail.
pub fn pair_json(r: &PairResult) -> Value {
    let t = &r.run.trace;
    let f = &r.figures;
    let name = |m: usize| t.member_name(m).to_string();
    let events: Vec<Value> = f
        .events
        .iter()
        .map(|e| {
            json!({
                "label": e.trigger.label,
                "trigger_s": e.trigger.at as f64 / 1e6,
                "observed_until_s": e.until as f64 / 1e6,
                "settled_s": e.settled_at.map(|s| s as f64 / 1e6),
                "total_ms": e.total_ms,
                "detected_ms": e.detected_ms,
                "pauses": e.pauses.iter().map(|p| json!({
                    "member": name(p.member),
                    "pause_ms": p.pause_ms,
                    "kept_partitions": p.partitions.iter().map(|k| json!({
                        "partition": k.partition,
                        "longest_gap_ms": k.gap_ms,
                        "gap_from_s": k.gap_from as f64 / 1e6,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "handovers": e.handovers.iter().map(|h| json!({
                    "partition": h.partition,
                    "from": h.from.map(name),
                    "to": h.to.map(name),
                    "ms": h.ms,
                    "gap_ms": h.gap_ms,
                })).collect::<Vec<_>>(),
                "callbacks": e.callbacks.iter().map(|c| json!({
                    "member": name(c.member),
                    "kind": c.kind.name(),
                    "after_ms": c.after_ms,
                    "partitions": c.partitions,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let dist = |d: &super::analysis::Distribution| json!({"count": d.count, "p50": d.p50_ms, "p99": d.p99_ms, "max": d.max_ms});
    json!({
        "scenario": r.run.scenario.name(),
        "strategy": r.run.strategy.name(),
        "topic": r.run.topic,
        "group": r.run.group,
        "wall_seconds": r.seconds,
        "steady_from_s": t.steady_from as f64 / 1e6,
        "stopped_s": t.stopped_at as f64 / 1e6,
        "steady_gap_ms": dist(&f.steady_gap),
        "steady_latency_ms": dist(&f.steady_latency),
        "rebalance_latency_max_ms": f.rebalance_latency_max_ms,
        "pause_ms": {
            "max": f.pause_max_ms,
            "members": f.member_pauses.iter().map(|(&m, &p)| (name(m), json!(p))).collect::<serde_json::Map<_, _>>(),
        },
        "handover_ms": {
            "count": f.handover.count,
            "unresolved": f.handovers_unresolved,
            "p50": (f.handover.count > 0).then_some(f.handover.p50_ms),
            "max": (f.handover.count > 0).then_some(f.handover.max_ms),
        },
        "moved_gap_ms": {
            "count": f.moved_gap.count,
            "p50": (f.moved_gap.count > 0).then_some(f.moved_gap.p50_ms),
            "max": (f.moved_gap.count > 0).then_some(f.moved_gap.max_ms),
        },
        "total_ms": f.total_ms,
        "produced_sent": r.run.produced_sent,
        "acknowledged": f.acked,
        "produce_failures": t.produce_failures,
        "first_produce_failure": r.run.first_produce_failure,
        "received": f.received,
        "duplicates": f.duplicates,
        "losses": f.losses,
        "lost_seq_sample": f.lost_sample,
        "pause_threshold_ms": ms(f.pause_threshold),
        "leave_check": r.run.leave_check.as_ref().map(|c| json!({
            "member": c.member,
            "ending": c.ending.name(),
            "leave_requests_sent": c.leave_requests_sent,
            "listed_after": c.listed_after,
            "group_state_after": c.group_state_after,
            "checked_after_ms": c.checked_after_ms,
        })),
        "members": member_json(t),
        "events": events,
        "notes": r.run.notes,
        "svg": r.svg.as_ref().map(|p| p.display().to_string()),
    })
}
