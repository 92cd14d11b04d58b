//! `etcdctl get -w simple|json|fields|protobuf`, byte for byte.
//!
//! * simple: key and value on lines of their own, raw bytes (or `\xNN`
//!   escapes with `--hex`), only the values with `--print-value-only`;
//! * json: Go's `json.Marshal` of the `RangeResponse` (byte strings in
//!   base64, zero fields left out);
//! * fields: `"Name" : value` lines, byte strings quoted as Go's `%q`;
//! * protobuf: the marshalled `RangeResponse`, no newline.

use std::fmt::Write as _;

use prost::Message;

use etcdsnap::TargetVersion;
use etcdsnap::etcd::{KeyValue, KeyValueRef};
use etcdsnap::internal::go::quote::quote as go_quote;
use etcdsnap::mvcc::RangeResponse;

/// `etcdserverpb.ResponseHeader`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ResponseHeader {
    /// The cluster ID.
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    /// The ID of the member that answered.
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    /// The store's current revision.
    #[prost(int64, tag = "3")]
    pub revision: i64,
    /// The raft term.
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
}

/// `etcdserverpb.RangeResponse`, for the protobuf output.
#[derive(Clone, PartialEq, prost::Message)]
struct RangeResponsePb {
    #[prost(message, optional, tag = "1")]
    header: Option<ResponseHeader>,
    #[prost(message, repeated, tag = "2")]
    kvs: Vec<KeyValue>,
    #[prost(bool, tag = "3")]
    more: bool,
    #[prost(int64, tag = "4")]
    count: i64,
}

/// etcdctl's simple output: for each key-value the key, then the value,
/// each on a line of its own (only the value when `value_only`); with
/// `hex`, every byte as `\xNN`.
pub fn simple(resp: &RangeResponse<'_>, hex: bool, value_only: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for kv in &resp.kvs {
        if !value_only {
            push_bytes(&mut out, kv.key, hex);
        }
        push_bytes(&mut out, kv.value, hex);
    }
    out
}

fn push_bytes(out: &mut Vec<u8>, b: &[u8], hex: bool) {
    if hex {
        for x in b {
            let _ = write!(HexSink(out), "\\x{x:02x}");
        }
    } else {
        out.extend_from_slice(b);
    }
    out.push(b'\n');
}

struct HexSink<'o>(&'o mut Vec<u8>);
impl std::fmt::Write for HexSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// etcdctl's JSON output (one line).
pub fn json(resp: &RangeResponse<'_>, header: &ResponseHeader) -> String {
    json_with(resp, header, |_| None)
}

/// [`json`] with `extra(kv)`, when it gives something, added to each
/// key-value object as a last member (`"name":value`, already encoded).
pub fn json_with(
    resp: &RangeResponse<'_>,
    header: &ResponseHeader,
    extra: impl Fn(&KeyValueRef<'_>) -> Option<String>,
) -> String {
    let mut s = String::with_capacity(128 + resp.kvs.len() * 64);
    s.push_str("{\"header\":{");
    let mut fields = Vec::new();
    if header.cluster_id != 0 {
        fields.push(format!("\"cluster_id\":{}", header.cluster_id));
    }
    if header.member_id != 0 {
        fields.push(format!("\"member_id\":{}", header.member_id));
    }
    if header.revision != 0 {
        fields.push(format!("\"revision\":{}", header.revision));
    }
    if header.raft_term != 0 {
        fields.push(format!("\"raft_term\":{}", header.raft_term));
    }
    s.push_str(&fields.join(","));
    s.push('}');
    if !resp.kvs.is_empty() {
        s.push_str(",\"kvs\":[");
        for (i, kv) in resp.kvs.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            kv_json(&mut s, kv);
            if let Some(x) = extra(kv) {
                s.pop();
                if !s.ends_with('{') {
                    s.push(',');
                }
                s.push_str(&x);
                s.push('}');
            }
        }
        s.push(']');
    }
    if resp.more {
        s.push_str(",\"more\":true");
    }
    if resp.count != 0 {
        let _ = write!(s, ",\"count\":{}", resp.count);
    }
    s.push_str("}\n");
    s
}

/// One `mvccpb.KeyValue` as Go's `json.Marshal` writes it.
pub fn kv_json(s: &mut String, kv: &KeyValueRef<'_>) {
    let mut parts: Vec<String> = Vec::with_capacity(6);
    if !kv.key.is_empty() {
        parts.push(format!("\"key\":\"{}\"", base64(kv.key)));
    }
    for (name, v) in [
        ("create_revision", kv.create_revision),
        ("mod_revision", kv.mod_revision),
        ("version", kv.version),
    ] {
        if v != 0 {
            parts.push(format!("\"{name}\":{v}"));
        }
    }
    if !kv.value.is_empty() {
        parts.push(format!("\"value\":\"{}\"", base64(kv.value)));
    }
    if kv.lease != 0 {
        parts.push(format!("\"lease\":{}", kv.lease));
    }
    s.push('{');
    s.push_str(&parts.join(","));
    s.push('}');
}

/// etcdctl's fields output. Go's `%q` differs between the Go releases that
/// built the reference binaries (DEL), hence `rules`.
pub fn fields(resp: &RangeResponse<'_>, header: &ResponseHeader, rules: TargetVersion) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\"ClusterID\" : {}", header.cluster_id);
    let _ = writeln!(s, "\"MemberID\" : {}", header.member_id);
    if header.revision > 0 {
        let _ = writeln!(s, "\"Revision\" : {}", header.revision);
    }
    let _ = writeln!(s, "\"RaftTerm\" : {}", header.raft_term);
    for kv in &resp.kvs {
        let _ = writeln!(
            s,
            "\"Key\" : {}",
            go_quote(kv.key, etcdsnap::internal::go::release_of(rules))
        );
        let _ = writeln!(s, "\"CreateRevision\" : {}", kv.create_revision);
        let _ = writeln!(s, "\"ModRevision\" : {}", kv.mod_revision);
        let _ = writeln!(s, "\"Version\" : {}", kv.version);
        let _ = writeln!(
            s,
            "\"Value\" : {}",
            go_quote(kv.value, etcdsnap::internal::go::release_of(rules))
        );
        let _ = writeln!(s, "\"Lease\" : {}", kv.lease);
    }
    let _ = writeln!(s, "\"More\" : {}", resp.more);
    let _ = writeln!(s, "\"Count\" : {}", resp.count);
    s
}

/// etcdctl's protobuf output: the marshalled `RangeResponse`.
pub fn protobuf(resp: &RangeResponse<'_>, header: &ResponseHeader) -> Vec<u8> {
    let pb = RangeResponsePb {
        header: Some(*header),
        kvs: resp
            .kvs
            .iter()
            .map(|kv| KeyValue {
                key: kv.key.to_vec(),
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
                version: kv.version,
                value: kv.value.to_vec(),
                lease: kv.lease,
            })
            .collect(),
        more: resp.more,
        count: resp.count,
    };
    pb.encode_to_vec()
}

/// Standard base64 with padding, as Go's `json.Marshal` writes `[]byte`.
pub fn base64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
