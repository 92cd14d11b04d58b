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
/// Fixtures too big to keep as they are, all recorded from real etcd
/// servers, are kept in one of two packed forms and unpacked on first use
/// into the target dir:
/// - `<file>.gz`: gzip of the recorded file (the 3.6/3.7 `k8s` snapshots and
///   the 16 MiB 3.6/3.7 raw member dbs that are zeros past a few pages);
/// - `<file>.patch`: a raw member db as a patch against the snapshot saved
///   from the same server (they differ in a few pages), with the recorded
///   file's SHA-256, written by `tools/fixtures/member_db_patch.py`.
pub fn snapshot(file: &str) -> PathBuf {
    let plain = testdata("snapshots").join(file);
    if plain.exists() {
        return plain;
    }
    let gz = testdata("snapshots").join(format!("{file}.gz"));
    if gz.exists() {
        return unpacked(file, || {
            use std::io::Read;
            let mut bytes = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&gz).expect("open .gz fixture"))
                .read_to_end(&mut bytes)
                .unwrap_or_else(|e| panic!("unpacking {}: {e}", gz.display()));
            bytes
        });
    }
    let patch = testdata("snapshots").join(format!("{file}.patch"));
    if patch.exists() {
        return unpacked(file, || apply_patch(&patch));
    }
    panic!("no fixture {file} in testdata/snapshots (plain, .gz or .patch)")
}

/// Rebuilds a file from a `.patch` fixture (format in
/// `tools/fixtures/member_db_patch.py`) and checks it against the recorded
/// SHA-256.
fn apply_patch(patch: &Path) -> Vec<u8> {
    use sha2::Digest;
    let bytes = std::fs::read(patch).expect("read .patch fixture");
    let split = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("patch header ends in an empty line");
    let header = std::str::from_utf8(&bytes[..split]).expect("patch header is text");
    let mut pages_data = &bytes[split + 2..];
    let (mut base, mut length, mut sha, mut page_size, mut pages) =
        (None, 0usize, String::new(), 0usize, Vec::new());
    for line in header.lines().skip(1) {
        let (k, v) = line.split_once(' ').expect("key value");
        match k {
            "base" => base = Some(v.to_owned()),
            "length" => length = v.parse().expect("length"),
            "sha256" => sha = v.to_owned(),
            "page-size" => page_size = v.parse().expect("page size"),
            "page" => pages.push(v.parse::<usize>().expect("page id")),
            other => panic!("unknown patch header {other}"),
        }
    }
    let mut out = read_snapshot(&base.expect("base"));
    if out.len() % 512 == 32 {
        out.truncate(out.len() - 32);
    }
    out.resize(length, 0);
    for id in pages {
        let (page, rest) = pages_data.split_at(page_size);
        out[id * page_size..(id + 1) * page_size].copy_from_slice(page);
        pages_data = rest;
    }
    let got: String = sha2::Sha256::digest(&out)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        got,
        sha,
        "{}: rebuilt file differs from the recorded one",
        patch.display()
    );
    out
}

/// Writes `make()`'s bytes once into the target dir as `name` (to a
/// temporary name, then renamed, so parallel tests never see half a file).
fn unpacked(name: &str, make: impl FnOnce() -> Vec<u8>) -> PathBuf {
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
    let bytes = make();
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

/// Snapshot fixtures compared with etcdutl 3.5.1 only (no 3.6/3.7 recordings): the synced
/// freelist one (a 3.5.1 snapshot whose body Go bbolt 1.3.6 gave a freelist page).
pub const SAVED_SNAPSHOTS_35_ONLY: [&str; 1] = ["synced-v35.db"];

/// The fixtures made by etcd 3.6.14 and 3.7.1 servers (saved snapshots and
/// raw member dbs).
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
