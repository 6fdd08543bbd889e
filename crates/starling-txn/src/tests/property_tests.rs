//! Random sequences of two producer instances sharing a transactional id (plus a second id),
//! with time passing, markers written late or never (lost to a restart), and restarts.
//!
//! After every step: the store replays to the live state; a producer epoch, once fenced, never
//! again gets a request accepted; epochs of a producer id never go back; a decided transaction
//! always has its marker job in flight; and no two ids share a producer id.

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    /// Instance `i` of id `t` calls InitProducerId (with its last producer id and epoch when
    /// `kip360`).
    Init {
        t: usize,
        i: usize,
        kip360: bool,
    },
    Add {
        t: usize,
        i: usize,
        partition: i32,
    },
    AddGroup {
        t: usize,
        i: usize,
    },
    End {
        t: usize,
        i: usize,
        commit: bool,
    },
    /// The oldest marker job is carried out.
    WriteMarkers,
    Advance(i64),
    Restart,
}

const IDS: [&str; 2] = ["a", "b"];

fn op() -> impl Strategy<Value = Op> {
    let t = 0..IDS.len();
    let i = 0..2usize;
    prop_oneof![
        2 => (t.clone(), i.clone(), any::<bool>()).prop_map(|(t, i, kip360)| Op::Init { t, i, kip360 }),
        4 => (t.clone(), i.clone(), 0..3i32).prop_map(|(t, i, partition)| Op::Add { t, i, partition }),
        1 => (t.clone(), i.clone()).prop_map(|(t, i)| Op::AddGroup { t, i }),
        3 => (t.clone(), i.clone(), any::<bool>()).prop_map(|(t, i, commit)| Op::End { t, i, commit }),
        3 => Just(Op::WriteMarkers),
        2 => (0..40_000i64).prop_map(Op::Advance),
        1 => Just(Op::Restart),
    ]
}

struct Model {
    h: Harness,
    /// What each instance of each id was last given.
    instances: BTreeMap<(usize, usize), ProducerIdAndEpoch>,
    /// Producer epochs superseded by a later one: never to be accepted again.
    fenced: HashSet<ProducerIdAndEpoch>,
    /// The highest epoch seen per producer id.
    highest: BTreeMap<i64, i16>,
}

impl Model {
    fn step(&mut self, op: &Op) {
        match *op {
            Op::Init { t, i, kip360 } => {
                let expected = if kip360 {
                    self.instances.get(&(t, i)).copied()
                } else {
                    None
                };
                if let Ok(p) = self.h.init_with(IDS[t], 20_000, expected) {
                    self.instances.insert((t, i), p);
                }
            }
            Op::Add { t, i, partition } => {
                if let Some(&p) = self.instances.get(&(t, i)) {
                    let r = self.h.add(IDS[t], p, &[tp("t", partition)]);
                    self.check_not_fenced(p, r);
                }
            }
            Op::AddGroup { t, i } => {
                if let Some(&p) = self.instances.get(&(t, i)) {
                    let r = self.h.add_group(IDS[t], p, "g");
                    self.check_not_fenced(p, r);
                }
            }
            Op::End { t, i, commit } => {
                if let Some(&p) = self.instances.get(&(t, i)) {
                    let r = self.h.end(IDS[t], p, commit);
                    self.check_not_fenced(p, r);
                }
            }
            Op::WriteMarkers => {
                if !self.h.jobs.is_empty() {
                    let job = self.h.jobs.remove(0);
                    let changes = self.h.coordinator.markers_written(&job, self.h.now);
                    for r in changes.records {
                        self.h.store.insert(r.key(), r);
                    }
                }
            }
            Op::Advance(ms) => {
                self.h.advance(ms);
            }
            Op::Restart => self.h.restart(),
        }
        self.check_invariants();
    }

    fn check_not_fenced(&self, p: ProducerIdAndEpoch, r: Result<ProducerIdAndEpoch, TxnError>) {
        if self.fenced.contains(&p) {
            assert!(r.is_err(), "fenced {p:?} had a request accepted: {r:?}");
        }
    }

    fn check_invariants(&mut self) {
        self.h.assert_store_matches();
        let mut producer_ids = HashSet::new();
        for (id, v) in self.h.coordinator.iter() {
            assert!(
                producer_ids.insert(v.producer_id),
                "{id} shares its producer id"
            );
            let highest = self
                .highest
                .entry(v.producer_id)
                .or_insert(v.producer_epoch);
            assert!(
                v.producer_epoch >= *highest,
                "{id}'s epoch went back from {highest} to {}",
                v.producer_epoch
            );
            for e in *highest..v.producer_epoch {
                self.fenced
                    .insert(ProducerIdAndEpoch::new(v.producer_id, e));
            }
            *highest = v.producer_epoch;
            if v.state.is_preparing() {
                assert!(
                    self.h
                        .jobs
                        .iter()
                        .any(|j| j.transactional_id == id && j.producer == v.producer()),
                    "{id} is {:?} with no marker job in flight",
                    v.state
                );
            }
            if v.state == TxnState::Ongoing {
                assert!(v.start_ms >= 0);
                assert!(!v.partitions.is_empty() || !v.groups.is_empty());
            } else if !v.state.is_preparing() {
                assert!(v.partitions.is_empty() && v.groups.is_empty());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fenced_producers_stay_fenced_and_the_store_always_replays_to_the_live_state(
        ops in proptest::collection::vec(op(), 1..80)
    ) {
        let mut m = Model {
            h: Harness::new(),
            instances: BTreeMap::new(),
            fenced: HashSet::new(),
            highest: BTreeMap::new(),
        };
        for op in &ops {
            m.step(op);
        }
    }

    #[test]
    fn every_transaction_ends_once_markers_are_written_and_time_passes(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        let mut m = Model {
            h: Harness::new(),
            instances: BTreeMap::new(),
            fenced: HashSet::new(),
            highest: BTreeMap::new(),
        };
        for op in &ops {
            m.step(op);
        }
        // Let every timeout fire and every marker land: nothing stays open or half-done.
        m.h.advance(1_000_000);
        m.h.write_markers();
        m.check_invariants();
        for (id, v) in m.h.coordinator.iter() {
            prop_assert!(
                !v.state.has_pending_transaction(),
                "{} stays {:?}", id, v.state
            );
        }
    }
}
