//! Command-line parsing and dispatch. Exit codes follow etcdutl: 0 success,
//! 1 failure (and a flag pflag refuses, src/cli/pflag.rs), 4 unsupported
//! output format, 128 bad arguments; `snapshot save` follows etcdctl (5 on
//! failure). etcdctl's global flags are accepted on every command
//! (src/cli/global.rs).

mod agent;
mod backup;
mod defrag;
mod diff;
mod format;
mod get;
mod global;
mod hashkv;
mod history;
mod interrupt;
mod pflag;
mod progress;
mod prune;
mod restore;
mod save;
mod stats;
mod status;
mod verify;
mod wal;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Failure: the operation could not be done.
pub const EXIT_ERROR: u8 = 1;
// `snapshot save` fails with etcdctl's codes instead: 5 (ExitError), 128
// (bad arguments), 1 for flag values pflag refuses.
/// Unsupported output format (cobrautl.ExitBadFeature).
pub const EXIT_BAD_FEATURE: u8 = 4;
/// Bad arguments (cobrautl.ExitBadArgs).
pub const EXIT_BAD_ARGS: u8 = 128;

/// Headings of the help: etcdutl's global flags apart from each command's.
const GLOBAL: &str = "Global Flags";

/// Help layout of every command: usage first, as cobra prints it.
const HELP_TEMPLATE: &str = "{about-with-newline}\nUsage:\n  {usage}\n\n{all-args}{after-help}";

/// The usage block printed after a flag error, as cobra prints its
/// `UsageString` (no description).
const USAGE_TEMPLATE: &str = "Usage:\n  {usage}\n\n{all-args}";

#[derive(Parser, Debug)]
#[command(
    name = "etcdsnap",
    version,
    about = "Verify, inspect and restore etcd v3 snapshot files"
)]
struct Cli {
    /// Output format (each command lists its own choices)
    #[arg(
        short = 'w',
        long = "write-out",
        global = true,
        default_value = "simple",
        value_name = "FORMAT",
        allow_hyphen_values = true,
        help_heading = GLOBAL
    )]
    write_out: String,

    /// etcdutl 3.7's wait for the db file lock; accepted for compatibility
    /// (etcdsnap never waits: a db that etcd holds is refused at once)
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        value_parser = pflag::GoDuration,
        help_heading = GLOBAL
    )]
    timeout: Option<std::time::Duration>,

    #[command(flatten)]
    global: global::GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once; boxing buys nothing
enum Command {
    /// Work with snapshot files
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Read a member's raft WAL and .snap files
    #[command(subcommand)]
    Wal(WalCommand),
    /// Keep many snapshots in a repository that stores each page once
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Get a key or a range of keys from a snapshot, as etcdctl get does
    Get(get::GetArgs),
    /// Every change of a key still in a snapshot, with values
    History(history::HistoryArgs),
    /// Where the space of a snapshot goes: by group, largest keys, free pages
    Stats(stats::StatsArgs),
    /// Keys added, removed and changed between two snapshots
    Diff(diff::DiffArgs),
    /// Continuous backup: full snapshots on a schedule and every change between them, into a repository
    Agent(agent::AgentArgs),
}

#[derive(Subcommand, Debug)]
enum WalCommand {
    /// Print every record of the WAL segments and the newest .snap of a data dir
    #[command(after_help = "Output formats (-w): simple, json")]
    Dump(WalDumpArgs),
}

