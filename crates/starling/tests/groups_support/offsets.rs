//! [`committed`] (and [`committed_with_metadata`]): a group's committed offsets, seen from
//! outside the group.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::tp::{tp, Tp};
use crate::common::consumer as plain_consumer;

/// The group's committed offsets (OffsetFetch through a consumer that never joins).
/// `None` for a partition without a committed offset.
pub fn committed(bootstrap: &str, group: &str, parts: &BTreeSet<Tp>) -> BTreeMap<Tp, Option<i64>> {
    committed_with_metadata(bootstrap, group, parts)
        .into_iter()
        .map(|(t, (offset, _))| (t, offset))
        .collect()
}

/// [`committed`] with each offset's metadata.
pub fn committed_with_metadata(
    bootstrap: &str,
    group: &str,
    parts: &BTreeSet<Tp>,
) -> BTreeMap<Tp, (Option<i64>, String)> {
    let c = plain_consumer(bootstrap, &[("group.id", group)]);
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        tpl.add_partition(t, *p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("committed offsets of {group}: {e}"));
    got.elements()
        .iter()
        .map(|e| {
            let o = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            (tp(e.topic(), e.partition()), (o, e.metadata().to_string()))
        })
        .collect()
}
