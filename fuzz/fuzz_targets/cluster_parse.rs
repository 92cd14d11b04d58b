#![no_main]
//! Fuzz target `cluster_parse`: see `fuzz/common/targets.rs`.

#[path = "../common/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::cluster_parse(data));
