#![no_main]
// Thin wrapper: the body is in engine/proto/src/fuzz/ (the `fuzz` feature).
libfuzzer_sys::fuzz_target!(|data: &[u8]| proto::fuzz::fuzz_mp4(data));
