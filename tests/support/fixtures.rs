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
///
/// The 3.6/3.7 raw member dbs are 16 MiB of which all but a few pages are
/// zeros; they are kept as `<file>.gz` (gzip of the recorded file) and
/// unpacked on first use into the target dir. The 3.6/3.7 `k8s` fixtures
/// (tens of MB) are not copied: they are read from the shared recordings
/// beside the repository (`../shared/testdata/snapshots`, present on
/// developers' machines and in CI); a test needing one calls
/// [`shared_snapshot`] under `require_tool!`.
pub fn snapshot(file: &str) -> PathBuf {
    let plain = testdata("snapshots").join(file);
    if plain.exists() {
        return plain;
    }
    let gz = testdata("snapshots").join(format!("{file}.gz"));
    if gz.exists() {
        return unpacked(&gz, file);
    }
    match shared_snapshot(file) {
        Ok(p) => p,
        Err(_) => plain,
    }
}

/// The shared recordings' `snapshots/<file>` (`../shared/testdata`, or
/// `$ETCDSNAP_SHARED_TESTDATA`), for `require_tool!`: missing is a skip
/// locally and a failure under CI.
pub fn shared_snapshot(file: &str) -> Result<PathBuf, String> {
    // `shared/` sits beside the checkout (the main tree, a CI clone) or
    // beside one of its parents (a worktree under wt/).
    let bases: Vec<PathBuf> = match std::env::var_os("ETCDSNAP_SHARED_TESTDATA") {
        Some(b) => vec![PathBuf::from(b)],
        None => repo_root()
            .ancestors()
            .skip(1)
            .map(|a| a.join("shared/testdata"))
            .collect(),
    };
    bases
        .iter()
        .map(|b| b.join("snapshots").join(file))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{file} not found in {} (the shared recordings; set ETCDSNAP_SHARED_TESTDATA)",
                bases
                    .first()
                    .map_or_else(String::new, |b| b.display().to_string())
            )
        })
}

/// Unpacks `gz` once into the target dir as `name` (written to a temporary
/// name and renamed, so parallel tests never see half a file).
fn unpacked(gz: &Path, name: &str) -> PathBuf {
    use std::io::Read;
    // Integration tests have a target tmp dir; examples sharing this file do not.
    let dir = match option_env!("CARGO_TARGET_TMPDIR") {
        Some(t) => Path::new(t).join("fixtures"),
        None => std::env::temp_dir().join("etcdsnap-fixtures"),
    };
    let out = dir.join(name);
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(&dir).expect("fixture cache dir");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(gz).expect("open .gz fixture"))
        .read_to_end(&mut bytes)
        .unwrap_or_else(|e| panic!("unpacking {}: {e}", gz.display()));
    let tmp = dir.join(format!(
        ".{name}.{}.{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, &bytes).expect("write unpacked fixture");
    std::fs::rename(&tmp, &out).expect("rename unpacked fixture");
    out
}

/// The bytes of `testdata/snapshots/<file>`.
pub fn read_snapshot(file: &str) -> Vec<u8> {
    let p = snapshot(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading fixture {}: {e}", p.display()))
}

/// Every snapshot fixture with a SHA-256 trailer (`*.db` but not `*.member.db`).
pub const SAVED_SNAPSHOTS: [&str; 6] = [
    "small-v34.db",
    "small-v35.db",
    "auth-v34.db",
    "auth-v35.db",
    "k8s-v34.db",
    "k8s-v35.db",
];

/// The fixtures made by etcd 3.6.14 and 3.7.1 servers (saved snapshots and
/// raw member dbs); the `k8s` ones come from the shared recordings.
pub const NEW_FIXTURES: [&str; 12] = [
    "small-v36.db",
    "small-v37.db",
    "auth-v36.db",
    "auth-v37.db",
    "k8s-v36.db",
    "k8s-v37.db",
    "small-v36.member.db",
    "small-v37.member.db",
    "auth-v36.member.db",
    "auth-v37.member.db",
    "k8s-v36.member.db",
    "k8s-v37.member.db",
];

/// Whether a fixture is kept in the shared recordings only.
pub fn is_shared_only(file: &str) -> bool {
    file.starts_with("k8s-v36") || file.starts_with("k8s-v37")
}

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
