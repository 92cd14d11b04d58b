//! etcdutl's and etcdctl's command-line rules (Go pflag under cobra),
//! checked against etcdutl 3.5.1 and `ETCDCTL_API=3 etcdctl` 3.4.23 run
//! now, on the same command lines: a repeated flag takes its last value;
//! `--data-dir ""` / `--wal-dir ""` mean the default; booleans take Go's
//! `ParseBool` spellings after `=` only; an unknown flag or a bad value
//! exits 1 with pflag's message and the usage; etcdutl's own checks exit
//! 128; a missing input reads `open FILE: no such file or directory`.
//!
//! etcd 3.6.14 and 3.7.1 cannot be installed here and no flag-error texts
//! of theirs were recorded; their pflag (v1.0.10) and cobra (v1.10.2) print
//! the same messages as 3.5's (read in their sources). Where 3.7 differs
//! (its global `--timeout`), the texts are checked against the same
//! envelope from the live tools.

use crate::support;

use std::process::Command;

use support::{fixtures, require_tool, tools};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    Etcdutl35,
    Etcdctl34,
    Ours,
}

const ALL: [Tool; 3] = [Tool::Etcdutl35, Tool::Etcdctl34, Tool::Ours];

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// Entries of the working directory afterwards.
    files: Vec<String>,
}

impl Run {
    fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("Error:"))
            .collect()
    }
    fn first_error(&self) -> &str {
        self.error_lines().first().copied().unwrap_or("")
    }
}

fn program(tool: Tool) -> Command {
    match tool {
        Tool::Etcdutl35 => {
            let p = tools::etcdutl35().expect("etcdutl 3.5.1 (require_tool! first)");
            let mut c = Command::new(p);
            tools::etcd_child_env(&mut c);
            c
        }
        Tool::Etcdctl34 => {
            let bins = tools::etcd_suite(tools::EtcdVersion::V34).expect("etcdctl 3.4.23");
            bins.etcdctl_cmd()
        }
        Tool::Ours => Command::new(env!("CARGO_BIN_EXE_etcdsnap")),
    }
}

/// Runs `tool args...` in a fresh empty working directory.
fn run(tool: Tool, args: &[&str]) -> Run {
    let cwd = tempfile::tempdir().expect("tempdir");
    let out = program(tool)
        .args(args)
        .current_dir(cwd.path())
        .output()
        .expect("run");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        files: fixtures::names_in(cwd.path()),
    }
}

fn snap(name: &str) -> String {
    fixtures::snapshot(name).to_string_lossy().into_owned()
}

fn restore<'a>(file: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["snapshot", "restore", file];
    v.extend_from_slice(rest);
    v
}

macro_rules! require_both {
    () => {
        require_tool!(tools::etcdutl35());
        require_tool!(tools::etcd_suite(tools::EtcdVersion::V34));
    };
}

#[test]
fn unknown_flags_and_bad_values_exit_1_with_pflags_message_and_the_usage() {
    require_both!();
    let s = snap("small-v35.db");
    for extra in [
        vec!["--bogus"],
        vec!["--bogus=1"],
        vec!["--data-dir", "d", "--no-such-flag", "x"],
        vec!["-x"],
        vec!["-qz"],
        vec!["--skip-hash-check=yes"],
        vec!["--skip-hash-check="],
        vec!["--skip-hash-check=tRuE"],
        vec!["--data-dir", "d", "--name"],
        vec!["---x"],
    ] {
        let args = restore(&s, &extra);
        let runs: Vec<Run> = ALL.iter().map(|t| run(*t, &args)).collect();
        for (t, r) in ALL.iter().zip(&runs) {
            assert_eq!(r.code, Some(1), "{t:?} {extra:?}: {}", r.stderr);
            assert!(r.files.is_empty(), "{t:?} {extra:?} wrote {:?}", r.files);
        }
        let want = runs[0].first_error();
        assert!(!want.is_empty(), "{extra:?}: {}", runs[0].stderr);
        for (t, r) in ALL.iter().zip(&runs) {
            assert_eq!(r.first_error(), want, "{t:?} {extra:?}");
        }
        // etcdutl (and etcdsnap): error, usage, error again, on stderr.
        for r in [&runs[0], &runs[2]] {
            let lines: Vec<&str> = r.stderr.lines().collect();
            assert_eq!(lines.get(1), Some(&"Usage:"), "{extra:?}: {}", r.stderr);
            assert_eq!(lines.last(), Some(&want), "{extra:?}");
            assert_eq!(lines.get(lines.len().wrapping_sub(2)), Some(&""));
            assert!(r.stdout.is_empty());
        }
    }
}

