//! The SRTP fan-out floor: the least work an SFU does per outbound packet.
//!
//! One sender thread plays the same synthetic stream as `whep-load`'s publisher
//! ([`crate::whep::Source`]) and, for every source packet and every subscriber,
//! writes the RTP header with that subscriber's SSRC and sequence number (and the
//! MID extension, as the engine does), encrypts it with that subscriber's own SRTP
//! context (`rtc-srtp` through the engine's [`SrtpSession`], the same crate and code
//! path as the server) and `sendto(2)`s it from one UDP socket (like a shard's
//! socket). Nothing else: no player queues, no tasks, no timers, no RTX cache.
//!
//! A receiver thread drains the N destination sockets with epoll + `recvmmsg`, as
//! `whep-load` does, so the sender's `sendto` pays the same loopback delivery and
//! wake-ups as the server's. The sender's own CPU (`getrusage(RUSAGE_THREAD)`) over the
//! window divided by the packets it sent is the floor in µs per outbound packet. After
//! the window, the same packets are encrypted again without sending, to split the floor
//! into crypto and send. It also records, per source packet, the time from the start of
//! its frame's burst to its last subscriber's `sendto`: the fan-out delay a serial
//! sender cannot avoid (N × the per-packet cost, times the packet's place in the burst).

use crate::hist::LogHist;
use crate::sys::{self, CpuTimes, Epoll};
use crate::udp::{self, Dest, RecvBatch};
use crate::whep::{Source, SrcPacket};
use engine::proto::webrtc::client::pt;
use engine::proto::webrtc::rtp::{RtpHeader, RtpPacket};
use engine::proto::webrtc::srtp::{ReplayWindows, SrtpProfile, SrtpSession};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct FloorConfig {
    pub subscribers: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub bitrate_kbps: u32,
    pub gop: Duration,
    pub audio: bool,
    pub profile: SrtpProfile,
    pub sender_cpu: Option<usize>,
    pub receiver_cpu: Option<usize>,
    /// The receiver polls its sockets in a busy loop instead of sleeping in epoll, so
    /// the sender's `sendto` never has to wake it (a diagnostic: how much of the
    /// per-packet cost is the wake-up of the reading process).
    pub spin_receiver: bool,
    /// Send a packet's copies with `sendmmsg` (one system call per packet for all
    /// subscribers) instead of one `sendto` each.
    pub sendmmsg: bool,
}

impl Default for FloorConfig {
    fn default() -> Self {
        FloorConfig {
            subscribers: 100,
            duration: Duration::from_secs(15),
            warmup: Duration::from_secs(2),
            bitrate_kbps: 1000,
            gop: Duration::from_secs(2),
            audio: true,
            profile: SrtpProfile::AeadAes128Gcm,
            sender_cpu: None,
            receiver_cpu: None,
            spin_receiver: false,
            sendmmsg: false,
        }
    }
}

/// Keying material length of a profile (two keys and two salts, RFC 5764 §4.2).
fn material_len(p: SrtpProfile) -> usize {
    match p {
        SrtpProfile::AeadAes128Gcm => 2 * (16 + 12),
        SrtpProfile::AeadAes256Gcm => 2 * (32 + 12),
        SrtpProfile::Aes128CmHmacSha1_80 => 2 * (16 + 14),
    }
}

/// Key material and ids from /dev/urandom (no extra dependency).
struct Random(std::fs::File);

impl Random {
    fn new() -> Result<Random, String> {
        std::fs::File::open("/dev/urandom").map(Random).map_err(|e| format!("/dev/urandom: {e}"))
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        use std::io::Read;
        let mut v = vec![0u8; n];
        let _ = self.0.read_exact(&mut v);
        v
    }

