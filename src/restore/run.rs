//! The restore itself: verify, copy, edit, write the raft files, publish.
//!
//! 1. Flags and membership are checked and every target is checked to be
//!    free before anything is read or written.
//! 2. One pass over the snapshot: the SHA-256 trailer is checked on one
//!    thread while the others walk the structure (bbolt and etcd checks)
//!    and then copy the body into the first member's staged db in the
//!    kernel. A snapshot at a URL or in a compressed file is first read
//!    once into the first member's staged db, hashed on the way (see
//!    `source.rs`), and is then checked there and copied from there.
//!    With `--compact` or `--defrag` nothing is copied: once checked, the
//!    snapshot's db is laid out densely (compacted, if asked) by the bulk
//!    loader into the first member's staged db, which the other members
//!    get copies of, and which is checked in turn.
//! 3. The database edits are planned once against the source (or the
//!    dense db) and written into each member's db as one bbolt
//!    transaction.
//! 4. Each member gets its WAL segment and `.snap` file.
//! 5. Staged directories are fsynced and renamed into place; if any step
//!    fails, everything staged or already renamed is removed.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::dbedit;
use super::error::{FlagsError, RestoreError};
use super::membership::Cluster;
use super::options::{MemberTarget, RestoreOptions, check_targets, plan_members};
use super::source::{RestoreSource, Source, stream_into_first};
use super::staging::{self, Published, Staged, mkdir, sync_dir};
use super::stream::{self, SnapshotReader};
use super::target;
use crate::bolt::Db;
use crate::bolt::tx::{self, WriteOptions};
use crate::datadir::DataDir;
use crate::etcd::revision::Revision;
use crate::etcd::{SchemaChecks, SchemaProblem, Status, StatusVisitor, TargetVersion};
use crate::mvcc::{Compaction, Store};
use crate::progress::{Phase, Progress};
use crate::raft::Flavour;
use crate::raft::snap::{encode_snap, restore_snapshot, snap_file_name, write_snap_file};
use crate::raft::v2store::StoreMember;
use crate::raft::wal::segment_file_name;
use crate::raft::wal::{WalMember, restore_wal_prefix, write_segment_file};
use crate::rewrite::{self, RewriteError};
use crate::snapshot::hash::{self, HashCheck};
use crate::snapshot::{SnapshotError, SnapshotFile, copy};

/// One restored member.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoredMember {
    /// Its name.
    pub name: String,
    /// Its ID.
    pub id: u64,
    /// Its data dir (and WAL dir).
    pub dir: DataDir,
}

/// What a successful restore wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoreSummary {
    /// The cluster ID.
    pub cluster_id: u64,
    /// The members written, by ascending ID.
    pub members: Vec<RestoredMember>,
    /// The raft index of the restored state (number of members).
    pub consistent_index: u64,
    /// The revision of the `--bump-revision` entry, when one was written.
    pub bumped_to: Option<Revision>,
    /// The revision the member db was compacted at (`--compact`).
    pub compacted: Option<i64>,
    /// Whether the SHA-256 trailer was verified.
    pub hash_verified: bool,
    /// etcd-level findings in the snapshot that restore replaced or that
    /// etcd tolerates (errors stop a restore).
    pub warnings: Vec<SchemaProblem>,
    /// The release whose layout was written.
    pub target: TargetVersion,
    /// Whether `target` was picked by `auto` from the storage version.
    pub target_was_auto: bool,
    /// The snapshot's `meta/storageVersion` (`None`: absent, read as 3.5).
    pub storage_version: Option<String>,
    /// Whether the storage version was migrated down to `target` (a
    /// forced restore into an older release).
    pub storage_version_migrated: bool,
}

fn flavour(t: TargetVersion) -> Flavour {
    match t {
        TargetVersion::V3_4 => Flavour::V34,
        TargetVersion::V3_5 => Flavour::V35,
        TargetVersion::V3_6 => Flavour::V36,
        _ => Flavour::V37,
    }
}

