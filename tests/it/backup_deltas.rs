//! Continuous backup's recorded changes in the repository (issue 22): segments stored on top of
//! a full snapshot (`put_changes`, `changes`, `read_changes`) in a directory and in s3s-fs,
//! plain and encrypted; the same segment again is a no-op, a conflicting or overlapping one is
//! refused; a flipped byte is found by a read and by `backup check`; `backup ls` shows the
//! range each snapshot restores to and the holes; forget and prune stopped after every durable
//! step (`ETCDSNAP_TEST_CRASH_AFTER`) never lose a listed snapshot's segments and delete a
//! forgotten one's; and `backup cat/restore --to-revision R` answers as a live etcd 3.5.1
//! answered `get "" --prefix --rev R` during a real workload recorded with `etcdctl watch`.
//!
//! Writes through the library run in a child process (this test binary again, running
//! [`child`]) where the crash hook or s3s-fs's environment must not touch this process.

use crate::support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcdsnap::etcd::KeyValue;
use etcdsnap::etcd::change::{
    ChangeSegment, CompactionRecord, EventKind, KeyEvent, LeaseRecord, RevisionChanges,
};
use etcdsnap::repo::{MasterKey, PushOptions, RepoError, Repository, SnapshotId};
use serde_json::{Value, json};
use support::cli::s;
use support::etcd::ClusterSpec;
use support::tools::{self, EtcdVersion};
use support::{b64, fixtures, require_tool};

use super::backup_crash::{BUCKET, Target, copy_dir, s3_server};

const CHILD: &str = "ETCDSNAP_DELTAS_CHILD";

/// A segment of made-up changes over `first..=last` (empty when `last < first`): two events a
/// revision, a lease, a compaction record. Deterministic, so a child can check what it reads.
pub(super) fn seg(first: i64, last: i64) -> ChangeSegment {
    let at = |n: i64| UNIX_EPOCH + Duration::from_secs(1_800_000_000 + n as u64 * 7);
    let revisions = (first..=last)
        .map(|r| RevisionChanges {
            revision: r,
            events: vec![
                KeyEvent {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: format!("/k/{}", r % 5).into_bytes(),
                        create_revision: r - 1,
                        mod_revision: r,
                        version: 2,
                        value: format!("value of {r}").repeat(3).into_bytes(),
                        lease: 0x77,
                    },
                },
                KeyEvent {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: format!("/gone/{r}").into_bytes(),
                        mod_revision: r,
                        ..KeyValue::default()
                    },
                },
            ],
            observed: at(r),
        })
        .collect();
    ChangeSegment {
        first,
        last,
        revisions,
        leases: vec![LeaseRecord {
            id: 0x77,
            ttl: 300,
            alive_at_end: true,
        }],
        compactions: vec![CompactionRecord {
            revision: first - 1,
            seen_at_revision: last,
        }],
        sealed: at(last) + Duration::from_millis(first as u64 % 1000),
    }
}

/// The segment ranges a child puts: `[[first, last], ...]`.
fn ranges_json(r: &[(i64, i64)]) -> Value {
    json!(r.iter().map(|(f, l)| json!([f, l])).collect::<Vec<_>>())
}

/// What the child does, from `ETCDSNAP_DELTAS_CHILD` (a JSON object):
/// `{"repo", "key"?, "op": "put" | "verify", "base", "ranges"}`. `put` stores the segments of
/// `ranges` in order; `verify` checks that the stored segments are a prefix of `ranges` (or all
/// of them, with `"all": true`) and each reads back equal, and prints the stored ranges.
#[test]
#[ignore = "run by the other tests of this module in a child process"]
fn child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let v: Value = serde_json::from_str(&spec).expect("child spec");
    let key = v["key"]
        .as_str()
        .map(|k| MasterKey::from_file(Path::new(k)).expect("key"));
    let repo = Repository::open_at(v["repo"].as_str().expect("repo"), key.as_ref()).expect("open");
    let base = repo
        .find(v["base"].as_str().expect("base"))
        .expect("base")
        .id;
    let ranges: Vec<(i64, i64)> = v["ranges"]
        .as_array()
        .expect("ranges")
        .iter()
        .map(|r| (r[0].as_i64().expect("first"), r[1].as_i64().expect("last")))
        .collect();
    match v["op"].as_str() {
        Some("put") => {
            for (f, l) in &ranges {
                repo.put_changes(&base, &seg(*f, *l)).expect("put_changes");
            }
        }
        Some("verify") => {
            let stored = repo.changes(&base).expect("changes");
            let got: Vec<(i64, i64)> = stored.iter().map(|i| (i.first, i.last)).collect();
            assert!(
                ranges.starts_with(&got),
                "stored {got:?}, not a prefix of {ranges:?}"
            );
            if v["all"] == true {
                assert_eq!(got, ranges);
            }
            for i in &stored {
                let read = repo.read_changes(&base, i).expect("read_changes");
                assert_eq!(
                    read,
                    seg(i.first, i.last),
                    "segment {}..={}",
                    i.first,
                    i.last
                );
                assert_eq!(i.sealed, read.sealed);
            }
            println!("\nRANGES {}", ranges_json(&got));
        }
        other => panic!("unknown child op {other:?}"),
    }
}

