//! The overview page (`/ui/`): the broker at a glance, its topics and its consumer groups.
//!
//! Both lists are filtered by the `q` query parameter (a case-insensitive substring of the
//! name), the groups sorted by any column (`sort`, `desc`), and each paged (`page` for groups,
//! `tpage` for topics), so a broker with thousands of groups answers with one page of rows. The
//! links are plain URLs: sorting and paging work with JavaScript disabled.

use std::cmp::Ordering;

use crate::html::{self, escape, url_encode, Html, Section};

/// Rows per page of each list.
pub const PER_PAGE: usize = 100;

/// The broker's facts at the top of the page.
#[derive(Debug, Clone, Default)]
pub struct BrokerFacts {
    pub version: String,
    pub cluster_id: String,
    pub node_id: i32,
    pub uptime_ms: i64,
    /// (listener name, address clients are given).
    pub listeners: Vec<(String, String)>,
    pub data_dir: String,
    /// Bytes in every partition log.
    pub log_bytes: u64,
    /// Storage faults the broker serves through (empty: healthy).
    pub faults: Vec<String>,
}

/// One topic in the list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicRow {
    pub name: String,
    pub partitions: usize,
    pub size_bytes: u64,
    /// Records in the logs (log end minus log start, summed over partitions).
    pub records: i64,
    /// Record bytes produced and fetched since the broker started.
    pub produced_bytes: u64,
    pub fetched_bytes: u64,
    /// Recent throughput; `None` until the broker has read the topic's counters twice.
    pub rates: Option<Rates>,
}

/// A topic's recent throughput, per second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub records_in: f64,
    pub bytes_in: f64,
    pub bytes_out: f64,
}

/// The last rebalance of a group, as the list shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LastRebalance {
    pub generation: i32,
    pub cause: String,
    pub outcome: String,
    pub started_ms: i64,
    /// `None` while it is still open.
    pub duration_ms: Option<i64>,
}

/// One group in the list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupRow {
    pub group_id: String,
    /// `classic` or `consumer` (KIP-848).
    pub kind: String,
    pub state: String,
    pub protocol: Option<String>,
    pub members: usize,
    /// Summed over the partitions with a committed offset and a known end; `None` when none has.
    pub lag: Option<i64>,
    pub last_rebalance: Option<LastRebalance>,
}

/// A column the group list sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupSort {
    #[default]
    Id,
    State,
    Kind,
    Members,
    Lag,
    LastRebalance,
}

/// A column a list sorts by, named in URLs.
trait SortColumn: Copy + PartialEq + Default + 'static {
    /// Every column with its URL name; the first is the default.
    const ALL: &'static [(Self, &'static str)];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or(Self::ALL[0].1, |(_, n)| n)
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
    }
}

impl SortColumn for GroupSort {
    const ALL: &'static [(GroupSort, &'static str)] = &[
        (GroupSort::Id, "id"),
        (GroupSort::State, "state"),
        (GroupSort::Kind, "kind"),
        (GroupSort::Members, "members"),
        (GroupSort::Lag, "lag"),
        (GroupSort::LastRebalance, "rebalance"),
    ];
}

/// A column the topic list sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopicSort {
    #[default]
    Name,
    Partitions,
    Records,
    Size,
    In,
    Out,
}

impl SortColumn for TopicSort {
    const ALL: &'static [(TopicSort, &'static str)] = &[
        (TopicSort::Name, "name"),
        (TopicSort::Partitions, "partitions"),
        (TopicSort::Records, "records"),
        (TopicSort::Size, "size"),
        (TopicSort::In, "in"),
        (TopicSort::Out, "out"),
    ];
}

/// What the lists show: the query parameters of `/ui/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Case-insensitive substring of the group or topic name.
    pub filter: String,
    pub sort: GroupSort,
    pub descending: bool,
    /// Zero-based page of the group list.
    pub page: usize,
    /// Zero-based page of the topic list.
    pub topic_page: usize,
    pub topic_sort: TopicSort,
    pub topic_descending: bool,
}

