//! Runs one (scenario, strategy) pair from start to finish and returns its [`Trace`].
//!
//! Each pair gets a fresh topic and group. The steps:
//!
//! 1. start the steady-rate producer and the initial members (for `manual`, the bench hands
//!    out an even assignment);
//! 2. wait until every partition is consumed by its owner, let the backlog drain (one second),
//!    then observe the steady state for `--steady-secs`;
//! 3. trigger the scenario (add, close, crash or restart members), wait until the group has
//!    settled again, then observe `--settle-secs` more; a rolling restart does this once per
//!    member;
//! 4. stop the producer, let the consumers drain everything acknowledged, close them.
//!
//! For `manual` the bench itself plays the orchestrator: on each event it computes a new even
//! assignment ([`assignment::balance`]); each giving member commits its position and
//! unassigns, then each taking member assigns from the committed offset. It learns of a crash
//! at once (it caused it), so no failure-detection delay is modelled.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::assignment::{self, Assignment};
use super::consumer::{Member, MemberSpec};
use super::plan::{Scenario, Strategy};
use super::producer::{ProducerSpec, SteadyProducer};
use super::trace::{Clock, Ending, MemberId, Micros, Trace, Trigger};

/// How often the driver checks the members' state while it waits.
const CHECK_EVERY: Duration = Duration::from_millis(20);
/// How long after a member is gone the coordinator is asked whether it still lists it.
const LEAVE_CHECK_DELAY: Duration = Duration::from_millis(200);
/// Backlog drain between "every partition consumed" and the start of the steady window.
const WARM_UP: Duration = Duration::from_secs(1);

/// Settings shared by every pair.
#[derive(Debug, Clone)]
pub struct PairConfig {
    pub bootstrap: String,
    pub members: usize,
    pub partitions: i32,
    pub rate: u32,
    pub size: usize,
    pub session_timeout_ms: u32,
    pub heartbeat_interval_ms: u32,
    pub max_poll_interval_ms: u32,
    pub commit_interval_ms: u32,
    pub steady: Duration,
    pub settle: Duration,
    pub consumer_config: Vec<(String, String)>,
}

impl PairConfig {
    /// How long the group may take to settle after a trigger before the bench moves on.
    fn settle_limit(&self) -> Duration {
        Duration::from_millis(u64::from(self.session_timeout_ms)) + Duration::from_secs(60)
    }
}

/// What the bench saw of the member a scale-in or crash removes: whether it sent a
/// LeaveGroup, and whether the coordinator still listed it right after.
#[derive(Debug, Clone)]
pub struct LeaveCheck {
    pub member: String,
    pub ending: Ending,
    /// LeaveGroup requests the client wrote to its socket (librdkafka protocol debug log);
    /// `None` for a crash, whose log can no longer be read.
    pub leave_requests_sent: Option<u64>,
    /// Whether DescribeGroups listed its member id right after it was gone; `None` when the
    /// member never joined (manual) or the request failed.
    pub listed_after: Option<bool>,
    /// The group state DescribeGroups reported then.
    pub group_state_after: Option<String>,
    /// Milliseconds between its end and the DescribeGroups answer.
    pub checked_after_ms: f64,
}

/// One finished pair.
pub struct PairRun {
    pub scenario: Scenario,
    pub strategy: Strategy,
    pub topic: String,
    pub group: String,
    pub trace: Trace,
    pub leave_check: Option<LeaveCheck>,
    /// Anything that went wrong without stopping the run (a group that did not settle, ...).
    pub notes: Vec<String>,
    pub produced_sent: u64,
    pub first_produce_failure: Option<String>,
}