/// Runs [`child`] with `spec` for the repository `t` (its environment too), stopped after its
/// `crash`-th durable step if given: whether it finished, and its standard output.
fn run_child(t: &Target, key: Option<&Path>, spec: Value, crash: Option<u32>) -> (bool, String) {
    let mut spec = spec;
    spec["repo"] = json!(t.url);
    if let Some(k) = key {
        spec["key"] = json!(s(k));
    }
    let mut c = Command::new(std::env::current_exe().expect("test binary"));
    c.args([
        "backup_deltas::child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    t.apply_env(&mut c);
    c.env(CHILD, spec.to_string());
    if let Some(n) = crash {
        c.env("ETCDSNAP_TEST_CRASH_AFTER", n.to_string());
    }
    let o = c.output().expect("run child");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    if o.status.success() {
        return (true, out);
    }
    use std::os::unix::process::ExitStatusExt;
    assert!(
        crash.is_some() && o.status.signal() == Some(libc::SIGKILL),
        "child {spec} failed: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (false, out)
}

/// The ranges a `verify` child printed.
fn verified(out: &str) -> Vec<(i64, i64)> {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("RANGES "))
        .unwrap_or_else(|| panic!("no ranges in child output: {out}"));
    serde_json::from_str::<Vec<(i64, i64)>>(line).expect("ranges")
}

fn verify(
    t: &Target,
    key: Option<&Path>,
    base: &str,
    ranges: &[(i64, i64)],
    all: bool,
) -> Vec<(i64, i64)> {
    let spec = json!({"op": "verify", "base": base, "ranges": ranges_json(ranges), "all": all});
    let (done, out) = run_child(t, key, spec, None);
    assert!(done);
    verified(&out)
}

fn put(t: &Target, key: Option<&Path>, base: &str, ranges: &[(i64, i64)]) {
    let spec = json!({"op": "put", "base": base, "ranges": ranges_json(ranges)});
    assert!(run_child(t, key, spec, None).0);
}

/// The ranges after a snapshot at revision `r`: three segments, a quiet (empty) one between.
pub(super) fn chain_after(r: i64) -> Vec<(i64, i64)> {
    vec![
        (r + 1, r + 4),
        (r + 5, r + 5),
        (r + 6, r + 5),
        (r + 6, r + 12),
    ]
}

/// `backup ls -w json`'s entry for `id`.
fn ls_entry(t: &Target, id: &str) -> Value {
    t.json("ls", &["-w", "json"])
        .as_array()
        .expect("array")
        .iter()
        .find(|v| v["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed"))
}

fn revision_of(t: &Target, id: &str) -> i64 {
    ls_entry(t, id)["revision"].as_i64().expect("revision")
}

/// Put, list, read back, idempotence and refusals, through the library in this process.
#[test]
fn segments_round_trip_and_conflicts_are_refused_in_a_directory() {
    let work = tempfile::tempdir().expect("tempdir");
    let key_file = work.path().join("key");
    for encrypted in [false, true] {
        let root = work.path().join(format!("repo-{encrypted}"));
        let key = encrypted.then(|| MasterKey::generate(&key_file).expect("key"));
        let repo = Repository::init_dir(&root, key.as_ref()).expect("init");
        let info = repo
            .push(&fixtures::snapshot("small-v35.db"), &PushOptions::default())
            .expect("push")
            .info;
        let ranges = chain_after(info.revision);
        for (f, l) in &ranges {
            repo.put_changes(&info.id, &seg(*f, *l)).expect("put");
        }
        // Again: nothing changes.
        let before = support::files::paths(&root.join("deltas"));
        for (f, l) in &ranges {
            repo.put_changes(&info.id, &seg(*f, *l)).expect("put again");
        }
        assert_eq!(support::files::paths(&root.join("deltas")), before);
        assert_eq!(before.len(), ranges.len());
        let listed = repo.changes(&info.id).expect("changes");
        let got: Vec<(i64, i64)> = listed.iter().map(|i| (i.first, i.last)).collect();
        assert_eq!(got, ranges);
        for i in &listed {
            assert_eq!(
                repo.read_changes(&info.id, i).expect("read"),
                seg(i.first, i.last)
            );
            assert!(i.size > 0);
        }
        // Nothing readable in the objects of an encrypted repository.
        if encrypted {
            for p in &before {
                let b = std::fs::read(p).expect("read");
                assert!(!b.windows(8).any(|w| w == b"value of"), "{}", p.display());
            }
        }
        // The same range with other contents, overlaps, a range at the base: refused.
        let r = info.revision;
        let mut other = seg(r + 1, r + 4);
        other.revisions[1].events[0].kv.value = b"another value".to_vec();
        let refused = [
            other,
            seg(r + 3, r + 8),
            seg(r + 12, r + 14),
            seg(r, r + 1),
            seg(r + 3, r + 2),
        ];
        for s in &refused {
            match repo.put_changes(&info.id, s) {
                Err(RepoError::Conflict(msg)) => assert!(!msg.is_empty()),
                other => panic!("{}..={}: {other:?}", s.first, s.last),
            }
        }
        assert_eq!(support::files::paths(&root.join("deltas")), before);
        // A segment that breaks the model's rules is refused before anything is written.
        let mut bad = seg(r + 13, r + 14);
        bad.revisions.reverse();
        assert!(matches!(
            repo.put_changes(&info.id, &bad),
            Err(RepoError::Usage(_))
        ));
        // An unknown base.
        assert!(matches!(
            repo.put_changes(&SnapshotId([7; 32]), &seg(r + 13, r + 14)),
            Err(RepoError::NoSuchSnapshot(_))
        ));
        // The wrong key reads nothing.
        if encrypted {
            let wrong = MasterKey::generate(&work.path().join("wrong")).expect("key");
            assert!(Repository::open_dir(&root, Some(&wrong)).is_err());
        }
    }
}

/// The same in s3s-fs, plain and encrypted, written and read back by another process.
#[test]
fn segments_round_trip_in_object_storage() {
    let Some(server) = s3_server() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let key_file = work.path().join("key");
    for encrypted in [false, true] {
        let url = format!("s3://{BUCKET}/deltas-{encrypted}");
        let t = Target::s3(
            &server,
            &url,
            &work.path().join(format!("cache-{encrypted}")),
        );
        let key = encrypted.then_some(key_file.as_path());
        match key {
            Some(k) => t.ok("init", &["--encrypt", "--key-file", s(k)]),
            None => t.ok("init", &[]),
        };
        let mut push_args = vec![s(&fixtures::snapshot("small-v35.db")).to_string()];
        if let Some(k) = key {
            push_args.extend(["--key-file".into(), s(k).to_string()]);
        }
        push_args.extend(["-w".into(), "json".into()]);
        let a: Vec<&str> = push_args.iter().map(String::as_str).collect();
        let pushed = t.json("push", &a);
        let (id, r) = (
            pushed["id"].as_str().expect("id").to_string(),
            pushed["revision"].as_i64().expect("revision"),
        );
        let ranges = chain_after(r);
        put(&t, key, &id, &ranges);
        put(&t, key, &id, &ranges);
        assert_eq!(verify(&t, key, &id, &ranges, true), ranges);
        let objects: Vec<String> = server
            .objects(BUCKET)
            .into_iter()
            .filter(|o| o.starts_with(&format!("deltas-{encrypted}/deltas/{id}/")))
            .collect();
        assert_eq!(objects.len(), ranges.len(), "{objects:?}");
        // A conflicting segment is refused in object storage too.
        let spec = json!({"op": "put", "base": id, "ranges": ranges_json(&[(r + 2, r + 6)])});
        let mut c = Command::new(std::env::current_exe().expect("test binary"));
        c.args([
            "backup_deltas::child",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ]);
        let mut spec = spec;
        spec["repo"] = json!(t.url);
        if let Some(k) = key {
            spec["key"] = json!(s(k));
        }
        c.envs(t.env.iter().map(|(k, v)| (k, v)))
            .env(CHILD, spec.to_string());
        let o = c.output().expect("run child");
        assert!(!o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("overlaps the stored"),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        // A flipped byte in one object: the read and check name it.
        let victim = &objects[1];
        let file = server.object_file(BUCKET, victim);
        let mut b = std::fs::read(&file).expect("object");
        let at = b.len() - 5;
        b[at] ^= 0x40;
        std::fs::write(&file, &b).expect("write");
        let mut check = vec!["-w", "json"];
        if let Some(k) = key {
            check.extend(["--key-file", s(k)]);
        }
        let o = t.run("check", &check);
        assert!(!o.status.success());
        let v: Value = serde_json::from_slice(&o.stdout).expect("check json");
        let name = victim.rsplit('/').next().expect("name");
        assert!(
            v["problems"].as_array().expect("problems").iter().any(|p| p
                .as_str()
                .is_some_and(|p| p.contains(name) && p.contains("deltas/"))),
            "{v}"
        );
    }
}

/// A flipped byte anywhere in a segment object is an error naming it, on read and in check;
/// a missing middle segment is a hole that check reports and `backup ls` shows.
#[test]
fn damaged_and_missing_segments_are_found_and_ls_shows_ranges_and_gaps() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path().join("repo");
    let t = Target::local(&root);
    t.ok("init", &[]);
    let id = t.push(&fixtures::snapshot("small-v35.db"));
    let r = revision_of(&t, &id);
    // Before any segment: the plain listing.
    let plain = String::from_utf8(t.ok("ls", &[])).expect("utf-8");
    assert!(!plain.contains("RESTORES TO"), "{plain}");
    let ranges = chain_after(r);
    put(&t, None, &id, &ranges);
    let e = ls_entry(&t, &id);
    let restorable = &e["restorable"];
    assert_eq!(restorable["fromRevision"], r);
    assert_eq!(restorable["toRevision"], r + 12);
    assert_eq!(restorable["segments"], 4);
    assert_eq!(restorable["gaps"], json!([]));
    let sealed = seg(r + 6, r + 12).sealed;
    let sealed = chrono::DateTime::<chrono::Utc>::from(sealed)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert_eq!(restorable["toTime"], sealed.as_str());
    let table = String::from_utf8(t.ok("ls", &[])).expect("utf-8");
    assert!(table.contains("RESTORES TO REVISION"), "{table}");
    assert!(table.contains(&(r + 12).to_string()), "{table}");
    let o = t.run("check", &["--read-data"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).contains("4 delta segments"));

    let dir = root.join("deltas").join(&id);
    let files = support::files::paths(&dir);
    assert_eq!(files.len(), 4);
    // Every byte of one object flipped in turn (a sample of positions of the largest).
    let victim = files
        .iter()
        .max_by_key(|p| std::fs::metadata(p).expect("stat").len())
        .expect("one");
    let good = std::fs::read(victim).expect("read");
    let name = victim
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let repo = Repository::open_dir(&root, None).expect("open");
    let base = repo.find(&id).expect("find").id;
    for at in (0..good.len())
        .step_by(good.len() / 40 + 1)
        .chain([good.len() - 1])
    {
        let mut b = good.clone();
        b[at] ^= 0x01;
        std::fs::write(victim, &b).expect("write");
        let err = repo.changes(&base).and_then(|list| {
            list.iter()
                .try_for_each(|i| repo.read_changes(&base, i).map(|_| ()))
        });
        let msg = err.expect_err(&format!("flip at {at} found")).to_string();
        assert!(msg.contains(&name), "flip at {at}: {msg}");
    }
    std::fs::write(victim, &good[..good.len() - 3]).expect("truncate");
    let o = t.run("check", &["-w", "json"]);
    assert!(!o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v["problems"].to_string().contains(&name), "{v}");
    std::fs::write(victim, &good).expect("restore");
    assert!(t.run("check", &[]).status.success());

    // A hole: the second segment gone.
    let second = dir.join(format!("{:020}-{:020}", r + 5, r + 5));
    std::fs::remove_file(&second).expect("remove");
    let o = t.run("check", &["-w", "json"]);
    assert!(!o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        v["problems"]
            .to_string()
            .contains(&format!("revisions {}..={}", r + 5, r + 5)),
        "{v}"
    );
    let e = ls_entry(&t, &id);
    assert_eq!(e["restorable"]["toRevision"], r + 4);
    assert_eq!(
        e["restorable"]["gaps"],
        json!([{"from": r + 5, "to": r + 5}])
    );
    let table = String::from_utf8(t.ok("ls", &[])).expect("utf-8");
    assert!(table.contains(&format!("{}", r + 5)), "{table}");
    // Restoring past the hole is refused, and says what can be restored.
    let o = t.run(
        "cat",
        &[
            "--to-revision",
            &(r + 8).to_string(),
            "-o",
            s(&work.path().join("x.db")),
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("revision {} is not restorable", r + 8)),
        "{err}"
    );
    assert!(err.contains(&format!("{}..={}", r, r + 4)), "{err}");
}

/// put_changes stopped after each durable step, then forget and prune of a snapshot with
/// segments stopped after each of theirs: every listed snapshot's segments read back whole,
/// check is clean, and the forgotten snapshot's segments are gone after the prune finishes.
/// In object storage (`short`) with chains of two segments and prune alone after put (forget's
/// steps are the same objects), so that the walk stays a few minutes on two cores.
fn crash_points(
    t_of: &dyn Fn(&str) -> Target,
    template: &Target,
    reset: &dyn Fn(&str),
    short: bool,
) {
    template.ok("init", &[]);
    let a = template.push(&fixtures::snapshot("small-v35.db"));
    let b = template.push(&fixtures::snapshot("auth-v35.db"));
    let (ra, rb) = (revision_of(template, &a), revision_of(template, &b));
    let (mut chain_a, mut chain_b) = (chain_after(ra), chain_after(rb));
    if short {
        chain_a.truncate(2);
        chain_b.truncate(2);
    }
    put(template, None, &a, &chain_a);

    // put_changes of b's chain, stopped after each step.
    let mut steps = 0;
    for n in 1.. {
        let name = format!("put{n}");
        reset(&name);
        let t = t_of(&name);
        let spec = json!({"op": "put", "base": b, "ranges": ranges_json(&chain_b)});
        let (done, _) = run_child(&t, None, spec, Some(n));
        // The killed writer is known gone: its lock in object storage goes too.
        t.ok("unlock", &["--all"]);
        let got = verify(&t, None, &b, &chain_b, done);
        assert!(got.len() <= n as usize, "{got:?} after {n} steps");
        assert_eq!(verify(&t, None, &a, &chain_a, true), chain_a);
        let o = t.run("check", &["-w", "json"]);
        let v: Value = serde_json::from_slice(&o.stdout).expect("check json");
        assert!(v["ok"] == true, "put stopped after {n}: {v}");
        // The agent goes on where it stopped.
        put(&t, None, &b, &chain_b[got.len()..]);
        assert_eq!(verify(&t, None, &b, &chain_b, true), chain_b);
        if done {
            break;
        }
        steps = n;
        assert!(n < 100, "put never finished");
    }
    assert!(
        steps >= chain_b.len() as u32 - 1,
        "only {steps} crash points of put"
    );

    // With both chains stored: forget and prune of a, stopped after each step.
    put(template, None, &b, &chain_b);
    let subs: &[&str] = if short {
        &["prune"]
    } else {
        &["forget", "prune"]
    };
    for &sub in subs {
        let mut steps = 0;
        for n in 1.. {
            let name = format!("{sub}{n}");
            reset(&name);
            let t = t_of(&name);
            let done = t.crash_after(n, sub, &[a.as_str()]);
            t.ok("unlock", &["--all"]);
            let when = format!("{sub} stopped after step {n}");
            let listed: Vec<String> = t.listed().into_iter().map(|(id, _)| id).collect();
            assert!(listed.contains(&b), "{when}");
            assert_eq!(verify(&t, None, &b, &chain_b, true), chain_b, "{when}");
            if listed.contains(&a) {
                assert_eq!(verify(&t, None, &a, &chain_a, true), chain_a, "{when}");
            }
            let o = t.run("check", &["-w", "json"]);
            let v: Value = serde_json::from_slice(&o.stdout).expect("check json");
            assert!(v["ok"] == true, "{when}: {v}");
            // Finishing: a's segments go with it, b's stay.
            if listed.contains(&a) {
                t.ok("forget", &[a.as_str()]);
            }
            let report = t.json("prune", &["-w", "json"]);
            let ls = t.json("ls", &["-w", "json"]);
            assert_eq!(ls.as_array().map(Vec::len), Some(1), "{when}: {ls}");
            assert_eq!(verify(&t, None, &b, &chain_b, true), chain_b, "{when}");
            let again = t.json("prune", &["-w", "json"]);
            assert_eq!(again["deltasDeleted"], 0, "{when}: {report} then {again}");
            let o = t.run("check", &["-w", "json"]);
            let v: Value = serde_json::from_slice(&o.stdout).expect("check json");
            assert!(
                v["ok"] == true && v["notes"].to_string().find("forgotten").is_none(),
                "{when}: {v}"
            );
            if done {
                if sub == "prune" {
                    // The whole prune deleted a's segments itself.
                    assert!(report["deltasDeleted"] == 0, "{when}: {report}");
                }
                break;
            }
            steps = n;
            assert!(n < 200, "{sub} never finished");
        }
        if sub == "prune" {
            assert!(
                steps >= 3 + chain_a.len() as u32,
                "prune: only {steps} crash points (its segment deletions among them)"
            );
        }
    }
}

#[test]
fn every_crash_point_of_put_forget_and_prune_keeps_the_listed_snapshots_segments() {
    let work = tempfile::tempdir().expect("tempdir");
    let template = work.path().join("template");
    let path = |name: &str| work.path().join(name);
    crash_points(
        &|name| Target::local(&path(name)),
        &Target::local(&template),
        &|name| {
            let p = path(name);
            if p.exists() {
                std::fs::remove_dir_all(&p).expect("clean");
            }
            copy_dir(&template, &p);
        },
        false,
    );
}

#[test]
fn every_crash_point_of_put_forget_and_prune_in_object_storage() {
    let Some(server) = s3_server() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let target = |prefix: &str| {
        Target::s3(
            &server,
            &format!("s3://{BUCKET}/{prefix}"),
            &work.path().join(format!("cache-{prefix}")),
        )
    };
    let template_dir = server.object_file(BUCKET, "template");
    crash_points(
        &|name| target(name),
        &target("template"),
        &|name| {
            let to = server.object_file(BUCKET, name);
            if to.exists() {
                std::fs::remove_dir_all(&to).expect("clean");
            }
            copy_dir(&template_dir, &to);
            // A stale lock a killed command left is not copied along.
            let _ = std::fs::remove_dir_all(to.join("locks"));
        },
        true,
    );
}

// ---------------------------------------------------------------------------------------------
// A real etcd 3.5.1 workload, recorded with `etcdctl watch`, restored to revisions.

/// What the workload recorded: the live answers by revision and when each revision was made.
struct Recorded {
    answers: BTreeMap<i64, Value>,
    made: BTreeMap<i64, SystemTime>,
    /// Leases: ID, TTL, the revision when granted and when revoked.
    leases: Vec<(i64, i64, i64, Option<i64>)>,
    /// Compactions: (revision, revision when run).
    compactions: Vec<(i64, i64)>,
}

fn header_revision(v: &Value) -> i64 {
    v["header"]["revision"].as_i64().expect("header revision")
}

/// `kvs` and `count` of a range answer (headers name the member).
fn kvs(v: &Value) -> Value {
    json!({"kvs": v.get("kvs").cloned().unwrap_or(json!([])), "count": v.get("count").cloned().unwrap_or(json!(0))})
}

/// The watch output as segments of `per` revisions from `from` to `to`.
fn segments_from_watch(
    lines: &str,
    from: i64,
    to: i64,
    per: i64,
    rec: &Recorded,
) -> Vec<ChangeSegment> {
    let mut by_rev: BTreeMap<i64, Vec<KeyEvent>> = BTreeMap::new();
    for line in lines.lines().filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(line).expect("watch json");
        for e in v["Events"].as_array().into_iter().flatten() {
            let kv = &e["kv"];
            let n = |f: &str| kv[f].as_i64().unwrap_or(0);
            let b = |f: &str| {
                kv[f]
                    .as_str()
                    .map(|s| b64::decode(s).expect("base64"))
                    .unwrap_or_default()
            };
            let kind = if e["type"].as_i64() == Some(1) {
                EventKind::Delete
            } else {
                EventKind::Put
            };
            by_rev.entry(n("mod_revision")).or_default().push(KeyEvent {
                kind,
                kv: KeyValue {
                    key: b("key"),
                    create_revision: n("create_revision"),
                    mod_revision: n("mod_revision"),
                    version: n("version"),
                    value: b("value"),
                    lease: n("lease"),
                },
            });
        }
    }
    assert_eq!(
        by_rev.keys().copied().collect::<Vec<_>>(),
        ((from + 1)..=to).collect::<Vec<_>>(),
        "the watch delivered every revision"
    );
    let mut out = Vec::new();
    let mut first = from + 1;
    while first <= to {
        let last = (first + per - 1).min(to);
        let revisions = (first..=last)
            .map(|r| RevisionChanges {
                revision: r,
                events: by_rev[&r].clone(),
                observed: rec.made[&r],
            })
            .collect::<Vec<_>>();
        let used: Vec<i64> = revisions
            .iter()
            .flat_map(|r| r.events.iter().map(|e| e.kv.lease))
            .filter(|l| *l != 0)
            .collect();
        let leases = rec
            .leases
            .iter()
            .filter_map(|&(id, ttl, granted, revoked)| {
                let alive = granted <= last && revoked.is_none_or(|x| x > last);
                (alive || used.contains(&id)).then_some(LeaseRecord {
                    id,
                    ttl,
                    alive_at_end: alive,
                })
            })
            .collect();
        let compactions = rec
            .compactions
            .iter()
            .filter(|(_, seen)| *seen >= first && *seen <= last)
            .map(|&(revision, seen)| CompactionRecord {
                revision,
                seen_at_revision: seen,
            })
            .collect();
        out.push(ChangeSegment {
            first,
            last,
            revisions,
            leases,
            compactions,
            sealed: rec.made[&last] + Duration::from_millis(1),
        });
        first = last + 1;
    }
    out
}

/// `backup cat REPO POINT -o out`, then `etcdsnap -w json get out "" --prefix`.
fn cat_and_get(t: &Target, point: &[&str], out: &Path) -> Value {
    let mut args = point.to_vec();
    args.extend(["-o", s(out)]);
    let o = t.run("cat", &args);
    assert!(
        o.status.success(),
        "cat {point:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let g = Command::new(support::cli::BIN)
        .args(["-w", "json", "get", s(out), "", "--prefix"])
        .output()
        .expect("etcdsnap get");
    assert!(
        g.status.success(),
        "get {point:?}: {}",
        String::from_utf8_lossy(&g.stderr)
    );
    serde_json::from_slice(&g.stdout).expect("get json")
}

#[test]
fn restore_to_revision_answers_as_the_live_cluster_did() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    let work = tempfile::tempdir().expect("tempdir");
    let mut cluster = ClusterSpec::in_dir(&bins, 1, work.path()).start();
    let ctl = cluster.ctl();
    let rev = || header_revision(&ctl.json(&["get", "nothing-here"]));
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("dir/x", "x")] {
        ctl.put(k, v);
    }
    let lease_id = |out: &str| {
        let hex = out.split_whitespace().nth(1).expect("lease ID");
        i64::from_str_radix(hex, 16).expect("hex lease ID")
    };
    let l1 = lease_id(&ctl.ok(&["lease", "grant", "600"]));
    ctl.ok(&["put", "--lease", &format!("{l1:x}"), "leased/1", "one"]);
    let base_file = work.path().join("base.db");
    ctl.snapshot_save(&base_file)
        .expect_success("snapshot save");
    let base_rev = rev();
    let mut rec = Recorded {
        answers: BTreeMap::new(),
        made: BTreeMap::new(),
        leases: vec![(l1, 600, base_rev, None)],
        compactions: Vec::new(),
    };
    // The whole key space from the snapshot's revision on, as etcdctl prints it.
    let watch_out = work.path().join("watch.json");
    let mut watch = ctl
        .command(&[
            "watch",
            "-w",
            "json",
            "--rev",
            &(base_rev + 1).to_string(),
            "--prefix",
            "",
        ])
        .stdout(std::fs::File::create(&watch_out).expect("watch file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("etcdctl watch");
    std::thread::sleep(Duration::from_millis(50));
    let record = |rec: &mut Recorded| {
        let r = rev();
        rec.made.insert(r, SystemTime::now());
        let answer = ctl.json(&["get", "", "--prefix", "--rev", &r.to_string()]);
        rec.answers.insert(r, answer);
        r
    };
    ctl.put("a", "10");
    record(&mut rec);
    ctl.put("d", "4");
    let early = record(&mut rec);
    ctl.ok(&["del", "b"]);
    record(&mut rec);
    // One revision of three operations.
    let mut txn = ctl.command(&["txn"]);
    txn.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = txn.spawn().expect("txn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"\nput e 5\ndel c\nput a 11\n\n\n")
        .expect("txn ops");
    assert!(child.wait().expect("txn").success());
    record(&mut rec);
    let l2 = lease_id(&ctl.ok(&["lease", "grant", "900"]));
    rec.leases.push((l2, 900, rev(), None));
    ctl.ok(&["put", "--lease", &format!("{l2:x}"), "leased/2", "two"]);
    record(&mut rec);
    let l3 = lease_id(&ctl.ok(&["lease", "grant", "700"]));
    let granted = rev();
    ctl.ok(&["put", "--lease", &format!("{l3:x}"), "leased/3a", "three"]);
    record(&mut rec);
    ctl.ok(&["put", "--lease", &format!("{l3:x}"), "leased/3b", "three"]);
    record(&mut rec);
    // The revocation deletes both keys in one revision.
    ctl.ok(&["lease", "revoke", &format!("{l3:x}")]);
    let revoked = record(&mut rec);
    rec.leases.push((l3, 700, granted, Some(revoked)));
    ctl.ok(&["put", "a", "12"]);
    record(&mut rec);
    ctl.ok(&["del", "--prefix", "dir/"]);
    let now = record(&mut rec);
    ctl.ok(&["compact", &early.to_string()]);
    rec.compactions.push((early, now));
    ctl.ok(&["put", "f", "6"]);
    record(&mut rec);
    ctl.ok(&["put", "a", "13"]);
    record(&mut rec);
    ctl.ok(&[
        "put",
        "leased/1",
        "one again",
        "--lease",
        &format!("{l1:x}"),
    ]);
    let last = record(&mut rec);
    // Wait for the watch to deliver the last revision, then stop it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&watch_out).unwrap_or_default();
        if text.contains(&format!("\"mod_revision\":{last}")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "watch did not deliver {last}: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    // Stopped by its PID (etcdctl watch never ends by itself).
    let _ = watch.kill();
    let _ = watch.wait();
    let lines = std::fs::read_to_string(&watch_out).expect("watch output");
    let segments = segments_from_watch(&lines, base_rev, last, 3, &rec);
    let live_last = ctl.all_kvs();
    cluster.stop();

    // Into a repository: the snapshot (with the time it was saved), then the segments.
    let root = work.path().join("repo");
    let t = Target::local(&root);
    t.ok("init", &[]);
    let pushed = t.json("push", &[s(&base_file), "--time-from-file", "-w", "json"]);
    let id = pushed["id"].as_str().expect("id").to_string();
    assert_eq!(pushed["revision"], base_rev);
    let repo = Repository::open_dir(&root, None).expect("open");
    let base = repo.find(&id).expect("find").id;
    for sg in &segments {
        repo.put_changes(&base, sg).expect("put_changes");
    }
    drop(repo);
    assert_eq!(ls_entry(&t, &id)["restorable"]["toRevision"], last);
    let o = t.run("check", &["--read-data"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    // Every revision of the workload: `backup cat --to-revision R`, read by `etcdsnap get`.
    let mut checked = 0;
    for r in std::iter::once(base_rev).chain(rec.answers.keys().copied()) {
        let out = work.path().join(format!("at-{r}.db"));
        let ours = cat_and_get(&t, &["--to-revision", &r.to_string()], &out);
        assert_eq!(header_revision(&ours), r, "revision of the snapshot at {r}");
        if let Some(live) = rec.answers.get(&r) {
            assert_eq!(kvs(&ours), kvs(live), "get \"\" --prefix at revision {r}");
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} revisions compared");

    // --to-time: the newest revision made by then.
    let (&r_t, &made) = rec.made.iter().nth(4).expect("a fifth revision");
    let t_arg = chrono::DateTime::<chrono::Utc>::from(made + Duration::from_micros(500))
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let out = work.path().join("at-time.db");
    let ours = cat_and_get(&t, &["--to-time", &t_arg], &out);
    assert_eq!(
        kvs(&ours),
        kvs(&rec.answers[&r_t]),
        "--to-time {t_arg} (revision {r_t})"
    );

    // `backup restore --to-revision` of the last revision and of one before the compaction,
    // each booted by a real etcd 3.5.1.
    for r in [last, early + 1] {
        let dir = work.path().join(format!("boot-{r}"));
        std::fs::create_dir(&dir).expect("mkdir");
        let spec = ClusterSpec::in_dir(&bins, 1, &dir);
        let m = &spec.members[0];
        let o = t.run(
            "restore",
            &[
                "--to-revision",
                &r.to_string(),
                "--name",
                &m.name,
                "--initial-cluster",
                &spec.initial_cluster(),
                "--initial-advertise-peer-urls",
                &m.peer_url(),
                "--data-dir",
                s(&m.data_dir),
            ],
        );
        assert!(
            o.status.success(),
            "restore --to-revision {r}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut booted = spec.start();
        let answer = booted.ctl().json(&["get", "", "--prefix"]);
        assert_eq!(
            kvs(&answer),
            kvs(&rec.answers[&r]),
            "booted etcd restored at {r}"
        );
        if r == last {
            assert_eq!(answer["kvs"], live_last);
            // The leases alive at the end are there, with their TTLs.
            let leases = booted.ctl().json(&["lease", "list"]);
            let mut ids: Vec<i64> = leases["leases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["id"].as_i64())
                .collect();
            ids.sort();
            let mut want = vec![l1, l2];
            want.sort();
            assert_eq!(ids, want, "{leases}");
        }
        booted.stop();
    }
}

/// A compaction the agent learnt over a quiet period is stored in an empty segment (`first =
/// last + 1`) as seen at the revision the cluster was at: a restore to that revision applies
/// it, as one above does (the plan used to stop before such a segment).
#[test]
fn a_compaction_in_an_empty_segment_applies_at_its_revision() {
    use etcdsnap::{Location, PointInTime, TargetChoice};
    let work = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init_dir(work.path().join("repo"), None).expect("init");
    let info = repo
        .push(&fixtures::snapshot("small-v35.db"), &PushOptions::default())
        .expect("push")
        .info;
    let b = info.revision;
    let at = |n: i64| UNIX_EPOCH + Duration::from_secs(1_800_000_000 + n as u64);
    let put = |r: i64| RevisionChanges {
        revision: r,
        events: vec![KeyEvent {
            kind: EventKind::Put,
            kv: KeyValue {
                key: format!("/new/{r}").into_bytes(),
                create_revision: r,
                mod_revision: r,
                version: 1,
                value: b"v".to_vec(),
                lease: 0,
            },
        }],
        observed: at(r),
    };
    let busy = ChangeSegment {
        first: b + 1,
        last: b + 2,
        revisions: vec![put(b + 1), put(b + 2)],
        leases: vec![],
        compactions: vec![],
        sealed: at(b + 2),
    };
    let quiet = ChangeSegment {
        first: b + 3,
        last: b + 2,
        revisions: vec![],
        leases: vec![],
        compactions: vec![CompactionRecord {
            revision: b + 1,
            seen_at_revision: b + 2,
        }],
        sealed: at(b + 3),
    };
    let later = ChangeSegment {
        first: b + 3,
        last: b + 3,
        revisions: vec![put(b + 3)],
        leases: vec![],
        compactions: vec![],
        sealed: at(b + 4),
    };
    for s in [&busy, &quiet, &later] {
        repo.put_changes(&info.id, s).expect("put_changes");
    }
    for (r, want) in [(b + 1, None), (b + 2, Some(b + 1)), (b + 3, Some(b + 1))] {
        let out = work.path().join(format!("at-{r}.db"));
        let loc = Location::parse(s(&out)).expect("location");
        let (_, done) = repo
            .cat_point(None, PointInTime::Revision(r), &loc, TargetChoice::Auto)
            .expect("cat_point");
        assert_eq!((done.revision, done.compacted), (r, want), "at {r}");
    }
}
