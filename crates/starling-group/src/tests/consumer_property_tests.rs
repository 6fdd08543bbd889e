//! Property tests for KIP-848 consumer groups: random sequences of joins, heartbeats, leaves
//! (for good and static), crashes, stubborn members that do not revoke, subscription changes,
//! topic creation and partition growth, with time passing. After every step:
//!
//! * no partition is held by two members (each member's assigned ∪ pending-revocation sets
//!   are disjoint), and an honest client owns only what the coordinator says it holds — so no
//!   two honest clients consume a partition at once;
//! * the group epoch never decreases, and a member's epoch never decreases while it stays in
//!   the group (a rejoin starts it again at 0, a static leave parks it at −2);
//! * replaying the records emitted so far, latest per key in key order, rebuilds the same
//!   durable state.
//!
//! At the end the live clients heartbeat honestly until the group settles: then every
//! partition of every subscribed topic is owned by exactly one client subscribed to it.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use uuid::Uuid;

use super::consumer_support::{holders_of, Client, Hb};
use super::consumer_tests::assert_same_group;
use super::*;
use crate::consumer::TopicPartitions;

const CLIENTS: usize = 5;
const TOPICS: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    /// The client heartbeats (joining first if it is not in).
    Beat(usize),
    /// The client leaves the group (epoch −1; −2 for a static client).
    Leave(usize),
    /// The client stops without a word; a new incarnation may join later.
    Crash(usize),
    /// The client stops releasing partitions (or starts again).
    ToggleStubborn(usize),
    /// The client subscribes to these topics (indexes into TOPICS).
    Subscribe(usize, Vec<usize>),
    /// A topic gets (more) partitions; 0 deletes it.
    Topic(usize, u32),
    Sleep(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..CLIENTS).prop_map(Op::Beat),
        1 => (0..CLIENTS).prop_map(Op::Leave),
        1 => (0..CLIENTS).prop_map(Op::Crash),
        1 => (0..CLIENTS).prop_map(Op::ToggleStubborn),
        1 => ((0..CLIENTS), proptest::collection::vec(0..TOPICS.len(), 0..3)).prop_map(|(c, t)| Op::Subscribe(c, t)),
        1 => ((0..TOPICS.len()), (0u32..6)).prop_map(|(t, n)| Op::Topic(t, n)),
        2 => prop_oneof![Just(100i64), Just(5_000), Just(20_000), Just(50_000)].prop_map(Op::Sleep),
    ]
}

struct Sim {
    ctx: Ctx,
    clients: Vec<Client>,
    /// Incarnation counters, so a crashed client comes back under a new member id.
    incarnations: Vec<u32>,
    topics: BTreeMap<String, u32>,
    group_epoch: i32,
    member_epochs: BTreeMap<String, i32>,
}

