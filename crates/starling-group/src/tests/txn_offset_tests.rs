//! Transactional offset commits: pending until the transaction ends, applied on commit, gone
//! on abort; KIP-447's member checks; `require_stable`; restarts, expiry and deletion.

use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{ProducerId, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::consumer_support::Hb;
use super::*;

const PID: i64 = 4000;

/// A TxnOffsetCommit of `offsets` (topic, partition, offset) by producer `pid`, from `member`
/// at `generation` (v3+; "" and -1 for none).
fn txn_commit(
    pid: i64,
    member: &str,
    generation: i32,
    offsets: &[(&str, i32, i64)],
) -> GroupRequest {
    let mut r = TxnOffsetCommitRequest::default();
    r.transactional_id = sb("app").into();
    r.group_id = sb(G).into();
    r.producer_id = ProducerId(pid);
    r.producer_epoch = 0;
    r.member_id = sb(member);
    r.generation_id = generation;
    for (topic, partition, offset) in offsets {
        let mut p = TxnOffsetCommitRequestPartition::default();
        p.partition_index = *partition;
        p.committed_offset = *offset;
        p.committed_leader_epoch = -1;
        match r.topics.iter_mut().find(|t| t.name.as_str() == *topic) {
            Some(t) => t.partitions.push(p),
            None => {
                let mut t = TxnOffsetCommitRequestTopic::default();
                t.name = sb(topic).into();
                t.partitions.push(p);
                r.topics.push(t);
            }
        }
    }
    GroupRequest::TxnOffsetCommit(r)
}

fn txn_end(pid: i64, commit: bool) -> GroupRequest {
    GroupRequest::TxnEnd {
        group_id: G.to_string(),
        producer_id: pid,
        commit,
    }
}

impl Ctx {
    fn txn_errors(&self, id: RequestId) -> Vec<i16> {
        let response: &TxnOffsetCommitResponse = match self.responses.get(&id) {
            Some(GroupResponse::TxnOffsetCommit(r)) => r,
            other => panic!("expected a TxnOffsetCommit response, got {other:?}"),
        };
        response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }

    fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        self.offset(G, topic, partition).map(|v| v.offset)
    }

    /// OffsetFetch of `t`-0 with `require_stable`, at `version`: (error code, offset).
    fn stable_fetch(&mut self, version: i16) -> (i16, i64) {
        let GroupRequest::OffsetFetch(mut r) = fetch_request(G, Some(&[("t", &[0])]), version)
        else {
            unreachable!()
        };
        r.require_stable = true;
        let id = self.send(version, GroupRequest::OffsetFetch(r));
        let response = self.fetch_response(id);
        if version >= 8 {
            let p = &response.groups[0].topics[0].partitions[0];
            (p.error_code, p.committed_offset)
        } else {
            let p = &response.topics[0].partitions[0];
            (p.error_code, p.committed_offset)
        }
    }
}

#[test]
fn a_transactional_commit_is_pending_until_the_transaction_commits() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 5));
    let id = ctx.send(3, txn_commit(PID, "", -1, &[("t", 0, 10), ("t", 1, 20)]));
    assert_eq!(ctx.txn_errors(id), vec![0, 0]);
    assert_eq!(
        ctx.committed("t", 0),
        Some(5),
        "not visible before the commit"
    );
    assert_eq!(ctx.committed("t", 1), None);
    ctx.send(0, txn_end(PID, true));
    assert_eq!(ctx.committed("t", 0), Some(10));
    assert_eq!(ctx.committed("t", 1), Some(20));
    assert!(ctx.c.groups[G].pending_offsets.is_empty());
    ctx.assert_restart_rebuilds_the_groups();
}

#[test]
fn an_aborted_transaction_leaves_the_committed_offsets_as_they_were() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 5));
    ctx.send(3, txn_commit(PID, "", -1, &[("t", 0, 10)]));
    ctx.send(0, txn_end(PID, false));
    assert_eq!(ctx.committed("t", 0), Some(5));
    assert!(ctx.c.groups[G].pending_offsets.is_empty());
    assert!(ctx
        .last_records
        .iter()
        .all(|r| matches!(r, Record::PendingOffset { value: None, .. })));
}

