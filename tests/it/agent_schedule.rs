//! `etcdsnap agent --full-every CRON`: the next times our cron parser names are the ones
//! Python's croniter (a widely used implementation of Vixie cron's rules: day of month OR day
//! of week when both are restricted, names, steps, 7 as Sunday, `@` names) names, for many
//! expressions from many starting times, in UTC. One known difference is left out: a day
//! field like `*/2` counts as `*` for Vixie cron and crontab(5) ("restricted" means without
//! `*`: both day fields must then match) but as restricted for croniter; the unit tests of
//! `src/agent/schedule.rs` hold cron's answer.

use crate::support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcdsnap::agent::CronSchedule;
use serde_json::{Value, json};
use support::require_tool;

const SCRIPT: &str = r#"
import json, sys, datetime
from croniter import croniter
out = []
for expr, start, n in json.load(sys.stdin):
    it = croniter(expr, datetime.datetime.fromtimestamp(start, tz=datetime.timezone.utc))
    out.append([int(it.get_next(float)) for _ in range(n)])
json.dump(out, sys.stdout)
"#;

fn croniter() -> Result<String, String> {
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import croniter"])
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("{py}: {e}"))?;
    if ok.success() {
        Ok(py)
    } else {
        Err("python3 has no croniter (pip install croniter)".into())
    }
}

#[test]
fn next_times_are_croniters() {
    let py = require_tool!(croniter());
    let exprs = [
        "* * * * *",
        "0 * * * *",
        "30 */6 * * *",
        "15 3 * * sun",
        "15 3 * * 7",
        "0 0 13 * fri",
        "0 0 1,15 * mon-wed",
        "0 12 * * */2",
        "0 0 29 feb *",
        "0 0 31 * *",
        "5-10/5,58 1 * jan-mar *",
        "0 22 * * 1-5",
        "10/20 * * * *",
        "0 9-17/2 * * mon-fri",
        "45 23 28-31 * *",
        "0 0 * 6 6",
        "0 0 1 */3 *",
        "@hourly",
        "@daily",
        "@weekly",
        "@monthly",
        "@yearly",
    ];
    // Starting times from 2024 to 2031, some on a minute, some between.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut cases = Vec::new();
    for e in exprs {
        for k in 0..12 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut t = 1_704_067_200 + x % (8 * 365 * 86_400);
            if k % 3 == 0 {
                t -= t % 60;
            }
            cases.push((e, t));
        }
    }
    let input: Vec<Value> = cases.iter().map(|(e, t)| json!([e, t, 4])).collect();
    let mut child = Command::new(&py)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(json!(input).to_string().as_bytes())
        .expect("write");
    let o = child.wait_with_output().expect("croniter");
    assert!(o.status.success());
    let want: Vec<Vec<u64>> = serde_json::from_slice(&o.stdout).expect("croniter json");
    assert_eq!(want.len(), cases.len());
    for ((e, t), want) in cases.iter().zip(want) {
        let s = CronSchedule::parse(e).expect("parse");
        let mut at = UNIX_EPOCH + Duration::from_secs(*t);
        let mut got = Vec::new();
        for _ in 0..want.len() {
            at = s.next_after(at).expect("a next time");
            got.push(at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs());
        }
        assert_eq!(got, want, "{e} after {t}");
    }
}

/// The flag takes a duration or a cron expression, and names both when it is neither.
#[test]
fn full_every_refuses_what_is_neither_a_duration_nor_cron() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = support::cli::run(&[
        "agent",
        support::cli::s(dir.path()),
        "--full-every",
        "61 * * * *",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("neither a duration (time: ") && err.contains("minute: 61 is outside 0-59"),
        "{err}"
    );
    let repo = dir.path().join("repo");
    support::cli::ok(&["backup", "init", support::cli::s(&repo)]);
    let o = support::cli::run(&[
        "agent",
        support::cli::s(&repo),
        "--full-every",
        "0 0 30 2 *",
        "--endpoints",
        "127.0.0.1:1",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("names no time"), "{err}");
}
