//! Test support for KIP-848 consumer groups: a ConsumerGroupHeartbeat builder ([`Hb`]),
//! topics with deterministic ids, and [`Ctx`] methods that send heartbeats and read the
//! group's state back.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as OwnedTopic;
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
};
use uuid::Uuid;

use super::{sb, Ctx, G};
use crate::assignor::TopicMetadata;
use crate::consumer::{ConsumerGroup, TopicPartitions};
use crate::{GroupRequest, GroupResponse, TopicsImage};

/// A topic's id in tests: derived from its name, so tests can name it.
pub(crate) fn tid(name: &str) -> Uuid {
    let mut n: u128 = 0x5354_4152;
    for byte in name.bytes() {
        n = n.wrapping_mul(131).wrapping_add(u128::from(byte));
    }
    Uuid::from_u128(n)
}

/// Partitions by topic name, as a map by topic id.
pub(crate) fn tp(entries: &[(&str, &[i32])]) -> TopicPartitions {
    let mut out = TopicPartitions::new();
    for (name, partitions) in entries {
        out.entry(tid(name))
            .or_default()
            .extend(partitions.iter().copied());
    }
    out
}

/// A ConsumerGroupHeartbeat in the making (v1 unless told otherwise).
#[derive(Clone, Debug)]
pub(crate) struct Hb {
    pub group: String,
    pub member: String,
    pub epoch: i32,
    pub instance: Option<String>,
    pub rack: Option<String>,
    pub rebalance_timeout: i32,
    pub topics: Option<Vec<String>>,
    pub regex: Option<String>,
    pub assignor: Option<String>,
    pub owned: Option<TopicPartitions>,
    pub version: i16,
}

impl Hb {
    /// A member joining (epoch 0) with a subscription to `topics`.
    pub fn join(member: &str, topics: &[&str]) -> Hb {
        Hb {
            group: G.to_string(),
            member: member.to_string(),
            epoch: 0,
            instance: None,
            rack: None,
            rebalance_timeout: 30_000,
            topics: Some(topics.iter().map(|t| t.to_string()).collect()),
            regex: None,
            assignor: None,
            owned: Some(TopicPartitions::new()),
            version: 1,
        }
    }

    /// A plain heartbeat at `epoch` reporting what the member owns (no other field set).
    pub fn beat(member: &str, epoch: i32, owned: &TopicPartitions) -> Hb {
        Hb {
            epoch,
            rebalance_timeout: -1,
            topics: None,
            owned: Some(owned.clone()),
            ..Hb::join(member, &[])
        }
    }

    /// A leave (−1) or a static member's temporary leave (−2).
    pub fn leave(member: &str, epoch: i32) -> Hb {
        Hb {
            owned: None,
            ..Hb::beat(member, epoch, &TopicPartitions::new())
        }
    }

    pub fn instance(mut self, instance: &str) -> Hb {
        self.instance = Some(instance.to_string());
        self
    }
    pub fn regex(mut self, regex: &str) -> Hb {
        self.regex = Some(regex.to_string());
        self
    }
    pub fn assignor(mut self, assignor: &str) -> Hb {
        self.assignor = Some(assignor.to_string());
        self
    }
    pub fn topics(mut self, topics: &[&str]) -> Hb {
        self.topics = Some(topics.iter().map(|t| t.to_string()).collect());
        self
    }
    pub fn version(mut self, version: i16) -> Hb {
        self.version = version;
        self
    }
    pub fn group(mut self, group: &str) -> Hb {
        self.group = group.to_string();
        self
    }
    pub fn rebalance_timeout(mut self, ms: i32) -> Hb {
        self.rebalance_timeout = ms;
        self
    }

    pub fn request(&self) -> GroupRequest {
        let mut r = ConsumerGroupHeartbeatRequest::default();
        r.group_id = sb(&self.group).into();
        r.member_id = sb(&self.member);
        r.member_epoch = self.epoch;
        r.instance_id = self.instance.as_deref().map(sb);
        r.rack_id = self.rack.as_deref().map(sb);
        r.rebalance_timeout_ms = self.rebalance_timeout;
        r.subscribed_topic_names = self
            .topics
            .as_ref()
            .map(|topics| topics.iter().map(|t| sb(t).into()).collect());
        if self.version >= 1 {
            r.subscribed_topic_regex = self.regex.as_deref().map(sb);
        }
        r.server_assignor = self.assignor.as_deref().map(sb);
        r.topic_partitions = self.owned.as_ref().map(|owned| {
            owned
                .iter()
                .map(|(topic, partitions)| {
                    let mut t = OwnedTopic::default();
                    t.topic_id = *topic;
                    t.partitions = partitions.iter().copied().collect();
                    t
                })
                .collect()
        });
        GroupRequest::ConsumerGroupHeartbeat(r)
    }
}

