//! The coordinators' records as the store keeps them: the group coordinator's
//! ([`starling_group::Record`]) and the transaction coordinator's ([`starling_txn::TxnRecord`]),
//! each kind in a table of its own with one redb entry per key, holding the latest record of
//! that key (a compacted log, as Kafka's `__consumer_offsets` and `__transaction_state` are).
//! A record whose value is `None` deletes its key.
//!
//! Encoding is the store's job, and a record that does not encode fails its whole batch: it
//! never turns into a deletion, and nothing of the batch is written.

use serde::Serialize;
use starling_group::Record;
use starling_txn::TxnRecord;

use crate::{encoding, MetaError, MetadataStore};

/// A record of a compacted table: the key it replaces earlier records under, and whether it
/// deletes that key.
pub(crate) trait StoredRecord: Serialize {
    fn key(&self) -> String;
    fn is_deletion(&self) -> bool;
}

impl StoredRecord for Record {
    fn key(&self) -> String {
        Record::key(self)
    }
    fn is_deletion(&self) -> bool {
        Record::is_deletion(self)
    }
}

impl StoredRecord for TxnRecord {
    fn key(&self) -> String {
        TxnRecord::key(self)
    }
    fn is_deletion(&self) -> bool {
        TxnRecord::is_deletion(self)
    }
}

impl MetadataStore {
    /// Stores a batch of the coordinator's records, in order, in one durable transaction:
    /// either all of it or none.
    pub fn write_group_records(&self, records: &[Record]) -> Result<(), MetaError> {
        let batch = encode_batch(records, |r| {
            encoding::encode(|| format!("group record {}", r.key()), r)
        })?;
        self.write_group_record_bytes(&batch)
    }

    /// Stores a batch of the transaction coordinator's records in one durable transaction.
    pub fn write_txn_records(&self, records: &[TxnRecord]) -> Result<(), MetaError> {
        let batch = encode_batch(records, |r| {
            encoding::encode(|| format!("transaction record {}", r.key()), r)
        })?;
        self.write_txn_record_bytes(&batch)
    }

    /// Every stored transaction record, in key order.
    pub fn txn_records(&self) -> Result<Vec<TxnRecord>, MetaError> {
        self.txn_record_bytes()?
            .into_iter()
            .map(|(key, bytes)| encoding::decode(&key, &bytes))
            .collect()
    }

    /// Every stored group record, in key order, whichever format version wrote it.
    pub fn group_records(&self) -> Result<Vec<Record>, MetaError> {
        self.group_record_bytes()?
            .into_iter()
            .map(|(key, bytes)| encoding::decode(&key, &bytes))
            .collect()
    }
}

/// A record as the store keeps it: its key, and its encoding or `None` for a deletion.
pub(crate) type EncodedRecord = (String, Option<Vec<u8>>);

/// Each record as the store keeps it.
fn encode_batch<R: StoredRecord>(
    records: &[R],
    encode: impl Fn(&R) -> Result<Vec<u8>, MetaError>,
) -> Result<Vec<EncodedRecord>, MetaError> {
    records
        .iter()
        .map(|r| {
            let value = if r.is_deletion() {
                None
            } else {
                Some(encode(r)?)
            };
            Ok((r.key(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use starling_group::OffsetValue;

    use super::*;

    fn offset(partition: i32, value: Option<i64>) -> Record {
        Record::Offset {
            group_id: "g".into(),
            topic: "orders".into(),
            partition,
            value: value.map(|offset| OffsetValue {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 1,
                expire_timestamp: None,
            }),
        }
    }

    fn store() -> (tempfile::TempDir, MetadataStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(&dir.path().join("meta.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn records_come_back_latest_per_key_and_a_none_value_deletes() {
        let (_d, s) = store();
        s.write_group_records(&[offset(0, Some(5)), offset(1, Some(6))])
            .unwrap();
        s.write_group_records(&[offset(0, Some(9)), offset(1, None)])
            .unwrap();
        assert_eq!(s.group_records().unwrap(), vec![offset(0, Some(9))]);
    }

    #[test]
    fn a_record_that_does_not_encode_fails_the_batch_instead_of_becoming_a_deletion() {
        let (_d, s) = store();
        s.write_group_records(&[offset(0, Some(5))]).unwrap();
        let failing = |r: &Record| -> Result<Vec<u8>, MetaError> {
            Err(MetaError::Encode {
                what: r.key(),
                source: serde::ser::Error::custom("cannot encode"),
            })
        };
        let result = encode_batch(&[offset(1, Some(1)), offset(0, Some(7))], failing);
        assert!(
            matches!(result, Err(MetaError::Encode { ref what, .. }) if what == "o/g/orders/1"),
            "{result:?}"
        );
        // Deletions need no encoding.
        let deletion = encode_batch(&[offset(0, None)], failing).unwrap();
        assert_eq!(deletion, vec![("o/g/orders/0".to_string(), None)]);
        assert_eq!(s.group_records().unwrap(), vec![offset(0, Some(5))]);
    }

    #[test]
    fn every_kind_of_record_with_no_value_deletes_its_key() {
        use starling_group::{ConsumerAssignmentValue, ConsumerGroupValue};
        let (_d, s) = store();
        let group = |value| Record::ConsumerGroup {
            group_id: "g".into(),
            value,
        };
        let assignment = |value| Record::ConsumerAssignment {
            group_id: "g".into(),
            member_id: "m".into(),
            value,
        };
        let live = [
            group(Some(ConsumerGroupValue {
                epoch: 3,
                metadata_hash: 7,
            })),
            assignment(Some(ConsumerAssignmentValue::default())),
            offset(0, Some(1)),
        ];
        s.write_group_records(&live).unwrap();
        assert_eq!(s.group_records().unwrap().len(), 3);
        s.write_group_records(&[group(None), assignment(None)])
            .unwrap();
        assert_eq!(s.group_records().unwrap(), vec![offset(0, Some(1))]);
    }

    #[test]
    fn transaction_records_are_kept_apart_from_group_records() {
        use starling_txn::{TransactionValue, TxnState};
        let (_d, s) = store();
        let txn = |value| TxnRecord {
            transactional_id: "app".into(),
            value,
        };
        let value = TransactionValue {
            producer_id: 4,
            last_producer_id: -1,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state: TxnState::Empty,
            partitions: Default::default(),
            groups: Default::default(),
            start_ms: -1,
            last_update_ms: 5,
        };
        s.write_txn_records(&[txn(Some(value.clone()))]).unwrap();
        s.write_group_records(&[offset(0, Some(1))]).unwrap();
        assert_eq!(s.txn_records().unwrap(), vec![txn(Some(value))]);
        assert_eq!(s.group_records().unwrap(), vec![offset(0, Some(1))]);
        s.write_txn_records(&[txn(None)]).unwrap();
        assert!(s.txn_records().unwrap().is_empty());
    }

    #[test]
    fn records_are_stored_with_the_format_version() {
        let (_d, s) = store();
        s.write_group_records(&[offset(0, Some(5))]).unwrap();
        let stored = s.group_record_bytes().unwrap();
        assert_eq!(stored[0].1[0], encoding::FORMAT_VERSION);
    }

    #[test]
    fn a_record_in_a_newer_format_stops_loading_with_its_key() {
        let (_d, s) = store();
        s.write_group_record_bytes(&[("o/g/orders/0".into(), Some(b"\x09{}".to_vec()))])
            .unwrap();
        let err = s.group_records().unwrap_err();
        assert!(
            matches!(err, MetaError::NewerFormat { ref key, version: 9 } if key == "o/g/orders/0"),
            "{err}"
        );
    }
}
