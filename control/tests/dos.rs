//! Denial-of-service and security-state attacks on the control API, against the real
//! `microvibe` binary, all on loopback and all bounded in count and time. Each attack
//! runs alongside a legitimate client whose answers and latencies are checked.
//!
//! Figures (RSS, descriptors, latencies) are printed with `eprintln!`; run with
//! `--no-capture` to see them.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "media/redis.rs"]
mod own_redis;
use own_redis::OwnRedis;

const BIN: &str = env!("CARGO_BIN_EXE_microvibe");

fn unique(tag: &str) -> String {
    use rand::RngCore;
    format!("{tag}_{:016x}", rand::rng().next_u64())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The binary, running in its own temp dir with a clean environment; killed (by its
/// own PID) when dropped.
struct Proc {
    child: Child,
    port: u16,
    err: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proc {
    /// Starts `microvibe serve` (media engine off unless `env` turns it on) and waits
    /// for `/health` to answer.
    fn start(env: &[(&str, String)]) -> Proc {
        Self::start_with(env, |_| {})
    }

    fn start_with(env: &[(&str, String)], tweak: impl FnOnce(&mut Command)) -> Proc {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let err = dir.path().join("stderr.log");
        let mut c = Command::new(BIN);
        c.arg("serve")
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("JWT_SECRET", "dos-test-secret-dos-test-secret-0123456789")
            .env("MICROVIBE__SERVER__HOST", "127.0.0.1")
            .env("MICROVIBE__SERVER__PORT", port.to_string())
            .env("MICROVIBE__ENGINE__ENABLED", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap());
        for (k, v) in env {
            c.env(k, v);
        }
        tweak(&mut c);
        let child = c.spawn().unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        let mut p = Proc { child, port, err, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = p.child.try_wait().unwrap() {
                panic!("microvibe exited ({st}) before answering; stderr:\n{}", p.stderr());
            }
            if http_get(port, "/health").is_some_and(|(s, _)| s == 200) {
                return p;
            }
            assert!(Instant::now() < deadline, "microvibe did not answer /health in 30 s; stderr:\n{}", p.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Resident memory in bytes.
    fn rss(&self) -> u64 {
        rss_of(self.pid())
    }

    /// Open descriptors.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map(|d| d.count()).unwrap_or(0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_of(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

const MIB: u64 = 1 << 20;

/// A minimal HTTP/1.1 GET from 127.0.0.1; (status, body) or None if no answer.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address is local).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post_json(
    c: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
) -> (u16, Option<String>, serde_json::Value) {
    match c.post(url).json(&body).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let v = r.json::<serde_json::Value>().await.unwrap_or(serde_json::Value::Null);
            (status, retry, v)
        }
        Err(e) => panic!("{url}: no answer: {e}"),
    }
}

/// Percentile (0..=100) of durations, in milliseconds.
fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p / 100.0).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

/// While `stop` is false: GET /api/v1/live/list every 20 ms from a legit client and
/// sample the server's RSS. Returns (list latencies, statuses that were not 200, peak RSS).
fn watch(base: String, pid: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(Vec<Duration>, Vec<u16>, u64)> {
    let peak = Arc::new(AtomicU64::new(rss_of(pid)));
    let p2 = peak.clone();
    let s2 = stop.clone();
    std::thread::spawn(move || {
        while !s2.load(Ordering::Relaxed) {
            p2.fetch_max(rss_of(pid), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    tokio::spawn(async move {
        let c = client_from([127, 0, 0, 1]);
        let (mut lat, mut bad) = (vec![], vec![]);
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let st = c.get(format!("{base}/api/v1/live/list")).send().await.map_or(0, |r| r.status().as_u16());
            lat.push(t.elapsed());
            if st != 200 {
                bad.push(st);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (lat, bad, peak.load(Ordering::Relaxed))
    })
}

/// Runs `total` requests made by `make(i)`, `concurrency` at a time; returns the
/// (status, Retry-After) of each.
async fn flood<F, Fut>(total: usize, concurrency: usize, make: F) -> Vec<(u16, Option<String>)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (u16, Option<String>)> + Send + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let fut = make(i);
        tasks.spawn(async move {
            let r = fut.await;
            drop(permit);
            r
        });
    }
    let mut out = vec![];
    while let Some(r) = tasks.join_next().await {
        out.push(r.unwrap());
    }
    out
}

fn tally(v: &[(u16, Option<String>)]) -> std::collections::BTreeMap<u16, usize> {
    let mut m = std::collections::BTreeMap::new();
    for (s, _) in v {
        *m.entry(*s).or_default() += 1;
    }
    m
}

/// Item 1: registrations and logins in a flood (64 at a time, 400 + 400 requests)
/// keep the server's memory under a ceiling and the room list responsive; excess
/// requests get 503 + Retry-After, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_hash_flood_keeps_memory_and_latency_bounded() {
    const TOTAL: usize = 400;
    const CONCURRENCY: usize = 64;
    // Two argon2 buffers of 19 MiB plus the process itself: far below one per request.
    const RSS_CEILING: u64 = 160 * MIB;
    let p = Proc::start(&[
        ("MICROVIBE__AUTH__REGISTER_LIMIT_PER_IP", "100000".into()),
        ("MICROVIBE__AUTH__LOGIN_LIMIT_PER_IP", "100000".into()),
        ("MICROVIBE__AUTH__LOGIN_LIMIT_PER_USER", "100000".into()),
        ("MICROVIBE__AUTH__HASH_CONCURRENCY", "2".into()),
    ]);
    let base = p.base();
    let c = client_from([127, 0, 0, 2]);
    let url = format!("{base}/api/v1/auth/register");
    let (st, _, v) = post_json(&c, &url, serde_json::json!({"username": "dos_owner", "password": "password123"})).await;
    assert_eq!(st, 201, "{v}");
    let rss0 = p.rss();
    let fds0 = p.fds();

    for phase in ["register", "login"] {
        let stop = Arc::new(AtomicBool::new(false));
        let w = watch(base.clone(), p.pid(), stop.clone());
        let t = Instant::now();
        let tag = unique("f");
        let answers = tokio::time::timeout(
            Duration::from_secs(240),
            flood(TOTAL, CONCURRENCY, |i| {
                let c = c.clone();
                let (url, body) = match phase {
                    "register" => (
                        format!("{base}/api/v1/auth/register"),
                        serde_json::json!({"username": format!("{}_{i}", &tag[..14]), "password": "password123"}),
                    ),
                    _ => (
                        format!("{base}/api/v1/auth/login"),
                        serde_json::json!({"username": "dos_owner", "password": if i % 2 == 0 { "password123" } else { "wrong-password" }}),
                    ),
                };
                async move {
                    let (s, r, _) = post_json(&c, &url, body).await;
                    (s, r)
                }
            }),
        )
        .await
        .expect("the flood finishes within 240 s");
        let took = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        let (lat, bad, peak) = w.await.unwrap();
        let counts = tally(&answers);
        eprintln!(
            "{phase} flood: {TOTAL} requests, {CONCURRENCY} at a time, {took:.1?}: answers {counts:?}; \
             RSS before {} MiB, peak {} MiB; fds before {fds0}, after {}; room list during it: {} requests, \
             p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, non-200 {bad:?}",
            rss0 / MIB,
            peak / MIB,
            p.fds(),
            lat.len(),
            pct(lat.clone(), 50.0),
            pct(lat.clone(), 99.0),
            pct(lat.clone(), 100.0),
        );
        for (s, retry) in &answers {
            match (phase, s) {
                ("register", 201) | ("login", 200 | 401) => {}
                (_, 503) => assert!(retry.is_some(), "503 without Retry-After"),
                _ => panic!("{phase}: unexpected status {s} (answers {counts:?})"),
            }
        }
        assert!(peak < RSS_CEILING, "{phase}: RSS peaked at {} MiB (ceiling {} MiB)", peak / MIB, RSS_CEILING / MIB);
        assert!(bad.is_empty(), "{phase}: the room list failed during the flood: {bad:?}");
        let p99 = pct(lat, 99.0);
        assert!(p99 < 500.0, "{phase}: room list p99 {p99:.1} ms during the flood");
    }
}

/// An attacker's idle connection: h2c (client preface + SETTINGS) or HTTP/1.1 with
/// one finished request kept alive. None if the connect itself failed.
fn idle_conn(from: [u8; 4], port: u16, h2: bool) -> Option<TcpStream> {
    let sock = socket_from(from)?;
    let mut s = sock;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    if h2 {
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").ok()?;
    } else {
        s.write_all(format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes()).ok()?;
    }
    let _ = port;
    s.set_nonblocking(true).ok()?;
    Some(s)
}

/// A TCP connection to the API port from `from` (connect is synchronous).
fn socket_from(from: [u8; 4]) -> Option<TcpStream> {
    PORT.with(|p| {
        let port = p.get();
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
        sock.bind(&SocketAddr::from((from, 0)).into()).ok()?;
        sock.connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)).into(), Duration::from_secs(2)).ok()?;
        Some(sock.into())
    })
}

thread_local! {
    static PORT: std::cell::Cell<u16> = const { std::cell::Cell::new(0) };
}

/// Whether the server still holds `s` open: drains what it sent; EOF or a reset
/// means closed.
fn still_open(mut s: &TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

/// An RTMP handshake start (C0 + C1) on `port`; true if the engine answers (S0).
fn rtmp_answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(2))
    else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(7u8, 1536));
    if s.write_all(&c0c1).is_err() {
        return false;
    }
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(1) if b[0] == 3)
}

