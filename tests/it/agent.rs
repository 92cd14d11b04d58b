//! `etcdsnap agent` against real etcd 3.5.1 on loopback: the segments it
//! stores hold exactly the events `etcdctl watch -w json` reports for the
//! same revisions (puts, deletes, transactions, leases, a compaction);
//! SIGTERM stores what it held; SIGKILL and a restart leave no hole and
//! no overlap; the metrics endpoint serves valid Prometheus text and
//! `/healthz` follows the cluster's reachability.

use crate::support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcdsnap::etcd::change::{ChangeSegment, EventKind};
use etcdsnap::repo::{Repository, SnapshotInfo};
use serde_json::Value;
use support::etcd::{ClusterSpec, EtcdCluster, EtcdProcess, Etcdctl};
use support::http::HttpClient;
use support::tools::{self, EtcdBins, EtcdVersion, etcd_child_env};

const BIN: &str = env!("CARGO_BIN_EXE_etcdsnap");

/// A running agent; stopped by its pid when dropped.
pub(crate) struct Agent {
    child: Child,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Agent {
    pub(crate) fn start(repo: &Path, endpoints: &str, extra: &[&str], log: &Path) -> Agent {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("agent log");
        let mut c = Command::new(BIN);
        etcd_child_env(&mut c);
        c.arg("agent")
            .arg(repo)
            .args(["--endpoints", endpoints, "--log-format", "json"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err));
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Agent {
            child: c.spawn().expect("start the agent"),
            log: log.to_path_buf(),
            exit: None,
        }
    }

    /// Every JSON line of the log so far.
    pub(crate) fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
            .collect()
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a log event matching `pred`.
    #[track_caller]
    pub(crate) fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return e;
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!("the agent exited ({s}) before {what}:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {within:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn signal(&mut self, sig: i32) -> ExitStatus {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
        let (status, killed) =
            support::cmd::wait_deadline(&mut self.child, Duration::from_secs(60));
        assert!(
            !killed,
            "the agent did not stop on signal {sig}:\n{}",
            self.log_text()
        );
        let s = status.expect("exit status");
        self.exit = Some(s);
        s
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `backup cat REPO --to-revision R -o DIR/at-R.db`; the file written.
pub(crate) fn cat_at(repo: &Path, dir: &Path, r: i64) -> PathBuf {
    let file = dir.join(format!("at-{r}.db"));
    support::cli::ok(&[
        "backup",
        "cat",
        support::cli::s(repo),
        "--to-revision",
        &r.to_string(),
        "-o",
        support::cli::s(&file),
    ]);
    file
}

pub(crate) fn init_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    support::cli::ok(&["backup", "init", support::cli::s(&repo)]);
    repo
}

/// The chains in the repository: each full snapshot (oldest first) with
/// its segments in order.
pub(crate) fn chains(repo: &Path) -> Vec<(SnapshotInfo, Vec<ChangeSegment>)> {
    let r = Repository::open_dir(repo, None).expect("open the repository");
    let mut snaps = r.snapshots().expect("snapshots");
    snaps.sort_by_key(|s| (s.time, s.revision));
    snaps
        .into_iter()
        .map(|s| {
            let segs = r
                .changes(&s.id)
                .expect("changes")
                .iter()
                .map(|i| r.read_changes(&s.id, i).expect("read a segment"))
                .collect();
            (s, segs)
        })
        .collect()
}

/// One key event as both sides report it: revision, put?, key, create
/// revision, version, value, lease.
type Ev = (i64, bool, Vec<u8>, i64, i64, Vec<u8>, i64);

/// The events of `segs`, checking that they follow each other from
/// `base + 1` with no hole and no overlap, and that each revision's
/// events carry its number.
fn segment_events(base: i64, segs: &[ChangeSegment]) -> Vec<Ev> {
    let mut next = base + 1;
    let mut out = Vec::new();
    for s in segs {
        assert_eq!(
            s.first,
            next,
            "segments {}..{} after {}",
            s.first,
            s.last,
            next - 1
        );
        assert!(s.last >= s.first - 1);
        let mut prev = s.first - 1;
        for r in &s.revisions {
            assert!(
                r.revision > prev && r.revision <= s.last,
                "revision {} in {}..{}",
                r.revision,
                s.first,
                s.last
            );
            assert!(!r.events.is_empty());
            prev = r.revision;
            for e in &r.events {
                assert_eq!(e.kv.mod_revision, r.revision);
                out.push((
                    r.revision,
                    e.kind == EventKind::Put,
                    e.kv.key.clone(),
                    e.kv.create_revision,
                    e.kv.version,
                    e.kv.value.clone(),
                    e.kv.lease,
                ));
            }
        }
        next = s.last + 1;
    }
    out
}

/// Fails with the first event that differs (values shortened).
#[track_caller]
fn same_events(got: &[Ev], want: &[Ev]) {
    let short = |e: &Ev| {
        format!(
            "rev {} {} {:?} create {} version {} value {} bytes lease {:x}",
            e.0,
            if e.1 { "put" } else { "delete" },
            String::from_utf8_lossy(&e.2[..e.2.len().min(20)]),
            e.3,
            e.4,
            e.5.len(),
            e.6
        )
    };
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w,
            "event {i} differs:
 recorded  {}
 etcdctl   {}",
            short(g),
            short(w)
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "recorded {} events, etcdctl watch reported {}; last recorded: {:?}; last reported: {:?}",
        got.len(),
        want.len(),
        got.last().map(short),
        want.last().map(short)
    );
}

fn b64(v: &Value, field: &str) -> Vec<u8> {
    support::b64::decode(v.get(field).and_then(Value::as_str).unwrap_or(""))
        .expect("etcdctl JSON bytes are base64")
}

fn int(v: &Value, field: &str) -> i64 {
    v.get(field).and_then(Value::as_i64).unwrap_or(0)
}

/// `etcdctl watch --prefix "" --rev FROM -w json`, running in the
/// background; its responses are collected as they come.
struct RefWatch {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl RefWatch {
    fn start(ctl: &Etcdctl, from: i64) -> RefWatch {
        let mut c = ctl.command(&[
            "watch",
            "--prefix",
            "",
            "--rev",
            &from.to_string(),
            "-w",
            "json",
        ]);
        c.stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null());
        let mut child = c.spawn().expect("etcdctl watch");
        let out = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = Arc::clone(&lines);
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                l2.lock().unwrap().push(l);
            }
        });
        RefWatch { child, lines }
    }

    fn events(&self) -> Vec<Ev> {
        let mut out = Vec::new();
        for l in self.lines.lock().unwrap().iter() {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            assert_eq!(
                int(&v, "CompactRevision"),
                0,
                "the reference watch was compacted"
            );
            for e in v
                .get("Events")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let kv = e.get("kv").expect("kv");
                // mvccpb.Event's JSON: "type" is omitted for PUT (0).
                let put = e.get("type").and_then(Value::as_i64).unwrap_or(0) == 0;
                out.push((
                    int(kv, "mod_revision"),
                    put,
                    b64(kv, "key"),
                    int(kv, "create_revision"),
                    int(kv, "version"),
                    b64(kv, "value"),
                    int(kv, "lease"),
                ));
            }
        }
        out
    }

    /// Waits until the watch has reported revision `rev`, then stops it.
    fn finish(mut self, rev: i64) -> Vec<Ev> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.events().last().map_or(0, |e| e.0) < rev {
            assert!(
                Instant::now() < deadline,
                "etcdctl watch did not reach {rev}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.events()
    }
}