#[test]
fn require_stable_answers_unstable_offset_commit_while_a_transaction_holds_the_partition() {
    let mut ctx = Ctx::new();
    ctx.commit(&Commit::simple().offset("t", 0, 5));
    ctx.send(3, txn_commit(PID, "", -1, &[("t", 0, 10)]));
    let unstable = ResponseError::UnstableOffsetCommit.code();
    assert_eq!(ctx.stable_fetch(7), (unstable, -1));
    assert_eq!(ctx.stable_fetch(8), (unstable, -1));
    // Without require_stable the committed offset comes back.
    let id = ctx.send(7, fetch_request(G, Some(&[("t", &[0])]), 7));
    assert_eq!(
        ctx.fetch_response(id).topics[0].partitions[0].committed_offset,
        5
    );
    ctx.send(0, txn_end(PID, true));
    assert_eq!(ctx.stable_fetch(7), (0, 10));
}

#[test]
fn a_pending_offset_survives_a_restart_and_commits_after_it() {
    let mut ctx = Ctx::new();
    ctx.send(3, txn_commit(PID, "", -1, &[("t", 0, 10)]));
    let mut again = ctx.replayed();
    assert_eq!(
        again.c.groups[G].pending_offsets[&PID].len(),
        1,
        "the pending offset is stored"
    );
    again.send(0, txn_end(PID, true));
    assert_eq!(again.committed("t", 0), Some(10));
}

#[test]
fn a_repeated_transaction_end_changes_nothing() {
    let mut ctx = Ctx::new();
    ctx.send(3, txn_commit(PID, "", -1, &[("t", 0, 10)]));
    ctx.send(0, txn_end(PID, true));
    ctx.send(0, txn_end(PID, true));
    assert!(ctx.last_records.is_empty());
    ctx.send(0, txn_end(PID, false));
    assert!(ctx.last_records.is_empty());
    assert_eq!(
        ctx.committed("t", 0),
        Some(10),
        "a late abort undoes nothing"
    );
}

#[test]
fn producers_pending_offsets_are_kept_apart() {
    let mut ctx = Ctx::new();
    ctx.send(3, txn_commit(PID, "", -1, &[("t", 0, 10)]));
    ctx.send(3, txn_commit(PID + 1, "", -1, &[("t", 1, 20)]));
    ctx.send(0, txn_end(PID + 1, false));
    ctx.send(0, txn_end(PID, true));
    assert_eq!(ctx.committed("t", 0), Some(10));
    assert_eq!(ctx.committed("t", 1), None);
}

#[test]
fn a_plain_commit_made_after_the_transactional_one_is_kept_when_the_transaction_commits() {
    let mut ctx = Ctx::new();
    ctx.send(3, txn_commit(PID, "", -1, &[("t", 0, 10)]));
    ctx.sleep(5);
    ctx.commit(&Commit::simple().offset("t", 0, 30));
    ctx.send(0, txn_end(PID, true));
    assert_eq!(ctx.committed("t", 0), Some(30));
}

#[test]
fn a_transactional_commit_without_member_to_a_missing_group_creates_it() {
    let mut ctx = Ctx::new();
    let id = ctx.send(3, txn_commit(PID, "", -1, &[("t", 0, 10)]));
    assert_eq!(ctx.txn_errors(id), vec![0]);
    assert!(ctx.c.has_group(G));
}

#[test]
fn a_member_commit_to_a_missing_group_is_illegal_generation() {
    let mut ctx = Ctx::new();
    let id = ctx.send(3, txn_commit(PID, "m", 1, &[("t", 0, 10)]));
    assert_eq!(
        ctx.txn_errors(id),
        vec![code(ResponseError::IllegalGeneration)]
    );
    assert!(!ctx.c.has_group(G));
}

#[test]
fn kip447_a_member_commits_at_its_generation() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let id = ctx.send(3, txn_commit(PID, &member, 1, &[("t", 0, 10)]));
    assert_eq!(ctx.txn_errors(id), vec![0]);
}

#[test]
fn kip447_a_commit_at_another_generation_is_illegal_generation() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let id = ctx.send(3, txn_commit(PID, &member, 2, &[("t", 0, 10)]));
    assert_eq!(
        ctx.txn_errors(id),
        vec![code(ResponseError::IllegalGeneration)]
    );
    assert!(ctx.c.groups[G].pending_offsets.is_empty());
}

