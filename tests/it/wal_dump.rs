//! `etcdsnap wal dump` reads the WAL and `.snap` files the real tools write.

use crate::support;

use etcdsnap::DataDir;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{fixtures, oracles, require_tool, tools};

fn dump(dir: &Path) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(["-w", "json", "wal", "dump"])
        .arg(dir)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("json")
}

fn check_restore_shape(v: &Value, members: usize) {
    let recs = v["segments"][0]["records"].as_array().expect("records");
    let kinds: Vec<&str> = recs
        .iter()
        .filter_map(|r| r["record"]["type"].as_str())
        .collect();
    let mut want = vec!["crc", "metadata", "snapshot"];
    want.extend(std::iter::repeat_n("entry", members));
    want.extend(["state", "snapshot"]);
    assert_eq!(kinds, want);
    let voters = v["snapshot"]["confState"]["voters"]
        .as_array()
        .expect("voters")
        .clone();
    let added: Vec<Value> = recs
        .iter()
        .filter_map(|r| {
            r["record"]["confChange"]["nodeID"]
                .as_str()
                .map(Value::from)
        })
        .collect();
    assert_eq!(
        added, voters,
        "ConfChanges add exactly the .snap's voters, in order"
    );
    let state = &recs[3 + members]["record"];
    assert_eq!(state["commit"].as_u64(), Some(members as u64));
    assert_eq!(state["vote"], voters[0]);
    assert_eq!(v["snapshot"]["index"].as_u64(), Some(members as u64));
}

#[test]
fn reads_the_golden_wal_and_snap_files() {
    for case in ["v34-three-members", "v35-three-members", "v35-defaults"] {
        let golden = fixtures::testdata("golden").join(case);
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = DataDir::new(tmp.path());
        std::fs::create_dir_all(layout.wal_dir()).expect("mkdir");
        std::fs::create_dir_all(layout.snap_dir()).expect("mkdir");
        for e in std::fs::read_dir(&golden).expect("golden") {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            if let Some(wal) = name.strip_suffix(".prefix") {
                let mut bytes = std::fs::read(&p).expect("read");
                bytes.resize(64_000_000, 0);
                std::fs::write(layout.wal_dir().join(wal), bytes).expect("write");
            } else if name.ends_with(".snap") {
                std::fs::copy(&p, layout.snap_dir().join(&name)).expect("copy");
            }
        }
        let members = if case.ends_with("three-members") {
            3
        } else {
            1
        };
        check_restore_shape(&dump(tmp.path()), members);
    }
}

#[test]
fn reads_what_etcdutl_writes() {
    let bins = require_tool!(tools::etcd_suite(tools::EtcdVersion::V35));
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().join("d");
    let ic = "a=http://127.0.0.1:2380,b=http://127.0.0.2:2380,c=http://127.0.0.3:2380,d=http://127.0.0.4:2380";
    let o = oracles::run_restore(
        &bins,
        &fixtures::snapshot("small-v35.db"),
        &[
            "--data-dir",
            d.to_str().expect("utf-8"),
            "--name",
            "c",
            "--initial-cluster",
            ic,
            "--initial-advertise-peer-urls",
            "http://127.0.0.3:2380",
        ],
    );
    o.expect_success("etcdutl restore");
    let v = dump(&d);
    check_restore_shape(&v, 4);
    // The WAL dir alone works too.
    let w = dump(&DataDir::new(&d).wal_dir());
    assert_eq!(w["segments"], v["segments"]);
}

/// A data dir whose WAL is the golden 3-member segment passed through `edit`
/// (which gets the segment's bytes and the offsets of its records).
fn golden_with(mut edit: impl FnMut(&mut Vec<u8>, &[u64])) -> tempfile::TempDir {
    let golden = fixtures::testdata("golden").join("v35-three-members");
    let tmp = tempfile::tempdir().expect("tempdir");
    let wal = tmp.path().join("member/wal");
    std::fs::create_dir_all(&wal).expect("mkdir");
    for e in std::fs::read_dir(&golden).expect("golden") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if let Some(seg) = name.strip_suffix(".prefix") {
            let mut bytes = std::fs::read(&p).expect("read");
            let offsets: Vec<u64> = etcdsnap::raft::wal::decode_segment(&bytes)
                .expect("golden decodes")
                .iter()
                .map(|r| r.offset)
                .collect();
            edit(&mut bytes, &offsets);
            std::fs::write(wal.join(seg), bytes).expect("write");
        }
    }
    tmp
}

fn dump_raw(dir: &Path, json: bool) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
    if json {
        c.args(["-w", "json"]);
    }
    c.args(["wal", "dump"]).arg(dir).output().expect("run")
}

