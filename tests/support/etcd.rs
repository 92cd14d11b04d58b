//! etcd members on loopback: `ClusterSpec` (plan: names, ports, data dirs) → `EtcdCluster`
//! (running `EtcdProcess`es), plus an `Etcdctl` runner.
//!
//! Every process is stopped by its PID when its `EtcdProcess` is dropped (also while a test
//! panics): SIGTERM, then SIGKILL after a grace period, then reaped. As a second line of
//! defence each child gets `PR_SET_PDEATHSIG = SIGKILL`, so it dies if the test binary dies;
//! note that Linux ties this to the *thread* that spawned it: create a cluster in the thread
//! that uses it (one cluster per test; never in a `static`).
//!
//! Each member's stdout+stderr go to `<dir>/<name>.log`; a failed start panics with its tail.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::cmd::{self, CmdOutput};
use super::http::HttpClient;
use super::ports;
use super::tools::{EtcdBins, EtcdVersion, etcd_child_env};

/// Grace period between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// Default time allowed for all members to report healthy.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One member of a planned cluster.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// `--name`.
    pub name: String,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// Client port on 127.0.0.1.
    pub client_port: u16,
    /// Peer port on 127.0.0.1.
    pub peer_port: u16,
    /// Client and peer URLs are `https://` (see [`ClusterSpec::tls`]).
    pub tls: bool,
    /// A plain-HTTP `--listen-metrics-urls` port, where `/health` is
    /// polled when the client port needs a client certificate.
    pub metrics_port: Option<u16>,
}

impl MemberSpec {
    fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
    /// `http(s)://127.0.0.1:<client_port>`.
    pub fn client_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.client_port)
    }
    /// `http(s)://127.0.0.1:<peer_port>`.
    pub fn peer_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.peer_port)
    }
    /// Where `/health` is polled.
    pub fn health_url(&self) -> String {
        match self.metrics_port {
            Some(p) => format!("http://127.0.0.1:{p}"),
            None => self.client_url(),
        }
    }
}

/// A cluster plan: ports are reserved now, so a test can e.g. run a restore with
/// [`ClusterSpec::initial_cluster`] and [`ClusterSpec::token`] before starting etcd on the
/// restored data dirs.
#[derive(Debug)]
pub struct ClusterSpec {
    /// The binaries to run.
    pub bins: EtcdBins,
    /// `--initial-cluster-token`.
    pub token: String,
    /// Members, in order.
    pub members: Vec<MemberSpec>,
    /// `--initial-cluster-state` (`new`).
    pub cluster_state: String,
    /// Added to every member's command line.
    pub extra_args: Vec<String>,
    /// Time allowed for all members to become healthy.
    pub start_timeout: Duration,
    /// Directory for logs (and default data dirs).
    pub dir: PathBuf,
    /// Added to every etcdctl command line of the cluster's runners.
    pub ctl_args: Vec<String>,
    tempdir: Option<TempDir>,
}

impl ClusterSpec {
    /// `n` members named `m1..mN`, data dirs `<tmp>/<name>.etcd`, token `etcdsnap-test`, in a
    /// fresh temporary directory removed when the cluster is dropped.
    pub fn new(bins: &EtcdBins, n: usize) -> ClusterSpec {
        let td = tempfile::Builder::new()
            .prefix("etcdsnap-etcd-")
            .tempdir()
            .expect("create a temp dir for etcd");
        let mut spec = ClusterSpec::in_dir(bins, n, td.path());
        spec.tempdir = Some(td);
        spec
    }

