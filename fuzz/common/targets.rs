//! The bodies of the fuzz targets, shared by `cargo fuzz` (fuzz/fuzz_targets)
//! and by the regression test `tests/fuzz_regressions.rs`, which replays
//! every input kept under `testdata/fuzz-regressions/<target>/`.
//!
//! Each function must return normally on any input: a panic, a hang or an
//! unbounded allocation is a bug.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::Path;

use etcdsnap::DataDir;
use etcdsnap::TargetVersion;
use etcdsnap::bolt::Db;
use etcdsnap::bolt::{self as check, WalkOptions};
use etcdsnap::internal::etcd::{SchemaChecks, StatusVisitor};
use etcdsnap::internal::membership::{
    BootstrapConfig, HostResolver, InitialCluster, bootstrap_with_resolver,
};
use etcdsnap::internal::{go::url::url_string as go_url_string, membership::parse_peer_url_list};
use etcdsnap::raft::snap::decode_snap;
use etcdsnap::raft::wal::{WalDecoder, WalReader, decode_segment};
use etcdsnap::repo::{CheckOptions as RepoCheck, PruneOptions, PushOptions, Repository};
use etcdsnap::{RestoreOptions, restore};
use etcdsnap::{Snapshot, VerifyOptions};
use sha2::Digest;

const VERSIONS: [TargetVersion; 3] = [
    TargetVersion::V3_4,
    TargetVersion::V3_5,
    TargetVersion::V3_6,
];

fn one_thread() -> WalkOptions<'static> {
    WalkOptions::default().with_threads(1)
}

/// Opens every nested bucket below `b` through the public API, as a
/// caller walking an unverified file would; the walk must end on its own
/// (the library bounds nesting and refuses a bucket root reached twice).
fn walk_every_bucket(b: &etcdsnap::bolt::Bucket<'_>, opened: &mut u64) {
    for e in b.iter().take(10_000) {
        let Ok(e) = e else { return };
        if !e.is_bucket() {
            continue;
        }
        *opened += 1;
        assert!(*opened < 1_000_000, "a walk of nested buckets does not end");
        if let Ok(Some(child)) = b.bucket(e.key) {
            walk_every_bucket(&child, opened);
        }
    }
}

/// (a) Arbitrary bytes as a bbolt file: open, structural check with the
/// etcd visitors (every target version), a walk of every nested bucket,
/// then cursor walks of every top-level bucket.
pub fn bolt_open_check(data: &[u8]) {
    let Ok(db) = Db::open(data) else { return };
    for v in VERSIONS {
        let visitors = (StatusVisitor::new(v), SchemaChecks::for_target(v));
        let (report, (status, schema)) = check::walk(db, visitors, &one_thread());
        let found = if report.is_ok() {
            schema.finish_report()
        } else {
            schema.finish_incomplete()
        };
        assert_eq!(
            found.is_ok(),
            found.errors().next().is_none() && found.omitted_errors == 0
        );
        for p in &found.problems {
            let _ = p.to_string();
        }
        for p in &report.problems {
            let _ = (p.to_string(), p.offset(), p.key());
        }
        let _ = status.finish(db.size());
        let _ = report.problem_count();
    }
    let mut opened = 0;
    walk_every_bucket(&db.root(), &mut opened);
    // The cursor must also cope, whatever the check said.
    let root = db.root();
    for e in root.iter().take(64) {
        let Ok(e) = e else { break };
        let Ok(Some(b)) = root.bucket(e.key) else {
            continue;
        };
        let mut c = b.cursor();
        let mut n = 0;
        let mut cur = c.first();
        while let Ok(Some(_)) = cur {
            n += 1;
            if n > 100_000 {
                break;
            }
            cur = c.next();
        }
        let _ = c.last();
        let _ = c.seek(e.key);
        let _ = b.get(b"\0\0\0\0\0\0\0\x01_\0\0\0\0\0\0\0\0");
    }
}

const SMALL: &[u8] = include_bytes!("../../testdata/snapshots/small-v35.member.db");
const K8S: &[u8] = include_bytes!("../../testdata/snapshots/k8s-v35.member.db");
const AUTH: &[u8] = include_bytes!("../../testdata/snapshots/auth-v35.member.db");
/// A synced freelist page and an overflow leaf (the file has a trailer).
const SYNCED: &[u8] = include_bytes!("../../testdata/snapshots/synced-v35.db");

