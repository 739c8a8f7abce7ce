//! Outbound hooks end to end: the real binary, ffmpeg publishing, ffprobe playing,
//! and a receiver in the test (axum on 127.0.0.1) recording every hook request.
//! nginx-rtmp-style callbacks decide publishes and plays (deny, rename, allow) and
//! report their ends; webhooks arrive signed, in order per room, and retried.

mod media;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use media::{Server, ffprobe};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

impl Got {
    fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<Got>>,
    /// Statuses (and Retry-After seconds) to answer next, per path (then 200).
    script: Mutex<HashMap<String, VecDeque<(u16, Option<u64>)>>>,
    /// on_publish: names answered 403, and names redirected to a key.
    deny: Mutex<Vec<String>>,
    rename: Mutex<HashMap<String, String>>,
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let got = Got { path: path.clone(), headers, body, at: Instant::now() };
    let form = got.form();
    r.got.lock().unwrap().push(got);
    let scripted = r.script.lock().unwrap().get_mut(&path).and_then(|q| q.pop_front());
    if let Some((status, retry_after)) = scripted {
        let mut resp = StatusCode::from_u16(status).unwrap().into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut().insert("retry-after", secs.to_string().parse().unwrap());
        }
        return resp;
    }
    let name = form.get("name").cloned().unwrap_or_default();
    if path == "on_publish" {
        if r.deny.lock().unwrap().contains(&name) {
            return StatusCode::FORBIDDEN.into_response();
        }
        if let Some(key) = r.rename.lock().unwrap().get(&name) {
            return (StatusCode::FOUND, [("location", format!("rtmp://example.invalid/live/{key}"))]).into_response();
        }
    }
    if path == "on_play" && form.get("deny").is_some_and(|v| v == "1") {
        return StatusCode::FORBIDDEN.into_response();
    }
    StatusCode::OK.into_response()
}

/// Starts the receiver; its base URL (`http://127.0.0.1:PORT/`).
async fn start_receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    let app = axum::Router::new().route("/{path}", axum::routing::post(receive)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, base)
}

impl Receiver {
    fn at(&self, path: &str) -> Vec<Got> {
        self.got.lock().unwrap().iter().filter(|g| g.path == path).cloned().collect()
    }

