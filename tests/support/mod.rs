//! Shared test infrastructure for etcdsnap's integration tests.
//!
//! Use it from an integration test with `mod support;` at the crate root of the test file
//! (the `require_tool!` macro refers to `crate::support`).
//!
//! * [`tools`]: where the reference binaries are (etcd 3.5.1 / 3.4.23, boltcheck) and the
//!   skip-or-fail policy (`require_tool!`).
//! * [`cli`]: run the etcdsnap binary under test to completion.
//! * [`cmd`]: run a command with a timeout and capture its output.
//! * [`ports`], [`http`]: free loopback ports and a tiny HTTP/1.1 client.
//! * [`etcd`]: `EtcdProcess` / `EtcdCluster` on loopback, stopped by PID on drop.
//! * [`snapmaker`]: start a fresh etcd, bulk-load keys, `snapshot save`, stop.
//! * [`oracles`]: thin wrappers around etcdutl / etcdctl / boltcheck for differential tests.
//! * [`corrupt`]: a corpus of corrupted snapshots built by byte manipulation.
//! * [`files`]: what a command left on disk.
//! * [`fixtures`]: paths of the files under `testdata/`.
//! * [`proxy`]: a loopback TCP proxy that stalls after N bytes, and a server that never speaks.
//! * [`s3`]: an S3-compatible server (`s3s-fs`) on loopback, stopped by PID on drop.
//! * [`tls`]: CA, member and client certificates for TLS tests (rcgen).
//!
//! ```ignore
//! mod support;
//! use support::{corrupt, etcd::EtcdCluster, fixtures, oracles, require_tool, tools};
//!
//! #[test]
//! fn example() {
//!     let bins = require_tool!(tools::etcd_suite(tools::EtcdVersion::V35)); // skip, or fail under CI
//!     let cluster = EtcdCluster::single(&bins);                             // loopback, stopped on drop
//!     cluster.ctl().put("k", "v");
//!     let st = oracles::run_etcdutl_status(&fixtures::snapshot("small-v35.db"), "json");
//!     let broken = corrupt::variant("branch-child-self");                   // bytes + expectation
//! }
//! ```
#![allow(dead_code, unused_imports, unused_macros)]

pub mod b64;
pub mod cli;
pub mod cmd;
pub mod corrupt;
pub mod etcd;
pub mod files;
pub mod fixtures;
pub mod http;
pub mod k8swire;
pub mod oracles;
pub mod ports;
pub mod proxy;
pub mod s3;
pub mod snapmaker;
pub mod tls;
pub mod tools;

/// Resolves a tool lookup (`Result<T, String>`, e.g. `tools::etcdutl35()`) or leaves the test.
///
/// When the tool is missing: under `CI=true` the test panics with the lookup's message; otherwise
/// it prints `skipping: <test>: <message>` and `return`s from the enclosing function (so use it
/// in test functions returning `()`).
macro_rules! require_tool {
    ($lookup:expr) => {
        match $crate::support::tools::require($lookup) {
            Some(found) => found,
            None => return,
        }
    };
}
pub(crate) use require_tool;
