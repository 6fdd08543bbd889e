//! The topic page (`/ui/topics/{name}`): one topic's partitions with their offsets, sizes and
//! segments, the groups with committed offsets on it and their lag, its effective configs, and
//! a message browser — a plain GET form (partition, offset or timestamp, limit, value format)
//! over a table of the records read, with a link to the next ones.
//!
//! Keys, values and header values are client bytes: they are shown as text (invalid UTF-8 and
//! control characters replaced), as indented JSON when they parse as JSON, or as hex, cut at
//! [`MAX_VALUE_BYTES`], and always escaped.

use crate::html::{self, escape, url_encode, Html, Section};

/// Lag above this many records is highlighted.
const HIGH_LAG: i64 = 1_000;

/// Bytes of one key, value or header value shown; the rest is only counted.
pub const MAX_VALUE_BYTES: usize = 4 * 1024;

/// The most records one browse asks for.
pub const MAX_LIMIT: usize = 200;

/// JSON nested deeper than this is shown as text.
const MAX_JSON_DEPTH: usize = 32;

/// Pretty-printed JSON longer than this is shown as text.
const MAX_JSON_OUTPUT: usize = 16 * MAX_VALUE_BYTES;

/// Keeps long values inside their cell: the stylesheet has no rule for `pre.value`.
const VALUE_PRE: &str = "<pre class=\"value\" style=\"margin:0;white-space:pre-wrap\">";

/// One partition of the topic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicPartitionRow {
    pub partition: i32,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub size_bytes: u64,
    pub segments: usize,
}

/// One group with committed offsets on the topic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicGroupRow {
    pub group_id: String,
    pub state: String,
    /// Summed over its partitions of this topic; `None` when unknown.
    pub lag: Option<i64>,
    /// Partitions of this topic it has committed offsets for.
    pub partitions: usize,
}

/// How keys, values and header values are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueFormat {
    /// UTF-8, invalid bytes and control characters replaced.
    #[default]
    Text,
    /// Indented when the bytes are JSON, else as [`ValueFormat::Text`].
    Json,
    /// Lowercase hex bytes, 16 a line.
    Hex,
}

impl ValueFormat {
    /// Every format, in the order the form offers them.
    pub const ALL: [ValueFormat; 3] = [ValueFormat::Text, ValueFormat::Json, ValueFormat::Hex];

    /// `text`, `json` or `hex` (any case).
    pub fn parse(name: &str) -> Option<ValueFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "text" => Some(ValueFormat::Text),
            "json" => Some(ValueFormat::Json),
            "hex" => Some(ValueFormat::Hex),
            _ => None,
        }
    }

    /// The name [`ValueFormat::parse`] reads back.
    pub fn name(self) -> &'static str {
        match self {
            ValueFormat::Text => "text",
            ValueFormat::Json => "json",
            ValueFormat::Hex => "hex",
        }
    }
}

/// What the message browser was asked for: the query parameters of the topic page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowseQuery {
    pub partition: i32,
    /// Start here, or at `timestamp_ms` when that is set.
    pub offset: i64,
    /// Start at the first record at or after this time (ms since the epoch).
    pub timestamp_ms: Option<i64>,
    /// Records to read, 1 to [`MAX_LIMIT`].
    pub limit: usize,
    pub format: ValueFormat,
}

impl Default for BrowseQuery {
    fn default() -> BrowseQuery {
        BrowseQuery {
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            limit: 20,
            format: ValueFormat::Text,
        }
    }
}

impl BrowseQuery {
    /// The query from `(name, value)` pairs (already percent-decoded): `partition`, `offset`,
    /// `timestamp` (ms), `limit` (clamped to 1..=[`MAX_LIMIT`]) and `format` (`text`, `json`,
    /// `hex`). Unknown names, negative partitions and offsets, and unreadable values keep the
    /// defaults; an empty `timestamp` means none.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> BrowseQuery {
        let mut query = BrowseQuery::default();
        for (name, value) in pairs {
            let value = value.trim();
            match name {
                "partition" => {
                    if let Ok(p) = value.parse::<i32>() {
                        if p >= 0 {
                            query.partition = p;
                        }
                    }
                }
                "offset" => {
                    if let Ok(o) = value.parse::<i64>() {
                        if o >= 0 {
                            query.offset = o;
                        }
                    }
                }
                "timestamp" => {
                    if let Ok(t) = value.parse::<i64>() {
                        query.timestamp_ms = Some(t);
                    }
                }
                "limit" => {
                    if let Ok(l) = value.parse::<i64>() {
                        query.limit = l.clamp(1, MAX_LIMIT as i64) as usize;
                    }
                }
                "format" => {
                    if let Some(f) = ValueFormat::parse(value) {
                        query.format = f;
                    }
                }
                _ => {}
            }
        }
        query
    }

    /// The topic page's URL for this query (before HTML escaping).
    fn url(&self, topic: &str) -> String {
        let mut url = format!(
            "/ui/topics/{}?partition={}&offset={}",
            url_encode(topic),
            self.partition,
            self.offset
        );
        if let Some(ts) = self.timestamp_ms {
            url.push_str(&format!("&timestamp={}", url_encode(&ts.to_string())));
        }
        url.push_str(&format!(
            "&limit={}&format={}",
            self.limit,
            url_encode(self.format.name())
        ));
        url
    }
}

