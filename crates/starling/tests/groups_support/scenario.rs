//! [`Scenario`]: the opening of a group test in one expression. It starts a [`group_broker`],
//! creates a topic with N partitions, picks a group id, produces a backlog and/or keeps
//! producing in the background, and returns a [`Running`] scenario that makes members of that
//! group from one template (assignor and extra librdkafka settings, e.g.
//! `group.protocol=consumer`).
//!
//! ```ignore
//! let mut s = Scenario::new("coop").strategy("cooperative-sticky")
//!     .producing("coop", Duration::from_millis(40)).start();
//! let (c1, c2) = (s.member("c1"), s.member("c2"));
//! wait_partitioned(&[&c1, &c2], &s.all, Duration::from_secs(30));
//! s.delivery().drain([c1, c2], Duration::from_secs(60)).verify();
//! ```

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::delivery::DeliveryCheck;
use super::member::{Member, MemberConfig};
use super::producer::{BackgroundProducer, Produced, Producer};
use super::setup::{create_topic_sync, group_broker, unique};
use super::tp::{partitions, Tp};
use crate::common::Broker;

/// How a group test begins; [`Scenario::start`] sets it up.
#[derive(Debug, Clone)]
pub struct Scenario {
    name: String,
    partitions: i32,
    broker_overrides: Vec<(String, String)>,
    strategy: String,
    consumer_settings: Vec<(String, String)>,
    backlog: Option<(String, usize)>,
    producing: Option<(String, Duration)>,
}

impl Scenario {
    /// Topic `unique(name)` with 6 partitions, group `unique("{name}-group")`, members using the
    /// `range` assignor, nothing produced.
    pub fn new(name: &str) -> Scenario {
        Scenario {
            name: name.to_string(),
            partitions: 6,
            broker_overrides: Vec::new(),
            strategy: "range".to_string(),
            consumer_settings: Vec::new(),
            backlog: None,
            producing: None,
        }
    }

    /// The topic's partition count.
    pub fn partitions(mut self, n: i32) -> Self {
        self.partitions = n;
        self
    }

    /// A broker setting (`--override key=value`), on top of (or replacing) [`group_broker`]'s.
    pub fn broker(mut self, key: &str, value: &str) -> Self {
        self.broker_overrides
            .push((key.to_string(), value.to_string()));
        self
    }

    /// The members' `partition.assignment.strategy`.
    pub fn strategy(mut self, strategy: &str) -> Self {
        self.strategy = strategy.to_string();
        self
    }

    /// A librdkafka setting for every member made by [`Running::member_config`] (set after
    /// the defaults, so it wins), e.g. `("group.protocol", "consumer")`.
    pub fn consumer(mut self, key: &str, value: &str) -> Self {
        self.consumer_settings
            .push((key.to_string(), value.to_string()));
        self
    }

    /// `count` messages round-robin over all partitions, keys `{tag}-{seq:06}`, acknowledged
    /// before [`Scenario::start`] returns.
    pub fn backlog(mut self, tag: &str, count: usize) -> Self {
        self.backlog = Some((tag.to_string(), count));
        self
    }

    /// Keeps producing from the start (after the backlog) until [`Running::stop_producing`]:
    /// one message to every partition every `interval`, keys `{tag}-{seq:07}`.
    pub fn producing(mut self, tag: &str, interval: Duration) -> Self {
        self.producing = Some((tag.to_string(), interval));
        self
    }

    /// Starts the broker, creates the topic (and waits until metadata shows it), and starts
    /// producing as configured.
    pub fn start(self) -> Running {
        let overrides: Vec<(&str, &str)> = self
            .broker_overrides
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let broker = group_broker(&overrides);
        let boot = broker.bootstrap();
        let topic = unique(&self.name);
        let group = unique(&format!("{}-group", self.name));
        create_topic_sync(&boot, &topic, self.partitions);
        let all = partitions(&topic, self.partitions);
        let mut running = Running {
            broker,
            topic,
            group,
            all,
            strategy: self.strategy,
            consumer_settings: self.consumer_settings,
            producer: OnceCell::new(),
            background: None,
        };
        if let Some((tag, count)) = &self.backlog {
            running
                .producer()
                .send_batch(&running.topic, self.partitions, tag, *count);
        }
        if let Some((tag, interval)) = &self.producing {
            running.background = Some(BackgroundProducer::start(
                running.shared_producer().clone(),
                running.all.iter().cloned().collect(),
                tag,
                *interval,
            ));
        }
        running
    }
}

/// A started [`Scenario`]: its broker, topic, group and producer.
pub struct Running {
    pub broker: Broker,
    pub topic: String,
    pub group: String,
    /// Every partition of the topic (as created).
    pub all: BTreeSet<Tp>,
    strategy: String,
    consumer_settings: Vec<(String, String)>,
    /// Made on first use (a scenario that never produces has no producer client).
    producer: OnceCell<Arc<Producer>>,
    background: Option<BackgroundProducer>,
}

impl Running {
    /// The broker's current address (it changes when the broker restarts).
    pub fn boot(&self) -> String {
        self.broker.bootstrap()
    }

    /// A member of the group subscribed to the topic, with the scenario's assignor and
    /// consumer settings; adjust it further before [`Member::start`].
    pub fn member_config(&self, name: &str) -> MemberConfig {
        let mut cfg =
            MemberConfig::new(name, &self.boot(), &self.group, &self.topic, &self.strategy);
        for (k, v) in &self.consumer_settings {
            cfg = cfg.set(k, v);
        }
        cfg
    }

    /// Starts a member made by [`Running::member_config`].
    pub fn member(&self, name: &str) -> Member {
        Member::start(self.member_config(name))
    }

    /// The scenario's producer, for more messages. It is made on first use, for the broker's
    /// address at that time (after a broker restart, [`Running::stop_producing`] first).
    pub fn producer(&self) -> &Producer {
        self.shared_producer()
    }

    fn shared_producer(&self) -> &Arc<Producer> {
        self.producer
            .get_or_init(|| Arc::new(Producer::new(&self.boot())))
    }

    /// Everything the producer acknowledged so far.
    pub fn produced(&self) -> Vec<Produced> {
        self.producer
            .get()
            .map(|p| p.produced())
            .unwrap_or_default()
    }

    /// Stops the background producer (if any), waits for every delivery (panicking if one
    /// failed), closes the producer and returns everything it had acknowledged.
    pub fn stop_producing(&mut self) -> Vec<Produced> {
        let produced = match (self.background.take(), self.producer.get()) {
            (Some(background), _) => background.stop(),
            (None, Some(producer)) => {
                producer.flush();
                producer.produced()
            }
            (None, None) => Vec::new(),
        };
        self.producer = OnceCell::new();
        produced
    }

    /// [`Running::stop_producing`], and a [`DeliveryCheck`] of what was produced.
    pub fn delivery(&mut self) -> DeliveryCheck {
        DeliveryCheck::new(self.stop_producing())
    }
}
