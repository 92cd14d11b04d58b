//! The Kubernetes protobuf encoding: the `k8s\0` magic, the
//! `runtime.Unknown` envelope, and the `ObjectMeta` every built-in object
//! carries as field 1 of its own message. Decoded generically from the wire
//! with the field numbers of `k8s.io/apimachinery`, so no generated types
//! are needed and unknown kinds decode too.

use std::borrow::Cow;
use std::time::SystemTime;

use super::wire::{self, Wire, WireError};

/// The 4-byte prefix of protobuf-encoded values.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// A decoded `runtime.Unknown` envelope.
#[derive(Debug, Clone, Default)]
pub struct Envelope<'a> {
    /// `typeMeta.apiVersion`.
    pub api_version: Cow<'a, str>,
    /// `typeMeta.kind`.
    pub kind: Cow<'a, str>,
    /// `raw`: the object's own message.
    pub raw: &'a [u8],
    /// `contentEncoding` (usually empty).
    pub content_encoding: Cow<'a, str>,
    /// `contentType` (usually empty).
    pub content_type: Cow<'a, str>,
    /// The object's metadata, when `raw` starts with a well-formed
    /// `ObjectMeta` at field 1.
    pub metadata: Option<ObjectMeta<'a>>,
}

/// The fields of `metav1.ObjectMeta` worth showing.
#[derive(Debug, Clone, Default)]
pub struct ObjectMeta<'a> {
    /// 1 `name`.
    pub name: Cow<'a, str>,
    /// 2 `generateName`.
    pub generate_name: Cow<'a, str>,
    /// 3 `namespace`.
    pub namespace: Cow<'a, str>,
    /// 5 `uid`.
    pub uid: Cow<'a, str>,
    /// 6 `resourceVersion`.
    pub resource_version: Cow<'a, str>,
    /// 7 `generation`.
    pub generation: i64,
    /// 8 `creationTimestamp`.
    pub creation_timestamp: Option<SystemTime>,
    /// 9 `deletionTimestamp`.
    pub deletion_timestamp: Option<SystemTime>,
    /// 11 `labels`, in wire order.
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// 12 `annotations`: how many.
    pub annotations: usize,
    /// 13 `ownerReferences`: how many.
    pub owner_references: usize,
    /// 14 `finalizers`.
    pub finalizers: Vec<Cow<'a, str>>,
}

fn text(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Decodes a value that starts with [`MAGIC`]; `Err` when the envelope is
/// not a well-formed `runtime.Unknown`.
pub fn decode_envelope(value: &[u8]) -> Result<Envelope<'_>, WireError> {
    let body = value.strip_prefix(&MAGIC[..]).unwrap_or(value);
    let mut env = Envelope::default();
    for f in wire::fields(body) {
        match f? {
            (1, Wire::Bytes(tm)) => {
                for g in wire::fields(tm) {
                    match g? {
                        (1, Wire::Bytes(v)) => env.api_version = text(v),
                        (2, Wire::Bytes(v)) => env.kind = text(v),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(v)) => env.raw = v,
            (3, Wire::Bytes(v)) => env.content_encoding = text(v),
            (4, Wire::Bytes(v)) => env.content_type = text(v),
            _ => {}
        }
    }
    env.metadata = object_meta_of(env.raw);
    Ok(env)
}

/// The `ObjectMeta` at field 1 of an object's message, if it decodes.
pub fn object_meta_of(raw: &[u8]) -> Option<ObjectMeta<'_>> {
    let mut meta = None;
    for f in wire::fields(raw) {
        match f.ok()? {
            (1, Wire::Bytes(m)) => meta = Some(m),
            (1, _) => return None,
            _ => {}
        }
    }
    decode_object_meta(meta?).ok()
}

/// Decodes an `ObjectMeta` message.
pub fn decode_object_meta(b: &[u8]) -> Result<ObjectMeta<'_>, WireError> {
    let mut m = ObjectMeta::default();
    for f in wire::fields(b) {
        match f? {
            (1, Wire::Bytes(v)) => m.name = text(v),
            (2, Wire::Bytes(v)) => m.generate_name = text(v),
            (3, Wire::Bytes(v)) => m.namespace = text(v),
            (5, Wire::Bytes(v)) => m.uid = text(v),
            (6, Wire::Bytes(v)) => m.resource_version = text(v),
            (7, Wire::Varint(v)) => m.generation = v as i64,
            (8, Wire::Bytes(v)) => m.creation_timestamp = timestamp(v)?,
            (9, Wire::Bytes(v)) => m.deletion_timestamp = timestamp(v)?,
            (11, Wire::Bytes(v)) => m.labels.push(map_entry(v)?),
            (12, Wire::Bytes(_)) => m.annotations += 1,
            (13, Wire::Bytes(_)) => m.owner_references += 1,
            (14, Wire::Bytes(v)) => m.finalizers.push(text(v)),
            _ => {}
        }
    }
    Ok(m)
}

/// `metav1.Time`: 1 seconds, 2 nanos (a nanos field outside 0..1e9 is
/// clamped into it); `None` only where `SystemTime` cannot hold it.
fn timestamp(b: &[u8]) -> Result<Option<SystemTime>, WireError> {
    let (mut s, mut n) = (0i64, 0i32);
    for f in wire::fields(b) {
        match f? {
            (1, Wire::Varint(v)) => s = v as i64,
            (2, Wire::Varint(v)) => n = v as i32,
            _ => {}
        }
    }
    Ok(crate::go::time::from_unix(s, u32::try_from(n).unwrap_or(0)))
}

/// A `map<string,string>` entry: 1 key, 2 value.
fn map_entry(b: &[u8]) -> Result<(Cow<'_, str>, Cow<'_, str>), WireError> {
    let (mut k, mut v) = (Cow::Borrowed(""), Cow::Borrowed(""));
    for f in wire::fields(b) {
        match f? {
            (1, Wire::Bytes(x)) => k = text(x),
            (2, Wire::Bytes(x)) => v = text(x),
            _ => {}
        }
    }
    Ok((k, v))
}

/// A `metav1.Time` as Kubernetes writes it in JSON: RFC 3339 in UTC, whole
/// seconds (`2024-05-01T10:20:30Z`).
pub fn rfc3339(secs: i64) -> String {
    crate::go::time::rfc3339_utc(secs)
}

#[cfg(test)]
mod rfc3339_tests {
    #[test]
    fn whole_seconds_in_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1714558830), "2024-05-01T10:20:30Z");
        assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
