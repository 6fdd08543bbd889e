//! The transaction coordinator's runtime against a real metadata store: a transaction decided
//! before a crash (its markers not yet written) is finished after the restart, and a step whose
//! records cannot be stored is refused with NOT_COORDINATOR and leaves no trace.

use std::io::ErrorKind;
use std::sync::Arc;

use starling_broker::producer_ids::ProducerIds;
use starling_broker::transactions::{JobEnd, Transactions, TxnFailure};
use starling_meta::MetadataStore;
use starling_txn::{ProducerIdAndEpoch, TopicPartition, TxnConfig, TxnError, TxnRequest, TxnState};

async fn start(
    store: &Arc<MetadataStore>,
) -> (
    Transactions,
    tokio::sync::mpsc::UnboundedReceiver<starling_txn::MarkerJob>,
) {
    let ids = Arc::new(ProducerIds::new(store.clone().into()));
    Transactions::start(TxnConfig::default(), store.clone().into(), ids, None)
        .await
        .unwrap()
}

async fn open_transaction(txns: &Transactions) -> ProducerIdAndEpoch {
    let p = txns
        .init_producer_id("app".into(), 60_000, None)
        .await
        .unwrap();
    txns.call(TxnRequest::AddPartitions {
        transactional_id: "app".into(),
        producer: p,
        partitions: vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)],
    })
    .await
    .unwrap();
    p
}

#[tokio::test]
async fn a_transaction_decided_before_a_crash_is_finished_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.redb");
    let store = Arc::new(MetadataStore::open(&path).unwrap());
    let (txns, mut jobs) = start(&store).await;
    let p = open_transaction(&txns).await;
    let ending = {
        let txns = txns.clone();
        tokio::spawn(async move {
            txns.call(TxnRequest::EndTxn {
                transactional_id: "app".into(),
                producer: p,
                commit: true,
            })
            .await
        })
    };
    let job = jobs
        .recv()
        .await
        .expect("the commit's markers are to be written");
    assert!(job.commit);
    assert_eq!(job.partitions.len(), 2);
    // EndTxn is answered once the markers are written, not before.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!ending.is_finished());
    // The broker dies before the markers are written.
    ending.abort();
    assert!(ending.await.unwrap_err().is_cancelled());
    drop((txns, jobs, store));

    let store = Arc::new(MetadataStore::open(&path).unwrap());
    let (txns, mut jobs) = start(&store).await;
    let resumed = jobs
        .try_recv()
        .expect("the decided commit is resumed at start-up");
    assert_eq!(resumed, job);
    // Until its markers are written the transactional id waits.
    assert_eq!(
        txns.init_producer_id("app".into(), 60_000, None).await,
        Err(TxnFailure::Refused(TxnError::ConcurrentTransactions))
    );
    assert_eq!(txns.markers_written(&resumed).await, JobEnd::Completed);
    let state = txns.snapshot().await.unwrap();
    assert_eq!(state[0].1.state, TxnState::CompleteCommit);
    let next = txns
        .init_producer_id("app".into(), 60_000, None)
        .await
        .unwrap();
    assert_eq!(next, ProducerIdAndEpoch::new(p.producer_id, p.epoch + 1));
}

#[tokio::test]
async fn a_step_that_cannot_be_stored_is_not_coordinator_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MetadataStore::open(&dir.path().join("meta.redb")).unwrap());
    let (txns, mut jobs) = start(&store).await;
    let p = open_transaction(&txns).await;
    store.failpoint().fail_writes(1, ErrorKind::StorageFull);
    let end = TxnRequest::EndTxn {
        transactional_id: "app".into(),
        producer: p,
        commit: true,
    };
    assert_eq!(txns.call(end.clone()).await, Err(TxnFailure::NotStored));
    assert!(
        jobs.try_recv().is_err(),
        "no markers for an undecided transaction"
    );
    // The coordinator holds what the store holds: the transaction is still open, and the
    // producer's retry decides it.
    let state = txns.snapshot().await.unwrap();
    assert_eq!(state[0].1.state, TxnState::Ongoing);
    let ending = {
        let txns = txns.clone();
        tokio::spawn(async move { txns.call(end).await })
    };
    let job = jobs.recv().await.unwrap();
    assert!(job.commit);
    // Once the markers are reported written, EndTxn is answered at once.
    assert_eq!(txns.markers_written(&job).await, JobEnd::Completed);
    let answered = tokio::time::timeout(std::time::Duration::from_secs(2), ending)
        .await
        .expect("EndTxn answered after its markers")
        .unwrap();
    assert_eq!(answered, Ok(p));
}
