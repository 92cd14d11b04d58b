//! What a command left on disk, for comparing two runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file under `dir`, recursively, sorted.
pub fn paths(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every file under `dir`, recursively: path relative to `dir` -> bytes.
pub fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    paths(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).expect("prefix").display().to_string();
            let bytes = std::fs::read(&p).expect("read");
            (rel, bytes)
        })
        .collect()
}

/// Whether every byte of `b` is zero (a preallocated WAL's tail). Compared a block at a time,
/// a `memcmp` each: a byte iterator in the debug test build took ~0.3 s of CPU for 64 MB.
pub fn all_zero(b: &[u8]) -> bool {
    const ZERO: [u8; 4096] = [0; 4096];
    b.chunks(ZERO.len()).all(|c| ZERO.get(..c.len()) == Some(c))
}