#[derive(Args, Debug)]
struct WalDumpArgs {
    /// A data dir, its member dir, or a WAL dir
    #[arg(value_name = "DIR")]
    dir: String,
    #[arg(hide = true, num_args = 0.., value_name = "DIR")]
    more: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum SnapshotCommand {
    /// Print a snapshot's hash, revision, key count and size, as etcdutl does
    #[command(after_help = "Output formats (-w): simple, table, json, fields")]
    Status(StatusArgs),
    /// Check the SHA-256 trailer, the bbolt structure and the etcd data
    #[command(after_help = "Output formats (-w): simple, json")]
    Verify(VerifyArgs),
    /// Restore a snapshot into member data dirs, as etcdutl does
    #[command(after_help = "Output formats (-w): simple (prints nothing), json (a summary)")]
    Restore(RestoreArgs),
    /// Delete old snapshots named by time, keeping what the --keep-* rules say (never the newest sound one)
    Prune(PruneArgs),
    /// Print etcd's KV history hash up to a revision, as etcdutl hashkv does
    #[command(after_help = "Output formats (-w): simple, table, json, fields")]
    Hashkv(hashkv::HashKvArgs),
    /// Take a snapshot from a live member, as etcdctl does, kept only when verified
    #[command(
        after_help = "Output formats (-w): any of etcdctl's (simple, json, fields, table, protobuf); save prints the same lines for each, as etcdctl does"
    )]
    Save(SaveArgs),
    /// Rewrite a snapshot densely packed, as etcdutl defrag packs a db
    #[command(after_help = "Output formats (-w): simple, json")]
    Defrag(defrag::DefragArgs),
    /// Apply etcd's compaction at a revision and rewrite the snapshot densely packed
    #[command(after_help = "Output formats (-w): simple, json")]
    Compact(defrag::CompactArgs),
}

#[derive(Args, Debug)]
struct SaveArgs {
    /// Where to save the snapshot (written as FILE.part, renamed when verified); or a URL
    /// (s3://, gs://, az://, file://) uploaded as it arrives; .zst/.gz compress; {time} is
    /// replaced by the UTC time (20250131T235959Z)
    #[arg(value_name = "FILE")]
    file: String,
    #[arg(hide = true, num_args = 0.., value_name = "FILE")]
    more: Vec<String>,
    /// zstd level (1-19, up to 22; default 3) or gzip level (0-9; default 6) for .zst/.gz
    #[arg(long, allow_negative_numbers = true)]
    compression_level: Option<i32>,
    /// zstd worker threads (0: compress on the writing thread) [default: the cores]
    #[arg(long)]
    compression_threads: Option<u32>,
    /// Bytes per part of a multipart upload, in MiB (at least 5)
    #[arg(long, default_value_t = 16)]
    upload_part_size: usize,
}

#[derive(Args, Debug)]
struct PruneArgs {
    /// The snapshots: the destination given to save, with {time} (s3://b/etcd/snap-{time}.db.zst), or a prefix
    #[arg(value_name = "LOCATION")]
    location: String,
    #[arg(hide = true, num_args = 0.., value_name = "LOCATION")]
    more: Vec<String>,
    /// Keep the newest N snapshots
    #[arg(long)]
    keep_last: usize,
    /// Keep the newest snapshot of each of the last H hours that have one
    #[arg(long, default_value_t = 0)]
    keep_hourly: usize,
    /// Keep the newest snapshot of each of the last D days (UTC) that have one
    #[arg(long, default_value_t = 0)]
    keep_daily: usize,
    /// Keep the newest snapshot of each of the last W ISO weeks that have one
    #[arg(long, default_value_t = 0)]
    keep_weekly: usize,
    /// Only print what would be deleted
    #[arg(long)]
    dry_run: bool,
}

/// A path flag that, like a pflag string, also takes `""` (which then means
/// the default).
fn any_path() -> impl clap::builder::TypedValueParser<Value = std::path::PathBuf> {
    use clap::builder::TypedValueParser as _;
    clap::builder::OsStringValueParser::new().map(std::path::PathBuf::from)
}

/// `--target-version` help, shared by the commands that take it.
const TARGET_HELP: &str = "etcd release to follow: auto (the snapshot's own storage version; \
    none means 3.5), 3.4, 3.5, 3.6 or 3.7";

#[derive(Args, Debug)]
struct RestoreArgs {
    /// The snapshot: a file, a URL (s3://, gs://, az://, file://), .zst or .gz
    #[arg(value_name = "FILE")]
    file: String,
    #[arg(hide = true, num_args = 0.., value_name = "FILE")]
    more: Vec<String>,
    #[command(flatten)]
    flags: RestoreFlags,
}

