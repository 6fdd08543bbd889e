//! The web console (`/ui/`) against a real broker and real librdkafka consumers: the
//! overview lists the group and its topic; the group page shows the members and the lag the
//! `/groups` API reports; after a scale-out the rebalance history shows the new member and
//! the partitions it took; a group id full of markup is shown escaped everywhere. (The
//! browser-driven checks come with the WebDriver suite.)

mod common;
mod groups_support;

use std::time::Duration;

use common::*;
use groups_support::*;

/// `GET path` as a browser would ask; the status and body.
fn page(broker: &Broker, path: &str) -> (u16, String) {
    let (status, headers, body) =
        http_get_with(broker.admin_addr(), path, &[("Accept", "text/html")]);
    if status == 200 {
        let content_type = headers
            .iter()
            .find(|(name, _)| name == "content-type")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        assert!(content_type.starts_with("text/"), "{path}: {content_type}");
    }
    (status, body)
}

fn ok_page(broker: &Broker, path: &str) -> String {
    let (status, body) = page(broker, path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The lag of `partition` of `topic` in `group` as `/groups` reports it.
fn api_lag(broker: &Broker, group: &str, topic: &str, partition: i64) -> Option<i64> {
    let listed = listed_group(broker, group);
    listed["offsets"]
        .as_array()?
        .iter()
        .find(|o| o["topic"] == topic && o["partition"] == partition)?["lag"]
        .as_i64()
}

#[test]
fn the_console_shows_groups_members_lag_and_a_scale_out() {
    let _w = watchdog(Duration::from_secs(180));
    let s = Scenario::new("console")
        .partitions(4)
        .backlog("pre", 40)
        .start();
    let (broker, group, all) = (&s.broker, &s.group, &s.all);
    let c1 = s.member("c1");
    wait_partitioned(&[&c1], all, Duration::from_secs(30));
    wait_for(
        Duration::from_secs(30),
        "the backlog consumed and committed",
        || api_lag(broker, group, &s.topic, 0) == Some(0),
        || format!("{}", listed_group(broker, group)),
    );

    // c1 stops consuming; seven more records on partition 0 make a lag (of up to seven: c1
    // may finish the record it was handling).
    c1.set_stalled(true);
    for i in 0..7 {
        s.producer().send(&s.topic, 0, &format!("late-{i}"));
    }
    s.producer().flush();
    wait_for(
        Duration::from_secs(10),
        "a lag reported",
        || api_lag(broker, group, &s.topic, 0).is_some_and(|lag| lag > 0),
        || format!("{}", listed_group(broker, group)),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let lag = api_lag(broker, group, &s.topic, 0).unwrap();

    let overview = ok_page(broker, "/ui/");
    assert!(
        overview.contains(&format!("href=\"/ui/groups/{group}\"")),
        "{overview}"
    );
    assert!(overview.contains(&s.topic), "{overview}");
    assert!(
        overview.contains("member_joined"),
        "last rebalance: {overview}"
    );

    let path = format!("/ui/groups/{group}");
    let first = ok_page(broker, &path);
    let c1_id = c1.snapshot().member_id;
    assert!(first.contains(&c1_id), "{first}");
    assert!(
        first.contains(&format!("<dt>Total lag</dt><dd>{lag}</dd>")),
        "the lag /groups reports, {lag}: {first}"
    );
    assert!(
        first.contains(&format!(
            "<tr><td class=\"id\">{}</td><td class=\"num\">0</td><td class=\"id\">{c1_id}</td>",
            s.topic
        )),
        "partition 0 owned by c1: {first}"
    );
    assert!(
        first.contains(&format!("{} 0-3", s.topic)),
        "c1 owns all four: {first}"
    );

    // Scale out: c2 joins and takes half the partitions.
    c1.set_stalled(false);
    let c2 = s.member("c2");
    wait_partitioned(&[&c1, &c2], all, Duration::from_secs(30));
    let c2_id = c2.snapshot().member_id;
    let after = ok_page(broker, &path);
    assert!(after.contains(&c2_id), "c2 is a member: {after}");
    let rebalances_table = &after[after.find("<table class=\"rebalances\">").expect("a table")..];
    assert!(
        rebalances_table.contains(&format!("by {c2_id}")),
        "the newest rebalance was started by c2: {rebalances_table}"
    );
    let moved: Vec<Tp> = c2.assignment().into_iter().collect();
    assert_eq!(moved.len(), 2, "{}", describe(&[&c1, &c2]));
    assert!(
        rebalances_table.contains(&format!("{} {}-{}", s.topic, moved[0].1, moved[1].1)),
        "c2's partitions moved: {rebalances_table}"
    );
    let svg = &after[after.find("<svg").expect("the timeline picture")..];
    let svg = &svg[..svg.find("</svg>").expect("a whole picture")];
    for (who, id) in [("c1", &c1_id), ("c2", &c2_id)] {
        assert!(svg.contains(id.as_str()), "{who} in the timeline: {svg}");
    }
    for (topic, partition) in &moved {
        assert!(
            svg.contains(&format!("{topic}-{partition}")),
            "a row for {topic}-{partition}: {svg}"
        );
    }
    drop(c2);
    drop(c1);
}

#[test]
fn a_group_id_full_of_markup_is_shown_escaped() {
    let _w = watchdog(Duration::from_secs(120));
    let s = Scenario::new("console-markup").partitions(1).start();
    let evil = "<script>alert(\"x\")</script>";
    let member = Member::start(
        MemberConfig::new("evil", &s.boot(), evil, &s.topic, "range")
            .set("client.id", "<img src=x onerror=alert(1)>"),
    );
    wait_partitioned(&[&member], &s.all, Duration::from_secs(30));

    let overview = ok_page(&s.broker, "/ui/");
    assert!(!overview.contains("<script>alert"), "{overview}");
    assert!(
        overview.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
        "{overview}"
    );
    let encoded = "/ui/groups/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E";
    assert!(overview.contains(encoded), "{overview}");
    let group_page = ok_page(&s.broker, encoded);
    assert!(!group_page.contains("<script>alert"), "{group_page}");
    assert!(!group_page.contains("<img src=x"), "{group_page}");
    assert!(
        group_page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "the client id, escaped: {group_page}"
    );
    drop(member);

    // A group that does not exist is a page saying so, not an error dump.
    let (status, body) = page(&s.broker, "/ui/groups/no-such-group");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no group"), "{body}");
    // The endpoint's index links the console for a browser.
    let index = ok_page(&s.broker, "/");
    assert!(index.contains("href=\"/ui/\""), "{index}");
    let (status, css) = page(&s.broker, "/ui/console.css");
    assert_eq!(status, 200);
    assert!(css.contains("table"), "{css}");
}
