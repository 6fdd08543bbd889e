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
        "the backlog consumed and committed on every partition",
        || (0..4).all(|p| api_lag(broker, group, &s.topic, p) == Some(0)),
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
        [" <svg", "</dd>"]
            .iter()
            .any(|after| first.contains(&format!("<dt>Total lag</dt><dd>{lag}{after}"))),
        "the lag /groups reports, {lag}: {first}"
    );
    assert!(
        first.contains(&format!(
            "<tr><td class=\"id\"><a href=\"/ui/topics/{t}\">{t}</a></td><td class=\"num\">0</td><td class=\"id\">{c1_id}</td>",
            t = s.topic
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
    // range is eager: the whole group stopped for the whole rebalance.
    let newest_row = &rebalances_table[rebalances_table.find("<tbody>").unwrap()..];
    let newest_row = &newest_row[..newest_row.find("</tr>").unwrap()];
    assert!(
        newest_row.contains("<td>every partition, ≈ "),
        "{newest_row}"
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

/// The CSRF token of the form on `page`.
fn form_token(page: &str) -> String {
    let at = page
        .find("name=\"token\" value=\"")
        .unwrap_or_else(|| panic!("no token on {page}"));
    let rest = &page[at + "name=\"token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The committed offsets of `group`, by partition, as `/groups` reports them (none for a
/// group it does not list: one without members and offsets is gone).
fn committed(broker: &Broker, group: &str) -> Vec<(i64, i64)> {
    let (status, body) = http_get(broker.admin_addr(), "/groups");
    assert_eq!(status, 200, "{body}");
    let groups: serde_json::Value = serde_json::from_str(&body).unwrap();
    let Some(listed) = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == group)
    else {
        return Vec::new();
    };
    let mut offsets: Vec<(i64, i64)> = listed["offsets"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|o| {
                    (
                        o["partition"].as_i64().unwrap(),
                        o["committed_offset"].as_i64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    offsets.sort();
    offsets
}

#[test]
fn an_offset_reset_in_the_console_is_where_the_group_then_reads_from() {
    let _w = watchdog(Duration::from_secs(180));
    let s = Scenario::new("console-reset")
        .partitions(2)
        .backlog("pre", 20)
        .start();
    let (broker, group, topic) = (&s.broker, s.group.as_str(), s.topic.as_str());
    let admin = broker.admin_addr();
    let c1 = s.member("c1");
    wait_for(
        Duration::from_secs(30),
        "the backlog consumed and committed",
        || committed(broker, group) == [(0, 10), (1, 10)],
        || format!("{}", listed_group(broker, group)),
    );
    c1.close();

    // The dry run: both partitions to offset 4, nothing committed yet.
    let preview_path = format!("/ui/groups/{group}/reset?topic={topic}&to=offset&value=4");
    let preview = ok_page(broker, &preview_path);
    assert_eq!(
        preview.matches("<strong>4</strong>").count(),
        2,
        "{preview}"
    );
    assert_eq!(committed(broker, group), [(0, 10), (1, 10)]);
    let token = form_token(&preview);
    let post = format!("/ui/groups/{group}/reset");
    let fields = |token: &str| {
        [
            ("topic", topic.to_string()),
            ("to", "offset".to_string()),
            ("value", "4".to_string()),
            ("partitions", String::new()),
            ("token", token.to_string()),
        ]
    };
    let send = |headers: &[(&str, &str)], token: &str| {
        let fields = fields(token);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http_post_form(admin, &post, headers, &fields)
    };
    // Another site's request, or a forged token, changes nothing.
    let (status, _, body) = send(&[("Origin", "http://evil.example")], &token);
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = send(&[], "1.forged");
    assert_eq!(status, 403, "{body}");
    assert_eq!(committed(broker, group), [(0, 10), (1, 10)]);
    let (status, _, body) = send(&[("Sec-Fetch-Site", "same-origin")], &token);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Done."), "{body}");
    assert_eq!(committed(broker, group), [(0, 4), (1, 4)]);

    // A consumer of the group starts where the console put it.
    let c2 = s.member("c2");
    wait_for(
        Duration::from_secs(30),
        "c2 consumed to the end",
        || c2.snapshot().consumed.len() >= 12,
        || format!("{:?}", c2.snapshot().consumed.len()),
    );
    for partition in [0, 1] {
        let first = c2
            .snapshot()
            .consumed
            .iter()
            .filter(|c| c.partition == partition)
            .map(|c| c.offset)
            .min();
        assert_eq!(first, Some(4), "partition {partition}");
    }
    // While it is a member, a reset is shown but cannot be confirmed.
    let blocked = ok_page(broker, &preview_path);
    assert!(blocked.contains("The group has 1 member"), "{blocked}");
    assert!(!blocked.contains("method=\"post\""), "{blocked}");
    c2.close();

    // Deleting the topic's offsets, then the group.
    let confirm = ok_page(
        broker,
        &format!("/ui/groups/{group}/delete-offsets?topic={topic}"),
    );
    let (status, _, body) = http_post_form(
        admin,
        &format!("/ui/groups/{group}/delete-offsets"),
        &[],
        &[("topic", topic), ("token", &form_token(&confirm))],
    );
    assert_eq!((status, body.contains("Done.")), (200, true), "{body}");
    assert_eq!(committed(broker, group), []);
    let confirm = ok_page(broker, &format!("/ui/groups/{group}/delete"));
    // A token is for one action: the offsets' token does not delete the group.
    let (status, _, _) = http_post_form(
        admin,
        &format!("/ui/groups/{group}/delete"),
        &[],
        &[("token", &form_token(&preview))],
    );
    assert_eq!(status, 403);
    let (status, _, body) = http_post_form(
        admin,
        &format!("/ui/groups/{group}/delete"),
        &[],
        &[("token", &form_token(&confirm))],
    );
    assert_eq!((status, body.contains("Done.")), (200, true), "{body}");
    assert_eq!(page(broker, &format!("/ui/groups/{group}")).0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topic_page_browses_records_as_text_json_and_hex_escaped() {
    let _w = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "events", 2).await;
    let producer = producer(&bootstrap, &[]);
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::FutureRecord;
    for (key, value) in [
        ("k<1>", r#"{"user":"<script>x</script>","n":[1,2]}"#),
        ("k2", "plain text"),
    ] {
        producer
            .send(
                FutureRecord::to("events")
                    .partition(1)
                    .key(key)
                    .payload(value)
                    .headers(OwnedHeaders::new().insert(Header {
                        key: "trace<id>",
                        value: Some("abc"),
                    })),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }

    let page = ok_page(&broker, "/ui/topics/events?partition=1&format=json");
    assert!(!page.contains("<script>x"), "{page}");
    assert!(page.contains("k&lt;1&gt;"), "the key: {page}");
    assert!(page.contains("trace&lt;id&gt;=abc"), "the header: {page}");
    assert!(
        page.contains("&quot;user&quot;: &quot;&lt;script&gt;"),
        "pretty JSON: {page}"
    );
    assert!(page.contains("plain text"), "{page}");
    // From offset 1, one record, in hex: "plain text" is 70 6c 61 69 6e ...
    let page = ok_page(
        &broker,
        "/ui/topics/events?partition=1&offset=1&limit=1&format=hex",
    );
    assert!(page.contains("70 6c 61 69 6e"), "{page}");
    assert!(!page.contains("k&lt;1&gt;"), "{page}");
    // Partition 0 is empty; a partition that does not exist is said so.
    let page = ok_page(&broker, "/ui/topics/events?partition=0");
    assert!(page.contains("No messages at this position."), "{page}");
    let page = ok_page(&broker, "/ui/topics/events?partition=9");
    assert!(page.contains("has no partition 9"), "{page}");
    assert_eq!(page_status(&broker, "/ui/topics/nope"), 404);
}

fn page_status(broker: &Broker, path: &str) -> u16 {
    page(broker, path).0
}

/// The figure in the first `<dd>` after `<dt>{name}</dt>` on a page.
fn fact<'p>(page: &'p str, name: &str) -> &'p str {
    let start = page
        .find(&format!("<dt>{name}</dt><dd>"))
        .unwrap_or_else(|| panic!("no {name}: {page}"))
        + name.len()
        + 13;
    &page[start..start + page[start..].find("</dd>").expect("a whole fact")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_rates_and_each_partitions_lag_history_come_from_the_brokers_own_readings() {
    use rdkafka::consumer::{CommitMode, Consumer};
    use rdkafka::producer::FutureRecord;
    use rdkafka::{Offset, TopicPartitionList};
    let _w = watchdog(Duration::from_secs(120));
    let broker = Broker::with_overrides(&[("admin.console.sample.interval.ms", "200")]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "clicks", 1).await;
    // The readings before any record make the baseline of the rate.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let topic_page = ok_page(&broker, "/ui/topics/clicks");
    assert_eq!(
        fact(&topic_page, "Produce"),
        "0 rec/s · 0 B/s",
        "{topic_page}"
    );

    let producer = producer(&bootstrap, &[]);
    let send = |n: usize| {
        let producer = producer.clone();
        async move {
            for i in 0..n {
                producer
                    .send(
                        FutureRecord::to("clicks")
                            .partition(0)
                            .key("k")
                            .payload(&format!("click-{i}")),
                        Duration::from_secs(10),
                    )
                    .await
                    .expect("delivered");
            }
        }
    };
    send(10).await;
    // A group that committed offset 4 of 10: a lag of 6, then of 16 once ten more arrive.
    let consumer = consumer(&bootstrap, &[("group.id", "readers")]);
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("clicks", 0, Offset::Offset(4))
        .unwrap();
    consumer
        .commit(&offsets, CommitMode::Sync)
        .expect("committed");
    tokio::time::sleep(Duration::from_millis(600)).await;
    send(10).await;
    wait_for(
        Duration::from_secs(10),
        "a reading of the lag of 16",
        || {
            let page = ok_page(&broker, "/ui/groups/readers");
            page.contains("16 now")
        },
        || ok_page(&broker, "/ui/groups/readers"),
    );

    let group_page = ok_page(&broker, "/ui/groups/readers");
    let row = &group_page[group_page.find("<td class=\"spark\">").expect("a lag cell")..];
    let row = &row[..row.find("</td>").unwrap()];
    assert!(row.contains("<svg class=\"sparkline rising\""), "{row}");
    assert!(
        row.contains(": 6 then, 16 now, 16 at most</title>"),
        "{row}"
    );
    assert!(
        fact(&group_page, "Total lag").starts_with("16 <svg class=\"sparkline rising\""),
        "{group_page}"
    );

    // Twenty records in the last seconds: a produce rate above zero, shown in the list too.
    let topic_page = ok_page(&broker, "/ui/topics/clicks");
    let produce = fact(&topic_page, "Produce");
    assert!(
        !produce.starts_with("0 rec/s") && produce.contains(" rec/s · ") && produce.ends_with("/s"),
        "{produce}"
    );
    let overview = ok_page(&broker, "/ui/?tsort=in&tdesc=1");
    assert!(overview.contains(">In ▼</a>"), "{overview}");
    let listed = &overview[overview.find(">clicks</a>").expect("clicks listed")..];
    let listed = &listed[..listed.find("</tr>").unwrap()];
    assert!(
        listed.contains(" rec/s · ") && !listed.contains(">0 rec/s"),
        "{listed}"
    );
    // Effective configs: defaults named as such, a secret never shown.
    assert!(
        topic_page.contains(
            "<td class=\"id\">cleanup.policy</td><td class=\"id\">delete</td><td>default</td>"
        ),
        "{topic_page}"
    );
}