impl Drop for RefWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `kvs` of a get's JSON answer (absent when none).
pub(crate) fn kvs(v: &Value) -> Value {
    v.get("kvs").cloned().unwrap_or(Value::Array(Vec::new()))
}

/// The cluster's current revision.
pub(crate) fn revision(ctl: &Etcdctl) -> i64 {
    let v = ctl.json(&["get", "none-such-key"]);
    v["header"]["revision"].as_i64().expect("revision")
}

pub(crate) fn lease_grant(ctl: &Etcdctl, ttl: u32) -> i64 {
    let out = ctl.ok(&["lease", "grant", &ttl.to_string()]);
    // "lease 694d77aa9e38260f granted with TTL(100s)"
    let hex = out.split_whitespace().nth(1).expect("lease id");
    u64::from_str_radix(hex, 16).expect("hex lease id") as i64
}

fn txn(ctl: &Etcdctl, body: &str) {
    let mut c = ctl.command(&["txn"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("etcdctl txn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write txn");
    let out = child.wait_with_output().expect("txn");
    assert!(
        out.status.success(),
        "txn: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn bins() -> Option<EtcdBins> {
    tools::require(tools::etcd_suite(EtcdVersion::V35))
}

pub(crate) fn full_event(e: &Value) -> bool {
    e["event"] == "full"
}

/// A thread calling `step(0)`, `step(1)`, ... until [`Writer::stop`]: a
/// workload running while the agent records.
pub(crate) struct Writer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    pub(crate) fn start(mut step: impl FnMut(u32) + Send + 'static) -> Writer {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let mut i = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    step(i);
                    i = i.wrapping_add(1);
                }
            }
        });
        Writer { stop, thread }
    }

    /// Stops the writes; returns once the last one is done.
    pub(crate) fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().unwrap();
    }
}

