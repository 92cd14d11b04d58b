//! Load generator for `etcdsnap agent`: a real etcd 3.5.1 on loopback takes
//! a steady rate of puts for a while, an agent records them into a fresh
//! repository, and this prints, every second and at the end, the agent's
//! revision lag (from its `/metrics`), its CPU seconds and peak RSS (from
//! `/proc`; also its `RssAnon`, what it allocated, and `RssFile`, page cache
//! of the files it maps, each with its peak sampled every 20 ms), and the bytes its segments take per event against the events'
//! raw size (key + value; values are random printable bytes, so they
//! compress about as real ones do, not to nothing).
//!
//! ```text
//! cargo build --release --bin etcdsnap
//! ETCDSNAP_ETCD35_DIR=/path/to/etcd-v3.5.1 \
//!   cargo run --release --features cli --example agent_load -- \
//!   [--rate 2000] [--seconds 60 | --puts N] [--value-size 256] [--keys 10000] \
//!   [--delta-every 10s] [--base FILE.db] [--work DIR] [--no-agent]
//! ```
//!
//! The lag is printed two ways: the agent's own `revision_lag` gauge (the
//! cluster revision it saw in watch headers minus the newest revision it
//! received), and the newest revision etcd acknowledged to this generator
//! minus the newest the agent received (which also counts a watch stream
//! whose headers fall behind); both in revisions, and in seconds at the
//! rate reached.
//!
//! `--base FILE.db` restores that snapshot with the real `etcdutl snapshot
//! restore` into etcd's data dir before etcd boots (etcd gets an 8 GiB
//! `--quota-backend-bytes`), so the agent's first full snapshot is of that
//! database; the puts then go to keys `/registry/pods/ns<i % 97>/pod-<i>`
//! (the key space of `make_bench_snapshot`), `i` walking `0..--keys` with a
//! stride coprime to it, so `--keys` above the base's key count writes both
//! existing keys and new ones. After the load it waits until the repository
//! holds the last acknowledged revision (a sealed segment) before stopping
//! the agent, and prints that revision for `backup restore --to-revision`.
//! `--puts N` stops after N puts instead of after `--seconds`; `--rate 0`
//! puts as fast as etcd takes them (`--inflight`, default 256, at once;
//! `--inflight 1` is a replay in revision order); `--no-agent` starts no
//! agent: with `--base` it times what a replay through a booted etcd takes
//! (`etcdutl snapshot restore` of the base, etcd's boot, the puts).
//! `--work DIR` keeps etcd's data dir, the repository and the logs in DIR
//! (created, never removed) instead of a temporary directory.
//!
//! The agent is the `etcdsnap` binary beside this example's directory
//! (`target/release/etcdsnap`), or `$ETCDSNAP_BIN`. Every process started
//! is stopped by its pid on the way out. No assertion: it measures (run it
//! on a quiet machine; the load average is printed with the results).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::uri::PathAndQuery;
use tonic::client::Grpc;
use tonic::transport::Channel;
use tonic_prost::ProstCodec;

/// etcd's `PutRequest` (etcdserverpb), the two fields sent.
#[derive(Clone, PartialEq, prost::Message)]
struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// etcd's `ResponseHeader`: only the revision is read.
#[derive(Clone, PartialEq, prost::Message)]
struct ResponseHeader {
    #[prost(int64, tag = "3")]
    revision: i64,
}

/// etcd's `PutResponse`: only the header is read.
#[derive(Clone, PartialEq, prost::Message)]
struct PutResponse {
    #[prost(message, optional, tag = "1")]
    header: Option<ResponseHeader>,
}

struct Args {
    rate: u64,
    seconds: u64,
    value_size: usize,
    keys: u64,
    delta_every: String,
    puts: Option<u64>,
    base: Option<PathBuf>,
    work: Option<PathBuf>,
    agent: bool,
    inflight: usize,
}