/// Item 2: idle HTTP/2 (h2c) and HTTP/1 keep-alive connections beyond the caps are
/// refused or closed, idle ones are closed after the idle timeout, and meanwhile a
/// legit `/health` and the RTMP port (same process) keep working. The server runs
/// with 1024 descriptors (soft = hard), so its API cap is 1024 / 4 = 256.
#[test]
fn api_connection_caps_and_idle_timeout() {
    const NOFILE: u64 = 1024;
    const PER_IP: usize = 100;
    let (rtmp, media) = (free_port(), free_port());
    let p = Proc::start_with(
        &[
            ("MICROVIBE__ENGINE__ENABLED", "true".into()),
            ("MICROVIBE__ENGINE__SHARDS", "1".into()),
            ("MICROVIBE__RTMP__LISTEN", format!("127.0.0.1:{rtmp}")),
            ("MICROVIBE__HTTP_MEDIA__LISTEN", format!("127.0.0.1:{media}")),
            ("MICROVIBE__SFU__ENABLED", "false".into()),
            ("MICROVIBE__SERVER__MAX_CONNECTIONS_PER_IP", PER_IP.to_string()),
            ("MICROVIBE__SERVER__IDLE_TIMEOUT_SECS", "8".into()),
            ("MICROVIBE__SERVER__HEADER_READ_TIMEOUT_SECS", "4".into()),
        ],
        |c| {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child here.
            unsafe {
                c.pre_exec(|| {
                    let l = libc::rlimit { rlim_cur: NOFILE, rlim_max: NOFILE };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        },
    );
    PORT.with(|c| c.set(p.port));
    assert!(rtmp_answers(rtmp), "RTMP answers before the attack");
    let fds0 = p.fds();
    let t0 = Instant::now();

    // One address, 150 connections: at most PER_IP stay open.
    let one: Vec<TcpStream> = (0..150).filter_map(|i| idle_conn([127, 0, 0, 2], p.port, i % 2 == 0)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let open_one = one.iter().filter(|s| still_open(s)).count();
    // Twelve more addresses, 100 idle h2c connections each: beyond the global cap,
    // and beyond the process's descriptors if nothing capped them.
    let mut many: Vec<TcpStream> = vec![];
    // (Bounded in time too: without the caps, connects stall once the server is out
    // of descriptors.)
    for a in 3..15u8 {
        for _ in 0..100 {
            if t0.elapsed() > Duration::from_secs(30) {
                break;
            }
            many.extend(idle_conn([127, 0, 0, a], p.port, true));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let open_many = many.iter().filter(|s| still_open(s)).count();
    let open_one_after = one.iter().filter(|s| still_open(s)).count();
    let opened = one.len() + many.len();
    let fds_attack = p.fds();
    let t = Instant::now();
    let health = http_get(p.port, "/health");
    let health_ms = t.elapsed().as_secs_f64() * 1000.0;
    let rtmp_ok = rtmp_answers(rtmp);
    eprintln!(
        "connection flood: {opened} sockets opened in {:.1?} ({} from 127.0.0.2, the rest from 127.0.0.3-14); \
         still open: {open_one} of 127.0.0.2's (after its 150; {open_one_after} after the others'), {open_many} of the others'; server fds before {fds0}, during {fds_attack} \
         (limit {NOFILE}); legit /health: {:?} in {health_ms:.1} ms; RTMP handshake answered: {rtmp_ok}",
        t0.elapsed(),
        one.len(),
        health.as_ref().map(|h| h.0),
    );
    assert!(open_one <= PER_IP, "{open_one} connections open from one address (limit {PER_IP})");
    let open = open_one_after + open_many;
    assert!((200..=256 + 32).contains(&open), "{open} API connections open (cap 256)");
    assert_eq!(health.map(|h| h.0), Some(200), "legit /health during the flood");
    assert!(rtmp_ok, "the RTMP port must still accept during the flood");
    assert!(fds_attack < (NOFILE as usize) * 2 / 3, "server holds {fds_attack} descriptors of {NOFILE}");

    // Idle ones are closed after the idle timeout (8 s after their last request).
    std::thread::sleep(Duration::from_secs(10));
    let left = one.iter().chain(many.iter()).filter(|s| still_open(s)).count();
    eprintln!("after the idle timeout: {left} attacker connections still open; server fds {}", p.fds());
    assert_eq!(left, 0, "idle connections must be closed after server.idle_timeout_secs");
    assert_eq!(http_get(p.port, "/health").map(|h| h.0), Some(200));
}

/// A redis-server of our own on `port`, without persistence; killed by its PID.
/// Item 5: a logged-out token stays refused after Redis restarts without persistence
/// (PostgreSQL + a Redis started by this test on a spare port).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_survives_a_redis_restart() {
    let port = free_port();
    let mut redis = OwnRedis::start(port);
    let schema = unique("dos");
    let mut env = vec![
        ("DATABASE_HOST", "127.0.0.1".to_owned()),
        ("DATABASE_DBNAME", "test".to_owned()),
        ("MICROVIBE__DATABASE__SCHEMA", schema.clone()),
        ("REDIS_HOST", "127.0.0.1".to_owned()),
        ("REDIS_PORT", port.to_string()),
    ];
    if let Ok(u) = std::env::var("PGUSER") {
        env.push(("DATABASE_USER", u));
    }
    let p = Proc::start(&env);
    let base = p.base();
    let c = client_from([127, 0, 0, 1]);
    let cred = serde_json::json!({"username": "revoke_me", "password": "password123"});
    assert_eq!(post_json(&c, &format!("{base}/api/v1/auth/register"), cred.clone()).await.0, 201);
    let login = || async {
        let (st, _, v) = post_json(&c, &format!("{base}/api/v1/auth/login"), cred.clone()).await;
        assert_eq!(st, 200, "{v}");
        v["data"]["token"].as_str().unwrap().to_owned()
    };
    let (gone, kept) = (login().await, login().await);
    // GET /users/me, retrying while the server reconnects to Redis (503).
    let me = |t: String| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let st = c.get(format!("{base}/api/v1/users/me")).bearer_auth(&t).send().await.unwrap().status();
                if st != 503 || Instant::now() > deadline {
                    return st.as_u16();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let r = c.post(format!("{base}/api/v1/auth/logout")).bearer_auth(&gone).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(me(gone.clone()).await, 401);

    // Redis restarts empty.
    drop(redis);
    redis = OwnRedis::start(port);
    let after = me(gone.clone()).await;
    let other = me(kept.clone()).await;
    eprintln!("after the Redis restart: the logged-out token gets {after}, another token {other}");
    assert_eq!(after, 401, "a logged-out token must stay refused after the cache lost its data");
    assert_eq!(other, 200, "tokens not revoked still work");
    drop(p);
    drop(redis);
    drop_schema(&schema).await;
}

async fn drop_schema(schema: &str) {
    let user = std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into());
    let (client, conn) =
        tokio_postgres::connect(&format!("host=127.0.0.1 user={user} dbname=test"), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL at 127.0.0.1:5432");
    let task = tokio::spawn(conn);
    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await.unwrap();
    drop(client);
    let _ = task.await;
}

/// Item 6: client-supplied strings cannot forge log lines: the nginx-rtmp `on_publish`
/// callback's `app` / `addr` are logged escaped.
#[test]
fn client_strings_cannot_forge_log_lines() {
    let p = Proc::start(&[("RUST_LOG", "debug".into())]);
    let body = "name=sk_nosuchkey&app=live%0aFAKE LINE app&addr=10.0.0.1%0d%0aFAKE LINE addr&call=publish";
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /api/v1/live/auth/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");

    let deadline = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = p.stderr();
        if log.contains("publish refused") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(log.contains("publish refused"), "the refusal is logged:\n{log}");
    let forged: Vec<&str> = log.lines().filter(|l| l.trim_start().starts_with("FAKE")).collect();
    assert!(forged.is_empty(), "forged log lines: {forged:?}\nlog:\n{log}");
    assert!(
        log.contains(r"live\nFAKE LINE app") && log.contains(r"10.0.0.1\r\nFAKE LINE addr"),
        "the values are logged, escaped:\n{log}"
    );
}
