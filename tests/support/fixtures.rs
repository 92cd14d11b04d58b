//! Paths of the checked-in test data (`testdata/`), independent of the working directory.

use std::path::{Path, PathBuf};

/// The repository root (where `Cargo.toml` is).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `testdata/<rel>`.
pub fn testdata(rel: &str) -> PathBuf {
    repo_root().join("testdata").join(rel)
}

/// `testdata/snapshots/<file>`, e.g. `snapshot("small-v35.db")`.
pub fn snapshot(file: &str) -> PathBuf {
    testdata("snapshots").join(file)
}

/// The bytes of `testdata/snapshots/<file>`.
pub fn read_snapshot(file: &str) -> Vec<u8> {
    let p = snapshot(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading fixture {}: {e}", p.display()))
}

/// Every snapshot fixture with a SHA-256 trailer (`*.db` but not `*.member.db`).
pub const SAVED_SNAPSHOTS: [&str; 7] = [
    "small-v34.db",
    "small-v35.db",
    "auth-v34.db",
    "auth-v35.db",
    "k8s-v34.db",
    "k8s-v35.db",
    "synced-v35.db",
];

/// Every raw member db fixture (no trailer).
pub const MEMBER_DBS: [&str; 6] = [
    "small-v34.member.db",
    "small-v35.member.db",
    "auth-v34.member.db",
    "auth-v35.member.db",
    "k8s-v34.member.db",
    "k8s-v35.member.db",
];

/// The names of the entries in `dir`, sorted (to check what a command left behind).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}
