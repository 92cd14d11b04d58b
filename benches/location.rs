//! Locations: zstd and gzip throughput (and the ratio, printed once) on the k8s-shaped
//! fixtures (real etcd 3.5.1 / 3.4.23 snapshots), and restore from `s3://` (s3s-fs on
//! loopback, when installed) against restore from the local file, plain and `.zst`.
//! Throughput = uncompressed snapshot bytes per second.
//!
//! The 1.4 GB comparison (save to and restore from S3 vs the local paths, with peak RSS) is in
//! `benches/compare.sh --only s3`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use etcdsnap::{Location, RestoreOptions, restore};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    ["k8s-v35.db", "k8s-v34.db"]
        .iter()
        .map(|n| {
            let p = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/snapshots")
                .join(n);
            (n.to_string(), std::fs::read(p).expect("fixture"))
        })
        .collect()
}

fn zstd_pack(data: &[u8], level: i32, threads: u32) -> Vec<u8> {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), level).expect("encoder");
    if threads > 0 {
        e.multithread(threads).expect("multithread");
    }
    e.write_all(data).expect("write");
    e.finish().expect("finish")
}

fn gzip_pack(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(data).expect("write");
    e.finish().expect("finish")
}

fn compression(c: &mut Criterion) {
    let mut g = c.benchmark_group("compress");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, data) in fixtures() {
        g.throughput(Throughput::Bytes(data.len() as u64));
        for (level, threads) in [(1, 0), (3, 0), (3, 2), (9, 2)] {
            let packed = zstd_pack(&data, level, threads);
            eprintln!(
                "{name}: zstd -{level} ({threads} threads): {} -> {} bytes, ratio {:.3}",
                data.len(),
                packed.len(),
                packed.len() as f64 / data.len() as f64
            );
            g.bench_function(format!("{name}/zstd-{level}-t{threads}"), |b| {
                b.iter(|| zstd_pack(&data, level, threads))
            });
        }
        let gz = gzip_pack(&data, 6);
        eprintln!(
            "{name}: gzip -6: {} -> {} bytes, ratio {:.3}",
            data.len(),
            gz.len(),
            gz.len() as f64 / data.len() as f64
        );
        g.bench_function(format!("{name}/gzip-6"), |b| b.iter(|| gzip_pack(&data, 6)));
    }
    g.finish();

    let mut g = c.benchmark_group("decompress");
    g.sample_size(20);
    for (name, data) in fixtures() {
        g.throughput(Throughput::Bytes(data.len() as u64));
        let z = zstd_pack(&data, 3, 0);
        g.bench_function(format!("{name}/zstd"), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(data.len());
                zstd::stream::read::Decoder::new(&z[..])
                    .expect("decoder")
                    .read_to_end(&mut out)
                    .expect("decode");
                out
            })
        });
        let gz = gzip_pack(&data, 6);
        g.bench_function(format!("{name}/gzip"), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(data.len());
                flate2::read::MultiGzDecoder::new(&gz[..])
                    .read_to_end(&mut out)
                    .expect("decode");
                out
            })
        });
    }
    g.finish();
}

/// s3s-fs on loopback, killed by PID when dropped.
struct Server {
    child: Child,
    _root: tempfile::TempDir,
    bucket: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3s_fs() -> Option<PathBuf> {
    let mut c: Vec<PathBuf> = std::env::var_os("ETCDSNAP_S3S_FS")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Some(h) = std::env::var_os("HOME") {
        c.push(Path::new(&h).join(".cargo/bin/s3s-fs"));
    }
    c.into_iter().find(|p| p.is_file())
}

fn start_server(bin: &Path) -> Server {
    let root = tempfile::tempdir().expect("tempdir");
    let bucket = root.path().join("bench");
    std::fs::create_dir(&bucket).expect("bucket");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut cmd = Command::new(bin);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "bench", "--secret-key", "bench-secret"])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl only sets the child's death signal.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn().expect("start s3s-fs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: set before any benchmark thread exists; the library reads them when it parses
    // a location.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "bench");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench-secret");
        std::env::set_var("AWS_ENDPOINT", format!("http://127.0.0.1:{port}"));
        std::env::set_var("AWS_ALLOW_HTTP", "true");
        std::env::set_var("AWS_REGION", "us-east-1");
    }
    Server {
        child,
        _root: root,
        bucket,
    }
}

fn restore_from(c: &mut Criterion) {
    let Some(bin) = s3s_fs() else {
        eprintln!("skipping restore-from-s3 benches: s3s-fs not installed (see .ci/run)");
        return;
    };
    let server = start_server(&bin);
    let (_, data) = fixtures().remove(0);
    let local_dir = tempfile::tempdir().expect("tempdir");
    let local = local_dir.path().join("k8s.db");
    std::fs::write(&local, &data).expect("local");
    std::fs::write(server.bucket.join("k8s.db"), &data).expect("object");
    std::fs::write(server.bucket.join("k8s.db.zst"), zstd_pack(&data, 3, 0)).expect("object");
    let scratch = common::scratch_dir();
    let mut g = c.benchmark_group("restore_from");
    g.sample_size(20)
        .throughput(Throughput::Bytes(data.len() as u64));
    for (name, source) in [
        ("local", local.to_string_lossy().into_owned()),
        ("s3", "s3://bench/k8s.db".to_string()),
        ("s3-zst", "s3://bench/k8s.db.zst".to_string()),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let dir = scratch.path().join("m1.etcd");
                    let _ = std::fs::remove_dir_all(&dir);
                    let from = Location::parse(&source).expect("location");
                    (from, RestoreOptions::default().with_data_dir(dir))
                },
                |(from, o)| restore(from, &o, &|_| {}).expect("restore"),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
    drop(server);
}

criterion_group!(benches, compression, restore_from);
criterion_main!(benches);
