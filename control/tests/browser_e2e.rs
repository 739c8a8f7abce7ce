//! Real-browser playback: ffmpeg publishes over RTMP, then headless Chromium (Debian's
//! /usr/bin/chromium driven by playwright-core) plays the stream with hls.js (HLS),
//! mpegts.js (HTTP-FLV) and mpegts.js (WebSocket-FLV) through tests/browser/play.mjs.
//! Chromium and tests/browser/node_modules come from .ci/run; without them this test
//! fails (it never skips).

mod media;
use media::Server;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn require_browser_tools(dir: &Path) {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run .ci/run (it installs Debian's chromium), or apt-get install -y chromium"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.map(|o| o.status.success()).unwrap_or(false),
        "node is missing: the browser test runs tests/browser/play.mjs with Node.js (run .ci/run)"
    );
    for p in [
        "node_modules/playwright-core/package.json",
        "node_modules/hls.js/dist/hls.js",
        "node_modules/mpegts.js/dist/mpegts.js",
    ] {
        assert!(
            dir.join(p).exists(),
            "{} is missing: run .ci/run (it runs `npm ci --prefix tests/browser`)",
            dir.join(p).display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_hls_flv_and_websocket_flv() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("tests/browser");
    require_browser_tools(&dir);

    // 1 s HLS fragments (cut at the fixture's 2 s GOPs): the playlist fills fast.
    let s = Server::start(&[("MICROVIBE__HLS__FRAGMENT_SECS", "1")]).await;
    let room = s.room().await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;

    let hls = format!("{}/hls/{}.m3u8", s.http, room.name);
    let flv = format!("{}/flv/{}.flv", s.http, room.name);
    let ws = flv.replacen("http://", "ws://", 1);
    // hls.js takes a 404 playlist as fatal: start once two segments are listed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = s.client.get(&hls).send().await {
            if r.status() == 200
                && r.text().await.unwrap_or_default().lines().filter(|l| l.ends_with(".ts")).count() >= 2
            {
                break;
            }
        }
        assert!(Instant::now() < deadline, "HLS playlist never listed 2 segments\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let args = json!({"hls": hls, "flv": flv, "ws": ws, "advance_secs": 3, "timeout_secs": 40}).to_string();
    let started = Instant::now();
    let out = media::run_browser_script("play.mjs", args, 240).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("play.mjs took {:.1} s\n{stdout}", started.elapsed().as_secs_f64());
    let ctx =
        || format!("play.mjs exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}", out.status, s.log());

    let results: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    for player in ["hls", "flv", "ws"] {
        let r = results
            .iter()
            .find(|r| r["player"] == player)
            .unwrap_or_else(|| panic!("no result for the {player} player\n{}", ctx()));
        let advance = r["advance"].as_f64().unwrap_or(0.0);
        assert!(advance >= 3.0, "{player}: currentTime advanced {advance} s, want >= 3 s: {r}\n{}", ctx());
        assert_eq!(
            (r["width"].as_u64(), r["height"].as_u64()),
            (Some(1280), Some(720)),
            "{player}: video size: {r}\n{}",
            ctx()
        );
        let fatal: Vec<&Value> =
            r["errors"].as_array().map(|e| e.iter().filter(|e| e["fatal"] == true).collect()).unwrap_or_default();
        assert!(fatal.is_empty(), "{player}: fatal player errors {fatal:?}\n{}", ctx());
        assert!(r["audio_bytes"].as_u64().unwrap_or(0) > 0, "{player}: no AAC decoded: {r}\n{}", ctx());
        assert_eq!(r["ok"], true, "{player}: {r}\n{}", ctx());
    }
    assert!(out.status.success(), "{}", ctx());
}
