#![no_main]
//! See `bluepods_core::fuzzing::wire_decode`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| bluepods_core::fuzzing::wire_decode(data));
