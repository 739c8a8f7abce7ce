#![no_main]
// Thin wrapper: the body is crate code, engine/src/proto/webrtc/fuzz.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::proto::webrtc::fuzz::fuzz_rtp_rtcp(data));
