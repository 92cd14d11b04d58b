//! `hashkv -w simple|table|json|fields`, as `etcdutl hashkv` (3.6, 3.7)
//! prints it.
//!
//! The simple and JSON outputs are checked against recordings of etcdutl
//! 3.6.14 and 3.7.1; the table and fields outputs follow their source
//! (`etcdutl/etcdutl/printer*.go`, `DBHashKV`): no recording of them
//! exists.

use std::fmt::Write as _;

use super::status::OutputFormat;
use super::table;
use crate::etcd::TargetVersion;
use crate::mvcc::HashKv;

/// Renders `h` exactly as `etcdutl hashkv -w <format>` prints it (newline
/// included). `target` picks the table borders: etcd 3.7's are Unicode.
///
/// ```
/// use etcdsnap::TargetVersion;
/// use etcdsnap::format::{OutputFormat, render_hashkv};
/// use etcdsnap::mvcc::Store;
/// let snap = etcdsnap::Snapshot::open("testdata/snapshots/small-v35.db")?;
/// let h = Store::open(&snap)?.with_rules(TargetVersion::V3_6).hash_kv(4)?;
/// assert_eq!(render_hashkv(&h, OutputFormat::Simple, TargetVersion::V3_6), "2905696941, 4, -1\n");
/// assert_eq!(render_hashkv(&h, OutputFormat::Json, TargetVersion::V3_6),
///            "{\"hash\":2905696941,\"hashRevision\":4,\"compactRevision\":-1}\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render_hashkv(h: &HashKv, format: OutputFormat, target: TargetVersion) -> String {
    let row = vec![
        h.hash.to_string(),
        h.hash_revision.to_string(),
        h.compact_revision.to_string(),
    ];
    match format {
        OutputFormat::Simple => format!("{}\n", row.join(", ")),
        OutputFormat::Table => {
            let borders = if target >= TargetVersion::V3_7 {
                table::Borders::Unicode
            } else {
                table::Borders::Ascii
            };
            table::render_with(
                &["hash", "hash revision", "compact revision"],
                &[row],
                borders,
            )
        }
        OutputFormat::Json => format!(
            "{{\"hash\":{},\"hashRevision\":{},\"compactRevision\":{}}}\n",
            h.hash, h.hash_revision, h.compact_revision
        ),
        OutputFormat::Fields => {
            let mut o = String::new();
            let _ = writeln!(o, "\"Hash\" : {}", h.hash);
            let _ = writeln!(o, "\"Hash revision\" : {}", h.hash_revision);
            let _ = writeln!(o, "\"Compact revision\" : {}", h.compact_revision);
            o
        }
    }
}
