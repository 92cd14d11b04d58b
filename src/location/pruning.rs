//! `snapshot prune`: apply a [`RetentionPolicy`] to the snapshots of a
//! location named by time, deleting the others, but never the newest
//! snapshot that verifies (it is found first, newest to oldest; if none
//! does, nothing is deleted).

use std::time::SystemTime;

use chrono::{DateTime, Utc};
#[cfg(feature = "remote")]
use object_store::ObjectStoreExt;
#[cfg(feature = "remote")]
use object_store::path::Path as ObjectPath;

use super::error::LocationError;
use super::parse::{Location, Target};
use super::retention::{KeepReason, RetentionPolicy};
use super::timestamp::{self, TIME_PLACEHOLDER};
use crate::progress::Progress;
use crate::snapshot::VerifyOptions;

/// How to prune.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct LocationPruneOptions {
    /// What to keep.
    pub policy: RetentionPolicy,
    /// Only report what would be deleted.
    pub dry_run: bool,
}

impl LocationPruneOptions {
    /// Prune by `policy`.
    pub fn new(policy: RetentionPolicy) -> LocationPruneOptions {
        LocationPruneOptions {
            policy,
            dry_run: false,
        }
    }

    /// Only report what would be deleted.
    pub fn with_dry_run(mut self, dry_run: bool) -> LocationPruneOptions {
        self.dry_run = dry_run;
        self
    }
}

/// One snapshot of the series and what became of it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PrunedSnapshot {
    /// Its location.
    pub location: String,
    /// The time in its name.
    pub time: SystemTime,
    /// Why it is kept; empty: deleted (or, in a dry run, to be deleted).
    pub keep: Vec<KeepReason>,
}

/// What a prune found and did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LocationPruneReport {
    /// Every snapshot of the series, newest first.
    pub snapshots: Vec<PrunedSnapshot>,
    /// Snapshots newer than the newest sound one that failed to verify,
    /// with the first problem found.
    pub unsound: Vec<(String, String)>,
    /// Whether this was a dry run (nothing deleted).
    pub dry_run: bool,
}

impl LocationPruneReport {
    /// The snapshots deleted (or to be deleted, in a dry run).
    pub fn deleted(&self) -> impl Iterator<Item = &PrunedSnapshot> {
        self.snapshots.iter().filter(|s| s.keep.is_empty())
    }
}

/// One listed name: shown text, key (or path) and time.
struct Entry {
    text: String,
    key: String,
    time: DateTime<Utc>,
}

/// The series a location text names: `(scheme://bucket/, key text)` for an
/// object store, `("", path)` for a local one.
fn split_text(loc: &Location) -> (String, String) {
    match loc.target() {
        Target::Local(p) => (String::new(), p.to_string_lossy().into_owned()),
        #[cfg(feature = "remote")]
        Target::Remote(_) => {
            let text = loc.as_str();
            let after_scheme = text.find("://").map_or(0, |i| i + 3);
            let key_at = text
                .get(after_scheme..)
                .and_then(|r| r.find('/'))
                .map_or(text.len(), |i| after_scheme + i + 1);
            (
                text.get(..key_at).unwrap_or(text).to_string(),
                text.get(key_at..).unwrap_or("").to_string(),
            )
        }
    }
}

/// What may follow the time in a snapshot's name under a bare prefix: a
/// snapshot file as save names it (`.db`, compressed or not). A `.part`
/// (a save in progress or abandoned) and any other file that merely holds
/// a time in its name (`notes-<time>.txt`, `wal-<time>.tar`) are never
/// candidates.
const SNAPSHOT_SUFFIXES: [&str; 3] = [".db", ".db.zst", ".db.gz"];

/// The time in `name` by the template around `{time}` (`before`,
/// `after`), or, without a placeholder, in a name `before` + anything +
/// time + one of [`SNAPSHOT_SUFFIXES`].
fn time_of(name: &str, before: &str, after: Option<&str>) -> Option<DateTime<Utc>> {
    match after {
        Some(after) => timestamp::time_in(name, before, after),
        None => {
            let rest = name.strip_prefix(before)?;
            SNAPSHOT_SUFFIXES.iter().find_map(|suffix| {
                let stem = rest.strip_suffix(suffix)?;
                let at = stem.len().checked_sub(timestamp::LEN)?;
                stem.get(at..).and_then(timestamp::parse)
            })
        }
    }
}

