//! The subset of olekukonko/tablewriter (v0.0.x) etcdctl and etcdutl use:
//! upper-cased, centred headers and right-aligned cells in `+---+` borders.

/// Renders a table with `headers` and `rows`, cells right-aligned, as
/// `tablewriter` does with `SetAlignment(ALIGN_RIGHT)`.
///
/// ```
/// let t = etcdsnap::format::table::render(&["hash", "revision"], &[vec!["ef854b5".into(), "4".into()]]);
/// assert_eq!(t, "+---------+----------+\n\
///                |  HASH   | REVISION |\n\
///                +---------+----------+\n\
///                | ef854b5 |        4 |\n\
///                +---------+----------+\n");
/// ```
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let heads: Vec<String> = headers.iter().map(|h| h.to_uppercase()).collect();
    let widths: Vec<usize> = heads
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain(std::iter::once(h.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line: String = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s.push('\n');
        s
    };
    let mut out = line.clone();
    out.push('|');
    for (h, w) in heads.iter().zip(&widths) {
        let gap = w - h.chars().count();
        let left = gap / 2;
        out.push(' ');
        out.push_str(&" ".repeat(left));
        out.push_str(h);
        out.push_str(&" ".repeat(gap - left));
        out.push_str(" |");
    }
    out.push('\n');
    out.push_str(&line);
    for r in rows {
        out.push('|');
        for (i, w) in widths.iter().enumerate() {
            let c = r.get(i).map(String::as_str).unwrap_or("");
            out.push(' ');
            out.push_str(&" ".repeat(w - c.chars().count()));
            out.push_str(c);
            out.push_str(" |");
        }
        out.push('\n');
    }
    out.push_str(&line);
    out
}
