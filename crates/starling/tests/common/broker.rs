//! [`Broker`]: the real `starling` binary serving on a free port with its own temporary data
//! directory (and a free admin HTTP port); it can be stopped with SIGTERM or SIGKILL and
//! started again on the same directory. [`override_args`] turns `key=value` pairs into
//! `--override` arguments.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::process::{die_with_parent, wait_with_timeout, STARLING};

/// How long a broker may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a broker may take to exit after SIGTERM or SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a broker did not come up.
#[derive(Debug)]
pub struct StartFailure {
    /// The exit status, if the process exited (None: it hung and was killed).
    pub status: Option<ExitStatus>,
    /// Everything the process wrote to stderr.
    pub stderr: String,
    /// What went wrong, in words.
    pub reason: String,
}

/// A `starling serve` child process with its own temporary data directory.
///
/// Brokers must be started from the test's own thread (not from a short-lived helper thread):
/// the child is tied to the spawning thread through `PR_SET_PDEATHSIG`.
pub struct Broker {
    root: tempfile::TempDir,
    data_dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    /// Every listener's name and bound address (`listener NAME on ADDR` lines).
    listeners: Vec<(String, SocketAddr)>,
    runs: usize,
    /// Set by [`Broker::pin_port`]: later runs listen on this port again.
    pinned_port: Option<u16>,
}

impl Broker {
    /// Starts a broker with extra command-line arguments (after `serve --listen --data-dir
    /// --admin-listen`; the admin address is left to `args` when they set it).
    pub fn start(args: &[&str]) -> Broker {
        match Broker::try_start(args) {
            Ok(b) => b,
            Err(f) => panic!(
                "broker did not start: {}\n--- stderr ---\n{}",
                f.reason, f.stderr
            ),
        }
    }

