//! Damage and interruptions in a backup repository: a flipped byte in a
//! pack, a pack trailer, a chunk list, a manifest or the index is found by
//! `backup check`, which names the snapshots it affects, and a restore of
//! damaged data is refused with nothing left behind; a truncated pack is
//! found without reading data; `check --read-data` runs verify's checks on
//! each snapshot it reassembles; a manifest removed without a forget is
//! reported missing (also after the index is rebuilt); a push killed with
//! SIGKILL at random moments leaves the repository consistent (`check`
//! clean) and the next push succeeds; concurrent pushes both land.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::{BIN, ok, run, s};
use support::corrupt;
use support::files;
use support::fixtures;
use support::fixtures::names_in;

/// A repository holding the k8s fixture and the small one; their IDs.
fn repo_with_two(dir: &Path) -> (PathBuf, String, String) {
    let repo = dir.join("repo");
    ok(&["backup", "init", s(&repo)]);
    let push = |f: &str| -> String {
        let v: Value = serde_json::from_str(&ok(&[
            "backup",
            "push",
            s(&repo),
            s(&fixtures::snapshot(f)),
            "-w",
            "json",
        ]))
        .expect("json");
        v["id"].as_str().expect("id").to_string()
    };
    let k8s = push("k8s-v35.db");
    let small = push("small-v35.db");
    (repo, k8s, small)
}

/// The largest pack (the k8s snapshot's).
fn big_pack(repo: &Path) -> PathBuf {
    files::paths(&repo.join("packs"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).expect("stat").len())
        .expect("a pack")
}

fn flip(path: &Path, at: u64) {
    let mut b = std::fs::read(path).expect("read");
    b[at as usize] ^= 0xff;
    // The objects are read-only to the repository's writers; tests may
    // still damage them.
    std::fs::write(path, b).expect("write");
}

fn check(repo: &Path, read_data: bool) -> (bool, Value) {
    let mut a = vec!["backup", "check", s(repo), "-w", "json"];
    if read_data {
        a.push("--read-data");
    }
    let o = run(&a);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "check output: {e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert_eq!(o.status.success(), v["ok"] == true, "{v}");
    (o.status.success(), v)
}

fn affected(v: &Value) -> Vec<String> {
    v["affectedSnapshots"]
        .as_array()
        .expect("affected")
        .iter()
        .map(|x| x.as_str().expect("id").to_string())
        .collect()
}

/// `backup restore` into `dir/name.etcd`; the output.
fn restore(repo: &Path, id: &str, dir: &Path) -> Output {
    run(&[
        "backup",
        "restore",
        s(repo),
        id,
        "--data-dir",
        s(&dir.join("m.etcd")),
    ])
}