/// `snapshot restore`'s flags (shared with `backup restore`).
#[derive(Args, Debug)]
struct RestoreFlags {
    /// Path to the data directory ("" or absent: <name>.etcd)
    #[arg(long, value_name = "DIR", allow_hyphen_values = true, value_parser = any_path())]
    data_dir: Option<std::path::PathBuf>,
    /// Path to the WAL directory ("" or absent: <data-dir>/member/wal)
    #[arg(long, value_name = "DIR", allow_hyphen_values = true, value_parser = any_path())]
    wal_dir: Option<std::path::PathBuf>,
    /// Human-readable name for this member
    #[arg(long, value_name = "NAME", allow_hyphen_values = true,
          default_value = etcdsnap::RestoreOptions::DEFAULT_NAME)]
    name: String,
    /// Initial cluster configuration for restore bootstrap
    #[arg(long, value_name = "NAME=URL,...", allow_hyphen_values = true,
          default_value = etcdsnap::RestoreOptions::DEFAULT_INITIAL_CLUSTER)]
    initial_cluster: String,
    /// Initial cluster token for the etcd cluster during restore bootstrap
    #[arg(long, value_name = "TOKEN", allow_hyphen_values = true,
          default_value = etcdsnap::RestoreOptions::DEFAULT_INITIAL_CLUSTER_TOKEN)]
    initial_cluster_token: String,
    /// List of this member's peer URLs to advertise to the rest of the cluster
    #[arg(long, value_name = "URLS", allow_hyphen_values = true,
          default_value = etcdsnap::RestoreOptions::DEFAULT_INITIAL_ADVERTISE_PEER_URLS)]
    initial_advertise_peer_urls: String,
    /// Ignore the snapshot integrity hash (required for a raw member/snap/db copy)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = pflag::GoBool)]
    skip_hash_check: bool,
    /// How much to increase the latest revision after restore
    #[arg(long, value_name = "N", default_value = "0", value_parser = pflag::GoUint64)]
    bump_revision: u64,
    /// Mark the latest revision after restore as the point of scheduled compaction (requires --bump-revision > 0)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = pflag::GoBool)]
    mark_compacted: bool,
    /// Write the member db compacted at revision R (--compact alone, or =0: the latest), as `etcdctl compact R` leaves it, and densely packed
    #[arg(long, value_name = "R", num_args = 0..=1, require_equals = true,
          default_missing_value = "0", value_parser = pflag::GoInt64)]
    compact: Option<i64>,
    /// Write the member db densely packed, as `etcdutl defrag` leaves it, instead of a page-for-page copy of the snapshot's
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = pflag::GoBool)]
    defrag: bool,
    /// Accepted for compatibility with etcdutl 3.5.14+; etcdsnap does not map the db
    #[arg(long, hide = true, value_name = "BYTES", value_parser = pflag::GoUint64)]
    initial_memory_map_size: Option<u64>,
    #[arg(long, value_name = "VERSION", default_value = "auto", help = TARGET_HELP,
          allow_hyphen_values = true)]
    target_version: String,
    /// Restore into a target release older than the snapshot's storage version, migrating the storage version down as `etcdutl migrate` does
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = pflag::GoBool)]
    force: bool,
    /// Restore every member of --initial-cluster into --out-dir/<name>.etcd (refuses --name, --initial-advertise-peer-urls, --data-dir, --wal-dir: they would be ignored)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = pflag::GoBool,
          requires = "out_dir",
          conflicts_with_all = ["data_dir", "wal_dir", "name", "initial_advertise_peer_urls"])]
    all_members: bool,
    /// Where --all-members puts the data dirs
    #[arg(
        long,
        value_name = "DIR",
        allow_hyphen_values = true,
        requires = "all_members"
    )]
    out_dir: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
struct StatusArgs {
    /// The snapshot file (or a raw member/snap/db copy); a URL (s3://, gs://, az://, file://), .zst or .gz
    #[arg(value_name = "FILE")]
    file: String,
    #[arg(hide = true, num_args = 0.., value_name = "FILE")]
    more: Vec<String>,
    #[arg(long, value_name = "VERSION", default_value = "auto", help = TARGET_HELP,
          allow_hyphen_values = true)]
    target_version: String,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// The snapshot file (or a raw member/snap/db copy with --skip-hash-check); a URL (s3://, gs://, az://, file://), .zst or .gz
    #[arg(value_name = "FILE")]
    file: String,
    #[arg(hide = true, num_args = 0.., value_name = "FILE")]
    more: Vec<String>,
    /// Do not require and compare the SHA-256 trailer
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = pflag::GoBool)]
    skip_hash_check: bool,
    #[arg(long, value_name = "VERSION", default_value = "auto", help = TARGET_HELP,
          allow_hyphen_values = true)]
    target_version: String,
}

