//! Continuous backup end to end (issue 22): a real 3-member etcd 3.5.1
//! cluster on loopback, a workload of puts, deletes, range deletes,
//! multi-operation transactions, keys with leases (expiring, revoked,
//! alive at the end, one granted and never used) and periodic
//! `etcdctl compact`, while `etcdsnap agent` records it through one TCP
//! proxy per member. During the run the leader member is SIGKILLed and
//! restarted, the agent is SIGKILLed and restarted (when its full
//! snapshot is due, so the restart must not drop what it had not stored
//! yet), the proxies stall every connection for several `--delta-every`
//! (the agent recovers: no gap), and later cut them while the cluster is
//! compacted to its head (the agent cannot recover those revisions: one
//! gap, which `backup ls` must show).
//!
//! The live answer at many revisions R is recorded as the workload goes
//! (`etcdctl get "" --prefix --rev R -w json` and `etcdctl endpoint
//! hashkv --rev R` of every running member, right after the write that
//! made R, before a compaction can remove it). Afterwards, for every R:
//! `backup cat --to-revision R` read by `etcdsnap get` answers exactly as
//! etcd did and `snapshot hashkv --rev R` equals etcd's hash, or, for R in
//! the gap, the cat is refused; and `backup restore --to-revision` of the
//! last R boots a 3-member etcd 3.5.1 that serves the same keys and leases.

use crate::agent::{Agent, full_event, init_repo, kvs};
use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::s;
use support::etcd::{ClusterSpec, EtcdCluster, Etcdctl};
use support::proxy::{CutProxy, Link};
use support::tools::{self, EtcdBins, EtcdVersion};

/// How often the agent seals a segment.
const DELTA_EVERY: Duration = Duration::from_secs(1);
/// How often it takes a scheduled full snapshot.
const FULL_EVERY: Duration = Duration::from_secs(12);
/// At most one recorded answer this often (each costs two etcdctl calls
/// now and three etcdsnap commands afterwards).
const SAMPLE_EVERY: Duration = Duration::from_millis(600);
/// TTL of the leases left to expire during the run.
const SHORT_TTL: u32 = 3;
/// TTL of the leases some of which are revoked; the others expire late
/// in the run or are still alive at its end.
const MID_TTL: u32 = 40;
/// TTL of the leases alive at the end (the restored cluster keeps them).
const LONG_TTL: u32 = 600;

/// The live answers at one revision.
struct Sample {
    /// `etcdctl get "" --prefix --rev R -w json`.
    get: Value,
    /// `endpoint hashkv --rev R`: hash and compact revision, the same on
    /// every running member.
    hash: (i64, i64),
    /// What the run was doing (for messages).
    phase: &'static str,
}

/// The workload: one etcdctl runner against the three members directly
/// (not through the agent's proxies), a deterministic sequence of
/// operations, and the answers recorded on the way.
struct Workload {
    bins: EtcdBins,
    ctl: Etcdctl,
    endpoints: Vec<String>,
    /// A member that is down (its hashkv is not asked).
    down: Option<usize>,
    rng: u64,
    step: u64,
    mid: Vec<i64>,
    long: Vec<i64>,
    unused: usize,
    last_short: Option<Instant>,
    last_rev: i64,
    /// The cluster's compaction revision.
    compacted: i64,
    samples: BTreeMap<i64, Sample>,
    last_sample: Instant,
    phase: &'static str,
    /// Failed etcdctl calls by phase and error line.
    failed: BTreeMap<String, usize>,
    /// The kind of the current operation.
    kind: &'static str,
    /// Operations that succeeded, by kind.
    done: BTreeMap<&'static str, usize>,
    ops: usize,
}

impl Workload {
    fn new(bins: &EtcdBins, endpoints: Vec<String>) -> Workload {
        Workload {
            bins: bins.clone(),
            ctl: Etcdctl::new(bins, endpoints.clone()).timeout(Duration::from_secs(15)),
            endpoints,
            down: None,
            rng: 0x9e37_79b9_7f4a_7c15,
            step: 0,
            mid: Vec::new(),
            long: Vec::new(),
            unused: 0,
            last_short: None,
            last_rev: 0,
            compacted: 0,
            samples: BTreeMap::new(),
            last_sample: Instant::now(),
            phase: "start",
            failed: BTreeMap::new(),
            kind: "",
            done: BTreeMap::new(),
            ops: 0,
        }
    }

