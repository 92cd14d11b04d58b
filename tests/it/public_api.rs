//! The public API, as a reviewed listing: `tests/public-api.txt` holds every
//! public item of the library (path, kind, signature, fields, variants,
//! methods, trait impls), read from rustdoc's JSON output. A change to the
//! public API fails this test until the listing is regenerated with
//! `ETCDSNAP_BLESS=1 cargo test --test it public_api` and the diff is committed,
//! so that every API change is a deliberate, reviewed one (the role
//! `cargo semver-checks` plays for published crates; it is not installable
//! here without a prebuilt binary, and there is no released baseline yet).
//!
//! Items behind `#[doc(hidden)]` (`etcdsnap::internal`, for this crate's own
//! tests and benches) are not part of the API and are not listed.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const LISTING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/public-api.txt");

/// Runs rustdoc with JSON output. The JSON backend is unstable, so the
/// stable toolchain is told to allow it for this crate alone
/// (`RUSTC_BOOTSTRAP=etcdsnap`), as cargo-semver-checks does.
fn rustdoc_json() -> Value {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let exe = std::env::current_exe().expect("path of this test binary");
    let shared = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(manifest).join("target"));
    // RUSTC_BOOTSTRAP is part of cargo's fingerprints (build scripts declare
    // it), so a nested cargo that sets it where the outer one did not would
    // rebuild the dependencies' checks in place while other cargo commands
    // (the doctests, which .ci/run runs beside the tests) read them. When
    // the whole run already allows unstable options for this crate (.ci/run
    // exports RUSTC_BOOTSTRAP=etcdsnap for every cargo step), the test uses
    // the shared target dir and reuses the checks `cargo clippy` and `cargo
    // doc` made; otherwise a target dir of its own (target/public-api).
    let (target, bootstrap) = match std::env::var("RUSTC_BOOTSTRAP") {
        Ok(v) if v == "1" || v.split(',').any(|c| c.trim() == "etcdsnap") => (shared, v),
        _ => (shared.join("public-api"), "etcdsnap".to_owned()),
    };
    // The compiler and rustdoc beside the cargo that built this test, named
    // outright: run outside cargo (as .ci/run runs test binaries), rustup's
    // `rustc` proxy would pick the toolchain from the directory it compiles
    // in, and a dependency that ships a `rust-toolchain` file of its own
    // (redb names 1.90) sends it to a toolchain this machine lacks.
    let cargo = Path::new(env!("CARGO"));
    let mut command = Command::new(cargo);
    // Nothing of the package's environment that cargo (or .ci/run) gave this
    // test reaches the nested cargo: ring's build script declares some of
    // those variables, so whether the dependencies' checks in target/public-api
    // could be reused depended on how this test had been started.
    for (var, _) in std::env::vars_os() {
        if var
            .to_str()
            .is_some_and(|v| v.starts_with("CARGO_") && v != "CARGO_HOME")
        {
            command.env_remove(var);
        }
    }
    for (var, tool) in [("RUSTC", "rustc"), ("RUSTDOC", "rustdoc")] {
        let beside = cargo.with_file_name(tool);
        if beside.is_file() {
            command.env(var, beside);
        }
    }
    let out = command
        .current_dir(manifest)
        .env("RUSTC_BOOTSTRAP", bootstrap)
        .env_remove("RUSTDOCFLAGS")
        .args(["rustdoc", "--lib", "--quiet", "--target-dir"])
        .arg(&target)
        .args(["--", "-Z", "unstable-options", "--output-format", "json"])
        .output()
        .expect("run cargo rustdoc");
    assert!(
        out.status.success(),
        "cargo rustdoc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read(target.join("doc").join("etcdsnap.json")).expect("rustdoc JSON");
    serde_json::from_slice(&json).expect("rustdoc JSON parses")
}

struct Api<'a> {
    index: &'a serde_json::Map<String, Value>,
    lines: BTreeSet<String>,
}

