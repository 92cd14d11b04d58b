//! `snapshot status -w simple|table|json|fields`, as etcdutl prints it.

use std::fmt::Write as _;
use std::str::FromStr;

use super::{humanize, table};
use etcdsnap::Status;

/// An etcdutl `--write-out` format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// One comma-separated line.
    #[default]
    Simple,
    /// A bordered table.
    Table,
    /// One JSON object.
    Json,
    /// `"Name" : value` lines.
    Fields,
}

/// An output format etcdutl does not support; `exit_code` is etcdutl's (4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UnsupportedFormat {
    /// etcdutl's message.
    pub message: String,
}

impl FromStr for OutputFormat {
    type Err = UnsupportedFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "simple" => Ok(OutputFormat::Simple),
            "table" => Ok(OutputFormat::Table),
            "json" => Ok(OutputFormat::Json),
            "fields" => Ok(OutputFormat::Fields),
            "protobuf" => Err(UnsupportedFormat {
                message: "protobuf not supported as output format".into(),
            }),
            _ => Err(UnsupportedFormat {
                message: "unsupported output format".into(),
            }),
        }
    }
}

/// Renders `s` exactly as `etcdutl snapshot status -w <format>` prints it
/// (newline included). A status with a `version` (the 3.6 and 3.7 rules)
/// gets their extra column and field; 3.7 draws tables with Unicode
/// borders.
pub fn render_status(s: &Status, format: OutputFormat) -> String {
    let mut row = vec![
        format!("{:x}", s.hash),
        s.revision.to_string(),
        s.total_key.to_string(),
        humanize::bytes(s.total_size),
    ];
    let mut headers = vec!["hash", "revision", "total keys", "total size"];
    if let Some(v) = &s.version {
        row.push(v.clone());
        headers.push("version");
    }
    match format {
        OutputFormat::Simple => format!("{}\n", row.join(", ")),
        OutputFormat::Table => {
            let borders = if s.target >= etcdsnap::TargetVersion::V3_7 {
                table::Borders::Unicode
            } else {
                table::Borders::Ascii
            };
            table::render_with(&headers, &[row], borders)
        }
        OutputFormat::Json => {
            let mut o = format!(
                "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}",
                s.hash, s.revision, s.total_key, s.total_size
            );
            if let Some(v) = &s.version {
                o.push_str(",\"version\":");
                etcdsnap::internal::go::json::write_str(
                    &mut o,
                    v.as_bytes(),
                    etcdsnap::internal::go::GoRelease::GO1_16,
                );
            }
            o.push_str("}\n");
            o
        }
        OutputFormat::Fields => {
            let mut o = String::new();
            let _ = writeln!(o, "\"Hash\" : {}", s.hash);
            let _ = writeln!(o, "\"Revision\" : {}", s.revision);
            let _ = writeln!(o, "\"Keys\" : {}", s.total_key);
            let _ = writeln!(o, "\"Size\" : {}", s.total_size);
            if let Some(v) = &s.version {
                let _ = writeln!(o, "\"Version\" : {v}");
            }
            o
        }
    }
}
