//! The HTTP API as a client sees it, on both backends.

mod common;
use common::{Backend, start, start_with};
use serde_json::{Value, json};

async fn health_and_openapi(b: Backend) {
    let s = start(b).await;
    let r = s.req("GET", "/health", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["database"], "healthy");
    assert_eq!(r.data()["redis"], "healthy");
    let (db, cache) = match b {
        Backend::Embedded => ("sqlite", "embedded"),
        Backend::Production => ("postgres", "redis"),
    };
    assert_eq!(r.data()["database_backend"], db);
    assert_eq!(r.data()["redis_backend"], cache);

    // The OpenAPI document lists exactly the routes, and each of its operations is routed.
    let doc =
        s.client.get(format!("{}/api/v1/openapi.json", s.base)).send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut listed = vec![];
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for m in ops.as_object().unwrap().keys() {
            listed.push((m.to_uppercase(), path.clone()));
        }
    }
    listed.sort();
    let mut routes: Vec<(String, String)> =
        control::routes::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    routes.sort();
    assert_eq!(listed, routes);
    for (m, p) in &routes {
        let path =
            p.replace("{id}", "999999").replace("{stream_name}", "nostream").replace("{session_id}", "nosession");
        let r = s.raw(m, &path, "application/json", b"{}".to_vec(), None).await;
        assert_ne!(r.body["message"], control::routes::NO_ROUTE, "{m} {p} is not routed");
        assert_ne!(r.status, 405, "{m} {p}");
    }
    // And an unknown path is the fallback 404 in the envelope.
    let r = s.req("GET", "/api/v1/nope", None, None).await;
    assert_eq!((r.status, r.body["message"].as_str()), (404, Some(control::routes::NO_ROUTE)));
}

