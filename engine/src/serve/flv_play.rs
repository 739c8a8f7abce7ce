//! HTTP-FLV and WebSocket-FLV players: the FLV header, then the stream's tags (built
//! once per frame and shared), as HTTP/1.1 chunks or binary WebSocket frames.

use crate::fanout::player::{Player, PlayerEnd, PlayerLimits, SharedForm, write_loop};
use crate::link::Protocol;
use crate::proto::http::{Request, Response, StreamName};
use crate::proto::websocket as ws;
use crate::serve::http_io::send;
use crate::shard::{PlayError, Shard};
use crate::stream::frame::Frame;
use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;

/// Whether `name` has live media on this shard or its home (for HEAD).
pub fn is_live(shard: &Shard, name: &StreamName) -> bool {
    shard.is_live(name)
}

pub async fn serve(shard: &Rc<Shard>, mut stream: TcpStream, addr: SocketAddr, req: Request, name: StreamName) {
    let cfg = &shard.shared.cfg;
    let cors = cfg.cors_origin.clone();
    let websocket = req.is_websocket();
    let key = req.header("sec-websocket-key").map(str::to_owned);
    if websocket && let Err(e) = ws::check_handshake(req.header("sec-websocket-version"), key.as_deref()) {
        let mut r = Response::text(e.http_status(), &e.to_string());
        if e == ws::HandshakeError::UnsupportedVersion {
            r = r.header("Sec-WebSocket-Version", "13");
        }
        send(&mut stream, &r, &cors, false, false).await;
        return;
    }
    if let Some(why) = shard.shared.tags_unavailable(&name) {
        send(&mut stream, &Response::text(404, &why), &cors, false, false).await;
        return;
    }
    let protocol = if websocket { Protocol::WsFlv } else { Protocol::HttpFlv };
    // Another node of the cluster pulling this stream for its players (one per node).
    let relay_token = &shard.shared.cfg.relay_token;
    let relay = !relay_token.is_empty()
        && req
            .header("x-microvibe-relay")
            .is_some_and(|t| crate::serve::stat::constant_time_eq(t.as_bytes(), relay_token.as_bytes()));
    // A relay pull is not a viewer: the edge checks its own players' tokens.
    if !relay {
        let token = req.query_param("token");
        if let Err(r) = crate::serve::play_access::admit(&shard.shared, &name, token.as_deref(), protocol, addr) {
            send(&mut stream, &Response::text(r.http_status(), &r.reason()), &cors, false, false).await;
            return;
        }
        // The `on_play` hook (when configured); the app of HTTP players is the first RTMP app.
        let app = cfg.rtmp_apps.first().map(String::as_str).unwrap_or("live");
        let client = crate::link::ClientInfo {
            id: shard.shared.next_id(),
            pageurl: req.header("referer").unwrap_or_default().to_owned(),
            args: req.query.clone(),
            ..Default::default()
        };
        if let Some(why) = crate::serve::play_hook::check(shard, app, &name, addr, protocol, client).await {
            send(&mut stream, &Response::text(403, &why), &cors, false, false).await;
            return;
        }
    }
    let limits = PlayerLimits::from_config(&shard.shared.cfg);
    // A relay takes frames the other players do not (a WebRTC publisher's Opus), so
    // it is never one of a cohort's members, which all take the same bytes.
    let limits = if relay { limits.unmerged() } else { limits };
    let player = Rc::new(Player::new(shard.shared.next_id(), protocol, addr, limits));
    player.set_fd(stream.as_raw_fd());
    player.relay.set(relay);
    let room_id = match shard.join(&name, player.clone(), cfg.http_wait).await {
        Ok(r) => r,
        Err(PlayError::NotFound) => {
            send(&mut stream, &Response::text(404, "stream not found or not live"), &cors, false, false).await;
            return;
        }
        Err(PlayError::ShuttingDown) => {
            send(&mut stream, &Response::text(503, "server shutting down"), &cors, false, false).await;
            return;
        }
    };
    tracing::info!(%addr, stream = %name, protocol = protocol.as_str(), "player joined");
    // The header's flags say which tracks follow: ffmpeg's demuxer waits for each one
    // it announces before it ends its probing.
    let (audio, video) = player.tracks().unwrap_or((true, true));
    let flv_header = Bytes::copy_from_slice(&crate::proto::flv::writer::file_header(audio, video));
    let head = if websocket {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nServer: microvibe\r\n\r\n",
            ws::accept_key(key.as_deref().unwrap_or_default())
        )
    } else {
        let mut h = String::from(
            "HTTP/1.1 200 OK\r\nServer: microvibe\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nCache-Control: no-cache\r\n",
        );
        if !cors.is_empty() {
            h.push_str(&format!("Access-Control-Allow-Origin: {cors}\r\n"));
        }
        h.push_str("\r\n");
        h
    };
    let mut first = head.into_bytes();
    if websocket {
        first.extend_from_slice(&ws::frame(ws::OP_BINARY, &flv_header));
    } else {
        first.extend_from_slice(format!("{:x}\r\n", flv_header.len()).as_bytes());
        first.extend_from_slice(&flv_header);
        first.extend_from_slice(b"\r\n");
    }
    let (r, _) = stream.write_all(first).await;
    if r.is_err() {
        shard.leave(&name, &player, room_id);
        return;
    }

    let (mut rd, mut wr) = stream.into_split();
    // Reader: HTTP-FLV clients send nothing more; WebSocket clients may ping or close.
    let p2 = player.clone();
    let pongs: Rc<std::cell::RefCell<Vec<Vec<u8>>>> = Rc::default();
    let pongs2 = pongs.clone();
    monoio::spawn(async move {
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let (res, buf) = rd.read(Vec::with_capacity(4096)).await;
            match res {
                Ok(0) | Err(_) => break,
                Ok(_) if websocket => {
                    pending.extend_from_slice(&buf);
                    loop {
                        match ws::parse_client_frame(&pending, 64 * 1024) {
                            Ok(Some((f, used))) => {
                                pending.drain(..used);
                                match f.opcode {
                                    ws::OP_CLOSE => {
                                        p2.end(PlayerEnd::StreamEnded);
                                        return;
                                    }
                                    ws::OP_PING => {
                                        pongs2.borrow_mut().push(ws::frame(ws::OP_PONG, &f.payload));
                                        p2.notify();
                                    }
                                    _ => {}
                                }
                            }
                            Ok(None) => break,
                            Err(_) => {
                                p2.end(PlayerEnd::Kicked);
                                return;
                            }
                        }
                    }
                    if pending.len() > 256 * 1024 {
                        break;
                    }
                }
                Ok(_) => {}
            }
        }
        p2.end(PlayerEnd::Kicked);
    });

    let stats = &shard.shared.stats[shard.index];
    let form = if websocket { SharedForm::WsFlv } else { SharedForm::HttpFlv };
    player.set_shared_form(Some(form));
    let wire = Box::new(move |frames: &[Arc<Frame>], base: Option<u32>, bufs: &mut Vec<Bytes>| {
        for p in pongs.borrow_mut().drain(..) {
            bufs.push(Bytes::from(p));
        }
        // The tags on the player's timeline in one frame or chunk.
        form.pieces(frames, base, bufs);
    });
    let end = write_loop(&player, &mut wr, stats, wire).await;
    if let Ok(PlayerEnd::StreamEnded) = end {
        let bye = if websocket { ws::frame(ws::OP_CLOSE, &1000u16.to_be_bytes()) } else { b"0\r\n\r\n".to_vec() };
        let _ = wr.write_all(bye).await;
    }
    let _ = wr.shutdown().await;
    tracing::info!(%addr, stream = %name, protocol = protocol.as_str(), sent = player.sent_bytes.get(), dropped = player.dropped.get(), "player left");
    shard.leave(&name, &player, room_id);
}
