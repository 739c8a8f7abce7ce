//! MicroVibe Live's protocol code, sans-IO: no sockets, no runtime, no clock reads and
//! no global randomness. Callers pass bytes, `now` and a random source in, and drain
//! bytes and events out; the engine shell (the `engine` crate) does the I/O.

pub mod audio_bridge;
pub mod codec;
pub mod flv;
pub mod hls;
pub mod http;
pub mod mp4;
pub mod mpegts;
pub mod play_token;
pub mod rtmp;
pub mod rtp_h264;
pub mod track;
pub mod webrtc;
pub mod websocket;

pub use track::Track;

/// Fuzz bodies, wrapped one-per-target by fuzz/fuzz_targets (the `fuzz` feature);
/// unit tests run them on real input too. Not part of a release build.
#[cfg(any(test, feature = "fuzz"))]
pub mod fuzz;
