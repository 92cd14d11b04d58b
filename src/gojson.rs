//! A JSON string encoder that reproduces Go's `encoding/json` byte for byte.
//!
//! etcd writes member records, the v2 store inside the `.snap` file and the
//! `ConfChange` context with Go's encoder, whose escaping differs from
//! `serde_json`: `<`, `>` and `&` become `\u003c`, `\u003e`, `\u0026`,
//! U+2028 and U+2029 are escaped, invalid UTF-8 becomes `\ufffd`, and (in the
//! Go releases that built etcd 3.4 and 3.5) backspace and form feed are written
//! as `\u0008` and `\u000c`.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a quoted JSON string, escaped exactly as Go's
/// `encoding/json` (with HTML escaping, as `json.Marshal` does) escapes it.
///
/// ```
/// let mut out = String::new();
/// etcdsnap::gojson::write_str(&mut out, "a<b&c>\"é".as_bytes());
/// assert_eq!(out, r#""a\u003cb\u0026c\u003e\"é""#);
/// ```
pub fn write_str(out: &mut String, s: &[u8]) {
    out.push('"');
    let mut rest = s;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                push_valid(out, valid);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // `valid_up_to` marks a UTF-8 boundary, so this cannot fail.
                if let Ok(v) = std::str::from_utf8(valid) {
                    push_valid(out, v);
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

/// Returns `s` as a quoted JSON string, escaped as Go's `encoding/json` does.
pub fn string(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str(&mut out, s);
    out
}

fn push_valid(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\u{0}'..='\u{1f}' => push_unicode_escape(out, c),
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

    #[test]
    fn escapes_like_go() {
        assert_eq!(string(b"plain"), "\"plain\"");
        assert_eq!(string(b"<>&"), r#""\u003c\u003e\u0026""#);
        assert_eq!(string(b"\x08\x0c\n\r\t\x01\x1f"), r#""\u0008\u000c\n\r\t\u0001\u001f""#);
        assert_eq!(string("\u{2028}\u{2029}é€".as_bytes()), "\"\\u2028\\u2029é€\"");
        assert_eq!(string(b"\\\""), r#""\\\"""#);
        assert_eq!(string(b"\x7f"), "\"\x7f\"");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_per_byte() {
        // Go: each byte of an invalid sequence decodes as RuneError, width 1.
        assert_eq!(string(b"a\xffb"), r#""a\ufffdb""#);
        assert_eq!(string(b"\xe2\x82"), r#""\ufffd\ufffd""#);
        assert_eq!(string(b"\xc3"), r#""\ufffd""#);
    }
}
