//! Kubernetes values built by hand from the protobuf wire format (field
//! numbers of `runtime.Unknown`, `TypeMeta` and `ObjectMeta` in
//! k8s.io/apimachinery), and the other encodings an API server writes, for
//! tests of the value decoders. Independent of etcdsnap's own decoders.

/// A protobuf varint.
pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A length-delimited field.
pub fn bytes_field(field: u32, b: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(field) << 3 | 2, out);
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

/// A varint field.
pub fn varint_field(field: u32, v: u64, out: &mut Vec<u8>) {
    varint(u64::from(field) << 3, out);
    varint(v, out);
}

/// What goes into a test object's metadata.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// name
    pub name: String,
    /// namespace
    pub namespace: String,
    /// uid
    pub uid: String,
    /// resourceVersion
    pub resource_version: String,
    /// creationTimestamp seconds
    pub created: Option<i64>,
    /// labels
    pub labels: Vec<(String, String)>,
    /// annotations
    pub annotations: Vec<(String, String)>,
}

/// An `ObjectMeta` message.
pub fn object_meta(m: &Meta) -> Vec<u8> {
    let mut o = Vec::new();
    bytes_field(1, m.name.as_bytes(), &mut o);
    if !m.namespace.is_empty() {
        bytes_field(3, m.namespace.as_bytes(), &mut o);
    }
    bytes_field(5, m.uid.as_bytes(), &mut o);
    bytes_field(6, m.resource_version.as_bytes(), &mut o);
    varint_field(7, 1, &mut o);
    if let Some(s) = m.created {
        let mut t = Vec::new();
        varint_field(1, s as u64, &mut t);
        bytes_field(8, &t, &mut o);
    }
    for (field, map) in [(11, &m.labels), (12, &m.annotations)] {
        for (k, v) in map {
            let mut e = Vec::new();
            bytes_field(1, k.as_bytes(), &mut e);
            bytes_field(2, v.as_bytes(), &mut e);
            bytes_field(field, &e, &mut o);
        }
    }
    o
}

/// A stored protobuf value: `k8s\0` + `runtime.Unknown{typeMeta, raw}`,
/// where `raw` is an object message with the metadata at field 1 and some
/// spec bytes at field 2.
pub fn protobuf_value(api_version: &str, kind: &str, m: &Meta, spec: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    bytes_field(1, &object_meta(m), &mut raw);
    bytes_field(2, spec, &mut raw);
    let mut tm = Vec::new();
    bytes_field(1, api_version.as_bytes(), &mut tm);
    bytes_field(2, kind.as_bytes(), &mut tm);
    let mut u = b"k8s\0".to_vec();
    bytes_field(1, &tm, &mut u);
    bytes_field(2, &raw, &mut u);
    bytes_field(3, b"", &mut u);
    bytes_field(4, b"", &mut u);
    u
}

/// A JSON value as the API server writes custom resources.
pub fn json_value(api_version: &str, kind: &str, name: &str, namespace: &str) -> Vec<u8> {
    format!(
        "{{\"apiVersion\":\"{api_version}\",\"kind\":\"{kind}\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{namespace}\",\"uid\":\"u-{name}\"}},\"spec\":{{\"replicas\":3}}}}\n"
    )
    .into_bytes()
}

fn cbor_head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn cbor_bytes(s: &str, out: &mut Vec<u8>) {
    // Kubernetes writes Go strings as CBOR byte strings.
    cbor_head(2, s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

/// A CBOR value: self-describe tag, then
/// `{apiVersion, kind, metadata: {name, namespace}}`.
pub fn cbor_value(api_version: &str, kind: &str, name: &str, namespace: &str) -> Vec<u8> {
    let mut o = vec![0xd9, 0xd9, 0xf7];
    cbor_head(5, 3, &mut o);
    cbor_bytes("apiVersion", &mut o);
    cbor_bytes(api_version, &mut o);
    cbor_bytes("kind", &mut o);
    cbor_bytes(kind, &mut o);
    cbor_bytes("metadata", &mut o);
    cbor_head(5, 2, &mut o);
    cbor_bytes("name", &mut o);
    cbor_bytes(name, &mut o);
    cbor_bytes("namespace", &mut o);
    cbor_bytes(namespace, &mut o);
    o
}

/// An encrypted-at-rest value: `k8s:enc:<provider>:v1:<key>:` + ciphertext.
pub fn encrypted_value(provider: &str, key: &str, ciphertext: &[u8]) -> Vec<u8> {
    let mut o = format!("k8s:enc:{provider}:v1:{key}:").into_bytes();
    o.extend_from_slice(ciphertext);
    o
}
