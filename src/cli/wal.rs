//! `etcdsnap wal dump`: the records of a member's WAL and its newest
//! `.snap`, as an operator checks a restored (or copied) data dir.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use etcdsnap::DataDir;
use etcdsnap::raft::RaftError;
use etcdsnap::raft::proto::raftpb::{ConfChangeType, ConfState, EntryType};
use etcdsnap::raft::snap::read_snap_file;
use etcdsnap::raft::wal::{WalPayload, WalReader, WalRecord};
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
    let stdout = std::io::stdout();
    let mut w = Dump {
        out: BufWriter::new(stdout.lock()),
        json: json_out,
    };
    w.snapshot(snap.as_deref())?;
    let mut failure = None;
    for (i, seg) in segments.iter().enumerate() {
        let later = segments.len() - i - 1;
        if let Some(f) = w.segment(i, seg, later)? {
            failure = Some(f);
            break;
        }
    }
    w.finish()?;
    failure.map_or(Ok(()), Err)
}

/// Where a dump goes: stdout, one record at a time, as text or as one JSON
/// document written piece by piece.
struct Dump<W: Write> {
    out: W,
    json: bool,
}

fn write_failed(e: std::io::Error) -> Failure {
    Failure::new(EXIT_ERROR, format!("write stdout: {e}"))
}

impl<W: Write> Dump<W> {
    fn line(&mut self, s: &str) -> Result<(), Failure> {
        writeln!(self.out, "{s}").map_err(write_failed)
    }

    fn raw(&mut self, s: &str) -> Result<(), Failure> {
        self.out.write_all(s.as_bytes()).map_err(write_failed)
    }

    fn value(&mut self, v: &Value) -> Result<(), Failure> {
        serde_json::to_writer(&mut self.out, v)
            .map_err(|e| Failure::new(EXIT_ERROR, format!("write stdout: {e}")))
    }

    fn snapshot(&mut self, snap: Option<&Path>) -> Result<(), Failure> {
        let mut snap_json = Value::Null;
        if let Some(path) = snap {
            let s = read_snap_file(path).map_err(|e| Failure::new(EXIT_ERROR, e))?;
            let m = &s.metadata;
            let data_bytes = s.data.as_ref().map_or(0, Vec::len);
            if !self.json {
                self.line(&format!(
                    "Snapshot {}: term={} index={} confState={} data={} bytes",
                    path.display(),
                    m.term,
                    m.index,
                    conf_state(&m.conf_state),
                    data_bytes
                ))?;
            }
            snap_json = json!({
                "file": path.display().to_string(), "term": m.term, "index": m.index,
                "confState": conf_state(&m.conf_state), "dataBytes": data_bytes,
            });
        }
        if self.json {
            self.raw("{\"snapshot\":")?;
            self.value(&snap_json)?;
            self.raw(",\"segments\":[")?;
        }
        Ok(())
    }

    /// Dumps segment `index` record by record. A frame cut short or torn at
    /// the end of the last segment is what a crash leaves and what etcd's
    /// read-all mode stops at: it is reported and the dump succeeds. Any
    /// other error, or a tear with `later` segments after it, ends the dump
    /// with a failure (etcd would not read past it either).
    fn segment(
        &mut self,
        index: usize,
        seg: &Path,
        later: usize,
    ) -> Result<Option<Failure>, Failure> {
        let mut reader = WalReader::open(seg).map_err(|e| Failure::new(EXIT_ERROR, e))?;
        if self.json {
            if index > 0 {
                self.raw(",")?;
            }
            self.raw("{\"file\":")?;
            self.value(&Value::from(seg.display().to_string()))?;
            self.raw(",\"records\":[")?;
        } else {
            self.line(&format!("WAL {}:", seg.display()))?;
        }
        let mut n = 0u64;
        let mut stop = None;
        for r in reader.by_ref() {
            match r {
                Ok(rec) => {
                    if self.json {
                        if n > 0 {
                            self.raw(",")?;
                        }
                        self.value(&record_json(&rec))?;
                    } else {
                        self.line(&record_line(&rec))?;
                    }
                    n += 1;
                }
                Err(e) => stop = Some(e),
            }
        }
        let Some(err) = stop else {
            if self.json {
                self.raw("]}")?;
            } else {
                self.line(&format!("{n} records"))?;
            }
            return Ok(None);
        };
        let end = reader.end_offset();
        let torn = matches!(
            err,
            RaftError::WalTruncated { .. } | RaftError::WalTornWrite { .. }
        );
        let why = match (torn, later) {
            (true, 0) => "a write cut short by a crash: etcd's read-all mode stops here too, and etcd truncates the segment at this offset when it next starts".to_owned(),
            (true, n) => format!(
                "a torn write before the last segment: etcd stops reading here too, so the {n} later segment(s) are not read"
            ),
            (false, _) => "the segment is corrupt here; etcd refuses to read it".to_owned(),
        };
        if self.json {
            self.raw("],\"stopped\":")?;
            self.value(&json!({
                "offset": end, "error": err.to_string(), "tornTail": torn && later == 0,
                "explanation": why,
            }))?;
            self.raw("}")?;
        } else {
            self.line(&format!(
                "{n} records, then stopped at offset {end}: {err} ({why})"
            ))?;
        }
        if torn && later == 0 {
            return Ok(None);
        }
        Ok(Some(Failure::new(
            EXIT_ERROR,
            format!("{}: {err} ({why})", seg.display()),
        )))
    }

    fn finish(&mut self) -> Result<(), Failure> {
        if self.json {
            self.raw("]}\n")?;
        }
        self.out.flush().map_err(write_failed)
    }
}
