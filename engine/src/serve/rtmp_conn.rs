//! One RTMP connection on a shard: the socket shell around [`ServerSession`].
//!
//! The connection task reads, feeds the session and acts on its events. A
//! publisher's media goes to the stream's home shard. A player gets its own writer
//! task that owns the socket's write half and writes the session's output (acks,
//! pings, status) and the shared pre-chunked media in one vectored write per merge
//! window.

use crate::fanout::player::{Player, PlayerEnd, PlayerLimits, write_loop};
use crate::link::{ClientInfo, EngineEvent, Protocol, PublishDecision, RoomId};
use crate::proto::http::StreamName;
use crate::proto::rtmp::MediaType;
use crate::proto::rtmp::{ChunkLimits, RtmpError, ServerSession, SessionConfig, SessionEvent, encode_media};
use crate::shard::{PlayError, PublisherCtl, Shard};
use crate::stream::frame::{Frame, FrameKind, PLAY_STREAM_ID};
use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

type Wr = OwnedWriteHalf<TcpStream>;

/// Logs a line about a peer's bad input (malformed RTMP, timeouts, refusals) at
/// `$level`: at most one per address per interval, with the number suppressed
/// since the previous one; the others go to DEBUG. Client-supplied strings must be
/// given with `?` (Debug escapes newlines, so no one can forge a line).
macro_rules! peer_log {
    ($conn:expr, $level:ident, $($field:tt)+) => {
        match $conn.shard.shared.peer_log($conn.addr.ip()) {
            Some(suppressed) => tracing::$level!(addr = %$conn.addr, suppressed, $($field)+),
            None => tracing::debug!(addr = %$conn.addr, $($field)+),
        }
    };
}

/// What this connection is doing.
enum Role {
    None,
    Publishing {
        stream_id: u32,
        name: StreamName,
        pub_id: u64,
        ctl: Rc<PublisherCtl>,
    },
    Playing {
        stream_id: u32,
        name: StreamName,
        room_id: RoomId,
        player: Rc<Player>,
        writer: monoio::task::JoinHandle<()>,
    },
}

struct Conn {
    shard: Rc<Shard>,
    addr: SocketAddr,
    /// The connection's number in the hooks' `clientid`.
    id: u64,
    fd: i32,
    session: RefCell<ServerSession>,
    /// The write half while no player writer owns it.
    write_half: RefCell<Option<Wr>>,
    role: RefCell<Role>,
    closing: Cell<bool>,
}

fn session_config(shard: &Shard) -> SessionConfig {
    let c = &shard.shared.cfg;
    SessionConfig {
        out_chunk_size: c.rtmp_chunk_size,
        handshake_timeout: c.handshake_timeout,
        idle_timeout: c.idle_timeout,
        // A connection must publish or play soon; a play may wait `play_wait` for
        // its stream to go live.
        start_timeout: Some(std::time::Duration::from_secs(30).max(c.handshake_timeout + c.play_wait)),
        max_streams: c.max_streams_per_connection as usize,
        chunk_limits: ChunkLimits { max_message_size: c.max_message_size as u32, ..ChunkLimits::default() },
        rng_seed: rand::random(),
        ..SessionConfig::default()
    }
}

pub async fn serve(shard: &Rc<Shard>, stream: TcpStream, addr: SocketAddr) {
    let fd = stream.as_raw_fd();
    let (mut rd, wr) = stream.into_split();
    let conn = Rc::new(Conn {
        shard: shard.clone(),
        addr,
        id: shard.shared.next_id(),
        fd,
        session: RefCell::new(ServerSession::new(session_config(shard), Instant::now())),
        write_half: RefCell::new(Some(wr)),
        role: RefCell::new(Role::None),
        closing: Cell::new(false),
    });
    let reason = conn.run(&mut rd).await;
    conn.finish(reason).await;
}

/// Why an RTMP connection ended: logged by kind, never parsed.
#[derive(Debug)]
enum ConnEnd {
    /// The session closed itself: a rejection, a timeout, `deleteStream`, a kick.
    Closed,
    /// The peer closed its side.
    PeerClosed,
    Read(std::io::Error),
    Write(std::io::Error),
    /// The peer broke the protocol.
    Peer(RtmpError),
    /// The session refused what we asked of it (an engine bug, logged as such).
    Local(RtmpError),
    /// The write half had already gone to a player's writer (an engine bug).
    NoWriteHalf,
}

