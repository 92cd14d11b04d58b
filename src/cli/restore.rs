//! `etcdsnap snapshot restore`.

use std::path::PathBuf;

use etcdsnap::TargetVersion;
use etcdsnap::{RestoreOptions, restore};
use serde_json::json;

use super::progress::Bar;
use super::{EXIT_BAD_ARGS, Failure, RestoreArgs, json_or_simple, one_file, restore_failure};

pub fn run(a: &RestoreArgs, write_out: &str) -> Result<(), Failure> {
    let file = one_file(&a.files, "snapshot restore")?;
    let target: TargetVersion = a
        .target_version
        .parse()
        .map_err(|e| Failure::new(EXIT_BAD_ARGS, e))?;
    let json = json_or_simple(write_out, "restore")?;
    let all_members_out_dir = match (a.all_members, &a.out_dir) {
        (true, Some(d)) => Some(d.clone()),
        (true, None) => {
            return Err(Failure::new(
                EXIT_BAD_ARGS,
                "--all-members needs --out-dir DIR",
            ));
        }
        (false, Some(_)) => {
            return Err(Failure::new(
                EXIT_BAD_ARGS,
                "--out-dir is only used with --all-members",
            ));
        }
        (false, None) => None,
    };
    let mut opts = RestoreOptions::new(PathBuf::from(file));
    opts.data_dir = a.data_dir.clone();
    opts.wal_dir = a.wal_dir.clone();
    opts.name = a.name.clone();
    opts.initial_cluster = a.initial_cluster.clone();
    opts.initial_cluster_token = a.initial_cluster_token.clone();
    opts.initial_advertise_peer_urls = a.initial_advertise_peer_urls.clone();
    opts.skip_hash_check = a.skip_hash_check;
    opts.bump_revision = a.bump_revision;
    opts.mark_compacted = a.mark_compacted;
    opts.target = target;
    opts.all_members_out_dir = all_members_out_dir;

    let bar = Bar::new();
    let result = restore(&opts, &|p| bar.update(p));
    bar.finish();
    let summary = result.map_err(restore_failure)?;
    if json {
        let members: Vec<_> = summary
            .members
            .iter()
            .map(|m| {
                json!({
                    "name": m.name,
                    "id": format!("{:x}", m.id),
                    "dataDir": m.dir.path().display().to_string(),
                    "walDir": m.dir.wal_dir().display().to_string(),
                })
            })
            .collect();
        let out = json!({
            "clusterId": format!("{:x}", summary.cluster_id),
            "members": members,
            "consistentIndex": summary.consistent_index,
            "hashVerified": summary.hash_verified,
            "bumpedToRevision": summary.bumped_to.map(|r| r.main),
        });
        println!("{out}");
    }
    Ok(())
}
