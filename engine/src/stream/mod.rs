//! A stream's media: the frames the engine carries, the GOP cache, the RTMP ⇄ WebRTC
//! bridges and the home stream's state machine (`hub`). No I/O.

pub mod bridge;
pub mod frame;
pub mod gop;
pub mod hub;
pub mod record;
#[cfg(test)]
pub mod test_media;
