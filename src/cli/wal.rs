//! `etcdsnap wal dump`: the records of a member's WAL and its newest
//! `.snap`, as an operator checks a restored (or copied) data dir.

use std::path::{Path, PathBuf};

use etcdsnap::DataDir;
use etcdsnap::raft::proto::raftpb::{ConfChangeType, ConfState, EntryType};
use etcdsnap::raft::snap::read_snap_file;
use etcdsnap::raft::wal::{WalPayload, WalRecord, read_segment_file};
use serde_json::{Value, json};

use super::{EXIT_BAD_ARGS, EXIT_ERROR, Failure, WalDumpArgs, json_or_simple, one_file};

/// `open DIR: reason`, as Go words a failed directory read.
fn open_failure(dir: &Path) -> impl FnOnce(std::io::Error) -> Failure + '_ {
    move |e| Failure::new(EXIT_ERROR, format!("open {}: {e}", dir.display()))
}

fn hex(id: u64) -> String {
    format!("{id:x}")
}

fn conf_state(c: &ConfState) -> Value {
    json!({
        "voters": c.voters.iter().map(|v| hex(*v)).collect::<Vec<_>>(),
        "learners": c.learners.iter().map(|v| hex(*v)).collect::<Vec<_>>(),
    })
}

fn record_json(r: &WalRecord) -> Value {
    let body = match &r.payload {
        WalPayload::Crc => json!({"type": "crc", "crc": format!("{:08x}", r.crc)}),
        WalPayload::Metadata(m) => {
            json!({"type": "metadata", "nodeID": hex(m.node_id), "clusterID": hex(m.cluster_id)})
        }
        WalPayload::State(h) => {
            json!({"type": "state", "term": h.term, "vote": hex(h.vote), "commit": h.commit})
        }
        WalPayload::Snapshot(s) => json!({
            "type": "snapshot", "index": s.index, "term": s.term,
            "confState": s.conf_state.as_ref().map(conf_state),
        }),
        WalPayload::Entry(e) => {
            let kind = EntryType::try_from(e.r#type)
                .map_or_else(|_| format!("unknown({})", e.r#type), |t| format!("{t:?}"));
            let cc = r.conf_change.as_ref().map(|c| {
                json!({
                    "change": ConfChangeType::try_from(c.r#type)
                        .map_or_else(|_| format!("unknown({})", c.r#type), |t| format!("{t:?}")),
                    "nodeID": hex(c.node_id),
                    "context": c.context.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()),
                })
            });
            json!({
                "type": "entry", "term": e.term, "index": e.index, "entryType": kind,
                "dataBytes": e.data.as_ref().map_or(0, Vec::len), "confChange": cc,
            })
        }
    };
    json!({"offset": r.offset, "record": body})
}

fn record_line(r: &WalRecord) -> String {
    let what = match &r.payload {
        WalPayload::Crc => format!("crc       crc={:08x}", r.crc),
        WalPayload::Metadata(m) => format!(
            "metadata  nodeID={} clusterID={}",
            hex(m.node_id),
            hex(m.cluster_id)
        ),
        WalPayload::State(h) => format!(
            "state     term={} vote={} commit={}",
            h.term,
            hex(h.vote),
            h.commit
        ),
        WalPayload::Snapshot(s) => format!(
            "snapshot  index={} term={}{}",
            s.index,
            s.term,
            s.conf_state
                .as_ref()
                .map(|c| format!(" confState={}", conf_state(c)))
                .unwrap_or_default()
        ),
        WalPayload::Entry(e) => {
            let mut s = format!("entry     term={} index={}", e.term, e.index);
            match &r.conf_change {
                Some(c) => {
                    let change = ConfChangeType::try_from(c.r#type)
                        .map_or_else(|_| format!("unknown({})", c.r#type), |t| format!("{t:?}"));
                    s.push_str(&format!(" conf {change} id={}", hex(c.node_id)));
                    if let Some(ctx) = &c.context {
                        s.push_str(&format!(" context={}", String::from_utf8_lossy(ctx)));
                    }
                }
                None => s.push_str(&format!(
                    " type={} data={} bytes",
                    e.r#type,
                    e.data.as_ref().map_or(0, Vec::len)
                )),
            }
            s
        }
    };
    format!("@{:<8} {what}", r.offset)
}

pub fn run(a: &WalDumpArgs, write_out: &str) -> Result<(), Failure> {
    let dir = PathBuf::from(one_file(&a.dir, &a.more, "wal dump")?);
    let json_out = json_or_simple(write_out, "wal dump")?;
    if !dir.is_dir() {
        return Err(Failure::new(
            EXIT_BAD_ARGS,
            format!("{}: not a directory", dir.display()),
        ));
    }
    let layout = DataDir::locate(&dir);
    let wal_dir = layout.wal_dir();
    let segments = layout.wal_segments().map_err(open_failure(&wal_dir))?;
    if segments.is_empty() {
        return Err(Failure::new(
            EXIT_ERROR,
            format!("{}: no WAL segments (*.wal)", wal_dir.display()),
        ));
    }
    let snap = layout
        .newest_snap()
        .map_err(open_failure(&layout.snap_dir()))?;
    let mut out = Vec::new();
    let mut snap_json = Value::Null;
    if let Some(path) = &snap {
        let s = read_snap_file(path).map_err(|e| Failure::new(EXIT_ERROR, e))?;
        let m = &s.metadata;
        let data_bytes = s.data.as_ref().map_or(0, Vec::len);
        out.push(format!(
            "Snapshot {}: term={} index={} confState={} data={} bytes",
            path.display(),
            m.term,
            m.index,
            conf_state(&m.conf_state),
            data_bytes
        ));
        snap_json = json!({
            "file": path.display().to_string(), "term": m.term, "index": m.index,
            "confState": conf_state(&m.conf_state), "dataBytes": data_bytes,
        });
    }
    let mut segs_json = Vec::new();
    for seg in &segments {
        let records = read_segment_file(seg).map_err(|e| Failure::new(EXIT_ERROR, e))?;
        out.push(format!("WAL {}: {} records", seg.display(), records.len()));
        out.extend(records.iter().map(record_line));
        segs_json.push(json!({
            "file": seg.display().to_string(),
            "records": records.iter().map(record_json).collect::<Vec<_>>(),
        }));
    }
    if json_out {
        println!("{}", json!({"snapshot": snap_json, "segments": segs_json}));
    } else {
        for l in out {
            println!("{l}");
        }
    }
    Ok(())
}
