#![no_main]
//! See `bluepods_core::fuzzing::cluster_schedule`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| bluepods_core::fuzzing::cluster_schedule(data));
