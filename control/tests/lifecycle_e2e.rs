//! A room's life as streamers and viewers see it, with real clients: a room is a
//! channel (idle → live → idle → live at the same URLs, one broadcast per live
//! period), every player is told when a broadcast ends in its own protocol, unknown
//! streams fail at once, and WebRTC publishers reach HLS and the room's `media` from
//! their first frames.

mod media;
use media::rtc::{Peer, enter_netns, start_rtc};
use media::{Proc, Server, ffprobe, require_browser_tools};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An RTMP player that copies the stream until the server ends it (no `-t`).
fn rtmp_player(url: &str, out: &Path) -> Proc {
    Proc(
        Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i", url, "-c", "copy", "-f", "flv"])
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Reads an HTTP-FLV (or WebSocket-FLV) response until the server closes it; returns
/// (bytes of body, how it ended: "final-chunk" / "ws-close-1000" / "eof" / "timeout").
fn read_until_end(http: &str, name: &str, websocket: bool, limit: Duration) -> (usize, String) {
    let mut sock = TcpStream::connect(http.trim_start_matches("http://")).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    if websocket {
        write!(sock, "GET /flv/{name}.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    } else {
        write!(sock, "GET /flv/{name}.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    }
    let deadline = Instant::now() + limit;
    let mut all = Vec::new();
    let mut buf = vec![0u8; 65536];
    let how = loop {
        if Instant::now() > deadline {
            break "timeout";
        }
        match sock.read(&mut buf) {
            Ok(0) => break "eof",
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break "eof",
        }
    };
    let ending = if how != "eof" {
        how.to_owned()
    } else if websocket {
        // The last frame: close (0x88), 2-byte payload 1000.
        if all.ends_with(&[0x88, 0x02, 0x03, 0xE8]) { "ws-close-1000".into() } else { "eof".into() }
    } else if all.ends_with(b"\r\n0\r\n\r\n") {
        "final-chunk".into()
    } else {
        "eof".into()
    };
    (all.len(), ending)
}

async fn get(s: &Server, url: &str) -> (u16, String, Duration) {
    let t = Instant::now();
    let r = s.client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default(), t.elapsed())
}

async fn broadcasts(s: &Server, id: i64) -> Value {
    let v: Value =
        s.client.get(format!("{}/api/v1/live/{id}/broadcasts", s.api)).send().await.unwrap().json().await.unwrap();
    v["data"].clone()
}

/// Runs tests/browser/play.mjs with `args` (JSON) in the background.
fn browser(args: &Value) -> std::process::Child {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    require_browser_tools(&root.join("tests/browser"));
    Command::new("timeout")
        .args(["-k", "10", "150", "node", "tests/browser/play.mjs"])
        .arg(args.to_string())
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node tests/browser/play.mjs")
}

fn browser_result(child: std::process::Child) -> (bool, Vec<Value>, String) {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    (out.status.success(), lines, format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)))
}

async fn wait_file(path: &Path, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while !path.exists() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// OBS-style: publish, stop, publish again with the same key. Players on RTMP,
/// HTTP-FLV, WebSocket-FLV and HLS (hls.js in Chromium) see the first broadcast end
/// in their protocol and watch the second at the same URLs; the room lists both
/// broadcasts; HLS viewers count; the owner's end is a clean end too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_is_a_channel() {
    let s = Server::start(&[]).await;
    let room = s.room().await;
    let hls = format!("{}/hls/{}.m3u8", s.http, room.name);
    let rtmp = format!("{}/{}", s.rtmp, room.name);

    // Unknown names fail at once; a known idle room waits for its publisher.
    let t = Instant::now();
    let st =
        Command::new("timeout").args(["8", "ffprobe", "-v", "error", &format!("{}/nosuchstream", s.rtmp)]).output();
    let rtmp_unknown = t.elapsed();
    assert!(!st.unwrap().status.success());
    let (flv_unknown, _, flv_unknown_t) = get(&s, &format!("{}/flv/nosuchstream.flv", s.http)).await;
    let (hls_unknown, body, hls_unknown_t) = get(&s, &format!("{}/hls/nosuchstream.m3u8", s.http)).await;
    assert_eq!((flv_unknown, hls_unknown), (404, 404), "{body}");
    println!("unknown stream refused after: RTMP {rtmp_unknown:?}, HTTP-FLV {flv_unknown_t:?}, HLS {hls_unknown_t:?}");
    assert!(rtmp_unknown < Duration::from_secs(2), "RTMP play of an unknown stream took {rtmp_unknown:?}");
    assert!(flv_unknown_t < Duration::from_secs(1) && hls_unknown_t < Duration::from_secs(1));
    // WebSocket-FLV's opening handshake (RFC 6455 §4.2.1): version 13 only (426 with the
    // version we speak), a key that is the base64 of 16 bytes (400).
    for (version, key, want) in [("99", "dGhlIHNhbXBsZSBub25jZQ==", "426"), ("13", "not*base64", "400")] {
        let mut sock = TcpStream::connect(s.http.trim_start_matches("http://")).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(sock, "GET /flv/{}.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: {version}\r\nSec-WebSocket-Key: {key}\r\n\r\n", room.name).unwrap();
        let mut head = String::new();
        let _ = sock.read_to_string(&mut head);
        assert!(head.starts_with(&format!("HTTP/1.1 {want}")), "version {version}, key {key}: {head}");
        if want == "426" {
            assert!(head.to_ascii_lowercase().contains("sec-websocket-version: 13"), "{head}");
        }
    }

    // A player of the idle room, started before the publisher, gets the broadcast.
    let early = Command::new("timeout")
        .args(["20", "ffprobe", "-v", "error", "-show_streams", "-of", "json", &rtmp])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Broadcast 1.
    let mut publisher = s.publish(&room.key);
    let live1 = s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let b1 = live1["broadcast_id"].as_i64().expect("a broadcast while live");
    let early = early.wait_with_output().unwrap();
    assert!(early.status.success(), "a player waiting on the idle room got the broadcast");
    assert!(String::from_utf8_lossy(&early.stdout).contains("h264"));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let out_dir = tempfile::tempdir().unwrap();
    let mut rtmp_p = rtmp_player(&rtmp, &out_dir.path().join("r1.flv"));
    let (http, name) = (s.http.clone(), room.name.clone());
    let flv_p = std::thread::spawn(move || read_until_end(&http, &name, false, Duration::from_secs(60)));
    let (http, name) = (s.http.clone(), room.name.clone());
    let ws_p = std::thread::spawn(move || read_until_end(&http, &name, true, Duration::from_secs(60)));
    let progress = out_dir.path().join("hls-advanced");
    let hls_p = browser(&serde_json::json!({
        "hls": hls, "advance_secs": 2, "timeout_secs": 40, "watch_end_secs": 40,
        "progress_file": progress.to_str().unwrap(),
    }));
    wait_file(&progress, Duration::from_secs(60), "hls.js did not play the first broadcast").await;

    // Every viewer counts, HLS included (hls.js and the other three).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.room_json(room.id).await;
        let stat = s.stat_json().await;
        if r["viewer_count"].as_i64() >= Some(4) && stat["players"]["hls"].as_u64() >= Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "viewers not counted: {r}\n{stat}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The room's media: codecs, size, frame rate and the publisher's bit rate (the
    // fixture is ~2.6 Mbit/s; measured over 5 s windows).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = s.room_json(room.id).await["media"].clone();
        if m["bitrate"].as_u64().is_some_and(|b| (1_500_000..4_000_000).contains(&b)) {
            assert_eq!(
                (m["video_codec"].as_str(), m["width"].as_u64(), m["audio_codec"].as_str()),
                (Some("H264"), Some(1280), Some("AAC"))
            );
            assert!(m["fps"].as_f64().is_some_and(|f| (f - 30.0).abs() < 1.0), "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "no plausible bit rate in the room's media: {m}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The publisher stops (OBS "Stop Streaming"): after the grace period the
    // broadcast ends and every player is told.
    publisher.signal("TERM");
    publisher.wait_for(Duration::from_secs(5));
    let t_stop = Instant::now();
    let idle = s.wait_status(room.id, "idle", Duration::from_secs(15)).await;
    println!("room idle {:?} after the publisher stopped (grace 2 s)", t_stop.elapsed());
    assert!(idle["ended_at"].is_string() && idle["broadcast_id"].is_null());
    let (st, err) = rtmp_p.wait_for(Duration::from_secs(10)).expect("the RTMP player ends with the broadcast");
    assert!(st.success(), "RTMP player: {err}");
    let (n, how) = flv_p.join().unwrap();
    assert_eq!(how, "final-chunk", "HTTP-FLV after {n} bytes");
    let (n, how) = ws_p.join().unwrap();
    assert_eq!(how, "ws-close-1000", "WebSocket-FLV after {n} bytes");
    let (status, text, _) = get(&s, &hls).await;
    assert_eq!(status, 200, "the ended playlist stays served: {text}");
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    let (ok, lines, log) = browser_result(hls_p);
    let r = lines.iter().find(|l| l["player"] == "hls").cloned().unwrap_or_default();
    println!("hls.js: {r}");
    assert!(ok && r["ended"] == true, "hls.js must show the end without a fatal error: {log}\n{}", s.log());
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.room_json(room.id).await["viewer_count"] != 0 {
        assert!(Instant::now() < deadline, "viewers left behind");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Broadcast 2: the same key, the same URLs.
    let publisher = s.publish(&room.key);
    let live2 = s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let b2 = live2["broadcast_id"].as_i64().unwrap();
    assert_ne!(b1, b2, "a new broadcast");
    assert_ne!(live1["started_at"], live2["started_at"]);
    let streams = ffprobe(&rtmp);
    assert!(streams.iter().any(|x| x.0 == "h264") && streams.iter().any(|x| x.0 == "aac"), "{streams:?}");
    let streams = ffprobe(&format!("{}/flv/{}.flv", s.http, room.name));
    assert!(streams.iter().any(|x| x.0 == "h264"), "{streams:?}");
    let hls_p = browser(&serde_json::json!({ "hls": hls, "advance_secs": 2, "timeout_secs": 40 }));
    let (ok, lines, log) = browser_result(hls_p);
    assert!(ok, "hls.js plays the second broadcast at the same URL: {lines:?}\n{log}");

    // The owner ends it: players are told (RTMP StreamEOF, then the connection closes);
    // the room stays, idle.
    let mut rtmp_p = rtmp_player(&rtmp, &out_dir.path().join("r2.flv"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r: Value = s
        .client
        .post(format!("{}/api/v1/live/{}/end", s.api, room.id))
        .bearer_auth(&room.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"]["status"], "idle", "{r}");
    let (st, err) = rtmp_p.wait_for(Duration::from_secs(10)).expect("the RTMP player ends with the broadcast");
    assert!(st.success(), "RTMP player after the owner's end: {err}");
    let (status, text, _) = get(&s, &hls).await;
    assert!(status == 200 && text.trim_end().ends_with("#EXT-X-ENDLIST"), "{status} {text}");
    publisher.signal("KILL");

    // The broadcasts: two (the ffmpeg publisher may reconnect after the owner's
    // end and start a third; ffmpeg does not, OBS would).
    let list = broadcasts(&s, room.id).await;
    println!("broadcasts: {list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!((items[0]["id"].as_i64(), items[1]["id"].as_i64()), (Some(b2), Some(b1)));
    assert_eq!(items[0]["end_reason"], "ended_by_owner");
    assert_eq!(items[1]["end_reason"], "publisher_left");
    assert!(items[1]["peak_viewers"].as_i64().unwrap() >= 4, "peak counts HLS viewers too: {list}");
    assert!(items.iter().all(|b| b["duration_secs"].as_f64().unwrap() > 1.0));
}

/// A server killed while live: at the next start its rooms are not left live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_rooms_are_reconciled_after_a_crash() {
    let s = Server::start(&[]).await;
    let room = s.room().await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let db = s.dir.path().join("t.db");
    s.proc.signal("KILL");
    std::thread::sleep(Duration::from_millis(300));
    // Same database, new ports.
    let s2 = Server::start(&[("MICROVIBE__DATABASE__SQLITE_PATH", db.to_str().unwrap())]).await;
    let r = s2.wait_status(room.id, "idle", Duration::from_secs(5)).await;
    assert!(r["ended_at"].is_string(), "{r}");
    let list = broadcasts(&s2, room.id).await;
    assert_eq!(list["items"][0]["end_reason"], "server_restart", "{list}");
    assert!(s2.log().contains("rooms left live by an earlier run"), "{}", s2.log());
}

/// WebRTC: a WHIP room's HLS plays in hls.js opened 1 s after the publisher
/// started, its `media` is known from the first frames, a WHEP viewer's session
/// ends with the broadcast, and a publisher that vanishes (no DELETE: a closed tab)
/// leaves `live` within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_rooms_start_and_end_promptly() {
    if !enter_netns("webrtc_rooms_start_and_end_promptly") {
        return;
    }
    let s = start_rtc(&[]).await;
    let room = s.room().await;
    let whip = format!("{}/whip/{}", s.api, room.name);
    let publisher =
        Peer::spawn(&["publish", &whip, "--key", &room.key, "--codec", "h264", "--tone", "--seconds", "60"]);
    let created = publisher.wait("created", Duration::from_secs(20));
    assert_eq!(created["status"], 201, "{created}\n{}", s.log());
    let t_live = Instant::now();
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;

    // `media` from the first frames.
    let deadline = Instant::now() + Duration::from_secs(10);
    let media = loop {
        let r = s.room_json(room.id).await;
        if r["media"]["video_codec"] == "H264" && r["media"]["width"].as_u64().is_some() {
            break r["media"].clone();
        }
        assert!(Instant::now() < deadline, "no media info for the WHIP room: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("media after {:?}: {media}", t_live.elapsed());

    // hls.js (default settings) opened 1 s after the room went live; meanwhile a plain
    // playlist request made then answers once the first segment exists (no 404).
    let wait = Duration::from_secs(1).saturating_sub(t_live.elapsed());
    tokio::time::sleep(wait).await;
    let hls = format!("{}/hls/{}.m3u8", s.http, room.name);
    let t_hls = Instant::now();
    let player = browser(&serde_json::json!({ "hls": hls, "advance_secs": 2, "timeout_secs": 40 }));
    let (status, text, took) = get(&s, &hls).await;
    println!(
        "first HLS playlist {:?} after the WHIP room went live (asked at 1 s, answered in {took:?})",
        t_live.elapsed()
    );
    assert!(status == 200 && text.contains("#EXTINF"), "{status} {text}");
    let (ok, lines, log) = browser_result(player);
    println!("hls.js on the WHIP room: {:?} from opening to 2 s of playback; {lines:?}", t_hls.elapsed());
    assert!(ok, "hls.js must play a WHIP room opened 1 s after it went live: {log}\n{}", s.log());

    // What bridging from the first frame costs: the Opus → AAC transcoding of this
    // stream (it has no RTMP/FLV viewer now that hls.js is gone).
    let stream = |v: &Value| v["streams"].as_array().and_then(|a| a.first()).cloned().unwrap_or_default();
    let a = stream(&s.stat_json().await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b = stream(&s.stat_json().await);
    let ms = b["audio_transcode_cpu_ms"].as_f64().unwrap_or(0.0) - a["audio_transcode_cpu_ms"].as_f64().unwrap_or(0.0);
    println!("always-on bridge: {:.1} ms of CPU per s of media for the audio transcode ({:?})", ms / 3.0, b["bridges"]);
    assert!(b["bridges"].to_string().contains("webrtc->rtmp"), "{b}");

    // A WHEP viewer; then the publisher vanishes without a DELETE.
    let whep = format!("{}/whep/{}", s.api, room.name);
    let viewer = Peer::spawn(&["subscribe", &whep, "--until-ended", "--timeout", "40"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st = viewer.wait("stats", Duration::from_secs(20));
        if st["video_frames"].as_u64() > Some(10) {
            break;
        }
        assert!(Instant::now() < deadline, "the WHEP viewer got no video: {st}");
    }
    publisher.proc.signal("KILL");
    let t_gone = Instant::now();
    s.wait_status(room.id, "idle", Duration::from_secs(15)).await;
    let left = t_gone.elapsed();
    println!("WHIP publisher killed: room idle after {left:?} (silence 4 s + grace 2 s)");
    assert!(left < Duration::from_secs(10), "the room stayed live {left:?} after its publisher vanished");
    let done = viewer.wait("done", Duration::from_secs(20));
    println!("WHEP viewer: {done}");
    assert!(
        done["track_ended_secs"].is_number() || done["closed_secs"].is_number(),
        "the WHEP viewer's session must end with the broadcast: {done}"
    );
    let (status, text, _) = get(&s, &hls).await;
    assert!(status == 200 && text.trim_end().ends_with("#EXT-X-ENDLIST"), "{status} {text}");
}

/// A TCP relay to PostgreSQL that a test can cut (every connection closed, new ones
/// refused) and restore: a database outage without touching the shared server.
struct DbRelay {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl DbRelay {
    async fn start(target: &'static str) -> DbRelay {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (up2, gen2) = (up.clone(), generation.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // refused: dropped at once
                }
                let (up3, gen3) = (up2.clone(), gen2.clone());
                let born = gen3.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else { return };
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let cut = async {
                        while up3.load(Ordering::SeqCst) && gen3.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    };
                    tokio::select! { _ = copy => {}, _ = cut => {} }
                });
            }
        });
        DbRelay { port, up, generation, task }
    }

    fn set_up(&self, up: bool) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for DbRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A publisher that leaves while PostgreSQL is unreachable: the broadcast's end is
/// retried until the database is back, and the room ends up idle (not live forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_state_survives_a_database_outage() {
    let relay = DbRelay::start("127.0.0.1:5432").await;
    let schema = format!("lc_{}", media::free_port());
    let port = relay.port.to_string();
    let s = Server::start_postgres(&schema, &[("MICROVIBE__DATABASE__PORT", &port)]).await;
    let room = s.room().await;
    let mut publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;

    // The database goes away; then the publisher stops (grace 2 s).
    relay.set_up(false);
    publisher.signal("TERM");
    publisher.wait_for(Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !s.log().contains("room state not saved; retrying") {
        assert!(Instant::now() < deadline, "the failed write is not retried:\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = s.client.get(format!("{}/api/v1/live/{}", s.api, room.id)).send().await.unwrap();
    assert_eq!(r.status(), 503, "the API says the database is unavailable meanwhile");

    // Back: the end lands and the room is idle, its broadcast ended.
    relay.set_up(true);
    let t = Instant::now();
    let r = s.wait_status(room.id, "idle", Duration::from_secs(20)).await;
    println!("room idle {:?} after the database came back", t.elapsed());
    assert!(r["ended_at"].is_string());
    assert_eq!(broadcasts(&s, room.id).await["items"][0]["end_reason"], "publisher_left");

    media::drop_pg_schema(&schema).await;
}

/// Viewer counts do not read 0 while players watch after Redis restarts without
/// persistence: the count is the engine's own, from its events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_counts_survive_a_redis_restart() {
    let port = media::free_port();
    let mut redis = media::redis::OwnRedis::start(port);
    let schema = format!("lcr_{}", media::free_port());
    let prefix = format!("{schema}:");
    let port_s = port.to_string();
    let s = Server::start_postgres(
        &schema,
        &[
            ("MICROVIBE__REDIS__HOST", "127.0.0.1"),
            ("MICROVIBE__REDIS__PORT", &port_s),
            ("MICROVIBE__REDIS__KEY_PREFIX", &prefix),
        ],
    )
    .await;
    let room = s.room().await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let (http, name) = (s.http.clone(), room.name.clone());
    let player = std::thread::spawn(move || read_until_end(&http, &name, false, Duration::from_secs(12)));
    let count = || async { s.room_json(room.id).await["viewer_count"].as_i64() };
    let deadline = Instant::now() + Duration::from_secs(10);
    while count().await != Some(1) {
        assert!(Instant::now() < deadline, "the player is not counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Redis loses everything.
    drop(redis);
    redis = media::redis::OwnRedis::start(port);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = count().await;
    assert_eq!(after, Some(1), "viewer count after the Redis restart, with the player still watching");
    let _ = player.join();
    drop(redis);
    media::drop_pg_schema(&schema).await;
}