    /// Like [`ClusterSpec::new`] but in `dir` (kept afterwards).
    pub fn in_dir(bins: &EtcdBins, n: usize, dir: &Path) -> ClusterSpec {
        assert!(n >= 1, "a cluster needs at least one member");
        let p = ports::free_ports(2 * n);
        let members = (0..n)
            .map(|i| {
                let name = format!("m{}", i + 1);
                MemberSpec {
                    data_dir: dir.join(format!("{name}.etcd")),
                    name,
                    client_port: p[2 * i],
                    peer_port: p[2 * i + 1],
                    tls: false,
                    metrics_port: None,
                }
            })
            .collect();
        ClusterSpec {
            bins: bins.clone(),
            token: "etcdsnap-test".into(),
            members,
            cluster_state: "new".into(),
            extra_args: Vec::new(),
            start_timeout: START_TIMEOUT,
            dir: dir.to_path_buf(),
            ctl_args: Vec::new(),
            tempdir: None,
        }
    }

    /// Renames the members (same count).
    pub fn names(mut self, names: &[&str]) -> ClusterSpec {
        assert_eq!(names.len(), self.members.len(), "one name per member");
        for (m, n) in self.members.iter_mut().zip(names) {
            m.name = n.to_string();
        }
        self
    }

    /// Sets `--initial-cluster-token`.
    pub fn token(mut self, token: &str) -> ClusterSpec {
        self.token = token.into();
        self
    }

    /// Uses `dir` as member `i`'s data dir (e.g. one written by a restore).
    pub fn data_dir(mut self, i: usize, dir: &Path) -> ClusterSpec {
        self.members[i].data_dir = dir.to_path_buf();
        self
    }

    /// Adds an argument to every member's command line.
    pub fn arg(mut self, a: impl Into<String>) -> ClusterSpec {
        self.extra_args.push(a.into());
        self
    }

    /// Client and peer TLS with client certificates required (`certs`),
    /// `https://` URLs, health polled on a plain metrics port; the
    /// cluster's etcdctl runners get the guide's `--cacert/--cert/--key`.
    pub fn tls(mut self, certs: &super::tls::Certs) -> ClusterSpec {
        let p = ports::free_ports(self.members.len());
        for (m, port) in self.members.iter_mut().zip(p) {
            m.tls = true;
            m.metrics_port = Some(port);
        }
        self.extra_args.extend(certs.etcd_args());
        self.ctl_args = certs.client_args();
        self
    }

    /// Sets the start timeout.
    pub fn start_timeout(mut self, t: Duration) -> ClusterSpec {
        self.start_timeout = t;
        self
    }