    /// Starts a broker with `--override key=value` for each pair.
    pub fn with_overrides(overrides: &[(&str, &str)]) -> Broker {
        Broker::start(
            &override_args(overrides)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
    }

    /// Like [`Broker::start`] but reports a failure to start instead of panicking.
    pub fn try_start(args: &[&str]) -> Result<Broker, StartFailure> {
        let root = tempfile::Builder::new()
            .prefix("starling-e2e-")
            .tempdir()
            .expect("create temp dir");
        let data_dir = root.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let mut broker = Broker {
            root,
            data_dir,
            args: args.iter().map(|s| s.to_string()).collect(),
            child: None,
            addr: None,
            admin_addr: None,
            listeners: Vec::new(),
            runs: 0,
            pinned_port: None,
        };
        broker.spawn()?;
        Ok(broker)
    }

    fn stderr_path(&self, run: usize) -> PathBuf {
        self.root.path().join(format!("stderr-{run}.log"))
    }

    fn spawn(&mut self) -> Result<(), StartFailure> {
        assert!(self.child.is_none(), "broker is already running");
        self.runs += 1;
        let log_path = self.stderr_path(self.runs);
        let log = File::create(&log_path).expect("create stderr log");
        let mut cmd = Command::new(STARLING);
        let port = self.pinned_port.unwrap_or(0);
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&self.data_dir);
        // Never the default admin port: tests run in parallel.
        let (sets_admin, expect_admin) = admin_args(&self.args);
        if !sets_admin {
            cmd.arg("--admin-listen").arg("127.0.0.1:0");
        }
        cmd.args(&self.args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("spawn starling");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        let _ = tx.send(l);
                    }
                    Err(_) => break,
                }
            }
        });

        let deadline = Instant::now() + START_TIMEOUT;
        let failure = |child: &mut Child, reason: String, this: &Broker| {
            let status = wait_with_timeout(child, Duration::from_secs(10));
            if status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            StartFailure {
                status,
                stderr: std::fs::read_to_string(this.stderr_path(this.runs)).unwrap_or_default(),
                reason,
            }
        };
        // `listening on` with the first listener's address, a `listener NAME on ADDR` line per
        // listener, then (unless disabled) the admin address; all in one write.
        let mut kafka_addr: Option<SocketAddr> = None;
        self.listeners.clear();
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) if kafka_addr.is_some() && line.starts_with("listener ") => {
                    match listener_line(&line) {
                        Some(listener) => self.listeners.push(listener),
                        None => {
                            let _ = child.kill();
                            let reason = format!("a malformed listener line: {line:?}");
                            return Err(failure(&mut child, reason, self));
                        }
                    }
                }
                Ok(line) => {
                    let (prefix, which) = match kafka_addr {
                        None => ("listening on ", "first"),
                        Some(_) => ("admin listening on ", "last"),
                    };
                    let addr = line
                        .strip_prefix(prefix)
                        .and_then(|a| a.trim().parse::<SocketAddr>().ok())
                        .filter(|a| a.port() != 0);
                    let Some(addr) = addr else {
                        let _ = child.kill();
                        let reason = format!(
                            "{which} stdout line should be `{prefix}127.0.0.1:PORT`, got {line:?}"
                        );
                        return Err(failure(&mut child, reason, self));
                    };
                    if kafka_addr.is_none() && expect_admin {
                        kafka_addr = Some(addr);
                        continue;
                    }
                    match kafka_addr {
                        Some(kafka) => {
                            self.addr = Some(kafka);
                            self.admin_addr = Some(addr);
                        }
                        None => {
                            self.addr = Some(addr);
                            self.admin_addr = None;
                            // No admin line ends the list: take the listener lines written
                            // with this one.
                            while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                                match listener_line(&line) {
                                    Some(listener) => self.listeners.push(listener),
                                    None => break,
                                }
                            }
                        }
                    }
                    self.child = Some(child);
                    return Ok(());
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let reason = "stdout closed before a `listening on` line".to_string();
                    return Err(failure(&mut child, reason, self));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        let reason = format!("exited with {status} before listening");
                        return Err(failure(&mut child, reason, self));
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let reason = format!("no `listening on` line within {START_TIMEOUT:?}");
                        return Err(failure(&mut child, reason, self));
                    }
                }
            }
        }
    }

    /// Makes every later start listen on the port the broker has now, so clients created
    /// before a kill or restart find it again.
    pub fn pin_port(&mut self) {
        self.pinned_port = Some(self.addr().port());
    }

    /// `127.0.0.1:PORT` of the running broker.
    pub fn bootstrap(&self) -> String {
        self.addr().to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("broker has not started")
    }

    /// Where the listener `name` (upper case, as in `listeners`) of the running broker is bound.
    pub fn listener_addr(&self, name: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no listener {name}: {:?}", self.listeners))
    }

    /// `127.0.0.1:PORT` of the running broker's admin HTTP endpoint.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
            .expect("broker has not started, or its admin endpoint is disabled")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `DATA_DIR/TOPIC-PARTITION`.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is not running").id()
    }

    /// True while the process has not exited.
    pub fn is_alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker is not running");
        let _ = child.kill();
        let _ = child.wait();
        self.addr = None;
        self.admin_addr = None;
    }

    /// SIGTERM and wait for a clean exit (status 0).
    pub fn terminate(&mut self) {
        let mut child = self.child.take().expect("broker is not running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let status = wait_with_timeout(&mut child, STOP_TIMEOUT);
        self.addr = None;
        self.admin_addr = None;
        match status {
            Some(s) if s.success() => {}
            Some(s) => panic!(
                "broker exited with {s} after SIGTERM (expected 0)\n--- stderr ---\n{}",
                self.stderr_tail()
            ),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within {STOP_TIMEOUT:?} of SIGTERM\n--- stderr ---\n{}",
                    self.stderr_tail()
                );
            }
        }
    }

    /// Starts the broker again on the same data directory (it must be stopped).
    pub fn start_again(&mut self) {
        if let Err(f) = self.try_start_again() {
            panic!(
                "broker did not restart: {}\n--- stderr ---\n{}",
                f.reason, f.stderr
            );
        }
    }

    pub fn try_start_again(&mut self) -> Result<(), StartFailure> {
        self.spawn()
    }

    /// SIGTERM (clean stop) and start again on the same data directory.
    pub fn restart(&mut self) {
        self.terminate();
        self.start_again();
    }

    /// Stops the broker (SIGTERM) and starts it again on the same data directory with
    /// `--override key=value` for each pair in place of the arguments it had.
    pub fn restart_with_overrides(&mut self, overrides: &[(&str, &str)]) {
        self.terminate();
        self.args = override_args(overrides);
        self.start_again();
    }

    /// stderr of the current (or last) run.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path(self.runs)).unwrap_or_default()
    }

    fn stderr_tail(&self) -> String {
        let s = self.stderr();
        let start = s.len().saturating_sub(6000);
        let start = (start..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[start..].to_string()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- broker stderr (run {}, tail) ---\n{}\n--- end of broker stderr ---",
                self.runs,
                self.stderr_tail()
            );
        }
    }
}

/// Whether `args` set the admin endpoint's address themselves (`--admin-listen A` or
/// `--override admin.listen=A`), and whether it stays enabled (A is not `none`).
fn admin_args(args: &[String]) -> (bool, bool) {
    let mut sets = false;
    let mut enabled = true;
    for pair in args.windows(2) {
        let value = match pair[0].as_str() {
            "--admin-listen" => pair[1].trim(),
            "--override" => match pair[1].split_once('=') {
                Some((key, value)) if key.trim() == "admin.listen" => value.trim(),
                _ => continue,
            },
            _ => continue,
        };
        sets = true;
        enabled = !value.eq_ignore_ascii_case("none");
    }
    (sets, enabled)
}

/// A `listener NAME on ADDR` line as `(NAME, ADDR)`.
fn listener_line(line: &str) -> Option<(String, SocketAddr)> {
    let (name, addr) = line.strip_prefix("listener ")?.split_once(" on ")?;
    Some((name.to_string(), addr.trim().parse().ok()?))
}

/// `--override key=value` arguments for each pair.
pub fn override_args(overrides: &[(&str, &str)]) -> Vec<String> {
    overrides
        .iter()
        .flat_map(|(k, v)| ["--override".to_string(), format!("{k}={v}")])
        .collect()
}