async fn register_login_me_logout(b: Backend) {
    let s = start(b).await;
    let name = common::unique("al");
    let r = s
        .req(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(json!({"username": name, "password": "password123", "nickname": "Al"})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.data()["nickname"], "Al");
    assert!(r.data().get("password_hash").is_none(), "hash must never leave the server");
    // Duplicate.
    let r =
        s.req("POST", "/api/v1/auth/register", None, Some(json!({"username": name, "password": "password123"}))).await;
    assert_eq!(r.status, 409);
    // Usernames are one whatever their case, for uniqueness and for login.
    let upper = name.to_uppercase();
    let r =
        s.req("POST", "/api/v1/auth/register", None, Some(json!({"username": upper, "password": "password123"}))).await;
    assert_eq!(r.status, 409, "{upper} after {name}");
    let r =
        s.req("POST", "/api/v1/auth/login", None, Some(json!({"username": upper, "password": "password123"}))).await;
    assert_eq!((r.status, r.data()["user"]["username"].as_str()), (200, Some(name.as_str())), "login as {upper}");
    // Bad fields, each named.
    for (body, field) in [
        (json!({"username": "ab", "password": "password123"}), "username"),
        (json!({"username": "bad name!", "password": "password123"}), "username"),
        (json!({"username": "okname", "password": "short"}), "password"),
        (json!({"username": "okname"}), "password"),
        (json!({"username": 5, "password": "password123"}), "username"),
    ] {
        let r = s.req("POST", "/api/v1/auth/register", None, Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}");
        assert!(r.body["message"].as_str().unwrap().contains(field), "{body} -> {}", r.body["message"]);
    }
    // Wrong password, unknown user.
    let r = s.req("POST", "/api/v1/auth/login", None, Some(json!({"username": name, "password": "wrongwrong"}))).await;
    assert_eq!(r.status, 401);
    let r = s
        .req("POST", "/api/v1/auth/login", None, Some(json!({"username": "nobody_here", "password": "wrongwrong"})))
        .await;
    assert_eq!(r.status, 401);
    let r = s.req("POST", "/api/v1/auth/login", None, Some(json!({"username": name, "password": "password123"}))).await;
    assert_eq!(r.status, 200);
    let token = r.data()["token"].as_str().unwrap().to_owned();
    assert!(r.data()["expires_at"].is_string());
    assert_eq!(r.data()["user"]["username"], name.as_str());

    let r = s.req("GET", "/api/v1/users/me", Some(&token), None).await;
    assert_eq!((r.status, r.data()["username"].as_str()), (200, Some(name.as_str())));
    for bad in ["", "garbage", "a.b.c"] {
        let r = s.req("GET", "/api/v1/users/me", Some(bad), None).await;
        assert_eq!(r.status, 401, "{bad:?}");
    }
    let r = s.req("GET", "/api/v1/users/me", None, None).await;
    assert_eq!(r.status, 401);

    let r = s.req("POST", "/api/v1/auth/logout", Some(&token), None).await;
    assert_eq!(r.status, 200);
    let r = s.req("GET", "/api/v1/users/me", Some(&token), None).await;
    assert_eq!(r.status, 401, "a revoked token must not work");
    assert!(r.body["message"].as_str().unwrap().contains("revoked"));
}

async fn login_rate_limit(b: Backend) {
    let s = start_with(b, |c| {
        c.auth.login_limit_per_user = 3;
        c.auth.login_limit_per_ip = 8;
    })
    .await;
    let (_, _) = s.user("rl").await; // one successful login from this IP
    let victim = common::unique("vi");
    s.req("POST", "/api/v1/auth/register", None, Some(json!({"username": victim, "password": "password123"}))).await;
    let mut statuses = vec![];
    for _ in 0..4 {
        let r = s
            .req("POST", "/api/v1/auth/login", None, Some(json!({"username": victim, "password": "wrongwrong"})))
            .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, vec![401, 401, 401, 429], "per-username limit");
    // Even the right password is refused while limited.
    let r =
        s.req("POST", "/api/v1/auth/login", None, Some(json!({"username": victim, "password": "password123"}))).await;
    assert_eq!(r.status, 429);
    // Per-IP: 1 + 5 attempts so far; the 9th from this address is refused.
    let mut last = 0;
    for _ in 0..3 {
        last = s
            .req("POST", "/api/v1/auth/login", None, Some(json!({"username": "someone_else", "password": "x1234567"})))
            .await
            .status;
    }
    assert_eq!(last, 429, "per-IP limit");
}

async fn rooms_lifecycle(b: Backend) {
    let s = start(b).await;
    let (alice, alice_id) = s.user("ra").await;
    let (bob, _) = s.user("rb").await;
    let room = s.room(&alice).await;
    let id = room["id"].as_i64().unwrap();
    let name = room["stream_name"].as_str().unwrap().to_owned();
    let key = room["stream_key"].as_str().unwrap().to_owned();
    assert_eq!(room["owner_id"], alice_id);
    assert_eq!(room["status"], "idle");
    assert!(key.len() >= 32, "key has >= 128 bits");
    assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "URL-safe key");
    assert_eq!(room["push"]["stream_key"], key.as_str());
    assert!(room["push"]["whip_url"].as_str().unwrap().ends_with(&name));
    for (k, v) in room["play"].as_object().unwrap() {
        let v = v.as_str().unwrap();
        assert!(v.contains(&name), "{k}: {v}");
        assert!(!v.contains(&key), "play URL {k} leaks the key");
    }

    // Public views never show the key.
    let r = s.req("GET", &format!("/api/v1/live/{id}"), None, None).await;
    assert_eq!(r.status, 200);
    assert!(r.data().get("stream_key").is_none() && r.data().get("push").is_none());
    assert!(!r.body.to_string().contains(&key));
    let r = s.req("GET", &format!("/api/v1/live/{id}"), Some(&bob), None).await;
    assert!(!r.body.to_string().contains(&key), "another user must not see the key");
    let r = s.req("GET", &format!("/api/v1/live/{id}"), Some(&alice), None).await;
    assert_eq!(r.data()["stream_key"], key.as_str());
    let r = s.req("GET", "/api/v1/live/list", None, None).await;
    assert!(r.data()["total"].as_i64().unwrap() >= 1);
    assert!(!r.body.to_string().contains(&key));
    let r = s.req("GET", "/api/v1/live/my", Some(&alice), None).await;
    assert_eq!(r.data()["total"], 1);
    assert_eq!(r.data()["items"][0]["stream_key"], key.as_str());
    let r = s.req("GET", "/api/v1/live/my", Some(&bob), None).await;
    assert_eq!(r.data()["total"], 0);

    // Only the owner may change it.
    for (m, p, body) in [
        ("PATCH", format!("/api/v1/live/{id}"), Some(json!({"title": "x"}))),
        ("POST", format!("/api/v1/live/{id}/end"), None),
        ("POST", format!("/api/v1/live/{id}/stream-key/reset"), None),
        ("DELETE", format!("/api/v1/live/{id}"), None),
    ] {
        assert_eq!(s.req(m, &p, Some(&bob), body.clone()).await.status, 403, "{m} {p}");
        assert_eq!(s.req(m, &p, None, body).await.status, 401, "{m} {p} without a token");
    }
    let r = s
        .req(
            "PATCH",
            &format!("/api/v1/live/{id}"),
            Some(&alice),
            Some(json!({"title": "New title", "description": "d"})),
        )
        .await;
    assert_eq!((r.status, r.data()["title"].as_str()), (200, Some("New title")));
    assert_eq!(r.data()["description"], "d");
    let r = s.req("PATCH", &format!("/api/v1/live/{id}"), Some(&alice), Some(json!({"title": ""}))).await;
    assert_eq!(r.status, 400);
    assert!(r.body["message"].as_str().unwrap().contains("title"));
    let r = s.req("PATCH", &format!("/api/v1/live/{id}"), Some(&alice), Some(json!({"title": "x".repeat(201)}))).await;
    assert_eq!(r.status, 400);

    // Key reset: the old key stops working.
    let r = s.req("POST", &format!("/api/v1/live/{id}/stream-key/reset"), Some(&alice), None).await;
    let key2 = r.data()["stream_key"].as_str().unwrap().to_owned();
    assert_ne!(key, key2);
    assert_eq!(
        s.raw(
            "POST",
            "/api/v1/live/auth/publish",
            "application/x-www-form-urlencoded",
            format!("name={key}&app=live").into_bytes(),
            None
        )
        .await
        .status,
        403
    );

    // Publish callback (nginx-rtmp contract): allowed, room live, publish_done ends it.
    let r = s
        .raw(
            "POST",
            "/api/v1/live/auth/publish",
            "application/x-www-form-urlencoded",
            format!("call=publish&name={key2}&app=live&addr=127.0.0.1").into_bytes(),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["stream_name"], name.as_str());
    let r = s.req("GET", &format!("/api/v1/live/{id}"), None, None).await;
    assert_eq!(r.data()["status"], "live");
    assert!(r.data()["started_at"].is_string());
    let r = s.req("GET", "/api/v1/live/list?status=live", None, None).await;
    assert!(r.data()["items"].as_array().unwrap().iter().any(|x| x["id"] == id));
    // Wrong app.
    let r = s
        .raw(
            "POST",
            "/api/v1/live/auth/publish",
            "application/x-www-form-urlencoded",
            format!("name={key2}&app=other").into_bytes(),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    let r = s
        .raw(
            "POST",
            "/api/v1/live/auth/publish_done",
            "application/x-www-form-urlencoded",
            format!("call=publish_done&name={key2}&app=live").into_bytes(),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = s.req("GET", &format!("/api/v1/live/{id}"), None, None).await;
    assert_eq!(r.data()["status"], "idle", "the broadcast ended; the room waits for the next");
    let first_start = r.data()["started_at"].clone();
    assert!(r.data()["ended_at"].is_string());
    // The room is a channel: the same key publishes again, a second broadcast.
    let r = s
        .raw(
            "POST",
            "/api/v1/live/auth/publish",
            "application/x-www-form-urlencoded",
            format!("name={key2}&app=live").into_bytes(),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = s.req("GET", &format!("/api/v1/live/{id}"), None, None).await;
    assert_eq!(r.data()["status"], "live");
    assert_ne!(r.data()["started_at"], first_start, "a new broadcast, a new start");
    assert!(r.data()["ended_at"].is_null());
    // The owner ends it: idle again, still usable.
    let r = s.req("POST", &format!("/api/v1/live/{id}/end"), Some(&alice), None).await;
    assert_eq!((r.status, r.data()["status"].as_str()), (200, Some("idle")));
    // Ending an idle room is a conflict.
    assert_eq!(s.req("POST", &format!("/api/v1/live/{id}/end"), Some(&alice), None).await.status, 409);
    let r = s.req("GET", &format!("/api/v1/live/{id}/broadcasts"), None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["total"], 2);
    let items = r.data()["items"].as_array().unwrap().clone();
    assert_eq!(items[0]["end_reason"], "ended_by_owner");
    assert_eq!(items[1]["end_reason"], "publish_done");
    assert!(items.iter().all(|b| b["live"] == false && b["duration_secs"].as_f64().unwrap() >= 0.0));
    assert_eq!(s.req("GET", "/api/v1/live/999999/broadcasts", None, None).await.status, 404);
    assert_eq!(s.req("GET", "/api/v1/live/x/broadcasts", None, None).await.status, 400);

    // Delete.
    assert_eq!(s.req("DELETE", &format!("/api/v1/live/{id}"), Some(&alice), None).await.status, 200);
    assert_eq!(s.req("GET", &format!("/api/v1/live/{id}"), None, None).await.status, 404);
    assert_eq!(s.req("DELETE", &format!("/api/v1/live/{id}"), Some(&alice), None).await.status, 404);
}

async fn end_by_owner_and_paging(b: Backend) {
    let s = start(b).await;
    let (t, _) = s.user("pg").await;
    let mut ids = vec![];
    for _ in 0..5 {
        ids.push(s.room(&t).await["id"].as_i64().unwrap());
    }
    let r = s.req("GET", "/api/v1/live/my?page=1&page_size=2", Some(&t), None).await;
    assert_eq!(r.data()["total"], 5);
    let page1: Vec<i64> = r.data()["items"].as_array().unwrap().iter().map(|x| x["id"].as_i64().unwrap()).collect();
    assert_eq!(page1, vec![ids[4], ids[3]], "newest first");
    let r = s.req("GET", "/api/v1/live/my?page=3&page_size=2", Some(&t), None).await;
    assert_eq!(r.data()["items"].as_array().unwrap().len(), 1);
    for q in ["page=0", "page_size=101", "page=x", "status=weird"] {
        let r = s.req("GET", &format!("/api/v1/live/list?{q}"), None, None).await;
        assert_eq!(r.status, 400, "{q}");
        let field = q.split('=').next().unwrap();
        assert!(r.body["message"].as_str().unwrap().contains(field), "{q}: {}", r.body["message"]);
    }
    // Ending a room that is not live: 409; `ended` is no room status.
    let r = s.req("POST", &format!("/api/v1/live/{}/end", ids[0]), Some(&t), None).await;
    assert_eq!(r.status, 409);
    assert_eq!(s.req("GET", "/api/v1/live/list?status=ended", None, None).await.status, 400);
}

async fn bad_input(b: Backend) {
    let s = start_with(b, |c| c.server.body_limit_bytes = 4096).await;
    let (t, _) = s.user("bi").await;
    // A stream name no room could have (a NUL, a space) never reaches the store: 404 on
    // both backends (PostgreSQL refuses a NUL in a query with an error, a 500 before).
    for name in ["a%00b", "a%20b", "..", "x%0Ay"] {
        let r = s.raw("POST", &format!("/whep/{name}"), "application/sdp", b"v=0\r\n".to_vec(), None).await;
        assert_eq!(r.status, 404, "WHEP {name}: {:?}", r.body);
        let r = s.raw("POST", &format!("/whip/{name}"), "application/sdp", b"v=0\r\n".to_vec(), Some("sk_x")).await;
        assert_eq!(r.status, 404, "WHIP {name}: {:?}", r.body);
    }
    // Not JSON, wrong content type, too large, unknown field, wrong enum.
    let r = s.raw("POST", "/api/v1/live/create", "application/json", b"{\"title\":".to_vec(), Some(&t)).await;
    assert_eq!(r.status, 400);
    assert!(r.body["message"].as_str().unwrap().contains("JSON"));
    let r = s.raw("POST", "/api/v1/live/create", "text/plain", b"hello".to_vec(), Some(&t)).await;
    assert_eq!(r.status, 415);
    let big = format!("{{\"title\":\"{}\"}}", "x".repeat(10_000));
    let r = s.raw("POST", "/api/v1/live/create", "application/json", big.into_bytes(), Some(&t)).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.body["code"], 413);
    let r = s.req("POST", "/api/v1/live/create", Some(&t), Some(json!({"title": "a", "push_protocol": "srt"}))).await;
    assert_eq!(r.status, 400);
    assert!(r.body["message"].as_str().unwrap().contains("push_protocol"));
    let r = s.req("POST", "/api/v1/live/create", Some(&t), Some(json!({"title": "a", "bogus": 1}))).await;
    assert_eq!(r.status, 400);
    assert!(r.body["message"].as_str().unwrap().contains("bogus"));
    let r = s.req("POST", "/api/v1/live/create", Some(&t), Some(json!({"push_protocol": "rtmp"}))).await;
    assert_eq!(r.status, 400);
    assert!(r.body["message"].as_str().unwrap().contains("title"));
    for id in ["0", "-1", "abc", "99999999999999999999"] {
        assert_eq!(s.req("GET", &format!("/api/v1/live/{id}"), None, None).await.status, 400, "{id}");
    }
    assert_eq!(s.req("GET", "/api/v1/live/424242", None, None).await.status, 404);
    // Callback without a key names the field; garbage bodies are 400s or 403s, never 500.
    let r = s
        .raw("POST", "/api/v1/live/auth/publish", "application/x-www-form-urlencoded", b"app=live".to_vec(), None)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["message"].as_str().unwrap().contains("name"));
    for body in [&b"\xff\xfe\x00"[..], b"name=%zz", b"name=&name=", b"===&&&"] {
        let r =
            s.raw("POST", "/api/v1/live/auth/publish", "application/x-www-form-urlencoded", body.to_vec(), None).await;
        assert!(r.status == 400 || r.status == 403, "{body:?}: {}", r.status);
    }
    // A forged token with alg none.
    use base64::Engine as _;
    let b64 = |x: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x);
    let forged = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(r#"{"sub":"1","username":"x","iat":0,"exp":99999999999,"jti":"j"}"#)
    );
    assert_eq!(s.req("GET", "/api/v1/users/me", Some(&forged), None).await.status, 401);
}

