//! The subset of olekukonko/tablewriter etcdctl and etcdutl use:
//! upper-cased, centred headers and right-aligned cells in `+---+` borders
//! (v0.0.x, etcd 3.4 to 3.6), or the same table drawn with Unicode
//! box-drawing characters (v1, etcd 3.7).

/// The characters a table is drawn with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Borders {
    /// `+`, `-`, `|` (etcd 3.4 to 3.6).
    #[default]
    Ascii,
    /// `┌ ┬ ┐ ├ ┼ ┤ └ ┴ ┘ ─ │` (etcd 3.7).
    Unicode,
}

impl Borders {
    /// (left, middle, right) corners of the top, separator and bottom
    /// lines, the horizontal and the vertical line.
    fn chars(self) -> ([[char; 3]; 3], char, char) {
        match self {
            Borders::Ascii => ([['+'; 3]; 3], '-', '|'),
            Borders::Unicode => (
                [['┌', '┬', '┐'], ['├', '┼', '┤'], ['└', '┴', '┘']],
                '─',
                '│',
            ),
        }
    }
}

/// Renders a table with `headers` and `rows`, cells right-aligned, as
/// `tablewriter` does with `SetAlignment(ALIGN_RIGHT)`.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    render_with(headers, rows, Borders::Ascii)
}

/// [`render`] with the given [`Borders`].
pub fn render_with(headers: &[&str], rows: &[Vec<String>], borders: Borders) -> String {
    let (corners, horizontal, vertical) = borders.chars();
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
    let line = |[left, middle, right]: [char; 3]| -> String {
        let mut s = String::from(left);
        for (i, w) in widths.iter().enumerate() {
            if i > 0 {
                s.push(middle);
            }
            s.extend(std::iter::repeat_n(horizontal, w + 2));
        }
        s.push(right);
        s.push('\n');
        s
    };
    let [top, separator, bottom] = corners;
    let mut out = line(top);
    out.push(vertical);
    for (h, w) in heads.iter().zip(&widths) {
        let gap = w - h.chars().count();
        let left = gap / 2;
        out.push(' ');
        out.push_str(&" ".repeat(left));
        out.push_str(h);
        out.push_str(&" ".repeat(gap - left));
        out.push(' ');
        out.push(vertical);
    }
    out.push('\n');
    out.push_str(&line(separator));
    for r in rows {
        out.push(vertical);
        for (i, w) in widths.iter().enumerate() {
            let c = r.get(i).map(String::as_str).unwrap_or("");
            out.push(' ');
            out.push_str(&" ".repeat(w - c.chars().count()));
            out.push_str(c);
            out.push(' ');
            out.push(vertical);
        }
        out.push('\n');
    }
    out.push_str(&line(bottom));
    out
}