impl ListQuery {
    /// The query from `(name, value)` pairs (already percent-decoded); unknown names and
    /// unreadable values are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> ListQuery {
        let mut query = ListQuery::default();
        for (name, value) in pairs {
            match name {
                "q" => query.filter = value.trim().to_string(),
                "sort" => query.sort = GroupSort::parse(value).unwrap_or_default(),
                "desc" => query.descending = value == "1",
                "page" => query.page = value.parse().unwrap_or(0),
                "tpage" => query.topic_page = value.parse().unwrap_or(0),
                "tsort" => query.topic_sort = TopicSort::parse(value).unwrap_or_default(),
                "tdesc" => query.topic_descending = value == "1",
                _ => {}
            }
        }
        query
    }

    /// The `/ui/` URL of this query with `change` applied.
    fn url(&self, change: impl FnOnce(&mut ListQuery)) -> String {
        let mut q = self.clone();
        change(&mut q);
        let mut parts = Vec::new();
        if !q.filter.is_empty() {
            parts.push(format!("q={}", url_encode(&q.filter)));
        }
        if q.sort != GroupSort::Id {
            parts.push(format!("sort={}", q.sort.name()));
        }
        if q.descending {
            parts.push("desc=1".to_string());
        }
        if q.page > 0 {
            parts.push(format!("page={}", q.page));
        }
        if q.topic_page > 0 {
            parts.push(format!("tpage={}", q.topic_page));
        }
        if q.topic_sort != TopicSort::Name {
            parts.push(format!("tsort={}", q.topic_sort.name()));
        }
        if q.topic_descending {
            parts.push("tdesc=1".to_string());
        }
        if parts.is_empty() {
            "/ui/".to_string()
        } else {
            format!("/ui/?{}", parts.join("&"))
        }
    }

    fn matches(&self, name: &str) -> bool {
        self.filter.is_empty() || name.to_lowercase().contains(&self.filter.to_lowercase())
    }
}

/// Everything the overview page shows.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub broker: BrokerFacts,
    pub topics: Vec<TopicRow>,
    pub groups: Vec<GroupRow>,
    pub query: ListQuery,
}

/// The groups `query` selects, sorted, and how many matched before paging.
pub fn select_groups<'a>(groups: &'a [GroupRow], query: &ListQuery) -> (Vec<&'a GroupRow>, usize) {
    let matching: Vec<&GroupRow> = groups
        .iter()
        .filter(|g| query.matches(&g.group_id))
        .collect();
    let key = |a: &&GroupRow, b: &&GroupRow| -> Ordering {
        let by = match query.sort {
            GroupSort::Id => Ordering::Equal,
            GroupSort::State => a.state.cmp(&b.state),
            GroupSort::Kind => a.kind.cmp(&b.kind),
            GroupSort::Members => a.members.cmp(&b.members),
            GroupSort::Lag => a.lag.cmp(&b.lag),
            GroupSort::LastRebalance => a
                .last_rebalance
                .as_ref()
                .map(|r| r.started_ms)
                .cmp(&b.last_rebalance.as_ref().map(|r| r.started_ms)),
        };
        by.then_with(|| a.group_id.cmp(&b.group_id))
    };
    sort_and_page(matching, key, query.descending, query.page)
}

/// The topics `query` selects, sorted, and how many matched before paging.
pub fn select_topics<'a>(topics: &'a [TopicRow], query: &ListQuery) -> (Vec<&'a TopicRow>, usize) {
    let matching: Vec<&TopicRow> = topics.iter().filter(|t| query.matches(&t.name)).collect();
    // No rate yet sorts below every rate.
    let rate = |a: &TopicRow, b: &TopicRow, pick: fn(&Rates) -> f64| match (&a.rates, &b.rates) {
        (Some(x), Some(y)) => pick(x).total_cmp(&pick(y)),
        (x, y) => x.is_some().cmp(&y.is_some()),
    };
    let key = |a: &&TopicRow, b: &&TopicRow| -> Ordering {
        let by = match query.topic_sort {
            TopicSort::Name => Ordering::Equal,
            TopicSort::Partitions => a.partitions.cmp(&b.partitions),
            TopicSort::Records => a.records.cmp(&b.records),
            TopicSort::Size => a.size_bytes.cmp(&b.size_bytes),
            TopicSort::In => rate(a, b, |r| r.bytes_in),
            TopicSort::Out => rate(a, b, |r| r.bytes_out),
        };
        by.then_with(|| a.name.cmp(&b.name))
    };
    sort_and_page(matching, key, query.topic_descending, query.topic_page)
}

