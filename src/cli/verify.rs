//! `etcdsnap snapshot verify`.

use super::format::OutputFormat;
use super::format::render_status;

use etcdsnap::{HashCheck, VerifyOptions, VerifyProblem, VerifyReport};

/// What a missing trailer means, after etcdutl's words for it.
const MISSING_HASH_ADVICE: &str =
    "(the file has no SHA-256 trailer: a raw member/snap/db copy needs --skip-hash-check)";

/// A digest in lower-case hex, as `sha256sum` prints it.
fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}
use serde_json::json;

use super::progress::Bar;

use super::{
    EXIT_ERROR, Failure, VerifyArgs, json_or_simple, one_file, open_snapshot, resolve_target,
    target_choice,
};

pub fn run(args: &VerifyArgs, write_out: &str) -> Result<(), Failure> {
    let file = one_file(&args.file, &args.more, "snapshot verify")?;
    let choice = target_choice(&args.target_version)?;
    let json = json_or_simple(write_out, "verify")?;
    let bar = Bar::new();
    let snap = open_snapshot(&file, &bar).inspect_err(|_| bar.finish())?;
    let target = resolve_target(&snap, choice)?;
    let opts = VerifyOptions::default()
        .with_skip_hash_check(args.skip_hash_check)
        .with_target(target);
    let report = snap.verify_with_progress(&opts, &|p| bar.update(p));
    bar.finish();
    let problems: Vec<String> = report
        .problems()
        .iter()
        .map(|p| match p {
            // etcdutl's words, then what they mean for a file without one.
            VerifyProblem::MissingHash => format!("{p} {MISSING_HASH_ADVICE}"),
            p => p.to_string(),
        })
        .collect();
    let warnings: Vec<String> = report
        .all_warnings()
        .iter()
        .map(ToString::to_string)
        .collect();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if json {
        println!("{}", to_json(&report, &problems, &warnings));
    } else if problems.is_empty() {
        print!("OK: {}", summary(&report));
    } else {
        for p in &problems {
            println!("{p}");
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            EXIT_ERROR,
            format!(
                "snapshot {} failed verification: {} problem{}",
                report.path.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            ),
        ))
    }
}

fn hash_text(h: &HashCheck) -> String {
    match h {
        HashCheck::Verified(d) => format!("sha256 {} verified", hex(d)),
        HashCheck::Skipped => "sha256 not checked (--skip-hash-check)".into(),
        HashCheck::Missing => "no sha256 trailer".into(),
        HashCheck::Mismatch { .. } => "sha256 mismatch".into(),
    }
}

fn summary(r: &VerifyReport) -> String {
    let s = &r.check.stats;
    let mut out = format!(
        "{}: {}; {} pages checked ({} branch, {} leaf, {} overflow, {} free), {} buckets, {} keys",
        r.path.display(),
        hash_text(&r.hash),
        s.branch_pages + s.leaf_pages + s.overflow_pages,
        s.branch_pages,
        s.leaf_pages,
        s.overflow_pages,
        s.free_pages,
        s.buckets,
        s.entries,
    );
    out.push('\n');
    if let Some(st) = &r.status {
        out.push_str("status: ");
        out.push_str(&render_status(st, OutputFormat::Simple));
    }
    out
}

fn to_json(r: &VerifyReport, problems: &[String], warnings: &[String]) -> serde_json::Value {
    let (hash_state, stored, computed) = match r.hash {
        HashCheck::Verified(d) => ("verified", Some(hex(&d)), Some(hex(&d))),
        HashCheck::Mismatch { stored, computed } => {
            ("mismatch", Some(hex(&stored)), Some(hex(&computed)))
        }
        HashCheck::Missing => ("missing", None, None),
        HashCheck::Skipped => ("skipped", None, None),
    };
    let s = &r.check.stats;
    json!({
        "ok": problems.is_empty(),
        "file": r.path.display().to_string(),
        "fileSize": r.file_size,
        "sha256": { "state": hash_state, "stored": stored, "computed": computed },
        "pages": {
            "branch": s.branch_pages, "leaf": s.leaf_pages,
            "overflow": s.overflow_pages, "free": s.free_pages,
        },
        "buckets": s.buckets,
        "inlineBuckets": s.inline_buckets,
        "entries": s.entries,
        "status": r.status.as_ref().map(|st| {
            let mut v = json!({
                "hash": st.hash, "revision": st.revision,
                "totalKey": st.total_key, "totalSize": st.total_size,
            });
            if let Some(ver) = &st.version {
                v["version"] = json!(ver);
            }
            v
        }),
        "db": r.db_info.map(|d| json!({
            "pageSize": d.page_size, "txid": d.txid, "highWaterMark": d.hwm,
            "activeMeta": d.active_meta, "syncedFreelist": d.synced_freelist,
        })),
        "problems": problems,
        "warnings": warnings,
    })
}