/// A member's directories under construction.
struct StagedMember {
    target: MemberTarget,
    /// Its own staged data dir, or `None` when it is built inside a staged
    /// `--out-dir` that is published as a whole.
    data: Option<Staged>,
    /// Where its data dir is being built.
    layout: DataDir,
    wal: Option<Staged>,
    db: File,
    db_path: PathBuf,
}

impl StagedMember {
    /// Stages a member's dirs: next to its data dir, or inside `within`
    /// (a staged `--out-dir`).
    fn new(target: MemberTarget, within: Option<&Staged>) -> Result<StagedMember, RestoreError> {
        let (data, data_path) = match within {
            Some(out) => {
                let name = target.data_dir.file_name().unwrap_or_default();
                let p = out.path().join(name);
                mkdir(&p)?;
                (None, p)
            }
            None => {
                // An existing (empty) data dir is kept, whatever it is: a
                // mount point, a symlink, a dir with its own mode and owner.
                let s = if target.data_dir.is_dir() {
                    Staged::inside(&target.data_dir)?
                } else {
                    Staged::new(&target.data_dir)?
                };
                let p = s.path().to_path_buf();
                (Some(s), p)
            }
        };
        // A --wal-dir inside the data dir is built inside the staged data
        // dir (etcdutl creates it there); one elsewhere is staged apart.
        let wal_inside = target
            .wal_dir
            .as_ref()
            .and_then(|w| path_inside(w, &target.data_dir));
        let wal = match (&target.wal_dir, &wal_inside) {
            (Some(w), None) => Some(Staged::new(w)?),
            _ => None,
        };
        let staged_wal = match (&wal_inside, &wal) {
            (Some(rel), _) => Some(data_path.join(rel)),
            (None, Some(w)) => Some(w.path().to_path_buf()),
            (None, None) => None,
        };
        let layout = DataDir::new(&data_path).with_wal_dir(staged_wal);
        mkdir(layout.member_dir())?;
        mkdir(&layout.snap_dir())?;
        if wal_inside.is_some() {
            DirBuilder::new()
                .recursive(true)
                .mode(staging::DIR_MODE)
                .create(layout.wal_dir())
                .map_err(RestoreError::io("mkdir", layout.wal_dir()))?;
        } else if !layout.has_separate_wal_dir() {
            mkdir(&layout.wal_dir())?;
        }
        let db_path = layout.db_path();
        let db = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&db_path)
            .map_err(RestoreError::io("create", &db_path))?;
        Ok(StagedMember {
            target,
            data,
            layout,
            wal,
            db,
            db_path,
        })
    }
}

/// Where `path` lies inside `dir`, lexically (`.` and `..` resolved, both
/// made absolute against the current directory; symlinks not followed):
/// `d/wal` in `d` is `wal`. `None` when it is outside or `dir` itself.
fn path_inside(path: &Path, dir: &Path) -> Option<PathBuf> {
    fn normal(p: &Path) -> Option<PathBuf> {
        let abs = std::path::absolute(p).ok()?;
        let mut out = PathBuf::new();
        for c in abs.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    out.pop();
                }
                c => out.push(c),
            }
        }
        Some(out)
    }
    let rel = normal(path)?.strip_prefix(normal(dir)?).ok()?.to_path_buf();
    (!rel.as_os_str().is_empty()).then_some(rel)
}

/// Restores the snapshot `source` (a path, a [`Location`](crate::Location)
/// or a reader: see [`RestoreSource`]) into one data dir (or one per
/// member with `--all-members`). On error nothing is left behind and
/// existing directories are untouched. Blocks the calling thread until
/// done, also while it downloads a snapshot from object storage (see
/// [blocking calls and async code](crate#blocking-calls-and-async-code)).
pub fn restore<'a>(
    source: impl Into<RestoreSource<'a>>,
    opts: &RestoreOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RestoreSummary, RestoreError> {
    run(opts, source.into().resolve(opts), progress, None)
}

