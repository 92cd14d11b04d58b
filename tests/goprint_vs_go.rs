//! The printable-rune table behind Go-style `%q` quoting
//! (`src/go/isprint.rs`) is exactly what `tools/goisprint` prints with
//! the Go toolchain (`.ci/run` installs it for boltcheck): no hand edits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;

#[test]
fn committed_table_is_gos() {
    let root = env!("CARGO_MANIFEST_DIR");
    let Some(go) = support::tools::require(support::tools::go()) else {
        return;
    };
    let cache = std::env::temp_dir().join(format!("etcdsnap-goisprint-{}", std::process::id()));
    let out = Command::new(go)
        .args(["run", "tools/goisprint/main.go"])
        .current_dir(root)
        .env("GO111MODULE", "off")
        .env("GOCACHE", &cache)
        .env("GOFLAGS", "")
        .output()
        .expect("go run");
    let _ = std::fs::remove_dir_all(&cache);
    assert!(
        out.status.success(),
        "go run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read(format!("{root}/src/go/isprint.rs")).expect("read table");
    let generated = String::from_utf8_lossy(&out.stdout);
    // The first lines name the Go release; Unicode 13.0.0 is what matters.
    assert!(
        generated.contains("(Unicode 13.0.0)"),
        "Go's Unicode version changed:\n{generated:.300}"
    );
    let body = |s: &str| s.lines().skip(3).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&String::from_utf8_lossy(&committed)), body(&generated));
}
