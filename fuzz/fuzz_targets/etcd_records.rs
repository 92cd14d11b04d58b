#![no_main]
//! Fuzz target `etcd_records`: see `fuzz/common/targets.rs`.

#[path = "../common/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::etcd_records(data));
