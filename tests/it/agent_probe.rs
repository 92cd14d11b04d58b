//! `etcdsnap agent`'s revision probe and compaction records against real
//! etcd 3.5.1 on loopback: `revision_lag` grows while the watch's
//! connection is stalled (the probe has a connection of its own); a
//! compaction is recorded as seen when it ran, not at the next
//! `--delta-every`, so a restore to a revision written after it carries
//! it, as etcd's `endpoint hashkv` does; and a restart after SIGKILL does
//! not record the same compaction again.

use crate::agent::{
    Agent, bins, cat_at, chains, full_event, get, init_repo, parse_exposition, revision,
};
use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::s;
use support::etcd::EtcdCluster;
use support::proxy::{CutProxy, Link};

fn metrics(addr: &str) -> BTreeMap<String, f64> {
    let (code, text) = get(addr, "/metrics");
    assert_eq!(code, 200, "{text}");
    parse_exposition(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

/// Polls `/metrics` until `pred` holds; the last scrape.
#[track_caller]
fn wait_metrics(
    agent: &Agent,
    addr: &str,
    what: &str,
    within: Duration,
    pred: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + within;
    loop {
        let m = metrics(addr);
        if pred(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}; lag {:?}, cluster {:?}\n{}",
            m.get("etcdsnap_agent_revision_lag"),
            m.get("etcdsnap_agent_cluster_revision"),
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

const LAG: &str = "etcdsnap_agent_revision_lag";

/// The agent follows the member through a proxy that goes silent with
/// every connection held open (keepalive pings far apart, as behind a
/// proxy that answers them itself): the watch delivers nothing, its
/// headers stop, and the seal is an hour away. Writes made meanwhile show
/// in `revision_lag` (the probe reaches the member directly, the second
/// endpoint), and the lag falls back to 0 once the proxy forwards again.
#[test]
fn revision_lag_grows_while_the_watch_is_stalled() {
    let Some(bins) = bins() else { return };
    let cluster = EtcdCluster::single(&bins);
    let ctl = cluster.ctl();
    let proxy = CutProxy::start(support::http::parse_loopback_url(cluster.endpoint()));
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let addr = format!("127.0.0.1:{}", support::ports::free_port());
    let mut agent = Agent::start(
        &repo,
        &format!("{},{}", proxy.endpoint(), cluster.endpoint()),
        &[
            "--delta-every",
            "1h",
            "--metrics-addr",
            &addr,
            "--dial-timeout",
            "1s",
            "--command-timeout",
            "1s",
            "--keepalive-time",
            "1h",
            "--keepalive-timeout",
            "1h",
        ],
        &dir.path().join("agent.log"),
    );
    let full = agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    assert_eq!(full["endpoint"], proxy.endpoint());
    ctl.put("before", "1");
    let before = revision(&ctl);
    wait_metrics(
        &agent,
        &addr,
        "the watch delivers the first write",
        Duration::from_secs(30),
        |m| m["etcdsnap_agent_cluster_revision"] >= before as f64 && m[LAG] == 0.0,
    );

    proxy.set(Link::Stalled);
    // A forwarding thread sees the flag at its next read (they time out
    // every 50 ms); one under way still forwards what it reads, which
    // would let the first write through.
    std::thread::sleep(Duration::from_secs(1));
    let writes = 20;
    for i in 0..writes {
        ctl.put(&format!("k{i}"), "v");
    }
    let m = wait_metrics(
        &agent,
        &addr,
        "revision_lag past the writes made while the watch is stalled",
        Duration::from_secs(30),
        |m| m[LAG] >= writes as f64,
    );
    assert_eq!(m[LAG], writes as f64, "nothing else was written");
    assert!(
        m.get("etcdsnap_agent_errors_total{kind=\"probe\"}")
            .is_some_and(|n| *n >= 1.0),
        "the probe's call through the stalled proxy failed and was counted"
    );
    assert!(
        !agent.events().iter().any(|e| e["event"] == "failover"
            && e["from"] == proxy.endpoint()
            && e["to"] == cluster.endpoint()),
        "the watch stayed on the stalled proxy:\n{}",
        agent.log_text()
    );

    proxy.set(Link::Up);
    wait_metrics(
        &agent,
        &addr,
        "the watch caught up once the proxy forwards again",
        Duration::from_secs(30),
        |m| m[LAG] == 0.0 && m["etcdsnap_agent_cluster_revision"] >= (before + writes) as f64,
    );
    // The probe stops with the agent (its thread is joined).
    assert_eq!(agent.signal(libc::SIGTERM).code(), Some(0));
}

/// `endpoint hashkv --rev R` of the live cluster: hash and compact
/// revision.
pub(crate) fn live_hashkv(ctl: &support::etcd::Etcdctl, r: i64) -> (i64, i64) {
    let v = ctl.json(&["endpoint", "hashkv", "--rev", &r.to_string()]);
    let h = &v[0]["HashKV"];
    (
        h["hash"].as_i64().expect("hash"),
        h["compact_revision"].as_i64().expect("compact_revision"),
    )
}

/// `snapshot hashkv --rev R` of the snapshot `backup cat --to-revision R`
/// writes: hash and compact revision.
fn restored_hashkv(repo: &std::path::Path, dir: &std::path::Path, r: i64) -> (i64, i64) {
    let file = cat_at(repo, dir, r);
    let h = file_hashkv(&file, r);
    std::fs::remove_file(&file).unwrap();
    h
}

/// `snapshot hashkv FILE --rev R`: hash and compact revision.
pub(crate) fn file_hashkv(file: &std::path::Path, r: i64) -> (i64, i64) {
    let out = support::cli::ok(&[
        "snapshot",
        "hashkv",
        s(file),
        "--rev",
        &r.to_string(),
        "-w",
        "json",
    ]);
    let h: Value = serde_json::from_str(out.trim()).unwrap();
    (
        h["hash"].as_i64().unwrap(),
        h["compactRevision"].as_i64().unwrap(),
    )
}

/// With segments sealed an hour apart, a compaction is recorded within
/// a probe interval, as seen at the revision the cluster was at when it
/// ran: the writes that follow it are restored with it, and `snapshot
/// hashkv` of the restore at each of them equals the live cluster's
/// `endpoint hashkv` (the old agent learnt of it only at the next seal,
/// and restores to the revisions written meanwhile lacked it).
#[test]
fn a_compaction_is_recorded_when_it_runs_not_at_the_next_seal() {
    let Some(bins) = bins() else { return };
    let cluster = EtcdCluster::single(&bins);
    let ctl = cluster.ctl();
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    // Not an empty store: a full snapshot of one is listed at revision 0
    // while its file says 1, which `backup cat` refuses as an overlap.
    ctl.put("k0", "v");
    let mut agent = Agent::start(
        &repo,
        cluster.endpoint(),
        &["--delta-every", "1h"],
        &dir.path().join("agent.log"),
    );
    agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    for i in 0..6 {
        ctl.put(&format!("k{}", i % 3), &format!("v{i}"));
    }
    let head = revision(&ctl);
    let compact_at = head - 2;
    ctl.ok(&["compact", &compact_at.to_string()]);
    let ev = agent.wait_for(
        "the compaction recorded before the next seal",
        Duration::from_secs(30),
        |e| e["event"] == "compaction",
    );
    assert_eq!(ev["revision"].as_i64(), Some(compact_at), "{ev}");
    assert_eq!(ev["seenAtRevision"].as_i64(), Some(head), "no write since");
    for i in 0..4 {
        ctl.put(&format!("k{}", i % 3), &format!("after{i}"));
    }
    let last = revision(&ctl);
    assert_eq!(agent.signal(libc::SIGTERM).code(), Some(0));

    let recorded: Vec<_> = chains(&repo)
        .into_iter()
        .flat_map(|(_, segs)| segs)
        .flat_map(|s| s.compactions)
        .map(|c| (c.revision, c.seen_at_revision))
        .collect();
    assert_eq!(recorded, vec![(compact_at, head)]);
    for r in head + 1..=last {
        assert_eq!(
            restored_hashkv(&repo, dir.path(), r),
            live_hashkv(&ctl, r),
            "hashkv at revision {r}"
        );
    }
}

/// A compaction recorded in a stored segment, then SIGKILL and a
/// restart: the restarted agent finds the compaction in the chain and
/// records it no second time (the old one asked the cluster for any
/// compaction above 0 at its first seal and stored it again); a newer
/// one is recorded once.
#[test]
fn a_restart_does_not_record_a_stored_compaction_again() {
    let Some(bins) = bins() else { return };
    let cluster = EtcdCluster::single(&bins);
    let ctl = cluster.ctl();
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let log = dir.path().join("agent.log");
    let args = ["--delta-every", "500ms"];
    let mut agent = Agent::start(&repo, cluster.endpoint(), &args, &log);
    agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    for i in 0..5 {
        ctl.put(&format!("k{i}"), "v");
    }
    let compact_at = revision(&ctl) - 1;
    ctl.ok(&["compact", &compact_at.to_string()]);
    agent.wait_for(
        "a segment with the compaction",
        Duration::from_secs(30),
        |e| e["event"] == "segment" && e["compactions"] == 1,
    );
    agent.signal(libc::SIGKILL);

    let log2 = dir.path().join("agent2.log");
    let mut agent = Agent::start(&repo, cluster.endpoint(), &args, &log2);
    agent.wait_for("the resume", Duration::from_secs(60), |e| {
        e["event"] == "resumed"
    });
    ctl.put("after", "v");
    let last = revision(&ctl);
    agent.wait_for("the write stored", Duration::from_secs(30), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(last)
    });
    // A newer compaction is recorded, once.
    ctl.put("after2", "v");
    let compact_again = revision(&ctl) - 1;
    ctl.ok(&["compact", &compact_again.to_string()]);
    agent.wait_for(
        "a segment with the second compaction",
        Duration::from_secs(30),
        |e| e["event"] == "segment" && e["compactions"] == 1,
    );
    assert_eq!(agent.signal(libc::SIGTERM).code(), Some(0));
    let logged: Vec<_> = agent
        .events()
        .into_iter()
        .filter(|e| e["event"] == "compaction")
        .map(|e| e["revision"].as_i64())
        .collect();
    assert_eq!(
        logged,
        vec![Some(compact_again)],
        "the restarted agent logs only the new compaction:\n{}",
        agent.log_text()
    );
    let recorded: Vec<i64> = chains(&repo)
        .into_iter()
        .flat_map(|(_, segs)| segs)
        .flat_map(|s| s.compactions)
        .map(|c| c.revision)
        .collect();
    assert_eq!(recorded, vec![compact_at, compact_again]);
}
