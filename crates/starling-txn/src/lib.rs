//! Starling's transaction coordinator core: Kafka's transaction state machine for
//! transactional producers, as pure code — requests and `now` go in; a result, records to
//! persist and marker jobs come out. No I/O, no clock, no threads.
//!
//! # Guide
//!
//! * [`TransactionCoordinator::handle`] takes one request ([`TxnRequest`]: InitProducerId with a
//!   transactional id, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn) and returns an [`Output`]:
//!   the request's result, the [`TxnRecord`]s to persist **before** answering, and the
//!   [`MarkerJob`]s to start once they are persisted.
//! * Ending a transaction is two steps, as in Kafka. EndTxn (or a timeout, or a new instance
//!   fencing an open transaction) moves the id to `PrepareCommit`/`PrepareAbort` and emits a
//!   [`MarkerJob`]: the caller writes a commit or abort marker to every partition of the
//!   transaction and settles the offsets it committed in each group, then reports
//!   [`TransactionCoordinator::markers_written`], which completes the transaction. Until then
//!   the id answers CONCURRENT_TRANSACTIONS. A job is emitted again at start-up
//!   ([`TransactionCoordinator::loaded`]) for every transaction decided but not complete, so a
//!   crash never leaves one half-written; jobs must therefore be safe to repeat.
//! * Time only comes from the `now_ms` arguments (wall-clock milliseconds, as Kafka's
//!   transaction timestamps are). Open transactions time out after their producer's
//!   `transaction.timeout.ms` and idle ids expire after `transactional.id.expiration.ms`:
//!   [`TransactionCoordinator::next_deadline`] says when to call
//!   [`TransactionCoordinator::expire`] next.
//! * State changes only by applying records, through the same path start-up uses
//!   ([`TransactionCoordinator::replay`]).
//!
//! The behaviour follows Apache Kafka's `TransactionCoordinator` and `TransactionMetadata`
//! (transaction protocol version 1), including KIP-360's producer epoch bumps and producer id
//! rotation, and KIP-588's PRODUCER_FENCED (callers map it to INVALID_PRODUCER_EPOCH for
//! request versions that predate it).

mod state;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

pub use state::{
    ProducerIdAndEpoch, TopicPartition, TransactionValue, TxnRecord, TxnState, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
};

/// The coordinator's settings, under Kafka's property names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a producer may ask for.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: how long an id with no open transaction is kept
    /// without any request from its producer.
    pub id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
        }
    }
}

/// A request to the transaction coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRequest {
    /// InitProducerId with a transactional id. `fresh_producer_id` is an id nobody has had,
    /// used if the transactional id is new or its epochs are exhausted.
    InitProducerId {
        transactional_id: String,
        timeout_ms: i32,
        /// The producer id and epoch the producer had (KIP-360), if it sent them.
        expected: Option<ProducerIdAndEpoch>,
        fresh_producer_id: i64,
    },
    /// AddPartitionsToTxn: the producer is about to write to these partitions.
    AddPartitions {
        transactional_id: String,
        producer: ProducerIdAndEpoch,
        partitions: Vec<TopicPartition>,
    },
    /// AddOffsetsToTxn: the producer is about to commit offsets for this group.
    AddGroup {
        transactional_id: String,
        producer: ProducerIdAndEpoch,
        group_id: String,
    },
    /// EndTxn: commit or abort the open transaction.
    EndTxn {
        transactional_id: String,
        producer: ProducerIdAndEpoch,
        commit: bool,
    },
}

impl TxnRequest {
    pub fn transactional_id(&self) -> &str {
        match self {
            TxnRequest::InitProducerId {
                transactional_id, ..
            }
            | TxnRequest::AddPartitions {
                transactional_id, ..
            }
            | TxnRequest::AddGroup {
                transactional_id, ..
            }
            | TxnRequest::EndTxn {
                transactional_id, ..
            } => transactional_id,
        }
    }
}

