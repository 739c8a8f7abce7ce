//! RTMP (Adobe RTMP specification 1.0), sans-IO.
pub mod amf0;
pub mod amf3;
pub mod chunk;
pub mod error;
mod reader;

pub use error::{ErrorKind, RtmpError};
