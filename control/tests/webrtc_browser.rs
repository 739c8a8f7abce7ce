//! WebRTC from a real browser: headless Chromium (Debian's /usr/bin/chromium driven by
//! playwright-core) runs tests/browser/webrtc.html (the example of docs/webrtc.md)
//! through tests/browser/webrtc.mjs. One page publishes its fake camera + microphone,
//! another watches and must decode video and audio: over WHIP/WHEP, then over the
//! WebSocket signaling (/api/v1/live/ws); then the signaling's errors. The test
//! re-runs itself inside a fresh network namespace (`unshare -n`, loopback only) and
//! the server advertises 127.0.0.1 only. Chromium and tests/browser/node_modules
//! come from .ci/run; without them this test fails (it never skips).

mod media;
use media::Server;
use media::require_browser_tools;
use media::rtc::enter_netns;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

fn sessions(stat: &Value) -> u64 {
    stat["shards"].as_array().map(|a| a.iter().map(|x| x["webrtc_sessions"].as_u64().unwrap_or(0)).sum()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_publishes_and_plays_over_whip_whep_and_websocket() {
    if !enter_netns("chromium_publishes_and_plays_over_whip_whep_and_websocket") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    require_browser_tools(&root.join("tests/browser"));

    let base = media::free_port().to_string();
    let s =
        Server::start(&[("MICROVIBE__WEBRTC__UDP_PORT_BASE", &base), ("MICROVIBE__WEBRTC__CANDIDATES", "127.0.0.1")])
            .await;
    // A room ends with its publisher: one room per scenario.
    let whip = s.room().await;
    let ws = s.room().await;
    let errs = s.room().await;
    let other = s.room().await; // another user: not the owner of `errs`
    let tab = s.room().await;

    let args = json!({
        "api": s.api,
        "whip": {"name": whip.name, "key": whip.key},
        "ws": {"room_id": ws.id, "token": ws.token},
        "errors": {"room_id": errs.id, "token": errs.token, "other_token": other.token},
        "tabclose": {"name": tab.name, "key": tab.key, "room_id": tab.id},
        "timeout_secs": 30,
    })
    .to_string();
    let started = Instant::now();
    let out = media::run_browser_script("webrtc.mjs", args, 240).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("webrtc.mjs took {:.1} s", started.elapsed().as_secs_f64());
    for l in stdout.lines() {
        println!("{l}");
    }
    let ctx =
        || format!("webrtc.mjs exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}", out.status, s.log());
    let results: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let find = |name: &str| {
        results
            .iter()
            .find(|r| r["scenario"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no result for {name}\n{}", ctx()))
    };

    for name in ["whip", "ws"] {
        let r = find(name);
        let v = &r["viewer"];
        assert!(v["frames_decoded"].as_u64().unwrap_or(0) > 0, "{name}: no video frame decoded: {r}\n{}", ctx());
        let samples = v["audio_samples"].as_array().cloned().unwrap_or_default();
        let (a0, a1) =
            (samples.first().and_then(Value::as_u64).unwrap_or(0), samples.get(1).and_then(Value::as_u64).unwrap_or(0));
        assert!(a0 > 0 && a1 > a0, "{name}: audio totalSamplesReceived did not grow ({a0} -> {a1}): {r}\n{}", ctx());
        assert!(
            v["width"].as_u64().unwrap_or(0) > 0 && v["height"].as_u64().unwrap_or(0) > 0,
            "{name}: no video size: {r}"
        );
        assert_eq!(r["ok"], true, "{name}: {r}\n{}", ctx());
    }
    let r = find("whip");
    assert_eq!(
        (r["whip_delete_status"].as_u64(), r["whep_delete_status"].as_u64()),
        (Some(200), Some(200)),
        "DELETE statuses: {r}"
    );
    let r = find("ws");
    assert_eq!(r["viewer_messages"]["ok"], true, "ws: viewer_count >= 1 and stream_state live: {r}");
    assert_eq!(r["publisher_ended"]["ok"], true, "ws: the publisher is told the stream ended: {r}");
    // A publisher's tab closed without a DELETE: the room leaves `live` in seconds
    // (Chromium's DTLS close_notify or 4 s of silence, then the 2 s grace), not at
    // the 30 s consent expiry.
    let r = find("tabclose");
    let idle_after = r["idle_after_secs"].as_f64().unwrap_or(f64::MAX);
    println!("tab closed: room idle after {idle_after} s");
    assert!(r["ok"] == true && idle_after < 8.0, "tabclose: {r}\n{}", ctx());
    let r = find("errors");
    assert_eq!(r["ok"], true, "errors: failed checks {}\n{}", r["failed"], ctx());
    assert!(out.status.success(), "{}", ctx());

    // Every publisher stopped: the rooms ended and no session is left.
    for id in [whip.id, ws.id, errs.id] {
        s.wait_status(id, "idle", Duration::from_secs(15)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stat = s.stat_json().await;
        if sessions(&stat) == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "WebRTC sessions left: {}\n{}", stat["shards"], s.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// docs/webrtc.md shows the tested page verbatim.
#[test]
fn docs_example_is_the_tested_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let page = std::fs::read_to_string(root.join("tests/browser/webrtc.html")).unwrap();
    let doc = std::fs::read_to_string(root.join("docs/webrtc.md")).unwrap();
    assert!(
        doc.contains(&format!("```html\n{page}```\n")),
        "docs/webrtc.md must contain tests/browser/webrtc.html verbatim in its ```html block (copy the page there)"
    );
}
