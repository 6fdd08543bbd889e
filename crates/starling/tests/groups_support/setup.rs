//! The broker and topics of a group test: [`group_broker`] with fast group settings, topics
//! created ([`create_topic_sync`]) or grown ([`grow_topic`]) until metadata shows them, and
//! [`unique`] names.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::wait::wait_for;
use crate::common::Broker;

/// A broker with `group.initial.rebalance.delay.ms=0` and `group.min.session.timeout.ms=1000`
/// unless `overrides` sets them; `overrides` are added as given.
pub fn group_broker(overrides: &[(&str, &str)]) -> Broker {
    let defaults = [
        ("group.initial.rebalance.delay.ms", "0"),
        ("group.min.session.timeout.ms", "1000"),
    ];
    let mut all: Vec<(&str, &str)> = defaults
        .iter()
        .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
        .copied()
        .collect();
    all.extend_from_slice(overrides);
    Broker::with_overrides(&all)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Creates a topic (blocking) and waits until a fresh client's metadata shows its partitions.
pub fn create_topic_sync(bootstrap: &str, name: &str, partitions: i32) {
    runtime().block_on(crate::common::create_topic(bootstrap, name, partitions));
    wait_for_partition_count(bootstrap, name, partitions as usize);
}

/// Grows a topic to `total` partitions through the admin API (CreatePartitions).
pub fn grow_topic(bootstrap: &str, name: &str, total: usize) {
    use rdkafka::admin::NewPartitions;
    let admin = crate::common::admin(bootstrap);
    let res = runtime().block_on(crate::common::within(
        Duration::from_secs(20),
        "create_partitions",
        admin.create_partitions(
            [&NewPartitions::new(name, total)],
            &crate::common::admin_opts(),
        ),
    ));
    let res = res.expect("create_partitions request");
    assert_eq!(
        res,
        vec![Ok(name.to_string())],
        "growing {name} to {total} partitions"
    );
    wait_for_partition_count(bootstrap, name, total);
}

pub fn wait_for_partition_count(bootstrap: &str, name: &str, count: usize) {
    wait_for(
        Duration::from_secs(20),
        &format!("{name} with {count} partitions in metadata"),
        || crate::common::topics_in_metadata(bootstrap).get(name) == Some(&count),
        || {
            format!(
                "{:?}",
                crate::common::topics_in_metadata(bootstrap).get(name)
            )
        },
    );
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}
