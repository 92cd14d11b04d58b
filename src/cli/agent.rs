//! `etcdsnap agent REPO`: continuous backup into a repository (the work
//! is `etcdsnap::agent`; this file is flags and log lines).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use etcdsnap::agent::{AgentError, AgentEvent, AgentOptions, CronSchedule};
use etcdsnap::repo::{MasterKey, Repository};

use super::backup::KeepArgs;
use super::global::GlobalArgs;
use super::{EXIT_BAD_ARGS, EXIT_ERROR, Failure, interrupt, pflag};

/// The `--keep-*` flags are `backup forget`'s, with help for when the
/// agent applies them.
#[derive(Args, Debug)]
#[command(
    mut_arg("keep_last", |a| a.help(
        "After each full snapshot, keep the N newest full snapshots (with their recorded \
        changes) and forget the others, as `backup forget --keep-last` (0: no rule)"
    )),
    mut_arg("keep_hourly", |a| a.help(
        "Also keep the newest full snapshot of each of the N most recent hours (UTC)"
    )),
    mut_arg("keep_daily", |a| a.help(
        "Also keep the newest full snapshot of each of the N most recent days (UTC)"
    )),
    mut_arg("keep_weekly", |a| a.help(
        "Also keep the newest full snapshot of each of the N most recent ISO weeks (UTC)"
    )),
)]
pub(super) struct AgentArgs {
    /// The repository (made with `backup init`): a directory, or a prefix in object storage
    /// (s3://BUCKET/PREFIX, gs://..., az://...)
    #[arg(value_name = "REPO")]
    repo: PathBuf,
    /// Key file of an encrypted repository (64 hex digits)
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Take a full snapshot when the newest is this old (and at start), or at the times a
    /// 5-field cron expression names, in UTC ("0 */6 * * *", "@daily")
    #[arg(long, value_name = "DURATION|CRON", default_value = "1h", value_parser = full_every)]
    full_every: FullEvery,
    /// Seal and store the changes received this often
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = pflag::GoDuration)]
    delta_every: Duration,
    /// Serve Prometheus metrics (/metrics) and /healthz on HOST:PORT
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<String>,
    /// /healthz answers 503 when no delta succeeded and no watch response came for this long
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = pflag::GoDuration)]
    unhealthy_after: Duration,
    #[command(flatten)]
    keep: KeepArgs,
    /// The most bytes of received changes held while the repository refuses segments; beyond
    /// it they are dropped (a gap, logged) and a new full snapshot is taken once the
    /// repository accepts writes
    #[arg(long, value_name = "BYTES", default_value_t = etcdsnap::agent::DEFAULT_MAX_BUFFER)]
    max_buffer_bytes: u64,
    /// Log lines: text or json
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    log_format: String,
}

/// `--full-every`: a Go duration, or a cron expression.
#[derive(Debug, Clone)]
enum FullEvery {
    Every(Duration),
    Cron(CronSchedule),
}

fn full_every(s: &str) -> Result<FullEvery, String> {
    // A duration never holds a space or `*`, nor starts with `@`: those
    // are cron, and so is anything a duration is not.
    match pflag::parse_duration(s) {
        Ok(d) => Ok(FullEvery::Every(d)),
        Err(dur) => CronSchedule::parse(s)
            .map(FullEvery::Cron)
            .map_err(|cron| format!("neither a duration ({dur}) nor a cron expression ({cron})")),
    }
}

/// One log line for `e`, with the time.
fn line(e: &AgentEvent, json: bool) -> String {
    let level = if matches!(e, AgentEvent::Error { .. } | AgentEvent::Overflow { .. }) {
        "error"
    } else {
        "info"
    };
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if json {
        let mut v = e.to_json();
        if let Some(o) = v.as_object_mut() {
            o.insert("time".into(), time.into());
            o.insert("level".into(), level.into());
        }
        v.to_string()
    } else {
        format!("{time} {level} {e}")
    }
}

pub(super) fn run(a: &AgentArgs, global: &GlobalArgs) -> Result<(), Failure> {
    let json = match a.log_format.as_str() {
        "text" => false,
        "json" => true,
        other => {
            return Err(Failure::new(
                EXIT_BAD_ARGS,
                format!("unknown --log-format {other:?} (text or json)"),
            ));
        }
    };
    let save = global
        .with_process_env()?
        .save_options_prompting(PathBuf::from("(agent)"))?;
    let key = a
        .key_file
        .as_deref()
        .map(MasterKey::from_file)
        .transpose()
        .map_err(|e| Failure::new(EXIT_ERROR, e))?;
    let repo = match a.repo.to_str() {
        Some(text) => Repository::open_at_with(text, key.as_ref(), &super::location_options()?),
        None => Repository::open_dir(&a.repo, key.as_ref()),
    }
    .map_err(super::backup::fail)?;
    let mut opts = AgentOptions::new(save)
        .with_delta_every(a.delta_every)
        .with_unhealthy_after(a.unhealthy_after)
        .with_max_buffer_bytes(a.max_buffer_bytes)
        .with_keep(a.keep.policy())
        // SIGTERM/SIGINT: seal and store what is held, exit 0; a second
        // signal stops at once (everything stored is already whole).
        .with_stop(interrupt::install(interrupt::Mode::Cooperative(
            "the changes held were not stored",
        ))?);
    opts = match &a.full_every {
        FullEvery::Every(d) => opts.with_full_every(*d),
        FullEvery::Cron(c) => opts.with_full_cron(c.clone()),
    };
    if let Some(addr) = &a.metrics_addr {
        opts = opts.with_metrics_addr(addr.clone());
    }
    etcdsnap::agent::run(&repo, &opts, &|e| eprintln!("{}", line(e, json))).map_err(|e| match e {
        // The intervals come from these flags here.
        AgentError::ZeroInterval => Failure::new(
            EXIT_BAD_ARGS,
            "--delta-every and --full-every must be positive",
        ),
        AgentError::Options(_) => Failure::new(EXIT_BAD_ARGS, e),
        e => Failure::new(EXIT_ERROR, e),
    })
}
