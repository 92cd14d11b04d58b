//! `etcdsnap snapshot restore`.

use std::path::Path;

use etcdsnap::{
    FlagsError, Location, RestoreError, RestoreOptions, RestoreSource, RestoreSummary, restore,
};
use serde_json::json;

use super::progress::Bar;
use super::{
    Failure, RestoreArgs, RestoreFlags, compressed_hint, json_or_simple, non_empty,
    note_auto_target, one_file, restore_failure, target_choice,
};

/// What to do about a target older than the data, for a person at a shell.
const STORAGE_ADVICE: &str = "(etcd refuses data newer than itself: give a newer --target-version, \
    or --force to write this layout anyway and set the storage version back as `etcdutl migrate` does)";

pub fn run(a: &RestoreArgs, write_out: &str) -> Result<(), Failure> {
    let file = one_file(&a.file, &a.more, "snapshot restore")?;
    let opts = options(&a.flags)?;
    let json = json_or_simple(write_out, "restore")?;
    // A signal removes the staged dirs and exits (128 + the signal).
    super::interrupt::install(super::interrupt::Mode::Immediate("nothing restored"))?;
    let source = source(&file, &opts).map_err(failure)?;
    let bar = Bar::new();
    let result = restore(source, &opts, &|p| bar.update(p));
    bar.finish();
    let summary = result.map_err(|e| {
        // A compressed file under a plain name has no trailer where etcd
        // looks for one: etcd's words, then what is really wrong.
        let hint = match &e {
            RestoreError::MissingHash
            | RestoreError::Snapshot(etcdsnap::SnapshotError::Bolt { .. }) => {
                compressed_hint(Path::new(&file))
            }
            _ => None,
        };
        let mut f = failure(e);
        if let Some(hint) = hint {
            f.message = format!("{} {hint}", f.message);
        }
        f
    })?;
    print_summary(&summary, json);
    Ok(())
}

/// The snapshot argument: any location text (`snap.db`, `snap.db.zst`,
/// `s3://...`, `file:///...`).
fn source(file: &str, opts: &RestoreOptions) -> Result<RestoreSource<'static>, RestoreError> {
    Ok(RestoreSource::Location(Location::parse_with(
        file,
        &opts.location,
    )?))
}

/// The library's options from the command-line flags.
pub fn options(a: &RestoreFlags) -> Result<RestoreOptions, Failure> {
    let choice = target_choice(&a.target_version)?;
    let mut opts = RestoreOptions::default()
        .with_name(a.name.clone())
        .with_initial_cluster(a.initial_cluster.clone())
        .with_initial_cluster_token(a.initial_cluster_token.clone())
        .with_initial_advertise_peer_urls(a.initial_advertise_peer_urls.clone())
        .with_skip_hash_check(a.skip_hash_check)
        .with_bump_revision(a.bump_revision)
        .with_mark_compacted(a.mark_compacted)
        .with_compact(a.compact)
        .with_defrag(a.defrag)
        .with_target(choice)
        .with_force(a.force)
        .with_location(super::location_options()?);
    if let Some(dir) = non_empty(&a.data_dir) {
        opts = opts.with_data_dir(dir);
    }
    if let Some(dir) = non_empty(&a.wal_dir) {
        opts = opts.with_wal_dir(dir);
    }
    // clap's `requires` and `conflicts_with` have checked the pairing.
    if let Some(dir) = non_empty(&a.out_dir).filter(|_| a.all_members) {
        opts = opts.with_all_members_out_dir(dir);
    }
    Ok(opts)
}

/// A restore error as the CLI prints it.
pub fn failure(e: RestoreError) -> Failure {
    match e {
        // The data dir comes from --data-dir here.
        RestoreError::Flags(FlagsError::BadMemberName {
            name,
            all_members: false,
        }) => Failure::new(
            super::EXIT_BAD_ARGS,
            format!(
                "member name {name:?} cannot name a data dir (pass --data-dir): it is empty or contains '/' or NUL"
            ),
        ),
        // The library words these in its own terms; here they come from
        // flags, which the text names.
        RestoreError::Flags(FlagsError::BumpOverflow { by, latest }) => Failure::new(
            super::EXIT_BAD_ARGS,
            format!(
                "--bump-revision {by} would take the revision past the largest int64 (latest revision is {latest})"
            ),
        ),
        RestoreError::Flags(FlagsError::AllMembersWithDir) => Failure::new(
            super::EXIT_BAD_ARGS,
            "--all-members writes DIR/<name>.etcd for every member: do not pass --data-dir or --wal-dir",
        ),
        RestoreError::Flags(FlagsError::BadCompactRevision { revision }) => Failure::new(
            super::EXIT_BAD_ARGS,
            format!(
                "--compact must be a revision (or 0 or nothing for the latest), not {revision}"
            ),
        ),
        RestoreError::Flags(FlagsError::TargetVersionNeeded { found }) => Failure::new(
            super::EXIT_BAD_ARGS,
            format!(
                "the snapshot holds etcd {found} data, which changes how these flags read: give --target-version"
            ),
        ),
        e @ RestoreError::StorageTooNew { .. } => {
            let code = super::restore_exit_code(&e);
            Failure::new(code, format!("{e}\n{STORAGE_ADVICE}"))
        }
        e => restore_failure(e),
    }
}

/// Warnings, the auto-target note, and the summary with `-w json`.
pub fn print_summary(summary: &RestoreSummary, json: bool) {
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    if summary.target_was_auto {
        note_auto_target(summary.target, summary.storage_version.as_deref());
    }
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
            "compactRevision": summary.compacted,
            "warnings": summary.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "targetVersion": summary.target.to_string(),
            "targetVersionFrom": if summary.target_was_auto { "auto" } else { "flag" },
            "storageVersion": summary.storage_version,
            "storageVersionMigrated": summary.storage_version_migrated,
        });
        println!("{out}");
    }
}
