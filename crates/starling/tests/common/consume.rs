//! Consuming through librdkafka without a group: an `assign()`-only [`consumer`], [`assign`],
//! and reading messages as owned [`Msg`]s ([`consume_until`], [`consume_from_start`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::client::client_config;

/// A consumer for `assign()` use: no commits, no EOF events. (librdkafka wants a group.id even
/// for `assign()`; it is never joined.)
pub fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut base: Vec<(&str, &str)> = vec![
        ("group.id", "starling-e2e-assign-only"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "false"),
        ("auto.offset.reset", "error"),
    ];
    base.extend_from_slice(extra);
    client_config(bootstrap, &base)
        .create()
        .expect("create consumer")
}

/// Assigns `(partition, offset)` pairs of one topic.
pub fn assign(consumer: &BaseConsumer, topic: &str, parts: &[(i32, Offset)]) {
    let mut tpl = TopicPartitionList::new();
    for &(p, off) in parts {
        tpl.add_partition_offset(topic, p, off).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
}

/// One consumed message, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Msg {
    /// An owned copy of a consumed message.
    pub fn of(m: &impl Message) -> Msg {
        Msg {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            timestamp: m.timestamp().to_millis(),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(self.key.as_deref().unwrap_or_default()).into_owned()
    }
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default()).into_owned()
    }
}

/// Polls until `done(&collected)` is true; panics on a consumer error or after `limit`.
pub fn consume_until(
    consumer: &BaseConsumer,
    limit: Duration,
    mut done: impl FnMut(&[Msg]) -> bool,
) -> Vec<Msg> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while !done(&got) {
        if Instant::now() > deadline {
            panic!(
                "consumer: condition not reached within {limit:?}; got {} messages, last: {:?}",
                got.len(),
                got.last().map(|m: &Msg| (m.partition, m.offset))
            );
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => got.push(Msg::of(&m)),
            Some(Err(e)) => panic!("consumer error after {} messages: {e}", got.len()),
        }
    }
    got
}

/// Reads `count` messages per listed partition starting at offset 0 and returns them by
/// partition (in the order they arrived).
pub fn consume_from_start(
    bootstrap: &str,
    topic: &str,
    counts: &[(i32, usize)],
    limit: Duration,
) -> BTreeMap<i32, Vec<Msg>> {
    let c = consumer(bootstrap, &[]);
    let parts: Vec<(i32, Offset)> = counts
        .iter()
        .map(|&(p, _)| (p, Offset::Offset(0)))
        .collect();
    assign(&c, topic, &parts);
    let want: usize = counts.iter().map(|&(_, n)| n).sum();
    let msgs = consume_until(&c, limit, |got| got.len() >= want);
    let mut by_part: BTreeMap<i32, Vec<Msg>> = BTreeMap::new();
    for m in msgs {
        by_part.entry(m.partition).or_default().push(m);
    }
    by_part
}
