#![no_main]
//! Fuzz target `raft_decode`: see `fuzz/common/targets.rs`.

#[path = "../common/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::raft_decode(data));
