//! `etcdsnap history FILE KEY`: every change of a key still in the file.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use super::format::get::base64;
use super::format::{humanize, table};
use clap::Args;
use etcdsnap::inspect::k8s;
use etcdsnap::mvcc::{Entry, Store};
use serde_json::json;

use super::get::write_stdout;
use super::pflag::GoUint64;
use super::{EXIT_BAD_ARGS, EXIT_BAD_FEATURE, EXIT_ERROR, Failure};

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The snapshot file and the key
    #[arg(value_name = "FILE KEY", value_parser = clap::value_parser!(OsString))]
    args: Vec<OsString>,
    /// Longest value shown in the table, in characters (0: none)
    #[arg(long, value_name = "N", default_value = "60", value_parser = GoUint64)]
    width: u64,
}

pub fn run(a: &HistoryArgs, write_out: &str) -> Result<(), Failure> {
    let [file, key] = a.args.as_slice() else {
        return Err(Failure::new(
            EXIT_BAD_ARGS,
            "history command needs a snapshot file and a key",
        ));
    };
    // An output format it cannot print is refused before the file is read.
    if !matches!(write_out, "json" | "simple" | "table") {
        return Err(Failure::new(
            EXIT_BAD_FEATURE,
            format!("{write_out} not supported as output format for history"),
        ));
    }
    let key = key.as_bytes();
    let snap = super::get::open_any(file)?;
    let store = Store::open(&snap).map_err(|e| Failure::new(EXIT_ERROR, e))?;
    let events = store
        .history(key)
        .map_err(|e| Failure::new(EXIT_ERROR, e))?;
    let revs = store.revisions();
    let out = match write_out {
        "json" => {
            let list: Vec<_> = events
                .iter()
                .map(|e| {
                    let mut v = json!({
                        "type": if e.tombstone { "DELETE" } else { "PUT" },
                        "revision": e.rev.main,
                        "sub_revision": e.rev.sub,
                        "below_compact_revision": e.rev.main < revs.compacted,
                        "kv": {
                            "key": base64(e.kv.key),
                            "create_revision": e.kv.create_revision,
                            "mod_revision": e.kv.mod_revision,
                            "version": e.kv.version,
                            "value": base64(e.kv.value),
                            "lease": e.kv.lease,
                        },
                    });
                    if e.tombstone
                        && let Some(kv) = v.get_mut("kv").and_then(|k| k.as_object_mut())
                    {
                        kv.retain(|k, _| k == "key");
                    }
                    v
                })
                .collect();
            let doc = json!({
                "key": base64(key),
                "current_revision": revs.current,
                "compact_revision": revs.compacted,
                "events": list,
            });
            format!("{doc}\n")
        }
        _ => {
            let mut t = render_table(&events, usize::try_from(a.width).unwrap_or(usize::MAX));
            t.push_str(&format!(
                "current revision {}, compacted at {}\n",
                revs.current, revs.compacted
            ));
            t
        }
    };
    write_stdout(out.as_bytes())
}

/// One row per change, oldest first; values summarised when Kubernetes
/// wrote them, else shown with unprintable bytes as `.`, cut to `width`
/// characters.
fn render_table(events: &[Entry<'_>], width: usize) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let mut value = summary(e.kv.value);
            if value.chars().count() > width {
                value = value
                    .chars()
                    .take(width.saturating_sub(3))
                    .collect::<String>()
                    + "...";
            }
            let mut rev = format!("{}", e.rev.main);
            if e.rev.sub != 0 {
                rev = format!("{rev}.{}", e.rev.sub);
            }
            if e.tombstone {
                vec![
                    rev,
                    "DELETE".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]
            } else {
                vec![
                    rev,
                    "PUT".into(),
                    e.kv.version.to_string(),
                    e.kv.create_revision.to_string(),
                    if e.kv.lease == 0 {
                        String::new()
                    } else {
                        format!("{:x}", e.kv.lease)
                    },
                    humanize::bytes(e.kv.value.len() as u64),
                    value,
                ]
            }
        })
        .collect();
    if rows.is_empty() {
        return "no revision of this key is in the file\n".into();
    }
    table::render(
        &[
            "revision", "event", "version", "created", "lease", "size", "value",
        ],
        &rows,
    )
}

/// A one-line view of a value.
pub fn summary(value: &[u8]) -> String {
    let v = k8s::decode(value);
    match &v {
        k8s::Value::Protobuf(e) => {
            let mut s = format!("[protobuf {} {}", e.api_version, e.kind);
            if let Some(m) = &e.metadata {
                s.push(' ');
                if !m.namespace.is_empty() {
                    s.push_str(&m.namespace);
                    s.push('/');
                }
                s.push_str(&m.name);
            }
            s + "]"
        }
        k8s::Value::Json(j) | k8s::Value::Cbor(j) => format!(
            "[{} {} {}]",
            v.encoding(),
            j.get("apiVersion").and_then(|x| x.as_str()).unwrap_or(""),
            j.get("kind").and_then(|x| x.as_str()).unwrap_or("")
        ),
        k8s::Value::Encrypted {
            provider, key_name, ..
        } => {
            format!("[encrypted {provider} key {key_name}]")
        }
        _ => String::from_utf8_lossy(value)
            .chars()
            .map(|c| {
                if c.is_control() || c == '\u{fffd}' {
                    '.'
                } else {
                    c
                }
            })
            .collect(),
    }
}
