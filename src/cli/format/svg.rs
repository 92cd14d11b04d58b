//! A horizontal bar chart of space by group, as a standalone SVG file:
//! one bar per group (the largest first), split into live versions,
//! history and tombstones, with the size written beside each bar, and a
//! last bar for the free pages.

use std::fmt::Write as _;

use super::humanize;
use etcdsnap::inspect::stats::Stats;

/// Groups drawn; the rest are summed into one "other groups" bar.
pub const MAX_BARS: usize = 25;

const WIDTH: u32 = 960;
const LABEL_W: u32 = 330;
const BAR_W: u32 = 480;
const ROW_H: u32 = 22;
const TOP: u32 = 70;
const COLORS: [(&str, &str); 4] = [
    ("live", "#3b78c2"),
    ("history", "#e8963c"),
    ("tombstones", "#9a9a9a"),
    ("free pages", "#c9e3c4"),
];

/// Text safe inside an XML element or attribute: markup characters
/// escaped, characters XML 1.0 forbids (most control characters) dropped.
pub fn xml_text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(' '),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let head: String = s.chars().take(max.saturating_sub(1)).collect();
    head + "…"
}

/// Renders the chart.
pub fn render(stats: &Stats, title: &str) -> String {
    let mut rows: Vec<(String, [u64; 4])> = stats
        .groups
        .iter()
        .take(MAX_BARS)
        .map(|(n, g)| {
            (
                n.clone(),
                [g.live_bytes, g.history_bytes, g.tombstone_bytes, 0],
            )
        })
        .collect();
    if stats.groups.len() > MAX_BARS {
        let mut rest = [0u64; 4];
        for (_, g) in stats.groups.iter().skip(MAX_BARS) {
            rest[0] += g.live_bytes;
            rest[1] += g.history_bytes;
            rest[2] += g.tombstone_bytes;
        }
        rows.push((
            format!("{} other groups", stats.groups.len() - MAX_BARS),
            rest,
        ));
    }
    rows.push((
        "free pages (defrag gives back)".into(),
        [0, 0, 0, stats.free_bytes()],
    ));
    let max = rows
        .iter()
        .map(|(_, v)| v.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let height = TOP + ROW_H * rows.len() as u32 + 40;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="16" font-weight="bold">{}</text>"#,
        xml_text(title)
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="42">database {} ({} pages of {}), key bucket {}, revision {}</text>"#,
        humanize::bytes(stats.db_size),
        stats.db_size / u64::from(stats.page_size.max(1)),
        humanize::bytes(u64::from(stats.page_size)),
        humanize::bytes(stats.total.total_bytes()),
        stats.last_revision
    );
    let mut lx = 10;
    for (name, color) in COLORS {
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="52" width="10" height="10" fill="{color}"/><text x="{}" y="61">{name}</text>"#,
            lx + 14
        );
        lx += 24 + 8 * name.len() as u32;
    }
    for (i, (name, parts)) in rows.iter().enumerate() {
        let y = TOP + ROW_H * i as u32;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL_W - 8,
            y + 15,
            xml_text(&shorten(name, 48))
        );
        let mut x = f64::from(LABEL_W);
        for ((label, color), v) in COLORS.iter().zip(parts) {
            if *v == 0 {
                continue;
            }
            let w = (*v as f64 / max as f64 * f64::from(BAR_W)).max(1.0);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{}" width="{w:.1}" height="{}" fill="{color}"><title>{}: {} {}</title></rect>"#,
                y + 3,
                ROW_H - 6,
                xml_text(name),
                label,
                humanize::bytes(*v)
            );
            x += w;
        }
        let total: u64 = parts.iter().sum();
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}">{}</text>"#,
            x + 6.0,
            y + 15,
            humanize::bytes(total)
        );
    }
    s.push_str("</svg>\n");
    s
}
