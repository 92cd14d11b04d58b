//! Checks peer URL canonicalisation, `--initial-cluster` parsing, bootstrap
//! verification, member/cluster IDs and the member JSON against what the real
//! `etcdctl 3.4.23` and `etcdutl 3.5.1` restores did for the same flags
//! (`testdata/cluster/golden.json`, made by `testdata/cluster/generate.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use etcdsnap::TargetVersion;
use etcdsnap::internal::membership::{
    BootstrapConfig, Cluster, ClusterError, HostResolver, SystemResolver, bootstrap_with_resolver,
};
use serde_json::Value;

/// Golden runs where this library deliberately differs from the recorded
/// tool, with the reason. Each is still checked: the tool's error must be the
/// one the reason describes, and the library must give the other tool's
/// (3.4.23's) successful outcome instead.
const KNOWN_DEVIATIONS: &[(&str, &str, &str)] = &[
    (
        "url-013",
        "v35",
        "etcd 3.5.0-3.5.5 look up host names even when advertised and cluster URLs are identical \
         (fixed in 3.5.6, issue #14456); this library, like 3.4.22+/3.5.6+, does not",
    ),
    (
        "url-062",
        "v35",
        "same: the host `127.0.0.1%` is looked up by 3.5.1 only because it never skips lookups",
    ),
];

/// The golden cases use loopback addresses, `localhost`, empty hosts and
/// numeric names only. The only names etcd looks up among them are empty or
/// numeric, which [`SystemResolver`] answers without asking anyone; any other
/// lookup is a bug.
struct NoNetworkLookups;

impl HostResolver for NoNetworkLookups {
    fn lookup(&self, host: &str) -> Result<IpAddr, String> {
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            SystemResolver.lookup(host)
        } else {
            panic!("unexpected lookup of {host:?} in a golden test")
        }
    }
}

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/cluster/golden.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

fn flag<'a>(case: &'a Value, defaults: &'a Value, name: &str) -> &'a str {
    case["flags"]
        .get(name)
        .or_else(|| defaults.get(name))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no value for {name}"))
}

fn run(case: &Value, defaults: &Value, version: TargetVersion) -> Result<Cluster, ClusterError> {
    let cfg = BootstrapConfig {
        name: flag(case, defaults, "--name"),
        initial_cluster: flag(case, defaults, "--initial-cluster"),
        initial_cluster_token: flag(case, defaults, "--initial-cluster-token"),
        initial_advertise_peer_urls: flag(case, defaults, "--initial-advertise-peer-urls"),
        version,
    };
    bootstrap_with_resolver(&cfg, &NoNetworkLookups)
}

fn u64_of(v: &Value, what: &str) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{what} is not a u64: {v}"))
}

/// Compares one library outcome with one recorded tool outcome; returns a
/// description of the first difference.
fn compare(
    ours: &Result<Cluster, ClusterError>,
    want: &Value,
    version: TargetVersion,
) -> Result<(), String> {
    let exit = u64_of(&want["exit"], "exit");
    match ours {
        Err(e) => {
            if exit == 0 {
                return Err(format!("we failed with {e:?} ({e}); the tool succeeded"));
            }
            if exit != 1 {
                return Err(format!(
                    "tool exit code {exit}, expected 1 for a restore error"
                ));
            }
            let got = e.to_string();
            let expected = want["error"].as_str().unwrap_or_default();
            if got != expected {
                return Err(format!(
                    "error text differs:\n  ours: {got}\n  tool: {expected}"
                ));
            }
            Ok(())
        }
        Ok(cluster) => {
            if exit != 0 {
                return Err(format!(
                    "we succeeded; the tool failed with {}",
                    want["error"]
                ));
            }
            let mut diffs = Vec::new();
            if cluster.cluster_id != u64_of(&want["cluster_id"], "cluster_id") {
                diffs.push(format!(
                    "cluster id {:x} vs {}",
                    cluster.cluster_id, want["cluster_id"]
                ));
            }
            if cluster.local_id != u64_of(&want["local_member_id"], "local_member_id") {
                diffs.push(format!(
                    "local id {:x} vs {}",
                    cluster.local_id, want["local_member_id"]
                ));
            }
            let members = want["members"].as_array().cloned().unwrap_or_default();
            if members.len() != cluster.members.len() {
                diffs.push(format!(
                    "{} members vs {}",
                    cluster.members.len(),
                    members.len()
                ));
            }
            // Members come in WAL order, which is ascending numeric ID.
            for (ours, theirs) in cluster.members.iter().zip(&members) {
                if ours.id != u64_of(&theirs["id"], "member id") {
                    diffs.push(format!("member id {} vs {}", ours.id, theirs["id"]));
                }
                if ours.to_json(version) != theirs["context"].as_str().unwrap_or_default() {
                    diffs.push(format!(
                        "member JSON {} vs {}",
                        ours.to_json(version),
                        theirs["context"]
                    ));
                }
                let attrs = theirs["raft_attributes"].as_str().unwrap_or_default();
                if ours.raft_attributes_json(version) != attrs {
                    diffs.push(format!(
                        "raftAttributes {} vs {attrs}",
                        ours.raft_attributes_json(version)
                    ));
                }
            }
            // The HardState vote is the smallest ID, i.e. our first member.
            let vote = u64_of(&want["hardstate_vote"], "hardstate_vote");
            if cluster.members.first().map(|m| m.id) != Some(vote) {
                diffs.push(format!("first member is not the HardState vote {vote}"));
            }
            if diffs.is_empty() {
                Ok(())
            } else {
                Err(diffs.join("\n  "))
            }
        }
    }
}

