#![no_main]
//! Fuzz target `k8s_values`: see `fuzz/common/targets.rs`.

#[path = "../common/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::k8s_values(data));
