//! go-humanize's `Bytes`: SI sizes (base 1000) as etcdutl prints them.

const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

/// Formats `s` bytes like go-humanize's `Bytes`: `"9 B"`, `"20 kB"`,
/// `"1.5 MB"`, `"11 MB"`.
pub fn bytes(s: u64) -> String {
    if s < 10 {
        return format!("{s} B");
    }
    let mut e = 0usize;
    let mut p: u64 = 1;
    while e + 1 < UNITS.len() && p.checked_mul(1000).is_some_and(|n| n <= s) {
        p *= 1000;
        e += 1;
    }
    let unit = UNITS.get(e).copied().unwrap_or("EB");
    let val = ((s as f64) / 1000f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {unit}")
    } else {
        format!("{val:.0} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn matches_go_humanize() {
        for (n, want) in [
            (0, "0 B"),
            (9, "9 B"),
            (10, "10 B"),
            (999, "999 B"),
            (1000, "1.0 kB"),
            (1049, "1.0 kB"),
            (1050, "1.1 kB"),
            (9949, "9.9 kB"),
            (9950, "10 kB"),
            (20480, "20 kB"),
            (10698752, "11 MB"),
            (1466998784, "1.5 GB"),
        ] {
            assert_eq!(bytes(n), want, "{n}");
        }
    }
}