fn id_key(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl<'a> Api<'a> {
    fn item(&self, id: &Value) -> Option<&'a Value> {
        self.index.get(&id_key(id))
    }

    fn is_public(item: &Value) -> bool {
        item["visibility"] == "public"
    }

    fn attrs(item: &Value) -> String {
        let attrs: Vec<String> = item["attrs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                a.as_str()
                    .map(str::to_owned)
                    .or_else(|| Some(a.to_string()))
            })
            .filter(|a| a.contains("non_exhaustive"))
            .map(|_| "#[non_exhaustive] ".to_owned())
            .collect();
        attrs.concat()
    }

    /// Lists a module's public items under `path`.
    fn module(&mut self, path: &str, module: &Value) {
        for id in module["inner"]["module"]["items"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(item) = self.item(id) else { continue };
            if !Self::is_public(item) {
                continue;
            }
            self.entry(path, item, None);
        }
    }

    /// Lists one item, named `name` (a re-export's name) or its own name.
    fn entry(&mut self, path: &str, item: &'a Value, name: Option<&str>) {
        let inner = &item["inner"];
        let Some((kind, body)) = inner.as_object().and_then(|o| o.iter().next()) else {
            return;
        };
        if kind == "use" {
            let target = body["id"].clone();
            let Some(t) = (!target.is_null()).then(|| self.item(&target)).flatten() else {
                // A re-export of another crate's item.
                let source = body["source"].as_str().unwrap_or_default();
                self.lines.insert(format!(
                    "use {path}::{} = {source}",
                    body["name"].as_str().unwrap_or_default()
                ));
                return;
            };
            if body["is_glob"] == true {
                self.module(path, t);
            } else {
                self.entry(path, t, body["name"].as_str());
            }
            return;
        }
        let name = name.or(item["name"].as_str()).unwrap_or("_");
        let full = format!("{path}::{name}");
        let attrs = Self::attrs(item);
        match kind.as_str() {
            "module" => {
                self.lines.insert(format!("mod {full}"));
                self.module(&full, item);
            }
            "function" => {
                self.lines
                    .insert(format!("{attrs}fn {full}{}", self.sig(body)));
            }
            "constant" => {
                let ty = self.ty(&body["type"]);
                self.lines.insert(format!("const {full}: {ty}"));
            }
            "static" => {
                let ty = self.ty(&body["type"]);
                self.lines.insert(format!("static {full}: {ty}"));
            }
            "type_alias" => {
                let ty = self.ty(&body["type"]);
                self.lines.insert(format!(
                    "type {full}{} = {ty}",
                    self.generics(&body["generics"])
                ));
            }
            "struct" => {
                let g = self.generics(&body["generics"]);
                self.lines.insert(format!("{attrs}struct {full}{g}"));
                let fields = &body["kind"]["plain"]["fields"];
                let tuple = &body["kind"]["tuple"];
                for f in fields
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(tuple.as_array().into_iter().flatten())
                {
                    if let Some(f) = self.item(f).filter(|f| Self::is_public(f)) {
                        let ty = self.ty(&f["inner"]["struct_field"]);
                        let fname = f["name"].as_str().unwrap_or("_");
                        self.lines.insert(format!("field {full}.{fname}: {ty}"));
                    }
                }
                self.impls(&full, body);
            }
            "enum" => {
                let g = self.generics(&body["generics"]);
                self.lines.insert(format!("{attrs}enum {full}{g}"));
                for v in body["variants"].as_array().into_iter().flatten() {
                    let Some(v) = self.item(v) else { continue };
                    let vattrs = Self::attrs(v);
                    let vname = v["name"].as_str().unwrap_or("_");
                    let vk = &v["inner"]["variant"]["kind"];
                    let mut fields = Vec::new();
                    for f in vk["tuple"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain(vk["struct"]["fields"].as_array().into_iter().flatten())
                    {
                        if let Some(f) = self.item(f) {
                            let n = f["name"].as_str().unwrap_or("_");
                            fields.push(format!("{n}: {}", self.ty(&f["inner"]["struct_field"])));
                        }
                    }
                    let shape = if fields.is_empty() {
                        String::new()
                    } else {
                        format!(" {{ {} }}", fields.join(", "))
                    };
                    self.lines
                        .insert(format!("{vattrs}variant {full}::{vname}{shape}"));
                }
                self.impls(&full, body);
            }
            "trait" => {
                self.lines.insert(format!("trait {full}"));
                for m in body["items"].as_array().into_iter().flatten() {
                    if let Some(m) = self.item(m)
                        && let Some(f) = m["inner"].get("function")
                    {
                        let n = m["name"].as_str().unwrap_or("_");
                        self.lines
                            .insert(format!("trait-fn {full}::{n}{}", self.sig(f)));
                    }
                }
            }
            other => {
                self.lines.insert(format!("{other} {full}"));
            }
        }
    }

    /// Inherent methods (with signatures) and implemented traits (by name)
    /// of a struct or enum; blanket and auto-trait impls are left out.
    fn impls(&mut self, full: &str, body: &Value) {
        for i in body["impls"].as_array().into_iter().flatten() {
            let Some(imp) = self.item(i) else { continue };
            let imp = &imp["inner"]["impl"];
            if imp["is_synthetic"] == true || !imp["blanket_impl"].is_null() {
                continue;
            }
            if let Some(tr) = imp["trait"].as_object() {
                let path = tr.get("path").and_then(Value::as_str).unwrap_or("_");
                let args = tr.get("args").map(|a| self.args(a)).unwrap_or_default();
                self.lines.insert(format!("impl {path}{args} for {full}"));
                continue;
            }
            for m in imp["items"].as_array().into_iter().flatten() {
                let Some(m) = self.item(m).filter(|m| Self::is_public(m)) else {
                    continue;
                };
                let n = m["name"].as_str().unwrap_or("_");
                if let Some(f) = m["inner"].get("function") {
                    self.lines.insert(format!("fn {full}::{n}{}", self.sig(f)));
                } else if let Some(c) = m["inner"].get("assoc_const") {
                    self.lines
                        .insert(format!("const {full}::{n}: {}", self.ty(&c["type"])));
                }
            }
        }
    }

    fn sig(&self, f: &Value) -> String {
        let sig = &f["sig"];
        let inputs: Vec<String> = sig["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let name = p[0].as_str().unwrap_or("_");
                let ty = self.ty(&p[1]);
                if name == "self" {
                    ty.replace("Self", "self")
                } else {
                    format!("{name}: {ty}")
                }
            })
            .collect();
        let out = match &sig["output"] {
            Value::Null => String::new(),
            t => format!(" -> {}", self.ty(t)),
        };
        let konst = if f["header"]["is_const"] == true {
            "const "
        } else {
            ""
        };
        format!(
            "{}{konst}({}){out}",
            self.generics(&f["generics"]),
            inputs.join(", ")
        )
    }

    fn generics(&self, g: &Value) -> String {
        let params: Vec<String> = g["params"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["kind"]["type"]["is_synthetic"] != true)
            .map(|p| {
                let name = p["name"].as_str().unwrap_or("_").to_owned();
                let bounds = self.bounds(&p["kind"]["type"]["bounds"]);
                if bounds.is_empty() {
                    name
                } else {
                    format!("{name}: {bounds}")
                }
            })
            .collect();
        if params.is_empty() {
            String::new()
        } else {
            format!("<{}>", params.join(", "))
        }
    }

    fn bounds(&self, b: &Value) -> String {
        let v: Vec<String> = b
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| {
                if let Some(t) = b.get("trait_bound") {
                    let p = &t["trait"];
                    Some(format!(
                        "{}{}",
                        p["path"].as_str().unwrap_or("_"),
                        self.args(&p["args"])
                    ))
                } else {
                    b.get("outlives").and_then(Value::as_str).map(str::to_owned)
                }
            })
            .collect();
        v.join(" + ")
    }

    fn args(&self, a: &Value) -> String {
        if let Some(ab) = a.get("angle_bracketed") {
            let mut v: Vec<String> = ab["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    if let Some(t) = x.get("type") {
                        self.ty(t)
                    } else if let Some(l) = x.get("lifetime").and_then(Value::as_str) {
                        l.to_owned()
                    } else {
                        x.to_string()
                    }
                })
                .collect();
            for c in ab["constraints"].as_array().into_iter().flatten() {
                let n = c["name"].as_str().unwrap_or("_");
                let t = c["binding"]["equality"]["type"].clone();
                v.push(format!("{n} = {}", self.ty(&t)));
            }
            if v.is_empty() {
                String::new()
            } else {
                format!("<{}>", v.join(", "))
            }
        } else if let Some(p) = a.get("parenthesized") {
            let ins: Vec<String> = p["inputs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| self.ty(t))
                .collect();
            let out = match &p["output"] {
                Value::Null => String::new(),
                t => format!(" -> {}", self.ty(t)),
            };
            format!("({}){out}", ins.join(", "))
        } else {
            String::new()
        }
    }

    fn ty(&self, t: &Value) -> String {
        let Some((kind, v)) = t.as_object().and_then(|o| o.iter().next()) else {
            return t.to_string();
        };
        match kind.as_str() {
            "primitive" | "generic" => v.as_str().unwrap_or("_").to_owned(),
            "resolved_path" => format!(
                "{}{}",
                v["path"].as_str().unwrap_or("_"),
                self.args(&v["args"])
            ),
            "borrowed_ref" => {
                let lt = v["lifetime"]
                    .as_str()
                    .map(|l| format!("{l} "))
                    .unwrap_or_default();
                let m = if v["is_mutable"] == true { "mut " } else { "" };
                format!("&{lt}{m}{}", self.ty(&v["type"]))
            }
            "raw_pointer" => {
                let m = if v["is_mutable"] == true {
                    "mut"
                } else {
                    "const"
                };
                format!("*{m} {}", self.ty(&v["type"]))
            }
            "slice" => format!("[{}]", self.ty(v)),
            "array" => format!(
                "[{}; {}]",
                self.ty(&v["type"]),
                v["len"].as_str().unwrap_or("_")
            ),
            "tuple" => {
                let v: Vec<String> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| self.ty(t))
                    .collect();
                format!("({})", v.join(", "))
            }
            "impl_trait" => format!("impl {}", self.bounds(v)),
            "dyn_trait" => {
                let traits: Vec<String> = v["traits"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        format!(
                            "{}{}",
                            t["trait"]["path"].as_str().unwrap_or("_"),
                            self.args(&t["trait"]["args"])
                        )
                    })
                    .collect();
                let lt = v["lifetime"]
                    .as_str()
                    .map(|l| format!(" + {l}"))
                    .unwrap_or_default();
                format!("dyn {}{lt}", traits.join(" + "))
            }
            "qualified_path" => format!(
                "<{} as {}>::{}",
                self.ty(&v["self_type"]),
                v["trait"]["path"].as_str().unwrap_or("_"),
                v["name"].as_str().unwrap_or("_")
            ),
            "function_pointer" => format!(
                "fn{}",
                self.sig(
                    &serde_json::json!({"sig": v["sig"], "generics": {}, "header": v["header"]})
                )
            ),
            other => format!("<{other}>"),
        }
    }
}

