//! Private rooms end to end: a private room refuses every way of watching without a
//! play token (RTMP, HTTP-FLV, WS-FLV, HLS playlist and segments, WHEP, the room
//! WebSocket as viewer) and plays with one (ffprobe / ffmpeg / aiortc decode);
//! expired, other rooms', tampered and revoked tokens are refused; a public room
//! plays without a token as before.

mod media;
use media::rtc::{Peer, enter_netns, start_rtc};
use media::{Room, Server, decode, ffprobe};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

/// A new user and a private RTMP room.
async fn private_room(s: &Server) -> Room {
    let r = s.room().await;
    let v = patch(s, r.id, &r.token, json!({ "private": true })).await;
    assert_eq!(v["data"]["private"], true, "{v}");
    r
}

async fn patch(s: &Server, id: i64, token: &str, body: Value) -> Value {
    let r = s.client.patch(format!("{}/api/v1/live/{id}", s.api)).bearer_auth(token).json(&body).send().await;
    r.unwrap().json().await.unwrap()
}

/// Mints a play token: the response's `data`.
async fn mint(s: &Server, room: &Room, ttl: Option<u64>) -> Value {
    let body = ttl.map_or(json!({}), |t| json!({ "ttl_secs": t }));
    let v = s.post(&format!("/api/v1/live/{}/play-token", room.id), Some(&room.token), body).await;
    assert!(v["data"]["token"].is_string(), "{v}");
    v["data"].clone()
}

/// The HTTP status of a GET on the media port (headers only).
async fn status(url: &str) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

