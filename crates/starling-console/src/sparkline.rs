//! Sparklines: a series of `(time, value)` readings as a small inline SVG line, scaled from
//! zero to the series' largest value, with the first, last and largest values in its title
//! (a tooltip, and what screen readers say). The console draws lag histories with it.

use std::fmt::Write;

use crate::html::{count, duration_ms, escape};

/// The drawing's size in CSS pixels.
pub const WIDTH: f64 = 120.0;
pub const HEIGHT: f64 = 22.0;
/// Room left above and below the line for its stroke.
const PAD: f64 = 2.0;

/// The series, oldest first, as a sparkline described as `what` (e.g. "lag"); a dash for
/// fewer than two readings. Times need not be evenly spaced: x is proportional to time.
pub fn sparkline(points: &[(i64, i64)], what: &str) -> String {
    if points.len() < 2 {
        return "<span class=\"muted\">–</span>".to_string();
    }
    let (first_ms, first) = points[0];
    let (last_ms, last) = points[points.len() - 1];
    let span_ms = (last_ms - first_ms).max(1) as f64;
    let max = points.iter().map(|&(_, v)| v).max().unwrap_or(0).max(1);
    let min = points.iter().map(|&(_, v)| v).min().unwrap_or(0).min(0);
    let range = (max - min) as f64;
    let x = |ms: i64| ((ms - first_ms) as f64 / span_ms * WIDTH).clamp(0.0, WIDTH);
    let y = |v: i64| HEIGHT - PAD - (v - min) as f64 / range * (HEIGHT - 2.0 * PAD);
    let mut line = String::with_capacity(points.len() * 12);
    for &(ms, v) in points {
        let _ = write!(line, "{:.1},{:.1} ", x(ms), y(v));
    }
    let title = format!(
        "{what} over {}: {} then, {} now, {} at most",
        duration_ms(last_ms - first_ms),
        count(first),
        count(last),
        count(points.iter().map(|&(_, v)| v).max().unwrap_or(0)),
    );
    let trend = match last.cmp(&first) {
        std::cmp::Ordering::Greater => "rising",
        std::cmp::Ordering::Less => "falling",
        std::cmp::Ordering::Equal => "flat",
    };
    format!(
        r#"<svg class="sparkline {trend}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}"><title>{title}</title><polyline points="{}" fill="none" stroke-width="1.5"/><circle cx="{:.1}" cy="{:.1}" r="2"/></svg>"#,
        line.trim_end(),
        x(last_ms),
        y(last),
        title = escape(&title),
    )
}

/// Sums series read at the same times (as one sampler round reads every partition) into
/// one: the value at each time is the sum over the series that have a reading then.
pub fn sum_series<'a>(series: impl IntoIterator<Item = &'a [(i64, i64)]>) -> Vec<(i64, i64)> {
    let mut sums: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
    for s in series {
        for &(ms, v) in s {
            *sums.entry(ms).or_insert(0) += v;
        }
    }
    sums.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(svg: &str) -> Vec<(f64, f64)> {
        let start = svg.find("points=\"").unwrap() + 8;
        let end = start + svg[start..].find('"').unwrap();
        svg[start..end]
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn fewer_than_two_readings_draw_a_dash() {
        assert!(!sparkline(&[], "lag").contains("<svg"));
        assert!(!sparkline(&[(0, 5)], "lag").contains("<svg"));
    }

    #[test]
    fn the_line_spans_the_width_in_time_and_the_height_from_zero_to_the_largest_value() {
        let svg = sparkline(&[(0, 0), (1_000, 50), (4_000, 100)], "lag");
        let p = points(&svg);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], (0.0, HEIGHT - PAD));
        assert_eq!(p[1].0, 30.0, "x proportional to time, not to the index");
        assert_eq!(p[2], (WIDTH, PAD));
        assert!(svg.contains("class=\"sparkline rising\""));
        assert!(svg.contains("<title>lag over 4.0 s: 0 then, 100 now, 100 at most</title>"));
    }

    #[test]
    fn a_constant_series_is_flat_and_equal_times_do_not_divide_by_zero() {
        let svg = sparkline(&[(5, 7), (5, 7)], "lag");
        assert!(svg.contains("sparkline flat"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let zero = sparkline(&[(0, 0), (10, 0)], "lag");
        assert!(points(&zero).iter().all(|&(_, y)| y == HEIGHT - PAD));
    }

    #[test]
    fn negative_values_stay_inside_the_drawing() {
        let svg = sparkline(&[(0, -10), (10, 10)], "lag");
        for (_, y) in points(&svg) {
            assert!((0.0..=HEIGHT).contains(&y), "{y}");
        }
    }

    #[test]
    fn the_description_is_escaped() {
        let svg = sparkline(&[(0, 1), (10, 2)], "<b>lag</b>");
        assert!(svg.contains("&lt;b&gt;lag&lt;/b&gt;"));
        assert!(!svg.contains("<b>"));
    }

    #[test]
    fn series_read_together_sum_per_reading() {
        let a: &[(i64, i64)] = &[(10, 1), (20, 2), (30, 3)];
        let b: &[(i64, i64)] = &[(20, 10), (30, 10)];
        assert_eq!(sum_series([a, b]), vec![(10, 1), (20, 12), (30, 13)]);
    }
}
