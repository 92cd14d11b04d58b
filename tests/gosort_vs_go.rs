//! The port of Go's `sort.Sort` (pdqsort, Go 1.19) against Go 1.19 itself
//! (the toolchain `.ci/run` installs): for random slices with many equal
//! keys, of lengths around every threshold of the algorithm, the order Go
//! leaves equal keys in must be ours. (The Go 1.16 introsort port is held
//! to etcd 3.5.1's own output by `tests/get_vs_etcdctl.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use etcdsnap::internal::gosort::{GoSort, sort_by};

#[test]
fn pdqsort_orders_ties_as_go_1_19() {
    let Some(go) = support::tools::require(support::tools::go()) else {
        return;
    };
    let version = Command::new(&go)
        .arg("version")
        .output()
        .expect("go version");
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    if !version.contains("go1.19") && !version.contains("go1.20") {
        println!("skipping: {version} is not the Go the port follows (1.19/1.20)");
        return;
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut inputs: Vec<Vec<u32>> = Vec::new();
    for len in [2usize, 7, 12, 13, 20, 49, 50, 51, 64, 100, 257, 1000, 5000] {
        for distinct in [1u64, 2, 3, 10, 1000] {
            inputs.push((0..len).map(|_| (next() % distinct) as u32).collect());
        }
        // Sorted, reversed and organ-pipe shapes with ties.
        inputs.push((0..len).map(|i| (i / 3) as u32).collect());
        inputs.push((0..len).rev().map(|i| (i / 3) as u32).collect());
        inputs.push((0..len).map(|i| (i.min(len - i) / 2) as u32).collect());
    }
    let cache = std::env::temp_dir().join(format!("etcdsnap-gosort-{}", std::process::id()));
    let mut child = Command::new(go)
        .args(["run", "tools/gosort/main.go"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("GO111MODULE", "off")
        .env("GOCACHE", &cache)
        .env("GOFLAGS", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("go run");
    // Feed stdin from another thread: Go answers line by line, and both
    // pipes would fill up otherwise.
    let mut stdin = child.stdin.take().expect("stdin");
    let text: String = inputs
        .iter()
        .map(|i| i.iter().map(u32::to_string).collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    let feeder = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().expect("wait");
    feeder.join().expect("feeder").expect("write to go");
    let _ = std::fs::remove_dir_all(&cache);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), inputs.len());
    for (input, line) in inputs.iter().zip(lines) {
        let mut ours: Vec<(u32, usize)> = input.iter().copied().zip(0..).collect();
        sort_by(&mut ours, GoSort::Go119, |a, b| a.0 < b.0);
        let ours: Vec<String> = ours.iter().map(|x| x.1.to_string()).collect();
        assert_eq!(ours.join(" "), line, "len {}", input.len());
    }
}
