#![no_main]
//! See `bluepods_core::fuzzing::node_inputs`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| bluepods_core::fuzzing::node_inputs(data));
