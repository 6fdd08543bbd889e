//! Test support for classic members next to consumer-protocol members: a simulated classic
//! consumer ([`ClassicClient`]) that joins, syncs and heartbeats as a real one does (eager or
//! cooperative), a stable classic group whose assignments are real `ConsumerProtocolAssignment`s,
//! and a check that a restart (replaying the stored records) rebuilds the same groups.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Encodable;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::consumer_support::tid;
use super::consumer_tests::assert_same_group;
use super::{code, durable, sb, Ctx, Join, Sync, G};
use crate::consumer::TopicPartitions;
use crate::{GroupRequest, Record};
use starling_protocol::consumer_protocol::{decode_assignment, encode_assignment};

/// A subscription (v1: with owned partitions) as a classic consumer sends it in JoinGroup.
pub(crate) fn classic_subscription(topics: &[&str], owned: &BTreeSet<(String, i32)>) -> Bytes {
    let mut s = ConsumerProtocolSubscription::default();
    s.topics = topics.iter().map(|t| sb(t)).collect();
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in owned {
        by_topic.entry(topic).or_default().push(*partition);
    }
    s.owned_partitions = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let mut o = OwnedTopic::default();
            o.topic = sb(topic).into();
            o.partitions = partitions;
            o
        })
        .collect();
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    s.encode(&mut buf, 1).unwrap();
    buf.freeze()
}

/// A simulated classic consumer.
#[derive(Debug, Clone)]
pub(crate) struct ClassicClient {
    pub member: String,
    pub instance: Option<String>,
    pub generation: i32,
    pub owned: BTreeSet<(String, i32)>,
    pub topics: Vec<String>,
    /// Cooperative (KIP-429) keeps what it owns across a rejoin; eager gives everything up
    /// before rejoining.
    pub cooperative: bool,
    /// It revoked partitions after a SyncGroup and must rejoin.
    pub needs_rejoin: bool,
    pub session: i32,
    pub rebalance: i32,
}

impl ClassicClient {
    pub fn new(topics: &[&str], cooperative: bool) -> ClassicClient {
        ClassicClient {
            member: String::new(),
            instance: None,
            generation: -1,
            owned: BTreeSet::new(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            cooperative,
            needs_rejoin: false,
            session: super::SESSION,
            rebalance: super::REBALANCE,
        }
    }

    pub fn protocol(&self) -> &'static str {
        if self.cooperative {
            "cooperative-sticky"
        } else {
            "range"
        }
    }

    /// The JoinGroup this client sends now.
    pub fn join_request(&self) -> Join {
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        let mut join = Join::new(&self.member)
            .session(self.session)
            .rebalance(self.rebalance)
            .protocols(&[(self.protocol(), classic_subscription(&topics, &self.owned))]);
        if let Some(instance) = &self.instance {
            join = join.instance(instance);
        }
        join
    }

    /// What it owns, by topic id.
    pub fn owned_ids(&self) -> TopicPartitions {
        let mut out = TopicPartitions::new();
        for (topic, partition) in &self.owned {
            out.entry(tid(topic)).or_default().insert(*partition);
        }
        out
    }

    /// Starts over, as after UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION: its partitions are lost.
    fn reset(&mut self, forget_member: bool) {
        self.owned.clear();
        self.generation = -1;
        if forget_member {
            self.member.clear();
        }
    }
}

/// The partitions in an assignment as a client reads it.
pub(crate) fn read_assignment(bytes: &[u8]) -> BTreeSet<(String, i32)> {
    decode_assignment(bytes)
        .expect("a ConsumerProtocolAssignment")
        .partitions
        .into_iter()
        .collect()
}

impl Ctx {
    /// The client (re)joins a consumer-protocol group (answered at once); returns the error
    /// code.
    pub fn classic_join(&mut self, client: &mut ClassicClient) -> i16 {
        if !client.cooperative {
            // Eager: everything is revoked before rejoining.
            client.owned.clear();
        }
        for _ in 0..2 {
            let join = client.join_request();
            let id = self.join(&join);
            let r = self.join_response(id).clone();
            if r.error_code == code(ResponseError::MemberIdRequired) {
                client.member = r.member_id.to_string();
                continue;
            }
            if r.error_code != 0 {
                if r.error_code == code(ResponseError::UnknownMemberId) {
                    client.reset(true);
                }
                return r.error_code;
            }
            assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
            assert_eq!(r.protocol_name.as_deref(), Some(client.protocol()));
            client.member = r.member_id.to_string();
            client.generation = r.generation_id;
            client.needs_rejoin = false;
            return 0;
        }
        panic!("MEMBER_ID_REQUIRED twice")
    }

