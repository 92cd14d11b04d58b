//! The backup-and-restore guide, end to end, with `etcdctl` replaced by
//! `etcdsnap`: a three-member TLS cluster (etcd 3.5.1, client certificates
//! required); `name=jormun`; `ETCDCTL_API=3 etcdsnap --endpoints https://..
//! --cacert=ca.pem --cert=members.pem --key=members-key.pem snapshot save
//! snap.db`; `name=jormun_new`; stop; the guide's three restore command
//! lines (cert flags included, before and after the subcommand); start;
//! `get name` answers `jormun`.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::cmd::{self, CmdOutput};
use support::etcd::ClusterSpec;
use support::tls;
use support::tools::{self, EtcdVersion, etcd_child_env};

fn etcdsnap(dir: &Path, args: &[String]) -> CmdOutput {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
    etcd_child_env(&mut c);
    c.env("ETCDCTL_API", "3").current_dir(dir).args(args);
    cmd::run(&mut c, Duration::from_secs(120))
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn guide_walkthrough_over_tls() {
    let Some(bins) = tools::require(tools::etcd_suite(EtcdVersion::V35)) else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    // The guide's file names: ca.pem, members.pem, members-key.pem.
    let certs = tls::make(dir);

    let mut cluster = ClusterSpec::new(&bins, 3).tls(&certs).start();
    cluster.ctl().put("name", "jormun");

    let out = etcdsnap(
        dir,
        &s(&[
            "--endpoints",
            cluster.endpoint(),
            "--cacert=ca.pem",
            "--cert=members.pem",
            "--key=members-key.pem",
            "snapshot",
            "save",
            "snap.db",
        ]),
    );
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout, "Snapshot saved at snap.db\n");

    cluster.ctl().put("name", "jormun_new");
    assert_eq!(
        cluster.ctl().get("name").as_deref(),
        Some(&b"jormun_new"[..])
    );
    cluster.stop();

    // The restored cluster: new ports, the same names and certificates.
    let spec = ClusterSpec::new(&bins, 3)
        .tls(&certs)
        .token("etcd-cluster-1");
    let initial = spec.initial_cluster();
    let endpoints = spec
        .members
        .iter()
        .map(|m| m.client_url())
        .collect::<Vec<_>>()
        .join(",");
    let mut restored = Vec::new();
    for (i, m) in spec.members.iter().enumerate() {
        let data_dir = dir.join(format!("{}.etcd", m.name));
        let peer = m.peer_url();
        let restore = [
            "snapshot",
            "restore",
            "snap.db",
            "--name",
            m.name.as_str(),
            "--initial-cluster",
            initial.as_str(),
            "--initial-cluster-token",
            "etcd-cluster-1",
            "--initial-advertise-peer-urls",
            peer.as_str(),
            "--data-dir",
            data_dir.to_str().expect("utf-8"),
        ];
        let tls_flags = [
            "--endpoints",
            endpoints.as_str(),
            "--cacert=ca.pem",
            "--cert=members.pem",
            "--key=members-key.pem",
        ];
        // Member 1 as the guide writes it (flags after the command),
        // member 2 with the flags first, member 3 mixed.
        let args: Vec<&str> = match i {
            0 => restore.iter().chain(tls_flags.iter()).copied().collect(),
            1 => tls_flags.iter().chain(restore.iter()).copied().collect(),
            _ => tls_flags[..2]
                .iter()
                .chain(restore.iter())
                .chain(tls_flags[2..].iter())
                .copied()
                .collect(),
        };
        let out = etcdsnap(dir, &s(&args));
        assert!(out.success(), "member {}: {out}", m.name);
        restored.push(data_dir);
    }
    let mut spec = spec;
    for (i, d) in restored.iter().enumerate() {
        spec = spec.data_dir(i, d);
    }
    let cluster = spec.start();
    for i in 0..3 {
        assert_eq!(
            cluster.ctl_member(i).get("name").as_deref(),
            Some(&b"jormun"[..]),
            "member {i}"
        );
    }
    // And it takes writes.
    cluster.ctl().put("after", "restore");
    assert_eq!(cluster.ctl().get("after").as_deref(), Some(&b"restore"[..]));
}
