//! Property tests: random sequences of joins, syncs, heartbeats, leaves, commits, restarts and
//! time steps from several clients (dynamic and static), each client behaving like a Kafka
//! consumer driven by the responses it got. After every step the invariants below are
//! checked; at the end time runs on until every request has been answered.
//!
//! * every request id is answered exactly once (the harness panics on a second answer);
//! * per group, persisted generations never decrease and step by at most one;
//! * a successful JoinGroup names a generation that was persisted with that member in it;
//! * a SyncGroup assignment is only handed out for the group's current generation, is the
//!   one the leader of that generation computed for that member, and only to a member that
//!   joined that generation;
//! * a commit from a fenced, stale-generation or unknown member writes no offset;
//! * no member outlives its session unless parked in a barrier; runtime bookkeeping is
//!   consistent (leader, static index, held requests by state);
//! * replaying the records emitted so far into a fresh coordinator gives the same durable
//!   state — at every step, and after restarts;
//! * rebalance history: at most one open record per group, always the last, and open exactly
//!   while the group rebalances; at most `rebalance_history` closed records before it; every
//!   record has `started ≤ join_completed ≤ ended`, is InProgress exactly when it has no end,
//!   and lists each partition of its assignment change at most once (lists sorted); every
//!   record a step hands out is closed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::history::{AssignmentChange, RebalanceOutcome};
use crate::state::GroupState;

const CLIENTS: usize = 4;

/// Closed rebalance records kept per group (small, so that runs reach the bound).
const HISTORY: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    /// What a well-behaved consumer would do next: (re)join when told to, sync after a
    /// join, heartbeat otherwise.
    Act {
        client: usize,
    },
    /// (Re)join; `alt` picks the other subscription; `version` indexes the client's versions.
    Join {
        client: usize,
        alt: bool,
        version: usize,
    },
    /// Sync with the current generation, or the previous one when `stale`.
    Sync {
        client: usize,
        stale: bool,
    },
    Heartbeat {
        client: usize,
    },
    Leave {
        client: usize,
    },
    Commit {
        client: usize,
    },
    SimpleCommit,
    /// The client restarts and forgets its member id.
    Forget {
        client: usize,
    },
    /// The coordinator restarts from its records.
    Restart,
    Sleep {
        ms: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS;
    prop_oneof![
        12 => client.clone().prop_map(|client| Op::Act { client }),
        5 => (client.clone(), any::<bool>(), 0..3usize).prop_map(|(client, alt, version)| Op::Join { client, alt, version }),
        5 => (client.clone(), prop::bool::weighted(0.1)).prop_map(|(client, stale)| Op::Sync { client, stale }),
        6 => client.clone().prop_map(|client| Op::Heartbeat { client }),
        1 => client.clone().prop_map(|client| Op::Leave { client }),
        2 => client.clone().prop_map(|client| Op::Commit { client }),
        1 => Just(Op::SimpleCommit),
        1 => client.prop_map(|client| Op::Forget { client }),
        1 => Just(Op::Restart),
        4 => (0..2_500i64).prop_map(|ms| Op::Sleep { ms }),
        1 => (0..20_000i64).prop_map(|ms| Op::Sleep { ms }),
    ]
}

/// What a simulated consumer knows.
#[derive(Debug, Clone, Default)]
struct Client {
    instance: Option<String>,
    member_id: String,
    generation: i32,
    previous_generation: i32,
    leader: bool,
    /// (member id, instance id) listed in the leader's last JoinGroup response.
    roster: Vec<(String, Option<String>)>,
    alt: bool,
    /// Every member id a static client has had (a replacement keeps the old assignment).
    past_ids: BTreeSet<String>,
    /// The last response said to rejoin (or there is no membership yet).
    must_join: bool,
    /// A JoinGroup succeeded and no SyncGroup did since.
    must_sync: bool,
    version: usize,
    /// A JoinGroup or SyncGroup of this client is waiting for its response.
    in_flight: BTreeSet<RequestId>,
}

