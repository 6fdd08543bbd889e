//! The group coordinator's record storage behaves the same on both back ends: the same cases
//! run through the broker's seam, [`GroupStorage`], over the embedded metadata store and over
//! PostgreSQL.
//!
//! The coordinator replays a group's stored records to rebuild it when it starts, or when
//! another node takes the group over, so what it reads back must not depend on where the
//! records live: the latest record of each key, none of a deleted key, none of another group,
//! every field as written, in the byte order of the keys (the order of the embedded store's
//! B-tree, which PostgreSQL must keep whatever collation its database sorts text by: the
//! PostgreSQL subject's database sorts by a language's rules). Each case writes through the
//! seam, "restarts" (a new storage over the same stored data) and reads each group back as the
//! coordinator recovers it: embedded, every record from [`GroupStorage::load`]; PostgreSQL, the
//! group's lease and records from [`GroupStorage::take`], on the node that took over from the
//! one that wrote.
//!
//! After the shared cases, PostgreSQL's other contract: a write for a group whose lease the
//! node does not hold is fenced, naming the group, and writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use starling_broker::config::BrokerConfig;
use starling_broker::coordinator::group_storage::{GroupStorage, GroupWriteError, PgGroupStorage};
use starling_broker::leases::NodeLeases;
use starling_broker::storage::MetadataStorage;
use starling_broker::topics::TopicRegistry;
use starling_group::{
    ClassicMemberMetadata, ConsumerAssignmentValue, ConsumerGroupValue, ConsumerMemberValue,
    GroupValue, MemberState, MemberValue, OffsetValue, Record, TopicPartitions,
};
use starling_meta::MetadataStore;
use starling_postgres::lease::{self, Lease, LeaseKind};
use starling_postgres::metadata::PgMetadata;
use starling_postgres::node::{self, NodeInfo, Registration};
use starling_postgres::testing::TestPostgres;
use starling_postgres::PgPool;
use uuid::Uuid;

/// Runs each case on a fresh subject (`$fresh` is evaluated once per case), naming the case
/// first so that a failure says which it was.
macro_rules! run_cases {
    ($fresh:expr; $($case:ident),* $(,)?) => {$(
        eprintln!("case: {}", stringify!($case));
        $case(&mut $fresh).await;
    )*};
}