    /// Member `down` is down (or none): the workload's client and the
    /// hashkv questions leave it out, so that every call does not first
    /// wait for the dead member's dial timeout.
    fn set_down(&mut self, down: Option<usize>) {
        self.down = down;
        let live: Vec<String> = (0..self.endpoints.len())
            .filter(|&i| Some(i) != down)
            .map(|i| self.endpoints[i].clone())
            .collect();
        self.ctl = Etcdctl::new(&self.bins, live).timeout(Duration::from_secs(15));
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: the same sequence of operations every run.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `etcdctl -w json ARGS` (stdin `input`), the header's revision when
    /// it succeeded. A failure (a member being killed under a request) is
    /// counted and skipped: the test compares with what etcd answered,
    /// not with a model of what should have been written.
    fn write(&mut self, args: &[&str], input: Option<&str>) -> Option<i64> {
        self.ops += 1;
        let mut c = self.ctl.command(&[&["-w", "json"], args].concat());
        let out =
            support::cmd::run_with_input(&mut c, input.map(str::as_bytes), Duration::from_secs(15));
        if !out.success() {
            self.failure(&out);
            return None;
        }
        let v: Value = serde_json::from_str(out.stdout.trim()).ok()?;
        let r = v["header"]["revision"].as_i64()?;
        self.last_rev = self.last_rev.max(r);
        Some(r)
    }

    /// `etcdctl compact R`, asked again when etcd did not answer in time
    /// (a repeat that finds it done is refused as compacted: done).
    fn compact(&mut self, r: i64) {
        for _ in 0..5 {
            let out = self.ctl.run(&["compact", &r.to_string()]);
            if out.success() || out.stderr.contains("required revision has been compacted") {
                self.compacted = r;
                return;
            }
            self.failure(&out);
            std::thread::sleep(Duration::from_secs(1));
        }
        panic!("compact {r} failed: {:?}", self.failed);
    }

    /// Counts a failed etcdctl call by its error line.
    fn failure(&mut self, out: &support::cmd::CmdOutput) {
        let line = out.error_line().map_or_else(
            || format!("{:?}", out.status),
            |l| l.chars().take(100).collect(),
        );
        *self
            .failed
            .entry(format!("{}: {line}", self.phase))
            .or_insert(0) += 1;
    }

    fn value(&mut self) -> String {
        let len = match self.next() % 10 {
            0 => 3000 + (self.next() % 3000) as usize,
            1..=3 => 200 + (self.next() % 300) as usize,
            _ => 1 + (self.next() % 40) as usize,
        };
        let c = (b'a' + (self.step % 26) as u8) as char;
        format!("{}-{}", self.step, c.to_string().repeat(len))
    }

    fn grant(&mut self, ttl: u32) -> Option<i64> {
        let out = self.ctl.run(&["lease", "grant", &ttl.to_string()]);
        if !out.success() {
            self.failure(&out);
            return None;
        }
        // "lease 694d77aa9e38260f granted with TTL(100s)"
        let hex = out.stdout.split_whitespace().nth(1)?;
        Some(u64::from_str_radix(hex, 16).ok()? as i64)
    }

    /// One operation; its revision when it wrote.
    fn op(&mut self) -> Option<i64> {
        self.step += 1;
        let i = self.step;
        let k = self.next() % 40;
        // Until every kind has been done twice, the first kind short of
        // that is chosen (in an order whose guards hold: a revoke after a
        // mid lease, a put on a long lease after one), so that a run slowed
        // by a loaded machine still has every kind; then they are drawn at
        // random.
        const KINDS: [(&str, u64); 9] = [
            ("put", 0),
            ("delete", 40),
            ("range delete", 50),
            ("txn", 54),
            ("short lease", 70),
            ("mid lease", 76),
            ("revoke", 82),
            ("long lease", 87),
            ("put on a long lease", 93),
        ];
        let roll = self.next() % 100;
        let roll = KINDS
            .iter()
            .find(|(kind, _)| self.done.get(kind).copied().unwrap_or(0) < 2)
            .map_or(roll, |&(kind, r)| {
                // A revoke takes a mid lease even when etcd refuses it (the
                // leader down): with none left, another is granted first,
                // or its guard fails and every later op is a put.
                if kind == "revoke" && self.mid.is_empty() {
                    76
                } else {
                    r
                }
            });
        match roll {
            0..=39 => {
                self.kind = "put";
                let v = self.value();
                self.write(&["put", "--", &format!("k/{k}"), &v], None)
            }
            40..=49 => {
                self.kind = "delete";
                self.write(&["del", "--", &format!("k/{k}")], None)
            }
            50..=53 => {
                self.kind = "range delete";
                self.write(&["del", "--prefix", "--", &format!("k/{}", k % 4)], None)
            }
            54..=69 => {
                self.kind = "txn";
                // Several operations in one revision, in order; which branch
                // runs depends on the key's state.
                let v = self.value();
                let body = format!(
                    "mod(\"k/{k}\") > \"0\"\n\nput k/{k} txn-{i}\ndel k/{}\nput t/{i} {v}\ndel --prefix u/{}\n\nput k/{k} created-{i}\nput u/{}/{i} {v}\ndel --prefix t/{}\n\n",
                    (k + 1) % 40,
                    (i + 1) % 5,
                    i % 5,
                    i % 7
                );
                self.write(&["txn"], Some(&body))
            }
            70..=75 => {
                self.kind = "short lease";
                let l = self.grant(SHORT_TTL)?;
                self.last_short = Some(Instant::now());
                self.write(
                    &[
                        "put",
                        &format!("--lease={l:x}"),
                        &format!("lease/s{i}"),
                        "short",
                    ],
                    None,
                )
            }
            76..=81 => {
                self.kind = "mid lease";
                let l = self.grant(MID_TTL)?;
                self.mid.push(l);
                self.write(
                    &[
                        "put",
                        &format!("--lease={l:x}"),
                        &format!("lease/m{i}"),
                        "mid",
                    ],
                    None,
                )
            }
            82..=86 if !self.mid.is_empty() => {
                self.kind = "revoke";
                let l = self.mid.remove(0);
                self.write(&["lease", "revoke", &format!("{l:x}")], None)
            }
            87..=90 if self.long.len() < 5 => {
                self.kind = "long lease";
                let l = self.grant(LONG_TTL)?;
                self.long.push(l);
                self.write(
                    &[
                        "put",
                        &format!("--lease={l:x}"),
                        &format!("lease/l{i}"),
                        "long",
                    ],
                    None,
                )
            }
            91..=92 if self.unused < 2 => {
                self.kind = "unused lease";
                // A lease no key is ever attached to.
                self.unused += 1;
                if self.grant(LONG_TTL).is_some() {
                    *self.done.entry(self.kind).or_insert(0) += 1;
                }
                None
            }
            93..=99 if !self.long.is_empty() => {
                self.kind = "put on a long lease";
                // A plain key attached to a long lease, and moved on.
                let pick = (self.next() % self.long.len() as u64) as usize;
                let l = self.long[pick];
                let v = self.value();
                self.write(
                    &["put", &format!("--lease={l:x}"), &format!("k/{k}"), &v],
                    None,
                )
            }
            _ => {
                self.kind = "put";
                let v = self.value();
                self.write(&["put", "--", &format!("k/{k}"), &v], None)
            }
        }
    }

    /// The live answers at `r`. `false` when etcd did not answer.
    fn sample(&mut self, r: i64) -> bool {
        let out = self
            .ctl
            .run(&["get", "", "--prefix", "--rev", &r.to_string(), "-w", "json"]);
        if !out.success() {
            self.failure(&out);
            return false;
        }
        let get: Value = serde_json::from_str(out.stdout.trim()).expect("get -w json");
        let Some(hash) = self.hashkv(r) else {
            return false;
        };
        self.samples.insert(
            r,
            Sample {
                get,
                hash,
                phase: self.phase,
            },
        );
        self.last_sample = Instant::now();
        true
    }

    /// `endpoint hashkv --rev R` of every running member, which must agree
    /// (a member that has not applied R yet answers "future revision": it
    /// is asked again).
    fn hashkv(&mut self, r: i64) -> Option<(i64, i64)> {
        let mut answers = Vec::new();
        for (i, ep) in self.endpoints.iter().enumerate() {
            if self.down == Some(i) {
                continue;
            }
            let ctl = Etcdctl::new(&self.bins, vec![ep.clone()]).timeout(Duration::from_secs(10));
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let out = ctl.run(&["endpoint", "hashkv", "--rev", &r.to_string(), "-w", "json"]);
                if out.success() {
                    let v: Value = serde_json::from_str(out.stdout.trim()).expect("hashkv json");
                    let h = &v[0]["HashKV"];
                    answers.push((
                        ep.clone(),
                        (
                            h["hash"].as_i64().expect("hash"),
                            h["compact_revision"].as_i64().expect("compact_revision"),
                        ),
                    ));
                    break;
                }
                if Instant::now() > deadline {
                    // A member just restarted may still be catching up.
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let first = answers.first()?.1;
        for (ep, a) in &answers {
            assert_eq!(
                *a, first,
                "members disagree on hashkv at {r}: {answers:?} ({ep})"
            );
        }
        Some(first)
    }

    /// Runs operations for `d`, recording an answer at most every
    /// [`SAMPLE_EVERY`].
    fn run_for(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.tick();
        }
    }

    /// Runs operations until `done` (checked between them) or `within`
    /// passes (then fails with `what`).
    fn run_until(&mut self, what: &str, within: Duration, mut done: impl FnMut() -> bool) {
        let until = Instant::now() + within;
        while !done() {
            assert!(Instant::now() < until, "no {what} within {within:?}");
            self.tick();
        }
    }

    /// Runs operations until `n` more answers are recorded (and at
    /// least `d`), failing after `within`.
    fn run_answers(&mut self, n: usize, d: Duration, within: Duration) {
        let want = self.samples.len() + n;
        let start = Instant::now();
        while self.samples.len() < want || start.elapsed() < d {
            assert!(
                start.elapsed() < within,
                "{n} answers not recorded within {within:?} ({}): {:?}",
                self.phase,
                self.failed
            );
            self.tick();
        }
    }

    fn tick(&mut self) {
        let r = self.op();
        if r.is_some() {
            *self.done.entry(self.kind).or_insert(0) += 1;
        }
        if let Some(r) = r
            && self.last_sample.elapsed() >= SAMPLE_EVERY
        {
            self.sample(r);
        }
    }
}

/// Every event the agent's runs logged, in order.
fn events(logs: &[&Path]) -> Vec<Value> {
    logs.iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
                .collect::<Vec<Value>>()
        })
        .collect()
}

