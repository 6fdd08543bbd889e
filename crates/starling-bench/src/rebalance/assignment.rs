//! The `manual` strategy's assignor: an even spread of the partitions over the members that
//! moves as few partitions as possible, like a sticky assignor would.

use std::collections::{BTreeMap, BTreeSet};

use super::trace::MemberId;

/// Partitions per member.
pub type Assignment = BTreeMap<MemberId, BTreeSet<i32>>;

/// One partition changing hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub partition: i32,
    /// `None` when nobody owned it (start-up, or its owner is gone).
    pub from: Option<MemberId>,
    pub to: MemberId,
}

/// Spreads `0..partitions` over `members` so that counts differ by at most one. A member keeps
/// as many of its `current` partitions as its share allows (lowest numbers first); the rest
/// go, lowest first, to the members below their share. Members with more partitions today get
/// the larger shares, which keeps moves to a minimum.
pub fn balance(current: &Assignment, members: &[MemberId], partitions: i32) -> Assignment {
    let mut out: Assignment = members.iter().map(|&m| (m, BTreeSet::new())).collect();
    if members.is_empty() || partitions <= 0 {
        return out;
    }
    let count = members.len();
    let base = partitions as usize / count;
    let extra = partitions as usize % count;

    let owned = |m: MemberId| -> Vec<i32> {
        current
            .get(&m)
            .map(|s| s.iter().copied().filter(|&p| p < partitions).collect())
            .unwrap_or_default()
    };
    let mut order: Vec<MemberId> = members.to_vec();
    order.sort_by_key(|&m| (std::cmp::Reverse(owned(m).len()), m));
    let quota: BTreeMap<MemberId, usize> = order
        .iter()
        .enumerate()
        .map(|(i, &m)| (m, base + usize::from(i < extra)))
        .collect();

    let mut taken = BTreeSet::new();
    for &m in &order {
        for p in owned(m).into_iter().take(quota[&m]) {
            if taken.insert(p) {
                out.entry(m).or_default().insert(p);
            }
        }
    }
    let mut free = (0..partitions).filter(|p| !taken.contains(p));
    for &m in &order {
        let have = out[&m].len();
        for p in free.by_ref().take(quota[&m].saturating_sub(have)) {
            out.entry(m).or_default().insert(p);
        }
    }
    out
}

/// The partitions whose owner differs between `before` and `after`, in partition order.
pub fn moves(before: &Assignment, after: &Assignment) -> Vec<Move> {
    let owner = |a: &Assignment, p: i32| a.iter().find(|(_, s)| s.contains(&p)).map(|(&m, _)| m);
    let mut out = Vec::new();
    let all: BTreeSet<i32> = after.values().flatten().copied().collect();
    for p in all {
        let to = owner(after, p).expect("p comes from `after`");
        let from = owner(before, p);
        if from != Some(to) {
            out.push(Move {
                partition: p,
                from,
                to,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(pairs: &[(MemberId, &[i32])]) -> Assignment {
        pairs
            .iter()
            .map(|(m, ps)| (*m, ps.iter().copied().collect()))
            .collect()
    }

    fn counts(a: &Assignment) -> Vec<usize> {
        a.values().map(BTreeSet::len).collect()
    }

    #[test]
    fn start_up_spreads_evenly() {
        let a = balance(&Assignment::new(), &[0, 1, 2], 8);
        assert_eq!(counts(&a), vec![3, 3, 2]);
        let all: BTreeSet<i32> = a.values().flatten().copied().collect();
        assert_eq!(all, (0..8).collect());
    }

    #[test]
    fn scale_out_moves_only_what_the_newcomer_needs() {
        let before = assignment(&[(0, &[0, 1, 2, 3]), (1, &[4, 5, 6, 7]), (2, &[8, 9, 10, 11])]);
        let after = balance(&before, &[0, 1, 2, 3], 12);
        assert_eq!(counts(&after), vec![3, 3, 3, 3]);
        let m = moves(&before, &after);
        assert_eq!(m.len(), 3);
        assert!(m.iter().all(|mv| mv.to == 3 && mv.from.is_some()));
    }

    #[test]
    fn scale_in_hands_the_leaver_partitions_to_the_rest() {
        let before = assignment(&[(0, &[0, 1, 2, 3]), (1, &[4, 5, 6, 7]), (2, &[8, 9, 10, 11])]);
        let after = balance(&before, &[0, 1], 12);
        assert_eq!(counts(&after), vec![6, 6]);
        let m = moves(&before, &after);
        assert_eq!(m.len(), 4);
        assert!(m.iter().all(|mv| mv.from == Some(2)));
    }

    #[test]
    fn uneven_counts_go_to_the_members_that_hold_more() {
        let before = assignment(&[(0, &[0, 1, 2]), (1, &[3, 4]), (2, &[5, 6])]);
        let after = balance(&before, &[0, 1, 2], 7);
        assert_eq!(after, before);
        assert!(moves(&before, &after).is_empty());
    }

    #[test]
    fn replacement_gets_the_orphaned_partitions() {
        let before = assignment(&[(0, &[0, 1]), (1, &[2, 3])]);
        // Member 1 restarted as member 2.
        let after = balance(&before, &[0, 2], 4);
        assert_eq!(after, assignment(&[(0, &[0, 1]), (2, &[2, 3])]));
        let m = moves(&before, &after);
        assert_eq!(m.len(), 2);
        assert!(m.iter().all(|mv| mv.from == Some(1) && mv.to == 2));
    }
}
