//! Property tests for mixed groups: a Stable classic group of cooperative (or of eager) classic
//! consumers is upgraded by a consumer-protocol member, then random sequences of classic
//! polls (heartbeat, rejoin and sync when told), consumer-protocol heartbeats, leaves (classic
//! LeaveGroup or epoch −1), crashes and time passing run against it. After every step:
//!
//! * no partition is held by two members, and an honest client (classic or not) owns only what
//!   the coordinator says its member holds — so no two live clients consume a partition at
//!   once;
//! * a restart (replaying the records so far, latest per key in key order) rebuilds the same
//!   groups, classic or consumer.
//!
//! The policy is `upgrade`, and consumer-protocol member `c0` stays throughout, so the group
//! remains a consumer group (the downgrade has its own tests). At the end the live
//! clients poll until the group settles: every partition is then owned by exactly one client.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use uuid::Uuid;

use super::classic_support::ClassicClient;
use super::consumer_support::{holders_of, tid, Client, Hb};
use super::*;
use crate::consumer::TopicPartitions;
use crate::MigrationPolicy;

const CLASSIC: usize = 3;
const CONSUMERS: usize = 2;
const PARTITIONS: i32 = 6;

#[derive(Debug, Clone)]
enum Op {
    /// A classic client heartbeats (and rejoins and syncs when told, or when it is out).
    Poll(usize),
    /// A consumer-protocol client heartbeats (joining first if it is not in).
    Beat(usize),
    /// A classic client sends LeaveGroup.
    LeaveClassic(usize),
    /// A consumer-protocol client leaves (epoch −1).
    LeaveConsumer(usize),
    /// A classic client's process is replaced without a word.
    CrashClassic(usize),
    Sleep(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..CLASSIC).prop_map(Op::Poll),
        6 => (0..CONSUMERS).prop_map(Op::Beat),
        1 => (0..CLASSIC).prop_map(Op::LeaveClassic),
        1 => (0..CONSUMERS).prop_map(Op::LeaveConsumer),
        1 => (0..CLASSIC).prop_map(Op::CrashClassic),
        2 => prop_oneof![Just(100i64), Just(3_000), Just(12_000)].prop_map(Op::Sleep),
    ]
}

struct Sim {
    ctx: Ctx,
    classic: Vec<ClassicClient>,
    consumers: Vec<Client>,
}

impl Sim {
    fn new(cooperative: bool) -> Sim {
        let mut ctx = Ctx::with_config(GroupConfig {
            initial_rebalance_delay_ms: 0,
            consumer_migration_policy: MigrationPolicy::Upgrade,
            ..GroupConfig::default()
        });
        ctx.set_topics(&[("orders", PARTITIONS as u32)]);
        let classic = ctx.stable_classic_group(CLASSIC, "orders", PARTITIONS, cooperative);
        let mut consumers: Vec<Client> = (0..CONSUMERS)
            .map(|i| Client::new(&format!("c{i}"), &["orders"]))
            .collect();
        let r = ctx.step(&mut consumers[0]);
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        Sim {
            ctx,
            classic,
            consumers,
        }
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Poll(i) => {
                let mut client = self.classic[*i].clone();
                self.ctx.classic_poll(&mut client);
                self.classic[*i] = client;
            }
            Op::Beat(i) => {
                let mut client = self.consumers[*i].clone();
                self.ctx.step(&mut client);
                self.consumers[*i] = client;
            }
            Op::LeaveClassic(i) => {
                let client = &mut self.classic[*i];
                if !client.member.is_empty() {
                    let request = leave_request(G, &[(client.member.as_str(), None)], 3);
                    self.ctx.send(3, request);
                    *client = fresh(client);
                }
            }
            Op::LeaveConsumer(i) => {
                let client = &mut self.consumers[*i];
                // `c0` stays (see `Op::Sleep`).
                if *i > 0 && client.epoch > 0 {
                    self.ctx.hb(&Hb::leave(&client.member, -1));
                    client.epoch = 0;
                    client.owned.clear();
                }
            }
            Op::CrashClassic(i) => {
                let client = &mut self.classic[*i];
                *client = fresh(client);
            }
            Op::Sleep(ms) => {
                self.ctx.sleep(*ms);
                // `c0` keeps heartbeating whatever else happens, so the group always has a
                // consumer-protocol member: an empty consumer group would turn classic at the
                // next classic JoinGroup, which this simulation does not play.
                let mut c0 = self.consumers[0].clone();
                self.ctx.step(&mut c0);
                self.consumers[0] = c0;
            }
        }
    }

    fn check(&self) {
        self.ctx.assert_restart_rebuilds_the_groups();
        let group = self.ctx.cg();
        let held = holders_of(group);
        for (member_id, owned) in self.views() {
            let Some(member) = group.members.get(&member_id) else {
                continue;
            };
            for (topic, parts) in &owned {
                for p in parts {
                    assert_eq!(
                        held.get(&(*topic, *p)),
                        Some(&member_id),
                        "{member_id} owns {topic}/{p} the coordinator gave it no longer: {member:?}"
                    );
                }
            }
        }
    }

    fn settle(&mut self) {
        let mut classic = std::mem::take(&mut self.classic);
        let mut consumers = std::mem::take(&mut self.consumers);
        // Poll through a session timeout, so members whose clients crashed are fenced.
        for _ in 0..6 {
            self.ctx.sleep(3_000);
            self.ctx.settle_mixed(&mut classic, &mut consumers, 1);
        }
        self.ctx.settle_mixed(&mut classic, &mut consumers, 40);
        self.classic = classic;
        self.consumers = consumers;
    }

    fn check_settled(&self) {
        let mut owners: BTreeMap<(Uuid, i32), String> = BTreeMap::new();
        for (member, owned) in self.views() {
            for (topic, parts) in owned {
                for p in parts {
                    assert!(
                        owners.insert((topic, p), member.clone()).is_none(),
                        "{topic}/{p} owned twice"
                    );
                }
            }
        }
        let all: BTreeSet<(Uuid, i32)> = (0..PARTITIONS).map(|p| (tid("orders"), p)).collect();
        let owned: BTreeSet<(Uuid, i32)> = owners.keys().copied().collect();
        assert_eq!(
            owned,
            all,
            "classic {:?} consumers {:?} group {:?}",
            self.classic,
            self.consumers,
            self.ctx.cg()
        );
    }

    /// What each client (classic and consumer-protocol) thinks it owns, by its member id.
    fn views(&self) -> impl Iterator<Item = (String, TopicPartitions)> + '_ {
        let classic = self
            .classic
            .iter()
            .map(|c| (c.member.clone(), c.owned_ids()));
        let consumers = self
            .consumers
            .iter()
            .map(|c| (c.member.clone(), c.owned.clone()));
        classic.chain(consumers)
    }
}

/// A new process of the same classic client: no member id, nothing owned.
fn fresh(client: &ClassicClient) -> ClassicClient {
    let mut next = ClassicClient::new(&["orders"], client.cooperative);
    next.instance = client.instance.clone();
    next
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn mixed_groups_hold_their_invariants_under_random_operations(
        cooperative in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..50),
    ) {
        let mut sim = Sim::new(cooperative);
        sim.check();
        for op in &ops {
            sim.run(op);
            sim.check();
        }
        sim.settle();
        sim.check();
        sim.check_settled();
    }
}
