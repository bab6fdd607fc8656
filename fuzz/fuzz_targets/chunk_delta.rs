#![no_main]
//! See `bluepods_core::fuzzing::chunk_delta`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| bluepods_core::fuzzing::chunk_delta(data));
