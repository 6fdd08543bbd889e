//! The coordinator target's input format: a settings byte, then operations, each an op code
//! byte and its fields. Any byte string reads as a script (a field read past the end is 0, and
//! the script ends at the end of the input), and [`Script::to_bytes`] writes one back, so the
//! seeds are written with the same code that reads them.
//!
//! Fields do not carry ids the coordinator hands out; they refer to what the harness learned:
//! [`MemberRef::Known`] is the n-th member id seen in a JoinGroup response,
//! [`GenerationRef::Current`] the last generation the group's JoinGroup responses named. Group
//! ids, instance ids and topics come from small pools so that operations meet, or are raw
//! strings from the input.

/// A whole script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    pub settings: Settings,
    pub ops: Vec<Op>,
}

/// Coordinator settings chosen by the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settings {
    /// `group.initial.rebalance.delay.ms` 3000 instead of 0.
    pub initial_delay: bool,
    /// `group.max.size` 2 instead of unlimited.
    pub small_groups: bool,
    /// Offsets retained for one minute, checked every 10 s, instead of the defaults.
    pub short_retention: bool,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Join(Join),
    Sync(Sync),
    Heartbeat {
        version: u8,
        group: GroupRef,
        member: MemberRef,
        instance: InstanceRef,
        generation: GenerationRef,
    },
    /// LeaveGroup: v0–2 send the first member only; v3+ send all (with reasons at v5+).
    Leave {
        version: u8,
        group: GroupRef,
        members: Vec<(MemberRef, InstanceRef, Option<String>)>,
    },
    Commit(Commit),
    /// OffsetFetch: v0–7 send the first group only; `None` topics means all (v2+).
    Fetch {
        version: u8,
        groups: Vec<(GroupRef, Option<TopicPartitions>)>,
        require_stable: bool,
    },
    Describe {
        version: u8,
        groups: Vec<GroupRef>,
    },
    List {
        version: u8,
        states: Vec<Label>,
        types: Vec<Label>,
    },
    DeleteGroups {
        version: u8,
        groups: Vec<GroupRef>,
    },
    OffsetDelete {
        version: u8,
        group: GroupRef,
        topics: TopicPartitions,
    },
    /// Time moves forward this many milliseconds, then due timers fire.
    Sleep(u32),
    /// Time jumps to the next timer deadline, which fires.
    ExpireNext,
    /// The coordinator restarts from the records emitted so far.
    Restart,
    /// The caller's clock steps back this many milliseconds (the coordinator must cope).
    Rewind(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub version: u8,
    pub group: GroupRef,
    pub member: MemberRef,
    pub instance: InstanceRef,
    pub session: Timeout,
    pub rebalance: Timeout,
    pub protocol_type: Label,
    pub protocols: Vec<(Label, Blob)>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sync {
    pub version: u8,
    pub group: GroupRef,
    pub member: MemberRef,
    pub instance: InstanceRef,
    pub generation: GenerationRef,
    /// (protocol type, protocol name), sent at v5+.
    pub protocol: Option<(Label, Label)>,
    pub assignments: Vec<(MemberRef, Blob)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub version: u8,
    pub group: GroupRef,
    pub member: MemberRef,
    pub instance: InstanceRef,
    pub generation: GenerationRef,
    /// `retention_time_ms` (v2–4); `None` is -1.
    pub retention: Option<i64>,
    pub offsets: Vec<CommitOffset>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOffset {
    pub topic: TopicRef,
    pub partition: Partition,
    pub offset: Offset,
    pub metadata: Metadata,
    pub leader_epoch: i32,
}

/// Topics, each with partitions.
pub type TopicPartitions = Vec<(TopicRef, Vec<Partition>)>;

/// Group ids: the pool is `g0`, `g1`, `g2` and the empty (invalid) id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    Pool(u8),
    Raw(String),
}

/// Member ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRef {
    /// The empty member id (a new dynamic member).
    Empty,
    /// The n-th member id learned from JoinGroup responses (modulo how many are known; an
    /// unknown id when none is).
    Known(u8),
    Raw(String),
}

/// Static membership: `group.instance.id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceRef {
    None,
    /// `i0`, `i1`, `i2`.
    Pool(u8),
    Raw(String),
}

/// The generation a request claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerationRef {
    /// The group's last generation the harness saw.
    Current,
    Previous,
    /// -1: outside group management.
    Minus1,
    Raw(i32),
}

/// Session and rebalance timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timeout {
    /// One of [`TIMEOUTS`].
    Pool(u8),
    Raw(i32),
}

