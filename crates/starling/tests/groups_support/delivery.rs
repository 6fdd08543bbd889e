//! The delivery check at the end of a group test: [`verify_delivery`] (every produced message
//! consumed, and every change of a partition's owner starts exactly at the group's committed
//! offset of that moment), [`wait_consumed_to_end`] to let consumers catch up first, and
//! [`DeliveryCheck`], which gathers what both need step by step.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::member::Member;
use super::member_log::{CommitRec, Consumption, MemberLog};
use super::membership::{describe, Participant};
use super::producer::{end_offsets, Produced};
use super::tp::{tp, Tp};
use super::wait::wait_for;

/// What [`verify_delivery`] found (it panics on violations).
#[derive(Debug, Default)]
pub struct DeliveryReport {
    pub consumed: usize,
    pub duplicates: usize,
    pub handoffs: usize,
}

/// A committed offset known from outside (e.g. fetched after a member was killed), effective
/// from `at` on.
#[derive(Debug, Clone)]
pub struct KnownCommit {
    pub at: Instant,
    pub tp: Tp,
    pub offset: i64,
}

/// Checks a group run:
///
/// 1. every produced message was consumed (same partition, offset and key), and nothing was
///    consumed that was not produced;
/// 2. per partition, in time order, consumption by one owner (member and tenure) is gap-free
///    and without repeats;
/// 3. when a partition changes owner, the new owner starts exactly at the group's committed
///    offset of that moment: the latest successful commit recorded by a member, or a
///    [`KnownCommit`], or 0 if nothing was ever committed. Members named in `opaque` (kcat)
///    commit without telling us; after they consumed a partition its committed offset is
///    unknown until a [`KnownCommit`], and a handoff from them must start within the range
///    they consumed (no gap, no rewind before their first message). Their own consumption may
///    repeat (not gap).
///
/// Duplicates are therefore only allowed for work that was not committed.
pub fn verify_delivery(
    produced: &[Produced],
    consumed: &[Consumption],
    commits: &[CommitRec],
    known: &[KnownCommit],
    opaque: &[&str],
) -> DeliveryReport {
    // 1. Completeness and integrity.
    let mut by_pos: HashMap<(String, i32, i64), &str> = HashMap::new();
    for p in produced {
        by_pos.insert((p.topic.clone(), p.partition, p.offset), &p.key);
    }
    let mut seen: HashMap<(String, i32, i64), usize> = HashMap::new();
    for c in consumed {
        let k = (c.topic.clone(), c.partition, c.offset);
        match by_pos.get(&k) {
            Some(key) => assert_eq!(
                *key, c.key,
                "{} consumed {}/{}@{} with key {:?}, but {:?} was produced there",
                c.member, c.topic, c.partition, c.offset, c.key, key
            ),
            None => panic!(
                "{} consumed {}/{}@{} (key {:?}), which was never acknowledged to the producer",
                c.member, c.topic, c.partition, c.offset, c.key
            ),
        }
        *seen.entry(k).or_default() += 1;
    }
    let mut missing: Vec<String> = produced
        .iter()
        .filter(|p| !seen.contains_key(&(p.topic.clone(), p.partition, p.offset)))
        .map(|p| format!("{}/{}@{} ({})", p.topic, p.partition, p.offset, p.key))
        .collect();
    let missing_count = missing.len();
    missing.truncate(20);
    assert!(
        missing.is_empty(),
        "{missing_count} of {} produced messages were never consumed, e.g. {missing:?}",
        produced.len()
    );

    // 2 and 3, per partition in time order.
    enum Ev<'a> {
        Commit(i64),
        Known(i64),
        Consume(&'a Consumption),
    }
    let mut timeline: BTreeMap<Tp, Vec<(Instant, u8, Ev<'_>)>> = BTreeMap::new();
    for c in commits.iter().filter(|c| c.result.is_ok()) {
        timeline
            .entry(tp(&c.topic, c.partition))
            .or_default()
            .push((c.at, 0, Ev::Commit(c.offset)));
    }
    for k in known {
        timeline
            .entry(k.tp.clone())
            .or_default()
            .push((k.at, 1, Ev::Known(k.offset)));
    }
    for c in consumed {
        timeline
            .entry(tp(&c.topic, c.partition))
            .or_default()
            .push((c.at, 2, Ev::Consume(c)));
    }
    let mut report = DeliveryReport {
        consumed: consumed.len(),
        duplicates: seen.values().map(|n| n - 1).sum(),
        handoffs: 0,
    };
    for (part, mut events) in timeline {
        events.sort_by_key(|(at, order, _)| (*at, *order));
        let mut committed: Option<i64> = Some(0);
        let mut owner: Option<(String, u64)> = None;
        let (mut first, mut last) = (0i64, -1i64);
        let mut history: Vec<String> = Vec::new();
        for (_, _, ev) in events {
            match ev {
                Ev::Commit(o) | Ev::Known(o) => committed = Some(o),
                Ev::Consume(c) => {
                    let is_opaque = opaque.contains(&c.member.as_str());
                    let key = (c.member.clone(), c.tenure);
                    if owner.as_ref() != Some(&key) {
                        history.push(format!(
                            "{}#{} from {} (committed {:?})",
                            c.member, c.tenure, c.offset, committed
                        ));
                        if owner.is_some() {
                            report.handoffs += 1;
                        }
                        match committed {
                            Some(k) => assert_eq!(
                                c.offset, k,
                                "{}/{}: {} (tenure {}) started at offset {} but the group's \
                                 committed offset was {k}; owners so far: {history:?}",
                                part.0, part.1, c.member, c.tenure, c.offset
                            ),
                            None => assert!(
                                c.offset >= first && c.offset <= last + 1,
                                "{}/{}: {} started at {} after an owner that consumed {first}..={last} \
                                 without telling us its commits; owners so far: {history:?}",
                                part.0, part.1, c.member, c.offset
                            ),
                        }
                        owner = Some(key);
                        first = c.offset;
                    } else if is_opaque {
                        assert!(
                            c.offset <= last + 1,
                            "{}/{}: {} skipped from {last} to {}",
                            part.0,
                            part.1,
                            c.member,
                            c.offset
                        );
                        first = first.min(c.offset);
                    } else {
                        assert_eq!(
                            c.offset,
                            last + 1,
                            "{}/{}: {} (tenure {}) went from offset {last} to {}; owners so far: {history:?}",
                            part.0, part.1, c.member, c.tenure, c.offset
                        );
                    }
                    last = c.offset;
                    if is_opaque {
                        committed = None;
                    }
                }
            }
        }
    }
    report
}

/// Consumption records of several members, merged.
pub fn all_consumed(logs: &[&MemberLog]) -> Vec<Consumption> {
    logs.iter()
        .flat_map(|l| l.consumed.iter().cloned())
        .collect()
}

pub fn all_commits(logs: &[&MemberLog]) -> Vec<CommitRec> {
    logs.iter()
        .flat_map(|l| l.commits.iter().cloned())
        .collect()
}

/// Waits until the members together have consumed up to `ends` on every partition (the
/// highest consumed offset + 1 reaches each end offset).
pub fn wait_consumed_to_end(members: &[&Member], ends: &BTreeMap<Tp, i64>, limit: Duration) {
    let reached = || {
        let mut high: HashMap<Tp, i64> = HashMap::new();
        let mut note = |c: &Consumption| {
            let e = high.entry(tp(&c.topic, c.partition)).or_insert(0);
            *e = (*e).max(c.offset + 1);
        };
        for m in members {
            for c in &m.log().consumed {
                note(c);
            }
        }
        high
    };
    wait_for(
        limit,
        "consumers reaching the end of every partition",
        || {
            let high = reached();
            ends.iter()
                .all(|(t, e)| high.get(t).copied().unwrap_or(0) >= *e)
        },
        || {
            let high = reached();
            let behind: Vec<String> = ends
                .iter()
                .filter(|(t, e)| high.get(*t).copied().unwrap_or(0) < **e)
                .map(|(t, e)| format!("{}/{}: {:?} of {e}", t.0, t.1, high.get(t)))
                .collect();
            format!(
                "behind: {behind:?}; {}",
                describe(
                    &members
                        .iter()
                        .map(|m| *m as &dyn Participant)
                        .collect::<Vec<_>>()
                )
            )
        },
    );
}

/// The end of a group test, step by step: what was produced, the members that must still catch
/// up (then closed), the logs of members closed earlier, and members that commit without
/// telling us; [`DeliveryCheck::verify`] runs [`verify_delivery`] over all of it.
///
/// ```ignore
/// let produced = background.stop();
/// let report = DeliveryCheck::new(produced)
///     .drain([c1, c2], Duration::from_secs(60)) // wait until they consumed everything, close
///     .closed([c3_log])                          // a member that left earlier
///     .verify();
/// ```
#[derive(Debug, Default)]
pub struct DeliveryCheck {
    produced: Vec<Produced>,
    logs: Vec<MemberLog>,
    opaque: Vec<String>,
    opaque_consumed: Vec<Consumption>,
    known: Vec<KnownCommit>,
}

impl DeliveryCheck {
    /// A check of `produced`: every acknowledged message.
    pub fn new(produced: Vec<Produced>) -> DeliveryCheck {
        DeliveryCheck {
            produced,
            ..DeliveryCheck::default()
        }
    }

    /// Waits until `members` have together consumed every partition to the end of what was
    /// produced ([`wait_consumed_to_end`]).
    pub fn wait_consumed(&self, members: &[&Member], limit: Duration) {
        wait_consumed_to_end(members, &end_offsets(&self.produced), limit);
    }

    /// Closes `members` (in order) and keeps their logs.
    pub fn close(mut self, members: impl IntoIterator<Item = Member>) -> Self {
        self.logs.extend(members.into_iter().map(Member::close));
        self
    }

    /// [`DeliveryCheck::wait_consumed`] for `members`, then [`DeliveryCheck::close`] them.
    pub fn drain(self, members: impl IntoIterator<Item = Member>, limit: Duration) -> Self {
        let members: Vec<Member> = members.into_iter().collect();
        self.wait_consumed(&members.iter().collect::<Vec<_>>(), limit);
        self.close(members)
    }

    /// Logs of members closed earlier.
    pub fn closed(mut self, logs: impl IntoIterator<Item = MemberLog>) -> Self {
        self.logs.extend(logs);
        self
    }

    /// A member that commits without telling us (kcat): what it consumed, and the group's
    /// committed offsets learnt from outside (see [`verify_delivery`]).
    pub fn opaque(
        mut self,
        name: &str,
        consumed: Vec<Consumption>,
        known: Vec<KnownCommit>,
    ) -> Self {
        self.opaque.push(name.to_string());
        self.opaque_consumed.extend(consumed);
        self.known.extend(known);
        self
    }

    pub fn produced(&self) -> &[Produced] {
        &self.produced
    }

    /// The logs of the closed members, in the order they were added.
    pub fn logs(&self) -> &[MemberLog] {
        &self.logs
    }

    /// Everything consumed: the members' logs in order, then the opaque members'.
    pub fn consumed(&self) -> Vec<Consumption> {
        let mut consumed = all_consumed(&self.logs.iter().collect::<Vec<_>>());
        consumed.extend(self.opaque_consumed.iter().cloned());
        consumed
    }

    /// [`verify_delivery`] over everything gathered; panics on a violation.
    pub fn verify(&self) -> DeliveryReport {
        let opaque: Vec<&str> = self.opaque.iter().map(String::as_str).collect();
        verify_delivery(
            &self.produced,
            &self.consumed(),
            &all_commits(&self.logs.iter().collect::<Vec<_>>()),
            &self.known,
            &opaque,
        )
    }
}
