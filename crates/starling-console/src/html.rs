//! The pieces every page is made of: escaping (everything that came from a client — topic
//! names, group and client ids, hosts, keys, values — goes through [`escape`] or
//! [`Html::text`]), the page frame with its navigation, and small formatters for numbers,
//! byte sizes, durations and times.

use std::fmt::Write as _;

/// The console's stylesheet, served at `/ui/console.css`.
pub const STYLESHEET: &str = include_str!("../assets/console.css");

/// The console's only script, served at `/ui/console.js`: pages with `data-refresh` reload
/// their content in place while open.
pub const SCRIPT: &str = include_str!("../assets/console.js");

/// Escapes `text` for HTML element content and quoted attribute values (and for SVG).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes `segment` for one URL path segment or query value.
pub fn url_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// An HTML document being written.
#[derive(Debug, Default)]
pub struct Html {
    out: String,
}

impl Html {
    pub fn new() -> Html {
        Html {
            out: String::with_capacity(16 * 1024),
        }
    }

    /// Markup written as is: only for text made here, never for client data.
    pub fn raw(&mut self, markup: &str) -> &mut Html {
        self.out.push_str(markup);
        self
    }

    /// Text, escaped.
    pub fn text(&mut self, text: &str) -> &mut Html {
        self.out.push_str(&escape(text));
        self
    }

    /// `<tag>text</tag>` (text escaped).
    pub fn element(&mut self, tag: &str, text: &str) -> &mut Html {
        let _ = write!(self.out, "<{tag}>{}</{tag}>", escape(text));
        self
    }

    /// `<a href="href">text</a>` (both escaped).
    pub fn link(&mut self, href: &str, text: &str) -> &mut Html {
        let _ = write!(
            self.out,
            "<a href=\"{}\">{}</a>",
            escape(href),
            escape(text)
        );
        self
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

/// Which top-level section a page belongs to, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Groups,
    Topics,
}

/// A whole page: `title` in the head and the heading, `body` (already HTML) inside the frame.
/// `refresh_secs` adds the progressive-enhancement script's live-update interval.
pub fn page(title: &str, section: Section, body: &str, refresh_secs: Option<u32>) -> String {
    let mut html = Html::new();
    html.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<title>")
        .text(title)
        .raw(" · Starling</title><link rel=\"stylesheet\" href=\"/ui/console.css\"></head>");
    match refresh_secs {
        Some(secs) => html.raw(&format!("<body data-refresh=\"{secs}\">")),
        None => html.raw("<body>"),
    };
    html.raw("<header><a class=\"brand\" href=\"/ui/\">Starling</a><nav>");
    for (s, href, label) in [
        (Section::Overview, "/ui/", "Overview"),
        (Section::Groups, "/ui/#groups", "Groups"),
        (Section::Topics, "/ui/#topics", "Topics"),
    ] {
        let class = if s == section { " class=\"here\"" } else { "" };
        html.raw(&format!("<a{class} href=\"{href}\">{label}</a>"));
    }
    html.raw("</nav></header><main><h1>")
        .text(title)
        .raw("</h1>")
        .raw(body)
        .raw("</main>");
    if refresh_secs.is_some() {
        html.raw("<script src=\"/ui/console.js\" defer></script>");
    }
    html.raw("</body></html>\n");
    html.into_string()
}

/// Previous/next links for a list of `total` rows, `per_page` to a page, on page `page`
/// (zero-based); nothing for a list that fits one page.
pub fn pager(
    html: &mut Html,
    total: usize,
    per_page: usize,
    page: usize,
    url: impl Fn(usize) -> String,
) {
    let pages = total.div_ceil(per_page.max(1));
    if pages <= 1 {
        return;
    }
    html.raw("<div class=\"pager\">");
    if page > 0 {
        html.link(&url(page - 1), "← previous");
    }
    html.raw(&format!("<span>page {} of {pages}</span>", page + 1));
    if page + 1 < pages {
        html.link(&url(page + 1), "next →");
    }
    html.raw("</div>");
}

/// A count with thousands separators: `12 345 678`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// A byte size in binary units: `0 B`, `1.5 KiB`, `12.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A rate as shown: a negative or non-finite one (which no counter yields) as zero.
fn shown_rate(rate: f64) -> f64 {
    if rate.is_finite() {
        rate.max(0.0)
    } else {
        0.0
    }
}

/// A rate of `unit`s per second: `0 rec/s`, `0.4 rec/s`, `12.5 rec/s`, `1 234 rec/s`.
pub fn per_second(rate: f64, unit: &str) -> String {
    let rate = shown_rate(rate);
    if rate == 0.0 {
        format!("0 {unit}/s")
    } else if rate < 100.0 {
        format!("{rate:.1} {unit}/s")
    } else {
        format!("{} {unit}/s", count(rate.round() as i64))
    }
}

/// A byte rate in binary units: `0 B/s`, `512 B/s`, `1.5 KiB/s`.
pub fn bytes_per_second(rate: f64) -> String {
    format!("{}/s", bytes(shown_rate(rate).round() as u64))
}

/// A duration in milliseconds, short: `850 ms`, `3.2 s`, `4 min 10 s`, `2 h 5 min`, `3 d 4 h`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        3_600_000..=86_399_999 => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
        _ => format!("{} d {} h", ms / 86_400_000, ms % 86_400_000 / 3_600_000),
    }
}

