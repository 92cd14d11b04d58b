#![no_main]
//! Fuzz target `snapshot_pages`: see `fuzz/common/targets.rs`.

#[path = "../common/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::snapshot_pages(data));
