//! Sans-IO protocol code. No sockets, no runtime, no clock reads: callers pass
//! bytes and `now` in and drain bytes and events out.

pub mod audio_bridge;
pub mod codec;
pub mod flv;
pub mod fuzz;
pub mod hls;
pub mod mpegts;
pub mod rtmp;
pub mod rtp_h264;
pub mod webrtc;
pub mod websocket;
