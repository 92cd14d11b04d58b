//! Every integration test in one binary, so that the support code and the
//! crate are compiled and linked once, not once per file (the replay of the
//! fuzzers' finds, which installs a panic hook, stays a binary of its own:
//! tests/fuzz_regressions.rs). Tests that boot etcd share the port
//! allocator and run under libtest's one thread pool, so they do not starve
//! each other as separate binaries run back to back could.

// Tests may unwrap and panic: the library may not (Cargo.toml's [lints]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod agent;
mod agent_e2e;
mod agent_empty;
mod agent_probe;
mod agent_retention;
mod agent_schedule;
mod apply_changes;
mod async_embed;
mod backup_crash;
mod backup_deltas;
mod backup_faults;
mod backup_memory;
mod backup_point;
mod backup_repo;
mod backup_s3;
mod backup_s3_resume;
mod backup_series;
mod bolt_load;
mod bolt_writer;
mod cli_pflag;
mod cluster_golden;
mod compact;
mod corruption;
mod defrag;
mod diff_vs_iteration;
mod get_vs_etcdctl;
mod gojson_vs_go;
mod goprint_vs_go;
mod gosort_vs_go;
mod hashkv;
mod infra_selftest;
mod input_changes;
mod inspect_corrupt;
mod k8s_values;
mod layering;
mod location_local;
mod location_s3;
mod location_save;
mod public_api;
mod raft_golden;
mod restore_boot;
mod restore_boot_records;
mod restore_compact;
mod restore_datadirs;
mod restore_failures;
mod restore_faults;
mod restore_golden;
mod restore_matrix;
mod restore_targets;
mod restore_vs_etcdutl;
mod rewrite_crash;
mod save;
mod save_cli;
mod save_faults;
mod save_walkthrough;
mod stats_vs_count;
mod status;
mod status_recorded;
mod wal_dump;
