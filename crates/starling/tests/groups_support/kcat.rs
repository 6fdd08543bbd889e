//! [`KcatMember`]: a `kcat -G` consumer in a child process, for group members that must die
//! without a LeaveGroup (SIGKILL).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::debug::{debug_enabled, stamp};
use super::member_log::{Consumption, Event, EventKind};
use super::membership::Participant;
use super::tp::{tp, Tp};
use crate::common::die_with_parent;

/// What a `kcat -G` child printed.
#[derive(Debug, Default, Clone)]
pub struct KcatLog {
    pub consumed: Vec<Consumption>,
    pub assignment: BTreeSet<Tp>,
    pub events: Vec<Event>,
    pub stderr: Vec<String>,
}

/// A `kcat -G` balanced consumer (range assignor, auto-commit every 100 ms) in a child process.
pub struct KcatMember {
    pub name: String,
    child: Option<Child>,
    log: Arc<Mutex<KcatLog>>,
    readers: Vec<JoinHandle<()>>,
    pub killed_at: Option<Instant>,
}

impl KcatMember {
    pub fn start(
        name: &str,
        bootstrap: &str,
        group: &str,
        topic: &str,
        session_ms: u32,
        heartbeat_ms: u32,
    ) -> KcatMember {
        let mut cmd = Command::new("kcat");
        cmd.args(["-b", bootstrap, "-G", group, topic])
            .args(["-f", "%t %p %o %k\\n", "-u"])
            .args(["-X", "broker.address.family=v4"])
            .args(["-X", &format!("client.id={name}")])
            .args(["-X", "partition.assignment.strategy=range"])
            .args(["-X", &format!("session.timeout.ms={session_ms}")])
            .args(["-X", &format!("heartbeat.interval.ms={heartbeat_ms}")])
            .args(["-X", "enable.auto.commit=true"])
            .args(["-X", "auto.commit.interval.ms=100"])
            .args(["-X", "auto.offset.reset=earliest"])
            .args(["-X", "fetch.wait.max.ms=100"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if debug_enabled() {
            cmd.args(["-X", "debug=cgrp"]);
        }
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn kcat (apt-get install kcat): {e}"));
        let log = Arc::new(Mutex::new(KcatLog::default()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (l1, l2, n) = (log.clone(), log.clone(), name.to_string());
        let out_reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut f = line.splitn(4, ' ');
                let (Some(t), Some(p), Some(o)) = (f.next(), f.next(), f.next()) else {
                    continue;
                };
                let (Ok(p), Ok(o)) = (p.parse::<i32>(), o.parse::<i64>()) else {
                    continue;
                };
                let key = f.next().unwrap_or_default().to_string();
                l1.lock().unwrap().consumed.push(Consumption {
                    member: n.clone(),
                    tenure: 0,
                    at: Instant::now(),
                    topic: t.to_string(),
                    partition: p,
                    offset: o,
                    key,
                    assigned: true,
                });
            }
        });
        let debug = debug_enabled();
        let n2 = name.to_string();
        let err_reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if debug {
                    eprintln!("[{n2} {}] {line}", stamp());
                }
                let mut l = l2.lock().unwrap();
                // "% Group G rebalanced (memberid M): assigned: t [0], t [1]"
                for (marker, assign) in [("assigned: ", true), ("revoked: ", false)] {
                    if let Some(i) = line.find(marker) {
                        let parts = parse_kcat_partitions(&line[i + marker.len()..]);
                        if assign {
                            l.assignment = parts.clone();
                        } else {
                            l.assignment.clear();
                        }
                        l.events.push(Event {
                            at: Instant::now(),
                            kind: if assign {
                                EventKind::Assign
                            } else {
                                EventKind::Revoke { lost: false }
                            },
                            partitions: parts,
                            generation: None,
                        });
                    }
                }
                l.stderr.push(line);
            }
        });
        KcatMember {
            name: name.to_string(),
            child: Some(child),
            log,
            readers: vec![out_reader, err_reader],
            killed_at: None,
        }
    }

    pub fn log(&self) -> MutexGuard<'_, KcatLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// SIGKILL: no LeaveGroup, no final commit. Returns the kill time.
    pub fn kill9(&mut self) -> Instant {
        let mut child = self.child.take().expect("kcat is running");
        let _ = child.kill();
        let at = Instant::now();
        let _ = child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        // Lines still in the pipe when the process died were printed before it died (and so
        // before anything the test learns afterwards, e.g. the group's committed offsets).
        let before = at - Duration::from_micros(1);
        for c in &mut self.log().consumed {
            c.at = c.at.min(before);
        }
        self.killed_at = Some(at);
        at
    }

    pub fn consumed(&self) -> Vec<Consumption> {
        self.log().consumed.clone()
    }
}

impl Participant for KcatMember {
    fn label(&self) -> String {
        self.name.clone()
    }
    fn current_assignment(&self) -> BTreeSet<Tp> {
        self.log().assignment.clone()
    }
    fn current_generation(&self) -> Option<i32> {
        None
    }
}

impl Drop for KcatMember {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn parse_kcat_partitions(s: &str) -> BTreeSet<Tp> {
    s.split(", ")
        .filter_map(|item| {
            let item = item.trim();
            let open = item.rfind(" [")?;
            let p = item[open + 2..].trim_end_matches(']').parse::<i32>().ok()?;
            Some(tp(&item[..open], p))
        })
        .collect()
}
