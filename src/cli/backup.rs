//! `etcdsnap backup ...`: the backup repository commands.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use super::format::{humanize, time};
use clap::{Args, Subcommand};
use etcdsnap::repo::{
    ChangeChain, CheckOptions, CheckProblem, MasterKey, PointPlan, PruneOptions, PruneReport,
    PushOptions, RepoError, Repository, SnapshotInfo,
};
use etcdsnap::{ApplySummary, Location, PointInTime, RetentionPolicy, SaveOptions};
use serde_json::json;

use super::global::GlobalArgs;
use super::progress::Bar;
use super::restore::{failure as restore_error, options, print_summary};
use super::{EXIT_BAD_ARGS, EXIT_ERROR, Failure, RestoreFlags, json_or_simple};

#[derive(Subcommand, Debug)]
pub(super) enum BackupCommand {
    /// Create a repository in a new or empty directory
    Init(InitArgs),
    /// Store a snapshot file, keeping only the pages the repository does not have
    Push(PushArgs),
    /// List the snapshots: ID, time, revision, size, bytes the push added
    Ls(RepoArgs),
    /// Restore a stored snapshot into member data dirs (every `snapshot restore` flag), or the
    /// cluster as it was at --to-revision/--to-time from a snapshot and its recorded changes
    Restore(Box<RestoreFromRepoArgs>),
    /// Write a stored snapshot's exact bytes to standard output (or -o FILE), or the snapshot
    /// as it was at --to-revision/--to-time
    Cat(CatArgs),
    /// Check packs, lists, manifests and the index; name the snapshots damage affects
    Check(CheckArgs),
    /// Remove snapshots by ID or by --keep-* rules (their pages stay until a prune)
    Forget(ForgetArgs),
    /// Remove snapshots by ID or --keep-* rules, then every page no snapshot uses
    Prune(ForgetArgs),
    /// Rebuild the index from the packs, lists and manifests
    RebuildIndex(RepoArgs),
    /// Remove locks whose holders are gone (in object storage: not renewed for 30 minutes)
    Unlock(UnlockArgs),
}

#[derive(Args, Debug)]
pub(super) struct UnlockArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Remove every lock, also those of commands that may still run (only when every holder
    /// is known to be gone)
    #[arg(long)]
    all: bool,
}

#[derive(Args, Debug)]
pub(super) struct RepoArgs {
    /// The repository: a directory, or a prefix in object storage (s3://BUCKET/PREFIX,
    /// gs://..., az://...)
    #[arg(value_name = "REPO")]
    repo: PathBuf,
    /// Key file of an encrypted repository (64 hex digits)
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(super) struct InitArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Encrypt everything stored (XChaCha20-Poly1305) with the key in --key-file, which is
    /// created with a new random key if it does not exist
    #[arg(long)]
    encrypt: bool,
}

#[derive(Args, Debug)]
pub(super) struct PushArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The snapshot: a file, a `.zst`/`.gz` file or a URL (s3://, gs://, az://, file://), or
    /// --from-endpoint
    #[arg(value_name = "SNAPSHOT", required_unless_present = "from_endpoint")]
    snapshot: Option<PathBuf>,
    /// Take the snapshot from a live etcd instead, as `snapshot save` does, with etcdctl's
    /// global flags (--endpoints, --cacert, --cert, --key, --user ...); ENDPOINT overrides
    /// --endpoints
    #[arg(long, value_name = "ENDPOINT", num_args = 0..=1, default_missing_value = "", conflicts_with = "snapshot")]
    from_endpoint: Option<String>,
    /// Store a file without a (matching) SHA-256 trailer, e.g. a raw member/snap/db copy
    #[arg(long)]
    skip_hash_check: bool,
    /// Record the file's modification time as the snapshot's time (for importing older
    /// snapshots; retention rules go by it) instead of now
    #[arg(long)]
    time_from_file: bool,
    /// zstd level for new pages (1-19); pages where zstd's fastest setting does as well
    /// (within 1/64, tried on every 16th page of each 2 MiB block) get that instead
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    compression_level: i32,
    /// Whose rules the etcd-level checks follow before the snapshot is stored, as for
    /// `snapshot verify`: auto (the snapshot's storage version), 3.4, 3.5, 3.6 or 3.7
    #[arg(long, value_name = "VERSION", default_value = "auto")]
    target_version: String,
}

