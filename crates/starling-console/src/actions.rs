//! The console's state-changing actions on a group, each in two steps: a page that shows
//! what would happen (for an offset reset, the new offset of every partition, computed but
//! not committed — a dry run), and a confirmation that POSTs with a CSRF token. Then a page
//! with what the broker answered. Resetting offsets (earliest, latest, an offset, a time, a
//! shift by N), deleting a group and deleting a group's offsets for a topic.

use crate::html::{self, url_encode, Html, Section};

/// Where an offset reset moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTarget {
    Earliest,
    Latest,
    /// This offset, clamped into the log.
    Offset(i64),
    /// The first offset whose timestamp is at or after this time (ms), else the end.
    Timestamp(i64),
    /// The committed offset (the log start without one) moved by this many, clamped.
    Shift(i64),
}

impl ResetTarget {
    /// The target a form's `to` and `value` fields name.
    pub fn from_form(to: &str, value: &str) -> Result<ResetTarget, String> {
        let number = |what: &str| {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("{what} needs a whole number, not {:?}", value.trim()))
        };
        match to {
            "earliest" => Ok(ResetTarget::Earliest),
            "latest" => Ok(ResetTarget::Latest),
            "offset" => Ok(ResetTarget::Offset(number("an offset")?)),
            "timestamp" => Ok(ResetTarget::Timestamp(number(
                "a time (milliseconds since the epoch)",
            )?)),
            "shift" => Ok(ResetTarget::Shift(number("a shift")?)),
            other => Err(format!(
                "reset to {other:?}: earliest, latest, offset, timestamp or shift"
            )),
        }
    }

    /// The form fields (`to`, `value`) that name this target.
    pub fn form_fields(self) -> (&'static str, String) {
        match self {
            ResetTarget::Earliest => ("earliest", String::new()),
            ResetTarget::Latest => ("latest", String::new()),
            ResetTarget::Offset(o) => ("offset", o.to_string()),
            ResetTarget::Timestamp(t) => ("timestamp", t.to_string()),
            ResetTarget::Shift(n) => ("shift", n.to_string()),
        }
    }

    /// In words: "the earliest offset", "offset 42", …
    pub fn describe(self) -> String {
        match self {
            ResetTarget::Earliest => "the earliest offset".to_string(),
            ResetTarget::Latest => "the latest offset".to_string(),
            ResetTarget::Offset(o) => format!("offset {o}"),
            ResetTarget::Timestamp(t) => {
                format!("the first record at or after {}", html::time_ms(t))
            }
            ResetTarget::Shift(n) => format!("the committed offset shifted by {n:+}"),
        }
    }

    /// The new offset of a partition whose log spans `start..end`, committed at `current`;
    /// `at_timestamp` is the first offset at or after the target time, if any.
    pub fn new_offset(
        self,
        start: i64,
        end: i64,
        current: Option<i64>,
        at_timestamp: Option<i64>,
    ) -> i64 {
        let clamp = |o: i64| o.clamp(start, end.max(start));
        match self {
            ResetTarget::Earliest => start,
            ResetTarget::Latest => end,
            ResetTarget::Offset(o) => clamp(o),
            ResetTarget::Timestamp(_) => clamp(at_timestamp.unwrap_or(end)),
            ResetTarget::Shift(n) => clamp(current.unwrap_or(start).saturating_add(n)),
        }
    }
}

/// One partition of a planned reset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResetRow {
    pub partition: i32,
    pub current: Option<i64>,
    pub new_offset: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// A reset as planned (the dry run), ready to be confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPlan {
    pub group_id: String,
    pub topic: String,
    pub target: ResetTarget,
    /// The partitions asked for (empty: all of them), as the form gave them.
    pub partitions: String,
    pub rows: Vec<ResetRow>,
    /// Why it cannot be applied now (the group has members), if so.
    pub blocked: Option<String>,
    pub csrf_token: String,
}