/// A failure to report: message and exit code.
#[derive(Debug)]
pub struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn new(code: u8, message: impl std::fmt::Display) -> Failure {
        Failure {
            message: message.to_string(),
            code,
        }
    }
}

/// What to tell someone at a shell beside a library error: the library's
/// texts say what went wrong, this says what to do about it.
const LOCKED_ADVICE: &str = "(is an etcd member running on it? copy it or stop etcd first)";

/// A snapshot error as the CLI prints it.
fn snapshot_failure(e: etcdsnap::SnapshotError) -> Failure {
    let text = match &e {
        etcdsnap::SnapshotError::Locked { .. } => format!("{e} {LOCKED_ADVICE}"),
        etcdsnap::SnapshotError::Bolt { path, .. } => match compressed_hint(path) {
            Some(hint) => format!("{e} {hint}"),
            None => e.to_string(),
        },
        _ => e.to_string(),
    };
    Failure::new(EXIT_ERROR, text)
}

/// For a local file that is not a bbolt database: whether it looks
/// compressed under a name that does not say so.
pub(crate) fn compressed_hint(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    match etcdsnap::Compression::sniff(&head) {
        etcdsnap::Compression::Zstd => Some("(it looks zstd-compressed: name it .zst)".into()),
        etcdsnap::Compression::Gzip => Some("(it looks gzip-compressed: name it .gz)".into()),
        _ => None,
    }
}

/// A location error as the CLI prints it: a bad location is a bad
/// argument; a snapshot read from one fails as a local one would.
fn location_failure(e: etcdsnap::LocationError) -> Failure {
    match e {
        etcdsnap::LocationError::Snapshot(s) => snapshot_failure(s),
        e @ etcdsnap::LocationError::Parse { .. } => Failure::new(EXIT_BAD_ARGS, e),
        e => Failure::new(EXIT_ERROR, e),
    }
}

/// The settings every location and every repository in object storage is
/// read and written with: the library's defaults, with the environment's
/// `ETCDSNAP_RETRIES` (retries of a failed request, and resumptions in a
/// row of a broken read), `ETCDSNAP_RETRY_TIMEOUT` and
/// `ETCDSNAP_READ_TIMEOUT` (Go durations, as the global timeout flags
/// take). Empty is unset.
pub(crate) fn location_options() -> Result<etcdsnap::LocationOptions, Failure> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let bad =
        |name: &str, why: String| Failure::new(EXIT_BAD_ARGS, format!("invalid ${name}: {why}"));
    let duration = |name: &str| {
        var(name)
            .map(|v| pflag::parse_duration(&v).map_err(|e| bad(name, e)))
            .transpose()
    };
    let mut o = etcdsnap::LocationOptions::default();
    if let Some(v) = var("ETCDSNAP_RETRIES") {
        let n = v.parse::<usize>().map_err(|_| {
            bad(
                "ETCDSNAP_RETRIES",
                format!("{v:?} is not a count of retries"),
            )
        })?;
        o = o.with_retries(n);
    }
    if let Some(d) = duration("ETCDSNAP_RETRY_TIMEOUT")? {
        o = o.with_retry_timeout(d);
    }
    if let Some(d) = duration("ETCDSNAP_READ_TIMEOUT")? {
        o = o.with_read_timeout(d);
    }
    Ok(o)
}

/// `text` as a location, with [`location_options`].
fn parse_location(text: &str) -> Result<etcdsnap::Location, Failure> {
    etcdsnap::Location::parse_with(text, &location_options()?).map_err(location_failure)
}

/// Opens the snapshot at `text` (a path, a URL, a compressed file), read
/// once if it is not a plain local file, showing progress on `bar`.
fn open_snapshot(text: &str, bar: &progress::Bar) -> Result<etcdsnap::Snapshot, Failure> {
    parse_location(text)?
        .open_snapshot(&|p| bar.update(p))
        .map_err(location_failure)
}

/// etcdutl's exit code for a failed restore: 128 for bad flags (and a
/// location that does not parse), 1 otherwise.
fn restore_exit_code(e: &etcdsnap::RestoreError) -> u8 {
    match e {
        etcdsnap::RestoreError::Flags(_)
        | etcdsnap::RestoreError::Location(etcdsnap::LocationError::Parse { .. }) => EXIT_BAD_ARGS,
        _ => EXIT_ERROR,
    }
}