#[test]
fn library_reproduces_every_recorded_restore() {
    let golden = golden();
    let defaults = &golden["defaults"];
    let cases = golden["cases"].as_array().cloned().unwrap_or_default();
    assert!(
        cases.len() >= 100,
        "golden file has only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut deviations_seen = 0;
    let (mut successes, mut errors) = (0, 0);
    for case in &cases {
        let name = case["case"].as_str().unwrap_or_default();
        for (tool, version) in [("v34", TargetVersion::V3_4), ("v35", TargetVersion::V3_5)] {
            let want = &case[tool];
            let ours = run(case, defaults, version);
            if let Some((_, _, why)) = KNOWN_DEVIATIONS
                .iter()
                .find(|(c, t, _)| *c == name && *t == tool)
            {
                deviations_seen += 1;
                let err = want["error"].as_str().unwrap_or_default();
                assert!(
                    err.starts_with("failed to resolve ") && err.ends_with(": no such host))"),
                    "{name}/{tool}: recorded outcome is not the lookup failure described ({why}): {want}"
                );
                if let Err(diff) = compare(&ours, &case["v34"], TargetVersion::V3_4) {
                    failures.push(format!("{name}/{tool} (deviation, vs v34): {diff}"));
                }
                continue;
            }
            if ours.is_ok() {
                successes += 1;
            } else {
                errors += 1;
            }
            if let Err(diff) = compare(&ours, want, version) {
                failures.push(format!("{name}/{tool} flags {}: {diff}", case["flags"]));
            }
        }
    }
    assert_eq!(
        deviations_seen,
        KNOWN_DEVIATIONS.len(),
        "a known deviation is no longer in the golden file"
    );
    assert!(
        successes > 50 && errors > 50,
        "{successes} successes, {errors} errors"
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn golden_covers_the_required_scenarios() {
    let golden = golden();
    let names: Vec<&str> = golden["cases"]
        .as_array()
        .map(|cases| cases.iter().filter_map(|c| c["case"].as_str()).collect())
        .unwrap_or_default();
    for required in [
        "defaults",
        "upper-case-scheme",
        "ipv6",
        "two-urls-unsorted",
        "empty-token",
        "five-members",
        "unix",
        "unixs",
        "query",
        "special-name",
        "leading-space-name",
        "name-not-in-cluster",
        "advertise-missing",
        "duplicate-url",
        "bad-scheme",
        "path-in-url",
        "missing-port",
    ] {
        assert!(
            names.contains(&required),
            "golden file lacks case {required}"
        );
    }
}

#[test]
fn recorded_tools_are_the_reference_versions() {
    let golden = golden();
    let v34 = golden["tools"]["v34"].as_str().unwrap_or_default();
    let v35 = golden["tools"]["v35"].as_str().unwrap_or_default();
    assert!(v34.starts_with("etcdctl version: 3.4.23"), "{v34}");
    assert!(v35.starts_with("etcdutl version: 3.5.1"), "{v35}");
}
