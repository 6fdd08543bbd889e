//! Topics through librdkafka: [`create_topic`], and what a fresh client sees of them
//! ([`topics_in_metadata`], [`watermarks`]).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;

use super::client::{admin, admin_opts, within};
use super::consume::consumer;

/// Creates a topic with `partitions` partitions and replication factor 1; panics unless it worked.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    create_topic_with(bootstrap, name, partitions, &[]).await;
}

/// [`create_topic`] with topic configs.
pub async fn create_topic_with(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let admin = admin(bootstrap);
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let res = within(
        Duration::from_secs(20),
        "create_topics",
        admin.create_topics([&topic], &admin_opts()),
    )
    .await
    .expect("create_topics request");
    assert_eq!(res.len(), 1);
    assert_eq!(res[0], Ok(name.to_string()), "creating topic {name}");
}

/// (low, high) watermarks through a fresh consumer (ListOffsets earliest/latest).
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let c = consumer(bootstrap, &[]);
    c.fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("fetch_watermarks {topic}/{partition}: {e}"))
}

/// Topic names and partition counts visible in a fresh client's metadata.
pub fn topics_in_metadata(bootstrap: &str) -> BTreeMap<String, usize> {
    let c = consumer(bootstrap, &[]);
    let md = c
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("fetch_metadata");
    md.topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect()
}
