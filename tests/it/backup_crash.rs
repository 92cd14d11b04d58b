//! Crashes of the writing backup commands (issue 19): `push`, `forget` and `prune` stopped after
//! each durable step in turn (`ETCDSNAP_TEST_CRASH_AFTER=N` has the process SIGKILL itself after
//! its N-th object write or removal or index commit), and random
//! sequences of them killed with SIGKILL at random moments, in a directory and in s3s-fs. After
//! every crash every listed snapshot must `cat` byte for byte to the file pushed, `check
//! --read-data` must find nothing wrong, and a later prune must not delete what a listed
//! snapshot uses. Also: what a command waiting for the lock says, and `backup unlock`.

use crate::support;

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::cli::{BIN, s};
use support::fixtures;
use support::s3::S3Server;

/// A repository and how to reach it: a directory, or a prefix in s3s-fs with an index cache.
pub(super) struct Target {
    pub(super) url: String,
    pub(super) env: Vec<(String, String)>,
}

impl Target {
    pub(super) fn local(dir: &Path) -> Target {
        Target {
            url: s(dir).to_string(),
            env: Vec::new(),
        }
    }

    pub(super) fn s3(server: &S3Server, url: &str, cache: &Path) -> Target {
        let mut env: Vec<(String, String)> = server
            .command_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        env.push(("ETCDSNAP_CACHE_DIR".into(), s(cache).to_string()));
        Target {
            url: url.to_string(),
            env,
        }
    }

    /// The same repository seen from another machine (another index cache).
    fn with_cache(&self, cache: &Path) -> Target {
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(k, _)| k != "ETCDSNAP_CACHE_DIR")
            .cloned()
            .collect();
        if !self.env.is_empty() {
            env.push(("ETCDSNAP_CACHE_DIR".into(), s(cache).to_string()));
        }
        Target {
            url: self.url.clone(),
            env,
        }
    }

    /// Gives `c` this target's environment: none of this process's `AWS_*` variables or
    /// crash point, then the target's own variables.
    pub(super) fn apply_env(&self, c: &mut Command) {
        support::s3::clear_aws_env(c);
        c.env_remove("ETCDSNAP_TEST_CRASH_AFTER");
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
    }

    /// `etcdsnap backup SUB REPO ARGS...`.
    pub(super) fn cmd(&self, sub: &str, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        self.apply_env(&mut c);
        c.args(["backup", sub, &self.url]).args(args);
        c
    }

    pub(super) fn run(&self, sub: &str, args: &[&str]) -> Output {
        self.cmd(sub, args).output().expect("run etcdsnap")
    }

    pub(super) fn ok(&self, sub: &str, args: &[&str]) -> Vec<u8> {
        let o = self.run(sub, args);
        assert!(
            o.status.success(),
            "backup {sub} {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }

    pub(super) fn json(&self, sub: &str, args: &[&str]) -> Value {
        serde_json::from_slice(&self.ok(sub, args)).expect("json")
    }

    /// Runs `backup SUB REPO ARGS` stopped after its `n`-th durable step: whether it finished.
    pub(super) fn crash_after(&self, n: u32, sub: &str, args: &[&str]) -> bool {
        let o = self
            .cmd(sub, args)
            .env("ETCDSNAP_TEST_CRASH_AFTER", n.to_string())
            .output()
            .expect("run etcdsnap");
        if o.status.success() {
            return true;
        }
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGKILL),
            "backup {sub} {args:?} with a crash after step {n} failed otherwise: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        false
    }

    /// Pushes `file`; its ID.
    pub(super) fn push(&self, file: &Path) -> String {
        let v = self.json("push", &[s(file), "-w", "json"]);
        v["id"].as_str().expect("id").to_string()
    }

    /// IDs and SHA-256 of the listed snapshots, oldest first.
    pub(super) fn listed(&self) -> Vec<(String, String)> {
        self.json("ls", &["-w", "json"])
            .as_array()
            .expect("array")
            .iter()
            .map(|v| {
                (
                    v["id"].as_str().expect("id").to_string(),
                    v["sha256"].as_str().expect("sha256").to_string(),
                )
            })
            .collect()
    }
}

/// The files pushed, by the SHA-256 of their bytes (what `backup ls` shows).
#[derive(Default)]
struct Pushed(HashMap<String, Vec<u8>>);