/// u32 values worth writing into headers and elements.
const INTERESTING: [u32; 12] = [
    0,
    1,
    2,
    3,
    16,
    0xff,
    0xffff,
    4096,
    0x7fff_ffff,
    0xffff_fff0,
    0xffff_ffff,
    2611,
];

fn fnv1a64(d: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in d {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Applies a mutation program to a real etcd database, then repairs both
/// meta checksums and appends a correct SHA-256 trailer.
pub fn mutate_snapshot(data: &[u8]) -> Vec<u8> {
    let (choice, ops) = data.split_first().unwrap_or((&0, &[]));
    let base = match choice % 32 {
        31 => K8S,
        30 => &SYNCED[..SYNCED.len() - 32],
        29 => AUTH,
        _ => SMALL,
    };
    let mut img = base.to_vec();
    let ps = 4096usize;
    let pages = img.len() / ps;
    for op in ops.as_chunks::<6>().0.iter().take(64) {
        let page = usize::from(u16::from_le_bytes([op[0], op[1]])) % pages;
        let off = usize::from(u16::from_le_bytes([op[2], op[3]])) % ps;
        let at = page * ps + off;
        match op[4] % 4 {
            0 => img[at] = op[5],
            1 => img[at] ^= op[5],
            2 => {
                let v = INTERESTING[usize::from(op[5]) % INTERESTING.len()];
                let at = at.min(img.len() - 4);
                img[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ => {
                let src = (usize::from(op[5]) * 97 % pages) * ps + off;
                let n = 16.min(img.len() - at).min(img.len() - src);
                let chunk = img[src..src + n].to_vec();
                img[at..at + n].copy_from_slice(&chunk);
            }
        }
    }
    for meta in [0, ps] {
        let sum = fnv1a64(&img[meta + 16..meta + 72]);
        img[meta + 72..meta + 80].copy_from_slice(&sum.to_le_bytes());
    }
    let digest = sha2::Sha256::digest(&img);
    img.extend_from_slice(&digest);
    img
}

fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().expect("temp dir")
}

/// (b) A real snapshot with some pages mutated and checksums repaired:
/// verify, status and restore must agree with each other and never leave a
/// half-written data dir.
pub fn snapshot_pages(data: &[u8]) {
    agree(&mutate_snapshot(data));
}

/// Verify, status and restore of the snapshot file `img` agree: a snapshot
/// verify passes restores (and the result verifies), one it refuses leaves
/// nothing behind, and status works whenever verify passes (or verify says
/// why it cannot).
fn agree(img: &[u8]) {
    let dir = scratch();
    let file = dir.path().join("s.db");
    std::fs::write(&file, img).expect("write the input");
    let snap = Snapshot::open(&file).expect("a regular file opens");
    let report = snap.verify(&VerifyOptions::default().with_threads(1));
    let status = snap.status(TargetVersion::V3_5);
    if report.is_ok() && report.status_error.is_none() {
        assert!(status.is_ok(), "verify passed, status failed: {status:?}");
    }
    let data_dir = dir.path().join("d.etcd");
    let opts = RestoreOptions::default()
        .with_data_dir(data_dir.clone())
        .with_initial_cluster("default=http://127.0.0.1:2380")
        .with_initial_advertise_peer_urls("http://127.0.0.1:2380")
        .with_threads(1);
    let restored = restore(file.as_path(), &opts, &|_| {});
    assert_eq!(
        restored.is_ok(),
        report.is_ok(),
        "restore and verify disagree: {:?} / {:?}",
        restored.as_ref().err().map(ToString::to_string),
        report.problems()
    );
    if restored.is_ok() {
        let db = Snapshot::open(DataDir::new(&data_dir).db_path()).expect("restored db opens");
        let again = db.verify(
            &VerifyOptions::default()
                .with_skip_hash_check(true)
                .with_threads(1),
        );
        assert!(
            again.is_ok(),
            "restored db does not verify: {:?}",
            again.problems()
        );
    } else {
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["s.db"], "a failed restore left files behind");
    }
}

/// The buckets an `etcd_records` program writes into.
const BUCKETS: [&[u8]; 10] = [
    b"alarm",
    b"auth",
    b"authRoles",
    b"authUsers",
    b"cluster",
    b"key",
    b"lease",
    b"members",
    b"members_removed",
    b"meta",
];

/// Keys etcd reads by name, for programs to pick.
const KNOWN_KEYS: [&[u8]; 11] = [
    b"authRevision",
    b"authEnabled",
    b"consistent_index",
    b"term",
    b"confState",
    b"scheduledCompactRev",
    b"finishedCompactRev",
    b"storageVersion",
    b"clusterVersion",
    b"downgrade",
    b"\0\0\0\0\0\0\0\x05_\0\0\0\0\0\0\0\0",
];

/// (e) etcd's records: a program of puts into etcd's buckets, built into a
/// database by the writer (around a sound `key` and `meta` bucket), saved
/// as a snapshot and put through verify, status and restore, which must
/// agree (restore goes ahead exactly when verify finds no error; the
/// etcd-level checks of every target version run on it too).
///
/// Each record is `sel klen vlen_lo vlen_hi key value`: `sel % 10` picks
/// the bucket, bit 0x80 a well-known key (`klen` picks it) instead of
/// `klen` key bytes, bit 0x40 makes the entry a nested bucket.
pub fn etcd_records(data: &[u8]) {
    use etcdsnap::internal::bolt::tx::{self, BucketChanges, WriteOptions};
    let mut ch = BucketChanges::new();
    ch.bucket(b"key".to_vec()).put(
        b"\0\0\0\0\0\0\0\x02_\0\0\0\0\0\0\0\0".to_vec(),
        b"\x0a\x03foo\x10\x02\x18\x02\x20\x01\x2a\x03bar".to_vec(),
    );
    ch.bucket(b"meta".to_vec())
        .put(b"consistent_index".to_vec(), 2u64.to_be_bytes().to_vec());
    let mut rest = data;
    for _ in 0..32 {
        let [sel, klen, lo, hi, tail @ ..] = rest else {
            break;
        };
        let vlen = usize::from(u16::from_le_bytes([*lo, *hi])) % 4096;
        let (key, tail) = if sel & 0x80 != 0 {
            (KNOWN_KEYS[usize::from(*klen) % KNOWN_KEYS.len()], tail)
        } else {
            let k = usize::from(*klen).min(tail.len());
            tail.split_at(k)
        };
        let v = vlen.min(tail.len());
        let (value, tail) = tail.split_at(v);
        rest = tail;
        if key.is_empty() {
            continue;
        }
        let b = ch.bucket(BUCKETS[usize::from(*sel) % BUCKETS.len()].to_vec());
        if sel & 0x40 != 0 {
            b.bucket(key.to_vec()).put(b"x".to_vec(), value.to_vec());
        } else {
            b.put(key.to_vec(), value.to_vec());
        }
    }
    let mut img = tx::new_image(4096);
    let Ok(db) = Db::open(&img) else { return };
    let Ok(plan) = tx::plan(db, &ch, WriteOptions::default()) else {
        return;
    };
    plan.apply_to(&mut img);
    if let Ok(db) = Db::open(&img) {
        for v in VERSIONS {
            let (report, schema) = check::walk(db, SchemaChecks::for_target(v), &one_thread());
            assert!(
                report.is_ok(),
                "the writer wrote an unsound file: {:?}",
                report.problems
            );
            for p in schema.finish_report().problems {
                let _ = p.to_string();
            }
        }
    }
    let digest = sha2::Sha256::digest(&img);
    img.extend_from_slice(&digest);
    agree(&img);
}

/// (c) Arbitrary bytes as a WAL segment and as a `.snap` file.
pub fn raft_decode(data: &[u8]) {
    let _ = decode_segment(data);
    for r in WalDecoder::new(data).take(10_000) {
        if r.is_err() {
            break;
        }
    }
    // The streaming reader agrees with the in-memory decoder.
    let streamed: Vec<_> = WalReader::new(data).take(10_000).collect();
    let sliced: Vec<_> = WalDecoder::new(data).take(10_000).collect();
    assert_eq!(streamed.len(), sliced.len());
    for (a, b) in streamed.iter().zip(&sliced) {
        match (a, b) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("the streaming reader and the decoder disagree: {a:?} / {b:?}"),
        }
    }
    let _ = decode_snap(data);
}

/// Resolves nothing: fuzzing must not do DNS.
struct NoDns;

impl HostResolver for NoDns {
    fn lookup(&self, host: &str) -> Result<IpAddr, String> {
        host.parse()
            .map_err(|_| format!("lookup {host}: no such host"))
    }
}

/// (d) Arbitrary text as `--initial-cluster`, `--initial-advertise-peer-urls`,
/// `--name` and token (separated by NUL bytes).
pub fn cluster_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let ic = parts.next().unwrap_or_default();
    let adv = parts.next().unwrap_or_default();
    let name = parts.next().unwrap_or("default");
    let token = parts.next().unwrap_or_default();
    let _ = go_url_string(ic);
    for v in VERSIONS {
        let _ = parse_peer_url_list(adv, v);
        let _ = InitialCluster::parse(ic, v);
        let cfg = BootstrapConfig {
            name,
            initial_cluster: ic,
            initial_cluster_token: token,
            initial_advertise_peer_urls: adv,
            version: v,
        };
        if let Ok(c) = bootstrap_with_resolver(&cfg, &NoDns) {
            assert!(c.members.iter().any(|m| m.id == c.local_id));
            assert!(c.members.windows(2).all(|w| w[0].id < w[1].id));
            for m in &c.members {
                let _ = m.to_json(v);
            }
        }
    }
}