    /// The client syncs: it takes its assignment, revoking what is no longer in it (a
    /// cooperative client then wants to rejoin); returns the error code.
    pub fn classic_sync(&mut self, client: &mut ClassicClient) -> i16 {
        let mut sync = Sync::new(&client.member, client.generation)
            .protocol("consumer", client.protocol())
            .version(5);
        if let Some(instance) = &client.instance {
            sync = sync.instance(instance);
        }
        let id = self.sync(&sync);
        let r = self.sync_response(id).clone();
        if r.error_code != 0 {
            client.needs_rejoin = true;
            return r.error_code;
        }
        let assigned = read_assignment(&r.assignment);
        let revoked = client.owned.difference(&assigned).count();
        client.owned = assigned;
        if client.cooperative && revoked > 0 {
            client.needs_rejoin = true;
        }
        0
    }

    /// A classic heartbeat of the client; returns the error code.
    pub fn classic_heartbeat(&mut self, client: &ClassicClient) -> i16 {
        let id = self.send(
            4,
            super::heartbeat_request(
                G,
                &client.member,
                client.generation,
                client.instance.as_deref(),
            ),
        );
        self.heartbeat_error(id)
    }

    /// One round of a classic client in a consumer-protocol group: it heartbeats, and rejoins
    /// and syncs when told to (or when it revoked partitions); returns the heartbeat's error.
    pub fn classic_poll(&mut self, client: &mut ClassicClient) -> i16 {
        let error = if client.member.is_empty() {
            code(ResponseError::UnknownMemberId)
        } else {
            self.classic_heartbeat(client)
        };
        if error == code(ResponseError::IllegalGeneration) {
            client.reset(false);
        } else if error == code(ResponseError::UnknownMemberId)
            || error == code(ResponseError::FencedInstanceId)
        {
            client.reset(true);
        }
        if (error != 0 || client.needs_rejoin) && self.classic_join(client) == 0 {
            self.classic_sync(client);
        }
        error
    }

    /// Every classic and consumer client polls until a round changes nothing and the consumer
    /// group is Stable (at most `rounds`), checking after every request that no partition is
    /// owned by two clients.
    pub fn settle_mixed(
        &mut self,
        classic: &mut [ClassicClient],
        consumers: &mut [super::consumer_support::Client],
        rounds: usize,
    ) {
        for _ in 0..rounds {
            let before = (
                classic
                    .iter()
                    .map(|c| (c.generation, c.owned.clone()))
                    .collect::<Vec<_>>(),
                consumers
                    .iter()
                    .map(|c| (c.epoch, c.owned.clone()))
                    .collect::<Vec<_>>(),
            );
            for i in 0..classic.len() {
                self.classic_poll(&mut classic[i]);
                assert_owned_once(self.live_view(classic, consumers));
            }
            for i in 0..consumers.len() {
                self.step(&mut consumers[i]);
                assert_owned_once(self.live_view(classic, consumers));
            }
            let after = (
                classic
                    .iter()
                    .map(|c| (c.generation, c.owned.clone()))
                    .collect::<Vec<_>>(),
                consumers
                    .iter()
                    .map(|c| (c.epoch, c.owned.clone()))
                    .collect::<Vec<_>>(),
            );
            let stable = self
                .c
                .consumer_group(G)
                .is_none_or(|g| g.state() == crate::ConsumerGroupState::Stable);
            if before == after && stable {
                return;
            }
        }
    }