fn group_path(group_id: &str) -> String {
    format!("/ui/groups/{}", url_encode(group_id))
}

fn hidden(html: &mut Html, name: &str, value: &str) {
    html.raw(&format!("<input type=\"hidden\" name=\"{name}\" value=\""))
        .text(value)
        .raw("\">");
}

/// The group page's actions section: the reset form (it leads to the dry run) and links to
/// the confirmation pages of the deletions.
pub fn actions_section(html: &mut Html, group_id: &str, topics: &[String]) {
    let path = group_path(group_id);
    html.raw("<h2 id=\"actions\">Actions</h2>");
    if !topics.is_empty() {
        html.raw(&format!(
            "<form class=\"filter\" method=\"get\" action=\"{path}/reset\">"
        ))
        .raw("<label>Reset offsets of <select name=\"topic\">");
        for topic in topics {
            html.raw("<option value=\"")
                .text(topic)
                .raw("\">")
                .text(topic)
                .raw("</option>");
        }
        html.raw("</select></label><label> to <select name=\"to\">")
            .raw("<option value=\"earliest\">earliest</option>")
            .raw("<option value=\"latest\">latest</option>")
            .raw("<option value=\"offset\">offset</option>")
            .raw("<option value=\"timestamp\">time (ms since epoch)</option>")
            .raw("<option value=\"shift\">shift by</option></select></label>")
            .raw("<input name=\"value\" placeholder=\"offset, time or shift\" size=\"14\">")
            .raw("<input name=\"partitions\" placeholder=\"partitions (all)\" size=\"12\">")
            .raw("<button>Preview</button></form>");
    }
    html.raw("<p>");
    html.link(&format!("{path}/delete"), "Delete the group…");
    for topic in topics {
        html.raw(" · ").link(
            &format!("{path}/delete-offsets?topic={}", url_encode(topic)),
            &format!("Delete its offsets for {topic}…"),
        );
    }
    html.raw("</p>");
}

/// The dry run of a reset: every partition's current and new offset, and the form that
/// commits them.
pub fn render_reset_preview(plan: &ResetPlan) -> String {
    let path = group_path(&plan.group_id);
    let mut body = Html::new();
    body.raw("<p>Dry run: nothing is committed until you confirm. Group ")
        .link(&path, &plan.group_id)
        .raw(", topic ")
        .element("strong", &plan.topic)
        .raw(", to ")
        .text(&plan.target.describe())
        .raw(".</p>");
    body.raw(
        "<table class=\"reset\"><thead><tr><th class=\"num\">Partition</th>\
         <th class=\"num\">Log start</th><th class=\"num\">Log end</th>\
         <th class=\"num\">Committed</th><th class=\"num\">New offset</th></tr></thead><tbody>",
    );
    for row in &plan.rows {
        body.raw("<tr><td class=\"num\">")
            .text(&row.partition.to_string())
            .raw("</td><td class=\"num\">")
            .text(&html::count(row.log_start_offset))
            .raw("</td><td class=\"num\">")
            .text(&html::count(row.log_end_offset))
            .raw("</td><td class=\"num\">")
            .text(&row.current.map_or("–".to_string(), html::count))
            .raw("</td><td class=\"num\"><strong>")
            .text(&html::count(row.new_offset))
            .raw("</strong></td></tr>");
    }
    body.raw("</tbody></table>");
    match &plan.blocked {
        Some(why) => {
            body.raw("<p class=\"faults\">").text(why).raw("</p>");
        }
        None if plan.rows.is_empty() => {
            body.raw("<p class=\"muted\">No partitions to reset.</p>");
        }
        None => {
            let (to, value) = plan.target.form_fields();
            body.raw(&format!("<form method=\"post\" action=\"{path}/reset\">"));
            hidden(&mut body, "topic", &plan.topic);
            hidden(&mut body, "to", to);
            hidden(&mut body, "value", &value);
            hidden(&mut body, "partitions", &plan.partitions);
            hidden(&mut body, "token", &plan.csrf_token);
            body.raw("<button>Commit these offsets</button> ")
                .link(&path, "Cancel")
                .raw("</form>");
        }
    }
    html::page(
        &format!("Reset offsets of {}", plan.group_id),
        Section::Groups,
        &body.into_string(),
        None,
    )
}

