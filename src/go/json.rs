//! Go's `encoding/json` string encoder, byte for byte.
//!
//! etcd writes member records, the v2 store inside the `.snap` file and the
//! `ConfChange` context with Go's encoder, whose escaping differs from
//! `serde_json`: `<`, `>` and `&` become `\u003c`, `\u003e`, `\u0026`,
//! U+2028 and U+2029 are escaped, invalid UTF-8 becomes `\ufffd`, and
//! backspace and form feed are `\u0008` and `\u000c` before Go 1.22, `\b`
//! and `\f` from Go 1.22 on.

use super::GoRelease;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a quoted JSON string, escaped exactly as `release`'s
/// `encoding/json` (with HTML escaping, as `json.Marshal` does) escapes it.
///
/// ```
/// use etcdsnap::internal::go::{GoRelease, json};
/// let mut out = String::new();
/// json::write_str(&mut out, "a<b&c>\"é\x08".as_bytes(), GoRelease::GO1_16);
/// assert_eq!(out, r#""a\u003cb\u0026c\u003e\"é\u0008""#);
/// assert_eq!(json::string(b"\x08\x0c", GoRelease::GO1_22), r#""\b\f""#);
/// ```
pub fn write_str(out: &mut String, s: &[u8], release: GoRelease) {
    let short = release.json_short_escapes();
    out.push('"');
    let mut rest = s;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                push_valid(out, valid, short);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // `valid_up_to` marks a UTF-8 boundary, so this cannot fail.
                if let Ok(v) = std::str::from_utf8(valid) {
                    push_valid(out, v, short);
                }
                // Go decodes rune by rune and turns every byte of an invalid
                // or truncated sequence into its own U+FFFD.
                let skip = e.error_len().unwrap_or(after.len());
                for _ in 0..skip {
                    out.push_str("\\ufffd");
                }
                rest = after.get(skip..).unwrap_or(&[]);
            }
        }
    }
    out.push('"');
}

/// Returns `s` as a quoted JSON string, escaped as `release`'s
/// `encoding/json` does.
pub fn string(s: &[u8], release: GoRelease) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str(&mut out, s, release);
    out
}

fn push_valid(out: &mut String, s: &str, short: bool) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' if short => out.push_str("\\b"),
            '\u{c}' if short => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\u{0}'..='\u{1f}' => {
                push_unicode_escape(out, c)
            }
            _ => out.push(c),
        }
    }
}

fn push_unicode_escape(out: &mut String, c: char) {
    let v = c as u32;
    out.push_str("\\u");
    for shift in [12u32, 8, 4, 0] {
        let nibble = ((v >> shift) & 0xf) as usize;
        out.push(char::from(HEX[nibble]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: GoRelease = GoRelease::GO1_16;

    #[test]
    fn escapes_like_go() {
        assert_eq!(string(b"plain", OLD), "\"plain\"");
        assert_eq!(string(b"<>&", OLD), r#""\u003c\u003e\u0026""#);
        assert_eq!(
            string(b"\x08\x0c\n\r\t\x01\x1f", OLD),
            r#""\u0008\u000c\n\r\t\u0001\u001f""#
        );
        assert_eq!(
            string("\u{2028}\u{2029}é€".as_bytes(), OLD),
            "\"\\u2028\\u2029é€\""
        );
        assert_eq!(string(b"\\\"", OLD), r#""\\\"""#);
        assert_eq!(string(b"\x7f", OLD), "\"\x7f\"");
    }

    #[test]
    fn go122_short_escapes() {
        let new = GoRelease::GO1_22;
        assert_eq!(
            string(b"\x08\x0c\x01\xe2\x08\xff", new),
            r#""\b\f\u0001\ufffd\b\ufffd""#
        );
    }

    #[test]
    fn invalid_utf8_becomes_replacement_per_byte() {
        // Go: each byte of an invalid sequence decodes as RuneError, width 1.
        assert_eq!(string(b"a\xffb", OLD), r#""a\ufffdb""#);
        assert_eq!(string(b"\xe2\x82", OLD), r#""\ufffd\ufffd""#);
        assert_eq!(string(b"\xc3", OLD), r#""\ufffd""#);
    }
}
