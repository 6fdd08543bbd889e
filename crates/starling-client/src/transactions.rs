//! KIP-664's admin APIs for transactions: DescribeTransactions (asked of the transactional id's
//! coordinator), ListTransactions (asked of every broker, as each lists the ids it
//! coordinates) and DescribeProducers (asked of each partition's leader) — what
//! `kafka-transactions.sh --describe`, `--list` and `--describe-producers` use to find a
//! hanging transaction and the producer behind it.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Instant;

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest,
    ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::client::{coordinator_retriable, err, CoordinatorKey};
use crate::{Broker, Client, Error, Result, TopicPartition};

/// The versions this client speaks.
const DESCRIBE_TRANSACTIONS: RangeInclusive<i16> = 0..=0;
/// v1 adds the duration filter (KIP-994).
const LIST_TRANSACTIONS: RangeInclusive<i16> = 0..=1;
const DESCRIBE_PRODUCERS: RangeInclusive<i16> = 0..=0;

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A transactional id as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    pub transactional_id: String,
    /// The coordinator that answered.
    pub coordinator: Broker,
    /// Kafka's state name: `Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`,
    /// `CompleteCommit`, `CompleteAbort` (`PrepareEpochFence`, `Dead` on some brokers).
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// When the current (or last) transaction began, ms since the epoch; -1 if none has.
    pub start_time_ms: i64,
    /// The partitions of the open transaction, sorted.
    pub partitions: Vec<TopicPartition>,
}

/// One transactional id as ListTransactions lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTransaction {
    pub transactional_id: String,
    /// The broker that listed it (its coordinator).
    pub coordinator: Broker,
    pub producer_id: i64,
    pub state: String,
}

/// What to list: every filter given has to hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionFilter {
    /// Only ids in one of these states (Kafka's spelling); empty: any state.
    pub states: Vec<String>,
    /// Only ids held by one of these producers; empty: any producer.
    pub producer_ids: Vec<i64>,
    /// Only transactions running longer than this many ms (needs ListTransactions v1+).
    pub min_duration_ms: Option<i64>,
}

/// The answer of every broker to ListTransactions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionListing {
    /// By transactional id.
    pub transactions: Vec<ListedTransaction>,
    /// State filters some broker did not know, each once.
    pub unknown_state_filters: Vec<String>,
}

/// One producer a partition remembers, as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerDescription {
    pub producer_id: i64,
    pub producer_epoch: i32,
    /// -1 when none is known.
    pub last_sequence: i32,
    pub last_timestamp: i64,
    /// The epoch of the coordinator that wrote its last marker, -1 if unknown.
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction in the partition, -1 if none is open.
    pub current_txn_start_offset: i64,
}

/// One partition's DescribeProducers answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProducers {
    pub partition: TopicPartition,
    pub result: std::result::Result<Vec<ProducerDescription>, ResponseError>,
}

