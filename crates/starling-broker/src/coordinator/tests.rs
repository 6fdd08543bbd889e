//! The runtime over a real metadata store whose writes fail on demand (its failpoint): what
//! clients get while a write fails, that what they see afterwards is exactly what is stored, and
//! that writes resume by themselves once the fault clears.

use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DescribeGroupsRequest, JoinGroupRequest, JoinGroupResponse, ListGroupsRequest,
    OffsetCommitRequest, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use starling_group::GroupValue;
use starling_group::Record;
use starling_meta::MetadataStore;

use super::*;

const TOPIC: &str = "orders";
/// How long any one answer may take: a refusal comes at once, never after a hang.
const ANSWER: Duration = Duration::from_secs(5);

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    }
}

/// A request sent but not answered yet.
type Pending<'a> = Pin<Box<dyn Future<Output = Result<GroupResponse, CoordinatorError>> + 'a>>;

fn client() -> ClientInfo {
    ClientInfo {
        client_id: "test".into(),
        client_host: "/127.0.0.1".into(),
    }
}

fn join_request(group: &str, member_id: &str) -> GroupRequest {
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = s("range");
    protocol.metadata = Bytes::from_static(b"subscription");
    let mut request = JoinGroupRequest::default();
    request.group_id = s(group).into();
    request.member_id = s(member_id);
    request.session_timeout_ms = 30_000;
    request.rebalance_timeout_ms = 60_000;
    request.protocol_type = s("consumer");
    request.protocols = vec![protocol];
    GroupRequest::Join(request)
}

fn sync_request(
    group: &str,
    member_id: &str,
    generation: i32,
    assignments: &[&str],
) -> GroupRequest {
    let mut request = SyncGroupRequest::default();
    request.group_id = s(group).into();
    request.member_id = s(member_id);
    request.generation_id = generation;
    request.assignments = assignments
        .iter()
        .map(|member| {
            let mut a = SyncGroupRequestAssignment::default();
            a.member_id = s(member);
            a.assignment = Bytes::from(format!("partitions of {member}"));
            a
        })
        .collect();
    GroupRequest::Sync(request)
}

/// A coordinator task over a store in a temporary directory.
struct Fixture {
    dir: tempfile::TempDir,
    store: Arc<MetadataStore>,
    metrics: Arc<Metrics>,
    handle: CoordinatorHandle,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Fixture {
    async fn start() -> Fixture {
        Fixture::start_in(tempfile::tempdir().unwrap()).await
    }

    async fn start_in(dir: tempfile::TempDir) -> Fixture {
        Fixture::start_on(dir, Clocks::system()).await
    }

    async fn start_on(dir: tempfile::TempDir, clocks: Clocks) -> Fixture {
        let store = Arc::new(MetadataStore::open(&dir.path().join("meta.redb")).unwrap());
        let metrics = Arc::new(Metrics::new());
        let shutdown = CancellationToken::new();
        let (handle, task) = start_with_clocks(
            config(),
            store.clone().into(),
            metrics.clone(),
            shutdown.clone(),
            watch::Sender::new(TopicsImage::default()).subscribe(),
            clocks,
        )
        .await
        .unwrap();
        Fixture {
            dir,
            store,
            metrics,
            handle,
            shutdown,
            task,
        }
    }

    /// Stops the task and starts a new one on the same store file, as a broker restart does.
    async fn restart(self) -> Fixture {
        self.shutdown.cancel();
        self.task.await.unwrap();
        let dir = self.dir;
        drop((self.handle, self.store));
        Fixture::start_in(dir).await
    }

    async fn call(&self, version: i16, request: GroupRequest) -> GroupResponse {
        answer(Box::pin(self.handle.call(version, client(), request))).await
    }

    /// Sends `request` without waiting for the answer. Once this returns the request is queued
    /// ahead of any sent later, so when a later request is answered this one has been handled.
    async fn send(&self, version: i16, request: GroupRequest) -> Pending<'_> {
        let mut pending: Pending<'_> = Box::pin(self.handle.call(version, client(), request));
        // The first poll queues the request; it cannot be answered before it is handled.
        let polled = tokio::time::timeout(Duration::from_millis(1), &mut pending).await;
        assert!(polled.is_err(), "answered at once: {polled:?}");
        pending
    }

