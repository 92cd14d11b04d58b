#![no_main]
//! Fuzz target `repo_deltas`: see `fuzz/common/targets.rs`.

#[path = "../common/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::repo_deltas(data));