#[derive(Args, Debug)]
pub(super) struct PointArgs {
    /// The cluster as it was at this revision: the newest snapshot at or below it (or ID) with
    /// the changes recorded after it (`etcdsnap agent`)
    #[arg(long, value_name = "REVISION", conflicts_with = "to_time",
          value_parser = clap::value_parser!(i64).range(1..))]
    to_revision: Option<i64>,
    /// The cluster as it was at this time (RFC 3339, e.g. 2026-12-06T08:00:00Z): the newest
    /// revision recorded as observed by then
    #[arg(long, value_name = "TIME")]
    to_time: Option<String>,
}

impl PointArgs {
    /// The point asked for, if any.
    fn point(&self) -> Result<Option<PointInTime>, Failure> {
        match (self.to_revision, &self.to_time) {
            (Some(r), _) => Ok(Some(PointInTime::Revision(r))),
            (None, Some(t)) => {
                let parsed = chrono::DateTime::parse_from_rfc3339(t).map_err(|e| {
                    Failure::new(
                        EXIT_BAD_ARGS,
                        format!("--to-time {t:?}: {e} (give an RFC 3339 time such as 2026-12-06T08:00:00Z)"),
                    )
                })?;
                Ok(Some(PointInTime::Time(std::time::SystemTime::from(parsed))))
            }
            (None, None) => Ok(None),
        }
    }
}

#[derive(Args, Debug)]
pub(super) struct RestoreFromRepoArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Snapshot ID (or a unique prefix of at least 4 hex digits); with --to-revision or
    /// --to-time, the newest snapshot that reaches the point when absent
    #[arg(value_name = "ID")]
    id: Option<String>,
    #[command(flatten)]
    point: PointArgs,
    #[command(flatten)]
    flags: RestoreFlags,
}

#[derive(Args, Debug)]
pub(super) struct CatArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Snapshot ID (or a unique prefix of at least 4 hex digits); with --to-revision or
    /// --to-time, the newest snapshot that reaches the point when absent
    #[arg(value_name = "ID")]
    id: Option<String>,
    #[command(flatten)]
    point: PointArgs,
    /// Write the snapshot to this file (or location: s3://, gs://, az://) instead of standard
    /// output, published only when complete
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Whose rules apply the recorded changes (with --to-revision/--to-time): auto (the
    /// snapshot's storage version), 3.4, 3.5, 3.6 or 3.7
    #[arg(long, value_name = "VERSION", default_value = "auto")]
    target_version: String,
}

/// The snapshot ID a command without a point needs.
fn need_id<'a>(id: &'a Option<String>, what: &str) -> Result<&'a str, Failure> {
    id.as_deref().ok_or_else(|| {
        Failure::new(
            EXIT_BAD_ARGS,
            format!("{what} needs a snapshot ID, or --to-revision/--to-time"),
        )
    })
}

/// What a point-in-time command applied, on standard error.
fn applied_note(plan: &PointPlan, done: &ApplySummary) {
    eprintln!(
        "applied {} revisions ({} events) recorded after snapshot {} (revision {}): at revision {}{}",
        done.revisions,
        done.events,
        plan.base.id.short(),
        plan.base.revision,
        done.revision,
        done.compacted
            .map(|c| format!(", compacted at {c}"))
            .unwrap_or_default()
    );
}

#[derive(Args, Debug)]
pub(super) struct CheckArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Also read every pack in full and verify every page
    #[arg(long)]
    read_data: bool,
}