/// One record the browser read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrowsedMessage {
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch; negative when the record has none.
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Everything the topic page shows.
#[derive(Debug, Clone, Default)]
pub struct TopicView {
    pub name: String,
    pub topic_id: String,
    /// Sorted by partition.
    pub partitions: Vec<TopicPartitionRow>,
    /// Effective configs, sorted by name.
    pub configs: Vec<ConfigRow>,
    /// Recent throughput; `None` until the broker has read the topic's counters twice.
    pub rates: Option<crate::overview::Rates>,
    /// Groups with committed offsets on this topic.
    pub groups: Vec<TopicGroupRow>,
    /// The message browser: what was asked and what was read.
    pub browse: BrowseQuery,
    pub messages: Vec<BrowsedMessage>,
    /// Why no messages could be read, if so (e.g. "offset out of range").
    pub browse_error: Option<String>,
}

/// One effective config of the topic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigRow {
    pub name: String,
    /// `None` for a secret the broker does not show.
    pub value: Option<String>,
    /// Where the value comes from: `topic` (set on the topic), `dynamic broker`, `dynamic
    /// cluster default`, `broker` (its configuration file or overrides) or `default`.
    pub source: String,
}

impl ConfigRow {
    /// Set on the topic itself rather than inherited.
    pub fn is_override(&self) -> bool {
        self.source == "topic"
    }
}

/// The topic page.
pub fn render(view: &TopicView) -> String {
    let mut body = Html::new();
    facts(&mut body, view);
    partitions(&mut body, view);
    groups(&mut body, view);
    configs(&mut body, view);
    browser(&mut body, view);
    html::page(
        &format!("Topic {}", view.name),
        Section::Topics,
        &body.into_string(),
        None,
    )
}

fn records(p: &TopicPartitionRow) -> i64 {
    p.log_end_offset.saturating_sub(p.log_start_offset).max(0)
}

fn facts(html: &mut Html, view: &TopicView) {
    let total_records: i64 = view.partitions.iter().map(records).sum();
    let total_bytes: u64 = view.partitions.iter().map(|p| p.size_bytes).sum();
    html.raw("<dl class=\"facts\"><dt>Topic id</dt><dd class=\"id\">")
        .text(&view.topic_id)
        .raw("</dd><dt>Partitions</dt><dd>")
        .text(&html::count(view.partitions.len() as i64))
        .raw("</dd><dt>Records</dt><dd>")
        .text(&html::count(total_records))
        .raw("</dd><dt>Size</dt><dd>")
        .text(&html::bytes(total_bytes))
        .raw("</dd><dt>Produce</dt><dd>");
    match &view.rates {
        Some(r) => html.text(&format!(
            "{} · {}",
            html::per_second(r.records_in, "rec"),
            html::bytes_per_second(r.bytes_in)
        )),
        None => html.raw("<span class=\"muted\">measuring…</span>"),
    };
    html.raw("</dd><dt>Fetch</dt><dd>");
    match &view.rates {
        Some(r) => html.text(&html::bytes_per_second(r.bytes_out)),
        None => html.raw("<span class=\"muted\">measuring…</span>"),
    };
    html.raw("</dd></dl>");
}

fn partitions(html: &mut Html, view: &TopicView) {
    html.raw("<h2 id=\"partitions\">Partitions</h2>");
    if view.partitions.is_empty() {
        html.raw("<p class=\"muted\">No partitions.</p>");
        return;
    }
    html.raw(
        "<table class=\"partitions\"><thead><tr><th class=\"num\">Partition</th>\
         <th class=\"num\">Log start</th><th class=\"num\">Log end</th>\
         <th class=\"num\">Records</th><th class=\"num\">Size</th>\
         <th class=\"num\">Segments</th></tr></thead><tbody>",
    );
    for p in &view.partitions {
        html.raw("<tr><td class=\"num\">")
            .text(&p.partition.to_string())
            .raw("</td><td class=\"num\">")
            .text(&html::count(p.log_start_offset))
            .raw("</td><td class=\"num\">")
            .text(&html::count(p.log_end_offset))
            .raw("</td><td class=\"num\">")
            .text(&html::count(records(p)))
            .raw("</td><td class=\"num\">")
            .text(&html::bytes(p.size_bytes))
            .raw("</td><td class=\"num\">")
            .text(&html::count(p.segments as i64))
            .raw("</td></tr>");
    }
    html.raw("</tbody></table>");
}

