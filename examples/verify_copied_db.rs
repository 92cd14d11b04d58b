//! Checks a copied `member/snap/db` (or an `etcdctl snapshot save` file)
//! offline, the way a backup job would before keeping it.
//!
//! ```sh
//! cargo run --example verify_copied_db -- testdata/snapshots/k8s-v35.member.db
//! ```
//!
//! A raw db copy has no SHA-256 trailer, so the hash check is skipped for
//! it; the bbolt structure and etcd's records are checked either way.

use std::process::ExitCode;

use etcdsnap::{HashCheck, Snapshot, TargetVersion, VerifyOptions};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: verify_copied_db FILE");
        return ExitCode::from(2);
    };
    let snap = match Snapshot::open(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = VerifyOptions::default()
        .with_skip_hash_check(snap.trailer().is_none())
        .with_target(TargetVersion::V3_5);
    let report = snap.verify(&opts);
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if !report.is_ok() {
        for p in report.problems() {
            eprintln!("{p}");
        }
        return ExitCode::FAILURE;
    }
    let hash = match report.hash {
        HashCheck::Verified(_) => "sha256 verified",
        _ => "no trailer (raw db copy)",
    };
    if let Some(s) = &report.status {
        println!(
            "{path}: sound; {hash}; revision {}, {} keys, {} bytes",
            s.revision, s.total_key, s.total_size
        );
    }
    ExitCode::SUCCESS
}
