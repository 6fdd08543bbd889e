//! Figures, the final table (stdout), the JSON file and the progress bars (stderr).
//!
//! MB means 10^6 bytes. Throughput counts message payload bytes only (no keys, headers or
//! protocol framing), so it is directly comparable with the loopback ceiling.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::CommonArgs;

/// Phase labels of `bench produce --compare`.
pub const BASELINE: &str = "produce baseline";
pub const VARIANT: &str = "produce variant";

/// One measured client phase.
#[derive(Debug, Clone)]
pub struct Phase {
    pub label: &'static str,
    pub messages: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// Produce: from creating the producer to its first acknowledged message, which is sent
    /// before the measured ones and outside `seconds`.
    pub startup_seconds: Option<f64>,
}

impl Phase {
    pub fn messages_per_sec(&self) -> f64 {
        self.messages as f64 / self.seconds
    }

    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds
    }
}

/// The loopback TCP measurement (best of `rounds`).
#[derive(Debug, Clone)]
pub struct Ceiling {
    pub bytes: u64,
    pub seconds: f64,
    pub rounds: u32,
}

impl Ceiling {
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds
    }
}

pub struct Report {
    mode: &'static str,
    messages: u64,
    size: usize,
    partitions: i32,
    compression: &'static str,
    acks: String,
    bootstrap: String,
    broker: String,
    topic: String,
    pub ceiling: Option<Ceiling>,
    pub page_cache: Option<Ceiling>,
    /// `--compare`: the properties of the producer variant measured against the baseline.
    pub compared: Option<Vec<(String, String)>>,
    phases: Vec<Phase>,
}

/// The baseline's and the variant's figures of a `--compare` run, over their rounds.
struct Comparison {
    baseline: Spread,
    variant: Spread,
}

impl Comparison {
    /// The variant's median throughput over the baseline's.
    fn ratio(&self) -> f64 {
        self.variant.median / self.baseline.median
    }
}

/// Median, lowest and highest messages per second of the phases with one label, and their
/// median start-up.
struct Spread {
    median: f64,
    min: f64,
    max: f64,
    startup_seconds: f64,
    rounds: usize,
}

impl Spread {
    fn of(phases: &[Phase], label: &str) -> Option<Spread> {
        let phases: Vec<&Phase> = phases.iter().filter(|p| p.label == label).collect();
        let mut rates: Vec<f64> = phases.iter().map(|p| p.messages_per_sec()).collect();
        let mut startups: Vec<f64> = phases.iter().filter_map(|p| p.startup_seconds).collect();
        Some(Spread {
            median: median(&mut rates)?,
            min: rates[0],
            max: rates[rates.len() - 1],
            startup_seconds: median(&mut startups)?,
            rounds: rates.len(),
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "median_messages_per_sec": self.median,
            "min_messages_per_sec": self.min,
            "max_messages_per_sec": self.max,
            "median_startup_seconds": self.startup_seconds,
            "rounds": self.rounds,
        })
    }
}

/// Sorts `values` and returns their median (None when there are none).
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

impl Report {
    pub fn new(
        mode: &'static str,
        args: &CommonArgs,
        bootstrap: &str,
        broker: String,
        topic: &str,
    ) -> Report {
        Report {
            mode,
            messages: args.messages,
            size: args.size,
            partitions: args.partitions,
            compression: args.compression.as_str(),
            acks: args.acks.clone(),
            bootstrap: bootstrap.to_string(),
            broker,
            topic: topic.to_string(),
            ceiling: None,
            page_cache: None,
            compared: None,
            phases: Vec::new(),
        }
    }

    pub fn push(&mut self, phase: Phase) {
        self.phases.push(phase);
    }

    fn comparison(&self) -> Option<Comparison> {
        self.compared.as_ref()?;
        Some(Comparison {
            baseline: Spread::of(&self.phases, BASELINE)?,
            variant: Spread::of(&self.phases, VARIANT)?,
        })
    }

    fn ratio(&self, phase: &Phase) -> Option<f64> {
        self.ceiling
            .as_ref()
            .map(|c| phase.mb_per_sec() / c.mb_per_sec())
    }