#[test]
fn public_api_matches_the_reviewed_listing() {
    let doc = rustdoc_json();
    let index = doc["index"].as_object().expect("index");
    let mut api = Api {
        index,
        lines: BTreeSet::new(),
    };
    let root = api.item(&doc["root"]).expect("root module");
    api.module("etcdsnap", root);
    let got: String = api.lines.iter().map(|l| format!("{l}\n")).collect();

    if std::env::var_os("ETCDSNAP_BLESS").is_some() {
        std::fs::write(LISTING, &got).expect("write the listing");
        return;
    }
    let want = std::fs::read_to_string(LISTING).unwrap_or_default();
    if got != want {
        let want_set: BTreeSet<&str> = want.lines().collect();
        let got_set: BTreeSet<&str> = got.lines().collect();
        let mut diff: HashMap<&str, Vec<&str>> = HashMap::new();
        diff.entry("added")
            .or_default()
            .extend(got_set.difference(&want_set));
        diff.entry("removed")
            .or_default()
            .extend(want_set.difference(&got_set));
        panic!(
            "the public API changed; if that is intended, run \
             `ETCDSNAP_BLESS=1 cargo test --test it public_api` and commit tests/public-api.txt\n\
             added:\n  {}\nremoved:\n  {}",
            diff["added"].join("\n  "),
            diff["removed"].join("\n  ")
        );
    }
}