/// A heartbeat response's assignment as a map, `None` when it carried none.
pub(crate) fn assignment_of(response: &ConsumerGroupHeartbeatResponse) -> Option<TopicPartitions> {
    response.assignment.as_ref().map(|a| {
        a.topic_partitions
            .iter()
            .map(|t| {
                (
                    t.topic_id,
                    t.partitions.iter().copied().collect::<BTreeSet<i32>>(),
                )
            })
            .collect()
    })
}

impl Ctx {
    /// Tells the coordinator the broker's topics: (name, partition count).
    pub fn set_topics(&mut self, topics: &[(&str, u32)]) {
        let image = TopicsImage::new(
            topics
                .iter()
                .map(|(name, partitions)| TopicMetadata::new(tid(name), *name, *partitions)),
        );
        let out = self.c.set_topics(self.clocks(), image);
        assert!(out.responses.is_empty());
        self.absorb_records(out);
    }

    /// Sends a heartbeat and returns its response.
    pub fn hb(&mut self, hb: &Hb) -> ConsumerGroupHeartbeatResponse {
        let id = self.send(hb.version, hb.request());
        match self.responses.get(&id) {
            Some(GroupResponse::ConsumerGroupHeartbeat(r)) => r.clone(),
            other => panic!("expected a ConsumerGroupHeartbeat response, got {other:?}"),
        }
    }

    /// Sends a heartbeat that must succeed; returns its response.
    pub fn hb_ok(&mut self, hb: &Hb) -> ConsumerGroupHeartbeatResponse {
        let r = self.hb(hb);
        assert_eq!(r.error_code, 0, "{hb:?} failed: {:?}", r.error_message);
        r
    }

    /// ConsumerGroupDescribe at v1 for `groups`.
    pub fn cg_describe(&mut self, groups: &[&str]) -> ConsumerGroupDescribeResponse {
        let mut r = ConsumerGroupDescribeRequest::default();
        r.group_ids = groups.iter().map(|g| sb(g).into()).collect();
        let id = self.send(1, GroupRequest::ConsumerGroupDescribe(r));
        match self.responses.get(&id) {
            Some(GroupResponse::ConsumerGroupDescribe(r)) => r.clone(),
            other => panic!("expected a ConsumerGroupDescribe response, got {other:?}"),
        }
    }

    /// The consumer group `G` as the coordinator holds it.
    pub fn cg(&self) -> &ConsumerGroup {
        self.cg_of(G)
    }

    pub fn cg_of(&self, group: &str) -> &ConsumerGroup {
        self.c
            .consumer_group(group)
            .unwrap_or_else(|| panic!("{group} is not a consumer group"))
    }
}

/// A simulated consumer-protocol client: it remembers its member id, epoch and what it owns,
/// releases revoked partitions at once (or not, when `stubborn`), and sends what a real client
/// sends.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub member: String,
    pub epoch: i32,
    pub owned: TopicPartitions,
    pub topics: Vec<String>,
    pub instance: Option<String>,
    /// Keeps reporting revoked partitions instead of releasing them.
    pub stubborn: bool,
    /// Its group (`G` unless set).
    pub group: String,
}

impl Client {
    pub fn new(member: &str, topics: &[&str]) -> Client {
        Client {
            member: member.to_string(),
            epoch: 0,
            owned: TopicPartitions::new(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            instance: None,
            stubborn: false,
            group: G.to_string(),
        }
    }

    /// The same client in `group`.
    pub fn group(mut self, group: &str) -> Client {
        self.group = group.to_string();
        self
    }

    /// The next heartbeat this client sends: a join at epoch 0, else a plain heartbeat.
    pub fn next_heartbeat(&self) -> Hb {
        let hb = if self.epoch == 0 {
            let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
            Hb::join(&self.member, &topics)
        } else {
            Hb::beat(&self.member, self.epoch, &self.owned)
        }
        .group(&self.group);
        match &self.instance {
            Some(instance) => hb.instance(instance),
            None => hb,
        }
    }

    /// Takes in a response: a new epoch, and the new assignment if one came (a stubborn client
    /// keeps what it would have had to give up).
    pub fn absorb(&mut self, response: &ConsumerGroupHeartbeatResponse) {
        if response.error_code != 0 {
            // Fenced or unknown: start over without partitions.
            self.epoch = 0;
            self.owned.clear();
            return;
        }
        self.epoch = response.member_epoch;
        if let Some(assignment) = assignment_of(response) {
            if self.stubborn {
                for (topic, parts) in assignment {
                    self.owned.entry(topic).or_default().extend(parts);
                }
            } else {
                self.owned = assignment;
            }
        }
    }
}

impl Ctx {
    /// One heartbeat round trip of a simulated client.
    pub fn step(&mut self, client: &mut Client) -> ConsumerGroupHeartbeatResponse {
        let response = self.hb(&client.next_heartbeat());
        client.absorb(&response);
        response
    }