fn groups(html: &mut Html, view: &TopicView) {
    html.raw("<h2 id=\"groups\">Consuming groups</h2>");
    if view.groups.is_empty() {
        html.raw("<p class=\"muted\">No group has committed offsets on this topic.</p>");
        return;
    }
    html.raw(
        "<table class=\"groups\"><thead><tr><th>Group</th><th>State</th>\
         <th class=\"num\">Partitions</th><th class=\"num\">Lag</th></tr></thead><tbody>",
    );
    for g in &view.groups {
        html.raw("<tr><td class=\"id\">")
            .link(
                &format!("/ui/groups/{}", url_encode(&g.group_id)),
                &g.group_id,
            )
            .raw(&format!("</td><td class=\"state-{}\">", escape(&g.state)))
            .text(&g.state)
            .raw("</td><td class=\"num\">")
            .text(&html::count(g.partitions as i64))
            .raw("</td>");
        match g.lag {
            Some(lag) if lag > HIGH_LAG => html.raw("<td class=\"num lag-high\">"),
            _ => html.raw("<td class=\"num\">"),
        };
        html.text(&g.lag.map_or("–".to_string(), html::count))
            .raw("</td></tr>");
    }
    html.raw("</tbody></table>");
}

fn configs(html: &mut Html, view: &TopicView) {
    html.raw("<h2 id=\"configs\">Configs</h2>");
    if view.configs.is_empty() {
        html.raw("<p class=\"muted\">No configs.</p>");
        return;
    }
    let overrides = view.configs.iter().filter(|c| c.is_override()).count();
    html.raw("<p class=\"muted\">")
        .text(&match overrides {
            0 => "Every value is inherited from the broker.".to_string(),
            1 => "1 value is set on the topic, in bold; the rest are inherited.".to_string(),
            n => format!("{n} values are set on the topic, in bold; the rest are inherited."),
        })
        .raw("</p>");
    html.raw(
        "<table class=\"configs\"><thead><tr><th>Name</th><th>Value</th><th>Source</th>\
         </tr></thead><tbody>",
    );
    for config in &view.configs {
        html.raw(if config.is_override() {
            "<tr class=\"override\" style=\"font-weight:600\"><td class=\"id\">"
        } else {
            "<tr><td class=\"id\">"
        })
        .text(&config.name)
        .raw("</td><td class=\"id\">");
        match &config.value {
            Some(value) => html.text(value),
            None => html.raw("<span class=\"muted\">(hidden)</span>"),
        };
        html.raw("</td><td>").text(&config.source).raw("</td></tr>");
    }
    html.raw("</tbody></table>");
}

fn browser(html: &mut Html, view: &TopicView) {
    let q = &view.browse;
    html.raw("<h2 id=\"messages\">Messages</h2>");
    browse_form(html, view);
    if let Some(error) = &view.browse_error {
        html.raw("<p class=\"faults\">").text(error).raw("</p>");
        return;
    }
    if view.messages.is_empty() {
        html.raw("<p class=\"muted\">No messages at this position.</p>");
        return;
    }
    html.raw(
        "<table class=\"messages\"><thead><tr><th class=\"num\">Offset</th><th>Timestamp</th>\
         <th>Key</th><th>Headers</th><th>Value</th></tr></thead><tbody>",
    );
    for m in &view.messages {
        html.raw("<tr><td class=\"num\">")
            .text(&m.offset.to_string())
            .raw("</td><td>");
        if m.timestamp_ms < 0 {
            html.raw("<span class=\"muted\">none</span>");
        } else {
            html.text(&html::time_ms(m.timestamp_ms));
        }
        html.raw("</td><td class=\"id\">");
        block_value(html, m.key.as_deref(), q.format);
        html.raw("</td><td class=\"id\">");
        for (name, value) in &m.headers {
            html.raw("<div>").text(name).raw("=");
            inline_value(html, value.as_deref(), q.format);
            html.raw("</div>");
        }
        html.raw("</td><td class=\"id\">");
        block_value(html, m.value.as_deref(), q.format);
        html.raw("</td></tr>");
    }
    html.raw("</tbody></table>");
    let last = view.messages.iter().map(|m| m.offset).max().unwrap_or(0);
    let next = BrowseQuery {
        offset: last.saturating_add(1),
        timestamp_ms: None,
        ..q.clone()
    };
    html.raw("<div class=\"pager\">")
        .link(&next.url(&view.name), &format!("next {} →", q.limit))
        .raw("</div>");
}

