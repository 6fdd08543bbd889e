//! `max.connections`: how many client connections the broker serves at once, changeable at run
//! time as Kafka's DynamicConnectionQuota makes it. The accept loop waits for a free slot before
//! it accepts the next connection; a connection that ends frees its slot; raising the limit
//! wakes the loop at once. Lowering it closes nothing: connections already open stay, and new
//! ones wait until enough have gone, as in Kafka.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// The limit and the connections counted against it.
#[derive(Debug)]
pub struct ConnectionLimit {
    max: AtomicUsize,
    open: AtomicUsize,
    /// Woken when a slot frees or the limit changes; one waiter, the accept loop.
    changed: Notify,
}

impl ConnectionLimit {
    pub fn new(max: usize) -> ConnectionLimit {
        ConnectionLimit {
            max: AtomicUsize::new(max),
            open: AtomicUsize::new(0),
            changed: Notify::new(),
        }
    }

    /// Applies a new `max.connections`.
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::SeqCst);
        self.changed.notify_one();
    }

    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    /// Connections counted now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Waits until one more connection is allowed and counts it; the slot frees when the
    /// returned guard drops.
    pub async fn acquire(self: &Arc<Self>) -> ConnectionSlot {
        loop {
            // Created before the check: a slot freed in between leaves its wake-up stored.
            let changed = self.changed.notified();
            let open = self.open.load(Ordering::SeqCst);
            if open < self.max()
                && self
                    .open
                    .compare_exchange(open, open + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                return ConnectionSlot(Arc::clone(self));
            }
            changed.await;
        }
    }
}

/// One counted connection.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<ConnectionLimit>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_limit_waits_for_a_freed_slot_or_a_raised_limit() {
        let limit = Arc::new(ConnectionLimit::new(1));
        let first = limit.acquire().await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), limit.acquire()).await;
        assert!(waiting.is_err(), "a second slot beyond the limit");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), limit.acquire())
            .await
            .expect("the freed slot");
        assert_eq!(limit.open(), 1);

        let pending = tokio::spawn({
            let limit = limit.clone();
            async move { limit.acquire().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!pending.is_finished());
        limit.set_max(2);
        let third = tokio::time::timeout(Duration::from_secs(5), pending)
            .await
            .expect("woken by the raised limit")
            .unwrap();
        assert_eq!(limit.open(), 2);

        // Lowering closes nothing; new slots wait until the open ones are below it.
        limit.set_max(1);
        drop(second);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), limit.acquire())
                .await
                .is_err()
        );
        drop(third);
        tokio::time::timeout(Duration::from_secs(5), limit.acquire())
            .await
            .expect("below the lowered limit again");
    }
}

/// `max.connections.per.ip` and `max.connections.per.ip.overrides`: how many connections one
/// client address may hold open, changeable at run time. A connection over its address's limit
/// is closed as soon as it is accepted, as Kafka's `ConnectionQuotas` does (other addresses are
/// not held up).
#[derive(Debug)]
pub struct PerIpLimit {
    limits: parking_lot::RwLock<IpLimits>,
    open: parking_lot::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// The default and the overrides by address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpLimits {
    pub default: usize,
    pub overrides: std::collections::BTreeMap<std::net::IpAddr, usize>,
}

impl IpLimits {
    fn limit(&self, ip: std::net::IpAddr) -> usize {
        self.overrides.get(&ip).copied().unwrap_or(self.default)
    }
}

impl PerIpLimit {
    pub fn new(limits: IpLimits) -> Arc<PerIpLimit> {
        Arc::new(PerIpLimit {
            limits: parking_lot::RwLock::new(limits),
            open: parking_lot::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Applies new limits (connections already open stay).
    pub fn set(&self, limits: IpLimits) {
        *self.limits.write() = limits;
    }

    /// Counts a connection from `ip`, or `None` when the address is at its limit.
    pub fn try_acquire(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<IpSlot> {
        let limit = self.limits.read().limit(ip);
        let mut open = self.open.lock();
        let count = open.entry(ip).or_insert(0);
        if *count >= limit {
            if *count == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(IpSlot {
            limit: self.clone(),
            ip,
        })
    }

    /// Connections open from `ip`.
    pub fn open(&self, ip: std::net::IpAddr) -> usize {
        self.open.lock().get(&ip).copied().unwrap_or(0)
    }
}

/// One connection counted against its address's limit, until dropped.
#[derive(Debug)]
pub struct IpSlot {
    limit: Arc<PerIpLimit>,
    ip: std::net::IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod per_ip_tests {
    use super::*;

    #[test]
    fn an_address_at_its_limit_is_refused_until_one_of_its_connections_ends() {
        let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let other: std::net::IpAddr = "10.0.0.9".parse().unwrap();
        let limit = PerIpLimit::new(IpLimits {
            default: 2,
            overrides: [(other, 0)].into_iter().collect(),
        });
        let a = limit.try_acquire(local).unwrap();
        let _b = limit.try_acquire(local).unwrap();
        assert!(limit.try_acquire(local).is_none());
        assert!(
            limit.try_acquire(other).is_none(),
            "an override of 0 refuses all"
        );
        drop(a);
        assert_eq!(limit.open(local), 1);
        let _c = limit.try_acquire(local).unwrap();
        limit.set(IpLimits {
            default: 3,
            overrides: Default::default(),
        });
        let _d = limit.try_acquire(local).unwrap();
        let _e = limit.try_acquire(other).unwrap();
        assert_eq!(limit.open(local), 3);
    }
}
