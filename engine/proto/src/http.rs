//! HTTP/1.1 for the media port: the request head (parsed by `httparse`, bounded in
//! size and header count), small complete responses, and the routing of media paths
//! (HTTP-FLV, HLS, stats, control). No I/O: the shell reads bytes and writes the
//! bytes [`Response::head`] gives.

use bytes::Bytes;

/// Largest request head (request line + headers).
pub const MAX_HEAD: usize = 16 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 48;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lowercased names.
    pub headers: Vec<(String, String)>,
    pub keep_alive: bool,
    pub has_body: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| percent_decode(v))
        })
    }

    /// An `Upgrade: websocket` request (RFC 6455 §4.2.1).
    pub fn is_websocket(&self) -> bool {
        self.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
            && self.header("connection").is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"))
    }
}

/// A URL query value with `%XX` escapes decoded (an invalid escape is kept as is).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a request head could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    /// The peer closed before sending anything (normal end of keep-alive).
    Closed,
    TimedOut,
    TooLarge,
    Malformed(String),
    Io,
}

/// Parses a complete head from `buf`: `Ok(Some((request, used)))`, `Ok(None)` if more
/// bytes are needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_HEAD { Err(HeadError::TooLarge) } else { Ok(None) };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    if used > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let version = req.version.unwrap_or(1);
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_owned()))
        .collect();
    let conn = headers.iter().find(|(k, _)| k == "connection").map(|(_, v)| v.to_ascii_lowercase());
    let keep_alive = match (version, conn.as_deref()) {
        (_, Some(c)) if c.contains("close") => false,
        (1, _) => true,
        (_, Some(c)) => c.contains("keep-alive"),
        _ => false,
    };
    let has_body = headers
        .iter()
        .any(|(k, v)| (k == "content-length" && v.trim() != "0") || (k == "transfer-encoding" && !v.is_empty()));
    Ok(Some((
        Request {
            method: req.method.unwrap_or("").to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            keep_alive,
            has_body,
        },
        used,
    )))
}

/// A small complete response.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self { status, content_type, headers: vec![], body: body.into() }
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self::new(status, "text/plain; charset=utf-8", Bytes::copy_from_slice(format!("{body}\n").as_bytes()))
    }

    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }

    /// The head bytes; the body follows unless the request was HEAD.
    pub fn head(&self, cors: &str, keep_alive: bool) -> Vec<u8> {
        let mut h = format!(
            "HTTP/1.1 {} {}\r\nServer: microvibe\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        if !cors.is_empty() {
            h.push_str(&format!("Access-Control-Allow-Origin: {cors}\r\n"));
        }
        for (k, v) in &self.headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h.push_str("\r\n");
        h.into_bytes()
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Flv(StreamName),
    HlsPlaylist(StreamName),
    HlsSegment(StreamName, u64),
    Stat,
    StatJson,
    ControlDrop(String),
    NotFound,
}

/// A stream name as it may appear in a URL.
pub fn valid_stream_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A stream name that passed [`valid_stream_name`]: what the engine's layers hand
/// each other for a stream. Cheap to clone (shared text); compares, hashes and
/// borrows as its text, so maps keyed by it are looked up with a `&str`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(std::sync::Arc<str>);

impl StreamName {
    /// The name, if `s` is a valid stream name.
    pub fn parse(s: &str) -> Option<StreamName> {
        valid_stream_name(s).then(|| StreamName(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StreamName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for StreamName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::ops::Deref for StreamName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for StreamName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for StreamName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for StreamName {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for StreamName {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

pub fn route(path: &str) -> Route {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["flv", file] | ["live", file] => match file.strip_suffix(".flv").and_then(StreamName::parse) {
            Some(name) => Route::Flv(name),
            None => Route::NotFound,
        },
        ["hls", file] => match file.strip_suffix(".m3u8").and_then(StreamName::parse) {
            Some(name) => Route::HlsPlaylist(name),
            None => Route::NotFound,
        },
        ["hls", name, file] => {
            match (StreamName::parse(name), file.strip_suffix(".ts").and_then(|s| s.parse::<u64>().ok())) {
                (Some(name), Some(seq)) => Route::HlsSegment(name, seq),
                _ => Route::NotFound,
            }
        }
        ["stat"] => Route::Stat,
        ["stat.json"] => Route::StatJson,
        ["control", "drop", what] => Route::ControlDrop((*what).to_owned()),
        _ => Route::NotFound,
    }
}

/// The status code and whether the body is chunked, of a response head in `buf`;
/// with the head's length. `Ok(None)`: the head is not complete yet.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<(u16, bool, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(used)) => {
            let chunked = resp.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("transfer-encoding")
                    && std::str::from_utf8(h.value).is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"))
            });
            Ok(Some((resp.code.unwrap_or(0), chunked, used)))
        }
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}

/// Decodes an HTTP/1.1 chunked body as it arrives (sans-IO: bytes in, bytes out).
/// Chunk sizes are bounded by what `usize` holds; extensions and trailers are skipped.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    /// Bytes of a size line not complete yet.
    line: Vec<u8>,
    /// Body bytes left in the current chunk, then its CRLF (2 bytes).
    left: usize,
    crlf: u8,
    done: bool,
}

/// A chunked body that is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError;

impl ChunkedDecoder {
    /// The terminating zero-size chunk was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Appends the body bytes of `input` to `out`.
    pub fn decode(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        while !input.is_empty() && !self.done {
            if self.left > 0 {
                let n = self.left.min(input.len());
                out.extend_from_slice(&input[..n]);
                self.left -= n;
                input = &input[n..];
                if self.left == 0 {
                    self.crlf = 2;
                }
            } else if self.crlf > 0 {
                self.crlf -= 1;
                input = &input[1..];
            } else {
                let Some(end) = input.iter().position(|&b| b == b'\n') else {
                    if self.line.len() + input.len() > 256 {
                        return Err(ChunkError);
                    }
                    self.line.extend_from_slice(input);
                    return Ok(());
                };
                self.line.extend_from_slice(&input[..end]);
                input = &input[end + 1..];
                let line = std::mem::take(&mut self.line);
                let text = std::str::from_utf8(&line).map_err(|_| ChunkError)?;
                let size = text.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size, 16).map_err(|_| ChunkError)?;
                if size == 0 {
                    self.done = true;
                } else {
                    self.left = size;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