    /// Commits `offsets` of [`TOPIC`] for a group outside group management; returns each
    /// partition's error code.
    async fn commit(&self, group: &str, offsets: &[(i32, i64)]) -> Vec<i16> {
        let mut topic = OffsetCommitRequestTopic::default();
        topic.name = s(TOPIC).into();
        topic.partitions = offsets
            .iter()
            .map(|&(partition, offset)| {
                let mut p = OffsetCommitRequestPartition::default();
                p.partition_index = partition;
                p.committed_offset = offset;
                p
            })
            .collect();
        let mut request = OffsetCommitRequest::default();
        request.group_id = s(group).into();
        request.generation_id_or_member_epoch = -1;
        request.topics = vec![topic];
        let GroupResponse::OffsetCommit(response) =
            self.call(8, GroupRequest::OffsetCommit(request)).await
        else {
            panic!("not an OffsetCommit response");
        };
        response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }

    async fn fetch_response(&self, group: &str, partitions: &[i32]) -> OffsetFetchResponse {
        let mut topic = OffsetFetchRequestTopic::default();
        topic.name = s(TOPIC).into();
        topic.partition_indexes = partitions.to_vec();
        let mut request = OffsetFetchRequest::default();
        request.group_id = s(group).into();
        request.topics = Some(vec![topic]);
        let GroupResponse::OffsetFetch(response) =
            self.call(7, GroupRequest::OffsetFetch(request)).await
        else {
            panic!("not an OffsetFetch response");
        };
        response
    }