/// Why a request was refused, as Kafka's error codes name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnError {
    /// An empty transactional id.
    InvalidRequest,
    /// A transaction timeout of zero or less, or above `transaction.max.timeout.ms`.
    InvalidTransactionTimeout,
    /// The id's last transaction is still being completed (or was just fenced): retry.
    ConcurrentTransactions,
    /// Another instance took over the transactional id (a later epoch), or the transaction
    /// timed out and was aborted with a bumped epoch.
    ProducerFenced,
    /// The producer id is not the one this transactional id has, or the id is unknown.
    InvalidProducerIdMapping,
    /// The request does not fit the transaction's state (EndTxn with no open transaction, a
    /// commit of an aborting one, a write to a partition never added).
    InvalidTxnState,
}

impl fmt::Display for TxnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TxnError::InvalidRequest => "INVALID_REQUEST",
            TxnError::InvalidTransactionTimeout => "INVALID_TRANSACTION_TIMEOUT",
            TxnError::ConcurrentTransactions => "CONCURRENT_TRANSACTIONS",
            TxnError::ProducerFenced => "PRODUCER_FENCED",
            TxnError::InvalidProducerIdMapping => "INVALID_PRODUCER_ID_MAPPING",
            TxnError::InvalidTxnState => "INVALID_TXN_STATE",
        })
    }
}

/// Markers to write for a decided transaction, and the groups whose transactional offsets it
/// settles. Carrying it out twice must be harmless (see the crate docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerJob {
    pub transactional_id: String,
    /// The producer id and the epoch the markers carry (bumped when the abort fenced the
    /// producer, so its late writes are refused).
    pub producer: ProducerIdAndEpoch,
    pub commit: bool,
    pub partitions: BTreeSet<TopicPartition>,
    pub groups: BTreeSet<String>,
}

/// What a step changed: records to persist (in order, before anything of the step is
/// visible) and marker jobs to start once they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub records: Vec<TxnRecord>,
    pub markers: Vec<MarkerJob>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.markers.is_empty()
    }
}

/// A request's outcome: its result (the producer id and epoch it leaves the producer at) and
/// what it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub result: Result<ProducerIdAndEpoch, TxnError>,
    pub changes: Changes,
}

/// Kafka refuses to hand out the last epochs of a producer id, so a fencing bump always fits.
fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// Every transactional id this broker coordinates.
#[derive(Debug, Default)]
pub struct TransactionCoordinator {
    config: TxnConfig,
    txns: BTreeMap<String, TransactionValue>,
    /// Producer id → transactional id, for the partitions' and groups' checks.
    by_producer: HashMap<i64, String>,
    /// When each id next needs [`TransactionCoordinator::expire`]: (deadline, id).
    deadlines: BTreeSet<(i64, String)>,
}

