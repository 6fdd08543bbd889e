//! A transactional id's durable state — what [`TxnRecord`]s carry and replay rebuilds — and the
//! small value types the coordinator speaks in.
//!
//! The stored form is serde (the metadata store writes it as versioned JSON): fields may be
//! added with defaults, never renamed or given a new meaning.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Kafka's "no producer epoch": a transactional id that has not been initialised yet.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Kafka's "no producer id".
pub const NO_PRODUCER_ID: i64 = -1;

/// A partition of a topic, by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A producer id and the epoch it is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub epoch: i16,
}

impl ProducerIdAndEpoch {
    pub fn new(producer_id: i64, epoch: i16) -> ProducerIdAndEpoch {
        ProducerIdAndEpoch { producer_id, epoch }
    }
}

/// Where a transactional id's current (or last) transaction stands — Kafka's states, minus the
/// two that never reach its log (`PrepareEpochFence` is folded into the `PrepareAbort` that
/// follows it, `Dead` is a deleted record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TxnState {
    /// Initialised; no transaction since.
    Empty,
    /// A transaction is open: partitions or groups were added and it has not ended.
    Ongoing,
    /// Commit decided; markers are being written.
    PrepareCommit,
    /// Abort decided (by the producer, a timeout or a fencing); markers are being written.
    PrepareAbort,
    /// The last transaction committed and every marker is written.
    CompleteCommit,
    /// The last transaction aborted and every marker is written.
    CompleteAbort,
}

impl TxnState {
    /// Kafka's name for the state, as DescribeTransactions and ListTransactions report it.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    /// The state named `name` (Kafka's spelling, as ListTransactions filters give it).
    pub fn from_name(name: &str) -> Option<TxnState> {
        [
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::PrepareAbort,
            TxnState::CompleteCommit,
            TxnState::CompleteAbort,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Markers are being written: the transaction is decided but not complete.
    pub fn is_preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }

    /// A transaction is open or being completed.
    pub fn has_pending_transaction(self) -> bool {
        matches!(
            self,
            TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort
        )
    }
}

/// A transactional id's durable state (Kafka's `TransactionMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionValue {
    pub producer_id: i64,
    /// The producer id before the last rotation (epochs exhausted), or [`NO_PRODUCER_ID`]: a
    /// retried InitProducerId that spans the rotation is recognised by it.
    pub last_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump the producer itself asked for (KIP-360), or
    /// [`NO_PRODUCER_EPOCH`]: a retry of that InitProducerId gets the current epoch again.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// The partitions of the open (or completing) transaction.
    pub partitions: BTreeSet<TopicPartition>,
    /// The consumer groups whose offsets the open transaction commits (AddOffsetsToTxn).
    pub groups: BTreeSet<String>,
    /// When the open transaction began (wall-clock ms), or -1.
    pub start_ms: i64,
    /// The last change (wall-clock ms): idle transactional ids expire from it.
    pub last_update_ms: i64,
}

impl TransactionValue {
    pub fn producer(&self) -> ProducerIdAndEpoch {
        ProducerIdAndEpoch::new(self.producer_id, self.producer_epoch)
    }
}

/// A change to one transactional id's state; `None` deletes the id (it expired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRecord {
    pub transactional_id: String,
    pub value: Option<TransactionValue>,
}

impl TxnRecord {
    /// The key under which the latest record replaces earlier ones.
    pub fn key(&self) -> String {
        format!("t/{}", self.transactional_id)
    }

    pub fn is_deletion(&self) -> bool {
        self.value.is_none()
    }
}