/// The workload of puts, deletes, transactions, leases and a compaction
/// is recorded as etcdctl's own watch reports it, segment after segment
/// with no hole, with the leases and the compaction.
#[test]
fn segments_hold_what_the_watch_reports() {
    let Some(bins) = bins() else { return };
    let cluster = EtcdCluster::single(&bins);
    let ctl = cluster.ctl();
    ctl.put("before", "the full snapshot");
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let mut agent = Agent::start(
        &repo,
        cluster.endpoint(),
        &["--delta-every", "500ms"],
        &dir.path().join("agent.log"),
    );
    let full = agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    let base = full["revision"].as_i64().unwrap();
    let reference = RefWatch::start(&ctl, base + 1);
    // What `etcdctl get "" --prefix` answered at each revision, read as
    // the workload goes (the compaction makes the older ones unreadable
    // later).
    let mut live: BTreeMap<i64, Value> = BTreeMap::new();
    let mut seen = |ctl: &Etcdctl| {
        let v = ctl.json(&["get", "", "--prefix"]);
        live.insert(v["header"]["revision"].as_i64().unwrap(), kvs(&v));
    };
    seen(&ctl);

    ctl.put("a", "1");
    seen(&ctl);
    ctl.put("b", "2");
    ctl.put("a", "3");
    seen(&ctl);
    ctl.ok(&["del", "b"]);
    seen(&ctl);
    // One revision, three operations in order.
    txn(&ctl, "\nput t1 x\nput t2 y\ndel a\n\n\n");
    seen(&ctl);
    let long = lease_grant(&ctl, 100);
    ctl.ok(&["put", &format!("--lease={long:x}"), "leased", "v"]);
    seen(&ctl);
    let short = lease_grant(&ctl, 30);
    ctl.ok(&["put", &format!("--lease={short:x}"), "short", "v"]);
    seen(&ctl);
    ctl.ok(&["lease", "revoke", &format!("{short:x}")]);
    seen(&ctl);
    let compact_at = revision(&ctl) - 2;
    ctl.ok(&["compact", &compact_at.to_string()]);
    ctl.put("after", "compaction");
    seen(&ctl);
    ctl.ok(&["del", "--prefix", "t"]);
    seen(&ctl);
    ctl.put(&"k".repeat(300), &"v".repeat(5000));
    seen(&ctl);
    let last = revision(&ctl);

    agent.wait_for("the compaction", Duration::from_secs(30), |e| {
        e["event"] == "compaction" && e["revision"] == compact_at
    });
    agent.wait_for("the last revision stored", Duration::from_secs(30), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(last)
    });
    let status = agent.signal(libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{}", agent.log_text());
    let want = reference.finish(last);

    let chains = chains(&repo);
    assert_eq!(chains.len(), 1, "one full snapshot");
    let (snap, segs) = &chains[0];
    assert_eq!(snap.revision, base);
    let got = segment_events(base, segs);
    same_events(&got, &want);
    assert_eq!(segs.last().unwrap().last, last);

    // The transaction's three operations share one revision, in order.
    let txn_rev = segs
        .iter()
        .flat_map(|s| &s.revisions)
        .find(|r| r.events.len() == 3)
        .expect("the transaction's revision");
    let keys: Vec<&[u8]> = txn_rev.events.iter().map(|e| e.kv.key.as_slice()).collect();
    assert_eq!(keys, [b"t1".as_slice(), b"t2", b"a"]);

    // The long lease is recorded with its granted TTL, alive, in every
    // segment sealed after its grant; the revoked one is not alive at
    // the end of the last.
    let leased_rev = got.iter().find(|e| e.2 == b"leased").unwrap().0;
    for s in segs.iter().filter(|s| s.last >= leased_rev) {
        let l = s
            .leases
            .iter()
            .find(|l| l.id == long)
            .unwrap_or_else(|| panic!("lease {long:x} in {}..{}", s.first, s.last));
        assert_eq!((l.ttl, l.alive_at_end), (100, true));
    }
    let short_recs: Vec<_> = segs
        .iter()
        .flat_map(|s| &s.leases)
        .filter(|l| l.id == short)
        .collect();
    assert!(
        !short_recs.is_empty(),
        "the revoked lease a put attached a key to is recorded"
    );
    let last_seg = segs.last().unwrap();
    assert!(
        !last_seg
            .leases
            .iter()
            .any(|l| l.id == short && l.alive_at_end)
    );

    // The compaction, once, in the segment that covers when it was seen.
    let comps: Vec<_> = segs
        .iter()
        .flat_map(|s| s.compactions.iter().map(move |c| (s.first, s.last, *c)))
        .collect();
    assert_eq!(comps.len(), 1, "{comps:?}");
    let (_, seg_last, c) = comps[0];
    assert_eq!(c.revision, compact_at);
    assert!(
        c.seen_at_revision > compact_at && c.seen_at_revision <= seg_last,
        "{c:?}"
    );

    // A restore to each revision R answers `get "" --prefix` as the
    // live cluster did at R (keys, values, revisions, versions, leases),
    // and at the end hashes as the live member does.
    for (r, want) in &live {
        let file = cat_at(&repo, dir.path(), *r);
        let out = support::cli::ok(&["get", support::cli::s(&file), "", "--prefix", "-w", "json"]);
        let got: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(&kvs(&got), want, "get at revision {r}");
        assert_eq!(got["header"]["revision"].as_i64(), Some(*r));
    }
    let file = dir.path().join(format!("at-{last}.db"));
    let ours: Value = serde_json::from_str(
        support::cli::ok(&["snapshot", "hashkv", support::cli::s(&file), "-w", "json"]).trim(),
    )
    .unwrap();
    let theirs = ctl.json(&["endpoint", "hashkv", "--rev", &last.to_string()]);
    let h = &theirs[0]["HashKV"];
    assert_eq!(
        ours["hash"].as_i64(),
        h["hash"].as_i64(),
        "hashkv at {last}: {ours} vs {theirs}"
    );
    assert_eq!(
        ours["compactRevision"].as_i64(),
        h["compact_revision"].as_i64()
    );

    // Every stored segment was logged, in order.
    let logged: Vec<(i64, i64)> = agent
        .events()
        .iter()
        .filter(|e| e["event"] == "segment")
        .map(|e| (e["first"].as_i64().unwrap(), e["last"].as_i64().unwrap()))
        .collect();
    let stored: Vec<(i64, i64)> = segs.iter().map(|s| (s.first, s.last)).collect();
    assert_eq!(logged, stored);
    assert!(agent.events().iter().any(|e| e["event"] == "stopped"));
}

