//! Load generator for `etcdsnap agent`: a real etcd 3.5.1 on loopback takes
//! a steady rate of puts for a while, an agent records them into a fresh
//! repository, and this prints, every second and at the end, the agent's
//! revision lag (from its `/metrics`), its CPU seconds and peak RSS (from
//! `/proc`), and the bytes its segments take per event against the events'
//! raw size (key + value; values are random printable bytes, so they
//! compress about as real ones do, not to nothing).
//!
//! ```text
//! cargo build --release --bin etcdsnap
//! ETCDSNAP_ETCD35_DIR=/path/to/etcd-v3.5.1 \
//!   cargo run --release --features cli --example agent_load -- \
//!   [--rate 2000] [--seconds 60] [--value-size 256] [--keys 10000] [--delta-every 10s]
//! ```
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// Only the header is there; nothing of it is read.
#[derive(Clone, PartialEq, prost::Message)]
struct PutResponse {}

struct Args {
    rate: u64,
    seconds: u64,
    value_size: usize,
    keys: u64,
    delta_every: String,
}

fn args() -> Args {
    let mut a = Args {
        rate: 2000,
        seconds: 60,
        value_size: 256,
        keys: 10_000,
        delta_every: "10s".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rate" => a.rate = v.parse().expect("--rate"),
            "--seconds" => a.seconds = v.parse().expect("--seconds"),
            "--value-size" => a.value_size = v.parse().expect("--value-size"),
            "--keys" => a.keys = v.parse().expect("--keys"),
            "--delta-every" => a.delta_every = v,
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

fn start_etcd(dir: &Path) -> (Proc, String) {
    let bin = PathBuf::from(std::env::var("ETCDSNAP_ETCD35_DIR").expect(
        "ETCDSNAP_ETCD35_DIR: the directory of etcd 3.5.1 (see .ci/run for where it is installed)",
    ))
    .join("etcd");
    let (client, peer) = (free_port(), free_port());
    let curl = format!("http://127.0.0.1:{client}");
    let purl = format!("http://127.0.0.1:{peer}");
    let child = Command::new(bin)
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
        .args(["--initial-cluster", &format!("load={purl}")])
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

/// CPU seconds (user + system) and peak RSS in bytes of `pid`.
fn usage(pid: u32) -> (f64, u64) {
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
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks / tick.max(1.0), hwm_kib * 1024)
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

fn main() {
    let a = args();
    let work = tempfile::tempdir().unwrap();
    let (etcd, url) = start_etcd(work.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let channel = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
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

    let repo = work.path().join("repo");
    etcdsnap::repo::Repository::init_dir(&repo, None).expect("init the repository");
    let metrics = format!("127.0.0.1:{}", free_port());
    let agent = Proc(
        Command::new(agent_bin())
            .arg("agent")
            .arg(&repo)
            .args(["--endpoints", &url, "--metrics-addr", &metrics])
            .args(["--delta-every", &a.delta_every, "--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.path().join("agent.log")).unwrap())
            .spawn()
            .expect("start the agent (build it: cargo build --release --bin etcdsnap)"),
    );
    let pid = agent.0.id();
    // The first full snapshot before the load.
    let deadline = Instant::now() + Duration::from_secs(60);
    while scrape(&metrics).is_none_or(|m| {
        m.get("etcdsnap_agent_last_full_revision")
            .is_none_or(|&r| r == 0.0)
    }) {
        assert!(Instant::now() < deadline, "no full snapshot within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }

    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let raw = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (done, failed, raw, stop) = (done.clone(), failed.clone(), raw.clone(), stop.clone());
        let (rate, keys, size) = (a.rate, a.keys, a.value_size);
        rt.spawn(async move {
            let inflight = Arc::new(tokio::sync::Semaphore::new(256));
            let start = tokio::time::Instant::now();
            let mut sent = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                while sent < due {
                    let permit = inflight.clone().acquire_owned().await.unwrap();
                    let key = format!("agent-load/{:08}", sent % keys).into_bytes();
                    let value = value_of(sent, size);
                    let n = (key.len() + value.len()) as u64;
                    let mut g = Grpc::new(channel.clone());
                    let (done, failed, raw) = (done.clone(), failed.clone(), raw.clone());
                    tokio::spawn(async move {
                        let ok = g.ready().await.is_ok()
                            && g.unary::<_, PutResponse, _>(
                                tonic::Request::new(PutRequest { key, value }),
                                PathAndQuery::from_static("/etcdserverpb.KV/Put"),
                                ProstCodec::default(),
                            )
                            .await
                            .is_ok();
                        if ok {
                            done.fetch_add(1, Ordering::SeqCst);
                            raw.fetch_add(n, Ordering::SeqCst);
                        } else {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                        drop(permit);
                    });
                    sent += 1;
                }
            }
        })
    };

    println!("second  puts/s  lag(revisions)  agent-cpu-s  agent-peak-rss-MiB");
    let t0 = Instant::now();
    let mut last_done = 0;
    let mut max_lag = 0.0f64;
    for s in 1..=a.seconds {
        std::thread::sleep((t0 + Duration::from_secs(s)).saturating_duration_since(Instant::now()));
        let d = done.load(Ordering::SeqCst);
        let lag = scrape(&metrics)
            .and_then(|m| m.get("etcdsnap_agent_revision_lag").copied())
            .unwrap_or(f64::NAN);
        max_lag = max_lag.max(lag);
        let (cpu, rss) = usage(pid);
        println!(
            "{s:6}  {:6}  {lag:14}  {cpu:11.2}  {:18.1}",
            d - last_done,
            rss as f64 / 1048576.0
        );
        last_done = d;
    }
    stop.store(true, Ordering::SeqCst);
    rt.block_on(load).unwrap();
    let loaded = t0.elapsed().as_secs_f64();
    // Until the agent holds everything.
    let caught = Instant::now();
    while scrape(&metrics).is_none_or(|m| {
        m.get("etcdsnap_agent_revision_lag")
            .is_none_or(|&l| l > 0.0)
    }) && caught.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let catch_up = caught.elapsed().as_secs_f64();
    let (cpu, rss) = usage(pid);
    // SIGTERM: the agent stores what it holds and exits.
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let mut agent = agent;
    let _ = agent.0.wait();
    drop(etcd);
    let events = done.load(Ordering::SeqCst);
    let stored = dir_bytes(&repo.join("deltas"));
    let raw = raw.load(Ordering::SeqCst);
    println!();
    println!(
        "puts: {events} in {loaded:.1} s ({:.0}/s asked {}), {} failed",
        events as f64 / loaded,
        a.rate,
        failed.load(Ordering::SeqCst)
    );
    println!("revision lag: max {max_lag} revisions; {catch_up:.1} s to catch up after the load");
    println!(
        "agent: {cpu:.2} CPU s ({:.1}% of one core), peak RSS {:.1} MiB",
        cpu / loaded * 100.0,
        rss as f64 / 1048576.0
    );
    println!(
        "segments: {stored} bytes for {events} events: {:.1} bytes/event stored vs {:.1} raw (key + value)",
        stored as f64 / events.max(1) as f64,
        raw as f64 / events.max(1) as f64
    );
    println!("load average: {}", loadavg());
}