/// Runs one pair. `status` receives short progress messages.
pub fn run_pair(
    cfg: &PairConfig,
    scenario: Scenario,
    strategy: Strategy,
    clock: Clock,
    runtime: &tokio::runtime::Handle,
    status: &dyn Fn(&str),
) -> anyhow::Result<PairRun> {
    let tag = format!(
        "{}-{}-{}",
        scenario.name(),
        strategy.name(),
        unique_suffix()
    );
    let topic = format!("rebalance-{tag}");
    let group = format!("rebalance-group-{tag}");
    status("creating the topic");
    runtime.block_on(crate::client::ensure_topic(
        &cfg.bootstrap,
        &topic,
        cfg.partitions,
    ))?;

    let producer = SteadyProducer::start(
        ProducerSpec {
            bootstrap: cfg.bootstrap.clone(),
            topic: topic.clone(),
            partitions: cfg.partitions,
            rate: cfg.rate,
            size: cfg.size,
        },
        clock,
    )?;
    let mut driver = Driver {
        cfg,
        scenario,
        strategy,
        clock,
        topic: topic.clone(),
        group: group.clone(),
        members: Vec::new(),
        manual: Assignment::new(),
        triggers: Vec::new(),
        notes: Vec::new(),
        leave_check: None,
    };
    let outcome = driver.drive(status);
    let produced = producer.stop();
    if let (Ok(_), Ok(p)) = (&outcome, &produced) {
        status("draining");
        if let Some(note) = driver.drain(p) {
            driver.notes.push(note);
        }
    }
    status("closing the consumers");
    driver.close_all();
    let steady_from = outcome?;
    let produced = produced?;

    let mut trace = Trace {
        partitions: cfg.partitions,
        steady_from,
        triggers: std::mem::take(&mut driver.triggers),
        stopped_at: produced.stopped_at,
        produce_failures: produced.failed,
        acked: produced.acked,
        ..Trace::default()
    };
    for member in std::mem::take(&mut driver.members) {
        let (info, receipts, callbacks) = member.finish();
        if info.errors > 0 {
            driver.notes.push(format!(
                "{}: {} client error(s), last: {}",
                info.name,
                info.errors,
                info.last_error.as_deref().unwrap_or("?")
            ));
        }
        trace.members.push(info);
        trace.receipts.extend(receipts);
        trace.callbacks.extend(callbacks);
    }
    trace
        .receipts
        .sort_by_key(|r| (r.at, r.member, r.partition, r.offset));
    trace.callbacks.sort_by_key(|c| (c.at, c.member));
    if produced.failed > 0 {
        driver.notes.push(format!(
            "{} produce(s) failed; first: {}",
            produced.failed,
            produced.first_failure.as_deref().unwrap_or("?")
        ));
    }
    Ok(PairRun {
        scenario,
        strategy,
        topic,
        group,
        trace,
        leave_check: driver.leave_check.take(),
        notes: std::mem::take(&mut driver.notes),
        produced_sent: produced.sent,
        first_produce_failure: produced.first_failure,
    })
}

struct Driver<'a> {
    cfg: &'a PairConfig,
    scenario: Scenario,
    strategy: Strategy,
    clock: Clock,
    topic: String,
    group: String,
    /// Every instance ever started, indexed by [`MemberId`].
    members: Vec<Member>,
    /// `manual` only: the assignment the bench handed out.
    manual: Assignment,
    triggers: Vec<Trigger>,
    notes: Vec<String>,
    leave_check: Option<LeaveCheck>,
}

