//! The accept loop: one task per connection under a connection limit, and graceful shutdown —
//! stop accepting, let every connection finish its in-flight request, then flush and close logs.
//! The admin HTTP endpoint, when enabled, is bound here too and stops with the rest.
//!
//! The data directory is locked first ([`lock_data_dir`]): an exclusive `flock` on its `.lock`
//! file, held until the broker is dropped or the process ends (a `kill -9` included), so a second
//! broker on the same directory stops at start with a message instead of corrupting it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use starling_meta::backend::MetadataBackend;
use starling_meta::MetadataStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::BrokerConfig;
use crate::connection_limit::ConnectionLimit;
use crate::dynamic_config::DynamicConfigs;
use crate::listeners::Listener;
use crate::metrics::Metrics;
use crate::node_registration::NodeRegistration;
use crate::request_memory::RequestMemory;
use crate::storage::{MetadataStorage, StorageKind};
use crate::tls::{Reload, TlsListener};
use crate::topics::TopicRegistry;
use crate::{admin, connection, coordinator, maintenance, Broker};

/// A started broker.
pub struct RunningBroker {
    broker: Arc<Broker>,
    /// Every listener, in `listeners` order, with the address it is bound to.
    listeners: Vec<Arc<Listener>>,
    admin_addr: Option<SocketAddr>,
    tasks: TaskTracker,
    /// The data directory's lock, released when the broker is dropped (after shutdown).
    _data_dir_lock: File,
}

impl RunningBroker {
    /// Where the first listener is bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0].bound
    }

    /// Every listener with its bound address, in `listeners` order.
    pub fn listeners(&self) -> &[Arc<Listener>] {
        &self.listeners
    }

    /// Where the admin HTTP endpoint listens (`None`: disabled).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Stops accepting, waits for connections to finish their current request, closes the logs.
    pub async fn shutdown(self) {
        self.broker.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        if let Some(leadership) = self.broker.topics.leadership() {
            leadership.release_all(&self.broker.topics).await;
        }
        let topics = self.broker.topics.all();
        let closing = tokio::task::spawn_blocking(move || close_logs(&topics));
        if let Err(e) = closing.await {
            tracing::error!(error = %e, "closing the partition logs failed");
        }
    }
}

/// Threads closing partition logs at shutdown. Each close waits on a few fsyncs (the active
/// segment, its indexes, the producer snapshot, the checkpoint and the directory), about 2 ms
/// on a virtual disk: one after another, 10,000 partitions took 20 s to stop, longer than
/// many service managers wait. Storage serves concurrent fsyncs much faster than serial ones.
const LOG_CLOSE_THREADS: usize = 16;

/// Flushes and closes every partition log of `topics`, [`LOG_CLOSE_THREADS`] at a time.
fn close_logs(topics: &[Arc<crate::topics::Topic>]) {
    let partitions: Vec<&crate::topics::Partition> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.as_ref()))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let close_next = || loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(p) = partitions.get(i) else {
            return;
        };
        let Some(log) = p.log.embedded() else {
            continue;
        };
        if let Err(e) = log.close() {
            tracing::error!(topic = %p.topic, partition = p.index, error = %e, "closing partition log");
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..LOG_CLOSE_THREADS.min(partitions.len()) {
            scope.spawn(close_next);
        }
        close_next();
    });
}

/// The metadata storage `config.storage` names: the node's embedded store, or a pool of
/// connections to PostgreSQL with the schema brought up to date.
async fn open_storage(
    config: &BrokerConfig,
    local_store: &Arc<MetadataStore>,
) -> anyhow::Result<(MetadataStorage, Option<starling_postgres::PgPool>)> {
    match &config.storage {
        StorageKind::Embedded => Ok((MetadataStorage::Embedded(local_store.clone()), None)),
        StorageKind::Postgres(url) => {
            let pool = starling_postgres::connect(url, starling_postgres::DEFAULT_POOL_SIZE)
                .await
                .with_context(|| format!("storage {}", config.storage.display()))?;
            tracing::info!(
                storage = config.storage.display(),
                "metadata, partition logs and group records in PostgreSQL"
            );
            Ok((
                MetadataStorage::Postgres(starling_postgres::metadata::PgMetadata::new(
                    pool.clone(),
                )),
                Some(pool),
            ))
        }
    }
}

