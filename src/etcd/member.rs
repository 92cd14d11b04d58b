//! etcd's membership record (`membership.Member`) and its JSON forms.
//!
//! The same JSON is written in the `ConfChange` context of the WAL, in the
//! `members` bucket of the backend and (split in two) in the v2 store inside
//! the `.snap` file. It is produced by Go's `encoding/json`, so field order,
//! `omitempty` rules and string escaping follow Go:
//!
//! ```text
//! {"id":<decimal u64>,"peerURLs":[...],"isLearner":true,"name":"...","clientURLs":[...]}
//! ```
//!
//! where `isLearner` appears only when true, `name` only when non-empty and
//! `clientURLs` only when non-empty.

use crate::etcd::TargetVersion;
use crate::go::GoRelease;
use crate::go::json::write_str;

/// One cluster member as etcd records it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Member {
    /// Member ID (see `etcd::ids::member_id`).
    pub id: u64,
    /// The member's name (`--name`); may be empty.
    pub name: String,
    /// Canonical peer URLs, sorted bytewise.
    pub peer_urls: Vec<String>,
    /// Client URLs; always empty for members created by a restore.
    pub client_urls: Vec<String>,
    /// Whether the member is a raft learner; never true after a restore.
    pub is_learner: bool,
}

/// Why a stored member record could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemberJsonError {
    /// The bytes are not JSON.
    #[error("member record is not valid JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// The JSON is not an object.
    #[error("member record is not a JSON object")]
    NotAnObject,
    /// A known field has the wrong JSON type (Go's `json.Unmarshal` fails the
    /// same way).
    #[error("member record field {field:?} must be {expected}")]
    FieldType {
        /// The field as spelled in the record.
        field: String,
        /// What Go's decoder expects there.
        expected: &'static str,
    },
}

fn push_string_array(out: &mut String, items: &[String], go: GoRelease) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, item.as_bytes(), go);
    }
    out.push(']');
}

impl Member {
    /// Creates a voting member with no client URLs, as restore does.
    pub fn new(id: u64, name: impl Into<String>, peer_urls: Vec<String>) -> Member {
        Member {
            id,
            name: name.into(),
            peer_urls,
            client_urls: Vec::new(),
            is_learner: false,
        }
    }

    /// Go's `json.Marshal` of etcd's `Member`, compact, no trailing
    /// newline, with the string escaping of the Go release that built
    /// `version`'s etcd (Go 1.22 changed how backspace and form feed are
    /// escaped).
    ///
    /// An empty `peer_urls` is written as `[]` (Go writes `null` only for a
    /// nil slice, which etcd never marshals).
    ///
    /// ```
    /// use etcdsnap::etcd::Member;
    /// use etcdsnap::TargetVersion;
    /// let m = Member::new(10276657743932975437, "default", vec!["http://localhost:2380".into()]);
    /// assert_eq!(
    ///     m.to_json(TargetVersion::V3_5),
    ///     r#"{"id":10276657743932975437,"peerURLs":["http://localhost:2380"],"name":"default"}"#
    /// );
    /// let m = Member::new(1, "a\u{8}", vec![]);
    /// assert_eq!(m.to_json(TargetVersion::V3_5), r#"{"id":1,"peerURLs":[],"name":"a\u0008"}"#);
    /// assert_eq!(m.to_json(TargetVersion::V3_6), r#"{"id":1,"peerURLs":[],"name":"a\b"}"#);
    /// ```
    pub fn to_json(&self, version: TargetVersion) -> String {
        let go = version.go_release();
        let mut out = String::with_capacity(64 + self.name.len());
        out.push_str("{\"id\":");
        out.push_str(&self.id.to_string());
        out.push_str(",\"peerURLs\":");
        push_string_array(&mut out, &self.peer_urls, go);
        if self.is_learner {
            out.push_str(",\"isLearner\":true");
        }
        if !self.name.is_empty() {
            out.push_str(",\"name\":");
            write_str(&mut out, self.name.as_bytes(), go);
        }
        if !self.client_urls.is_empty() {
            out.push_str(",\"clientURLs\":");
            push_string_array(&mut out, &self.client_urls, go);
        }
        out.push('}');
        out
    }

