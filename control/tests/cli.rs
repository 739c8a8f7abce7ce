//! The `microvibe` binary as an operator runs it: each test in its own temp dir as
//! the current directory (so no `configs/microvibe.toml` is found unless the test
//! writes one), with a clean environment (PATH and HOME only, plus what the test
//! sets), and with the media engine disabled so no test binds media ports.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_microvibe");
/// No command in these tests should take anywhere near this long.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn unique(tag: &str) -> String {
    use rand::RngCore;
    format!("{tag}_{:016x}", rand::rng().next_u64())
}

/// A temp dir to run in, with the command's output captured to files there.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.file(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// `microvibe ARGS` in this dir with only PATH, HOME and `env` set.
    fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("MICROVIBE__ENGINE__ENABLED", "false")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// Starts the command with stdout/stderr going to files in the sandbox (never a
    /// pipe nobody reads); the guard kills it if the test ends first.
    fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        let tag = unique("run");
        let out = self.file(&format!("{tag}.stdout"));
        let err = self.file(&format!("{tag}.stderr"));
        let child = self
            .cmd(args, env)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        Running { child: Some(child), out, err, what: format!("microvibe {}", args.join(" ")) }
    }

    /// Runs to completion (bounded by `RUN_TIMEOUT`).
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut r = self.spawn(args, env);
        let status = r
            .wait_for(RUN_TIMEOUT)
            .unwrap_or_else(|| panic!("{} did not finish within {RUN_TIMEOUT:?}; stderr:\n{}", r.what, r.stderr()));
        Output { status, stdout: r.stdout(), stderr: r.stderr() }
    }
}