impl TransactionCoordinator {
    pub fn new(config: TxnConfig) -> TransactionCoordinator {
        TransactionCoordinator {
            config,
            ..TransactionCoordinator::default()
        }
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// Applies one stored record (start-up replay, and every live change).
    pub fn replay(&mut self, record: &TxnRecord) {
        let id = &record.transactional_id;
        if let Some(old) = self.txns.remove(id) {
            self.by_producer.remove(&old.producer_id);
            if let Some(d) = self.deadline_of(&old) {
                self.deadlines.remove(&(d, id.clone()));
            }
        }
        if let Some(value) = &record.value {
            self.by_producer.insert(value.producer_id, id.clone());
            if let Some(d) = self.deadline_of(value) {
                self.deadlines.insert((d, id.clone()));
            }
            self.txns.insert(id.clone(), value.clone());
        }
    }

    /// Called once after the last stored record: the marker jobs of every transaction that was
    /// decided but not completed before the broker stopped.
    pub fn loaded(&self) -> Changes {
        let markers = self
            .txns
            .iter()
            .filter(|(_, v)| v.state.is_preparing())
            .map(|(id, v)| marker_job(id, v))
            .collect();
        Changes {
            records: Vec::new(),
            markers,
        }
    }

    /// Handles one request at wall-clock time `now_ms`.
    pub fn handle(&mut self, request: TxnRequest, now_ms: i64) -> Output {
        if request.transactional_id().is_empty() {
            return refused(TxnError::InvalidRequest);
        }
        let output = match request {
            TxnRequest::InitProducerId {
                transactional_id,
                timeout_ms,
                expected,
                fresh_producer_id,
            } => self.init_producer_id(
                transactional_id,
                timeout_ms,
                expected,
                fresh_producer_id,
                now_ms,
            ),
            TxnRequest::AddPartitions {
                transactional_id,
                producer,
                partitions,
            } => self.add_to_transaction(transactional_id, producer, now_ms, |v| {
                let mut changed = false;
                for p in partitions {
                    changed |= v.partitions.insert(p);
                }
                changed
            }),
            TxnRequest::AddGroup {
                transactional_id,
                producer,
                group_id,
            } => self.add_to_transaction(transactional_id, producer, now_ms, |v| {
                v.groups.insert(group_id)
            }),
            TxnRequest::EndTxn {
                transactional_id,
                producer,
                commit,
            } => self.end_transaction(transactional_id, producer, commit, now_ms),
        };
        output.unwrap_or_else(refused)
    }

    /// Completes a decided transaction once its [`MarkerJob`] is carried out. A report for a
    /// transaction that is no longer being completed (a repeated job) changes nothing.
    pub fn markers_written(&mut self, job: &MarkerJob, now_ms: i64) -> Changes {
        let Some(v) = self.txns.get(&job.transactional_id) else {
            return Changes::default();
        };
        let expected = if job.commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        if v.state != expected || v.producer() != job.producer {
            return Changes::default();
        }
        let mut next = v.clone();
        next.state = if job.commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        next.partitions.clear();
        next.groups.clear();
        next.last_update_ms = now_ms;
        self.changes(job.transactional_id.clone(), next, None)
    }

    /// Aborts every open transaction that has run past its timeout (fencing its producer with
    /// a bumped epoch, as Kafka does) and forgets every idle id past
    /// `transactional.id.expiration.ms`.
    pub fn expire(&mut self, now_ms: i64) -> Changes {
        let due: Vec<String> = self
            .deadlines
            .iter()
            .take_while(|(d, _)| *d <= now_ms)
            .map(|(_, id)| id.clone())
            .collect();
        let mut changes = Changes::default();
        for id in due {
            let v = self.txns[&id].clone();
            let step = if v.state == TxnState::Ongoing {
                self.fence_and_abort(id, &v, now_ms)
            } else {
                let record = TxnRecord {
                    transactional_id: id,
                    value: None,
                };
                self.replay(&record);
                Changes {
                    records: vec![record],
                    markers: Vec::new(),
                }
            };
            changes.records.extend(step.records);
            changes.markers.extend(step.markers);
        }
        changes
    }

    /// When [`TransactionCoordinator::expire`] next has work (wall-clock ms).
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    /// A transactional id's state.
    pub fn get(&self, transactional_id: &str) -> Option<&TransactionValue> {
        self.txns.get(transactional_id)
    }

    /// Every transactional id and its state, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TransactionValue)> {
        self.txns.iter().map(|(id, v)| (id.as_str(), v))
    }

    /// The transactional id that holds `producer_id`.
    pub fn transactional_id_of(&self, producer_id: i64) -> Option<&str> {
        self.by_producer.get(&producer_id).map(String::as_str)
    }

    /// Whether `producer` may write transactional data to `partition` now: its transaction is
    /// open and the partition was added to it (KIP-890's check, which keeps a late or stray
    /// write from opening a transaction no one will end).
    pub fn verify_partition(
        &self,
        producer: ProducerIdAndEpoch,
        partition: &TopicPartition,
    ) -> Result<(), TxnError> {
        self.verify(producer, |v| v.partitions.contains(partition))
    }

    /// Whether `producer` may commit offsets for `group_id` in its open transaction
    /// (TxnOffsetCommit after AddOffsetsToTxn).
    pub fn verify_group(
        &self,
        producer: ProducerIdAndEpoch,
        group_id: &str,
    ) -> Result<(), TxnError> {
        self.verify(producer, |v| v.groups.contains(group_id))
    }