fn stored_last(agent: &Agent) -> i64 {
    agent
        .events()
        .iter()
        .filter(|e| e["event"] == "segment")
        .filter_map(|e| e["last"].as_i64())
        .max()
        .unwrap_or(0)
}

/// A compaction while the agent follows the cluster, at the newest
/// recorded revision the agent has stored (so it cannot fall behind it:
/// no gap). No write follows until the agent has logged it: a compaction
/// makes no revision, and the agent records it as seen at the cluster's
/// revision when it learnt of it, which is then the revision it ran at;
/// every answer recorded below that revision was recorded before it,
/// every one above after it, as a restore applies it. An answer at
/// exactly that revision was recorded before the compaction and is
/// recorded again (a restore there applies the compaction: it changes
/// the hash, not the get).
///
/// A full snapshot taken after the compaction ran holds it, and the agent
/// records only later ones: a compaction run just before a scheduled full
/// snapshot may never be logged. So it runs at least `FULL_MARGIN` before
/// the next one is due (after that one, if it is nearer).
fn compact(w: &mut Workload, agent: &mut Agent) {
    const FULL_MARGIN: Duration = Duration::from_secs(6);
    let fulls: Vec<Value> = agent.events().into_iter().filter(full_event).collect();
    let since_full = fulls
        .last()
        .and_then(|e| e["time"].as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| (chrono::Utc::now() - t.to_utc()).to_std().ok());
    if since_full.is_some_and(|d| d + FULL_MARGIN > FULL_EVERY) {
        let n = fulls.len();
        w.run_until("the next scheduled full snapshot", FULL_EVERY * 3, || {
            agent.events().iter().filter(|e| full_event(e)).count() > n
        });
    }
    let stored = stored_last(agent);
    // Below the head: etcd 3.5.1's hashkv refuses the compaction
    // revision itself, and the head's answer is recorded again below.
    let head = w.last_rev;
    let Some(&c) = w.samples.keys().rev().find(|&&r| r <= stored && r < head) else {
        return;
    };
    if c <= w.compacted {
        return;
    }
    w.compact(c);
    let ev = agent.wait_for("the compaction logged", Duration::from_secs(30), |e| {
        e["event"] == "compaction" && e["revision"] == c
    });
    let seen = ev["seenAtRevision"].as_i64().unwrap();
    if let Some(before) = w.samples.remove(&seen) {
        assert!(w.sample(seen), "the answer at {seen} again");
        assert_eq!(
            kvs(&w.samples[&seen].get),
            kvs(&before.get),
            "a compaction below {seen} changed get --rev {seen}"
        );
    }
}

