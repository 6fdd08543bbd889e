//! Timers as data: keys, ordering, `next_deadline` and `expire`.

use super::*;

#[test]
fn timer_keys_are_named_after_their_purpose() {
    let mut ctx = Ctx::new();
    let first = ctx.join(&Join::new(""));
    let pending = ctx.join_response(first).member_id.to_string();
    assert!(ctx.timer(&format!("pending:{G}:{pending}")).is_some());
    ctx.join(&Join::new(&pending));
    assert!(ctx.timer(&format!("initial-delay:{G}")).is_some());
    assert!(ctx.timer(&format!("heartbeat:{G}:{pending}")).is_some());
    ctx.tick();
    assert!(ctx.timer(&format!("sync:{G}")).is_some());
    ctx.sync(&Sync::new(&pending, 1));
    ctx.join(&Join::new(&pending).topics(&["other"]));
    ctx.join_new(Join::new(""));
    assert!(
        ctx.timer(&format!("join:{G}")).is_some()
            || ctx.state() == Some(GroupState::CompletingRebalance)
    );
    assert!(ctx.timer("offsets-expiry").is_some());
}

#[test]
fn next_deadline_is_the_earliest_timer() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let earliest = ctx.c.timers().iter().map(|(_, d)| *d).min();
    assert_eq!(ctx.c.next_deadline(), earliest);
    assert_eq!(
        ctx.c.next_deadline(),
        ctx.timer(&format!("heartbeat:{G}:{member}"))
    );
}

#[test]
fn timers_list_in_deadline_order() {
    let mut ctx = Ctx::new();
    ctx.stable_group(3);
    let deadlines: Vec<Millis> = ctx.c.timers().iter().map(|(_, d)| *d).collect();
    let mut sorted = deadlines.clone();
    sorted.sort();
    assert_eq!(deadlines, sorted);
}

#[test]
fn expire_fires_nothing_before_a_deadline() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let deadline = ctx.c.next_deadline().unwrap();
    ctx.sleep(deadline - ctx.now - 1);
    assert_eq!(ctx.members(), vec![member]);
    assert!(ctx.last_records.is_empty());
}

#[test]
fn expire_fires_every_timer_due_at_or_before_now() {
    let mut ctx = Ctx::new();
    ctx.stable_group(3);
    ctx.sleep(i64::from(SESSION));
    assert!(ctx.members().is_empty());
    assert!(ctx.c.next_deadline().unwrap() > ctx.now);
}

#[test]
fn rescheduling_a_key_replaces_its_deadline() {
    let mut ctx = Ctx::new();
    let member = ctx.single_member_group();
    let key = format!("heartbeat:{G}:{member}");
    let before = ctx.c.timers().len();
    ctx.sleep(100);
    ctx.heartbeat(&member, 1);
    assert_eq!(ctx.timer(&key), Some(ctx.now + i64::from(SESSION)));
    assert_eq!(ctx.c.timers().len(), before);
}

#[test]
fn one_long_sleep_does_what_many_short_ones_do() {
    fn run(steps: &[i64]) -> (Vec<Record>, Vec<RequestId>) {
        let mut ctx = Ctx::new();
        let members = ctx.stable_group(2);
        ctx.join(&Join::new(&members[1]).topics(&["x"]));
        ctx.commit(&Commit::simple().group("s").offset("t", 0, 1));
        let mut answered = Vec::new();
        for step in steps {
            answered.extend(ctx.sleep(*step));
        }
        (ctx.records, answered)
    }
    let long = run(&[8 * 24 * 3600 * 1000]);
    let short = run(&vec![3_600_000; 8 * 24]);
    assert_eq!(long, short);
}

#[test]
fn a_late_expire_handles_each_timer_at_its_own_deadline() {
    let mut ctx = Ctx::new();
    ctx.single_member_group();
    let deadline = ctx.c.next_deadline().unwrap();
    ctx.sleep(1_000_000);
    let value = ctx.group_records().last().cloned().cloned().unwrap();
    assert!(value.members.is_empty());
    assert_eq!(
        value.state_timestamp, deadline,
        "emptied when the session ran out, not when expire ran"
    );
}
