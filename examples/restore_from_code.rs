//! Restores a snapshot into the data dirs of a three-member cluster from
//! code, as `etcdutl snapshot restore --all-members` would, then lists what
//! was written.
//!
//! ```sh
//! cargo run --example restore_from_code -- testdata/snapshots/small-v35.db /tmp/restored
//! ```
//!
//! The output dir must not exist; it appears atomically with one
//! `<name>.etcd` data dir per member, ready for `etcd --data-dir`.

use std::path::Path;
use std::process::ExitCode;

use etcdsnap::{RestoreOptions, TargetVersion, restore};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [snapshot, out_dir] = args.as_slice() else {
        eprintln!("usage: restore_from_code SNAPSHOT OUT_DIR");
        return ExitCode::from(2);
    };
    let opts = RestoreOptions::default()
        .with_initial_cluster(
            "m1=http://127.0.0.1:12380,m2=http://127.0.0.1:22380,\
             m3=http://127.0.0.1:32380",
        )
        .with_initial_cluster_token("restored")
        .with_target(TargetVersion::V3_5)
        .with_all_members_out_dir(out_dir);
    let summary = match restore(Path::new(snapshot), &opts, &|_| {}) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("cluster {:016x}", summary.cluster_id);
    for m in &summary.members {
        println!(
            "member {} {:016x}: db {}, wal {}",
            m.name,
            m.id,
            m.dir.db_path().display(),
            m.dir.wal_dir().display()
        );
    }
    ExitCode::SUCCESS
}
