//! A hand-written SVG timeline of one (scenario, strategy) pair.
//!
//! One row per partition, time running right, in seconds since the first trigger:
//!
//! - a thick bar where a member was receiving messages of the partition (gaps up to the
//!   pause threshold are bridged), coloured by member;
//! - a thin dashed line under it while a member owned the partition per its callbacks;
//! - a red shade over every gap longer than the pause threshold (the longest steady gap,
//!   at least 50 ms);
//! - a dashed vertical line and label at each trigger, a dotted one where its event settled.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::analysis::{ms, ownerships, Figures};
use super::trace::{MemberId, Micros, Trace};

const WIDTH: f64 = 1100.0;
const MARGIN_LEFT: f64 = 56.0;
const MARGIN_RIGHT: f64 = 24.0;
const PLOT_TOP: f64 = 92.0;
const ROW: f64 = 20.0;
const BAR: f64 = 11.0;
const LEGEND_PER_LINE: usize = 5;

/// Member colours (red is left for pauses).
const PALETTE: [&str; 9] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
    "#7f7f7f",
];
const PAUSE_FILL: &str = "#e8514a";

pub fn member_colour(m: MemberId) -> &'static str {
    PALETTE[m % PALETTE.len()]
}

/// Escapes text for SVG content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A tick step (in seconds) giving at most `max_ticks` ticks over `span_s` seconds.
pub fn tick_step(span_s: f64, max_ticks: usize) -> f64 {
    const STEPS: [f64; 14] = [
        0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span_s / s <= max_ticks as f64)
        .unwrap_or(600.0)
}