impl Client {
    /// Describes `transactional_id` at its coordinator. An id the coordinator does not know is
    /// an error (TRANSACTIONAL_ID_NOT_FOUND).
    pub async fn describe_transaction(
        &mut self,
        transactional_id: &str,
    ) -> Result<TransactionDescription> {
        let kind = CoordinatorKey::Transaction;
        let deadline = Instant::now() + self.options().request_timeout;
        let mut attempt = 0;
        loop {
            let coordinator = self.coordinator_for(kind, transactional_id).await?;
            let conn = self.connection_to(&coordinator.addr()).await?;
            let version = conn.version_for(ApiKey::DescribeTransactions, DESCRIBE_TRANSACTIONS)?;
            let request = DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(str_bytes(transactional_id))]);
            let response = conn.send(version, &request).await?;
            let Some(state) = response
                .transaction_states
                .into_iter()
                .find(|s| s.transactional_id.0.as_str() == transactional_id)
            else {
                return Err(Error::Protocol(format!(
                    "DescribeTransactions v{version}: no entry for transactional id \
                     '{transactional_id}'"
                )));
            };
            match err(state.error_code) {
                None => {}
                Some(e) if coordinator_retriable(e) && Instant::now() < deadline => {
                    self.coordinator_moved_for(kind, transactional_id, attempt)
                        .await;
                    attempt += 1;
                    continue;
                }
                Some(e) => {
                    return Err(Error::kafka(
                        format!(
                            "DescribeTransactions v{version} for transactional id \
                             '{transactional_id}'"
                        ),
                        e,
                    ))
                }
            }
            let mut partitions: Vec<TopicPartition> = state
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(move |&p| TopicPartition::new(t.topic.0.as_str(), p))
                })
                .collect();
            partitions.sort();
            return Ok(TransactionDescription {
                transactional_id: transactional_id.to_string(),
                coordinator,
                state: state.transaction_state.to_string(),
                producer_id: state.producer_id.0,
                producer_epoch: state.producer_epoch,
                timeout_ms: state.transaction_timeout_ms,
                start_time_ms: state.transaction_start_time_ms,
                partitions,
            });
        }
    }

    /// Lists the transactional ids of every broker in the cluster that match `filter`.
    pub async fn list_transactions(
        &mut self,
        filter: &TransactionFilter,
    ) -> Result<TransactionListing> {
        let metadata = self.metadata(Some(&[])).await?;
        let mut brokers = metadata.brokers.clone();
        if brokers.is_empty() {
            let (host, port) = self
                .bootstrap()
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
                .ok_or_else(|| Error::Invalid(format!("bad address {}", self.bootstrap())))?;
            brokers.push(Broker {
                node_id: -1,
                host,
                port,
            });
        }
        let mut listed: BTreeMap<String, ListedTransaction> = BTreeMap::new();
        let mut unknown: Vec<String> = Vec::new();
        for broker in brokers {
            let addr = broker.addr();
            let conn = self.connection_to(&addr).await?;
            let version = conn.version_for(ApiKey::ListTransactions, LIST_TRANSACTIONS)?;
            let mut request = ListTransactionsRequest::default()
                .with_state_filters(filter.states.iter().map(|s| str_bytes(s)).collect())
                .with_producer_id_filters(
                    filter.producer_ids.iter().map(|&p| ProducerId(p)).collect(),
                );
            if let Some(ms) = filter.min_duration_ms {
                if version < 1 {
                    return Err(Error::Invalid(format!(
                        "broker {addr} speaks ListTransactions up to v{version}; filtering by \
                         duration needs v1+"
                    )));
                }
                request.duration_filter = ms;
            }
            let response = conn.send(version, &request).await?;
            if let Some(e) = err(response.error_code) {
                return Err(Error::kafka(
                    format!("ListTransactions v{version} to {addr}"),
                    e,
                ));
            }
            for name in response.unknown_state_filters {
                if !unknown.iter().any(|u| u == name.as_str()) {
                    unknown.push(name.to_string());
                }
            }
            for t in response.transaction_states {
                let id = t.transactional_id.0.to_string();
                listed.insert(
                    id.clone(),
                    ListedTransaction {
                        transactional_id: id,
                        coordinator: broker.clone(),
                        producer_id: t.producer_id.0,
                        state: t.transaction_state.to_string(),
                    },
                );
            }
        }
        Ok(TransactionListing {
            transactions: listed.into_values().collect(),
            unknown_state_filters: unknown,
        })
    }

    /// The producers each partition of `topic` remembers (`partitions`: only these; `None`:
    /// every partition of the topic), asked of each partition's leader. A partition the
    /// cluster does not have is reported as UNKNOWN_TOPIC_OR_PARTITION; a topic it does not
    /// have is an error.
    pub async fn describe_producers(
        &mut self,
        topic: &str,
        partitions: Option<&[i32]>,
    ) -> Result<Vec<PartitionProducers>> {
        let metadata = self.metadata(Some(&[topic])).await?;
        let t = metadata.topic(topic).ok_or_else(|| {
            Error::kafka(
                format!("Metadata for topic '{topic}'"),
                ResponseError::UnknownTopicOrPartition,
            )
        })?;
        if let Some(e) = t.error {
            return Err(Error::kafka(format!("Metadata for topic '{topic}'"), e));
        }
        let wanted: Vec<i32> = match partitions {
            Some(ps) => ps.to_vec(),
            None => t.partitions.iter().map(|p| p.partition).collect(),
        };
        let mut out: BTreeMap<i32, PartitionProducers> = BTreeMap::new();
        let mut by_leader: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for p in wanted {
            let located = match t.partitions.iter().find(|m| m.partition == p) {
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(m) if m.leader < 0 => Err(ResponseError::LeaderNotAvailable),
                Some(m) => metadata
                    .broker(m.leader)
                    .map(Broker::addr)
                    .ok_or(ResponseError::LeaderNotAvailable),
            };
            match located {
                Ok(addr) => by_leader.entry(addr).or_default().push(p),
                Err(e) => {
                    out.insert(
                        p,
                        PartitionProducers {
                            partition: TopicPartition::new(topic, p),
                            result: Err(e),
                        },
                    );
                }
            }
        }
        for (addr, ps) in by_leader {
            let conn = self.connection_to(&addr).await?;
            let version = conn.version_for(ApiKey::DescribeProducers, DESCRIBE_PRODUCERS)?;
            let request =
                DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_partition_indexes(ps.clone())]);
            let response = conn.send(version, &request).await?;
            for answered in response
                .topics
                .iter()
                .filter(|r| r.name.0.as_str() == topic)
                .flat_map(|r| &r.partitions)
                .filter(|r| ps.contains(&r.partition_index))
            {
                let result = match err(answered.error_code) {
                    Some(e) => Err(e),
                    None => Ok(answered
                        .active_producers
                        .iter()
                        .map(|p| ProducerDescription {
                            producer_id: p.producer_id.0,
                            producer_epoch: p.producer_epoch,
                            last_sequence: p.last_sequence,
                            last_timestamp: p.last_timestamp,
                            coordinator_epoch: p.coordinator_epoch,
                            current_txn_start_offset: p.current_txn_start_offset,
                        })
                        .collect()),
                };
                out.insert(
                    answered.partition_index,
                    PartitionProducers {
                        partition: TopicPartition::new(topic, answered.partition_index),
                        result,
                    },
                );
            }
            if let Some(missing) = ps.iter().find(|p| !out.contains_key(p)) {
                return Err(Error::Protocol(format!(
                    "DescribeProducers v{version} from {addr}: no answer for {topic}-{missing}"
                )));
            }
        }
        Ok(out.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use kafka_protocol::messages::describe_producers_response::{
        PartitionResponse, ProducerState, TopicResponse,
    };
    use kafka_protocol::messages::describe_transactions_response::{
        TopicData, TransactionState as DescribedState,
    };
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{
        BrokerId, DescribeProducersResponse, DescribeTransactionsResponse, FindCoordinatorRequest,
        FindCoordinatorResponse, ListTransactionsResponse, MetadataResponse,
    };

    use super::*;
    use crate::fake_broker::{api_versions, decode_body, respond, FakeBroker, Seen};
    use crate::Options;

    fn opts() -> Options {
        Options {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            ..Options::default()
        }
    }

    fn host_port(addr: &str) -> (String, i32) {
        let (h, p) = addr.rsplit_once(':').unwrap();
        (h.to_string(), p.parse().unwrap())
    }

    /// A one-broker cluster (node 1 at `me`) with topic `t` of partitions 0 and 1, holding
    /// transactional id `app` (Ongoing on `t`-1 and `t`-0) and answering ListTransactions
    /// up to `list_max`.
    fn txn_broker(me: Arc<OnceLock<String>>, list_max: i16) -> Arc<crate::fake_broker::Handler> {
        Arc::new(move |s: &Seen| {
            let api = ApiKey::try_from(s.header.request_api_key).unwrap();
            let (host, port) = host_port(me.get().unwrap());
            match api {
                ApiKey::ApiVersions => Some(respond(
                    s,
                    &api_versions(&[
                        (ApiKey::ApiVersions, 0, 3),
                        (ApiKey::Metadata, 0, 12),
                        (ApiKey::FindCoordinator, 0, 4),
                        (ApiKey::DescribeTransactions, 0, 0),
                        (ApiKey::ListTransactions, 0, list_max),
                        (ApiKey::DescribeProducers, 0, 0),
                    ]),
                )),
                ApiKey::Metadata => {
                    let partition = |p| {
                        MetadataResponsePartition::default()
                            .with_partition_index(p)
                            .with_leader_id(BrokerId(1))
                    };
                    let r = MetadataResponse::default()
                        .with_brokers(vec![MetadataResponseBroker::default()
                            .with_node_id(BrokerId(1))
                            .with_host(StrBytes::from_string(host))
                            .with_port(port)])
                        .with_topics(vec![MetadataResponseTopic::default()
                            .with_name(Some(TopicName(str_bytes("t"))))
                            .with_partitions(vec![partition(0), partition(1)])]);
                    Some(respond(s, &r))
                }
                ApiKey::FindCoordinator => {
                    let request: FindCoordinatorRequest = decode_body(s);
                    assert_eq!(
                        request.key_type, 1,
                        "a transaction coordinator is asked for"
                    );
                    let r = FindCoordinatorResponse::default().with_coordinators(vec![
                        Coordinator::default()
                            .with_key(request.coordinator_keys[0].clone())
                            .with_node_id(BrokerId(1))
                            .with_host(StrBytes::from_string(host))
                            .with_port(port),
                    ]);
                    Some(respond(s, &r))
                }
                ApiKey::DescribeTransactions => {
                    let request: DescribeTransactionsRequest = decode_body(s);
                    let states = request
                        .transactional_ids
                        .iter()
                        .map(|id| {
                            let entry = DescribedState::default().with_transactional_id(id.clone());
                            if id.0.as_str() != "app" {
                                return entry.with_error_code(
                                    ResponseError::TransactionalIdNotFound.code(),
                                );
                            }
                            entry
                                .with_transaction_state(str_bytes("Ongoing"))
                                .with_producer_id(ProducerId(5))
                                .with_producer_epoch(2)
                                .with_transaction_timeout_ms(60_000)
                                .with_transaction_start_time_ms(1_000)
                                .with_topics(vec![TopicData::default()
                                    .with_topic(TopicName(str_bytes("t")))
                                    .with_partitions(vec![1, 0])])
                        })
                        .collect();
                    Some(respond(
                        s,
                        &DescribeTransactionsResponse::default().with_transaction_states(states),
                    ))
                }
                ApiKey::ListTransactions => {
                    let request: ListTransactionsRequest = decode_body(s);
                    let unknown = request
                        .state_filters
                        .iter()
                        .filter(|f| f.as_str() != "Ongoing")
                        .cloned()
                        .collect();
                    let r = ListTransactionsResponse::default()
                        .with_unknown_state_filters(unknown)
                        .with_transaction_states(vec![ListedState::default()
                            .with_transactional_id(TransactionalId(str_bytes("app")))
                            .with_producer_id(ProducerId(5))
                            .with_transaction_state(str_bytes("Ongoing"))]);
                    Some(respond(s, &r))
                }
                ApiKey::DescribeProducers => {
                    let request: DescribeProducersRequest = decode_body(s);
                    let topics = request
                        .topics
                        .iter()
                        .map(|t| {
                            TopicResponse::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partition_indexes
                                        .iter()
                                        .map(|&p| {
                                            PartitionResponse::default()
                                                .with_partition_index(p)
                                                .with_active_producers(vec![
                                                    ProducerState::default()
                                                        .with_producer_id(ProducerId(5))
                                                        .with_producer_epoch(2)
                                                        .with_last_sequence(9)
                                                        .with_last_timestamp(1_500)
                                                        .with_coordinator_epoch(-1)
                                                        .with_current_txn_start_offset(
                                                            i64::from(p) * 10,
                                                        ),
                                                ])
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                    Some(respond(
                        s,
                        &DescribeProducersResponse::default().with_topics(topics),
                    ))
                }
                _ => None,
            }
        })
    }

    async fn cluster(list_max: i16) -> (FakeBroker, Client) {
        let me = Arc::new(OnceLock::new());
        let broker = FakeBroker::start(txn_broker(me.clone(), list_max)).await;
        me.set(broker.addr.clone()).unwrap();
        let client = Client::connect(&broker.addr, opts()).await.unwrap();
        (broker, client)
    }

    #[tokio::test]
    async fn a_transaction_is_described_by_its_coordinator_with_sorted_partitions() {
        let (broker, mut client) = cluster(1).await;
        let d = client.describe_transaction("app").await.unwrap();
        assert_eq!(d.state, "Ongoing");
        assert_eq!((d.producer_id, d.producer_epoch), (5, 2));
        assert_eq!((d.timeout_ms, d.start_time_ms), (60_000, 1_000));
        assert_eq!(
            d.partitions,
            vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)]
        );
        assert_eq!(d.coordinator.node_id, 1);
        // The coordinator is cached: a second describe asks FindCoordinator no more.
        client.describe_transaction("app").await.unwrap();
        let finds = broker
            .seen()
            .iter()
            .filter(|s| s.header.request_api_key == ApiKey::FindCoordinator as i16)
            .count();
        assert_eq!(finds, 1);
    }

    #[tokio::test]
    async fn an_unknown_transactional_id_is_an_error_with_its_code() {
        let (_broker, mut client) = cluster(1).await;
        let e = client.describe_transaction("nobody").await.unwrap_err();
        assert_eq!(
            e.kafka_error(),
            Some(ResponseError::TransactionalIdNotFound),
            "{e}"
        );
    }

    #[tokio::test]
    async fn the_filters_go_to_every_broker_and_unknown_states_come_back() {
        let (broker, mut client) = cluster(1).await;
        let filter = TransactionFilter {
            states: vec!["Ongoing".into(), "Bogus".into()],
            producer_ids: vec![5],
            min_duration_ms: Some(30_000),
        };
        let listing = client.list_transactions(&filter).await.unwrap();
        assert_eq!(listing.unknown_state_filters, vec!["Bogus"]);
        assert_eq!(listing.transactions.len(), 1);
        assert_eq!(listing.transactions[0].transactional_id, "app");
        assert_eq!(listing.transactions[0].producer_id, 5);
        let sent = broker
            .seen()
            .into_iter()
            .find(|s| s.header.request_api_key == ApiKey::ListTransactions as i16)
            .unwrap();
        assert_eq!(sent.header.request_api_version, 1);
        let request: ListTransactionsRequest = decode_body(&sent);
        assert_eq!(request.producer_id_filters, vec![ProducerId(5)]);
        assert_eq!(request.duration_filter, 30_000);
    }

    #[tokio::test]
    async fn a_duration_filter_needs_list_transactions_v1() {
        let (_broker, mut client) = cluster(0).await;
        let filter = TransactionFilter {
            min_duration_ms: Some(1),
            ..TransactionFilter::default()
        };
        let e = client.list_transactions(&filter).await.unwrap_err();
        assert!(e.to_string().contains("needs v1+"), "{e}");
        // Without it, v0 will do.
        let listing = client
            .list_transactions(&TransactionFilter::default())
            .await
            .unwrap();
        assert_eq!(listing.transactions.len(), 1);
    }

    #[tokio::test]
    async fn producers_are_asked_of_the_leaders_and_missing_partitions_reported() {
        let (_broker, mut client) = cluster(1).await;
        let all = client.describe_producers("t", None).await.unwrap();
        assert_eq!(all.len(), 2);
        let p1 = all[1].result.as_ref().unwrap();
        assert_eq!(p1[0].producer_id, 5);
        assert_eq!(p1[0].current_txn_start_offset, 10);
        assert_eq!(p1[0].coordinator_epoch, -1);

        let some = client.describe_producers("t", Some(&[1, 7])).await.unwrap();
        let parts: Vec<i32> = some.iter().map(|p| p.partition.partition).collect();
        assert_eq!(parts, vec![1, 7]);
        assert_eq!(
            some[1].result,
            Err(ResponseError::UnknownTopicOrPartition),
            "{some:?}"
        );
    }
}
