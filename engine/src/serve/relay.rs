//! Cluster relay, the edge's side: a stream live on another node (its origin) is
//! pulled from there ONCE per node, whatever the number of players here, and fed to
//! the stream's home as a publisher marked `relay` (no PublishStarted/Ended: the
//! room is the origin's). Every output of this node (RTMP, HTTP-FLV, WS-FLV, HLS,
//! WebRTC through the bridge) then serves it from the local hub.
//!
//! The pull is the origin's own HTTP-FLV output (`GET /flv/<name>.flv` with the
//! cluster's relay token, so the origin does not count it as a viewer): no second
//! protocol to keep, and any HTTP-FLV origin would do. It starts with the first
//! player (the player's `StreamQuery` answer names the origin), stops after the
//! last one has been gone for [`IDLE_STOP`], and follows the stream when its origin
//! changes (the connection ends: the control plane is asked again where it is).

use crate::link::{Protocol, RoomId, StreamAnswer};
use crate::proto::flv::TagType;
use crate::proto::flv::reader::FlvReader;
use crate::proto::http::{ChunkedDecoder, StreamName, parse_response_head};
use crate::shard::{PublisherCtl, Shard};
use crate::stream::frame::{Frame, FrameKind};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A relay with no audience for this long stops.
pub const IDLE_STOP: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// No byte from the origin for this long: the connection is dead.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a lost origin is looked for (the publisher reconnecting elsewhere).
const FOLLOW_FOR: Duration = Duration::from_secs(30);
const MAX_TAG: usize = 16 << 20;

/// Why one pull ended.
#[derive(Debug)]
enum End {
    /// Nobody watches any more.
    NoAudience,
    /// A publisher of this node took the stream (it moved here).
    Replaced,
    /// The origin went away or answered badly: look for it again.
    Lost(String),
}

/// Starts pulling `name` from `origin` on this (home) shard.
pub fn start(shard: &Rc<Shard>, name: &StreamName, origin: SocketAddr, room_id: RoomId) {
    let (shard, name) = (shard.clone(), name.clone());
    monoio::spawn(async move {
        tracing::info!(stream = %name, %origin, "relay: pulling the stream from its origin node");
        follow(&shard, &name, origin, room_id).await;
        shard.relay_ended(&name);
    });
}

