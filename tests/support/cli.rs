//! The etcdsnap binary under test, run to completion: for tests whose commands finish quickly
//! (the ones that may hang use [`super::cmd`] with a timeout).

use std::path::Path;
use std::process::{Command, Output};

/// The binary cargo built for this test run. Cargo names it only when it builds an
/// integration test; the examples that share this support code fall back to the `PATH`.
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_etcdsnap") {
    Some(path) => path,
    None => "etcdsnap",
};

/// Runs `etcdsnap ARGS` and returns what it produced.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run etcdsnap")
}

/// Runs `etcdsnap ARGS`, fails the test unless it succeeds, and returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "etcdsnap {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `etcdsnap ARGS`, fails the test if it succeeds, and returns its exit code and stderr.
pub fn err(args: &[&str]) -> (Option<i32>, String) {
    let o = run(args);
    assert!(!o.status.success(), "etcdsnap {args:?} succeeded");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A path as a command-line argument (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