/// With no seal due for an hour, what the agent received is stored by
/// SIGTERM, and it exits 0.
#[test]
fn sigterm_stores_what_it_holds() {
    let Some(bins) = bins() else { return };
    let cluster = EtcdCluster::single(&bins);
    let ctl = cluster.ctl();
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let port = support::ports::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut agent = Agent::start(
        &repo,
        cluster.endpoint(),
        &["--delta-every", "1h", "--metrics-addr", &addr],
        &dir.path().join("agent.log"),
    );
    let full = agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    let base = full["revision"].as_i64().unwrap();
    for i in 0..20 {
        ctl.put(&format!("k{i}"), &format!("v{i}"));
    }
    let last = revision(&ctl);
    // Wait until the watch delivered them all (the metrics say so).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = HttpClient::new(&format!("http://{addr}"))
            .get("/metrics")
            .map(|r| r.text())
            .unwrap_or_default();
        let m = parse_exposition(&text).unwrap_or_default();
        if m.get("etcdsnap_agent_events_recorded_total").copied() == Some(20.0) {
            break;
        }
        assert!(Instant::now() < deadline, "events not received: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !agent.events().iter().any(|e| e["event"] == "segment"),
        "nothing sealed before the signal"
    );
    let status = agent.signal(libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{}", agent.log_text());
    let chains = chains(&repo);
    let (_, segs) = &chains[0];
    assert_eq!(segs.len(), 1);
    assert_eq!((segs[0].first, segs[0].last), (base + 1, last));
    assert_eq!(segs[0].revisions.len(), 20);
}

/// SIGKILL while a writer keeps writing, then a restart: the agent
/// resumes on the same full snapshot from the last stored segment, and
/// the chain holds every revision once, as etcdctl's watch reports them.
#[test]
fn sigkill_and_restart_leave_no_hole_or_overlap() {
    let Some(bins) = bins() else { return };
    let cluster = EtcdCluster::single(&bins);
    let ctl = cluster.ctl();
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let log = dir.path().join("agent.log");
    let args = ["--delta-every", "300ms"];
    let mut agent = Agent::start(&repo, cluster.endpoint(), &args, &log);
    let full = agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    let base = full["revision"].as_i64().unwrap();

    let writer = Writer::start({
        let ctl = ctl.clone();
        move |i| {
            ctl.put(&format!("w{}", i % 7), &format!("value {i}"));
            if i % 5 == 4 {
                ctl.ok(&["del", &format!("w{}", i % 7)]);
            }
        }
    });
    let segments = |a: &Agent| {
        a.events()
            .iter()
            .filter(|e| e["event"] == "segment")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while segments(&agent) < 3 {
        assert!(Instant::now() < deadline, "{}", agent.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = agent.signal(libc::SIGKILL);
    assert_eq!(killed.code(), None);
    std::thread::sleep(Duration::from_secs(1));

    let mut again = Agent::start(&repo, cluster.endpoint(), &args, &log);
    let resumed = again.wait_for("the resume", Duration::from_secs(30), |e| {
        e["event"] == "resumed"
    });
    std::thread::sleep(Duration::from_secs(1));
    writer.stop();
    let last = revision(&ctl);
    again.wait_for("the last revision stored", Duration::from_secs(30), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(last)
    });
    assert_eq!(again.signal(libc::SIGTERM).code(), Some(0));

    let chains = chains(&repo);
    assert_eq!(
        chains.len(),
        1,
        "the restart resumed on the same full snapshot"
    );
    let (snap, segs) = &chains[0];
    assert_eq!(snap.revision, base);
    let resumed_after = resumed["revision"].as_i64().unwrap();
    assert!(
        segs.iter().any(|s| s.last == resumed_after),
        "resumed after a stored segment"
    );
    let got = segment_events(base, segs);
    let want = RefWatch::start(&ctl, base + 1).finish(last);
    same_events(&got, &want);
    assert_eq!(segs.last().unwrap().last, last);
}

/// The Prometheus text format, version 0.0.4, read strictly: every
/// family's `# TYPE` before its samples and once, samples of a family
/// together, valid names, label sets and values. The samples by name
/// with their labels (`name{k="v"}`).
pub(crate) fn parse_exposition(text: &str) -> Result<BTreeMap<String, f64>, String> {
    fn name_ok(n: &str, first_colon: bool) -> bool {
        let mut cs = n.chars();
        let Some(c0) = cs.next() else { return false };
        (c0.is_ascii_alphabetic() || c0 == '_' || (first_colon && c0 == ':'))
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || (first_colon && c == ':'))
    }
    fn value(v: &str) -> Result<f64, String> {
        match v {
            "+Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            "NaN" => Ok(f64::NAN),
            _ => v.parse::<f64>().map_err(|e| format!("value {v:?}: {e}")),
        }
    }
    if !text.ends_with('\n') {
        return Err("no final newline".into());
    }
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_samples: Vec<String> = Vec::new();
    let mut out = BTreeMap::new();
    let family = |n: &str, types: &BTreeMap<String, String>| -> String {
        for suffix in ["_total", "_sum", "_count", "_bucket", ""] {
            if let Some(base) = n.strip_suffix(suffix)
                && types.contains_key(base)
            {
                return base.to_string();
            }
        }
        n.to_string()
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(n), _) if name_ok(n, true) => {}
                (Some("TYPE"), Some(n), Some(t)) if name_ok(n, true) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                        return Err(format!("type {t:?}"));
                    }
                    if types.insert(n.to_string(), t.to_string()).is_some() {
                        return Err(format!("second TYPE for {n}"));
                    }
                    if seen_samples.iter().any(|s| s == n) {
                        return Err(format!("TYPE after samples of {n}"));
                    }
                }
                _ => return Err(format!("bad comment line {line:?}")),
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (head, val) = match line.find('{') {
            Some(i) => {
                let close = line.rfind('}').ok_or("unclosed labels")?;
                let name = &line[..i];
                let labels = &line[i + 1..close];
                let mut rest = labels;
                while !rest.is_empty() {
                    let eq = rest.find('=').ok_or("label without =")?;
                    if !name_ok(&rest[..eq], false) {
                        return Err(format!("label name {:?}", &rest[..eq]));
                    }
                    let after = &rest[eq + 1..];
                    let mut chars = after.char_indices();
                    if chars.next().map(|c| c.1) != Some('"') {
                        return Err("label value not quoted".into());
                    }
                    let mut end = None;
                    let mut escaped = false;
                    for (j, c) in chars {
                        match (escaped, c) {
                            (true, '\\' | '"' | 'n') => escaped = false,
                            (true, _) => return Err("bad escape".into()),
                            (false, '\\') => escaped = true,
                            (false, '"') => {
                                end = Some(j);
                                break;
                            }
                            (false, '\n') => return Err("newline in a label value".into()),
                            _ => {}
                        }
                    }
                    let end = end.ok_or("unterminated label value")?;
                    rest = &after[end + 1..];
                    rest = rest.strip_prefix(',').unwrap_or(rest);
                }
                (
                    format!("{name}{{{labels}}}"),
                    line[close + 1..].trim_start(),
                )
            }
            None => {
                let (n, v) = line.split_once(' ').ok_or("sample without value")?;
                (n.to_string(), v)
            }
        };
        let name = head.split('{').next().unwrap_or("");
        if !name_ok(name, true) {
            return Err(format!("metric name {name:?}"));
        }
        let fam = family(name, &types);
        if let Some(last) = seen_samples.last()
            && *last != fam
            && seen_samples.contains(&fam)
        {
            return Err(format!("samples of {fam} not together"));
        }
        if seen_samples.last() != Some(&fam) {
            seen_samples.push(fam);
        }
        let mut vs = val.split(' ');
        let v = value(vs.next().unwrap_or(""))?;
        if let Some(ts) = vs.next() {
            ts.parse::<i64>()
                .map_err(|e| format!("timestamp {ts:?}: {e}"))?;
        }
        if vs.next().is_some() {
            return Err(format!("trailing text in {line:?}"));
        }
        if out.insert(head.clone(), v).is_some() {
            return Err(format!("sample {head} twice"));
        }
    }
    Ok(out)
}

