//! What Kubernetes stores as etcd values, recognised and decoded from
//! untrusted bytes.
//!
//! * protobuf: `k8s\0` then a `runtime.Unknown` envelope (apiVersion, kind,
//!   the object's own message, content encoding and type); the object's
//!   `ObjectMeta` is read generically from field 1 (the `proto` module);
//! * JSON: custom resources and some older objects, a plain JSON document;
//! * CBOR: the self-describe tag `d9 d9 f7` then a map;
//! * encrypted at rest: `k8s:enc:<provider>:<version>:<key name>:` then
//!   ciphertext, reported as such and never guessed at.
//!
//! Every decoder checks each length against the bytes left, allocates only
//! in proportion to the input, limits nesting, and never panics.
//!
//! ```
//! use etcdsnap::inspect::k8s::{self, Value};
//! let v = k8s::decode(b"k8s:enc:aescbc:v1:key1:\x8a\x00\x13");
//! assert!(matches!(v, Value::Encrypted { ref provider, ref key_name, .. }
//!     if provider == "aescbc" && key_name == "key1"));
//! assert_eq!(k8s::decode(br#"{"kind":"Widget","apiVersion":"x.io/v1"}"#).kind().as_deref(), Some("Widget"));
//! assert!(matches!(k8s::decode(b"plain text"), Value::Other));
//! ```

pub(crate) mod cbor;
pub(crate) mod proto;
mod wire;

use serde_json::{Map, Value as Json, json};

pub use proto::{Envelope, ObjectMeta};

/// The prefix of values encrypted at rest.
pub(crate) const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

/// A recognised value.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    /// A protobuf envelope.
    Protobuf(Box<Envelope<'a>>),
    /// `k8s\0` followed by bytes that are not a well-formed envelope.
    BadProtobuf(String),
    /// A JSON document.
    Json(Json),
    /// A CBOR document, as JSON.
    Cbor(Json),
    /// The self-describe tag followed by malformed CBOR.
    BadCbor(String),
    /// Encrypted at rest.
    Encrypted {
        /// `aescbc`, `aesgcm`, `secretbox`, `kms`...
        provider: String,
        /// The provider's format version (`v1`, `v2`).
        version: String,
        /// The key (or KMS plugin) name.
        key_name: String,
        /// Bytes of ciphertext after the prefix.
        ciphertext_len: usize,
    },
    /// Nothing Kubernetes writes.
    Other,
}

/// Recognises and decodes `value`.
pub fn decode(value: &[u8]) -> Value<'_> {
    if value.starts_with(proto::MAGIC) {
        return match proto::decode_envelope(value) {
            Ok(e) => Value::Protobuf(Box::new(e)),
            Err(e) => Value::BadProtobuf(e.to_string()),
        };
    }
    if let Some(rest) = value.strip_prefix(ENCRYPTED_PREFIX) {
        return encrypted(rest);
    }
    if value.starts_with(cbor::SELF_DESCRIBE) {
        return match cbor::decode(value) {
            Ok(v) => Value::Cbor(v),
            Err(e) => Value::BadCbor(e.to_string()),
        };
    }
    let first = value.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{')
        && let Ok(v) = serde_json::from_slice::<Json>(value)
    {
        return Value::Json(v);
    }
    Value::Other
}

fn encrypted(rest: &[u8]) -> Value<'_> {
    // provider:version:keyname: (the key name cannot hold a colon).
    let mut parts = rest.splitn(4, |&b| b == b':');
    let mut next = || {
        parts
            .next()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    };
    let (provider, version, key_name) = (next(), next(), next());
    let tail = next();
    match (provider, version, key_name, tail) {
        (Some(p), Some(v), Some(k), Some(t)) => Value::Encrypted {
            provider: p,
            version: v,
            key_name: k,
            ciphertext_len: t.len(),
        },
        _ => Value::Encrypted {
            provider: String::new(),
            version: String::new(),
            key_name: String::new(),
            ciphertext_len: rest.len(),
        },
    }
}