/// Milliseconds since the epoch as UTC: `2026-12-05 20:59:11.123`.
pub fn time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_from_clients_is_escaped_in_text_and_attributes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let mut html = Html::new();
        html.link("/ui/topics/a\"b", "<b>");
        assert_eq!(
            html.into_string(),
            "<a href=\"/ui/topics/a&quot;b\">&lt;b&gt;</a>"
        );
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(url_encode("orders.v1"), "orders.v1");
        assert_eq!(url_encode("a/b c?&"), "a%2Fb%20c%3F%26");
        assert_eq!(url_encode("é"), "%C3%A9");
    }

    #[test]
    fn numbers_sizes_durations_and_times_read_as_people_write_them() {
        assert_eq!(per_second(0.0, "rec"), "0 rec/s");
        assert_eq!(per_second(0.44, "rec"), "0.4 rec/s");
        assert_eq!(per_second(12.46, "rec"), "12.5 rec/s");
        assert_eq!(per_second(12_345.4, "rec"), "12\u{202f}345 rec/s");
        assert_eq!(per_second(f64::NAN, "rec"), "0 rec/s");
        assert_eq!(bytes_per_second(1536.0), "1.5 KiB/s");
        assert_eq!(bytes_per_second(-3.0), "0 B/s");
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1\u{202f}234\u{202f}567");
        assert_eq!(count(-1000), "-1\u{202f}000");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 30), "5.0 GiB");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(3_200), "3.2 s");
        assert_eq!(duration_ms(250_000), "4 min 10 s");
        assert_eq!(duration_ms(7_500_000), "2 h 5 min");
        assert_eq!(duration_ms(273_600_000), "3 d 4 h");
        assert_eq!(time_ms(0), "1970-01-01 00:00:00.000");
        assert_eq!(time_ms(1_796_504_351_123), "2026-12-05 20:59:11.123");
    }

    #[test]
    fn a_page_escapes_its_title_and_marks_its_section() {
        let page = page("<g>", Section::Groups, "<p>body</p>", Some(5));
        assert!(
            page.contains("<title>&lt;g&gt; · Starling</title>"),
            "{page}"
        );
        assert!(page.contains("<h1>&lt;g&gt;</h1><p>body</p>"), "{page}");
        assert!(
            page.contains("class=\"here\" href=\"/ui/#groups\""),
            "{page}"
        );
        assert!(page.contains("data-refresh=\"5\""), "{page}");
        assert!(page.contains("/ui/console.js"), "{page}");
        assert!(!super::page("t", Section::Overview, "", None).contains("console.js"));
    }
}
