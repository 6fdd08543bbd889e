use super::*;

fn pe(producer_id: i64, epoch: i16) -> ProducerIdAndEpoch {
    ProducerIdAndEpoch::new(producer_id, epoch)
}

/// A harness with `id` initialised and a transaction open on `t-0`.
fn ongoing(id: &str) -> (Harness, ProducerIdAndEpoch) {
    let mut h = Harness::new();
    let p = h.init(id).unwrap();
    h.add(id, p, &[tp("t", 0)]).unwrap();
    (h, p)
}

// ---- InitProducerId ----

#[test]
fn a_new_transactional_id_gets_a_fresh_producer_id_at_epoch_0() {
    let mut h = Harness::new();
    let p = h.init("app").unwrap();
    assert_eq!(p, pe(1000, 0));
    assert_eq!(h.state("app"), TxnState::Empty);
    assert_eq!(h.store.len(), 1, "one record for the new id");
    h.assert_store_matches();
}

#[test]
fn two_transactional_ids_get_different_producer_ids() {
    let mut h = Harness::new();
    let a = h.init("a").unwrap();
    let b = h.init("b").unwrap();
    assert_ne!(a.producer_id, b.producer_id);
    assert_eq!(h.coordinator.transactional_id_of(a.producer_id), Some("a"));
    assert_eq!(h.coordinator.transactional_id_of(b.producer_id), Some("b"));
}

