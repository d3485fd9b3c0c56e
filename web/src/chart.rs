//! The peer page's activity chart: inline SVG drawn on the server (no script, no asset).

use std::fmt::Write as _;

use crate::api::HistoryPoint;
use crate::text::group_digits;

/// Width of the activity chart window, in seconds (the peer page shows the last hour).
const CHART_WINDOW_S: u64 = 3600;

/// The smallest of 1, 2, 5 x 10^k that is at least `v` (a round axis maximum).
fn nice_ceiling(v: u64) -> u64 {
    let mut base = 1u64;
    loop {
        for m in [1, 2, 5] {
            let candidate = base.saturating_mul(m);
            if candidate >= v || candidate == u64::MAX {
                return candidate;
            }
        }
        base = base.saturating_mul(10);
    }
}

/// The series of the chart: CSS class, colour, legend label, value.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&HistoryPoint) -> u64,
);

/// What the chart draws: pages crawled and documents indexed, then what revisits found.
const SERIES: [Series; 6] = [
    ("series-a", "#0b57d0", "Pages crawled", |p| p.pages_crawled),
    ("series-b", "#b4470c", "Documents indexed", |p| {
        p.docs_indexed
    }),
    ("series-c", "#146c2e", "Revisited", |p| p.pages_revisited),
    ("series-d", "#7d3ab0", "Changed", |p| p.pages_changed),
    ("series-e", "#6b6b6b", "Unchanged", |p| p.pages_unchanged),
    ("series-f", "#c0162c", "Removed", |p| p.pages_removed),
];

