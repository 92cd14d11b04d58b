//! Make real snapshots: start a fresh single-member etcd on loopback, load keys through the v3
//! JSON gateway (`POST /v3/kv/txn`, many puts per txn, over [`HttpClient`]), optionally set up
//! auth, `etcdctl snapshot save`, stop.
//!
//! ```ignore
//! let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
//! let report = SnapshotMaker::new(&bins).make(&out, |l| {
//!     for i in 0..1000u32 { l.put(format!("k{i}").as_bytes(), b"v"); }
//! });
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::b64;
use super::etcd::{ClusterSpec, EtcdCluster};
use super::http::HttpClient;
use super::tools::{EtcdBins, EtcdVersion};

/// Default number of puts per txn (etcd is started with `--max-txn-ops` at least this).
pub const OPS_PER_TXN: usize = 1000;
/// Connections [`Loader::put_all_parallel`] uses by default: measured best on 2 cores
/// (100k x 1 KB puts: 1 conn 10.8k keys/s, 2 conns 18.8k, 4 conns 13.8k).
pub const BULK_CONNS: usize = 2;
/// Flush a txn before its JSON body exceeds this (etcd gets `--max-request-bytes` 4x this).
pub const TXN_BYTES: usize = 2 * 1024 * 1024;

/// Buffers puts/deletes and sends them as txns through the JSON gateway.
pub struct Loader {
    url: String,
    client: HttpClient,
    /// Puts/deletes per txn.
    pub ops_per_txn: usize,
    /// Max JSON body of one txn.
    pub max_txn_bytes: usize,
    body: String,
    ops: usize,
    keys: HashSet<Vec<u8>>,
    /// Totals so far.
    pub stats: LoadStats,
}

/// What a [`Loader`] sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadStats {
    /// Puts sent.
    pub puts: u64,
    /// Deletes sent.
    pub deletes: u64,
    /// Txns (requests) sent.
    pub txns: u64,
    /// Key+value bytes put.
    pub bytes: u64,
    /// Revision after the last request.
    pub revision: i64,
}

fn header_revision(v: &serde_json::Value) -> i64 {
    v.pointer("/header/revision")
        .and_then(|r| {
            r.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| r.as_i64())
        })
        .unwrap_or(0)
}

impl Loader {
    /// A loader for `client_url` (`http://127.0.0.1:PORT`).
    pub fn new(client_url: &str) -> Loader {
        Loader {
            url: client_url.to_string(),
            client: HttpClient::new(client_url).with_timeout(Duration::from_secs(300)),
            ops_per_txn: OPS_PER_TXN,
            max_txn_bytes: TXN_BYTES,
            body: String::new(),
            ops: 0,
            keys: HashSet::new(),
            stats: LoadStats::default(),
        }
    }

    /// The client URL this loader talks to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// POSTs `body` to `path`, expects HTTP 200 and returns the JSON answer.
    pub fn call(&mut self, path: &str, body: &str) -> serde_json::Value {
        let r = self
            .client
            .post_json_bytes(path, body.as_bytes())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        assert_eq!(r.status, 200, "POST {path} failed: {}", r.text());
        let v = r.json().unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let rev = header_revision(&v);
        if rev > 0 {
            self.stats.revision = rev;
        }
        v
    }

    fn add_op(&mut self, key: &[u8], op_json: impl FnOnce(&mut String)) {
        if self.keys.contains(key) {
            self.flush(); // a txn may not touch one key twice
        }
        if self.ops == 0 {
            self.body.push_str("{\"success\":[");
        } else {
            self.body.push(',');
        }
        op_json(&mut self.body);
        self.keys.insert(key.to_vec());
        self.ops += 1;
        if self.ops >= self.ops_per_txn || self.body.len() >= self.max_txn_bytes {
            self.flush();
        }
    }