async fn metrics_text(b: Backend) {
    let s = start(b).await;
    let (t, _) = s.user("mt").await;
    s.room(&t).await;
    let text = s.client.get(format!("{}/metrics", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(
        text.contains("microvibe_http_requests_total{route=\"/api/v1/live/create\",method=\"POST\",status=\"201\"} 1"),
        "{text}"
    );
    assert!(text.contains("microvibe_http_request_duration_seconds_bucket"));
    assert!(text.contains("microvibe_rooms{status=\"idle\"}"));
    assert!(text.contains("microvibe_backend_up{backend=\"database\""));
    assert!(text.trim_end().ends_with("# EOF"));
}

/// A client whose connections come from `ip` (127.0.0.0/8 is all local).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from(ip)).build().unwrap()
}

async fn post_from(c: &reqwest::Client, url: String, body: Value) -> (u16, Option<String>, Value) {
    let r = c.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.json().await.unwrap())
}

/// Registrations are limited per client address (through the cache, so the limit is
/// shared by every node on Redis); other addresses are not affected.
async fn register_rate_limit(b: Backend) {
    let s = start_with(b, |c| c.auth.register_limit_per_ip = 2).await;
    let url = format!("{}/api/v1/auth/register", s.base);
    let tag = common::unique("rg");
    let from = |ip| client_from(ip);
    let (a, b2) = (from([127, 0, 0, 1]), from([127, 0, 0, 2]));
    let mut got = vec![];
    for i in 0..3 {
        let (st, retry, body) =
            post_from(&a, url.clone(), json!({"username": format!("{}{i}", &tag[..16]), "password": "password123"}))
                .await;
        got.push(st);
        if st == 429 {
            assert_eq!(body["code"], 429, "{body}");
            assert!(body["message"].as_str().unwrap().contains("registrations"), "{body}");
            assert_eq!(retry.as_deref(), Some("3600"), "Retry-After");
        }
    }
    assert_eq!(got, vec![201, 201, 429]);
    let (st, _, body) =
        post_from(&b2, url.clone(), json!({"username": format!("{}x", &tag[..16]), "password": "password123"})).await;
    assert_eq!(st, 201, "another address still registers: {body}");
}

