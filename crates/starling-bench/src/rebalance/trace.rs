//! What one (scenario, strategy) run records: every message each consumer received, every
//! rebalance callback, every acknowledged produce and the scenario's triggers, all stamped
//! with one shared monotonic clock.
//!
//! These are plain data. The consumers and the producer fill them in while the run goes
//! (`consumer.rs`, `producer.rs`); `analysis.rs` and `svg.rs` read them afterwards.

use std::time::Instant;

/// Microseconds since the bench started, on the one clock every thread shares.
pub type Micros = u64;

/// The bench's monotonic clock: one `Instant` taken at start, shared by every thread.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> Micros {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// Index of a consumer instance in [`Trace::members`].
pub type MemberId = usize;

/// How a consumer instance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Closed properly: revoke, final commit, LeaveGroup (static members send none).
    Closed,
    /// Handle destroyed without consumer close: no LeaveGroup, no final commit.
    Crashed,
}

impl Ending {
    pub fn name(self) -> &'static str {
        match self {
            Ending::Closed => "closed",
            Ending::Crashed => "crashed",
        }
    }
}

/// One consumer instance. A replacement in a rolling restart is a new instance of the same
/// slot (`m0` is replaced by `m0#2`).
#[derive(Debug, Clone)]
pub struct MemberInfo {
    pub name: String,
    pub slot: usize,
    pub started: Micros,
    /// When it was told to close or crash; `None` while it runs.
    pub ended: Option<Micros>,
    pub ending: Option<Ending>,
    /// `group.instance.id` for static members.
    pub instance_id: Option<String>,
    /// The member id the coordinator gave it (last one seen), if it joined a group.
    pub member_id: Option<String>,
    /// LeaveGroup requests the client sent, counted from librdkafka's protocol debug log;
    /// `None` when not watched (only the member a scenario removes is watched).
    pub leave_requests_sent: Option<u64>,
    /// Client errors reported while it ran (the last one and how many).
    pub errors: u64,
    pub last_error: Option<String>,
}

#[cfg(test)]
impl MemberInfo {
    /// A member that started at 0 and has no ending, errors or ids yet.
    pub fn for_test(name: &str) -> MemberInfo {
        MemberInfo {
            name: name.to_string(),
            slot: 0,
            started: 0,
            ended: None,
            ending: None,
            instance_id: None,
            member_id: None,
            leave_requests_sent: None,
            errors: 0,
            last_error: None,
        }
    }
}

/// One message handed to the application by a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub member: MemberId,
    pub partition: i32,
    pub offset: i64,
    /// Global sequence number the producer wrote into the payload.
    pub seq: u64,
    /// When the producer sent it (written into the payload).
    pub sent: Micros,
    /// When the consumer's poll returned it.
    pub at: Micros,
}

/// Kind of an assignment change seen by a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackKind {
    Assign,
    Revoke,
    /// A revoke of partitions the consumer has already lost (session expired, fenced).
    Lost,
}

impl CallbackKind {
    pub fn name(self) -> &'static str {
        match self {
            CallbackKind::Assign => "assign",
            CallbackKind::Revoke => "revoke",
            CallbackKind::Lost => "lost",
        }
    }
}

/// A rebalance callback (or, for `manual`, an assign/unassign the orchestrator ordered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub member: MemberId,
    pub at: Micros,
    pub kind: CallbackKind,
    /// May be empty: a cooperative round can assign nothing to a member.
    pub partitions: Vec<i32>,
}

/// A produced message the broker acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub seq: u64,
    pub partition: i32,
    pub offset: i64,
}

/// One scenario event: a member added, removed or restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub at: Micros,
    /// What happened, e.g. "+m3" or "crash m2".
    pub label: String,
}

/// Everything one (scenario, strategy) run recorded.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub partitions: i32,
    pub members: Vec<MemberInfo>,
    /// Sorted by `at`.
    pub receipts: Vec<Receipt>,
    /// Sorted by `at`.
    pub callbacks: Vec<Callback>,
    pub acked: Vec<Acked>,
    pub produce_failures: u64,
    /// Every partition was being consumed from here on: the steady-state window starts.
    pub steady_from: Micros,
    /// In order; at least one.
    pub triggers: Vec<Trigger>,
    /// The producer stopped here; the last event's observation ends here.
    pub stopped_at: Micros,
}

impl Trace {
    /// End of the observation of event `i`: the next trigger, or the producer's stop.
    pub fn event_until(&self, i: usize) -> Micros {
        self.triggers
            .get(i + 1)
            .map(|t| t.at)
            .unwrap_or(self.stopped_at)
    }

    pub fn member_name(&self, m: MemberId) -> &str {
        self.members.get(m).map(|i| i.name.as_str()).unwrap_or("?")
    }
}
