//! `etcdsnap stats` against an independent count: the test walks the `key`
//! bucket with the plain bbolt iterator, decodes every value with prost,
//! sorts each key's entries into live, history and tombstones itself, and
//! sums keys and bytes per group with its own grouping. Free pages are
//! counted by the test's own walk of the page graph. The SVG chart is
//! parsed as XML. Also `get --decode` on Kubernetes values in a real
//! snapshot.

use crate::support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use etcdsnap::Snapshot;
use etcdsnap::bolt::{Db, PageKind};
use etcdsnap::etcd::KeyValue;
use etcdsnap::internal::bolt::{BucketRoot, BucketValue};
use prost::Message;
use serde_json::Value;
use support::k8swire::{self, Meta};
use support::snapmaker::SnapshotMaker;
use support::tools::{self, EtcdVersion};
use support::{fixtures, require_tool};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Count {
    live_keys: u64,
    live_bytes: u64,
    history_versions: u64,
    history_bytes: u64,
    tombstones: u64,
    tombstone_bytes: u64,
}

/// (user key, tombstone, entry bytes, value) for every entry, in bucket order.
fn entries(db: Db<'_>) -> Vec<(Vec<u8>, bool, u64, Vec<u8>)> {
    let key = db.root().bucket(b"key").expect("read").expect("key bucket");
    key.iter()
        .map(|e| {
            let e = e.expect("entry");
            let kv = KeyValue::decode(e.value).expect("KeyValue");
            let tomb = e.key.len() == 18;
            (
                kv.key,
                tomb,
                (16 + e.key.len() + e.value.len()) as u64,
                kv.value,
            )
        })
        .collect()
}

/// Independent grouping: the first `depth` segments, never the last one.
fn prefix_group(key: &[u8], depth: usize) -> String {
    let s = String::from_utf8_lossy(key).into_owned();
    let (lead, body) = match s.strip_prefix('/') {
        Some(b) => ("/", b.to_string()),
        None => ("", s.clone()),
    };
    let segs: Vec<&str> = body.split('/').collect();
    let keep = depth.min(segs.len() - 1);
    if keep == 0 {
        return "(no prefix)".into();
    }
    format!("{lead}{}", segs[..keep].join("/"))
}

/// (tombstone, entry bytes, value) of one change.
type Version = (bool, u64, Vec<u8>);

fn count(db: Db<'_>, group: impl Fn(&[u8], &[u8]) -> String) -> BTreeMap<String, Count> {
    let mut per_key: BTreeMap<Vec<u8>, Vec<Version>> = BTreeMap::new();
    for (k, tomb, size, value) in entries(db) {
        per_key.entry(k).or_default().push((tomb, size, value));
    }
    let mut out: BTreeMap<String, Count> = BTreeMap::new();
    for (k, list) in per_key {
        let n = list.len();
        for (i, (tomb, size, value)) in list.iter().enumerate() {
            // A deletion is counted with what it deleted.
            let value = if *tomb && i > 0 {
                &list[i - 1].2
            } else {
                value
            };
            let c = out.entry(group(&k, value)).or_default();
            if *tomb {
                c.tombstones += 1;
                c.tombstone_bytes += size;
            } else if i + 1 == n {
                c.live_keys += 1;
                c.live_bytes += size;
            } else {
                c.history_versions += 1;
                c.history_bytes += size;
            }
        }
    }
    out
}

/// Pages reachable from the root, by the test's own walk.
fn reachable_pages(db: Db<'_>) -> u64 {
    let mut seen = BTreeSet::new();
    let mut stack = vec![etcdsnap::internal::bolt::meta(&db).root];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let p = etcdsnap::internal::bolt::page(&db, id).expect("page");
        for o in 1..=u64::from(p.header().overflow) {
            seen.insert(id + o);
        }
        match p.kind() {
            PageKind::Branch => {
                for i in 0..p.count() {
                    stack.push(p.branch(i).expect("branch").child);
                }
            }
            PageKind::Leaf => {
                for i in 0..p.count() {
                    let e = p.leaf(i).expect("leaf");
                    if e.is_bucket() {
                        let v = BucketValue::decode(e.key, e.value, 0).expect("bucket");
                        if let BucketRoot::Page(r) = v.root {
                            stack.push(r);
                        }
                    }
                }
            }
            other => panic!("page {id} is {other:?}"),
        }
    }
    seen.len() as u64
}

fn etcdsnap(args: &[&str], file: &Path, extra: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(args)
        .arg(file)
        .args(extra)
        .output()
        .expect("run etcdsnap");
    assert!(
        out.status.success(),
        "etcdsnap {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn groups_of(v: &Value) -> BTreeMap<String, Count> {
    v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            let n = |k: &str| g[k].as_u64().expect(k);
            (
                g["group"].as_str().expect("name").to_string(),
                Count {
                    live_keys: n("live_keys"),
                    live_bytes: n("live_bytes"),
                    history_versions: n("history_versions"),
                    history_bytes: n("history_bytes"),
                    tombstones: n("tombstones"),
                    tombstone_bytes: n("tombstone_bytes"),
                },
            )
        })
        .collect()
}

