//! `get`, `history`, `stats` and `diff` on every file of the corruption
//! corpus (`support::corrupt`): each answers or fails with an `Error:` line
//! and exit 1, never a panic or a hang; `stats`, which walks the structure,
//! refuses every structurally broken body.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;
use std::time::Duration;

use support::cmd;
use support::corrupt::{self, Body};

fn run(args: &[&std::ffi::OsStr]) -> cmd::CmdOutput {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
    c.args(args);
    cmd::run(&mut c, Duration::from_secs(60))
}

#[test]
fn corrupt_files_get_errors_not_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = support::fixtures::snapshot("k8s-v35.db");
    let mut refused = 0;
    for v in corrupt::corpus() {
        let p = v.write_to(dir.path());
        let f = p.as_os_str();
        let cases: Vec<Vec<&std::ffi::OsStr>> = vec![
            vec!["get".as_ref(), f, "--prefix".as_ref(), "".as_ref()],
            vec![
                "-w".as_ref(),
                "json".as_ref(),
                "get".as_ref(),
                f,
                "/registry/pods/ns1/obj-0000001".as_ref(),
            ],
            vec!["history".as_ref(), f, "name".as_ref()],
            vec!["stats".as_ref(), f],
            vec!["diff".as_ref(), good.as_os_str(), f, "--summary".as_ref()],
        ];
        for args in cases {
            let out = run(&args);
            assert!(
                !out.panicked() && !out.timed_out,
                "{} {args:?}:\n{out}",
                v.name
            );
            match out.code() {
                Some(0) => {}
                Some(1) => {
                    assert!(
                        out.stderr.starts_with("Error: "),
                        "{} {args:?}:\n{out}",
                        v.name
                    );
                    refused += 1;
                }
                other => panic!("{} {args:?}: exit {other:?}\n{out}", v.name),
            }
            if args[0] == "stats" && v.body == Body::Structural {
                assert_eq!(out.code(), Some(1), "stats accepted {}:\n{out}", v.name);
            }
        }
    }
    assert!(refused > 20, "only {refused} refusals");
}