#[derive(Debug, Clone)]
enum Sent {
    Join {
        client: usize,
    },
    Sync {
        client: usize,
        member: String,
        generation: i32,
    },
    Heartbeat {
        client: usize,
    },
    Other,
}

struct Sim {
    ctx: Ctx,
    clients: Vec<Client>,
    sent: HashMap<RequestId, Sent>,
    /// (member id, generation) pairs a successful JoinGroup handed out.
    joined: BTreeSet<(String, i32)>,
    /// Requests lost with a coordinator restart (their connections would have closed).
    lost: BTreeSet<RequestId>,
    /// Index in `ctx.records` up to which generations were checked.
    checked_records: usize,
    /// Last persisted generation per group.
    generations: BTreeMap<String, i32>,
    commit_seq: i64,
    /// The longest rebalance history any group had.
    longest_history: usize,
}

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 500,
        offsets_retention_ms: 200_000,
        offsets_retention_check_interval_ms: 30_000,
        rebalance_history: HISTORY,
        ..GroupConfig::default()
    }
}

/// One record's own invariants.
fn check_record(record: &RebalanceRecord) {
    let open = record.outcome == RebalanceOutcome::InProgress;
    assert_eq!(open, record.ended_ms.is_none(), "{record:?}");
    if let Some(joined) = record.join_completed_ms {
        assert!(record.started_ms <= joined, "{record:?}");
    }
    if let Some(ended) = record.ended_ms {
        assert!(record.started_ms <= ended, "{record:?}");
        assert!(
            record
                .join_completed_ms
                .is_none_or(|joined| joined <= ended),
            "{record:?}"
        );
    }
    if matches!(
        record.outcome,
        RebalanceOutcome::Stable | RebalanceOutcome::Empty
    ) {
        assert!(record.join_completed_ms.is_some(), "{record:?}");
    }
    if let Some(change) = &record.assignment {
        assert_eq!(record.outcome, RebalanceOutcome::Stable);
        check_change(change);
    }
}

/// Each (topic, partition) appears in at most one list, and every list is sorted.
fn check_change(change: &AssignmentChange) {
    let owners = |list: &[crate::history::PartitionOwner]| -> Vec<(String, i32)> {
        list.iter()
            .map(|o| (o.topic.clone(), o.partition))
            .collect()
    };
    let moved: Vec<(String, i32)> = change
        .moved
        .iter()
        .map(|m| (m.topic.clone(), m.partition))
        .collect();
    let lists = [
        moved,
        owners(&change.stayed),
        owners(&change.assigned),
        owners(&change.revoked),
    ];
    let mut seen = BTreeSet::new();
    for list in &lists {
        assert!(list.windows(2).all(|w| w[0] < w[1]), "unsorted: {change:?}");
        for key in list {
            assert!(seen.insert(key.clone()), "{key:?} twice in {change:?}");
        }
    }
}

fn metadata(alt: bool) -> Bytes {
    if alt {
        subscription(&["topic", "extra"])
    } else {
        subscription(&["topic"])
    }
}

