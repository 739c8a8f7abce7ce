//! Interop with a real WebRTC peer: aiortc (Python) publishes and subscribes;
//! the engine's sans-IO `WebRtcSession`s answer, driven by a plain std loop
//! over ONE UDP socket, routed the way a shard routes: by source address,
//! and for a first STUN request by the ufrag in USERNAME.
//!
//! (a) aiortc publishes video (H.264, and separately VP8) + Opus: ICE-lite,
//!     DTLS, SRTP; we count decrypted RTP per kind and check payloads parse.
//! (b) aiortc subscribes (recvonly): the publisher's packets are forwarded
//!     through a second session (SSRC/PT/sequence rewritten, per-subscriber
//!     SRTP); aiortc must decode at least 60 video frames and some audio.
//!
//! Runs inside a fresh network namespace when root (`unshare -n`, only `lo`);
//! otherwise on 127.0.0.1. Requires aiortc: the test FAILS (never skips)
//! without it. Install:
//!
//! ```sh
//! python3 -m venv /tmp/aiortc-venv && /tmp/aiortc-venv/bin/pip install aiortc
//! # or point AIORTC_PYTHON at a python that can `import aiortc`
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use engine::proto::webrtc::sdp::{AnswerOptions, Codec, Offer, Role, Track, build_answer};
use engine::proto::webrtc::stun::{local_ufrag, peek_username};
use engine::proto::webrtc::{DtlsCertificate, IceCredentials, SessionConfig, SessionEvent, WebRtcSession};

const NETNS_ENV: &str = "MICROVIBE_WEBRTC_IN_NETNS";

fn python() -> PathBuf {
    let py = std::env::var_os("AIORTC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/aiortc-venv/bin/python"));
    let ok = Command::new(&py).args(["-c", "import aiortc, av"]).status().map(|s| s.success()).unwrap_or(false);
    assert!(
        ok,
        "aiortc is required for this test and was not found with {py:?}.\n\
         Install it: python3 -m venv /tmp/aiortc-venv && /tmp/aiortc-venv/bin/pip install aiortc\n\
         (or set AIORTC_PYTHON to a python that can `import aiortc`)"
    );
    py
}

/// Re-runs this test inside `unshare -n` (root only). Returns true when the
/// caller should run the body here (already inside, or no namespace possible).
fn enter_netns(test_name: &str) -> bool {
    if std::env::var_os(NETNS_ENV).is_some() {
        return true;
    }
    let root = unsafe { libc::geteuid() } == 0;
    let have_unshare = Command::new("unshare").arg("--help").stdout(Stdio::null()).status().is_ok();
    if !root || !have_unshare {
        eprintln!("not root or no unshare: running on the host's 127.0.0.1");
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(NETNS_ENV, "1")
        .status()
        .expect("run unshare");
    assert!(status.success(), "{test_name} failed inside its network namespace");
    false
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<serde_json::Value>,
    name: &'static str,
}

impl Peer {
    fn spawn(name: &'static str, args: &[&str]) -> Peer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webrtc/aiortc_peer.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn aiortc peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("[peer stdout] {line}"),
                }
            }
        });
        Peer { child, stdin, lines, name }
    }

    fn offer(&self) -> String {
        let v =
            self.lines.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{}: no offer: {e}", self.name));
        assert_eq!(v["type"], "offer", "{v}");
        v["sdp"].as_str().unwrap().to_owned()
    }

    fn answer(&mut self, sdp: &str) {
        let msg = serde_json::json!({"type": "answer", "sdp": sdp});
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn stop(&mut self) {
        let _ = writeln!(self.stdin, "stop");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Default, Debug)]
struct Counts {
    rtp: HashMap<Track, u64>,
    bad_payloads: u64,
    forwarded: u64,
    keyframe_requests: u64,
}

/// Checks an H.264 RTP payload (RFC 6184 §5.2: NAL unit types 1-23, STAP-A 24,
/// FU-A 28) or a VP8 payload descriptor (RFC 7741 §4.2).
fn payload_ok(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::H264 => {
            let Some(&b) = payload.first() else {
                return false;
            };
            let nal = b & 0x1f;
            b & 0x80 == 0 && ((1..=24).contains(&nal) || nal == 28)
        }
        Codec::Vp8 => payload.len() > 1,
        Codec::Opus => !payload.is_empty(),
    }
}

