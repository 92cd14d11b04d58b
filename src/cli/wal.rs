//! `etcdsnap wal dump`: the records of a member's WAL and its newest
//! `.snap`, as an operator checks a restored (or copied) data dir.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use etcdsnap::DataDir;
use etcdsnap::raft::snap::read_snap_file;
use etcdsnap::raft::wal::{
    MAX_RECORD_SIZE_BYTES, Resync, SEGMENT_SIZE_BYTES, WalPayload, WalReader, WalRecord,
    find_records_after, parse_segment_file_name,
};
use etcdsnap::raft::{ConfChangeKind, ConfState, EntryKind, RaftError};
use serde_json::{Value, json};

use super::{EXIT_BAD_ARGS, EXIT_ERROR, Failure, WalDumpArgs, json_or_simple, one_file};

/// `open DIR: reason`, as Go words a failed directory read.
fn open_failure(dir: &Path) -> impl FnOnce(std::io::Error) -> Failure + '_ {
    move |e| Failure::new(EXIT_ERROR, format!("open {}: {e}", dir.display()))
}

fn hex(id: u64) -> String {
    format!("{id:x}")
}

/// etcd's name of an entry kind, or `unknown(N)` for a number it does
/// not define.
fn entry_kind(k: EntryKind) -> String {
    k.name()
        .map_or_else(|| format!("unknown({})", k.code()), str::to_owned)
}