impl std::fmt::Display for ConnEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnEnd::Closed => f.write_str("closed"),
            ConnEnd::PeerClosed => f.write_str("peer closed"),
            ConnEnd::Read(e) => write!(f, "read: {e}"),
            ConnEnd::Write(e) => write!(f, "write: {e}"),
            ConnEnd::Peer(e) => write!(f, "protocol error ({:?}): {e}", e.kind()),
            ConnEnd::Local(e) => write!(f, "session refused a call: {e}"),
            ConnEnd::NoWriteHalf => f.write_str("no write half"),
        }
    }
}

/// Read buffer sizes: connections before publishing, players (a few small messages
/// now and then), publishers.
const SMALL_READ: usize = 4 * 1024;
const PLAYER_READ: usize = 1024;
const PUBLISHER_READ: usize = 64 * 1024;

impl Conn {
    fn read_size(&self) -> usize {
        match *self.role.borrow() {
            Role::Publishing { .. } => PUBLISHER_READ,
            Role::Playing { .. } => PLAYER_READ,
            Role::None => SMALL_READ,
        }
    }

    fn is_playing(&self) -> bool {
        matches!(*self.role.borrow(), Role::Playing { .. })
    }

    async fn run(self: &Rc<Self>, read_half: &mut OwnedReadHalf<TcpStream>) -> ConnEnd {
        // Timers (handshake/idle timeouts, pings) run in their own task: a read is
        // never cancelled by a timeout, because cancelling an io_uring read can lose
        // bytes that the kernel already delivered.
        monoio::spawn(timer(Rc::downgrade(self)));
        let mut buf = vec![0u8; SMALL_READ];
        // A player's input (acknowledgements, pings, rare commands) is read when the
        // shard's input watch reports it, once per flush tick, instead of a standing
        // read that wakes the shard for every acknowledgement (see `input_watch`).
        // Only between reads is the role looked at, so no read is ever in flight
        // when the way of reading changes.
        let mut watched: Option<crate::net::input_watch::Watched> = None;
        loop {
            if self.closing.get() || self.session.borrow().is_closed() {
                return ConnEnd::Closed;
            }
            // Players only send acks and pings: a small buffer keeps per-player memory
            // low; publishers switch to a large one (fewer reads per second of media).
            // (A read sets the length to what it read: the capacity is the size.)
            if buf.capacity() != self.read_size() {
                buf = vec![0u8; self.read_size()];
            }
            if self.is_playing() {
                if let (None, Some(w)) = (&watched, &self.shard.input_watch) {
                    match w.watch(self.fd) {
                        Ok(g) => watched = Some(g),
                        Err(e) => {
                            tracing::warn!(addr = %self.addr, error = %e, "input watch refused a player; reading it directly")
                        }
                    }
                }
            } else {
                watched = None;
            }
            let res = match &watched {
                Some(w) => {
                    buf.resize(buf.capacity(), 0);
                    w.recv(&mut buf).await
                }
                None => {
                    let (res, b) = read_half.read(buf).await;
                    buf = b;
                    res
                }
            };
            let n = match res {
                Ok(0) => return ConnEnd::PeerClosed,
                Ok(n) => n,
                Err(e) => return ConnEnd::Read(e),
            };
            self.shard.stats().bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            if let Role::Publishing { ctl, .. } = &*self.role.borrow() {
                ctl.bytes_in.set(ctl.bytes_in.get() + n as u64);
            }
            let r = self.session.borrow_mut().handle_input(Instant::now(), &buf[..n]);
            if let Err(e) = r {
                peer_log!(self, info, error = %e, "RTMP protocol error; closing");
                let _ = self.after_input().await;
                return if e.is_peer_fault() { ConnEnd::Peer(e) } else { ConnEnd::Local(e) };
            }
            if let Err(e) = self.after_input().await {
                return e;
            }
        }
    }