impl Value<'_> {
    /// The object's kind, when the value says it.
    pub fn kind(&self) -> Option<String> {
        match self {
            Value::Protobuf(e) if !e.kind.is_empty() => Some(e.kind.to_string()),
            Value::Json(v) | Value::Cbor(v) => v.get("kind")?.as_str().map(str::to_owned),
            _ => None,
        }
    }

    /// A short name for the encoding: `protobuf`, `json`, `cbor`,
    /// `encrypted`, or `other`.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Protobuf(_) | Value::BadProtobuf(_) => "protobuf",
            Value::Json(_) => "json",
            Value::Cbor(_) | Value::BadCbor(_) => "cbor",
            Value::Encrypted { .. } => "encrypted",
            Value::Other => "other",
        }
    }

    /// The kind, or what stands in for it when grouping by kind:
    /// `(encrypted)`, `(unknown)`, `(not kubernetes)`.
    pub fn kind_label(&self) -> String {
        match (self.kind(), self) {
            (Some(k), _) => k,
            (None, Value::Encrypted { .. }) => "(encrypted)".into(),
            (None, Value::Other) => "(not kubernetes)".into(),
            (None, _) => "(unknown)".into(),
        }
    }

    /// A JSON rendering: for protobuf the envelope and the metadata; for
    /// JSON and CBOR the whole object; for encrypted values the provider and
    /// key. `None` for [`Value::Other`].
    pub fn to_json(&self) -> Option<Json> {
        Some(match self {
            Value::Protobuf(e) => {
                let mut o = Map::new();
                o.insert("encoding".into(), json!("protobuf"));
                o.insert("apiVersion".into(), json!(e.api_version));
                o.insert("kind".into(), json!(e.kind));
                if !e.content_encoding.is_empty() {
                    o.insert("contentEncoding".into(), json!(e.content_encoding));
                }
                if !e.content_type.is_empty() {
                    o.insert("contentType".into(), json!(e.content_type));
                }
                if let Some(m) = &e.metadata {
                    o.insert("metadata".into(), meta_json(m));
                }
                o.insert("rawBytes".into(), json!(e.raw.len()));
                Json::Object(o)
            }
            Value::BadProtobuf(err) => json!({"encoding": "protobuf", "error": err}),
            Value::Json(v) => v.clone(),
            Value::Cbor(v) => v.clone(),
            Value::BadCbor(err) => json!({"encoding": "cbor", "error": err}),
            Value::Encrypted {
                provider,
                version,
                key_name,
                ciphertext_len,
            } => json!({"encrypted": {
                "provider": provider, "version": version, "key": key_name,
                "ciphertextBytes": ciphertext_len
            }}),
            Value::Other => return None,
        })
    }
}

fn meta_json(m: &ObjectMeta<'_>) -> Json {
    let mut o = Map::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            o.insert(k.into(), json!(v));
        }
    };
    put("name", &m.name);
    put("generateName", &m.generate_name);
    put("namespace", &m.namespace);
    put("uid", &m.uid);
    put("resourceVersion", &m.resource_version);
    if m.generation != 0 {
        o.insert("generation".into(), json!(m.generation));
    }
    let secs = crate::go::time::unix_secs;
    if let Some(t) = m.creation_timestamp {
        o.insert("creationTimestamp".into(), json!(proto::rfc3339(secs(t))));
    }
    if let Some(t) = m.deletion_timestamp {
        o.insert("deletionTimestamp".into(), json!(proto::rfc3339(secs(t))));
    }
    if !m.labels.is_empty() {
        let labels: Map<String, Json> = m
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        o.insert("labels".into(), Json::Object(labels));
    }
    if m.annotations > 0 {
        o.insert("annotationCount".into(), json!(m.annotations));
    }
    if m.owner_references > 0 {
        o.insert("ownerReferenceCount".into(), json!(m.owner_references));
    }
    if !m.finalizers.is_empty() {
        o.insert("finalizers".into(), json!(m.finalizers));
    }
    Json::Object(o)
}