/// `rows` sorted by `key` (reversed when `descending`), page `page` of them, and how many
/// there were.
fn sort_and_page<'a, T>(
    mut rows: Vec<&'a T>,
    key: impl Fn(&&'a T, &&'a T) -> Ordering,
    descending: bool,
    page: usize,
) -> (Vec<&'a T>, usize) {
    rows.sort_by(|a, b| if descending { key(b, a) } else { key(a, b) });
    let total = rows.len();
    let page = rows
        .into_iter()
        .skip(page.saturating_mul(PER_PAGE))
        .take(PER_PAGE)
        .collect();
    (page, total)
}

/// A header cell linking to the list sorted by `column` (descending if it is the current
/// ascending order), with an arrow on the current column.
fn sort_header<C: SortColumn>(
    html: &mut Html,
    label: &str,
    numeric: bool,
    (column, current, descending): (C, C, bool),
    url: impl FnOnce(C, bool) -> String,
) {
    let href = url(column, current == column && !descending);
    let arrow = match (current == column, descending) {
        (true, false) => " ▲",
        (true, true) => " ▼",
        _ => "",
    };
    html.raw(if numeric {
        "<th class=\"num\">"
    } else {
        "<th>"
    })
    .link(&href, &format!("{label}{arrow}"))
    .raw("</th>");
}

/// The overview page.
pub fn render(overview: &Overview) -> String {
    let mut body = Html::new();
    broker_facts(&mut body, &overview.broker);
    filter_form(&mut body, &overview.query);
    groups_table(&mut body, &overview.groups, &overview.query);
    topics_table(&mut body, &overview.topics, &overview.query);
    html::page("Overview", Section::Overview, &body.into_string(), Some(10))
}

fn broker_facts(html: &mut Html, b: &BrokerFacts) {
    html.raw("<dl class=\"facts\">");
    let mut fact = |name: &str, value: &str| {
        html.raw("<dt>")
            .text(name)
            .raw("</dt><dd>")
            .text(value)
            .raw("</dd>");
    };
    fact("Version", &b.version);
    fact("Cluster", &b.cluster_id);
    fact("Node", &b.node_id.to_string());
    fact("Up for", &html::duration_ms(b.uptime_ms));
    let listeners: Vec<String> = b
        .listeners
        .iter()
        .map(|(name, addr)| format!("{name} {addr}"))
        .collect();
    fact("Listeners", &listeners.join(", "));
    fact(
        "Data",
        &format!("{} in {}", html::bytes(b.log_bytes), b.data_dir),
    );
    html.raw("<dt>Health</dt><dd>");
    if b.faults.is_empty() {
        html.raw("<span class=\"state-Stable\">ok</span>");
    } else {
        html.raw("<ul class=\"faults\">");
        for fault in &b.faults {
            html.element("li", fault);
        }
        html.raw("</ul>");
    }
    html.raw("</dd></dl>");
}

fn filter_form(html: &mut Html, query: &ListQuery) {
    html.raw("<form class=\"filter\" method=\"get\" action=\"/ui/\">")
        .raw("<input type=\"search\" name=\"q\" placeholder=\"Filter groups and topics\" value=\"")
        .text(&query.filter)
        .raw("\"><button>Filter</button>");
    if !query.filter.is_empty() {
        html.link("/ui/", "Clear");
    }
    html.raw("</form>");
}

