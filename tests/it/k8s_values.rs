//! The Kubernetes value decoders on values built from the wire format by
//! the test (`support::k8swire`), and on damaged copies of them.

use crate::support;

use etcdsnap::inspect::k8s::{self, Value};
use support::k8swire::{self, Meta};

fn pod_meta() -> Meta {
    Meta {
        name: "web-0".into(),
        namespace: "shop".into(),
        uid: "7d6f1c2e-0000-4000-8000-000000000001".into(),
        resource_version: "12345".into(),
        created: Some(1_714_558_830),
        labels: vec![
            ("app".into(), "web".into()),
            ("tier".into(), "front".into()),
        ],
        annotations: vec![("note".into(), "x".into())],
    }
}

#[test]
fn protobuf_envelope_and_object_meta() {
    let v = k8swire::protobuf_value("v1", "Pod", &pod_meta(), b"\x0a\x03abc");
    let Value::Protobuf(e) = k8s::decode(&v) else {
        panic!("not recognised as protobuf: {:?}", k8s::decode(&v));
    };
    assert_eq!((&*e.api_version, &*e.kind), ("v1", "Pod"));
    let m = e.metadata.as_ref().expect("metadata");
    assert_eq!((&*m.name, &*m.namespace), ("web-0", "shop"));
    assert_eq!(&*m.uid, "7d6f1c2e-0000-4000-8000-000000000001");
    assert_eq!(&*m.resource_version, "12345");
    let created = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_714_558_830);
    assert_eq!(m.creation_timestamp, Some(created));
    assert_eq!(m.labels.len(), 2);
    assert_eq!(m.annotations, 1);
    let j = k8s::decode(&v).to_json().expect("json");
    assert_eq!(j["kind"], "Pod");
    assert_eq!(j["metadata"]["creationTimestamp"], "2024-05-01T10:20:30Z");
    assert_eq!(j["metadata"]["labels"]["tier"], "front");
    assert_eq!(k8s::decode(&v).kind_label(), "Pod");
}

#[test]
fn cluster_scoped_and_grouped_kinds() {
    let m = Meta {
        name: "node-1".into(),
        ..Meta::default()
    };
    let v = k8swire::protobuf_value("coordination.k8s.io/v1", "Lease", &m, b"");
    let j = k8s::decode(&v).to_json().expect("json");
    assert_eq!(j["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(j["metadata"]["name"], "node-1");
    assert!(j["metadata"].get("namespace").is_none());
}

#[test]
fn json_cbor_and_encrypted() {
    let j = k8swire::json_value("stable.example.com/v1", "CronTab", "ct", "ns1");
    assert!(matches!(k8s::decode(&j), Value::Json(_)));
    assert_eq!(k8s::decode(&j).kind().as_deref(), Some("CronTab"));
    assert_eq!(
        k8s::decode(&j).to_json().expect("json")["spec"]["replicas"],
        3
    );

    let c = k8swire::cbor_value("apps/v1", "Deployment", "d", "ns2");
    let d = k8s::decode(&c);
    assert_eq!(d.encoding(), "cbor");
    let cj = d.to_json().expect("json");
    assert_eq!(cj["kind"], "Deployment");
    assert_eq!(cj["metadata"]["namespace"], "ns2");

    for provider in ["aescbc", "aesgcm", "secretbox", "kms"] {
        let e = k8swire::encrypted_value(provider, "key-2024", b"\x00\x01ciphertext:with:colons");
        match k8s::decode(&e) {
            Value::Encrypted {
                provider: p,
                version,
                key_name,
                ciphertext_len,
            } => {
                assert_eq!(
                    (p.as_str(), version.as_str(), key_name.as_str()),
                    (provider, "v1", "key-2024")
                );
                assert_eq!(ciphertext_len, 24);
            }
            other => panic!("{provider}: {other:?}"),
        }
        assert_eq!(k8s::decode(&e).kind_label(), "(encrypted)");
    }
    assert!(matches!(k8s::decode(b"just text"), Value::Other));
    assert!(matches!(k8s::decode(b"{not json"), Value::Other));
    assert!(k8s::decode(b"").to_json().is_none());
}

/// Every prefix and every single-byte change of a real-shaped value must
/// decode to something (or be refused) without panicking.
#[test]
fn damaged_values_never_panic() {
    let values = [
        k8swire::protobuf_value("v1", "Secret", &pod_meta(), &[7u8; 40]),
        k8swire::cbor_value("apps/v1", "Deployment", "d", "ns2"),
        k8swire::json_value("x/v1", "X", "a", "b"),
        k8swire::encrypted_value("aescbc", "k", b"abc"),
    ];
    let mut decoded = 0;
    for v in &values {
        for cut in 0..=v.len() {
            let _ = k8s::decode(&v[..cut]).to_json();
        }
        for i in 0..v.len() {
            for x in [0x00u8, 0x7f, 0x80, 0xff, 0x0a, 0x12] {
                let mut w = v.clone();
                w[i] = x;
                let d = k8s::decode(&w);
                let _ = d.kind_label();
                if d.to_json().is_some() {
                    decoded += 1;
                }
            }
        }
    }
    assert!(decoded > 100);
    // A protobuf envelope cut inside its type meta is reported, not guessed.
    let v = &values[0];
    assert!(matches!(k8s::decode(&v[..10]), Value::BadProtobuf(_)));
}