/// Whether ffprobe finds streams at `url` (a refusal is an error).
fn probe_ok(url: &str) -> (bool, String) {
    let out = Command::new("timeout")
        .args(["20", "ffprobe", "-v", "error", "-show_streams", "-of", "json", url])
        .output()
        .unwrap();
    (out.status.success() && out.stdout.len() > 20, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn codecs(url: &str) -> Vec<String> {
    let mut c: Vec<String> = ffprobe(url).into_iter().map(|s| s.0).collect();
    c.sort();
    c
}

/// The status line of a WebSocket-FLV upgrade for `path`.
fn ws_flv_status(http: &str, path: &str) -> String {
    let mut sock = std::net::TcpStream::connect(http.trim_start_matches("http://")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(sock, "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    let mut buf = [0u8; 256];
    let n = sock.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_owned()
}

/// The room WebSocket as a viewer: the first message the server sends (a JSON
/// text frame), or the close frame's code.
fn ws_viewer_first(api: &str, query: &str) -> Result<Value, u16> {
    let mut sock = std::net::TcpStream::connect(api.trim_start_matches("http://")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(sock, "GET /api/v1/live/ws?{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    let mut data = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no frame: {}", String::from_utf8_lossy(&data));
        let mut buf = [0u8; 4096];
        let n = sock.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        assert!(data.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&data));
        let f = &data[end + 4..];
        if f.len() < 2 {
            continue;
        }
        let (len, at) = match f[1] & 0x7f {
            126 if f.len() >= 4 => (u16::from_be_bytes([f[2], f[3]]) as usize, 4),
            126 => continue,
            n => (n as usize, 2),
        };
        if f.len() < at + len {
            continue;
        }
        let payload = &f[at..at + len];
        return match f[0] & 0x0f {
            1 => {
                let v: Value = serde_json::from_slice(payload).unwrap();
                // An error message is followed by the close frame.
                if v["type"] == "error" { Err(v["code"].as_u64().unwrap_or(0) as u16) } else { Ok(v) }
            }
            8 => Err(u16::from_be_bytes([payload[0], payload[1]])),
            op => panic!("unexpected opcode {op}"),
        };
    }
}

/// Waits until the HLS playlist (with `query`) has a segment; returns its text.
async fn playlist(s: &Server, name: &str, query: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = reqwest::get(format!("{}/hls/{name}.m3u8{query}", s.http)).await.unwrap();
        if r.status() == 200 {
            let t = r.text().await.unwrap();
            if t.contains(".ts") {
                return t;
            }
        }
        assert!(Instant::now() < deadline, "no HLS playlist\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Every way of watching a private room: refused without a token, played with one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_room_needs_a_token_everywhere() {
    if !enter_netns("private_room_needs_a_token_everywhere") {
        return;
    }
    let s = start_rtc(&[]).await;
    let room = private_room(&s).await;
    let name = room.name.clone();
    // Not in public listings; to anyone but its owner it does not exist.
    let list: Value = reqwest::get(format!("{}/api/v1/live/list", s.api)).await.unwrap().json().await.unwrap();
    assert!(!list.to_string().contains(&name), "{list}");
    assert_eq!(status(&format!("{}/api/v1/live/{}", s.api, room.id)).await, 404);

    let _publisher = s.publish(&room.key);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v: Value = s
            .client
            .get(format!("{}/api/v1/live/{}", s.api, room.id))
            .bearer_auth(&room.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["data"]["status"] == "live" {
            break;
        }
        assert!(Instant::now() < deadline, "not live: {v}\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Without a token: every protocol refuses.
    let (ok, err) = tokio::task::spawn_blocking({
        let u = format!("{}/{name}", s.rtmp);
        move || probe_ok(&u)
    })
    .await
    .unwrap();
    assert!(!ok, "RTMP played without a token");
    println!("rtmp refusal: {}", err.trim());
    assert_eq!(status(&format!("{}/flv/{name}.flv", s.http)).await, 401);
    let line = ws_flv_status(&s.http, &format!("/flv/{name}.flv"));
    assert!(line.contains(" 401 "), "{line}");
    assert_eq!(status(&format!("{}/hls/{name}.m3u8", s.http)).await, 401);
    assert_eq!(status(&format!("{}/hls/{name}/0.ts", s.http)).await, 401);
    let whep = format!("{}/whep/{name}", s.api);
    let sub = Peer::spawn(&["subscribe", &whep, "--min-frames", "10", "--timeout", "15"]);
    let created = tokio::task::spawn_blocking(move || sub.wait("created", Duration::from_secs(20))).await.unwrap();
    assert_eq!(created["status"], 401, "{created}");
    let api = s.api.clone();
    let q = format!("room_id={}&role=viewer", room.id);
    assert_eq!(tokio::task::spawn_blocking(move || ws_viewer_first(&api, &q)).await.unwrap(), Err(401));

    // With a token: everything plays.
    let minted = mint(&s, &room, Some(600)).await;
    println!("minted: {minted}");
    let token = minted["token"].as_str().unwrap().to_owned();
    assert!(!token.contains(&room.key) && !minted.to_string().contains(&room.key));
    let play = &minted["play"];
    for (proto, url) in [("rtmp", play["rtmp"].as_str().unwrap()), ("flv", play["flv"].as_str().unwrap())] {
        let u = url.to_owned();
        let c = tokio::task::spawn_blocking(move || codecs(&u)).await.unwrap();
        assert_eq!(c, ["aac", "h264"], "{proto} {url}");
    }
    let (v, a, key) = tokio::task::spawn_blocking({
        let (http, path) = (s.http.clone(), format!("{name}.flv?token={token}"));
        move || read_ws_flv_path(&http, &path, 3)
    })
    .await
    .unwrap();
    assert!(v > 30 && a > 30 && key, "WS-FLV with a token: {v} video, {a} audio tags");
    // HLS: the playlist's segment URIs carry the token; a segment without it is refused.
    let text = playlist(&s, &name, &format!("?token={token}")).await;
    let seg = text.lines().find(|l| l.ends_with(&format!("?token={token}"))).expect("segment URIs carry the token");
    let seg_path = seg.split('?').next().unwrap();
    assert_eq!(status(&format!("{}/hls/{seg}", s.http)).await, 200, "{text}");
    assert_eq!(status(&format!("{}/hls/{seg_path}", s.http)).await, 401);
    let hls = play["hls"].as_str().unwrap().to_owned();
    let (ok, err) = tokio::task::spawn_blocking(move || decode(&hls, 3)).await.unwrap();
    assert!(ok, "HLS with a token: {err}");
    // WHEP with the token (as ?token=) and the room WebSocket as a viewer.
    // (The harness leaves streaming.whep_server at its default: the API's port here.)
    assert!(play["whep"].as_str().unwrap().ends_with(&format!("/whep/{name}?token={token}")), "{play}");
    let whep_t = format!("{}/whep/{name}?token={token}", s.api);
    let sub = Peer::spawn(&["subscribe", &whep_t, "--min-frames", "30", "--timeout", "30", "--delete"]);
    let done = tokio::task::spawn_blocking(move || sub.wait("done", Duration::from_secs(45))).await.unwrap();
    assert!(done["video_frames"].as_u64().unwrap_or(0) >= 30, "{done}\n{}", s.log());
    let api = s.api.clone();
    let q = format!("room_id={}&role=viewer&play_token={token}", room.id);
    let first = tokio::task::spawn_blocking(move || ws_viewer_first(&api, &q)).await.unwrap();
    assert!(first.is_ok(), "{first:?}");
    // No token in the server's log.
    assert!(!s.log().contains(&token), "the token was logged");
}

/// Opens a WebSocket-FLV connection to `/flv/{path}` and reads it for `secs`.
fn read_ws_flv_path(http: &str, path: &str, secs: u64) -> (usize, usize, bool) {
    let mut sock = std::net::TcpStream::connect(http.trim_start_matches("http://")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(sock, "GET /flv/{path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    media::read_flv(sock, secs, true)
}

/// Expired, other rooms', tampered and revoked tokens are refused; a public room
/// plays without one (and ignores one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_and_public_rooms_play() {
    let s = Server::start(&[]).await;
    let room = private_room(&s).await;
    let other = private_room(&s).await;
    let public = s.room().await;
    let _p1 = s.publish(&room.key);
    let _p2 = s.publish(&public.key);
    s.wait_status(public.id, "live", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let flv = |t: &str| format!("{}/flv/{}.flv?token={t}", s.http, room.name);

    // A good token plays (headers only here).
    let good = mint(&s, &room, None).await;
    assert_eq!(good["ttl_secs"], 3600);
    let good = good["token"].as_str().unwrap().to_owned();
    let r = reqwest::get(flv(&good)).await.unwrap();
    assert_eq!(r.status(), 200, "{}", s.log());
    drop(r);
    // Another private room's token.
    let theirs = mint(&s, &other, None).await["token"].as_str().unwrap().to_owned();
    assert_eq!(status(&flv(&theirs)).await, 403);
    // Tampered: a later expiry, a changed signature.
    let parts: Vec<&str> = good.split('.').collect();
    let later = format!("{}.{}.{}.{}", parts[0], parts[1], parts[2].parse::<u64>().unwrap() + 3600, parts[3]);
    assert_eq!(status(&flv(&later)).await, 403);
    let mut flipped = good.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(status(&flv(&flipped)).await, 403);
    assert_eq!(status(&flv("garbage")).await, 403);
    // TTL bounds.
    let v = s.post(&format!("/api/v1/live/{}/play-token", room.id), Some(&room.token), json!({"ttl_secs": 0})).await;
    assert_eq!(v["code"], 400, "{v}");
    let v = s
        .post(&format!("/api/v1/live/{}/play-token", room.id), Some(&room.token), json!({"ttl_secs": 8 * 86400}))
        .await;
    assert_eq!(v["code"], 400, "{v}");
    // Only the owner mints.
    let v = s.post(&format!("/api/v1/live/{}/play-token", room.id), Some(&other.token), json!({})).await;
    assert_eq!(v["code"], 403, "{v}");
    // Expired.
    let short = mint(&s, &room, Some(1)).await["token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(status(&flv(&short)).await, 403);
    let r = reqwest::get(flv(&short)).await.unwrap();
    assert!(r.text().await.unwrap().contains("expired"));

    // A player with a good token is disconnected by a revocation; the token dies.
    let u = flv(&good);
    let player = tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        let (ok, err) = decode(&u, 30);
        (ok, err, t0.elapsed())
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = s.post(&format!("/api/v1/live/{}/play-token/revoke", room.id), Some(&room.token), json!({})).await;
    assert_eq!(v["data"]["revoked"], true, "{v}");
    let (_, _, took) = player.await.unwrap();
    assert!(took < Duration::from_secs(15), "the player kept playing after the revocation ({took:?})");
    let r = reqwest::get(flv(&good)).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("revoked"));
    let fresh = mint(&s, &room, None).await["token"].as_str().unwrap().to_owned();
    assert_eq!(status(&flv(&fresh)).await, 200);

    // Public again: no token needed.
    patch(&s, room.id, &room.token, json!({ "private": false })).await;
    let u = format!("{}/flv/{}.flv", s.http, room.name);
    assert_eq!(tokio::task::spawn_blocking(move || codecs(&u)).await.unwrap(), ["aac", "h264"]);

    // A public room: no token, and a token is ignored.
    for url in [
        format!("{}/{}", s.rtmp, public.name),
        format!("{}/flv/{}.flv", s.http, public.name),
        format!("{}/flv/{}.flv?token=whatever", s.http, public.name),
    ] {
        let u = url.clone();
        assert_eq!(tokio::task::spawn_blocking(move || codecs(&u)).await.unwrap(), ["aac", "h264"], "{url}");
    }
    assert!(!s.log().contains(&good), "the token was logged");
}
