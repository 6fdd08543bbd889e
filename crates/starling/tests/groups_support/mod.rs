//! Helpers for the consumer-group end-to-end tests (`groups_*.rs`, and `metrics.rs`), all
//! re-exported here for `use groups_support::*`.
//!
//! * `scenario.rs`: [`Scenario`], the usual opening of a group test (broker, topic, group id,
//!   producer) in one expression, and the members of that group.
//! * `tp.rs`: topic partitions as plain values ([`Tp`]).
//! * `setup.rs`: [`group_broker`] (a broker with fast group settings), topics created or grown
//!   until metadata shows them, [`unique`] names.
//! * `wait.rs`: [`wait_for`], polling a condition with a time limit.
//! * `producer.rs`: [`Producer`] / [`BackgroundProducer`], keyed messages to explicit
//!   partitions with every delivery report kept as a [`Produced`].
//! * `member.rs`: [`Member`], a librdkafka consumer in its own thread, set up by a
//!   [`MemberConfig`] and committing per a [`CommitPolicy`].
//! * `member_log.rs`: what a member saw ([`MemberLog`]: [`Event`]s, [`Consumption`]s,
//!   [`CommitRec`]s).
//! * `recorder.rs`: the consumer context that fills a member's log and commits on revoke;
//!   [`group_generation`].
//! * `kcat.rs`: [`KcatMember`], a `kcat -G` consumer in a child process, for members that must
//!   die without a LeaveGroup (SIGKILL).
//! * `membership.rs`: whether every partition has exactly one owner ([`wait_partitioned`]).
//! * `offsets.rs`: a group's [`committed`] offsets, seen from outside.
//! * `delivery.rs`: [`verify_delivery`], every produced message consumed and every change of a
//!   partition's owner starting exactly at the group's committed offset; [`DeliveryCheck`]
//!   gathers what it needs at the end of a test.
//! * `debug.rs`: `STARLING_GROUP_TEST_DEBUG` output.
#![allow(dead_code)]

mod debug;
mod delivery;
mod kcat;
mod member;
mod member_log;
mod membership;
mod offsets;
mod producer;
mod recorder;
mod scenario;
mod setup;
mod tp;
mod wait;

// Each test binary uses only part of these.
#[allow(unused_imports)]
pub use {
    debug::*, delivery::*, kcat::*, member::*, member_log::*, membership::*, offsets::*,
    producer::*, recorder::*, scenario::*, setup::*, tp::*, wait::*,
};