#[cfg(feature = "repo")]
/// Writes a snapshot's body into the first member's staged db (empty,
/// read-write, at `path`) and returns it opened as the snapshot the
/// restore reads, with whether a digest vouches for it.
pub(crate) type Fill<'a> =
    dyn FnOnce(&File, &Path) -> Result<(SnapshotFile, bool), RestoreError> + 'a;

/// A snapshot that arrives in the first member's staged db.
enum Incoming<'a> {
    /// Read from a stream ([`RestoreSource::Reader`]).
    Reader(SnapshotReader<'a>),
    /// Written there by the caller (see [`restore_filled`]).
    #[cfg(feature = "repo")]
    Fill(Box<Fill<'a>>),
}

/// [`restore()`] of a snapshot that `fill` writes straight into the
/// first member's staged db (a point-in-time restore applies recorded
/// changes there, instead of writing a file to restore from). `fill`
/// gets the empty db and its path, and returns the db opened as the
/// snapshot (cut to its body, see [`open_filled`]), whether a digest
/// vouches for its source, and what the caller wants back. Everything
/// after is as for a snapshot streamed from a location: the db is checked
/// and edited there and copied to the other members. Also returns the
/// `snapshot status` of the db `fill` wrote (before the restore's edits),
/// taken in the walk that checks it.
#[cfg(feature = "repo")]
pub(crate) fn restore_filled<T>(
    opts: &RestoreOptions,
    fill: impl FnOnce(&File, &Path) -> Result<(SnapshotFile, bool, T), RestoreError>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(RestoreSummary, T, Status), RestoreError> {
    let mut got = None;
    let mut status = None;
    let summary = run(
        opts,
        Source::Fill(Box::new(|db, path| {
            let (file, verified, t) = fill(db, path)?;
            got = Some(t);
            Ok((file, verified))
        })),
        progress,
        Some(&mut status),
    )?;
    // A successful restore filled the db and walked it.
    match (got, status) {
        (Some(t), Some(status)) => Ok((summary, t, status)),
        _ => Err(FlagsError::NoSnapshot.into()),
    }
}

/// The staged db at `db_path` that [`restore_filled`]'s `fill` wrote
/// (cut to its body, without a trailer), opened as the snapshot named
/// `name`.
#[cfg(feature = "repo")]
pub(crate) fn open_filled(db_path: &Path, name: &str) -> Result<SnapshotFile, RestoreError> {
    let reopened = File::open(db_path).map_err(RestoreError::io("open", db_path))?;
    Ok(SnapshotFile::from_file(reopened, name)?)
}

/// The restore; `status`, when given, gets the `snapshot status` of the
/// source's db (taken in the walk that checks it).
fn run(
    opts: &RestoreOptions,
    source: Source<'_>,
    progress: &(dyn Fn(Progress) + Sync),
    status: Option<&mut Option<Status>>,
) -> Result<RestoreSummary, RestoreError> {
    // The snapshot is opened first, for `auto` to read its storage version;
    // failing to open it is reported where etcdutl reports it, after the
    // flags and the membership. A location that is not a plain file is
    // only read once it is staged (below): until then `auto` plans as for
    // data without a storage version, and the plan is checked again
    // against what the data says.
    let (location, opened, reader) = match source {
        Source::Reader(r) => (None, None, Some(Incoming::Reader(r))),
        #[cfg(feature = "repo")]
        Source::Fill(f) => (None, None, Some(Incoming::Fill(f))),
        Source::Streamed(loc) => (Some(loc), None, None),
        Source::Plain(path) => (None, Some(SnapshotFile::open(path)), None),
    };
    let storage = opened
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .and_then(|f| f.storage_version().ok().flatten());
    let mut resolved = target::resolve(opts.target, opts.force, storage.as_deref())?;
    let mut version = resolved.target;
    let mut bump = opts.bump(version)?;
    let (cluster, targets) = plan_members(opts, version)?;
    check_targets(&targets, version)?;
    // etcdutl opens the snapshot (no stat first): word a missing one as it
    // does, `open FILE: no such file or directory`.
    let plain = match opened {
        Some(opened) => Some(opened.map_err(|e| match e {
            SnapshotError::Io {
                op: "stat",
                path,
                source,
            } => SnapshotError::Io {
                op: "open",
                path,
                source,
            },
            e => e,
        })?),
        None => None,
    };
    if let Some(f) = &plain
        && f.trailer().is_none()
        && !opts.skip_hash_check
    {
        return Err(RestoreError::MissingHash);
    }
    // A new --out-dir is staged as a whole, so all members appear at once.
    let whole = match &opts.all_members_out_dir {
        Some(dir) if std::fs::symlink_metadata(dir).is_err() => Some(Staged::new(dir)?),
        _ => None,
    };
    let mut staged = targets
        .into_iter()
        .map(|t| StagedMember::new(t, whole.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    if staged.is_empty() {
        return Err(FlagsError::NoMember.into());
    }

    // A location other than a plain file arrives in the first member's db;
    // the others are copied from there.
    let (file, stored, hash_verified, first_dst, storage) = match (plain, (&location, reader)) {
        (Some(f), _) => {
            let stored = f.trailer();
            (
                f,
                stored,
                stored.is_some() && !opts.skip_hash_check,
                0,
                storage,
            )
        }
        (None, incoming @ ((Some(_), _) | (None, Some(_)))) => {
            let m = &staged[0];
            let (f, verified) = match incoming {
                (Some(loc), _) => stream_into_first(loc, &m.db, &m.db_path, opts, progress)?,
                (None, Some(Incoming::Reader(r))) => {
                    stream::receive(r, &m.db, &m.db_path, opts.skip_hash_check, progress)?
                }
                #[cfg(feature = "repo")]
                (None, Some(Incoming::Fill(fill))) => fill(&m.db, &m.db_path)?,
                (None, None) => {
                    return Err(FlagsError::NoSnapshot.into());
                }
            };
            let storage = f.storage_version().ok().flatten();
            let again = target::resolve(opts.target, opts.force, storage.as_deref())?;
            if again.target != version {
                // `auto` meets data of another release: the members must
                // come out the same under its rules.
                let replanned = plan_members(opts, again.target)?;
                let staged_targets: Vec<&MemberTarget> = staged.iter().map(|m| &m.target).collect();
                if replanned.0 != cluster
                    || replanned.1.iter().collect::<Vec<_>>() != staged_targets
                {
                    return Err(FlagsError::TargetVersionNeeded {
                        found: again.target,
                    }
                    .into());
                }
                bump = opts.bump(again.target)?;
            }
            version = again.target;
            resolved = again;
            (f, None, verified, 1, storage)
        }
        (None, (None, None)) => {
            return Err(FlagsError::NoSnapshot.into());
        }
    };
    let dense = opts.dense()?;
    let (src_db, warnings) = {
        // A dense db is laid out anew below: nothing is copied now.
        let dsts: Vec<(&File, &Path)> = staged
            .iter()
            .skip(if dense { staged.len() } else { first_dst })
            .map(|m| (&m.db, m.db_path.as_path()))
            .collect();
        check_and_copy(&file, &dsts, opts, version, stored, status, progress)?
    };
    // The bump is decided on the snapshot as it came (see `bump_revision`).
    let bumped_to = bump.map(|b| dbedit::bump_revision(src_db, b)).transpose()?;
    let written = if dense {
        Some(write_dense(
            &file,
            src_db,
            &mut staged,
            opts,
            version,
            progress,
        )?)
    } else {
        None
    };
    let db = match &written {
        Some((f, _)) => f.db()?,
        None => src_db,
    };
    let changes = dbedit::changes(
        version,
        &cluster.members,
        bumped_to,
        resolved.storage_edit.as_ref(),
    );
    let plan = tx::plan(db, &changes, WriteOptions::default())?;
    // The edits were planned from the source's pages: it must still be the
    // file that was checked. (Checked before the commits, which may write
    // into the source itself when it arrived in the first member's db.)
    if let Some(e) = file.changed() {
        return Err(e.into());
    }
    for m in &staged {
        plan.commit(&m.db)
            .map_err(RestoreError::io("write", &m.db_path))?;
    }

    let n = staged.len() as u64;
    for (i, m) in staged.iter_mut().enumerate() {
        write_raft_files(m, &cluster, version)?;
        progress(Progress::new(Phase::Finish, i as u64 + 1, n));
    }
    let members = publish(staged, whole, version)?;
    Ok(RestoreSummary {
        cluster_id: cluster.cluster_id,
        members,
        consistent_index: cluster.members.len() as u64,
        bumped_to,
        compacted: written.and_then(|(_, c)| c),
        hash_verified,
        warnings,
        target: version,
        target_was_auto: opts.target.is_auto(),
        storage_version: storage,
        storage_version_migrated: resolved.storage_edit.is_some(),
    })
}

/// Copies the body into every member's db on one thread, flushing to disk
/// as it goes (the disk is usually the slowest part), while this thread
/// hashes the body and another checks its structure. Returns the source db
/// once the hash, the check and the copies have all succeeded.
fn check_and_copy<'f>(
    file: &'f SnapshotFile,
    dsts: &[(&File, &Path)],
    opts: &RestoreOptions,
    target: TargetVersion,
    stored: Option<[u8; 32]>,
    status: Option<&mut Option<Status>>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(Db<'f>, Vec<SchemaProblem>), RestoreError> {
    let body_len = file.body_len();
    let total = body_len.saturating_mul(dsts.len() as u64);
    std::thread::scope(|s| {
        let copier = s.spawn(move || -> Result<(), RestoreError> {
            for (i, (dst, path)) in dsts.iter().enumerate() {
                let base = body_len.saturating_mul(i as u64);
                copy::copy_prefix_synced(file.file(), dst, body_len, &|done| {
                    progress(Progress::new(Phase::Copy, base + done, total))
                })
                .map_err(RestoreError::io("copy", *path))?;
            }
            Ok(())
        });
        // With a spare core the structure is checked beside the hash;
        // otherwise after it. Without a hash to compute (a streamed
        // source was hashed as it arrived) the check gets every thread.
        let threads = opts.threads.max(1);
        let to_hash = stored.filter(|_| !opts.skip_hash_check);
        let checker = (threads > 1 && to_hash.is_some() && status.is_none())
            .then(|| s.spawn(move || check_structure(file, 1, target)));
        let hashed = match to_hash {
            Some(stored) => hash::sha256_prefix(file.file(), body_len, &|done| {
                progress(Progress::new(Phase::Hash, done, body_len))
            })
            .map_err(RestoreError::io("read", file.path()))
            .and_then(|computed| match HashCheck::compare(stored, computed) {
                HashCheck::Mismatch { stored, computed } => {
                    Err(RestoreError::HashMismatch { stored, computed })
                }
                _ => Ok(()),
            }),
            None => Ok(()),
        };
        let checked = match (checker, status) {
            // A panic in a worker is a bug: let it reach the caller as one.
            (Some(c), _) => c
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            (None, Some(status)) => {
                check_structure_status(file, threads, target).map(|(db, warnings, found)| {
                    *status = Some(found);
                    (db, warnings)
                })
            }
            (None, None) => check_structure(file, threads, target),
        };
        let copied = copier
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // A source that changed while it was read explains any other
        // failure (a short read, a short copy, garbage in the walk), and
        // makes a success worthless.
        if let Some(e) = file.changed() {
            return Err(e.into());
        }
        hashed?;
        let checked = checked?;
        copied?;
        Ok(checked)
    })
}

/// `--compact`, `--defrag`: lays the (checked) snapshot `db` out densely,
/// compacted if asked, into the first member's staged db, copies that to
/// the other members, and returns it opened (and checked) for the edits,
/// with the revision compacted at. A snapshot that arrived in the first
/// member's db is read from there while the new db is written beside it,
/// then replaced by it.
fn write_dense<'f>(
    file: &'f SnapshotFile,
    db: Db<'f>,
    staged: &mut [StagedMember],
    opts: &RestoreOptions,
    target: TargetVersion,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(SnapshotFile, Option<i64>), RestoreError> {
    let compaction = match opts.compact {
        Some(rev) => {
            let store = Store::from_db(db)
                .map_err(RewriteError::from)?
                .releasing(file.map())
                .with_rules(target);
            Some(store.compaction(rev).map_err(RewriteError::from)?)
        }
        None => None,
    };
    let Some((first, others)) = staged.split_first_mut() else {
        return Err(RestoreError::Flags(FlagsError::NoMember));
    };
    let path = first.db_path.with_file_name("db.dense");
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(RestoreError::io("create", &path))?;
    let src_len = file.body_len();
    let copies = others.len() as u64 + 1;
    let total = src_len.saturating_mul(copies);
    let (len, _) = rewrite::load_dense(file, db, &out, compaction.as_ref(), &|done| {
        progress(Progress::new(Phase::Copy, done.min(src_len), total))
    })?;
    std::fs::rename(&path, &first.db_path).map_err(RestoreError::io("rename", &path))?;
    first.db = out;
    for (i, m) in others.iter().enumerate() {
        let base = src_len.saturating_mul(i as u64 + 1);
        copy::copy_prefix_synced(&first.db, &m.db, len, &|done| {
            progress(Progress::new(Phase::Copy, base + done.min(src_len), total))
        })
        .map_err(RestoreError::io("copy", &m.db_path))?;
    }
    let reopened = first
        .db
        .try_clone()
        .map_err(RestoreError::io("reopen", &first.db_path))?;
    let dense = SnapshotFile::from_file(reopened, &first.db_path)?;
    // What etcd will open is checked as the snapshot was.
    check_structure(&dense, opts.threads.max(1), target)?;
    Ok((dense, compaction.as_ref().map(Compaction::revision)))
}

/// Opens the body as bbolt and runs the structural and etcd-level checks;
/// returns the database and the etcd-level warnings.
fn check_structure(
    file: &SnapshotFile,
    threads: usize,
    target: TargetVersion,
) -> Result<(Db<'_>, Vec<SchemaProblem>), RestoreError> {
    let checks = SchemaChecks::for_target(target);
    let (db, schema, _) = crate::snapshot::walk_checked(file, checks, threads)?;
    Ok((db, schema_found(schema)?))
}

/// [`check_structure`], taking the `snapshot status` in the same walk.
fn check_structure_status(
    file: &SnapshotFile,
    threads: usize,
    target: TargetVersion,
) -> Result<(Db<'_>, Vec<SchemaProblem>, Status), RestoreError> {
    let visitor = (SchemaChecks::for_target(target), StatusVisitor::new(target));
    let (db, (schema, status), _) = crate::snapshot::walk_checked(file, visitor, threads)?;
    let warnings = schema_found(schema)?;
    let status = status.finish(db.size()).map_err(SnapshotError::from)?;
    Ok((db, warnings, status))
}

/// The warnings of a schema check, or its errors.
fn schema_found(schema: SchemaChecks) -> Result<Vec<SchemaProblem>, RestoreError> {
    let found = schema.finish_report();
    if !found.is_ok() {
        let problems: Vec<SchemaProblem> = found.errors().cloned().collect();
        return Err(RestoreError::Schema {
            count: problems.len() as u64 + found.omitted_errors,
            problems,
        });
    }
    Ok(found.warnings().cloned().collect())
}

fn write_raft_files(
    m: &mut StagedMember,
    cluster: &Cluster,
    target: TargetVersion,
) -> Result<(), RestoreError> {
    let fl = flavour(target);
    let wal_members: Vec<WalMember> = cluster
        .members
        .iter()
        .map(|c| WalMember {
            id: c.id,
            context: c.to_json(target).into_bytes(),
        })
        .collect();
    let prefix = restore_wal_prefix(m.target.id, cluster.cluster_id, &wal_members, fl)?;
    let wal_dir = m.layout.wal_dir();
    write_segment_file(&wal_dir.join(segment_file_name(0, 0)), &prefix)?;
    sync_dir(&wal_dir)?;

    // 3.4 and 3.5 create the v2 store members in ascending ID order; 3.6
    // and 3.7 in Go map order, recorded as a rotation of the
    // --initial-cluster order: that order itself is one of them.
    let order: Vec<u64> = if fl.any_member_order() {
        cluster.initial_order.clone()
    } else {
        cluster.member_ids()
    };
    let store: Vec<StoreMember> = order
        .iter()
        .filter_map(|id| cluster.members.iter().find(|c| c.id == *id))
        .map(|c| StoreMember {
            id: c.id,
            peer_urls: c.peer_urls.clone(),
        })
        .collect();
    let snap = restore_snapshot(&store, fl)?;
    let n = cluster.members.len() as u64;
    let snap_dir = m.layout.snap_dir();
    write_snap_file(&snap_dir.join(snap_file_name(1, n)), &encode_snap(&snap))?;
    m.db.sync_all()
        .map_err(RestoreError::io("fsync", &m.db_path))?;
    sync_dir(&snap_dir)?;
    sync_dir(m.layout.member_dir())?;
    sync_dir(m.layout.path())?;
    Ok(())
}

/// The checks of [`restore`] that need no snapshot (the flags, the
/// membership, the data and WAL dirs), for a caller with slow work to do
/// before the restore proper: a point-in-time restore reads every change
/// segment first, minutes of requests in object storage, and a data dir
/// that is not empty would then be refused only at the end. The target
/// is the given one, or for `auto` 3.5's rules (a data dir must be empty,
/// as for every target but 3.4). [`restore`] checks everything again.
#[cfg(feature = "repo")]
pub(crate) fn preflight(opts: &RestoreOptions) -> Result<(), RestoreError> {
    let version = target::resolve(opts.target, opts.force, None)?.target;
    let (_, targets) = plan_members(opts, version)?;
    check_targets(&targets, version)
}

/// Renames every staged directory into place; on failure removes what was
/// already renamed.
fn publish(
    staged: Vec<StagedMember>,
    whole: Option<Staged>,
    target: TargetVersion,
) -> Result<Vec<RestoredMember>, RestoreError> {
    let whole = match whole {
        Some(w) => {
            let shown = w.target().display().to_string();
            Some(w.publish(|| RestoreError::OutDirAppeared(shown))?)
        }
        None => None,
    };
    let mut done: Vec<(Option<Published>, Option<Published>, RestoredMember)> = Vec::new();
    for m in staged {
        let dir = DataDir::new(&m.target.data_dir).with_wal_dir(m.target.wal_dir.clone());
        let shown = dir.path().display().to_string();
        let wal_pub = match m.wal {
            Some(w) => {
                let shown_wal = w.target().display().to_string();
                Some(w.publish(|| RestoreError::WalDirExists(shown_wal))?)
            }
            None => None,
        };
        let data_pub = match m.data {
            Some(d) => Some(d.publish(|| RestoreError::DataDirExists {
                what: if target == TargetVersion::V3_4 {
                    "exists"
                } else {
                    "not empty or could not be read"
                },
                path: shown,
            })?),
            None => None,
        };
        done.push((
            data_pub,
            wal_pub,
            RestoredMember {
                name: m.target.name.clone(),
                id: m.target.id,
                dir,
            },
        ));
    }
    // Everything is in place: nothing is to be removed any more.
    if let Some(w) = whole {
        w.keep();
    }
    Ok(done
        .into_iter()
        .map(|(d, w, r)| {
            if let Some(d) = d {
                d.keep();
            }
            if let Some(w) = w {
                w.keep();
            }
            r
        })
        .collect())
}
