//! Topic partitions as plain values: [`Tp`], [`tp`], and all [`partitions`] of a topic.

use std::collections::BTreeSet;

/// A topic partition.
pub type Tp = (String, i32);

pub fn tp(topic: &str, partition: i32) -> Tp {
    (topic.to_string(), partition)
}

/// All partitions `0..n` of `topic`.
pub fn partitions(topic: &str, n: i32) -> BTreeSet<Tp> {
    (0..n).map(|p| tp(topic, p)).collect()
}
