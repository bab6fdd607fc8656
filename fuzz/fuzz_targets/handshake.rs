#![no_main]
//! See `bluepods_core::fuzzing::handshake`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| bluepods_core::fuzzing::handshake(data));