    /// Buffers `put key value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.put_lease(key, value, 0)
    }

    /// Buffers `put key value` attached to `lease` (0 = none).
    pub fn put_lease(&mut self, key: &[u8], value: &[u8], lease: i64) {
        self.stats.puts += 1;
        self.stats.bytes += (key.len() + value.len()) as u64;
        self.add_op(key, |s| {
            s.push_str("{\"requestPut\":{\"key\":\"");
            b64::encode_into(key, s);
            s.push_str("\",\"value\":\"");
            b64::encode_into(value, s);
            s.push('"');
            if lease != 0 {
                s.push_str(&format!(",\"lease\":\"{lease}\""));
            }
            s.push_str("}}");
        });
    }

    /// Buffers `del key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.stats.deletes += 1;
        self.add_op(key, |s| {
            s.push_str("{\"requestDeleteRange\":{\"key\":\"");
            b64::encode_into(key, s);
            s.push_str("\"}}");
        });
    }

    /// Deletes `[key, range_end)` in a txn of its own.
    pub fn delete_range(&mut self, key: &[u8], range_end: &[u8]) {
        self.flush();
        let body = format!(
            "{{\"key\":\"{}\",\"range_end\":\"{}\"}}",
            b64::encode(key),
            b64::encode(range_end)
        );
        let v = self.call("/v3/kv/deleterange", &body);
        self.stats.deletes += v
            .get("deleted")
            .and_then(|d| d.as_str())
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
    }

    /// Sends the buffered ops (if any) as one txn; returns the current revision.
    pub fn flush(&mut self) -> i64 {
        if self.ops > 0 {
            self.body.push_str("]}");
            let body = std::mem::take(&mut self.body);
            let v = self.call("/v3/kv/txn", &body);
            assert_eq!(
                v.get("succeeded").and_then(|s| s.as_bool()),
                Some(true),
                "txn did not succeed: {v}"
            );
            self.stats.txns += 1;
            self.ops = 0;
            self.keys.clear();
            self.body = body;
            self.body.clear();
        }
        self.stats.revision
    }

    /// Buffers every pair.
    pub fn put_all<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        kvs: impl IntoIterator<Item = (K, V)>,
    ) {
        for (k, v) in kvs {
            self.put(k.as_ref(), v.as_ref());
        }
    }

    /// Flushes, then puts every pair over `conns` parallel connections (see [`parallel_put`]:
    /// keys must be distinct). The fastest way to load many keys; use [`BULK_CONNS`].
    pub fn put_all_parallel<I>(&mut self, conns: usize, kvs: I)
    where
        I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    {
        self.flush();
        let s = parallel_put(&self.url, conns, self.ops_per_txn, kvs);
        self.stats.puts += s.puts;
        self.stats.txns += s.txns;
        self.stats.bytes += s.bytes;
        self.stats.revision = self.stats.revision.max(s.revision);
    }

    /// Flushes, then reads the current revision.
    pub fn revision(&mut self) -> i64 {
        self.flush();
        let v = self.call("/v3/kv/range", "{\"key\":\"AA==\",\"limit\":1}");
        header_revision(&v)
    }

    /// Flushes, then compacts at the current revision (`physical`: wait until applied).
    pub fn compact(&mut self, physical: bool) -> i64 {
        let rev = self.revision();
        self.call(
            "/v3/kv/compaction",
            &format!("{{\"revision\":\"{rev}\",\"physical\":{physical}}}"),
        );
        rev
    }

    /// Grants a lease of `ttl` seconds; returns its id.
    pub fn grant_lease(&mut self, ttl: i64) -> i64 {
        let v = self.call("/v3/lease/grant", &format!("{{\"TTL\":\"{ttl}\"}}"));
        v.get("ID")
            .and_then(|i| {
                i.as_str()
                    .and_then(|s| s.parse().ok())
                    .or_else(|| i.as_i64())
            })
            .unwrap_or_else(|| panic!("lease grant answer without ID: {v}"))
    }
}