/// The files of a small backup repository (two snapshots: a full list and
/// a delta), made once: relative path -> bytes.
fn pristine_repo() -> &'static Vec<(String, Vec<u8>)> {
    static REPO: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    REPO.get_or_init(|| {
        let dir = scratch();
        let root = dir.path().join("repo");
        let repo = Repository::init_dir(&root, None).expect("init");
        let snap = dir.path().join("s.db");
        let mut body = SMALL.to_vec();
        let digest = sha2::Sha256::digest(&body);
        body.extend_from_slice(&digest);
        std::fs::write(&snap, &body).expect("write");
        repo.push(&snap, &PushOptions::default()).expect("push");
        // The same database with one page changed: a delta list. The flip
        // damages the page, which push refuses; the repository only has to
        // hold it (as one written before push verified did).
        body.truncate(SMALL.len());
        if let Some(b) = body.get_mut(4 * 4096 + 100) {
            *b ^= 1;
        }
        let digest = sha2::Sha256::digest(&body);
        body.extend_from_slice(&digest);
        std::fs::write(&snap, &body).expect("write");
        let o = PushOptions::default().with_skip_hash_check(true);
        etcdsnap::internal::repo::push_unverified(&repo, &snap, &o).expect("push");
        let mut files = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("list").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&root) {
                    let rel = rel.to_string_lossy().into_owned();
                    if !rel.ends_with("lock") {
                        files.push((rel, std::fs::read(&p).expect("read")));
                    }
                }
            }
        }
        files.sort();
        files
    })
}