    pub fn print(&self) {
        println!();
        println!(
            "starling bench {}: {} messages x {} B ({:.1} MB payload), {} partitions, compression {}, acks {}",
            self.mode,
            self.messages,
            self.size,
            self.messages as f64 * self.size as f64 / 1e6,
            self.partitions,
            self.compression,
            self.acks
        );
        println!(
            "broker {} ({}), topic {}",
            self.bootstrap, self.broker, self.topic
        );
        println!();
        println!(
            "{:<24} {:>10} {:>9} {:>12} {:>10} {:>11}",
            "phase", "messages", "seconds", "msgs/s", "MB/s", "of ceiling"
        );
        println!("{}", "-".repeat(24 + 10 + 9 + 12 + 10 + 11 + 5));
        if let Some(c) = &self.ceiling {
            println!(
                "{:<24} {:>10} {:>9.3} {:>12} {:>10.1} {:>11}",
                "loopback TCP ceiling",
                "-",
                c.seconds,
                "-",
                c.mb_per_sec(),
                "100.0%"
            );
        }
        if let Some(w) = &self.page_cache {
            let ratio = match &self.ceiling {
                Some(c) => format!("{:.1}%", w.mb_per_sec() / c.mb_per_sec() * 100.0),
                None => "-".to_string(),
            };
            println!(
                "{:<24} {:>10} {:>9.3} {:>12} {:>10.1} {:>11}",
                "page-cache write (info)",
                "-",
                w.seconds,
                "-",
                w.mb_per_sec(),
                ratio
            );
        }
        for p in &self.phases {
            let ratio = match self.ratio(p) {
                Some(r) => format!("{:.1}%", r * 100.0),
                None => "-".to_string(),
            };
            println!(
                "{:<24} {:>10} {:>9.3} {:>12.0} {:>10.1} {:>11}",
                p.label,
                p.messages,
                p.seconds,
                p.messages_per_sec(),
                p.mb_per_sec(),
                ratio
            );
        }
        if let Some(c) = &self.ceiling {
            println!();
            println!(
                "ceiling: one TCP connection on 127.0.0.1, {:.1} MB in 1 MiB writes, best of {} rounds",
                c.bytes as f64 / 1e6,
                c.rounds
            );
        }
        if let Some(w) = &self.page_cache {
            println!(
                "page-cache write: the same volume written once to a fresh file in 1 MiB writes, no fsync, \
                 {:.1} MB (the least that storing the produced bytes costs this machine)",
                w.bytes as f64 / 1e6
            );
        }
        println!("MB = 10^6 bytes of message payload; msgs/s and MB/s are end to end (all acknowledged / all received).");
        let startups: Vec<String> = self
            .phases
            .iter()
            .filter_map(|p| p.startup_seconds)
            .map(|s| format!("{:.0} ms", s * 1e3))
            .collect();
        if !startups.is_empty() {
            println!(
                "produce: the clock starts when a first message is acknowledged, {} after the producer was created",
                startups.join(", ")
            );
        }
        if let (Some(variant), Some(c)) = (&self.compared, self.comparison()) {
            let properties: Vec<String> = variant.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!();
            println!(
                "variant: the baseline producer with {}; the two took turns, {} round{} each",
                properties.join(", "),
                c.baseline.rounds,
                if c.baseline.rounds == 1 { "" } else { "s" }
            );
            for (label, spread) in [("baseline", &c.baseline), ("variant", &c.variant)] {
                println!(
                    "{label:<8} median {:>10.0} msgs/s (range {:.0} - {:.0}), start-up {:.0} ms",
                    spread.median,
                    spread.min,
                    spread.max,
                    spread.startup_seconds * 1e3
                );
            }
            println!(
                "variant / baseline: {:.3} (medians; {:+.1}%)",
                c.ratio(),
                (c.ratio() - 1.0) * 100.0
            );
        }
    }

    pub fn to_json(&self) -> Value {
        let phases: Vec<Value> = self
            .phases
            .iter()
            .map(|p| {
                json!({
                    "phase": p.label,
                    "messages": p.messages,
                    "bytes": p.bytes,
                    "seconds": p.seconds,
                    "messages_per_sec": p.messages_per_sec(),
                    "mb_per_sec": p.mb_per_sec(),
                    "ratio_to_ceiling": self.ratio(p),
                    "startup_seconds": p.startup_seconds,
                })
            })
            .collect();
        json!({
            "mode": self.mode,
            "config": {
                "messages": self.messages,
                "size": self.size,
                "partitions": self.partitions,
                "compression": self.compression,
                "acks": self.acks,
                "bootstrap": self.bootstrap,
                "broker": self.broker,
                "topic": self.topic,
            },
            "ceiling": self.ceiling.as_ref().map(|c| json!({
                "bytes": c.bytes,
                "seconds": c.seconds,
                "rounds": c.rounds,
                "mb_per_sec": c.mb_per_sec(),
            })),
            "page_cache_write": self.page_cache.as_ref().map(|c| json!({
                "bytes": c.bytes,
                "seconds": c.seconds,
                "mb_per_sec": c.mb_per_sec(),
            })),
            "phases": phases,
            "comparison": self.comparison().map(|c| json!({
                "variant_config": self.compared.iter().flatten()
                    .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                    .collect::<serde_json::Map<String, Value>>(),
                "baseline": c.baseline.to_json(),
                "variant": c.variant.to_json(),
                "variant_over_baseline": c.ratio(),
            })),
        })
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(&self.to_json())?;
        text.push('\n');
        std::fs::write(path, text)?;
        Ok(())
    }
}

/// A progress bar on stderr (drawn only when stderr is a terminal).
pub fn progress_bar(len: u64, label: &str, bytes: bool) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = if bytes {
        "{prefix:>14} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}"
    } else {
        "{prefix:>14} [{bar:40}] {pos}/{len} {per_sec} {elapsed}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_string());
    bar
}