#[test]
fn a_torn_tail_prints_every_record_before_it_and_where_it_stopped() {
    let full = dump(golden_with(|_, _| {}).path());
    let n = full["segments"][0]["records"]
        .as_array()
        .expect("records")
        .len();
    // The last record cut in the middle, as a crash leaves it; then its
    // body zero-filled (a sector that never reached the disk).
    let cut = golden_with(|b, offs| {
        let last = *offs.last().expect("records") as usize;
        b.truncate(last + 12);
    });
    let zeroed = golden_with(|b, offs| {
        let last = *offs.last().expect("records") as usize;
        let end = b.len();
        b[last + 8..end].fill(0);
        b.resize(64_000_000, 0);
    });
    for (what, dir, err) in [
        ("cut", &cut, "truncated frame"),
        ("zeroed", &zeroed, "torn write"),
    ] {
        let o = dump_raw(dir.path(), true);
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: Value = serde_json::from_slice(&o.stdout).expect("json");
        let seg = &v["segments"][0];
        let recs = seg["records"].as_array().expect("records");
        assert_eq!(recs.len(), n - 1, "{what}");
        assert_eq!(
            recs[..],
            full["segments"][0]["records"].as_array().expect("full")[..n - 1]
        );
        let stopped = &seg["stopped"];
        assert_eq!(stopped["tornTail"], true, "{what}: {stopped}");
        assert_eq!(
            stopped["offset"],
            full["segments"][0]["records"][n - 1]["offset"],
            "{what}: stops where the last record starts"
        );
        assert!(
            stopped["error"].as_str().expect("error").contains(err),
            "{what}: {stopped}"
        );
        // The text form says the same.
        let o = dump_raw(dir.path(), false);
        assert!(o.status.success(), "{what}");
        let text = String::from_utf8_lossy(&o.stdout);
        let last = text.lines().last().expect("lines");
        assert!(
            last.starts_with(&format!("{} records, then stopped at offset", n - 1))
                && last.contains(err),
            "{what}: {last}"
        );
    }
}

#[test]
fn a_corrupt_record_before_the_end_fails_after_printing_what_precedes_it() {
    let dir = golden_with(|b, offs| {
        // Flip a byte inside the third record's payload: a CRC mismatch
        // with valid records after it is corruption, not a torn tail.
        let at = offs[2] as usize + 12;
        b[at] ^= 0x01;
    });
    let o = dump_raw(dir.path(), false);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with('@')).count(),
        2,
        "{text}"
    );
    assert!(text.contains("stopped at offset"), "{text}");
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("Error: "));
}

/// A record in the middle of a segment zero-filled, as a lost or
/// misdirected write leaves it, with valid records after it: the length
/// word too (etcd's decoder reads the zero word as the end of the WAL), or
/// only the body (etcd takes it for a torn write). Neither is the torn tail
/// a crash leaves: the dump fails and says where (segment file, byte
/// offset, the entry before) and why (how many valid records follow).
#[test]
fn a_zeroed_record_in_the_middle_is_not_a_torn_tail() {
    let full = dump(golden_with(|_, _| {}).path());
    let recs = full["segments"][0]["records"]
        .as_array()
        .expect("records")
        .clone();
    let n = recs.len();
    // Record 3 is the first ConfChange entry (index 1); 4 and 5 follow.
    let (from, to) = (
        recs[3]["offset"].as_u64().expect("offset") as usize,
        recs[4]["offset"].as_u64().expect("offset") as usize,
    );
    let frame = golden_with(|b, _| {
        b[from..to].fill(0);
        b.resize(64_000_000, 0);
    });
    let body = golden_with(|b, _| {
        b[from + 8..to].fill(0);
        b.resize(64_000_000, 0);
    });
    for (what, dir) in [("frame", &frame), ("body", &body)] {
        let o = dump_raw(dir.path(), true);
        assert_eq!(o.status.code(), Some(1), "{what}");
        let v: Value = serde_json::from_slice(&o.stdout).expect("json");
        let seg = &v["segments"][0];
        assert_eq!(seg["records"].as_array().expect("records").len(), 3);
        let stopped = &seg["stopped"];
        assert_eq!(stopped["offset"].as_u64(), Some(from as u64), "{what}");
        assert_eq!(stopped["tornTail"], false, "{what}");
        assert_eq!(stopped["validAfter"]["offset"].as_u64(), Some(to as u64));
        assert_eq!(
            stopped["validAfter"]["records"].as_u64(),
            Some((n - 4) as u64),
            "{what}: {stopped}"
        );
        assert_eq!(stopped["validAfter"]["firstIndex"].as_u64(), Some(2));
        let o = dump_raw(dir.path(), false);
        assert_eq!(o.status.code(), Some(1), "{what}");
        let err = String::from_utf8_lossy(&o.stderr);
        let seg_name = "0000000000000000-0000000000000000.wal";
        for want in [
            seg_name,
            &format!("offset {from}"),
            "not a torn tail",
            &format!("{} valid record(s)", n - 4),
            &format!("from offset {to}"),
        ] {
            assert!(err.contains(want), "{what}: {want:?} not in {err}");
        }
        if what == "frame" {
            assert!(err.contains("zero-filled record"), "{err}");
        }
    }
}