struct Running {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
    what: String,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The exit status, or None if still running after `limit`.
    fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn still_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn ok(&self) -> &Self {
        assert!(
            self.status.success(),
            "expected success, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    fn failed(&self) -> &Self {
        assert!(!self.status.success(), "expected failure\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(self.status.code().is_some(), "killed by a signal rather than exiting: {}", self.status);
        self
    }

    /// stderr is exactly one non-empty line; returns it.
    fn one_line_error(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr, got:\n{}", self.stderr);
        assert!(lines[0].starts_with("microvibe: "), "{}", lines[0]);
        lines[0]
    }

    /// The last non-empty stderr line (the error, after any log lines).
    fn last_error(&self) -> &str {
        self.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_else(|| panic!("stderr is empty"))
    }
}

/// A port nothing listens on (at the moment of asking).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A minimal HTTP/1.1 GET; returns (status, body) or None if not answering.
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

fn sigterm(pid: u32) {
    let st = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("run kill");
    assert!(st.success(), "kill -TERM {pid} failed");
}

fn pg_env(schema: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DATABASE_HOST", "127.0.0.1".to_owned()),
        ("DATABASE_DBNAME", "test".to_owned()),
        ("MICROVIBE__DATABASE__SCHEMA", schema.to_owned()),
    ];
    if let Ok(u) = std::env::var("PGUSER") {
        env.push(("DATABASE_USER", u));
    }
    env
}

fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn help_lists_the_commands() {
    let sb = Sandbox::new();
    let out = sb.run(&["--help"], &[]);
    out.ok();
    for word in ["serve", "migrate", "config", "MICROVIBE__"] {
        assert!(out.stdout.contains(word), "--help does not mention {word}:\n{}", out.stdout);
    }
    let out = sb.run(&["--version"], &[]);
    out.ok();
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")), "{}", out.stdout);
    // An unknown subcommand is a usage error, not a server start.
    sb.run(&["frobnicate"], &[]).failed();
}

#[test]
fn config_prints_redacted_toml() {
    let sb = Sandbox::new();
    let jwt = "jwt-secret-that-must-not-be-printed-0123456789";
    let dbpw = "db-password-that-must-not-be-printed";
    let out = sb.run(
        &["config"],
        &[
            ("JWT_SECRET", jwt),
            ("DATABASE_PASSWORD", dbpw),
            ("SERVER_PORT", "9123"),
            ("MICROVIBE__REDIS__KEY_PREFIX", "cli:"),
        ],
    );
    out.ok();
    assert!(!out.stdout.contains(jwt) && !out.stderr.contains(jwt), "the JWT secret leaked");
    assert!(!out.stdout.contains(dbpw) && !out.stderr.contains(dbpw), "the database password leaked");
    let t: toml::Table = toml::from_str(&out.stdout).unwrap_or_else(|e| panic!("not TOML: {e}\n{}", out.stdout));
    assert_eq!(t["jwt"]["secret"].as_str(), Some("***"));
    assert_eq!(t["database"]["password"].as_str(), Some("***"));
    assert_eq!(t["server"]["port"].as_integer(), Some(9123), "env overrides show in the output");
    assert_eq!(t["redis"]["key_prefix"].as_str(), Some("cli:"));
    assert_eq!(t["engine"]["enabled"].as_bool(), Some(false));
    // The output is itself a valid config file.
    let cfg: control::config::Config = toml::from_str(&out.stdout).expect("printed config loads back");
    assert_eq!(cfg.server.port, 9123);

    // Without secrets set, nothing is redacted that is empty, and defaults are shown.
    let out = sb.run(&["config"], &[]);
    out.ok();
    let t: toml::Table = toml::from_str(&out.stdout).unwrap();
    assert_eq!(t["database"]["password"].as_str(), Some(""));
    assert_eq!(t["jwt"]["secret"].as_str(), Some("***"), "even the default secret is not printed");
    assert_eq!(t["server"]["port"].as_integer(), Some(8080));
}

#[test]
fn release_mode_refuses_the_default_secret() {
    let sb = Sandbox::new();
    let port = free_port().to_string();
    let env =
        [("SERVER_MODE", "release"), ("MICROVIBE__SERVER__HOST", "127.0.0.1"), ("MICROVIBE__SERVER__PORT", &port)];
    let out = sb.run(&["serve"], &env);
    let line = out.failed().one_line_error();
    assert!(line.contains("jwt.secret") && line.contains("JWT_SECRET"), "{line}");
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    // A short secret is refused too; a real one is accepted.
    let out = sb.run(&["config"], &[("SERVER_MODE", "release"), ("JWT_SECRET", "short")]);
    let line = out.failed().one_line_error();
    assert!(line.contains("jwt.secret") && line.contains("32"), "{line}");
    let secret = "r".repeat(40);
    sb.run(&["config"], &[("SERVER_MODE", "release"), ("JWT_SECRET", &secret)]).ok();
}

#[test]
fn unknown_config_key_is_named() {
    let sb = Sandbox::new();
    // Found by default at ./configs/microvibe.toml.
    sb.write("configs/microvibe.toml", "[server]\nport = 8080\nprot = 1\n");
    let out = sb.run(&["config"], &[]);
    let line = out.failed().one_line_error();
    assert!(line.contains("prot"), "{line}");
    assert!(line.contains("configs/microvibe.toml"), "names the file: {line}");

    // Given with --config; an unknown section.
    sb.write("other.toml", "[nosuchsection]\nx = 1\n");
    let out = sb.run(&["--config", "other.toml", "config"], &[]);
    let line = out.failed().one_line_error();
    assert!(line.contains("nosuchsection"), "{line}");

    // A wrong type in the file names the key.
    sb.write("typed.toml", "[server]\nport = \"eighty\"\n");
    let out = sb.run(&["--config", "typed.toml", "config"], &[]);
    let line = out.failed().one_line_error();
    assert!(line.contains("port"), "{line}");

    // A --config that does not exist is an error, not the defaults.
    let out = sb.run(&["--config", "missing.toml", "config"], &[]);
    let line = out.failed().one_line_error();
    assert!(line.contains("missing.toml"), "{line}");

    // An unknown MICROVIBE__ key names the variable and the key.
    let out = sb.run(&["config"], &[("MICROVIBE__SERVER__NOPE", "1")]);
    let line = out.failed().one_line_error();
    assert!(line.contains("MICROVIBE__SERVER__NOPE"), "{line}");
}

#[test]
fn wrong_type_in_env_is_named() {
    let sb = Sandbox::new();
    let out = sb.run(&["serve"], &[("SERVER_PORT", "abc")]);
    let line = out.failed().one_line_error();
    assert!(line.contains("SERVER_PORT"), "{line}");
    assert!(line.contains("server.port"), "{line}");
    assert!(line.contains("abc"), "{line}");
    let out = sb.run(&["config"], &[("MICROVIBE__ENGINE__ENABLED", "maybe")]);
    let line = out.failed().one_line_error();
    assert!(line.contains("MICROVIBE__ENGINE__ENABLED"), "{line}");
}

#[test]
fn migrate_sqlite_twice() {
    let sb = Sandbox::new();
    let db = sb.file("x.db");
    let db_s = db.to_string_lossy().into_owned();
    let env = [("MICROVIBE__DATABASE__SQLITE_PATH", db_s.as_str())];
    let out = sb.run(&["migrate"], &env);
    out.ok();
    assert!(out.stdout.contains("applied 0001_init"), "{}", out.stdout);
    assert!(db.exists(), "the database file was created");
    let out = sb.run(&["migrate"], &env);
    out.ok();
    assert!(out.stdout.contains("no pending migrations"), "{}", out.stdout);
    assert!(!out.stdout.contains("applied"), "{}", out.stdout);

    // The default path is relative to the current directory.
    let out = sb.run(&["migrate"], &[]);
    out.ok();
    assert!(out.stdout.contains("applied 0001_init"), "{}", out.stdout);
    assert!(sb.file("data/microvibe.db").exists());
}

#[tokio::test]
async fn migrate_postgres_twice() {
    let sb = Sandbox::new();
    let schema = unique("cli");
    let env = pg_env(&schema);
    let out = sb.run(&["migrate"], &as_refs(&env));
    assert!(
        out.status.success(),
        "migrate against PostgreSQL at 127.0.0.1:5432 (database test) failed; is it running?\nstdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("applied 0001_init"), "{}", out.stdout);
    assert!(out.stdout.contains("postgres"), "{}", out.stdout);
    let out = sb.run(&["migrate"], &as_refs(&env));
    out.ok();
    assert!(out.stdout.contains("no pending migrations"), "{}", out.stdout);

    // Check in the database itself, then drop the schema.
    let user = std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into());
    let (client, conn) =
        tokio_postgres::connect(&format!("host=127.0.0.1 port=5432 user={user} dbname=test"), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL unreachable at 127.0.0.1:5432: {e}"));
    let task = tokio::spawn(conn);
    let n: i64 =
        client.query_one(&format!("SELECT COUNT(*) FROM {schema}.schema_migrations"), &[]).await.unwrap().get(0);
    let want = control::store::migrations::POSTGRES.len() as i64;
    assert_eq!(n, want, "one schema_migrations row per migration");
    client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
    drop(client);
    let _ = task.await;
}

#[test]
fn migrate_postgres_unreachable_fails_cleanly() {
    let sb = Sandbox::new();
    let out = sb.run(&["migrate"], &[("DATABASE_HOST", "127.0.0.1"), ("DATABASE_PORT", "1")]);
    let last = out.failed().last_error();
    assert!(last.starts_with("microvibe: "), "{last}");
    assert!(last.contains("unavailable") || last.contains("connect") || last.contains("refused"), "{last}");
}

#[test]
fn serve_no_migrate_on_a_fresh_database_refuses() {
    let sb = Sandbox::new();
    let db = sb.file("fresh.db").to_string_lossy().into_owned();
    let port = free_port().to_string();
    let env = [
        ("MICROVIBE__DATABASE__SQLITE_PATH", db.as_str()),
        ("MICROVIBE__SERVER__HOST", "127.0.0.1"),
        ("MICROVIBE__SERVER__PORT", port.as_str()),
    ];
    let out = sb.run(&["serve", "--no-migrate"], &env);
    let last = out.failed().last_error();
    assert!(last.contains("microvibe migrate"), "{last}");
    assert!(last.contains("version 0"), "{last}");

    // After `migrate`, the same command starts (and answers).
    sb.run(&["migrate"], &env).ok();
    let mut srv = sb.spawn(&["serve", "--no-migrate"], &env);
    let p: u16 = port.parse().unwrap();
    wait_healthy(&mut srv, p);
    sigterm(srv.pid());
    let st = srv.wait_for(Duration::from_secs(5)).unwrap_or_else(|| panic!("no exit after SIGTERM:\n{}", srv.stderr()));
    assert!(st.success(), "{st}\n{}", srv.stderr());
}

#[test]
fn serve_on_a_taken_port_names_it() {
    let sb = Sandbox::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let db = sb.file("x.db").to_string_lossy().into_owned();
    let env = [
        ("MICROVIBE__SERVER__HOST", "127.0.0.1"),
        ("MICROVIBE__SERVER__PORT", port.as_str()),
        ("MICROVIBE__DATABASE__SQLITE_PATH", db.as_str()),
    ];
    let out = sb.run(&["serve"], &env);
    let last = out.failed().last_error();
    assert!(last.contains(&format!("127.0.0.1:{port}")), "{last}");
    assert!(last.contains("server.port"), "{last}");
    drop(taken);
}

/// Polls `/health` until 200 (up to 10 s), failing early if the server exits.
fn wait_healthy(srv: &mut Running, port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((200, body)) = http_get(port, "/health") {
            return body;
        }
        assert!(srv.still_running(), "{} exited before answering:\n{}", srv.what, srv.stderr());
        assert!(Instant::now() < deadline, "no 200 from /health on port {port} within 10 s:\n{}", srv.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_answers_health_and_stops_on_sigterm() {
    let sb = Sandbox::new();
    let port = free_port();
    let ps = port.to_string();
    let db = sb.file("x.db").to_string_lossy().into_owned();
    let env = [
        ("MICROVIBE__SERVER__HOST", "127.0.0.1"),
        ("MICROVIBE__SERVER__PORT", ps.as_str()),
        ("MICROVIBE__DATABASE__SQLITE_PATH", db.as_str()),
    ];
    let mut srv = sb.spawn(&["serve"], &env);
    let body = wait_healthy(&mut srv, port);
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("health body not JSON ({e}): {body}"));
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["data"]["database_backend"], "sqlite", "{v}");
    assert_eq!(v["data"]["redis_backend"], "embedded", "{v}");
    // It migrated on the way up.
    assert!(std::path::Path::new(&db).exists());
    // An unknown path is a 404, not a hang or a 500.
    assert_eq!(http_get(port, "/nope").map(|(s, _)| s), Some(404));

    sigterm(srv.pid());
    let started = Instant::now();
    let st = srv
        .wait_for(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM:\n{}", srv.stderr()));
    assert!(st.success(), "exit after SIGTERM: {st}\n{}", srv.stderr());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(http_get(port, "/health").is_none(), "the port is closed after shutdown");
}

#[test]
fn serve_is_the_default_command() {
    let sb = Sandbox::new();
    let port = free_port();
    let ps = port.to_string();
    let env = [("MICROVIBE__SERVER__HOST", "127.0.0.1"), ("MICROVIBE__SERVER__PORT", ps.as_str())];
    let mut srv = sb.spawn(&[], &env);
    wait_healthy(&mut srv, port);
    assert!(sb.file("data/microvibe.db").exists(), "the default SQLite path is under the current directory");
    sigterm(srv.pid());
    let st = srv.wait_for(Duration::from_secs(5)).unwrap_or_else(|| panic!("no exit after SIGTERM:\n{}", srv.stderr()));
    assert!(st.success(), "{st}");
}

/// A client stalled mid-request (partial headers, partial body) must not keep the
/// server alive after SIGTERM: it drains for at most `SHUTDOWN_GRACE`, then exits 0.
#[test]
fn sigterm_is_not_held_up_by_a_stalled_client() {
    let sb = Sandbox::new();
    let port = free_port();
    let ps = port.to_string();
    let env = [("MICROVIBE__SERVER__HOST", "127.0.0.1"), ("MICROVIBE__SERVER__PORT", ps.as_str())];
    let mut srv = sb.spawn(&["serve"], &env);
    wait_healthy(&mut srv, port);
    let mut partial_body = TcpStream::connect(("127.0.0.1", port)).unwrap();
    partial_body
        .write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let mut partial_headers = TcpStream::connect(("127.0.0.1", port)).unwrap();
    partial_headers.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));

    sigterm(srv.pid());
    let limit = control::server::SHUTDOWN_GRACE + Duration::from_secs(5);
    let st = srv
        .wait_for(limit)
        .unwrap_or_else(|| panic!("still running {limit:?} after SIGTERM with stalled clients:\n{}", srv.stderr()));
    assert!(st.success(), "{st}\n{}", srv.stderr());
    drop((partial_body, partial_headers));
}

/// One HTTP/1.1 request with an optional bearer token and JSON body; (status, body).
fn http_request(port: u16, method: &str, path: &str, token: Option<&str>, json: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = json.unwrap_or("");
    if json.is_some() {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    write!(s, "{head}\r\n{body}").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{buf}"));
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Registers `name` and logs in; returns (user id, token).
fn register_and_login(port: u16, name: &str) -> (i64, String) {
    let creds = format!(r#"{{"username":"{name}","password":"password123"}}"#);
    let (st, body) = http_request(port, "POST", "/api/v1/auth/register", None, Some(&creds));
    assert_eq!(st, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["data"]["id"].as_i64().unwrap();
    let (st, body) = http_request(port, "POST", "/api/v1/auth/login", None, Some(&creds));
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    (id, v["data"]["token"].as_str().unwrap().to_owned())
}

/// An HS256 token for user `id` with `secret` and the given claims on top of valid ones.
fn forge(secret: &str, id: i64, extra: serde_json::Value) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut claims = serde_json::json!({
        "sub": id.to_string(), "username": "alice", "iat": now, "exp": now + 3600, "jti": unique("jti"),
        "iss": "microvibe", "aud": "microvibe-api",
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn stop(srv: &mut Running) {
    sigterm(srv.pid());
    let st =
        srv.wait_for(Duration::from_secs(10)).unwrap_or_else(|| panic!("no exit after SIGTERM:\n{}", srv.stderr()));
    assert!(st.success(), "{st}\n{}", srv.stderr());
}

/// The shipped config as a new user runs it (debug mode, the public secret): a token
/// signed with that secret is refused, the server signs with a secret it generated
/// into data/jwt_secret (0600) and says so, and a restart keeps it (logins survive).
#[test]
fn debug_mode_never_accepts_the_shipped_jwt_secret() {
    use control::config::DEFAULT_JWT_SECRET;
    let sb = Sandbox::new();
    sb.write("configs/microvibe.toml", include_str!("../../configs/microvibe.toml"));
    let port = free_port();
    let ps = port.to_string();
    let env = [("MICROVIBE__SERVER__HOST", "127.0.0.1"), ("MICROVIBE__SERVER__PORT", ps.as_str())];
    let mut srv = sb.spawn(&["serve"], &env);
    wait_healthy(&mut srv, port);
    let log = srv.stderr();
    assert!(log.contains("config loaded") && log.contains("configs/microvibe.toml"), "{log}");
    assert!(log.contains("database: SQLite") && log.contains("data/microvibe.db"), "{log}");
    assert!(log.contains("DEBUG MODE") && log.contains("data/jwt_secret"), "no loud warning:\n{log}");

    let file = sb.file("data/jwt_secret");
    let secret = std::fs::read_to_string(&file).expect("data/jwt_secret written").trim().to_owned();
    assert!(secret.len() >= 32, "{} characters", secret.len());
    assert_ne!(secret, DEFAULT_JWT_SECRET);
    assert!(!log.contains(&secret), "the generated secret was logged");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "data/jwt_secret mode {mode:o}");
    }

    let (id, token) = register_and_login(port, "alice");
    let me = |t: &str| http_request(port, "GET", "/api/v1/users/me", Some(t), None);
    assert_eq!(me(&token).0, 200, "{:?}", me(&token));
    // Signed with the shipped secret: refused, with or without iss/aud.
    for extra in [serde_json::json!({}), serde_json::json!({"iss": null, "aud": null})] {
        let forged = forge(DEFAULT_JWT_SECRET, id, extra);
        let (st, body) = me(&forged);
        assert_eq!(st, 401, "a token signed with the public secret was accepted: {body}");
    }
    // Signed with the generated secret: accepted (it is the one in use).
    assert_eq!(me(&forge(&secret, id, serde_json::json!({}))).0, 200);
    stop(&mut srv);

    // Restart, now without the file: the built-in defaults are the shipped file's
    // values, so the same data directory and secret; the login token still works.
    std::fs::remove_file(sb.file("configs/microvibe.toml")).unwrap();
    let mut srv = sb.spawn(&["serve"], &env);
    wait_healthy(&mut srv, port);
    let log = srv.stderr();
    assert!(log.contains("built-in defaults"), "{log}");
    assert!(log.contains("DEBUG MODE") && log.contains("generated on first start"), "{log}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), secret, "the secret was kept");
    let (st, body) = me(&token);
    assert_eq!(st, 200, "the token from before the restart: {body}");
    assert_eq!(me(&forge(DEFAULT_JWT_SECRET, id, serde_json::json!({}))).0, 401);
    stop(&mut srv);

    // A damaged secret file is a clear error, not a weak key.
    std::fs::write(&file, "short\n").unwrap();
    let out = sb.run(&["serve"], &env);
    let last = out.failed().last_error();
    assert!(last.contains("jwt_secret") && last.contains("delete it"), "{last}");
}

/// Tokens carry this deployment's `jwt.issuer` and the API's audience: a token signed
/// with the very same secret but for another issuer or audience is refused.
#[test]
fn tokens_are_bound_to_the_issuer_and_audience() {
    let sb = Sandbox::new();
    let port = free_port();
    let ps = port.to_string();
    let secret = "a-secret-shared-with-another-deployment-0123456789";
    let env = [
        ("MICROVIBE__SERVER__HOST", "127.0.0.1"),
        ("MICROVIBE__SERVER__PORT", ps.as_str()),
        ("JWT_SECRET", secret),
        ("MICROVIBE__JWT__ISSUER", "live.example.com"),
    ];
    let mut srv = sb.spawn(&["serve"], &env);
    wait_healthy(&mut srv, port);
    assert!(!srv.stderr().contains("DEBUG MODE"), "a configured secret is used as it is");
    assert!(!sb.file("data/jwt_secret").exists());
    let (id, token) = register_and_login(port, "bob");
    let me = |t: &str| http_request(port, "GET", "/api/v1/users/me", Some(t), None);
    assert_eq!(me(&token).0, 200);
    let ok = forge(secret, id, serde_json::json!({"iss": "live.example.com"}));
    assert_eq!(me(&ok).0, 200, "right secret, issuer and audience");
    for (what, extra) in [
        ("another issuer", serde_json::json!({"iss": "other.example.com"})),
        ("the default issuer", serde_json::json!({"iss": "microvibe"})),
        ("another audience", serde_json::json!({"iss": "live.example.com", "aud": "something-else"})),
        ("no issuer", serde_json::json!({"iss": null})),
        ("no audience", serde_json::json!({"iss": "live.example.com", "aud": null})),
    ] {
        let (st, body) = me(&forge(secret, id, extra));
        assert_eq!(st, 401, "{what}: {body}");
    }
    stop(&mut srv);
}
