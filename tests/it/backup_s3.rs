//! A backup repository in object storage, against a real S3-compatible server (s3s-fs on
//! loopback, started and stopped by each test): every backup command on `s3://BUCKET/PREFIX`
//! as on a directory (dedup across pushes, `cat` byte for byte, `restore` writing what
//! `snapshot restore` of the file writes, check, prune), an index cache that may be lost,
//! damage found and refused, a manifest deleted from the bucket reported missing whatever the
//! cache, and locks kept as objects (prune refused while a push holds one,
//! a push waiting for prune, a dead holder's lock ignored after 30 minutes).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use support::cli::{BIN, ok, s};
use support::files;
use support::fixtures;
use support::s3::S3Server;

/// The restore flags of the one-member cluster the repository tests restore into.
pub(super) const ONE_MEMBER: [&str; 6] = [
    "--name",
    "m1",
    "--initial-cluster",
    "m1=http://127.0.0.1:2380",
    "--initial-advertise-peer-urls",
    "http://127.0.0.1:2380",
];

const BUCKET: &str = "backups";
const PREFIX: &str = "team/etcd";

fn repo_url() -> String {
    format!("s3://{BUCKET}/{PREFIX}")
}

/// `etcdsnap ARGS` against `server`, with its index cache in `cache`.
fn cmd(server: &S3Server, cache: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    server.configure(&mut c);
    c.env("ETCDSNAP_CACHE_DIR", cache).args(args);
    c
}

fn run(server: &S3Server, cache: &Path, args: &[&str]) -> Output {
    cmd(server, cache, args).output().expect("run etcdsnap")
}

