//! The servers of the media ports: RTMP connections, the HTTP router (HTTP-FLV,
//! WebSocket-FLV, HLS, `/stat`, `/control`), WebRTC sessions, cluster relays (pulls from another node), restreaming
//! (pushes to other platforms), and the listeners.

pub mod flv_play;
pub mod forward;
pub mod hls_serve;
pub mod http;
pub mod http_io;
pub mod listen;
pub mod play_access;
pub mod play_hook;
pub mod relay;
pub mod rtc;
pub mod rtmp_conn;
pub mod stat;