/// `get` JSON with what depends on who answered and when set aside: the
/// member ID (of the member that served it, or the first in the
/// snapshot's `members` bucket offline), the raft term (an election bumps
/// it; the snapshot holds the term of its save), and the header's
/// revision (the store's revision when it answered: live it may be past R
/// already, as leases expire on their own; the snapshot at R is at R).
fn normalized(mut v: Value) -> Value {
    if let Some(h) = v.get_mut("header").and_then(Value::as_object_mut) {
        h.remove("member_id");
        h.remove("raft_term");
        h.remove("revision");
    }
    v
}

#[test]
fn agent_records_a_disturbed_cluster_and_restores_every_point() {
    let Some(bins) = tools::require(tools::etcd_suite(EtcdVersion::V35)) else {
        return;
    };
    let started = Instant::now();
    let mut cluster = EtcdCluster::start(&bins, 3);
    let eps = cluster.endpoints();
    let proxies: Vec<CutProxy> = eps
        .iter()
        .map(|e| CutProxy::start(support::http::parse_loopback_url(e)))
        .collect();
    // The agent follows the first endpoint it is given: the leader's, so
    // that killing the leader below makes it fail over (unless an election
    // under load moved the leadership meanwhile; see the check at the end).
    let first = cluster.leader().expect("a leader");
    let agent_eps = (0..proxies.len())
        .map(|i| proxies[(first + i) % proxies.len()].endpoint())
        .collect::<Vec<_>>()
        .join(",");
    let links = |l: Link| proxies.iter().for_each(|p| p.set(l));
    let mut dir = tempfile::Builder::new()
        .prefix("etcdsnap-agent-e2e-")
        .tempdir()
        .unwrap();
    // ETCDSNAP_TEST_KEEP=1 keeps the repository and the agent's logs.
    if std::env::var_os("ETCDSNAP_TEST_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("agent_e2e: keeping {}", dir.path().display());
    }
    let repo = init_repo(dir.path());
    let log1 = dir.path().join("agent-1.log");
    let log2 = dir.path().join("agent-2.log");
    let full_every = format!("{}s", FULL_EVERY.as_secs());
    let args = [
        "--delta-every",
        "1s",
        "--full-every",
        &full_every,
        "--dial-timeout",
        "1s",
        "--command-timeout",
        "2s",
    ];

    // Some history in the first full snapshot, compacted.
    let mut w = Workload::new(&bins, eps.clone());
    for _ in 0..30 {
        w.op();
    }
    w.compact(w.last_rev - 10);
    let mut agent = Agent::start(&repo, &agent_eps, &args, &log1);
    agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);

    w.phase = "steady";
    w.run_for(Duration::from_secs(3));
    compact(&mut w, &mut agent);
    w.run_for(Duration::from_secs(2));

    // The leader is killed, the workload goes on, it comes back.
    w.phase = "leader down";
    let leader = cluster.leader().expect("a leader");
    let followed = proxies[first].endpoint();
    let killed_followed = leader == first;
    cluster.kill_member(leader);
    w.set_down(Some(leader));
    // Until the others have elected a leader and answered a few times.
    w.run_answers(3, Duration::from_secs(4), Duration::from_secs(60));
    cluster.respawn_member(leader);
    w.phase = "leader back";
    w.run_until("the old leader healthy", Duration::from_secs(60), || {
        cluster.members[leader].wait_healthy(Instant::now()).is_ok()
    });
    w.set_down(None);
    w.run_for(Duration::from_secs(2));
    compact(&mut w, &mut agent);

    // The agent is SIGKILLed shortly before its next full snapshot is
    // due and restarted after: the restart finds the newest full
    // snapshot older than --full-every and must still keep what it had
    // not stored.
    w.phase = "agent";
    let fulls = |a: &Agent| a.events().iter().filter(|e| full_event(e)).count();
    let n = fulls(&agent);
    w.run_until("a scheduled full snapshot", FULL_EVERY * 3, || {
        fulls(&agent) > n
    });
    w.run_for(FULL_EVERY - Duration::from_secs(3));
    w.phase = "agent down";
    agent.signal(libc::SIGKILL);
    w.run_for(Duration::from_secs(6));
    let mut agent = Agent::start(&repo, &agent_eps, &args, &log2);
    w.phase = "agent back";
    w.run_until("the agent back", Duration::from_secs(60), || {
        agent
            .events()
            .iter()
            .any(|e| e["event"] == "resumed" || full_event(e))
    });
    w.run_for(Duration::from_secs(3));
    compact(&mut w, &mut agent);

    // Every connection of the agent stalls for 4 delta intervals: it
    // times out, tries the other members (also stalled), and carries on
    // from where it was once they answer: no gap.
    w.phase = "stalled";
    links(Link::Stalled);
    w.run_for(DELTA_EVERY * 4);
    links(Link::Up);
    w.phase = "after the stall";
    let stalled_last = w.last_rev;
    w.run_until("the agent past the stall", Duration::from_secs(60), || {
        stored_last(&agent) >= stalled_last
    });
    compact(&mut w, &mut agent);
    w.run_for(Duration::from_secs(2));

    // The agent's connections are cut, and while it cannot see the
    // cluster it is compacted to its head: the revisions since the
    // agent's last one are gone from the cluster, so the agent must
    // report a gap and take a new full snapshot.
    w.phase = "cut";
    links(Link::Cut);
    w.run_for(Duration::from_secs(3));
    let head = w.last_rev;
    w.compact(head);
    w.phase = "cut, compacted";
    w.run_for(Duration::from_secs(2));
    links(Link::Up);
    w.phase = "after the cut";
    let gaps_before = events(&[&log1, &log2])
        .iter()
        .filter(|e| e["event"] == "gap")
        .count();
    assert_eq!(
        gaps_before,
        0,
        "a gap before the cut:\n{}",
        agent.log_text()
    );
    w.run_until(
        "the gap and a new full snapshot",
        Duration::from_secs(60),
        || {
            let ev = agent.events();
            ev.iter()
                .position(|e| e["event"] == "gap")
                .is_some_and(|g| ev[g..].iter().any(full_event))
        },
    );
    w.phase = "new chain";
    w.run_for(Duration::from_secs(3));
    compact(&mut w, &mut agent);
    w.run_for(Duration::from_secs(2));

    // The end: the mid leases left are revoked and the short ones expire
    // (etcd deletes their keys), so nothing changes after one last write;
    // its answer, the leases alive, and the agent stored through it.
    w.phase = "end";
    for l in std::mem::take(&mut w.mid) {
        // It may have expired already.
        w.write(&["lease", "revoke", &format!("{l:x}")], None);
    }
    if let Some(t) = w.last_short {
        std::thread::sleep(
            (t + Duration::from_secs(u64::from(SHORT_TTL) + 2))
                .saturating_duration_since(Instant::now()),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kvs(&w.ctl.json(&["get", "--prefix", "lease/s"]))
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "short leases did not expire");
        std::thread::sleep(Duration::from_millis(200));
    }
    let last = w
        .write(&["put", "the-end", "of the workload"], None)
        .expect("the last put");
    assert!(w.sample(last));
    let live_leases = lease_table(&w.ctl);
    let workload_secs = started.elapsed();
    agent.wait_for("the last revision stored", Duration::from_secs(60), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(last)
    });
    assert_eq!(
        agent.signal(libc::SIGTERM).code(),
        Some(0),
        "{}",
        agent.log_text()
    );
    drop(proxies);

    // What the agent went through.
    let ev = events(&[&log1, &log2]);
    let count = |name: &str| ev.iter().filter(|e| e["event"] == name).count();
    let gaps: Vec<&Value> = ev.iter().filter(|e| e["event"] == "gap").collect();
    assert_eq!(gaps.len(), 1, "one gap, from the cut: {gaps:?}");
    let gap_at = ev.iter().position(|e| e["event"] == "gap").unwrap();
    let gap_last = gaps[0]["last"].as_i64().unwrap();
    assert_eq!(gaps[0]["compacted"].as_i64(), Some(head), "{}", gaps[0]);
    let after_gap = ev[gap_at..]
        .iter()
        .find(|e| full_event(e))
        .expect("a full snapshot after the gap");
    let new_base = after_gap["revision"].as_i64().unwrap();
    assert!(
        new_base >= head && gap_last < head,
        "gap {gap_last}, compacted {head}, new {new_base}"
    );
    assert!(
        count("full") >= 4,
        "initial, scheduled (>= 2) and after the gap: {}",
        count("full")
    );
    if killed_followed {
        assert!(
            ev.iter()
                .any(|e| e["event"] == "failover" && e["from"] == followed.as_str()),
            "no failover from the killed leader it followed ({followed})"
        );
    } else {
        eprintln!(
            "agent_e2e: the leadership moved before the kill; the agent followed another member"
        );
    }
    assert!(count("compaction") >= 5, "{}", count("compaction"));
    assert_eq!(count("stopped"), 1);

    // `backup ls`: each chain's range, no hole inside a chain, and the
    // revisions no chain reaches are exactly the gap.
    let ls: Value =
        serde_json::from_str(support::cli::ok(&["backup", "ls", s(&repo), "-w", "json"]).trim())
            .unwrap();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for snap in ls.as_array().unwrap() {
        let r = &snap["restorable"];
        assert_eq!(r["gaps"], Value::Array(vec![]), "{snap}");
        assert_eq!(r["overlaps"], Value::Array(vec![]), "{snap}");
        ranges.push((
            r["fromRevision"].as_i64().unwrap(),
            r["toRevision"].as_i64().unwrap(),
        ));
    }
    ranges.sort();
    let mut holes = Vec::new();
    let mut covered = ranges[0].1;
    for &(from, to) in &ranges[1..] {
        if from > covered + 1 {
            holes.push((covered + 1, from - 1));
        }
        covered = covered.max(to);
    }
    assert!(covered >= last, "restorable to {covered}, last {last}");
    let expected: Vec<(i64, i64)> = if new_base > gap_last + 1 {
        vec![(gap_last + 1, new_base - 1)]
    } else {
        vec![]
    };
    assert_eq!(
        holes,
        expected,
        "ranges {ranges:?}; the agent's log but segments:\n{}",
        ev.iter()
            .filter(|e| e["event"] != "segment")
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let first_base = ranges[0].0;

    // Every recorded revision.
    let (mut compared, mut refused) = (0, 0);
    let mut compared_in: BTreeMap<&str, usize> = BTreeMap::new();
    let check_started = Instant::now();
    for (&r, sample) in &w.samples {
        assert!(
            r >= first_base,
            "answer at {r} before the first full snapshot {first_base}"
        );
        let file = dir.path().join(format!("at-{r}.db"));
        let out = support::cli::run(&[
            "backup",
            "cat",
            s(&repo),
            "--to-revision",
            &r.to_string(),
            "-o",
            s(&file),
        ]);
        let in_gap = holes.iter().any(|&(a, b)| a <= r && r <= b);
        if in_gap {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && err.contains("is not restorable"),
                "revision {r} in the gap ({}): {err}",
                sample.phase
            );
            refused += 1;
            continue;
        }
        assert!(
            out.status.success(),
            "backup cat --to-revision {r} ({}): {}",
            sample.phase,
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_str(
            support::cli::ok(&[
                "get",
                s(&file),
                "",
                "--prefix",
                "--rev",
                &r.to_string(),
                "-w",
                "json",
            ])
            .trim(),
        )
        .unwrap();
        assert_eq!(got["header"]["revision"].as_i64(), Some(r));
        assert!(sample.get["header"]["revision"].as_i64() >= Some(r));
        assert_eq!(
            normalized(got),
            normalized(sample.get.clone()),
            "get \"\" --prefix at revision {r} ({})",
            sample.phase
        );
        let h = crate::agent_probe::file_hashkv(&file, r);
        assert_eq!(
            h, sample.hash,
            "hashkv at revision {r} ({}): ours {h:?}",
            sample.phase
        );
        std::fs::remove_file(&file).unwrap();
        compared += 1;
        *compared_in.entry(sample.phase).or_insert(0) += 1;
    }
    let check_secs = check_started.elapsed();
    eprintln!(
        "agent_e2e: {} operations {:?}, failed: {:?}; {} answers recorded, {compared} compared {compared_in:?}, {refused} in the gap \
         {:?}, last revision {last}, {} full snapshots, {} segments; workload {:.0}s, checks {:.0}s",
        w.ops,
        w.done,
        w.failed,
        w.samples.len(),
        holes,
        count("full"),
        count("segment"),
        workload_secs.as_secs_f64(),
        check_secs.as_secs_f64(),
    );
    assert!(compared >= 20, "{compared} revisions compared");
    assert!(refused >= 1, "no recorded revision fell in the gap");
    for phase in ["leader down", "agent down", "stalled", "new chain"] {
        assert!(
            compared_in.contains_key(phase),
            "no revision compared from {phase}: {compared_in:?}"
        );
    }
    // Every kind of operation ran; the failures are etcd's answers to
    // the disruptions, not requests it refuses.
    for kind in [
        "put",
        "delete",
        "range delete",
        "txn",
        "short lease",
        "mid lease",
        "revoke",
        "long lease",
        "put on a long lease",
    ] {
        assert!(
            w.done.get(kind).is_some_and(|&n| n >= 2),
            "{kind}: {:?}",
            w.done
        );
    }
    assert!(
        !w.failed.keys().any(|f| f.contains("InvalidArgument")
            || f.contains("duplicate")
            || f.contains("invalid")),
        "{:?}",
        w.failed
    );

    // The last revision restored for three members; etcd 3.5.1 boots from
    // it and serves the same keys, leases and hash.
    let boot = dir.path().join("boot");
    std::fs::create_dir(&boot).unwrap();
    let spec = ClusterSpec::in_dir(&bins, 3, &boot).token("restored");
    for m in &spec.members {
        support::cli::ok(&[
            "backup",
            "restore",
            s(&repo),
            "--to-revision",
            &last.to_string(),
            "--name",
            &m.name,
            "--initial-cluster",
            &spec.initial_cluster(),
            "--initial-cluster-token",
            "restored",
            "--initial-advertise-peer-urls",
            &m.peer_url(),
            "--data-dir",
            s(&m.data_dir),
        ]);
    }
    drop(cluster);
    let booted = spec.start();
    let answer = booted.ctl().json(&["get", "", "--prefix"]);
    assert_eq!(
        kvs(&answer),
        kvs(&w.samples[&last].get),
        "the booted cluster at {last}"
    );
    assert_eq!(
        lease_table(&booted.ctl()),
        live_leases,
        "leases alive at {last}"
    );
    for i in 0..3 {
        let v = booted
            .ctl_member(i)
            .json(&["endpoint", "hashkv", "--rev", &last.to_string()]);
        let h = &v[0]["HashKV"];
        assert_eq!(
            (
                h["hash"].as_i64().unwrap(),
                h["compact_revision"].as_i64().unwrap()
            ),
            w.samples[&last].hash,
            "hashkv of restored member {i}"
        );
    }
}

/// Each lease alive and the TTL it was granted with.
fn lease_table(ctl: &Etcdctl) -> BTreeMap<i64, i64> {
    let list = ctl.json(&["lease", "list"]);
    list["leases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["id"].as_i64())
        .map(|id| {
            let t = ctl.json(&["lease", "timetolive", &format!("{id:x}")]);
            (id, t["granted-ttl"].as_i64().unwrap_or(-1))
        })
        .collect()
}