/// Puts `kvs` over `conns` parallel connections (keys must be distinct: order between
/// connections is not defined). Returns the totals.
pub fn parallel_put<I>(client_url: &str, conns: usize, ops_per_txn: usize, kvs: I) -> LoadStats
where
    I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
{
    let conns = conns.max(1);
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..conns {
        let (tx, rx) = mpsc::sync_channel::<Vec<(Vec<u8>, Vec<u8>)>>(4);
        let url = client_url.to_string();
        senders.push(tx);
        workers.push(thread::spawn(move || {
            let mut l = Loader::new(&url);
            l.ops_per_txn = ops_per_txn;
            for batch in rx {
                for (k, v) in batch {
                    l.put(&k, &v);
                }
                l.flush();
            }
            l.stats
        }));
    }
    let mut batch = Vec::with_capacity(ops_per_txn);
    let mut bytes = 0;
    let mut next = 0;
    for (k, v) in kvs {
        bytes += k.len() + v.len();
        batch.push((k, v));
        if batch.len() >= ops_per_txn || bytes * 4 / 3 >= TXN_BYTES - 64 * 1024 {
            senders[next % conns]
                .send(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(ops_per_txn),
                ))
                .expect("loader thread died");
            next += 1;
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        senders[next % conns]
            .send(batch)
            .expect("loader thread died");
    }
    drop(senders);
    let mut total = LoadStats::default();
    for w in workers {
        let s = w.join().expect("loader thread panicked");
        total.puts += s.puts;
        total.txns += s.txns;
        total.bytes += s.bytes;
        total.revision = total.revision.max(s.revision);
    }
    total
}

/// A role for [`AuthSetup`].
#[derive(Debug, Clone)]
pub struct RoleSpec {
    /// Role name.
    pub name: String,
    /// `(read|write|readwrite, key, range_end)`; an empty range end means the single key.
    pub perms: Vec<(String, String, String)>,
}

/// Users and roles to create before `auth enable` (the `root` user and role are always made).
#[derive(Debug, Clone)]
pub struct AuthSetup {
    /// Password of `root`.
    pub root_password: String,
    /// Extra roles.
    pub roles: Vec<RoleSpec>,
    /// Extra users: `(name, password, roles)`.
    pub users: Vec<(String, String, Vec<String>)>,
}

impl AuthSetup {
    /// Only `root` with `root_password`.
    pub fn root(root_password: &str) -> AuthSetup {
        AuthSetup {
            root_password: root_password.into(),
            roles: Vec::new(),
            users: Vec::new(),
        }
    }
}

/// What [`SnapshotMaker::make`] did.
#[derive(Debug, Clone)]
pub struct SnapshotReport {
    /// The saved snapshot.
    pub path: PathBuf,
    /// Loader totals.
    pub stats: LoadStats,
    /// Seconds spent in the load closure (including its flush).
    pub load_secs: f64,
    /// Seconds for `snapshot save`.
    pub save_secs: f64,
    /// Size of the saved file.
    pub file_bytes: u64,
}

impl SnapshotReport {
    /// Puts per second during the load.
    pub fn keys_per_sec(&self) -> f64 {
        self.stats.puts as f64 / self.load_secs.max(1e-9)
    }
}

/// Configures and runs a snapshot-making etcd.
#[derive(Debug, Clone)]
pub struct SnapshotMaker {
    bins: EtcdBins,
    auth: Option<AuthSetup>,
    extra_args: Vec<String>,
    ops_per_txn: usize,
    work_dir: Option<PathBuf>,
}

impl SnapshotMaker {
    /// Defaults: no auth, [`OPS_PER_TXN`] puts per txn, 8 GiB backend quota, and for 3.5
    /// `--unsafe-no-fsync` (the snapshot is a consistent read either way).
    pub fn new(bins: &EtcdBins) -> SnapshotMaker {
        SnapshotMaker {
            bins: bins.clone(),
            auth: None,
            extra_args: Vec::new(),
            ops_per_txn: OPS_PER_TXN,
            work_dir: None,
        }
    }

    /// Enables auth (after loading) as described.
    pub fn auth(mut self, a: AuthSetup) -> SnapshotMaker {
        self.auth = Some(a);
        self
    }