/// A deletion waiting to be confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    Group,
    /// The group's committed offsets for this topic.
    Offsets {
        topic: String,
    },
}

/// The confirmation page of a deletion.
pub fn render_confirm(group_id: &str, deletion: &Deletion, csrf_token: &str) -> String {
    let path = group_path(group_id);
    let mut body = Html::new();
    let (action, title) = match deletion {
        Deletion::Group => {
            body.raw("<p>Delete group ")
                .element("strong", group_id)
                .raw(
                    " and all its committed offsets? The broker refuses while it has members.</p>",
                );
            ("delete", format!("Delete group {group_id}"))
        }
        Deletion::Offsets { topic } => {
            body.raw("<p>Delete the committed offsets of group ")
                .element("strong", group_id)
                .raw(" for topic ")
                .element("strong", topic)
                .raw("? The broker refuses while a member is subscribed to it.</p>");
            ("delete-offsets", format!("Delete offsets of {group_id}"))
        }
    };
    body.raw(&format!(
        "<form method=\"post\" action=\"{path}/{action}\">"
    ));
    if let Deletion::Offsets { topic } = deletion {
        hidden(&mut body, "topic", topic);
    }
    hidden(&mut body, "token", csrf_token);
    body.raw("<button>Delete</button> ")
        .link(&path, "Cancel")
        .raw("</form>");
    html::page(&title, Section::Groups, &body.into_string(), None)
}

