//! The media engine under an attacker's probe, with a legit publisher and players
//! measured alongside. Every flood is bounded in count and time and goes to
//! loopback only (the WebRTC ones inside a network namespace).

mod media;
use media::{Server, decode};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Descriptors open in a process.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Connects and does a simple RTMP handshake (C0+C1+C2 of zeros; S0+S1+S2 read).
async fn rtmp_handshaken(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut c = vec![3u8];
    c.resize(1 + 2 * 1536, 0);
    s.write_all(&c).await.unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    s.read_exact(&mut s0s1s2).await.unwrap();
    s
}

/// A type 0 chunk header (AMF0 command type) on chunk stream `csid` announcing `len` bytes.
fn header(csid: u8, len: u32) -> Vec<u8> {
    let l = len.to_be_bytes();
    vec![csid, 0, 0, 0, l[1], l[2], l[3], 20, 0, 0, 0, 0]
}

/// Set Chunk Size (protocol control, chunk stream 2).
fn set_chunk_size(size: u32) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0];
    v.extend_from_slice(&size.to_be_bytes());
    v
}

/// Whether the server has closed `s`: EOF or a reset within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut b = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut b)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Item 1: before a connection may publish, it may not make the server hold large
/// partial messages, and dribbling bytes does not keep it open.
///
/// 40 connections each announce four 16 MiB messages on four chunk streams and
/// push 8 MiB into each (32 MiB a connection, the old per-connection bound; the
/// pushes are bounded in bytes and stop at the first error), then dribble a byte a
/// second; 40 more announce a 60 000-byte message (under the cap) and dribble.
/// Meanwhile ffmpeg publishes and an RTMP player decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_before_publish_holds_little_memory_and_dribblers_time_out() {
    const N: usize = 40;
    let s = Server::start(&[("MICROVIBE__ENGINE__IDLE_TIMEOUT_SECS", "5")]).await;
    let room = s.room().await;
    let mut publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let url = format!("{}/{}", s.rtmp, room.name);
    let addr = s.rtmp.trim_start_matches("rtmp://").trim_end_matches("/live").to_owned();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss0, fds0) = (s.rss_kb(), fds(s.proc.pid()));

    // Sample the server's RSS while the flood runs.
    let pid_rss = {
        let pid = s.proc.pid();
        move || {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok()))
                .unwrap_or(0)
        }
    };
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss0));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(pid_rss(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..2 * N {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = rtmp_handshaken(&addr).await;
            let mut pushed = 0usize;
            let big = i < N;
            if big {
                let mut w = set_chunk_size(8 << 20);
                let chunk = vec![0u8; 8 << 20];
                'push: for csid in 3..7u8 {
                    w.extend(header(csid, 0xFF_FFFF));
                    if c.write_all(&w).await.is_err() {
                        break;
                    }
                    w.clear();
                    // The last chunk stops 100 bytes short, so the dribble below
                    // lands inside it.
                    let n = if csid == 6 { chunk.len() - 100 } else { chunk.len() };
                    for part in chunk[..n].chunks(256 << 10) {
                        if c.write_all(part).await.is_err() {
                            break 'push;
                        }
                        pushed += part.len();
                    }
                }
            } else {
                let mut w = header(3, 60_000);
                w.extend(vec![0u8; 1000]);
                let _ = c.write_all(&w).await;
            }
            // Dribble one byte a second for at most 15 s, until the server closes.
            for _ in 0..15 {
                if closed_within(&mut c, Duration::from_secs(1)).await {
                    return (big, pushed, Some(start.elapsed()));
                }
                if c.write_all(&[0]).await.is_err() {
                    return (big, pushed, Some(start.elapsed()));
                }
            }
            (big, pushed, None)
        }));
    }
    // The legit player decodes while the attackers are connected.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_during = s.rss_kb();
    let fds_during = fds(s.proc.pid());
    let player_url = url.clone();
    let (ok, err) = tokio::task::spawn_blocking(move || decode(&player_url, 3)).await.unwrap();

    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.await.unwrap();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss1, fds1) = (s.rss_kb(), fds(s.proc.pid()));
    let pushed: usize = results.iter().map(|r| r.1).sum();
    let big_closed: Vec<_> = results.iter().filter(|r| r.0).map(|r| r.2).collect();
    let small_closed: Vec<_> = results.iter().filter(|r| !r.0).map(|r| r.2).collect();
    eprintln!(
        "RSS before {} MiB, during {} MiB, peak {} MiB, after {} MiB; descriptors before {fds0}, during \
         {fds_during}, after {fds1}; attacker bytes written {} MiB; big closed at {:?}; dribblers closed at {:?}",
        rss0 >> 10,
        rss_during >> 10,
        peak >> 10,
        rss1 >> 10,
        pushed >> 20,
        big_closed.iter().max(),
        small_closed.iter().max(),
    );

    assert!(ok && err.trim().is_empty(), "the legit player failed during the flood: {err}");
    assert!(publisher.0.try_wait().unwrap().is_none(), "the legit publisher was disconnected");
    assert!(
        peak < rss0 + 64 * 1024,
        "RSS grew from {} MiB to {} MiB under {N} unauthenticated connections",
        rss0 >> 10,
        peak >> 10
    );
    // Huge announcements are refused at once (well before the idle timeout).
    for c in &big_closed {
        assert!(c.is_some_and(|t| t < Duration::from_secs(4)), "a huge-message connection stayed open: {c:?}");
    }
    // Dribblers are idle: closed after the 5 s idle timeout. (The connection's timer
    // first sleeps to the 10 s handshake deadline, so they close at about 10 s.)
    for c in &small_closed {
        assert!(c.is_some_and(|t| t < Duration::from_secs(13)), "a dribbling connection stayed open: {c:?}");
    }
    assert!(fds1 <= fds0 + 2, "descriptors: {fds0} before, {fds1} after");
    // And the room still plays.
    let (ok, err) = tokio::task::spawn_blocking(move || decode(&url, 2)).await.unwrap();
    assert!(ok && err.trim().is_empty(), "{err}");
    publisher.signal("TERM");
}