#[test]
fn boolean_spellings_are_go_parse_bool() {
    require_both!();
    let member = snap("small-v35.member.db");
    for v in [
        "1", "0", "t", "f", "T", "F", "true", "false", "TRUE", "FALSE", "True", "False", "yes",
    ] {
        let flag = format!("--skip-hash-check={v}");
        let args = restore(&member, &["--data-dir", "d", &flag]);
        let runs: Vec<Run> = ALL.iter().map(|t| run(*t, &args)).collect();
        for (t, r) in ALL.iter().zip(&runs) {
            assert_eq!(r.code, runs[0].code, "{t:?} {v}: {}", r.stderr);
            assert_eq!(r.first_error(), runs[0].first_error(), "{t:?} {v}");
        }
        let accepted = matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True");
        assert_eq!(runs[2].code == Some(0), accepted, "{v}");
    }
    // A bare flag is true; a separate "false" is a second argument (128).
    let bare = restore(&member, &["--data-dir", "d", "--skip-hash-check"]);
    let sep = restore(&member, &["--skip-hash-check", "false", "--data-dir", "d"]);
    for t in ALL {
        assert_eq!(run(t, &bare).code, Some(0), "{t:?} bare");
        let r = run(t, &sep);
        assert_eq!(r.code, Some(128), "{t:?} separate value");
        assert_eq!(
            r.first_error(),
            "Error: snapshot restore requires exactly one argument"
        );
    }
}

#[test]
fn a_repeated_flag_takes_its_last_value() {
    require_both!();
    let s = snap("small-v35.db");
    let member = snap("small-v35.member.db");
    let cases: Vec<(Vec<&str>, Option<i32>, Vec<&str>)> = vec![
        (
            restore(&s, &["--data-dir", "first", "--data-dir", "second"]),
            Some(0),
            vec!["second"],
        ),
        (
            restore(&s, &["--name", "x", "--data-dir", "d", "--name", "default"]),
            Some(0),
            vec!["d"],
        ),
        (
            restore(
                &member,
                &[
                    "--skip-hash-check",
                    "--data-dir",
                    "d",
                    "--skip-hash-check=false",
                ],
            ),
            Some(1),
            vec![],
        ),
    ];
    for (args, code, files) in cases {
        for t in ALL {
            let r = run(t, &args);
            assert_eq!(r.code, code, "{t:?} {args:?}: {}", r.stderr);
            if code == Some(0) {
                assert_eq!(r.files, files, "{t:?} {args:?}");
            }
        }
    }
    // The global -w too, before or after the command.
    let status: Vec<&str> = vec!["snapshot", "status", &s, "-w", "table", "-w", "json"];
    let theirs = run(Tool::Etcdutl35, &status);
    assert_eq!(run(Tool::Ours, &status).stdout, theirs.stdout);
    assert!(theirs.stdout.starts_with('{'));
}

#[test]
fn empty_data_and_wal_dirs_mean_the_defaults() {
    require_both!();
    let s = snap("small-v35.db");
    let args = restore(
        &s,
        &[
            "--data-dir",
            "",
            "--wal-dir",
            "",
            "--name",
            "q",
            "--initial-cluster",
            "q=http://127.0.0.1:2380",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:2380",
        ],
    );
    for t in ALL {
        let cwd = tempfile::tempdir().expect("tempdir");
        let out = program(t)
            .args(&args)
            .current_dir(cwd.path())
            .output()
            .expect("run");
        assert!(out.status.success(), "{t:?}: {:?}", out);
        let wal = cwd.path().join("q.etcd/member/wal");
        assert_eq!(fixtures::names_in(&wal).len(), 1, "{t:?}");
    }
}