#[test]
fn a_second_instance_bumps_the_epoch_and_fences_the_first() {
    let mut h = Harness::new();
    let first = h.init("app").unwrap();
    let second = h.init("app").unwrap();
    assert_eq!(second, pe(first.producer_id, 1));
    assert_eq!(
        h.add("app", first, &[tp("t", 0)]),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(h.end("app", first, true), Err(TxnError::ProducerFenced));
    assert!(h.add("app", second, &[tp("t", 0)]).is_ok());
}

#[test]
fn an_empty_transactional_id_is_an_invalid_request() {
    let mut h = Harness::new();
    assert_eq!(h.init(""), Err(TxnError::InvalidRequest));
    assert_eq!(h.end("", pe(1, 0), true), Err(TxnError::InvalidRequest));
    assert!(h.store.is_empty());
}

#[test]
fn a_timeout_of_zero_or_above_the_maximum_is_refused() {
    let mut h = Harness::with_config(TxnConfig {
        max_timeout_ms: 10_000,
        ..TxnConfig::default()
    });
    assert_eq!(
        h.init_with("app", 0, None),
        Err(TxnError::InvalidTransactionTimeout)
    );
    assert_eq!(
        h.init_with("app", -5, None),
        Err(TxnError::InvalidTransactionTimeout)
    );
    assert_eq!(
        h.init_with("app", 10_001, None),
        Err(TxnError::InvalidTransactionTimeout)
    );
    assert!(h.store.is_empty(), "a refused id is not created");
    assert!(
        h.init_with("app", 10_000, None).is_ok(),
        "the maximum itself is allowed"
    );
}

#[test]
fn init_takes_the_new_timeout() {
    let mut h = Harness::new();
    h.init_with("app", 5_000, None).unwrap();
    h.init_with("app", 7_000, None).unwrap();
    assert_eq!(h.coordinator.get("app").unwrap().timeout_ms, 7_000);
}

#[test]
fn init_while_a_transaction_is_open_aborts_it_under_a_bumped_epoch_and_asks_to_retry() {
    let (mut h, first) = ongoing("app");
    assert_eq!(h.init("app"), Err(TxnError::ConcurrentTransactions));
    assert_eq!(h.state("app"), TxnState::PrepareAbort);
    assert_eq!(h.jobs.len(), 1);
    let job = h.jobs[0].clone();
    assert!(!job.commit);
    assert_eq!(
        job.producer,
        pe(first.producer_id, 1),
        "markers fence epoch 0"
    );
    assert_eq!(
        job.partitions.iter().cloned().collect::<Vec<_>>(),
        vec![tp("t", 0)]
    );
    // While the markers are written the id keeps answering CONCURRENT_TRANSACTIONS.
    assert_eq!(h.init("app"), Err(TxnError::ConcurrentTransactions));
    h.write_markers();
    assert_eq!(h.state("app"), TxnState::CompleteAbort);
    // The retry gets an epoch of its own, never the fencing one.
    assert_eq!(h.init("app").unwrap(), pe(first.producer_id, 2));
    assert_eq!(h.end("app", first, true), Err(TxnError::ProducerFenced));
    h.assert_store_matches();
}

#[test]
fn init_while_markers_are_written_answers_concurrent_transactions() {
    let (mut h, p) = ongoing("app");
    h.end("app", p, true).unwrap();
    assert_eq!(h.init("app"), Err(TxnError::ConcurrentTransactions));
    assert_eq!(h.coordinator.get("app").unwrap().producer_epoch, 0);
    h.write_markers();
    assert_eq!(h.init("app").unwrap(), pe(p.producer_id, 1));
}

#[test]
fn kip360_a_producer_that_gives_its_current_epoch_is_bumped() {
    let mut h = Harness::new();
    let p = h.init("app").unwrap();
    let bumped = h.init_with("app", TIMEOUT, Some(p)).unwrap();
    assert_eq!(bumped, pe(p.producer_id, 1));
    assert_eq!(h.coordinator.get("app").unwrap().last_producer_epoch, 0);
}

#[test]
fn kip360_a_retried_bump_whose_answer_was_lost_gets_the_same_epoch() {
    let mut h = Harness::new();
    let p = h.init("app").unwrap();
    let bumped = h.init_with("app", TIMEOUT, Some(p)).unwrap();
    let retried = h.init_with("app", TIMEOUT, Some(p)).unwrap();
    assert_eq!(retried, bumped);
}

#[test]
fn kip360_a_stale_expected_epoch_is_fenced() {
    let mut h = Harness::new();
    let p0 = h.init("app").unwrap();
    h.init("app").unwrap(); // another instance: epoch 1, last epoch forgotten
    h.init("app").unwrap(); // epoch 2
    assert_eq!(
        h.init_with("app", TIMEOUT, Some(p0)),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn kip360_an_expected_producer_id_of_another_id_is_fenced() {
    let mut h = Harness::new();
    let a = h.init("a").unwrap();
    h.init("b").unwrap();
    assert_eq!(
        h.init_with("b", TIMEOUT, Some(a)),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn kip360_an_expected_producer_for_a_new_id_gets_the_new_producer_id() {
    // A producer recovering from UNKNOWN_PRODUCER_ID whose id expired: the new id is safe.
    let mut h = Harness::new();
    let p = h.init_with("app", TIMEOUT, Some(pe(77, 3))).unwrap();
    assert_eq!(p, pe(1000, 0));
}

#[test]
fn exhausted_epochs_rotate_to_a_fresh_producer_id() {
    let mut h = Harness::new();
    let p = h.init("app").unwrap();
    // Bring the id to the last epoch it may hand out.
    let mut v = h.coordinator.get("app").unwrap().clone();
    v.producer_epoch = i16::MAX - 1;
    h.coordinator.replay(&TxnRecord {
        transactional_id: "app".into(),
        value: Some(v),
    });
    let rotated = h.init("app").unwrap();
    assert_ne!(rotated.producer_id, p.producer_id);
    assert_eq!(rotated.epoch, 0);
    let v = h.coordinator.get("app").unwrap();
    assert_eq!(v.last_producer_id, p.producer_id);
    assert_eq!(h.coordinator.transactional_id_of(p.producer_id), None);
    assert_eq!(
        h.coordinator.transactional_id_of(rotated.producer_id),
        Some("app")
    );
}

#[test]
fn a_retried_rotation_with_the_exhausted_epoch_is_recognised() {
    let mut h = Harness::new();
    let p = h.init("app").unwrap();
    let mut v = h.coordinator.get("app").unwrap().clone();
    v.producer_epoch = i16::MAX - 1;
    h.coordinator.replay(&TxnRecord {
        transactional_id: "app".into(),
        value: Some(v),
    });
    let exhausted = pe(p.producer_id, i16::MAX - 1);
    let rotated = h.init_with("app", TIMEOUT, Some(exhausted)).unwrap();
    assert_eq!(rotated.epoch, 0);
    // The answer was lost; the producer asks again with its old id and exhausted epoch.
    let again = h.init_with("app", TIMEOUT, Some(exhausted)).unwrap();
    assert_eq!(again, rotated);
}

// ---- AddPartitionsToTxn / AddOffsetsToTxn ----

#[test]
fn the_first_added_partition_opens_the_transaction_at_now() {
    let mut h = Harness::new();
    let p = h.init("app").unwrap();
    h.now += 500;
    h.add("app", p, &[tp("t", 0), tp("t", 1)]).unwrap();
    let v = h.coordinator.get("app").unwrap();
    assert_eq!(v.state, TxnState::Ongoing);
    assert_eq!(v.start_ms, h.now);
    assert_eq!(v.partitions.len(), 2);
    h.now += 500;
    h.add("app", p, &[tp("u", 0)]).unwrap();
    let v = h.coordinator.get("app").unwrap();
    assert_eq!(v.start_ms, h.now - 500, "later additions keep the start");
    assert_eq!(v.partitions.len(), 3);
    h.assert_store_matches();
}

#[test]
fn adding_partitions_already_in_the_transaction_writes_nothing() {
    let (mut h, p) = ongoing("app");
    let before = h.store.clone();
    let out = h.coordinator.handle(
        TxnRequest::AddPartitions {
            transactional_id: "app".into(),
            producer: p,
            partitions: vec![tp("t", 0)],
        },
        h.now,
    );
    assert_eq!(out.result, Ok(p));
    assert!(out.changes.is_empty());
    assert_eq!(h.store, before);
}

#[test]
fn adding_nothing_to_an_empty_id_opens_no_transaction() {
    let mut h = Harness::new();
    let p = h.init("app").unwrap();
    assert_eq!(h.add("app", p, &[]), Ok(p));
    assert_eq!(h.state("app"), TxnState::Empty);
}

#[test]
fn add_partitions_for_an_unknown_id_is_an_invalid_producer_id_mapping() {
    let mut h = Harness::new();
    assert_eq!(
        h.add("nobody", pe(1, 0), &[tp("t", 0)]),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert!(h.store.is_empty(), "an unknown id is not created");
}

#[test]
fn add_partitions_with_another_producer_id_is_an_invalid_producer_id_mapping() {
    let mut h = Harness::new();
    let p = h.init("app").unwrap();
    assert_eq!(
        h.add("app", pe(p.producer_id + 1, 0), &[tp("t", 0)]),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn add_partitions_with_another_epoch_is_fenced() {
    let mut h = Harness::new();
    let p = h.init("app").unwrap();
    assert_eq!(
        h.add("app", pe(p.producer_id, 1), &[tp("t", 0)]),
        Err(TxnError::ProducerFenced),
        "a later epoch than the coordinator's is refused too"
    );
}

#[test]
fn add_partitions_while_the_last_transaction_completes_asks_to_retry() {
    let (mut h, p) = ongoing("app");
    h.end("app", p, true).unwrap();
    assert_eq!(
        h.add("app", p, &[tp("t", 1)]),
        Err(TxnError::ConcurrentTransactions)
    );
    h.write_markers();
    assert!(h.add("app", p, &[tp("t", 1)]).is_ok());
    let v = h.coordinator.get("app").unwrap();
    assert_eq!(
        v.partitions.iter().cloned().collect::<Vec<_>>(),
        vec![tp("t", 1)],
        "the next transaction starts with no partitions of the last"
    );
}

#[test]
fn add_offsets_puts_the_group_in_the_transaction() {
    let mut h = Harness::new();
    let p = h.init("app").unwrap();
    h.add_group("app", p, "g").unwrap();
    assert_eq!(h.state("app"), TxnState::Ongoing);
    assert!(h.coordinator.verify_group(p, "g").is_ok());
    assert_eq!(
        h.coordinator.verify_group(p, "other"),
        Err(TxnError::InvalidTxnState)
    );
    h.end("app", p, true).unwrap();
    let job = h.jobs[0].clone();
    assert!(job.partitions.is_empty());
    assert_eq!(
        job.groups.iter().cloned().collect::<Vec<_>>(),
        vec!["g".to_string()]
    );
}

// ---- EndTxn ----

#[test]
fn commit_prepares_then_completes_when_the_markers_are_written() {
    let (mut h, p) = ongoing("app");
    h.add_group("app", p, "g").unwrap();
    assert_eq!(h.end("app", p, true), Ok(p));
    assert_eq!(h.state("app"), TxnState::PrepareCommit);
    let jobs = h.write_markers();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].commit);
    assert_eq!(jobs[0].producer, p, "a commit keeps the epoch");
    assert_eq!(jobs[0].groups.len(), 1);
    let v = h.coordinator.get("app").unwrap();
    assert_eq!(v.state, TxnState::CompleteCommit);
    assert!(v.partitions.is_empty() && v.groups.is_empty());
    h.assert_store_matches();
}

#[test]
fn abort_prepares_then_completes_when_the_markers_are_written() {
    let (mut h, p) = ongoing("app");
    h.end("app", p, false).unwrap();
    assert_eq!(h.state("app"), TxnState::PrepareAbort);
    let jobs = h.write_markers();
    assert!(!jobs[0].commit);
    assert_eq!(h.state("app"), TxnState::CompleteAbort);
}

#[test]
fn end_txn_with_no_open_transaction_is_an_invalid_txn_state() {
    let mut h = Harness::new();
    let p = h.init("app").unwrap();
    assert_eq!(h.end("app", p, true), Err(TxnError::InvalidTxnState));
    assert_eq!(h.end("app", p, false), Err(TxnError::InvalidTxnState));
    assert_eq!(h.state("app"), TxnState::Empty);
}

#[test]
fn end_txn_for_an_unknown_id_is_an_invalid_producer_id_mapping() {
    let mut h = Harness::new();
    assert_eq!(
        h.end("nobody", pe(5, 0), true),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn a_retried_end_txn_after_completion_succeeds_without_change() {
    let (mut h, p) = ongoing("app");
    h.end("app", p, true).unwrap();
    h.write_markers();
    let before = h.store.clone();
    assert_eq!(h.end("app", p, true), Ok(p));
    assert_eq!(h.store, before);
    assert!(h.jobs.is_empty(), "no markers are written again");
}

#[test]
fn aborting_a_committed_transaction_is_an_invalid_txn_state() {
    let (mut h, p) = ongoing("app");
    h.end("app", p, true).unwrap();
    assert_eq!(h.end("app", p, false), Err(TxnError::InvalidTxnState));
    h.write_markers();
    assert_eq!(h.end("app", p, false), Err(TxnError::InvalidTxnState));
}

#[test]
fn committing_an_aborted_transaction_is_an_invalid_txn_state() {
    let (mut h, p) = ongoing("app");
    h.end("app", p, false).unwrap();
    assert_eq!(h.end("app", p, true), Err(TxnError::InvalidTxnState));
    h.write_markers();
    assert_eq!(h.end("app", p, true), Err(TxnError::InvalidTxnState));
}

#[test]
fn a_repeated_end_txn_while_markers_are_written_asks_to_retry() {
    let (mut h, p) = ongoing("app");
    h.end("app", p, true).unwrap();
    assert_eq!(h.end("app", p, true), Err(TxnError::ConcurrentTransactions));
    assert_eq!(h.jobs.len(), 1, "no second job");
}

#[test]
fn a_stale_marker_report_changes_nothing() {
    let (mut h, p) = ongoing("app");
    h.end("app", p, true).unwrap();
    let job = h.jobs[0].clone();
    h.write_markers();
    // The same job reported again (a repeated job after a restart, say).
    let changes = h.coordinator.markers_written(&job, h.now);
    assert!(changes.is_empty());
    // A report for the wrong outcome changes nothing either.
    let p2 = h.coordinator.get("app").unwrap().producer();
    h.add("app", p2, &[tp("t", 0)]).unwrap();
    h.end("app", p2, false).unwrap();
    let mut wrong = h.jobs[0].clone();
    wrong.commit = true;
    assert!(h.coordinator.markers_written(&wrong, h.now).is_empty());
    assert_eq!(h.state("app"), TxnState::PrepareAbort);
}

// ---- Timeouts and expiry ----

#[test]
fn an_open_transaction_is_aborted_at_its_timeout_and_its_producer_fenced() {
    let mut h = Harness::new();
    let p = h.init_with("app", 10_000, None).unwrap();
    h.add("app", p, &[tp("t", 0)]).unwrap();
    assert_eq!(h.coordinator.next_deadline(), Some(h.now + 10_000));
    assert!(h.advance(9_999).is_empty(), "not a millisecond early");
    let changes = h.advance(1);
    assert_eq!(changes.markers.len(), 1);
    assert!(!changes.markers[0].commit);
    assert_eq!(changes.markers[0].producer, pe(p.producer_id, 1));
    assert_eq!(h.state("app"), TxnState::PrepareAbort);
    assert_eq!(h.end("app", p, true), Err(TxnError::ProducerFenced));
    h.write_markers();
    assert_eq!(h.state("app"), TxnState::CompleteAbort);
    h.assert_store_matches();
}

#[test]
fn a_transaction_being_completed_does_not_time_out() {
    let mut h = Harness::new();
    let p = h.init_with("app", 10_000, None).unwrap();
    h.add("app", p, &[tp("t", 0)]).unwrap();
    h.end("app", p, true).unwrap();
    assert!(h.advance(60_000).is_empty());
    assert_eq!(h.state("app"), TxnState::PrepareCommit);
}

#[test]
fn an_idle_transactional_id_expires() {
    let mut h = Harness::with_config(TxnConfig {
        id_expiration_ms: 100_000,
        ..TxnConfig::default()
    });
    let p = h.init("app").unwrap();
    assert!(h.advance(99_999).is_empty());
    let changes = h.advance(1);
    assert_eq!(changes.records.len(), 1);
    assert!(changes.records[0].is_deletion());
    assert!(h.coordinator.get("app").is_none());
    assert_eq!(h.coordinator.transactional_id_of(p.producer_id), None);
    assert!(h.store.values().all(|r| r.is_deletion()));
    assert_eq!(h.coordinator.next_deadline(), None);
}

#[test]
fn activity_postpones_expiry() {
    let mut h = Harness::with_config(TxnConfig {
        id_expiration_ms: 100_000,
        ..TxnConfig::default()
    });
    let p = h.init("app").unwrap();
    h.advance(50_000);
    h.add("app", p, &[tp("t", 0)]).unwrap();
    h.end("app", p, true).unwrap();
    h.write_markers();
    assert!(h.advance(99_999).is_empty());
    assert!(h.coordinator.get("app").is_some());
    h.advance(1);
    assert!(h.coordinator.get("app").is_none());
}

#[test]
fn an_open_transaction_does_not_expire_with_its_id_but_times_out() {
    let mut h = Harness::with_config(TxnConfig {
        id_expiration_ms: 1_000,
        ..TxnConfig::default()
    });
    let p = h.init_with("app", 5_000, None).unwrap();
    h.add("app", p, &[tp("t", 0)]).unwrap();
    h.advance(2_000);
    assert_eq!(h.state("app"), TxnState::Ongoing);
    h.advance(3_000);
    assert_eq!(h.state("app"), TxnState::PrepareAbort);
}

// ---- Restart ----

#[test]
fn a_restart_resumes_the_markers_of_every_decided_transaction() {
    let mut h = Harness::new();
    let a = h.init("a").unwrap();
    h.add("a", a, &[tp("t", 0)]).unwrap();
    h.end("a", a, true).unwrap();
    let b = h.init("b").unwrap();
    h.add("b", b, &[tp("t", 1)]).unwrap();
    h.end("b", b, false).unwrap();
    let c = h.init("c").unwrap();
    h.add("c", c, &[tp("t", 2)]).unwrap();
    h.restart();
    let mut jobs: Vec<_> = h
        .jobs
        .iter()
        .map(|j| (j.transactional_id.clone(), j.commit))
        .collect();
    jobs.sort();
    assert_eq!(jobs, vec![("a".into(), true), ("b".into(), false)]);
    assert_eq!(
        h.state("c"),
        TxnState::Ongoing,
        "an open transaction stays open"
    );
    h.write_markers();
    assert_eq!(h.state("a"), TxnState::CompleteCommit);
    assert_eq!(h.state("b"), TxnState::CompleteAbort);
}

#[test]
fn an_open_transaction_times_out_after_a_restart() {
    let mut h = Harness::new();
    let p = h.init_with("app", 10_000, None).unwrap();
    h.add("app", p, &[tp("t", 0)]).unwrap();
    h.restart();
    assert_eq!(h.coordinator.next_deadline(), Some(h.now + 10_000));
    h.advance(10_000);
    assert_eq!(h.state("app"), TxnState::PrepareAbort);
}

// ---- Verification for writes and offset commits ----

#[test]
fn only_an_added_partition_of_an_open_transaction_may_be_written() {
    let mut h = Harness::new();
    let p = h.init("app").unwrap();
    let c = &h.coordinator;
    assert_eq!(
        c.verify_partition(p, &tp("t", 0)),
        Err(TxnError::InvalidTxnState),
        "no transaction is open"
    );
    h.add("app", p, &[tp("t", 0)]).unwrap();
    let c = &h.coordinator;
    assert_eq!(c.verify_partition(p, &tp("t", 0)), Ok(()));
    assert_eq!(
        c.verify_partition(p, &tp("t", 1)),
        Err(TxnError::InvalidTxnState)
    );
    assert_eq!(
        c.verify_partition(pe(p.producer_id + 50, 0), &tp("t", 0)),
        Err(TxnError::InvalidProducerIdMapping)
    );
    h.end("app", p, true).unwrap();
    assert_eq!(
        h.coordinator.verify_partition(p, &tp("t", 0)),
        Err(TxnError::InvalidTxnState),
        "not once the transaction is decided"
    );
}

#[test]
fn a_fenced_producer_may_not_write() {
    let (mut h, p) = ongoing("app");
    h.init("app").unwrap_err(); // fences epoch 0, aborting
    h.write_markers();
    let p2 = h.init("app").unwrap();
    h.add("app", p2, &[tp("t", 0)]).unwrap();
    assert_eq!(
        h.coordinator.verify_partition(p, &tp("t", 0)),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(h.coordinator.verify_partition(p2, &tp("t", 0)), Ok(()));
}

// ---- Stored format ----

#[test]
fn the_stored_value_keeps_its_json_shape() {
    let value = TransactionValue {
        producer_id: 7,
        last_producer_id: -1,
        producer_epoch: 2,
        last_producer_epoch: 1,
        timeout_ms: 60_000,
        state: TxnState::Ongoing,
        partitions: [tp("t", 1)].into_iter().collect(),
        groups: ["g".to_string()].into_iter().collect(),
        start_ms: 10,
        last_update_ms: 20,
    };
    let record = TxnRecord {
        transactional_id: "app".into(),
        value: Some(value),
    };
    let golden = r#"{"transactional_id":"app","value":{"producer_id":7,"last_producer_id":-1,"producer_epoch":2,"last_producer_epoch":1,"timeout_ms":60000,"state":"Ongoing","partitions":[{"topic":"t","partition":1}],"groups":["g"],"start_ms":10,"last_update_ms":20}}"#;
    assert_eq!(serde_json::to_string(&record).unwrap(), golden);
    assert_eq!(serde_json::from_str::<TxnRecord>(golden).unwrap(), record);
    assert_eq!(record.key(), "t/app");
}

#[test]
fn state_names_are_kafkas() {
    for s in [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ] {
        assert_eq!(TxnState::from_name(s.name()), Some(s));
    }
    assert_eq!(TxnState::from_name("Dead"), None);
}
