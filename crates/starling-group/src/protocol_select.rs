//! Choosing the group's protocol: only a protocol every member supports is a candidate; each
//! member votes for its most preferred candidate and the most votes win. Kafka leaves ties to
//! hash-map order; here a tie goes to the protocol the leader prefers, then to the name.

use std::collections::{BTreeMap, BTreeSet};

use crate::member::Member;

/// Protocols every member supports.
pub(crate) fn candidates<'a>(members: &[&'a Member]) -> BTreeSet<&'a str> {
    let Some((first, rest)) = members.split_first() else {
        return BTreeSet::new();
    };
    first
        .protocols
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| rest.iter().all(|m| m.supports(name)))
        .collect()
}

/// Whether a member offering `offered` could join: some offered protocol is supported by all
/// of `others`.
pub(crate) fn compatible<'a>(
    others: impl IntoIterator<Item = &'a Member> + Clone,
    offered: &[String],
) -> bool {
    offered
        .iter()
        .any(|name| others.clone().into_iter().all(|m| m.supports(name)))
}

/// The protocol selected by vote, `None` when there are no members or no common protocol.
pub(crate) fn select(members: &[&Member], leader: Option<&str>) -> Option<String> {
    let candidates = candidates(members);
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for member in members {
        if let Some(vote) = member.vote(&candidates) {
            *votes.entry(vote).or_default() += 1;
        }
    }
    let most = *votes.values().max()?;
    let tied: Vec<&str> = votes
        .iter()
        .filter(|(_, n)| **n == most)
        .map(|(name, _)| *name)
        .collect();
    let leader_member = leader.and_then(|id| members.iter().find(|m| m.id == id));
    if let Some(leader_member) = leader_member {
        let preferred = leader_member
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| tied.contains(name));
        if let Some(name) = preferred {
            return Some(name.to_string());
        }
    }
    tied.first().map(|name| name.to_string())
}