#[test]
fn kip447_a_commit_from_an_unknown_member_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let id = ctx.send(3, txn_commit(PID, "stranger", 1, &[("t", 0, 10)]));
    assert_eq!(
        ctx.txn_errors(id),
        vec![code(ResponseError::UnknownMemberId)]
    );
}

#[test]
fn a_commit_without_member_to_a_group_with_members_is_unknown_member_id() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let id = ctx.send(3, txn_commit(PID, "", -1, &[("t", 0, 10)]));
    assert_eq!(
        ctx.txn_errors(id),
        vec![code(ResponseError::UnknownMemberId)]
    );
}

#[test]
fn before_v3_member_fields_are_not_read() {
    let mut ctx = Ctx::new();
    // v2 has no member id or generation: whatever the request holds there is not looked at,
    // so this is a commit without member to a missing group (accepted), not a stranger's.
    let id = ctx.send(2, txn_commit(PID, "ghost", 5, &[("t", 0, 10)]));
    assert_eq!(ctx.txn_errors(id), vec![0]);
    let id = ctx.send(3, txn_commit(PID, "ghost", 5, &[("t", 0, 10)]));
    assert_eq!(
        ctx.txn_errors(id),
        vec![code(ResponseError::UnknownMemberId)]
    );
}

#[test]
fn kip447_a_consumer_protocol_member_commits_at_exactly_its_member_epoch() {
    let mut ctx = Ctx::new();
    ctx.set_topics(&[("t", 2)]);
    let epoch = ctx.hb_ok(&Hb::join("m", &["t"])).member_epoch;
    let at = |ctx: &mut Ctx, e: i32| {
        let id = ctx.send(4, txn_commit(PID, "m", e, &[("t", 0, 10)]));
        ctx.txn_errors(id)[0]
    };
    assert_eq!(at(&mut ctx, epoch), 0);
    assert_eq!(
        at(&mut ctx, epoch - 1),
        code(ResponseError::StaleMemberEpoch)
    );
    assert_eq!(
        at(&mut ctx, epoch + 1),
        code(ResponseError::FencedMemberEpoch)
    );
    let id = ctx.send(4, txn_commit(PID, "other", epoch, &[("t", 0, 10)]));
    assert_eq!(
        ctx.txn_errors(id),
        vec![code(ResponseError::UnknownMemberId)]
    );
}

#[test]
fn metadata_too_large_refuses_that_partition_only() {
    let mut ctx = Ctx::with_config(GroupConfig {
        offset_metadata_max_bytes: 2,
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    });
    let GroupRequest::TxnOffsetCommit(mut r) =
        txn_commit(PID, "", -1, &[("t", 0, 10), ("t", 1, 11)])
    else {
        unreachable!()
    };
    r.topics[0].partitions[1].committed_metadata = Some(sb("long"));
    let id = ctx.send(3, GroupRequest::TxnOffsetCommit(r));
    assert_eq!(
        ctx.txn_errors(id),
        vec![0, code(ResponseError::OffsetMetadataTooLarge)]
    );
    assert_eq!(ctx.c.groups[G].pending_offsets[&PID].len(), 1);
}

#[test]
fn a_group_with_pending_offsets_outlives_offset_expiry() {
    let mut ctx = Ctx::with_config(GroupConfig {
        initial_rebalance_delay_ms: 0,
        offsets_retention_ms: 1_000,
        offsets_retention_check_interval_ms: 500,
        ..GroupConfig::default()
    });
    ctx.commit(&Commit::simple().offset("t", 0, 5));
    ctx.send(3, txn_commit(PID, "", -1, &[("t", 0, 10)]));
    ctx.sleep(5_000);
    assert!(ctx.c.has_group(G), "the pending offset keeps the group");
    assert_eq!(
        ctx.committed("t", 0),
        Some(5),
        "an offset a transaction is about to replace does not expire"
    );
    ctx.send(0, txn_end(PID, true));
    assert_eq!(ctx.committed("t", 0), Some(10));
}

#[test]
fn deleting_the_group_drops_its_pending_offsets() {
    let mut ctx = Ctx::new();
    ctx.send(3, txn_commit(PID, "", -1, &[("t", 0, 10)]));
    ctx.send(0, delete_groups_request(&[G]));
    assert!(!ctx.c.has_group(G));
    ctx.assert_restart_rebuilds_the_groups();
    ctx.send(0, txn_end(PID, true));
    assert!(!ctx.c.has_group(G), "a late commit brings nothing back");
}