impl Driver<'_> {
    /// Steps 1–3; returns the start of the steady window.
    fn drive(&mut self, status: &dyn Fn(&str)) -> anyhow::Result<Micros> {
        status("starting the members");
        let victim_slot = self.cfg.members - 1;
        // librdkafka's log reaches the application only through polls, which a crashed
        // client no longer makes: its LeaveGroups cannot be counted, only the coordinator's
        // view checked. A closing member's can.
        let watch = self.scenario == Scenario::ScaleIn;
        for slot in 0..self.cfg.members {
            self.start_member(slot, format!("m{slot}"), watch && slot == victim_slot)?;
        }
        if self.strategy == Strategy::Manual {
            self.manual_rebalance()?;
        }
        status("waiting for the first assignment");
        // The first join waits for the broker's group.initial.rebalance.delay.ms.
        if !self.wait_settled(0, self.cfg.settle_limit()) {
            anyhow::bail!(
                "the initial group never consumed every partition within {:?}: {}",
                self.cfg.settle_limit(),
                self.describe_state()
            );
        }
        std::thread::sleep(WARM_UP);
        let steady_from = self.clock.now();
        status("steady state");
        std::thread::sleep(self.cfg.steady);

        match self.scenario {
            Scenario::ScaleOut => {
                let slot = self.cfg.members;
                let name = format!("m{slot}");
                let t = self.trigger(format!("+{name} joins"));
                status(&format!("{name} joins"));
                self.start_member(slot, name, false)?;
                if self.strategy == Strategy::Manual {
                    self.manual_rebalance()?;
                }
                self.settle(t, status);
            }
            Scenario::ScaleIn => {
                let victim = self.live_in_slot(victim_slot).context("scale-in victim")?;
                let name = self.members[victim].name.clone();
                let t = self.trigger(format!("{name} closes"));
                status(&format!("{name} closes"));
                let gone = self.members[victim].close()?;
                if self.strategy == Strategy::Manual {
                    self.manual_rebalance()?;
                }
                self.check_leave(victim, Ending::Closed, gone);
                self.settle(t, status);
            }
            Scenario::Crash => {
                let victim = self.live_in_slot(victim_slot).context("crash victim")?;
                let name = self.members[victim].name.clone();
                let t = self.trigger(format!("{name} crashes"));
                status(&format!("{name} crashes"));
                let gone = self.members[victim].crash()?;
                if self.strategy == Strategy::Manual {
                    self.manual_rebalance()?;
                }
                self.check_leave(victim, Ending::Crashed, gone);
                self.settle(t, status);
            }
            Scenario::RollingRestart => {
                for slot in 0..self.cfg.members {
                    let old = self.live_in_slot(slot).context("member to restart")?;
                    let incarnation = self.members.iter().filter(|m| m.slot == slot).count() + 1;
                    let name = format!("m{slot}#{incarnation}");
                    let t = self.trigger(format!("restart m{slot}"));
                    status(&format!("restarting m{slot}"));
                    self.members[old].close()?;
                    self.start_member(slot, name, false)?;
                    if self.strategy == Strategy::Manual {
                        self.manual_rebalance()?;
                    }
                    self.settle(t, status);
                }
            }
        }
        Ok(steady_from)
    }

    fn trigger(&mut self, label: String) -> Micros {
        let at = self.clock.now();
        self.triggers.push(Trigger { at, label });
        at
    }

    /// Waits for the group to settle after the trigger at `t`, then observes `--settle-secs`.
    fn settle(&mut self, t: Micros, status: &dyn Fn(&str)) {
        status("waiting for the group to settle");
        if !self.wait_settled(t, self.cfg.settle_limit()) {
            self.notes.push(format!(
                "the group had not settled {:?} after the trigger at {:.3} s: {}",
                self.cfg.settle_limit(),
                t as f64 / 1e6,
                self.describe_state()
            ));
        }
        status("observing after the rebalance");
        std::thread::sleep(self.cfg.settle);
    }

    fn start_member(&mut self, slot: usize, name: String, watch_leave: bool) -> anyhow::Result<()> {
        let spec = MemberSpec {
            name,
            slot,
            bootstrap: self.cfg.bootstrap.clone(),
            topic: self.topic.clone(),
            group: self.group.clone(),
            strategy: self.strategy,
            session_timeout_ms: self.cfg.session_timeout_ms,
            heartbeat_interval_ms: self.cfg.heartbeat_interval_ms,
            max_poll_interval_ms: self.cfg.max_poll_interval_ms,
            commit_interval_ms: self.cfg.commit_interval_ms,
            extra: self.cfg.consumer_config.clone(),
            watch_leave,
        };
        let id = self.members.len();
        self.members.push(Member::start(id, spec, self.clock)?);
        Ok(())
    }

    fn live(&self) -> Vec<MemberId> {
        self.members
            .iter()
            .filter(|m| m.is_running())
            .map(|m| m.id)
            .collect()
    }

    fn live_in_slot(&self, slot: usize) -> Option<MemberId> {
        self.members
            .iter()
            .find(|m| m.slot == slot && m.is_running())
            .map(|m| m.id)
    }

    /// `manual`: a new even assignment over the live members; givers commit and unassign
    /// first, then takers assign from the committed offsets.
    fn manual_rebalance(&mut self) -> anyhow::Result<()> {
        let live = self.live();
        self.manual.retain(|m, _| live.contains(m));
        let target = assignment::balance(&self.manual, &live, self.cfg.partitions);
        let moves = assignment::moves(&self.manual, &target);
        let mut give: BTreeMap<MemberId, Vec<i32>> = BTreeMap::new();
        let mut take: BTreeMap<MemberId, Vec<i32>> = BTreeMap::new();
        for mv in &moves {
            if let Some(from) = mv.from {
                give.entry(from).or_default().push(mv.partition);
            }
            take.entry(mv.to).or_default().push(mv.partition);
        }
        for (member, partitions) in give {
            self.members[member].release(partitions)?;
        }
        for (member, partitions) in take {
            self.members[member].acquire(partitions)?;
        }
        self.manual = target;
        Ok(())
    }

    /// True once every live member owns at least one partition, every partition has exactly
    /// one live owner, and each owner has received a message of each of its partitions since
    /// it got it and since `since`.
    fn is_settled(&self, since: Micros) -> bool {
        let mut owners: BTreeSet<i32> = BTreeSet::new();
        let live = self.live();
        if live.is_empty() {
            return false;
        }
        for id in live {
            let ok = self.members[id].with_log(|log| {
                if log.assignment.is_empty() {
                    return false;
                }
                log.assignment.iter().all(|p| {
                    let from = since.max(log.assigned_at.get(p).copied().unwrap_or(0));
                    owners.insert(*p) && log.last_receipt.get(p).is_some_and(|&at| at >= from)
                })
            });
            if !ok {
                return false;
            }
        }
        owners.len() == self.cfg.partitions as usize
    }

    fn wait_settled(&self, since: Micros, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if self.is_settled(since) {
                return true;
            }
            std::thread::sleep(CHECK_EVERY);
        }
        false
    }

    /// Who owns what and what they last received, for error messages.
    fn describe_state(&self) -> String {
        let now = self.clock.now();
        let parts: Vec<String> = self
            .live()
            .into_iter()
            .map(|id| {
                let m = &self.members[id];
                m.with_log(|log| {
                    let partitions: Vec<String> = log
                        .assignment
                        .iter()
                        .map(|p| match log.last_receipt.get(p) {
                            Some(at) => format!("{p} ({} ms ago)", now.saturating_sub(*at) / 1000),
                            None => format!("{p} (nothing yet)"),
                        })
                        .collect();
                    format!("{} owns [{}]", m.name, partitions.join(", "))
                })
            })
            .collect();
        parts.join("; ")
    }

    /// Asks the coordinator whether the member that just left is still listed.
    fn check_leave(&mut self, victim: MemberId, ending: Ending, gone: Micros) {
        // Long enough for a LeaveGroup in flight to have been handled.
        let since = Duration::from_micros(self.clock.now().saturating_sub(gone));
        std::thread::sleep(LEAVE_CHECK_DELAY.saturating_sub(since));
        let member = &self.members[victim];
        let member_id = member.with_log(|l| l.member_id.clone());
        let (listed_after, group_state_after) = match member_id {
            // DescribeGroups describes classic groups only (as in Kafka 4).
            Some(id) if self.strategy.subscribes() && !self.strategy.consumer_protocol() => {
                match self.describe_group() {
                    Ok((state, ids)) => (Some(ids.contains(&id)), Some(state)),
                    Err(e) => {
                        self.notes
                            .push(format!("DescribeGroups after the leave: {e:#}"));
                        (None, None)
                    }
                }
            }
            _ => (None, None),
        };
        self.leave_check = Some(LeaveCheck {
            member: member.name.clone(),
            ending,
            leave_requests_sent: member.leave_requests_sent(),
            listed_after,
            group_state_after,
            checked_after_ms: self.clock.now().saturating_sub(gone) as f64 / 1000.0,
        });
    }

    /// The group's state and member ids, per DescribeGroups.
    fn describe_group(&self) -> anyhow::Result<(String, Vec<String>)> {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.cfg.bootstrap)
            .set_log_level(RDKafkaLogLevel::Error)
            .create()
            .context("creating a DescribeGroups client")?;
        let list = client
            .fetch_group_list(Some(&self.group), Duration::from_secs(10))
            .context("DescribeGroups")?;
        let group = list
            .groups()
            .iter()
            .find(|g| g.name() == self.group)
            .context("the group is not listed")?;
        Ok((
            group.state().to_string(),
            group.members().iter().map(|m| m.id().to_string()).collect(),
        ))
    }

    /// Waits until every acknowledged message has been received by some consumer (per
    /// partition: highest offset received reaches the highest acknowledged one). Returns a
    /// note when it gives up.
    fn drain(&self, produced: &super::producer::Produced) -> Option<String> {
        let mut target: BTreeMap<i32, i64> = BTreeMap::new();
        for a in &produced.acked {
            let t = target.entry(a.partition).or_insert(a.offset);
            *t = (*t).max(a.offset);
        }
        let limit = self.cfg.settle_limit();
        let deadline = std::time::Instant::now() + limit;
        loop {
            let mut reached: BTreeMap<i32, i64> = BTreeMap::new();
            for m in &self.members {
                m.with_log(|log| {
                    for (&p, &o) in &log.max_offset {
                        let r = reached.entry(p).or_insert(o);
                        *r = (*r).max(o);
                    }
                });
            }
            let behind: Vec<i32> = target
                .iter()
                .filter(|(p, o)| reached.get(p).is_none_or(|r| r < o))
                .map(|(p, _)| *p)
                .collect();
            if behind.is_empty() {
                return None;
            }
            if std::time::Instant::now() > deadline {
                return Some(format!(
                    "drain gave up after {limit:?}; partitions still behind: {behind:?}; {}",
                    self.describe_state()
                ));
            }
            std::thread::sleep(CHECK_EVERY);
        }
    }

    /// Closes every member still running, all at once.
    fn close_all(&mut self) {
        let live = self.live();
        let members = &self.members;
        std::thread::scope(|s| {
            for id in live {
                s.spawn(move || {
                    if let Err(e) = members[id].close() {
                        tracing::warn!("closing {}: {e:#}", members[id].name);
                    }
                });
            }
        });
    }
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:x}", std::process::id())
}
