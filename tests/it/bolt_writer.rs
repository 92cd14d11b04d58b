//! The bbolt writer: what it writes reads back the same with our reader and
//! with Go's bbolt (boltcheck), and checks clean with both.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use etcdsnap::bolt::check;
use etcdsnap::bolt::{Bucket, Db};
use etcdsnap::internal::bolt::tx::{self, BucketChanges, Change, WriteOptions};
use proptest::prelude::*;

/// A model of a database: bucket path -> key -> value.
type Model = BTreeMap<Vec<Vec<u8>>, BTreeMap<Vec<u8>, Vec<u8>>>;

fn boltcheck() -> Option<PathBuf> {
    let p = std::env::var_os("ETCDSNAP_BOLTCHECK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/etcdsnap-tools/boltcheck"));
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "boltcheck missing under CI=true (looked at {})",
        p.display()
    );
    None
}

fn read_model(db: Db<'_>) -> Model {
    fn walk(b: Bucket<'_>, path: &mut Vec<Vec<u8>>, m: &mut Model) {
        let mut here = BTreeMap::new();
        for e in b.iter() {
            let e = e.expect("entry");
            if e.is_bucket() {
                let sub = b.bucket(e.key).expect("bucket").expect("exists");
                path.push(e.key.to_vec());
                walk(sub, path, m);
                path.pop();
            } else {
                here.insert(e.key.to_vec(), e.value.to_vec());
            }
        }
        if !path.is_empty() {
            m.insert(path.clone(), here);
        }
    }
    let mut m = Model::new();
    walk(db.root(), &mut Vec::new(), &mut m);
    m
}

/// What boltcheck dump prints for a model.
fn dump_lines(m: &Model) -> Vec<String> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut lines = Vec::new();
    for (path, kvs) in m {
        let p = path.iter().map(|s| hex(s)).collect::<Vec<_>>().join("/");
        for (k, v) in kvs {
            lines.push(format!("{p} {} {}", hex(k), hex(v)));
        }
    }
    lines.sort();
    lines
}

