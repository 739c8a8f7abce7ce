#![no_main]
// Thin wrapper: the body is crate code, engine/src/proto/fuzz.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::proto::fuzz::fuzz_http_request(data));