#[derive(Args, Debug)]
pub(super) struct ForgetArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Snapshot IDs to remove (instead of --keep-* rules)
    #[arg(value_name = "ID")]
    ids: Vec<String>,
    #[command(flatten)]
    keep: KeepArgs,
    /// Only print what would be removed
    #[arg(long)]
    dry_run: bool,
}

/// The `--keep-*` retention rules of a repository, for `backup forget` and
/// `backup prune` and for the agent (which words their help for when it
/// applies them; see `agent::AgentArgs`). 0 leaves a rule out.
#[derive(Args, Debug)]
pub(super) struct KeepArgs {
    /// Keep the N newest snapshots
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_last: u32,
    /// Keep the newest snapshot of each of the N most recent hours (UTC)
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_hourly: u32,
    /// Keep the newest snapshot of each of the N most recent days (UTC)
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_daily: u32,
    /// Keep the newest snapshot of each of the N most recent ISO weeks (UTC)
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_weekly: u32,
}

impl KeepArgs {
    /// The retention policy the flags give.
    pub(super) fn policy(&self) -> RetentionPolicy {
        RetentionPolicy::last(self.keep_last as usize)
            .with_hourly(self.keep_hourly as usize)
            .with_daily(self.keep_daily as usize)
            .with_weekly(self.keep_weekly as usize)
    }
}

/// A repository error as the CLI prints it.
pub(super) fn fail(e: RepoError) -> Failure {
    match e {
        // The key comes from --key-file here.
        RepoError::KeyNeeded => Failure::new(
            EXIT_ERROR,
            "this repository is encrypted: pass --key-file with its key",
        ),
        RepoError::NotEncrypted => Failure::new(
            EXIT_ERROR,
            "this repository is not encrypted: do not pass --key-file",
        ),
        RepoError::WrongKey => Failure::new(
            EXIT_ERROR,
            "the key file does not hold this repository's key",
        ),
        // The rules come from these flags here.
        RepoError::PruneSelection => Failure::new(
            EXIT_BAD_ARGS,
            "give snapshot IDs, or at least one --keep-last/--keep-hourly/--keep-daily/--keep-weekly rule (not both)",
        ),
        RepoError::Restore(r) => restore_error(r),
        RepoError::Save(s) => Failure::new(super::save::exit_code(&s), s),
        // The library says what is wrong; the flag that overrides it is
        // the binary's to name.
        e @ RepoError::TrailerMismatch { .. } => Failure::new(
            EXIT_ERROR,
            format!("{e}; pass --skip-hash-check to store it anyway"),
        ),
        e @ RepoError::TargetVersion { .. } => {
            Failure::new(EXIT_ERROR, format!("{e}; pass --target-version"))
        }
        RepoError::Location(l) => Failure::new(EXIT_ERROR, l),
        RepoError::Usage(u) => Failure::new(EXIT_BAD_ARGS, u),
        other => Failure::new(EXIT_ERROR, other),
    }
}

fn key(a: &RepoArgs) -> Result<Option<MasterKey>, Failure> {
    a.key_file
        .as_deref()
        .map(MasterKey::from_file)
        .transpose()
        .map_err(fail)
}

fn open(a: &RepoArgs) -> Result<Repository, Failure> {
    let key = key(a)?;
    let mut repo = match a.repo.to_str() {
        Some(text) => Repository::open_at_with(text, key.as_ref(), &super::location_options()?),
        None => Repository::open_dir(&a.repo, key.as_ref()),
    }
    .map_err(fail)?;
    // A command that waits for the lock says what for, and until when.
    repo.on_lock_wait(|m| eprintln!("{m}"));
    Ok(repo)
}

fn info_json(i: &SnapshotInfo) -> serde_json::Value {
    json!({
        "id": i.id.to_string(),
        "time": time::utc(i.time),
        "revision": i.revision,
        "size": i.size,
        "newBytes": i.new_bytes,
        "pageSize": i.page_size,
        "chunks": i.chunks,
        "sha256": i.sha256.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "source": i.source,
    })
}

