//! The broker under measurement: either one given with `--bootstrap`, or one the bench starts
//! itself from its own executable (`starling serve --listen 127.0.0.1:0 --admin-listen
//! 127.0.0.1:0 ...`).
//!
//! Every broker the bench starts is registered, with its temporary directory, until it has been
//! stopped and reaped, so that [`stop_all_after_signal`] can stop it and delete its data when
//! the bench is interrupted (SIGINT, SIGTERM) wherever it is.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long a spawned broker gets to print its `listening on` line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a spawned broker gets to exit after SIGTERM before it is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Brokers the bench has started and not yet reaped, with their temporary directories.
/// Held while a broker is spawned and while one is reaped, so that the signal handler never
/// signals a pid that has been reaped (and may be reused), and never misses a broker.
static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());

struct Live {
    pid: i32,
    scratch: PathBuf,
}

fn live() -> MutexGuard<'static, Vec<Live>> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// After SIGINT or SIGTERM: stops every broker the bench started (SIGTERM, then SIGKILL past
/// [`SHUTDOWN_TIMEOUT`]), deletes their temporary directories (their data unless `--data-dir`
/// was given), and exits with 128 + the signal's number. No broker can start after this began.
pub fn stop_all_after_signal(signal: i32, name: &str) -> ! {
    let brokers = live();
    for b in brokers.iter() {
        // SAFETY: kill(2) on a child not yet reaped: the registry lock keeps it unreaped.
        unsafe { libc::kill(b.pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
    for b in brokers.iter() {
        let mut status = 0;
        loop {
            // SAFETY: waitpid(2) on our own child.
            let reaped = unsafe { libc::waitpid(b.pid, &mut status, libc::WNOHANG) };
            if reaped != 0 {
                break;
            }
            if Instant::now() >= deadline {
                // SAFETY: as above; the blocking wait reaps it once killed.
                unsafe {
                    libc::kill(b.pid, libc::SIGKILL);
                    libc::waitpid(b.pid, &mut status, 0);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(e) = std::fs::remove_dir_all(&b.scratch) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("could not remove {}: {e}", b.scratch.display());
            }
        }
    }
    if brokers.is_empty() {
        eprintln!("bench interrupted by {name}");
    } else {
        eprintln!(
            "bench interrupted by {name}: stopped the broker it started and removed its temporary data"
        );
    }
    // Exiting with the lock held: nothing starts another broker now.
    std::process::exit(128 + signal)
}

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

    /// [`Broker::spawn`] from async code: on a blocking thread, as it waits for the broker.
    pub async fn start(
        data_dir: Option<PathBuf>,
        overrides: Vec<String>,
    ) -> anyhow::Result<Broker> {
        tokio::task::spawn_blocking(move || Broker::spawn(data_dir.as_deref(), &overrides))
            .await
            .context("joining the broker start-up task")?
    }

    /// Starts `<current exe> serve --listen 127.0.0.1:0 --data-dir DIR` and waits for its
    /// `listening on HOST:PORT` line.
    pub fn spawn(data_dir: Option<&Path>, overrides: &[String]) -> anyhow::Result<Broker> {
        let exe = std::env::current_exe().context("locating the starling executable")?;
        // From creating the directory to registering the child, a signal waits.
        let mut registry = live();
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
        registry.push(Live {
            pid: i32::try_from(child.id()).context("broker pid")?,
            scratch: scratch.path().to_path_buf(),
        });
        drop(registry);

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

    /// The admin HTTP endpoint (`/metrics`) of a broker the bench started.
    pub fn admin(&self) -> Option<&str> {
        match self {
            Broker::External(_) => None,
            Broker::Spawned(s) => s.admin_addr.as_deref(),
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
        if reaped(&mut child)? {
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
            if reaped(&mut child)? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "the bench's broker did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM; killing it"
        );
        kill_and_reap(&mut child);
        Ok(())
    }
}

/// Whether `child` has exited (then reaped and no longer registered).
fn reaped(child: &mut Child) -> std::io::Result<bool> {
    let mut registry = live();
    let exited = child.try_wait()?.is_some();
    if exited {
        unregister(&mut registry, child);
    }
    Ok(exited)
}

fn kill_and_reap(child: &mut Child) {
    let mut registry = live();
    child.kill().ok();
    child.wait().ok();
    unregister(&mut registry, child);
}

fn unregister(registry: &mut Vec<Live>, child: &Child) {
    let pid = i32::try_from(child.id()).unwrap_or(-1);
    registry.retain(|b| b.pid != pid);
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }
}