/// (e) A damaged backup repository: one of its files (pack, list,
/// manifest, config or the redb index) mutated by the input, or replaced by
/// it; then every command that reads the repository. All must fail cleanly
/// or succeed; a reconstructed snapshot must never differ from what was
/// pushed.
pub fn repo_open(data: &[u8]) {
    let files = pristine_repo();
    let (choice, rest) = data.split_first().unwrap_or((&0, &[]));
    let dir = scratch();
    let root = dir.path().join("repo");
    let target = usize::from(choice & 0x7f) % files.len();
    for (i, (rel, bytes)) in files.iter().enumerate() {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let mut b = bytes.clone();
        if i == target {
            if choice & 0x80 != 0 {
                b = rest.to_vec();
            } else {
                for op in rest.as_chunks::<4>().0.iter().take(32) {
                    let at = usize::from(u16::from_le_bytes([op[0], op[1]]))
                        .wrapping_mul(usize::from(op[2]).max(1))
                        % b.len().max(1);
                    if let Some(x) = b.get_mut(at) {
                        *x ^= op[3];
                    }
                }
            }
        }
        std::fs::write(&p, &b).expect("write");
    }
    let Ok(repo) = Repository::open_dir(&root, None) else {
        return;
    };
    let opts = RepoCheck::default().with_read_data(true);
    let _ = repo.check(&opts);
    if let Ok(snaps) = repo.snapshots() {
        for s in &snaps {
            let mut out = Vec::new();
            if repo.cat(&s.id.to_string(), &mut out).is_ok() {
                let mut h = sha2::Sha256::new();
                h.update(&out);
                let digest: [u8; 32] = h.finalize().into();
                assert_eq!(digest, s.sha256, "cat gave other bytes than were pushed");
            }
        }
    }
    let _ = repo.rebuild_index();
    let _ = repo.check(&opts);
    let _ = repo.prune(&PruneOptions::default());
    let _ = etcdsnap::internal::repo::decode_list(rest);
    let _ = etcdsnap::internal::repo::decode_manifest(rest);
    let _ = etcdsnap::internal::repo::decode_pack(rest);
    let _ = etcdsnap::internal::repo::decode_config(rest);
}