/// WebRTC sessions in all shards, by `/stat.json`.
async fn webrtc_sessions(s: &Server) -> u64 {
    let stat = s.stat_json().await;
    stat["shards"].as_array().unwrap().iter().map(|x| x["webrtc_sessions"].as_u64().unwrap()).sum()
}

/// Item 2: a flood of WHEP offers that never connect. 300 POSTs of a valid
/// (captured Chromium) viewer offer from 127.0.0.1, 20 at a time: beyond the
/// per-address bound they get 429, the ones admitted are not viewers (viewer count
/// and peak stay 0) and are gone within the 10 s connect timeout; meanwhile an
/// aiortc WHIP publisher of another room goes live and an aiortc WHEP viewer (from
/// 127.0.0.2) of the flooded room decodes video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_flood_of_unconnected_offers() {
    if !media::rtc::enter_netns("whep_flood_of_unconnected_offers") {
        return;
    }
    const POSTS: usize = 300;
    let s = media::rtc::start_rtc(&[]).await;
    let flooded = s.room().await;
    let other = s.room().await;
    let _rtmp_publisher = s.publish(&flooded.key);
    s.wait_status(flooded.id, "live", Duration::from_secs(10)).await;
    let offer = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../engine/testdata/webrtc/chromium_subscriber_offer.sdp"
    ))
    .unwrap();
    let whep = format!("{}/whep/{}", s.api, flooded.name);
    let (rss0, fds0) = (s.rss_kb(), fds(s.proc.pid()));

    let flood_start = Instant::now();
    let mut statuses: std::collections::BTreeMap<u16, usize> = Default::default();
    for _ in 0..POSTS / 20 {
        let mut batch = Vec::new();
        for _ in 0..20 {
            let (c, url, offer) = (s.client.clone(), whep.clone(), offer.clone());
            batch.push(tokio::spawn(async move {
                c.post(url)
                    .header("content-type", "application/sdp")
                    .body(offer)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        for t in batch {
            *statuses.entry(t.await.unwrap()).or_default() += 1;
        }
    }
    let flood_secs = flood_start.elapsed().as_secs_f64();
    let sessions_after_flood = webrtc_sessions(&s).await;
    let room = s.room_json(flooded.id).await;
    let (rss1, fds1) = (s.rss_kb(), fds(s.proc.pid()));
    eprintln!(
        "{POSTS} WHEP POSTs in {flood_secs:.1} s: statuses {statuses:?}; sessions after {sessions_after_flood}; \
         viewer_count {} peak {}; RSS {} -> {} MiB; descriptors {fds0} -> {fds1}",
        room["viewer_count"],
        room["peak_viewers"],
        rss0 >> 10,
        rss1 >> 10
    );
    let admitted = statuses.get(&201).copied().unwrap_or(0);
    assert!(admitted <= 16, "{admitted} unconnected sessions admitted from one address: {statuses:?}");
    assert_eq!(statuses.get(&429).copied().unwrap_or(0), POSTS - admitted, "{statuses:?}");
    assert_eq!(room["viewer_count"], 0, "sessions that never connected count as viewers: {room}");
    assert_eq!(room["peak_viewers"], 0, "{room}");

    // While the admitted ones are still pending: a WHIP publisher of another room
    // and a WHEP viewer (another address) of the flooded one.
    let whip = format!("{}/whip/{}", s.api, other.name);
    let publisher = media::rtc::Peer::spawn(&["publish", &whip, "--key", &other.key, "--seconds", "30", "--delete"]);
    let viewer = media::rtc::Peer::spawn(&[
        "--source",
        "127.0.0.2",
        "subscribe",
        &whep,
        "--min-frames",
        "30",
        "--timeout",
        "30",
        "--delete",
    ]);
    let created = publisher.wait("created", Duration::from_secs(20));
    assert_eq!(created["status"], 201, "the WHIP publisher was refused during the flood: {created}");
    s.wait_status(other.id, "live", Duration::from_secs(10)).await;
    let done = tokio::task::spawn_blocking(move || viewer.wait("done", Duration::from_secs(45))).await.unwrap();
    eprintln!("legit WHEP viewer during the flood: {done}");
    assert!(done["video_frames"].as_u64().unwrap_or(0) >= 30, "{done}\n{}", s.log());

    // The flood's sessions are gone within the connect timeout (10 s, + ticks).
    let deadline = flood_start + Duration::from_secs(13) + Duration::from_secs_f64(flood_secs);
    loop {
        // What is left: the WHIP publisher (the viewer deleted its session).
        let n = webrtc_sessions(&s).await;
        if n <= 1 {
            eprintln!("unconnected sessions gone {:.1} s after the flood began", flood_start.elapsed().as_secs_f64());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} WebRTC sessions still open {:?} after the flood",
            flood_start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let room = s.room_json(flooded.id).await;
    assert!(room["peak_viewers"].as_i64().unwrap() <= 1, "only the legit viewer watched: {room}");
    let d = tokio::task::spawn_blocking(move || publisher.wait("deleted", Duration::from_secs(40))).await.unwrap();
    assert_eq!(d["status"], 200, "{d}");
}

/// Item 3: the public stat documents name no client. With ffmpeg publishing and an
/// RTMP player (both from 127.0.0.1), `/stat` and `/stat.json` without the admin
/// token hold no address (nor client ids or lists); with it they list both clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_stats_hide_client_addresses() {
    let s = Server::start(&[]).await;
    let room = s.room().await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let _player = media::copy_player(&format!("{}/{}", s.rtmp, room.name), 20);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.stat_json().await["players"]["rtmp"] != 1 {
        assert!(Instant::now() < deadline, "the player never joined");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let get = |path: &str, token: Option<&str>| {
        let mut r = s.client.get(format!("{}{path}", s.http));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap().text().await.unwrap() }
    };
    for token in [None, Some("wrong-token")] {
        for path in ["/stat", "/stat.json"] {
            let doc = get(path, token).await;
            assert!(doc.contains(&room.name), "{path}: the stream is listed: {doc}");
            for leak in ["127.0.0.1", "address", "<client>", "\"clients\"", "<id>"] {
                assert!(!doc.contains(leak), "{path} (token {token:?}) shows {leak:?}: {doc}");
            }
        }
    }
    // Aggregates stay public.
    let stat = s.stat_json().await;
    assert_eq!(stat["streams"][0]["nclients"], 2, "{stat}");
    assert!(get("/stat", None).await.contains("<nclients>2</nclients>"));
    // The admin sees every client.
    let xml = get("/stat", Some(&s.admin_token)).await;
    assert_eq!(xml.matches("<address>127.0.0.1</address>").count(), 2, "{xml}");
    let stat = s.stat_json_admin().await;
    let clients = stat["streams"][0]["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 2, "{stat}");
    assert!(clients.iter().all(|c| c["address"].as_str().unwrap().starts_with("127.0.0.1:")), "{stat}");
}

/// Runs an RTMP client session (engine's sans-IO client) until the server closes
/// the connection or 5 s pass; its events.
async fn rtmp_client(
    addr: &str,
    app: &str,
    goal: engine::proto::rtmp::ClientGoal,
) -> Vec<engine::proto::rtmp::ClientEvent> {
    use engine::proto::rtmp::{ClientConfig, ClientSession};
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let mut c = ClientSession::new(ClientConfig::new(app, &format!("rtmp://{addr}/x")), goal, Instant::now());
    let mut buf = vec![0u8; 65536];
    let mut events = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        while let Some(b) = c.poll_transmit() {
            if sock.write_all(&b).await.is_err() {
                return events;
            }
        }
        events.extend(std::iter::from_fn(|| c.poll_event()));
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                if c.handle_input(Instant::now(), &buf[..n]).is_err() {
                    return events;
                }
            }
            _ => return events,
        }
    }
}

/// The server log's lines about peers' bad input (the rate-limited kinds).
fn bad_input_lines(log: &str) -> Vec<&str> {
    const KINDS: [&str; 5] = [
        "RTMP protocol error",
        "unknown RTMP application",
        "publish refused",
        "RTMP session timed out",
        "RTMP session closed",
    ];
    log.lines().filter(|l| (l.contains("INFO") || l.contains("WARN")) && KINDS.iter().any(|k| l.contains(k))).collect()
}

/// Item 4: junk from one address gives a bounded number of log lines, and a
/// client-supplied string cannot forge one. 150 HTTP requests sent to the RTMP
/// port (bad C0), 150 connections with garbage after a valid handshake, 50
/// publishes with a wrong key; ffmpeg publishes alongside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_junk_from_one_address_logs_little() {
    use engine::proto::rtmp::{ClientEvent, ClientGoal};
    let s = Server::start(&[]).await;
    let room = s.room().await;
    let mut publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let addr = s.rtmp.trim_start_matches("rtmp://").trim_end_matches("/live").to_owned();

    // An application name with a line of its own in it.
    let forged = "FORGED 2026-01-01T00:00:00Z  INFO engine: admin logged in";
    let ev = rtmp_client(&addr, &format!("nosuch\n{forged}"), ClientGoal::Play { name: "x".into() }).await;
    assert!(!ev.contains(&ClientEvent::Connected), "{ev:?}");

    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let mut c = TcpStream::connect(&addr).await.unwrap();
                let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
                closed_within(&mut c, Duration::from_secs(5)).await
            } else {
                let mut c = rtmp_handshaken(&addr).await;
                // A type 1 chunk on a chunk stream never started.
                let _ = c.write_all(&[0x44, 0, 0, 0, 0, 0, 1, 20]).await;
                closed_within(&mut c, Duration::from_secs(5)).await
            }
        }));
        if tasks.len() == 30 {
            for t in tasks.drain(..) {
                assert!(t.await.unwrap(), "a junk connection stayed open");
            }
        }
    }
    for t in tasks {
        assert!(t.await.unwrap(), "a junk connection stayed open");
    }
    for _ in 0..50 {
        let ev = rtmp_client(&addr, "live", ClientGoal::Publish { name: "sk_wrong".into() }).await;
        assert!(!ev.iter().any(|e| matches!(e, ClientEvent::PublishStarted { .. })), "{ev:?}");
    }
    let junk_secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = s.log();
    let lines = bad_input_lines(&log);
    eprintln!(
        "351 bad connections from 127.0.0.1 in {junk_secs:.1} s: {} log lines about bad input ({} lines in all)",
        lines.len(),
        log.lines().count()
    );
    for l in lines.iter().take(5) {
        eprintln!("  {l}");
    }
    // One line per address per 10 s: the forged-app line, then one per interval begun.
    let allowed = 2 + (junk_secs / 10.0).ceil() as usize;
    assert!(lines.len() <= allowed, "{} lines (allowed {allowed}):\n{}", lines.len(), lines.join("\n"));
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "a client-supplied application name forged a log line:\n{log}"
    );
    assert!(log.contains("nosuch\\nFORGED"), "the application name is logged escaped:\n{log}");

    // After the interval, the next line says how many were suppressed.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let _ = c.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(closed_within(&mut c, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = s.log();
    let last = *bad_input_lines(&log).last().unwrap();
    let suppressed: u64 = last
        .split("suppressed=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no suppressed count in {last:?}"));
    eprintln!("the next line: {last}");
    assert!(suppressed >= 300, "{last}");

    // The legit publisher was never disturbed, and the room plays.
    assert!(publisher.0.try_wait().unwrap().is_none(), "the legit publisher was disconnected");
    let url = format!("{}/{}", s.rtmp, room.name);
    let (ok, err) = tokio::task::spawn_blocking(move || decode(&url, 2)).await.unwrap();
    assert!(ok && err.trim().is_empty(), "{err}");
    publisher.signal("TERM");
}