    /// Waits until `ok` holds for the requests to `path`.
    async fn wait(&self, path: &str, within: Duration, ok: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.at(path);
            if ok(&got) {
                return got;
            }
            assert!(Instant::now() < deadline, "{path}: condition not met; got {:?}", summary(&got));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn summary(got: &[Got]) -> Vec<String> {
    got.iter().map(|g| String::from_utf8_lossy(&g.body).into_owned()).collect()
}

const SECRET: &str = "whsec-test-0123456789abcdef";

/// Verifies a webhook request as a receiver would: the signature over
/// "{timestamp}.{body}" with the secret, and a timestamp within 5 minutes.
fn verify(g: &Got) -> bool {
    let h = |k: &str| g.headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let ts = h("x-microvibe-timestamp");
    let Ok(t) = ts.parse::<i64>() else { return false };
    let now = chrono::Utc::now().timestamp();
    if (now - t).abs() > 300 {
        return false;
    }
    let Some(sig) = h("x-microvibe-signature").strip_prefix("v1=").and_then(|s| hex::decode(s).ok()) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&g.body);
    mac.verify_slice(&sig).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_ordered_per_room_and_retried() {
    let (rx, base) = start_receiver().await;
    // The first two deliveries fail: room.live is retried (1 s later by the backoff,
    // then 3 s later as the 503's Retry-After says) and room.ended, emitted
    // meanwhile, waits behind it.
    rx.script.lock().unwrap().insert("webhook".into(), VecDeque::from([(500, None), (503, Some(3))]));
    let url = format!("{base}webhook");
    let s = Server::start(&[
        ("MICROVIBE__HOOKS__WEBHOOK_URL", url.as_str()),
        ("MICROVIBE__HOOKS__WEBHOOK_SECRET", SECRET),
        ("MICROVIBE__ENGINE__UNPUBLISH_GRACE_SECS", "1"),
    ])
    .await;
    let room = s.room().await;
    let mut publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let live_at = Instant::now();
    publisher.signal("KILL");
    publisher.wait_for(Duration::from_secs(5));
    s.wait_status(room.id, "idle", Duration::from_secs(10)).await;
    let ended_at = Instant::now();
    // room.ended was emitted before room.live's third attempt (~4 s after the first).
    assert!(
        ended_at - live_at < Duration::from_millis(3800),
        "the room ended too late for the test: {:?}",
        ended_at - live_at
    );

    let got = rx.wait("webhook", Duration::from_secs(20), |g| g.len() >= 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_all = rx.at("webhook");
    assert_eq!(got_all.len(), 4, "{:?}", summary(&got_all));
    for g in &got {
        assert!(verify(g), "signature does not verify: {:?} {}", g.headers, String::from_utf8_lossy(&g.body));
        assert_eq!(g.headers["content-type"], "application/json");
    }
    // A receiver's check fails on a changed body or a moved timestamp.
    let mut forged = got[3].clone();
    forged.body = Bytes::from(String::from_utf8_lossy(&forged.body).replace("room.ended", "room.live"));
    assert!(!verify(&forged));
    let mut forged = got[3].clone();
    let ts: i64 = forged.headers["x-microvibe-timestamp"].to_str().unwrap().parse().unwrap();
    forged.headers.insert("x-microvibe-timestamp", (ts + 1).to_string().parse().unwrap());
    assert!(!verify(&forged));
    let bodies: Vec<Value> = got.iter().map(Got::json).collect();
    let types: Vec<&str> = bodies.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["room.live", "room.live", "room.live", "room.ended"], "{bodies:?}");
    for (g, b) in got.iter().zip(&bodies) {
        assert_eq!(g.headers["x-microvibe-event"].to_str().unwrap(), b["type"].as_str().unwrap());
        assert_eq!(b["room_id"], room.id);
    }
    // The same event three times (same id), with backoff between attempts.
    let id = bodies[0]["id"].as_str().unwrap();
    assert!(id.starts_with("evt_"));
    assert!(bodies[1]["id"] == id && bodies[2]["id"] == id, "{bodies:?}");
    assert_ne!(bodies[3]["id"], id);
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(gap1 >= Duration::from_millis(900) && gap1 < Duration::from_millis(2500), "first retry after {gap1:?}");
    assert!(
        gap2 >= Duration::from_millis(2900) && gap2 < Duration::from_millis(4500),
        "second retry after {gap2:?} (Retry-After: 3)"
    );
    // room.ended went out only after room.live was delivered.
    assert!(got[3].at >= got[2].at);
    let live = &bodies[0]["data"];
    assert_eq!(live["stream_name"], room.name.as_str());
    assert!(live["broadcast_id"].is_i64(), "{live}");
    let ended = &bodies[3]["data"];
    assert_eq!(ended["broadcast_id"], live["broadcast_id"], "{ended}");
    assert_eq!(ended["end_reason"], "publisher_left", "{ended}");
    assert!(ended["started_at"].is_string() && ended["ended_at"].is_string(), "{ended}");
    assert!(ended["peak_viewers"].is_i64(), "{ended}");
    println!(
        "webhook retries: {} ms, {} ms; room.ended delivered {} ms after the last room.live attempt",
        gap1.as_millis(),
        gap2.as_millis(),
        (got[3].at - got[2].at).as_millis()
    );

    // Metrics: 2 delivered, none failed.
    let m = s.client.get(format!("{}/metrics", s.api)).send().await.unwrap().text().await.unwrap();
    assert!(m.contains(r#"microvibe_webhook_deliveries_total{result="ok"} 2"#), "{m}");
    // `microvibe config` never shows the secret.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_microvibe"))
        .arg("config")
        .env("MICROVIBE__HOOKS__WEBHOOK_URL", &url)
        .env("MICROVIBE__HOOKS__WEBHOOK_SECRET", SECRET)
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("webhook_url") && !text.contains(SECRET), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_rtmp_callbacks_decide_publish_and_play_and_report_the_end() {
    let (rx, base) = start_receiver().await;
    let env: Vec<(String, String)> = ["on_publish", "on_play", "on_publish_done", "on_done"]
        .iter()
        .map(|h| (format!("MICROVIBE__HOOKS__{}", h.to_uppercase()), format!("{base}{h}")))
        .collect();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("MICROVIBE__ENGINE__UNPUBLISH_GRACE_SECS", "1"));
    let s = Server::start(&env).await;
    let room = s.room().await;

    // 403 from on_publish: the publish is refused and the room stays idle.
    rx.deny.lock().unwrap().push(room.key.clone());
    let mut refused = s.publish(&room.key);
    let (st, err) = refused.wait_for(Duration::from_secs(15)).expect("a denied publisher exits");
    assert!(!st.success(), "ffmpeg published despite on_publish 403: {err}");
    assert_eq!(s.room_json(room.id).await["status"], "idle");
    let calls = rx.at("on_publish");
    assert_eq!(calls.len(), 1, "{:?}", summary(&calls));
    let f = calls[0].form();
    assert_eq!(f["call"], "publish");
    assert_eq!(f["app"], "live");
    assert_eq!(f["name"], room.key);
    assert_eq!(f["addr"], "127.0.0.1");
    assert_eq!(f["type"], "live");
    assert!(f["tcurl"].starts_with("rtmp://127.0.0.1:") && f["tcurl"].ends_with("/live"), "{f:?}");
    assert!(f["flashver"].starts_with("FMLE/"), "{f:?}");
    assert!(f["clientid"].parse::<u64>().is_ok() && f.contains_key("swfurl") && f.contains_key("pageurl"), "{f:?}");
    assert_eq!(calls[0].headers["content-type"], "application/x-www-form-urlencoded");
    rx.deny.lock().unwrap().clear();

    // A 3xx with Location: the publish is authorized with the key it names (a user
    // token mapped to the room's key by the backend).
    rx.rename.lock().unwrap().insert("user-token-42".into(), room.key.clone());
    let mut publisher = s.publish("user-token-42");
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let f = rx.at("on_publish").last().unwrap().form();
    assert_eq!(f["name"], "user-token-42");

    // on_play: 403 refuses an RTMP player (and an HTTP-FLV one), 2xx plays.
    let url = format!("{}/{}", s.rtmp, room.name);
    let out = std::process::Command::new("timeout")
        .args(["20", "ffprobe", "-v", "error", "-show_streams", &format!("{url}?deny=1")])
        .output()
        .unwrap();
    assert!(!out.status.success(), "ffprobe played despite on_play 403");
    let flv = s.client.get(format!("{}/flv/{}.flv?deny=1", s.http, room.name)).send().await.unwrap();
    assert_eq!(flv.status(), 403);
    let streams = ffprobe(&url);
    assert!(streams.iter().any(|x| x.0 == "h264"), "{streams:?}");
    let plays = rx.at("on_play");
    assert_eq!(plays.len(), 3, "{:?}", summary(&plays));
    let f = plays[2].form();
    assert_eq!((f["call"].as_str(), f["app"].as_str(), f["name"].as_str()), ("play", "live", room.name.as_str()));
    assert_eq!(f["addr"], "127.0.0.1");
    assert!(plays[0].form()["deny"] == "1" && plays[1].form()["deny"] == "1");
    // The player that played left: on_done for it.
    rx.wait("on_done", Duration::from_secs(10), |g| g.iter().any(|g| g.form()["name"] == room.name)).await;

    // The publisher stops: on_publish_done and on_done with what on_publish was told.
    publisher.signal("INT");
    publisher.wait_for(Duration::from_secs(5));
    let done = rx.wait("on_publish_done", Duration::from_secs(15), |g| !g.is_empty()).await;
    let f = done[0].form();
    assert_eq!((f["call"].as_str(), f["app"].as_str(), f["name"].as_str()), ("publish_done", "live", "user-token-42"));
    assert_eq!(f["addr"], "127.0.0.1");
    let done =
        rx.wait("on_done", Duration::from_secs(10), |g| g.iter().any(|g| g.form()["name"] == "user-token-42")).await;
    assert!(done.iter().all(|g| g.form()["call"] == "done"));
    s.wait_status(room.id, "idle", Duration::from_secs(10)).await;
    // Each publish/play was asked once: nothing was retried or duplicated.
    assert_eq!(rx.at("on_publish").len(), 2);
    assert_eq!(rx.at("on_publish_done").len(), 1);
}

/// A recorded broadcast: `recording.ready` arrives signed with the recording (ready,
/// its duration and file), and `on_record_done` with nginx-rtmp's fields and the
/// file's path, which exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_recording_is_announced_by_webhook_and_on_record_done() {
    let (rx, base) = start_receiver().await;
    let (hook, done) = (format!("{base}events"), format!("{base}record_done"));
    let s = Server::start(&[
        ("MICROVIBE__HOOKS__WEBHOOK_URL", hook.as_str()),
        ("MICROVIBE__HOOKS__WEBHOOK_SECRET", SECRET),
        ("MICROVIBE__HOOKS__ON_RECORD_DONE", done.as_str()),
        ("MICROVIBE__RECORDING__DEFAULT_RECORD", "true"),
    ])
    .await;
    let room = s.room().await;
    let mut publisher = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-i"])
        .arg(media::fixture())
        .args(["-t", "4", "-c", "copy", "-f", "flv"])
        .arg(format!("{}/{}", s.rtmp, room.key))
        .spawn()
        .unwrap();
    let ready =
        rx.wait("events", Duration::from_secs(30), |g| g.iter().any(|g| g.json()["type"] == "recording.ready")).await;
    let _ = publisher.wait();
    let ev = ready.iter().find(|g| g.json()["type"] == "recording.ready").unwrap();
    assert!(verify(ev), "signed");
    let rec = &ev.json()["data"]["recording"];
    assert_eq!(ev.json()["room_id"], room.id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert!((rec["duration_secs"].as_f64().unwrap() - 4.0).abs() <= 1.0, "{rec}");
    let got = rx.wait("record_done", Duration::from_secs(10), |g| !g.is_empty()).await;
    let form = got[0].form();
    assert_eq!(form.get("call").map(String::as_str), Some("record_done"));
    assert_eq!(form.get("app").map(String::as_str), Some("live"));
    assert_eq!(form.get("name"), Some(&room.name));
    let path = form.get("path").expect("path");
    assert!(path.ends_with(".mp4") && std::path::Path::new(path).exists(), "{form:?}");
}