    /// Extra etcd flag.
    pub fn arg(mut self, a: &str) -> SnapshotMaker {
        self.extra_args.push(a.into());
        self
    }

    /// Puts per txn.
    pub fn ops_per_txn(mut self, n: usize) -> SnapshotMaker {
        self.ops_per_txn = n;
        self
    }

    /// Put etcd's data dir and log under `dir` (kept) instead of a temp dir, e.g. for a
    /// large load on a disk with room.
    pub fn work_dir(mut self, dir: &Path) -> SnapshotMaker {
        self.work_dir = Some(dir.to_path_buf());
        self
    }

    /// Starts the etcd this maker would use (for loading by other means), already healthy.
    pub fn start(&self) -> EtcdCluster {
        let spec = match &self.work_dir {
            Some(d) => {
                std::fs::create_dir_all(d).expect("create the snapshot maker's work dir");
                ClusterSpec::in_dir(&self.bins, 1, d)
            }
            None => ClusterSpec::new(&self.bins, 1),
        };
        let mut spec = spec
            .arg(format!("--max-txn-ops={}", self.ops_per_txn.max(128)))
            .arg(format!("--max-request-bytes={}", 4 * TXN_BYTES))
            .arg("--quota-backend-bytes=8589934592");
        if self.bins.version == EtcdVersion::V35 {
            spec = spec.arg("--unsafe-no-fsync");
        }
        for a in &self.extra_args {
            spec = spec.arg(a.clone());
        }
        spec.start()
    }

    /// Starts etcd, runs `load`, sets up auth, saves a snapshot to `out`, stops etcd.
    pub fn make(&self, out: &Path, load: impl FnOnce(&mut Loader)) -> SnapshotReport {
        let mut cluster = self.start();
        let mut loader = Loader::new(cluster.endpoint());
        loader.ops_per_txn = self.ops_per_txn;
        let t = Instant::now();
        load(&mut loader);
        loader.flush();
        let load_secs = t.elapsed().as_secs_f64();
        let mut ctl = cluster.ctl_member(0);
        if let Some(a) = &self.auth {
            enable_auth(&ctl, a);
            ctl = ctl.user(&format!("root:{}", a.root_password));
        }
        let t = Instant::now();
        let _ = std::fs::remove_file(out);
        ctl.snapshot_save(out)
            .expect_success("etcdctl snapshot save");
        let save_secs = t.elapsed().as_secs_f64();
        cluster.stop();
        SnapshotReport {
            path: out.to_path_buf(),
            stats: loader.stats,
            load_secs,
            save_secs,
            file_bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
        }
    }
}

/// Creates roles/users (and `root`) with etcdctl, then `auth enable`.
pub fn enable_auth(ctl: &super::etcd::Etcdctl, a: &AuthSetup) {
    ctl.ok(&["role", "add", "root"]);
    ctl.ok(&[
        "user",
        "add",
        "root",
        &format!("--new-user-password={}", a.root_password),
    ]);
    ctl.ok(&["user", "grant-role", "root", "root"]);
    for r in &a.roles {
        ctl.ok(&["role", "add", &r.name]);
        for (perm, key, end) in &r.perms {
            let mut args = vec!["role", "grant-permission", &r.name, perm, "--", key];
            if !end.is_empty() {
                args.push(end);
            }
            ctl.ok(&args);
        }
    }
    for (name, pw, roles) in &a.users {
        ctl.ok(&["user", "add", name, &format!("--new-user-password={pw}")]);
        for r in roles {
            ctl.ok(&["user", "grant-role", name, r]);
        }
    }
    ctl.ok(&["auth", "enable"]);
}

/// One-liner: a snapshot of `bins`' release holding `kvs`, saved at `out`.
pub fn make_snapshot<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    bins: &EtcdBins,
    out: &Path,
    kvs: impl IntoIterator<Item = (K, V)>,
) -> SnapshotReport {
    SnapshotMaker::new(bins).make(out, |l| l.put_all(kvs))
}