fn okay(server: &S3Server, cache: &Path, args: &[&str]) -> Vec<u8> {
    let o = run(server, cache, args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn json(server: &S3Server, cache: &Path, args: &[&str]) -> Value {
    serde_json::from_slice(&okay(server, cache, args)).expect("json")
}

/// The repository's objects on the server (keys below the prefix).
fn objects(server: &S3Server) -> Vec<String> {
    server
        .objects(BUCKET)
        .into_iter()
        .filter_map(|k| k.strip_prefix(&format!("{PREFIX}/")).map(str::to_string))
        .collect()
}

fn object_path(server: &S3Server, key: &str) -> PathBuf {
    server.object_file(BUCKET, &format!("{PREFIX}/{key}"))
}

fn server() -> Option<S3Server> {
    let bin = support::tools::require(support::tools::s3s_fs())?;
    Some(S3Server::start(&bin, BUCKET))
}

#[test]
fn a_repository_in_a_bucket() {
    let Some(server) = server() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let cache = work.path().join("cache");
    let url = repo_url();
    let k8s = fixtures::snapshot("k8s-v35.db");
    let small = fixtures::snapshot("small-v35.db");

    okay(&server, &cache, &["backup", "init", &url]);
    let first = json(
        &server,
        &cache,
        &["backup", "push", &url, s(&k8s), "-w", "json"],
    );
    let again = json(
        &server,
        &cache,
        &["backup", "push", &url, s(&k8s), "-w", "json"],
    );
    assert!(first["newChunks"].as_u64().expect("newChunks") > 100);
    assert_eq!(
        again["newChunks"], 0,
        "the second push stores no page again"
    );
    json(
        &server,
        &cache,
        &["backup", "push", &url, s(&small), "-w", "json"],
    );
    let keys = objects(&server);
    for kind in ["config", "packs/", "lists/", "snapshots/"] {
        assert!(
            keys.iter().any(|k| k.starts_with(kind)),
            "{kind} in {keys:?}"
        );
    }
    assert!(
        !keys.iter().any(|k| k.starts_with("locks/")),
        "locks are removed when commands end: {keys:?}"
    );

    let id = first["id"].as_str().expect("id").to_string();
    let cat = okay(&server, &cache, &["backup", "cat", &url, &id[..8]]);
    assert!(
        cat == std::fs::read(&k8s).expect("read"),
        "cat is the file, byte for byte"
    );

    // restore writes exactly what a restore of the file writes.
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    let flags = ONE_MEMBER;
    let mut args = vec!["backup", "restore", &url, &id[..8], "--data-dir"];
    let a_dir = a.join("m1.etcd");
    args.push(s(&a_dir));
    args.extend(flags);
    std::fs::create_dir(&a).expect("mkdir");
    okay(&server, &cache, &args);
    std::fs::create_dir(&b).expect("mkdir");
    let b_dir = b.join("m1.etcd");
    let mut args = vec!["snapshot", "restore", s(&k8s), "--data-dir", s(&b_dir)];
    args.extend(flags);
    ok(&args);
    let (ta, tb) = (files::contents(&a), files::contents(&b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (k, v) in &ta {
        assert!(v == &tb[k], "{k} differs");
    }

    okay(&server, &cache, &["backup", "check", &url, "--read-data"]);

    // The index is a cache on this machine: without it, the objects say everything.
    std::fs::remove_dir_all(&cache).expect("drop the cache");
    let listed = json(&server, &cache, &["backup", "ls", &url, "-w", "json"]);
    assert_eq!(listed.as_array().expect("array").len(), 3);
    let cat = okay(&server, &cache, &["backup", "cat", &url, &id[..8]]);
    assert!(cat == std::fs::read(&k8s).expect("read"));

    // Prune keeps the newest (small-v35) and deletes the k8s pages from the bucket.
    let packs = |keys: &[String]| keys.iter().filter(|k| k.starts_with("packs/")).count();
    let before = packs(&objects(&server));
    okay(
        &server,
        &cache,
        &["backup", "prune", &url, "--keep-last", "1"],
    );
    assert!(packs(&objects(&server)) < before, "unused packs deleted");
    okay(&server, &cache, &["backup", "check", &url, "--read-data"]);
    let listed = json(&server, &cache, &["backup", "ls", &url, "-w", "json"]);
    let kept = listed[0]["id"].as_str().expect("id").to_string();
    let cat = okay(&server, &cache, &["backup", "cat", &url, &kept[..8]]);
    assert!(cat == std::fs::read(&small).expect("read"));

    // A flipped byte in a pack object: check names it, restore refuses and leaves nothing.
    let pack = objects(&server)
        .into_iter()
        .find(|k| k.starts_with("packs/"))
        .expect("a pack");
    let p = object_path(&server, &pack);
    let mut bytes = std::fs::read(&p).expect("read pack");
    bytes[20] ^= 0x40;
    std::fs::write(&p, &bytes).expect("write pack");
    let o = run(&server, &cache, &["backup", "check", &url, "--read-data"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    let name = pack.rsplit('/').next().expect("name");
    assert!(out.contains(&name[..16]), "check names the pack: {out}");
    let c_dir = work.path().join("c.etcd");
    let o = run(
        &server,
        &cache,
        &[
            "backup",
            "restore",
            &url,
            &kept[..8],
            "--data-dir",
            s(&c_dir),
        ],
    );
    assert!(!o.status.success(), "restore refuses a damaged pack");
    assert!(!c_dir.exists(), "and leaves nothing behind");
}

#[test]
fn locks_are_objects_in_the_bucket() {
    let Some(server) = server() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let cache = work.path().join("cache");
    let url = repo_url();
    let snap = fixtures::snapshot("small-v35.db");
    okay(&server, &cache, &["backup", "init", &url]);
    let put_lock = |name: &str| {
        let p = object_path(&server, &format!("locks/{name}"));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, b"pid 1\n").expect("put lock");
        p
    };

    // A push on another host holds the lock shared: pushes go on, prune is refused at once.
    let shared = put_lock("shared-otherhost-4242-00aa");
    okay(&server, &cache, &["backup", "push", &url, s(&snap)]);
    let o = run(
        &server,
        &cache,
        &["backup", "prune", &url, "--keep-last", "1"],
    );
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("locked by another etcdsnap") && e.contains("shared-otherhost-4242-00aa"),
        "{e}"
    );
    std::fs::remove_file(&shared).expect("release");

    // A prune elsewhere holds it exclusively: a push waits, and goes on once it is gone.
    let exclusive = put_lock("exclusive-otherhost-4243-00bb");
    let mut push = cmd(&server, &cache, &["backup", "push", &url, s(&snap)])
        .spawn()
        .expect("spawn push");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        push.try_wait().expect("try_wait").is_none(),
        "the push waits for the exclusive lock"
    );
    std::fs::remove_file(&exclusive).expect("release");
    let started = Instant::now();
    let status = loop {
        if let Some(st) = push.try_wait().expect("try_wait") {
            break st;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = push.kill();
            panic!("the push did not go on after the lock was released");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());

    // A holder that died an hour ago: its lock is ignored and the next prune removes it.
    let dead = put_lock("exclusive-otherhost-4244-00cc");
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&dead)
        .expect("open")
        .set_modified(hour_ago)
        .expect("set mtime");
    okay(
        &server,
        &cache,
        &["backup", "prune", &url, "--keep-last", "1"],
    );
    assert!(!dead.exists(), "the stale lock is removed");
    assert!(
        !objects(&server).iter().any(|k| k.starts_with("locks/")),
        "{:?}",
        objects(&server)
    );
}

#[test]
fn a_manifest_deleted_from_the_bucket_is_missing_even_with_a_new_cache() {
    let Some(server) = server() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let cache = work.path().join("cache");
    let url = repo_url();
    okay(&server, &cache, &["backup", "init", &url]);
    let mut ids = Vec::new();
    for f in ["small-v35.db", "auth-v35.db"] {
        let f = fixtures::snapshot(f);
        let v = json(
            &server,
            &cache,
            &["backup", "push", &url, s(&f), "-w", "json"],
        );
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    let gone = ids[0].clone();
    std::fs::remove_file(object_path(&server, &format!("snapshots/{gone}"))).expect("rm");
    let check = |cache: &Path| {
        let o = run(&server, cache, &["backup", "check", &url, "-w", "json"]);
        let v: Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(o.status.success(), v["ok"] == true, "{v}");
        v
    };
    // With the cache that knew it, and with a cache made again from the
    // objects (another machine, a lost cache).
    for fresh in [false, true] {
        if fresh {
            std::fs::remove_dir_all(&cache).expect("drop the cache");
        }
        let v = check(&cache);
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(v["affectedSnapshots"], serde_json::json!([gone]), "{v}");
        assert!(v["problems"].to_string().contains("missing"), "{v}");
    }
    // Forgetting it accepts the loss; forgetting the other is no loss.
    okay(&server, &cache, &["backup", "forget", &url, &gone]);
    okay(&server, &cache, &["backup", "forget", &url, &ids[1]]);
    std::fs::remove_dir_all(&cache).expect("drop the cache");
    assert_eq!(check(&cache)["ok"], true);
    okay(&server, &cache, &["backup", "prune", &url]);
    assert!(
        !objects(&server)
            .iter()
            .any(|k| k.starts_with("known/") || k.starts_with("forgotten/")),
        "{:?}",
        objects(&server)
    );
}
