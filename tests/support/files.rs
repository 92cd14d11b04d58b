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
