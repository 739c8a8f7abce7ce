#![no_main]
// Thin wrapper: the body is in engine/proto/src/fuzz/ (the `fuzz` feature). Time is
// passed in: each input starts from a fresh instant.
libfuzzer_sys::fuzz_target!(|data: &[u8]| proto::fuzz::rtmp::fuzz_amf0(data));
