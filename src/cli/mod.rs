//! Command-line parsing and dispatch. Exit codes follow etcdutl: 0 success,
//! 1 failure, 4 unsupported output format, 128 bad arguments.

mod diff;
mod get;
mod history;
mod progress;
mod restore;
mod stats;
mod status;
mod verify;
mod wal;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Failure: the operation could not be done.
pub const EXIT_ERROR: u8 = 1;
/// Unsupported output format (cobrautl.ExitBadFeature).
pub const EXIT_BAD_FEATURE: u8 = 4;
/// Bad arguments (cobrautl.ExitBadArgs).
pub const EXIT_BAD_ARGS: u8 = 128;

#[derive(Parser, Debug)]
#[command(
    name = "etcdsnap",
    version,
    about = "Verify, inspect and restore etcd v3 snapshot files"
)]
struct Cli {
    /// Output format: simple, table, json or fields (etcdutl's --write-out)
    #[arg(
        short = 'w',
        long = "write-out",
        global = true,
        default_value = "simple"
    )]
    write_out: String,

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
    /// Get a key or a range of keys from a snapshot, as etcdctl get does
    Get(get::GetArgs),
    /// Every change of a key still in a snapshot, with values
    History(history::HistoryArgs),
    /// Where the space of a snapshot goes: by group, largest keys, free pages
    Stats(stats::StatsArgs),
    /// Keys added, removed and changed between two snapshots
    Diff(diff::DiffArgs),
}

#[derive(Subcommand, Debug)]
enum WalCommand {
    /// Print every record of the WAL segments and the newest .snap of a data dir
    Dump(WalDumpArgs),
}

#[derive(Args, Debug)]
struct WalDumpArgs {
    /// A data dir, its member dir, or a WAL dir
    #[arg(value_name = "DIR")]
    dirs: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum SnapshotCommand {
    /// Print a snapshot's hash, revision, key count and size, as etcdutl does
    Status(StatusArgs),
    /// Check the SHA-256 trailer, the bbolt structure and the etcd data
    Verify(VerifyArgs),
    /// Restore a snapshot into member data dirs, as etcdutl does
    Restore(RestoreArgs),
}

#[derive(Args, Debug)]
struct RestoreArgs {
    /// The snapshot file
    #[arg(value_name = "FILE")]
    files: Vec<String>,
    /// Path to the data directory [default: <name>.etcd]
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Path to the WAL directory [default: <data-dir>/member/wal]
    #[arg(long)]
    wal_dir: Option<std::path::PathBuf>,
    /// Human-readable name for this member
    #[arg(long, default_value = "default")]
    name: String,
    /// Initial cluster configuration for restore bootstrap
    #[arg(long, default_value = "default=http://localhost:2380")]
    initial_cluster: String,
    /// Initial cluster token for the etcd cluster during restore bootstrap
    #[arg(long, default_value = "etcd-cluster")]
    initial_cluster_token: String,
    /// List of this member's peer URLs to advertise to the rest of the cluster
    #[arg(long, default_value = "http://localhost:2380")]
    initial_advertise_peer_urls: String,
    /// Ignore the snapshot integrity hash (required for a raw member/snap/db copy)
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", require_equals = true)]
    skip_hash_check: bool,
    /// How much to increase the latest revision after restore
    #[arg(long, default_value_t = 0)]
    bump_revision: u64,
    /// Mark the latest revision after restore as the point of scheduled compaction (requires --bump-revision > 0)
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", require_equals = true)]
    mark_compacted: bool,
    /// Accepted for compatibility with etcdutl 3.5.14+; etcdsnap does not map the db
    #[arg(long, hide = true)]
    initial_memory_map_size: Option<u64>,
    /// Write the layout of this etcd version: 3.4, 3.5 or 3.6
    #[arg(long, default_value = "3.5")]
    target_version: String,
    /// Restore every member of --initial-cluster, into --out-dir/<name>.etcd
    #[arg(long)]
    all_members: bool,
    /// Where --all-members puts the data dirs
    #[arg(long)]
    out_dir: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
struct StatusArgs {
    /// The snapshot file (or a raw member/snap/db copy)
    #[arg(value_name = "FILE")]
    files: Vec<String>,
    /// Report as this etcd version would: 3.4, 3.5 or 3.6 (3.6 counts live keys)
    #[arg(long, default_value = "3.5")]
    target_version: String,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// The snapshot file (or a raw member/snap/db copy with --skip-hash-check)
    #[arg(value_name = "FILE")]
    files: Vec<String>,
    /// Do not require and compare the SHA-256 trailer
    #[arg(long)]
    skip_hash_check: bool,
    /// Rules for the status part of the report: 3.4, 3.5 or 3.6
    #[arg(long, default_value = "3.5")]
    target_version: String,
}

/// A failure to report: message and exit code.
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
        _ => e.to_string(),
    };
    Failure::new(EXIT_ERROR, text)
}

/// A restore error as the CLI prints it, with etcdutl's exit code.
fn restore_failure(e: etcdsnap::RestoreError) -> Failure {
    let code = e.exit_code();
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
            let known: Result<etcdsnap::format::OutputFormat, _> = other.parse();
            let msg = match known {
                Ok(_) => format!("{other} not supported as output format for {command}"),
                Err(e) => e.to_string(),
            };
            Err(Failure::new(EXIT_BAD_FEATURE, msg))
        }
    }
}

/// The one positional argument a command takes.
fn one_file(files: &[String], command: &str) -> Result<String, Failure> {
    match files {
        [f] => Ok(f.clone()),
        _ => Err(Failure::new(
            EXIT_BAD_ARGS,
            format!("{command} requires exactly one argument"),
        )),
    }
}

/// Parses the arguments, runs the command, prints errors as `Error: ...`.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_BAD_ARGS } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match &cli.command {
        Command::Snapshot(SnapshotCommand::Status(a)) => status::run(a, &cli.write_out),
        Command::Snapshot(SnapshotCommand::Verify(a)) => verify::run(a, &cli.write_out),
        Command::Snapshot(SnapshotCommand::Restore(a)) => restore::run(a, &cli.write_out),
        Command::Wal(WalCommand::Dump(a)) => wal::run(a, &cli.write_out),
        Command::Get(a) => get::run(a, &cli.write_out),
        Command::History(a) => history::run(a, &cli.write_out),
        Command::Stats(a) => stats::run(a, &cli.write_out),
        Command::Diff(a) => diff::run(a, &cli.write_out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("Error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