/// What the broker answered to an action: one line per item (a partition, the group), done or
/// refused with the reason.
pub fn render_outcome(
    group_id: &str,
    title: &str,
    results: &[(String, Result<(), String>)],
    back_to_group: bool,
) -> String {
    let mut body = Html::new();
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if failed == 0 {
        body.raw("<p class=\"state-Stable\">Done.</p>");
    } else {
        body.raw(&format!(
            "<p class=\"faults\">{failed} of {} refused.</p>",
            results.len()
        ));
    }
    body.raw("<ul>");
    for (what, result) in results {
        body.raw("<li>").text(what).raw(": ");
        match result {
            Ok(()) => body.raw("done"),
            Err(why) => body.raw("<span class=\"faults\">").text(why).raw("</span>"),
        };
        body.raw("</li>");
    }
    body.raw("</ul><p>");
    if back_to_group {
        body.link(&group_path(group_id), "Back to the group");
    } else {
        body.link("/ui/", "Back to the overview");
    }
    body.raw("</p>");
    html::page(title, Section::Groups, &body.into_string(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_from_the_form_and_compute_clamped_offsets() {
        let t = |to: &str, v: &str| ResetTarget::from_form(to, v).unwrap();
        // A log holding offsets 10..50, committed at 30.
        let new = |target: ResetTarget, at: Option<i64>| target.new_offset(10, 50, Some(30), at);
        assert_eq!(new(t("earliest", ""), None), 10);
        assert_eq!(new(t("latest", "ignored"), None), 50);
        assert_eq!(new(t("offset", "42"), None), 42);
        assert_eq!(new(t("offset", "7"), None), 10);
        assert_eq!(new(t("offset", "900"), None), 50);
        assert_eq!(new(t("shift", "-5"), None), 25);
        assert_eq!(new(t("shift", " +100 "), None), 50);
        assert_eq!(new(t("timestamp", "1700000000000"), Some(33)), 33);
        assert_eq!(new(t("timestamp", "1700000000000"), None), 50);
        // Without a committed offset a shift counts from the log start.
        assert_eq!(t("shift", "3").new_offset(10, 50, None, None), 13);
        for (to, value) in [("offset", "x"), ("shift", ""), ("sideways", "1")] {
            assert!(ResetTarget::from_form(to, value).is_err(), "{to} {value}");
        }
        for target in [t("earliest", ""), t("offset", "4"), t("shift", "-2")] {
            let (to, value) = target.form_fields();
            assert_eq!(ResetTarget::from_form(to, &value).unwrap(), target);
        }
    }

    fn plan() -> ResetPlan {
        ResetPlan {
            group_id: "g<1>".to_string(),
            topic: "orders".to_string(),
            target: ResetTarget::Shift(-2),
            partitions: "0,1".to_string(),
            rows: vec![ResetRow {
                partition: 0,
                current: Some(12),
                new_offset: 10,
                log_start_offset: 0,
                log_end_offset: 20,
            }],
            blocked: None,
            csrf_token: "tok\"en".to_string(),
        }
    }

    #[test]
    fn the_dry_run_lists_new_offsets_and_posts_the_same_reset_with_its_token() {
        let page = render_reset_preview(&plan());
        assert!(page.contains("<strong>10</strong>"), "{page}");
        assert!(
            page.contains("method=\"post\" action=\"/ui/groups/g%3C1%3E/reset\""),
            "{page}"
        );
        for field in [
            "name=\"to\" value=\"shift\"",
            "name=\"value\" value=\"-2\"",
            "name=\"partitions\" value=\"0,1\"",
            "name=\"token\" value=\"tok&quot;en\"",
        ] {
            assert!(page.contains(field), "{field}: {page}");
        }
        assert!(!page.contains("g<1>"), "{page}");
        let mut blocked = plan();
        blocked.blocked = Some("The group has 2 members".to_string());
        let page = render_reset_preview(&blocked);
        assert!(!page.contains("method=\"post\""), "{page}");
        assert!(page.contains("The group has 2 members"), "{page}");
    }

    #[test]
    fn deletions_are_confirmed_by_a_post_with_the_token() {
        let page = render_confirm(
            "g",
            &Deletion::Offsets {
                topic: "t<x>".into(),
            },
            "abc",
        );
        assert!(
            page.contains("action=\"/ui/groups/g/delete-offsets\""),
            "{page}"
        );
        assert!(
            page.contains("name=\"topic\" value=\"t&lt;x&gt;\""),
            "{page}"
        );
        assert!(page.contains("name=\"token\" value=\"abc\""), "{page}");
        let page = render_confirm("g", &Deletion::Group, "abc");
        assert!(page.contains("action=\"/ui/groups/g/delete\""), "{page}");
    }

    #[test]
    fn outcomes_say_what_was_refused_and_why() {
        let page = render_outcome(
            "g",
            "Reset",
            &[
                ("orders-0".to_string(), Ok(())),
                ("orders-1".to_string(), Err("<NOT_COORDINATOR>".to_string())),
            ],
            true,
        );
        assert!(page.contains("1 of 2 refused"), "{page}");
        assert!(page.contains("&lt;NOT_COORDINATOR&gt;"), "{page}");
        assert!(page.contains("href=\"/ui/groups/g\""), "{page}");
    }

    #[test]
    fn the_actions_section_offers_a_reset_per_topic_and_the_deletions() {
        let mut html = Html::new();
        actions_section(&mut html, "g", &["a b".to_string()]);
        let html = html.into_string();
        assert!(html.contains("action=\"/ui/groups/g/reset\""), "{html}");
        assert!(
            html.contains("<option value=\"a b\">a b</option>"),
            "{html}"
        );
        assert!(
            html.contains("href=\"/ui/groups/g/delete-offsets?topic=a%20b\""),
            "{html}"
        );
        assert!(html.contains("href=\"/ui/groups/g/delete\""), "{html}");
    }
}
