//! The fuzzing checks CI runs (`cargo test --release -p starling-fuzz`):
//!
//! * every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` is replayed
//!   through its target under the allocation oracle, and
//! * a short deterministic mutation run (fixed seed and input count) over each corpus.
//!
//! Both run the `starling-fuzz` binary as a child process: an allocation the oracle refuses
//! aborts the process, and a hang never returns, so only a parent can name the input, report
//! it and go on with the next file. A failing mutation run leaves its input in
//! `target/tmp/` (the path is in the failure message); move it to `fuzz/regressions/<target>/`
//! under a name that says what it does.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_starling-fuzz");

/// Longer than any input takes: the child is killed and the input reported as a hang.
const HANG: Duration = Duration::from_secs(10);

/// Inputs per target in the mutation run: about 20 seconds in all on the 2-core machine.
const MUTATION_RUNS: [(&str, u64); 4] = [
    ("request_decoder", 2_000_000),
    ("record_batch", 1_500_000),
    ("coordinator", 100_000),
    ("authentication", 30_000),
];

/// The seed of the mutation run: change it to explore other inputs, keep it fixed in CI.
const SEED: u64 = 0x5eed_2026;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The regular files of a directory, sorted (none if it does not exist); hidden files and
/// READMEs are skipped.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    files.sort();
    files
}

/// What a child process printed and how it ended.
struct Run {
    stdout: Vec<String>,
    stderr: String,
    /// `None` when it was killed as a hang.
    success: Option<bool>,
}

/// Runs the binary, killing it when one input (a `run <path>` line without its `ok`, or the
/// whole mutation run) takes longer than `limit`.
fn run_child(args: &[String], limit: Duration) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start starling-fuzz");
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut out = Vec::new();
    let mut since = Instant::now();
    let mut killed = false;
    loop {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                since = Instant::now();
                out.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if since.elapsed() > limit {
                    killed = true;
                    let _ = child.kill();
                    break;
                }
            }
        }
    }
    let status = child.wait().expect("wait for starling-fuzz");
    Run {
        stdout: out,
        stderr: errors.join().unwrap_or_default(),
        success: (!killed).then(|| status.success()),
    }
}

fn tail(text: &str, chars: usize) -> String {
    let skip = text.chars().count().saturating_sub(chars);
    text.chars().skip(skip).collect()
}

/// Replays every file, restarting the child after a file that killed it; returns how many
/// passed and a description of each failure.
fn replay(target: &str, files: &[PathBuf]) -> (usize, Vec<String>) {
    let mut passed = 0;
    let mut failures = Vec::new();
    let mut next = 0;
    while next < files.len() {
        let mut args = vec!["replay".to_string(), target.to_string()];
        args.extend(files[next..].iter().map(|p| p.display().to_string()));
        let run = run_child(&args, HANG);
        let mut last_started = None;
        for line in &run.stdout {
            if let Some(path) = line.strip_prefix("run ") {
                last_started = Some(path.to_string());
            } else if line.starts_with("ok ") {
                passed += 1;
                last_started = None;
            } else if let Some(path) = line.strip_prefix("panic ") {
                failures.push(format!("{path}: panicked\n{}", tail(&run.stderr, 1500)));
                last_started = None;
            }
        }
        match (run.success, last_started) {
            (Some(_), None) => break,
            (_, Some(path)) => {
                let how = match run.success {
                    None => format!("hung (killed after {} s)", HANG.as_secs()),
                    Some(_) => "killed the process (abort)".to_string(),
                };
                failures.push(format!("{path}: {how}\n{}", tail(&run.stderr, 1500)));
                let position = files
                    .iter()
                    .position(|p| p.display().to_string() == path)
                    .expect("the child names a file it was given");
                next = position + 1;
            }
            (None, None) => {
                failures.push(format!("the replay hung\n{}", tail(&run.stderr, 1500)));
                break;
            }
        }
    }
    (passed, failures)
}

fn replay_target(target: &str) {
    let corpus = files_in(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "no corpus for {target}: run `starling-fuzz seeds fuzz/corpus`"
    );
    let regressions = files_in(&fuzz_dir().join("regressions").join(target));
    let files: Vec<PathBuf> = corpus.iter().chain(&regressions).cloned().collect();
    let (passed, failures) = replay(target, &files);
    assert!(
        failures.is_empty(),
        "{target}: {} of {} inputs failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
    assert_eq!(passed, files.len());
}

#[test]
fn request_decoder_corpus_and_regressions_replay_cleanly() {
    replay_target("request_decoder");
}

#[test]
fn record_batch_corpus_and_regressions_replay_cleanly() {
    replay_target("record_batch");
}

#[test]
fn coordinator_corpus_and_regressions_replay_cleanly() {
    replay_target("coordinator");
}

#[test]
fn authentication_corpus_and_regressions_replay_cleanly() {
    replay_target("authentication");
}

/// The mutation run for one target; a failure saves its input and names the file.
fn mutation_run(target: &str) {
    let iterations = MUTATION_RUNS
        .iter()
        .find(|(t, _)| *t == target)
        .map(|(_, n)| *n)
        .unwrap();
    let corpus = fuzz_dir().join("corpus").join(target);
    let args = vec![
        "mutate".to_string(),
        target.to_string(),
        iterations.to_string(),
        SEED.to_string(),
        corpus.display().to_string(),
    ];
    let run = run_child(&args, Duration::from_secs(300));
    if run.success == Some(true) {
        println!("{}", run.stdout.join("\n"));
        return;
    }
    let saved = run
        .stderr
        .lines()
        .find_map(|l| {
            l.split_once("starling-fuzz input-hex: ")
                .map(|(_, hex)| hex)
        })
        .and_then(decode_hex)
        .map(|input| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let path = dir.join(format!("{target}-{:016x}.bin", fnv(&input)));
            std::fs::write(&path, &input).expect("save the failing input");
            path.display().to_string()
        })
        .unwrap_or_else(|| "(no input printed)".to_string());
    panic!(
        "{target}: the mutation run failed (seed {SEED:#x}); input saved as {saved}\n{}",
        tail(&run.stderr, 3000)
    );
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.trim();
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok())
        .collect()
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn request_decoder_survives_a_short_mutation_run() {
    mutation_run("request_decoder");
}

#[test]
fn record_batch_survives_a_short_mutation_run() {
    mutation_run("record_batch");
}

#[test]
fn coordinator_survives_a_short_mutation_run() {
    mutation_run("coordinator");
}

#[test]
fn authentication_survives_a_short_mutation_run() {
    mutation_run("authentication");
}
