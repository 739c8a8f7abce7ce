//! CI smoke of the load generator (no timing assertions): the debug `microvibe`
//! binary on free loopback ports with its own SQLite file, ffmpeg publishing the
//! looped fixture, and two `loadgen` runs at once (50 RTMP players, 50 HTTP-FLV
//! players, 10 s windows). Asserts that every player connected and received media,
//! none failed or dropped, and lag p99 stayed under 5 s.
//!
//! Needs `target/debug/microvibe` (`cargo build -p control`; scripts/test builds the
//! whole workspace first) and ffmpeg.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `N` distinct free ports: every listener is held until all are chosen (one at a
/// time, a port just released can be handed out again).
fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn microvibe_bin() -> PathBuf {
    let p =
        std::env::var_os("MICROVIBE_BIN").map(PathBuf::from).unwrap_or_else(|| root().join("target/debug/microvibe"));
    assert!(
        p.exists(),
        "{} is missing: build it first with `cargo build -p control` (scripts/test does), or set MICROVIBE_BIN",
        p.display()
    );
    p
}

/// The media tests' fixture (same file and command as control/tests/media).
fn fixture() -> PathBuf {
    let ok = Command::new("ffmpeg").arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    assert!(ok, "ffmpeg is required (apt-get install ffmpeg); .ci/run installs it");
    let dir = root().join("target/fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fixture-720p.flv");
    if path.exists() {
        return path;
    }
    let tmp = dir.join(format!("fixture-{}.flv", std::process::id()));
    let st = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "12",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
            "-g",
            "60",
            "-bf",
            "0",
            "-b:v",
            "2500k",
            "-maxrate",
            "2500k",
            "-bufsize",
            "2500k",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-f",
            "flv",
        ])
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(st.success(), "fixture encoding failed");
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// A minimal HTTP/1.1 client (Connection: close) returning (status, JSON body);
/// status 0 when the connection fails or closes before a complete response head.
fn http(method: &str, port: u16, path: &str, body: Option<Value>, token: Option<&str>) -> (u16, Value) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return (0, Value::Null) };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let _ = write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut raw = vec![];
    let _ = s.read_to_end(&mut raw);
    let Ok(Some(head)) = benches::scan::parse_response_head(&raw) else { return (0, Value::Null) };
    let rest = &raw[head.len..];
    let mut data = vec![];
    if head.chunked {
        let mut c = benches::scan::Chunked::new();
        c.feed(rest, |d| {
            data.extend_from_slice(d);
            Ok(())
        })
        .unwrap();
    } else {
        data.extend_from_slice(rest);
    }
    (head.status, serde_json::from_slice(&data).unwrap_or(Value::Null))
}

fn run_loadgen(url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--url",
            url,
            "--players",
            "50",
            "--ramp",
            "100",
            "--warmup",
            "1",
            "--duration",
            "10",
            "--json",
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn summary(child: Child, what: &str, log: &Path) -> Value {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadgen {what} failed: {}\n{stdout}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(log).unwrap_or_default()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

#[test]
fn loadgen_rtmp_and_http_flv_against_microvibe() {
    let bin = microvibe_bin();
    let fx = fixture();
    let dir = std::env::temp_dir().join(format!("loadgen-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let [api, rtmp, http_port] = free_ports::<3>();
    let log = dir.join("server.log");
    let _server = Proc(
        Command::new(bin)
            .current_dir(&dir)
            .env("MICROVIBE__SERVER__HOST", "127.0.0.1")
            .env("MICROVIBE__SERVER__PORT", api.to_string())
            .env("MICROVIBE__SERVER__ADMIN_TOKEN", "smoke-admin-token-0123456789")
            .env("MICROVIBE__RTMP__LISTEN", format!("127.0.0.1:{rtmp}"))
            .env("MICROVIBE__HTTP_MEDIA__LISTEN", format!("127.0.0.1:{http_port}"))
            .env("MICROVIBE__DATABASE__SQLITE_PATH", dir.join("smoke.db"))
            .env("MICROVIBE__ENGINE__SHARDS", "2")
            // Free WebRTC UDP ports (one per shard), not the default 5000+.
            .env("MICROVIBE__WEBRTC__UDP_PORT_BASE", free_udp_base().to_string())
            .env("MICROVIBE__STREAMING__RTMP_SERVER", format!("rtmp://127.0.0.1:{rtmp}/live"))
            .env("MICROVIBE__STREAMING__FLV_SERVER", format!("http://127.0.0.1:{http_port}/flv"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("spawn microvibe"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while http("GET", api, "/health", None, None).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "microvibe did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let user = format!("smoke{api}");
    http("POST", api, "/api/v1/auth/register", Some(json!({"username": user, "password": "password123"})), None);
    let (_, v) =
        http("POST", api, "/api/v1/auth/login", Some(json!({"username": user, "password": "password123"})), None);
    let token = v["data"]["token"].as_str().expect("login token").to_owned();
    let (_, v) = http(
        "POST",
        api,
        "/api/v1/live/create",
        Some(json!({"title": "smoke", "push_protocol": "rtmp"})),
        Some(&token),
    );
    let (id, key, name) = (
        v["data"]["id"].as_i64().unwrap(),
        v["data"]["stream_key"].as_str().unwrap().to_owned(),
        v["data"]["stream_name"].as_str().unwrap().to_owned(),
    );

    let _publisher = Proc(
        Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
            .arg(&fx)
            .args(["-c", "copy", "-f", "flv"])
            .arg(format!("rtmp://127.0.0.1:{rtmp}/live/{key}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = http("GET", api, &format!("/api/v1/live/{id}"), None, None);
        if v["data"]["status"] == "live" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the room did not go live: {v}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let rtmp_run = run_loadgen(&format!("rtmp://127.0.0.1:{rtmp}/live/{name}"));
    let flv_run = run_loadgen(&format!("http://127.0.0.1:{http_port}/flv/{name}.flv"));
    for (what, s) in [("rtmp", summary(rtmp_run, "rtmp", &log)), ("http-flv", summary(flv_run, "http-flv", &log))] {
        let w = &s["window"];
        eprintln!("{what}: {s}");
        assert_eq!(s["connected"], 50, "{what}: every player connects: {s}");
        assert_eq!(s["receiving"], 50, "{what}: every player receives media: {s}");
        assert_eq!(s["failed"], 0, "{what}: {s}");
        assert_eq!(s["dropped"], 0, "{what}: {s}");
        assert_eq!(s["receiving_at_end"], 50, "{what}: {s}");
        assert!(
            w["media_msgs"].as_u64().unwrap() > 0 && w["bytes"].as_u64().unwrap() > 0,
            "{what}: media in the window: {s}"
        );
        assert!(w["keyframes"].as_u64().unwrap() > 0, "{what}: keyframes in the window: {s}");
        let p99 = w["lag_ms"]["p99"].as_i64().expect("lag samples");
        assert!(p99 < 5000, "{what}: lag p99 {p99} ms stays bounded: {s}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A UDP port free now (the server binds it and the next one, one per shard).
fn free_udp_base() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
