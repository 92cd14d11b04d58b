//! The two text formats etcd parses out of its buckets with Go libraries:
//! versions (`github.com/coreos/go-semver`) and JSON decoded into a struct
//! (`encoding/json`). Only acceptance matters here: whether the Go call
//! returns an error (etcd then panics), not the value.

use serde_json::Value;

/// go-semver's `NewVersion`: `major.minor.patch`, each a base-10 int64,
/// after cutting `+metadata` and then `-prerelease` off (`3.6.0-alpha.0+git`
/// parses, `3.5` and `v3.5.0` do not).
pub(super) fn go_semver_ok(v: &[u8]) -> bool {
    // Go converts bytes to a string without validation; a non-UTF-8 byte can
    // only make a number unparsable, which is what happens here too.
    let s = String::from_utf8_lossy(v);
    let s = s.split_once('+').map_or(&*s, |(a, _)| a);
    let s = s.split_once('-').map_or(s, |(a, _)| a);
    let parts: Vec<&str> = s.splitn(3, '.').collect();
    parts.len() == 3 && parts.iter().all(|p| go_parse_int64(p))
}

/// `strconv.ParseInt(s, 10, 64)` succeeds.
fn go_parse_int64(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && s.parse::<i64>().is_ok()
}

/// The Go type of a struct field, as far as `encoding/json` cares.
#[derive(Debug, Clone, Copy)]
pub(super) enum GoType {
    /// `[]uint64`.
    U64Slice,
    /// `bool`.
    Bool,
    /// `string`.
    String,
}

impl GoType {
    fn name(self) -> &'static str {
        match self {
            GoType::U64Slice => "[]uint64",
            GoType::Bool => "bool",
            GoType::String => "string",
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn fits(t: GoType, v: &Value) -> bool {
    match (t, v) {
        // null leaves a non-pointer field as it is.
        (_, Value::Null) => true,
        (GoType::Bool, Value::Bool(_)) | (GoType::String, Value::String(_)) => true,
        (GoType::U64Slice, Value::Array(items)) => {
            items.iter().all(|i| i.is_null() || i.as_u64().is_some())
        }
        _ => false,
    }
}

/// Whether `json.Unmarshal(value, &s)` succeeds for a struct `name` with
/// these JSON field names and types; the error text otherwise.
///
/// Go replaces invalid UTF-8 inside strings instead of failing, matches
/// field names case-insensitively, ignores unknown fields and accepts
/// `null` anywhere a value is expected.
pub(super) fn go_json_struct(
    value: &[u8],
    name: &str,
    fields: &[(&str, GoType)],
) -> Result<(), String> {
    go_json_struct_value(value, name, fields).map(drop)
}

/// [`go_json_struct`], returning the parsed value for a caller that reads
/// its fields.
pub(super) fn go_json_struct_value(
    value: &[u8],
    name: &str,
    fields: &[(&str, GoType)],
) -> Result<Value, String> {
    let text = String::from_utf8_lossy(value);
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let obj = match &v {
        Value::Null => return Ok(v),
        Value::Object(o) => o,
        other => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type {name}",
                json_kind(other)
            ));
        }
    };
    for (k, val) in obj {
        let field = fields
            .iter()
            .find(|(f, _)| f == k)
            .or_else(|| fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(k)));
        if let Some((f, t)) = field
            && !fits(*t, val)
        {
            return Err(format!(
                "json: cannot unmarshal {} into Go struct field {name}.{f} of type {}",
                json_kind(val),
                t.name()
            ));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver() {
        for ok in ["3.5.0", "3.6.0-alpha.0", "3.4.0+git", "03.5.0"] {
            assert!(go_semver_ok(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "3.5",
            "3.5.-1",
            "v3.5.0",
            "3.5.0.1",
            "3.x.0",
            "3..0",
            "99999999999999999999.0.0",
        ] {
            assert!(!go_semver_ok(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn json_struct() {
        let conf = [
            ("voters", GoType::U64Slice),
            ("learners", GoType::U64Slice),
            ("auto_leave", GoType::Bool),
        ];
        let ok: &[&[u8]] = &[
            br#"{"voters":[1,2],"auto_leave":false}"#,
            b"null",
            br#"{"Voters":[18446744073709551615],"other":"x"}"#,
            br#"{"voters":null,"learners":[null]}"#,
        ];
        for v in ok {
            assert_eq!(go_json_struct(v, "ConfState", &conf), Ok(()), "{v:?}");
        }
        let bad: &[&[u8]] = &[
            b"",
            b"{",
            b"[]",
            br#"{"voters":"1"}"#,
            br#"{"voters":[-1]}"#,
            br#"{"voters":[1.5]}"#,
            br#"{"voters":[18446744073709551616]}"#,
            br#"{"AUTO_LEAVE":1}"#,
            br#"{} x"#,
        ];
        for v in bad {
            assert!(go_json_struct(v, "ConfState", &conf).is_err(), "{v:?}");
        }
    }
}
