//! The broker under measurement: either one given with `--bootstrap`, or one the bench starts
//! itself from its own executable (`starling serve --listen 127.0.0.1:0 --admin-listen
//! 127.0.0.1:0 ...`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long a spawned broker gets to print its `listening on` line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a spawned broker gets to exit after SIGTERM before it is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

pub enum Broker {
    External(String),
    Spawned(Spawned),
}

pub struct Spawned {
    child: Option<Child>,
    addr: String,
    /// The admin HTTP endpoint (`/metrics`, `/groups`, …), from the second stdout line.
    admin_addr: Option<String>,
    data_dir: PathBuf,
    log_path: PathBuf,
    // Removed (with the data, unless --data-dir was given) when the broker is dropped.
    _scratch: tempfile::TempDir,
}

impl Broker {
    pub fn external(addr: String) -> Broker {
        Broker::External(addr)
    }

    /// Starts `<current exe> serve --listen 127.0.0.1:0 --data-dir DIR` and waits for its
    /// `listening on HOST:PORT` line.
    pub fn spawn(data_dir: Option<&Path>, overrides: &[String]) -> anyhow::Result<Broker> {
        let exe = std::env::current_exe().context("locating the starling executable")?;
        let scratch = tempfile::Builder::new()
            .prefix("starling-bench-")
            .tempdir()
            .context("creating a temporary directory for the broker")?;
        let data_dir = match data_dir {
            Some(d) => d.to_path_buf(),
            None => scratch.path().join("data"),
        };
        let log_path = scratch.path().join("broker.log");
        let log = File::create(&log_path).context("creating the broker log file")?;

        let mut cmd = Command::new(&exe);
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--admin-listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir);
        for o in overrides {
            cmd.arg("--override").arg(o);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;

        // A thread reads stdout for the whole life of the broker, so that it never writes
        // into a closed pipe.
        let stdout = child.stdout.take().context("broker stdout")?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::Builder::new()
            .name("broker-stdout".into())
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let _ = tx.send(line.trim_end().to_string());
                        }
                    }
                }
            })
            .context("spawning the broker stdout reader")?;

        let mut spawned = Spawned {
            child: Some(child),
            addr: String::new(),
            admin_addr: None,
            data_dir,
            log_path,
            _scratch: scratch,
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        spawned.addr = addr.trim().to_string();
                    } else if let Some(addr) = line.strip_prefix("admin listening on ") {
                        spawned.admin_addr = Some(addr.trim().to_string());
                    }
                    // The admin line follows the Kafka one at once.
                    if !spawned.addr.is_empty() && spawned.admin_addr.is_some() {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let tail = spawned.log_tail(40);
                    bail!(
                        "the broker printed no `listening on` line within {:?}; its log ends with:\n{}",
                        STARTUP_TIMEOUT,
                        tail
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = spawned.child.as_mut().and_then(|c| c.wait().ok());
                    let tail = spawned.log_tail(40);
                    bail!(
                        "the broker exited ({}) before listening; its log ends with:\n{}",
                        status
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "unknown status".into()),
                        tail
                    );
                }
            }
        }
        tracing::debug!(addr = %spawned.addr, admin = ?spawned.admin_addr, "bench broker is listening");
        Ok(Broker::Spawned(spawned))
    }

    pub fn bootstrap(&self) -> &str {
        match self {
            Broker::External(a) => a,
            Broker::Spawned(s) => &s.addr,
        }
    }

    /// The process id of a broker the bench started.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Broker::External(_) => None,
            Broker::Spawned(s) => s.child.as_ref().map(|c| c.id()),
        }
    }

    pub fn description(&self) -> String {
        match self {
            Broker::External(_) => "external (--bootstrap)".to_string(),
            Broker::Spawned(s) => format!("started by the bench, data in {}", s.data_dir.display()),
        }
    }

    /// A directory on the filesystem the broker writes to (for a broker given with
    /// `--bootstrap`, where that is cannot be known: the system temporary directory).
    pub fn scratch_dir(&self) -> PathBuf {
        match self {
            Broker::External(_) => std::env::temp_dir(),
            Broker::Spawned(s) => s._scratch.path().to_path_buf(),
        }
    }

    /// The last lines of a spawned broker's stderr.
    pub fn log_tail(&self, lines: usize) -> Option<String> {
        match self {
            Broker::External(_) => None,
            Broker::Spawned(s) => Some(s.log_tail(lines)),
        }
    }

    /// Stops a spawned broker: SIGTERM, then SIGKILL if it has not exited in time.
    /// Stops the broker after a measurement: the measurement's error wins, and comes with the
    /// last lines of the broker's log when the bench started the broker.
    pub fn finish(self, outcome: anyhow::Result<()>) -> anyhow::Result<()> {
        let log_tail = self.log_tail(40);
        let stop = self.stop();
        match outcome {
            Ok(()) => stop,
            Err(e) => {
                if let Some(tail) = log_tail {
                    eprintln!("--- last lines of the bench's broker log ---\n{tail}");
                }
                Err(e)
            }
        }
    }

    pub fn stop(self) -> anyhow::Result<()> {
        match self {
            Broker::External(_) => Ok(()),
            Broker::Spawned(mut s) => s.terminate(),
        }
    }
}

impl Spawned {
    fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn terminate(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: plain kill(2) on the pid of a child we have not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "the bench's broker did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM; killing it"
        );
        child.kill().ok();
        child.wait().ok();
        Ok(())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}