/// A restore error as the CLI prints it, with etcdutl's exit code.
fn restore_failure(e: etcdsnap::RestoreError) -> Failure {
    let code = restore_exit_code(&e);
    let text = match &e {
        etcdsnap::RestoreError::Snapshot(etcdsnap::SnapshotError::Locked { .. }) => {
            format!("{e} {LOCKED_ADVICE}")
        }
        etcdsnap::RestoreError::Schema { .. } => {
            format!(
                "{e}
(run `etcdsnap snapshot verify` for the full report)"
            )
        }
        _ => e.to_string(),
    };
    Failure::new(code, text)
}

/// For commands that print either a summary or JSON: whether `-w` asks for
/// JSON; other formats are refused with etcdutl's exit code for them.
fn json_or_simple(write_out: &str, command: &str) -> Result<bool, Failure> {
    match write_out {
        "simple" => Ok(false),
        "json" => Ok(true),
        other => {
            let known: Result<format::OutputFormat, _> = other.parse();
            let msg = match known {
                Ok(_) => format!("{other} not supported as output format for {command}"),
                Err(e) => e.to_string(),
            };
            Err(Failure::new(EXIT_BAD_FEATURE, msg))
        }
    }
}

/// The one positional argument a command takes (etcdutl: exactly one, else
/// exit 128).
fn one_file(file: &str, more: &[String], command: &str) -> Result<String, Failure> {
    if more.is_empty() {
        Ok(file.to_owned())
    } else {
        Err(Failure::new(
            EXIT_BAD_ARGS,
            format!("{command} requires exactly one argument"),
        ))
    }
}

/// `--target-version`: `auto` or a release (exit 128 otherwise).
fn target_choice(s: &str) -> Result<etcdsnap::TargetChoice, Failure> {
    s.parse().map_err(|e| Failure::new(EXIT_BAD_ARGS, e))
}

/// The release to follow for `snap`: the choice, `auto` resolved from its
/// storage version (a note on stderr when that is a terminal).
fn resolve_target(
    snap: &etcdsnap::Snapshot,
    choice: etcdsnap::TargetChoice,
) -> Result<etcdsnap::TargetVersion, Failure> {
    // A file whose meta bucket cannot be read is left to the command's own
    // walk, which reports what is wrong with it; read it as 3.5's here.
    let target = snap.resolve_target(choice).map_err(|e| {
        Failure::new(
            EXIT_ERROR,
            format!(
                "the snapshot's storage version {} is newer than any target version etcdsnap knows; pass --target-version",
                e.0
            ),
        )
    })?;
    if choice.is_auto() {
        let storage = snap.storage_version().ok().flatten();
        note_auto_target(target, storage.as_deref());
    }
    Ok(target)
}

/// On a terminal, says which release `auto` picked and why.
fn note_auto_target(target: etcdsnap::TargetVersion, storage: Option<&str>) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        match storage {
            Some(v) => eprintln!(
                "etcdsnap: target version {target} (the snapshot's storage version is {v})"
            ),
            None => eprintln!(
                "etcdsnap: target version {target} (the snapshot has no storage version: etcd 3.5 or older)"
            ),
        }
    }
}

/// Empty `--data-dir ""` / `--wal-dir ""` mean the default, as in etcdutl.
fn non_empty(p: &Option<std::path::PathBuf>) -> Option<std::path::PathBuf> {
    p.clone().filter(|p| !p.as_os_str().is_empty())
}

/// The command tree with etcdutl's parsing rules and cobra's help layout.
fn command() -> clap::Command {
    fn layout(c: clap::Command) -> clap::Command {
        let names: Vec<String> = c
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect();
        let mut c = c.help_template(HELP_TEMPLATE);
        for n in names {
            c = c.mut_subcommand(n, layout);
        }
        c
    }
    layout(
        <Cli as clap::CommandFactory>::command()
            .args_override_self(true)
            .infer_subcommands(true),
    )
}