/// What the leader of `generation` assigns the member it knows as `key`: a real consumer
/// assignment (two of eight partitions, picked by a hash, so members sometimes collide and
/// the rebalance record then has no assignment change), unique per (generation, key) through
/// its user data.
fn assignment(generation: i32, key: &str) -> Bytes {
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::messages::ConsumerProtocolAssignment;
    use kafka_protocol::protocol::Encodable;
    let hash = key.bytes().fold(generation as u32, |h, b| {
        h.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    let first = (hash % 8) as i32;
    let mut topic = TopicPartition::default();
    topic.topic = sb("topic").into();
    topic.partitions = vec![first, (first + 3) % 8];
    let mut value = ConsumerProtocolAssignment::default();
    value.assigned_partitions = vec![topic];
    value.user_data = Some(Bytes::from(format!("g{generation}:{key}")));
    let mut buf = bytes::BytesMut::new();
    buf.extend_from_slice(&3i16.to_be_bytes());
    value.encode(&mut buf, 3).unwrap();
    buf.freeze()
}

impl Sim {
    fn new() -> Sim {
        let clients = (0..CLIENTS)
            .map(|i| Client {
                instance: (i >= 2).then(|| format!("i-{i}")),
                generation: -1,
                previous_generation: -1,
                ..Client::default()
            })
            .collect();
        Sim {
            ctx: Ctx::with_config(config()),
            clients,
            sent: HashMap::new(),
            joined: BTreeSet::new(),
            lost: BTreeSet::new(),
            checked_records: 0,
            generations: BTreeMap::new(),
            commit_seq: 0,
            longest_history: 0,
        }
    }

    fn session(client: usize) -> i32 {
        6_000 + 1_000 * client as i32
    }

    fn rebalance(client: usize) -> i32 {
        5_000 + 3_000 * client as i32
    }

    /// The assignments `client` may legitimately hold for `generation` as `member`: keyed by
    /// its member id, or — for a static member — by an earlier id of the same instance.
    fn expected_assignments(&self, client: usize, member: &str, generation: i32) -> Vec<Bytes> {
        let c = &self.clients[client];
        let mut keys = vec![member.to_string()];
        if c.instance.is_some() {
            keys.extend(c.past_ids.iter().cloned());
        }
        keys.into_iter()
            .map(|k| assignment(generation, &k))
            .collect()
    }

    fn send(&mut self, version: i16, request: GroupRequest, sent: Sent) {
        let id = self.ctx.send(version, request);
        if let Sent::Join { client } | Sent::Sync { client, .. } = sent {
            if !self.ctx.answered(id) {
                self.clients[client].in_flight.insert(id);
            }
        }
        self.sent.insert(id, sent);
        self.after_step();
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Act { client } => {
                let c = &self.clients[client];
                let next = if !c.in_flight.is_empty() {
                    Op::Heartbeat { client }
                } else if c.must_join || c.member_id.is_empty() {
                    Op::Join {
                        client,
                        alt: c.alt,
                        version: c.version,
                    }
                } else if c.must_sync {
                    Op::Sync {
                        client,
                        stale: false,
                    }
                } else {
                    Op::Heartbeat { client }
                };
                self.run(&next);
            }
            Op::Join {
                client,
                alt,
                version,
            } => {
                let c = &mut self.clients[client];
                c.alt = alt;
                c.version = version;
                let version = match (&c.instance, version) {
                    (Some(_), v) => [5, 8, 9][v],
                    (None, v) => [3, 4, 9][v],
                };
                let mut join = Join::new(&c.member_id)
                    .session(Self::session(client))
                    .rebalance(Self::rebalance(client))
                    .protocols(&[("range", metadata(alt))])
                    .version(version);
                join.instance = c.instance.clone();
                self.send(version, join.request(), Sent::Join { client });
            }
            Op::Sync { client, stale } => {
                let c = self.clients[client].clone();
                if c.member_id.is_empty() {
                    return;
                }
                let generation = if stale {
                    c.previous_generation
                } else {
                    c.generation
                };
                let mut sync = Sync::new(&c.member_id, generation);
                sync.instance = c.instance.clone();
                if c.leader && !stale {
                    for (member, _) in &c.roster {
                        sync.assignments
                            .push((member.clone(), assignment(generation, member)));
                    }
                }
                let sent = Sent::Sync {
                    client,
                    member: c.member_id.clone(),
                    generation,
                };
                self.send(5, sync.request(), sent);
            }
            Op::Heartbeat { client } => {
                let c = &self.clients[client];
                if c.member_id.is_empty() {
                    return;
                }
                let request =
                    heartbeat_request(G, &c.member_id, c.generation, c.instance.as_deref());
                self.send(4, request, Sent::Heartbeat { client });
            }
            Op::Leave { client } => {
                let c = self.clients[client].clone();
                if c.member_id.is_empty() {
                    return;
                }
                let request = leave_request(G, &[(&c.member_id, c.instance.as_deref())], 5);
                self.clients[client] = Client {
                    instance: c.instance,
                    generation: -1,
                    previous_generation: -1,
                    past_ids: c.past_ids,
                    ..Client::default()
                };
                self.send(5, request, Sent::Other);
            }
            Op::Commit { client } => {
                let c = self.clients[client].clone();
                // Consumers commit with the generation they got from a JoinGroup.
                if c.member_id.is_empty() || c.generation < 0 {
                    return;
                }
                let valid = self.commit_is_valid(&c);
                self.commit_seq += 1;
                let mut commit = Commit::member(&c.member_id, c.generation).offset(
                    "topic",
                    client as i32,
                    self.commit_seq,
                );
                commit.instance = c.instance.clone();
                self.send(8, commit.request(), Sent::Other);
                let written = self
                    .ctx
                    .last_records
                    .iter()
                    .filter(|r| matches!(r, Record::Offset { value: Some(_), .. }))
                    .count();
                assert_eq!(written, usize::from(valid), "commit validity for {c:?}");
            }
            Op::SimpleCommit => {
                self.commit_seq += 1;
                let commit = Commit::simple()
                    .group("simple")
                    .offset("t", 0, self.commit_seq);
                self.send(8, commit.request(), Sent::Other);
            }
            Op::Forget { client } => {
                let c = &mut self.clients[client];
                c.member_id.clear();
                c.generation = -1;
                c.leader = false;
            }
            Op::Restart => {
                for client in &mut self.clients {
                    client.in_flight.clear();
                }
                let unanswered = self.ctx.unanswered();
                self.lost.extend(unanswered);
                let c = replayed(&self.ctx.records, config(), self.ctx.now);
                self.ctx.c = c;
                self.after_step();
            }
            Op::Sleep { ms } => {
                self.ctx.sleep(ms);
                self.after_step();
            }
        }
    }

    /// Whether a member commit from `c` must be accepted, from the coordinator's own state.
    fn commit_is_valid(&self, c: &Client) -> bool {
        let Some(group) = self.ctx.c.groups.get(G) else {
            return false;
        };
        let member_ok = group.members.contains_key(&c.member_id);
        let instance_ok = match &c.instance {
            Some(instance) => group.static_members.get(instance) == Some(&c.member_id),
            None => true,
        };
        member_ok
            && instance_ok
            && group.generation == c.generation
            && matches!(
                group.state,
                GroupState::Stable | GroupState::PreparingRebalance
            )
    }

    fn after_step(&mut self) {
        let answered = self.ctx.last_answered.clone();
        for id in answered {
            self.observe(id);
        }
        self.check_records();
        self.check_consistency();
        self.check_history();
        let longest = self.ctx.c.groups.values().map(|g| g.history.len()).max();
        self.longest_history = self.longest_history.max(longest.unwrap_or(0));
    }

    /// The rebalance history invariants (see the module docs).
    fn check_history(&self) {
        for (group_id, group) in &self.ctx.c.groups {
            let history = &group.history;
            assert!(
                history.len() <= HISTORY + 1,
                "{group_id}: {} records kept",
                history.len()
            );
            for (i, record) in history.iter().enumerate() {
                assert_eq!(&record.group_id, group_id);
                check_record(record);
                if record.outcome == RebalanceOutcome::InProgress {
                    assert_eq!(i, history.len() - 1, "{group_id}: open record not last");
                }
            }
            let open = history
                .back()
                .is_some_and(|r| r.outcome == RebalanceOutcome::InProgress);
            let rebalancing = matches!(
                group.state,
                GroupState::PreparingRebalance | GroupState::CompletingRebalance
            );
            assert_eq!(
                open, rebalancing,
                "{group_id}: open record {open} in state {}",
                group.state
            );
        }
        for record in &self.ctx.last_rebalances {
            assert_ne!(record.outcome, RebalanceOutcome::InProgress);
            check_record(record);
        }
    }

    /// Updates the client that sent request `id` from its response, checking invariants.
    fn observe(&mut self, id: RequestId) {
        let Some(sent) = self.sent.get(&id).cloned() else {
            return;
        };
        for client in &mut self.clients {
            client.in_flight.remove(&id);
        }
        let response = self.ctx.responses[&id].clone();
        match (sent, response) {
            (Sent::Join { client }, GroupResponse::Join(r)) => {
                let c = &mut self.clients[client];
                if r.error_code == 0 {
                    let member = r.member_id.to_string();
                    let generation = r.generation_id;
                    // The generation was persisted with this member in it.
                    let persisted = self.ctx.records.iter().any(|record| match record {
                        Record::Group {
                            group_id,
                            value: Some(v),
                        } => {
                            group_id == G
                                && v.generation == generation
                                && v.members.iter().any(|m| m.member_id == member)
                        }
                        _ => false,
                    });
                    assert!(
                        persisted,
                        "join response for generation {generation} of {member} without a record"
                    );
                    self.joined.insert((member.clone(), generation));
                    if c.generation != generation {
                        c.previous_generation = c.generation;
                    }
                    if c.instance.is_some() {
                        c.past_ids.insert(member.clone());
                    }
                    c.member_id = member.clone();
                    c.generation = generation;
                    c.must_join = false;
                    c.must_sync = true;
                    c.leader = r.leader.as_str() == member && !r.skip_assignment;
                    c.roster = r
                        .members
                        .iter()
                        .map(|m| {
                            (
                                m.member_id.to_string(),
                                m.group_instance_id.as_ref().map(|i| i.to_string()),
                            )
                        })
                        .collect();
                } else if r.error_code == code(ResponseError::MemberIdRequired) {
                    c.member_id = r.member_id.to_string();
                } else if r.error_code == code(ResponseError::UnknownMemberId)
                    || r.error_code == code(ResponseError::FencedInstanceId)
                {
                    c.member_id.clear();
                    c.generation = -1;
                    c.leader = false;
                }
            }
            (
                Sent::Sync {
                    client,
                    member,
                    generation,
                },
                GroupResponse::Sync(r),
            ) => {
                if r.error_code == code(ResponseError::RebalanceInProgress)
                    || r.error_code == code(ResponseError::IllegalGeneration)
                {
                    self.clients[client].must_join = true;
                }
                if r.error_code == 0 {
                    self.clients[client].must_sync = false;
                    assert_eq!(
                        self.ctx.generation(),
                        generation,
                        "assignment for a generation that is not current"
                    );
                    assert!(
                        self.joined.contains(&(member.clone(), generation)),
                        "{member} never joined {generation}"
                    );
                    if !r.assignment.is_empty() {
                        let expected = self.expected_assignments(client, &member, generation);
                        assert!(
                            expected.contains(&r.assignment),
                            "not the leader's assignment: {:?}",
                            r.assignment
                        );
                    }
                } else if r.error_code == code(ResponseError::UnknownMemberId)
                    || r.error_code == code(ResponseError::FencedInstanceId)
                {
                    let c = &mut self.clients[client];
                    if c.member_id == member {
                        c.member_id.clear();
                        c.generation = -1;
                        c.leader = false;
                    }
                }
            }
            (Sent::Heartbeat { client }, GroupResponse::Heartbeat(r)) => {
                if r.error_code == code(ResponseError::RebalanceInProgress)
                    || r.error_code == code(ResponseError::IllegalGeneration)
                {
                    self.clients[client].must_join = true;
                }
                if r.error_code == code(ResponseError::UnknownMemberId)
                    || r.error_code == code(ResponseError::FencedInstanceId)
                {
                    let c = &mut self.clients[client];
                    c.member_id.clear();
                    c.generation = -1;
                    c.leader = false;
                }
            }
            (Sent::Other, _) => {}
            (sent, response) => panic!("{sent:?} answered with {response:?}"),
        }
    }

    /// Persisted generations never decrease and grow by at most one per record.
    fn check_records(&mut self) {
        for record in &self.ctx.records[self.checked_records..] {
            if let Record::Group { group_id, value } = record {
                match value {
                    Some(v) => {
                        if let Some(previous) = self.generations.get(group_id) {
                            assert!(
                                v.generation == *previous || v.generation == previous + 1,
                                "{group_id}: generation {previous} -> {}",
                                v.generation
                            );
                        }
                        self.generations.insert(group_id.clone(), v.generation);
                    }
                    None => {
                        self.generations.remove(group_id);
                    }
                }
            }
        }
        self.checked_records = self.ctx.records.len();
    }

    fn check_consistency(&self) {
        let c = &self.ctx.c;
        let now = self.ctx.now;
        let timers: BTreeMap<String, Millis> = c.timers().into_iter().collect();
        for (group_id, group) in &c.groups {
            if group.state == GroupState::Empty {
                assert!(group.members.is_empty(), "{group_id}: Empty with members");
            }
            if group.members.is_empty() {
                assert!(matches!(
                    group.state,
                    GroupState::Empty | GroupState::PreparingRebalance
                ));
            } else {
                let leader = group
                    .leader
                    .as_ref()
                    .expect("a group with members has a leader");
                assert!(
                    group.members.contains_key(leader),
                    "{group_id}: leader {leader} is not a member"
                );
            }
            for (instance, member) in &group.static_members {
                assert_eq!(group.members[member].instance_id.as_ref(), Some(instance));
            }
            assert_eq!(
                group.static_members.len(),
                group
                    .members
                    .values()
                    .filter(|m| m.instance_id.is_some())
                    .count()
            );
            assert!(group
                .pending_sync
                .iter()
                .all(|m| group.members.contains_key(m)));
            for member in group.members.values() {
                if member.awaiting_join.is_some() {
                    assert_eq!(
                        group.state,
                        GroupState::PreparingRebalance,
                        "held join outside the join barrier"
                    );
                }
                if member.awaiting_sync.is_some() {
                    assert_eq!(
                        group.state,
                        GroupState::CompletingRebalance,
                        "held sync outside the sync barrier"
                    );
                }
                let deadline = timers.get(&format!("heartbeat:{group_id}:{}", member.id));
                match deadline {
                    Some(deadline) => assert!(
                        *deadline > now,
                        "{}: session deadline {deadline} passed at {now}",
                        member.id
                    ),
                    None => assert!(
                        member.heartbeat_satisfied(),
                        "{} has no session timer and is not parked",
                        member.id
                    ),
                }
            }
        }
        for key in timers.keys() {
            let group = key.split(':').nth(1);
            if key != "offsets-expiry" {
                assert!(
                    group.is_some_and(|g| c.groups.contains_key(g)),
                    "timer {key} of a missing group"
                );
            }
        }
    }

    /// Lets time run without clients until nothing is held any more.
    fn drain(&mut self) {
        for _ in 0..20 {
            self.ctx.sleep(60_000);
            self.after_step();
        }
        let unanswered: Vec<RequestId> = self
            .ctx
            .unanswered()
            .into_iter()
            .filter(|id| !self.lost.contains(id))
            .collect();
        assert!(unanswered.is_empty(), "never answered: {unanswered:?}");
    }

    fn check_replay(&self) {
        let again = replayed(&self.ctx.records, config(), self.ctx.now);
        assert_eq!(
            durable(&again),
            durable(&self.ctx.c),
            "replay differs from live state"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn random_client_behaviour_keeps_every_invariant(ops in prop::collection::vec(op(), 1..150)) {
        let mut sim = Sim::new();
        for (i, op) in ops.iter().enumerate() {
            sim.run(op);
            if i % 10 == 0 {
                sim.check_replay();
            }
        }
        sim.check_replay();
        sim.drain();
        sim.check_replay();
    }

    #[test]
    fn replaying_any_prefix_of_the_records_matches_the_state_at_that_point(
        ops in prop::collection::vec(op(), 1..60)
    ) {
        let mut sim = Sim::new();
        let mut snapshots = Vec::new();
        for op in &ops {
            sim.run(op);
            snapshots.push((sim.ctx.records.len(), durable(&sim.ctx.c)));
        }
        for (len, snapshot) in snapshots {
            let again = replayed(&sim.ctx.records[..len], config(), sim.ctx.now);
            prop_assert_eq!(durable(&again), snapshot);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Assignment bytes come from clients: reading them never panics, whatever they hold.
    #[test]
    fn reading_arbitrary_assignment_bytes_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..96),
        version in prop_oneof![Just(None), (-2i16..6).prop_map(Some)],
    ) {
        let mut input = Vec::new();
        if let Some(version) = version {
            input.extend_from_slice(&version.to_be_bytes());
        }
        input.extend_from_slice(&bytes);
        let _ = crate::assignment::assigned_partitions(&input);
    }

    /// Any assignment a client encodes at versions 0–3 reads back as its partitions, and any
    /// set of owners compares with any base into disjoint, sorted lists.
    #[test]
    fn encoded_assignments_read_back_and_compare_into_disjoint_lists(
        version in 0i16..=3,
        topics in prop::collection::btree_map("[a-c]", prop::collection::vec(0i32..6, 0..4), 0..3),
        before in prop::collection::btree_map((0i32..6, "[a-c]"), "[xyz]", 0..8),
        after in prop::collection::btree_map((0i32..6, "[a-c]"), "[xyz]", 0..8),
    ) {
        use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
        use kafka_protocol::messages::ConsumerProtocolAssignment;
        use kafka_protocol::protocol::Encodable;
        let mut value = ConsumerProtocolAssignment::default();
        value.assigned_partitions = topics
            .iter()
            .map(|(topic, partitions)| {
                let mut t = TopicPartition::default();
                t.topic = sb(topic).into();
                t.partitions = partitions.clone();
                t
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        buf.extend_from_slice(&version.to_be_bytes());
        value.encode(&mut buf, version).unwrap();
        let expected: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
            .collect();
        prop_assert_eq!(crate::assignment::assigned_partitions(&buf), Some(expected));

        let owners = |m: &BTreeMap<(i32, String), String>| -> crate::assignment::Owners {
            m.iter().map(|((p, t), o)| ((t.clone(), *p), o.clone())).collect()
        };
        let base = crate::assignment::Ownership::of(1, owners(&before));
        let (change, next) = base.advance(2, owners(&after));
        check_change(&change);
        let (change, _) = next.advance(3, owners(&before));
        check_change(&change);
    }
}

#[test]
fn a_long_scripted_run_with_restarts_keeps_every_invariant() {
    let mut sim = Sim::new();
    let script = [
        Op::Join {
            client: 0,
            alt: false,
            version: 2,
        },
        Op::Join {
            client: 0,
            alt: false,
            version: 2,
        },
        Op::Join {
            client: 2,
            alt: false,
            version: 2,
        },
        Op::Sleep { ms: 600 },
        Op::Sync {
            client: 2,
            stale: false,
        },
        Op::Sync {
            client: 0,
            stale: false,
        },
        Op::Commit { client: 0 },
        Op::Restart,
        Op::Heartbeat { client: 0 },
        Op::Join {
            client: 3,
            alt: true,
            version: 1,
        },
        Op::Join {
            client: 0,
            alt: false,
            version: 2,
        },
        Op::Join {
            client: 2,
            alt: false,
            version: 2,
        },
        Op::Sync {
            client: 0,
            stale: false,
        },
        Op::Sync {
            client: 2,
            stale: false,
        },
        Op::Sync {
            client: 3,
            stale: false,
        },
        Op::Forget { client: 2 },
        Op::Join {
            client: 2,
            alt: false,
            version: 0,
        },
        Op::Sync {
            client: 2,
            stale: false,
        },
        Op::Commit { client: 2 },
        Op::Sleep { ms: 9_000 },
        Op::Restart,
        Op::Sleep { ms: 19_000 },
    ];
    for op in &script {
        sim.run(op);
    }
    sim.check_replay();
    sim.drain();
    sim.check_replay();
}

#[test]
fn generated_clients_use_distinct_session_and_rebalance_timeouts() {
    let sessions: BTreeSet<i32> = (0..CLIENTS).map(Sim::session).collect();
    assert_eq!(sessions.len(), CLIENTS);
    assert!((0..CLIENTS).all(|c| Sim::rebalance(c) >= 5_000));
}

use kafka_protocol::ResponseError;

/// The random runs are only worth something if they reach the interesting paths: count the
/// outcomes of 64 deterministic runs and require each to show up.
#[test]
fn random_runs_reach_every_interesting_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(op(), 1..150);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..64 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let mut sim = Sim::new();
        for op in &ops {
            sim.run(op);
        }
        sim.drain();
        for response in sim.ctx.responses.values() {
            let outcome = match response {
                GroupResponse::Join(r) if r.skip_assignment => "join:skip-assignment".to_string(),
                GroupResponse::Join(r) => format!("join:{}", r.error_code),
                GroupResponse::Sync(r) => {
                    format!("sync:{}:{}", r.error_code, !r.assignment.is_empty())
                }
                GroupResponse::Heartbeat(r) => format!("heartbeat:{}", r.error_code),
                GroupResponse::OffsetCommit(r) => {
                    format!("commit:{}", r.topics[0].partitions[0].error_code)
                }
                _ => "other".to_string(),
            };
            *seen.entry(outcome).or_default() += 1;
        }
        if sim.lost.is_empty() {
            *seen.entry("run-without-restart".into()).or_default() += 1;
        }
        if sim.longest_history > HISTORY {
            *seen.entry("history-at-bound".into()).or_default() += 1;
        }
        for record in &sim.ctx.rebalances {
            *seen
                .entry(format!("rebalance:{:?}", record.outcome))
                .or_default() += 1;
            *seen
                .entry(format!("cause:{}", record.cause.as_str()))
                .or_default() += 1;
            if let Some(change) = &record.assignment {
                for (list, n) in [
                    ("moved", change.moved.len()),
                    ("stayed", change.stayed.len()),
                    ("assigned", change.assigned.len()),
                    ("revoked", change.revoked.len()),
                ] {
                    if n > 0 {
                        *seen.entry(format!("assignment:{list}")).or_default() += 1;
                    }
                }
            }
        }
    }
    let required = [
        "join:0",
        "join:16",
        "join:25",
        "join:79",
        "join:82",
        "sync:0:true",
        "sync:22:false",
        "sync:25:false",
        "sync:27:false",
        "heartbeat:0",
        "heartbeat:22",
        "heartbeat:25",
        "heartbeat:27",
        "commit:0",
        "commit:25",
        "commit:27",
        "run-without-restart",
        "rebalance:Stable",
        "rebalance:Empty",
        "rebalance:Restarted",
        "cause:member_joined",
        "cause:member_left",
        "cause:session_expired",
        "cause:subscription_changed",
        "cause:metadata_changed",
        "cause:loaded",
        "assignment:assigned",
        "history-at-bound",
    ];
    for outcome in required {
        assert!(
            seen.get(outcome).copied().unwrap_or(0) > 0,
            "no run produced {outcome}: {seen:?}"
        );
    }
}