impl Pushed {
    fn add(&mut self, bytes: Vec<u8>) {
        self.0.insert(hex(&Sha256::digest(&bytes)), bytes);
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every listed snapshot is one pushed (by the SHA-256 `ls` shows) and reads back byte for
/// byte: by a `cat` of each, or (`by_check`) by `check --read-data`, which reassembles each
/// listed snapshot and compares it with the SHA-256 its manifest records (the one `ls` shows)
/// and finds no other problem. Returns the listed IDs.
fn assert_sound(t: &Target, pushed: &Pushed, by_check: bool, when: &str) -> Vec<String> {
    let listed = t.listed();
    for (id, sha) in &listed {
        let want = pushed
            .0
            .get(sha)
            .unwrap_or_else(|| panic!("{when}: snapshot {id} is not one pushed"));
        if by_check {
            continue;
        }
        let o = t.run("cat", &[id]);
        assert!(
            o.status.success() && o.stdout == *want,
            "{when}: snapshot {id} does not read back ({} of {} bytes): {}",
            o.stdout.len(),
            want.len(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    if by_check {
        let o = t.run("check", &["--read-data", "-w", "json"]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!("{when}: check: {e}: {}", String::from_utf8_lossy(&o.stderr))
        });
        assert!(o.status.success() && v["ok"] == true, "{when}: check: {v}");
    }
    listed.into_iter().map(|(id, _)| id).collect()
}

/// [`assert_sound`] both ways: a `cat` of each listed snapshot and `check --read-data`.
fn assert_whole(t: &Target, pushed: &Pushed, when: &str) -> Vec<String> {
    let ids = assert_sound(t, pushed, false, when);
    assert_eq!(assert_sound(t, pushed, true, when), ids, "{when}");
    ids
}

/// After a crash: everything listed is whole (`check --read-data`), a prune that keeps every
/// snapshot (the issue's `prune --keep-last 100`) deletes nothing a snapshot uses, and after it
/// every listed snapshot still reads back (`cat`).
fn assert_survives(t: &Target, pushed: &Pushed, when: &str) {
    let before = assert_sound(t, pushed, true, when);
    t.ok("prune", &["--keep-last", "100"]);
    let after = assert_sound(t, pushed, false, &format!("{when}, then a prune"));
    assert_eq!(before, after, "{when}: the prune kept every snapshot");
}

/// A snapshot file like `base` with some pages changed (the last byte of each, past the page's
/// contents in these fixtures) and its SHA-256 trailer made again: `seed` picks the pages and
/// what they hold, so files of different seeds share most of their pages.
fn variant(base: &[u8], seed: u64, pages: usize) -> Vec<u8> {
    let mut v = base.to_vec();
    let body = v.len() - 32;
    let n = (body / 4096) as u64;
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    for _ in 0..pages {
        // Not the two meta pages.
        let p = 2 + rng.below(n - 2);
        let at = (p as usize) * 4096 + 4095;
        v[at] = v[at].wrapping_add(1 + (seed % 250) as u8);
    }
    let digest = Sha256::digest(&v[..body]);
    v[body..].copy_from_slice(&digest);
    v
}

/// Writes `bytes` to `dir/name`; its path.
fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write snapshot");
    p
}

/// Deterministic pseudo-random numbers (xorshift).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

pub(super) fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success());
}

fn pack_names(repo: &Path) -> Vec<PathBuf> {
    support::files::paths(&repo.join("packs"))
}

/// A repository with five snapshots of `base` (each changing a few pages of the one before's
/// base), as in the issue; their IDs, oldest first.
fn five(t: &Target, work: &Path, base: &[u8], pushed: &mut Pushed) -> Vec<String> {
    t.ok("init", &[]);
    let mut ids = Vec::new();
    for i in 0..5u64 {
        let bytes = if i == 0 {
            base.to_vec()
        } else {
            variant(base, i, 40)
        };
        let f = file(work, &format!("snap{i}.db"), &bytes);
        pushed.add(bytes);
        ids.push(t.push(&f));
    }
    ids
}

/// Issue 19 item 1, as reported: a prune of two snapshots is killed once its first new pack is
/// published (the state is made exactly: the manifests removed as that prune removes them
/// first, and the packs it writes copied in from a run of it on a copy of the repository).
/// `check --read-data` is clean; the next prune writes the same packs again and must not
/// delete them.
#[test]
fn a_prune_killed_after_publishing_its_packs_loses_nothing_to_the_next_prune() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    let t = Target::local(&repo);
    let base = std::fs::read(fixtures::snapshot("synced-v35.db")).expect("fixture");
    let mut pushed = Pushed::default();
    let ids = five(&t, work.path(), &base, &mut pushed);

