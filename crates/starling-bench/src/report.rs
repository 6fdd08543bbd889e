//! Figures, the final table (stdout), the JSON file and the progress bars (stderr).
//!
//! MB means 10^6 bytes. Throughput counts message payload bytes only (no keys, headers or
//! protocol framing), so it is directly comparable with the loopback ceiling.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::CommonArgs;

/// One measured client phase.
#[derive(Debug, Clone)]
pub struct Phase {
    pub label: &'static str,
    pub messages: u64,
    pub bytes: u64,
    pub seconds: f64,
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
    phases: Vec<Phase>,
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
            phases: Vec::new(),
        }
    }

    pub fn push(&mut self, phase: Phase) {
        self.phases.push(phase);
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