    /// `n` cooperative (or eager) classic clients form a Stable classic group of generation 1
    /// on `topic`; partition `p` goes to client `p % n`.
    pub fn stable_classic_group(
        &mut self,
        n: usize,
        topic: &str,
        partitions: i32,
        cooperative: bool,
    ) -> Vec<ClassicClient> {
        let mut clients: Vec<ClassicClient> = (0..n)
            .map(|_| ClassicClient::new(&[topic], cooperative))
            .collect();
        let mut held = Vec::new();
        for client in &mut clients {
            let (member, id) = self.join_new(client.join_request());
            client.member = member;
            held.push(id);
        }
        self.tick();
        let generation = self.join_response(held[0]).generation_id;
        let leader = self.join_response(held[0]).leader.to_string();
        assert_eq!(leader, clients[0].member);
        let mut sync = Sync::new(&leader, generation);
        for (i, client) in clients.iter().enumerate() {
            let mine: Vec<i32> = (0..partitions).filter(|p| *p as usize % n == i).collect();
            sync = sync.assign(
                &client.member,
                &encode_assignment(1, &[(topic.into(), mine)]),
            );
        }
        let mut ids = Vec::new();
        for client in clients.iter().skip(1) {
            ids.push(self.sync(&Sync::new(&client.member, generation)));
        }
        ids.insert(0, self.sync(&sync));
        for (client, id) in clients.iter_mut().zip(ids) {
            let r = self.sync_response(id);
            assert_eq!(r.error_code, 0);
            client.owned = read_assignment(&r.assignment);
            client.generation = generation;
        }
        clients
    }

    /// What a restart would load: every record so far, latest per key, replayed in key order.
    pub fn restarted(&self) -> crate::GroupCoordinator {
        let mut latest: BTreeMap<String, Record> = BTreeMap::new();
        for record in &self.records {
            if record.is_deletion() {
                latest.remove(&record.key());
            } else {
                latest.insert(record.key(), record.clone());
            }
        }
        let mut c = crate::GroupCoordinator::new(self.c.config.clone());
        for record in latest.values() {
            c.replay(record);
        }
        c.loaded(self.clocks());
        c
    }

    /// A restart rebuilds what the coordinator holds: the same kind of group, the same
    /// classic record and offsets, the same consumer group.
    pub fn assert_restart_rebuilds_the_groups(&self) {
        let again = self.restarted();
        assert_eq!(durable(&again), durable(&self.c));
        for (id, group) in &self.c.groups {
            let replayed = &again.groups[id];
            assert_eq!(
                group.consumer.is_some(),
                replayed.consumer.is_some(),
                "{id}"
            );
            if let (Some(live), Some(back)) = (&group.consumer, &replayed.consumer) {
                assert_same_group(live, back);
            }
        }
    }
}

impl Ctx {
    /// The partitions of every client whose member is still in the group, by topic id. (A
    /// client whose session ran out while it was paused still thinks it owns its partitions
    /// until it is next heard from: the zombie every group protocol lives with.)
    pub fn live_view(
        &self,
        classic: &[ClassicClient],
        consumers: &[super::consumer_support::Client],
    ) -> Vec<(String, TopicPartitions)> {
        let live = |member: &str| match self.c.consumer_group(G) {
            Some(group) => group.members.contains_key(member),
            None => self
                .c
                .groups
                .get(G)
                .is_some_and(|g| g.members.contains_key(member)),
        };
        classic
            .iter()
            .map(|c| (c.member.clone(), c.owned_ids()))
            .chain(
                consumers
                    .iter()
                    .map(|c| (c.member.clone(), c.owned.clone())),
            )
            .filter(|(member, _)| live(member))
            .collect()
    }
}

/// No partition is owned by two clients.
pub(crate) fn assert_owned_once(view: Vec<(String, TopicPartitions)>) {
    let mut owners: BTreeMap<(Uuid, i32), String> = BTreeMap::new();
    for (client, owned) in view {
        for (topic, partitions) in owned {
            for p in partitions {
                if let Some(other) = owners.insert((topic, p), client.clone()) {
                    panic!("{topic}/{p} is owned by {other} and {client} at once");
                }
            }
        }
    }
}

/// A GroupRequest for the leave of classic members by (member id, instance id), at v3+.
pub(crate) fn classic_leave(members: &[(&str, Option<&str>)]) -> GroupRequest {
    super::leave_request(G, members, 5)
}
