//! The scenarios and strategies the rebalance bench combines, and their command-line names.

/// What happens to the group after the steady state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Scenario {
    /// One member joins.
    ScaleOut,
    /// One member closes properly (revoke, commit, LeaveGroup).
    ScaleIn,
    /// One member dies without LeaveGroup; the coordinator notices at the session timeout.
    Crash,
    /// Each member in turn closes and a replacement with the same configuration starts.
    RollingRestart,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::ScaleOut,
        Scenario::ScaleIn,
        Scenario::Crash,
        Scenario::RollingRestart,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::ScaleOut => "scale-out",
            Scenario::ScaleIn => "scale-in",
            Scenario::Crash => "crash",
            Scenario::RollingRestart => "rolling-restart",
        }
    }

    /// Members needed before the trigger for the scenario to make sense.
    pub fn min_members(self) -> usize {
        match self {
            Scenario::ScaleIn | Scenario::Crash => 2,
            Scenario::ScaleOut | Scenario::RollingRestart => 1,
        }
    }
}

/// How partitions are assigned to the members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Strategy {
    /// Eager protocol: `partition.assignment.strategy=range`; every rebalance revokes everything.
    Eager,
    /// Incremental cooperative rebalancing (KIP-429): `cooperative-sticky`.
    Cooperative,
    /// `cooperative-sticky` with a `group.instance.id` per member slot (KIP-345).
    Static,
    /// No group membership: `assign()`, and the bench moves partitions itself.
    Manual,
    /// The KIP-848 consumer protocol (`group.protocol=consumer`): the broker assigns
    /// (its default server-side assignor) and reconciles each member on its own.
    Consumer,
    /// The consumer protocol with a `group.instance.id` per member slot.
    ConsumerStatic,
}

impl Strategy {
    pub const ALL: [Strategy; 6] = [
        Strategy::Eager,
        Strategy::Cooperative,
        Strategy::Static,
        Strategy::Manual,
        Strategy::Consumer,
        Strategy::ConsumerStatic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Eager => "eager",
            Strategy::Cooperative => "cooperative",
            Strategy::Static => "static",
            Strategy::Manual => "manual",
            Strategy::Consumer => "consumer",
            Strategy::ConsumerStatic => "consumer-static",
        }
    }

    /// librdkafka's `partition.assignment.strategy`, for the classic strategies that
    /// subscribe (the consumer protocol's assignor is the broker's).
    pub fn assignor(self) -> Option<&'static str> {
        match self {
            Strategy::Eager => Some("range"),
            Strategy::Cooperative | Strategy::Static => Some("cooperative-sticky"),
            Strategy::Manual | Strategy::Consumer | Strategy::ConsumerStatic => None,
        }
    }

    /// Whether the members use the KIP-848 consumer protocol (`group.protocol=consumer`).
    pub fn consumer_protocol(self) -> bool {
        matches!(self, Strategy::Consumer | Strategy::ConsumerStatic)
    }

    /// Whether the consumers join the group (subscribe) rather than use `assign()`.
    pub fn subscribes(self) -> bool {
        self.assignor().is_some() || self.consumer_protocol()
    }

    /// The `group.instance.id` of a member slot, for static membership.
    pub fn instance_id(self, slot: usize) -> Option<String> {
        matches!(self, Strategy::Static | Strategy::ConsumerStatic)
            .then(|| format!("bench-member-{slot}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_command_line() {
        use clap::ValueEnum;
        for s in Scenario::ALL {
            assert_eq!(s.to_possible_value().unwrap().get_name(), s.name());
        }
        for s in Strategy::ALL {
            assert_eq!(s.to_possible_value().unwrap().get_name(), s.name());
        }
    }
}