async fn follow(shard: &Rc<Shard>, name: &StreamName, mut origin: SocketAddr, mut room_id: RoomId) {
    let mut lost_since: Option<Instant> = None;
    loop {
        match pull(shard, name, origin, room_id, &mut lost_since).await {
            End::NoAudience => {
                tracing::info!(stream = %name, %origin, "relay: no players left; stopped");
                return;
            }
            End::Replaced => {
                tracing::info!(stream = %name, "relay: the stream is published here now; stopped");
                return;
            }
            End::Lost(why) => {
                let since = *lost_since.get_or_insert_with(Instant::now);
                if since.elapsed() > FOLLOW_FOR || !shard.has_audience(name) {
                    tracing::warn!(stream = %name, %origin, why = %why, "relay: origin lost; giving up");
                    return;
                }
                tracing::info!(stream = %name, %origin, why = %why, "relay: origin connection ended; looking for the stream");
                monoio::time::sleep(Duration::from_millis(300)).await;
                match shard.ask_stream(name).await {
                    StreamAnswer::Relay { origin: o, room_id: r } => {
                        origin = o;
                        room_id = r;
                    }
                    // Not live elsewhere (maybe published here now, or over).
                    StreamAnswer::Wait | StreamAnswer::Unknown => {
                        if shard.is_live(name) && !shard.has_audience(name) {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// One connection to the origin: claims the stream once the origin answers 200 and
/// feeds it the tags until the connection ends.
async fn pull(
    shard: &Rc<Shard>,
    name: &StreamName,
    origin: SocketAddr,
    room_id: RoomId,
    lost: &mut Option<Instant>,
) -> End {
    let mut stream = match monoio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(origin)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return End::Lost(format!("connect: {e}")),
        Err(_) => return End::Lost("connect timed out".into()),
    };
    let _ = stream.set_nodelay(true);
    let request = format!(
        "GET /flv/{name}.flv HTTP/1.1\r\nHost: {origin}\r\nUser-Agent: microvibe-relay/{}\r\nX-Microvibe-Relay: {}\r\n\r\n",
        env!("CARGO_PKG_VERSION"),
        shard.shared.cfg.relay_token
    );
    if let (Err(e), _) = stream.write_all(request.into_bytes()).await {
        return End::Lost(format!("write: {e}"));
    }
    // The response head.
    let mut buf: Vec<u8> = Vec::new();
    let (chunked, rest) = loop {
        let (r, chunk) = match monoio::time::timeout(READ_TIMEOUT, stream.read(Vec::with_capacity(16 * 1024))).await {
            Ok(r) => r,
            Err(_) => return End::Lost("no answer".into()),
        };
        match r {
            Ok(0) => return End::Lost("closed before answering".into()),
            Ok(_) => buf.extend_from_slice(&chunk),
            Err(e) => return End::Lost(format!("read: {e}")),
        }
        match parse_response_head(&buf) {
            Ok(Some((200, chunked, used))) => break (chunked, buf.split_off(used)),
            Ok(Some((status, ..))) => return End::Lost(format!("origin answered {status}")),
            Ok(None) => {}
            Err(e) => return End::Lost(format!("bad answer: {e:?}")),
        }
    };
    let ctl = Rc::new(PublisherCtl {
        name: name.clone(),
        fd: stream.as_raw_fd(),
        kicked: Cell::new(false),
        id: Cell::new(0),
        addr: origin,
        protocol: Protocol::HttpFlv,
        started: Instant::now(),
        bytes_in: Cell::new(0),
    });
    let pub_id = match shard.claim_stream(name, room_id, ctl.clone(), true).await {
        Ok(id) => id,
        // Published here meanwhile: nothing to relay.
        Err(_) => return End::Replaced,
    };
    *lost = None;
    let end = feed(shard, name, pub_id, &ctl, &mut stream, chunked, rest).await;
    shard.unpublish(name, pub_id);
    end
}

async fn feed(
    shard: &Rc<Shard>,
    name: &StreamName,
    pub_id: u64,
    ctl: &PublisherCtl,
    stream: &mut TcpStream,
    chunked: bool,
    first: Vec<u8>,
) -> End {
    let mut dechunk = chunked.then(ChunkedDecoder::default);
    let mut flv = FlvReader::new(MAX_TAG);
    let mut body = Vec::new();
    let mut input = first;
    let mut quiet_since: Option<Instant> = None;
    let mut checked = Instant::now();
    loop {
        body.clear();
        match &mut dechunk {
            Some(d) => {
                if d.decode(&input, &mut body).is_err() {
                    return End::Lost("bad chunked body".into());
                }
                if d.is_done() {
                    return End::Lost("the origin ended the stream".into());
                }
            }
            None => body.extend_from_slice(&input),
        }
        ctl.bytes_in.set(ctl.bytes_in.get() + input.len() as u64);
        flv.handle_input(&body);
        loop {
            match flv.poll_tag() {
                Ok(Some(tag)) => {
                    let kind = match tag.tag_type {
                        // The origin's WebRTC publisher's own Opus, beside its AAC.
                        TagType::Audio if Frame::is_opus_tag_body(&tag.body) => FrameKind::OpusTag,
                        TagType::Audio => FrameKind::Audio,
                        TagType::Video => FrameKind::Video,
                        TagType::Script => FrameKind::Data,
                    };
                    shard.publish_frame(name, pub_id, Frame::new(kind, tag.timestamp_ms, tag.body));
                }
                Ok(None) => break,
                Err(e) => return End::Lost(format!("bad FLV from the origin: {e}")),
            }
        }
        if ctl.kicked.get() {
            return End::Replaced;
        }
        // Once a second: is anybody still watching?
        if checked.elapsed() >= Duration::from_secs(1) {
            checked = Instant::now();
            if shard.has_audience(name) {
                quiet_since = None;
            } else if quiet_since.get_or_insert(checked).elapsed() >= IDLE_STOP {
                return End::NoAudience;
            }
        }
        let (r, chunk) = match monoio::time::timeout(READ_TIMEOUT, stream.read(Vec::with_capacity(64 * 1024))).await {
            Ok(r) => r,
            Err(_) => return End::Lost("the origin went silent".into()),
        };
        match r {
            Ok(0) => return End::Lost("the origin closed the connection".into()),
            Ok(_) => input = chunk,
            Err(e) if ctl.kicked.get() => {
                let _ = e;
                return End::Replaced;
            }
            Err(e) => return End::Lost(format!("read: {e}")),
        }
    }
}