    fn u32(&mut self) -> u32 {
        let b = self.bytes(4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

struct Sub {
    srtp: SrtpSession,
    dest: Dest,
    ssrc: u32,
    vseq: u16,
    aseq: u16,
}

/// Writes subscriber `s`'s header on `pk`'s payload into `scratch` and encrypts it.
fn protect(s: &mut Sub, pk: &Plain, scratch: &mut Vec<u8>) -> Result<bytes::BytesMut, String> {
    let seq = if pk.video {
        s.vseq = s.vseq.wrapping_add(1);
        s.vseq
    } else {
        s.aseq = s.aseq.wrapping_add(1);
        s.aseq
    };
    scratch.clear();
    RtpHeader {
        payload_type: pk.pt,
        marker: pk.marker,
        sequence_number: seq,
        timestamp: pk.ts,
        ssrc: s.ssrc ^ u32::from(pk.video),
        extension: Some((4, if pk.video { b"1" } else { b"0" })),
    }
    .write(&pk.payload, scratch);
    s.srtp.protect_rtp(scratch).map_err(|e| e.to_string())
}

struct Plain {
    video: bool,
    pt: u8,
    marker: bool,
    ts: u32,
    payload: bytes::Bytes,
}

fn parse(p: &SrcPacket) -> Plain {
    let r = RtpPacket::parse(bytes::Bytes::from(p.data.clone())).expect("the source writes valid RTP");
    Plain { video: p.video, pt: r.payload_type, marker: r.marker, ts: r.timestamp, payload: r.payload() }
}

/// Runs the floor; returns (JSON summary, table).
pub fn run(cfg: &FloorConfig) -> Result<(Value, String), String> {
    let n = cfg.subscribers.max(1);
    if (sys::raise_nofile() as usize) < n + 64 {
        return Err(format!("RLIMIT_NOFILE too low for {n} sockets"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<Result<Vec<SocketAddr>, String>>();
    let receiver = {
        let (stop, received, rcpu, spin) = (stop.clone(), received.clone(), cfg.receiver_cpu, cfg.spin_receiver);
        std::thread::Builder::new()
            .name("floor-recv".into())
            .spawn(move || {
                if let Some(c) = rcpu {
                    let _ = udp::pin_thread(c);
                }
                let lo: SocketAddr = "127.0.0.1:0".parse().expect("addr");
                let mut fds: Vec<RawFd> = vec![];
                let mut ep = match Epoll::new(1024) {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = addr_tx.send(Err(format!("epoll: {e}")));
                        return;
                    }
                };
                let mut addrs = vec![];
                for i in 0..n {
                    let r = udp::bind(&lo, Some(1 << 20)).and_then(|fd| {
                        fds.push(fd);
                        ep.add(fd, sys::IN, i as u64)?;
                        udp::local_addr(fd)
                    });
                    match r {
                        Ok(a) => addrs.push(a),
                        Err(e) => {
                            let _ = addr_tx.send(Err(format!("socket: {e}")));
                            return;
                        }
                    }
                }
                let _ = addr_tx.send(Ok(addrs));
                let mut batch = RecvBatch::new(64);
                while spin && !stop.load(Ordering::Relaxed) {
                    for &fd in &fds {
                        while let Ok(k) = batch.recv(fd) {
                            received.fetch_add(k as u64, Ordering::Relaxed);
                            if k < 64 {
                                break;
                            }
                        }
                    }
                }
                while !stop.load(Ordering::Relaxed) {
                    let ready: Vec<u64> = match ep.wait(Duration::from_millis(50)) {
                        Ok(evs) => evs.iter().map(|e| e.u64).collect(),
                        Err(_) => break,
                    };
                    for t in ready {
                        let fd = fds[t as usize];
                        while let Ok(k) = batch.recv(fd) {
                            received.fetch_add(k as u64, Ordering::Relaxed);
                            if k < 64 {
                                break;
                            }
                        }
                    }
                }
                for fd in fds {
                    sys::close(fd);
                }
            })
            .map_err(|e| format!("spawn: {e}"))?
    };
    let addrs = addr_rx.recv().map_err(|_| "receiver thread died".to_owned())??;

    let cfg2 = cfg.clone();
    let received2 = received.clone();
    let sender = std::thread::Builder::new()
        .name("floor-send".into())
        .spawn(move || sender(&cfg2, &addrs, &received2))
        .map_err(|e| format!("spawn: {e}"))?;
    let r = sender.join().map_err(|_| "sender panicked".to_owned())?;
    stop.store(true, Ordering::Relaxed);
    let _ = receiver.join();
    r
}

fn sender(cfg: &FloorConfig, addrs: &[SocketAddr], received: &AtomicU64) -> Result<(Value, String), String> {
    if let Some(c) = cfg.sender_cpu {
        udp::pin_thread(c).map_err(|e| format!("pin to CPU {c}: {e}"))?;
    }
    let mut rnd = Random::new()?;
    let mut subs: Vec<Sub> = addrs
        .iter()
        .map(|a| {
            let material = rnd.bytes(material_len(cfg.profile));
            Ok(Sub {
                srtp: SrtpSession::from_keying_material(cfg.profile, &material, false, ReplayWindows::default())
                    .map_err(|e| format!("SRTP: {e}"))?,
                dest: Dest::new(a).map_err(|e| e.to_string())?,
                ssrc: rnd.u32() & !1,
                vseq: rnd.u32() as u16,
                aseq: rnd.u32() as u16,
            })
        })
        .collect::<Result<_, String>>()?;
    let lo: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "addr")?;
    let fd = udp::bind(&lo, None).map_err(|e| format!("socket: {e}"))?;
    // The engine's shard socket has the default send buffer too.
    let start = Instant::now();
    let mut src = Source::new(start, cfg.bitrate_kbps, cfg.gop, cfg.audio, [1, 2, 3], pt::H264, pt::OPUS);
    let win_start = start + cfg.warmup;
    let win_end = win_start + cfg.duration;
    let mut in_win = false;
    let mut cpu0 = CpuTimes::default();
    let mut rx0 = 0;
    let mut t0 = start;
    let (mut sent, mut dropped, mut src_pkts, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut out = Vec::with_capacity(32);
    let mut scratch = Vec::with_capacity(1500);
    let mut sample: Vec<Plain> = vec![];
    // Per source packet: from the moment it was due to the end of its fan-out (the
    // last subscriber's sendto), the floor's counterpart of the server's latency.
    let mut fanout = LogHist::new();
    loop {
        let now = Instant::now();
        if !in_win && now >= win_start {
            in_win = true;
            cpu0 = udp::thread_cpu();
            rx0 = received.load(Ordering::Relaxed);
            t0 = now;
            (sent, dropped, src_pkts, bytes) = (0, 0, 0, 0);
        }
        if now >= win_end {
            break;
        }
        let due = src.next_due();
        if due > now {
            let wait = due.min(if in_win { win_end } else { win_start }) - now;
            std::thread::sleep(wait);
            continue;
        }
        out.clear();
        src.poll(now, &mut out);
        let burst = Instant::now();
        for p in &out {
            let pk = parse(p);
            src_pkts += 1;
            if cfg.sendmmsg {
                let wires = subs.iter_mut().map(|s| protect(s, &pk, &mut scratch)).collect::<Result<Vec<_>, _>>()?;
                let data: Vec<&[u8]> = wires.iter().map(|w| &w[..]).collect();
                let dests: Vec<&udp::Dest> = subs.iter().map(|s| &s.dest).collect();
                let k = udp::send_many(fd, &data, &dests);
                sent += k as u64;
                dropped += (data.len() - k) as u64;
                bytes += data.iter().take(k).map(|d| d.len() as u64).sum::<u64>();
            } else {
                for s in subs.iter_mut() {
                    let wire = protect(s, &pk, &mut scratch)?;
                    match udp::send_to(fd, &wire, &s.dest) {
                        Ok(k) => {
                            sent += 1;
                            bytes += k as u64;
                        }
                        Err(_) => dropped += 1,
                    }
                }
            }
            if in_win {
                fanout.add(burst.elapsed().as_micros() as u64);
                if sample.len() < 400 {
                    sample.push(pk);
                }
            }
        }
    }
    let cpu = udp::thread_cpu().since(&cpu0);
    let secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    let rx = received.load(Ordering::Relaxed) - rx0;
    sys::close(fd);

    // Crypto only: the same header write + encrypt for a sample of packets x every subscriber.
    let c0 = udp::thread_cpu();
    let t = Instant::now();
    let mut enc = 0u64;
    while t.elapsed() < Duration::from_secs(2) {
        for pk in &sample {
            for s in subs.iter_mut() {
                let w = protect(s, pk, &mut scratch)?;
                std::hint::black_box(&w);
                enc += 1;
            }
        }
    }
    let crypto = udp::thread_cpu().since(&c0);
    let crypto_us = crypto.total().as_secs_f64() * 1e6 / enc.max(1) as f64;

    let us = cpu.total().as_secs_f64() * 1e6 / sent.max(1) as f64;
    let json = json!({
        "type": "srtp_floor",
        "subscribers": subs.len(),
        "profile": format!("{:?}", cfg.profile),
        "receiver": if cfg.spin_receiver { "spin" } else { "epoll" },
        "send": if cfg.sendmmsg { "sendmmsg" } else { "sendto" },
        "bitrate_kbps": cfg.bitrate_kbps,
        "audio": cfg.audio,
        "window_s": secs,
        "source_pkts": src_pkts,
        "sent_pkts": sent,
        "send_errors": dropped,
        "received_pkts": rx,
        "pkts_per_s": sent as f64 / secs,
        "mbps": bytes as f64 * 8.0 / secs / 1e6,
        "sender_cpu": {
            "user_s": cpu.user.as_secs_f64(),
            "sys_s": cpu.sys.as_secs_f64(),
            "pct": 100.0 * cpu.total().as_secs_f64() / secs,
        },
        "us_per_pkt": us,
        "user_us_per_pkt": cpu.user.as_secs_f64() * 1e6 / sent.max(1) as f64,
        "sys_us_per_pkt": cpu.sys.as_secs_f64() * 1e6 / sent.max(1) as f64,
        "crypto_only_us_per_pkt": crypto_us,
        "crypto_only_pkts": enc,
        "fanout_us": {"p50": fanout.quantile(0.5), "p99": fanout.quantile(0.99), "max": fanout.max()},
    });
    let table = format!(
        "srtp-floor: {} subscribers, {:?}, {} kbit/s video{}, receiver {}\n  window  {:.1} s: {} source pkts -> {} sent ({:.0} pkt/s, {:.1} Mbit/s), {} send errors, {} received\n  sender  user {:.2} s  sys {:.2} s = {:.1}% of a core: {:.2} us/packet (user {:.2}, sys {:.2}); crypto alone {:.2} us/packet\n  fan-out frame start -> last subscriber's copy sent (us): p50 {} p99 {} max {}\n",
        subs.len(),
        cfg.profile,
        cfg.bitrate_kbps,
        if cfg.audio { " + audio" } else { "" },
        if cfg.spin_receiver { "spinning" } else { "in epoll" },
        secs,
        src_pkts,
        sent,
        sent as f64 / secs,
        bytes as f64 * 8.0 / secs / 1e6,
        dropped,
        rx,
        cpu.user.as_secs_f64(),
        cpu.sys.as_secs_f64(),
        100.0 * cpu.total().as_secs_f64() / secs,
        us,
        json["user_us_per_pkt"].as_f64().unwrap_or(0.0),
        json["sys_us_per_pkt"].as_f64().unwrap_or(0.0),
        crypto_us,
        json["fanout_us"]["p50"],
        json["fanout_us"]["p99"],
        json["fanout_us"]["max"],
    );
    Ok((json, table))
}