/// etcd's name of a conf change kind, or `unknown(N)`.
fn change_kind(k: ConfChangeKind) -> String {
    k.name()
        .map_or_else(|| format!("unknown({})", k.code()), str::to_owned)
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
            let kind = entry_kind(e.kind);
            let cc = r.conf_change.as_ref().map(|c| {
                json!({
                    "change": change_kind(c.kind),
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
                    let change = change_kind(c.kind);
                    s.push_str(&format!(" conf {change} id={}", hex(c.node_id)));
                    if let Some(ctx) = &c.context {
                        s.push_str(&format!(" context={}", String::from_utf8_lossy(ctx)));
                    }
                }
                None => s.push_str(&format!(
                    " type={} data={} bytes",
                    e.kind.code(),
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
        crc: 0,
        last_index: None,
    };
    w.snapshot(snap.as_deref())?;
    let mut failure = None;
    let mut prev: Option<&PathBuf> = None;
    for (i, seg) in segments.iter().enumerate() {
        let later = segments.len() - i - 1;
        let gap = prev.and_then(|p| w.gap(p, seg));
        if let Some(g) = &gap {
            // Dump what is there all the same, with a fresh chain (the
            // missing segment's CRCs are gone), and fail at the end.
            w.crc = 0;
            failure.get_or_insert_with(|| {
                Failure::new(EXIT_ERROR, format!("{}: {g}", wal_dir.display()))
            });
        }
        prev = Some(seg);
        if let Some(f) = w.segment(i, seg, later, gap.as_deref())? {
            failure.get_or_insert(f);
            break;
        }
    }
    w.finish()?;
    failure.map_or(Ok(()), Err)
}

/// The name of a file, for messages.
fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Looks for valid records in `seg` from offset `from` on: the first
/// non-zero 8-byte word (read in small pieces, so a preallocated zero tail
/// costs no memory), then the records [`find_records_after`] finds from
/// there, reading at most a segment and a record.
fn records_after(seg: &Path, from: u64) -> Result<Option<Resync>, Failure> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e: std::io::Error| Failure::new(EXIT_ERROR, format!("read {}: {e}", seg.display()));
    let mut f = std::fs::File::open(seg).map_err(io)?;
    f.seek(SeekFrom::Start(from)).map_err(io)?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut pos = from;
    let mut word = [0u8; 8];
    let start = loop {
        match r.read_exact(&mut word) {
            Ok(()) if word == [0; 8] => pos = pos.saturating_add(8),
            Ok(()) => break pos,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io(e)),
        }
    };
    let mut data = word.to_vec();
    r.take(SEGMENT_SIZE_BYTES + MAX_RECORD_SIZE_BYTES)
        .read_to_end(&mut data)
        .map_err(io)?;
    Ok(find_records_after(&data, start))
}

/// `entries 69 to 132` (or one entry, or none known).
fn entries(first: Option<u64>, last: Option<u64>) -> String {
    match (first, last) {
        (Some(a), Some(b)) if a == b => format!("entry {a}"),
        (Some(a), Some(b)) => format!("entries {a} to {b}"),
        _ => "no entries".into(),
    }
}

/// Where a dump goes: stdout, one record at a time, as text or as one JSON
/// document written piece by piece.
struct Dump<W: Write> {
    out: W,
    json: bool,
    /// The running CRC, carried from one segment to the next as etcd's
    /// decoder does.
    crc: u32,
    /// The raft index of the last entry read, for saying where a problem is.
    last_index: Option<u64>,
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

    /// Whether segments are missing between `prev` and `next` (their names'
    /// sequence numbers are not consecutive): what is missing, and what
    /// etcd does about it. The gap is also printed.
    fn gap(&mut self, prev: &Path, next: &Path) -> Option<String> {
        let (a, a_index) = parse_segment_file_name(&file_name(prev))?;
        let (b, b_index) = parse_segment_file_name(&file_name(next))?;
        if b == a.saturating_add(1) {
            return None;
        }
        let missing = if b == a.saturating_add(2) {
            format!("WAL segment sequence {} is missing", a.saturating_add(1))
        } else {
            format!(
                "WAL segment sequences {} to {} are missing",
                a.saturating_add(1),
                b.saturating_sub(1)
            )
        };
        // A segment is named after the index of the first entry it holds.
        let from = self.last_index.unwrap_or(a_index).saturating_add(1);
        let lost = entries(Some(from), b_index.checked_sub(1).filter(|&to| to >= from));
        Some(format!(
            "{missing} between {} and {}: {lost} are not in the WAL (etcd refuses to start on it: wal: crc mismatch)",
            file_name(prev),
            file_name(next)
        ))
    }

    fn snapshot(&mut self, snap: Option<&Path>) -> Result<(), Failure> {
        let mut snap_json = Value::Null;
        if let Some(path) = snap {
            let s = read_snap_file(path).map_err(|e| Failure::new(EXIT_ERROR, e))?;
            let data_bytes = s.data.as_ref().map_or(0, Vec::len);
            if !self.json {
                self.line(&format!(
                    "Snapshot {}: term={} index={} confState={} data={} bytes",
                    path.display(),
                    s.term,
                    s.index,
                    conf_state(&s.conf_state),
                    data_bytes
                ))?;
            }
            snap_json = json!({
                "file": path.display().to_string(), "term": s.term, "index": s.index,
                "confState": conf_state(&s.conf_state), "dataBytes": data_bytes,
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
        gap: Option<&str>,
    ) -> Result<Option<Failure>, Failure> {
        let mut reader = WalReader::open(seg)
            .map_err(|e| Failure::new(EXIT_ERROR, e))?
            .with_crc(self.crc);
        if self.json {
            if index > 0 {
                self.raw(",")?;
            }
            self.raw("{\"file\":")?;
            self.value(&Value::from(seg.display().to_string()))?;
            if let Some(g) = gap {
                self.raw(",\"missingBefore\":")?;
                self.value(&Value::from(g))?;
            }
            self.raw(",\"records\":[")?;
        } else {
            if let Some(g) = gap {
                self.line(&format!("MISSING: {g}"))?;
            }
            self.line(&format!("WAL {}:", seg.display()))?;
        }
        let mut n = 0u64;
        let mut stop = None;
        for r in reader.by_ref() {
            match r {
                Ok(rec) => {
                    if let WalPayload::Entry(e) = &rec.payload {
                        self.last_index = Some(e.index);
                    }
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
        self.crc = reader.crc();
        let end = reader.end_offset();
        let after = match &stop {
            // The end of the file, or a zero length word: the end etcd
            // reads, unless valid records lie beyond it.
            None => records_after(seg, end)?,
            Some(RaftError::WalTruncated { .. } | RaftError::WalTornWrite { .. }) => {
                records_after(seg, end.saturating_add(8))?
            }
            Some(_) => None,
        };
        let (err, torn) = match (stop, &after) {
            (None, None) => {
                if self.json {
                    self.raw("]}")?;
                } else {
                    self.line(&format!("{n} records"))?;
                }
                return Ok(None);
            }
            (None, Some(_)) => (
                "a zero-filled record (its length word is 0)".to_owned(),
                false,
            ),
            (Some(e), Some(_)) => (e.to_string(), false),
            (Some(e), None) => {
                let torn = matches!(
                    e,
                    RaftError::WalTruncated { .. } | RaftError::WalTornWrite { .. }
                );
                (e.to_string(), torn)
            }
        };
        let at_index = match self.last_index {
            Some(i) => format!(" (after entry {i})"),
            None => String::new(),
        };
        let why = match (&after, torn, later) {
            (Some(a), _, _) => format!(
                "not a torn tail: {} valid record(s) with {} follow from offset {}; etcd reads up to here only, and when it next starts it zero-fills or truncates the segment from here, losing them",
                a.records,
                entries(a.first_index, a.last_index),
                a.offset
            ),
            (None, ..) => match (torn, later) {
            (true, 0) => "a write cut short by a crash: etcd's read-all mode stops here too, and etcd truncates the segment at this offset when it next starts".to_owned(),
            (true, n) => format!(
                "a torn write before the last segment: etcd stops reading here too, so the {n} later segment(s) are not read"
            ),
            (false, _) => "the segment is corrupt here; etcd refuses to read it".to_owned(),
            },
        };
        if self.json {
            self.raw("],\"stopped\":")?;
            let mut stopped = json!({
                "offset": end, "afterIndex": self.last_index, "error": err,
                "tornTail": torn && later == 0, "explanation": why,
            });
            if let (Some(a), Some(o)) = (&after, stopped.as_object_mut()) {
                o.insert(
                    "validAfter".into(),
                    json!({
                        "offset": a.offset, "records": a.records,
                        "firstIndex": a.first_index, "lastIndex": a.last_index,
                    }),
                );
            }
            self.value(&stopped)?;
            self.raw("}")?;
        } else {
            self.line(&format!(
                "{n} records, then stopped at offset {end}{at_index}: {err} ({why})"
            ))?;
        }
        if torn && later == 0 {
            return Ok(None);
        }
        Ok(Some(Failure::new(
            EXIT_ERROR,
            format!("{} offset {end}{at_index}: {err} ({why})", seg.display()),
        )))
    }

    fn finish(&mut self) -> Result<(), Failure> {
        if self.json {
            self.raw("]}\n")?;
        }
        self.out.flush().map_err(write_failed)
    }
}