/// Runs every case both back ends must pass.
macro_rules! run_shared_cases {
    ($fresh:expr) => {
        run_cases!($fresh;
            a_steps_records_come_back_after_a_restart,
            the_latest_record_of_each_key_is_kept,
            a_deletion_removes_its_key_and_all_of_them_the_group,
            groups_are_kept_apart,
            records_come_back_in_the_byte_order_of_their_keys,
            empty_writes_do_nothing_and_no_write_leaves_a_fault,
            every_field_survives,
            many_groups_in_one_step_all_come_back,
        )
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    run_shared_cases!(Subject::embedded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let mut databases = 0;
    let mut fresh = || {
        databases += 1;
        Subject::postgres(&pg, format!("case{databases}"))
    };
    run_shared_cases!(fresh().await);
    // The seam's other contract, which the embedded store (holding every group) has no part in.
    run_cases!(fresh().await;
        a_write_for_a_group_never_taken_is_fenced,
        a_write_for_a_group_another_node_took_is_fenced,
        a_group_id_holding_nul_is_refused_as_invalid,
    );
}

// The shared cases.

async fn a_steps_records_come_back_after_a_restart(subject: &mut Subject) {
    let mut step = one_of_each_kind("orders", 1);
    step.extend((0..4).map(|p| offset("orders", "payments", p, 100 + i64::from(p))));
    subject.write(&step).await;
    subject.restart().await;
    assert_eq!(subject.stored("orders").await, by_key(step));
}

async fn the_latest_record_of_each_key_is_kept(subject: &mut Subject) {
    // In one step: written twice, deleted then written again, written then deleted.
    let (again, gone) = (offset("g", "t", 1, 10), offset("g", "t", 2, 20));
    let mut first = one_of_each_kind("g", 1);
    first.extend([offset("g", "t", 0, 1), offset("g", "t", 0, 2)]);
    first.extend([
        tombstone(&again),
        again.clone(),
        gone.clone(),
        tombstone(&gone),
    ]);
    subject.write(&first).await;
    subject.restart().await;
    let mut expected = one_of_each_kind("g", 1);
    expected.extend([offset("g", "t", 0, 2), again.clone()]);
    assert_eq!(subject.stored("g").await, by_key(expected));
    // Across steps: every key of the first step written again, with new values.
    subject.write(&one_of_each_kind("g", 2)).await;
    subject.write(&[offset("g", "t", 0, 3)]).await;
    subject.restart().await;
    let mut expected = one_of_each_kind("g", 2);
    expected.extend([offset("g", "t", 0, 3), again]);
    assert_eq!(subject.stored("g").await, by_key(expected));
}

async fn a_deletion_removes_its_key_and_all_of_them_the_group(subject: &mut Subject) {
    let doomed = one_of_each_kind("doomed", 1);
    let kept = one_of_each_kind("kept", 1);
    subject
        .write(&[doomed.clone(), kept.clone()].concat())
        .await;
    // One key deleted, and one that was never written (nothing to do).
    let (first, rest) = doomed.split_first().unwrap();
    subject
        .write(&[
            tombstone(first),
            tombstone(&offset("doomed", "never", 0, 0)),
        ])
        .await;
    subject.restart().await;
    assert_eq!(subject.stored("doomed").await, by_key(rest.to_vec()));
    subject
        .write(&rest.iter().map(tombstone).collect::<Vec<_>>())
        .await;
    subject.restart().await;
    assert_eq!(subject.stored("doomed").await, Vec::<Record>::new());
    assert_eq!(subject.stored("kept").await, by_key(kept));
    let placed = subject.storage().placed_here().await.unwrap();
    let expected: &[&str] = if subject.storage().is_shared() {
        &["kept"]
    } else {
        &[] // The embedded store places nothing: `load` brings every group.
    };
    assert_eq!(placed, expected);
}

async fn groups_are_kept_apart(subject: &mut Subject) {
    // Ids that are prefixes of each other, hold the keys' separator, or differ only in case.
    let groups = ["a", "a/b", "a/b/c", "ab", "A", "a/", "b"];
    let mut records: BTreeMap<&str, Vec<Record>> = groups
        .iter()
        .zip(1..)
        .map(|(&group, n)| (group, one_of_each_kind(group, n)))
        .collect();
    // Member "b/m" of group "a" against member "m" of group "a/b".
    records.get_mut("a").unwrap().push(member("a", "b/m", 7));
    records.get_mut("a/b").unwrap().push(member("a/b", "m", 8));
    subject
        .write(&records.values().flatten().cloned().collect::<Vec<_>>())
        .await;
    subject.restart().await;
    for (group, written) in records {
        assert_eq!(
            subject.stored(group).await,
            by_key(written),
            "group {group:?}"
        );
    }
}

async fn records_come_back_in_the_byte_order_of_their_keys(subject: &mut Subject) {
    // Names a language's collation sorts otherwise than bytes do, and with them the keys'
    // separator '/' and digits ("t/10" < "t/9").
    let names = starling_postgres::testing::NAMES_A_LANGUAGE_SORTS_OTHERWISE;
    let group = "Orders";
    let mut step: Vec<Record> = names
        .iter()
        .flat_map(|&name| [offset(group, name, 0, 1), member(group, name, 1)])
        .chain([9, 10, 100].map(|p| offset(group, "t", p, 1)))
        .chain(one_of_each_kind(group, 1))
        .collect();
    step.reverse(); // Written out of key order.
    let groups: Vec<String> = names.iter().map(|name| format!("{name}/g")).collect();
    step.extend(groups.iter().map(|g| offset(g, "t", 0, 1)));
    subject.write(&step).await;
    subject.restart().await;
    let expected: Vec<String> = by_key(step.clone())
        .iter()
        .filter(|r| r.group_id() == group)
        .map(Record::key)
        .collect();
    let stored: Vec<String> = subject
        .stored(group)
        .await
        .iter()
        .map(Record::key)
        .collect();
    assert_eq!(stored, expected, "the keys of group {group:?}");
    // PostgreSQL lists the stored groups for a starting node to take, in byte order too.
    if subject.storage().is_shared() {
        let mut expected = groups;
        expected.push(group.to_string());
        expected.sort();
        assert_eq!(subject.storage().placed_here().await.unwrap(), expected);
    }
}

async fn empty_writes_do_nothing_and_no_write_leaves_a_fault(subject: &mut Subject) {
    let healthy = |storage: &GroupStorage| {
        assert_eq!(storage.fault(), None);
        assert_eq!(storage.storage_errors(), 0);
    };
    subject.storage().write(Vec::new()).await.unwrap();
    healthy(subject.storage());
    let step = one_of_each_kind("g", 1);
    subject.write(&step).await;
    subject.storage().write(Vec::new()).await.unwrap();
    healthy(subject.storage());
    subject.storage().check_writable().await.unwrap();
    healthy(subject.storage());
    subject.restart().await;
    subject.storage().write(Vec::new()).await.unwrap();
    subject.restart().await;
    assert_eq!(subject.stored("g").await, by_key(step));
    healthy(subject.storage());
}

async fn every_field_survives(subject: &mut Subject) {
    // Every field set (`one_of_each_kind`), then the edges: the extreme numbers, text a
    // serialization could mangle, and every optional field left out.
    // NUL too, which PostgreSQL's text cannot hold, and the character its keys escape it with.
    let odd = "é ✓ \"quoted\" \\ \t\n\u{0}\u{1} \u{1}\u{2} 🦀\u{0}";
    let mut step = one_of_each_kind("g", 1);
    step.extend([
        Record::Offset {
            group_id: "edges".into(),
            topic: "t".into(),
            partition: i32::MAX,
            value: Some(OffsetValue {
                offset: i64::MAX,
                leader_epoch: -1,
                metadata: odd.into(),
                commit_timestamp: i64::MIN,
                expire_timestamp: None,
            }),
        },
        Record::Group {
            group_id: "edges".into(),
            value: Some(GroupValue {
                protocol_type: String::new(),
                generation: i32::MIN,
                protocol: None,
                leader: None,
                state_timestamp: -1,
                members: Vec::new(),
            }),
        },
        Record::ConsumerGroup {
            group_id: "edges".into(),
            value: Some(ConsumerGroupValue {
                epoch: i32::MAX,
                metadata_hash: u64::MAX,
            }),
        },
        Record::ConsumerMember {
            group_id: "edges".into(),
            member_id: odd.into(),
            value: Some(ConsumerMemberValue::default()),
        },
        Record::ConsumerAssignment {
            group_id: "edges".into(),
            member_id: odd.into(),
            value: Some(ConsumerAssignmentValue::default()),
        },
        Record::PendingOffset {
            group_id: "edges".into(),
            producer_id: i64::MAX,
            topic: "t".into(),
            partition: 0,
            value: Some(OffsetValue {
                offset: 0,
                leader_epoch: 0,
                metadata: String::new(),
                commit_timestamp: 0,
                expire_timestamp: Some(i64::MAX),
            }),
        },
    ]);
    subject.write(&step).await;
    subject.restart().await;
    for group in ["g", "edges"] {
        let written: Vec<Record> = step
            .iter()
            .filter(|r| r.group_id() == group)
            .cloned()
            .collect();
        assert_eq!(
            subject.stored(group).await,
            by_key(written),
            "group {group:?}"
        );
    }
}

async fn many_groups_in_one_step_all_come_back(subject: &mut Subject) {
    let groups: Vec<String> = (0..50).map(|i| format!("group-{i}")).collect();
    let records = |group: &str| -> Vec<Record> {
        (0..4)
            .map(|p| offset(group, "t", p, i64::from(p) * 10))
            .chain([member(group, "m", 1)])
            .collect()
    };
    let step: Vec<Record> = groups.iter().flat_map(|g| records(g)).collect();
    subject.write(&step).await;
    // PostgreSQL: the step is one transaction, however many groups it holds.
    if let Some(pool) = subject.pool() {
        let client = pool.get().await.unwrap();
        let row = client
            .query_one(
                "SELECT count(*), count(DISTINCT xmin::text) FROM group_records",
                &[],
            )
            .await
            .unwrap();
        let (rows, transactions): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!((rows, transactions), (step.len() as i64, 1));
    }
    subject.restart().await;
    for group in &groups {
        assert_eq!(
            subject.stored(group).await,
            by_key(records(group)),
            "group {group}"
        );
    }
}

// PostgreSQL only: fencing.

async fn a_write_for_a_group_never_taken_is_fenced(subject: &mut Subject) {
    let held = one_of_each_kind("held", 1);
    let elsewhere = one_of_each_kind("elsewhere", 1);
    subject.write(&[offset("held", "t", 0, 1)]).await;
    let step = [held.clone(), elsewhere].concat();
    let fenced = subject.storage().write(step).await.unwrap_err();
    let GroupWriteError::Fenced { group, rest, .. } = fenced else {
        panic!("not fenced: {fenced}");
    };
    assert_eq!((group.as_str(), rest), ("elsewhere", held.clone()));
    // Nothing of the step was written, and fencing is no fault of the storage.
    assert_eq!(subject.storage().fault(), None);
    subject.restart().await;
    assert_eq!(subject.stored("held").await, [offset("held", "t", 0, 1)]);
    assert_eq!(subject.stored("elsewhere").await, Vec::<Record>::new());
}

async fn a_group_id_holding_nul_is_refused_as_invalid(subject: &mut Subject) {
    // A group's lease is named by its id, and PostgreSQL's text cannot hold NUL: the request
    // is refused with a clear error, and the storage has no fault (the embedded store, which
    // needs no lease, takes such a group).
    let refused = subject.storage().take("billing\0eu").await.unwrap_err();
    assert_eq!(refused, kafka_protocol::ResponseError::InvalidGroupId);
    assert_eq!(subject.storage().fault(), None);
}

async fn a_write_for_a_group_another_node_took_is_fenced(subject: &mut Subject) {
    let (mine, lost) = (one_of_each_kind("mine", 1), one_of_each_kind("lost", 1));
    subject.write(&[mine.clone(), lost.clone()].concat()).await;
    // Node 99 takes "lost" over once this node's lease on it is gone (as if it lapsed).
    let pool = subject.pool().unwrap().clone();
    let client = pool.get().await.unwrap();
    let epoch = subject.storage().held_epoch("lost").unwrap();
    let node_id = subject.node_id();
    let held = Lease {
        kind: LeaseKind::Group,
        name: "lost".into(),
        owner: node_id,
        epoch,
    };
    lease::release(&**client, &held).await.unwrap();
    let taken = lease::acquire(&**client, LeaseKind::Group, "lost", 99, LEASE_TIME).await;
    assert!(taken.unwrap().is_some());
    let step = [one_of_each_kind("mine", 2), one_of_each_kind("lost", 2)].concat();
    let fenced = subject.storage().write(step).await.unwrap_err();
    let GroupWriteError::Fenced { group, rest, .. } = fenced else {
        panic!("not fenced: {fenced}");
    };
    assert_eq!(
        (group.as_str(), rest),
        ("lost", one_of_each_kind("mine", 2))
    );
    // The node no longer holds the group, and the step wrote nothing.
    assert_eq!(subject.storage().held_epoch("lost"), None);
    assert_eq!(subject.storage().fault(), None);
    assert_eq!(subject.stored("mine").await, by_key(mine));
    let stored = starling_postgres::group_records::load(&**client, "lost").await;
    assert_eq!(stored.unwrap(), by_key(lost));
}

// The back ends.

/// How long the PostgreSQL subject's node and lease registrations last (no round renews them).
const LEASE_TIME: Duration = Duration::from_secs(300);

/// One back end, behind the seam.
struct Subject {
    /// `None` only while the embedded store is closed for a restart.
    storage: Option<GroupStorage>,
    backend: Backend,
}

enum Backend {
    /// The store's directory.
    Embedded(tempfile::TempDir),
    Postgres(Box<PgNode>),
}

/// A PostgreSQL node coordinating groups: registered, and through a round of its leases.
struct PgNode {
    pool: PgPool,
    registration: Registration,
    topics: TopicRegistry,
    leases: Arc<NodeLeases>,
    /// The node's data directory (its registry needs one; it holds no topics).
    _data_dir: tempfile::TempDir,
}

impl Subject {
    fn embedded() -> Subject {
        let dir = tempfile::tempdir().unwrap();
        let storage = Some(open_embedded(&dir));
        Subject {
            storage,
            backend: Backend::Embedded(dir),
        }
    }

    /// On a new database of `pg` that sorts text by a language's collation.
    async fn postgres(pg: &TestPostgres, database: String) -> Subject {
        let pool = pg.pool_with_language_collation(&database, 4).await;
        let node = PgNode::start(pool, 1).await;
        Subject {
            storage: Some(node.storage()),
            backend: Backend::Postgres(Box::new(node)),
        }
    }

    fn storage(&self) -> &GroupStorage {
        self.storage.as_ref().expect("the storage is open")
    }

    /// The PostgreSQL subject's database.
    fn pool(&self) -> Option<&PgPool> {
        match &self.backend {
            Backend::Embedded(_) => None,
            Backend::Postgres(node) => Some(&node.pool),
        }
    }

    /// The PostgreSQL subject's node id.
    fn node_id(&self) -> i32 {
        match &self.backend {
            Backend::Embedded(_) => panic!("the embedded store has no nodes"),
            Backend::Postgres(node) => node.registration.node_id,
        }
    }

    /// Writes one step of the coordinator, which takes each of its groups first (held
    /// already, or taken; the embedded store holds them all).
    async fn write(&self, records: &[Record]) {
        let groups: BTreeSet<&str> = records.iter().map(Record::group_id).collect();
        for group in groups {
            if self.storage().held_epoch(group).is_none() {
                self.storage().take(group).await.unwrap();
            }
        }
        self.storage().write(records.to_vec()).await.unwrap();
    }

    /// A new storage over the same stored data: the embedded store closed and opened again;
    /// PostgreSQL's node stopped cleanly (its leases released, its registration ended) and the
    /// next node id taking its groups over.
    async fn restart(&mut self) {
        match &mut self.backend {
            Backend::Embedded(dir) => {
                // The store's file is locked while it is open.
                self.storage = None;
                self.storage = Some(open_embedded(dir));
            }
            Backend::Postgres(node) => {
                node.stop().await;
                let next = PgNode::start(node.pool.clone(), node.registration.node_id + 1).await;
                self.storage = Some(next.storage());
                **node = next;
            }
        }
    }

    /// `group`'s records as the coordinator recovers them: embedded, from every stored record;
    /// PostgreSQL, those that come with the group's lease.
    async fn stored(&self, group: &str) -> Vec<Record> {
        let storage = self.storage();
        if storage.is_shared() {
            storage.take(group).await.unwrap().1
        } else {
            let all = storage.load().await.unwrap();
            all.into_iter().filter(|r| r.group_id() == group).collect()
        }
    }
}

fn open_embedded(dir: &tempfile::TempDir) -> GroupStorage {
    let store = MetadataStore::open(&dir.path().join("meta.redb")).unwrap();
    GroupStorage::Embedded(Arc::new(store))
}

impl PgNode {
    /// Node `node_id` started on `pool`'s database, as the broker starts one: registered, and
    /// through the first round of its leases.
    async fn start(pool: PgPool, node_id: i32) -> PgNode {
        let data_dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            node_id,
            data_dir: data_dir.path().into(),
            broker_session_timeout_ms: LEASE_TIME.as_millis() as u64,
            ..BrokerConfig::default()
        };
        let info = NodeInfo {
            node_id,
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
            listeners: BTreeMap::new(),
        };
        let client = pool.get().await.unwrap();
        let registration = node::register(&**client, &info, LEASE_TIME).await.unwrap();
        drop(client);
        let metadata = MetadataStorage::Postgres(PgMetadata::new(pool.clone()));
        let topics = TopicRegistry::open(&config, metadata, Vec::new()).unwrap();
        let leases = topics.leadership().expect("PostgreSQL leases").clone();
        leases.round(&topics).await.unwrap();
        PgNode {
            pool,
            registration,
            topics,
            leases,
            _data_dir: data_dir,
        }
    }

    fn storage(&self) -> GroupStorage {
        GroupStorage::Postgres(Arc::new(PgGroupStorage::new(
            self.pool.clone(),
            self.leases.clone(),
        )))
    }

    /// A clean shutdown: every lease released, the registration ended.
    async fn stop(&self) {
        self.leases.release_all(&self.topics).await;
        let client = self.pool.get().await.unwrap();
        node::deregister(&**client, &self.registration)
            .await
            .unwrap();
    }
}

// Records.

/// `records` in the byte order of their keys.
fn by_key(mut records: Vec<Record>) -> Vec<Record> {
    records.sort_by_key(Record::key);
    records
}

/// A committed offset, its other fields plain.
fn offset(group: &str, topic: &str, partition: i32, offset: i64) -> Record {
    Record::Offset {
        group_id: group.into(),
        topic: topic.into(),
        partition,
        value: Some(OffsetValue {
            offset,
            leader_epoch: 0,
            metadata: String::new(),
            commit_timestamp: 1,
            expire_timestamp: None,
        }),
    }
}

/// A consumer-protocol member's subscription, its other fields plain.
fn member(group: &str, member: &str, rebalance_timeout_ms: i32) -> Record {
    Record::ConsumerMember {
        group_id: group.into(),
        member_id: member.into(),
        value: Some(ConsumerMemberValue {
            rebalance_timeout_ms,
            ..ConsumerMemberValue::default()
        }),
    }
}

/// `record`'s deletion: its key, no value.
fn tombstone(record: &Record) -> Record {
    match record.clone() {
        Record::Group { group_id, .. } => Record::Group {
            group_id,
            value: None,
        },
        Record::Offset {
            group_id,
            topic,
            partition,
            ..
        } => Record::Offset {
            group_id,
            topic,
            partition,
            value: None,
        },
        Record::ConsumerGroup { group_id, .. } => Record::ConsumerGroup {
            group_id,
            value: None,
        },
        Record::ConsumerMember {
            group_id,
            member_id,
            ..
        } => Record::ConsumerMember {
            group_id,
            member_id,
            value: None,
        },
        Record::ConsumerTargetEpoch { group_id, .. } => Record::ConsumerTargetEpoch {
            group_id,
            value: None,
        },
        Record::ConsumerTarget {
            group_id,
            member_id,
            ..
        } => Record::ConsumerTarget {
            group_id,
            member_id,
            value: None,
        },
        Record::ConsumerAssignment {
            group_id,
            member_id,
            ..
        } => Record::ConsumerAssignment {
            group_id,
            member_id,
            value: None,
        },
        Record::PendingOffset {
            group_id,
            producer_id,
            topic,
            partition,
            ..
        } => Record::PendingOffset {
            group_id,
            producer_id,
            topic,
            partition,
            value: None,
        },
    }
}

/// One record of every kind for `group`, each field set (none empty, none left out) to a
/// value that changes with `n` where the field is no part of the key: the same keys for every
/// `n`.
fn one_of_each_kind(group: &str, n: i32) -> Vec<Record> {
    let topic = Uuid::from_u128(0x5eed);
    let partitions = |from: i32| -> TopicPartitions {
        BTreeMap::from([(topic, BTreeSet::from([from, from + n]))])
    };
    let offset = OffsetValue {
        offset: 1_000 + i64::from(n),
        leader_epoch: n,
        metadata: format!("checkpoint {n}"),
        commit_timestamp: 1_700_000_000_000 + i64::from(n),
        expire_timestamp: Some(1_800_000_000_000 + i64::from(n)),
    };
    let protocols = vec![
        ("range".to_string(), Bytes::from(vec![0, 1, 255, n as u8])),
        ("roundrobin".to_string(), Bytes::from_static(b"\x00rr")),
    ];
    vec![
        Record::Group {
            group_id: group.into(),
            value: Some(GroupValue {
                protocol_type: "consumer".into(),
                generation: n,
                protocol: Some("range".into()),
                leader: Some("member-1".into()),
                state_timestamp: 1_700_000_000_000 + i64::from(n),
                members: vec![MemberValue {
                    member_id: "member-1".into(),
                    group_instance_id: Some(format!("instance-{n}")),
                    client_id: "app".into(),
                    client_host: "/10.0.0.1".into(),
                    rebalance_timeout_ms: 30_000 + n,
                    session_timeout_ms: 10_000 + n,
                    protocol_type: "consumer".into(),
                    protocols: protocols.clone(),
                    assignment: Bytes::from(vec![9, 8, 7, n as u8]),
                }],
            }),
        },
        Record::Offset {
            group_id: group.into(),
            topic: "orders".into(),
            partition: 3,
            value: Some(offset.clone()),
        },
        Record::ConsumerGroup {
            group_id: group.into(),
            value: Some(ConsumerGroupValue {
                epoch: 5 + n,
                metadata_hash: 0xfeed_0000 + n as u64,
            }),
        },
        Record::ConsumerMember {
            group_id: group.into(),
            member_id: "member-2".into(),
            value: Some(ConsumerMemberValue {
                instance_id: Some(format!("instance-{n}")),
                rack_id: Some("rack-a".into()),
                client_id: "app".into(),
                client_host: "/10.0.0.2".into(),
                subscribed_topic_names: vec!["orders".into(), format!("payments-{n}")],
                subscribed_topic_regex: Some("orders.*".into()),
                server_assignor: Some("uniform".into()),
                rebalance_timeout_ms: 45_000 + n,
                classic: Some(ClassicMemberMetadata {
                    session_timeout_ms: 10_000 + n,
                    protocols,
                }),
            }),
        },
        Record::ConsumerTargetEpoch {
            group_id: group.into(),
            value: Some(5 + n),
        },
        Record::ConsumerTarget {
            group_id: group.into(),
            member_id: "member-2".into(),
            value: Some(partitions(0)),
        },
        Record::ConsumerAssignment {
            group_id: group.into(),
            member_id: "member-2".into(),
            value: Some(ConsumerAssignmentValue {
                state: MemberState::UnrevokedPartitions,
                member_epoch: 5 + n,
                previous_member_epoch: 4 + n,
                assigned: partitions(0),
                pending_revocation: partitions(100),
                assigned_at: BTreeMap::from([(topic, BTreeMap::from([(0, 4 + n)]))]),
            }),
        },
        Record::PendingOffset {
            group_id: group.into(),
            producer_id: 4_000,
            topic: "orders".into(),
            partition: 3,
            value: Some(offset),
        },
    ]
}
