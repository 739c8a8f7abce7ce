//! Restreaming ("forward"): a live stream pushed to other platforms' RTMP or RTMPS
//! ingests while it is live.
//!
//! The control plane names a stream's destinations to its home shard
//! ([`Command::SetForwards`](crate::link::Command::SetForwards), at every publish
//! start and when the room's list changes). Each destination runs one task on the
//! home shard: an outbound RTMP client (the sans-IO [`ClientSession`]: handshake,
//! `connect`, `releaseStream`, `FCPublish`, `createStream`, `publish(key, "live")`),
//! over TLS for `rtmps://` (rustls' sans-IO `ClientConnection` over the monoio
//! socket), fed like a local player of the stream: a [`Player`] with the usual
//! bounded queue (a slow destination drops to the next keyframe and is dropped
//! after overflowing for long, never blocking the shard). It is not a viewer
//! (`relay`), but it makes a WebRTC publisher's bridge produce FLV tags like any
//! RTMP/FLV player does.
//!
//! A failed attempt is retried with backoff (1, 2, 4 … 30 s) while the stream is
//! live; the stream's end (after the unpublish grace: a publisher reconnecting
//! within it keeps the forwards running) stops it. Every state change goes to the
//! control plane as [`EngineEvent::ForwardStatus`]. The stream key is a secret:
//! logs name the destination's host and app only, and error texts have the key
//! masked.

use crate::fanout::player::{Batch, Player, PlayerEnd, PlayerLimits, write_all_vectored};
use crate::link::{EngineEvent, ForwardState, ForwardTarget, Protocol, RoomId};
use crate::proto::http::StreamName;
use crate::proto::rtmp::{ClientConfig, ClientEvent, ClientGoal, ClientSession, MediaType};
use crate::shard::Shard;
use crate::stream::frame::FrameKind;
use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRent, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// From the TCP connection to `NetStream.Publish.Start`, at most.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// While live, the byte count goes to the control plane this often.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// Longest error text sent to the control plane.
const MAX_ERROR: usize = 200;

/// One destination of one stream, on the stream's home shard.
struct Forward {
    target: ForwardTarget,
    room_id: RoomId,
    /// Removed, or the stream is over: the task ends.
    stop: Cell<bool>,
    /// The socket of the attempt in progress (-1 between attempts), shut down to stop.
    fd: Cell<i32>,
    /// The player of the attempt in progress, once publishing.
    player: RefCell<Option<Rc<Player>>>,
    /// Bytes sent to the destination (all attempts).
    bytes: Cell<u64>,
}

impl Forward {
    fn stop_now(&self) {
        self.stop.set(true);
        if let Some(p) = self.player.borrow().as_ref() {
            p.end(PlayerEnd::Kicked);
        }
        if self.fd.get() >= 0 {
            // The attempt's own socket (its task still owns and closes it).
            crate::net::sys::shutdown(self.fd.get());
        }
    }

    fn status(&self, shard: &Shard, state: ForwardState, error: Option<String>) {
        shard.shared.events.send(EngineEvent::ForwardStatus {
            room_id: self.room_id,
            forward_id: self.target.id,
            state,
            error,
            bytes_sent: self.bytes.get(),
        });
    }

    /// `text` without the stream key (a server may echo the publish name), short.
    fn clean(&self, text: &str) -> String {
        let mut t = if self.target.key.is_empty() { text.to_owned() } else { text.replace(&self.target.key, "<key>") };
        if t.len() > MAX_ERROR {
            let mut cut = MAX_ERROR;
            while !t.is_char_boundary(cut) {
                cut -= 1;
            }
            t.truncate(cut);
        }
        t
    }
}

// Thread-local because forwards live on their stream's home shard and each shard
// is one thread (like the WebRTC sessions): the running forwards of the streams
// homed on this shard, by stream.
thread_local! {
    static FORWARDS: RefCell<HashMap<StreamName, Vec<Rc<Forward>>>> = RefCell::new(HashMap::new());
}