/// Bars the SVG chart draws before it folds the rest into one (the
/// binary's `src/cli/format/svg.rs`).
const MAX_BARS: usize = 25;

/// Checks `stats -w json --depth N` and `--by kind` against the count, the
/// free pages against the page walk, and the SVG as XML.
fn check_file(file: &Path, kind_of: impl Fn(&[u8]) -> String) {
    let snap = Snapshot::open(file).expect("open");
    let db = snap.db().expect("db");
    let dir = tempfile::tempdir().expect("tempdir");
    for depth in [1, 2, 3] {
        let svg = dir.path().join(format!("d{depth}.svg"));
        let out = etcdsnap(
            &["-w", "json", "stats"],
            file,
            &[
                "--depth",
                &depth.to_string(),
                "--svg",
                svg.to_str().expect("path"),
            ],
        );
        let v: Value = serde_json::from_slice(&out).expect("stats json");
        let want = count(db, |k, _| prefix_group(k, depth));
        assert_eq!(groups_of(&v), want, "{} depth {depth}", file.display());
        let total = want.values().fold(Count::default(), |mut a, c| {
            a.live_keys += c.live_keys;
            a.history_bytes += c.history_bytes;
            a.tombstones += c.tombstones;
            a
        });
        assert_eq!(v["key_bucket"]["live_keys"].as_u64(), Some(total.live_keys));
        assert_eq!(
            v["key_bucket"]["tombstones"].as_u64(),
            Some(total.tombstones)
        );
        let free = db.hwm() - 2 - reachable_pages(db); // pages 0 and 1 are the metas
        assert_eq!(
            v["pages"]["free"].as_u64(),
            Some(free),
            "{}",
            file.display()
        );
        assert_eq!(
            v["free_bytes"].as_u64(),
            Some(free * u64::from(db.page_size()))
        );
        // The chart: well-formed XML, one labelled bar per group (up to
        // the limit) and one for the free pages.
        let text = std::fs::read_to_string(&svg).expect("svg written");
        let doc = roxmltree::Document::parse(&text).expect("SVG is well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let labels: Vec<String> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text") && n.attribute("text-anchor") == Some("end"))
            .filter_map(|n| n.text().map(str::to_owned))
            .collect();
        let shown = want.len().min(MAX_BARS);
        let extra = usize::from(want.len() > MAX_BARS);
        assert_eq!(labels.len(), shown + extra + 1, "{labels:?}");
        for g in want.keys().take(3) {
            if want.len() <= MAX_BARS && g.chars().count() < 48 {
                assert!(
                    labels.contains(&g.replace(['\n', '\t'], " ")),
                    "{g} not in {labels:?}"
                );
            }
        }
    }
    let out = etcdsnap(&["-w", "json", "stats"], file, &["--by", "kind"]);
    let v: Value = serde_json::from_slice(&out).expect("stats json");
    assert_eq!(groups_of(&v), count(db, |_, value| kind_of(value)), "kind");
}

#[test]
fn fixtures_match_an_independent_count() {
    for f in ["k8s-v35.db", "k8s-v34.db", "small-v35.db", "auth-v34.db"] {
        // The fixtures hold no Kubernetes encodings.
        check_file(&fixtures::snapshot(f), |_| "(not kubernetes)".into());
    }
}

fn kind_by_test(value: &[u8]) -> String {
    // The test's own reading of what it wrote.
    if value.starts_with(b"k8s\0") {
        for k in ["Pod", "ConfigMap", "Lease"] {
            if value
                .windows(k.len() + 1)
                .any(|w| w[0] == k.len() as u8 && &w[1..] == k.as_bytes())
            {
                return k.into();
            }
        }
    }
    if value.starts_with(b"k8s:enc:") {
        return "(encrypted)".into();
    }
    if value.starts_with(b"{") {
        return "CronTab".into();
    }
    if value.starts_with(b"\xd9\xd9\xf7") {
        return "Deployment".into();
    }
    "(not kubernetes)".into()
}

