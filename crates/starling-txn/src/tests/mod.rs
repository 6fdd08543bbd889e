//! Behaviour tests of the transaction coordinator core, on simulated time, and property tests
//! over random sequences of producers, timeouts, marker completions and restarts.

mod behaviour_tests;
mod property_tests;

use std::collections::BTreeMap;

use crate::*;

/// The coordinator, a simulated clock, a store that keeps the latest record of each key (as the
/// metadata store does), and the marker jobs started but not yet carried out.
pub(crate) struct Harness {
    pub coordinator: TransactionCoordinator,
    pub now: i64,
    pub store: BTreeMap<String, TxnRecord>,
    pub jobs: Vec<MarkerJob>,
    next_producer_id: i64,
}

pub(crate) const TIMEOUT: i32 = 60_000;

pub(crate) fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(TxnConfig::default())
    }

    pub fn with_config(config: TxnConfig) -> Harness {
        Harness {
            coordinator: TransactionCoordinator::new(config),
            now: 1_000_000,
            store: BTreeMap::new(),
            jobs: Vec::new(),
            next_producer_id: 1000,
        }
    }

    fn keep(&mut self, changes: Changes) {
        for r in changes.records {
            self.store.insert(r.key(), r);
        }
        self.jobs.extend(changes.markers);
    }

    pub fn handle(&mut self, request: TxnRequest) -> Result<ProducerIdAndEpoch, TxnError> {
        let out = self.coordinator.handle(request, self.now);
        self.keep(out.changes);
        out.result
    }

    pub fn init_with(
        &mut self,
        id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
    ) -> Result<ProducerIdAndEpoch, TxnError> {
        let fresh_producer_id = self.next_producer_id;
        self.next_producer_id += 1;
        self.handle(TxnRequest::InitProducerId {
            transactional_id: id.into(),
            timeout_ms,
            expected,
            fresh_producer_id,
        })
    }

    pub fn init(&mut self, id: &str) -> Result<ProducerIdAndEpoch, TxnError> {
        self.init_with(id, TIMEOUT, None)
    }

    pub fn add(
        &mut self,
        id: &str,
        producer: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
    ) -> Result<ProducerIdAndEpoch, TxnError> {
        self.handle(TxnRequest::AddPartitions {
            transactional_id: id.into(),
            producer,
            partitions: partitions.to_vec(),
        })
    }

    pub fn add_group(
        &mut self,
        id: &str,
        producer: ProducerIdAndEpoch,
        group: &str,
    ) -> Result<ProducerIdAndEpoch, TxnError> {
        self.handle(TxnRequest::AddGroup {
            transactional_id: id.into(),
            producer,
            group_id: group.into(),
        })
    }

    pub fn end(
        &mut self,
        id: &str,
        producer: ProducerIdAndEpoch,
        commit: bool,
    ) -> Result<ProducerIdAndEpoch, TxnError> {
        self.handle(TxnRequest::EndTxn {
            transactional_id: id.into(),
            producer,
            commit,
        })
    }

    /// Carries out every started marker job, oldest first.
    pub fn write_markers(&mut self) -> Vec<MarkerJob> {
        let jobs = std::mem::take(&mut self.jobs);
        for job in &jobs {
            let changes = self.coordinator.markers_written(job, self.now);
            self.keep(changes);
        }
        jobs
    }

    pub fn advance(&mut self, ms: i64) -> Changes {
        self.now += ms;
        let changes = self.coordinator.expire(self.now);
        self.keep(changes.clone());
        changes
    }

    pub fn state(&self, id: &str) -> TxnState {
        self.coordinator.get(id).expect("known id").state
    }

    /// Loads a new coordinator from the store, as a restart does; marker jobs in flight are
    /// lost and the ones `loaded` returns take their place.
    pub fn restart(&mut self) {
        let mut c = TransactionCoordinator::new(self.coordinator.config().clone());
        for r in self.store.values() {
            c.replay(r);
        }
        self.jobs = c.loaded().markers;
        self.coordinator = c;
    }

    /// The coordinator's state as the store would rebuild it equals its live state.
    pub fn assert_store_matches(&self) {
        let mut c = TransactionCoordinator::new(self.coordinator.config().clone());
        for r in self.store.values() {
            c.replay(r);
        }
        let stored: Vec<_> = c.iter().map(|(i, v)| (i.to_string(), v.clone())).collect();
        let live: Vec<_> = self
            .coordinator
            .iter()
            .map(|(i, v)| (i.to_string(), v.clone()))
            .collect();
        assert_eq!(stored, live, "replaying the store gives the live state");
        assert_eq!(c.next_deadline(), self.coordinator.next_deadline());
    }
}