    /// `m1` alone on `orders`, then `m2` joins: `m1` (stubborn: it never releases a
    /// partition) is asked to give one up. Returns (m1, m2).
    pub fn stubborn_member_asked_to_revoke(&mut self) -> (Client, Client) {
        let mut m1 = Client::new("m1", &["orders"]);
        m1.stubborn = true;
        self.step(&mut m1);
        let mut m2 = Client::new("m2", &["orders"]);
        self.step(&mut m2);
        self.step(&mut m1);
        (m1, m2)
    }

    /// Every client heartbeats once every `interval_ms`, `rounds` times.
    pub fn heartbeat_every(
        &mut self,
        interval_ms: i64,
        rounds: usize,
        clients: &mut [&mut Client],
    ) {
        for _ in 0..rounds {
            self.sleep(interval_ms);
            for client in clients.iter_mut() {
                self.step(client);
            }
        }
    }

    /// Heartbeats every client until a full round changes nothing (at most `rounds`).
    pub fn settle(&mut self, clients: &mut [Client], rounds: usize) {
        self.settle_group(G, clients, rounds)
    }

    /// [`Ctx::settle`] for clients of `group`.
    pub fn settle_group(&mut self, group: &str, clients: &mut [Client], rounds: usize) {
        for _ in 0..rounds {
            let before: Vec<(i32, TopicPartitions)> =
                clients.iter().map(|c| (c.epoch, c.owned.clone())).collect();
            for client in clients.iter_mut() {
                self.step(client);
            }
            let after: Vec<(i32, TopicPartitions)> =
                clients.iter().map(|c| (c.epoch, c.owned.clone())).collect();
            if before == after && self.cg_of(group).state() == crate::ConsumerGroupState::Stable {
                return;
            }
        }
    }
}

impl Ctx {
    /// A classic group `group` with one member, Stable at generation 1.
    pub fn single_member_group_in(&mut self, group: &str) -> String {
        let (member, _) = self.join_new(super::Join::new("").group(group));
        self.tick();
        self.sync(
            &super::Sync::new(&member, 1)
                .group(group)
                .assign(&member, b"a"),
        );
        member
    }

    pub fn delete_groups_response(
        &self,
        id: crate::RequestId,
    ) -> &kafka_protocol::messages::DeleteGroupsResponse {
        match self.responses.get(&id) {
            Some(GroupResponse::DeleteGroups(r)) => r,
            other => panic!("expected a DeleteGroups response, got {other:?}"),
        }
    }

    /// What a restart would load: every record emitted so far, latest per key (deletions
    /// drop the key), replayed in key order (as the store returns them) into a new
    /// coordinator; then `group`'s consumer part.
    pub fn replayed_consumer_group(&self, group: &str) -> ConsumerGroup {
        self.replayed()
            .c
            .consumer_group(group)
            .cloned()
            .unwrap_or_else(|| panic!("{group} was not replayed as a consumer group"))
    }

    /// What a restart would load, as a new context at the same time: every record emitted so
    /// far, latest per key (deletions drop the key), replayed in key order (as the store
    /// returns them) into a new coordinator.
    pub fn replayed(&self) -> Ctx {
        let mut ctx = Ctx::around(self.restarted(), self.now);
        ctx.wall_offset = self.wall_offset;
        ctx
    }
}

/// Who holds each partition (assigned or pending revocation) in `group`; panics if two
/// members hold one.
pub(crate) fn holders_of(group: &ConsumerGroup) -> BTreeMap<(Uuid, i32), String> {
    let mut held = BTreeMap::new();
    for (id, member) in &group.members {
        let a = &member.assignment;
        for (topic, parts) in a.assigned.iter().chain(a.pending_revocation.iter()) {
            for p in parts {
                if let Some(other) = held.insert((*topic, *p), id.clone()) {
                    panic!("{topic}/{p} held by {other} and {id}");
                }
            }
        }
    }
    held
}
