//! The rebalance record, checked against what real librdkafka consumers saw: a scripted
//! cooperative-sticky scale-out (two members own six partitions, a third joins) must be
//! recorded as two rounds — the first revokes exactly the partitions the new member ends up
//! with, from their owners, the second hands them over — with every other partition listed
//! as staying with its owner. `starling group rebalances` shows the same history. With the
//! KIP-848 consumer protocol the same scale-out is one record (one group-epoch bump) that
//! times each moved partition's revoke, release and hand-over.

mod common;
mod groups_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use groups_support::*;
use serde_json::Value;

const STRATEGY: &str = "cooperative-sticky";

fn rebalances(broker: &Broker, group: &str) -> Vec<Value> {
    let (status, body) = http_get(broker.admin_addr(), &format!("/groups/{group}/rebalances"));
    assert_eq!(status, 200, "{body}");
    match serde_json::from_str(&body).expect("rebalance records are JSON") {
        Value::Array(records) => records,
        other => panic!("expected an array, got {other}"),
    }
}

/// (topic, partition) → member id, from a list of `{topic, partition, member_id}`.
fn owners(list: &Value) -> BTreeMap<Tp, String> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|p| {
            (
                tp(
                    p["topic"].as_str().unwrap(),
                    p["partition"].as_i64().unwrap() as i32,
                ),
                p["member_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// (topic, partition) → (from, to), from a list of moves.
fn moves(list: &Value) -> BTreeMap<Tp, (String, String)> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|m| {
            (
                tp(
                    m["topic"].as_str().unwrap(),
                    m["partition"].as_i64().unwrap() as i32,
                ),
                (
                    m["from"].as_str().unwrap().to_string(),
                    m["to"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

#[test]
fn cooperative_scale_out_is_recorded_as_revocation_then_hand_over() {
    let _w = watchdog(Duration::from_secs(150));
    let s = Scenario::new("record").strategy(STRATEGY).start();
    let (broker, group, all) = (&s.broker, &s.group, &s.all);

    let c1 = s.member("c1");
    let c2 = s.member("c2");
    wait_partitioned(&[&c1, &c2], all, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500));
    let before: BTreeMap<String, BTreeSet<Tp>> = [&c1, &c2]
        .iter()
        .map(|m| (m.snapshot().member_id, m.assignment()))
        .collect();
    let settled = rebalances(broker, group).len();

    let c3 = s.member("c3");
    wait_partitioned(&[&c1, &c2, &c3], all, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        is_partitioned(&[&c1, &c2, &c3], all),
        "{}",
        describe(&[&c1, &c2, &c3])
    );
    let newcomer = c3.snapshot().member_id;
    let handed_over = c3.assignment();
    assert_eq!(handed_over.len(), 2, "{}", describe(&[&c1, &c2, &c3]));

    let records = rebalances(broker, group);
    let new_records = &records[settled..];
    assert_eq!(
        new_records.len(),
        2,
        "a cooperative join takes two rebalances: {new_records:#?}"
    );
    let (revoke, assign) = (&new_records[0], &new_records[1]);

    // Round one: c3 joined; the two partitions it ends up with are revoked from their owners,
    // nothing moves yet, the other four stay.
    assert_eq!(revoke["cause"], "member_joined");
    assert_eq!(revoke["outcome"], "stable");
    assert_eq!(revoke["protocol"], STRATEGY);
    assert_eq!(revoke["joined"], serde_json::json!([newcomer.clone()]));
    assert_eq!(revoke["trigger_member"], newcomer.as_str());
    let round_one = &revoke["assignment"];
    let revoked = owners(&round_one["revoked"]);
    assert_eq!(
        revoked.keys().cloned().collect::<BTreeSet<Tp>>(),
        handed_over,
        "{revoke:#}"
    );
    for (partition, owner) in &revoked {
        assert!(
            before[owner].contains(partition),
            "{partition:?} was not {owner}'s"
        );
    }
    assert!(round_one["moved"].as_array().unwrap().is_empty());
    assert!(round_one["assigned"].as_array().unwrap().is_empty());
    let stayed = owners(&round_one["stayed"]);
    assert_eq!(stayed.len(), 4);
    for (partition, owner) in &stayed {
        assert!(
            before[owner].contains(partition),
            "{partition:?} was not {owner}'s"
        );
    }

    // Round two: the follow-up rejoin hands the revoked partitions to c3, from the members
    // they were revoked from; the four others stay where they were.
    assert_eq!(assign["cause"], "cooperative_follow_up");
    assert_eq!(assign["outcome"], "stable");
    assert_eq!(
        assign["generation"],
        revoke["generation"].as_i64().unwrap() + 1
    );
    let round_two = &assign["assignment"];
    let moved = moves(&round_two["moved"]);
    assert_eq!(moved.keys().cloned().collect::<BTreeSet<Tp>>(), handed_over);
    for (partition, (from, to)) in &moved {
        assert_eq!(to, &newcomer);
        assert_eq!(Some(from), revoked.get(partition));
    }
    assert_eq!(owners(&round_two["stayed"]), stayed);
    assert!(round_two["revoked"].as_array().unwrap().is_empty());

    // Timings are consistent and members are named with their client ids.
    for record in [revoke, assign] {
        let started = record["started_ms"].as_i64().unwrap();
        let joined = record["join_completed_ms"].as_i64().unwrap();
        let ended = record["ended_ms"].as_i64().unwrap();
        assert!(started <= joined && joined <= ended, "{record:#}");
        let clients: BTreeSet<&str> = record["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["client_id"].as_str().unwrap())
            .collect();
        assert_eq!(clients.len(), 3, "{record:#}");
    }

    // The CLI shows the same two rebalances.
    let admin = broker.admin_addr().to_string();
    let (status, out, err) = run_to_exit(
        &["group", "rebalances", group, "--admin", &admin, "--details"],
        Duration::from_secs(20),
    );
    assert!(status.success(), "{err}");
    assert!(out.contains("member_joined"), "{out}");
    assert!(out.contains("cooperative_follow_up"), "{out}");
    for (partition, (from, to)) in &moved {
        let line = format!("moved:    {}-{}  {from} -> {to}", partition.0, partition.1);
        assert!(out.contains(&line), "missing {line:?} in:\n{out}");
    }
    let (status, _, err) = run_to_exit(
        &["group", "rebalances", "no-such-group", "--admin", &admin],
        Duration::from_secs(20),
    );
    assert!(!status.success());
    assert!(err.contains("does not exist"), "{err}");

    drop((c1, c2, c3));
}

#[test]
fn a_consumer_protocol_scale_out_is_one_record_timing_each_partitions_hand_over() {
    let _w = watchdog(Duration::from_secs(150));
    let s = Scenario::new("record-kip848")
        .consumer("group.protocol", "consumer")
        .start();
    let (broker, group, all) = (&s.broker, &s.group, &s.all);

    let c1 = s.member("c1");
    let c2 = s.member("c2");
    wait_partitioned(&[&c1, &c2], all, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500));
    let settled = rebalances(broker, group).len();

    let c3 = s.member("c3");
    wait_partitioned(&[&c1, &c2, &c3], all, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500));
    let newcomer = c3.snapshot().member_id;
    let handed_over = c3.assignment();
    assert_eq!(handed_over.len(), 2, "{}", describe(&[&c1, &c2, &c3]));

    // No join barrier and no second round: one group-epoch bump, closed once every member
    // held its target.
    let records = rebalances(broker, group);
    let new_records = &records[settled..];
    assert_eq!(new_records.len(), 1, "{new_records:#?}");
    let record = &new_records[0];
    assert_eq!(record["cause"], "member_joined", "{record:#}");
    assert_eq!(record["trigger_member"], newcomer.as_str(), "{record:#}");
    assert_eq!(record["outcome"], "stable", "{record:#}");
    assert_eq!(record["protocol"], "uniform", "{record:#}");
    assert!(record["join_completed_ms"].is_null(), "{record:#}");
    let moved = moves(&record["assignment"]["moved"]);
    assert_eq!(moved.keys().cloned().collect::<BTreeSet<Tp>>(), handed_over);
    assert!(moved.values().all(|(_, to)| to == &newcomer), "{record:#}");

    // Each moved partition: its owner was asked to revoke it, released it, then the newcomer
    // was given it, in that order, within the record.
    let started = record["started_ms"].as_i64().unwrap();
    let ended = record["ended_ms"].as_i64().unwrap();
    let handovers = record["handovers"].as_array().unwrap();
    assert_eq!(handovers.len(), 2, "{record:#}");
    for h in handovers {
        let at = |field: &str| {
            h[field]
                .as_i64()
                .unwrap_or_else(|| panic!("{field} missing: {h:#}"))
        };
        let (asked, released, assigned) =
            (at("revoke_asked_ms"), at("released_ms"), at("assigned_ms"));
        assert!(
            started <= asked && asked <= released && released <= assigned && assigned <= ended,
            "{h:#}"
        );
        assert_eq!(h["to"], newcomer.as_str());
    }
    // Every member ends at the new epoch.
    let generation = record["generation"].as_i64().unwrap();
    let reconciliation = record["reconciliation"].as_array().unwrap();
    assert_eq!(reconciliation.len(), 3, "{record:#}");
    for m in reconciliation {
        assert_eq!(m["epoch"].as_i64(), Some(generation), "{m:#}");
        assert!(m["reconciled_ms"].as_i64().is_some(), "{m:#}");
    }

    // The CLI shows the hand-overs.
    let admin = broker.admin_addr().to_string();
    let (status, out, err) = run_to_exit(
        &["group", "rebalances", group, "--admin", &admin, "--details"],
        Duration::from_secs(20),
    );
    assert!(status.success(), "{err}");
    for partition in &handed_over {
        let prefix = format!("handover: {}-{}  ", partition.0, partition.1);
        assert!(out.contains(&prefix), "missing {prefix:?} in:\n{out}");
    }
    drop((c1, c2, c3));
}
