//! FLV output that every tool reads (RTMP, HTTP-FLV, WebSocket-FLV), checked with
//! real ffmpeg/ffprobe against the real binary: one video and one audio stream (no
//! extra data stream from metadata), a player timeline that starts at 0 and stays
//! monotonic across a publisher takeover, a quick first frame for ffmpeg with and
//! without probing. And HLS viewers counted as viewers.

mod media;
use media::{Proc, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `ffprobe -show_streams` of `url` (or of stdin fed by `feed`): (codec_type, codec_name).
fn probe_streams(url: &str, feed: Option<Box<dyn FnOnce(std::process::ChildStdin) + Send>>) -> Vec<(String, String)> {
    let mut child = Command::new("timeout")
        .args(["20", "ffprobe", "-v", "error", "-show_streams", "-of", "json", url])
        .stdin(if feed.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(feed) = feed {
        let stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || feed(stdin));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "ffprobe {url}: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["codec_type"].as_str().unwrap_or("").to_owned(), s["codec_name"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// Opens `/flv/{name}.flv` (as a WebSocket when `websocket`) and returns the socket
/// after the response head, with the body bytes already read.
fn open_flv(http: &str, name: &str, websocket: bool) -> (TcpStream, Vec<u8>) {
    let mut sock = TcpStream::connect(http.trim_start_matches("http://")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let upgrade = if websocket {
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    } else {
        ""
    };
    write!(sock, "GET /flv/{name}.flv HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n").unwrap();
    let mut raw = vec![];
    let mut buf = [0u8; 16384];
    loop {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the response head");
        raw.extend_from_slice(&buf[..n]);
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..p]).to_string();
            assert!(head.starts_with(if websocket { "HTTP/1.1 101" } else { "HTTP/1.1 200" }), "{head}");
            return (sock, raw[p + 4..].to_vec());
        }
    }
}

/// A WebSocket-FLV player that unwraps the frames into `out` (ffprobe's stdin) until
/// the reader goes away.
fn ws_feed(http: String, name: String) -> Box<dyn FnOnce(std::process::ChildStdin) + Send> {
    Box::new(move |mut out| {
        let (mut sock, mut pending) = open_flv(&http, &name, true);
        let mut buf = vec![0u8; 65536];
        loop {
            let payload = media::unframe(&mut pending, true);
            if out.write_all(&payload).is_err() {
                return;
            }
            match sock.read(&mut buf) {
                Ok(n) if n > 0 => pending.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
    })
}

/// One tag as a player got it: (type, timestamp, first body bytes).
type Tag = (engine::proto::flv::TagType, u32, Vec<u8>);

/// Reads `/flv/{name}.flv` for `secs`: the FLV header's flags and the tags.
fn flv_tags(http: &str, name: &str, secs: u64, websocket: bool) -> (u8, Vec<Tag>) {
    let (mut sock, mut pending) = open_flv(http, name, websocket);
    let mut reader = engine::proto::flv::FlvReader::new(8 << 20);
    let mut tags = vec![];
    let mut flags = None;
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let payload = media::unframe(&mut pending, websocket);
        if flags.is_none() && payload.len() >= 5 {
            flags = Some(payload[4]);
        }
        reader.handle_input(&payload);
        while let Some(t) = reader.poll_tag().unwrap() {
            tags.push((t.tag_type, t.timestamp_ms, t.body.iter().take(2).copied().collect()));
        }
        match sock.read(&mut buf) {
            Ok(n) if n > 0 => pending.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    (flags.unwrap_or(0), tags)
}

/// Per track (audio, video), media timestamps never go back.
fn assert_monotonic(tags: &[Tag]) {
    use engine::proto::flv::TagType;
    for track in [TagType::Audio, TagType::Video] {
        let ts: Vec<u32> = tags.iter().filter(|t| t.0 == track && t.2.get(1) != Some(&0)).map(|t| t.1).collect();
        for w in ts.windows(2) {
            assert!(w[1] >= w[0], "{track:?} went back from {} to {}: {ts:?}", w[0], w[1]);
        }
    }
}

/// A stream that has been live a while (so that a player's stream time is far from 0).
async fn live_server() -> (Server, media::Room, Proc) {
    let s = Server::start(&[]).await;
    let room = s.room().await;
    let publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    // Two GOPs (2 s each) cached, and stream times well past 0.
    tokio::time::sleep(Duration::from_secs(5)).await;
    (s, room, publisher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_output_has_one_video_and_one_audio_stream_and_starts_at_zero() {
    use engine::proto::flv::TagType;
    let (s, room, _publisher) = live_server().await;
    let want = vec![("video".to_owned(), "h264".to_owned()), ("audio".to_owned(), "aac".to_owned())];
    let rtmp = format!("{}/{}", s.rtmp, room.name);
    let http = format!("{}/flv/{}.flv", s.http, room.name);
    let ws = tokio::task::spawn_blocking({
        let (h, n) = (s.http.clone(), room.name.clone());
        move || (probe_streams(&rtmp, None), probe_streams(&http, None), probe_streams("pipe:0", Some(ws_feed(h, n))))
    });
    let (rtmp, http, ws) = ws.await.unwrap();
    assert_eq!(rtmp, want, "RTMP");
    assert_eq!(http, want, "HTTP-FLV");
    assert_eq!(ws, want, "WebSocket-FLV");

    // A joining player's timeline: metadata and codec headers at 0, then media from
    // a keyframe at about 0 (the stream itself is seconds in), never going back.
    for websocket in [false, true] {
        let (h, n) = (s.http.clone(), room.name.clone());
        let (flags, tags) = tokio::task::spawn_blocking(move || flv_tags(&h, &n, 3, websocket)).await.unwrap();
        assert_eq!(flags, 5, "the header announces audio and video");
        let kinds: Vec<(TagType, u32)> = tags.iter().take(4).map(|t| (t.0, t.1)).collect();
        assert_eq!(
            kinds[..3],
            [(TagType::Script, 0), (TagType::Video, 0), (TagType::Audio, 0)],
            "metadata, video and audio headers first, at 0 ({websocket}): {kinds:?}"
        );
        assert_eq!(tags[1].2, [0x17, 0], "the AVC sequence header");
        let key = &tags[3];
        assert!(key.0 == TagType::Video && key.2[0] >> 4 == 1, "a keyframe next: {kinds:?}");
        assert!(key.1 < 100, "the first keyframe at about 0, not at the stream's time: {kinds:?}");
        assert!(tags.iter().filter(|t| t.0 == TagType::Script).count() == 1, "one metadata tag");
        assert_monotonic(&tags);
        let last = tags.last().unwrap().1;
        assert!((2_000..60_000).contains(&last), "3 s of reading ends about 3 s in (a start of GOPs): {last}");
    }
}

/// Seconds of each of `tries` runs of `args` (ffmpeg), asserting each succeeds.
fn timed_runs(args: &[&str], tries: usize) -> Vec<f64> {
    let mut out = vec![];
    for i in 0..tries {
        let t0 = Instant::now();
        let o = Command::new("timeout").arg("10").arg("ffmpeg").args(args).output().unwrap();
        out.push(t0.elapsed().as_secs_f64());
        assert!(o.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        // Joins at different points of the GOP.
        std::thread::sleep(Duration::from_millis(97 * (i as u64 % 7)));
    }
    out.sort_by(|a, b| a.total_cmp(b));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_frame_is_quick_with_and_without_probing() {
    let (s, room, _publisher) = live_server().await;
    let urls =
        [("RTMP", format!("{}/{}", s.rtmp, room.name)), ("HTTP-FLV", format!("{}/flv/{}.flv", s.http, room.name))];
    for (what, url) in urls {
        // Plain ffmpeg probes the stream (frame rate from 40 frames) before its first
        // frame: the start it gets at once must be enough.
        let u = url.clone();
        let t = tokio::task::spawn_blocking(move || {
            timed_runs(&["-v", "error", "-i", &u, "-frames:v", "1", "-f", "null", "-"], 20)
        })
        .await
        .unwrap();
        let (p50, p99) = (t[t.len() / 2], t[((t.len() - 1) as f64 * 0.99).round() as usize]);
        eprintln!("{what}: time to first frame p50 {p50:.3} s, p99 {p99:.3} s");
        assert!(p99 < 0.5, "{what}: time to first frame p50 {p50:.3} s, p99 {p99:.3} s: {t:?}");
        // A player that does not probe takes the streams from the headers and throws
        // its first packet away: it must still show video at once.
        let u = url.clone();
        let t = tokio::task::spawn_blocking(move || {
            timed_runs(
                &[
                    "-v",
                    "error",
                    "-fflags",
                    "nobuffer",
                    "-flags",
                    "low_delay",
                    "-probesize",
                    "32",
                    "-analyzeduration",
                    "0",
                    "-i",
                    &u,
                    "-frames:v",
                    "1",
                    "-f",
                    "null",
                    "-",
                ],
                3,
            )
        })
        .await
        .unwrap();
        eprintln!("{what}: low-latency first frame {t:?}");
        assert!(t[t.len() - 1] < 1.0, "{what}: a low-latency player got video after {t:?} s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_timeline_stays_monotonic_across_a_takeover() {
    let (s, room, first) = live_server().await;
    let (h, n) = (s.http.clone(), room.name.clone());
    let reader = tokio::task::spawn_blocking(move || flv_tags(&h, &n, 9, false));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The first publisher freezes; a new one takes over after the idle timeout (2 s).
    first.signal("STOP");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _second = s.publish(&room.key);
    let (_, tags) = reader.await.unwrap();
    first.signal("CONT");
    assert!(tags.first().is_some_and(|t| t.1 == 0));
    assert_monotonic(&tags);
    // The new publisher's codec headers reached the player, on its timeline (not at
    // 0, not back at the stream's time), and metadata only ever at 0.
    use engine::proto::flv::TagType;
    let headers: Vec<u32> =
        tags.iter().filter(|t| t.0 == TagType::Video && t.2.get(1) == Some(&0)).map(|t| t.1).collect();
    assert!(headers.len() >= 2 && headers[1] > 2_000, "the takeover's headers: {headers:?}");
    assert!(tags.iter().filter(|t| t.0 == TagType::Script).all(|t| t.1 == 0));
    let video: Vec<u32> = tags.iter().filter(|t| t.0 == TagType::Video).map(|t| t.1).collect();
    let last = *video.last().unwrap();
    assert!(last > 4_000 && last < 20_000, "the timeline went on from the player's start: {last}");
}

/// HLS viewers are sessions (client address and User-Agent): they count in the room's
/// viewer count, `/stat.json`, `/stat` and `/metrics` while they request the
/// playlist and segments, and leave about three target durations after their last
/// request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_viewers_are_counted_while_they_play() {
    let s = Server::start(&[("MICROVIBE__HLS__FRAGMENT_SECS", "1"), ("MICROVIBE__HLS__PLAYLIST_SECS", "6")]).await;
    let room = s.room().await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let m3u8 = format!("{}/hls/{}.m3u8", s.http, room.name);
    // Two players on one address, told apart by their User-Agent: a playlist reload
    // and the newest segment every second, as an HLS player does.
    let play = |ua: &'static str, secs: u64| {
        let (m3u8, http) = (m3u8.clone(), s.http.clone());
        tokio::spawn(async move {
            let c = reqwest::Client::builder().user_agent(ua).build().unwrap();
            let deadline = Instant::now() + Duration::from_secs(secs);
            let mut target = 0;
            while Instant::now() < deadline {
                if let Ok(r) = c.get(&m3u8).send().await
                    && let Ok(text) = r.text().await
                {
                    target = text
                        .lines()
                        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(target);
                    if let Some(seg) = text.lines().rfind(|l| l.ends_with(".ts")) {
                        let _ = c.get(format!("{http}/hls/{seg}")).send().await.and_then(|r| r.error_for_status());
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            target
        })
    };
    let a = play("hls-test-a", 8);
    let b = play("hls-test-b", 8);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let viewers = s.room_json(room.id).await["viewer_count"].as_i64().unwrap_or(0);
        let stat = s.stat_json().await;
        if viewers == 2 && stat["players"]["hls"] == 2 {
            // Per-client entries only for the admin.
            let stat = s.stat_json_admin().await;
            let clients = &stat["streams"][0]["clients"];
            let hls = clients.as_array().unwrap().iter().filter(|c| c["protocol"] == "hls").count();
            assert_eq!(hls, 2, "{stat}");
            break;
        }
        assert!(Instant::now() < deadline, "HLS viewers not counted: {viewers} viewers, {stat}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let xml = s.client.get(format!("{}/stat", s.http)).bearer_auth(&s.admin_token).send().await.unwrap();
    let xml = xml.text().await.unwrap();
    assert_eq!(xml.matches("<flashver>hls</flashver>").count(), 2, "{xml}");
    let metrics = reqwest::get(format!("{}/metrics", s.api)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("microvibe_players{protocol=\"hls\"} 2"), "{metrics}");
    // They stop: the count returns to 0 within three target durations (and the
    // second-long sweep), not at once.
    let target = a.await.unwrap().max(b.await.unwrap());
    assert!(target >= 1, "a target duration from the playlist");
    let stopped = Instant::now();
    let window = Duration::from_secs(3 * target + 3);
    loop {
        let viewers = s.room_json(room.id).await["viewer_count"].as_i64().unwrap_or(-1);
        let hls = s.stat_json().await["players"]["hls"].as_u64().unwrap_or(99);
        if viewers == 0 && hls == 0 {
            break;
        }
        assert!(stopped.elapsed() < window, "HLS viewers still counted {:?} after they stopped", stopped.elapsed());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(stopped.elapsed() >= Duration::from_secs(target), "left too early: {:?}", stopped.elapsed());
    assert!(s.room_json(room.id).await["peak_viewers"].as_i64().unwrap() >= 2);
}
