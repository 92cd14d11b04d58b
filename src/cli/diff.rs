//! `etcdsnap diff OLD NEW`: keys added, removed and changed between two
//! snapshots.

use std::io::Write as _;

use super::format::get::base64;
use super::format::humanize;
use clap::Args;
use etcdsnap::inspect::diff::{ChangeKind, diff};
use etcdsnap::mvcc::Store;
use serde_json::json;

use super::get::write_stdout;
use super::pflag::{GoBool, GoInt64};
use super::{EXIT_BAD_ARGS, EXIT_BAD_FEATURE, EXIT_ERROR, Failure, printable};

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The older and the newer snapshot (or raw member/snap/db files)
    #[arg(value_name = "OLD NEW")]
    files: Vec<String>,
    /// Read OLD at this revision (0 or less: its current one), as `get --rev`
    #[arg(long = "rev-old", value_name = "N", default_value = "0", allow_hyphen_values = true, value_parser = GoInt64)]
    rev_old: i64,
    /// Read NEW at this revision (0 or less: its current one), as `get --rev`
    #[arg(long = "rev-new", value_name = "N", default_value = "0", allow_hyphen_values = true, value_parser = GoInt64)]
    rev_new: i64,
    /// Print only the summary line
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = GoBool)]
    summary: bool,
}

pub fn run(a: &DiffArgs, write_out: &str) -> Result<(), Failure> {
    let [old_path, new_path] = a.files.as_slice() else {
        return Err(Failure::new(
            EXIT_BAD_ARGS,
            "diff requires exactly two arguments: OLD NEW",
        ));
    };
    if !matches!(write_out, "simple" | "json") {
        return Err(Failure::new(
            EXIT_BAD_FEATURE,
            format!("{write_out} not supported as output format for diff"),
        ));
    }
    let err = |e: &dyn std::fmt::Display| Failure::new(EXIT_ERROR, e.to_string());
    let old_snap = super::get::open_any(old_path.as_ref())?;
    let new_snap = super::get::open_any(new_path.as_ref())?;
    let old = Store::open(&old_snap).map_err(|e| err(&e))?;
    let new = Store::open(&new_snap).map_err(|e| err(&e))?;
    let d = diff(&old, &new, a.rev_old, a.rev_new).map_err(|e| err(&e))?;
    let size = |kv: Option<etcdsnap::etcd::KeyValueRef<'_>>| kv.map_or(0, |k| k.value.len() as u64);
    let (mut added, mut removed, mut changed) = (0u64, 0u64, 0u64);
    let (mut bytes_added, mut bytes_removed, mut bytes_old, mut bytes_new) =
        (0u64, 0u64, 0u64, 0u64);
    for c in &d.changes {
        match c.kind {
            ChangeKind::Added => {
                added += 1;
                bytes_added += size(c.new);
            }
            ChangeKind::Removed => {
                removed += 1;
                bytes_removed += size(c.old);
            }
            ChangeKind::Changed => {
                changed += 1;
                bytes_old += size(c.old);
                bytes_new += size(c.new);
            }
        }
    }
    if write_out == "json" {
        let changes: Vec<_> = d
            .changes
            .iter()
            .map(|c| {
                let mut v = json!({
                    "kind": match c.kind { ChangeKind::Added => "added", ChangeKind::Removed => "removed", ChangeKind::Changed => "changed" },
                });
                if let Some(o) = v.as_object_mut() {
                    match std::str::from_utf8(&c.key) {
                        Ok(s) => o.insert("key".into(), json!(s)),
                        Err(_) => o.insert("key_base64".into(), json!(base64(&c.key))),
                    };
                    for (name, kv) in [("old", c.old), ("new", c.new)] {
                        if let Some(kv) = kv {
                            o.insert(name.into(), json!({
                                "size": kv.value.len(), "mod_revision": kv.mod_revision,
                                "version": kv.version, "lease": kv.lease,
                            }));
                        }
                    }
                }
                v
            })
            .collect();
        let doc = json!({
            "old": {"file": old_path, "revision": d.old_revision},
            "new": {"file": new_path, "revision": d.new_revision},
            "added": added, "removed": removed, "changed": changed,
            "rewritten": d.rewritten,
            "bytes_added": bytes_added, "bytes_removed": bytes_removed,
            "bytes_changed_old": bytes_old, "bytes_changed_new": bytes_new,
            "changes": if a.summary { Vec::new() } else { changes },
        });
        return write_stdout(format!("{doc}\n").as_bytes());
    }
    let mut out = Vec::new();
    if !a.summary {
        for c in &d.changes {
            let _ = match c.kind {
                ChangeKind::Added => writeln!(
                    out,
                    "+ {} ({})",
                    printable(&c.key),
                    humanize::bytes(size(c.new))
                ),
                ChangeKind::Removed => writeln!(
                    out,
                    "- {} ({})",
                    printable(&c.key),
                    humanize::bytes(size(c.old))
                ),
                ChangeKind::Changed => writeln!(
                    out,
                    "~ {} ({} -> {})",
                    printable(&c.key),
                    humanize::bytes(size(c.old)),
                    humanize::bytes(size(c.new))
                ),
            };
        }
    }
    let _ = writeln!(
        out,
        "{old_path}@{} -> {new_path}@{}: {added} added ({}), {removed} removed ({}), {changed} changed ({} -> {}), {} rewritten with the same value",
        d.old_revision,
        d.new_revision,
        humanize::bytes(bytes_added),
        humanize::bytes(bytes_removed),
        humanize::bytes(bytes_old),
        humanize::bytes(bytes_new),
        d.rewritten
    );
    write_stdout(&out)
}