    /// Acts on the session's events, then sends its output.
    async fn after_input(self: &Rc<Self>) -> Result<(), ConnEnd> {
        loop {
            let ev = self.session.borrow_mut().poll_event();
            let Some(ev) = ev else { break };
            self.on_event(ev).await?;
        }
        self.flush().await
    }

    /// Writes the session's output: directly while we own the write half, else by
    /// waking the player's writer. Output stays queued in the session while another
    /// task is writing.
    async fn flush(&self) -> Result<(), ConnEnd> {
        let role_player = match &*self.role.borrow() {
            Role::Playing { player, .. } => Some(player.clone()),
            _ => None,
        };
        if let Some(p) = role_player {
            // Only when there is output: most of a player's input (acknowledgements)
            // has none, and a notify takes the player out of its stream's cohort.
            if self.session.borrow().has_output() {
                p.notify();
            }
            return Ok(());
        }
        let wr = self.write_half.borrow_mut().take();
        let Some(mut wr) = wr else { return Ok(()) };
        let mut result = Ok(());
        loop {
            let out = self.session.borrow_mut().poll_transmit();
            let Some(out) = out else { break };
            let (r, _) = wr.write_all(out).await;
            if let Err(e) = r {
                result = Err(ConnEnd::Write(e));
                break;
            }
        }
        *self.write_half.borrow_mut() = Some(wr);
        result
    }

    async fn on_event(self: &Rc<Self>, ev: SessionEvent) -> Result<(), ConnEnd> {
        let cfg = &self.shard.shared.cfg;
        match ev {
            SessionEvent::ConnectRequested { app, .. } => {
                let mut s = self.session.borrow_mut();
                let r = if cfg.rtmp_apps.iter().any(|a| *a == app) {
                    s.accept_connect()
                } else {
                    peer_log!(self, info, ?app, "unknown RTMP application");
                    s.reject_connect("unknown application")
                };
                r.map_err(ConnEnd::Local)?;
            }
            SessionEvent::PublishRequested { stream_id, app, name, query, .. } => {
                self.on_publish(stream_id, app, name, query).await?;
            }
            SessionEvent::PlayRequested { stream_id, name, query, .. } => {
                self.on_play(stream_id, name, query).await?;
            }
            SessionEvent::Media { stream_id, kind, timestamp, payload } => {
                if let Role::Publishing { stream_id: sid, name, pub_id, .. } = &*self.role.borrow() {
                    if *sid == stream_id {
                        let kind = match kind {
                            MediaType::Audio => FrameKind::Audio,
                            MediaType::Video => FrameKind::Video,
                            MediaType::Data => FrameKind::Data,
                        };
                        if kind == FrameKind::Data && !is_metadata(&payload) {
                            return Ok(());
                        }
                        self.shard.publish_frame(name, *pub_id, Frame::new(kind, timestamp, payload));
                    }
                }
            }
            SessionEvent::StreamClosed { stream_id } => {
                let ends = match &*self.role.borrow() {
                    Role::Publishing { stream_id: s, .. } | Role::Playing { stream_id: s, .. } => *s == stream_id,
                    Role::None => false,
                };
                if ends {
                    self.end_role(PlayerEnd::Kicked).await;
                }
            }
            SessionEvent::Closed { error } => {
                if let Some(e) = error {
                    // Input errors were logged where they happened.
                    tracing::debug!(addr = %self.addr, error = %e, "RTMP session closed");
                }
                self.closing.set(true);
            }
            _ => {}
        }
        Ok(())
    }

