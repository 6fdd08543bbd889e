//! Producing through librdkafka: a [`producer`] that waits for every acknowledgement, and
//! [`send_to_partition0`] for keyed messages to partition 0.

use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use super::client::client_config;

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut base: Vec<(&str, &str)> = vec![
        ("acks", "all"),
        ("linger.ms", "5"),
        ("message.timeout.ms", "30000"),
    ];
    base.extend_from_slice(extra);
    client_config(bootstrap, &base)
        .create()
        .expect("create producer")
}

/// Enqueues one keyed message for partition 0 of `topic`; the future resolves with its delivery
/// (offset) or the broker's error. Fails only if the producer's queue refuses it.
pub fn send_to_partition0(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: &[u8],
) -> Result<DeliveryFuture, KafkaError> {
    producer
        .send_result(FutureRecord::to(topic).partition(0).key(key).payload(value))
        .map_err(|(e, _)| e)
}
