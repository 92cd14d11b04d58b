//! The agent's retention (`etcdsnap agent --keep-*`, `Repository::retain`): forget's rules,
//! the chain being recorded protected whatever they say, the forgotten snapshots' recorded
//! changes deleted, and a retention stopped after every durable step
//! (`ETCDSNAP_TEST_CRASH_AFTER`) never touches a listed snapshot's chain; the next one
//! finishes the job.

use crate::support;

use std::path::Path;
use std::process::Command;

use etcdsnap::RetentionPolicy;
use etcdsnap::repo::Repository;
use serde_json::{Value, json};
use support::fixtures;

use super::backup_crash::{Target, copy_dir};
use super::backup_deltas::{chain_after, seg};

const CHILD: &str = "ETCDSNAP_RETAIN_CHILD";

/// In a child process (the crash hook must not touch the test process): `retain` with
/// `{"repo", "keep_last", "protect": [ID prefix]}`; prints the IDs it forgot.
#[test]
#[ignore = "run by the other tests of this module in a child process"]
fn child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let v: Value = serde_json::from_str(&spec).expect("child spec");
    let repo =
        Repository::open_dir(Path::new(v["repo"].as_str().expect("repo")), None).expect("open");
    let protect: Vec<_> = v["protect"]
        .as_array()
        .expect("protect")
        .iter()
        .map(|p| repo.find(p.as_str().expect("id")).expect("find").id)
        .collect();
    let keep = RetentionPolicy::last(v["keep_last"].as_u64().expect("keep_last") as usize);
    let r = repo.retain(keep, &protect).expect("retain");
    let gone: Vec<String> = r.removed.iter().map(|i| i.id.to_string()).collect();
    println!("\nFORGOT {}", json!(gone));
}

/// Runs [`child`]; stopped after its `crash`-th durable step if given: whether it finished.
fn run_child(root: &Path, keep_last: u64, protect: &[&str], crash: Option<u32>) -> bool {
    let spec = json!({"repo": support::cli::s(root), "keep_last": keep_last, "protect": protect});
    let mut c = Command::new(std::env::current_exe().expect("test binary"));
    c.args([
        "agent_retention::child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env_remove("ETCDSNAP_TEST_CRASH_AFTER")
    .env(CHILD, spec.to_string());
    if let Some(n) = crash {
        c.env("ETCDSNAP_TEST_CRASH_AFTER", n.to_string());
    }
    let o = c.output().expect("run child");
    if o.status.success() {
        return true;
    }
    use std::os::unix::process::ExitStatusExt;
    assert!(
        crash.is_some() && o.status.signal() == Some(libc::SIGKILL),
        "child failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    false
}

/// The segment ranges stored on `id` (a full ID or prefix).
fn ranges(repo: &Repository, id: &str) -> Vec<(i64, i64)> {
    let base = repo.find(id).expect("find").id;
    repo.changes(&base)
        .expect("changes")
        .iter()
        .map(|i| (i.first, i.last))
        .collect()
}

/// Segment files left in the repository under a snapshot's directory.
fn delta_files(root: &Path, full_id: &str) -> usize {
    std::fs::read_dir(root.join("deltas").join(full_id)).map_or(0, |d| d.count())
}

#[test]
fn retain_keeps_protected_chains_and_stopped_at_every_step_loses_no_listed_segment() {
    let work = tempfile::tempdir().expect("tempdir");
    let template = work.path().join("template");
    let t = Target::local(&template);
    t.ok("init", &[]);
    // Oldest to newest: a (protected: its chain is "being recorded"), b, c.
    let ids: Vec<String> = ["small-v35.db", "auth-v35.db", "synced-v35.db"]
        .iter()
        .map(|f| t.push(&fixtures::snapshot(f)))
        .collect();
    let repo = Repository::open_dir(&template, None).expect("open");
    let mut chains = Vec::new();
    let mut full = Vec::new();
    for id in &ids {
        let info = repo.find(id).expect("find");
        let chain = chain_after(info.revision);
        for (f, l) in &chain {
            repo.put_changes(&info.id, &seg(*f, *l))
                .expect("put_changes");
        }
        chains.push(chain);
        full.push(info.id.to_string());
    }
    drop(repo);
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    assert!(
        delta_files(&template, &full[1]) > 0,
        "the layout of segments changed"
    );

    let mut steps = 0;
    for n in 1.. {
        let dir = work.path().join(format!("retain{n}"));
        copy_dir(&template, &dir);
        let done = run_child(&dir, 1, &[a.as_str()], Some(n));
        let when = format!("retain stopped after step {n}");
        let t = Target::local(&dir);
        t.ok("unlock", &["--all"]);
        let repo = Repository::open_dir(&dir, None).expect("open");
        let listed: Vec<String> = t.listed().into_iter().map(|(id, _)| id).collect();
        assert!(
            listed.contains(a) && listed.contains(c),
            "{when}: {listed:?}"
        );
        for (i, id) in ids.iter().enumerate() {
            if listed.contains(id) {
                assert_eq!(ranges(&repo, id), chains[i], "{when}: chain of {id}");
            }
        }
        let o = t.run("check", &["-w", "json"]);
        let v: Value = serde_json::from_slice(&o.stdout).expect("check json");
        assert!(v["ok"] == true, "{when}: {v}");
        // The next retention finishes it: b and its segments gone, a and c whole.
        assert!(run_child(&dir, 1, &[a.as_str()], None), "{when}");
        let listed: Vec<String> = t.listed().into_iter().map(|(id, _)| id).collect();
        assert_eq!(listed.len(), 2, "{when}: {listed:?}");
        assert!(!listed.contains(b), "{when}");
        assert_eq!(delta_files(&dir, &full[1]), 0, "{when}: b's segments");
        assert_eq!(ranges(&repo, a), chains[0], "{when}");
        assert_eq!(ranges(&repo, c), chains[2], "{when}");
        let o = t.run("check", &["-w", "json"]);
        let v: Value = serde_json::from_slice(&o.stdout).expect("check json");
        // (Its notes name the forgotten record and the chunks only a prune removes, as
        // after `backup forget`.)
        assert!(v["ok"] == true, "{when}: {v}");
        std::fs::remove_dir_all(&dir).expect("clean");
        if done {
            break;
        }
        steps = n;
        assert!(n < 100, "retain never finished");
    }
    // The lock, the forgotten record, the manifest, the index, b's segments one by one.
    assert!(
        steps >= 3 + chains[1].len() as u32,
        "only {steps} crash points"
    );

    // Unprotected, keep-last 1 keeps only the newest; nothing else is touched by rules that
    // keep everything.
    let dir = work.path().join("unprotected");
    copy_dir(&template, &dir);
    assert!(run_child(&dir, 3, &[], None));
    assert_eq!(Target::local(&dir).listed().len(), 3);
    assert!(run_child(&dir, 1, &[], None));
    let listed: Vec<String> = Target::local(&dir)
        .listed()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(listed, vec![c.clone()]);
    assert_eq!(delta_files(&dir, &full[0]) + delta_files(&dir, &full[1]), 0);
}