/// Names directly in the directory part of `before`.
fn list(loc: &Location, before: &str) -> Result<Vec<String>, LocationError> {
    let dir = before.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    match loc.target() {
        Target::Local(_) => {
            let d = if dir.is_empty() && !before.starts_with('/') {
                "."
            } else if dir.is_empty() {
                "/"
            } else {
                dir
            };
            let rd =
                std::fs::read_dir(d).map_err(|e| LocationError::io(loc.as_str(), "list", e))?;
            let mut out = Vec::new();
            for e in rd {
                let e = e.map_err(|e| LocationError::io(loc.as_str(), "list", e))?;
                if e.file_type().is_ok_and(|t| t.is_file()) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    out.push(if dir.is_empty() && !before.starts_with('/') {
                        name
                    } else {
                        format!("{}/{name}", dir.trim_end_matches('/'))
                    });
                }
            }
            Ok(out)
        }
        #[cfg(feature = "remote")]
        Target::Remote(r) => {
            let prefix = (!dir.is_empty()).then(|| ObjectPath::from(dir));
            // Only the objects directly under the prefix, as for a local
            // directory: a plain `list` recurses into every "subdirectory".
            let listed = r
                .block_on(r.store.list_with_delimiter(prefix.as_ref()))
                .map_err(|e| LocationError::transfer(loc.as_str(), "list", e))?;
            match listed {
                Ok(l) => Ok(l
                    .objects
                    .into_iter()
                    .map(|m| m.location.to_string())
                    .collect()),
                Err(e) => Err(LocationError::store(loc.as_str(), "list", e)),
            }
        }
    }
}

/// Applies `opts.policy` to the snapshots of `series`: a location with a
/// `{time}` placeholder (the destination given to save), or a prefix
/// whose names hold a time. The newest snapshot that verifies is kept
/// whatever the policy; when none does, nothing is deleted and an error
/// is returned. `progress` hears the reads of the snapshots verified.
/// Blocks the calling thread while it lists, reads and deletes (see
/// [blocking calls and async code](crate#blocking-calls-and-async-code)).
pub fn prune(
    series: &Location,
    opts: &LocationPruneOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<LocationPruneReport, LocationError> {
    let (base, template) = split_text(series);
    let (before, after) = match template.split_once(TIME_PLACEHOLDER) {
        Some((b, a)) => (b.to_string(), Some(a.to_string())),
        None => (template.clone(), None),
    };
    let mut entries: Vec<Entry> = list(series, &before)?
        .into_iter()
        .filter_map(|key| {
            let time = time_of(&key, &before, after.as_deref())?;
            Some(Entry {
                text: format!("{base}{key}"),
                key,
                time,
            })
        })
        .collect();
    // Newest first; names break ties so the order is stable.
    entries.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.key.cmp(&a.key)));
    let mut report = LocationPruneReport {
        dry_run: opts.dry_run,
        ..LocationPruneReport::default()
    };
    if entries.is_empty() {
        return Ok(report);
    }
    let mut sound = None;
    for (i, e) in entries.iter().enumerate() {
        let loc = series.sibling(e.text.clone(), &e.key);
        let problem = match loc.open_snapshot(progress) {
            Ok(snap) => snap
                .verify(&VerifyOptions::default())
                .problems()
                .first()
                .map(ToString::to_string),
            Err(err) => Some(err.to_string()),
        };
        match problem {
            None => {
                sound = Some(i);
                break;
            }
            Some(p) => report.unsound.push((e.text.clone(), p)),
        }
    }
    let Some(sound) = sound else {
        return Err(LocationError::transfer(
            series.as_str(),
            "prune",
            format!(
                "none of the {} snapshots verifies; nothing deleted",
                entries.len()
            ),
        ));
    };
    let times: Vec<SystemTime> = entries.iter().map(|e| e.time.into()).collect();
    let mut keep = opts.policy.apply(&times);
    if let Some(k) = keep.get_mut(sound) {
        k.push(KeepReason::NewestSound);
    }
    for (e, keep) in entries.into_iter().zip(keep) {
        if keep.is_empty() && !opts.dry_run {
            delete(series, &e)?;
        }
        report.snapshots.push(PrunedSnapshot {
            location: e.text,
            time: e.time.into(),
            keep,
        });
    }
    Ok(report)
}

fn delete(series: &Location, e: &Entry) -> Result<(), LocationError> {
    match series.target() {
        Target::Local(_) => {
            std::fs::remove_file(&e.key).map_err(|err| LocationError::io(&e.text, "delete", err))
        }
        #[cfg(feature = "remote")]
        Target::Remote(r) => r
            .block_on(r.store.delete(&ObjectPath::from(e.key.as_str())))
            .map_err(|err| LocationError::transfer(&e.text, "delete", err))?
            .map_err(|err| LocationError::store(&e.text, "delete", err)),
    }
}