#[test]
fn a_flipped_byte_in_pack_data_is_found_and_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let (repo, k8s, small) = repo_with_two(work.path());
    let pack = big_pack(&repo);
    let len = std::fs::metadata(&pack).expect("stat").len();
    flip(&pack, len / 2);

    // The fast check reads only trailers; --read-data finds it.
    let (clean, _) = check(&repo, false);
    assert!(clean, "trailers are intact");
    let (clean, v) = check(&repo, true);
    assert!(!clean);
    let text = v["problems"].to_string();
    assert!(text.contains("does not match its name"), "{text}");
    assert_eq!(affected(&v), vec![k8s.clone()], "{v}");

    // restore and cat refuse the damaged snapshot; nothing is left.
    let out = work.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let o = restore(&repo, &k8s, &out);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("Error: ") && err.contains("pack"), "{err}");
    assert!(names_in(&out).is_empty(), "left {:?}", names_in(&out));
    let o = run(&["backup", "cat", s(&repo), &k8s]);
    assert!(!o.status.success());
    // The other snapshot is untouched.
    let o = restore(&repo, &small, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// One entry of an unencrypted pack's trailer.
struct Entry {
    id: [u8; 32],
    offset: u64,
    stored_len: u32,
    codec: u8,
}

/// The entries of an unencrypted pack (src/repo/pack.rs: 49-byte entries
/// `id[32] offset u64 stored_len u32 raw_len u32 codec u8` before a
/// 48-byte footer that starts with the trailer's length and the count).
fn pack_entries(pack: &Path) -> Vec<Entry> {
    let b = std::fs::read(pack).expect("read");
    let footer = &b[b.len() - 48..];
    let le32 = |x: &[u8]| u32::from_le_bytes(x.try_into().expect("4 bytes"));
    let (trailer_len, count) = (le32(&footer[..4]) as usize, le32(&footer[4..8]) as usize);
    let start = b.len() - 48 - trailer_len;
    assert_eq!(trailer_len, count * 49, "an unencrypted trailer");
    b[start..start + trailer_len]
        .chunks(49)
        .map(|e| Entry {
            id: e[..32].try_into().expect("32 bytes"),
            offset: u64::from_le_bytes(e[32..40].try_into().expect("8 bytes")),
            stored_len: le32(&e[40..44]),
            codec: e[48],
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A restore does not hash each chunk against its ID as it passes (the
/// body's SHA-256 recorded at push time is checked anyway). A chunk stored
/// raw (incompressible) with a byte flipped decodes without complaint, so
/// the body's digest is what finds it; the restore then reads the chunks
/// again, each checked, and names that chunk and its pack exactly as a
/// chunk-by-chunk check does, leaving nothing behind.
#[test]
fn a_flipped_byte_in_a_raw_chunk_is_named_by_the_second_pass() {
    let work = tempfile::tempdir().expect("tempdir");
    let (repo, k8s, small) = repo_with_two(work.path());
    let pack = big_pack(&repo);
    let entries = pack_entries(&pack);
    // A raw chunk well before the end (the last chunks, which hold etcd's
    // trailer, are checked as they pass).
    let raw: Vec<&Entry> = entries[..entries.len() - 8]
        .iter()
        .filter(|e| e.codec == 0)
        .collect();
    assert!(!raw.is_empty(), "the k8s fixture has incompressible pages");
    let e = raw[raw.len() / 2];
    flip(&pack, e.offset + u64::from(e.stored_len) / 2);
    let name = pack
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();

    let out = work.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let o = restore(&repo, &k8s, &out);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "Error: read {} snapshot {k8s}: pack {}: at offset {}: chunk {}: content does not match its hash\n",
            repo.display(),
            &name[..64],
            e.offset,
            hex(&e.id)
        )
    );
    assert!(names_in(&out).is_empty(), "left {:?}", names_in(&out));
    // `cat` checks each chunk as it writes: the same chunk.
    let o = run(&["backup", "cat", s(&repo), &k8s]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&hex(&e.id)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = restore(&repo, &small, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_flipped_byte_in_a_pack_trailer_is_found_by_the_fast_check() {
    let work = tempfile::tempdir().expect("tempdir");
    let (repo, k8s, _) = repo_with_two(work.path());
    let pack = big_pack(&repo);
    let len = std::fs::metadata(&pack).expect("stat").len();
    // Inside the trailer (one 49-byte entry per chunk, before the 48-byte
    // footer).
    flip(&pack, len - 48 - 49 * 10 - 7);
    let (clean, v) = check(&repo, false);
    assert!(!clean);
    let text = v["problems"].to_string();
    assert!(text.contains("trailer"), "{text}");
    // The fast check names the flag that reads the chunks (the binary's
    // advice, not the library's).
    assert!(
        text.contains("; `check --read-data` verifies its chunks)"),
        "{text}"
    );
    // The index still knows where every chunk is, and every chunk read is
    // verified: the data is intact and a restore goes on, byte for byte.
    assert!(affected(&v).is_empty(), "{v}");
    let (clean, v) = check(&repo, true);
    assert!(!clean && affected(&v).is_empty(), "{v}");
    let text = v["problems"].to_string();
    assert!(
        text.contains("(the index cannot be rebuilt from this pack)"),
        "{text}"
    );
    let o = run(&["backup", "cat", s(&repo), &k8s]);
    assert!(o.status.success());
    assert!(o.stdout == std::fs::read(fixtures::snapshot("k8s-v35.db")).expect("read"));
    // A rebuilt index cannot take the damaged pack in: now it is lost.
    let o = run(&["backup", "rebuild-index", s(&repo)]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("left out packs/"));
    let (clean, v) = check(&repo, false);
    assert!(!clean);
    assert_eq!(affected(&v), vec![k8s.clone()], "{v}");
    let out = work.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let o = restore(&repo, &k8s, &out);
    assert!(!o.status.success());
    assert!(names_in(&out).is_empty());
}

#[test]
fn a_flipped_byte_in_the_index_is_found_and_refused_until_rebuilt() {
    let work = tempfile::tempdir().expect("tempdir");
    let (repo, k8s, _) = repo_with_two(work.path());
    let index = repo.join("index.redb");
    // Where the index keeps the ID of the k8s snapshot's first chunk.
    let first = std::fs::read(fixtures::snapshot("k8s-v35.db")).expect("read");
    let id = blake3::hash(&first[..4096]);
    let bytes = std::fs::read(&index).expect("read");
    let at = bytes
        .windows(32)
        .position(|w| w == id.as_bytes())
        .expect("the chunk ID is in the index");
    flip(&index, at as u64 + 5);

    let (clean, v) = check(&repo, false);
    assert!(!clean, "{v}");
    assert!(v["problems"].to_string().contains("index"), "{v}");
    assert!(affected(&v).contains(&k8s), "{v}");
    let out = work.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let o = restore(&repo, &k8s, &out);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rebuild-index"), "{err}");
    assert!(names_in(&out).is_empty());

    ok(&["backup", "rebuild-index", s(&repo)]);
    let (clean, v) = check(&repo, true);
    assert!(clean, "{v}");
    let o = restore(&repo, &k8s, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn flipped_bytes_in_lists_and_manifests_are_found() {
    for dir in ["lists", "snapshots"] {
        let work = tempfile::tempdir().expect("tempdir");
        let (repo, k8s, small) = repo_with_two(work.path());
        // The k8s snapshot's object: its manifest, or its (full) list, the
        // larger of the two lists.
        let target = if dir == "snapshots" {
            repo.join("snapshots").join(&k8s)
        } else {
            files::paths(&repo.join("lists"))
                .into_iter()
                .max_by_key(|p| std::fs::metadata(p).expect("stat").len())
                .expect("list")
        };
        flip(&target, 40);
        let (clean, v) = check(&repo, false);
        assert!(!clean, "{dir}: {v}");
        assert!(
            v["problems"]
                .to_string()
                .contains("does not match its name"),
            "{dir}: {v}"
        );
        assert_eq!(affected(&v), vec![k8s.clone()], "{dir}: {v}");
        assert!(!affected(&v).contains(&small));
    }
}

/// Deterministic pseudo-random numbers (xorshift).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn sigkill_during_push_leaves_the_repository_consistent() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    ok(&["backup", "init", s(&repo)]);
    let small = fixtures::snapshot("small-v35.db");
    let k8s = fixtures::snapshot("k8s-v35.db");
    ok(&["backup", "push", s(&repo), s(&small)]);
    // How long a whole push of the big fixture takes, into a scratch repo.
    let probe = work.path().join("probe");
    ok(&["backup", "init", s(&probe)]);
    let t = Instant::now();
    ok(&["backup", "push", s(&probe), s(&k8s)]);
    let full = t.elapsed();

    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut killed_early, mut snapshots) = (0, 1);
    for i in 0..16 {
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 6 / 5));
        let mut child = Command::new(BIN)
            .args(["backup", "push", s(&repo), s(&k8s)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        let _ = child.kill();
        let finished = child.wait().expect("wait").success();
        let (clean, v) = check(&repo, false);
        assert!(clean, "after kill {i} ({delay:?}): {v}");
        let n = serde_json::from_str::<Value>(&ok(&["backup", "ls", s(&repo), "-w", "json"]))
            .expect("json")
            .as_array()
            .expect("array")
            .len();
        // The snapshot is there if the push finished, absent if it was
        // killed before publishing its manifest, either if in between.
        if finished {
            assert_eq!(n, snapshots + 1, "after push {i}");
        } else {
            assert!(n == snapshots || n == snapshots + 1, "after kill {i}: {n}");
        }
        if n == snapshots {
            killed_early += 1;
        }
        snapshots = n;
    }
    assert!(killed_early > 0, "no kill landed before the end");
    // The next push succeeds and everything reads back.
    let v: Value = serde_json::from_str(&ok(&["backup", "push", s(&repo), s(&k8s), "-w", "json"]))
        .expect("json");
    let o = run(&["backup", "cat", s(&repo), v["id"].as_str().expect("id")]);
    assert!(o.stdout == std::fs::read(&k8s).expect("read"));
    let (clean, v) = check(&repo, true);
    assert!(clean, "{v}");
    assert!(
        names_in(&repo.join("tmp")).is_empty(),
        "temporary files left"
    );
    // Prune removes what interrupted pushes left; still clean.
    ok(&["backup", "prune", s(&repo)]);
    let (clean, v) = check(&repo, true);
    assert!(clean, "{v}");
    assert!(v["notes"].as_array().expect("notes").is_empty(), "{v}");
}

#[test]
fn concurrent_pushes_both_land() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    ok(&["backup", "init", s(&repo)]);
    let files = ["k8s-v35.db", "k8s-v34.db", "small-v35.db", "auth-v35.db"];
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            Command::new(BIN)
                .args(["backup", "push", s(&repo), s(&fixtures::snapshot(f))])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().expect("wait");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (clean, v) = check(&repo, true);
    assert!(clean, "{v}");
    let listed: Value =
        serde_json::from_str(&ok(&["backup", "ls", s(&repo), "-w", "json"])).expect("json");
    assert_eq!(listed.as_array().expect("array").len(), files.len());
    for l in listed.as_array().expect("array") {
        let src = PathBuf::from(l["source"].as_str().expect("source"));
        let o = run(&["backup", "cat", s(&repo), l["id"].as_str().expect("id")]);
        assert!(o.stdout == std::fs::read(&src).expect("read"), "{src:?}");
    }
}

#[test]
fn a_truncated_pack_is_named_by_the_fast_check() {
    let work = tempfile::tempdir().expect("tempdir");
    let (repo, k8s, _) = repo_with_two(work.path());
    let pack = big_pack(&repo);
    let len = std::fs::metadata(&pack).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&pack)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    // Without reading data: the index places chunks past the pack's end.
    let (clean, v) = check(&repo, false);
    assert!(!clean);
    assert_eq!(affected(&v), vec![k8s.clone()], "{v}");
    let text = v["problems"].to_string();
    assert!(text.contains(&format!("snapshot {k8s}")), "{text}");
    let (clean, v) = check(&repo, true);
    assert!(!clean);
    assert_eq!(affected(&v), vec![k8s], "{v}");
}

/// Pushes `file` as etcdsnap before push ran verify's checks would have.
fn push_unverified(repo: &Path, file: &Path) -> String {
    let r = etcdsnap::repo::Repository::open_dir(repo, None).expect("open");
    let opts = etcdsnap::repo::PushOptions::default().with_skip_hash_check(true);
    let pushed = etcdsnap::internal::repo::push_unverified(&r, file, &opts).expect("push");
    pushed.info.id.to_string()
}

#[test]
fn check_read_data_verifies_each_snapshot_it_reassembles() {
    let work = tempfile::tempdir().expect("tempdir");
    let (repo, _, _) = repo_with_two(work.path());
    // Unsound snapshots stored by an older etcdsnap (push refuses them now).
    let mut damaged = Vec::new();
    for name in ["branch-child-self", "lease-not-lease"] {
        let v = corrupt::variant(name);
        let file = v.write_to(work.path());
        let o = run(&["snapshot", "verify", s(&file)]);
        assert!(!o.status.success(), "{name}");
        let first = String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .expect("a problem line")
            .to_string();
        damaged.push((push_unverified(&repo, &file), first));
    }
    // Every object is sound: the fast check has nothing to say.
    let (clean, v) = check(&repo, false);
    assert!(clean, "{v}");
    let (clean, v) = check(&repo, true);
    assert!(!clean);
    let mut want: Vec<String> = damaged.iter().map(|(id, _)| id.clone()).collect();
    want.sort();
    assert_eq!(affected(&v), want, "{v}");
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (id, line) in &damaged {
        let named = format!("snapshot {id}: {line}");
        assert!(
            problems.contains(&named.as_str()),
            "{named} in {problems:?}"
        );
    }
    // The reassembled copies are gone.
    assert!(files::paths(&repo.join("tmp")).is_empty());
}

#[test]
fn a_deleted_manifest_is_missing_until_forgotten() {
    let work = tempfile::tempdir().expect("tempdir");
    let (repo, k8s, small) = repo_with_two(work.path());
    for f in ["auth-v35.db", "k8s-v34.db"] {
        ok(&["backup", "push", s(&repo), s(&fixtures::snapshot(f))]);
    }
    std::fs::remove_file(repo.join("snapshots").join(&small)).expect("rm");
    let (clean, v) = check(&repo, false);
    assert!(!clean, "{v}");
    assert_eq!(affected(&v), vec![small.clone()], "{v}");
    assert!(
        v["problems"]
            .to_string()
            .contains("the manifest is missing"),
        "{v}"
    );
    // Not even a rebuilt index forgets it: the record is an object.
    ok(&["backup", "rebuild-index", s(&repo)]);
    let (_, v) = check(&repo, true);
    assert_eq!(affected(&v), vec![small.clone()], "{v}");
    // Prune will not collect its pages while the loss is unexplained.
    let o = run(&["backup", "prune", s(&repo)]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains(&small) && e.contains("missing"), "{e}");

    // A forget by its ID accepts the loss.
    let out = ok(&["backup", "forget", s(&repo), &small]);
    assert!(out.contains("whose manifest is missing"), "{out}");
    let (clean, v) = check(&repo, true);
    assert!(clean, "{v}");
    // A forget is not a loss.
    ok(&["backup", "forget", s(&repo), &k8s]);
    let (clean, v) = check(&repo, false);
    assert!(clean, "{v}");
    ok(&["backup", "prune", s(&repo)]);
    let (clean, v) = check(&repo, true);
    assert!(clean, "{v}");
    assert_eq!(v["snapshots"], 2, "{v}");
    assert!(files::paths(&repo.join("forgotten")).is_empty());
}
