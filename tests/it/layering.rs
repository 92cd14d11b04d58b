//! The README's layering sentence, checked: "Each layer only uses the ones
//! above it in this list". The list is read from the README's
//! Architecture block (every `src/NAME/` or `src/NAME.rs` at the start of
//! a line); every `crate::NAME` a library file names (outside comments and
//! its trailing unit-test module, which may reach any layer to compare
//! across them) must be a module listed above the file's own. A strict
//! order admits no cycle between top-level modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The top-level modules in the order of the README's Architecture block.
fn readme_order() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let block = readme
        .split("\nEach layer only uses the ones above it in this list")
        .nth(1)
        .expect("the README's layering sentence")
        .split("\n```\n")
        .nth(1)
        .expect("the list after it");
    block
        .lines()
        .filter_map(|l| l.strip_prefix("src/"))
        .filter_map(|l| l.split(['/', '.']).next())
        .map(str::to_owned)
        .collect()
}

/// The modules `src/lib.rs` declares.
fn lib_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).expect("lib.rs");
    lib.lines()
        .filter_map(|l| {
            let l = l
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            l.strip_prefix("mod ")?.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file: comment lines dropped, and everything from a
/// top-level `#[cfg(test)] mod tests` on.
fn code(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if *l == "#[cfg(test)]" && lines.get(i + 1).is_some_and(|n| n.starts_with("mod tests")) {
            break;
        }
        if !l.trim_start().starts_with("//") {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// `crate::NAME` references in `code`.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `etcdsnap_crate::`, `$crate::`
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        refs.insert(name);
    }
    refs
}

/// Top-level module -> the top-level modules its files name.
fn edges(modules: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut strays = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        let top = first.as_os_str().to_string_lossy();
        let top = top.strip_suffix(".rs").unwrap_or(&top).to_string();
        if !modules.contains(&top) {
            continue; // lib.rs itself, the binary (main.rs, cli/)
        }
        let text = std::fs::read_to_string(&f).expect("read");
        for r in crate_refs(&code(&text)) {
            if !modules.contains(&r) {
                // A crate-root re-export hides which layer is used.
                strays.push(format!("{}: crate::{r}", rel.display()));
            } else if r != top {
                edges.entry(top.clone()).or_default().insert(r);
            }
        }
    }
    assert!(
        strays.is_empty(),
        "name items by their module's path, not the crate root's re-export: {strays:#?}"
    );
    edges
}

#[test]
fn every_module_uses_only_those_above_it_in_the_readme() {
    let order = readme_order();
    let modules = lib_modules();
    assert!(modules.len() > 10, "lib.rs modules: {modules:?}");
    let unlisted: Vec<&String> = modules.iter().filter(|m| !order.contains(m)).collect();
    assert!(
        unlisted.is_empty(),
        "modules missing from the README's Architecture list: {unlisted:?}"
    );
    let rank = |m: &str| order.iter().position(|o| o == m).expect("listed");
    let mut upward = Vec::new();
    for (from, tos) in edges(&modules) {
        for to in tos {
            if rank(&to) >= rank(&from) {
                upward.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "uses of a module not above the user in the README's list (order {order:?}): {upward:#?}"
    );
}

#[test]
fn the_checker_sees_uses_and_skips_comments_and_unit_tests() {
    let text = "use crate::a::X;\n// crate::b\n    /// [`Y`](crate::c::Y)\nfn f() { $crate::d; crate::e::f() }\n#[cfg(test)]\nmod tests {\n    use crate::g;\n}\n";
    let refs = crate_refs(&code(text));
    assert_eq!(refs, BTreeSet::from(["a".to_string(), "e".to_string()]));
}
