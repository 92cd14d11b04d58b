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
use etcdsnap::TargetVersion;
use etcdsnap::mvcc::HashKv;

/// Renders `h` exactly as `etcdutl hashkv -w <format>` prints it (newline
/// included). `target` picks the table borders: etcd 3.7's are Unicode.
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
