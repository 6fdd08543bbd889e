//! The web console's recent history: every `admin.console.sample.interval.ms` (10 s unless
//! set) a task started with the admin endpoint reads each topic's counters (summed log end
//! offsets, record bytes produced and fetched) and each group's lag per partition, and keeps
//! the last [`SAMPLES`] readings. From them the console shows produce and fetch rates per
//! topic and a small lag history per partition — figures Kafka's own tools leave to an
//! external metrics system.
//!
//! The history lives only in memory: it starts empty when the broker does. Reading it is
//! cheap and never waits on the sampler for longer than a copy of one group's series.
//! Nothing here filters by ACLs: the console shows only what its caller may describe.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use starling_console::overview::Rates;
use uuid::Uuid;

use crate::{now_ms, Broker};

/// Readings kept per series: 15 minutes at the default interval.
pub const SAMPLES: usize = 90;

/// The span rates are averaged over (at least two readings are always used).
pub const RATE_WINDOW_MS: i64 = 60_000;

/// One reading of a topic's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicReading {
    pub at_ms: i64,
    /// Log end offsets summed over the topic's partitions.
    pub end_offsets: i64,
    /// Record bytes appended by Produce since the broker started.
    pub produced_bytes: u64,
    /// Record bytes returned by Fetch since the broker started.
    pub fetched_bytes: u64,
}

/// A partition's lag readings, oldest first: `(at_ms, lag)`.
pub type LagSeries = Vec<(i64, i64)>;

/// One group's kept lag readings by partition: `(at_ms, lag)`, oldest first.
type GroupLag = HashMap<(String, i32), VecDeque<(i64, i64)>>;

/// The kept readings.
pub struct Activity {
    interval_ms: u64,
    samples: Mutex<Samples>,
}

#[derive(Default)]
struct Samples {
    /// By topic name: the topic id the readings are of (a topic deleted and created again
    /// under its name starts a new series) and the readings, oldest first.
    topics: HashMap<String, (Uuid, VecDeque<TopicReading>)>,
    /// By group, then partition: `(at_ms, lag)` readings, oldest first.
    lag: HashMap<String, GroupLag>,
}

fn push_capped<T>(series: &mut VecDeque<T>, value: T) {
    if series.len() == SAMPLES {
        series.pop_front();
    }
    series.push_back(value);
}

impl Activity {
    pub fn new(interval_ms: u64) -> Activity {
        Activity {
            interval_ms: interval_ms.max(1),
            samples: Mutex::new(Samples::default()),
        }
    }

    /// How often readings are taken.
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// Adds one reading per topic; topics not read any more (deleted) are forgotten.
    pub fn record_topics(&self, readings: impl IntoIterator<Item = (String, Uuid, TopicReading)>) {
        let mut samples = self.samples.lock();
        let mut kept: HashMap<String, (Uuid, VecDeque<TopicReading>)> = HashMap::new();
        for (name, id, reading) in readings {
            let mut series = match samples.topics.remove(&name) {
                Some((old_id, series)) if old_id == id => series,
                _ => VecDeque::new(),
            };
            push_capped(&mut series, reading);
            kept.insert(name, (id, series));
        }
        samples.topics = kept;
    }

    /// Adds one lag reading, taken at `at_ms`, per group and partition; groups and
    /// partitions not read any more (deleted, offsets expired) are forgotten.
    pub fn record_lag(
        &self,
        at_ms: i64,
        groups: impl IntoIterator<Item = (String, Vec<((String, i32), i64)>)>,
    ) {
        let mut samples = self.samples.lock();
        let mut kept: HashMap<String, GroupLag> = HashMap::new();
        for (group, lags) in groups {
            let mut old = samples.lag.remove(&group).unwrap_or_default();
            let series: GroupLag = lags
                .into_iter()
                .map(|(partition, lag)| {
                    let mut series = old.remove(&partition).unwrap_or_default();
                    push_capped(&mut series, (at_ms, lag));
                    (partition, series)
                })
                .collect();
            kept.insert(group, series);
        }
        samples.lag = kept;
    }