fn seconds_label(s: f64, step: f64) -> String {
    let s = if s.abs() < step / 1000.0 { 0.0 } else { s };
    if step < 0.1 {
        format!("{s:.2} s")
    } else if step < 1.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

/// The time span the timeline shows: from a little before the first trigger to a little after
/// the last event settled (or ended), within the recorded run.
pub fn window(trace: &Trace, figures: &Figures) -> (Micros, Micros) {
    let first = trace
        .triggers
        .first()
        .map(|t| t.at)
        .unwrap_or(trace.steady_from);
    let end = figures
        .events
        .last()
        .map(|e| e.settled_at.unwrap_or(e.until))
        .unwrap_or(trace.stopped_at)
        .max(first);
    let margin = ((end - first) / 10).max(2_000_000);
    let t0 = first.saturating_sub(margin).max(trace.steady_from);
    let t1 = (end + margin).min(trace.stopped_at.max(end));
    if t1 > t0 {
        (t0, t1)
    } else {
        (t0, t0 + 1_000_000)
    }
}

/// Renders the timeline; `title` and `subtitle` head it.
pub fn render(trace: &Trace, figures: &Figures, title: &str, subtitle: &str) -> String {
    let (t0, t1) = window(trace, figures);
    let origin = trace.triggers.first().map(|t| t.at).unwrap_or(t0);
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let x = |t: Micros| -> f64 {
        let t = t.clamp(t0, t1);
        MARGIN_LEFT + (t - t0) as f64 / (t1 - t0) as f64 * plot_w
    };
    let rows = trace.partitions.max(0) as usize;
    let plot_bottom = PLOT_TOP + rows as f64 * ROW;

    let mut present: Vec<MemberId> = Vec::new();
    let owns = ownerships(trace);
    for o in &owns {
        if o.from < t1 && o.to > t0 && !present.contains(&o.member) {
            present.push(o.member);
        }
    }
    let mut by_member_partition: BTreeMap<(i32, MemberId), Vec<Micros>> = BTreeMap::new();
    let mut by_partition: BTreeMap<i32, Vec<Micros>> = BTreeMap::new();
    for r in &trace.receipts {
        by_member_partition
            .entry((r.partition, r.member))
            .or_default()
            .push(r.at);
        by_partition.entry(r.partition).or_default().push(r.at);
        if r.at >= t0 && r.at <= t1 && !present.contains(&r.member) {
            present.push(r.member);
        }
    }
    present.sort_unstable();
    let legend_items = present.len() + 3;
    let legend_lines = legend_items.div_ceil(LEGEND_PER_LINE);
    let height = plot_bottom + 56.0 + legend_lines as f64 * 18.0 + 10.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0}" height="{height:.0}" viewBox="0 0 {WIDTH:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{WIDTH:.0}" height="{height:.0}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{MARGIN_LEFT:.0}" y="20" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{MARGIN_LEFT:.0}" y="38" fill="#444444">{}</text>"##,
        escape(subtitle)
    );

    // Rows: stripes, pauses, ownership lines, consumption bars, labels.
    for p in 0..trace.partitions {
        let top = PLOT_TOP + p as f64 * ROW;
        if p % 2 == 0 {
            let _ = writeln!(
                s,
                r##"<rect x="{MARGIN_LEFT:.1}" y="{top:.1}" width="{plot_w:.1}" height="{ROW:.1}" fill="#f4f4f4"/>"##
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">p{p}</text>"#,
            MARGIN_LEFT - 6.0,
            top + ROW / 2.0 + 4.0
        );
        if let Some(times) = by_partition.get(&p) {
            for w in times.windows(2) {
                let (a, b) = (w[0], w[1]);
                if b - a > figures.pause_threshold && b > t0 && a < t1 {
                    let _ = writeln!(
                        s,
                        r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{ROW:.1}" fill="{PAUSE_FILL}" fill-opacity="0.35"><title>p{p}: no message for {:.0} ms</title></rect>"#,
                        x(a),
                        (x(b) - x(a)).max(0.5),
                        ms(b - a)
                    );
                }
            }
        }
        for o in owns.iter().filter(|o| o.partition == p) {
            if o.to <= t0 || o.from >= t1 {
                continue;
            }
            let y = top + ROW - 3.0;
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="1.5" stroke-dasharray="3,2"/>"#,
                x(o.from),
                x(o.to),
                member_colour(o.member)
            );
        }
        for ((_, m), times) in by_member_partition.range((p, 0)..=(p, MemberId::MAX)) {
            for (a, b) in runs(times, figures.pause_threshold) {
                if b < t0 || a > t1 {
                    continue;
                }
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{BAR:.1}" fill="{}"><title>{} on p{p}</title></rect>"#,
                    x(a),
                    top + 3.0,
                    (x(b) - x(a)).max(1.0),
                    member_colour(*m),
                    escape(trace.member_name(*m))
                );
            }
        }
    }

    // Frame and time axis.
    let _ = writeln!(
        s,
        r##"<rect x="{MARGIN_LEFT:.1}" y="{PLOT_TOP:.1}" width="{plot_w:.1}" height="{:.1}" fill="none" stroke="#999999"/>"##,
        plot_bottom - PLOT_TOP
    );
    let span_s = (t1 - t0) as f64 / 1e6;
    let step = tick_step(span_s, 14);
    let first_tick = ((t0 as f64 - origin as f64) / 1e6 / step).ceil() as i64;
    let last_tick = ((t1 as f64 - origin as f64) / 1e6 / step).floor() as i64;
    for k in first_tick..=last_tick {
        let rel = k as f64 * step;
        let t = (origin as f64 + rel * 1e6).round();
        if t < 0.0 {
            continue;
        }
        let tx = x(t as Micros);
        let _ = writeln!(
            s,
            r##"<line x1="{tx:.1}" y1="{plot_bottom:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#666666"/>"##,
            plot_bottom + 5.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{tx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            plot_bottom + 17.0,
            seconds_label(rel, step)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444444">seconds since the first trigger</text>"##,
        MARGIN_LEFT + plot_w / 2.0,
        plot_bottom + 32.0
    );

    // Triggers and settling marks, labels staggered on two lines above the plot.
    for (i, (trigger, event)) in trace.triggers.iter().zip(&figures.events).enumerate() {
        let tx = x(trigger.at);
        let label_y = PLOT_TOP - 26.0 - (i % 2) as f64 * 12.0;
        let _ = writeln!(
            s,
            r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{plot_bottom:.1}" stroke="#222222" stroke-width="1.5" stroke-dasharray="6,3"/>"##,
            label_y + 3.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{label_y:.1}" font-weight="bold">{}</text>"#,
            tx + 3.0,
            escape(&trigger.label)
        );
        if let (Some(at), Some(total)) = (event.settled_at, event.total_ms) {
            let sx = x(at);
            let _ = writeln!(
                s,
                r##"<line x1="{sx:.1}" y1="{:.1}" x2="{sx:.1}" y2="{plot_bottom:.1}" stroke="#1a7f37" stroke-width="1.5" stroke-dasharray="2,2"/>"##,
                PLOT_TOP - 10.0
            );
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#1a7f37">settled +{:.2} s</text>"##,
                sx + 3.0,
                PLOT_TOP - 3.0,
                total / 1000.0
            );
        }
    }

    // Legend: one swatch (width, height, colour, opacity) and label per item.
    let mut items: Vec<(f64, f64, &str, f64, String)> = present
        .iter()
        .map(|&m| {
            let info = &trace.members[m];
            let label = match info.ending {
                Some(e) if info.ended.is_some_and(|at| at <= t1) => {
                    format!("{} ({})", info.name, e.name())
                }
                _ => info.name.clone(),
            };
            (18.0, BAR, member_colour(m), 1.0, label)
        })
        .collect();
    items.push((
        18.0,
        BAR,
        PAUSE_FILL,
        0.35,
        format!("no message for > {:.0} ms", ms(figures.pause_threshold)),
    ));
    items.push((
        18.0,
        2.0,
        "#555555",
        1.0,
        "owned (per callbacks)".to_string(),
    ));
    items.push((
        2.0,
        BAR,
        "#222222",
        1.0,
        "trigger; green: settled".to_string(),
    ));
    let legend_top = plot_bottom + 50.0;
    let item_w = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / LEGEND_PER_LINE as f64;
    for (i, (w, h, fill, opacity, label)) in items.iter().enumerate() {
        let lx = MARGIN_LEFT + (i % LEGEND_PER_LINE) as f64 * item_w;
        let ly = legend_top + (i / LEGEND_PER_LINE) as f64 * 18.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.1}" y="{:.1}" width="{w:.0}" height="{h:.0}" fill="{fill}" fill-opacity="{opacity}"/>"#,
            ly - 9.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{ly:.1}">{}</text>"#,
            lx + 24.0,
            escape(label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Merges sorted receipt times into runs: a gap longer than `threshold` starts a new run.
pub fn runs(times: &[Micros], threshold: Micros) -> Vec<(Micros, Micros)> {
    let mut out: Vec<(Micros, Micros)> = Vec::new();
    for &t in times {
        match out.last_mut() {
            Some((_, end)) if t.saturating_sub(*end) <= threshold => *end = t,
            _ => out.push((t, t)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rebalance::analysis::analyse;
    use crate::rebalance::trace::{Callback, CallbackKind, Ending, MemberInfo, Receipt, Trigger};

    const MS: Micros = 1000;

    fn member(name: &str) -> MemberInfo {
        MemberInfo::for_test(name)
    }

    /// m1 crashes at 10 s; m0 takes its partition at 16 s.
    fn crash_trace() -> Trace {
        let mut t = Trace {
            partitions: 2,
            members: vec![member("m0"), member("m<1>")],
            steady_from: 1000 * MS,
            triggers: vec![Trigger {
                at: 10_000 * MS,
                label: "m<1> crashes".into(),
            }],
            stopped_at: 25_000 * MS,
            ..Trace::default()
        };
        t.members[1].ended = Some(10_000 * MS);
        t.members[1].ending = Some(Ending::Crashed);
        t.callbacks = vec![
            Callback {
                member: 0,
                at: 500 * MS,
                kind: CallbackKind::Assign,
                partitions: vec![0],
            },
            Callback {
                member: 1,
                at: 500 * MS,
                kind: CallbackKind::Assign,
                partitions: vec![1],
            },
            Callback {
                member: 0,
                at: 16_000 * MS,
                kind: CallbackKind::Assign,
                partitions: vec![1],
            },
        ];
        let mut seq = 0;
        let mut push = |m: MemberId, p: i32, from: u64, to: u64| {
            for at in (from..to).step_by(20) {
                t.receipts.push(Receipt {
                    member: m,
                    partition: p,
                    offset: seq as i64,
                    seq,
                    sent: at * MS,
                    at: at * MS,
                });
                seq += 1;
            }
        };
        push(0, 0, 600, 25_000);
        push(1, 1, 600, 10_000);
        push(0, 1, 16_100, 25_000);
        t.receipts.sort_by_key(|r| r.at);
        t
    }

    #[test]
    fn runs_bridge_short_gaps_only() {
        assert_eq!(runs(&[0, 10, 20, 200, 210], 50), vec![(0, 20), (200, 210)]);
        assert_eq!(runs(&[], 50), vec![]);
        assert_eq!(runs(&[5], 50), vec![(5, 5)]);
    }

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(10.0, 14), 1.0);
        assert_eq!(tick_step(1.0, 14), 0.1);
        assert_eq!(tick_step(60.0, 14), 5.0);
        assert_eq!(tick_step(100_000.0, 14), 600.0);
        assert_eq!(seconds_label(-2.0, 1.0), "-2 s");
        assert_eq!(seconds_label(0.5, 0.5), "0.5 s");
    }

    #[test]
    fn escape_covers_markup() {
        assert_eq!(
            escape(r#"a<b & "c">'"#),
            "a&lt;b &amp; &quot;c&quot;&gt;&apos;"
        );
    }

    #[test]
    fn window_frames_the_events() {
        let trace = crash_trace();
        let figures = analyse(&trace);
        let (t0, t1) = window(&trace, &figures);
        // Settled at 16.1 s; margins of 2 s.
        assert_eq!((t0, t1), (8_000 * MS, 18_100 * MS));
    }

    #[test]
    fn timeline_has_rows_pauses_trigger_and_legend() {
        let trace = crash_trace();
        let figures = analyse(&trace);
        let svg = render(
            &trace,
            &figures,
            "crash / eager",
            "2 members & 2 partitions",
        );
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        assert!(svg.contains(">p0</text>") && svg.contains(">p1</text>"));
        assert!(svg.contains("m&lt;1&gt; crashes"));
        assert!(svg.contains("m&lt;1&gt; (crashed)"));
        assert!(svg.contains("2 members &amp; 2 partitions"));
        assert!(svg.contains("settled +6.10 s"));
        // p1 has a 6.12 s pause, shaded; p0 none.
        assert_eq!(svg.matches("no message for 6120 ms").count(), 1);
        assert!(svg.contains(">0 s</text>"));
        // Well formed enough: every element opened is closed.
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert_eq!(svg.matches("<svg").count(), 1);
        for line in svg
            .lines()
            .filter(|l| l.starts_with("<rect") || l.starts_with("<line"))
        {
            assert!(line.ends_with("/>") || line.ends_with("</rect>"), "{line}");
        }
    }
}
