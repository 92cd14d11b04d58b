//! `etcdsnap get FILE KEY [RANGE_END]`: `etcdctl get` against the snapshot,
//! with etcdctl's flags, checks, error texts, exit codes and outputs.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use super::format::get::{self, ResponseHeader};
use clap::Args;
use etcdsnap::Snapshot;
use etcdsnap::TargetVersion;
use etcdsnap::inspect::k8s;
use etcdsnap::mvcc::{RangeRequest, RangeResponse, SortOrder, SortTarget, Store, prefix_end};

use super::global::GlobalArgs;
use super::pflag::{GoBool, GoInt64, parse_bool, quote};
use super::{EXIT_BAD_ARGS, EXIT_BAD_FEATURE, EXIT_ERROR, Failure, resolve_target, target_choice};

// Every flag is parsed as etcdctl's pflag parses it (src/cli/pflag.rs): the
// integers are `Int64Var` (Go's `ParseInt(s, 0, 64)`: `0100` is 64), the
// booleans `BoolVar` (`--flag` or `--flag=V`), the strings take the next
// argument whatever it looks like. The help texts are etcdctl's, so that
// the usage printed after a bad flag reads as etcdctl's does.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// The snapshot file (or a raw member/snap/db), the key, and an optional range end
    #[arg(value_name = "FILE KEY [RANGE_END]", value_parser = clap::value_parser!(OsString))]
    args: Vec<OsString>,
    /// Linearizable(l) or Serializable(s)
    #[arg(long, default_value = "l", allow_hyphen_values = true)]
    consistency: String,
    /// Order of results; ASCEND or DESCEND (ASCEND by default)
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    order: String,
    /// Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION
    #[arg(long = "sort-by", default_value = "", allow_hyphen_values = true)]
    sort_by: String,
    /// Maximum number of results
    #[arg(long, default_value = "0", allow_hyphen_values = true, value_parser = GoInt64)]
    limit: i64,
    /// Get keys with matching prefix
    #[arg(long, num_args = 0..=1, default_value = "false", default_missing_value = "true", require_equals = true, value_parser = GoBool)]
    prefix: bool,
    /// Get keys that are greater than or equal to the given key using byte compare
    #[arg(long = "from-key", num_args = 0..=1, default_value = "false", default_missing_value = "true", require_equals = true, value_parser = GoBool)]
    from_key: bool,
    /// Specify the kv revision
    #[arg(long, default_value = "0", allow_hyphen_values = true, value_parser = GoInt64)]
    rev: i64,
    /// Get only the keys
    #[arg(long = "keys-only", num_args = 0..=1, default_value = "false", default_missing_value = "true", require_equals = true, value_parser = GoBool)]
    keys_only: bool,
    /// Get only the count
    #[arg(long = "count-only", num_args = 0..=1, default_value = "false", default_missing_value = "true", require_equals = true, value_parser = GoBool)]
    count_only: bool,
    /// Only write values when using the "simple" output format
    #[arg(long = "print-value-only", num_args = 0..=1, default_value = "false", default_missing_value = "true", require_equals = true, value_parser = GoBool)]
    print_value_only: bool,
    /// Decode Kubernetes values (protobuf envelope, JSON, CBOR, encrypted)
    #[arg(long, num_args = 0..=1, default_value = "false", default_missing_value = "true", require_equals = true, value_parser = GoBool)]
    decode: bool,
    /// Answer as this etcd release would (its Go's sort order for ties and
    /// quoting): 3.4, 3.5, 3.6, 3.7 or auto (from the snapshot's storage
    /// version; 3.5 when it has none)
    #[arg(long, default_value = "auto", allow_hyphen_values = true)]
    target_version: String,
}

/// Parsed flags: the request etcdctl would send.
struct Plan {
    file: OsString,
    key: Vec<u8>,
    end: Vec<u8>,
    sort_order: SortOrder,
    sort_target: SortTarget,
}

fn plan(a: &GetArgs) -> Result<Plan, Failure> {
    let bad = |m: &str| Failure::new(EXIT_BAD_ARGS, m);
    let [file, rest @ ..] = a.args.as_slice() else {
        return Err(bad(
            "get command needs a snapshot file, then one argument as key and an optional argument as range_end",
        ));
    };
    if rest.is_empty() {
        return Err(bad(
            "get command needs one argument as key and an optional argument as range_end",
        ));
    }
    if a.prefix && a.from_key {
        return Err(bad(
            "`--prefix` and `--from-key` cannot be set at the same time, choose one",
        ));
    }
    if a.keys_only && a.count_only {
        return Err(bad(
            "`--keys-only` and `--count-only` cannot be set at the same time, choose one",
        ));
    }
    if a.consistency != "l" && a.consistency != "s" {
        return Err(Failure::new(
            EXIT_BAD_FEATURE,
            format!("unknown consistency flag {}", quote(&a.consistency)),
        ));
    }
    let mut key = rest
        .first()
        .map(|k| k.as_bytes().to_vec())
        .unwrap_or_default();
    let mut end = Vec::new();
    if let Some(e) = rest.get(1) {
        if a.prefix || a.from_key {
            return Err(bad(
                "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
            ));
        }
        end = e.as_bytes().to_vec();
    }
    let sort_order = match a.order.to_uppercase().as_str() {
        "ASCEND" => SortOrder::Ascend,
        "DESCEND" => SortOrder::Descend,
        "" => SortOrder::None,
        _ => {
            return Err(Failure::new(
                EXIT_BAD_FEATURE,
                format!("bad sort order {}", a.order),
            ));
        }
    };
    let sort_target = match a.sort_by.to_uppercase().as_str() {
        "CREATE" => SortTarget::Create,
        "KEY" | "" => SortTarget::Key,
        "MODIFY" => SortTarget::Mod,
        "VALUE" => SortTarget::Value,
        "VERSION" => SortTarget::Version,
        _ => {
            return Err(Failure::new(
                EXIT_BAD_FEATURE,
                format!("bad sort target {}", a.sort_by),
            ));
        }
    };
    if a.prefix {
        if key.is_empty() {
            key = vec![0];
            end = vec![0];
        } else {
            end = prefix_end(&key);
        }
    }
    if a.from_key {
        if key.is_empty() {
            key = vec![0];
        }
        end = vec![0];
    }
    Ok(Plan {
        file: file.clone(),
        key,
        end,
        sort_order,
        sort_target,
    })
}