    // What the prune writes, from a full run of it on a copy.
    let copy = work.path().join("copy");
    copy_dir(&repo, &copy);
    let before: Vec<PathBuf> = pack_names(&repo);
    let c = Target::local(&copy);
    let r = c.json("prune", &[ids[0].as_str(), ids[1].as_str(), "-w", "json"]);
    assert!(r["packsWritten"].as_u64().expect("written") > 0, "{r}");
    let written: Vec<PathBuf> = pack_names(&copy)
        .into_iter()
        .map(|p| repo.join(p.strip_prefix(&copy).expect("prefix")))
        .filter(|p| !before.contains(p))
        .collect();
    assert!(!written.is_empty());

    // The killed prune: manifests gone, its new packs published, nothing else.
    t.ok("forget", &[ids[0].as_str(), ids[1].as_str()]);
    for p in &written {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::copy(copy.join(p.strip_prefix(&repo).expect("prefix")), p).expect("copy pack");
    }
    assert_whole(&t, &pushed, "after the killed prune");
    // The index as it is now, with the killed prune's packs in it: what another machine's
    // index cache holds when the repository is in object storage.
    let lagging = work.path().join("lagging.redb");
    std::fs::copy(repo.join("index.redb"), &lagging).expect("copy index");
    let r = t.json("prune", &["--keep-last", "100", "-w", "json"]);
    assert!(r["packsWritten"].as_u64().expect("written") > 0, "{r}");
    for p in &written {
        assert!(p.exists(), "the pack {p:?} written again was deleted: {r}");
    }
    assert_eq!(
        assert_whole(&t, &pushed, "after the next prune"),
        ids[2..].to_vec()
    );
    // That other index learns that the old packs are gone; the chunks it located in them are
    // in the packs it already knew, which it reads again.
    std::fs::copy(&lagging, repo.join("index.redb")).expect("put back");
    assert_whole(&t, &pushed, "with the lagging index");
}

