//! Restoring to a point: `backup restore --to-revision R | --to-time T`
//! and `backup cat ... --to-revision R`.
//!
//! The newest full snapshot at or before the point whose chain of
//! recorded changes reaches it is the base; the chain's segments up to
//! the point are read (each checked, see `deltas.rs`). `restore` streams
//! the base straight into the first member's staged db and commits the
//! changes there in place (`PreparedApply::commit_in_place`: the new
//! revisions appended after the `key` bucket's last entry), which the
//! restore then checks, edits and copies as `snapshot restore` does a
//! file, with every one of its options; `cat` does the same in a
//! temporary file and publishes it atomically. A compaction to apply
//! keeps the dense rewrite of [`crate::rewrite::apply_changes`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::deltas::{parse_name_range, time_ns, walk};
use super::error::{RepoError, Result};
use super::repository::{Repository, SnapshotInfo};
use crate::etcd::change::ChangeSegment;
use crate::etcd::version::TargetChoice;
use crate::etcd::{Status, TargetVersion};
use crate::location::Location;
use crate::progress::Progress;
use crate::restore::stream::receive;
use crate::restore::{
    RestoreError, RestoreOptions, RestoreSummary, SnapshotReader, open_filled, restore_filled,
};
use crate::rewrite::{
    ApplyOptions, ApplySummary, ChangeError, PointInTime, apply_changes, prepare_apply,
    resolve_time,
};
use crate::snapshot::Snapshot;
use crate::snapshot::copy::copy_prefix_synced;

/// The release whose rules an apply to `src` follows: `target`, `auto`
/// resolved by the snapshot's storage version (the newest release when it
/// names none that resolves).
fn apply_target(src: &Snapshot, target: TargetChoice) -> TargetVersion {
    let storage = src.storage_version().ok().flatten();
    let newest = TargetVersion::ALL[TargetVersion::ALL.len() - 1];
    target.resolve(storage.as_deref()).unwrap_or(newest)
}

/// What a point-in-time restore or cat started from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PointPlan {
    /// The full snapshot the changes are applied to.
    pub base: SnapshotInfo,
    /// The segments read (in chain order, up to the point).
    pub segments: Vec<ChangeSegment>,
}

fn describe(to: PointInTime) -> String {
    match to {
        PointInTime::Revision(r) => format!("revision {r}"),
        PointInTime::Time(t) => format!(
            "time {}",
            crate::go::time::rfc3339_utc(time_ns(t).div_euclid(1_000_000_000))
        ),
    }
}

impl Repository {
    /// The full snapshot (`id`, or the newest that can) and the recorded
    /// changes that bring it to `to`: for a revision R, the newest
    /// snapshot at or below R whose chain reaches R with no hole; for a
    /// time T, the newest pushed at or before T whose chain was sealed at
    /// or after T. Only the segments needed are read.
    pub fn plan_point(&self, id: Option<&str>, to: PointInTime) -> Result<PointPlan> {
        let snaps = self.snapshots()?;
        let candidates: Vec<SnapshotInfo> = match id {
            Some(p) => vec![self.find(p)?],
            None => snaps.clone(),
        };
        let chains = self.change_chains(&candidates)?;
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by_key(|&i| {
            let s = &candidates[i];
            std::cmp::Reverse((s.revision, time_ns(s.time)))
        });
        let reaches = |i: usize| -> bool {
            let (s, c) = (&candidates[i], &chains[i]);
            match to {
                PointInTime::Revision(r) => s.revision <= r && r <= c.last_revision,
                PointInTime::Time(t) => {
                    let t = time_ns(t);
                    let end = c.last_sealed.map_or(time_ns(s.time), time_ns);
                    time_ns(s.time) <= t && t <= end.max(time_ns(s.time))
                }
            }
        };
        let Some(pick) = order.iter().copied().find(|&i| reaches(i)) else {
            let ranges: Vec<String> = order
                .iter()
                .rev()
                .map(|&i| {
                    let (s, c) = (&candidates[i], &chains[i]);
                    match to {
                        PointInTime::Revision(_) => {
                            format!("{}: {}..={}", s.id.short(), s.revision, c.last_revision)
                        }
                        PointInTime::Time(_) => format!(
                            "{}: {} .. {}",
                            s.id.short(),
                            crate::go::time::rfc3339_utc(time_ns(s.time).div_euclid(1_000_000_000)),
                            crate::go::time::rfc3339_utc(
                                c.last_sealed
                                    .map_or(time_ns(s.time), time_ns)
                                    .div_euclid(1_000_000_000),
                            )
                        ),
                    }
                })
                .collect();
            return Err(RepoError::PointNotRecorded(format!(
                "{} is not restorable from {}: {}",
                describe(to),
                id.map_or("any snapshot".to_string(), |p| format!("snapshot {p}")),
                if ranges.is_empty() {
                    "the repository holds no snapshot".to_string()
                } else {
                    format!("what can be restored is {}", ranges.join(", "))
                }
            )));
        };
        let base = candidates[pick].clone();
        // One lock for the listing and every read (in object storage a
        // lock is a few requests).
        let _lock = self.lock(false)?;
        let infos = self.delta_infos(&base.id.0)?;
        let ranges: Vec<(String, i64, i64)> = infos
            .iter()
            .filter_map(|i| parse_name_range(&i.name).map(|(f, l)| (i.name.clone(), f, l)))
            .collect();
        let w = walk(base.revision, &ranges);
        let mut segments = Vec::new();
        let mut prev_sealed: Option<SystemTime> = None;
        for i in w.chain {
            let Some(info) = infos.get(i) else { continue };
            let needed = match to {
                // An empty segment (`last = first - 1`: leases and
                // compactions over a quiet period) sits at its `last`:
                // a compaction it records as seen at R applies to a
                // restore at R.
                PointInTime::Revision(r) => info.first <= r || info.last <= r,
                // A segment sealed before T may be followed by revisions
                // observed up to T.
                PointInTime::Time(t) => prev_sealed.is_none_or(|p| p < t),
            };
            if !needed {
                break;
            }
            prev_sealed = Some(info.sealed);
            segments.push(self.read_delta(&base.id.0, &info.name)?);
        }
        Ok(PointPlan { base, segments })
    }

