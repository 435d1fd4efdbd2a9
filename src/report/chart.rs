//! The report's chart: requests, 429s, retries and transient failures per second, as inline SVG
//! (no script, nothing fetched), one point per second of the run on every line.
//!
//! Each line is a `<polyline>` with a stable id (`series-requests`, `series-throttled`,
//! `series-retries`, `series-faults`) whose `points` hold one `x,y` pair per point of the
//! timeline, and whose `data-values` hold the counts themselves, so a reader (or a test) can
//! check the chart against the figures.

use std::fmt::Write;

use super::Series;
use super::html::escape;

/// The plot's size in SVG units (the page scales it to its width).
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 260.0;
/// Room for the axis labels.
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;
const RIGHT: f64 = 10.0;

/// The lines drawn: id, CSS class, what the legend says, the counts.
fn lines(series: &Series) -> [(&'static str, &'static str, &'static str, &[u32]); 4] {
    [
        (
            "series-requests",
            "requests",
            "requests sent",
            &series.requests,
        ),
        (
            "series-throttled",
            "throttled",
            "429 (rate limit)",
            &series.throttled,
        ),
        ("series-retries", "retries", "retries", &series.retries),
        (
            "series-faults",
            "faults",
            "5xx, timeouts, dropped",
            &series.faults,
        ),
    ]
}

/// The chart as an `<svg>` element and its legend.
pub fn svg(series: &Series) -> String {
    let n = series.requests.len();
    let top = lines(series)
        .iter()
        .flat_map(|(_, _, _, values)| values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| LEFT + plot_w * i as f64 / (n.max(2) - 1) as f64;
    let y = |v: u32| TOP + plot_h - plot_h * f64::from(v) / f64::from(top);
    let per = series.seconds_per_point;
    let unit = if per == 1 {
        "per second".to_string()
    } else {
        format!("per {per} seconds")
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg id="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" data-points="{n}" data-seconds-per-point="{per}" aria-label="{}">"#,
        escape(&format!("Requests {unit} over the run"))
    );
    // The axes and a grid line at the top value and half of it.
    for value in [0, top / 2, top] {
        let at = y(value);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}"/><text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{value}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            at + 4.0,
        );
    }
    let last = n.saturating_sub(1);
    for i in [0, last / 2, last] {
        let _ = write!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="middle">{}s</text>"#,
            x(i),
            HEIGHT - 6.0,
            i as u64 * per
        );
    }
    for (id, class, _, values) in lines(series) {
        let mut points = String::with_capacity(values.len() * 12);
        let mut counts = String::with_capacity(values.len() * 3);
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                points.push(' ');
                counts.push(' ');
            }
            let _ = write!(points, "{:.1},{:.1}", x(i), y(*value));
            let _ = write!(counts, "{value}");
        }
        let _ = write!(
            out,
            r#"<polyline id="{id}" class="{class}" data-points="{}" data-values="{counts}" points="{points}"/>"#,
            values.len()
        );
    }
    out.push_str("</svg>");
    out.push_str(r#"<p class="legend">"#);
    for (_, class, words, _) in lines(series) {
        let _ = write!(
            out,
            r#"<span class="key {class}">{}</span> "#,
            escape(words)
        );
    }
    let _ = write!(out, "({}, {n} points)</p>", escape(&unit));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_has_one_point_per_point_of_the_timeline() {
        let series = Series {
            seconds_per_point: 1,
            requests: vec![3, 0, 7],
            ok: vec![3, 0, 5],
            throttled: vec![0, 0, 2],
            retries: vec![0, 0, 1],
            faults: vec![0, 0, 1],
            requests_by_group: Default::default(),
        };
        let svg = svg(&series);
        assert!(svg.contains(r#"data-points="3""#));
        let points = |id: &str| {
            let at = svg.find(&format!(r#"id="{id}""#)).expect(id);
            let rest = &svg[at..];
            let start = rest.find(r#" points=""#).unwrap() + 9;
            rest[start..start + rest[start..].find('"').unwrap()]
                .split_whitespace()
                .count()
        };
        for id in ["series-requests", "series-throttled", "series-retries"] {
            assert_eq!(points(id), 3, "{id}");
        }
        assert!(svg.contains(r#"data-values="3 0 7""#));
        assert!(!svg.contains("http"), "no namespace or link to fetch");
    }
}