/// On `name`'s home shard: push it to exactly `targets` (see `Command::SetForwards`).
pub fn set(shard: &Rc<Shard>, name: &StreamName, room_id: RoomId, targets: Vec<ForwardTarget>) {
    let live = shard.home_live(name);
    let mut start = Vec::new();
    FORWARDS.with(|f| {
        let mut map = f.borrow_mut();
        let list = map.entry(name.clone()).or_default();
        list.retain(|fw| {
            let keep = live && targets.contains(&fw.target);
            if !keep {
                fw.stop_now();
            }
            keep
        });
        if live {
            for t in targets {
                if list.iter().any(|fw| fw.target == t) {
                    continue;
                }
                let fw = Rc::new(Forward {
                    target: t,
                    room_id,
                    stop: Cell::new(false),
                    fd: Cell::new(-1),
                    player: RefCell::new(None),
                    bytes: Cell::new(0),
                });
                list.push(fw.clone());
                start.push(fw);
            }
        }
        if list.is_empty() {
            map.remove(name);
        }
    });
    for fw in start {
        let (shard, name) = (shard.clone(), name.clone());
        monoio::spawn(async move {
            run(&shard, &name, &fw).await;
            FORWARDS.with(|f| {
                let mut map = f.borrow_mut();
                if let Some(list) = map.get_mut(&name) {
                    list.retain(|x| !Rc::ptr_eq(x, &fw));
                    if list.is_empty() {
                        map.remove(&name);
                    }
                }
            });
        });
    }
}

/// How many forwards run on this shard (for tests and /stat).
pub fn running() -> usize {
    FORWARDS.with(|f| f.borrow().values().map(Vec::len).sum())
}

/// How one attempt ended.
enum End {
    /// The stream is over (or the forward was removed): no retry.
    Done,
    /// Failed; `live` says whether it had been publishing (the backoff starts over).
    Failed { why: String, live: bool },
}