    /// Go's `json.Marshal` of the member's `RaftAttributes`, the value etcd
    /// stores at `/0/members/<hex id>/raftAttributes` in the v2 store.
    ///
    /// ```
    /// use etcdsnap::etcd::Member;
    /// use etcdsnap::TargetVersion;
    /// let m = Member::new(1, "n", vec!["http://a:1".into(), "http://b:1".into()]);
    /// assert_eq!(
    ///     m.raft_attributes_json(TargetVersion::V3_5),
    ///     r#"{"peerURLs":["http://a:1","http://b:1"]}"#
    /// );
    /// ```
    pub fn raft_attributes_json(&self, version: TargetVersion) -> String {
        let go = version.go_release();
        let mut out = String::from("{\"peerURLs\":");
        push_string_array(&mut out, &self.peer_urls, go);
        if self.is_learner {
            out.push_str(",\"isLearner\":true");
        }
        out.push('}');
        out
    }

    /// Go's `json.Marshal` of the member's `Attributes` (`name`,
    /// `clientURLs`, both `omitempty`), the value etcd stores at
    /// `/0/members/<hex id>/attributes` once a member has published them.
    ///
    /// ```
    /// use etcdsnap::etcd::Member;
    /// use etcdsnap::TargetVersion;
    /// let v = TargetVersion::V3_5;
    /// assert_eq!(Member::new(1, "", vec![]).attributes_json(v), "{}");
    /// assert_eq!(Member::new(1, "a&b", vec![]).attributes_json(v), r#"{"name":"a\u0026b"}"#);
    /// ```
    pub fn attributes_json(&self, version: TargetVersion) -> String {
        let go = version.go_release();
        let mut out = String::from("{");
        if !self.name.is_empty() {
            out.push_str("\"name\":");
            write_str(&mut out, self.name.as_bytes(), go);
        }
        if !self.client_urls.is_empty() {
            if !self.name.is_empty() {
                out.push(',');
            }
            out.push_str("\"clientURLs\":");
            push_string_array(&mut out, &self.client_urls, go);
        }
        out.push('}');
        out
    }

    /// Reads a member record as stored in a backend's `members` bucket.
    ///
    /// Tolerant in the way Go's `json.Unmarshal` is: unknown fields are
    /// ignored, missing fields and JSON `null` leave the zero value, and keys
    /// match ASCII-case-insensitively. Wrong types, an `id` that is not an
    /// unsigned 64-bit integer, non-JSON and non-objects are errors, never
    /// panics. One difference from Go: when a record spells a field in
    /// several cases (`"id"` and `"ID"`), Go lets the last in document order
    /// win; here the exact spelling wins (etcd never writes such records).
    ///
    /// ```
    /// use etcdsnap::etcd::Member;
    /// let m = Member::from_json(br#"{"id":5,"peerURLs":["http://a:1"],"name":"x","extra":1}"#)?;
    /// assert_eq!((m.id, m.name.as_str(), m.is_learner), (5, "x", false));
    /// assert!(Member::from_json(b"\x00garbage").is_err());
    /// # Ok::<(), etcdsnap::etcd::MemberJsonError>(())
    /// ```
    pub fn from_json(bytes: &[u8]) -> Result<Member, MemberJsonError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)?;
        let serde_json::Value::Object(object) = value else {
            return Err(MemberJsonError::NotAnObject);
        };
        const FIELDS: [&str; 5] = ["id", "peerURLs", "isLearner", "name", "clientURLs"];
        let mut member = Member::default();
        // Go takes, per field, the last key that matches it: exactly if any
        // key does, else case-insensitively.
        for field in FIELDS {
            let exact = object.get(field);
            let chosen = exact.or_else(|| {
                object
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(field))
                    .map(|(_, v)| v)
                    .next_back()
            });
            let Some(value) = chosen else { continue };
            if value.is_null() {
                continue;
            }
            let type_err = |expected| MemberJsonError::FieldType {
                field: field.to_owned(),
                expected,
            };
            match field {
                "id" => {
                    member.id = value
                        .as_u64()
                        .ok_or_else(|| type_err("an unsigned 64-bit integer"))?;
                }
                "isLearner" => {
                    member.is_learner = value.as_bool().ok_or_else(|| type_err("a boolean"))?;
                }
                "name" => {
                    member.name = value
                        .as_str()
                        .ok_or_else(|| type_err("a string"))?
                        .to_owned();
                }
                _ => {
                    let list = string_list(value).ok_or_else(|| type_err("an array of strings"))?;
                    if field == "peerURLs" {
                        member.peer_urls = list;
                    } else {
                        member.client_urls = list;
                    }
                }
            }
        }
        Ok(member)
    }
}

