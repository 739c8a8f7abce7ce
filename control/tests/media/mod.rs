//! Harness for end-to-end media tests: the real `microvibe` binary on free
//! loopback ports with its own SQLite file, real ffmpeg/ffprobe peers, and a looped
//! FLV fixture (H.264 + AAC, 720p, ~2.5 Mbit/s) made once per target directory.
#![allow(dead_code)]

pub mod pg;
pub mod redis;
pub mod rtc;

use serde_json::{Value, json};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The PostgreSQL user of the tests (`PGUSER`, default postgres).
pub fn pg_user() -> String {
    std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into())
}

/// Drops a test's PostgreSQL schema in the shared database `test`.
pub async fn drop_pg_schema(schema: &str) {
    let conn = format!("host=127.0.0.1 port=5432 user={} dbname=test", pg_user());
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL unreachable at 127.0.0.1:5432: {e}"));
    let task = tokio::spawn(connection);
    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await.unwrap();
    drop(client);
    let _ = task.await;
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `N` distinct free ports: every listener is held until all are chosen (one at a
/// time, a port just released can be handed out again).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

fn require(tool: &str) {
    let ok = Command::new(tool).arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    assert!(ok, "{tool} is required for media tests (apt-get install ffmpeg); .ci/run installs it");
}

/// The fixture: 12 s of testsrc2 720p30 H.264 (GOP 2 s, no B-frames) + 440 Hz AAC.
pub fn fixture() -> PathBuf {
    require("ffmpeg");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures");
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
    // Atomic: concurrent tests either see the whole file or make their own.
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// Kills the child on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill").arg(format!("-{sig}")).arg(self.0.id().to_string()).status();
    }
    /// Waits up to `t` for exit; returns the status and the stderr text.
    pub fn wait_for(&mut self, t: Duration) -> Option<(std::process::ExitStatus, String)> {
        let deadline = Instant::now() + t;
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.0.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Some((st, err));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub struct Server {
    pub proc: Proc,
    pub api: String,
    pub rtmp: String,
    pub http: String,
    pub admin_token: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
}

pub struct Room {
    pub id: i64,
    pub key: String,
    pub name: String,
    pub token: String,
}

impl Server {
    /// Starts the binary on the CI's PostgreSQL (database `test`, in its own
    /// `schema`; drop it with [`drop_pg_schema`]), with `extra` settings.
    pub async fn start_postgres(schema: &str, extra: &[(&str, &str)]) -> Server {
        Server::start_postgres_on("127.0.0.1", schema, extra).await
    }

    /// [`Server::start_postgres`] with every listener on `host`.
    pub async fn start_postgres_on(host: &str, schema: &str, extra: &[(&str, &str)]) -> Server {
        let user = pg_user();
        let mut env = vec![
            ("MICROVIBE__DATABASE__HOST", "127.0.0.1"),
            ("MICROVIBE__DATABASE__USER", user.as_str()),
            ("MICROVIBE__DATABASE__DBNAME", "test"),
            ("MICROVIBE__DATABASE__SCHEMA", schema),
        ];
        env.extend_from_slice(extra);
        Server::start_on(host, &env).await
    }

    /// Starts the binary with test-friendly timeouts; `env` overrides.
    pub async fn start(env: &[(&str, &str)]) -> Server {
        Server::start_on("127.0.0.1", env).await
    }

    /// [`Server::start`] with every listener on `host` (127.0.0.2, 127.0.0.3...: one
    /// machine's loopback holds several nodes of a cluster).
    pub async fn start_on(host: &str, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let [api, rtmp, http] = free_ports::<3>();
        let token = "test-admin-token-0123456789".to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_microvibe"));
        cmd.current_dir(dir.path())
            .env("MICROVIBE__SERVER__HOST", host)
            .env("MICROVIBE__SERVER__PORT", api.to_string())
            .env("MICROVIBE__SERVER__ADMIN_TOKEN", &token)
            .env("MICROVIBE__RTMP__LISTEN", format!("{host}:{rtmp}"))
            .env("MICROVIBE__HTTP_MEDIA__LISTEN", format!("{host}:{http}"))
            .env("MICROVIBE__DATABASE__SQLITE_PATH", dir.path().join("t.db"))
            .env("MICROVIBE__ENGINE__SHARDS", "2")
            // The WebRTC UDP ports (one per shard): free ones, not the default 5000+.
            .env("MICROVIBE__WEBRTC__UDP_PORT_BASE", free_port().to_string())
            .env("MICROVIBE__ENGINE__IDLE_PUBLISHER_TIMEOUT_SECS", "2")
            .env("MICROVIBE__ENGINE__UNPUBLISH_GRACE_SECS", "2")
            .env("MICROVIBE__ENGINE__PLAY_WAIT_SECS", "5")
            .env("MICROVIBE__STREAMING__RTMP_SERVER", format!("rtmp://{host}:{rtmp}/live"))
            .env("MICROVIBE__STREAMING__RTMP_PLAY_SERVER", format!("rtmp://{host}:{rtmp}/live"))
            .env("MICROVIBE__STREAMING__FLV_SERVER", format!("http://{host}:{http}/flv"))
            .env("MICROVIBE__STREAMING__HLS_SERVER", format!("http://{host}:{http}/hls"))
            // MICROVIBE_TEST_LOG: the server's RUST_LOG when debugging a test.
            .env("RUST_LOG", std::env::var("MICROVIBE_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("server.log")).unwrap()));
        if host != "127.0.0.1" {
            // WebRTC answers from the node's own address (its ICE candidate).
            cmd.env("MICROVIBE__WEBRTC__BIND", host);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let proc = Proc(cmd.spawn().expect("spawn microvibe"));
        let s = Server {
            proc,
            api: format!("http://{host}:{api}"),
            rtmp: format!("rtmp://{host}:{rtmp}/live"),
            http: format!("http://{host}:{http}"),
            admin_token: token,
            dir,
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = s.client.get(format!("{}/health", s.api)).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "server did not start: {}", s.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut r = self.client.post(format!("{}{}", self.api, path)).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap().json().await.unwrap()
    }

    pub async fn room_json(&self, id: i64) -> Value {
        let v: Value =
            self.client.get(format!("{}/api/v1/live/{id}", self.api)).send().await.unwrap().json().await.unwrap();
        v["data"].clone()
    }

    /// A new user and an RTMP room.
    pub async fn room(&self) -> Room {
        let user = format!("u{}", free_port());
        self.post("/api/v1/auth/register", None, json!({"username": user, "password": "password123"})).await;
        let v = self.post("/api/v1/auth/login", None, json!({"username": user, "password": "password123"})).await;
        let token = v["data"]["token"].as_str().expect("token").to_owned();
        let v = self.post("/api/v1/live/create", Some(&token), json!({"title": "e2e", "push_protocol": "rtmp"})).await;
        let d = &v["data"];
        Room {
            id: d["id"].as_i64().unwrap(),
            key: d["stream_key"].as_str().unwrap().to_owned(),
            name: d["stream_name"].as_str().unwrap().to_owned(),
            token,
        }
    }

    /// ffmpeg publishing the looped fixture in real time.
    pub fn publish(&self, key: &str) -> Proc {
        let fx = fixture();
        Proc(
            Command::new("ffmpeg")
                .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
                .arg(&fx)
                .args(["-c", "copy", "-f", "flv"])
                .arg(format!("{}/{key}", self.rtmp))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    }

    /// Waits until the room has the status.
    pub async fn wait_status(&self, id: i64, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let r = self.room_json(id).await;
            if r["status"] == status {
                return r;
            }
            assert!(Instant::now() < deadline, "room {id} not {status}: {r}\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn rss_kb(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.proc.pid())).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    pub async fn stat_json(&self) -> Value {
        self.client.get(format!("{}/stat.json", self.http)).send().await.unwrap().json().await.unwrap()
    }

    /// `/stat.json` with the admin token: with each stream's `clients` (addresses).
    pub async fn stat_json_admin(&self) -> Value {
        let r = self.client.get(format!("{}/stat.json", self.http)).bearer_auth(&self.admin_token);
        r.send().await.unwrap().json().await.unwrap()
    }
}

/// `ffprobe -show_streams` of a URL: (codec_name, width, height) per stream.
pub fn ffprobe(url: &str) -> Vec<(String, u64, u64)> {
    require("ffprobe");
    let out = Command::new("timeout")
        .args(["20", "ffprobe", "-v", "error", "-show_streams", "-of", "json", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {url}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["codec_name"].as_str().unwrap_or("").to_owned(),
                s["width"].as_u64().unwrap_or(0),
                s["height"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// The video encoder time base for ffmpeg's `-f null` decode readers: the input
/// stream's own.
///
/// ffmpeg 5.1 otherwise stamps decoded video in units of 1/frame rate and the null
/// muxer (no timestamp fix-up) then reports "non monotonically increasing dts" for two
/// frames that round to the same unit. FLV timestamps are whole milliseconds, so a
/// 30 fps stream steps 33, 34, 33 ms; when the reader's start (its first audio frame)
/// puts the video frames half a unit off the grid, every third frame collides (seen
/// with bridged WebRTC streams, whose audio starts at any phase to the video). At the
/// input's resolution (1/1000 for FLV, 1/90000 for MPEG-TS) the check still catches
/// what it is there for: two frames with the same or a decreasing timestamp. Audio
/// keeps ffmpeg's default (1/sample rate): at milliseconds, a short decoded audio
/// frame (a publisher's loop point) would collide instead.
pub const INPUT_TIME_BASE: [&str; 2] = ["-enc_time_base:v", "-1"];

/// `ffmpeg -v error -i URL -t secs -enc_time_base:v -1 -f null -`: returns (exit ok, stderr).
pub fn decode(url: &str, secs: u32) -> (bool, String) {
    let out = Command::new("timeout")
        .args([
            &(secs + 25).to_string(),
            "ffmpeg",
            "-v",
            "error",
            "-i",
            url,
            "-t",
            &secs.to_string(),
            INPUT_TIME_BASE[0],
            INPUT_TIME_BASE[1],
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A player process reading (not decoding) `secs` of the stream.
pub fn copy_player(url: &str, secs: u32) -> Proc {
    Proc(
        Command::new("ffmpeg")
            .args(["-v", "error", "-i", url, "-t", &secs.to_string(), "-c", "copy", "-f", "null", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Takes the whole HTTP chunks or WebSocket frames off the front of `pending`,
/// returning the media they carry (the rest waits for more bytes).
pub fn unframe(pending: &mut Vec<u8>, websocket: bool) -> Vec<u8> {
    let mut payload = vec![];
    loop {
        if websocket {
            if pending.len() < 2 {
                break;
            }
            let (len, hl) = match pending[1] & 0x7F {
                126 if pending.len() >= 4 => (u16::from_be_bytes([pending[2], pending[3]]) as usize, 4),
                127 if pending.len() >= 10 => (u64::from_be_bytes(pending[2..10].try_into().unwrap()) as usize, 10),
                126 | 127 => break,
                l => (l as usize, 2),
            };
            if pending.len() < hl + len {
                break;
            }
            // Media comes in binary frames; a control frame (the close at the end) carries none.
            let control = pending[0] & 0x0F >= 8;
            assert!(pending[0] == 0x82 || control, "binary frames, not {:#x}", pending[0]);
            if !control {
                payload.extend_from_slice(&pending[hl..hl + len]);
            }
            pending.drain(..hl + len);
        } else {
            let Some(p) = pending.windows(2).position(|w| w == b"\r\n") else { break };
            let len = usize::from_str_radix(std::str::from_utf8(&pending[..p]).unwrap().trim(), 16).unwrap();
            if pending.len() < p + 2 + len + 2 {
                break;
            }
            payload.extend_from_slice(&pending[p + 2..p + 2 + len]);
            pending.drain(..p + 2 + len + 2);
        }
    }
    payload
}

/// Reads an HTTP-FLV stream for `secs`, returning (video tags, audio tags, keyframe first).
pub fn read_flv(mut sock: impl Read, secs: u64, websocket: bool) -> (usize, usize, bool) {
    let mut reader = engine::proto::flv::FlvReader::new(8 << 20);
    let mut buf = vec![0u8; 65536];
    let mut raw = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut v, mut a, mut first_key) = (0, 0, None);
    // Skip the response head.
    let mut head_done = false;
    let mut pending = Vec::new();
    while Instant::now() < deadline {
        let n = match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => break,
        };
        raw.extend_from_slice(&buf[..n]);
        if !head_done {
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..p]).to_string();
                assert!(head.starts_with(if websocket { "HTTP/1.1 101" } else { "HTTP/1.1 200" }), "{head}");
                pending = raw[p + 4..].to_vec();
                head_done = true;
            } else {
                continue;
            }
        } else {
            pending.extend_from_slice(&buf[..n]);
        }
        let payload = unframe(&mut pending, websocket);
        reader.handle_input(&payload);
        while let Some(tag) = reader.poll_tag().unwrap() {
            match tag.tag_type {
                engine::proto::flv::TagType::Video => {
                    let key = tag.body.first().is_some_and(|b| b >> 4 == 1);
                    let header = tag.body.get(1) == Some(&0);
                    if !header && first_key.is_none() {
                        first_key = Some(key);
                    }
                    v += 1;
                }
                engine::proto::flv::TagType::Audio => a += 1,
                _ => {}
            }
        }
    }
    (v, a, first_key.unwrap_or(false))
}

/// Opens a WebSocket-FLV connection to `http` (http://host:port) for `name` and
/// reads it for `secs`: (video tags, audio tags, first frame is a keyframe).
pub fn read_ws_flv(http: &str, name: &str, secs: u64) -> (usize, usize, bool) {
    use std::io::Write;
    let hostport = http.trim_start_matches("http://");
    let mut sock = std::net::TcpStream::connect(hostport).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(sock, "GET /flv/{name}.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    read_flv(sock, secs, true)
}

/// Fails loudly (never skips) when the browser tests' tools are missing: Debian's
/// chromium, Node.js, and tests/browser/node_modules (`dir` is tests/browser).
/// Runs `node tests/browser/<script> <args>` from the repo root (the script has its
/// own limits; `timeout` after `limit_secs` is the backstop) and returns its output.
pub async fn run_browser_script(script: &str, args: String, limit_secs: u32) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = format!("tests/browser/{script}");
    tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args(["-k", "10", &limit_secs.to_string(), "node", &path])
            .arg(&args)
            .current_dir(&root)
            .output()
            .unwrap_or_else(|e| panic!("run node {path}: {e}"))
    })
    .await
    .unwrap()
}

pub fn require_browser_tools(dir: &Path) {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run .ci/run (it installs Debian's chromium), or apt-get install -y chromium"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.map(|o| o.status.success()).unwrap_or(false),
        "node is missing: the browser tests run Node.js scripts (run .ci/run)"
    );
    let p = dir.join("node_modules/playwright-core/package.json");
    assert!(p.exists(), "{} is missing: run .ci/run (it runs `npm ci --prefix tests/browser`)", p.display());
}