fn args() -> Args {
    let mut a = Args {
        rate: 2000,
        seconds: 60,
        value_size: 256,
        keys: 10_000,
        delta_every: "10s".into(),
        puts: None,
        base: None,
        work: None,
        agent: true,
        inflight: 256,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-agent" {
            a.agent = false;
            continue;
        }
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rate" => a.rate = v.parse().expect("--rate"),
            "--seconds" => a.seconds = v.parse().expect("--seconds"),
            "--value-size" => a.value_size = v.parse().expect("--value-size"),
            "--keys" => a.keys = v.parse().expect("--keys"),
            "--delta-every" => a.delta_every = v,
            "--puts" => a.puts = Some(v.parse().expect("--puts")),
            "--base" => a.base = Some(v.into()),
            "--work" => a.work = Some(v.into()),
            "--inflight" => a.inflight = v.parse().expect("--inflight"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// A child process stopped (SIGKILL, by its pid) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A binary of etcd 3.5.1 (`etcd`, `etcdutl`).
fn etcd35(name: &str) -> PathBuf {
    PathBuf::from(std::env::var("ETCDSNAP_ETCD35_DIR").expect(
        "ETCDSNAP_ETCD35_DIR: the directory of etcd 3.5.1 (see .ci/run for where it is installed)",
    ))
    .join(name)
}

/// CPU seconds (user + system) of the children reaped so far.
fn children_cpu() -> f64 {
    // SAFETY: rusage is plain integers, for which all zeroes is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(ru.ru_utime) + s(ru.ru_stime)
}

/// Starts a one-member etcd on `dir/etcd`; with `base`, that snapshot is
/// first restored there by `etcdutl snapshot restore` (timed and printed).
fn start_etcd(dir: &Path, base: Option<&Path>) -> (Proc, String) {
    let (client, peer) = (free_port(), free_port());
    let curl = format!("http://127.0.0.1:{client}");
    let purl = format!("http://127.0.0.1:{peer}");
    let cluster = format!("load={purl}");
    if let Some(base) = base {
        let (t, cpu) = (Instant::now(), children_cpu());
        let st = Command::new(etcd35("etcdutl"))
            .args(["snapshot", "restore"])
            .arg(base)
            .arg("--data-dir")
            .arg(dir.join("etcd"))
            .args(["--name", "load", "--initial-cluster", &cluster])
            .args(["--initial-advertise-peer-urls", &purl])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("etcdutl.log")).unwrap())
            .status()
            .expect("run etcdutl");
        assert!(st.success(), "etcdutl snapshot restore failed: {st}");
        println!(
            "etcdutl snapshot restore of {}: {:.2} s wall, {:.2} CPU s (load {})",
            base.display(),
            t.elapsed().as_secs_f64(),
            children_cpu() - cpu,
            loadavg()
        );
    }
    let child = Command::new(etcd35("etcd"))
        .args(["--name", "load", "--data-dir"])
        .arg(dir.join("etcd"))
        .args([
            "--listen-client-urls",
            &curl,
            "--advertise-client-urls",
            &curl,
        ])
        .args([
            "--listen-peer-urls",
            &purl,
            "--initial-advertise-peer-urls",
            &purl,
        ])
        .args(["--initial-cluster", &cluster])
        // Room for a restored base plus the load (the default is 2 GB).
        .args(["--quota-backend-bytes", "8589934592"])
        .args(["--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("etcd.log")).unwrap())
        .spawn()
        .expect("start etcd");
    (Proc(child), curl)
}

fn agent_bin() -> PathBuf {
    if let Ok(b) = std::env::var("ETCDSNAP_BIN") {
        return b.into();
    }
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("etcdsnap")
}

/// The agent's `/metrics` as name -> value (labels kept in the name).
fn scrape(addr: &str) -> Option<std::collections::HashMap<String, f64>> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    Some(
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect(),
    )
}

/// CPU seconds (user + system), peak RSS and current RSS in bytes of `pid`.
fn usage(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 12th and 13th.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i)?.parse::<f64>().ok())
        .sum();
    let [hwm, rss] = status_bytes(pid, ["VmHWM:", "VmRSS:"]);
    (ticks / tick.max(1.0), hwm, rss)
}

/// The `/proc/PID/status` fields named (given in kB there), in bytes; 0
/// for a field that is missing.
fn status_bytes<const N: usize>(pid: u32, fields: [&str; N]) -> [u64; N] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    fields.map(|field| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    })
}

/// RssAnon and RssFile of `pid` in bytes: what the process allocated,
/// and the page-cache pages of files it maps that it touched (VmRSS and
/// VmHWM count both).
fn rss_parts(pid: u32) -> (u64, u64) {
    let [anon, file] = status_bytes(pid, ["RssAnon:", "RssFile:"]);
    (anon, file)
}

/// Peaks of RssAnon and RssFile, sampled every 20 ms by [`sample_rss`]
/// (the kernel keeps a peak only of their sum, VmHWM).
#[derive(Default)]
struct RssPeaks {
    anon: AtomicU64,
    file: AtomicU64,
    stop: AtomicBool,
}

impl RssPeaks {
    /// The peaks so far, restarted from now.
    fn take(&self) -> (u64, u64) {
        (
            self.anon.swap(0, Ordering::SeqCst),
            self.file.swap(0, Ordering::SeqCst),
        )
    }
}