fn run(codec: Codec) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = socket.local_addr().unwrap();
    let cert = DtlsCertificate::generate().unwrap();
    let mut rng = rand::rng();

    // --- (a) publisher ---
    let codec_arg = match codec {
        Codec::H264 => "h264",
        _ => "vp8",
    };
    let mut publisher = Peer::spawn("publisher", &["publish", "--codec", codec_arg]);
    let offer = Offer::parse(&publisher.offer()).expect("aiortc publisher offer");
    let mut opts = AnswerOptions::new(Role::Publisher, IceCredentials::random(&mut rng), &cert, vec![local], &mut rng);
    opts.video_codecs = vec![codec];
    let (answer, pub_neg) = build_answer(&offer, &opts).expect("answer publisher");
    let pv = pub_neg.video.clone().expect("video negotiated");
    assert_eq!(pv.codec, codec);
    eprintln!("publisher: {}", engine::proto::webrtc::sdp::answer::summary(&pub_neg));
    publisher.answer(&answer);

    let t0 = Instant::now();
    let mut sessions: Vec<WebRtcSession> =
        vec![WebRtcSession::new(SessionConfig::default(), pub_neg.clone(), &cert, t0, &mut rng).unwrap()];
    const PUB: usize = 0;
    const SUB: usize = 1;
    let mut routes: HashMap<SocketAddr, usize> = HashMap::new();
    let mut counts = Counts::default();
    let mut subscriber: Option<Peer> = None;
    let mut sub_stats = serde_json::Value::Null;
    let mut sub_done = false;
    let mut buf = vec![0u8; 2048];
    let deadline = t0 + Duration::from_secs(60);

    loop {
        let now = Instant::now();
        assert!(now < deadline, "timed out: {counts:?} subscriber={sub_stats}");

        // --- (b) start the subscriber once the publisher's video flows ---
        if subscriber.is_none() && counts.rtp.get(&Track::Video).copied().unwrap_or(0) >= 10 {
            let mut sp = Peer::spawn("subscriber", &["subscribe", "--min-frames", "60"]);
            let offer = Offer::parse(&sp.offer()).expect("aiortc subscriber offer");
            let mut opts =
                AnswerOptions::new(Role::Subscriber, IceCredentials::random(&mut rng), &cert, vec![local], &mut rng);
            opts.video_codecs = vec![codec];
            if let Some(plid) = pv.fmtp.split(';').find_map(|p| p.trim().strip_prefix("profile-level-id=")) {
                opts.h264_profiles.insert(0, plid.to_owned());
            }
            let (answer, neg) = build_answer(&offer, &opts).expect("answer subscriber");
            eprintln!("subscriber: {}", engine::proto::webrtc::sdp::answer::summary(&neg));
            sp.answer(&answer);
            sessions.push(WebRtcSession::new(SessionConfig::default(), neg, &cert, now, &mut rng).unwrap());
            subscriber = Some(sp);
        }

        // --- receive one datagram (or time out) and route it ---
        let next = sessions.iter().filter_map(|s| s.poll_timeout()).min().unwrap_or(now + Duration::from_millis(20));
        let wait = next.saturating_duration_since(now).clamp(Duration::from_millis(1), Duration::from_millis(20));
        socket.set_read_timeout(Some(wait)).unwrap();
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let now = Instant::now();
            let data = &buf[..n];
            let target = routes.get(&from).copied().or_else(|| {
                let user = peek_username(data)?;
                let ufrag = local_ufrag(user);
                sessions.iter().position(|s| s.local_ufrag() == ufrag)
            });
            if let Some(i) = target {
                let _ = sessions[i].handle_input(now, from, data);
            }
        }
        let now = Instant::now();
        for s in sessions.iter_mut() {
            if s.poll_timeout().is_some_and(|t| now >= t) {
                s.handle_timeout(now);
            }
        }

        // --- events: forward publisher media to the subscriber ---
        let mut forward = Vec::new();
        let mut want_keyframe = false;
        let mut closed_sub = false;
        for (i, s) in sessions.iter_mut().enumerate() {
            while let Some(e) = s.poll_event() {
                match e {
                    SessionEvent::PeerAddress { addr, .. } => {
                        routes.insert(addr, i);
                    }
                    SessionEvent::Connected { remote, profile } => {
                        eprintln!("session {i} connected to {remote} with {profile:?}");
                        if i == SUB {
                            want_keyframe = true;
                        }
                    }
                    SessionEvent::Rtp { kind, packet, .. } if i == PUB => {
                        *counts.rtp.entry(kind).or_default() += 1;
                        let c = if kind == Track::Video { codec } else { Codec::Opus };
                        if !payload_ok(c, &packet.payload()) {
                            counts.bad_payloads += 1;
                        }
                        forward.push((kind, packet));
                    }
                    SessionEvent::KeyframeRequested { .. } => {
                        counts.keyframe_requests += 1;
                        want_keyframe = true;
                    }
                    SessionEvent::Closed { reason } => {
                        // The subscriber closes (DTLS close_notify) once it is done.
                        eprintln!("session {i} closed: {reason:?}");
                        assert!(i == SUB, "publisher session closed: {reason:?}");
                        closed_sub = true;
                    }
                    _ => {}
                }
            }
        }
        if want_keyframe {
            sessions[PUB].request_keyframe(now);
        }
        if sessions.len() > SUB && sessions[SUB].is_connected() {
            for (kind, packet) in &forward {
                if sessions[SUB].send_rtp_packet(now, *kind, packet).unwrap() {
                    counts.forwarded += 1;
                }
            }
        }

        // --- transmit ---
        for s in sessions.iter_mut() {
            while let Some((to, bytes)) = s.poll_transmit() {
                let _ = socket.send_to(&bytes, to);
            }
        }

        while let Ok(v) = publisher.lines.try_recv() {
            if std::env::var_os("WEBRTC_TEST_VERBOSE").is_some() {
                eprintln!("publisher: {v}");
            }
        }
        // --- subscriber progress ---
        if let Some(sp) = subscriber.as_ref() {
            while let Ok(v) = sp.lines.try_recv() {
                if v["type"] == "done" {
                    sub_done = true;
                }
                sub_stats = v;
            }
        }
        if sub_done || closed_sub {
            if let Some(sp) = subscriber.as_ref() {
                while let Ok(v) = sp.lines.recv_timeout(Duration::from_millis(200)) {
                    sub_stats = v;
                }
            }
            break;
        }
    }

    let pub_stats = sessions[PUB].stats();
    let sub_session_stats = sessions[SUB].stats();
    eprintln!("publisher session: {pub_stats:?}");
    eprintln!("subscriber session: {sub_session_stats:?}");
    eprintln!("counts: {counts:?}");
    eprintln!("aiortc subscriber: {sub_stats}");
    publisher.stop();
    if let Some(mut sp) = subscriber {
        sp.stop();
    }
    let video = counts.rtp.get(&Track::Video).copied().unwrap_or(0);
    let audio = counts.rtp.get(&Track::Audio).copied().unwrap_or(0);
    assert!(video >= 60, "video RTP from aiortc: {video}");
    assert!(audio >= 20, "audio RTP from aiortc: {audio}");
    assert_eq!(counts.bad_payloads, 0, "payloads that do not parse as {codec:?}/Opus");
    assert_eq!(pub_stats.srtp_errors, 0);
    let frames = sub_stats["video_frames"].as_u64().unwrap_or(0);
    let audio_frames = sub_stats["audio_frames"].as_u64().unwrap_or(0);
    assert!(frames >= 60, "aiortc decoded {frames} video frames: {sub_stats}");
    assert!(audio_frames > 0, "aiortc decoded no audio: {sub_stats}");
    assert_eq!(sub_stats["width"], 320);
    println!(
        "aiortc {codec:?}: received video={video} audio={audio} RTP; forwarded {}; subscriber decoded {frames} video / {audio_frames} audio frames",
        counts.forwarded
    );
}

#[test]
fn aiortc_h264_publish_and_subscribe() {
    if enter_netns("aiortc_h264_publish_and_subscribe") {
        run(Codec::H264);
    }
}

#[test]
fn aiortc_vp8_publish_and_subscribe() {
    if enter_netns("aiortc_vp8_publish_and_subscribe") {
        run(Codec::Vp8);
    }
}
