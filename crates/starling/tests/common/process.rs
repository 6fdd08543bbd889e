//! Child processes of the binary under test: [`STARLING`], [`die_with_parent`] (no child
//! outlives its test), [`wait_with_timeout`], and [`run_to_exit`] / [`run_with_stdin`] for `starling` subcommands that exit by themselves, with
//! [`contains_number`] to look for a number in what they print.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const STARLING: &str = env!("CARGO_BIN_EXE_starling");

/// Makes the child `cmd` spawns receive SIGKILL when the spawning thread ends
/// (`PR_SET_PDEATHSIG`), so no broker or client process outlives its test.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

pub fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// Runs `starling ARGS` to completion (it is expected to exit by itself).
/// Returns the exit status, stdout and stderr. Panics if it is still running after `limit`.
pub fn run_to_exit(args: &[&str], limit: Duration) -> (ExitStatus, String, String) {
    run_with_stdin(args, None, limit)
}

/// Runs `starling ARGS` to completion, within a minute, and returns its stdout; panics with
/// both outputs unless it succeeds.
pub fn run_ok(args: &[&str]) -> String {
    let (status, stdout, stderr) = run_to_exit(args, Duration::from_secs(60));
    assert!(
        status.success(),
        "`starling {}` failed with {status}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        args.join(" ")
    );
    stdout
}

/// [`run_to_exit`] with `input` written to standard input (then closed), or with standard
/// input empty when `None`.
pub fn run_with_stdin(
    args: &[&str],
    input: Option<&str>,
    limit: Duration,
) -> (ExitStatus, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut cmd = Command::new(STARLING);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap());
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn().expect("spawn starling");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        // A command that exits without reading its input is not this helper's concern.
        let _ = stdin.write_all(input.as_bytes());
    }
    let status = wait_with_timeout(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    match status {
        Some(s) => (s, out, err),
        None => panic!(
            "`starling {}` still running after {limit:?}\n--- stdout ---\n{out}\n--- stderr ---\n{err}",
            args.join(" ")
        ),
    }
}

/// True if `haystack` contains `number` as a whole decimal number (not part of a longer one).
pub fn contains_number(haystack: &str, number: u64) -> bool {
    let needle = number.to_string();
    let bytes = haystack.as_bytes();
    haystack.match_indices(&needle).any(|(i, _)| {
        let before = i
            .checked_sub(1)
            .map(|j| bytes[j].is_ascii_digit())
            .unwrap_or(false);
        let after = bytes
            .get(i + needle.len())
            .map(|b| b.is_ascii_digit())
            .unwrap_or(false);
        !before && !after
    })
}
