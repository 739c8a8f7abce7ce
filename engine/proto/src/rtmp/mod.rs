//! RTMP (Adobe RTMP specification 1.0, "Adobe's Real Time Messaging Protocol",
//! December 2012) and AMF0/AMF3, sans-IO.
//!
//! How the pieces run, bottom up:
//!
//! * [`handshake`] turns C0/C1/C2 into S0/S1/S2 (simple or digest handshake);
//! * [`chunk`] reassembles messages from the chunk stream ([`chunk::ChunkDecoder`])
//!   and writes messages as chunks: stateless ([`chunk::encode_message`], shareable
//!   by all players with the same chunk size) or per connection with header
//!   compression ([`chunk::ChunkEncoder`]);
//! * [`message`] types messages (protocol control, user control, commands, data,
//!   media, aggregates) and builds the ones we send; [`amf0`] / [`amf3`] encode
//!   their values;
//! * [`session::ServerSession`] is the server state machine for one connection
//!   (bytes and `now` in; bytes, events and a timer deadline out), and
//!   [`client::ClientSession`] a small client for tests and load generation;
//! * The fuzz bodies for this code are in `crate::fuzz::rtmp`.
//!
//! Nothing here reads a clock, touches a socket or panics on network input;
//! every size and count from the network is bounded ([`chunk::ChunkLimits`],
//! [`amf0::Amf0Limits`], [`session::SessionConfig`]). All failures are
//! [`RtmpError`].
//!
//! A shard drives a server session like this (sketch):
//!
//! ```ignore
//! let mut s = ServerSession::new(SessionConfig::default(), now);
//! // on readable:
//! s.handle_input(now, &buf[..n])?;            // Err => write pending output, close
//! while let Some(ev) = s.poll_event() { /* ConnectRequested => s.accept_connect()?, ... */ }
//! while let Some(bytes) = s.poll_transmit() { socket.write_all(bytes) }
//! // then write shared pre-chunked media (message::encode_media) for playing streams
//! // timer: if now >= s.poll_timeout() { s.handle_timeout(now) }
//! ```

pub mod amf0;
pub mod amf3;
pub mod chunk;
pub mod client;
mod conn;
pub mod error;
pub mod handshake;
pub mod message;
mod reader;
pub mod session;

pub use chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, Message, MessageHeader};
pub use client::{ClientConfig, ClientEvent, ClientGoal, ClientSession};
pub use error::{ErrorKind, RtmpError};
pub use handshake::{DigestScheme, HandshakeKind};
pub use message::{MediaType, RtmpMessage, encode_media};
pub use session::{PublishType, ServerSession, SessionConfig, SessionEvent, StreamStatus};

#[cfg(test)]
mod tests;