fn groups_table(html: &mut Html, groups: &[GroupRow], query: &ListQuery) {
    let (page, total) = select_groups(groups, query);
    html.raw(&format!(
        "<h2 id=\"groups\">Consumer groups <span class=\"muted\">({})</span></h2>",
        html::count(total as i64)
    ));
    if total == 0 {
        html.raw("<p class=\"muted\">No groups");
        if !query.filter.is_empty() {
            html.raw(" match the filter");
        }
        html.raw(".</p>");
        return;
    }
    html.raw("<table class=\"groups\"><thead><tr>");
    for (sort, label, numeric) in [
        (GroupSort::Id, "Group", false),
        (GroupSort::Kind, "Protocol", false),
        (GroupSort::State, "State", false),
        (GroupSort::Members, "Members", true),
        (GroupSort::Lag, "Lag", true),
        (GroupSort::LastRebalance, "Last rebalance", false),
    ] {
        sort_header(
            html,
            label,
            numeric,
            (sort, query.sort, query.descending),
            |sort, descending| {
                query.url(|q| {
                    q.sort = sort;
                    q.descending = descending;
                    q.page = 0;
                })
            },
        );
    }
    html.raw("</tr></thead><tbody>");
    for g in page {
        html.raw("<tr><td class=\"id\">")
            .link(
                &format!("/ui/groups/{}", url_encode(&g.group_id)),
                &g.group_id,
            )
            .raw("</td><td>")
            .text(&g.kind);
        if let Some(protocol) = &g.protocol {
            html.raw(" <span class=\"muted\">")
                .text(protocol)
                .raw("</span>");
        }
        html.raw(&format!("</td><td class=\"state-{}\">", escape(&g.state)))
            .text(&g.state)
            .raw("</td><td class=\"num\">")
            .text(&html::count(g.members as i64))
            .raw("</td><td class=\"num\">")
            .text(&g.lag.map_or("–".to_string(), html::count))
            .raw("</td><td>");
        match &g.last_rebalance {
            None => {
                html.raw("<span class=\"muted\">none recorded</span>");
            }
            Some(r) => {
                html.text(&format!("gen {} · {} · ", r.generation, r.cause));
                match r.duration_ms {
                    Some(ms) => html.text(&html::duration_ms(ms)),
                    None => html.raw("<em>in progress</em>"),
                };
                html.raw(" <span class=\"muted\">")
                    .text(&html::time_ms(r.started_ms))
                    .raw("</span>");
            }
        }
        html.raw("</td></tr>");
    }
    html.raw("</tbody></table>");
    html::pager(html, total, PER_PAGE, query.page, |p| {
        query.url(|q| q.page = p)
    });
}