/// etcd 3.5.1 writes a WAL of three segments (1 MB values: about 64 entries
/// a segment); then
/// * the middle segment deleted: etcd refuses to start (`wal: crc
///   mismatch`: the next segment's CRC record does not continue the
///   chain), and `wal dump` fails naming the missing sequence number, the
///   segments around it and the entries lost, in the same words;
/// * a record in the middle of the last segment zero-filled: etcd starts as
///   if nothing were wrong and zero-fills the valid records after it, and
///   `wal dump` fails saying where and how many records follow.
#[test]
fn a_missing_segment_and_a_zeroed_record_against_etcd() {
    use support::etcd::{ClusterSpec, EtcdProcess};
    use support::snapmaker::Loader;
    let bins = require_tool!(tools::etcd_suite(tools::EtcdVersion::V35));
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cluster = ClusterSpec::in_dir(&bins, 1, tmp.path())
        .arg("--unsafe-no-fsync")
        .start();
    let data = cluster.specs[0].data_dir.clone();
    let mut l = Loader::new(cluster.endpoint());
    let value = vec![b'v'; 1_000_000];
    for i in 0..140 {
        l.put(format!("k{i:03}").as_bytes(), &value);
        l.flush();
    }
    cluster.stop();
    let wal = DataDir::new(&data).wal_dir();
    let segs = DataDir::new(&data).wal_segments().expect("segments");
    assert_eq!(segs.len(), 3, "{segs:?}");
    let name = |p: &Path| p.file_name().expect("name").to_string_lossy().into_owned();
    let index_of = |p: &Path| {
        etcdsnap::raft::wal::parse_segment_file_name(&name(p))
            .expect("segment name")
            .1
    };
    let whole = dump(&data);
    assert_eq!(whole["segments"].as_array().expect("segments").len(), 3);

    // Tries to start etcd on `dir`: Ok if it became healthy (then stopped),
    // else the log.
    let boot = |dir: &Path, log: &str| -> Result<(), String> {
        let spec = ClusterSpec::in_dir(&bins, 1, tmp.path()).data_dir(0, dir);
        let mut p = EtcdProcess::spawn(
            &bins,
            "m1",
            &spec.members[0].client_url(),
            &spec.member_args(0),
            &tmp.path().join(log),
        )
        .expect("spawn etcd");
        p.health_url = spec.members[0].health_url();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let r = p.wait_healthy(deadline).map_err(|_| p.log());
        p.stop();
        r
    };

    // A copy with a record in the middle of the last segment zeroed.
    let zeroed = tmp.path().join("zeroed.etcd");
    copy_tree(&data, &zeroed);
    let last = DataDir::new(&zeroed).wal_segments().expect("segments")[2].clone();
    let mut bytes = std::fs::read(&last).expect("read");
    let offs: Vec<u64> = etcdsnap::raft::wal::WalDecoder::new(&bytes)
        .map(|r| r.expect("record").offset)
        .collect();
    assert!(offs.len() > 10, "{offs:?}");
    // The first entry after the segment's CRC, metadata and state records
    // (and, if any, its snapshot record): an entry with many after it.
    let recs = whole["segments"][2]["records"].as_array().expect("records");
    let k = recs
        .iter()
        .position(|r| r["record"]["type"] == "entry")
        .expect("an entry");
    let (from, to) = (offs[k] as usize, offs[k + 1] as usize);
    let lost_index = recs[k]["record"]["index"].as_u64().expect("index");
    bytes[from..to].fill(0);
    std::fs::write(&last, &bytes).expect("write");
    let o = dump_raw(&zeroed, false);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        name(&last),
        format!("offset {from} (after entry {})", lost_index - 1),
        "zero-filled record".into(),
        format!("{} valid record(s)", offs.len() - k - 1),
    ] {
        assert!(err.contains(&want), "{want:?} not in {err}");
    }
    // etcd does not refuse it: it reads up to the zero and zero-fills the
    // rest, so the entries after it are gone once it has run.
    boot(&zeroed, "zeroed.log").expect("etcd 3.5.1 starts on a zeroed record");
    let after = dump_raw(&zeroed, true);
    let v: Value = serde_json::from_slice(&after.stdout).expect("json");
    let max_index = v["segments"][2]["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["record"]["index"].as_u64())
        .max()
        .expect("entries");
    let old_max = recs
        .iter()
        .filter_map(|r| r["record"]["index"].as_u64())
        .max()
        .expect("entries");
    assert!(max_index < old_max, "etcd kept {max_index} of {old_max}");

    // The middle segment deleted.
    let first_lost = index_of(&segs[1]);
    let next = index_of(&segs[2]);
    std::fs::remove_file(&segs[1]).expect("rm");
    let log = boot(&data, "gap.log").expect_err("etcd 3.5.1 refuses a missing segment");
    assert!(
        log.contains("wal: crc mismatch"),
        "{}",
        support::cmd::tail(&log, 5)
    );
    let o = dump_raw(&data, false);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let want = format!(
        "Error: {}: WAL segment sequence 1 is missing between {} and {}: entries {first_lost} to {} are not in the WAL (etcd refuses to start on it: wal: crc mismatch)\n",
        wal.display(),
        name(&segs[0]),
        name(&segs[2]),
        next - 1
    );
    assert_eq!(err, want);
    // Everything there is still dumped.
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("MISSING: WAL segment sequence 1"), "{text}");
    assert!(text.contains(&name(&segs[2])), "{text}");
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}