/// Control characters (NUL, ESC, DEL, C1 ...) in text fields: 400 naming the field on
/// both backends (PostgreSQL used to answer 500 for NUL, SQLite stored it). A room's
/// description may hold line breaks and tabs.
async fn control_characters(b: Backend) {
    let s = start(b).await;
    let (t, _) = s.user("cc").await;
    let name = common::unique("cc");
    let name = name.as_str();
    let check = |r: common::Resp, field: &str| {
        assert_eq!(r.status, 400, "{field}: {:?}", r.body);
        let m = r.body["message"].as_str().unwrap();
        assert!(m.starts_with(&format!("{field}:")), "{field}: {m}");
    };
    for bad in ["a\u{0}b", "a\u{1b}[31mred", "a\u{7f}", "a\u{85}b", "two\nlines"] {
        let r = s
            .req(
                "POST",
                "/api/v1/auth/register",
                None,
                Some(json!({"username": name, "password": "password123", "nickname": bad})),
            )
            .await;
        check(r, "nickname");
        let r = s.req("POST", "/api/v1/live/create", Some(&t), Some(json!({"title": bad}))).await;
        check(r, "title");
        let r = s
            .req(
                "POST",
                "/api/v1/live/create",
                Some(&t),
                Some(json!({"title": "ok", "description": format!("{bad}\u{0}")})),
            )
            .await;
        check(r, "description");
        let r = s
            .req(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"username": format!("{name}{bad}"), "password": "password123"})),
            )
            .await;
        check(r, "username");
    }
    let r = s
        .req("POST", "/api/v1/auth/register", None, Some(json!({"username": "ab\u{0}c", "password": "password123"})))
        .await;
    check(r, "username");
    // Line breaks and tabs in a description are fine, and come back as sent.
    let d = "line one\r\nline two\n\tindented";
    let r = s.req("POST", "/api/v1/live/create", Some(&t), Some(json!({"title": "ok", "description": d}))).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.data()["description"], d);
    let id = r.data()["id"].as_i64().unwrap();
    let r = s.req("PATCH", &format!("/api/v1/live/{id}"), Some(&t), Some(json!({"title": "x\u{0}"}))).await;
    check(r, "title");
    let r = s.req("PATCH", &format!("/api/v1/live/{id}"), Some(&t), Some(json!({"description": "x\u{0}"}))).await;
    check(r, "description");
    let r = s.req("GET", &format!("/api/v1/live/{id}"), Some(&t), None).await;
    assert_eq!((r.data()["title"].as_str(), r.data()["description"].as_str()), (Some("ok"), Some(d)));
}