    /// A topic's rates, per second, over about the last [`RATE_WINDOW_MS`]; `None` until it has two
    /// readings, or when a counter went backwards.
    pub fn topic_rates(&self, topic: &str) -> Option<Rates> {
        let samples = self.samples.lock();
        let (_, series) = samples.topics.get(topic)?;
        let newest = *series.back()?;
        let oldest = series
            .iter()
            .rev()
            .skip(1)
            .take_while(|r| newest.at_ms - r.at_ms <= RATE_WINDOW_MS)
            .last()
            .or_else(|| series.iter().rev().nth(1))?;
        let seconds = (newest.at_ms - oldest.at_ms) as f64 / 1000.0;
        if seconds <= 0.0 {
            return None;
        }
        let records = newest.end_offsets.checked_sub(oldest.end_offsets)?;
        let bytes_in = newest.produced_bytes.checked_sub(oldest.produced_bytes)?;
        let bytes_out = newest.fetched_bytes.checked_sub(oldest.fetched_bytes)?;
        if records < 0 {
            return None;
        }
        Some(Rates {
            records_in: records as f64 / seconds,
            bytes_in: bytes_in as f64 / seconds,
            bytes_out: bytes_out as f64 / seconds,
        })
    }

    /// A group's lag readings by partition (empty for a group not sampled yet).
    pub fn lag_history(&self, group: &str) -> HashMap<(String, i32), LagSeries> {
        let samples = self.samples.lock();
        samples
            .lag
            .get(group)
            .map(|partitions| {
                partitions
                    .iter()
                    .map(|(k, series)| (k.clone(), series.iter().copied().collect()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Takes a reading every interval until the broker shuts down: topics on a blocking thread
/// (log end offsets take the logs' locks), group offsets from the coordinator as `/groups`
/// asks for them.
pub async fn run(broker: Arc<Broker>, activity: Arc<Activity>) {
    let mut tick = tokio::time::interval(Duration::from_millis(activity.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let groups =
            match tokio::time::timeout(super::OVERVIEW_TIMEOUT, broker.groups.overview()).await {
                Ok(Ok(groups)) => Some(groups),
                _ => None,
            };
        let (b, a) = (broker.clone(), activity.clone());
        let reading = tokio::task::spawn_blocking(move || {
            let at_ms = now_ms();
            a.record_topics(b.topics.all().into_iter().map(|topic| {
                let mut reading = TopicReading {
                    at_ms,
                    end_offsets: 0,
                    produced_bytes: 0,
                    fetched_bytes: 0,
                };
                for p in &topic.partitions {
                    reading.end_offsets += p.log.log_end_offset();
                    reading.produced_bytes +=
                        p.produced_bytes.load(std::sync::atomic::Ordering::Relaxed);
                    reading.fetched_bytes +=
                        p.fetched_bytes.load(std::sync::atomic::Ordering::Relaxed);
                }
                (topic.name.clone(), topic.id, reading)
            }));
            // A coordinator that did not answer leaves the lag history as it was.
            if let Some(groups) = groups {
                a.record_lag(
                    at_ms,
                    groups.into_iter().map(|g| {
                        let lags = g
                            .offsets
                            .into_iter()
                            .filter_map(|(topic, partition, committed)| {
                                let end = b.topics.log_end_offset(&topic, partition)?;
                                Some(((topic, partition), crate::metrics::lag(end, committed)))
                            })
                            .collect();
                        (g.group_id, lags)
                    }),
                );
            }
        });
        if let Err(e) = reading.await {
            tracing::error!(error = %e, "console activity sampler failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at_ms: i64, end_offsets: i64, produced: u64, fetched: u64) -> TopicReading {
        TopicReading {
            at_ms,
            end_offsets,
            produced_bytes: produced,
            fetched_bytes: fetched,
        }
    }

    #[test]
    fn rates_need_two_readings_and_average_over_the_last_minute() {
        let activity = Activity::new(10_000);
        let id = Uuid::new_v4();
        activity.record_topics([("orders".to_string(), id, reading(0, 0, 0, 0))]);
        assert_eq!(activity.topic_rates("orders"), None);
        assert_eq!(activity.topic_rates("absent"), None);
        // 10 readings 10 s apart, 100 records and 1000 bytes in, 500 out, per reading.
        for i in 1..=10 {
            activity.record_topics([(
                "orders".to_string(),
                id,
                reading(i * 10_000, i * 100, i as u64 * 1000, i as u64 * 500),
            )]);
        }
        let rates = activity.topic_rates("orders").unwrap();
        assert_eq!(rates.records_in, 10.0);
        assert_eq!(rates.bytes_in, 100.0);
        assert_eq!(rates.bytes_out, 50.0);
        // Traffic stops: a minute later the rate is zero, whatever came before.
        for i in 11..=17 {
            activity.record_topics([(
                "orders".to_string(),
                id,
                reading(i * 10_000, 1000, 10_000, 5000),
            )]);
        }
        assert_eq!(activity.topic_rates("orders").unwrap().records_in, 0.0);
    }

    #[test]
    fn readings_further_apart_than_the_window_still_give_a_rate() {
        let activity = Activity::new(120_000);
        let id = Uuid::new_v4();
        activity.record_topics([("t".to_string(), id, reading(0, 0, 0, 0))]);
        activity.record_topics([("t".to_string(), id, reading(120_000, 1200, 0, 0))]);
        assert_eq!(activity.topic_rates("t").unwrap().records_in, 10.0);
    }

    #[test]
    fn a_topic_created_again_under_its_name_starts_a_new_series_and_a_deleted_one_is_forgotten() {
        let activity = Activity::new(1000);
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        activity.record_topics([("t".to_string(), first, reading(0, 0, 0, 0))]);
        activity.record_topics([("t".to_string(), first, reading(1000, 500, 0, 0))]);
        activity.record_topics([("t".to_string(), second, reading(2000, 3, 0, 0))]);
        // Not the drop from 500 to 3 read as a rate: one reading of the new topic.
        assert_eq!(activity.topic_rates("t"), None);
        activity.record_topics([]);
        activity.record_topics([("t".to_string(), second, reading(3000, 4, 0, 0))]);
        assert_eq!(activity.topic_rates("t"), None);
    }

    #[test]
    fn counters_that_went_backwards_give_no_rate() {
        let activity = Activity::new(1000);
        let id = Uuid::new_v4();
        activity.record_topics([("t".to_string(), id, reading(0, 10, 100, 100))]);
        activity.record_topics([("t".to_string(), id, reading(1000, 20, 50, 100))]);
        assert_eq!(activity.topic_rates("t"), None);
    }

    #[test]
    fn lag_keeps_the_last_readings_per_partition_and_forgets_what_is_gone() {
        let activity = Activity::new(1000);
        let p = |topic: &str, partition: i32| (topic.to_string(), partition);
        for i in 0..(SAMPLES as i64 + 5) {
            let mut lags = vec![(p("orders", 0), i)];
            if i < 3 {
                lags.push((p("orders", 1), 100 - i));
            }
            activity.record_lag(
                i * 1000,
                [
                    ("g".to_string(), lags),
                    ("short-lived".to_string(), vec![(p("orders", 0), 1)]),
                ]
                .into_iter()
                .filter(|(g, _)| g == "g" || i == 0),
            );
        }
        let history = activity.lag_history("g");
        assert_eq!(history.len(), 1, "partition 1 had no offset any more");
        let series = &history[&p("orders", 0)];
        assert_eq!(series.len(), SAMPLES);
        assert_eq!(series.first(), Some(&(5_000, 5)));
        assert_eq!(
            series.last(),
            Some(&((SAMPLES as i64 + 4) * 1000, SAMPLES as i64 + 4))
        );
        assert!(activity.lag_history("short-lived").is_empty());
        assert!(activity.lag_history("never").is_empty());
    }
}
