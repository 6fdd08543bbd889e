//! Checking a group's assignment from outside: anything whose assignment the test can see is a
//! [`Participant`]; [`is_partitioned`] / [`wait_partitioned`] say whether every partition has
//! exactly one owner, and [`describe`] shows who holds what.

use std::collections::BTreeSet;
use std::time::Duration;

use super::member::Member;
use super::tp::Tp;
use super::wait::wait_for;

/// Anything in a group whose assignment the test can see.
pub trait Participant {
    fn label(&self) -> String;
    fn current_assignment(&self) -> BTreeSet<Tp>;
    /// The member's generation, when the client exposes it.
    fn current_generation(&self) -> Option<i32>;
}

impl Participant for Member {
    fn label(&self) -> String {
        self.name.clone()
    }
    fn current_assignment(&self) -> BTreeSet<Tp> {
        self.assignment()
    }
    fn current_generation(&self) -> Option<i32> {
        self.generation()
    }
}

/// `name: [partitions] gen G` for each participant, for failure messages.
pub fn describe(members: &[&dyn Participant]) -> String {
    members
        .iter()
        .map(|m| {
            let parts: Vec<String> = m
                .current_assignment()
                .iter()
                .map(|(t, p)| format!("{t}/{p}"))
                .collect();
            format!(
                "{}: [{}] gen {:?}",
                m.label(),
                parts.join(","),
                m.current_generation()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// True when the participants' assignments are disjoint, cover exactly `all`, each holds at
/// least one partition (when there are enough), and every known generation is the same.
pub fn is_partitioned(members: &[&dyn Participant], all: &BTreeSet<Tp>) -> bool {
    let mut union = BTreeSet::new();
    let mut total = 0;
    let mut generations = BTreeSet::new();
    for m in members {
        let a = m.current_assignment();
        if a.is_empty() && members.len() <= all.len() {
            return false;
        }
        total += a.len();
        union.extend(a);
        if let Some(g) = m.current_generation() {
            generations.insert(g);
        }
    }
    total == union.len() && &union == all && generations.len() <= 1
}

/// Waits until [`is_partitioned`] holds; returns how long that took.
pub fn wait_partitioned(
    members: &[&dyn Participant],
    all: &BTreeSet<Tp>,
    limit: Duration,
) -> Duration {
    wait_for(
        limit,
        "every partition assigned to exactly one member",
        || is_partitioned(members, all),
        || describe(members),
    )
}