fn browse_form(html: &mut Html, view: &TopicView) {
    let q = &view.browse;
    html.raw(&format!(
        "<form class=\"filter\" method=\"get\" action=\"/ui/topics/{}\">",
        escape(&url_encode(&view.name))
    ));
    html.raw("<label>Partition ");
    if view.partitions.is_empty() {
        html.raw("<input type=\"number\" name=\"partition\" min=\"0\" value=\"")
            .text(&q.partition.to_string())
            .raw("\">");
    } else {
        html.raw("<select name=\"partition\">");
        let mut ids: Vec<i32> = view.partitions.iter().map(|p| p.partition).collect();
        if !ids.contains(&q.partition) {
            ids.push(q.partition);
        }
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let selected = if id == q.partition { " selected" } else { "" };
            html.raw(&format!("<option value=\"{id}\"{selected}>{id}</option>"));
        }
        html.raw("</select>");
    }
    html.raw("</label> <label>Offset <input type=\"number\" name=\"offset\" min=\"0\" value=\"")
        .text(&q.offset.to_string())
        .raw("\"></label> <label>or timestamp (ms) <input type=\"number\" name=\"timestamp\" value=\"")
        .text(&q.timestamp_ms.map_or(String::new(), |t| t.to_string()))
        .raw(&format!(
            "\"></label> <label>Limit <input type=\"number\" name=\"limit\" min=\"1\" \
             max=\"{MAX_LIMIT}\" value=\""
        ))
        .text(&q.limit.to_string())
        .raw("\"></label> <label>Format <select name=\"format\">");
    for f in ValueFormat::ALL {
        let selected = if f == q.format { " selected" } else { "" };
        html.raw(&format!(
            "<option value=\"{0}\"{selected}>{0}</option>",
            f.name()
        ));
    }
    html.raw("</select></label> <button>Read</button></form>");
}

/// A key or value in its cell: preformatted, or a muted `null`.
fn block_value(html: &mut Html, bytes: Option<&[u8]>, format: ValueFormat) {
    let Some(bytes) = bytes else {
        html.raw("<span class=\"muted\">null</span>");
        return;
    };
    let (shown, more) = format_bytes(bytes, format);
    html.raw(VALUE_PRE).text(&shown).raw("</pre>");
    more_note(html, more);
}

/// A header value after its name: inline, or a muted `null`.
fn inline_value(html: &mut Html, bytes: Option<&[u8]>, format: ValueFormat) {
    let Some(bytes) = bytes else {
        html.raw("<span class=\"muted\">null</span>");
        return;
    };
    let (shown, more) = format_bytes(bytes, format);
    html.text(&shown);
    more_note(html, more);
}

fn more_note(html: &mut Html, more: usize) {
    if more > 0 {
        html.raw(" <span class=\"muted\">… ")
            .text(&html::count(more as i64))
            .raw(" more bytes</span>");
    }
}

/// `bytes` as `format` shows them (not yet escaped), cut at [`MAX_VALUE_BYTES`], and how many
/// bytes were left out.
pub fn format_bytes(bytes: &[u8], format: ValueFormat) -> (String, usize) {
    let mut cut = bytes.len().min(MAX_VALUE_BYTES);
    if format != ValueFormat::Hex {
        // Do not split a UTF-8 sequence at the cut.
        let mut back = 0;
        while cut < bytes.len() && cut > 0 && back < 3 && bytes[cut] & 0xC0 == 0x80 {
            cut -= 1;
            back += 1;
        }
    }
    let (shown, more) = (&bytes[..cut], bytes.len() - cut);
    let text = match format {
        ValueFormat::Text => text_of(shown),
        ValueFormat::Json => std::str::from_utf8(shown)
            .ok()
            .and_then(|s| pretty_json(s, more == 0))
            .unwrap_or_else(|| text_of(shown)),
        ValueFormat::Hex => hex_of(shown),
    };
    (text, more)
}

/// UTF-8 with invalid sequences and control characters other than newline and tab replaced
/// by U+FFFD.
fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// Lowercase hex bytes separated by spaces, 16 a line.
fn hex_of(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(if i % 16 == 0 { '\n' } else { ' ' });
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Where the JSON re-formatter is between tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (top level, after `:` or after `,` in an array).
    Value,
    /// The first value of an array, or `]`.
    FirstValue,
    /// The first key of an object, or `}`.
    FirstKey,
    /// A key after `,` in an object.
    Key,
    Colon,
    CommaOrClose,
    /// Nothing more after the top-level value.
    End,
}

