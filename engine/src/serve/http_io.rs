//! Reading request heads and writing small responses on a media-port connection
//! (the bytes are `proto::http`'s), shared by the router and the HTTP-FLV server.

use crate::proto::http::{HeadError, Request, Response, parse_head};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::time::Duration;

/// Time allowed to send a whole request head; also the keep-alive idle time.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(15);

/// Reads one request head, keeping bytes after it in `buf` (pipelining).
pub async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Request, HeadError> {
    let read = async {
        loop {
            if !buf.is_empty() {
                if let Some((req, used)) = parse_head(buf)? {
                    buf.drain(..used);
                    return Ok(req);
                }
            }
            let chunk = Vec::with_capacity(4096);
            let (res, chunk) = stream.read(chunk).await;
            match res {
                Ok(0) => return Err(if buf.is_empty() { HeadError::Closed } else { HeadError::Io }),
                Ok(_) => buf.extend_from_slice(&chunk),
                Err(_) => return Err(HeadError::Io),
            }
        }
    };
    match monoio::time::timeout(HEAD_TIMEOUT, read).await {
        Ok(r) => r,
        Err(_) => Err(HeadError::TimedOut),
    }
}

pub async fn send(stream: &mut TcpStream, resp: &Response, cors: &str, keep_alive: bool, head_only: bool) -> bool {
    let mut out = resp.head(cors, keep_alive);
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    let (r, _) = stream.write_all(out).await;
    r.is_ok()
}
