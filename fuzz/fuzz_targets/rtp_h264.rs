#![no_main]
// Thin wrapper: the body is crate code, engine/src/proto/rtp_h264.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::proto::rtp_h264::fuzz_rtp_h264(data));