#[test]
fn the_exposition_parser_refuses_what_prometheus_refuses() {
    assert!(parse_exposition("# TYPE a gauge\na 1\n").is_ok());
    assert!(parse_exposition("a{k=\"v\\\"\"} 1 123\n").is_ok());
    assert!(parse_exposition("a 1").is_err(), "no newline");
    assert!(parse_exposition("a x\n").is_err());
    assert!(parse_exposition("1a 1\n").is_err());
    assert!(parse_exposition("a{k=v} 1\n").is_err());
    assert!(parse_exposition("# TYPE a gauge\n# TYPE a gauge\na 1\n").is_err());
    assert!(parse_exposition("a 1\n# TYPE a gauge\n").is_err());
    assert!(parse_exposition("# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"1\"} 2\n").is_err());
    assert!(parse_exposition("# TYPE a wrong\na 1\n").is_err());
    assert!(parse_exposition("a 1\na 2\n").is_err());
}

pub(crate) fn get(addr: &str, path: &str) -> (u16, String) {
    match HttpClient::new(&format!("http://{addr}"))
        .with_timeout(Duration::from_secs(5))
        .get(path)
    {
        Ok(r) => (r.status, r.text()),
        Err(e) => (0, e.to_string()),
    }
}

/// `/metrics` parses as Prometheus text with every metric the agent
/// promises; `/healthz` is 200 while the cluster answers, 503 once it has
/// been unreachable longer than `--unhealthy-after`, 200 again after.
#[test]
fn metrics_parse_and_healthz_follows_the_cluster() {
    let Some(bins) = bins() else { return };
    let spec = ClusterSpec::new(&bins, 1);
    let member = spec.members[0].clone();
    let member_args = spec.member_args(0);
    let mut cluster = spec.start();
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let addr = format!("127.0.0.1:{}", support::ports::free_port());
    let mut agent = Agent::start(
        &repo,
        cluster.endpoint(),
        &[
            "--delta-every",
            "500ms",
            "--unhealthy-after",
            "3s",
            "--metrics-addr",
            &addr,
            "--dial-timeout",
            "500ms",
            "--command-timeout",
            "1s",
        ],
        &dir.path().join("agent.log"),
    );
    agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    cluster.ctl().put("x", "1");
    let wait_status = |want: u16, within: Duration| {
        let deadline = Instant::now() + within;
        loop {
            let (code, body) = get(&addr, "/healthz");
            if code == want {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "/healthz stayed {code} ({body}), want {want}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_status(200, Duration::from_secs(10));
    let (code, text) = get(&addr, "/metrics");
    assert_eq!(code, 200);
    let m = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    for name in [
        "etcdsnap_agent_last_full_success_timestamp_seconds",
        "etcdsnap_agent_last_full_duration_seconds",
        "etcdsnap_agent_last_full_bytes",
        "etcdsnap_agent_last_delta_success_timestamp_seconds",
        "etcdsnap_agent_last_delta_duration_seconds",
        "etcdsnap_agent_last_delta_bytes",
        "etcdsnap_agent_revision_lag",
        "etcdsnap_agent_recovery_point_seconds",
    ] {
        assert!(m.contains_key(name), "{name} missing:\n{text}");
    }
    assert!(m["etcdsnap_agent_last_full_success_timestamp_seconds"] > 1.6e9);
    assert!(m["etcdsnap_agent_last_full_bytes"] > 0.0);

    // The threshold counts from the agent's last progress, which a quiet
    // cluster need not renew (on a loaded machine the scrape above took
    // long enough for it to age): a write just before the stop makes it
    // fresh, so 503 may come no sooner than 3 s after that write.
    let written_at = Instant::now();
    cluster.ctl().put("y", "2");
    cluster.members[0].stop();
    let body = wait_status(503, Duration::from_secs(30));
    assert!(
        written_at.elapsed() >= Duration::from_secs(3),
        "503 before the threshold: {body}"
    );
    let (_, text) = get(&addr, "/metrics");
    let m = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let errors: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("etcdsnap_agent_errors_total{kind="))
        .map(|(_, v)| v)
        .sum();
    assert!(errors >= 1.0, "errors counted by kind:\n{text}");

    let log = cluster.dir.join("restarted.log");
    let mut p = EtcdProcess::spawn(
        &bins,
        &member.name,
        &member.client_url(),
        &member_args,
        &log,
    )
    .expect("restart etcd");
    p.wait_healthy(Instant::now() + Duration::from_secs(60))
        .expect("healthy again");
    cluster.members[0] = p;
    wait_status(200, Duration::from_secs(30));
    assert_eq!(agent.signal(libc::SIGTERM).code(), Some(0));
}

/// Three members; the agent reaches the first through a proxy that stops
/// forwarding (no RST, no FIN) after a while, longer than
/// `--delta-every`, then the member it moved to is killed: it follows
/// the next member each time, and the chain still holds every revision
/// once, as etcdctl's watch reports them.
#[test]
fn fails_over_a_stalled_proxy_and_a_killed_member() {
    let Some(bins) = bins() else { return };
    let mut cluster = EtcdCluster::start(&bins, 3);
    let eps = cluster.endpoints();
    let upstream = support::http::parse_loopback_url(&eps[0]);
    let proxy = support::proxy::StallProxy::start(upstream, 300_000);
    let agent_eps = format!("{},{},{}", proxy.endpoint(), eps[1], eps[2]);
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let mut agent = Agent::start(
        &repo,
        &agent_eps,
        // Timeouts long enough that no member answers too late on a loaded
        // machine (8 tests at once on 2 cores): only the stall and the
        // kill may move the agent.
        &[
            "--delta-every",
            "500ms",
            "--dial-timeout",
            "2s",
            "--command-timeout",
            "2s",
        ],
        &dir.path().join("agent.log"),
    );
    let full = agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    let base = full["revision"].as_i64().unwrap();
    assert_eq!(full["endpoint"], proxy.endpoint());

    let writer = Writer::start({
        // Writes go to the members the test keeps.
        let ctl = Etcdctl::new(&bins, vec![eps[0].clone(), eps[2].clone()])
            .timeout(Duration::from_secs(10));
        move |i| {
            let _ = ctl.run(&["put", &format!("f{}", i % 11), &"x".repeat(2000)]);
        }
    });
    let away = agent.wait_for(
        "a failover off the stalled proxy",
        Duration::from_secs(90),
        |e| e["event"] == "failover" && e["from"] == proxy.endpoint(),
    );
    assert!(proxy.stalled());
    let to = away["to"].as_str().unwrap().to_string();
    assert_eq!(to, eps[1], "the next member in --endpoints");
    // Let it record from there, then kill that member.
    let n = agent
        .events()
        .iter()
        .filter(|e| e["event"] == "segment")
        .count();
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent
        .events()
        .iter()
        .filter(|e| e["event"] == "segment")
        .count()
        < n + 2
    {
        assert!(Instant::now() < deadline, "{}", agent.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.members[1].kill();
    agent.wait_for(
        "a failover off the killed member",
        Duration::from_secs(90),
        |e| e["event"] == "failover" && e["from"] == eps[1].as_str() && e["to"] == eps[2].as_str(),
    );
    std::thread::sleep(Duration::from_secs(1));
    writer.stop();
    let ctl = Etcdctl::new(&bins, vec![eps[2].clone()]);
    let last = revision(&ctl);
    agent.wait_for("the last revision stored", Duration::from_secs(30), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(last)
    });
    assert_eq!(agent.signal(libc::SIGTERM).code(), Some(0));

    let chains = chains(&repo);
    assert_eq!(
        chains.len(),
        1,
        "no gap, no new full snapshot:\n{}",
        agent.log_text()
    );
    let (snap, segs) = &chains[0];
    assert_eq!(snap.revision, base);
    let got = segment_events(base, segs);
    let want = RefWatch::start(&ctl, base + 1).finish(last);
    same_events(&got, &want);
    assert!(want.len() > 50, "the workload ran: {} events", want.len());
}

/// Scheduled full snapshots under a steady write load: each chain ends
/// exactly at the next full snapshot's revision (the watch is not cut),
/// so the chains together hold every revision once.
#[test]
fn scheduled_full_snapshots_leave_no_hole_between_chains() {
    let Some(bins) = bins() else { return };
    let cluster = EtcdCluster::single(&bins);
    let ctl = cluster.ctl();
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let mut agent = Agent::start(
        &repo,
        cluster.endpoint(),
        &["--delta-every", "300ms", "--full-every", "2s"],
        &dir.path().join("agent.log"),
    );
    let full = agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    let base = full["revision"].as_i64().unwrap();
    let writer = Writer::start({
        let ctl = ctl.clone();
        move |i| ctl.put(&format!("s{}", i % 13), &format!("{i}"))
    });
    let fulls = |a: &Agent| a.events().iter().filter(|e| e["event"] == "full").count();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fulls(&agent) < 3 {
        assert!(Instant::now() < deadline, "{}", agent.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    writer.stop();
    let last = revision(&ctl);
    agent.wait_for("the last revision stored", Duration::from_secs(30), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(last)
    });
    assert_eq!(agent.signal(libc::SIGTERM).code(), Some(0));
    assert!(
        !agent.events().iter().any(|e| e["event"] == "gap"),
        "{}",
        agent.log_text()
    );

    let chains = chains(&repo);
    assert!(chains.len() >= 3, "{} chains", chains.len());
    assert_eq!(chains[0].0.revision, base);
    let mut got = Vec::new();
    for (i, (snap, segs)) in chains.iter().enumerate() {
        got.extend(segment_events(snap.revision, segs));
        let end = segs.last().map_or(snap.revision, |s| s.last);
        match chains.get(i + 1) {
            Some((next, _)) => assert_eq!(
                end, next.revision,
                "chain {i} ends at the next full snapshot"
            ),
            None => assert_eq!(end, last),
        }
    }
    let want = RefWatch::start(&ctl, base + 1).finish(last);
    same_events(&got, &want);
}

/// `--keep-last 2`: after each full snapshot the older ones are forgotten with their
/// segments; the chains listed stay whole, and each ends where the next begins.
#[test]
fn keep_last_forgets_old_full_snapshots_and_their_segments() {
    let Some(bins) = bins() else { return };
    let cluster = EtcdCluster::single(&bins);
    let ctl = cluster.ctl();
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let mut agent = Agent::start(
        &repo,
        cluster.endpoint(),
        &[
            "--delta-every",
            "300ms",
            "--full-every",
            "1s",
            "--keep-last",
            "2",
        ],
        &dir.path().join("agent.log"),
    );
    agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    let mut i = 0;
    let retentions = |a: &Agent| {
        a.events()
            .iter()
            .filter(|e| e["event"] == "retention")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while retentions(&agent) < 2 {
        assert!(Instant::now() < deadline, "{}", agent.log_text());
        ctl.put(&format!("r{}", i % 5), &format!("{i}"));
        i += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let last = revision(&ctl);
    agent.wait_for("the last revision stored", Duration::from_secs(30), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(last)
    });
    assert_eq!(agent.signal(libc::SIGTERM).code(), Some(0));
    let events = agent.events();
    let forgotten: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "retention")
        .flat_map(|e| e["forgotten"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let fulls: Vec<String> = events
        .iter()
        .filter(|e| full_event(e))
        .filter_map(|e| e["id"].as_str().map(str::to_string))
        .collect();
    assert!(forgotten.len() >= 2, "{}", agent.log_text());

    let chains = chains(&repo);
    // Two kept, and at most one more taken since the last retention (its chain not started).
    assert!(
        (2..=3).contains(&chains.len()),
        "{} listed:\n{}",
        chains.len(),
        agent.log_text()
    );
    let listed: Vec<String> = chains.iter().map(|(s, _)| s.id.short()).collect();
    for f in &forgotten {
        assert!(!listed.contains(f), "{f} forgotten but listed");
        assert!(fulls.contains(f), "{f} was never taken");
    }
    // The newest full snapshots are the ones listed.
    assert_eq!(listed[..], fulls[fulls.len() - chains.len()..]);
    // No segment of a forgotten snapshot is left.
    let dirs: Vec<String> = std::fs::read_dir(repo.join("deltas"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    for d in &dirs {
        assert!(
            chains.iter().any(|(s, _)| s.id.to_string() == *d),
            "segments of {d} left behind"
        );
    }
    // The listed chains are whole and meet.
    for (k, (snap, segs)) in chains.iter().enumerate() {
        segment_events(snap.revision, segs);
        let end = segs.last().map_or(snap.revision, |s| s.last);
        match chains.get(k + 1) {
            Some((next, _)) if !segs.is_empty() || end < next.revision => {
                assert_eq!(
                    end, next.revision,
                    "chain {k} ends at the next full snapshot"
                )
            }
            Some(_) => {}
            None => assert_eq!(end, last),
        }
    }
}

/// A repository that refuses segments (the current chain's directory replaced by a file: a
/// write error even for root) while writes go on: the changes held stay under
/// `--max-buffer-bytes`, are dropped once past it (an `overflow` event at level error, the
/// counters), the chain ends where the repository last took it, and a new full snapshot starts
/// a chain that records everything after it.
#[test]
fn a_refusing_repository_drops_the_buffer_at_the_limit_and_a_full_snapshot_follows() {
    let Some(bins) = bins() else { return };
    let cluster = EtcdCluster::single(&bins);
    let ctl = cluster.ctl();
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let addr = format!("127.0.0.1:{}", support::ports::free_port());
    let limit: u64 = 64 << 10;
    let mut agent = Agent::start(
        &repo,
        cluster.endpoint(),
        &[
            "--delta-every",
            "300ms",
            "--max-buffer-bytes",
            &limit.to_string(),
            "--metrics-addr",
            &addr,
        ],
        &dir.path().join("agent.log"),
    );
    let first = agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    ctl.put("before", "1");
    let r0 = revision(&ctl);
    agent.wait_for("a segment", Duration::from_secs(30), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(r0)
    });
    // The chain's directory becomes a file.
    let deltas = repo.join("deltas");
    let chain_dirs: Vec<PathBuf> = std::fs::read_dir(&deltas)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(chain_dirs.len(), 1, "{chain_dirs:?}");
    let chain_dir = &chain_dirs[0];
    let away = dir.path().join("away");
    std::fs::rename(chain_dir, &away).unwrap();
    std::fs::write(chain_dir, b"not a directory").unwrap();

    let value = "v".repeat(4000);
    let mut i = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !agent.events().iter().any(|e| e["event"] == "overflow") {
        assert!(Instant::now() < deadline, "{}", agent.log_text());
        ctl.put(&format!("big/{}", i % 50), &value);
        i += 1;
    }
    let overflow = agent
        .events()
        .into_iter()
        .find(|e| e["event"] == "overflow")
        .unwrap();
    assert_eq!(overflow["level"], "error");
    assert_eq!(overflow["limit"].as_u64(), Some(limit));
    assert_eq!(overflow["last"].as_i64(), Some(r0), "{overflow}");
    let held = overflow["bytes"].as_u64().unwrap();
    // Past the limit by at most one watch response (a few events here).
    assert!(held > limit && held < limit + (64 << 10), "{overflow}");
    // The repository refused: errors were logged before the drop.
    assert!(
        agent
            .events()
            .iter()
            .any(|e| e["event"] == "error" && e["kind"] == "repository"),
        "{}",
        agent.log_text()
    );
    let second = agent.wait_for(
        "a full snapshot after the overflow",
        Duration::from_secs(60),
        |e| full_event(e) && e["id"] != first["id"],
    );
    let base2 = second["revision"].as_i64().unwrap();
    assert!(base2 > r0);
    for k in 0..20 {
        ctl.put(&format!("after/{k}"), "x");
    }
    let last = revision(&ctl);
    agent.wait_for("the last revision stored", Duration::from_secs(30), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(last) && e["base"] == second["id"]
    });
    let (code, text) = get(&addr, "/metrics");
    assert_eq!(code, 200);
    let m = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert_eq!(m["etcdsnap_agent_buffer_overflows_total"], 1.0, "{text}");
    assert_eq!(m["etcdsnap_agent_buffered_bytes"], 0.0, "{text}");
    assert_eq!(
        m["etcdsnap_agent_errors_total{kind=\"overflow\"}"], 1.0,
        "{text}"
    );
    assert_eq!(agent.signal(libc::SIGTERM).code(), Some(0));

    // The old chain back in place: it ends at r0; the new one holds every revision after
    // its full snapshot, as etcd's watch reports them.
    std::fs::remove_file(chain_dir).unwrap();
    std::fs::rename(&away, chain_dir).unwrap();
    let chains = chains(&repo);
    assert_eq!(chains.len(), 2);
    let end0 = chains[0].1.last().map_or(chains[0].0.revision, |s| s.last);
    assert_eq!(end0, r0);
    assert_eq!(chains[1].0.revision, base2);
    let got = segment_events(base2, &chains[1].1);
    let want = RefWatch::start(&ctl, base2 + 1).finish(last);
    same_events(&got, &want);
    // `backup ls` shows what the first chain can restore: up to r0, not beyond.
    let o = support::cli::run(&["backup", "ls", support::cli::s(&repo), "-w", "json"]);
    assert!(o.status.success());
    let ls: Value = serde_json::from_slice(&o.stdout).unwrap();
    let entry = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["revision"] == chains[0].0.revision)
        .cloned()
        .unwrap();
    assert_eq!(entry["restorable"]["toRevision"], r0, "{entry}");
}

/// A simple auth token that expires between two segments (`--auth-token-ttl 1`, segments
/// every 3 s): the member refuses it, the agent authenticates again and carries on, logged at
/// info level, with no error and no failover; the segments hold every revision.
#[test]
fn an_expired_auth_token_is_renewed_and_logged_as_info() {
    let Some(bins) = bins() else { return };
    let cluster = ClusterSpec::new(&bins, 1)
        .arg("--auth-token-ttl")
        .arg("1")
        .start();
    let admin = cluster.ctl();
    admin.ok(&["role", "add", "root"]);
    admin.ok(&["user", "add", "root:rootpw"]);
    admin.ok(&["user", "grant-role", "root", "root"]);
    admin.ok(&["auth", "enable"]);
    let ctl = admin.clone().user("root:rootpw");
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let mut agent = Agent::start(
        &repo,
        cluster.endpoint(),
        &["--delta-every", "3s", "--user", "root:rootpw"],
        &dir.path().join("agent.log"),
    );
    let full = agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    let base = full["revision"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    while !agent
        .events()
        .iter()
        .any(|e| e["event"] == "reauthenticating")
    {
        assert!(Instant::now() < deadline, "{}", agent.log_text());
        ctl.put(&format!("k{}", i % 3), &format!("{i}"));
        i += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    ctl.put("last", "1");
    let last = revision(&ctl);
    agent.wait_for("the last revision stored", Duration::from_secs(30), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(last)
    });
    assert_eq!(agent.signal(libc::SIGTERM).code(), Some(0));
    let events = agent.events();
    let re = events
        .iter()
        .find(|e| e["event"] == "reauthenticating")
        .unwrap();
    assert_eq!(re["level"], "info", "{re}");
    assert!(
        !events.iter().any(|e| e["level"] == "error"),
        "{}",
        agent.log_text()
    );
    assert_eq!(
        events.iter().filter(|e| e["event"] == "failover").count(),
        1,
        "{}",
        agent.log_text()
    );
    let chains = chains(&repo);
    assert_eq!(chains.len(), 1);
    let got = segment_events(base, &chains[0].1);
    assert_eq!(chains[0].1.last().map(|s| s.last), Some(last));
    let want = RefWatch::start(&ctl, base + 1).finish(last);
    same_events(&got, &want);
}
