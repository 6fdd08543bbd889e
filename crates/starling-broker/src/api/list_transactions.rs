//! ListTransactions (v0–1, KIP-664 and KIP-994): the transactional ids the coordinator holds,
//! each with its producer id and state, narrowed by the request's filters, which all have to
//! hold (Kafka's `TransactionStateManager.listTransactionStates`):
//!
//! * state names: when given, only ids in one of the named states. A name that is not one of
//!   Kafka's states is listed back in `unknown_state_filters` (and matches nothing);
//! * producer ids: when given, only ids held by one of those producers;
//! * duration (v1): when 0 or more, only ids whose transaction has been running longer than
//!   that many milliseconds — measured from its start as Kafka does, so the time since the
//!   last transaction began for a completed one, and an id that never began one (start -1)
//!   always passes.
//!
//! While the coordinator's state cannot be loaded the answer is COORDINATOR_NOT_AVAILABLE.

use std::collections::BTreeSet;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse};
use kafka_protocol::protocol::StrBytes;
use starling_txn::{TransactionValue, TxnState};

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::{now_ms, Broker};

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let filter = Filter::from_request(&request);
    let response = ListTransactionsResponse::default().with_unknown_state_filters(
        filter
            .unknown_states
            .iter()
            .map(|s| StrBytes::from_string(s.clone()))
            .collect(),
    );
    let snapshot = match broker.transactions.snapshot().await {
        Ok(snapshot) => snapshot,
        Err(failure) => return response.with_error_code(failure.error(true).code()),
    };
    let now = now_ms();
    let states = snapshot
        .iter()
        .filter(|(_, value)| filter.matches(value, now))
        // Kafka lists only the transactional ids the client may DESCRIBE.
        .filter(|(id, _)| {
            ctx.authorize(
                broker,
                AclOperation::Describe,
                ResourceType::TransactionalId,
                id,
            )
        })
        .map(|(id, value)| {
            TransactionState::default()
                .with_transactional_id(StrBytes::from_string(id.clone()).into())
                .with_producer_id(value.producer_id.into())
                .with_transaction_state(StrBytes::from_static_str(value.state.name()))
        })
        .collect();
    response.with_transaction_states(states)
}

/// A ListTransactions request's filters, the state names resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// `None`: any state. `Some`: only these (empty when every name given was unknown).
    pub states: Option<BTreeSet<TxnState>>,
    /// The state names that are none of Kafka's, in the order given (duplicates once).
    pub unknown_states: Vec<String>,
    /// Empty: any producer.
    pub producer_ids: BTreeSet<i64>,
    /// Negative: no duration filter.
    pub min_duration_ms: i64,
}

impl Filter {
    pub fn from_request(request: &ListTransactionsRequest) -> Filter {
        let names: Vec<&str> = request.state_filters.iter().map(|s| s.as_str()).collect();
        Filter::new(
            &names,
            request.producer_id_filters.iter().map(|p| p.0),
            request.duration_filter,
        )
    }

    pub fn new(
        state_names: &[&str],
        producer_ids: impl IntoIterator<Item = i64>,
        min_duration_ms: i64,
    ) -> Filter {
        let mut states = BTreeSet::new();
        let mut unknown_states: Vec<String> = Vec::new();
        for name in state_names {
            match TxnState::from_name(name) {
                Some(state) => {
                    states.insert(state);
                }
                None if !unknown_states.iter().any(|u| u == name) => {
                    unknown_states.push(name.to_string())
                }
                None => {}
            }
        }
        Filter {
            states: (!state_names.is_empty()).then_some(states),
            unknown_states,
            producer_ids: producer_ids.into_iter().collect(),
            min_duration_ms,
        }
    }