/// The activity chart: pages crawled, documents indexed and revisits (made, changed,
/// unchanged, removed) over the last hour, as inline SVG drawn on the server (polylines,
/// axes, labels, a title and a description). The revisit series appear once there was one.
pub(crate) fn activity_chart(history: &[HistoryPoint], now_unix: u64) -> String {
    const W: f64 = 640.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 32.0;
    const BOTTOM: f64 = 36.0;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let start = now_unix.saturating_sub(CHART_WINDOW_S);
    let points: Vec<&HistoryPoint> = history
        .iter()
        .filter(|p| p.at_unix >= start && p.at_unix <= now_unix)
        .collect();
    let revisits = points.iter().any(|p| p.pages_revisited > 0);
    let series: &[Series] = if revisits { &SERIES } else { &SERIES[..2] };
    let max_value = points
        .iter()
        .flat_map(|p| series.iter().map(move |s| (s.3)(p)))
        .max()
        .unwrap_or(0);
    let y_max = nice_ceiling(max_value.max(1));
    let x = |t: u64| LEFT + (t.saturating_sub(start)) as f64 / CHART_WINDOW_S as f64 * pw;
    let y = |v: u64| TOP + ph - (v as f64 / y_max as f64) * ph;

    let mut description = match (points.first(), points.last()) {
        (Some(first), Some(last)) => format!(
            "Over the last hour, pages crawled went from {} to {} and documents indexed from {} to {}.",
            group_digits(first.pages_crawled),
            group_digits(last.pages_crawled),
            group_digits(first.docs_indexed),
            group_digits(last.docs_indexed),
        ),
        _ => "No activity was recorded in the last hour.".to_owned(),
    };
    if revisits && let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            description,
            " Revisits went from {} to {}: {} changed, {} unchanged, {} removed.",
            group_digits(first.pages_revisited),
            group_digits(last.pages_revisited),
            group_digits(last.pages_changed - first.pages_changed.min(last.pages_changed)),
            group_digits(last.pages_unchanged - first.pages_unchanged.min(last.pages_unchanged)),
            group_digits(last.pages_removed - first.pages_removed.min(last.pages_removed)),
        );
    }

    let mut svg = format!(
        r#"<svg class="chart" role="img" aria-labelledby="chart-title chart-desc" viewBox="0 0 {W} {H}" width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg">
<title id="chart-title">Pages crawled and documents indexed, last hour</title>
<desc id="chart-desc">{description}</desc>
"#,
    );
    // Horizontal grid lines and y labels at 0, half and the maximum.
    for (value, label) in [(0, 0), (y_max / 2, y_max / 2), (y_max, y_max)] {
        let yy = y(value);
        let _ = writeln!(
            svg,
            r##"<line class="grid" x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#d0d0d0"/>
<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 8.0,
            yy + 4.0,
            group_digits(label),
        );
    }
    // Axes.
    let _ = writeln!(
        svg,
        r##"<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#555555"/>
<line class="axis" x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#555555"/>"##,
        TOP + ph,
        TOP + ph,
        LEFT + pw,
        TOP + ph,
    );
    // X ticks every 15 minutes.
    for minutes_ago in [60u64, 45, 30, 15, 0] {
        let xx = x(now_unix - minutes_ago.min(now_unix / 60) * 60);
        let label = if minutes_ago == 0 {
            "now".to_owned()
        } else {
            format!("−{minutes_ago} min")
        };
        let anchor = match minutes_ago {
            60 => "start",
            0 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            svg,
            r##"<line class="axis" x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#555555"/>
<text x="{xx:.1}" y="{:.1}" text-anchor="{anchor}">{label}</text>"##,
            TOP + ph,
            TOP + ph + 5.0,
            H - 10.0,
        );
    }
    // Legend: one row, each entry as wide as its label.
    let mut lx = LEFT;
    for (i, (_, colour, label, _)) in series.iter().enumerate() {
        let swatch = ["a", "b", "c", "d", "e", "f"][i];
        let _ = writeln!(
            svg,
            r##"<rect class="swatch-{swatch}" x="{lx:.1}" y="8" width="12" height="12" fill="{colour}"/>
<text x="{:.1}" y="18" font-size="11">{label}</text>"##,
            lx + 16.0,
        );
        lx += 16.0 + 6.2 * label.len() as f64 + 10.0;
    }
    if points.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">No activity in the last hour yet</text>"#,
            LEFT + pw / 2.0,
            TOP + ph / 2.0,
        );
    } else {
        for (class, colour, _, value) in series {
            let mut coords: Vec<String> = points
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.at_unix), y(value(p))))
                .collect();
            if coords.len() == 1 {
                // One sample: hold its value until now so that something is drawn.
                let only = points[0];
                coords.push(format!("{:.1},{:.1}", x(now_unix), y(value(only))));
            }
            let _ = writeln!(
                svg,
                r#"<polyline class="{class}" points="{}" fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round"/>"#,
                coords.join(" "),
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceiling_rounds_up_to_1_2_5() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(501), 1000);
    }

    #[test]
    fn chart_draws_two_series_with_an_accessible_name() {
        let now = 10_000;
        let history: Vec<HistoryPoint> = (0..5)
            .map(|i| HistoryPoint {
                at_unix: now - 3000 + i * 600,
                pages_crawled: i * 10,
                docs_indexed: i * 8,
                ..HistoryPoint::default()
            })
            .collect();
        let svg = activity_chart(&history, now);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("<title id=\"chart-title\">"));
        assert!(svg.contains("from 0 to 40"));
        let empty = activity_chart(&[], now);
        assert_eq!(empty.matches("<polyline").count(), 0);
        assert!(empty.contains("No activity"));
    }

    #[test]
    fn revisits_get_their_series_once_there_was_one() {
        let now = 10_000;
        let history: Vec<HistoryPoint> = (0..5)
            .map(|i| HistoryPoint {
                at_unix: now - 3000 + i * 600,
                pages_crawled: 100 + i * 10,
                docs_indexed: 90,
                pages_revisited: i * 6,
                pages_changed: i,
                pages_unchanged: i * 4,
                pages_removed: i,
            })
            .collect();
        let svg = activity_chart(&history, now);
        assert_eq!(svg.matches("<polyline").count(), 6);
        for label in ["Revisited", "Changed", "Unchanged", "Removed"] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        }
        assert!(
            svg.contains("Revisits went from 0 to 24: 4 changed, 16 unchanged, 4 removed."),
            "{svg}"
        );
    }
}
