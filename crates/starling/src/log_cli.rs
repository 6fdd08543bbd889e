//! `starling log ...`: offline tools for the partition logs in a data directory. The broker must
//! be stopped while they run.
//!
//! * `repair --data-dir DIR [--topic T] [--partition P] [--dry-run]`: for every partition
//!   directory (`TOPIC-PARTITION`) under DIR, or the selected ones, whose log is damaged,
//!   truncates the log at its first damage (deleting the partition's later segments) and
//!   reports exactly what that removed: files, byte ranges, the intact batches in them (count,
//!   records, offsets) and the offsets the log now ends at. `--dry-run` reports the same without
//!   changing anything. This is what a broker that refuses to start on a damaged log asks for.
//!
//! The work is `starling_log::repair_partition`; this file finds the directories and prints.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use starling_log::{repair_partition, Dropped, IntactBatches, Repair, RepairReport};

#[derive(Debug, clap::Args)]
pub struct LogArgs {
    #[command(subcommand)]
    command: LogCommand,
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Truncate damaged partition logs at their first damage and report what was removed
    /// (the broker must be stopped).
    Repair(RepairArgs),
}

#[derive(Debug, clap::Args)]
struct RepairArgs {
    /// The broker's data directory (`log.dirs`), holding one TOPIC-PARTITION directory each.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Only this topic's partitions.
    #[arg(long)]
    topic: Option<String>,
    /// Only this partition (of every topic, or of --topic).
    #[arg(long)]
    partition: Option<i32>,
    /// Report what would be removed without changing anything.
    #[arg(long)]
    dry_run: bool,
}

/// Runs one `starling log` command, printing its report on stdout. A failure is printed as one
/// `error: ...` line on stderr and ends the process with exit status 1.
pub fn run(args: LogArgs) -> anyhow::Result<()> {
    let result = match args.command {
        LogCommand::Repair(repair) => run_repair(&repair),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

/// A partition directory under the data directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PartitionDir {
    topic: String,
    partition: i32,
    path: PathBuf,
}

/// The `TOPIC-PARTITION` directories under `data_dir`, sorted, leaving out those a topic
/// deletion renamed (`...-delete`) and anything else.
fn partition_dirs(data_dir: &Path) -> anyhow::Result<Vec<PartitionDir>> {
    let entries = std::fs::read_dir(data_dir)
        .with_context(|| format!("reading the data directory {}", data_dir.display()))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", data_dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((topic, partition)) = name.rsplit_once('-') else {
            continue;
        };
        let Ok(partition) = partition.parse::<i32>() else {
            continue;
        };
        if topic.is_empty() || partition < 0 || !entry.path().is_dir() {
            continue;
        }
        dirs.push(PartitionDir {
            topic: topic.to_string(),
            partition,
            path: entry.path(),
        });
    }
    dirs.sort();
    Ok(dirs)
}

fn run_repair(args: &RepairArgs) -> anyhow::Result<()> {
    // A repair changes files a running broker holds: it takes the broker's lock (a dry run only
    // reads, and may look at a running broker's logs).
    let _lock = if args.dry_run {
        None
    } else {
        Some(starling_broker::server::lock_data_dir(&args.data_dir)?)
    };
    let selected: Vec<PartitionDir> = partition_dirs(&args.data_dir)?
        .into_iter()
        .filter(|d| args.topic.as_ref().is_none_or(|t| *t == d.topic))
        .filter(|d| args.partition.is_none_or(|p| p == d.partition))
        .collect();
    if selected.is_empty() {
        let mut what = String::from("no partition directory");
        if let Some(topic) = &args.topic {
            let _ = write!(what, " of topic {topic}");
        }
        if let Some(partition) = args.partition {
            let _ = write!(what, " for partition {partition}");
        }
        bail!("{what} under {}", args.data_dir.display());
    }
    let mut out = String::new();
    let mut damaged = 0;
    for dir in &selected {
        let report = repair_partition(&dir.path, args.dry_run)
            .with_context(|| format!("repairing {}-{}", dir.topic, dir.partition))?;
        if report.repair.is_some() {
            damaged += 1;
        }
        describe(&mut out, dir, &report);
    }
    let _ = writeln!(
        out,
        "{damaged} of {} partition(s) damaged{}",
        selected.len(),
        match (damaged, args.dry_run) {
            (0, _) => "; nothing to do",
            (_, true) => "; dry run: nothing was changed",
            (_, false) => "; repaired",
        }
    );
    print!("{out}");
    Ok(())
}

fn describe(out: &mut String, dir: &PartitionDir, report: &RepairReport) {
    let name = format!("{}-{}", dir.topic, dir.partition);
    let Some(repair) = &report.repair else {
        let _ = writeln!(out, "{name}: intact");
        return;
    };
    let (truncate, delete, lower) = if report.dry_run {
        ("would truncate", "would delete", "would move")
    } else {
        ("truncated", "deleted", "moved")
    };
    let _ = writeln!(
        out,
        "{name}: damaged at byte position {} of {}: {}",
        repair.position,
        repair.file.display(),
        repair.reason
    );
    for dropped in &repair.dropped {
        let verb = if dropped.whole_file { delete } else { truncate };
        let _ = writeln!(out, "  {verb} {}", dropped_text(dropped));
    }
    for file in &repair.deleted_files {
        if repair.dropped.iter().all(|d| d.file != *file) {
            let _ = writeln!(out, "  {delete} {}", file.display());
        }
    }
    let _ = writeln!(out, "  {}", lost_text(repair));
    let (before, after) = repair.recovery_point;
    if before != after {
        let _ = writeln!(out, "  {lower} the recovery point from {before} to {after}");
    }
}

fn dropped_text(d: &Dropped) -> String {
    format!(
        "{}: bytes {}..{} ({} bytes) removed, holding {}",
        d.file.display(),
        d.bytes.start,
        d.bytes.end,
        d.bytes.end - d.bytes.start,
        intact_text(&d.intact)
    )
}

fn intact_text(intact: &IntactBatches) -> String {
    match intact.offsets {
        None => "no intact batch".to_string(),
        Some((first, last)) => format!(
            "{} intact batch(es) with {} record(s) at offsets {first}..={last}",
            intact.batches, intact.records
        ),
    }
}

fn lost_text(repair: &Repair) -> String {
    let end = repair.log_end_offset;
    match repair.highest_lost_offset {
        Some(last) => format!(
            "the log ends at offset {end}: offsets {end}..={last} are dropped ({} offset(s))",
            last - end + 1
        ),
        None => format!(
            "the log ends at offset {end}; no offset at or past it is known to have been written"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_dirs_are_topic_dash_number_and_skip_deleted_ones() {
        let tmp = tempfile::tempdir().unwrap();
        for name in [
            "orders-0",
            "orders-10",
            "my-topic-2",
            "gone-1-delete",
            "x-y",
            "-3",
        ] {
            std::fs::create_dir(tmp.path().join(name)).unwrap();
        }
        std::fs::write(tmp.path().join("meta-1"), b"a file").unwrap();
        let found: Vec<(String, i32)> = partition_dirs(tmp.path())
            .unwrap()
            .into_iter()
            .map(|d| (d.topic, d.partition))
            .collect();
        assert_eq!(
            found,
            vec![
                ("my-topic".to_string(), 2),
                ("orders".to_string(), 0),
                ("orders".to_string(), 10),
            ]
        );
    }
}
