//! Go's `strconv.Quote`, which `fmt`'s `%q` uses: how etcd quotes names and
//! URLs in its error texts.

use super::GoRelease;

/// Quotes bytes as Go's `strconv.Quote` (and so `fmt`'s `%q`) does.
///
/// Printable runes stay as they are; `"` and `\` are backslashed; `\a \b \f
/// \n \r \t \v` use their short forms; other ASCII controls become `\xNN`,
/// other non-printable runes `\uNNNN` / `\UNNNNNNNN`; each byte of invalid
/// UTF-8 becomes `\xNN` (see `is_go_printable`). Go before 1.19 wrote DEL as
/// `\u007f`, later releases as `\x7f`.
///
/// ```
/// use etcdsnap::internal::go::{GoRelease, quote::quote};
/// assert_eq!(quote(b"a\tb\x7f", GoRelease::GO1_19), r#""a\tb\x7f""#);
/// assert_eq!(quote(b"\x7f", GoRelease::GO1_16), r#""\u007f""#);
/// ```
pub fn quote(s: &[u8], release: GoRelease) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_ascii() && (' '..='~').contains(&c) => out.push(c),
                c if !c.is_ascii() && is_go_printable(c) => out.push(c),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                '\u{7f}' if !release.quotes_del_as_hex() => out.push_str("\\u007f"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if (c as u32) < 0x10000 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
///
/// ```
/// use etcdsnap::internal::go::{GoRelease, quote::quote_list};
/// assert_eq!(quote_list(&["a", "b c"], GoRelease::GO1_19), r#"["a" "b c"]"#);
/// ```
pub fn quote_list<S: AsRef<str>>(items: &[S], release: GoRelease) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| quote(s.as_ref().as_bytes(), release))
        .collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `strconv.IsPrint` for non-ASCII runes (Unicode 13.0.0, the tables
/// of the Go releases that built etcd 3.4.23 and 3.5.1; etcd 3.6 is built
/// with a Go on Unicode 15, whose newer assignments are not reproduced).
fn is_go_printable(c: char) -> bool {
    super::isprint::is_print(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_strconv() {
        let q = |b: &[u8]| quote(b, GoRelease::GO1_19);
        assert_eq!(q(b"plain"), "\"plain\"");
        assert_eq!(q(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            q(b"\x07\x08\x0c\n\r\t\x0b\x00\x7f"),
            "\"\\a\\b\\f\\n\\r\\t\\v\\x00\\x7f\""
        );
        assert_eq!(q("é€😀".as_bytes()), "\"é€😀\"");
        assert_eq!(
            q("\u{a0}\u{200b}\u{85}\u{feff}".as_bytes()),
            "\"\\u00a0\\u200b\\u0085\\ufeff\""
        );
        assert_eq!(q("\u{f0000}".as_bytes()), "\"\\U000f0000\"");
        assert_eq!(q(b"a\xffb\xe2\x82"), "\"a\\xffb\\xe2\\x82\"");
        // Go 1.16 (etcd 3.5.1) quoted DEL as \u007f; Go 1.19+ as \x7f.
        assert_eq!(quote(b"\x7f", GoRelease::GO1_16), "\"\\u007f\"");
        assert_eq!(quote(b"\x7f", GoRelease::GO1_24), "\"\\x7f\"");
    }
}