#[test]
fn etcdutls_own_checks_exit_128_and_a_missing_file_reads_open() {
    require_both!();
    let s = snap("small-v35.db");
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["snapshot", "restore", "--data-dir", "d"], 128),
        (vec!["snapshot", "restore", &s, &s, "--data-dir", "d"], 128),
        (vec!["snapshot", "status"], 128),
        (
            vec!["snapshot", "restore", "no-such.db", "--data-dir", "d"],
            1,
        ),
    ];
    for (args, code) in cases {
        let runs: Vec<Run> = ALL.iter().map(|t| run(*t, &args)).collect();
        for (t, r) in ALL.iter().zip(&runs) {
            assert_eq!(r.code, Some(code), "{t:?} {args:?}: {}", r.stderr);
            assert_eq!(r.first_error(), runs[0].first_error(), "{t:?} {args:?}");
            assert!(r.files.is_empty(), "{t:?} {args:?}: {:?}", r.files);
        }
    }
    let r = run(
        Tool::Ours,
        &["snapshot", "restore", "no-such.db", "--data-dir", "d"],
    );
    assert_eq!(
        r.stderr,
        "Error: open no-such.db: no such file or directory\n"
    );
}

/// Our integer and duration flags have no twin in etcdutl 3.5.1 or etcdctl
/// 3.4.23 (`--bump-revision` came in 3.5.10/3.4.27, `--timeout` in 3.7):
/// their messages must fit the envelope those tools print for their own
/// integer (`get --rev`) and duration (`--dial-timeout`) flags.
#[test]
fn integer_and_duration_values_read_like_pflag() {
    require_both!();
    let s = snap("small-v35.db");
    for (theirs_args, ours_args, theirs_name, ours_name) in [
        (
            vec!["get", "k", "--rev", "abc"],
            restore(&s, &["--data-dir", "d", "--bump-revision", "abc"]),
            ("--rev", "strconv.ParseInt"),
            ("--bump-revision", "strconv.ParseUint"),
        ),
        (
            vec!["get", "k", "--dial-timeout=abc"],
            vec!["snapshot", "status", &s, "--timeout=abc"],
            ("--dial-timeout", ""),
            ("--timeout", ""),
        ),
    ] {
        let theirs = run(Tool::Etcdctl34, &theirs_args);
        let ours = run(Tool::Ours, &ours_args);
        assert_eq!(theirs.code, Some(1), "{}", theirs.stderr);
        assert_eq!(ours.code, Some(1), "{}", ours.stderr);
        let mut want = theirs.first_error().replace(theirs_name.0, ours_name.0);
        if !theirs_name.1.is_empty() {
            want = want.replace(theirs_name.1, ours_name.1);
        }
        assert_eq!(ours.first_error(), want);
    }
    // Go's base-0 integers: prefixes and underscores are accepted.
    for v in ["0x10", "0o20", "020", "0b10000", "1_6"] {
        let r = run(
            Tool::Ours,
            &restore(
                &s,
                &["--data-dir", "d", "--bump-revision", v, "--mark-compacted"],
            ),
        );
        assert_eq!(r.code, Some(0), "{v}: {}", r.stderr);
    }
    // etcdutl 3.7's global --timeout is accepted (and ignored).
    let r = run(
        Tool::Ours,
        &[
            "snapshot",
            "status",
            &snap("small-v37.db"),
            "--timeout",
            "5s",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let want = std::fs::read_to_string(fixtures::testdata("status/v37/small-v37.db.simple"))
        .expect("recorded");
    assert_eq!(r.stdout, want);
}

#[test]
fn write_out_forms_and_command_prefixes_match_etcdutl() {
    require_tool!(tools::etcdutl35());
    let s = snap("small-v35.db");
    for args in [
        vec!["snapshot", "status", &s, "-wjson"],
        vec!["snapshot", "status", &s, "-w=json"],
        vec!["snapshot", "status", &s, "--write-out=json"],
        vec!["-w", "json", "snapshot", "status", &s],
        vec!["snap", "stat", &s, "-w", "fields"],
        vec!["snapsh", "st", &s],
    ] {
        let theirs = run(Tool::Etcdutl35, &args);
        let ours = run(Tool::Ours, &args);
        assert_eq!(theirs.code, Some(0), "{args:?}: {}", theirs.stderr);
        assert_eq!(ours.code, Some(0), "{args:?}: {}", ours.stderr);
        assert_eq!(ours.stdout, theirs.stdout, "{args:?}");
    }
    // An unknown command: cobra's two lines, exit 1.
    let theirs = run(Tool::Etcdutl35, &["bogus"]);
    let ours = run(Tool::Ours, &["bogus"]);
    assert_eq!((theirs.code, ours.code), (Some(1), Some(1)));
    assert_eq!(
        ours.stderr.replace("etcdsnap", "etcdutl"),
        theirs.stderr,
        "unknown command"
    );
}

/// `--all-members` with flags it would ignore is refused (exit 128), and
/// its `--out-dir` pairing is checked.
#[test]
fn all_members_refuses_flags_it_would_ignore() {
    let s = snap("small-v35.db");
    for (extra, msg) in [
        (
            vec!["--all-members", "--out-dir", "o", "--name", "m1"],
            "Error: --all-members cannot be used with --name",
        ),
        (
            vec![
                "--all-members",
                "--out-dir",
                "o",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:2380",
            ],
            "Error: --all-members cannot be used with --initial-advertise-peer-urls",
        ),
        (
            vec!["--all-members", "--out-dir", "o", "--data-dir", "d"],
            "Error: --all-members cannot be used with --data-dir",
        ),
        (
            vec!["--all-members"],
            "Error: --all-members needs --out-dir DIR",
        ),
        (
            vec!["--out-dir", "o"],
            "Error: --out-dir is only used with --all-members",
        ),
    ] {
        let r = run(Tool::Ours, &restore(&s, &extra));
        assert_eq!(r.code, Some(128), "{extra:?}: {}", r.stderr);
        assert_eq!(r.stderr, format!("{msg}\n"), "{extra:?}");
        assert!(r.files.is_empty());
    }
}

/// etcdctl's global flags (accepted by every command) follow the same
/// rules: against `etcdctl 3.4.23 snapshot status`, which has them too.
#[test]
fn etcdctl_global_flags_follow_the_same_rules() {
    require_tool!(tools::etcd_suite(tools::EtcdVersion::V34));
    let s = snap("small-v35.db");
    for (extra, code) in [
        (vec!["--dial-timeout=1s", "--dial-timeout=xx"], 1),
        (vec!["--dial-timeout=xx", "--dial-timeout=1s"], 1),
        (vec!["--dial-timeout", "3s", "--dial-timeout=4s"], 0),
        (vec!["--insecure-transport=maybe"], 1),
        (vec!["--insecure-transport=F", "--hex=1"], 0),
        (vec!["--insecure-transport", "--debug=T"], 0),
        (vec!["--endpoints", "--127.0.0.1:1"], 0),
        (vec!["--no-such-global"], 1),
    ] {
        let mut args = vec!["snapshot", "status", &s];
        args.extend_from_slice(&extra);
        let theirs = run(Tool::Etcdctl34, &args);
        let ours = run(Tool::Ours, &args);
        assert_eq!(theirs.code, Some(code), "{extra:?}: {}", theirs.stderr);
        assert_eq!(ours.code, Some(code), "{extra:?}: {}", ours.stderr);
        assert_eq!(ours.first_error(), theirs.first_error(), "{extra:?}");
        if code == 0 {
            assert_eq!(ours.stdout, theirs.stdout, "{extra:?}");
        } else {
            assert!(
                ours.stderr.contains("\nUsage:\n"),
                "{extra:?}: {}",
                ours.stderr
            );
        }
    }
}

/// An environment variable whose value is not UTF-8 is skipped where the
/// `ETCDCTL_*` variables are read (`get` used to panic on one): the
/// output is the same as without it.
#[cfg(unix)]
#[test]
fn a_non_utf8_environment_variable_is_skipped() {
    use std::os::unix::ffi::OsStrExt;
    let file = snap("small-v35.db");
    for args in [
        vec!["get", "foo", file.as_str()],
        vec!["get", "foo", "missing.db"],
    ] {
        let plain = run(Tool::Ours, &args);
        let cwd = tempfile::tempdir().expect("tempdir");
        let out = program(Tool::Ours)
            .args(&args)
            .env(
                "ETCDSNAP_TEST_NOT_UTF8",
                std::ffi::OsStr::from_bytes(b"\xff\xfe"),
            )
            .current_dir(cwd.path())
            .output()
            .expect("run");
        assert_eq!(out.status.code(), plain.code, "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            plain.stdout,
            "{args:?}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            plain.stderr,
            "{args:?}"
        );
    }
}

/// etcdsnap's own reading commands (diff, history, stats) parse their
/// flags with the same pflag rules as get and restore: integers are Go's
/// `ParseInt`/`ParseUint` with base 0 (`0100` is 64, `0x`, `0b`, `_`), a
/// revision of 0 or less means the current one, booleans take `=V`, and a
/// bad value is refused with pflag's message and the usage, exit 1
/// (etcdutl's envelope, as for restore's flags).
#[test]
fn diff_history_and_stats_flags_parse_like_pflag() {
    let k8s = snap("k8s-v35.db");
    let out = |args: &[&str]| {
        let r = run(Tool::Ours, args);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.stderr);
        r.stdout
    };
    let same = |a: &[&str], b: &[&str]| assert_eq!(out(a), out(b), "{a:?} vs {b:?}");
    let diff = |flags: &[&'static str]| {
        let mut v = vec!["diff", k8s.as_str(), k8s.as_str()];
        v.extend_from_slice(flags);
        v
    };
    same(&diff(&["--rev-old", "0200"]), &diff(&["--rev-old", "128"]));
    same(&diff(&["--rev-old=0x80"]), &diff(&["--rev-old", "128"]));
    same(
        &diff(&["--rev-old", "0b10000000", "--rev-new", "2_00"]),
        &diff(&["--rev-old=128", "--rev-new=200"]),
    );
    same(&diff(&["--rev-old", "-1"]), &diff(&[]));
    same(
        &diff(&["--rev-old", "128", "--summary=T"]),
        &diff(&["--rev-old", "128", "--summary"]),
    );
    assert_ne!(
        out(&diff(&["--rev-old", "0200"])),
        out(&diff(&["--rev-old", "200"]))
    );
    let stats = |flags: &[&'static str]| {
        let mut v = vec!["stats", k8s.as_str(), "-w", "json"];
        v.extend_from_slice(flags);
        v
    };
    same(&stats(&["--top", "0b11"]), &stats(&["--top", "3"]));
    same(
        &stats(&["--top=010", "--depth", "0x2"]),
        &stats(&["--top", "8", "--depth", "2"]),
    );
    let key = "/registry/configmaps/big/cm-0";
    let history = |flags: &[&'static str]| {
        let mut v = vec!["history", k8s.as_str(), key];
        v.extend_from_slice(flags);
        v
    };
    same(&history(&["--width", "0x10"]), &history(&["--width", "16"]));
    for (args, want) in [
        (
            diff(&["--rev-old", "abc"]),
            "Error: invalid argument \"abc\" for \"--rev-old\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax",
        ),
        (
            diff(&["--rev-new", "99999999999999999999"]),
            "Error: invalid argument \"99999999999999999999\" for \"--rev-new\" flag: strconv.ParseInt: parsing \"99999999999999999999\": value out of range",
        ),
        (
            diff(&["--summary=yes"]),
            "Error: invalid argument \"yes\" for \"--summary\" flag: strconv.ParseBool: parsing \"yes\": invalid syntax",
        ),
        (
            stats(&["--top", "08"]),
            "Error: invalid argument \"08\" for \"--top\" flag: strconv.ParseUint: parsing \"08\": invalid syntax",
        ),
        (
            history(&["--width=-1"]),
            "Error: invalid argument \"-1\" for \"--width\" flag: strconv.ParseUint: parsing \"-1\": invalid syntax",
        ),
    ] {
        let r = run(Tool::Ours, &args);
        assert_eq!(r.code, Some(1), "{args:?}: {}", r.stderr);
        assert_eq!(r.first_error(), want, "{args:?}");
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.get(1), Some(&"Usage:"), "{args:?}: {}", r.stderr);
        assert_eq!(lines.last(), Some(&want), "{args:?}");
    }
}