    fn verify(
        &self,
        producer: ProducerIdAndEpoch,
        added: impl FnOnce(&TransactionValue) -> bool,
    ) -> Result<(), TxnError> {
        let v = self
            .transactional_id_of(producer.producer_id)
            .and_then(|id| self.txns.get(id));
        verify_open(v, producer, added)
    }

    fn init_producer_id(
        &mut self,
        id: String,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        fresh_producer_id: i64,
        now_ms: i64,
    ) -> Result<Output, TxnError> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let current = self.txns.get(&id).cloned().unwrap_or(TransactionValue {
            producer_id: fresh_producer_id,
            last_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        });
        if let Some(e) = expected {
            // Kafka's `isValidProducerId`: a new id, the current producer id, or a retry of a
            // rotation that exhausted the previous one.
            let valid = current.producer_epoch == NO_PRODUCER_EPOCH
                || e.producer_id == current.producer_id
                || (e.producer_id == current.last_producer_id && is_epoch_exhausted(e.epoch));
            if !valid {
                return Err(TxnError::ProducerFenced);
            }
        }
        match current.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Ongoing => {
                // Abort the open transaction under a bumped epoch first; the producer retries
                // on CONCURRENT_TRANSACTIONS and then gets an epoch of its own (Kafka never
                // hands out the fencing epoch).
                Ok(Output {
                    result: Err(TxnError::ConcurrentTransactions),
                    changes: self.fence_and_abort(id, &current, now_ms),
                })
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let (producer_id, epoch, last_epoch) = if is_epoch_exhausted(current.producer_epoch)
                    && expected.is_none_or(|e| e.epoch == current.producer_epoch)
                {
                    let last = if expected.is_some() {
                        current.producer_epoch
                    } else {
                        NO_PRODUCER_EPOCH
                    };
                    (fresh_producer_id, 0, last)
                } else {
                    let bumped = current.producer_epoch + 1;
                    let (epoch, last) = match expected {
                        None => (bumped, NO_PRODUCER_EPOCH),
                        Some(e)
                            if current.producer_epoch == NO_PRODUCER_EPOCH
                                || e.epoch == current.producer_epoch =>
                        {
                            (bumped, current.producer_epoch)
                        }
                        // A retry of a bump whose response was lost: the same epoch again.
                        Some(e) if e.epoch == current.last_producer_epoch => {
                            (current.producer_epoch, current.last_producer_epoch)
                        }
                        Some(_) => return Err(TxnError::ProducerFenced),
                    };
                    (current.producer_id, epoch, last)
                };
                let next = TransactionValue {
                    producer_id,
                    last_producer_id: current.producer_id,
                    producer_epoch: epoch,
                    last_producer_epoch: last_epoch,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    groups: BTreeSet::new(),
                    start_ms: -1,
                    last_update_ms: now_ms,
                };
                let producer = next.producer();
                Ok(accepted(producer, self.changes(id, next, None)))
            }
        }
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn: `add` puts the new members into the
    /// transaction and says whether any was new.
    fn add_to_transaction(
        &mut self,
        id: String,
        producer: ProducerIdAndEpoch,
        now_ms: i64,
        add: impl FnOnce(&mut TransactionValue) -> bool,
    ) -> Result<Output, TxnError> {
        let current = self.current(&id, producer)?;
        if current.state.is_preparing() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let mut next = current.clone();
        let added = add(&mut next);
        if current.state == TxnState::Ongoing && !added {
            return Ok(accepted(producer, Changes::default()));
        }
        if !current.state.has_pending_transaction() {
            // The first addition opens the transaction; markers of the last one are gone.
            next.start_ms = now_ms;
            if !added {
                return Ok(accepted(producer, Changes::default()));
            }
        }
        next.state = TxnState::Ongoing;
        next.last_producer_id = current.producer_id;
        next.last_update_ms = now_ms;
        Ok(accepted(producer, self.changes(id, next, None)))
    }

    fn end_transaction(
        &mut self,
        id: String,
        producer: ProducerIdAndEpoch,
        commit: bool,
        now_ms: i64,
    ) -> Result<Output, TxnError> {
        let current = self.current(&id, producer)?;
        let (prepare, complete) = if commit {
            (TxnState::PrepareCommit, TxnState::CompleteCommit)
        } else {
            (TxnState::PrepareAbort, TxnState::CompleteAbort)
        };
        match current.state {
            TxnState::Ongoing => {
                let mut next = current.clone();
                next.state = prepare;
                next.last_producer_id = current.producer_id;
                next.last_update_ms = now_ms;
                let job = marker_job(&id, &next);
                Ok(accepted(producer, self.changes(id, next, Some(job))))
            }
            // A retry of an EndTxn that completed, or one still completing.
            s if s == complete => Ok(accepted(producer, Changes::default())),
            s if s == prepare => Err(TxnError::ConcurrentTransactions),
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// The id's state, if `producer` is the one it holds (Kafka's checks for AddPartitions,
    /// AddOffsets and EndTxn, in its order).
    fn current(
        &self,
        id: &str,
        producer: ProducerIdAndEpoch,
    ) -> Result<&TransactionValue, TxnError> {
        let v = self
            .txns
            .get(id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        if v.producer_id != producer.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if v.producer_epoch != producer.epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(v)
    }

    /// Aborts `current`'s open transaction under a bumped epoch, which fences the producer
    /// that opened it (Kafka's `PrepareEpochFence` followed by `PrepareAbort`, stored as one
    /// record).
    fn fence_and_abort(&mut self, id: String, current: &TransactionValue, now_ms: i64) -> Changes {
        let mut next = current.clone();
        next.producer_epoch = current.producer_epoch + 1;
        next.last_producer_epoch = NO_PRODUCER_EPOCH;
        next.last_producer_id = current.producer_id;
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms;
        let job = marker_job(&id, &next);
        self.changes(id, next, Some(job))
    }

    /// Applies `next` as a record and returns it (and `job`) as the step's changes.
    fn changes(&mut self, id: String, next: TransactionValue, job: Option<MarkerJob>) -> Changes {
        let record = TxnRecord {
            transactional_id: id,
            value: Some(next),
        };
        self.replay(&record);
        Changes {
            records: vec![record],
            markers: job.into_iter().collect(),
        }
    }

    /// When `value` next needs [`TransactionCoordinator::expire`].
    fn deadline_of(&self, value: &TransactionValue) -> Option<i64> {
        match value.state {
            TxnState::Ongoing => Some(value.start_ms.saturating_add(i64::from(value.timeout_ms))),
            TxnState::PrepareCommit | TxnState::PrepareAbort => None,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => Some(
                value
                    .last_update_ms
                    .saturating_add(self.config.id_expiration_ms),
            ),
        }
    }
}

/// Whether `producer` may write in its open transaction, `value` being the state of the
/// transactional id that holds it (`None`: no id does) and `added` whether the partition or
/// group was added to the transaction. The coordinator's check, also made by a partition leader
/// on another node from the stored state.
pub fn verify_open(
    value: Option<&TransactionValue>,
    producer: ProducerIdAndEpoch,
    added: impl FnOnce(&TransactionValue) -> bool,
) -> Result<(), TxnError> {
    let v = value
        .filter(|v| v.producer_id == producer.producer_id)
        .ok_or(TxnError::InvalidProducerIdMapping)?;
    if producer.epoch < v.producer_epoch {
        return Err(TxnError::ProducerFenced);
    }
    if producer.epoch != v.producer_epoch || v.state != TxnState::Ongoing || !added(v) {
        return Err(TxnError::InvalidTxnState);
    }
    Ok(())
}

fn accepted(producer: ProducerIdAndEpoch, changes: Changes) -> Output {
    Output {
        result: Ok(producer),
        changes,
    }
}

fn refused(error: TxnError) -> Output {
    Output {
        result: Err(error),
        changes: Changes::default(),
    }
}

fn marker_job(id: &str, value: &TransactionValue) -> MarkerJob {
    MarkerJob {
        transactional_id: id.to_string(),
        producer: value.producer(),
        commit: value.state == TxnState::PrepareCommit,
        partitions: value.partitions.clone(),
        groups: value.groups.clone(),
    }
}