/// etcdctl's printers: any other `-w` is refused before the request is
/// sent (`table` is known, and refused for get once the answer is in).
const OUTPUT_FORMATS: [&str; 5] = ["simple", "json", "fields", "protobuf", "table"];

pub fn run(a: &GetArgs, global: &GlobalArgs, write_out: &str) -> Result<(), Failure> {
    // etcdctl's global --hex (or ETCDCTL_HEX), the only global flag a read
    // of a file has a use for.
    // etcdctl's order: the command's own checks, then the client's flags
    // and ETCDCTL_* variables, then the output format, then the request.
    let p = plan(a)?;
    let global = global.with_process_env()?;
    let hex = match global.hex.as_deref() {
        Some(v) => parse_bool(v).map_err(|e| Failure::new(EXIT_ERROR, e))?,
        None => false,
    };
    if !OUTPUT_FORMATS.contains(&write_out) {
        return Err(Failure::new(EXIT_BAD_FEATURE, "unsupported output format"));
    }
    let choice = target_choice(&a.target_version)?;
    let snap = open_any(&p.file)?;
    let rules: TargetVersion = resolve_target(&snap, choice)?;
    let store = Store::open(&snap)
        .map_err(|e| Failure::new(EXIT_ERROR, e))?
        .with_rules(rules);
    let req = RangeRequest::key(&p.key)
        .with_range_end(&p.end)
        .with_revision(a.rev.max(0))
        .with_limit(a.limit)
        .with_sort_order(p.sort_order)
        .with_sort_target(p.sort_target)
        .with_keys_only(a.keys_only)
        .with_count_only(a.count_only);
    let resp = store.range(&req).map_err(|e| Failure::new(EXIT_ERROR, e))?;
    // etcdctl checks these after the request has been answered.
    if a.count_only && write_out != "fields" {
        return Err(Failure::new(
            EXIT_BAD_ARGS,
            "--count-only is only for `--write-out=fields`",
        ));
    }
    if a.print_value_only && write_out != "simple" {
        return Err(Failure::new(
            EXIT_BAD_ARGS,
            "print-value-only is only for `--write-out=simple`",
        ));
    }
    let info = store.cluster().unwrap_or_default();
    let header = ResponseHeader {
        cluster_id: info.cluster_id,
        member_id: info.member_id,
        revision: resp.header_revision,
        raft_term: info.raft_term,
    };
    let out = match write_out {
        "simple" if a.decode => decoded_simple(&resp, a.print_value_only),
        "simple" => get::simple(&resp, hex, a.print_value_only),
        "json" if a.decode => decoded_json(&resp, &header).into_bytes(),
        "json" => get::json(&resp, &header).into_bytes(),
        "fields" => get::fields(&resp, &header, rules).into_bytes(),
        "protobuf" => get::protobuf(&resp, &header),
        "table" => {
            return Err(Failure::new(
                EXIT_BAD_FEATURE,
                "table not supported as output format",
            ));
        }
        // Checked before the request; kept for a list that grows apart.
        _ => return Err(Failure::new(EXIT_BAD_FEATURE, "unsupported output format")),
    };
    write_stdout(&out)
}

/// Opens a snapshot named on the command line: a path, a URL or a
/// compressed file (as every snapshot command takes them); a path that is
/// not UTF-8 is opened as it is.
pub fn open_any(file: &std::ffi::OsStr) -> Result<Snapshot, Failure> {
    match file.to_str() {
        Some(text) => {
            let bar = super::progress::Bar::new();
            let snap = super::open_snapshot(text, &bar);
            bar.finish();
            snap
        }
        None => Snapshot::open(file).map_err(|e| Failure::new(EXIT_ERROR, e)),
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn write_stdout(b: &[u8]) -> Result<(), Failure> {
    let mut o = std::io::stdout().lock();
    match o.write_all(b).and_then(|()| o.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::new(EXIT_ERROR, format!("write stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// Simple output with `--decode`: the key, then the decoded value as
/// indented JSON (the raw value when it is nothing Kubernetes writes).
fn decoded_simple(resp: &RangeResponse<'_>, value_only: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for kv in &resp.kvs {
        if !value_only {
            out.extend_from_slice(kv.key);
            out.push(b'\n');
        }
        match k8s::decode(kv.value).to_json() {
            Some(v) => {
                let text = serde_json::to_string_pretty(&v).unwrap_or_default();
                out.extend_from_slice(text.as_bytes());
            }
            None => out.extend_from_slice(kv.value),
        }
        out.push(b'\n');
    }
    out
}

/// JSON output with `--decode`: etcdctl's, with a `decoded` member added to
/// each key-value that holds something Kubernetes writes.
fn decoded_json(resp: &RangeResponse<'_>, header: &ResponseHeader) -> String {
    get::json_with(resp, header, |kv| {
        k8s::decode(kv.value)
            .to_json()
            .map(|d| format!("\"decoded\":{d}"))
    })
}