    /// The committed offsets of `partitions` (-1: none), or the top-level error code.
    async fn fetch(&self, group: &str, partitions: &[i32]) -> Result<Vec<i64>, i16> {
        let response = self.fetch_response(group, partitions).await;
        if response.error_code != 0 {
            return Err(response.error_code);
        }
        Ok(response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.committed_offset))
            .collect())
    }

    /// Fetches until the coordinator serves again (it retries loading with a backoff).
    async fn fetch_when_served(&self, group: &str, partitions: &[i32]) -> Vec<i64> {
        let deadline = Instant::now() + ANSWER;
        loop {
            match self.fetch(group, partitions).await {
                Ok(offsets) => return offsets,
                Err(code) if Instant::now() < deadline => {
                    assert_eq!(code, NOT_LOADED.code());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(code) => panic!("still refused with {code} after {ANSWER:?}"),
            }
        }
    }

    async fn join(&self, group: &str, member_id: &str) -> JoinGroupResponse {
        join_response(self.call(9, join_request(group, member_id)).await)
    }

    /// A new member's id: the KIP-394 round trip that hands one out.
    async fn member_id(&self, group: &str) -> String {
        let response = self.join(group, "").await;
        assert_eq!(response.error_code, ResponseError::MemberIdRequired.code());
        response.member_id.to_string()
    }

    async fn sync(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        assignments: &[&str],
    ) -> SyncGroupResponse {
        sync_response(
            self.call(5, sync_request(group, member_id, generation, assignments))
                .await,
        )
    }

    /// (state, member ids) as DescribeGroups shows them.
    async fn describe(&self, group: &str) -> (String, Vec<String>) {
        let mut request = DescribeGroupsRequest::default();
        request.groups = vec![s(group).into()];
        let GroupResponse::DescribeGroups(response) =
            self.call(5, GroupRequest::DescribeGroups(request)).await
        else {
            panic!("not a DescribeGroups response");
        };
        let described = &response.groups[0];
        assert_eq!(described.error_code, 0);
        let mut members: Vec<String> = described
            .members
            .iter()
            .map(|m| m.member_id.to_string())
            .collect();
        members.sort();
        (described.group_state.to_string(), members)
    }

    /// A group with one member, `Stable` at generation 1; returns the member's id.
    async fn stable_group(&self, group: &str) -> String {
        let member = self.member_id(group).await;
        let joined = self.join(group, &member).await;
        assert_eq!((joined.error_code, joined.generation_id), (0, 1));
        let synced = self.sync(group, &member, 1, &[&member]).await;
        assert_eq!(synced.error_code, 0);
        member
    }

    /// The group's record in the store: (generation, member ids).
    fn stored_group(&self, group: &str) -> (i32, Vec<String>) {
        let key = format!("g/{group}");
        let record = self
            .store
            .group_records()
            .unwrap()
            .into_iter()
            .find(|r| r.key() == key)
            .expect("the group is stored");
        let Record::Group {
            value:
                Some(GroupValue {
                    generation,
                    members,
                    ..
                }),
            ..
        } = record
        else {
            panic!("not a group record");
        };
        let mut ids: Vec<String> = members.into_iter().map(|m| m.member_id).collect();
        ids.sort();
        (generation, ids)
    }

    async fn overview_generation(&self, group: &str) -> i32 {
        let groups = self.handle.overview().await.unwrap();
        groups
            .iter()
            .find(|g| g.group_id == group)
            .expect("the group is held")
            .generation
    }

    /// Waits until the store and the coordinator report no fault.
    async fn healthy(&self) {
        let deadline = Instant::now() + ANSWER;
        while self.handle.storage_health().is_degraded() {
            assert!(
                Instant::now() < deadline,
                "still degraded after {ANSWER:?}: {:?}",
                self.handle.storage_health()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits for a request's answer, which must come promptly and be a response.
async fn answer(pending: Pending<'_>) -> GroupResponse {
    tokio::time::timeout(ANSWER, pending)
        .await
        .expect("the coordinator answers promptly")
        .expect("the coordinator answers with a response, not a closed connection")
}

fn join_response(response: GroupResponse) -> JoinGroupResponse {
    match response {
        GroupResponse::Join(r) => r,
        other => panic!("not a JoinGroup response: {other:?}"),
    }
}

fn sync_response(response: GroupResponse) -> SyncGroupResponse {
    match response {
        GroupResponse::Sync(r) => r,
        other => panic!("not a SyncGroup response: {other:?}"),
    }
}

/// A wall clock the test sets by hand.
fn settable_wall_clock(start: i64) -> (Arc<std::sync::atomic::AtomicI64>, Clocks) {
    let wall = Arc::new(std::sync::atomic::AtomicI64::new(start));
    let reader = wall.clone();
    let clocks = Clocks::with_wall_clock(Arc::new(move || {
        reader.load(std::sync::atomic::Ordering::SeqCst)
    }));
    (wall, clocks)
}

const HOUR_MS: i64 = 3_600_000;

#[tokio::test(start_paused = true)]
async fn session_timeouts_run_on_the_monotonic_clock_whatever_the_wall_clock_does() {
    let (wall, clocks) = settable_wall_clock(1_700_000_000_000);
    let f = Fixture::start_on(tempfile::tempdir().unwrap(), clocks).await;
    let member = f.stable_group("g").await;
    // The wall clock jumps a day ahead: the session (30 s) does not run out.
    wall.fetch_add(24 * HOUR_MS, std::sync::atomic::Ordering::SeqCst);
    tokio::time::advance(Duration::from_millis(29_000)).await;
    assert_eq!(
        f.describe("g").await,
        ("Stable".to_string(), vec![member.clone()])
    );
    // The wall clock jumps two days back: the session still runs out 30 s after the join.
    wall.fetch_sub(48 * HOUR_MS, std::sync::atomic::Ordering::SeqCst);
    tokio::time::advance(Duration::from_millis(1_001)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while f.describe("g").await.1.contains(&member) {
        assert!(Instant::now() < deadline, "the session never ran out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(f.describe("g").await.0, "Empty");
}

#[tokio::test(start_paused = true)]
async fn stored_timestamps_come_from_the_wall_clock() {
    let (wall, clocks) = settable_wall_clock(1_700_000_000_000);
    let f = Fixture::start_on(tempfile::tempdir().unwrap(), clocks).await;
    tokio::time::advance(Duration::from_millis(5_000)).await;
    wall.store(1_800_000_000_000, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(f.commit("g", &[(0, 42)]).await, vec![0]);
    let stored = f
        .store
        .group_records()
        .unwrap()
        .into_iter()
        .find(|r| r.key().starts_with("o/g/"))
        .expect("the offset is stored");
    let Record::Offset {
        value: Some(value), ..
    } = stored
    else {
        panic!("not an offset record");
    };
    assert_eq!(value.commit_timestamp, 1_800_000_000_000);
}

#[tokio::test]
async fn a_commit_whose_write_fails_gets_not_coordinator_per_partition_and_fetch_shows_the_stored_offsets(
) {
    let f = Fixture::start().await;
    assert_eq!(f.commit("g", &[(0, 5), (1, 5)]).await, vec![0, 0]);

    f.store.failpoint().fail_writes(1, ErrorKind::StorageFull);
    assert_eq!(
        f.commit("g", &[(0, 9), (1, 9)]).await,
        vec![STORE_FAILED.code(); 2]
    );
    // The core had applied offset 9; what is served is what is stored.
    assert_eq!(f.fetch_when_served("g", &[0, 1]).await, vec![5, 5]);
    let groups = f.handle.overview().await.unwrap();
    assert_eq!(
        groups[0].offsets,
        vec![(TOPIC.into(), 0, 5), (TOPIC.into(), 1, 5)]
    );

    // One failed write does not break the store: the next commit is stored.
    assert_eq!(f.commit("g", &[(0, 9), (1, 9)]).await, vec![0, 0]);
    assert_eq!(f.fetch("g", &[0, 1]).await, Ok(vec![9, 9]));
}

#[tokio::test]
async fn while_writes_keep_failing_requests_are_refused_at_once_and_served_again_once_the_fault_clears(
) {
    let f = Fixture::start().await;
    assert_eq!(f.commit("g", &[(0, 5)]).await, vec![0]);

    f.store
        .failpoint()
        .fail_writes(u64::MAX, ErrorKind::StorageFull);
    assert_eq!(f.commit("g", &[(0, 9)]).await, vec![STORE_FAILED.code()]);
    // The store cannot even be opened again (that writes too): nothing is served, promptly.
    assert_eq!(f.fetch("g", &[0]).await, Err(NOT_LOADED.code()));
    assert_eq!(f.commit("g", &[(0, 10)]).await, vec![NOT_LOADED.code()]);
    assert!(matches!(
        f.handle.overview().await,
        Err(CoordinatorError::NotLoaded(_))
    ));
    let health = f.handle.storage_health();
    assert!(health.store_fault.is_some(), "{health:?}");
    assert!(health.coordinator_fault.is_some(), "{health:?}");

    f.store.failpoint().clear();
    assert_eq!(f.fetch_when_served("g", &[0]).await, vec![5]);
    assert_eq!(f.commit("g", &[(0, 11)]).await, vec![0]);
    f.healthy().await;

    // A restart shows exactly the acknowledged commits.
    let f = f.restart().await;
    assert_eq!(f.fetch("g", &[0]).await, Ok(vec![11]));
}

#[tokio::test]
async fn a_join_completing_during_a_write_fault_is_refused_and_the_group_keeps_its_stored_membership(
) {
    let f = Fixture::start().await;
    let a = f.stable_group("g").await;
    assert_eq!(f.stored_group("g"), (1, vec![a.clone()]));

    // b joins: the group waits for a to rejoin.
    let b = f.member_id("g").await;
    let b_join = f.send(9, join_request("g", &b)).await;
    assert_eq!(f.describe("g").await.0, "PreparingRebalance");

    // a rejoins, which completes the join phase: generation 2 with a and b is written, and fails.
    f.store.failpoint().fail_writes(1, ErrorKind::StorageFull);
    let a_join = f.join("g", &a).await;
    assert_eq!(a_join.error_code, STORE_FAILED.code());
    let b_join = join_response(answer(b_join).await);
    assert_eq!(
        (b_join.error_code, b_join.member_id.to_string()),
        (STORE_FAILED.code(), b.clone())
    );

    // What the coordinator shows is what the store holds: generation 1, a alone.
    let deadline = Instant::now() + ANSWER;
    let described = loop {
        if let Ok(groups) = f.handle.overview().await {
            break groups;
        }
        assert!(Instant::now() < deadline, "the coordinator did not reload");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(described[0].generation, 1);
    assert_eq!(f.stored_group("g"), (1, vec![a.clone()]));
    assert_eq!(f.describe("g").await, ("Stable".into(), vec![a.clone()]));
    assert_eq!(f.overview_generation("g").await, 1);
}

#[tokio::test]
async fn a_held_sync_is_refused_when_another_requests_write_fails() {
    let f = Fixture::start().await;
    let a = f.stable_group("g").await;
    let b = f.member_id("g").await;
    let b_join = f.send(9, join_request("g", &b)).await;
    let a_join = f.join("g", &a).await;
    let b_join = join_response(answer(b_join).await);
    assert_eq!((a_join.error_code, b_join.error_code), (0, 0));
    assert_eq!(a_join.generation_id, 2);
    let follower = if a_join.leader.as_str() == a { &b } else { &a };
    // The follower's SyncGroup waits for the leader's assignment.
    let held = f.send(5, sync_request("g", follower, 2, &[])).await;

    // Another group's commit fails to be written: the core the sync waits in is dropped.
    f.store.failpoint().fail_writes(1, ErrorKind::StorageFull);
    assert_eq!(
        f.commit("other", &[(0, 1)]).await,
        vec![STORE_FAILED.code()]
    );
    let held = sync_response(answer(held).await);
    assert_eq!(held.error_code, STORE_FAILED.code());
}

#[tokio::test]
async fn a_fault_left_by_another_write_is_retried_until_the_store_takes_writes_again() {
    let f = Fixture::start().await;
    f.store
        .failpoint()
        .fail_writes(u64::MAX, ErrorKind::StorageFull);
    // A topic change fails; the coordinator's state is not involved.
    assert!(f
        .store
        .put_topic(&starling_meta::TopicRecord::new("t", 1))
        .is_err());
    // Any request wakes the task, which sees the fault and starts retrying.
    let GroupResponse::ListGroups(listed) = f
        .call(4, GroupRequest::ListGroups(ListGroupsRequest::default()))
        .await
    else {
        panic!("not a ListGroups response");
    };
    assert_eq!(listed.error_code, 0);
    assert!(f.handle.storage_health().store_fault.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let errors = f.handle.storage_health().storage_errors;
    assert!(errors >= 2, "retries count as errors too: {errors}");

    f.store.failpoint().clear();
    f.healthy().await;
}

#[tokio::test]
async fn storage_errors_and_the_degraded_state_are_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config::BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        ..crate::config::BrokerConfig::default()
    };
    let f = Fixture::start().await;
    let topics =
        crate::topics::TopicRegistry::open(&config, f.store.clone().into(), Vec::new()).unwrap();
    let scrape = |f: &Fixture| {
        f.metrics
            .encode(&topics, None, None, &f.handle.storage_health())
            .unwrap()
    };
    let text = scrape(&f);
    assert!(
        text.contains("starling_storage_errors_total{store=\"metadata\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("starling_storage_degraded{store=\"metadata\"} 0\n"),
        "{text}"
    );

    f.store.failpoint().fail_writes(1, ErrorKind::StorageFull);
    assert_eq!(f.commit("g", &[(0, 1)]).await, vec![STORE_FAILED.code()]);
    let text = scrape(&f);
    assert!(
        text.contains("starling_storage_errors_total{store=\"metadata\"} 1\n"),
        "{text}"
    );
    f.healthy().await;
    let text = scrape(&f);
    assert!(
        text.contains("starling_storage_degraded{store=\"metadata\"} 0\n"),
        "{text}"
    );
}
