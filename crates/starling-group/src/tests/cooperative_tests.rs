//! KIP-429 cooperative rebalancing needs nothing special from the coordinator, only correct
//! back-to-back rebalances: members that revoked partitions rejoin at once, members keep what
//! the leader keeps giving them, and subscriptions (which carry owned partitions) change
//! every round.

use kafka_protocol::ResponseError;

use super::*;

/// Cooperative metadata: the subscription plus the partitions the member owns.
fn owned(partitions: &[i32]) -> Bytes {
    let mut topics = vec!["t".to_string()];
    topics.extend(partitions.iter().map(|p| format!("owned-{p}")));
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    subscription(&refs)
}

fn coop(member: &str, partitions: &[i32]) -> Join {
    Join::new(member).protocols(&[("cooperative-sticky", owned(partitions))])
}

#[test]
fn a_cooperative_second_round_right_after_the_first_completes() {
    let mut ctx = Ctx::new();
    // Generation 1: a owns p0 and p1.
    let (a, ja) = ctx.join_new(coop("", &[]));
    ctx.tick();
    assert_eq!(ctx.join_response(ja).generation_id, 1);
    ctx.sync(&Sync::new(&a, 1).assign(&a, b"p0,p1"));

    // c arrives; a rejoins with what it owns. Round 1 (generation 2): a keeps p0, gives up
    // p1; c gets nothing yet.
    let (c, jc) = ctx.join_new(coop("", &[]));
    let ja2 = ctx.join(&coop(&a, &[0, 1]));
    assert_eq!(ctx.join_response(ja2).generation_id, 2);
    assert_eq!(ctx.join_response(jc).generation_id, 2);
    let sc = ctx.sync(&Sync::new(&c, 2));
    let sa = ctx.sync(&Sync::new(&a, 2).assign(&a, b"p0").assign(&c, b""));
    assert_eq!(&ctx.sync_response(sa).assignment[..], b"p0");
    assert!(ctx.sync_response(sc).assignment.is_empty());

    // a revoked p1 and rejoins immediately: round 2 (generation 3) hands p1 to c.
    let ja3 = ctx.join(&coop(&a, &[0]));
    assert!(!ctx.answered(ja3));
    assert_eq!(
        ctx.heartbeat(&c, 2),
        code(ResponseError::RebalanceInProgress)
    );
    let jc3 = ctx.join(&coop(&c, &[]));
    assert_eq!(ctx.join_response(ja3).generation_id, 3);
    assert_eq!(ctx.join_response(jc3).generation_id, 3);
    let sc3 = ctx.sync(&Sync::new(&c, 3));
    ctx.sync(&Sync::new(&a, 3).assign(&a, b"p0").assign(&c, b"p1"));
    assert_eq!(&ctx.sync_response(sc3).assignment[..], b"p1");
    assert_eq!(ctx.state(), Some(GroupState::Stable));
    assert_eq!(ctx.generation(), 3);
}

#[test]
fn the_leader_sees_each_members_owned_partitions_in_its_metadata() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(coop("", &[]));
    let (b, _) = ctx.join_new(coop("", &[]));
    ctx.tick();
    ctx.sync(&Sync::new(&b, 1));
    ctx.sync(&Sync::new(&a, 1).assign(&a, b"p0").assign(&b, b"p1"));
    let ja = ctx.join(&coop(&a, &[0]));
    ctx.join(&coop(&b, &[1]));
    let metadata: Vec<Bytes> = ctx
        .join_response(ja)
        .members
        .iter()
        .map(|m| m.metadata.clone())
        .collect();
    assert_eq!(metadata, vec![owned(&[0]), owned(&[1])]);
}

#[test]
fn a_follower_rejoining_a_stable_group_with_new_owned_partitions_rebalances_everybody() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(coop("", &[]));
    let (b, _) = ctx.join_new(coop("", &[]));
    ctx.tick();
    ctx.sync(&Sync::new(&b, 1));
    ctx.sync(&Sync::new(&a, 1).assign(&a, b"p0").assign(&b, b"p1"));
    let jb = ctx.join(&coop(&b, &[1]));
    assert!(!ctx.answered(jb));
    assert_eq!(
        ctx.heartbeat(&a, 1),
        code(ResponseError::RebalanceInProgress)
    );
    let ja = ctx.join(&coop(&a, &[0]));
    assert_eq!(ctx.join_response(ja).generation_id, 2);
    assert_eq!(ctx.join_response(jb).generation_id, 2);
}

#[test]
fn a_new_round_started_before_the_leaders_sync_fails_the_held_syncs_and_completes() {
    let mut ctx = Ctx::new();
    let (a, _) = ctx.join_new(coop("", &[]));
    let (b, _) = ctx.join_new(coop("", &[]));
    ctx.tick();
    let held = ctx.sync(&Sync::new(&b, 1));
    // b's subscription changes before the leader's assignment arrives.
    let jb = ctx.join(&coop(&b, &[9]));
    assert_eq!(
        ctx.sync_response(held).error_code,
        code(ResponseError::RebalanceInProgress)
    );
    let late_leader_sync = ctx.sync(&Sync::new(&a, 1).assign(&a, b"p0"));
    assert_eq!(
        ctx.sync_response(late_leader_sync).error_code,
        code(ResponseError::RebalanceInProgress)
    );
    let ja = ctx.join(&coop(&a, &[]));
    assert_eq!(ctx.join_response(ja).generation_id, 2);
    assert_eq!(ctx.join_response(jb).generation_id, 2);
    let sb2 = ctx.sync(&Sync::new(&b, 2));
    ctx.sync(&Sync::new(&a, 2).assign(&a, b"p0").assign(&b, b"p1"));
    assert_eq!(&ctx.sync_response(sb2).assignment[..], b"p1");
}

#[test]
fn assignments_of_an_older_generation_are_never_handed_out_after_a_new_round() {
    let mut ctx = Ctx::new();
    let members = ctx.stable_group(2);
    ctx.join(&Join::new(&members[1]).topics(&["x"]));
    ctx.join(&Join::new(&members[0]));
    // Generation 2 is completing: a sync for generation 1 is refused.
    let stale = ctx.sync(&Sync::new(&members[1], 1));
    assert_eq!(
        ctx.sync_response(stale).error_code,
        code(ResponseError::IllegalGeneration)
    );
    let fresh = ctx.sync(&Sync::new(&members[1], 2));
    ctx.sync(&Sync::new(&members[0], 2).assign(&members[1], b"g2"));
    assert_eq!(&ctx.sync_response(fresh).assignment[..], b"g2");
}