/// Timeouts around the coordinator's limits (6 s to 30 min sessions).
pub const TIMEOUTS: [i32; 7] = [10_000, 6_000, 5_999, 45_000, 1_800_000, 1_800_001, 1];

/// Names for protocol types, assignors, list filters: a pool or a raw string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    Pool(u8),
    Raw(String),
}

/// Protocol types, assignors and state names, in one pool.
pub const LABELS: [&str; 10] = [
    "consumer",
    "range",
    "roundrobin",
    "cooperative-sticky",
    "connect",
    "Stable",
    "Empty",
    "PreparingRebalance",
    "CompletingRebalance",
    "",
];

/// Protocol metadata and assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blob {
    Empty,
    /// A `ConsumerProtocolSubscription` at `version` (0–3) naming the pool topics in the mask.
    Subscription {
        version: u8,
        topics: u8,
    },
    /// A `ConsumerProtocolAssignment` at `version` (0–3): the pool topics in `topics`, each
    /// with the partitions 0–7 in `partitions`.
    Assignment {
        version: u8,
        topics: u8,
        partitions: u8,
    },
    Raw(Vec<u8>),
}

/// Topics: `t0`, `t1`, `t2`, or raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicRef {
    Pool(u8),
    Raw(String),
}

/// The topic pool.
pub const TOPICS: [&str; 3] = ["t0", "t1", "t2"];

/// A partition index: 0–3, or any i32.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partition {
    Small(u8),
    Raw(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offset {
    Small(u8),
    Minus1,
    Raw(i64),
}

/// Committed metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metadata {
    Null,
    Text(String),
    /// This many `m`s (to pass `offset.metadata.max.bytes`).
    Long(u16),
}

const OP_JOIN: u8 = 0;
const OP_SYNC: u8 = 1;
const OP_HEARTBEAT: u8 = 2;
const OP_LEAVE: u8 = 3;
const OP_COMMIT: u8 = 4;
const OP_FETCH: u8 = 5;
const OP_DESCRIBE: u8 = 6;
const OP_LIST: u8 = 7;
const OP_DELETE_GROUPS: u8 = 8;
const OP_OFFSET_DELETE: u8 = 9;
const OP_SLEEP: u8 = 10;
const OP_EXPIRE_NEXT: u8 = 11;
const OP_RESTART: u8 = 12;
const OP_REWIND: u8 = 13;
const OP_COUNT: u8 = 14;

/// Longest list read for any repeated field.
const MAX_LIST: u8 = 4;