fn go_check_and_dump(image: &[u8]) -> Option<(String, Vec<String>)> {
    let bc = boltcheck()?;
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("db");
    std::fs::write(&f, image).expect("write");
    let check = Command::new(&bc)
        .arg("check")
        .arg(&f)
        .output()
        .expect("run boltcheck");
    let dump = Command::new(&bc)
        .arg("dump")
        .arg(&f)
        .output()
        .expect("run boltcheck");
    assert!(
        dump.status.success(),
        "dump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&dump.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    Some((String::from_utf8_lossy(&check.stdout).into_owned(), lines))
}

fn apply(image: &mut Vec<u8>, changes: &BucketChanges, fill: f64) {
    let db = Db::open(image).expect("open");
    let plan = tx::plan(db, changes, WriteOptions { fill }).expect("plan");
    plan.apply_to(image);
}

fn model_changes(m: &Model) -> BucketChanges {
    let mut root = BucketChanges::new();
    for (path, kvs) in m {
        let mut b = &mut root;
        for name in path {
            b = b.bucket(name.clone());
        }
        for (k, v) in kvs {
            b.put(k.clone(), v.clone());
        }
    }
    root
}

fn assert_sound(image: &[u8], want: &Model) {
    let db = Db::open(image).expect("open");
    let report = check(db);
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(&read_model(db), want);
    if let Some((go_check, go_dump)) = go_check_and_dump(image) {
        assert_eq!(go_check.trim(), "OK", "boltcheck check");
        assert_eq!(go_dump, dump_lines(want), "boltcheck dump");
    }
}

fn arb_model() -> impl Strategy<Value = Model> {
    let key = prop::collection::vec(any::<u8>(), 1..40);
    let value = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..64),
        1 => crate::support::corrupt::arb_bytes(500..9000),
    ];
    let kvs = prop::collection::btree_map(key, value, 0..120);
    let name = prop::collection::vec(any::<u8>(), 1..8);
    let path = prop::collection::vec(name, 1..3);
    prop::collection::btree_map(path, kvs, 1..6).prop_map(|mut m| {
        // A bucket name cannot also be a plain key of its parent.
        let paths: Vec<Vec<Vec<u8>>> = m.keys().cloned().collect();
        for p in &paths {
            for depth in 1..p.len() {
                let parent = p[..depth].to_vec();
                m.entry(parent.clone()).or_default().remove(&p[depth]);
            }
        }
        m
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn written_buckets_read_back(m in arb_model(), ps in prop_oneof![Just(4096usize), Just(16384), Just(65536)], fill in prop_oneof![Just(0.5f64), Just(1.0)]) {
        let mut img = tx::new_image(ps);
        apply(&mut img, &model_changes(&m), fill);
        assert_sound(&img, &m);
    }

    #[test]
    fn second_transaction_changes_only_what_it_says(
        m in arb_model(),
        extra in prop::collection::btree_map(prop::collection::vec(any::<u8>(), 1..20), crate::support::corrupt::arb_bytes(0..3000), 0..60),
        drop_every in 2usize..5,
    ) {
        let mut img = tx::new_image(4096);
        apply(&mut img, &model_changes(&m), 0.5);
        // Second transaction: delete some keys of the first bucket, add
        // others, clear the last bucket.
        let mut want = m.clone();
        let mut ch = BucketChanges::new();
        let first = m.keys().next().cloned().expect("one bucket");
        let last = m.keys().last().cloned().expect("one bucket");
        {
            let mut b = &mut ch;
            for n in &first { b = b.bucket(n.clone()); }
            for (i, k) in m[&first].keys().enumerate() {
                if i % drop_every == 0 {
                    b.keys.insert(k.clone(), Change::Delete);
                    want.get_mut(&first).expect("first").remove(k);
                }
            }
            for (k, v) in &extra {
                let is_child = m.keys().any(|p| p.len() > first.len() && p[..first.len()] == first[..] && &p[first.len()] == k);
                if !is_child {
                    b.put(k.clone(), v.clone());
                    want.get_mut(&first).expect("first").insert(k.clone(), v.clone());
                }
            }
        }
        if last != first && !m.keys().any(|p| p.len() > last.len() && p[..last.len()] == last[..]) {
            let mut b = &mut ch;
            for n in &last { b = b.bucket(n.clone()); }
            b.clear = true;
            want.insert(last.clone(), BTreeMap::new());
        }
        let txid = etcdsnap::internal::bolt::meta(&Db::open(&img).expect("open")).txid;
        apply(&mut img, &ch, 0.5);
        prop_assert_eq!(etcdsnap::internal::bolt::meta(&Db::open(&img).expect("open")).txid, txid + 1);
        assert_sound(&img, &want);
    }
}

#[test]
fn edits_a_real_etcd_snapshot() {
    let src = std::fs::read("testdata/snapshots/k8s-v35.member.db").expect("fixture");
    let db = Db::open(&src).expect("open");
    let before = read_model(db);
    let mut ch = BucketChanges::new();
    ch.bucket(b"members".to_vec()).clear = true;
    ch.bucket(b"members".to_vec())
        .put(b"8e9e05c52164694d".to_vec(), b"{}".to_vec());
    ch.bucket(b"meta".to_vec())
        .put(b"term".to_vec(), 1u64.to_be_bytes().to_vec());
    let last = before[&vec![b"key".to_vec()]]
        .keys()
        .last()
        .cloned()
        .expect("keys");
    let mut bumped = last[..8].to_vec();
    bumped[7] = bumped[7].wrapping_add(1);
    bumped.extend_from_slice(b"_\0\0\0\0\0\0\0\0");
    ch.bucket(b"key".to_vec()).put(bumped.clone(), Vec::new());
    let plan = tx::plan(db, &ch, WriteOptions::default()).expect("plan");
    // Only the paths to the changed keys are rewritten.
    assert!(
        plan.page_ids().count() < 10,
        "{:?}",
        plan.page_ids().collect::<Vec<_>>()
    );
    let mut img = src.clone();
    plan.apply_to(&mut img);
    let mut want = before.clone();
    want.insert(
        vec![b"members".to_vec()],
        BTreeMap::from([(b"8e9e05c52164694d".to_vec(), b"{}".to_vec())]),
    );
    want.get_mut(&vec![b"meta".to_vec()])
        .expect("meta")
        .insert(b"term".to_vec(), 1u64.to_be_bytes().to_vec());
    want.get_mut(&vec![b"key".to_vec()])
        .expect("key")
        .insert(bumped, Vec::new());
    assert_sound(&img, &want);
    // The old tree is untouched: the previous meta still reads the old data.
    let old_meta_page =
        1 - (etcdsnap::internal::bolt::meta(&Db::open(&img).expect("open")).txid % 2) as usize;
    assert_eq!(
        img[old_meta_page * 4096..(old_meta_page + 1) * 4096],
        src[old_meta_page * 4096..(old_meta_page + 1) * 4096]
    );
}

#[test]
fn seek_and_last_agree_with_iteration_on_a_deep_tree() {
    let src = std::fs::read("testdata/snapshots/k8s-v35.member.db").expect("fixture");
    let db = Db::open(&src).expect("open");
    let key = db.root().bucket(b"key").expect("read").expect("key bucket");
    let keys: Vec<&[u8]> = key.iter().map(|e| e.expect("entry").key).collect();
    assert!(keys.len() > 1000);
    let mut c = key.cursor();
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(c.seek(k).expect("seek").map(|e| e.key), Some(*k));
        let mut after = k.to_vec();
        after.push(0);
        assert_eq!(
            c.seek(&after).expect("seek").map(|e| e.key),
            keys.get(i + 1).copied()
        );
    }
    assert_eq!(
        c.seek(b"").expect("seek").map(|e| e.key),
        keys.first().copied()
    );
    assert_eq!(c.last().expect("last").map(|e| e.key), keys.last().copied());
}