    /// Writes the snapshot as it was at `to` (see
    /// [`plan_point`](Self::plan_point)) to `out`, with a SHA-256 trailer,
    /// published only when complete. `target` decides the rules (`Auto`:
    /// the snapshot's storage version). The base is reassembled into a
    /// temporary file and the changes are committed into it (see
    /// [`restore_point`](Self::restore_point)), unless a compaction is to
    /// be applied: then it is laid out densely into another.
    pub fn cat_point(
        &self,
        id: Option<&str>,
        to: PointInTime,
        out: &Location,
        target: TargetChoice,
    ) -> Result<(PointPlan, ApplySummary)> {
        let plan = self.plan_point(id, to)?;
        let tmp = self.point_tmp()?;
        let (src, path) = self.reassemble(&plan.base, tmp.path())?;
        let opts = ApplyOptions::new(to).with_target(apply_target(&src, target));
        let prepared = prepare_apply(&src, &plan.segments, &opts)?;
        let done = if prepared.in_place() {
            let f = writable(&path)?;
            prepared.publish_in_place(&f, &path, out)?
        } else {
            drop(prepared);
            apply_changes(&src, &plan.segments, out, &opts)?
        };
        Ok((plan, done))
    }

    /// Restores the snapshot as it was at `to` (see
    /// [`plan_point`](Self::plan_point)) as [`crate::restore()`] restores a
    /// file, with every option of `opts`.
    ///
    /// The base streams from the repository straight into the first
    /// member's staged db (checked against the SHA-256 recorded at push
    /// time) and the changes are committed into it there as one bbolt
    /// transaction that appends the new revisions after the `key`
    /// bucket's last entry, touching only the pages on that path and the
    /// `lease` bucket's; the restore then checks it (one walk, which also
    /// takes its status), edits it and copies it as `snapshot restore`
    /// does a file. The member db is the one `backup cat --to-revision`
    /// and `snapshot restore` of its output give. A compaction to apply
    /// rewrites the whole `key` bucket: the base is then moved aside and
    /// laid out densely back into the staged db.
    ///
    /// The flags and the data dirs are checked before anything is read:
    /// a data dir that is not empty is refused first, as the restore
    /// proper would refuse it after reading every change segment.
    pub fn restore_point(
        &self,
        id: Option<&str>,
        to: PointInTime,
        opts: &RestoreOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<(PointPlan, ApplySummary, RestoreSummary)> {
        // A data dir that would be refused is refused before the segments
        // are read (all of them, in object storage a request each).
        crate::restore::preflight(opts)?;
        let plan = self.plan_point(id, to)?;
        let tmp = self.point_tmp()?;
        let name = format!(
            "{} snapshot {} at {}",
            self.location(),
            plan.base.id,
            describe(to)
        );
        let shown = PathBuf::from(&name);
        let segments = &plan.segments;
        let at = match to {
            PointInTime::Revision(r) => r,
            PointInTime::Time(t) => resolve_time(plan.base.revision, segments, t),
        };
        let compacts = segments
            .iter()
            .flat_map(|s| &s.compactions)
            .any(|c| c.seen_at_revision <= at);
        if compacts {
            // A compaction to apply rewrites the whole `key` bucket: the
            // base is reassembled aside and laid out densely into the
            // staged db (or, when the compaction turns out to change
            // nothing, applied there and copied).
            let (src, aside) = self.reassemble(&plan.base, tmp.path())?;
            let apply = ApplyOptions::new(to).with_target(apply_target(&src, opts.target));
            let prepared = prepare_apply(&src, segments, &apply)?;
            let (restored, applied, status) = restore_filled(
                opts,
                |db, path| {
                    let applied: Box<dyn FnOnce(Status) -> ApplySummary> = if prepared.in_place() {
                        let mut prepared = prepared;
                        let f = File::options()
                            .read(true)
                            .write(true)
                            .open(&aside)
                            .map_err(RestoreError::io("open", &aside))?;
                        let len = prepared.commit_in_place(&f, &shown)?;
                        copy_prefix_synced(&f, db, len, &|_| {})
                            .map_err(RestoreError::io("copy", path))?;
                        Box::new(prepared.applied(name.clone(), len))
                    } else {
                        let (_, summary) = prepared.write_into(db, &shown)?;
                        Box::new(move |status| ApplySummary { status, ..summary })
                    };
                    Ok((open_filled(path, &name)?, true, applied))
                },
                progress,
            )?;
            return Ok((plan, applied(status), restored));
        }
        let fill = |source: SnapshotReader<'_>,
                    db: &File,
                    path: &Path|
         -> std::result::Result<_, RestoreError> {
            let (file, verified) = receive(source, db, path, opts.skip_hash_check, progress)?;
            let src = Snapshot::from_file(file);
            let apply = ApplyOptions::new(to).with_target(apply_target(&src, opts.target));
            // Refusals (a chain that does not reach, a damaged base) come
            // before anything is written.
            let mut prepared = prepare_apply(&src, segments, &apply)?;
            if !prepared.in_place() {
                // Only a compaction is applied otherwise (see above).
                return Err(
                    crate::rewrite::RewriteError::from(ChangeError::Inconsistent {
                        segment: 0,
                        first: plan.base.revision,
                        last: at,
                        what: "a compaction applies that no segment records".into(),
                    })
                    .into(),
                );
            }
            let len = prepared.commit_in_place(db, &shown)?;
            let applied = prepared.applied(name.clone(), len);
            // The base matched its recorded SHA-256; the restore walks
            // the result with every structural check.
            Ok((open_filled(path, &name)?, verified, applied))
        };
        let (restored, applied, status) = self
            .with_snapshot_reader(&plan.base.id.to_string(), |source| {
                restore_filled(opts, |db, path| fill(source, db, path), progress)
            })??;
        Ok((plan, applied(status), restored))
    }

    /// A temporary directory for reassembled and applied snapshots, beside
    /// the index (as `check` reassembles), removed when dropped.
    fn point_tmp(&self) -> Result<tempfile::TempDir> {
        let dir = self.backend.index_dir().join("tmp");
        std::fs::create_dir_all(&dir).map_err(RepoError::io("mkdir", &dir))?;
        tempfile::Builder::new()
            .prefix("point")
            .tempdir_in(&dir)
            .map_err(RepoError::io("create", &dir))
    }

    /// Reassembles `base` into `dir/base.db` (checked against its SHA-256),
    /// cuts it to its body (to be written in place) and opens it.
    fn reassemble(&self, base: &SnapshotInfo, dir: &Path) -> Result<(Snapshot, PathBuf)> {
        let path: PathBuf = dir.join("base.db");
        let mut f = File::create(&path).map_err(RepoError::io("create", &path))?;
        self.cat(&base.id.to_string(), &mut f)?;
        let body = Snapshot::open(&path)?.body_len();
        f.set_len(body).map_err(RepoError::io("truncate", &path))?;
        drop(f);
        Ok((Snapshot::open(&path)?, path))
    }
}

/// `path` opened for reading and writing.
fn writable(path: &Path) -> Result<File> {
    File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(RepoError::io("open", path))
}
