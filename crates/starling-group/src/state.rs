//! The classic group's states and the legal transitions between them (Kafka's
//! `ClassicGroupState`).

use std::fmt;

/// Where a classic group is in its rebalance cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (offsets may still be kept). Joins from new members are accepted; syncs,
    /// heartbeats, leaves and member commits get UNKNOWN_MEMBER_ID.
    /// Entered from: PreparingRebalance (the join phase completed with nobody left).
    Empty,
    /// Waiting for members to (re)join: join responses are held, heartbeats and syncs get
    /// REBALANCE_IN_PROGRESS, commits of the current generation are accepted.
    /// Entered from: Stable, CompletingRebalance, Empty.
    PreparingRebalance,
    /// The join phase completed; waiting for the leader's SyncGroup with the assignment. Syncs
    /// of followers are held, commits get REBALANCE_IN_PROGRESS.
    /// Entered from: PreparingRebalance.
    CompletingRebalance,
    /// Every member has its assignment.
    /// Entered from: CompletingRebalance.
    Stable,
    /// The group is being removed.
    /// Entered from: any state.
    Dead,
}

impl GroupState {
    /// Every state, in declaration order.
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// Kafka's name for the state, as DescribeGroups and ListGroups report it.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The states a group must be in to move to `self`.
    pub fn valid_previous_states(self) -> &'static [GroupState] {
        use GroupState::*;
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Stable, CompletingRebalance, Empty],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Stable, PreparingRebalance, CompletingRebalance, Empty, Dead],
        }
    }

    /// Whether a group in `from` may move to `self`.
    pub fn can_follow(self, from: GroupState) -> bool {
        self.valid_previous_states().contains(&from)
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