/// The reproduction with a real SIGKILL: the prune is killed as soon as a new pack
/// appears under packs/ (where the kill lands varies; whatever it leaves must be sound).
#[test]
fn a_prune_sigkilled_when_its_first_pack_appears_loses_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    let t = Target::local(&repo);
    let base = std::fs::read(fixtures::snapshot("k8s-v35.db")).expect("fixture");
    let mut pushed = Pushed::default();
    let ids = five(&t, work.path(), &base, &mut pushed);
    let before = pack_names(&repo);
    let mut child = t
        .cmd("prune", &[ids[0].as_str(), ids[1].as_str()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prune");
    loop {
        if pack_names(&repo).iter().any(|p| !before.contains(p)) {
            let _ = child.kill();
            break;
        }
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        // Polls every 0.2 ms (a prune writes its first pack well after that) instead of
        // spinning, which took a whole core from the tests running beside this one.
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.wait();
    assert_survives(&t, &pushed, "after the prune killed at its first pack");
}

/// Every crash point of push, forget and prune in a directory: each command is run on a fresh
/// copy of one repository, stopped after its first, second, ... durable step until it
/// finishes, and each state it leaves is checked (and pruned, and checked again).
#[test]
fn every_crash_point_of_push_forget_and_prune_leaves_the_listed_snapshots_whole() {
    let work = tempfile::tempdir().expect("tempdir");
    let template = work.path().join("template");
    let t = Target::local(&template);
    let base = std::fs::read(fixtures::snapshot("synced-v35.db")).expect("fixture");
    let mut pushed = Pushed::default();
    let ids = five(&t, work.path(), &base, &mut pushed);
    let next = variant(&base, 77, 3);
    let next_file = file(work.path(), "next.db", &next);
    pushed.add(next);

    // Each command, and what is done to the copy first (a forget, for a prune that only
    // collects garbage).
    let forget: Vec<&str> = vec![ids[0].as_str(), ids[1].as_str()];
    type Case<'a> = (&'a str, Vec<&'a str>, Option<&'a [&'a str]>);
    let cases: Vec<Case> = vec![
        ("push", vec![s(&next_file)], None),
        ("forget", forget.clone(), None),
        ("prune", forget.clone(), None),
        ("prune", vec!["--keep-last", "2"], None),
        ("prune", vec![], Some(&forget)),
    ];
    // The cases share nothing but the template they copy, so they run side by side: each
    // is a long sequence of short etcdsnap processes, mostly waiting, and this test would
    // otherwise be the longest of the suite by far.
    std::thread::scope(|scope| {
        for (case, (sub, args, first)) in cases.iter().enumerate() {
            let (work, template, pushed) = (work.path(), &template, &pushed);
            scope.spawn(move || {
                let mut steps = 0;
                for n in 1.. {
                    let repo = work.join(format!("r{case}-{n}"));
                    copy_dir(template, &repo);
                    let r = Target::local(&repo);
                    if let Some(f) = first {
                        r.ok("forget", f);
                    }
                    let done = r.crash_after(n, sub, args);
                    assert_survives(
                        &r,
                        pushed,
                        &format!("{sub} {args:?} stopped after step {n}"),
                    );
                    std::fs::remove_dir_all(&repo).expect("clean up");
                    if done {
                        break;
                    }
                    steps = n;
                    assert!(n < 200, "{sub} never finished");
                }
                assert!(steps >= 2, "{sub} {args:?}: only {steps} crash points");
            });
        }
    });
}

/// Random sequences of push, forget and prune, each stopped at a random durable step or killed
/// with SIGKILL at a random moment: after each, every listed snapshot reads back byte for byte
/// (and every few steps `check --read-data` is clean). Seeded; `ETCDSNAP_CRASH_SEED` picks
/// another seed. Bounded to about 20 seconds.
#[test]
fn random_pushes_forgets_and_prunes_killed_at_random_never_lose_a_listed_snapshot() {
    let seed = std::env::var("ETCDSNAP_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_0019_u64);
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    let t = Target::local(&repo);
    t.ok("init", &[]);
    random_sequence(&t, work.path(), seed, Duration::from_secs(20), None);
}

/// The random sequence, on any target; `restore_locks` is called after each kill (object
/// storage: a killed command's lock is aged and removed with `backup unlock`).
fn random_sequence(
    t: &Target,
    work: &Path,
    seed: u64,
    budget: Duration,
    restore_locks: Option<&dyn Fn()>,
) {
    let base = std::fs::read(fixtures::snapshot("synced-v35.db")).expect("fixture");
    let mut rng = Rng(seed | 1);
    let mut pushed = Pushed::default();
    // A pool of snapshots sharing most pages (a repeated push stores a second snapshot of
    // the same bytes).
    let pool: Vec<PathBuf> = (0..8u64)
        .map(|i| {
            let bytes = variant(&base, 1000 + i, 1 + (i % 3) as usize);
            let f = file(work, &format!("pool{i}.db"), &bytes);
            pushed.add(bytes);
            f
        })
        .collect();
    let started = Instant::now();
    let (mut steps, mut kills) = (0, 0);
    while started.elapsed() < budget || steps < 12 {
        steps += 1;
        let listed = t.listed();
        let pick = rng.below(10);
        let owned: Vec<String> = match pick {
            0..=4 => vec![s(&pool[rng.below(pool.len() as u64) as usize]).to_string()],
            _ if listed.is_empty() => vec!["--keep-last".into(), "1".into()],
            5 | 6 => {
                let (id, _) = &listed[rng.below(listed.len() as u64) as usize];
                vec![id[..12].to_string()]
            }
            _ => vec!["--keep-last".into(), (1 + rng.below(4)).to_string()],
        };
        let sub = match pick {
            0..=4 => "push",
            5 | 7 => "forget",
            _ => "prune",
        };
        if sub != "push" && listed.is_empty() {
            continue;
        }
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        let when = format!("seed {seed:#x} step {steps}: {sub} {args:?}");
        match rng.below(3) {
            0 => {
                let n = 1 + rng.below(12) as u32;
                if !t.crash_after(n, sub, &args) {
                    kills += 1;
                }
            }
            1 => {
                let mut child = t
                    .cmd(sub, &args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn");
                std::thread::sleep(Duration::from_micros(rng.below(150_000)));
                let _ = child.kill();
                let status = child.wait().expect("wait");
                if status.signal() == Some(libc::SIGKILL) {
                    kills += 1;
                } else {
                    let mut e = String::new();
                    if let Some(mut p) = child.stderr.take() {
                        let _ = p.read_to_string(&mut e);
                    }
                    assert!(status.success(), "{when}: {e}");
                }
            }
            _ => {
                t.ok(sub, &args);
            }
        }
        if let Some(f) = restore_locks {
            f();
        }
        assert_sound(t, &pushed, steps % 4 == 0, &when);
    }
    assert!(kills >= 3, "only {kills} kills in {steps} steps");
    assert_survives(t, &pushed, &format!("seed {seed:#x}: at the end"));
}

// ---------------------------------------------------------------------------------------------
// Object storage (s3s-fs on loopback).

pub(super) const BUCKET: &str = "backups";
const PREFIX: &str = "crash/etcd";

pub(super) fn s3_server() -> Option<S3Server> {
    let bin = support::tools::require(support::tools::s3s_fs())?;
    Some(S3Server::start(&bin, BUCKET))
}

fn url() -> String {
    format!("s3://{BUCKET}/{PREFIX}")
}

/// The lock objects in the bucket (files of s3s-fs).
fn lock_files(server: &S3Server) -> Vec<PathBuf> {
    let dir = server.object_file(BUCKET, &format!("{PREFIX}/locks"));
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect()
}

/// Makes every lock object look last renewed an hour ago (a dead holder's).
fn age_locks(server: &S3Server) {
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for p in lock_files(server) {
        std::fs::File::options()
            .write(true)
            .open(&p)
            .expect("open lock")
            .set_modified(hour_ago)
            .expect("set mtime");
    }
}

/// Every crash point of prune in object storage, seen from the machine that ran it and from
/// another one whose index cache lags behind; the killed prune's lock is aged and removed
/// with `backup unlock`.
#[test]
fn every_crash_point_of_prune_in_object_storage_leaves_the_listed_snapshots_whole() {
    let Some(server) = s3_server() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let t = Target::s3(&server, &url(), &work.path().join("cache"));
    let other = t.with_cache(&work.path().join("other-cache"));
    let base = std::fs::read(fixtures::snapshot("synced-v35.db")).expect("fixture");
    let mut pushed = Pushed::default();
    five(&t, work.path(), &base, &mut pushed);
    other.listed();
    let mut seed = 100u64;
    let mut steps = 0;
    for n in 1.. {
        // Two new snapshots, and a prune of the oldest two.
        for _ in 0..2 {
            seed += 1;
            let bytes = variant(&base, seed, 3);
            let f = file(work.path(), &format!("s{seed}.db"), &bytes);
            pushed.add(bytes);
            t.push(&f);
        }
        let listed = t.listed();
        let done = t.crash_after(n, "prune", &[listed[0].0.as_str(), listed[1].0.as_str()]);
        if !done {
            age_locks(&server);
            let out = String::from_utf8_lossy(&t.ok("unlock", &[])).into_owned();
            assert!(
                lock_files(&server).is_empty(),
                "unlock removed the stale locks: {out}"
            );
        }
        let when = format!("prune stopped after step {n}");
        // The other machine's cache takes in what the killed prune left.
        other.listed();
        assert_survives(&t, &pushed, &when);
        assert_sound(
            &other,
            &pushed,
            true,
            &format!("{when}, then the other machine"),
        );
        if done {
            break;
        }
        steps = n;
        assert!(n < 200, "prune never finished");
    }
    assert!(steps >= 4, "only {steps} crash points");
}

/// The random sequence against s3s-fs (shorter).
#[test]
fn random_kills_in_object_storage_never_lose_a_listed_snapshot() {
    let Some(server) = s3_server() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let t = Target::s3(&server, &url(), &work.path().join("cache"));
    t.ok("init", &[]);
    let release = || {
        age_locks(&server);
        t.ok("unlock", &[]);
    };
    random_sequence(
        &t,
        work.path(),
        0x0005_3319,
        Duration::from_secs(15),
        Some(&release),
    );
}

/// Issue 19 item 6: a command waiting for a lock a prune left in the bucket says on stderr
/// which lock, whose (host, PID), and until when; `backup unlock` leaves a live lock alone,
/// removes it with `--all`, and removes a stale one by default.
#[test]
fn a_command_waiting_for_a_lock_in_object_storage_says_why_and_unlock_breaks_it() {
    let Some(server) = s3_server() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let t = Target::s3(&server, &url(), &work.path().join("cache"));
    t.ok("init", &[]);
    let snap = fixtures::snapshot("small-v35.db");
    t.push(&snap);
    let put_lock = |name: &str| {
        let p = server.object_file(BUCKET, &format!("{PREFIX}/locks/{name}"));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, b"pid 4243\n").expect("put lock");
        p
    };
    let lock = put_lock("exclusive-otherhost-4243-00bb");
    let err = work.path().join("stderr");
    let mut check = t
        .cmd("check", &[])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawn check");
    let deadline = Instant::now() + Duration::from_secs(20);
    let said = loop {
        let e = std::fs::read_to_string(&err).expect("read stderr");
        if e.contains("waiting") || Instant::now() > deadline {
            break e;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        check.try_wait().expect("try_wait").is_none(),
        "check waits: {said}"
    );
    for part in [
        "waiting for the lock of",
        "locks/exclusive-otherhost-4243-00bb",
        "host otherhost",
        "pid 4243",
        "stale at 20",
        "backup unlock",
    ] {
        assert!(said.contains(part), "{part:?} in {said}");
    }

    // Not stale: unlock leaves it (and says it is held); --all removes it, and check goes on.
    let out = String::from_utf8_lossy(&t.ok("unlock", &[])).into_owned();
    assert!(lock.exists(), "{out}");
    assert!(
        out.contains("still held") && out.contains("exclusive-otherhost-4243-00bb"),
        "{out}"
    );
    let out = String::from_utf8_lossy(&t.ok("unlock", &["--all"])).into_owned();
    assert!(!lock.exists(), "{out}");
    assert!(out.contains("removed lock"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = check.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = check.kill();
            panic!("check did not go on after the lock was removed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());

    // A stale lock (its holder died an hour ago): unlock removes it without --all.
    let dead = put_lock("exclusive-deadhost-99-00cc");
    age_locks(&server);
    let out = String::from_utf8_lossy(&t.ok("unlock", &[])).into_owned();
    assert!(!dead.exists(), "{out}");
    assert!(out.contains("deadhost") && out.contains("stale"), "{out}");
    let out = String::from_utf8_lossy(&t.ok("unlock", &[])).into_owned();
    assert!(out.contains("no stale lock"), "{out}");
    // And prune, which does not wait, names the way out.
    let _live = put_lock("shared-otherhost-4244-00dd");
    let o = t.run("prune", &["--keep-last", "1"]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("shared-otherhost-4244-00dd") && e.contains("backup unlock"),
        "{e}"
    );
}

/// In a directory: a push waiting for a prune's flock names the holder's PID; `unlock`
/// explains that a local lock cannot be stale and who holds it.
#[test]
fn a_command_waiting_for_a_local_lock_says_why() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    let t = Target::local(&repo);
    t.ok("init", &[]);
    // This test process holds the lock as a prune does.
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(repo.join("lock"))
        .expect("open lock");
    f.lock().expect("lock");
    std::fs::write(repo.join("lock"), format!("pid {}\n", std::process::id())).expect("pid");
    let err = work.path().join("stderr");
    let mut push = t
        .cmd("push", &[s(&fixtures::snapshot("small-v35.db"))])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawn push");
    let deadline = Instant::now() + Duration::from_secs(20);
    let said = loop {
        let e = std::fs::read_to_string(&err).expect("read stderr");
        if e.contains("waiting") || Instant::now() > deadline {
            break e;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(push.try_wait().expect("try_wait").is_none(), "{said}");
    assert!(
        said.contains("waiting for the lock of")
            && said.contains(&format!("pid {}", std::process::id()))
            && said.contains("when that process ends"),
        "{said}"
    );
    let out = String::from_utf8_lossy(&t.ok("unlock", &["--all"])).into_owned();
    assert!(out.contains("still held") && out.contains("flock"), "{out}");
    f.unlock().expect("unlock");
    drop(f);
    let st = push.wait().expect("wait");
    assert!(st.success());
    assert_eq!(t.listed().len(), 1);
}