    async fn on_publish(
        self: &Rc<Self>,
        stream_id: u32,
        app: String,
        name: String,
        query: Option<String>,
    ) -> Result<(), ConnEnd> {
        let shard = &self.shard;
        let cfg = &shard.shared.cfg;
        if !matches!(*self.role.borrow(), Role::None) {
            return self.reject_publish(
                stream_id,
                "NetStream.Publish.BadName",
                "this connection already publishes or plays",
            );
        }
        let client = Box::new(self.client_info(query.as_deref()));
        // The key is the stream name, or `?key=` when given.
        let key = query
            .as_deref()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("key=")))
            .map(str::to_owned)
            .unwrap_or(name);
        let (tx, rx) = futures_channel::oneshot::channel();
        shard.shared.events.send(EngineEvent::PublishRequest {
            app,
            key,
            addr: self.addr,
            protocol: Protocol::Rtmp,
            client,
            reply: tx,
        });
        let decision = match monoio::time::timeout(cfg.publish_auth_timeout, rx).await {
            Ok(Ok(d)) => d,
            _ => {
                peer_log!(self, warn, "publish authorization timed out");
                return self.reject_publish(
                    stream_id,
                    "NetStream.Publish.Failed",
                    "authorization unavailable; try again",
                );
            }
        };
        let (room_id, stream_name) = match decision {
            PublishDecision::Allow { room_id, stream_name } => (room_id, stream_name),
            PublishDecision::Deny { reason } => {
                peer_log!(self, info, ?reason, "publish refused");
                return self.reject_publish(stream_id, "NetStream.Publish.BadName", &reason);
            }
        };
        let ctl = Rc::new(PublisherCtl {
            name: stream_name.clone(),
            fd: self.fd,
            kicked: Cell::new(false),
            id: Cell::new(0),
            addr: self.addr,
            protocol: Protocol::Rtmp,
            started: Instant::now(),
            bytes_in: Cell::new(0),
        });
        match shard.claim_stream(&stream_name, room_id, ctl.clone(), false).await {
            Ok(pub_id) => {
                *self.role.borrow_mut() = Role::Publishing { stream_id, name: stream_name.clone(), pub_id, ctl };
                self.session.borrow_mut().accept_publish(stream_id).map_err(ConnEnd::Local)?;
                tracing::info!(addr = %self.addr, stream = ?stream_name, room = room_id.0, "publishing");
                Ok(())
            }
            Err(why) => {
                peer_log!(self, info, stream = ?stream_name, %why, "second publisher refused");
                // The room was marked live by the authorization; the live publisher keeps it.
                self.reject_publish(stream_id, "NetStream.Publish.BadName", &why.to_string())
            }
        }
    }

    fn reject_publish(&self, stream_id: u32, code: &str, why: &str) -> Result<(), ConnEnd> {
        self.session.borrow_mut().reject_publish(stream_id, code, why).map_err(ConnEnd::Local)
    }

    /// The play token a player shows: in the play name's query (`name?token=...`,
    /// as ffmpeg and VLC send it), else in the query of `connect`'s tcUrl.
    fn play_token(&self, query: Option<&str>) -> Option<String> {
        query.and_then(crate::proto::play_token::from_query).or_else(|| {
            let s = self.session.borrow();
            let tc_query = s.tc_url()?.split_once('?')?.1.to_owned();
            crate::proto::play_token::from_query(&tc_query)
        })
    }

    /// What the client said about itself in `connect`, for the hooks.
    fn client_info(&self, args: Option<&str>) -> ClientInfo {
        let s = self.session.borrow();
        let field = |k: &str| s.connect_object().and_then(|o| o.get_str(k)).unwrap_or_default().to_owned();
        ClientInfo {
            id: self.id,
            flashver: field("flashVer"),
            swfurl: field("swfUrl"),
            tcurl: s.tc_url().unwrap_or_default().to_owned(),
            pageurl: field("pageUrl"),
            args: args.unwrap_or_default().to_owned(),
        }
    }

    async fn on_play(self: &Rc<Self>, stream_id: u32, name: String, query: Option<String>) -> Result<(), ConnEnd> {
        let shard = self.shard.clone();
        let name = match StreamName::parse(&name) {
            Some(name) if matches!(*self.role.borrow(), Role::None) => name,
            _ => {
                self.session
                    .borrow_mut()
                    .reject_play(stream_id, "NetStream.Play.StreamNotFound", "no such stream")
                    .map_err(ConnEnd::Local)?;
                self.closing.set(true);
                return Ok(());
            }
        };
        let token = self.play_token(query.as_deref());
        if let Err(r) =
            crate::serve::play_access::admit(&shard.shared, &name, token.as_deref(), Protocol::Rtmp, self.addr)
        {
            self.session
                .borrow_mut()
                .reject_play(stream_id, "NetStream.Play.Failed", &r.reason())
                .map_err(ConnEnd::Local)?;
            self.closing.set(true);
            return Ok(());
        }
        let why = match shard.shared.tags_unavailable(&name) {
            Some(why) => Some(why),
            None => {
                let (app, client) = (self.session.borrow().app().to_owned(), self.client_info(query.as_deref()));
                crate::serve::play_hook::check(&shard, &app, &name, self.addr, Protocol::Rtmp, client).await
            }
        };
        if let Some(why) = why {
            self.session
                .borrow_mut()
                .reject_play(stream_id, "NetStream.Play.StreamNotFound", &why)
                .map_err(ConnEnd::Local)?;
            self.closing.set(true);
            return Ok(());
        }
        let player = Rc::new(Player::new(
            shard.shared.next_id(),
            Protocol::Rtmp,
            self.addr,
            PlayerLimits::from_config(&shard.shared.cfg),
        ));
        player.set_fd(self.fd);
        let room_id = match shard.join(&name, player.clone(), shard.shared.cfg.play_wait).await {
            Ok(r) => r,
            Err(e) => {
                let why =
                    if e == PlayError::ShuttingDown { "server shutting down" } else { "stream not found or not live" };
                self.session
                    .borrow_mut()
                    .reject_play(stream_id, "NetStream.Play.StreamNotFound", why)
                    .map_err(ConnEnd::Local)?;
                self.closing.set(true);
                return Ok(());
            }
        };
        if let Err(e) = self.session.borrow_mut().accept_play(stream_id) {
            shard.leave(&name, &player, room_id);
            return Err(ConnEnd::Local(e));
        }
        // Play.Start must precede media: write it before handing the socket over.
        if let Err(e) = self.flush().await {
            shard.leave(&name, &player, room_id);
            return Err(e);
        }
        let Some(wr) = self.write_half.borrow_mut().take() else {
            shard.leave(&name, &player, room_id);
            return Err(ConnEnd::NoWriteHalf);
        };
        tracing::info!(addr = %self.addr, stream = ?name, "RTMP player joined");
        let writer = monoio::spawn(player_writer(self.clone(), player.clone(), wr, stream_id));
        *self.role.borrow_mut() = Role::Playing { stream_id, name, room_id, player, writer };
        Ok(())
    }

    /// Ends what this connection publishes or plays.
    async fn end_role(&self, how: PlayerEnd) {
        let role = std::mem::replace(&mut *self.role.borrow_mut(), Role::None);
        match role {
            Role::None => {}
            Role::Publishing { name, pub_id, .. } => {
                tracing::info!(addr = %self.addr, stream = ?name, "publisher left");
                self.shard.unpublish(&name, pub_id);
            }
            Role::Playing { name, room_id, player, writer, .. } => {
                player.end(how);
                let wr = writer.await;
                let _ = wr;
                self.shard.leave(&name, &player, room_id);
                tracing::info!(addr = %self.addr, stream = ?name, sent = player.sent_bytes.get(), dropped = player.dropped.get(), "RTMP player left");
            }
        }
    }

    async fn finish(self: &Rc<Self>, reason: ConnEnd) {
        match &reason {
            ConnEnd::Local(_) | ConnEnd::NoWriteHalf => {
                tracing::warn!(addr = %self.addr, %reason, "RTMP connection ending on an engine error")
            }
            _ => tracing::debug!(addr = %self.addr, %reason, "RTMP connection ending"),
        }
        self.session.borrow_mut().close();
        while self.session.borrow_mut().poll_event().is_some() {}
        self.end_role(PlayerEnd::Kicked).await;
        // Say goodbye (rejections, errors) if we still own the socket.
        let _ = self.flush().await;
        let wr = self.write_half.borrow_mut().take();
        if let Some(mut wr) = wr {
            let _ = wr.shutdown().await;
        }
    }
}