/// The (sub)command a refused command line was for: the deepest one whose
/// name (or unique prefix) appears among the arguments.
fn refused_command(root: &clap::Command, args: &[std::ffi::OsString]) -> clap::Command {
    let mut cmd = root.clone();
    for a in args.iter().skip(1) {
        let a = a.to_string_lossy();
        if a.starts_with('-') {
            continue;
        }
        let matching: Vec<&clap::Command> = cmd
            .get_subcommands()
            .filter(|s| s.get_name() == a || s.get_name().starts_with(a.as_ref()))
            .collect();
        match matching.as_slice() {
            [one] => {
                let next = (*one).clone();
                cmd = next;
            }
            // A flag's value (`-w simple get`) or a positional argument.
            _ => continue,
        }
    }
    cmd
}

/// Prints a refused command line as etcdutl does and gives its exit code.
fn print_refusal(
    root: &mut clap::Command,
    args: &[std::ffi::OsString],
    e: &clap::Error,
) -> ExitCode {
    root.build();
    let cmd = refused_command(root, args);
    let path = cmd
        .get_bin_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned();
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut refusal = pflag::refusal(e, &path, &words);
    if let pflag::Refusal::BadArgs(m) = &mut refusal
        && e.kind() == clap::error::ErrorKind::MissingRequiredArgument
    {
        // The two `requires` of --all-members and --out-dir.
        if m.ends_with("--out-dir") {
            *m = "--all-members needs --out-dir DIR".into();
        } else if m.ends_with("--all-members") {
            *m = "--out-dir is only used with --all-members".into();
        }
    }
    // `get` is etcdctl's command: its usage is etcdctl's, on stdout, and
    // the error is printed twice with a blank line between (cobra's, then
    // etcdctl's own).
    if cmd.get_name() == "get" && path.ends_with(" get") {
        let usage = pflag::etcdctl_usage(
            &cmd,
            "get",
            "Gets the key or a range of keys",
            &format!("{path} [options] <file> <key> [range_end] [flags]"),
        );
        match &refusal {
            pflag::Refusal::Help(_) => {
                print!("{usage}");
                return ExitCode::SUCCESS;
            }
            pflag::Refusal::Flag(msg) => {
                print!("{usage}");
                eprint!("Error: {msg}\n\nError: {msg}\n");
                return ExitCode::from(pflag::EXIT_FLAG);
            }
            _ => {}
        }
    }
    match refusal {
        pflag::Refusal::Help(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        pflag::Refusal::Flag(msg) => {
            let usage = cmd
                .clone()
                .help_template(USAGE_TEMPLATE)
                .render_help()
                .to_string();
            eprint!("Error: {msg}\n{}\n\nError: {msg}\n", usage.trim_end());
            ExitCode::from(pflag::EXIT_FLAG)
        }
        pflag::Refusal::Command(msg) => {
            eprint!("Error: {msg}\nRun '{path} --help' for usage.\nError: {msg}\n");
            ExitCode::from(pflag::EXIT_FLAG)
        }
        pflag::Refusal::BadArgs(msg) => {
            eprintln!("Error: {msg}");
            ExitCode::from(EXIT_BAD_ARGS)
        }
    }
}

/// Parses the arguments, runs the command, prints errors as `Error: ...`.
pub fn run() -> ExitCode {
    // etcdctl looks at ETCDCTL_API before anything else.
    let api = std::env::var("ETCDCTL_API").ok();
    if let Err(f) = global::check_api_version(api.as_deref()) {
        eprintln!("Error: {}", f.message);
        return ExitCode::from(f.code);
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut root = command();
    let matches = match root.try_get_matches_from_mut(&args) {
        Ok(m) => m,
        Err(e) => return print_refusal(&mut root, &args, &e),
    };
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return print_refusal(&mut root, &args, &e),
    };
    // clap has checked the global flags' values (GoBoolText, GoDurationText).
    let result = match &cli.command {
        Command::Snapshot(SnapshotCommand::Status(a)) => status::run(a, &cli.write_out),
        Command::Snapshot(SnapshotCommand::Verify(a)) => verify::run(a, &cli.write_out),
        Command::Snapshot(SnapshotCommand::Restore(a)) => restore::run(a, &cli.write_out),
        Command::Snapshot(SnapshotCommand::Prune(a)) => prune::run(a, &cli.write_out),
        Command::Snapshot(SnapshotCommand::Save(a)) => save::run(a, &cli.global, &cli.write_out),
        Command::Snapshot(SnapshotCommand::Hashkv(a)) => hashkv::run(a, &cli.write_out),
        Command::Snapshot(SnapshotCommand::Defrag(a)) => defrag::run_defrag(a, &cli.write_out),
        Command::Snapshot(SnapshotCommand::Compact(a)) => defrag::run_compact(a, &cli.write_out),
        Command::Wal(WalCommand::Dump(a)) => wal::run(a, &cli.write_out),
        Command::Backup(c) => backup::run(c, &cli.global, &cli.write_out),
        Command::Get(a) => get::run(a, &cli.global, &cli.write_out),
        Command::History(a) => history::run(a, &cli.write_out),
        Command::Stats(a) => stats::run(a, &cli.write_out),
        Command::Diff(a) => diff::run(a, &cli.write_out),
        Command::Agent(a) => agent::run(a, &cli.global),
    };
    interrupt::park_if_stopping();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("Error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// A key as text on a terminal: invalid UTF-8 replaced, control characters
/// shown as `.`.
fn printable(k: &[u8]) -> String {
    String::from_utf8_lossy(k)
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks over every subcommand (a global flag
    /// clashing with a command's own flag would only show at run time).
    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
        super::command().debug_assert();
    }

    /// `agent` and `backup forget` share the `--keep-*` flags; the agent
    /// words their help for when it applies them.
    #[test]
    fn keep_flags_are_shared_with_their_own_help() {
        let c = super::Cli::command();
        let help = |path: &[&str]| {
            let mut cmd = &c;
            for p in path {
                cmd = cmd.find_subcommand(p).expect("subcommand");
            }
            let names: Vec<String> = cmd
                .get_arguments()
                .filter_map(|a| a.get_long().filter(|l| l.starts_with("keep-")))
                .map(str::to_owned)
                .collect();
            let last = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some("keep-last"))
                .and_then(|a| a.get_help())
                .map(ToString::to_string);
            (names, last)
        };
        let (agent, agent_help) = help(&["agent"]);
        let (forget, forget_help) = help(&["backup", "forget"]);
        assert_eq!(
            agent,
            ["keep-last", "keep-hourly", "keep-daily", "keep-weekly"]
        );
        assert_eq!(agent, forget);
        assert_eq!(forget_help.as_deref(), Some("Keep the N newest snapshots"));
        assert!(
            agent_help.is_some_and(|h| h.starts_with("After each full snapshot")),
            "agent --keep-last help"
        );
    }

    /// etcdutl exits 128 on bad flags, 1 on other failures.
    #[test]
    fn restore_exit_codes_are_etcdutls() {
        let e = etcdsnap::RestoreError::from(etcdsnap::FlagsError::BumpWithoutMarkCompacted);
        assert_eq!(super::restore_exit_code(&e), 128);
        let e = etcdsnap::RestoreError::from(etcdsnap::LocationError::Parse {
            text: "s3://".into(),
            reason: "no bucket".into(),
        });
        assert_eq!(super::restore_exit_code(&e), 128);
    }

    /// The library words flag errors in its own terms; the binary names the
    /// flags again, and they stay bad-args exits.
    #[test]
    fn restore_flag_errors_name_the_flags() {
        use etcdsnap::FlagsError;
        let cases = [
            (
                FlagsError::BumpOverflow { by: 5, latest: 7 },
                "--bump-revision 5 would take the revision past the largest int64 (latest revision is 7)",
            ),
            (
                FlagsError::AllMembersWithDir,
                "--all-members writes DIR/<name>.etcd for every member: do not pass --data-dir or --wal-dir",
            ),
            (
                FlagsError::BadCompactRevision { revision: -1 },
                "--compact must be a revision (or 0 or nothing for the latest), not -1",
            ),
            (
                FlagsError::TargetVersionNeeded {
                    found: etcdsnap::TargetVersion::V3_4,
                },
                "the snapshot holds etcd 3.4 data, which changes how these flags read: give --target-version",
            ),
        ];
        for (e, text) in cases {
            assert!(!e.to_string().contains("--"), "library text: {e}");
            let f = super::restore::failure(e.into());
            assert_eq!((f.message.as_str(), f.code), (text, 128));
        }
    }
}