    /// `m1=http://127.0.0.1:P1,m2=...`.
    pub fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The full etcd command line of member `i`.
    pub fn member_args(&self, i: usize) -> Vec<String> {
        let m = &self.members[i];
        let mut a: Vec<String> = [
            "--name",
            &m.name,
            "--data-dir",
            &m.data_dir.to_string_lossy(),
            "--listen-client-urls",
            &m.client_url(),
            "--advertise-client-urls",
            &m.client_url(),
            "--listen-peer-urls",
            &m.peer_url(),
            "--initial-advertise-peer-urls",
            &m.peer_url(),
            "--initial-cluster",
            &self.initial_cluster(),
            "--initial-cluster-token",
            &self.token,
            "--initial-cluster-state",
            &self.cluster_state,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(p) = m.metrics_port {
            a.push(format!("--listen-metrics-urls=http://127.0.0.1:{p}"));
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }

    /// Starts every member and waits until all are healthy; panics (with log tails) if not.
    /// A fresh cluster whose start failed because a port was taken is retried once on new ports.
    pub fn start(mut self) -> EtcdCluster {
        let fresh = self.members.iter().all(|m| !m.data_dir.exists());
        match self.try_start() {
            Ok(members) => self.into_cluster(members),
            Err((msg, members)) => {
                let port_clash = members
                    .iter()
                    .any(|m| m.log().contains("address already in use"));
                drop(members);
                if !(fresh && port_clash) {
                    panic!("{msg}");
                }
                let p = ports::free_ports(2 * self.members.len());
                for (i, m) in self.members.iter_mut().enumerate() {
                    m.client_port = p[2 * i];
                    m.peer_port = p[2 * i + 1];
                    let _ = std::fs::remove_dir_all(&m.data_dir);
                }
                match self.try_start() {
                    Ok(members) => self.into_cluster(members),
                    Err((msg, _members)) => panic!("{msg}"),
                }
            }
        }
    }

    fn try_start(&self) -> Result<Vec<EtcdProcess>, (String, Vec<EtcdProcess>)> {
        let mut procs = Vec::new();
        for i in 0..self.members.len() {
            let m = &self.members[i];
            let log = self.dir.join(format!("{}.log", m.name));
            match EtcdProcess::spawn(
                &self.bins,
                &m.name,
                &m.client_url(),
                &self.member_args(i),
                &log,
            ) {
                Ok(mut p) => {
                    p.health_url = m.health_url();
                    procs.push(p)
                }
                Err(e) => return Err((e, procs)),
            }
        }
        let deadline = Instant::now() + self.start_timeout;
        for i in 0..procs.len() {
            if let Err(e) = procs[i].wait_healthy(deadline) {
                let mut msg = format!(
                    "etcd {} cluster did not start: {e}\n",
                    self.bins.version.version()
                );
                for p in &procs {
                    msg.push_str(&format!(
                        "--- last lines of {} ({}) ---\n{}\n",
                        p.name,
                        p.log_path.display(),
                        p.log_tail(30)
                    ));
                }
                return Err((msg, procs));
            }
        }
        Ok(procs)
    }

    fn into_cluster(self, members: Vec<EtcdProcess>) -> EtcdCluster {
        EtcdCluster {
            member_args: (0..self.members.len())
                .map(|i| self.member_args(i))
                .collect(),
            restarts: 0,
            initial_cluster: self.initial_cluster(),
            ctl_args: self.ctl_args,
            members,
            specs: self.members,
            bins: self.bins,
            token: self.token,
            dir: self.dir,
            _tempdir: self.tempdir,
        }
    }
}

/// One running etcd process.
#[derive(Debug)]
pub struct EtcdProcess {
    /// Member name.
    pub name: String,
    /// Client URL (`http://127.0.0.1:PORT`).
    pub client_url: String,
    /// Where its stdout+stderr go.
    pub log_path: PathBuf,
    /// Where `/health` is polled (the client URL unless set).
    pub health_url: String,
    child: Child,
    pid: u32,
    exit: Option<ExitStatus>,
    // Dropped after `Drop::drop` stopped the process.
    _turn: EtcdTurn,
}

/// How many tests may have etcd running at once (`ETCDSNAP_TEST_ETCD_TESTS`, default 4).
///
/// tests/it runs many tests at once (`.ci/run` gives it 8 threads: most tests wait on
/// subprocesses), but on a 2-core machine too many tests' clusters side by side, next to
/// CPU-bound tests, starve each other: members miss their heartbeats and a 3-member cluster
/// reports "failed to commit proposal: context deadline exceeded" (seen with 8 threads and no
/// limit). With 2 the lane was held by the turns rather than the CPU (a clean-clone run: 803 s
/// wall for 680 CPU s on 2 cores); with 4 the same binary took 563 s, all passing, beside
/// another job (load 11).
fn etcd_tests() -> usize {
    std::env::var("ETCDSNAP_TEST_ETCD_TESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(4)
}

/// The threads (tests) that have etcd processes running, and how many each.
static TURNS: std::sync::Mutex<Vec<(std::thread::ThreadId, usize)>> =
    std::sync::Mutex::new(Vec::new());
static TURN_FREED: std::sync::Condvar = std::sync::Condvar::new();

/// A test's turn to run etcd: taken by the first etcd process a thread starts (waiting while
/// [`etcd_tests`] other threads have theirs), shared by that thread's further processes (a
/// test never waits for itself), given back when the last of them is dropped. A wait longer
/// than two minutes goes ahead anyway, so that a test starting etcd from a second thread
/// cannot deadlock.
#[derive(Debug)]
struct EtcdTurn(std::thread::ThreadId);

impl EtcdTurn {
    fn take() -> EtcdTurn {
        let me = std::thread::current().id();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut turns = TURNS.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(t) = turns.iter_mut().find(|t| t.0 == me) {
                t.1 += 1;
                return EtcdTurn(me);
            }
            let now = Instant::now();
            if turns.len() < etcd_tests() || now >= deadline {
                turns.push((me, 1));
                return EtcdTurn(me);
            }
            turns = TURN_FREED
                .wait_timeout(turns, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for EtcdTurn {
    fn drop(&mut self) {
        let mut turns = TURNS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = turns.iter().position(|t| t.0 == self.0) {
            turns[i].1 -= 1;
            if turns[i].1 == 0 {
                turns.swap_remove(i);
                TURN_FREED.notify_all();
            }
        }
    }
}

impl EtcdProcess {
    /// Starts `etcd ARGS` with output to `log_path`; does not wait for health.
    pub fn spawn(
        bins: &EtcdBins,
        name: &str,
        client_url: &str,
        args: &[String],
        log_path: &Path,
    ) -> Result<EtcdProcess, String> {
        for a in args {
            assert_loopback_urls(a);
        }
        let log =
            File::create(log_path).map_err(|e| format!("create {}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| format!("dup log fd: {e}"))?;
        let mut c = Command::new(&bins.etcd);
        etcd_child_env(&mut c);
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let turn = EtcdTurn::take();
        let child = c
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bins.etcd.display()))?;
        Ok(EtcdProcess {
            name: name.to_string(),
            client_url: client_url.to_string(),
            health_url: client_url.to_string(),
            log_path: log_path.to_path_buf(),
            pid: child.id(),
            child,
            exit: None,
            _turn: turn,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(s)) => {
                self.exit = Some(s);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Polls `GET /health` until it reports `"health":"true"` or `deadline` passes.
    pub fn wait_healthy(&mut self, deadline: Instant) -> Result<(), String> {
        let mut last = String::from("no answer yet");
        loop {
            if !self.is_running() {
                return Err(format!(
                    "{} exited early ({:?}); last health answer: {last}",
                    self.name, self.exit
                ));
            }
            let mut h = HttpClient::new(&self.health_url).with_timeout(Duration::from_secs(2));
            match h.get("/health") {
                Ok(r) if r.status == 200 && r.text().contains("\"health\":\"true\"") => {
                    return Ok(());
                }
                Ok(r) => last = format!("HTTP {} {}", r.status, r.text().trim()),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} not healthy in time; last health answer: {last}",
                    self.name
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        cmd::tail(&self.log(), n)
    }

    /// Stops the process by PID: SIGTERM, up to [`STOP_GRACE`], then SIGKILL; reaps it.
    /// Idempotent. Returns the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if !self.is_running() {
            return self.exit;
        }
        // SAFETY: plain kill(2) on our own child's PID, which is not yet reaped.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let (status, _killed) = cmd::wait_deadline(&mut self.child, STOP_GRACE);
        self.exit = status;
        status
    }

    /// SIGKILL right away (simulates a crash); reaps it.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if self.is_running() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
        self.exit
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Panics if an argument contains an `http(s)://` URL whose host is not a loopback address.
pub fn assert_loopback_urls(arg: &str) {
    for part in arg.split([',', '=']) {
        let Some(rest) = part
            .strip_prefix("http://")
            .or_else(|| part.strip_prefix("https://"))
        else {
            continue;
        };
        let host = rest.split('/').next().unwrap_or("");
        let host = match host.rsplit_once(':') {
            Some((h, _)) => h,
            None => host,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ok = host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
        assert!(ok, "refusing a non-loopback URL in an etcd argument: {arg}");
    }
}

/// Running members, stopped (by PID) when dropped.
#[derive(Debug)]
pub struct EtcdCluster {
    /// The processes (declared first: dropped, i.e. stopped, before the temp dir goes).
    pub members: Vec<EtcdProcess>,
    /// The member plans (names, ports, data dirs).
    pub specs: Vec<MemberSpec>,
    /// The binaries.
    pub bins: EtcdBins,
    /// `--initial-cluster-token`.
    pub token: String,
    /// `--initial-cluster`.
    pub initial_cluster: String,
    /// Logs and default data dirs live here.
    pub dir: PathBuf,
    /// Added to every etcdctl command line (TLS flags for a TLS cluster).
    pub ctl_args: Vec<String>,
    /// Each member's etcd command line, as it was started.
    pub member_args: Vec<Vec<String>>,
    restarts: usize,
    _tempdir: Option<TempDir>,
}

impl EtcdCluster {
    /// SIGKILLs member `i` (a crash), by its PID; its data dir stays.
    pub fn kill_member(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// Starts member `i` again on its data dir with the command line it
    /// was started with (its log goes to `<name>-restart<N>.log`); does not
    /// wait for it to be healthy (see [`EtcdProcess::wait_healthy`]).
    pub fn respawn_member(&mut self, i: usize) {
        assert!(!self.members[i].is_running(), "member {i} is still running");
        self.restarts += 1;
        let spec = &self.specs[i];
        let log = self
            .dir
            .join(format!("{}-restart{}.log", spec.name, self.restarts));
        let mut p = EtcdProcess::spawn(
            &self.bins,
            &spec.name,
            &spec.client_url(),
            &self.member_args[i],
            &log,
        )
        .unwrap_or_else(|e| panic!("restart {}: {e}", spec.name));
        p.health_url = spec.health_url();
        self.members[i] = p;
    }

    /// The index of the leader, as the running members report it
    /// (`etcdctl endpoint status`); `None` when none answers or none
    /// knows a leader.
    pub fn leader(&mut self) -> Option<usize> {
        let running: Vec<String> = self
            .members
            .iter_mut()
            .filter_map(|m| m.is_running().then(|| m.client_url.clone()))
            .collect();
        let out = Etcdctl::new(&self.bins, running)
            .args(&self.ctl_args)
            .timeout(Duration::from_secs(10))
            .run(&["endpoint", "status", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).ok()?;
        let statuses = v.as_array()?;
        let leader = statuses
            .iter()
            .filter_map(|s| s["Status"]["leader"].as_u64())
            .find(|&l| l != 0)?;
        let url = statuses
            .iter()
            .find(|s| s["Status"]["header"]["member_id"].as_u64() == Some(leader))?["Endpoint"]
            .as_str()?
            .to_string();
        self.members.iter().position(|m| m.client_url == url)
    }

    /// A single member of `bins`' release on loopback, in a temp dir.
    pub fn single(bins: &EtcdBins) -> EtcdCluster {
        ClusterSpec::new(bins, 1).start()
    }

    /// `n` members on loopback, in a temp dir.
    pub fn start(bins: &EtcdBins, n: usize) -> EtcdCluster {
        ClusterSpec::new(bins, n).start()
    }

    /// Client URLs of all members.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Client URL of the first member.
    pub fn endpoint(&self) -> &str {
        &self.members[0].client_url
    }

    /// PIDs of all members.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().map(|m| m.pid()).collect()
    }

    /// The version.
    pub fn version(&self) -> EtcdVersion {
        self.bins.version
    }

    /// An etcdctl runner talking to every member.
    pub fn ctl(&self) -> Etcdctl {
        Etcdctl::new(&self.bins, self.endpoints()).args(&self.ctl_args)
    }

    /// An etcdctl runner talking to member `i` only (e.g. for `snapshot save`).
    pub fn ctl_member(&self, i: usize) -> Etcdctl {
        Etcdctl::new(&self.bins, vec![self.members[i].client_url.clone()]).args(&self.ctl_args)
    }

    /// `etcdctl ARGS` against all members; panics on failure; returns stdout.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        self.ctl().ok(args)
    }

    /// `etcdctl ARGS -w json` against all members, parsed.
    pub fn etcdctl_json(&self, args: &[&str]) -> serde_json::Value {
        self.ctl().json(args)
    }

    /// An HTTP client for the JSON gateway of member `i`.
    pub fn http(&self, i: usize) -> HttpClient {
        HttpClient::new(&self.members[i].client_url)
    }

    /// Stops every member by PID (in reverse order); the data dirs stay until the drop.
    pub fn stop(&mut self) {
        for m in self.members.iter_mut().rev() {
            m.stop();
        }
    }
}

/// Runs etcdctl (`ETCDCTL_API=3`) against fixed endpoints.
#[derive(Debug, Clone)]
pub struct Etcdctl {
    bins: EtcdBins,
    endpoints: Vec<String>,
    user: Option<String>,
    extra: Vec<String>,
    timeout: Duration,
}

impl Etcdctl {
    /// A runner for `endpoints` (client URLs).
    pub fn new(bins: &EtcdBins, endpoints: Vec<String>) -> Etcdctl {
        Etcdctl {
            bins: bins.clone(),
            endpoints,
            user: None,
            extra: Vec::new(),
            timeout: Duration::from_secs(120),
        }
    }

    /// `--user NAME:PASSWORD`.
    pub fn user(mut self, user_colon_password: &str) -> Etcdctl {
        self.user = Some(user_colon_password.into());
        self
    }

    /// Adds global flags to every command line (e.g. TLS flags).
    pub fn args(mut self, extra: &[String]) -> Etcdctl {
        self.extra.extend(extra.iter().cloned());
        self
    }

    /// Timeout for each command (default 120 s).
    pub fn timeout(mut self, t: Duration) -> Etcdctl {
        self.timeout = t;
        self
    }

    /// The `Command` for `etcdctl --endpoints=... [--user=...] ARGS`.
    pub fn command(&self, args: &[&str]) -> Command {
        let eps = self.endpoints.join(",");
        assert_loopback_urls(&eps);
        let mut c = self.bins.etcdctl_cmd();
        c.arg(format!("--endpoints={eps}"));
        if let Some(u) = &self.user {
            c.arg(format!("--user={u}"));
        }
        c.args(&self.extra);
        c.args(args);
        c
    }

    /// Runs it and returns everything.
    pub fn run(&self, args: &[&str]) -> CmdOutput {
        cmd::run(&mut self.command(args), self.timeout)
    }

    /// Runs it; panics with the output unless it succeeded; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        out.expect_success("etcdctl");
        out.stdout
    }

    /// Runs `etcdctl -w json ARGS` and parses stdout.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["-w", "json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("etcdctl -w json gave bad JSON ({e}): {out}"))
    }

    /// `put KEY VALUE`.
    pub fn put(&self, key: &str, value: &str) {
        self.ok(&["put", "--", key, value]);
    }

    /// `get KEY` → the value, if the key exists.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let v = self.json(&["get", "--", key]);
        let kv = v.get("kvs")?.as_array()?.first()?;
        let b = kv.get("value").and_then(|x| x.as_str()).unwrap_or("");
        Some(super::b64::decode(b).expect("etcdctl JSON values are base64"))
    }

    /// `get "" --prefix`: every key with its value and revisions, as etcd
    /// serves them (the `kvs` array of the JSON answer, empty when none).
    pub fn all_kvs(&self) -> serde_json::Value {
        let v = self.json(&["get", "", "--prefix"]);
        v.get("kvs")
            .cloned()
            .unwrap_or(serde_json::Value::Array(Vec::new()))
    }

    /// `snapshot save PATH` (needs exactly one endpoint).
    pub fn snapshot_save(&self, path: &Path) -> CmdOutput {
        assert_eq!(
            self.endpoints.len(),
            1,
            "snapshot save needs exactly one endpoint"
        );
        self.run(&["snapshot", "save", &path.to_string_lossy()])
    }
}