/// The connection's timers: sleeps until the session's next deadline, lets it
/// handle the timeout (pings, handshake/idle timeouts) and sends what it queued.
/// A session closed by a timeout shuts the socket down, which ends the read loop.
async fn timer(weak: std::rc::Weak<Conn>) {
    loop {
        // Holds the connection only while awake: an ended connection is freed at once.
        let deadline = match weak.upgrade() {
            Some(conn) => conn.session.borrow().poll_timeout(),
            None => break,
        };
        let Some(deadline) = deadline else { break };
        monoio::time::sleep_until(monoio::time::Instant::from_std(on_timer_grid(deadline))).await;
        let Some(conn) = weak.upgrade() else { break };
        if conn.closing.get() {
            break;
        }
        conn.session.borrow_mut().handle_timeout(Instant::now());
        let _ = conn.flush().await;
        if conn.session.borrow().is_closed() {
            peer_log!(conn, info, "RTMP session timed out");
            // Our own socket: the read loop ends.
            crate::net::sys::shutdown(conn.fd);
            break;
        }
    }
}

/// Connections' timer deadlines are rounded up to a grid of this step, so that the
/// timers of thousands of connections (pings, idle and handshake timeouts, all in
/// seconds) fire together in one wake-up of the shard instead of one by one: each
/// player's ping deadline moves with its input (acknowledgements), so without the
/// grid 2000 players woke the shard about 130 times a second for nothing.
const TIMER_GRID: std::time::Duration = std::time::Duration::from_millis(250);

