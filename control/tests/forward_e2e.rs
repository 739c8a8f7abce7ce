//! Restreaming ("forward") end to end, with real peers: a local nginx-rtmp as the
//! destination (and nginx's stream module as a TLS terminator in front of it for
//! RTMPS, with a CA made by the openssl tool), ffmpeg publishing to microvibe, and
//! ffprobe/ffmpeg reading the forwarded stream back from nginx-rtmp. Also the API:
//! keys masked, validation, and private destinations refused by default.

mod media;
use media::rtc::{Peer, enter_netns, start_rtc};
use media::{Proc, Server, decode, ffprobe, free_ports};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// A local nginx-rtmp (one process, in the foreground, killed by PID on drop).
struct Nginx {
    dir: PathBuf,
    rtmp: u16,
    http: u16,
    /// The TLS terminator's port (nginx stream module → `rtmp`), when started with TLS.
    tls: Option<u16>,
    proc: Option<Proc>,
}

impl Nginx {
    /// Writes the config under `dir` and starts nginx.
    fn start(dir: &Path, tls: bool) -> Nginx {
        for (what, path) in [("nginx", "/usr/sbin/nginx"), ("libnginx-mod-rtmp", RTMP_MODULE)] {
            assert!(Path::new(path).exists(), "{what} is required ({path}); scripts/setup installs it");
        }
        if tls {
            assert!(Path::new(STREAM_MODULE).exists(), "libnginx-mod-stream is required; scripts/setup installs it");
        }
        let [rtmp, http, tls_port] = free_ports::<3>();
        let n = Nginx { dir: dir.to_path_buf(), rtmp, http, tls: tls.then_some(tls_port), proc: None };
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let d = dir.display();
        let stream = match n.tls {
            Some(p) => format!(
                "stream {{\n  server {{\n    listen 127.0.0.1:{p} ssl;\n    ssl_certificate {d}/server.crt;\n    \
                 ssl_certificate_key {d}/server.key;\n    proxy_pass 127.0.0.1:{rtmp};\n  }}\n}}\n"
            ),
            None => String::new(),
        };
        let conf = format!(
            "load_module {RTMP_MODULE};\n{}daemon off;\nmaster_process off;\nworker_processes 1;\n\
             error_log {d}/error.log info;\npid {d}/nginx.pid;\nevents {{ worker_connections 256; }}\n\
             rtmp {{\n  server {{\n    listen 127.0.0.1:{rtmp};\n    chunk_size 4096;\n    \
             application live {{\n      live on;\n      record off;\n      wait_key on;\n      wait_video on;\n    }}\n  }}\n}}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n  \
             fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n  \
             server {{\n    listen 127.0.0.1:{http};\n    location /stat {{ rtmp_stat all; }}\n  }}\n}}\n{stream}",
            if tls { format!("load_module {STREAM_MODULE};\n") } else { String::new() },
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut n = n;
        n.restart();
        n
    }

    /// Starts nginx (again) on the same ports; waits until its RTMP port answers.
    fn restart(&mut self) {
        assert!(self.proc.is_none());
        let proc = Proc(
            Command::new("nginx")
                .arg("-p")
                .arg(&self.dir)
                .arg("-e")
                .arg(self.dir.join("error.log"))
                .arg("-c")
                .arg(self.dir.join("nginx.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn nginx"),
        );
        self.proc = Some(proc);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.rtmp)).is_err() {
            let exited = self.proc.as_mut().unwrap().wait_for(Duration::ZERO);
            assert!(exited.is_none(), "nginx exited: {exited:?}\n{}", self.log());
            assert!(Instant::now() < deadline, "nginx-rtmp did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills nginx (by its PID) and waits for it.
    fn kill(&mut self) {
        let mut p = self.proc.take().expect("nginx running");
        p.signal("KILL");
        assert!(p.wait_for(Duration::from_secs(5)).is_some(), "nginx did not die");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn play_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp)
    }

    /// nginx-rtmp's `/stat` XML.
    fn stat(&self) -> String {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "5", &format!("http://127.0.0.1:{}/stat", self.http)])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl
/// tool under `dir` (ca.crt, server.crt, server.key).
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=microvibe test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

async fn api(s: &Server, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = s.client.request(method, format!("{}{}", s.api, path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn forwards(s: &Server, room: &media::Room) -> Vec<Value> {
    let (st, v) = api(s, reqwest::Method::GET, &format!("/api/v1/live/{}/forwards", room.id), &room.token, None).await;
    assert_eq!(st, 200, "{v}");
    v["data"]["items"].as_array().unwrap().clone()
}

/// Waits until the room's one forward has `state` (and an error when `with_error`).
async fn wait_forward(s: &Server, room: &media::Room, state: &str, with_error: bool, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let f = forwards(s, room).await.remove(0);
        if f["status"]["state"] == state && (!with_error || f["status"]["error"].is_string()) {
            return f;
        }
        assert!(Instant::now() < deadline, "forward not {state}: {f}\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The forwarded stream on nginx-rtmp: H.264 + AAC (the video `width` wide), and 3 s
/// decode without errors.
fn check_forwarded_w(url: &str, width: u64) {
    let streams = ffprobe(url);
    let codecs: Vec<&str> = streams.iter().map(|s| s.0.as_str()).collect();
    assert!(codecs.contains(&"h264") && codecs.contains(&"aac"), "{url}: {streams:?}");
    assert!(streams.iter().any(|s| s.0 == "h264" && s.1 == width), "{streams:?}");
    let (ok, err) = decode(url, 3);
    assert!(ok && err.trim().is_empty(), "decoding {url}: {err}");
}

/// [`check_forwarded_w`] of the ffmpeg fixture (1280×720).
fn check_forwarded(url: &str) {
    check_forwarded_w(url, 1280);
}

#[tokio::test]
async fn forwards_to_nginx_rtmp_and_survives_its_restart() {
    let ndir = tempfile::tempdir().unwrap();
    let mut nginx = Nginx::start(ndir.path(), false);
    let s = Server::start(&[("MICROVIBE__FORWARD__ALLOW_PRIVATE", "true")]).await;
    let room = s.room().await;
    let key = format!("fwd-secret-{}", nginx.rtmp);
    let url = format!("rtmp://127.0.0.1:{}/live", nginx.rtmp);
    let (st, v) = api(
        &s,
        reqwest::Method::POST,
        &format!("/api/v1/live/{}/forwards", room.id),
        &room.token,
        Some(json!({ "url": url, "key": key })),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["data"]["status"]["state"], "idle");

    let mut publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(15)).await;
    let t0 = Instant::now();
    wait_forward(&s, &room, "live", false, Duration::from_secs(15)).await;
    println!("forward live {:?} after the room", t0.elapsed());
    check_forwarded(&nginx.play_url(&key));
    let f = forwards(&s, &room).await.remove(0);
    assert!(f["status"]["bytes_sent"].as_u64().unwrap_or(0) > 0 || f["status"]["since"].is_string(), "{f}");
    assert!(nginx.stat().contains(&format!("<name>{key}</name>")), "nginx /stat: {}", nginx.stat());

    // The publisher reconnects within the unpublish grace (2 s here): the forward goes
    // on, the same connection (not restarted: its state's `since` is unchanged).
    let since = f["status"]["since"].clone();
    publisher.signal("KILL");
    let _ = publisher.wait_for(Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(500)).await;
    publisher = s.publish(&room.key);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let f = forwards(&s, &room).await.remove(0);
    assert_eq!((&f["status"]["state"], &f["status"]["since"]), (&json!("live"), &since), "{f}");
    assert_eq!(s.room_json(room.id).await["status"], "live");
    check_forwarded(&nginx.play_url(&key));

    // The destination goes away: retrying, with the reason.
    nginx.kill();
    let f = wait_forward(&s, &room, "retrying", true, Duration::from_secs(15)).await;
    println!("while nginx is down: {}", f["status"]);
    // It comes back: the forward resumes by itself.
    nginx.restart();
    let t1 = Instant::now();
    let f = wait_forward(&s, &room, "live", false, Duration::from_secs(40)).await;
    println!("forward live again {:?} after nginx restarted", t1.elapsed());
    assert!(f["status"]["error"].is_null(), "{f}");
    check_forwarded(&nginx.play_url(&key));

    // The stream's end stops the forward: nginx-rtmp's stream goes away.
    publisher.signal("KILL");
    let _ = publisher.wait_for(Duration::from_secs(5));
    s.wait_status(room.id, "idle", Duration::from_secs(15)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while nginx.stat().contains(&format!("<name>{key}</name>")) {
        assert!(Instant::now() < deadline, "the forward still publishes to nginx: {}", nginx.stat());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_forward(&s, &room, "idle", false, Duration::from_secs(5)).await;
    // The key never reached the log.
    let log = s.log();
    assert!(!log.contains(&key), "the stream key is in the server log");
    assert!(log.contains("forward: publishing"), "{log}");
}

#[tokio::test]
async fn forwards_over_rtmps_through_a_tls_terminator() {
    let ndir = tempfile::tempdir().unwrap();
    make_certs(ndir.path());
    let nginx = Nginx::start(ndir.path(), true);
    let ca = ndir.path().join("ca.crt");
    let s = Server::start(&[
        ("MICROVIBE__FORWARD__ALLOW_PRIVATE", "true"),
        ("MICROVIBE__FORWARD__CA_FILE", ca.to_str().unwrap()),
    ])
    .await;
    let room = s.room().await;
    let key = format!("tls-secret-{}", nginx.rtmp);
    let url = format!("rtmps://127.0.0.1:{}/live", nginx.tls.unwrap());
    let (st, v) = api(
        &s,
        reqwest::Method::POST,
        &format!("/api/v1/live/{}/forwards", room.id),
        &room.token,
        Some(json!({ "url": url, "key": key })),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(15)).await;
    wait_forward(&s, &room, "live", false, Duration::from_secs(15)).await;
    check_forwarded(&nginx.play_url(&key));
    assert!(!s.log().contains(&key), "the stream key is in the server log");
}

/// Without the test CA the TLS handshake fails: the forward retries, saying why.
#[tokio::test]
async fn rtmps_to_an_untrusted_certificate_fails() {
    let ndir = tempfile::tempdir().unwrap();
    make_certs(ndir.path());
    let nginx = Nginx::start(ndir.path(), true);
    let s = Server::start(&[("MICROVIBE__FORWARD__ALLOW_PRIVATE", "true")]).await;
    let room = s.room().await;
    let url = format!("rtmps://127.0.0.1:{}/live", nginx.tls.unwrap());
    let (st, v) = api(
        &s,
        reqwest::Method::POST,
        &format!("/api/v1/live/{}/forwards", room.id),
        &room.token,
        Some(json!({ "url": url, "key": "untrusted-key" })),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(15)).await;
    let f = wait_forward(&s, &room, "retrying", true, Duration::from_secs(15)).await;
    let err = f["status"]["error"].as_str().unwrap();
    assert!(err.contains("TLS") && err.to_lowercase().contains("certificate"), "{err}");
    assert!(!nginx.stat().contains("untrusted-key"), "{}", nginx.stat());
}

#[tokio::test]
async fn forward_api_masks_keys_validates_and_refuses_private_addresses() {
    let s = Server::start(&[("MICROVIBE__FORWARD__MAX_PER_ROOM", "3")]).await;
    let room = s.room().await;
    let other = s.room().await;
    let path = format!("/api/v1/live/{}/forwards", room.id);
    let post = |url: &str, key: &str| json!({ "url": url, "key": key });
    use reqwest::Method;

    // Private destinations are refused by default (SSRF), by address and by name.
    for url in ["rtmp://127.0.0.1:1935/live", "rtmp://localhost/live", "rtmp://10.0.0.1/live", "rtmp://[::1]/live"] {
        let (st, v) = api(&s, Method::POST, &path, &room.token, Some(post(url, "k-123456789"))).await;
        assert_eq!(st, 400, "{url}: {v}");
        assert!(v.to_string().contains("not allowed"), "{url}: {v}");
    }
    // Validation errors name the field and the problem.
    for (body, want) in [
        (post("http://8.8.8.8/live", "k"), "rtmp:// or rtmps://"),
        (post("rtmp://8.8.8.8", "k"), "application path"),
        (post("rtmp://8.8.8.8:70000/live", "k"), "port"),
        (post("rtmp://8.8.8.8/live?x=1", "k"), "query"),
        (post("rtmp://8.8.8.8/live", ""), "key"),
        (post("rtmp://8.8.8.8/live", "a\u{1}b"), "control"),
        (json!({ "url": "rtmp://8.8.8.8/live" }), "key"),
    ] {
        let (st, v) = api(&s, Method::POST, &path, &room.token, Some(body.clone())).await;
        assert_eq!(st, 400, "{body}: {v}");
        assert!(v.to_string().contains(want), "{body}: {v} should say {want:?}");
    }
    // A public destination (nothing connects: the room is not live).
    let key = "live_0123456789_abcdWXYZ";
    let (st, v) = api(&s, Method::POST, &path, &room.token, Some(post("rtmp://8.8.8.8/live2", key))).await;
    assert_eq!(st, 201, "{v}");
    let f = &v["data"];
    assert_eq!(f["key_hint"], "****WXYZ");
    assert_eq!(f["url"], "rtmp://8.8.8.8/live2");
    assert_eq!((f["enabled"].as_bool(), f["status"]["state"].as_str()), (Some(true), Some("idle")));
    assert!(!v.to_string().contains(key), "the key is shown: {v}");
    let fid = f["id"].as_i64().unwrap();
    let list = forwards(&s, &room).await;
    assert_eq!(list.len(), 1);
    assert!(!Value::Array(list).to_string().contains(key));
    // Only the owner sees or changes them.
    let (st, _) = api(&s, Method::GET, &path, &other.token, None).await;
    assert_eq!(st, 403);
    let (st, _) = api(&s, Method::POST, &path, &other.token, Some(post("rtmp://8.8.8.8/x", "k-1"))).await;
    assert_eq!(st, 403);
    let (st, _) = api(&s, Method::DELETE, &format!("{path}/{fid}"), &other.token, None).await;
    assert_eq!(st, 403);
    let (st, _) = api(&s, Method::GET, &path, "not-a-token", None).await;
    assert_eq!(st, 401);
    // At most forward.max_per_room.
    for i in 0..2 {
        let (st, v) =
            api(&s, Method::POST, &path, &room.token, Some(post("rtmp://8.8.4.4/live", &format!("k-{i}")))).await;
        assert_eq!(st, 201, "{v}");
    }
    let (st, v) = api(&s, Method::POST, &path, &room.token, Some(post("rtmp://8.8.4.4/live", "k-x"))).await;
    assert_eq!(st, 400, "{v}");
    assert!(v.to_string().contains("at most 3"), "{v}");
    // Turned off, then deleted.
    let (st, v) =
        api(&s, Method::PATCH, &format!("{path}/{fid}"), &room.token, Some(json!({ "enabled": false }))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["enabled"], false);
    let (st, _) = api(&s, Method::DELETE, &format!("{path}/{fid}"), &room.token, None).await;
    assert_eq!(st, 200);
    let (st, _) = api(&s, Method::DELETE, &format!("{path}/{fid}"), &room.token, None).await;
    assert_eq!(st, 404);
    // Another room's forward id through this room: not found.
    let (st, v) = api(
        &s,
        Method::POST,
        &format!("/api/v1/live/{}/forwards", other.id),
        &other.token,
        Some(post("rtmp://8.8.8.8/live", "other-key")),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let ofid = v["data"]["id"].as_i64().unwrap();
    let (st, _) = api(&s, Method::DELETE, &format!("{path}/{ofid}"), &room.token, None).await;
    assert_eq!(st, 404);
    assert_eq!(forwards(&s, &room).await.len(), 2);
    assert!(!s.log().contains(key), "the key is in the log");
}

/// A WHIP-published room (aiortc, H.264 + Opus) forwards too: through the WebRTC →
/// RTMP bridge (H.264 + AAC). Runs in its own network namespace (loopback only),
/// nginx-rtmp with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_published_room_forwards() {
    if !enter_netns("whip_published_room_forwards") {
        return;
    }
    let ndir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(ndir.path(), false);
    let s = start_rtc(&[("MICROVIBE__FORWARD__ALLOW_PRIVATE", "true")]).await;
    let room = s.room().await;
    let key = format!("whip-secret-{}", nginx.rtmp);
    let url = format!("rtmp://127.0.0.1:{}/live", nginx.rtmp);
    let (st, v) = api(
        &s,
        reqwest::Method::POST,
        &format!("/api/v1/live/{}/forwards", room.id),
        &room.token,
        Some(json!({ "url": url, "key": key })),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let whip = format!("{}/whip/{}", s.api, room.name);
    let publisher =
        Peer::spawn(&["publish", &whip, "--key", &room.key, "--codec", "h264", "--seconds", "60", "--tone"]);
    let created = publisher.wait("created", Duration::from_secs(20));
    assert_eq!(created["status"], 201, "{created}");
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    wait_forward(&s, &room, "live", false, Duration::from_secs(20)).await;
    let play = nginx.play_url(&key);
    tokio::task::spawn_blocking(move || check_forwarded_w(&play, 320)).await.unwrap();
    assert!(!s.log().contains(&key), "the stream key is in the server log");
}
