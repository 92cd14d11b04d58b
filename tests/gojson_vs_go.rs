//! Our Go-compatible JSON string encoder against Go's own `encoding/json`
//! (`tools/gojson/main.go`, built here with the Go toolchain `.ci/run`
//! installs for boltcheck): random byte strings, biased towards the
//! characters Go escapes, must encode identically.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn go_oracle() -> Option<PathBuf> {
    let go = support::tools::require(support::tools::go())?;
    let dir = std::env::temp_dir().join(format!("etcdsnap-gojson-{}", std::process::id()));
    let src = dir.join("src/gojson");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tools/gojson/main.go"),
        src.join("main.go"),
    )
    .expect("copy");
    let bin = dir.join("gojson");
    let out = Command::new(go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg("gojson")
        .env("GO111MODULE", "off")
        .env("GOPATH", &dir)
        .env("GOCACHE", dir.join("cache"))
        .env("GOFLAGS", "")
        .output()
        .expect("go build");
    assert!(
        out.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(bin)
}

fn go_encode(bin: &PathBuf, inputs: &[Vec<u8>]) -> Vec<String> {
    let mut child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gojson");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for i in inputs {
            let hex: String = i.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(stdin, "{hex}").expect("write");
        }
    }
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn interesting_byte() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 1..2),
        2 => prop::sample::select(vec![b'<', b'>', b'&', b'"', b'\\', b'\n', b'\r', b'\t', 0x08, 0x0c, 0x00, 0x1f, 0x7f]).prop_map(|b| vec![b]),
        2 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
        1 => prop::sample::select(vec!["\u{2028}", "\u{2029}", "é", "€", "\u{fffd}", "𝄞"]).prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::sample::select(vec![vec![0xe2u8, 0x82], vec![0xf0, 0x9f, 0x98], vec![0xc3], vec![0xed, 0xa0, 0x80], vec![0xff, 0xfe]]),
    ]
}

#[test]
fn matches_go_encoding_json() {
    let Some(bin) = go_oracle() else { return };
    let strategy = prop::collection::vec(
        prop::collection::vec(interesting_byte(), 0..24).prop_map(|parts| parts.concat()),
        400,
    );
    let mut runner = TestRunner::new(Config {
        cases: 16,
        ..Config::default()
    });
    runner
        .run(&strategy, |inputs| {
            let go = go_encode(&bin, &inputs);
            prop_assert_eq!(go.len(), inputs.len());
            for (input, want) in inputs.iter().zip(&go) {
                prop_assert_eq!(
                    &etcdsnap::internal::go::json::string(
                        input,
                        etcdsnap::internal::go::GoRelease::GO1_19
                    ),
                    want,
                    "input {:?}",
                    input
                );
            }
            Ok(())
        })
        .expect("agrees with Go");
}