#[test]
fn kubernetes_snapshot_stats_and_decode() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("k8s-made.db");
    let mut expected_decoded: HashMap<String, Value> = HashMap::new();
    SnapshotMaker::new(&bins).make(&path, |l| {
        for round in 0..3 {
            for ns in ["default", "kube-system", "shop"] {
                for i in 0..12 {
                    let m = Meta {
                        name: format!("p{i}"),
                        namespace: ns.into(),
                        uid: format!("uid-{ns}-{i}"),
                        resource_version: format!("{round}"),
                        created: Some(1_700_000_000 + i),
                        labels: vec![("app".into(), format!("a{i}"))],
                        ..Meta::default()
                    };
                    let key = format!("/registry/pods/{ns}/p{i}");
                    let v = k8swire::protobuf_value("v1", "Pod", &m, &vec![b's'; 100 * i as usize]);
                    if round == 2 && ns == "shop" && i == 3 {
                        expected_decoded.insert(
                            key.clone(),
                            serde_json::json!({"kind": "Pod", "name": "p3", "namespace": "shop"}),
                        );
                    }
                    l.put(key.as_bytes(), &v);
                    let cm = Meta {
                        name: format!("c{i}"),
                        namespace: ns.into(),
                        ..Meta::default()
                    };
                    l.put(
                        format!("/registry/configmaps/{ns}/c{i}").as_bytes(),
                        &k8swire::protobuf_value("v1", "ConfigMap", &cm, b"data"),
                    );
                }
                l.flush();
            }
        }
        for i in 0..5 {
            let node = Meta {
                name: format!("node-{i}"),
                ..Meta::default()
            };
            l.put(
                format!("/registry/leases/kube-node-lease/node-{i}").as_bytes(),
                &k8swire::protobuf_value("coordination.k8s.io/v1", "Lease", &node, b""),
            );
            l.put(
                format!("/registry/stable.example.com/crontabs/shop/ct{i}").as_bytes(),
                &k8swire::json_value(
                    "stable.example.com/v1",
                    "CronTab",
                    &format!("ct{i}"),
                    "shop",
                ),
            );
            l.put(
                format!("/registry/deployments/shop/d{i}").as_bytes(),
                &k8swire::cbor_value("apps/v1", "Deployment", &format!("d{i}"), "shop"),
            );
            l.put(
                format!("/registry/secrets/shop/s{i}").as_bytes(),
                &k8swire::encrypted_value("aescbc", "key1", &[i as u8; 64]),
            );
        }
        l.flush();
        l.delete_range(
            b"/registry/pods/kube-system/",
            b"/registry/pods/kube-system0",
        );
        l.delete(b"/registry/secrets/shop/s0");
        l.put(b"plain", b"not kubernetes");
        l.flush();
    });
    check_file(&path, kind_by_test);

    // Resource and namespace grouping, checked against the workload.
    let out = etcdsnap(&["-w", "json", "stats"], &path, &["--by", "namespace"]);
    let v: Value = serde_json::from_slice(&out).expect("json");
    let g = groups_of(&v);
    assert_eq!(g["/registry/pods/shop"].live_keys, 12);
    assert_eq!(g["/registry/pods/shop"].history_versions, 24);
    assert_eq!(g["/registry/pods/kube-system"].live_keys, 0);
    assert_eq!(g["/registry/pods/kube-system"].tombstones, 12);
    assert_eq!(g["/registry/leases/kube-node-lease"].live_keys, 5);
    assert_eq!(g["/registry/stable.example.com/crontabs/shop"].live_keys, 5);
    assert_eq!(g["/registry/secrets/shop"].tombstones, 1);
    let out = etcdsnap(&["-w", "json", "stats"], &path, &["--top", "3"]);
    let v: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(groups_of(&v)["/registry/pods"].live_keys, 24);
    assert_eq!(v["largest"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["largest"][0]["key"], "/registry/pods/default/p11");
    assert_eq!(
        v["most_revisions"][0]["revisions"], 4,
        "{}",
        v["most_revisions"]
    );

    // get --decode: envelope and metadata for protobuf, the object for
    // JSON and CBOR, provider and key for encrypted values.
    for (key, want) in &expected_decoded {
        let out = etcdsnap(&["-w", "json", "get", "--decode"], &path, &[key.as_str()]);
        let v: Value = serde_json::from_slice(&out).expect("json");
        let d = &v["kvs"][0]["decoded"];
        assert_eq!(d["kind"], want["kind"]);
        assert_eq!(d["metadata"]["name"], want["name"]);
        assert_eq!(d["metadata"]["namespace"], want["namespace"]);
        assert_eq!(d["metadata"]["resourceVersion"], "2");
        assert_eq!(d["metadata"]["labels"]["app"], "a3");
        assert_eq!(d["metadata"]["creationTimestamp"], "2023-11-14T22:13:23Z");
    }
    let out = etcdsnap(
        &["get", "--decode"],
        &path,
        &["--prefix", "/registry/stable.example.com/"],
    );
    let text = String::from_utf8(out).expect("utf-8");
    assert!(
        text.contains("\"kind\": \"CronTab\"") && text.contains("\"replicas\": 3"),
        "{text}"
    );
    let out = etcdsnap(
        &["-w", "json", "get", "--decode"],
        &path,
        &["/registry/deployments/shop/d1"],
    );
    let v: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["kvs"][0]["decoded"]["metadata"]["name"], "d1");
    let out = etcdsnap(
        &["-w", "json", "get", "--decode"],
        &path,
        &["/registry/secrets/shop/s2"],
    );
    let v: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["kvs"][0]["decoded"]["encrypted"]["provider"], "aescbc");
    assert_eq!(v["kvs"][0]["decoded"]["encrypted"]["key"], "key1");
    let out = etcdsnap(&["-w", "json", "get", "--decode"], &path, &["plain"]);
    let v: Value = serde_json::from_slice(&out).expect("json");
    assert!(v["kvs"][0].get("decoded").is_none());
}