/// Left-aligned columns separated by two spaces.
fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn listing(snaps: &[&SnapshotInfo]) -> String {
    listing_with(snaps, None)
}

/// The table of snapshots; with their chains of recorded changes, also
/// the revision and time each restores to and the holes.
fn listing_with(snaps: &[&SnapshotInfo], chains: Option<&[ChangeChain]>) -> String {
    let mut head = vec!["ID", "TIME", "REVISION", "SIZE", "NEW"];
    if chains.is_some() {
        head.extend(["RESTORES TO REVISION", "RESTORES TO TIME", "GAPS"]);
    }
    head.push("SOURCE");
    let mut rows = vec![head.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    for (n, i) in snaps.iter().enumerate() {
        let mut row = vec![
            i.id.short(),
            time::utc(i.time),
            i.revision.to_string(),
            humanize::bytes(i.size),
            humanize::bytes(i.new_bytes),
        ];
        if let Some(c) = chains.and_then(|c| c.get(n)) {
            let gaps: Vec<String> = c
                .gaps
                .iter()
                .map(|(f, t)| {
                    if f == t {
                        f.to_string()
                    } else {
                        format!("{f}-{t}")
                    }
                })
                .collect();
            row.extend([
                c.last_revision.to_string(),
                time::utc(chain_end(i, c)),
                if gaps.is_empty() {
                    "-".into()
                } else {
                    gaps.join(",")
                },
            ]);
        }
        row.push(i.source.clone());
        rows.push(row);
    }
    columns(&rows)
}

pub(super) fn run(c: &BackupCommand, global: &GlobalArgs, write_out: &str) -> Result<(), Failure> {
    match c {
        BackupCommand::Init(a) => init(a),
        BackupCommand::Push(a) => push(a, global, write_out),
        BackupCommand::Ls(a) => ls(a, write_out),
        BackupCommand::Restore(a) => restore(a, write_out),
        BackupCommand::Cat(a) => cat(a),
        BackupCommand::Check(a) => check(a, write_out),
        BackupCommand::Forget(a) => forget(a, false, write_out),
        BackupCommand::Prune(a) => forget(a, true, write_out),
        BackupCommand::RebuildIndex(a) => {
            let damaged = open(a)?.rebuild_index().map_err(fail)?;
            for (obj, why) in &damaged {
                eprintln!("left out {obj}: {why}");
            }
            println!("Rebuilt the index of {}", a.repo.display());
            Ok(())
        }
        BackupCommand::Unlock(a) => unlock(a),
    }
}

fn unlock(a: &UnlockArgs) -> Result<(), Failure> {
    let r = open(&a.repo)?.unlock(a.all).map_err(fail)?;
    for l in &r.removed {
        println!("removed lock {l}");
    }
    for l in &r.held {
        println!("still held: {l}");
    }
    if let Some(n) = &r.note {
        println!("{n}");
    } else if r.removed.is_empty() {
        println!(
            "no {}lock to remove in {}",
            if a.all { "" } else { "stale " },
            a.repo.repo.display()
        );
    }
    Ok(())
}

fn init(a: &InitArgs) -> Result<(), Failure> {
    let key = match (&a.repo.key_file, a.encrypt) {
        // The key file is made only once the location is known to take a
        // repository.
        (Some(f), true) if !f.exists() => {
            let text = a.repo.repo.to_str().ok_or_else(|| {
                Failure::new(EXIT_BAD_ARGS, "the repository path is not valid UTF-8")
            })?;
            let repo = Repository::init_at_with_new_key(text, f).map_err(fail)?;
            return created(a, &repo);
        }
        (Some(_), true) => key(&a.repo)?,
        (None, true) => {
            return Err(Failure::new(
                EXIT_BAD_ARGS,
                "--encrypt needs --key-file FILE (created with a new key if missing)",
            ));
        }
        (Some(_), false) => {
            return Err(Failure::new(
                EXIT_BAD_ARGS,
                "--key-file at init needs --encrypt",
            ));
        }
        (None, false) => None,
    };
    let repo = match a.repo.repo.to_str() {
        Some(text) => Repository::init_at_with(text, key.as_ref(), &super::location_options()?),
        None => Repository::init_dir(&a.repo.repo, key.as_ref()),
    }
    .map_err(fail)?;
    created(a, &repo)
}

fn created(a: &InitArgs, repo: &Repository) -> Result<(), Failure> {
    println!("Created repository at {}", a.repo.repo.display());
    if repo.is_encrypted() {
        println!(
            "Encrypted with the key in {}: keep a copy elsewhere, without it the backups cannot be read",
            a.repo
                .key_file
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display()
        );
    }
    Ok(())
}

/// Whether SNAPSHOT is a local, uncompressed file (pushed in place) rather
/// than a URL or a `.zst`/`.gz` file (read once into a temporary copy).
fn is_plain_file(p: &std::path::Path) -> bool {
    match p.to_str().map(Location::parse) {
        Some(Ok(loc)) => loc.local_path().is_some() && loc.is_plain_file(),
        _ => true,
    }
}

/// `snapshot save`'s options from the global flags and ETCDCTL_* variables.
fn save_options(global: &GlobalArgs, endpoint: &str) -> Result<SaveOptions, Failure> {
    let mut global = global.with_process_env()?;
    if !endpoint.is_empty() {
        global.endpoints = Some(endpoint.to_string());
    }
    global.save_options_prompting(PathBuf::from("(backup push)"))
}

fn push(a: &PushArgs, global: &GlobalArgs, write_out: &str) -> Result<(), Failure> {
    let json = json_or_simple(write_out, "backup push")?;
    let repo = open(&a.repo)?;
    let mut opts = PushOptions::default()
        .with_skip_hash_check(a.skip_hash_check)
        .with_compression_level(a.compression_level)
        .with_target(super::target_choice(&a.target_version)?);
    // A signal stops the push where it is (every step is crash-safe),
    // removing a snapshot being received from an endpoint.
    super::interrupt::install(super::interrupt::Mode::Immediate("the push did not finish"))?;
    let bar = Bar::new();
    let result = match (&a.snapshot, &a.from_endpoint) {
        (Some(file), _) if !is_plain_file(file) => {
            if a.time_from_file {
                return Err(Failure::new(
                    EXIT_BAD_ARGS,
                    "--time-from-file needs a local, uncompressed SNAPSHOT file",
                ));
            }
            let text = file.to_string_lossy();
            let loc = Location::parse_with(&text, &super::location_options()?)
                .map_err(|e| Failure::new(EXIT_ERROR, e))?;
            repo.push_location(&loc, &opts, &|p| bar.update(p))
        }
        (Some(file), _) => {
            if a.time_from_file {
                let mtime = std::fs::metadata(file)
                    .and_then(|m| m.modified())
                    .map_err(|e| {
                        Failure::new(EXIT_ERROR, format!("stat {}: {e}", file.display()))
                    })?;
                opts = opts.with_time(mtime);
            }
            repo.push_with_progress(file, &opts, &|p| bar.update(p))
        }
        (None, Some(endpoint)) => {
            if a.time_from_file {
                return Err(Failure::new(
                    EXIT_BAD_ARGS,
                    "--time-from-file needs a SNAPSHOT file",
                ));
            }
            let so = save_options(global, endpoint)?;
            repo.push_from_endpoint(&so, &opts, &|p| bar.update(p))
        }
        (None, None) => {
            return Err(Failure::new(
                EXIT_BAD_ARGS,
                "backup push needs SNAPSHOT or --from-endpoint",
            ));
        }
    };
    bar.finish();
    let s = result.map_err(fail)?;
    if json {
        let mut v = info_json(&s.info);
        if let Some(o) = v.as_object_mut() {
            o.insert("newChunks".into(), json!(s.new_chunks));
            o.insert("packs".into(), json!(s.packs));
            o.insert("deltaList".into(), json!(s.delta_list));
        }
        println!("{v}");
    } else {
        println!(
            "Pushed snapshot {} (revision {}, {}): {} of {} pages new, {} stored",
            s.info.id.short(),
            s.info.revision,
            humanize::bytes(s.info.size),
            s.new_chunks,
            s.chunks,
            humanize::bytes(s.info.new_bytes)
        );
    }
    Ok(())
}

fn ls(a: &RepoArgs, write_out: &str) -> Result<(), Failure> {
    let json = json_or_simple(write_out, "backup ls")?;
    let repo = open(a)?;
    let snaps = repo.snapshots().map_err(fail)?;
    let chains = repo.change_chains(&snaps).map_err(fail)?;
    if json {
        let v: Vec<_> = snaps
            .iter()
            .zip(&chains)
            .map(|(i, c)| {
                let mut v = info_json(i);
                if let Some(o) = v.as_object_mut() {
                    o.insert("restorable".into(), restorable_json(i, c));
                }
                v
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
    } else if chains.iter().all(|c| c.segments == 0) {
        print!("{}", listing(&snaps.iter().collect::<Vec<_>>()));
    } else {
        let refs: Vec<&SnapshotInfo> = snaps.iter().collect();
        print!("{}", listing_with(&refs, Some(&chains)));
    }
    Ok(())
}

/// The revision and time range a snapshot and its recorded changes can
/// restore (the last contiguous segment's end), and the holes after it.
fn restorable_json(i: &SnapshotInfo, c: &ChangeChain) -> serde_json::Value {
    json!({
        "fromRevision": i.revision,
        "toRevision": c.last_revision,
        "fromTime": time::utc(i.time),
        "toTime": time::utc(chain_end(i, c)),
        "segments": c.segments,
        "gaps": c.gaps.iter().map(|(f, t)| json!({"from": f, "to": t})).collect::<Vec<_>>(),
        "overlaps": c.overlaps,
    })
}

/// When the chain's last contiguous segment was sealed (the snapshot's
/// own time without one).
fn chain_end(i: &SnapshotInfo, c: &ChangeChain) -> std::time::SystemTime {
    c.last_sealed.unwrap_or(i.time)
}

fn restore(a: &RestoreFromRepoArgs, write_out: &str) -> Result<(), Failure> {
    let json = json_or_simple(write_out, "restore")?;
    let point = a.point.point()?;
    let id = match point {
        Some(_) => None,
        None => Some(need_id(&a.id, "backup restore")?),
    };
    let repo = open(&a.repo)?;
    let opts = options(&a.flags)?;
    // A signal removes the staged dirs and exits (128 + the signal).
    super::interrupt::install(super::interrupt::Mode::Immediate("nothing restored"))?;
    let bar = Bar::new();
    let result = match point {
        Some(to) => repo
            .restore_point(a.id.as_deref(), to, &opts, &|p| bar.update(p))
            .map(|(plan, done, summary)| (Some((plan, done)), summary)),
        // need_id gave an ID when there is no point.
        None => repo
            .restore(id.unwrap_or_default(), &opts, &|p| bar.update(p))
            .map(|s| (None, s)),
    };
    bar.finish();
    let (applied, summary) = result.map_err(fail)?;
    if let Some((plan, done)) = &applied {
        applied_note(plan, done);
    }
    print_summary(&summary, json);
    Ok(())
}

/// A [`LocationWriter`] as an [`std::io::Write`], for `backup cat -o` (its
/// errors kept as the io error's source).
struct ToLocation(etcdsnap::LocationWriter);

impl std::io::Write for ToLocation {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn cat(a: &CatArgs) -> Result<(), Failure> {
    let point = a.point.point()?;
    let out = std::io::stdout();
    if a.output.is_none() && out.is_terminal() {
        return Err(Failure::new(
            EXIT_BAD_ARGS,
            "refusing to write a snapshot to a terminal: redirect it, e.g. `> snap.db`, or give -o FILE",
        ));
    }
    let target = super::target_choice(&a.target_version)?;
    let repo = open(&a.repo)?;
    let text = |p: &std::path::Path| {
        p.to_str()
            .map(str::to_string)
            .ok_or_else(|| Failure::new(EXIT_BAD_ARGS, "-o: the path is not valid UTF-8"))
    };
    let Some(to) = point else {
        let id = need_id(&a.id, "backup cat")?;
        if let Some(file) = &a.output {
            // A location, as with --to-revision and `snapshot save`: FILE.part
            // beside FILE, fsynced, renamed over it and the directory fsynced
            // (a kill leaves the old FILE or the whole new one, and at most
            // FILE.part, which the next run truncates; a signal removes it);
            // `.zst`/`.gz` and object-store URLs are written as they say.
            let loc = Location::parse_with(&text(file)?, &super::location_options()?)
                .map_err(|e| Failure::new(EXIT_ERROR, e))?;
            let mut w = ToLocation(loc.create().map_err(|e| Failure::new(EXIT_ERROR, e))?);
            repo.cat(id, &mut w).map_err(fail)?;
            w.0.finish().map_err(|e| Failure::new(EXIT_ERROR, e))?;
            w.0.publish().map_err(|e| Failure::new(EXIT_ERROR, e))?;
            return Ok(());
        }
        let mut lock = out.lock();
        repo.cat(id, &mut lock).map_err(fail)?;
        lock.flush()
            .map_err(|e| Failure::new(EXIT_ERROR, format!("write standard output: {e}")))?;
        return Ok(());
    };
    match &a.output {
        Some(file) => {
            let loc = Location::parse_with(&text(file)?, &super::location_options()?)
                .map_err(|e| Failure::new(EXIT_ERROR, e))?;
            let (plan, done) = repo
                .cat_point(a.id.as_deref(), to, &loc, target)
                .map_err(fail)?;
            applied_note(&plan, &done);
        }
        None => {
            let dir = tempfile::tempdir().map_err(|e| {
                Failure::new(EXIT_ERROR, format!("create a temporary directory: {e}"))
            })?;
            let tmp = dir.path().join("at.db");
            let loc = Location::parse(&text(&tmp)?).map_err(|e| Failure::new(EXIT_ERROR, e))?;
            let (plan, done) = repo
                .cat_point(a.id.as_deref(), to, &loc, target)
                .map_err(fail)?;
            applied_note(&plan, &done);
            let mut f = std::fs::File::open(&tmp)
                .map_err(|e| Failure::new(EXIT_ERROR, format!("open {}: {e}", tmp.display())))?;
            let mut lock = out.lock();
            std::io::copy(&mut f, &mut lock)
                .and_then(|_| lock.flush())
                .map_err(|e| Failure::new(EXIT_ERROR, format!("write standard output: {e}")))?;
        }
    }
    Ok(())
}

/// A check problem as the CLI prints it: the library's text, with the flag
/// that goes further where it says what was left unread.
fn check_problem(p: &CheckProblem) -> String {
    match p {
        CheckProblem::PackTrailer {
            source,
            read_data: false,
        } => format!(
            "{source} (the index cannot be rebuilt from this pack; `check --read-data` verifies its chunks)"
        ),
        p => p.to_string(),
    }
}

fn check(a: &CheckArgs, write_out: &str) -> Result<(), Failure> {
    let json = json_or_simple(write_out, "backup check")?;
    let repo = open(&a.repo)?;
    let opts = CheckOptions::default().with_read_data(a.read_data);
    let r = repo.check(&opts).map_err(fail)?;
    if json {
        let v = json!({
            "ok": r.is_ok(),
            "problems": r.problems.iter().map(check_problem).collect::<Vec<_>>(),
            "affectedSnapshots": r.affected.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            "notes": r.notes,
            "snapshots": r.snapshots,
            "packs": r.packs,
            "chunks": r.chunks,
            "bytesRead": r.bytes_read,
            "deltas": r.deltas,
        });
        println!("{v}");
    } else {
        for p in &r.problems {
            println!("error: {}", check_problem(p));
        }
        for n in &r.notes {
            println!("note: {n}");
        }
        if !r.affected.is_empty() {
            let ids: Vec<String> = r.affected.iter().map(|i| i.short()).collect();
            println!("snapshots affected: {}", ids.join(" "));
        }
        println!(
            "checked {} snapshots, {} packs, {} pages{}{}",
            r.snapshots,
            r.packs,
            r.chunks,
            if r.deltas > 0 {
                format!(", {} delta segments", r.deltas)
            } else {
                String::new()
            },
            if a.read_data {
                format!(", read {}", humanize::bytes(r.bytes_read))
            } else {
                String::new()
            }
        );
        if r.is_ok() {
            println!("no errors were found");
        }
    }
    if r.is_ok() {
        Ok(())
    } else {
        Err(Failure::new(
            EXIT_ERROR,
            format!(
                "{} problems found in {}",
                r.problems.len(),
                a.repo.repo.display()
            ),
        ))
    }
}

fn forget(a: &ForgetArgs, prune: bool, write_out: &str) -> Result<(), Failure> {
    let json = json_or_simple(
        write_out,
        if prune {
            "backup prune"
        } else {
            "backup forget"
        },
    )?;
    let repo = open(&a.repo)?;
    let opts = PruneOptions::default()
        .with_keep(a.keep.policy())
        .with_ids(a.ids.iter().cloned())
        .with_dry_run(a.dry_run);
    let r: PruneReport = if prune {
        repo.prune(&opts)
    } else {
        repo.forget(&opts)
    }
    .map_err(fail)?;
    if json {
        let v = json!({
            "dryRun": a.dry_run,
            "kept": r.kept.iter().map(|(i, why)| {
                let mut v = info_json(i);
                if let Some(o) = v.as_object_mut() {
                    let names: Vec<&str> = why.iter().map(|r| r.name()).collect();
                    o.insert("reasons".into(), json!(names));
                }
                v
            }).collect::<Vec<_>>(),
            "removed": r.removed.iter().map(info_json).collect::<Vec<_>>(),
            "missingRemoved": r.missing_removed.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            "packsDeleted": r.packs_deleted,
            "packsWritten": r.packs_written,
            "chunksRemoved": r.chunks_removed,
            "bytesFreed": r.bytes_freed,
            "deltasDeleted": r.deltas_deleted,
        });
        println!("{v}");
        return Ok(());
    }
    let would = if a.dry_run { "would " } else { "" };
    if !r.kept.is_empty() {
        println!("keep {} snapshots:", r.kept.len());
        let infos: Vec<&SnapshotInfo> = r.kept.iter().map(|(i, _)| i).collect();
        print!("{}", listing(&infos));
    }
    if !r.removed.is_empty() {
        println!("{would}remove {} snapshots:", r.removed.len());
        print!("{}", listing(&r.removed.iter().collect::<Vec<_>>()));
    }
    if !r.missing_removed.is_empty() {
        let ids: Vec<String> = r.missing_removed.iter().map(|i| i.to_string()).collect();
        println!(
            "{would}forget {} snapshots whose manifest is missing: {}",
            ids.len(),
            ids.join(" ")
        );
    }
    if prune {
        println!(
            "{would}delete {} packs and {} pages, write {} packs, free {}",
            r.packs_deleted,
            r.chunks_removed,
            r.packs_written,
            humanize::bytes(r.bytes_freed)
        );
        if r.deltas_deleted > 0 {
            println!(
                "{would}delete {} delta segments of removed snapshots",
                r.deltas_deleted
            );
        }
    }
    Ok(())
}
