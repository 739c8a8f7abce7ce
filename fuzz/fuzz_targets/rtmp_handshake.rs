#![no_main]
// Thin wrapper: the body is crate code, engine/src/proto/rtmp/fuzz.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::proto::rtmp::fuzz::fuzz_handshake(data));
