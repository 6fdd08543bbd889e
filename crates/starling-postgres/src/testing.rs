//! A throw-away PostgreSQL server for tests: Debian's `initdb` and `postgres` (the
//! `postgresql` package; `STARLING_PG_BIN` names another bin directory) run in a temporary
//! directory, listening on a free port on 127.0.0.1 with `trust` authentication, and are
//! stopped and removed when the [`TestPostgres`] is dropped.
//!
//! PostgreSQL refuses to run as root. When the tests do (CI runs as root), the directory is
//! handed to the `postgres` system user the package creates (or `nobody`) and the server runs
//! as that user. The server also dies with the thread that started it
//! (`PR_SET_PDEATHSIG`), so a test killed half-way leaves no server behind.
//!
//! Durability settings are PostgreSQL's defaults except `fsync=off`: a test may kill the
//! server (`kill -9`, [`TestPostgres::kill`]) and start it again on the same files
//! ([`TestPostgres::start_again`]), and what it committed is still there, since the operating
//! system keeps the written pages; only a crash of the machine itself would lose them.

use std::net::TcpListener;
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting server gets to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a test server could not start.
#[derive(Debug, thiserror::Error)]
pub enum TestServerError {
    #[error("no PostgreSQL server binaries (initdb, postgres): install Debian's `postgresql` package or set STARLING_PG_BIN")]
    NotInstalled,
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {output}")]
    Command {
        command: String,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error("the server did not accept connections within {0:?}; its log:\n{1}")]
    NotReady(Duration, String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestServerError {
    let what = what.into();
    move |source| TestServerError::Io { what, source }
}

/// A PostgreSQL server of its own for one test (or one test binary).
pub struct TestPostgres {
    bin: PathBuf,
    /// Holds the data directory, the socket directory and the log.
    dir: tempfile::TempDir,
    port: u16,
    /// The user the server runs as, when the tests run as root.
    run_as: Option<(u32, u32)>,
    server: Option<Child>,
}

/// Names a language's collation sorts otherwise than bytes do, for tests on a database of
/// [`TestPostgres::pool_with_language_collation`]: upper and lower case ("Orders" < "orders" <
/// "ordersA" in bytes) and punctuation against letters ('-' < '.' < 'Z' < '_' < 'a').
pub const NAMES_A_LANGUAGE_SORTS_OTHERWISE: [&str; 10] = [
    "orders",
    "Orders",
    "ordersA",
    "orders_eu",
    "orders-eu",
    "orders.eu",
    "Zed",
    "_x",
    "ab",
    "Ac",
];

/// The database superuser `initdb` creates, which the URLs name.
pub const USER: &str = "starling";

impl TestPostgres {
    /// Creates a database cluster in a new temporary directory and starts its server.
    pub fn start() -> Result<TestPostgres, TestServerError> {
        let bin = find_bin().ok_or(TestServerError::NotInstalled)?;
        let dir = tempfile::Builder::new()
            .prefix("starling-pg-")
            .tempdir()
            .map_err(io("creating the server's directory"))?;
        // SAFETY: geteuid(2) cannot fail.
        let run_as = if unsafe { libc::geteuid() } == 0 {
            let ids = system_user("postgres").unwrap_or((65534, 65534));
            chown(dir.path(), Some(ids.0), Some(ids.1))
                .map_err(io("handing the directory over"))?;
            Some(ids)
        } else {
            None
        };
        let mut server = TestPostgres {
            bin,
            dir,
            port: 0,
            run_as,
            server: None,
        };
        let mut initdb = server.command("initdb");
        initdb.arg("-D").arg(server.data_dir()).args([
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ]);
        run(&mut initdb, "initdb")?;
        server.start_again()?;
        Ok(server)
    }

    /// A server for a test, or `None` where PostgreSQL is not installed and the test should
    /// skip (it says so on stderr). Under CI (`CI` set) a missing PostgreSQL fails instead:
    /// `.ci/run` installs it.
    pub fn start_or_skip() -> Option<TestPostgres> {
        if !installed() {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is not installed (.ci/run installs the postgresql package)"
            );
            eprintln!("skipped: PostgreSQL is not installed");
            return None;
        }
        Some(TestPostgres::start().expect("a test PostgreSQL server"))
    }

    /// A new database `name` on this server and a migrated pool of `size` connections to it.
    pub async fn pool(&self, name: &str, size: usize) -> crate::PgPool {
        let url = self.create_database(name).expect("a test database");
        crate::connect(&url, size)
            .await
            .expect("connected to the test database and migrated")
    }

    /// `postgres://starling@127.0.0.1:PORT/postgres`: the server's default database.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of database `name` on this server (see [`TestPostgres::create_database`]).
    pub fn url_for(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` (each test of a shared server can have its own) and returns its
    /// URL.
    pub fn create_database(&self, name: &str) -> Result<String, TestServerError> {
        self.createdb(name, &[])
    }

    /// Like [`TestPostgres::pool`], but the database sorts text by ICU's root collation, as a
    /// database created with a language's locale does, rather than byte by byte (`C`, the
    /// server's default here): a query that relies on byte order without saying `COLLATE "C"`
    /// answers differently on it.
    pub async fn pool_with_language_collation(&self, name: &str, size: usize) -> crate::PgPool {
        let url = self
            .createdb(
                name,
                &[
                    "--template=template0",
                    "--locale-provider=icu",
                    "--icu-locale=und",
                ],
            )
            .expect("a test database with ICU collation");
        crate::connect(&url, size)
            .await
            .expect("connected to the test database and migrated")
    }

    fn createdb(&self, name: &str, options: &[&str]) -> Result<String, TestServerError> {
        let mut createdb = self.command("createdb");
        createdb
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args(options)
            .arg(name);
        run(&mut createdb, "createdb")?;
        Ok(self.url_for(name))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL to the postmaster and every process it started), as a crash
    /// of the machine's PostgreSQL would; the files stay for [`TestPostgres::start_again`].
    /// Returns once all of them are gone: a backend left alive would keep the shared memory
    /// and the next start would refuse to run.
    pub fn kill(&mut self) {
        let Some(mut child) = self.server.take() else {
            return;
        };
        let postmaster = child.id() as i32;
        let backends = children_of(postmaster);
        let _ = child.kill();
        let _ = child.wait();
        for &pid in &backends {
            // SAFETY: kill(2); these were the postmaster's children a moment ago.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while backends.iter().any(|&pid| running(pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the server on its existing files: on the same port when it was started before
    /// (a client's URL stays valid), on a free one the first time.
    pub fn start_again(&mut self) -> Result<(), TestServerError> {
        self.kill();
        if self.port == 0 {
            self.port = free_port()?;
        }
        // Appended to: a restarted server's log follows the one before.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .map_err(io("creating the server log"))?;
        if let Some((uid, gid)) = self.run_as {
            let _ = chown(self.dir.path().join("server.log"), Some(uid), Some(gid));
        }
        let mut postgres = self.command("postgres");
        postgres
            .arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("the server log"))?)
            .stderr(log);
        // SAFETY: prctl(2) is async-signal-safe; this runs in the child between fork and exec
        // (after the user change, which would clear the setting).
        unsafe {
            postgres.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.server = Some(postgres.spawn().map_err(io("starting postgres"))?);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), TestServerError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let mut ready = self.command("pg_isready");
            ready.args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-q",
            ]);
            if ready
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                return Ok(());
            }
            if let Some(child) = &mut self.server {
                if let Ok(Some(status)) = child.try_wait() {
                    self.server = None;
                    return Err(TestServerError::Command {
                        command: "postgres".to_string(),
                        status,
                        output: self.log(),
                    });
                }
            }
            if Instant::now() > deadline {
                return Err(TestServerError::NotReady(READY_TIMEOUT, self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One of the server's programs, run as the server's user.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
            // The user's own home, not root's, for anything that looks there.
            command.env("HOME", self.dir.path());
        }
        command
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            // SIGQUIT: immediate shutdown, no checkpoint; the files are deleted next.
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The bin directory with `initdb` and `postgres`: `STARLING_PG_BIN`, or the newest of
/// Debian's `/usr/lib/postgresql/<version>/bin`.
fn find_bin() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("STARLING_PG_BIN") {
        let dir = PathBuf::from(dir);
        return has_server(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Whether a PostgreSQL server can be started here (tests that need one skip or fail
/// clearly without it).
pub fn installed() -> bool {
    find_bin().is_some()
}

/// The (uid, gid) of a system user, from /etc/passwd.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&name) && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

/// A process's state letter and parent pid, from `/proc/PID/stat` ("pid (comm) state ppid
/// …", where the command may hold spaces and parentheses); `None` once it is gone.
fn state_and_parent(pid: i32) -> Option<(String, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 2..].split_whitespace();
    let state = fields.next()?.to_string();
    Some((state, fields.next()?.parse().ok()?))
}

/// The processes whose parent is `parent`.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let (_, ppid) = state_and_parent(pid)?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn running(pid: i32) -> bool {
    state_and_parent(pid).is_some_and(|(state, _)| state != "Z")
}

fn free_port() -> Result<u16, TestServerError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port())
}

fn run(command: &mut Command, name: &str) -> Result<(), TestServerError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("running {name}")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(TestServerError::Command {
        command: name.to_string(),
        status: output.status,
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}
