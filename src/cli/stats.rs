//! `etcdsnap stats FILE`: where the space of a snapshot goes.

use std::path::PathBuf;

use super::format::svg;
use super::format::{humanize, table};
use clap::Args;
use etcdsnap::inspect::group::GroupBy;
use etcdsnap::inspect::stats::{GroupStats, KeyStat, Stats, stats};
use serde_json::{Value, json};

use super::get::write_stdout;
use super::pflag::GoUint64;
use super::{EXIT_BAD_ARGS, EXIT_BAD_FEATURE, EXIT_ERROR, Failure, one_file, printable};

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The snapshot file (or a raw member/snap/db)
    #[arg(value_name = "FILE")]
    file: String,
    #[arg(hide = true, num_args = 0.., value_name = "FILE")]
    more: Vec<String>,
    /// Group by: resource (Kubernetes /registry/<resource>, else the first
    /// path segment), namespace, kind (from the value), or prefix
    #[arg(long, default_value = "resource", allow_hyphen_values = true)]
    by: String,
    /// Group by the first N path segments (implies --by prefix)
    #[arg(long, value_name = "N", value_parser = GoUint64)]
    depth: Option<u64>,
    /// Keys in the largest and most-revisions lists
    #[arg(long, value_name = "N", default_value = "10", value_parser = GoUint64)]
    top: u64,
    /// Also write a bar chart of space by group to this SVG file
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    svg: Option<PathBuf>,
}

pub fn run(a: &StatsArgs, write_out: &str) -> Result<(), Failure> {
    let file = one_file(&a.file, &a.more, "stats")?;
    let by = match a.depth {
        Some(0) => return Err(Failure::new(EXIT_BAD_ARGS, "--depth must be at least 1")),
        // More segments than any key has is the same as all of them.
        Some(depth) => GroupBy::Prefix {
            depth: usize::try_from(depth).unwrap_or(usize::MAX),
        },
        None => {
            a.by.parse()
                .map_err(|e: String| Failure::new(EXIT_BAD_ARGS, e))?
        }
    };
    if !matches!(write_out, "simple" | "table" | "json") {
        return Err(Failure::new(
            EXIT_BAD_FEATURE,
            format!("{write_out} not supported as output format for stats"),
        ));
    }
    let snap = super::get::open_any(file.as_ref())?;
    let st = stats(&snap, by, usize::try_from(a.top).unwrap_or(usize::MAX))
        .map_err(|e| Failure::new(EXIT_ERROR, e))?;
    if let Some(path) = &a.svg {
        let title = format!("etcd snapshot {file}: space by {}", by_name(by));
        std::fs::write(path, svg::render(&st, &title))
            .map_err(|e| Failure::new(EXIT_ERROR, format!("write {}: {e}", path.display())))?;
    }
    let out = if write_out == "json" {
        format!("{}\n", to_json(&st))
    } else {
        render_text(&st)
    };
    write_stdout(out.as_bytes())
}

fn by_name(by: GroupBy) -> String {
    match by {
        GroupBy::Prefix { depth } => format!("prefix (depth {depth})"),
        GroupBy::Resource => "resource".into(),
        GroupBy::Namespace => "resource and namespace".into(),
        GroupBy::Kind => "kind".into(),
    }
}

fn group_json(g: &GroupStats) -> Value {
    json!({
        "live_keys": g.live_keys, "live_bytes": g.live_bytes,
        "history_versions": g.history_versions, "history_bytes": g.history_bytes,
        "tombstones": g.tombstones, "tombstone_bytes": g.tombstone_bytes,
        "total_bytes": g.total_bytes(),
    })
}

fn key_json(k: &KeyStat) -> Value {
    let mut v = json!({
        "group": k.group, "size": k.size, "revisions": k.revisions, "live": k.live,
    });
    if let Some(o) = v.as_object_mut() {
        match std::str::from_utf8(&k.key) {
            Ok(s) => o.insert("key".into(), json!(s)),
            Err(_) => o.insert(
                "key_base64".into(),
                json!(super::format::get::base64(&k.key)),
            ),
        };
    }
    v
}

fn to_json(st: &Stats) -> Value {
    json!({
        "by": by_name(st.by),
        "db_size": st.db_size,
        "page_size": st.page_size,
        "pages": {
            "branch": st.pages.branch_pages, "leaf": st.pages.leaf_pages,
            "overflow": st.pages.overflow_pages, "free": st.pages.free_pages,
        },
        "free_bytes": st.free_bytes(),
        "last_revision": st.last_revision,
        "key_bucket": group_json(&st.total),
        "other_buckets_bytes": st.other_buckets_bytes,
        "bad_entries": st.bad_entries,
        "groups": st.groups.iter().map(|(n, g)| {
            let mut v = group_json(g);
            if let Some(o) = v.as_object_mut() { o.insert("group".into(), json!(n)); }
            v
        }).collect::<Vec<_>>(),
        "largest": st.largest.iter().map(key_json).collect::<Vec<_>>(),
        "most_revisions": st.most_revisions.iter().map(key_json).collect::<Vec<_>>(),
    })
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

fn render_text(st: &Stats) -> String {
    let t = &st.total;
    let h = humanize::bytes;
    let mut s = format!(
        "database: {} ({} pages of {} B), newest revision {}\n\
         key bucket: {} in {} live keys ({}), {} history versions ({}), {} tombstones ({})\n\
         free pages: {} ({}): what a defragmentation gives back; history and tombstones ({}) go after a compaction and a defragmentation\n\
         other buckets: {}\n",
        h(st.db_size),
        st.db_size / u64::from(st.page_size.max(1)),
        st.page_size,
        st.last_revision,
        h(t.total_bytes()),
        t.live_keys,
        h(t.live_bytes),
        t.history_versions,
        h(t.history_bytes),
        t.tombstones,
        h(t.tombstone_bytes),
        st.pages.free_pages,
        h(st.free_bytes()),
        h(t.history_bytes + t.tombstone_bytes),
        h(st.other_buckets_bytes),
    );
    if st.bad_entries > 0 {
        s.push_str(&format!(
            "WARNING: {} entries of the key bucket do not decode and are not counted\n",
            st.bad_entries
        ));
    }
    s.push_str(&format!("\nby {}:\n", by_name(st.by)));
    let rows: Vec<Vec<String>> = st
        .groups
        .iter()
        .map(|(n, g)| {
            vec![
                printable(n.as_bytes()),
                g.live_keys.to_string(),
                h(g.live_bytes),
                g.history_versions.to_string(),
                h(g.history_bytes),
                g.tombstones.to_string(),
                h(g.total_bytes()),
                pct(g.total_bytes(), t.total_bytes()),
            ]
        })
        .collect();
    s.push_str(&table::render(
        &[
            "group",
            "keys",
            "live",
            "old versions",
            "history",
            "tombstones",
            "total",
            "share",
        ],
        &rows,
    ));
    for (title, list) in [
        ("largest keys", &st.largest),
        ("keys with the most revisions", &st.most_revisions),
    ] {
        if list.is_empty() {
            continue;
        }
        s.push_str(&format!("\n{title}:\n"));
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|k| {
                vec![
                    printable(&k.key),
                    h(k.size),
                    k.revisions.to_string(),
                    if k.live {
                        "yes".into()
                    } else {
                        "deleted".into()
                    },
                ]
            })
            .collect();
        s.push_str(&table::render(&["key", "size", "revisions", "live"], &rows));
    }
    s
}