/// (f) Arbitrary bytes as an etcd value: every Kubernetes decoder
/// (protobuf envelope and ObjectMeta, JSON, CBOR, encrypted prefix), with
/// the four prefixes tried in turn so each decoder sees the input.
pub fn k8s_values(data: &[u8]) {
    use etcdsnap::inspect::k8s;
    let _ = k8s::decode(data).to_json();
    for prefix in [&b"k8s\0"[..], b"\xd9\xd9\xf7", b"k8s:enc:", b"{"] {
        let mut v = prefix.to_vec();
        v.extend_from_slice(data);
        let d = k8s::decode(&v);
        let _ = (d.kind_label(), d.encoding(), d.to_json());
    }
    let _ = etcdsnap::internal::k8s::decode_object_meta(data);
    let _ = etcdsnap::internal::k8s::cbor::decode(data);
    let _ = etcdsnap::inspect::group::registry_parts(data);
}

/// (g) The bulk loader and the copy that `snapshot defrag` makes.
///
/// With the first byte even, the rest is a program for the loader: each
/// step's first byte picks an operation (open a bucket, put, close a
/// bucket), lengths come from the next bytes, names/keys/values from what
/// follows. Whatever the loader accepts must come out as a file Go's rules
/// accept (our check) and read back exactly as given; what it refuses it
/// refuses with an error. With the first byte odd, the rest is a bbolt file
/// to copy densely: the copy must not panic, and when it succeeds the
/// result must check clean and hold the same entries.
pub fn bolt_load(data: &[u8]) {
    use etcdsnap::internal::bolt::{LoadOptions, Loader, copy_db};
    use std::collections::BTreeMap;
    use std::io::Cursor;

    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        let Ok(db) = Db::open(rest) else { return };
        let opts = LoadOptions::default().with_fill(f64::from(mode >> 1) / 127.0);
        if let Ok((out, _)) = copy_db(db, Cursor::new(Vec::new()), opts) {
            let img = out.into_inner();
            let copy = Db::open(&img).expect("a copy opens");
            assert!(check::check(copy).is_ok(), "a copy checks clean");
            assert_eq!(dump(db.root()), dump(copy.root()), "a copy holds the same");
        }
        return;
    }
    let page_size = [512u32, 1024, 4096, 4096][usize::from(mode >> 1) % 4];
    let opts = LoadOptions::default()
        .with_page_size(page_size)
        .with_fill(f64::from(mode >> 3) / 31.0)
        .with_freelist(mode & 0x80 == 0);
    let Ok(mut l) = Loader::new(Cursor::new(Vec::new()), opts) else {
        return;
    };
    // The model: what the loader accepted, as nested maps.
    #[derive(Default, PartialEq, Debug)]
    struct Model(BTreeMap<Vec<u8>, Option<Model>>, BTreeMap<Vec<u8>, Vec<u8>>);
    let mut stack: Vec<(Vec<u8>, Model)> = vec![(Vec::new(), Model::default())];
    let mut r = rest;
    let take = |n: usize, r: &mut &[u8]| -> Vec<u8> {
        let n = n.min(r.len());
        let (a, b) = r.split_at(n);
        *r = b;
        a.to_vec()
    };
    while let Some((&op, tail)) = r.split_first() {
        r = tail;
        let klen = usize::from(op >> 3);
        match op & 7 {
            0 | 1 => {
                let name = take(klen, &mut r);
                if l.begin_bucket(name.clone(), u64::from(op)).is_ok() {
                    stack.push((name, Model::default()));
                }
            }
            2 => {
                if l.end_bucket().is_ok() {
                    let (name, m) = stack.pop().expect("open bucket");
                    if let Some(top) = stack.last_mut() {
                        top.1.0.insert(name, Some(m));
                    }
                }
            }
            _ => {
                let key = take(klen, &mut r);
                let vlen = usize::from(r.first().copied().unwrap_or(0)) * 8;
                let _ = take(1, &mut r);
                let value = take(vlen, &mut r);
                if l.put(key.clone(), value.clone()).is_ok() {
                    stack.last_mut().expect("bucket").1.1.insert(key, value);
                }
            }
        }
    }
    while stack.len() > 1 {
        l.end_bucket().expect("close what is open");
        let (name, m) = stack.pop().expect("open bucket");
        stack.last_mut().expect("parent").1.0.insert(name, Some(m));
    }
    let (out, summary) = l.finish().expect("finish");
    let img = out.into_inner();
    assert_eq!(img.len() as u64, summary.pages * u64::from(page_size));
    let db = Db::open(&img).expect("the loader's file opens");
    let report = check::check(db);
    assert!(report.is_ok(), "{:?}", report.problems);
    fn read(b: &etcdsnap::bolt::Bucket<'_>) -> Model {
        let mut m = Model::default();
        for e in b.iter() {
            let e = e.expect("entry");
            if e.is_bucket() {
                let sub = b.bucket(e.key).expect("open").expect("bucket");
                m.0.insert(e.key.to_vec(), Some(read(&sub)));
            } else {
                m.1.insert(e.key.to_vec(), e.value.to_vec());
            }
        }
        m
    }
    assert_eq!(read(&db.root()), stack.pop().expect("root").1);
}