fn sample_rss(pid: u32, peaks: Arc<RssPeaks>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !peaks.stop.load(Ordering::SeqCst) {
            let (anon, file) = rss_parts(pid);
            peaks.anon.fetch_max(anon, Ordering::SeqCst);
            peaks.file.fetch_max(file, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

const MIB: f64 = 1048576.0;

/// The `q` quantile (0..=1) of `v` (nearest rank), NaN when empty.
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// The key of put number `n`: with a base, a pod key of
/// `make_bench_snapshot`'s key space (`i` a permutation of `0..keys`: the
/// stride is a prime that does not divide `keys`), else `agent-load/N`.
fn key_of(n: u64, keys: u64, pods: bool) -> Vec<u8> {
    if pods {
        const STRIDE: u64 = 7919;
        assert!(
            !keys.is_multiple_of(STRIDE),
            "--keys must not be a multiple of {STRIDE}"
        );
        let i = n.wrapping_mul(STRIDE) % keys;
        format!("/registry/pods/ns{}/pod-{i}", i % 97).into_bytes()
    } else {
        format!("agent-load/{:08}", n % keys).into_bytes()
    }
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p).map_or(0, |d| {
        d.filter_map(Result::ok)
            .map(|e| {
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    dir_bytes(&e.path())
                } else {
                    m.len()
                }
            })
            .sum()
    })
}

/// `size` printable bytes that differ from put to put (xorshift from the
/// put's number): values that compress about as well as real ones, not a
/// run of one letter that zstd makes disappear.
fn value_of(n: u64, size: usize) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'!' + (x % 94) as u8
        })
        .collect()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Puts `key_of(n)` for n in 0.. at `rate` per second (0: as fast as etcd
/// answers, `inflight` at once) until `stop` is set or `limit` puts were
/// sent; counts the successes, failures and raw bytes, keeps the highest
/// revision etcd acknowledged and when the last put was answered.
struct Load {
    done: AtomicU64,
    failed: AtomicU64,
    raw: AtomicU64,
    acked_rev: AtomicI64,
    stop: AtomicBool,
    finished_ns: AtomicU64,
}

async fn generate(load: Arc<Load>, channel: Channel, a: Args) {
    let inflight = Arc::new(tokio::sync::Semaphore::new(a.inflight));
    let start = tokio::time::Instant::now();
    let limit = a.puts.unwrap_or(u64::MAX);
    let pods = a.base.is_some();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while !load.stop.load(Ordering::SeqCst) && sent < limit {
        let due = if a.rate == 0 {
            limit
        } else {
            tick.tick().await;
            ((start.elapsed().as_secs_f64() * a.rate as f64) as u64).min(limit)
        };
        while sent < due && !load.stop.load(Ordering::SeqCst) {
            let permit = inflight.clone().acquire_owned().await.unwrap();
            let key = key_of(sent, a.keys, pods);
            let value = value_of(sent, a.value_size);
            let n = (key.len() + value.len()) as u64;
            let mut g = Grpc::new(channel.clone());
            let load = load.clone();
            tokio::spawn(async move {
                let resp = match g.ready().await {
                    Ok(()) => g
                        .unary::<_, PutResponse, _>(
                            tonic::Request::new(PutRequest { key, value }),
                            PathAndQuery::from_static("/etcdserverpb.KV/Put"),
                            ProstCodec::default(),
                        )
                        .await
                        .ok(),
                    Err(_) => None,
                };
                match resp {
                    Some(r) => {
                        let rev = r.into_inner().header.map_or(0, |h| h.revision);
                        load.acked_rev.fetch_max(rev, Ordering::SeqCst);
                        load.raw.fetch_add(n, Ordering::SeqCst);
                        load.done.fetch_add(1, Ordering::SeqCst);
                    }
                    None => {
                        load.failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                drop(permit);
            });
            sent += 1;
        }
    }
    // Every put sent has answered.
    let _ = inflight.acquire_many(a.inflight as u32).await;
    load.finished_ns
        .store(start.elapsed().as_nanos() as u64, Ordering::SeqCst);
}

fn main() {
    let a = args();
    let tmp;
    let work: &Path = match &a.work {
        Some(w) => {
            std::fs::create_dir_all(w).unwrap();
            w
        }
        None => {
            tmp = tempfile::tempdir().unwrap();
            tmp.path()
        }
    };
    println!("load average at start: {}", loadavg());
    let boot = Instant::now();
    let (etcd, url) = start_etcd(work, a.base.as_deref());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let channel = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let ch = Channel::from_shared(url.clone()).unwrap().connect().await;
            if let Ok(ch) = ch {
                let mut g = Grpc::new(ch.clone());
                let put = PutRequest {
                    key: b"agent-load/ready".to_vec(),
                    value: b"1".to_vec(),
                };
                if g.ready().await.is_ok()
                    && g.unary::<_, PutResponse, _>(
                        tonic::Request::new(put),
                        PathAndQuery::from_static("/etcdserverpb.KV/Put"),
                        ProstCodec::default(),
                    )
                    .await
                    .is_ok()
                {
                    return ch;
                }
            }
            assert!(Instant::now() < deadline, "etcd did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let boot = boot.elapsed().as_secs_f64();
    println!(
        "etcd booted and took a put in {boot:.2} s (load {})",
        loadavg()
    );

    let repo = work.join("repo");
    let metrics = format!("127.0.0.1:{}", free_port());
    let peaks = Arc::new(RssPeaks::default());
    let mut sampler = None;
    let agent = a.agent.then(|| {
        etcdsnap::repo::Repository::init_dir(&repo, None).expect("init the repository");
        let t = Instant::now();
        let agent = Proc(
            Command::new(agent_bin())
                .arg("agent")
                .arg(&repo)
                .args(["--endpoints", &url, "--metrics-addr", &metrics])
                .args(["--delta-every", &a.delta_every, "--log-format", "json"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(work.join("agent.log")).unwrap())
                .spawn()
                .expect("start the agent (build it: cargo build --release --bin etcdsnap)"),
        );
        sampler = Some(sample_rss(agent.0.id(), peaks.clone()));
        // The first full snapshot before the load.
        let deadline = Instant::now() + Duration::from_secs(1800);
        while scrape(&metrics).is_none_or(|m| {
            m.get("etcdsnap_agent_last_full_revision")
                .is_none_or(|&r| r == 0.0)
        }) {
            assert!(Instant::now() < deadline, "no full snapshot within 30 min");
            std::thread::sleep(Duration::from_millis(200));
        }
        let (cpu, hwm, _) = usage(agent.0.id());
        let (anon, file) = peaks.take();
        println!(
            "agent's first full snapshot: {:.1} s, {cpu:.2} CPU s, peak RSS {:.1} MiB, peak RssAnon {:.1} MiB, peak RssFile {:.1} MiB (load {})",
            t.elapsed().as_secs_f64(),
            hwm as f64 / MIB,
            anon as f64 / MIB,
            file as f64 / MIB,
            loadavg()
        );
        agent
    });
    let pid = agent.as_ref().map(|p| p.0.id());
    let cpu0 = pid.map_or(0.0, |p| usage(p).0);
    let etcd_cpu0 = usage(etcd.0.id()).0;

    let load = Arc::new(Load {
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        raw: AtomicU64::new(0),
        acked_rev: AtomicI64::new(0),
        stop: AtomicBool::new(false),
        finished_ns: AtomicU64::new(0),
    });
    let (rate, target) = (a.rate, a.puts);
    let seconds = a.seconds;
    let gen_task = rt.spawn(generate(load.clone(), channel, a));

    println!(
        "second  puts/s  lag-agent  lag-acked  agent-cpu-s  agent-rss-MiB  agent-peak-rss-MiB  anon-MiB  file-MiB  load"
    );
    let t0 = Instant::now();
    let mut last_done = 0;
    let (mut lags, mut acked_lags) = (Vec::new(), Vec::new());
    for s in 1.. {
        std::thread::sleep((t0 + Duration::from_secs(s)).saturating_duration_since(Instant::now()));
        let d = load.done.load(Ordering::SeqCst);
        let acked = load.acked_rev.load(Ordering::SeqCst) as f64;
        let m = pid.and_then(|_| scrape(&metrics));
        let get = |k: &str| {
            m.as_ref()
                .and_then(|m| m.get(k).copied())
                .unwrap_or(f64::NAN)
        };
        let lag = get("etcdsnap_agent_revision_lag");
        // The agent received up to its cluster revision minus its lag.
        let acked_lag = (acked - (get("etcdsnap_agent_cluster_revision") - lag)).max(0.0);
        lags.push(lag);
        acked_lags.push(acked_lag);
        let (cpu, hwm, rss) = pid.map_or((0.0, 0, 0), usage);
        let (anon, file) = pid.map_or((0, 0), rss_parts);
        println!(
            "{s:6}  {:6}  {lag:9}  {acked_lag:9}  {cpu:11.2}  {:13.1}  {:18.1}  {:8.1}  {:8.1}  {}",
            d - last_done,
            rss as f64 / MIB,
            hwm as f64 / MIB,
            anon as f64 / MIB,
            file as f64 / MIB,
            loadavg()
        );
        last_done = d;
        let finished = d + load.failed.load(Ordering::SeqCst);
        if target.map_or(s >= seconds, |t| finished >= t) {
            break;
        }
    }
    load.stop.store(true, Ordering::SeqCst);
    rt.block_on(gen_task).unwrap();
    // From the first put sent to the last one answered.
    let loaded = load.finished_ns.load(Ordering::SeqCst) as f64 / 1e9;
    let etcd_cpu = usage(etcd.0.id()).0 - etcd_cpu0;
    let events = load.done.load(Ordering::SeqCst);
    let last = load.acked_rev.load(Ordering::SeqCst);
    let raw = load.raw.load(Ordering::SeqCst);
    println!();
    println!(
        "puts: {events} in {loaded:.1} s ({:.0}/s, asked {}), {} failed; last acknowledged revision {last}",
        events as f64 / loaded,
        if rate == 0 {
            "as fast as etcd takes".to_string()
        } else {
            rate.to_string()
        },
        load.failed.load(Ordering::SeqCst)
    );
    println!(
        "etcd: {etcd_cpu:.2} CPU s during the puts; boot {boot:.2} s (load {})",
        loadavg()
    );
    let Some(pid) = pid else {
        drop(etcd);
        return;
    };
    // Until the repository holds the last acknowledged revision: the watch
    // has caught up and a sealed segment covers it.
    let caught = Instant::now();
    let mut lag0 = None;
    while caught.elapsed() < Duration::from_secs(300) {
        let m = scrape(&metrics).unwrap_or_default();
        if lag0.is_none() && m.get("etcdsnap_agent_revision_lag") == Some(&0.0) {
            lag0 = Some(caught.elapsed().as_secs_f64());
        }
        if m.get("etcdsnap_agent_recorded_revision")
            .is_some_and(|&r| r >= last as f64)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let stored_after = caught.elapsed().as_secs_f64();
    let (cpu, hwm, rss) = usage(pid);
    let (anon_end, file_end) = rss_parts(pid);
    let (anon, file) = peaks.take();
    peaks.stop.store(true, Ordering::SeqCst);
    if let Some(t) = sampler {
        t.join().unwrap();
    }
    // SIGTERM: the agent stores what it holds and exits.
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let mut agent = agent.unwrap();
    let _ = agent.0.wait();
    drop(etcd);
    let stored = dir_bytes(&repo.join("deltas"));
    let rate_reached = events as f64 / loaded;
    println!(
        "revision lag (agent's gauge, per second): max {} p50 {} p99 {}; (acknowledged - received): max {} p50 {} p99 {} revisions; max {:.2} s at {rate_reached:.0} puts/s",
        quantile(&lags, 1.0),
        quantile(&lags, 0.5),
        quantile(&lags, 0.99),
        quantile(&acked_lags, 1.0),
        quantile(&acked_lags, 0.5),
        quantile(&acked_lags, 0.99),
        quantile(&lags, 1.0).max(quantile(&acked_lags, 1.0)) / rate_reached.max(1.0),
    );
    println!(
        "after the load: lag 0 after {} s, revision {last} stored after {stored_after:.1} s",
        lag0.map_or("(never)".to_string(), |t| format!("{t:.1}"))
    );
    println!(
        "agent: {cpu:.2} CPU s in all, {:.2} during the load ({:.1}% of one core), RSS {:.1} MiB at the end, peak {:.1} MiB",
        cpu - cpu0,
        (cpu - cpu0) / loaded * 100.0,
        rss as f64 / MIB,
        hwm as f64 / MIB
    );
    println!(
        "agent from the load on: peak RssAnon {:.1} MiB, peak RssFile {:.1} MiB (sampled every 20 ms); at the end RssAnon {:.1} MiB, RssFile {:.1} MiB",
        anon as f64 / MIB,
        file as f64 / MIB,
        anon_end as f64 / MIB,
        file_end as f64 / MIB
    );
    println!(
        "segments: {stored} bytes for {events} events: {:.1} bytes/event stored vs {:.1} raw (key + value)",
        stored as f64 / events.max(1) as f64,
        raw as f64 / events.max(1) as f64
    );
    println!(
        "repository: {} (restore --to-revision {last})",
        repo.display()
    );
    println!("load average: {}", loadavg());
}