/// A JSON array of strings (`null` elements decode to `""`, as in Go).
fn string_list(value: &serde_json::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| match item {
            serde_json::Value::Null => Some(String::new()),
            other => other.as_str().map(str::to_owned),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: TargetVersion = TargetVersion::V3_5;
    const NEW: TargetVersion = TargetVersion::V3_6;

    #[test]
    fn json_field_order_and_omission() {
        let mut m = Member::new(1, "", vec!["http://a:1".into()]);
        assert_eq!(m.to_json(OLD), r#"{"id":1,"peerURLs":["http://a:1"]}"#);
        m.is_learner = true;
        m.name = "n".into();
        m.client_urls = vec!["http://c:1".into(), "http://d:1".into()];
        assert_eq!(
            m.to_json(OLD),
            r#"{"id":1,"peerURLs":["http://a:1"],"isLearner":true,"name":"n","clientURLs":["http://c:1","http://d:1"]}"#
        );
        assert_eq!(
            m.raft_attributes_json(OLD),
            r#"{"peerURLs":["http://a:1"],"isLearner":true}"#
        );
        assert_eq!(
            m.attributes_json(OLD),
            r#"{"name":"n","clientURLs":["http://c:1","http://d:1"]}"#
        );
        m.name.clear();
        assert_eq!(
            m.attributes_json(OLD),
            r#"{"clientURLs":["http://c:1","http://d:1"]}"#
        );
        assert_eq!(
            Member::new(u64::MAX, "", vec![]).to_json(OLD),
            r#"{"id":18446744073709551615,"peerURLs":[]}"#
        );
    }

    #[test]
    fn go_escaping_of_names_and_urls() {
        let m = Member::new(7, "a<b&c>\"é", vec!["http://h:1?<x>&y".into()]);
        assert_eq!(
            m.to_json(OLD),
            r#"{"id":7,"peerURLs":["http://h:1?\u003cx\u003e\u0026y"],"name":"a\u003cb\u0026c\u003e\"é"}"#
        );
        let m = Member::new(7, " a\tb\\\u{2028}\u{1}", vec![]);
        assert_eq!(
            m.to_json(OLD),
            r#"{"id":7,"peerURLs":[],"name":" a\tb\\\u2028\u0001"}"#
        );
    }

    #[test]
    fn go122_escapes_backspace_and_form_feed_short() {
        let m = Member::new(1, "\u{8}a\u{c}<\u{1}\u{8}", vec!["u\u{c}".into()]);
        assert_eq!(
            m.to_json(NEW),
            r#"{"id":1,"peerURLs":["u\f"],"name":"\ba\f\u003c\u0001\b"}"#
        );
        assert_eq!(
            m.to_json(OLD),
            r#"{"id":1,"peerURLs":["u\u000c"],"name":"\u0008a\u000c\u003c\u0001\u0008"}"#
        );
        assert_eq!(m.raft_attributes_json(NEW), r#"{"peerURLs":["u\f"]}"#);
        assert_eq!(m.attributes_json(NEW), r#"{"name":"\ba\f\u003c\u0001\b"}"#);
    }

    #[test]
    fn parse_round_trip() {
        let m = Member {
            id: 0x8e9e05c52164694d,
            name: "a<b>\"é\u{2028}".into(),
            peer_urls: vec!["http://a:1".into(), "http://b:2".into()],
            client_urls: vec!["http://c:3".into()],
            is_learner: true,
        };
        assert_eq!(Member::from_json(m.to_json(OLD).as_bytes()).ok(), Some(m));
    }

    #[test]
    fn parse_is_tolerant_like_go() {
        let m = Member::from_json(
            br#"{"ID":3,"PEERURLS":["u",null],"name":null,"IsLearner":false,"x":[1]}"#,
        );
        let m = m.ok();
        assert_eq!(m.as_ref().map(|m| m.id), Some(3));
        assert_eq!(
            m.as_ref().map(|m| m.peer_urls.clone()),
            Some(vec!["u".to_owned(), String::new()])
        );
        assert_eq!(m.map(|m| m.name), Some(String::new()));
        // An exact key wins over a case-insensitive one, wherever it is.
        let m = Member::from_json(br#"{"id":1,"Id":2}"#).ok();
        assert_eq!(m.map(|m| m.id), Some(1));
        assert_eq!(Member::from_json(b"{}").ok(), Some(Member::default()));
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in [
            &b""[..],
            b"\xff\xfe",
            b"[]",
            b"12",
            b"{\"id\":-1}",
            b"{\"id\":1.5}",
            b"{\"id\":1e3}",
            b"{\"id\":18446744073709551616}",
            b"{\"id\":\"1\"}",
            b"{\"peerURLs\":\"http://a:1\"}",
            b"{\"peerURLs\":[1]}",
            b"{\"isLearner\":1}",
            b"{\"name\":{}}",
            b"{\"id\":1",
        ] {
            assert!(Member::from_json(bad).is_err(), "accepted {bad:?}");
        }
    }
}