impl Sim {
    fn new() -> Sim {
        let mut ctx = Ctx::new();
        let topics: BTreeMap<String, u32> = [("a".to_string(), 3), ("b".to_string(), 2)].into();
        let image: Vec<(&str, u32)> = topics.iter().map(|(n, p)| (n.as_str(), *p)).collect();
        ctx.set_topics(&image);
        let clients = (0..CLIENTS)
            .map(|i| {
                let mut c = Client::new(&format!("c{i}-0"), &["a"]);
                if i % 2 == 1 {
                    c.instance = Some(format!("static-{i}"));
                }
                c
            })
            .collect();
        Sim {
            ctx,
            clients,
            incarnations: vec![0; CLIENTS],
            topics,
            group_epoch: 0,
            member_epochs: BTreeMap::new(),
        }
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Beat(i) => {
                let mut client = self.clients[*i].clone();
                self.ctx.step(&mut client);
                self.clients[*i] = client;
            }
            Op::Leave(i) => {
                let client = &self.clients[*i];
                if client.epoch > 0 {
                    let epoch = if client.instance.is_some() { -2 } else { -1 };
                    let mut hb = Hb::leave(&client.member, epoch);
                    hb.instance = client.instance.clone();
                    let r = self.ctx.hb(&hb);
                    let client = &mut self.clients[*i];
                    client.owned.clear();
                    if r.error_code == 0 && epoch == -2 {
                        // It comes back as a new incarnation of the same instance.
                        self.reincarnate(*i);
                    } else {
                        client.epoch = 0;
                    }
                }
            }
            Op::Crash(i) => self.reincarnate(*i),
            Op::ToggleStubborn(i) => {
                let c = &mut self.clients[*i];
                c.stubborn = !c.stubborn;
            }
            Op::Subscribe(i, topics) => {
                let names: BTreeSet<String> =
                    topics.iter().map(|t| TOPICS[*t].to_string()).collect();
                let client = &mut self.clients[*i];
                client.topics = names.into_iter().collect();
                if client.epoch > 0 {
                    let topics: Vec<&str> = client.topics.iter().map(String::as_str).collect();
                    let mut hb =
                        Hb::beat(&client.member, client.epoch, &client.owned).topics(&topics);
                    hb.instance = client.instance.clone();
                    let r = self.ctx.hb(&hb);
                    self.clients[*i].absorb(&r);
                }
            }
            Op::Topic(t, n) => {
                let name = TOPICS[*t].to_string();
                let current = self.topics.get(&name).copied().unwrap_or(0);
                if *n == 0 {
                    self.topics.remove(&name);
                } else {
                    // Partition counts only grow (Kafka cannot shrink a topic).
                    self.topics.insert(name, (*n).max(current));
                }
                let image: Vec<(&str, u32)> =
                    self.topics.iter().map(|(n, p)| (n.as_str(), *p)).collect();
                self.ctx.set_topics(&image);
            }
            Op::Sleep(ms) => {
                self.ctx.sleep(*ms);
            }
        }
    }

    /// The client's process is replaced: a new member id, nothing owned.
    fn reincarnate(&mut self, i: usize) {
        self.incarnations[i] += 1;
        let old = &self.clients[i];
        let mut fresh = Client::new(&format!("c{i}-{}", self.incarnations[i]), &[]);
        fresh.topics = old.topics.clone();
        fresh.instance = old.instance.clone();
        self.clients[i] = fresh;
    }

    fn check(&mut self) {
        let Some(group) = self.ctx.c.consumer_group(G) else {
            return;
        };
        // The group epoch never decreases.
        assert!(group.epoch >= self.group_epoch, "group epoch went back");
        self.group_epoch = group.epoch;
        // Holdings are disjoint.
        holders_of(group);
        for (id, member) in &group.members {
            assert_eq!(
                group.holders.iter().filter(|(_, h)| *h == id).count(),
                member.assignment.held().count(),
                "the holder index of {id} is off"
            );
        }
        // Member epochs never decrease while the member stays (0 and −2 aside).
        let mut epochs = BTreeMap::new();
        for (id, member) in &group.members {
            let epoch = member.assignment.member_epoch;
            if let Some(before) = self.member_epochs.get(id) {
                if epoch > 0 && *before > 0 {
                    assert!(epoch >= *before, "{id}: epoch {before} -> {epoch}");
                }
            }
            epochs.insert(id.clone(), epoch);
        }
        self.member_epochs = epochs;
        // An honest client owns only what the coordinator says its member holds.
        for client in &self.clients {
            if client.stubborn || client.epoch <= 0 {
                continue;
            }
            let Some(member) = group.members.get(&client.member) else {
                continue;
            };
            let a = &member.assignment;
            for (topic, parts) in &client.owned {
                for p in parts {
                    let holds = a.assigned.get(topic).is_some_and(|s| s.contains(p))
                        || a.pending_revocation
                            .get(topic)
                            .is_some_and(|s| s.contains(p));
                    assert!(
                        holds,
                        "{} owns {topic}/{p} the coordinator gave it no longer",
                        client.member
                    );
                }
            }
        }
        // Each held partition was assigned at or before the member's epoch, and only held
        // partitions have an assignment epoch.
        for (id, member) in &group.members {
            let a = &member.assignment;
            for (topic, epochs) in &a.assigned_at {
                for (p, at) in epochs {
                    assert!(
                        a.assignment_epoch(*topic, *p).is_some(),
                        "{id}: {topic}/{p}"
                    );
                    if a.member_epoch >= 0 {
                        assert!(*at <= a.member_epoch, "{id}: {topic}/{p} at {at}");
                    }
                }
            }
        }
        // Replay rebuilds the same state.
        let replayed = self.ctx.replayed_consumer_group(G);
        assert_same_group(group, &replayed);
        // An honest client's commit of what it owns, at the epoch it knows (maybe behind the
        // member's), is accepted (KIP-1251).
        let commits: Vec<Commit> = self
            .clients
            .iter()
            .filter(|c| !c.stubborn && c.epoch > 0 && !c.owned.is_empty())
            .filter(|c| group.members.contains_key(&c.member))
            .map(|c| {
                let mut commit = Commit::member(&c.member, c.epoch).version(9);
                for (topic, parts) in &c.owned {
                    // (A deleted topic's partitions are nobody's to commit.)
                    let Some(name) = self.ctx.c.topics.get(topic).map(|t| t.name.clone()) else {
                        continue;
                    };
                    for p in parts {
                        commit = commit.offset(&name, *p, 1);
                    }
                }
                commit
            })
            .collect();
        for commit in commits {
            let id = self.ctx.commit(&commit);
            let errors = self.ctx.commit_errors(id);
            assert!(
                errors.iter().all(|e| *e == 0),
                "{}: {errors:?}",
                commit.member
            );
        }
    }

    /// Every client turns honest and heartbeats until the group settles.
    fn settle(&mut self) {
        for client in &mut self.clients {
            client.stubborn = false;
        }
        // Stubborn members may still hold partitions; their rebalance timeout fences them if
        // they never report, but honest heartbeats report the release at once.
        let mut clients = std::mem::take(&mut self.clients);
        // Heartbeat through a session timeout, so members whose clients crashed are fenced.
        for _ in 0..12 {
            self.ctx.sleep(5_000);
            for client in clients.iter_mut() {
                self.ctx.step(client);
            }
        }
        self.ctx.settle(&mut clients, 30);
        self.clients = clients;
    }

    fn check_settled(&self) {
        let group = self.ctx.cg();
        assert_eq!(
            group.state(),
            crate::ConsumerGroupState::Stable,
            "{group:?}"
        );
        let mut owners: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
        for client in &self.clients {
            for (topic, parts) in &client.owned {
                let name = self
                    .ctx
                    .c
                    .topics
                    .get(topic)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                assert!(
                    client.topics.contains(&name),
                    "{} owns {name} it does not subscribe to",
                    client.member
                );
                for p in parts {
                    assert!(
                        owners.insert((*topic, *p), &client.member).is_none(),
                        "{topic}/{p} owned twice"
                    );
                }
            }
        }
        let subscribed: BTreeSet<&String> =
            self.clients.iter().flat_map(|c| c.topics.iter()).collect();
        for (name, count) in &self.topics {
            if !subscribed.contains(name) {
                continue;
            }
            let id = super::consumer_support::tid(name);
            for p in 0..*count as i32 {
                assert!(
                    owners.contains_key(&(id, p)),
                    "{name}/{p} is owned by nobody: {:?}",
                    self.clients
                );
            }
        }
        let _: Option<&TopicPartitions> = None;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn consumer_groups_hold_their_invariants_under_random_operations(ops in proptest::collection::vec(op(), 1..60)) {
        let mut sim = Sim::new();
        for op in &ops {
            sim.run(op);
            sim.check();
        }
        sim.settle();
        sim.check();
        sim.check_settled();
    }
}