/// Opens the data directory (recovering every log), binds the listeners and starts serving.
pub async fn start(mut config: BrokerConfig) -> anyhow::Result<RunningBroker> {
    config.check()?;
    let data_dir_lock = lock_data_dir(&config.data_dir)?;
    let mut sockets = Vec::new();
    for spec in &config.listeners {
        let socket = TcpListener::bind(spec.addr)
            .await
            .with_context(|| format!("binding listener {} on {}", spec.name, spec.addr))?;
        sockets.push(socket);
    }
    // With port 0 the real port is only known now; an unset advertised address follows it.
    for (spec, socket) in config.listeners.iter_mut().zip(&sockets) {
        spec.addr = socket.local_addr()?;
    }
    let mut listeners = Vec::new();
    for spec in &config.listeners {
        listeners.push(Listener::new(&config, &spec.name, spec.addr)?);
    }
    let admin_listener = match config.admin_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the admin endpoint {addr} (admin.listen)"))?,
        ),
        None => None,
    };
    let admin_addr = match &admin_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    config.admin_listen = admin_addr;
    let admin_tls = if admin_listener.is_some() && config.admin_ssl_enable {
        let settings = crate::tls::TlsSettings::of(
            &config,
            crate::config::ADMIN_TLS,
            crate::listeners::SecurityProtocol::Ssl,
        )?;
        let tls = TlsListener::load(settings)
            .map_err(|e| anyhow::anyhow!("the admin endpoint's TLS (admin.ssl.enable): {e}"))?;
        Some(Arc::new(tls))
    } else {
        None
    };

    // The node's own store: the metadata and the group coordinator's records with embedded
    // storage (opened in both modes: the data directory keeps its layout).
    let local_store = Arc::new(MetadataStore::open(&config.data_dir.join("meta.redb"))?);
    let (storage, database) = open_storage(&config, &local_store).await?;
    let registration = match database.clone() {
        Some(pool) => {
            let addresses: Vec<(String, (String, i32))> = listeners
                .iter()
                .map(|l| (l.name.clone(), l.advertised.clone()))
                .collect();
            Some(NodeRegistration::register(pool, &config, &addresses).await?)
        }
        None => None,
    };
    let cluster_id = storage.cluster_id().await?;
    let data_dir = config.data_dir.clone();
    let shutdown = CancellationToken::new();
    let metrics = Arc::new(Metrics::new());
    let dynamic = DynamicConfigs::open(&config, storage.clone()).await?;
    let topic_storage = storage.clone();
    let topic_records = storage.topics().await?;
    let in_force = dynamic.effective();
    let in_force_connections = in_force.max_connections;
    let in_force_ip_limits = in_force.ip_limits();
    let topics = tokio::task::spawn_blocking(move || {
        TopicRegistry::open(&in_force, topic_storage, topic_records).map(|t| (t, config))
    })
    .await
    .context("recovery task")??;
    let (topics, config) = topics;
    // Lead the partitions before serving them: the first round takes every free lease.
    if let Some(leadership) = topics.leadership() {
        leadership
            .round(&topics)
            .await
            .context("taking the partition leases")?;
    }
    let group_storage = match (&database, topics.leadership()) {
        (Some(pool), Some(leases)) => coordinator::GroupStorage::Postgres(Arc::new(
            coordinator::group_storage::PgGroupStorage::new(pool.clone(), leases.clone()),
        )),
        _ => coordinator::GroupStorage::Embedded(local_store.clone()),
    };
    let (groups, coordinator_task) = coordinator::start(
        config.group.clone(),
        group_storage,
        metrics.clone(),
        shutdown.clone(),
        topics.watch_image(),
    )
    .await?;
    topics.remove_deleted_leftovers();
    let bound: Vec<String> = listeners
        .iter()
        .map(|l| format!("{}://{}", l.name, l.bound))
        .collect();
    tracing::info!(data_dir = %data_dir.display(), storage = config.storage.display(), cluster_id, listeners = %bound.join(","), "broker ready");

    let producer_ids = Arc::new(crate::producer_ids::ProducerIds::new(storage.clone()));
    let (transactions, marker_jobs) = crate::transactions::Transactions::start(
        config.transaction.clone(),
        storage.clone(),
        producer_ids.clone(),
        topics.leadership().map(|l| l.as_ref()),
    )
    .await?;
    let request_memory = RequestMemory::new(config.queued_max_request_bytes);
    let quotas = crate::quotas::ClientQuotas::open(
        storage.clone(),
        config.quota_window_num,
        config.quota_window_size_seconds,
        metrics.clone(),
    )
    .await?;
    let acls = crate::acls::Acls::open(storage.clone(), &config).await?;
    let scram = crate::sasl::credentials::ScramCredentials::open(storage.clone()).await?;
    let plain_users = match &config.sasl_plain_users_file {
        Some(path) => Some(
            crate::sasl::plain::PlainUsers::load(path)
                .map_err(|e| anyhow::anyhow!("sasl.plain.users.file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let mut admin_auth = crate::admin::auth::AdminAuth::from_config(&config)
        .map_err(|e| anyhow::anyhow!("admin.auth.tokens.file: {e}"))?;
    if let Some(tls) = &admin_tls {
        admin_auth = admin_auth.with_certificates(tls.clone());
    }
    let broker = Arc::new(Broker {
        quotas,
        plain_users,
        failed_logins: crate::authentication::FailedLogins::new(std::time::Duration::from_millis(
            config.connection_failed_authentication_delay_ms,
        )),
        acls,
        scram,
        storage,
        producer_ids,
        transactions: transactions.clone(),
        request_memory,
        config,
        connection_limit: Arc::new(ConnectionLimit::new(in_force_connections)),
        per_ip_limit: crate::connection_limit::PerIpLimit::new(in_force_ip_limits),
        dynamic,
        cluster_id,
        started_ms: crate::now_ms(),
        topics,
        groups,
        metrics,
        shutdown,
    });
    let tasks = TaskTracker::new();
    tasks.spawn(async move {
        if let Err(e) = coordinator_task.await {
            tracing::error!(error = %e, "group coordinator task failed");
        }
    });
    if let Some(registration) = registration {
        tasks.spawn(registration.run(broker.shutdown.clone()));
    }
    if let Some(leadership) = broker.topics.leadership() {
        tasks.spawn(leadership.clone().run(broker.clone()));
    }
    tasks.spawn(maintenance::run(broker.clone()));
    tasks.spawn(crate::log_cleaner::run(broker.clone()));
    tasks.spawn(transactions.run_timers(broker.shutdown.clone()));
    if let crate::storage::StorageKind::Postgres(url) = &broker.config.storage {
        tasks.spawn(crate::cluster::listen(broker.clone(), url.clone()));
        tasks.spawn(crate::transactions::queued::run(broker.clone()));
    }
    tasks.spawn(crate::transactions::markers::run(
        broker.clone(),
        marker_jobs,
        tasks.clone(),
    ));
    for (listener, socket) in listeners.iter().zip(sockets) {
        tasks.spawn(accept_loop(
            broker.clone(),
            listener.clone(),
            socket,
            tasks.clone(),
        ));
    }
    let mut tls_stores: Vec<(String, Arc<TlsListener>)> = listeners
        .iter()
        .filter_map(|l| Some((l.name.clone(), l.tls.clone()?)))
        .collect();
    if let Some(tls) = &admin_tls {
        tls_stores.push((crate::config::ADMIN_TLS.to_string(), tls.clone()));
    }
    if !tls_stores.is_empty() {
        tasks.spawn(reload_tls_stores(broker.clone(), tls_stores));
    }
    if let Some(admin_listener) = admin_listener {
        if let Some(addr) = admin_addr {
            admin::warn_if_exposed(&broker, &admin_auth, addr);
        }
        match admin_tls {
            Some(tls) => {
                let https = admin::https::HttpsListener::start(
                    admin_listener,
                    tls,
                    std::time::Duration::from_millis(broker.config.ssl_handshake_timeout_ms),
                    broker.shutdown.clone(),
                )?;
                tasks.spawn(admin::serve_on(broker.clone(), admin_auth, https));
            }
            None => {
                tasks.spawn(admin::serve(broker.clone(), admin_auth, admin_listener));
            }
        }
    }
    Ok(RunningBroker {
        broker,
        listeners,
        admin_addr,
        tasks,
        _data_dir_lock: data_dir_lock,
    })
}

/// The lock file in a data directory.
pub const LOCK_FILE: &str = ".lock";

/// Creates the data directory if needed and takes an exclusive lock on its [`LOCK_FILE`],
/// which then holds this process's id. Refused with a message saying why: the path (or a
/// directory above it) is a file, or another broker holds the lock.
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<File> {
    if let Some(file) = dir.ancestors().find(|a| a.is_file()) {
        if file == dir {
            bail!(
                "the data directory {} is a file, not a directory (--data-dir / log.dirs)",
                dir.display()
            );
        }
        bail!(
            "cannot create the data directory {}: {} is a file, not a directory (--data-dir / log.dirs)",
            dir.display(),
            file.display()
        );
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening the data directory's lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim().parse::<u32>() {
                Ok(pid) => format!(" (pid {pid})"),
                Err(_) => String::new(),
            };
            bail!(
                "the data directory {} is in use: another Starling broker{holder} holds its lock \
                 {}; stop that broker or give this one another --data-dir",
                dir.display(),
                path.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    // Who holds it, for the message a second broker prints; the lock does not depend on it.
    let wrote = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    if let Err(e) = wrote {
        tracing::warn!(path = %path.display(), error = %e, "could not write the pid into the lock file");
    }
    Ok(file)
}

/// Reads every TLS listener's key and trust stores again each
/// `ssl.keystore.reload.interval.ms`; changed ones that load serve new connections.
async fn reload_tls_stores(broker: Arc<Broker>, stores: Vec<(String, Arc<TlsListener>)>) {
    let interval = broker.config.ssl_keystore_reload_interval_ms;
    if interval == 0 {
        return;
    }
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(interval));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        for (name, tls) in &stores {
            // File reads and key parsing off the async threads.
            let reloading = tls.clone();
            let outcome = tokio::task::spawn_blocking(move || reloading.reload_if_changed()).await;
            match outcome {
                Ok(Reload::Reloaded) => {
                    broker.metrics.tls_reload(name, "reloaded");
                    tracing::info!(listener = %name, "TLS key and trust stores reloaded; new connections use them");
                }
                Ok(Reload::Failed(why)) => {
                    broker.metrics.tls_reload(name, "failed");
                    tracing::error!(listener = %name, reason = %why, "TLS stores changed but do not load; keeping the ones in use");
                }
                Ok(Reload::Unchanged) => {}
                Err(e) => tracing::error!(listener = %name, error = %e, "TLS reload task"),
            }
        }
    }
}

async fn accept_loop(
    broker: Arc<Broker>,
    listener: Arc<Listener>,
    socket: TcpListener,
    tasks: TaskTracker,
) {
    loop {
        let permit = tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            slot = broker.connection_limit.acquire() => slot,
        };
        let accepted = tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            accepted = socket.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Over its address's max.connections.per.ip, closed at once (Kafka's
                // TooManyConnectionsException).
                let Some(ip_slot) = broker.per_ip_limit.try_acquire(peer.ip()) else {
                    tracing::info!(%peer, "closing connection: max.connections.per.ip reached for its address");
                    drop(stream);
                    drop(permit);
                    continue;
                };
                // Over its ip's connection_creation_rate, a connection is closed once the
                // throttle time has passed, unserved (Kafka's KIP-612 delayed close).
                let throttle_ms = broker.quotas.connection_throttle_ms(peer.ip());
                if throttle_ms > 0 {
                    tracing::debug!(%peer, throttle_ms, "delaying closing of a throttled connection");
                    let shutdown = broker.shutdown.clone();
                    tasks.spawn(async move {
                        let delay = std::time::Duration::from_millis(throttle_ms as u64);
                        tokio::select! {
                            _ = shutdown.cancelled() => {}
                            _ = tokio::time::sleep(delay) => {}
                        }
                        drop(stream);
                        drop(permit);
                    });
                    continue;
                }
                let broker = broker.clone();
                let listener = listener.clone();
                let open = broker.metrics.connection_opened();
                tasks.spawn(async move {
                    connection::serve(broker, listener, stream, peer).await;
                    drop(open);
                    drop(ip_slot);
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Runs the broker until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn run_until_signal(config: BrokerConfig) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Install the handler before announcing readiness: a SIGTERM sent the moment the
    // `listening on` line appears must still mean a graceful stop.
    let mut term = signal(SignalKind::terminate())?;
    let broker = start(config).await?;
    // The first listener's address, then each listener's (`listener NAME on ADDR`), then the
    // admin endpoint's: a script that reads one line has the address clients use. All go out
    // in one write, so a reader that has the first line has the rest too, and a reader that
    // stops reading (closing the pipe) cannot make a later print fail and stop the broker.
    let mut ready = format!("listening on {}\n", broker.local_addr());
    for listener in broker.listeners() {
        ready.push_str(&format!(
            "listener {} on {}\n",
            listener.name, listener.bound
        ));
    }
    if let Some(admin) = broker.admin_addr() {
        ready.push_str(&format!("admin listening on {admin}\n"));
    }
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = stdout
            .write_all(ready.as_bytes())
            .and_then(|()| stdout.flush())
        {
            tracing::warn!(error = %e, "could not print the listening addresses to stdout");
        }
    }
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r?,
    }
    tracing::info!("shutting down");
    broker.shutdown().await;
    tracing::info!("shut down cleanly");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_is_locked_once_and_free_again_when_the_lock_is_dropped() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        let held = lock_data_dir(&dir).unwrap();
        let e = format!("{:#}", lock_data_dir(&dir).unwrap_err());
        assert!(
            e.contains("is in use: another Starling broker")
                && e.contains(&format!("(pid {})", std::process::id())),
            "{e}"
        );
        drop(held);
        lock_data_dir(&dir).unwrap();
    }

    #[test]
    fn a_data_dir_that_is_a_file_is_named_as_such() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("data");
        std::fs::write(&file, b"").unwrap();
        let e = format!("{:#}", lock_data_dir(&file).unwrap_err());
        assert!(e.contains("is a file, not a directory"), "{e}");
        let e = format!("{:#}", lock_data_dir(&file.join("below")).unwrap_err());
        assert!(
            e.contains(&format!("{} is a file, not a directory", file.display())),
            "{e}"
        );
    }
}