/// Reads fields; past the end every read is 0 or empty.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    pub fn is_done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let got = self.take(N);
        out[..got.len()].copy_from_slice(got);
        out
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.array())
    }

    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.array())
    }

    /// A length byte, then that many bytes.
    fn bytes(&mut self) -> Vec<u8> {
        let n = usize::from(self.u8());
        self.take(n).to_vec()
    }

    fn string(&mut self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let n = self.u8() % (MAX_LIST + 1);
        (0..n).map(|_| item(self)).collect()
    }

    fn optional_string(&mut self) -> Option<String> {
        self.bool().then(|| self.string())
    }

    fn group(&mut self) -> GroupRef {
        let b = self.u8();
        if b & 0x80 != 0 {
            GroupRef::Raw(self.string())
        } else {
            GroupRef::Pool(b % 4)
        }
    }

    fn member(&mut self) -> MemberRef {
        match self.u8() {
            0 => MemberRef::Empty,
            0xff => MemberRef::Raw(self.string()),
            b => MemberRef::Known(b - 1),
        }
    }

    fn instance(&mut self) -> InstanceRef {
        match self.u8() {
            0 => InstanceRef::None,
            b if b & 0x80 != 0 => InstanceRef::Raw(self.string()),
            b => InstanceRef::Pool((b - 1) % 3),
        }
    }

    fn generation(&mut self) -> GenerationRef {
        match self.u8() % 4 {
            0 => GenerationRef::Current,
            1 => GenerationRef::Previous,
            2 => GenerationRef::Minus1,
            _ => GenerationRef::Raw(self.i32()),
        }
    }

    fn timeout(&mut self) -> Timeout {
        let b = self.u8() % (TIMEOUTS.len() as u8 + 1);
        if usize::from(b) == TIMEOUTS.len() {
            Timeout::Raw(self.i32())
        } else {
            Timeout::Pool(b)
        }
    }

    fn label(&mut self) -> Label {
        let b = self.u8();
        if b & 0x80 != 0 {
            Label::Raw(self.string())
        } else {
            Label::Pool(b % LABELS.len() as u8)
        }
    }

    fn blob(&mut self) -> Blob {
        match self.u8() % 4 {
            0 => Blob::Empty,
            1 => Blob::Subscription {
                version: self.u8() % 4,
                topics: self.u8(),
            },
            2 => Blob::Assignment {
                version: self.u8() % 4,
                topics: self.u8(),
                partitions: self.u8(),
            },
            _ => Blob::Raw(self.bytes()),
        }
    }

    fn topic(&mut self) -> TopicRef {
        let b = self.u8();
        if b & 0x80 != 0 {
            TopicRef::Raw(self.string())
        } else {
            TopicRef::Pool(b % TOPICS.len() as u8)
        }
    }

    fn partition(&mut self) -> Partition {
        let b = self.u8();
        if b >= 0xf0 {
            Partition::Raw(self.i32())
        } else {
            Partition::Small(b % 4)
        }
    }

    fn offset(&mut self) -> Offset {
        match self.u8() % 3 {
            0 => Offset::Small(self.u8()),
            1 => Offset::Minus1,
            _ => Offset::Raw(self.i64()),
        }
    }

    fn metadata(&mut self) -> Metadata {
        match self.u8() % 3 {
            0 => Metadata::Null,
            1 => Metadata::Text(self.string()),
            _ => Metadata::Long(self.u16()),
        }
    }

    fn topics_with_partitions(&mut self) -> Vec<(TopicRef, Vec<Partition>)> {
        self.list(|r| (r.topic(), r.list(Reader::partition)))
    }

    /// The settings byte, which starts every script.
    pub fn settings(&mut self) -> Settings {
        Settings::from_byte(self.u8())
    }

    /// The next operation, or `None` at the end of the input.
    pub fn op(&mut self) -> Option<Op> {
        if self.is_done() {
            return None;
        }
        let op = match self.u8() % OP_COUNT {
            OP_JOIN => Op::Join(Join {
                version: self.u8(),
                group: self.group(),
                member: self.member(),
                instance: self.instance(),
                session: self.timeout(),
                rebalance: self.timeout(),
                protocol_type: self.label(),
                protocols: self.list(|r| (r.label(), r.blob())),
                reason: self.optional_string(),
            }),
            OP_SYNC => Op::Sync(Sync {
                version: self.u8(),
                group: self.group(),
                member: self.member(),
                instance: self.instance(),
                generation: self.generation(),
                protocol: self.bool().then(|| (self.label(), self.label())),
                assignments: self.list(|r| (r.member(), r.blob())),
            }),
            OP_HEARTBEAT => Op::Heartbeat {
                version: self.u8(),
                group: self.group(),
                member: self.member(),
                instance: self.instance(),
                generation: self.generation(),
            },
            OP_LEAVE => Op::Leave {
                version: self.u8(),
                group: self.group(),
                members: self.list(|r| (r.member(), r.instance(), r.optional_string())),
            },
            OP_COMMIT => Op::Commit(Commit {
                version: self.u8(),
                group: self.group(),
                member: self.member(),
                instance: self.instance(),
                generation: self.generation(),
                retention: self.bool().then(|| self.i64()),
                offsets: self.list(|r| CommitOffset {
                    topic: r.topic(),
                    partition: r.partition(),
                    offset: r.offset(),
                    metadata: r.metadata(),
                    leader_epoch: r.i32(),
                }),
            }),
            OP_FETCH => Op::Fetch {
                version: self.u8(),
                groups: self.list(|r| {
                    let group = r.group();
                    let topics = r.bool().then(|| r.topics_with_partitions());
                    (group, topics)
                }),
                require_stable: self.bool(),
            },
            OP_DESCRIBE => Op::Describe {
                version: self.u8(),
                groups: self.list(Reader::group),
            },
            OP_LIST => Op::List {
                version: self.u8(),
                states: self.list(Reader::label),
                types: self.list(Reader::label),
            },
            OP_DELETE_GROUPS => Op::DeleteGroups {
                version: self.u8(),
                groups: self.list(Reader::group),
            },
            OP_OFFSET_DELETE => Op::OffsetDelete {
                version: self.u8(),
                group: self.group(),
                topics: self.topics_with_partitions(),
            },
            OP_SLEEP => Op::Sleep(self.u32()),
            OP_EXPIRE_NEXT => Op::ExpireNext,
            OP_RESTART => Op::Restart,
            _ => Op::Rewind(self.u16()),
        };
        Some(op)
    }
}

