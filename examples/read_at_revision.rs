//! Reads keys from a backup as they were at a revision, without booting an
//! etcd: what was under a prefix, and the history of one key.
//!
//! ```sh
//! cargo run --example read_at_revision -- testdata/snapshots/small-v35.db "" 2
//! ```
//!
//! Arguments: a snapshot file, a key prefix (`""` for every key) and a
//! revision (0 for the newest). A revision older than the last compaction
//! gets etcd's own error.

use std::process::ExitCode;

use etcdsnap::Snapshot;
use etcdsnap::mvcc::{RangeRequest, Store, prefix_end};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, prefix, rev] = args.as_slice() else {
        eprintln!("usage: read_at_revision SNAPSHOT PREFIX REVISION");
        return ExitCode::from(2);
    };
    let Ok(rev) = rev.parse::<i64>() else {
        eprintln!("REVISION must be a number");
        return ExitCode::from(2);
    };
    match run(file, prefix.as_bytes(), rev) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(file: &str, prefix: &[u8], rev: i64) -> Result<(), Box<dyn std::error::Error>> {
    let snap = Snapshot::open(file)?;
    let store = Store::open(&snap)?;
    let revs = store.revisions();
    println!(
        "{file}: current revision {}, compacted at {}",
        revs.current, revs.compacted
    );
    // etcd's --prefix: from the prefix to the next key after all keys
    // starting with it; an empty prefix means every key ("\0" to "\0").
    let (key, end) = if prefix.is_empty() {
        (b"\0".to_vec(), b"\0".to_vec())
    } else {
        (prefix.to_vec(), prefix_end(prefix))
    };
    let req = RangeRequest::key(&key)
        .with_range_end(&end)
        .with_revision(rev);
    let resp = store.range(&req)?;
    println!("{} keys at revision {}", resp.count, resp.header_revision);
    for kv in &resp.kvs {
        println!(
            "  {} = {} (created {}, modified {}, version {})",
            String::from_utf8_lossy(kv.key),
            String::from_utf8_lossy(kv.value),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        );
    }
    if let Some(first) = resp.kvs.first() {
        let history = store.history(first.key)?;
        println!("history of {}:", String::from_utf8_lossy(first.key));
        for e in history {
            let what = if e.tombstone { "delete" } else { "put" };
            println!("  revision {}: {what}", e.rev.main);
        }
    }
    Ok(())
}