/// `text` indented by two spaces a level when it is one JSON value, else `None`. With
/// `complete` false the text was cut short: it may end anywhere inside the value.
pub fn pretty_json(text: &str, complete: bool) -> Option<String> {
    let mut out = String::with_capacity(text.len() * 2);
    let mut stack: Vec<char> = Vec::new();
    let mut expect = Expect::Value;
    let mut chars = text.char_indices().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while let Some((start, c)) = chars.next() {
        if out.len() > MAX_JSON_OUTPUT {
            return None;
        }
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        let first = matches!(expect, Expect::FirstValue | Expect::FirstKey);
        let wants_value = matches!(expect, Expect::Value | Expect::FirstValue);
        let wants_key = matches!(expect, Expect::FirstKey | Expect::Key);
        match c {
            '"' if wants_value || wants_key => {
                if first {
                    newline(&mut out, stack.len());
                }
                out.push('"');
                let mut closed = false;
                while let Some((_, s)) = chars.next() {
                    if (s as u32) < 0x20 {
                        return None;
                    }
                    out.push(s);
                    match s {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((_, e @ ('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't'))) => {
                                out.push(e)
                            }
                            Some((_, 'u')) => {
                                out.push('u');
                                for _ in 0..4 {
                                    match chars.next() {
                                        Some((_, h)) if h.is_ascii_hexdigit() => out.push(h),
                                        None if !complete => return Some(out),
                                        _ => return None,
                                    }
                                }
                            }
                            None if !complete => return Some(out),
                            _ => return None,
                        },
                        _ => {}
                    }
                }
                if !closed {
                    return (!complete).then_some(out);
                }
                expect = if wants_key {
                    Expect::Colon
                } else if stack.is_empty() {
                    Expect::End
                } else {
                    Expect::CommaOrClose
                };
            }
            '{' | '[' if wants_value => {
                if stack.len() >= MAX_JSON_DEPTH {
                    return None;
                }
                if first {
                    newline(&mut out, stack.len());
                }
                out.push(c);
                stack.push(c);
                expect = if c == '{' {
                    Expect::FirstKey
                } else {
                    Expect::FirstValue
                };
            }
            '}' | ']' => {
                let open = if c == '}' { '{' } else { '[' };
                if stack.last() != Some(&open) {
                    return None;
                }
                match expect {
                    Expect::FirstKey if c == '}' => {}
                    Expect::FirstValue if c == ']' => {}
                    Expect::CommaOrClose => newline(&mut out, stack.len() - 1),
                    _ => return None,
                }
                stack.pop();
                out.push(c);
                expect = if stack.is_empty() {
                    Expect::End
                } else {
                    Expect::CommaOrClose
                };
            }
            ':' if expect == Expect::Colon => {
                out.push_str(": ");
                expect = Expect::Value;
            }
            ',' if expect == Expect::CommaOrClose => {
                out.push(',');
                newline(&mut out, stack.len());
                expect = if stack.last() == Some(&'{') {
                    Expect::Key
                } else {
                    Expect::Value
                };
            }
            c if wants_value && (c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')) => {
                let mut end = start + c.len_utf8();
                while let Some(&(i, n)) = chars.peek() {
                    if n.is_ascii_alphanumeric() || matches!(n, '-' | '+' | '.') {
                        end = i + n.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let literal = &text[start..end];
                let at_end = chars.peek().is_none();
                if !(matches!(literal, "true" | "false" | "null")
                    || is_json_number(literal)
                    || (at_end && !complete && is_literal_prefix(literal)))
                {
                    return None;
                }
                if first {
                    newline(&mut out, stack.len());
                }
                out.push_str(literal);
                expect = if stack.is_empty() {
                    Expect::End
                } else {
                    Expect::CommaOrClose
                };
            }
            _ => return None,
        }
    }
    if out.len() > MAX_JSON_OUTPUT || out.is_empty() {
        return None;
    }
    (expect == Expect::End || !complete).then_some(out)
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - from
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Whether a literal cut short could have been `true`, `false`, `null` or a number.
fn is_literal_prefix(s: &str) -> bool {
    ["true", "false", "null"].iter().any(|l| l.starts_with(s))
        || s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> BrowsedMessage {
        BrowsedMessage {
            partition: 1,
            offset,
            timestamp_ms: 1_796_504_351_123,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: vec![],
        }
    }

    fn view() -> TopicView {
        TopicView {
            name: "orders".to_string(),
            topic_id: "AAAAAAAAAAAAAAAAAAAAAQ".to_string(),
            partitions: vec![
                TopicPartitionRow {
                    partition: 0,
                    log_start_offset: 100,
                    log_end_offset: 1_600,
                    size_bytes: 2048,
                    segments: 2,
                },
                TopicPartitionRow {
                    partition: 1,
                    log_start_offset: 0,
                    log_end_offset: 50,
                    size_bytes: 1024,
                    segments: 1,
                },
            ],
            configs: vec![
                ConfigRow {
                    name: "cleanup.policy".to_string(),
                    value: Some("delete".to_string()),
                    source: "default".to_string(),
                },
                ConfigRow {
                    name: "retention.ms".to_string(),
                    value: Some("3600000".to_string()),
                    source: "topic".to_string(),
                },
                ConfigRow {
                    name: "ssl.secret".to_string(),
                    value: None,
                    source: "broker".to_string(),
                },
            ],
            rates: Some(crate::overview::Rates {
                records_in: 12.0,
                bytes_in: 3072.0,
                bytes_out: 0.0,
            }),
            groups: vec![
                TopicGroupRow {
                    group_id: "billing svc".to_string(),
                    state: "Stable".to_string(),
                    lag: Some(5_000),
                    partitions: 2,
                },
                TopicGroupRow {
                    group_id: "audit".to_string(),
                    state: "Empty".to_string(),
                    lag: None,
                    partitions: 1,
                },
            ],
            browse: BrowseQuery {
                partition: 1,
                offset: 40,
                timestamp_ms: None,
                limit: 3,
                format: ValueFormat::Hex,
            },
            messages: vec![
                message(40, Some(b"k"), Some(b"Hello")),
                message(41, None, Some(b"x")),
                message(42, Some(b"k"), None),
            ],
            browse_error: None,
        }
    }

    fn text(bytes: &[u8]) -> String {
        format_bytes(bytes, ValueFormat::Text).0
    }

    fn json(bytes: &[u8]) -> String {
        format_bytes(bytes, ValueFormat::Json).0
    }

    #[test]
    fn the_page_shows_partitions_offsets_records_groups_with_links_and_lag_and_configs() {
        let html = render(&view());
        assert!(
            html.contains("<title>Topic orders · Starling</title>"),
            "{html}"
        );
        assert!(
            html.contains("class=\"here\" href=\"/ui/#topics\""),
            "{html}"
        );
        assert!(html.contains("<dd class=\"id\">AAAAAAAAAAAAAAAAAAAAAQ</dd>"));
        assert!(html.contains("<dt>Partitions</dt><dd>2</dd>"), "{html}");
        assert!(
            html.contains("<dt>Records</dt><dd>1\u{202f}550</dd>"),
            "{html}"
        );
        assert!(html.contains("<dt>Size</dt><dd>3.0 KiB</dd>"), "{html}");
        assert!(
            html.contains(
                "<tr><td class=\"num\">0</td><td class=\"num\">100</td>\
                 <td class=\"num\">1\u{202f}600</td><td class=\"num\">1\u{202f}500</td>\
                 <td class=\"num\">2.0 KiB</td><td class=\"num\">2</td></tr>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"/ui/groups/billing%20svc\">billing svc</a>"),
            "{html}"
        );
        assert!(
            html.contains("<td class=\"num lag-high\">5\u{202f}000</td>"),
            "{html}"
        );
        assert!(html.contains("<td class=\"num\">–</td>"), "{html}");
        assert!(
            html.contains("<tr><td class=\"id\">cleanup.policy</td><td class=\"id\">delete</td><td>default</td></tr>"),
            "{html}"
        );
        assert!(
            html.contains("<tr class=\"override\" style=\"font-weight:600\"><td class=\"id\">retention.ms</td><td class=\"id\">3600000</td><td>topic</td></tr>"),
            "{html}"
        );
        assert!(html.contains("1 value is set on the topic"), "{html}");
        assert!(
            html.contains("<td class=\"id\"><span class=\"muted\">(hidden)</span></td>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<dt>Produce</dt><dd>12.0 rec/s · 3.0 KiB/s</dd><dt>Fetch</dt><dd>0 B/s</dd>"
            ),
            "{html}"
        );
        assert!(html.contains(">2026-12-05 20:59:11.123<"), "{html}");
    }

    #[test]
    fn empty_lists_say_so() {
        let html = render(&TopicView {
            name: "t".to_string(),
            ..TopicView::default()
        });
        assert!(
            html.contains("No group has committed offsets on this topic."),
            "{html}"
        );
        assert!(html.contains("No configs."), "{html}");
        assert!(html.contains("No messages at this position."), "{html}");
        assert!(!html.contains("next "), "{html}");
        // With no partitions known, the partition is typed in.
        assert!(
            html.contains("<input type=\"number\" name=\"partition\" min=\"0\" value=\"0\">"),
            "{html}"
        );
    }

    #[test]
    fn a_browse_error_is_shown_escaped_instead_of_messages() {
        let mut v = view();
        v.browse_error = Some("offset <out> of range".to_string());
        let html = render(&v);
        assert!(
            html.contains("<p class=\"faults\">offset &lt;out&gt; of range</p>"),
            "{html}"
        );
        assert!(!html.contains("<table class=\"messages\">"), "{html}");
    }

    #[test]
    fn markup_from_clients_appears_only_escaped() {
        let evil = "<script>alert(1)</script>";
        let mut v = view();
        v.name = evil.to_string();
        v.topic_id = evil.to_string();
        v.groups[0].group_id = evil.to_string();
        v.groups[0].state = evil.to_string();
        v.configs[0].name = evil.to_string();
        v.configs[0].value = Some(evil.to_string());
        v.configs[0].source = evil.to_string();
        v.browse_error = None;
        v.messages[0].key = Some(evil.as_bytes().to_vec());
        v.messages[0].value = Some(evil.as_bytes().to_vec());
        v.messages[0].headers = vec![
            (evil.to_string(), Some(evil.as_bytes().to_vec())),
            ("\"><b>".to_string(), None),
        ];
        for format in ValueFormat::ALL {
            v.browse.format = format;
            let html = render(&v);
            assert!(!html.contains("<script"), "{format:?}: {html}");
            assert!(!html.contains("\"><b>"), "{format:?}: {html}");
            assert!(html.contains("&lt;script&gt;"), "{format:?}: {html}");
        }
        v.browse.format = ValueFormat::Text;
        let html = render(&v);
        assert!(
            html.contains("action=\"/ui/topics/%3Cscript%3Ealert%281%29%3C%2Fscript%3E\""),
            "{html}"
        );
        assert!(
            html.contains("<div>&lt;script&gt;alert(1)&lt;/script&gt;=&lt;script&gt;"),
            "{html}"
        );
        v.browse_error = Some(evil.to_string());
        assert!(!render(&v).contains("<script"));
    }

    #[test]
    fn text_replaces_invalid_utf8_and_control_characters_but_keeps_newlines_and_tabs() {
        assert_eq!(text(b"caf\xc3\xa9"), "café");
        assert_eq!(text(b"ok\xff!"), "ok\u{FFFD}!");
        assert_eq!(
            text(b"a\x00b\x1b[31mc\x7f"),
            "a\u{FFFD}b\u{FFFD}[31mc\u{FFFD}"
        );
        assert_eq!(text(b"line\n\tnext\r"), "line\n\tnext\u{FFFD}");
    }

    #[test]
    fn json_is_indented_when_it_parses() {
        let nested = br#"{"id":7,"tags":["a","b,\"c\""],"inner":{"ok":true,"n":null,"x":-1.5e3},"e":{},"l":[]}"#;
        assert_eq!(
            json(nested),
            r#"{
  "id": 7,
  "tags": [
    "a",
    "b,\"c\""
  ],
  "inner": {
    "ok": true,
    "n": null,
    "x": -1.5e3
  },
  "e": {},
  "l": []
}"#
        );
        assert_eq!(json(b" [ 1 , 2 ] "), "[\n  1,\n  2\n]");
        assert_eq!(json(br#""\u00e9 {""#), r#""\u00e9 {""#);
        assert_eq!(json(b"42"), "42");
    }

    #[test]
    fn json_falls_back_to_text_for_anything_else() {
        for not_json in [
            &b"hello world"[..],
            b"{\"a\":1",
            b"{\"a\" 1}",
            b"{a:1}",
            b"[1,]",
            b"[1 2]",
            b"{\"a\":1}}",
            b"[1]x",
            b"01",
            b"1.",
            b"tru",
            b"\"a\\x\"",
            b"\"tab\there\"",
            b"{\"a\":1,}",
            b"",
        ] {
            assert_eq!(
                json(not_json),
                text(not_json),
                "{}",
                String::from_utf8_lossy(not_json)
            );
            assert!(
                pretty_json(&String::from_utf8_lossy(not_json), true).is_none(),
                "{}",
                String::from_utf8_lossy(not_json)
            );
        }
        // Invalid UTF-8 is text, whatever it looks like.
        assert_eq!(json(b"[\"\xff\"]"), "[\"\u{FFFD}\"]");
        // Nesting too deep to indent usefully is text.
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(json(deep.as_bytes()), deep);
    }

    #[test]
    fn hex_is_lowercase_bytes_in_groups() {
        assert_eq!(
            format_bytes(b"Hello", ValueFormat::Hex),
            ("48 65 6c 6c 6f".to_string(), 0)
        );
        let line = format_bytes(&[0xAB; 17], ValueFormat::Hex).0;
        assert_eq!(line, format!("{}\nab", ["ab"; 16].join(" ")));
        let html = render(&view());
        assert!(html.contains(">48 65 6c 6c 6f</pre>"), "{html}");
    }

    #[test]
    fn long_values_are_cut_with_a_note_in_every_format() {
        let big = vec![b'a'; 10 * 1024];
        for format in ValueFormat::ALL {
            let (shown, more) = format_bytes(&big, format);
            assert_eq!(more, 6 * 1024, "{format:?}");
            assert!(shown.len() < 3 * MAX_VALUE_BYTES, "{format:?}");
        }
        // A multi-byte character is not split at the cut.
        let mut accented = vec![b'a'; MAX_VALUE_BYTES - 1];
        accented.extend_from_slice("é".repeat(10).as_bytes());
        let (shown, more) = format_bytes(&accented, ValueFormat::Text);
        assert!(!shown.contains('\u{FFFD}'));
        assert_eq!(more, 20);
        // Cut JSON is still indented as far as it goes.
        let mut long_json = b"{\"items\":[".to_vec();
        for i in 0..2000 {
            long_json.extend_from_slice(format!("{i},").as_bytes());
        }
        long_json.extend_from_slice(b"0]}");
        let (shown, more) = format_bytes(&long_json, ValueFormat::Json);
        assert!(more > 0);
        assert!(
            shown.starts_with("{\n  \"items\": [\n    0,\n    1,\n"),
            "{shown}"
        );

        let mut v = view();
        v.browse.format = ValueFormat::Text;
        v.messages[0].value = Some(big);
        let html = render(&v);
        assert!(
            html.contains("</pre> <span class=\"muted\">… 6\u{202f}144 more bytes</span>"),
            "{html}"
        );
    }

    #[test]
    fn null_keys_values_and_header_values_are_marked() {
        let mut v = view();
        v.messages[0].headers = vec![
            ("trace".to_string(), Some(b"abc".to_vec())),
            ("empty".to_string(), None),
        ];
        v.browse.format = ValueFormat::Text;
        let html = render(&v);
        assert!(
            html.contains(
                "<td class=\"id\"><div>trace=abc</div><div>empty=<span class=\"muted\">null</span></div></td>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<td class=\"id\"><span class=\"muted\">null</span></td><td class=\"id\"></td><td class=\"id\"><pre class=\"value\""),
            "null key: {html}"
        );
        assert!(
            html.contains("<td class=\"id\"><span class=\"muted\">null</span></td></tr>"),
            "null value: {html}"
        );
    }

    #[test]
    fn the_form_keeps_the_current_values_and_next_continues_after_the_last_offset() {
        let mut v = view();
        v.browse.timestamp_ms = Some(1_700_000_000_000);
        let html = render(&v);
        assert!(
            html.contains("<form class=\"filter\" method=\"get\" action=\"/ui/topics/orders\">"),
            "{html}"
        );
        assert!(
            html.contains("<option value=\"1\" selected>1</option>"),
            "{html}"
        );
        assert!(html.contains("<option value=\"0\">0</option>"), "{html}");
        assert!(
            html.contains("name=\"offset\" min=\"0\" value=\"40\""),
            "{html}"
        );
        assert!(
            html.contains("name=\"timestamp\" value=\"1700000000000\""),
            "{html}"
        );
        assert!(html.contains("value=\"3\"></label>"), "{html}");
        assert!(
            html.contains("<option value=\"hex\" selected>hex</option>"),
            "{html}"
        );
        assert!(
            html.contains("<option value=\"text\">text</option>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<a href=\"/ui/topics/orders?partition=1&amp;offset=43&amp;limit=3&amp;format=hex\">next 3 →</a>"
            ),
            "{html}"
        );
        // A partition the broker did not list still shows as chosen.
        v.browse.partition = 9;
        let html = render(&v);
        assert!(
            html.contains("<option value=\"9\" selected>9</option>"),
            "{html}"
        );
        // The next link reads back as the query it continues.
        let next = BrowseQuery::from_pairs([
            ("partition", "1"),
            ("offset", "43"),
            ("limit", "3"),
            ("format", "hex"),
        ]);
        assert_eq!(
            next.url("orders"),
            "/ui/topics/orders?partition=1&offset=43&limit=3&format=hex"
        );
    }

    #[test]
    fn browse_queries_read_values_clamp_the_limit_and_ignore_garbage() {
        assert_eq!(BrowseQuery::from_pairs([]), BrowseQuery::default());
        assert_eq!(
            BrowseQuery::default(),
            BrowseQuery {
                partition: 0,
                offset: 0,
                timestamp_ms: None,
                limit: 20,
                format: ValueFormat::Text,
            }
        );
        assert_eq!(
            BrowseQuery::from_pairs([
                ("partition", "3"),
                ("offset", " 1234 "),
                ("timestamp", "1700000000000"),
                ("limit", "50"),
                ("format", "JSON"),
                ("other", "x"),
            ]),
            BrowseQuery {
                partition: 3,
                offset: 1234,
                timestamp_ms: Some(1_700_000_000_000),
                limit: 50,
                format: ValueFormat::Json,
            }
        );
        assert_eq!(BrowseQuery::from_pairs([("limit", "100000")]).limit, 200);
        assert_eq!(BrowseQuery::from_pairs([("limit", "0")]).limit, 1);
        assert_eq!(BrowseQuery::from_pairs([("limit", "-5")]).limit, 1);
        assert_eq!(
            BrowseQuery::from_pairs([
                ("partition", "-1"),
                ("partition", "x"),
                ("offset", "-2"),
                ("offset", "1e3"),
                ("timestamp", ""),
                ("limit", "lots"),
                ("format", "xml"),
            ]),
            BrowseQuery::default()
        );
        assert_eq!(ValueFormat::parse("hex"), Some(ValueFormat::Hex));
        for f in ValueFormat::ALL {
            assert_eq!(ValueFormat::parse(f.name()), Some(f));
        }
    }
}
