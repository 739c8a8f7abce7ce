//! Test harness: the real router on a real socket, over SQLite + in-process state or
//! PostgreSQL + Redis (each test in its own schema and key prefix). PostgreSQL and
//! Redis must be reachable at 127.0.0.1:5432 / :6379; tests fail loudly if not.
#![allow(dead_code)]

use control::app::{self, AppState};
use control::config::Config;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Embedded,
    Production,
}

pub fn unique(tag: &str) -> String {
    use rand::RngCore;
    format!("{tag}_{:016x}", rand::rng().next_u64())
}

/// A config for `backend`, isolated from every other test.
pub fn test_config(backend: Backend, dir: &std::path::Path) -> Config {
    let mut cfg = Config::default();
    cfg.jwt.secret = "test-secret-test-secret-test-secret-0123".into();
    match backend {
        Backend::Embedded => {
            cfg.database.sqlite_path = dir.join("test.db").to_string_lossy().into_owned();
        }
        Backend::Production => {
            cfg.database.host = "127.0.0.1".into();
            cfg.database.dbname = "test".into();
            cfg.database.user = std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into());
            cfg.database.schema = unique("t");
            cfg.database.max_open_conns = 4;
            cfg.redis.host = "127.0.0.1".into();
            cfg.redis.key_prefix = format!("{}:", unique("test"));
        }
    }
    cfg
}

pub struct Server {
    pub base: String,
    pub state: AppState,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(backend: Backend) -> Server {
    start_with(backend, |_| {}).await
}

pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(backend, dir.path());
    tweak(&mut cfg);
    let store = app::open_store(&cfg).await.unwrap_or_else(|e| panic!("{backend:?} store unreachable: {e}"));
    store.migrate().await.unwrap_or_else(|e| panic!("{backend:?} migrations failed: {e}"));
    let cache = app::open_cache(&cfg).unwrap();
    cache.ping().await.unwrap_or_else(|e| panic!("{backend:?} cache unreachable: {e}"));
    let state = AppState::new(cfg, store, cache);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let router = control::routes::router(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    Server { base: format!("http://{addr}"), state, client: reqwest::Client::new(), _dir: dir, task }
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Resp {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
    /// Asserts the envelope: code 0 on 2xx, else code == status and a message.
    pub fn check_envelope(&self) {
        let code = self.body["code"].as_i64().unwrap_or(-1);
        if (200..300).contains(&self.status) {
            assert_eq!(code, 0, "{:?}", self.body);
            assert_eq!(self.body["message"], "success");
        } else {
            assert_eq!(code, self.status as i64, "{:?}", self.body);
            assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{:?}", self.body);
        }
    }
}

impl Server {
    pub async fn req(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.client.request(m, format!("{}{}", self.base, path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let r = Resp { status, body };
        if r.body.is_object() {
            r.check_envelope();
        }
        r
    }

    pub async fn raw(&self, method: &str, path: &str, ctype: &str, body: Vec<u8>, token: Option<&str>) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.client.request(m, format!("{}{}", self.base, path)).header("content-type", ctype).body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        Resp { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    }

    /// Registers and logs in a fresh user; returns (token, user id).
    pub async fn user(&self, name: &str) -> (String, i64) {
        let name = unique(name);
        let name = &name[..name.len().min(30)];
        let r = self
            .req(
                "POST",
                "/api/v1/auth/register",
                None,
                Some(serde_json::json!({"username": name, "password": "password123"})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.data()["id"].as_i64().unwrap();
        let r = self
            .req(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(serde_json::json!({"username": name, "password": "password123"})),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        (r.data()["token"].as_str().unwrap().to_owned(), id)
    }

    pub async fn room(&self, token: &str) -> Value {
        let r = self
            .req(
                "POST",
                "/api/v1/live/create",
                Some(token),
                Some(serde_json::json!({"title": "Test room", "push_protocol": "rtmp"})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.data().clone()
    }
}

pub fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}

/// Runs an async scenario against both backends as two tests.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test] async fn $name() { super::$name(super::common::Backend::Embedded).await })*
        }
        mod production {
            $(#[tokio::test] async fn $name() { super::$name(super::common::Backend::Production).await })*
        }
    };
}