/// Entries by path from the root bucket; `None` marks a nested bucket.
type Dump = Vec<(Vec<Vec<u8>>, Option<Vec<u8>>)>;

/// Every entry below `b`, nested buckets as `(path, None)` markers; stops
/// at the first error (the copy refused those files anyway).
fn dump(b: etcdsnap::bolt::Bucket<'_>) -> Dump {
    fn walk(b: &etcdsnap::bolt::Bucket<'_>, path: &mut Vec<Vec<u8>>, out: &mut Dump) -> Option<()> {
        for e in b.iter() {
            let e = e.ok()?;
            path.push(e.key.to_vec());
            if e.is_bucket() {
                out.push((path.clone(), None));
                let sub = b.bucket(e.key).ok()??;
                walk(&sub, path, out)?;
            } else {
                out.push((path.clone(), Some(e.value.to_vec())));
            }
            path.pop();
        }
        Some(())
    }
    let mut out = Vec::new();
    let _ = walk(&b, &mut Vec::new(), &mut out);
    out
}

/// (g) A stored segment of recorded changes (`src/repo/deltas.rs`): the input as a segment
/// body (what a delta object's zstd frame holds, past its checksums), which must decode or
/// fail cleanly and, decoded, encode back to the same bytes; as a whole delta object; and as
/// a mutation program (`offset_lo offset_hi xor` triples) over a sound object, which must
/// then fail to open or open to the very same segment.
pub fn repo_deltas(data: &[u8]) {
    use etcdsnap::internal::repo::{open_delta, reencode_delta_body, sample_delta};
    if let Some(again) = reencode_delta_body(data) {
        assert_eq!(again, data, "a decoded body encodes back to its bytes");
    }
    let (name, good) = sample_delta();
    let _ = open_delta(&[1; 32], &name, data);
    let mut b = good.clone();
    for op in data.as_chunks::<3>().0.iter().take(32) {
        let at = usize::from(u16::from_le_bytes([op[0], op[1]])) % b.len().max(1);
        if let Some(x) = b.get_mut(at) {
            *x ^= op[2];
        }
    }
    if let Some(n) = open_delta(&[1; 32], &name, &b) {
        assert_eq!(b, good, "a damaged object opened ({n} revisions)");
    }
    let _ = open_delta(&[2; 32], &name, &good).map(|_| panic!("opened on another base"));
}