fn topics_table(html: &mut Html, topics: &[TopicRow], query: &ListQuery) {
    let (page, total) = select_topics(topics, query);
    html.raw(&format!(
        "<h2 id=\"topics\">Topics <span class=\"muted\">({})</span></h2>",
        html::count(total as i64)
    ));
    if total == 0 {
        html.raw("<p class=\"muted\">No topics.</p>");
        return;
    }
    html.raw("<table class=\"topics\"><thead><tr>");
    for (sort, label, numeric) in [
        (TopicSort::Name, "Topic", false),
        (TopicSort::Partitions, "Partitions", true),
        (TopicSort::Records, "Records", true),
        (TopicSort::Size, "Size", true),
        (TopicSort::In, "In", true),
        (TopicSort::Out, "Out", true),
    ] {
        sort_header(
            html,
            label,
            numeric,
            (sort, query.topic_sort, query.topic_descending),
            |sort, descending| {
                query.url(|q| {
                    q.topic_sort = sort;
                    q.topic_descending = descending;
                    q.topic_page = 0;
                })
            },
        );
    }
    html.raw("</tr></thead><tbody>");
    for t in page {
        html.raw("<tr><td class=\"id\">")
            .link(&format!("/ui/topics/{}", url_encode(&t.name)), &t.name)
            .raw("</td><td class=\"num\">")
            .text(&html::count(t.partitions as i64))
            .raw("</td><td class=\"num\">")
            .text(&html::count(t.records))
            .raw("</td><td class=\"num\">")
            .text(&html::bytes(t.size_bytes))
            .raw("</td><td class=\"num\">");
        match &t.rates {
            Some(r) => html
                .text(&format!(
                    "{} · {}",
                    html::per_second(r.records_in, "rec"),
                    html::bytes_per_second(r.bytes_in)
                ))
                .raw("<br>"),
            None => html.raw("–<br>"),
        };
        html.raw("<span class=\"muted\">")
            .text(&format!("{} in all", html::bytes(t.produced_bytes)))
            .raw("</span></td><td class=\"num\">");
        match &t.rates {
            Some(r) => html.text(&html::bytes_per_second(r.bytes_out)).raw("<br>"),
            None => html.raw("–<br>"),
        };
        html.raw("<span class=\"muted\">")
            .text(&format!("{} in all", html::bytes(t.fetched_bytes)))
            .raw("</span></td></tr>");
    }
    html.raw("</tbody></table>");
    html::pager(html, total, PER_PAGE, query.topic_page, |p| {
        query.url(|q| q.topic_page = p)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, members: usize, lag: Option<i64>) -> GroupRow {
        GroupRow {
            group_id: id.to_string(),
            kind: "classic".to_string(),
            state: "Stable".to_string(),
            protocol: Some("range".to_string()),
            members,
            lag,
            last_rebalance: None,
        }
    }

    fn ids(rows: &[&GroupRow]) -> Vec<String> {
        rows.iter().map(|g| g.group_id.clone()).collect()
    }

    #[test]
    fn groups_filter_by_substring_in_any_case_and_sort_by_the_chosen_column() {
        let groups = vec![
            group("billing", 3, Some(10)),
            group("Orders-EU", 1, None),
            group("orders-us", 2, Some(500)),
        ];
        let q = ListQuery::from_pairs([("q", "ORDERS")]);
        assert_eq!(
            ids(&select_groups(&groups, &q).0),
            ["Orders-EU", "orders-us"]
        );
        let q = ListQuery::from_pairs([("sort", "lag"), ("desc", "1")]);
        assert_eq!(
            ids(&select_groups(&groups, &q).0),
            ["orders-us", "billing", "Orders-EU"]
        );
        let q = ListQuery::from_pairs([("sort", "members")]);
        assert_eq!(
            ids(&select_groups(&groups, &q).0),
            ["Orders-EU", "orders-us", "billing"]
        );
        // Unknown or unreadable parameters fall back to the defaults.
        let q = ListQuery::from_pairs([("sort", "nonsense"), ("page", "x"), ("evil", "1")]);
        assert_eq!(q, ListQuery::default());
    }

    fn topic(name: &str, partitions: usize, bytes_in: Option<f64>) -> TopicRow {
        TopicRow {
            name: name.to_string(),
            partitions,
            size_bytes: 10 * partitions as u64,
            rates: bytes_in.map(|bytes_in| Rates {
                records_in: bytes_in / 100.0,
                bytes_in,
                bytes_out: 0.0,
            }),
            ..TopicRow::default()
        }
    }

    #[test]
    fn topics_sort_by_the_chosen_column_with_links_that_turn_the_order() {
        let topics = vec![
            topic("audit", 12, None),
            topic("orders", 3, Some(2048.0)),
            topic("clicks", 6, Some(100.0)),
        ];
        let names = |q: &ListQuery| -> Vec<String> {
            select_topics(&topics, q)
                .0
                .iter()
                .map(|t| t.name.clone())
                .collect()
        };
        assert_eq!(names(&ListQuery::default()), ["audit", "clicks", "orders"]);
        let q = ListQuery::from_pairs([("tsort", "in"), ("tdesc", "1")]);
        assert_eq!(
            names(&q),
            ["orders", "clicks", "audit"],
            "no rate sorts lowest"
        );
        let q = ListQuery::from_pairs([("tsort", "partitions")]);
        assert_eq!(names(&q), ["orders", "clicks", "audit"]);
        let html = render(&Overview {
            topics: topics.clone(),
            query: q,
            ..Overview::default()
        });
        // The current column links to its descending order, the others to their ascending.
        assert!(
            html.contains("href=\"/ui/?tsort=partitions&amp;tdesc=1\">Partitions ▲</a>"),
            "{html}"
        );
        assert!(html.contains("href=\"/ui/?tsort=size\">Size</a>"), "{html}");
        assert!(html.contains("2.0 KiB/s"), "{html}");
        assert!(html.contains("20.5 rec/s"), "{html}");
        // Group sorting is kept apart from topic sorting.
        let q = ListQuery::from_pairs([("sort", "lag"), ("tsort", "size"), ("tpage", "1")]);
        assert_eq!(q.sort, GroupSort::Lag);
        assert_eq!(q.topic_sort, TopicSort::Size);
        assert_eq!(q.url(|q| q.topic_page = 0), "/ui/?sort=lag&tsort=size");
    }

    #[test]
    fn thousands_of_groups_are_paged_with_links_that_keep_the_query() {
        let groups: Vec<GroupRow> = (0..2_345)
            .map(|i| group(&format!("g{i:05}"), 1, None))
            .collect();
        let q = ListQuery::from_pairs([("q", "g01"), ("page", "2")]);
        let (page, total) = select_groups(&groups, &q);
        assert_eq!(total, 1_000);
        assert_eq!(page.len(), PER_PAGE);
        assert_eq!(page[0].group_id, "g01200");
        let html = render(&Overview {
            groups,
            query: q,
            ..Overview::default()
        });
        assert!(html.contains("page 3 of 10"), "{html}");
        assert!(html.contains("href=\"/ui/?q=g01&amp;page=1\""), "{html}");
        assert!(html.contains("href=\"/ui/?q=g01&amp;page=3\""), "{html}");
        assert_eq!(html.matches("<tr><td class=\"id\">").count(), PER_PAGE);
    }

    #[test]
    fn names_from_clients_are_escaped_and_links_percent_encoded() {
        let overview = Overview {
            groups: vec![group("<script>alert(1)</script>", 1, Some(3))],
            topics: vec![TopicRow {
                name: "<img src=x onerror=alert(2)>".to_string(),
                partitions: 1,
                ..TopicRow::default()
            }],
            query: ListQuery::from_pairs([("q", "\"><b>")]),
            ..Overview::default()
        };
        let html = render(&overview);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("\"><b>"), "{html}");
        assert!(html.contains("value=\"&quot;&gt;&lt;b&gt;\""), "{html}");
        let overview = Overview {
            groups: vec![group("<script>alert(1)</script>", 1, Some(3))],
            ..Overview::default()
        };
        let html = render(&overview);
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("/ui/groups/%3Cscript%3Ealert%281%29%3C%2Fscript%3E"),
            "{html}"
        );
    }

    #[test]
    fn the_broker_facts_show_faults_and_groups_their_last_rebalance() {
        let mut g = group("g", 2, Some(7));
        g.last_rebalance = Some(LastRebalance {
            generation: 4,
            cause: "member_joined".to_string(),
            outcome: "stable".to_string(),
            started_ms: 0,
            duration_ms: Some(3_002),
        });
        let mut open = group("h", 1, None);
        open.last_rebalance = Some(LastRebalance {
            generation: 2,
            cause: "session_expired".to_string(),
            duration_ms: None,
            ..LastRebalance::default()
        });
        let html = render(&Overview {
            broker: BrokerFacts {
                version: "0.1.0".to_string(),
                faults: vec!["partition log a-0: last append failed".to_string()],
                ..BrokerFacts::default()
            },
            groups: vec![g, open],
            ..Overview::default()
        });
        assert!(html.contains("gen 4 · member_joined · 3.0 s"), "{html}");
        assert!(
            html.contains("gen 2 · session_expired · <em>in progress</em>"),
            "{html}"
        );
        assert!(
            html.contains("<li>partition log a-0: last append failed</li>"),
            "{html}"
        );
        assert!(html.contains("data-refresh="), "{html}");
    }
}
