//! CI smoke of the WebRTC load generator (no timing assertions): the debug
//! `microvibe` binary with WebRTC on loopback, and the built `whep-load` with one
//! WHIP publisher and 5 WHEP subscribers for a 3 s window, all inside a fresh network
//! namespace (`unshare -n`, root). Asserts that every subscriber connected and
//! received SRTP, that the sampled subscribers decrypted and verified payloads and
//! produced latency samples, and that the server's CPU was recorded.
//!
//! Needs `microvibe` built next to `whep-load` (`cargo build -p control`; scripts/test
//! builds the whole workspace first), or `MICROVIBE_BIN`.

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NETNS_ENV: &str = "MICROVIBE_TEST_IN_NETNS";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Re-runs `test` inside a fresh network namespace with only `lo` up; true when the
/// body should run here (already inside).
fn enter_netns(test: &str) -> bool {
    if std::env::var_os(NETNS_ENV).is_some() {
        return true;
    }
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the WebRTC smoke needs root for `unshare -n` (CI runs as root)");
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("timeout")
        .args(["-k", "10", "120", "unshare", "-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(NETNS_ENV, "1")
        .status()
        .expect("run unshare");
    assert!(status.success(), "{test} failed inside its network namespace ({status})");
    false
}

/// `N` distinct free ports: every listener is held until all are chosen (one at a
/// time, a port just released can be handed out again).
fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

fn microvibe_bin() -> PathBuf {
    let next_to_us = Path::new(env!("CARGO_BIN_EXE_whep-load")).with_file_name("microvibe");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/microvibe");
    let p = std::env::var_os("MICROVIBE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| if next_to_us.exists() { next_to_us } else { root });
    assert!(
        p.exists(),
        "{} is missing: build it first with `cargo build -p control` (scripts/test does), or set MICROVIBE_BIN",
        p.display()
    );
    p
}

fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let mut b = Vec::new();
    let _ = s.read_to_end(&mut b);
    b.starts_with(b"HTTP/1.1 200")
}

#[test]
fn whep_load_against_microvibe() {
    if !enter_netns("whep_load_against_microvibe") {
        return;
    }
    let bin = microvibe_bin();
    let dir = std::env::temp_dir().join(format!("whep-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let [api, rtmp, http, udp] = free_ports::<4>();
    let log = dir.join("server.log");
    let server = Proc(
        Command::new(bin)
            .current_dir(&dir)
            .env("MICROVIBE__SERVER__HOST", "127.0.0.1")
            .env("MICROVIBE__SERVER__PORT", api.to_string())
            .env("MICROVIBE__SERVER__ADMIN_TOKEN", "smoke-admin-token-0123456789")
            .env("MICROVIBE__RTMP__LISTEN", format!("127.0.0.1:{rtmp}"))
            .env("MICROVIBE__HTTP_MEDIA__LISTEN", format!("127.0.0.1:{http}"))
            .env("MICROVIBE__DATABASE__SQLITE_PATH", dir.join("smoke.db"))
            .env("MICROVIBE__ENGINE__SHARDS", "1")
            .env("MICROVIBE__WEBRTC__UDP_PORT_BASE", udp.to_string())
            .env("MICROVIBE__WEBRTC__CANDIDATES", "127.0.0.1")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("spawn microvibe"),
    );
    let server_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !healthy(api) {
        assert!(Instant::now() < deadline, "microvibe did not start:\n{}", server_log());
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = Command::new(env!("CARGO_BIN_EXE_whep-load"))
        .args(["--api", &format!("http://127.0.0.1:{api}"), "--create-room"])
        .args(["--subscribers", "5", "--ramp", "50", "--warmup", "1", "--duration", "3"])
        .args(["--sample-every", "2", "--setup-timeout", "10", "--json", "--quiet"])
        .args(["--watch-pid", &server.0.id().to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("run whep-load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "whep-load failed: {}\n{stdout}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server_log()
    );
    let s: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON summary ({e}):\n{stdout}"));
    eprintln!("{s}");
    let w = &s["window"];
    assert_eq!(s["connected"], 5, "every subscriber connects (DTLS): {s}");
    assert_eq!(s["receiving"], 5, "every subscriber receives SRTP: {s}");
    assert_eq!(s["failed"], 0, "{s}");
    assert_eq!(s["receiving_at_end"], 5, "{s}");
    assert_eq!(s["sampled_subscribers"], 3, "subscribers 0, 2 and 4 decrypt everything: {s}");
    assert!(w["published_pkts"].as_u64().unwrap() > 300, "the publisher sent video and audio: {s}");
    assert!(
        w["per_subscriber_pkts"]["min"].as_u64().unwrap() > 0,
        "every subscriber received packets in the window: {s}"
    );
    assert!(w["delivery_ratio"].as_f64().unwrap() > 0.9, "(almost) every packet reached every subscriber: {s}");
    assert!(w["verified"].as_u64().unwrap() > 0, "sampled subscribers verified payloads: {s}");
    assert_eq!(w["bad_payloads"], 0, "{s}");
    assert!(w["latency_us"]["samples"].as_u64().unwrap() > 0, "latency samples exist: {s}");
    assert!(w["latency_us"]["p50"].as_u64().is_some(), "{s}");
    assert!(s["join_ms"]["p50"].as_f64().is_some(), "join times exist: {s}");
    let watch = &w["watch"][0];
    assert!(watch["us_per_pkt"].as_f64().is_some_and(|v| v > 0.0), "server CPU per packet recorded: {s}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