impl Script {
    /// Reads a whole input.
    pub fn read(data: &[u8]) -> Script {
        let mut reader = Reader::new(data);
        let settings = reader.settings();
        let mut ops = Vec::new();
        while let Some(op) = reader.op() {
            ops.push(op);
        }
        Script { settings, ops }
    }

    /// The bytes that read back as this script (strings and raw blobs must fit in 255 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.u8(self.settings.to_byte());
        for op in &self.ops {
            w.op(op);
        }
        w.0
    }
}

impl Settings {
    fn from_byte(b: u8) -> Settings {
        Settings {
            initial_delay: b & 1 != 0,
            small_groups: b & 2 != 0,
            short_retention: b & 4 != 0,
        }
    }

    fn to_byte(self) -> u8 {
        u8::from(self.initial_delay)
            | u8::from(self.small_groups) << 1
            | u8::from(self.short_retention) << 2
    }
}

/// Writes fields the way [`Reader`] reads them.
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, b: u8) {
        self.0.push(b);
    }

    fn bool(&mut self, b: bool) {
        self.u8(u8::from(b));
    }

    fn bytes(&mut self, b: &[u8]) {
        let n = u8::try_from(b.len()).expect("at most 255 bytes in a script field");
        self.u8(n);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn list<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        assert!(
            items.len() <= usize::from(MAX_LIST),
            "lists hold at most {MAX_LIST} items"
        );
        self.u8(items.len() as u8);
        for x in items {
            item(self, x);
        }
    }

    fn optional_string(&mut self, s: &Option<String>) {
        self.bool(s.is_some());
        if let Some(s) = s {
            self.string(s);
        }
    }

    fn group(&mut self, g: &GroupRef) {
        match g {
            GroupRef::Pool(i) => self.u8(i % 4),
            GroupRef::Raw(s) => {
                self.u8(0x80);
                self.string(s);
            }
        }
    }

    fn member(&mut self, m: &MemberRef) {
        match m {
            MemberRef::Empty => self.u8(0),
            MemberRef::Known(i) => self.u8(i.saturating_add(1).min(0xfe)),
            MemberRef::Raw(s) => {
                self.u8(0xff);
                self.string(s);
            }
        }
    }

    fn instance(&mut self, i: &InstanceRef) {
        match i {
            InstanceRef::None => self.u8(0),
            InstanceRef::Pool(n) => self.u8(n % 3 + 1),
            InstanceRef::Raw(s) => {
                self.u8(0x80);
                self.string(s);
            }
        }
    }

    fn generation(&mut self, g: &GenerationRef) {
        match g {
            GenerationRef::Current => self.u8(0),
            GenerationRef::Previous => self.u8(1),
            GenerationRef::Minus1 => self.u8(2),
            GenerationRef::Raw(n) => {
                self.u8(3);
                self.0.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    fn timeout(&mut self, t: &Timeout) {
        match t {
            Timeout::Pool(i) => self.u8(i % TIMEOUTS.len() as u8),
            Timeout::Raw(n) => {
                self.u8(TIMEOUTS.len() as u8);
                self.0.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    fn label(&mut self, l: &Label) {
        match l {
            Label::Pool(i) => self.u8(i % LABELS.len() as u8),
            Label::Raw(s) => {
                self.u8(0x80);
                self.string(s);
            }
        }
    }

    fn blob(&mut self, b: &Blob) {
        match b {
            Blob::Empty => self.u8(0),
            Blob::Subscription { version, topics } => {
                self.0.extend_from_slice(&[1, version % 4, *topics]);
            }
            Blob::Assignment {
                version,
                topics,
                partitions,
            } => self
                .0
                .extend_from_slice(&[2, version % 4, *topics, *partitions]),
            Blob::Raw(bytes) => {
                self.u8(3);
                self.bytes(bytes);
            }
        }
    }

    fn topic(&mut self, t: &TopicRef) {
        match t {
            TopicRef::Pool(i) => self.u8(i % TOPICS.len() as u8),
            TopicRef::Raw(s) => {
                self.u8(0x80);
                self.string(s);
            }
        }
    }

    fn partition(&mut self, p: &Partition) {
        match p {
            Partition::Small(i) => self.u8(i % 4),
            Partition::Raw(n) => {
                self.u8(0xf0);
                self.0.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    fn offset(&mut self, o: &Offset) {
        match o {
            Offset::Small(n) => self.0.extend_from_slice(&[0, *n]),
            Offset::Minus1 => self.u8(1),
            Offset::Raw(n) => {
                self.u8(2);
                self.0.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    fn metadata(&mut self, m: &Metadata) {
        match m {
            Metadata::Null => self.u8(0),
            Metadata::Text(s) => {
                self.u8(1);
                self.string(s);
            }
            Metadata::Long(n) => {
                self.u8(2);
                self.0.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    fn topics_with_partitions(&mut self, topics: &[(TopicRef, Vec<Partition>)]) {
        self.list(topics, |w, (topic, partitions)| {
            w.topic(topic);
            w.list(partitions, Writer::partition);
        });
    }

    fn op(&mut self, op: &Op) {
        match op {
            Op::Join(j) => {
                self.u8(OP_JOIN);
                self.u8(j.version);
                self.group(&j.group);
                self.member(&j.member);
                self.instance(&j.instance);
                self.timeout(&j.session);
                self.timeout(&j.rebalance);
                self.label(&j.protocol_type);
                self.list(&j.protocols, |w, (name, blob)| {
                    w.label(name);
                    w.blob(blob);
                });
                self.optional_string(&j.reason);
            }
            Op::Sync(s) => {
                self.u8(OP_SYNC);
                self.u8(s.version);
                self.group(&s.group);
                self.member(&s.member);
                self.instance(&s.instance);
                self.generation(&s.generation);
                self.bool(s.protocol.is_some());
                if let Some((protocol_type, name)) = &s.protocol {
                    self.label(protocol_type);
                    self.label(name);
                }
                self.list(&s.assignments, |w, (member, blob)| {
                    w.member(member);
                    w.blob(blob);
                });
            }
            Op::Heartbeat {
                version,
                group,
                member,
                instance,
                generation,
            } => {
                self.u8(OP_HEARTBEAT);
                self.u8(*version);
                self.group(group);
                self.member(member);
                self.instance(instance);
                self.generation(generation);
            }
            Op::Leave {
                version,
                group,
                members,
            } => {
                self.u8(OP_LEAVE);
                self.u8(*version);
                self.group(group);
                self.list(members, |w, (member, instance, reason)| {
                    w.member(member);
                    w.instance(instance);
                    w.optional_string(reason);
                });
            }
            Op::Commit(c) => {
                self.u8(OP_COMMIT);
                self.u8(c.version);
                self.group(&c.group);
                self.member(&c.member);
                self.instance(&c.instance);
                self.generation(&c.generation);
                self.bool(c.retention.is_some());
                if let Some(ms) = c.retention {
                    self.0.extend_from_slice(&ms.to_be_bytes());
                }
                self.list(&c.offsets, |w, o| {
                    w.topic(&o.topic);
                    w.partition(&o.partition);
                    w.offset(&o.offset);
                    w.metadata(&o.metadata);
                    w.0.extend_from_slice(&o.leader_epoch.to_be_bytes());
                });
            }
            Op::Fetch {
                version,
                groups,
                require_stable,
            } => {
                self.u8(OP_FETCH);
                self.u8(*version);
                self.list(groups, |w, (group, topics)| {
                    w.group(group);
                    w.bool(topics.is_some());
                    if let Some(topics) = topics {
                        w.topics_with_partitions(topics);
                    }
                });
                self.bool(*require_stable);
            }
            Op::Describe { version, groups } => {
                self.u8(OP_DESCRIBE);
                self.u8(*version);
                self.list(groups, Writer::group);
            }
            Op::List {
                version,
                states,
                types,
            } => {
                self.u8(OP_LIST);
                self.u8(*version);
                self.list(states, Writer::label);
                self.list(types, Writer::label);
            }
            Op::DeleteGroups { version, groups } => {
                self.u8(OP_DELETE_GROUPS);
                self.u8(*version);
                self.list(groups, Writer::group);
            }
            Op::OffsetDelete {
                version,
                group,
                topics,
            } => {
                self.u8(OP_OFFSET_DELETE);
                self.u8(*version);
                self.group(group);
                self.topics_with_partitions(topics);
            }
            Op::Sleep(ms) => {
                self.u8(OP_SLEEP);
                self.0.extend_from_slice(&ms.to_be_bytes());
            }
            Op::ExpireNext => self.u8(OP_EXPIRE_NEXT),
            Op::Restart => self.u8(OP_RESTART),
            Op::Rewind(ms) => {
                self.u8(OP_REWIND);
                self.0.extend_from_slice(&ms.to_be_bytes());
            }
        }
    }
}