async fn run(shard: &Rc<Shard>, name: &StreamName, fw: &Rc<Forward>) {
    let (host, app) = (fw.target.host.clone(), fw.target.app.clone());
    tracing::info!(stream = %name, forward = fw.target.id, %host, app = ?app, tls = fw.target.tls, "forward: starting");
    let mut backoff = FIRST_BACKOFF;
    loop {
        if fw.stop.get() || !shard.home_live(name) {
            break;
        }
        fw.status(shard, ForwardState::Connecting, None);
        match attempt(shard, name, fw).await {
            End::Done => break,
            End::Failed { why, live } => {
                fw.fd.set(-1);
                if fw.stop.get() || !shard.home_live(name) {
                    break;
                }
                if live {
                    backoff = FIRST_BACKOFF;
                }
                let why = fw.clean(&why);
                tracing::warn!(stream = %name, forward = fw.target.id, %host, app = ?app, error = ?why, retry_in = ?backoff, "forward: failed; retrying");
                // forward.failed webhook: emitted by the control plane when it receives this
                // `ForwardStatus { state: Retrying, error }` event (see control's engine_link).
                fw.status(shard, ForwardState::Retrying, Some(why));
                let until = Instant::now() + backoff;
                while Instant::now() < until && !fw.stop.get() && shard.home_live(name) {
                    monoio::time::sleep(Duration::from_millis(250)).await;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    fw.fd.set(-1);
    tracing::info!(stream = %name, forward = fw.target.id, %host, app = ?app, bytes = fw.bytes.get(), "forward: stopped");
    fw.status(shard, ForwardState::Stopped, None);
}

/// The TLS client settings, built once per shard thread: the system's trust roots
/// plus `forward_ca_file`.
fn tls_config(shard: &Shard) -> Result<Arc<rustls::ClientConfig>, String> {
    thread_local! {
        static CONFIG: RefCell<Option<Result<Arc<rustls::ClientConfig>, String>>> = const { RefCell::new(None) };
    }
    CONFIG.with(|c| c.borrow_mut().get_or_insert_with(|| build_tls_config(&shard.shared.cfg.forward_ca_file)).clone())
}

/// Where Linux distributions keep the system's CA bundle.
const SYSTEM_CA_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn build_tls_config(extra_ca: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = SYSTEM_CA_FILES.iter().find(|p| std::path::Path::new(p).exists()) {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(path).map(|it| it.filter_map(Result::ok).collect()).unwrap_or_default();
        roots.add_parsable_certificates(certs);
    }
    if !extra_ca.is_empty() {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(extra_ca)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| format!("forward.ca_file {extra_ca:?}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("forward.ca_file {extra_ca:?}: no certificate"));
        }
        for c in certs {
            roots.add(c).map_err(|e| format!("forward.ca_file {extra_ca:?}: {e}"))?;
        }
    }
    if roots.is_empty() {
        return Err("no trusted CA certificates (no system bundle, no forward.ca_file)".into());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// The connection's TLS state (None for plain RTMP), shared by its two halves.
type Tls = Rc<RefCell<Option<rustls::ClientConnection>>>;

/// `plain` as it goes on the wire (encrypted when TLS).
fn seal(tls: &Tls, plain: Vec<Bytes>) -> Result<Vec<Bytes>, String> {
    let mut t = tls.borrow_mut();
    let Some(conn) = t.as_mut() else { return Ok(plain) };
    for b in &plain {
        conn.writer().write_all(b).map_err(|e| format!("TLS: {e}"))?;
    }
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).map_err(|e| format!("TLS: {e}"))?;
    }
    Ok(if out.is_empty() { Vec::new() } else { vec![Bytes::from(out)] })
}

/// Bytes read from the socket as plaintext (decrypted when TLS; TLS may also have
/// output of its own to send: see `seal`).
fn open(tls: &Tls, input: &[u8], plain: &mut Vec<u8>) -> Result<(), String> {
    let mut t = tls.borrow_mut();
    let Some(conn) = t.as_mut() else {
        plain.extend_from_slice(input);
        return Ok(());
    };
    let mut rest = input;
    while !rest.is_empty() {
        let n = conn.read_tls(&mut rest).map_err(|e| format!("TLS: {e}"))?;
        conn.process_new_packets().map_err(|e| format!("TLS: {e}"))?;
        loop {
            let mut buf = [0u8; 4096];
            match conn.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(k) => plain.extend_from_slice(&buf[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("TLS: {e}")),
            }
        }
        if n == 0 {
            break;
        }
    }
    Ok(())
}

async fn send(wr: &mut OwnedWriteHalf<TcpStream>, tls: &Tls, plain: Vec<Bytes>) -> Result<usize, String> {
    let len: usize = plain.iter().map(Bytes::len).sum();
    let wire = seal(tls, plain)?;
    if !wire.is_empty() {
        write_all_vectored(wr, wire).await.map_err(|e| format!("write: {e}"))?;
    }
    Ok(len)
}

async fn read_some(rd: &mut OwnedReadHalf<TcpStream>, until: Instant) -> Result<Vec<u8>, String> {
    let left = until.saturating_duration_since(Instant::now());
    match monoio::time::timeout(left, rd.read(Vec::with_capacity(16 * 1024))).await {
        Err(_) => Err("timed out setting up the publish".into()),
        Ok((Ok(0), _)) => Err("the destination closed the connection".into()),
        Ok((Ok(_), buf)) => Ok(buf),
        Ok((Err(e), _)) => Err(format!("read: {e}")),
    }
}

fn session_output(session: &RefCell<ClientSession>) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Some(b) = session.borrow_mut().poll_transmit() {
        out.push(b);
    }
    out
}

/// A session event that ends the attempt, as its reason.
fn failure(ev: &ClientEvent) -> Option<String> {
    match ev {
        ClientEvent::Closed { error: Some(e) } => Some(format!("RTMP: {e}")),
        ClientEvent::Closed { error: None } => Some("the destination ended the session".into()),
        ClientEvent::Status { level, code, description, .. } if level == "error" => {
            Some(format!("refused: {code} ({description})"))
        }
        _ => None,
    }
}

/// One connection: set up the publish, then send the stream until it ends.
async fn attempt(shard: &Rc<Shard>, name: &StreamName, fw: &Rc<Forward>) -> End {
    let failed = |why: String| End::Failed { why, live: false };
    let t = &fw.target;
    let tcp = match monoio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(t.addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return failed(format!("connect: {e}")),
        Err(_) => return failed("connect timed out".into()),
    };
    let _ = tcp.set_nodelay(true);
    let fd = tcp.as_raw_fd();
    fw.fd.set(fd);
    if fw.stop.get() {
        return End::Done;
    }
    let (mut rd, mut wr) = tcp.into_split();
    let tls: Tls = Rc::new(RefCell::new(None));
    let until = Instant::now() + SETUP_TIMEOUT;
    if t.tls {
        let cfg = match tls_config(shard) {
            Ok(c) => c,
            Err(e) => return failed(e),
        };
        let server = match rustls::pki_types::ServerName::try_from(t.host.clone()) {
            Ok(s) => s,
            Err(e) => return failed(format!("TLS server name: {e}")),
        };
        let mut conn = match rustls::ClientConnection::new(cfg, server) {
            Ok(c) => c,
            Err(e) => return failed(format!("TLS: {e}")),
        };
        // Bounded by the player's queue, which is what feeds it.
        conn.set_buffer_limit(None);
        *tls.borrow_mut() = Some(conn);
        loop {
            if let Err(e) = send(&mut wr, &tls, Vec::new()).await {
                return failed(e);
            }
            if !tls.borrow().as_ref().is_some_and(|c| c.is_handshaking()) {
                break;
            }
            let input = match read_some(&mut rd, until).await {
                Ok(b) => b,
                Err(e) => return failed(e),
            };
            let mut plain = Vec::new();
            if let Err(e) = open(&tls, &input, &mut plain) {
                return failed(e);
            }
        }
    }
    // RTMP: from the handshake to NetStream.Publish.Start.
    let mut cc = ClientConfig::new(&t.app, &t.tc_url);
    cc.rng_seed = rand::random();
    cc.flash_ver = "FMLE/3.0 (compatible; microvibe)".into();
    let session =
        Rc::new(RefCell::new(ClientSession::new(cc, ClientGoal::Publish { name: t.key.clone() }, Instant::now())));
    loop {
        let out = session_output(&session);
        if let Err(e) = send(&mut wr, &tls, out).await {
            return failed(e);
        }
        let input = match read_some(&mut rd, until).await {
            Ok(b) => b,
            Err(e) => return failed(e),
        };
        let mut plain = Vec::new();
        if let Err(e) = open(&tls, &input, &mut plain) {
            return failed(e);
        }
        if let Err(e) = session.borrow_mut().handle_input(Instant::now(), &plain) {
            return failed(format!("RTMP: {e}"));
        }
        let mut started = false;
        while let Some(ev) = session.borrow_mut().poll_event() {
            if let Some(why) = failure(&ev) {
                return failed(why);
            }
            started |= matches!(ev, ClientEvent::PublishStarted { .. });
        }
        if started {
            break;
        }
        if fw.stop.get() {
            return End::Done;
        }
    }
    // Publishing: fed like a player of the stream.
    let limits = PlayerLimits::from_config(&shard.shared.cfg).unmerged();
    let player = Rc::new(Player::new(shard.shared.next_id(), Protocol::Rtmp, t.addr, limits));
    // Not a viewer; and its own socket, shut down on a kick (overflowing too long).
    // The flush tick never writes to it: it does not merge.
    player.relay.set(true);
    player.set_fd(fd);
    let room_id = match shard.join(name, player.clone(), Duration::from_secs(2)).await {
        Ok(r) => r,
        Err(_) => return End::Done,
    };
    *fw.player.borrow_mut() = Some(player.clone());
    if fw.stop.get() {
        player.end(PlayerEnd::Kicked);
    }
    tracing::info!(stream = %name, forward = t.id, host = %t.host, app = ?t.app, "forward: publishing");
    fw.status(shard, ForwardState::Live, None);
    // The destination's input (acknowledgements, pings, a refusal) is read by its
    // own task; what the session answers goes out with the next batch.
    let why: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));
    let pending: Rc<RefCell<Vec<Bytes>>> = Rc::new(RefCell::new(Vec::new()));
    let reader =
        monoio::spawn(read_side(rd, tls.clone(), session.clone(), player.clone(), why.clone(), pending.clone()));
    let end = write_side(shard, fw, &player, &session, &tls, &mut wr, &pending).await;
    *fw.player.borrow_mut() = None;
    crate::net::sys::shutdown(fd);
    let _ = reader.await;
    shard.leave(name, &player, room_id);
    let _ = wr.shutdown().await;
    match end {
        Ok(()) => End::Done,
        Err(e) => {
            // The reader's reason first; else a kick we did not ask for is the
            // player's overflow policy (the destination did not keep up).
            let why = why.borrow_mut().take().unwrap_or_else(|| {
                if player.is_ended() && !fw.stop.get() { "too slow: the destination did not keep up".into() } else { e }
            });
            if fw.stop.get() { End::Done } else { End::Failed { why, live: true } }
        }
    }
}

/// Sends the stream's frames until it ends (`Ok`) or the connection fails.
async fn write_side(
    shard: &Rc<Shard>,
    fw: &Forward,
    player: &Rc<Player>,
    session: &RefCell<ClientSession>,
    tls: &Tls,
    wr: &mut OwnedWriteHalf<TcpStream>,
    pending: &RefCell<Vec<Bytes>>,
) -> Result<(), String> {
    let mut reported = Instant::now();
    loop {
        let frames = match player.next_batch().await {
            Batch::End(PlayerEnd::StreamEnded) => {
                // Tell the destination the publish is over, then close.
                unpublish(session, &fw.target.key);
                let out = session_output(session);
                let _ = send(wr, tls, out).await;
                if let Some(c) = tls.borrow_mut().as_mut() {
                    c.send_close_notify();
                }
                let _ = send(wr, tls, Vec::new()).await;
                return Ok(());
            }
            Batch::End(PlayerEnd::Kicked) => return Err("too slow: the destination did not keep up".into()),
            Batch::Frames(f) => f,
        };
        feed(session, player, &frames)?;
        let mut out = std::mem::take(&mut *pending.borrow_mut());
        out.extend(session_output(session));
        let n = send(wr, tls, out).await?;
        fw.bytes.set(fw.bytes.get() + n as u64);
        player.sent_bytes.set(player.sent_bytes.get() + n as u64);
        if reported.elapsed() >= REPORT_EVERY {
            reported = Instant::now();
            fw.status(shard, ForwardState::Live, None);
        }
    }
}

/// Queues `frames` on the session (its output is taken after).
fn feed(
    session: &RefCell<ClientSession>,
    player: &Player,
    frames: &[Arc<crate::stream::frame::Frame>],
) -> Result<(), String> {
    let mut s = session.borrow_mut();
    for f in frames {
        let kind = match f.kind {
            FrameKind::Audio => MediaType::Audio,
            FrameKind::Video => MediaType::Video,
            FrameKind::Data => MediaType::Data,
            FrameKind::OpusTag | FrameKind::RtpAudio | FrameKind::RtpVideo => continue,
        };
        let res = if kind == MediaType::Data && !f.payload.starts_with(SET_DATA_FRAME) {
            let mut p = Vec::with_capacity(SET_DATA_FRAME.len() + f.payload.len());
            p.extend_from_slice(SET_DATA_FRAME);
            p.extend_from_slice(&f.payload);
            s.send_media(kind, 0, &p)
        } else {
            s.send_media(kind, f.ts_on(player.base()), &f.payload)
        };
        if let Err(e) = res {
            return Err(format!("RTMP: {e}"));
        }
    }
    Ok(())
}

/// Queues the end of the publish (`FCUnpublish`, `deleteStream`) on the session.
fn unpublish(session: &RefCell<ClientSession>, key: &str) {
    use crate::proto::rtmp::amf0::Value;
    use crate::proto::rtmp::message::Command;
    let mut s = session.borrow_mut();
    if let Some(id) = s.stream_id() {
        let key = Value::string(key);
        s.send_command(0, &Command::new("FCUnpublish", 0.0, Value::Null, vec![key]));
        s.send_command(id, &Command::new("deleteStream", 0.0, Value::Null, vec![Value::Number(id as f64)]));
    }
}

/// AMF0 string `@setDataFrame`: what a publisher puts before `onMetaData`.
const SET_DATA_FRAME: &[u8] = b"\x02\x00\x0d@setDataFrame";

/// Reads the destination's input until the connection ends; then ends the player
/// (the writer stops) with the reason in `why`.
async fn read_side(
    mut rd: OwnedReadHalf<TcpStream>,
    tls: Tls,
    session: Rc<RefCell<ClientSession>>,
    player: Rc<Player>,
    why: Rc<RefCell<Option<String>>>,
    pending: Rc<RefCell<Vec<Bytes>>>,
) {
    let reason = loop {
        let (r, buf) = rd.read(Vec::with_capacity(4096)).await;
        match r {
            Ok(0) => break "the destination closed the connection".to_owned(),
            Ok(_) => {}
            Err(e) => break format!("read: {e}"),
        }
        let mut plain = Vec::new();
        if let Err(e) = open(&tls, &buf, &mut plain) {
            break e;
        }
        if let Err(e) = session.borrow_mut().handle_input(Instant::now(), &plain) {
            break format!("RTMP: {e}");
        }
        let mut end = None;
        while let Some(ev) = session.borrow_mut().poll_event() {
            if end.is_none() {
                end = failure(&ev);
            }
        }
        if let Some(e) = end {
            break e;
        }
        let out = session_output(&session);
        let tls_out = tls.borrow().as_ref().is_some_and(|c| c.wants_write());
        if !out.is_empty() || tls_out {
            pending.borrow_mut().extend(out);
            player.notify();
        }
    };
    if !player.is_ended() {
        *why.borrow_mut() = Some(reason);
        player.end(PlayerEnd::Kicked);
    }
}

#[cfg(test)]
mod tests;