    /// Whether `value` is listed at `now_ms`.
    pub fn matches(&self, value: &TransactionValue, now_ms: i64) -> bool {
        if let Some(states) = &self.states {
            if !states.contains(&value.state) {
                return false;
            }
        }
        if !self.producer_ids.is_empty() && !self.producer_ids.contains(&value.producer_id) {
            return false;
        }
        self.min_duration_ms < 0 || now_ms.saturating_sub(value.start_ms) > self.min_duration_ms
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const NOW: i64 = 100_000;

    fn value(producer_id: i64, state: TxnState, start_ms: i64) -> TransactionValue {
        TransactionValue {
            producer_id,
            last_producer_id: -1,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            start_ms,
            last_update_ms: start_ms,
        }
    }

    #[test]
    fn no_filter_lists_everything() {
        let f = Filter::new(&[], [], -1);
        assert!(f.matches(&value(1, TxnState::Empty, -1), NOW));
        assert!(f.matches(&value(2, TxnState::Ongoing, NOW), NOW));
        assert!(f.matches(&value(3, TxnState::CompleteAbort, 5), NOW));
        assert!(f.unknown_states.is_empty());
    }

    #[test]
    fn a_state_filter_keeps_only_the_named_states() {
        let f = Filter::new(&["Ongoing", "PrepareCommit"], [], -1);
        assert!(f.matches(&value(1, TxnState::Ongoing, 5), NOW));
        assert!(f.matches(&value(1, TxnState::PrepareCommit, 5), NOW));
        assert!(!f.matches(&value(1, TxnState::CompleteCommit, 5), NOW));
        assert!(!f.matches(&value(1, TxnState::Empty, -1), NOW));
    }

    #[test]
    fn unknown_state_names_are_reported_once_and_match_nothing() {
        let f = Filter::new(&["Bogus", "ongoing", "Bogus"], [], -1);
        assert_eq!(f.unknown_states, vec!["Bogus", "ongoing"]);
        // Names are Kafka's exact spelling; with only unknown names nothing is listed.
        for state in [TxnState::Empty, TxnState::Ongoing, TxnState::CompleteCommit] {
            assert!(!f.matches(&value(1, state, 5), NOW), "{state:?}");
        }
        let mixed = Filter::new(&["Bogus", "Ongoing"], [], -1);
        assert_eq!(mixed.unknown_states, vec!["Bogus"]);
        assert!(mixed.matches(&value(1, TxnState::Ongoing, 5), NOW));
    }

    #[test]
    fn a_producer_filter_keeps_only_those_producers() {
        let f = Filter::new(&[], [7, 9], -1);
        assert!(f.matches(&value(7, TxnState::Ongoing, 5), NOW));
        assert!(f.matches(&value(9, TxnState::Empty, -1), NOW));
        assert!(!f.matches(&value(8, TxnState::Ongoing, 5), NOW));
    }

    #[test]
    fn a_duration_filter_keeps_transactions_running_longer_than_it() {
        let f = Filter::new(&[], [], 10_000);
        assert!(f.matches(&value(1, TxnState::Ongoing, NOW - 10_001), NOW));
        assert!(!f.matches(&value(1, TxnState::Ongoing, NOW - 10_000), NOW));
        assert!(!f.matches(&value(1, TxnState::Ongoing, NOW), NOW));
        // Kafka measures from the start: an id that never began a transaction passes.
        assert!(f.matches(&value(1, TxnState::Empty, -1), NOW));
        let zero = Filter::new(&[], [], 0);
        assert!(zero.matches(&value(1, TxnState::Ongoing, NOW - 1), NOW));
        assert!(!zero.matches(&value(1, TxnState::Ongoing, NOW), NOW));
    }

    #[test]
    fn all_filters_have_to_hold() {
        let f = Filter::new(&["Ongoing"], [7], 1_000);
        assert!(f.matches(&value(7, TxnState::Ongoing, NOW - 2_000), NOW));
        assert!(!f.matches(&value(8, TxnState::Ongoing, NOW - 2_000), NOW));
        assert!(!f.matches(&value(7, TxnState::CompleteCommit, NOW - 2_000), NOW));
        assert!(!f.matches(&value(7, TxnState::Ongoing, NOW - 500), NOW));
    }

    #[test]
    fn the_request_fields_become_the_filter() {
        let request = ListTransactionsRequest::default()
            .with_state_filters(vec![StrBytes::from_static_str("Ongoing")])
            .with_producer_id_filters(vec![5.into()])
            .with_duration_filter(30);
        let f = Filter::from_request(&request);
        assert_eq!(f.states, Some(BTreeSet::from([TxnState::Ongoing])));
        assert_eq!(f.producer_ids, BTreeSet::from([5]));
        assert_eq!(f.min_duration_ms, 30);
        // v0 decodes without a duration filter: -1.
        assert_eq!(ListTransactionsRequest::default().duration_filter, -1);
    }
}
