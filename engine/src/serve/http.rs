//! The HTTP media server on each shard: HTTP/1.1 with keep-alive, requests parsed by
//! `httparse` with bounded size and time, routed to HTTP-FLV, WebSocket-FLV, HLS,
//! `/stat` and `/control`.

use crate::shard::Shard;
use bytes::Bytes;
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;

use crate::proto::http::{HeadError, Request, Response, Route, route};
use crate::serve::http_io::{read_head, send};

/// The HLS viewer an HLS request counts for; none for HEAD (link checkers, probes).
fn hls_client(req: &Request, addr: SocketAddr) -> Option<crate::fanout::hls_viewers::HlsClient> {
    (req.method != "HEAD").then(|| crate::fanout::hls_viewers::HlsClient::new(addr.ip(), req.header("user-agent")))
}

/// The play-token check of an HTTP viewer request (HEAD of an FLV stream, HLS
/// playlists and segments): the refusal to answer, or the token to carry on in
/// a private stream's playlist (None for a public stream).
fn admit(
    shard: &Shard,
    name: &crate::proto::http::StreamName,
    req: &Request,
    protocol: crate::link::Protocol,
    addr: SocketAddr,
) -> Result<Option<String>, Response> {
    let token = req.query_param("token");
    match crate::serve::play_access::admit(&shard.shared, name, token.as_deref(), protocol, addr) {
        Ok(()) if crate::serve::play_access::is_private(&shard.shared, name) => Ok(token),
        Ok(()) => Ok(None),
        Err(r) => Err(Response::text(r.http_status(), &r.reason())),
    }
}

/// Serves one HTTP connection.
pub async fn serve(shard: &Rc<Shard>, mut stream: TcpStream, addr: SocketAddr) {
    let cors = shard.shared.cfg.cors_origin.clone();
    let mut buf = Vec::new();
    loop {
        let req = match read_head(&mut stream, &mut buf).await {
            Ok(r) => r,
            Err(HeadError::Closed | HeadError::Io) => return,
            Err(HeadError::TimedOut) => {
                if !buf.is_empty() {
                    send(&mut stream, &Response::text(408, "request timeout"), &cors, false, false).await;
                }
                return;
            }
            Err(HeadError::TooLarge) => {
                send(&mut stream, &Response::text(431, "request head too large"), &cors, false, false).await;
                return;
            }
            Err(HeadError::Malformed(why)) => {
                tracing::debug!(%addr, %why, "bad HTTP request");
                send(&mut stream, &Response::text(400, &format!("bad request: {why}")), &cors, false, false).await;
                return;
            }
        };
        let head_only = req.method == "HEAD";
        if req.method == "OPTIONS" {
            let r = Response::new(204, "text/plain", Bytes::new())
                .header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
                .header("Access-Control-Allow-Headers", "Authorization, Range")
                .header("Access-Control-Max-Age", "600");
            if !send(&mut stream, &r, &cors, req.keep_alive && !req.has_body, false).await || !req.keep_alive {
                return;
            }
            continue;
        }
        if req.method != "GET" && !head_only {
            let r = Response::text(405, "method not allowed").header("Allow", "GET, HEAD, OPTIONS");
            send(&mut stream, &r, &cors, false, false).await;
            return;
        }
        if req.has_body {
            send(&mut stream, &Response::text(400, "GET requests take no body"), &cors, false, false).await;
            return;
        }
        let resp = match route(&req.path) {
            Route::Flv(name) => {
                if head_only {
                    // HEAD of a live stream: the headers a GET would get, no body.
                    let live = crate::serve::flv_play::is_live(shard, &name);
                    if let Err(r) = admit(shard, &name, &req, crate::link::Protocol::HttpFlv, addr) {
                        r
                    } else if live {
                        Response::new(200, "video/x-flv", Bytes::new()).header("Cache-Control", "no-cache")
                    } else {
                        Response::text(404, "stream not found")
                    }
                } else {
                    crate::serve::flv_play::serve(shard, stream, addr, req, name).await;
                    return;
                }
            }
            Route::HlsPlaylist(name) => match admit(shard, &name, &req, crate::link::Protocol::Hls, addr) {
                Err(r) => r,
                Ok(token) => {
                    let mut r = crate::serve::hls_serve::playlist(shard, &name, hls_client(&req, addr)).await;
                    // A private stream's segments need the token too: players fetch
                    // the URIs as the playlist gives them.
                    if let Some(t) = token
                        && r.status == 200
                    {
                        r.body = crate::proto::play_token::playlist_with_token(&r.body, &t).into();
                    }
                    r
                }
            },
            Route::HlsSegment(name, seq) => match admit(shard, &name, &req, crate::link::Protocol::Hls, addr) {
                Err(r) => r,
                Ok(_) => crate::serve::hls_serve::segment(shard, &name, seq, hls_client(&req, addr)).await,
            },
            // Per-client details (addresses) only for the admin.
            Route::Stat => crate::serve::stat::xml(shard, crate::serve::stat::is_admin(shard, &req)).await,
            Route::StatJson => crate::serve::stat::json(shard, crate::serve::stat::is_admin(shard, &req)).await,
            Route::ControlDrop(what) => crate::serve::stat::control_drop(shard, &req, &what).await,
            Route::NotFound => Response::text(404, "not found"),
        };
        if !send(&mut stream, &resp, &cors, req.keep_alive, head_only).await || !req.keep_alive {
            return;
        }
    }
}