/// `t` rounded up to the shard's timer grid (see [`TIMER_GRID`]).
fn on_timer_grid(t: Instant) -> Instant {
    // Per thread: the grid's origin, the first time a connection of this shard asks.
    thread_local! {
        static EPOCH: Instant = Instant::now();
    }
    EPOCH.with(|epoch| {
        let step = TIMER_GRID.as_nanos();
        let since = t.saturating_duration_since(*epoch).as_nanos();
        *epoch + std::time::Duration::from_nanos((since.div_ceil(step) * step) as u64)
    })
}

/// Whether a data message is stream metadata (`onMetaData`), the only data forwarded.
fn is_metadata(payload: &[u8]) -> bool {
    // AMF0 string marker 0x02, u16 length 10, "onMetaData".
    payload.get(..13) == Some(b"\x02\x00\x0aonMetaData")
}

async fn player_writer(conn: Rc<Conn>, player: Rc<Player>, mut write_half: Wr, stream_id: u32) {
    let shard = conn.shard.clone();
    let stats = &shard.shared.stats[shard.index];
    let chunk_size = conn.session.borrow().out_chunk_size();
    if stream_id == PLAY_STREAM_ID {
        player.set_shared_form(Some(crate::fanout::player::SharedForm::Rtmp { chunk_size }));
    }
    let c = conn.clone();
    let wire = Box::new(move |frames: &[Arc<Frame>], base: Option<u32>, bufs: &mut Vec<Bytes>| {
        while let Some(b) = c.session.borrow_mut().poll_transmit() {
            bufs.push(b);
        }
        if stream_id == PLAY_STREAM_ID {
            // The player's timeline: its own chunk headers, the chunks shared.
            crate::fanout::player::SharedForm::Rtmp { chunk_size }.pieces(frames, base, bufs);
            return;
        }
        for f in frames {
            if f.is_rtp() {
                continue;
            }
            let kind = match f.kind {
                FrameKind::Audio => MediaType::Audio,
                FrameKind::Video => MediaType::Video,
                _ => MediaType::Data,
            };
            if let Ok(b) = encode_media(chunk_size, kind, stream_id, f.ts_on(base), &f.payload) {
                bufs.push(b);
            }
        }
    });
    let end = write_loop(&player, &mut write_half, stats, wire).await;
    if let Ok(PlayerEnd::StreamEnded) = end {
        // StreamEOF + UnpublishNotify + Play.Stop, then close.
        let _ = conn.session.borrow_mut().send_stream_eof(stream_id);
        let mut out = vec![];
        while let Some(b) = conn.session.borrow_mut().poll_transmit() {
            out.push(b);
        }
        let _ = crate::fanout::player::write_all_vectored(&mut write_half, out).await;
        conn.closing.set(true);
        // Our own socket: the reader sees the end.
        crate::net::sys::shutdown(conn.fd);
    }
    let _ = write_half.shutdown().await;
}

#[cfg(test)]
mod tests;
