#![no_main]
//! Fuzz target `bolt_load`: see `fuzz/common/targets.rs`.

#[path = "../common/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::bolt_load(data));
