//! End to end with real clients: ffmpeg publishes over RTMP; ffmpeg/ffprobe, a raw
//! RTMP client, an HTTP-FLV reader and a WebSocket-FLV reader play; HLS is checked
//! segment by segment.

mod media;
use media::{Server, copy_player, decode, ffprobe, read_flv};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_publish_play_and_room_status() {
    let s = Server::start(&[]).await;
    let room = s.room().await;
    let mut publisher = s.publish(&room.key);
    let r = s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    assert!(r["started_at"].is_string());

    let url = format!("{}/{}", s.rtmp, room.name);
    let streams = ffprobe(&url);
    assert!(streams.contains(&("h264".into(), 1280, 720)), "{streams:?}");
    assert!(streams.iter().any(|x| x.0 == "aac"), "{streams:?}");
    let (ok, err) = decode(&url, 5);
    assert!(ok && err.trim().is_empty(), "RTMP decode errors: {err}");

    // The room API shows the media and counts viewers while they watch.
    let r = s.room_json(room.id).await;
    assert_eq!(r["media"]["video_codec"], "H264");
    assert_eq!(r["media"]["width"], 1280);
    assert_eq!(r["media"]["audio_codec"], "AAC");
    let mut p = copy_player(&url, 8);
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        if s.room_json(room.id).await["viewer_count"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "viewer count never reached 1");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (st, err) = p.wait_for(Duration::from_secs(30)).expect("player finishes");
    assert!(st.success(), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = s.room_json(room.id).await;
    assert_eq!(r["viewer_count"], 0);
    assert!(r["peak_viewers"].as_i64().unwrap() >= 1);
    // Play URLs never carry the key; the key works only for publishing.
    assert!(!r.to_string().contains(&room.key));
    let streams_by_key = std::process::Command::new("timeout")
        .args(["8", "ffprobe", "-v", "error", &format!("{}/{}", s.rtmp, room.key)])
        .output()
        .unwrap();
    assert!(!streams_by_key.status.success(), "playing by stream key must not work");

    // Publisher gone: after the grace period the broadcast ends; the room is idle.
    publisher.signal("TERM");
    publisher.wait_for(Duration::from_secs(5));
    s.wait_status(room.id, "idle", Duration::from_secs(10)).await;
}

/// RTMP players in the shards' input watches (`/stat.json`), all shards.
fn watched_inputs(stat: &serde_json::Value) -> u64 {
    stat["shards"].as_array().unwrap().iter().map(|x| x["watched_inputs"].as_u64().unwrap()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_players() {
    // A merge window of 60 ms is flushed in two lanes of 30 ms (player::lanes_for):
    // half the players are written at each lane's turn.
    let s = Server::start(&[("MICROVIBE__ENGINE__MERGE_WINDOW_MS", "60")]).await;
    let room = s.room().await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let url = format!("{}/{}", s.rtmp, room.name);
    let mut players: Vec<_> = (0..50).map(|_| copy_player(&url, 12)).collect();
    // While they play, all 50 are clients at once (ffmpeg start-up is slow on a busy
    // machine: poll).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stat = s.stat_json().await;
        // Every RTMP player's input goes through its shard's input watch (no read of
        // its own) while it plays.
        if stat["players"]["rtmp"] == 50 && watched_inputs(&stat) == 50 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "50 concurrent watched players never reached: {} watched {}",
            stat["players"],
            watched_inputs(&stat)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut failures = vec![];
    for (i, p) in players.iter_mut().enumerate() {
        match p.wait_for(Duration::from_secs(60)) {
            Some((st, _)) if st.success() => {}
            other => failures.push((i, other.map(|x| x.1))),
        }
    }
    assert!(failures.is_empty(), "players failed: {failures:?}");
    // Every player received 12 s of media: ffmpeg -t 12 exits 0 only after that much.
    let stat = s.stat_json().await;
    let shards = stat["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    let out: u64 = shards.iter().map(|x| x["bytes_out"].as_u64().unwrap()).sum();
    // 50 players × ≥12 s × ~2.6 Mbit/s ≈ 195 MB; allow for the GOP start.
    assert!(out > 50 * 3_500_000, "bytes out {out}");
    // Players in step took their media through the stream's cohort (one queue for
    // all), and every one of them still got all of it (above).
    let in_step: u64 = shards.iter().map(|x| x["in_step_writes"].as_u64().unwrap()).sum();
    assert!(in_step > 50 * 100, "cohort writes {in_step}: players did not stay in step");
    for sh in shards {
        assert!(sh["io_driver"] == "io_uring" || sh["io_driver"] == "epoll");
        assert_eq!(sh["flush_lanes"], 2);
    }
    // The players' ends (ffmpeg closing) were seen through the watch: none is left.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = s.stat_json().await;
        if stat["players"]["rtmp"] == 0 && watched_inputs(&stat) == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "players left behind: {} watched {}",
            stat["players"],
            watched_inputs(&stat)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_second_publisher_and_takeover() {
    let s = Server::start(&[]).await;
    let room = s.room().await;

    // A wrong key is refused and the room stays idle.
    let mut bad = s.publish("sk_not_a_real_key");
    let (st, _) = bad.wait_for(Duration::from_secs(15)).expect("bad publisher is refused");
    assert!(!st.success());
    assert_eq!(s.room_json(room.id).await["status"], "idle");

    let first = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A second publisher while the first sends media is refused.
    let mut second = s.publish(&room.key);
    let (st, _) = second.wait_for(Duration::from_secs(15)).expect("second publisher is refused");
    assert!(!st.success(), "second publisher must be refused");

    // A player watches through a takeover: the first publisher freezes (like a
    // network break), a new one with the same key takes over after the idle timeout.
    let url = format!("{}/{}", s.rtmp, room.name);
    let mut player = copy_player(&url, 12);
    tokio::time::sleep(Duration::from_secs(2)).await;
    first.signal("STOP");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let third = s.publish(&room.key);
    let (st, err) = player.wait_for(Duration::from_secs(40)).expect("player ends");
    assert!(st.success(), "player must survive the takeover: {err}");
    assert_eq!(s.room_json(room.id).await["status"], "live");
    first.signal("CONT");
    drop(third);
}

/// A raw RTMP player that completes play and then never reads again.
fn stalled_player(rtmp: &str, name: &str) -> TcpStream {
    raw_player(rtmp, name).0
}

/// A raw RTMP player, returned as soon as play started (with its client session).
fn raw_player(rtmp: &str, name: &str) -> (TcpStream, engine::proto::rtmp::ClientSession) {
    use engine::proto::rtmp::{ClientConfig, ClientEvent, ClientGoal, ClientSession};
    let addr = rtmp.trim_start_matches("rtmp://").split('/').next().unwrap().to_owned();
    let mut sock = TcpStream::connect(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A tiny receive buffer so that the backlog stays in the server, not in our kernel.
    {
        use std::os::fd::AsRawFd;
        let size: libc::c_int = 8192;
        // SAFETY: setting an int socket option on a socket we own.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &size as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    let now = Instant::now();
    let mut c = ClientSession::new(ClientConfig::new("live", rtmp), ClientGoal::Play { name: name.to_owned() }, now);
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(b) = c.poll_transmit() {
            sock.write_all(&b).unwrap();
        }
        let mut started = false;
        while let Some(ev) = c.poll_event() {
            if matches!(ev, ClientEvent::PlayStarted { .. } | ClientEvent::Media { .. }) {
                started = true;
            }
        }
        if started {
            return (sock, c);
        }
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "server closed before play started");
        c.handle_input(Instant::now(), &buf[..n]).unwrap();
    }
}

/// A player's commands reach the server while it plays, with no read of its own
/// on the socket (the shard's input watch): `closeStream` sent on an open
/// connection ends the player within a lane period or so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_command_while_playing_is_seen() {
    use engine::proto::rtmp::amf0::Value;
    use engine::proto::rtmp::message::Command;
    let s = Server::start(&[("MICROVIBE__ENGINE__MERGE_WINDOW_MS", "200")]).await;
    let room = s.room().await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let (mut sock, mut c) = raw_player(&s.rtmp.clone(), &room.name);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = s.stat_json().await;
        if stat["players"]["rtmp"] == 1 && watched_inputs(&stat) == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "player not watched: {stat}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Keep reading media in the background so that the server's writes never block.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (total, eof) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let mut rd = sock.try_clone().unwrap();
    let (total2, eof2) = (total.clone(), eof.clone());
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = rd.read(&mut buf) {
            if n == 0 {
                eof2.store(true, Ordering::SeqCst);
                break;
            }
            total2.fetch_add(n, Ordering::SeqCst);
        }
    });
    // Media flows first (the publisher may have been live before its first frame).
    let deadline = Instant::now() + Duration::from_secs(10);
    while total.load(Ordering::SeqCst) < 20_000 {
        assert!(Instant::now() < deadline, "no media to the player: {} bytes", total.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sid = c.stream_id().expect("play stream id");
    c.send_command(sid, &Command::new("closeStream", 0.0, Value::Null, vec![]));
    let asked = Instant::now();
    while let Some(b) = c.poll_transmit() {
        sock.write_all(&b).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stat = s.stat_json().await;
        if stat["players"]["rtmp"] == 0 && watched_inputs(&stat) == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "closeStream not acted on: {stat}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One 200 ms window has 8 lanes of 25 ms: the command is read at the next one.
    assert!(asked.elapsed() < Duration::from_secs(2), "closeStream took {:?}", asked.elapsed());
    // The player's writer ends with the player and shuts its write half down: the
    // client sees the end of the stream.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !eof.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "no end of stream after closeStream");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sock.shutdown(std::net::Shutdown::Both).unwrap();
    reader.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_player_is_bounded_and_harmless() {
    let s = Server::start(&[("MICROVIBE__ENGINE__PLAYER_QUEUE_BYTES", "1000000")]).await;
    let room = s.room().await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let rss_before = s.rss_kb();
    let stalled: Vec<TcpStream> = (0..5).map(|_| stalled_player(&s.rtmp.clone(), &room.name)).collect();
    // A healthy player alongside gets the whole stream.
    let url = format!("{}/{}", s.rtmp, room.name);
    let (ok, err) = tokio::task::spawn_blocking(move || decode(&url, 20)).await.unwrap();
    assert!(ok && err.trim().is_empty(), "healthy player affected: {err}");
    // 5 stalled players × 20 s × 2.6 Mbit/s would be ~33 MB if queues were unbounded;
    // each queue is capped at 1 MB / 6 s (socket buffers are kernel memory, not RSS).
    let rss_after = s.rss_kb();
    assert!(
        rss_after < rss_before + 5 * 1_500 + 8_000,
        "memory grew from {rss_before} kB to {rss_after} kB with stalled players"
    );
    let stat = s.stat_json_admin().await;
    let dropped: u64 =
        stat["streams"][0]["clients"].as_array().unwrap().iter().map(|c| c["dropped"].as_u64().unwrap_or(0)).sum();
    let total_dropped: u64 =
        stat["shards"].as_array().unwrap().iter().map(|x| x["dropped_frames"].as_u64().unwrap()).sum();
    assert!(dropped + total_dropped > 0, "stalled players must have frames dropped: {stat}");
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_flv_and_websocket_flv() {
    let s = Server::start(&[]).await;
    let room = s.room().await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let url = format!("{}/flv/{}.flv", s.http, room.name);
    let streams = ffprobe(&url);
    assert!(streams.contains(&("h264".into(), 1280, 720)) && streams.iter().any(|x| x.0 == "aac"), "{streams:?}");
    let (ok, err) = decode(&url, 8);
    assert!(ok && err.trim().is_empty(), "HTTP-FLV decode errors: {err}");
    // The player was in step (its tags came through the stream's cohort) most of the 8 s.
    let stat = s.stat_json().await;
    let in_step: u64 = stat["shards"].as_array().unwrap().iter().map(|x| x["in_step_writes"].as_u64().unwrap()).sum();
    assert!(in_step > 100, "cohort writes {in_step}");

    let hostport = s.http.trim_start_matches("http://").to_owned();
    let name = room.name.clone();
    let (v, a, key) = tokio::task::spawn_blocking(move || {
        let mut sock = TcpStream::connect(&hostport).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(sock, "GET /flv/{name}.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
        read_flv(sock, 4, true)
    })
    .await
    .unwrap();
    assert!(v > 60 && a > 60, "WebSocket-FLV delivered {v} video and {a} audio tags in 4 s");
    assert!(key, "WebSocket-FLV starts on a keyframe");

    // Unknown stream → 404 (after the short wait); bad method → 405; HEAD works.
    let c = reqwest::Client::new();
    let r = c.get(format!("{}/flv/nope.flv", s.http)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.post(format!("{}/flv/{}.flv", s.http, room.name)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = c.get(format!("{}/nothing", s.http)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.head(format!("{}/stat", s.http)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(format!("{}/stat", s.http)).send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

/// Minimal MPEG-TS checks: 188-byte packets, sync bytes, continuity counters per
/// PID without jumps, and the first video PES of the segment holding an IDR.
fn check_ts(seg: &[u8], cc: &mut std::collections::HashMap<u16, u8>) -> bool {
    assert_eq!(seg.len() % 188, 0, "whole packets");
    let mut first_video_idr = None;
    let mut video_pes = Vec::new();
    let mut collecting = false;
    for p in seg.chunks(188) {
        assert_eq!(p[0], 0x47, "sync byte");
        let pid = u16::from_be_bytes([p[1] & 0x1F, p[2]]);
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 3;
        let counter = p[3] & 0x0F;
        if afc & 1 == 1 {
            if let Some(prev) = cc.get(&pid) {
                assert_eq!(counter, (prev + 1) & 0x0F, "continuity counter jump on PID {pid:#x}");
            }
            cc.insert(pid, counter);
        }
        if pid == 0x100 && first_video_idr.is_none() {
            let mut off = 4;
            if afc & 2 == 2 {
                off += 1 + p[4] as usize;
            }
            if pusi {
                if collecting {
                    // The first video PES is complete.
                    first_video_idr = Some(());
                    continue;
                }
                collecting = true;
            }
            if collecting && off < 188 {
                video_pes.extend_from_slice(&p[off..]);
            }
        }
    }
    // NAL types after start codes in the first PES.
    video_pes.windows(4).any(|w| w[0] == 0 && w[1] == 0 && w[2] == 1 && (w[3] & 0x1F) == 5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_segments_playlist_and_endlist() {
    let s = Server::start(&[("MICROVIBE__HLS__FRAGMENT_SECS", "1"), ("MICROVIBE__HLS__PLAYLIST_SECS", "6")]).await;
    let room = s.room().await;
    let mut publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let m3u8 = format!("{}/hls/{}.m3u8", s.http, room.name);
    let c = reqwest::Client::new();
    let playlist = |text: &str| -> (u64, Vec<String>, u64) {
        let seq = text.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).unwrap().parse().unwrap();
        let target = text.lines().find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:")).unwrap().parse().unwrap();
        let segs = text.lines().filter(|l| l.ends_with(".ts")).map(str::to_owned).collect();
        (seq, segs, target)
    };
    // Let the window fill and slide.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let r = c.get(&m3u8).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let text = r.text().await.unwrap();
    let (seq1, segs1, target) = playlist(&text);
    assert!(seq1 > 0, "the playlist slides: media sequence {seq1}\n{text}");
    assert!(segs1.len() >= 2 && target >= 2, "{text}");
    let streams = ffprobe(&m3u8);
    assert!(streams.contains(&("h264".into(), 1280, 720)) && streams.iter().any(|x| x.0 == "aac"), "{streams:?}");
    let (ok, err) = decode(&m3u8, 8);
    assert!(ok && err.trim().is_empty(), "HLS decode errors: {err}");

    // Every segment starts with an IDR; continuity counters never jump across segments.
    let text = c.get(&m3u8).send().await.unwrap().text().await.unwrap();
    let (seq2, segs2, _) = playlist(&text);
    assert!(seq2 >= seq1, "media sequence grows");
    let mut cc = std::collections::HashMap::new();
    for seg in &segs2 {
        let r = c.get(format!("{}/hls/{seg}", s.http)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{seg}");
        assert_eq!(r.headers()["content-type"], "video/mp2t");
        let body = r.bytes().await.unwrap();
        assert!(check_ts(&body, &mut cc), "segment {seg} does not start with an IDR");
    }
    // ENDLIST after unpublish.
    publisher.signal("TERM");
    publisher.wait_for(Duration::from_secs(5));
    s.wait_status(room.id, "idle", Duration::from_secs(10)).await;
    let text = c.get(&m3u8).send().await.unwrap().text().await.unwrap();
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stat_and_control_drop() {
    let s = Server::start(&[]).await;
    let room = s.room().await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let url = format!("{}/{}", s.rtmp, room.name);
    let mut player = copy_player(&url, 60);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let c = reqwest::Client::new();
    // Per-client elements need the admin token (control/tests/hostile_engine.rs).
    let xml = c.get(format!("{}/stat", s.http)).bearer_auth(&s.admin_token).send().await.unwrap().text().await.unwrap();
    for tag in [
        "<rtmp>",
        "<server>",
        "<application>",
        "<live>",
        "<stream>",
        "<client>",
        "<publishing/>",
        "<nclients>2</nclients>",
        "<meta>",
        "<video>",
        "<audio>",
    ] {
        assert!(xml.contains(tag), "{tag} missing:\n{xml}");
    }
    assert!(xml.contains(&format!("<name>{}</name>", room.name)));
    // Well-formed: every opening tag is closed in order.
    let mut stack = vec![];
    let mut rest = xml.split_once("?>").unwrap().1;
    while let Some(i) = rest.find('<') {
        let j = rest[i..].find('>').unwrap() + i;
        let tag = &rest[i + 1..j];
        if let Some(t) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(t.to_owned()), "mismatched </{t}>");
        } else if !tag.ends_with('/') {
            stack.push(tag.to_owned());
        }
        rest = &rest[j + 1..];
    }
    assert!(stack.is_empty());

    // /control needs the token.
    let drop_url = format!("{}/control/drop/subscriber?app=live&name={}", s.http, room.name);
    let r = c.get(&drop_url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.get(&drop_url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.get(&drop_url).bearer_auth(&s.admin_token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap().trim(), "1");
    // The player sees its connection close long before its 60 s.
    let (_, _) = player.wait_for(Duration::from_secs(10)).expect("dropped player exits");
    // The server's side of the drop may finish a moment after the client saw its end.
    let deadline = Instant::now() + Duration::from_secs(3);
    while s.stat_json().await["players"]["rtmp"] != 0 {
        assert!(Instant::now() < deadline, "the dropped player is still counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
