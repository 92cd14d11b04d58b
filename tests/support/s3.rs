//! An S3-compatible server on loopback: `s3s-fs` (pinned 0.14.1, installed by `.ci/run`) on
//! 127.0.0.1, a free port, over a temporary directory. Buckets are directories under it and
//! objects are files, so a test can look at what the server stored. The process is stopped by
//! its PID when the `S3Server` is dropped (also while a test panics), and dies with the test
//! binary (`PR_SET_PDEATHSIG`).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{ports, tls};

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "etcdsnap-test";
/// The secret key the server accepts.
pub const SECRET_KEY: &str = "etcdsnap-test-secret";

/// A running s3s-fs.
pub struct S3Server {
    bin: PathBuf,
    child: Option<Child>,
    port: u16,
    root: TempDir,
    /// `ca.pem`, the one root certificate commands load (see [`S3Server::configure`]).
    roots: TempDir,
}

impl S3Server {
    /// Starts s3s-fs with one bucket, `bucket`, and waits until it accepts connections.
    pub fn start(bin: &Path, bucket: &str) -> S3Server {
        let root = tempfile::Builder::new()
            .prefix("etcdsnap-s3-")
            .tempdir()
            .expect("temp dir for s3s-fs");
        std::fs::create_dir(root.path().join(bucket)).expect("bucket dir");
        let roots = tempfile::Builder::new()
            .prefix("etcdsnap-s3-roots-")
            .tempdir()
            .expect("temp dir for a root certificate");
        tls::write_ca(&roots.path().join("ca.pem"), "etcdsnap s3 test root");
        let mut s = S3Server {
            bin: bin.to_path_buf(),
            child: None,
            port: ports::free_port(),
            root,
            roots,
        };
        s.restart();
        s
    }

    /// Starts the server again (same port and data) after [`S3Server::kill`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(format!("{}.log", self.root.path().display()))
            .expect("log file");
        let mut c = Command::new(&self.bin);
        c.args([
            "--host",
            "127.0.0.1",
            "--port",
            &self.port.to_string(),
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
        ])
        .arg(self.root.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
        // SAFETY: prctl is async-signal-safe; it only sets the death signal of the child.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(c.spawn().expect("start s3s-fs"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server by PID (SIGKILL: a server that dies mid-transfer) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The server's PID (while it runs).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(|c| c.id())
            .expect("s3s-fs is running")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The directory holding the buckets.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The file an object is stored in.
    pub fn object_file(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.path().join(bucket).join(key)
    }

    /// Files of the bucket (recursively, relative names), sorted.
    pub fn objects(&self, bucket: &str) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else if let Ok(rel) = p.strip_prefix(base) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        let mut out = Vec::new();
        let base = self.root.path().join(bucket);
        walk(&base, &base, &mut out);
        out.sort();
        out
    }

    /// Files the server keeps for multipart uploads not completed or aborted.
    pub fn pending_uploads(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload"))
            .collect();
        v.sort();
        v
    }

    /// The environment a command needs to reach this server (the `object_store` variables).
    ///
    /// No idle connection is kept for reuse: s3s-fs writes a response's head and body
    /// separately without `TCP_NODELAY`, so on a reused connection (past the kernel's quick-ACK
    /// start) the body waited for our delayed ACK, 40 ms a request: a `backup check
    /// --read-data` of seven small snapshots took 2.5 s, 0.3 s on fresh connections, and the
    /// crash tests, which run thousands of such commands, spent most of their time waiting.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_ENDPOINT", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_POOL_MAX_IDLE_PER_HOST", "0".to_string()),
        ]
    }

    /// The environment of an etcdsnap command that reaches this server: [`S3Server::env`]
    /// and, as its root certificates, one CA the test made (`SSL_CERT_FILE`, `SSL_CERT_DIR`).
    /// The server speaks plain HTTP, but every object-store client loads the system's roots
    /// when it is built (~290 files here), ~7-9 ms of a debug command's ~40 ms of CPU, and the
    /// crash tests run thousands of commands. It needs at least one.
    pub fn command_env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        let roots = self.roots.path();
        env.push((
            "SSL_CERT_FILE",
            roots.join("ca.pem").to_string_lossy().into_owned(),
        ));
        env.push(("SSL_CERT_DIR", roots.to_string_lossy().into_owned()));
        env
    }

    /// Adds [`S3Server::command_env`] to a command, after removing any other `AWS_*` variable.
    pub fn configure(&self, c: &mut Command) {
        clear_aws_env(c);
        for (k, v) in self.command_env() {
            c.env(k, v);
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(format!("{}.log", self.root.path().display()));
    }
}

/// Removes every `AWS_*` variable this process has from `c`'s environment, so that only the
/// test's own store settings reach it.
pub fn clear_aws_env(c: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            c.env_remove(&k);
        }
    }
}