/// Failed logins from other addresses (bound to 127.0.0.2-5 on loopback) do not lock
/// the owner out of the address they log in from (127.0.0.1); an X-Forwarded-For
/// header claiming the owner's address changes nothing (it is not trusted).
async fn login_failures_elsewhere_spare_the_owner(b: Backend) {
    let s = start_with(b, |c| {
        c.auth.login_limit_per_user = 3;
        c.auth.login_limit_per_account = 6;
    })
    .await;
    let url = format!("{}/api/v1/auth/login", s.base);
    let name = common::unique("ow");
    let owner = client_from([127, 0, 0, 1]);
    let good = json!({"username": name, "password": "password123"});
    let bad = json!({"username": name, "password": "not-the-password"});
    let (st, ..) = post_from(&owner, format!("{}/api/v1/auth/register", s.base), good.clone()).await;
    assert_eq!(st, 201);
    let (st, ..) = post_from(&owner, url.clone(), good.clone()).await;
    assert_eq!(st, 200, "the owner logs in once from 127.0.0.1");

    // The attacker at 127.0.0.2, claiming to be 127.0.0.1.
    let attacker = client_from([127, 0, 0, 2]);
    let mut got = vec![];
    for _ in 0..5 {
        let r = attacker.post(&url).header("x-forwarded-for", "127.0.0.1").json(&bad).send().await.unwrap();
        got.push(r.status().as_u16());
    }
    assert_eq!(got, vec![401, 401, 401, 429, 429], "the attacker's address is limited");
    let (st, _, body) = post_from(&owner, url.clone(), good.clone()).await;
    assert_eq!(st, 200, "the owner still logs in from 127.0.0.1: {body}");
    // The right password from the attacker's address stays refused while it is limited.
    let (st, retry, _) = post_from(&attacker, url.clone(), good.clone()).await;
    assert_eq!((st, retry.is_some()), (429, true));

    // A distributed attack reaches the per-account ceiling (6 failures from 127.0.0.2-3):
    // new addresses are refused, the owner's known address is not.
    for _ in 0..3 {
        post_from(&client_from([127, 0, 0, 3]), url.clone(), bad.clone()).await;
    }
    let (st, _, body) = post_from(&client_from([127, 0, 0, 4]), url.clone(), good.clone()).await;
    assert_eq!(st, 429, "over the account ceiling, a new address is refused: {body}");
    let (st, _, body) = post_from(&owner, url.clone(), good.clone()).await;
    assert_eq!(st, 200, "over the account ceiling, the owner's known address still logs in: {body}");
}

both_backends!(
    login_failures_elsewhere_spare_the_owner,
    control_characters,
    health_and_openapi,
    register_login_me_logout,
    register_rate_limit,
    login_rate_limit,
    rooms_lifecycle,
    end_by_owner_and_paging,
    bad_input,
    metrics_text
);

/// With PostgreSQL/Redis configured but unreachable, /health answers 503 naming it.
#[tokio::test]
async fn health_reports_a_dead_cache() {
    let s = start_with(Backend::Embedded, |_| {}).await;
    let mut cfg = (*s.state.cfg).clone();
    cfg.redis.host = "127.0.0.1".into();
    cfg.redis.port = 1; // nothing listens there
    let cache = control::app::open_cache(&cfg).unwrap();
    let state = control::app::AppState::new(cfg, s.state.store.clone(), cache);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            control::routes::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let r = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 503);
    assert_eq!(v["data"]["redis"], "unhealthy");
    assert_eq!(v["data"]["database"], "healthy");
    // The API fails with 503 too, not 500.
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&json!({"username": "someone", "password": "whatever1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}
