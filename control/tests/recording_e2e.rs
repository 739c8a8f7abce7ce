//! Recording end to end with real clients: ffmpeg publishes over RTMP into a room
//! that records; ffprobe/ffmpeg decode the MP4 (and FLV) files with the expected
//! duration, also after kill -9 of the server mid-recording; HTTP Range downloads
//! resume; the HLS VOD playlist plays in ffmpeg and in Chromium with hls.js; a
//! publisher reconnecting within the grace continues the same file; a long
//! broadcast is split; a full disk stops the recording and not the stream.

mod media;
use media::{Proc, Server};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// ffmpeg publishing `secs` of the fixture in real time, then stopping.
fn publish_for(s: &Server, key: &str, secs: u32) -> Proc {
    Proc(
        Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
            .arg(media::fixture())
            .args(["-t", &secs.to_string(), "-c", "copy", "-f", "flv"])
            .arg(format!("{}/{key}", s.rtmp))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

async fn set_record(s: &Server, room: &media::Room, record: bool) -> Value {
    let r = s
        .client
        .patch(format!("{}/api/v1/live/{}", s.api, room.id))
        .bearer_auth(&room.token)
        .json(&json!({ "record": record }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "PATCH record");
    r.json::<Value>().await.unwrap()["data"].clone()
}

async fn recordings(s: &Server, room_id: i64) -> Vec<Value> {
    let v: Value =
        s.client.get(format!("{}/api/v1/live/{room_id}/recordings", s.api)).send().await.unwrap().json().await.unwrap();
    v["data"]["items"].as_array().cloned().unwrap_or_default()
}

/// Waits until the room has `n` recordings, none of them still being written.
async fn wait_recordings(s: &Server, room_id: i64, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let items = recordings(s, room_id).await;
        if items.len() >= n && items.iter().all(|r| r["status"] != "recording") {
            return items;
        }
        assert!(Instant::now() < deadline, "recordings of room {room_id}: {items:?}\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (format duration in seconds, video frames) by ffprobe.
fn probe_duration(url_or_path: &str) -> (f64, u64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries"])
        .args(["format=duration:stream=nb_read_frames", "-of", "json", url_or_path])
        .output()
        .expect("ffprobe");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let dur = v["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0);
    let frames = v["streams"][0]["nb_read_frames"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0);
    (dur, frames)
}

/// ffmpeg decodes the whole input: (no error printed, the error text).
fn decodes(input: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error"])
        .args(extra)
        .args(["-i", input, "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success() && err.trim().is_empty(), err)
}

fn recording_dir(s: &Server) -> PathBuf {
    s.dir.path().join("data/recordings")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mp4_recording_plays_downloads_with_range_and_as_hls_vod() {
    let s = Server::start(&[]).await;
    let room = s.room().await;
    assert_eq!(set_record(&s, &room, true).await["record"], true);
    let t0 = Instant::now();
    let mut publisher = publish_for(&s, &room.key, 8);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    publisher.wait_for(Duration::from_secs(20)).expect("publisher ends");
    let published = t0.elapsed().as_secs_f64();
    let items = wait_recordings(&s, room.id, 1, Duration::from_secs(20)).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let rec = &items[0];
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["format"], "mp4");
    let codecs = rec["codecs"].as_str().unwrap_or_default();
    assert!(codecs.contains("avc1") && codecs.contains("mp4a"), "{rec}");
    let duration = rec["duration_secs"].as_f64().unwrap();
    assert!((duration - 8.0).abs() <= 1.0, "API duration {duration} for 8 s published ({published:.1} s wall)");

    // The file, by ffprobe over HTTP.
    let file_url = format!("{}{}", s.api, rec["file"].as_str().unwrap());
    let (probed, frames) = probe_duration(&file_url);
    assert!((probed - 8.0).abs() <= 1.0, "ffprobe duration {probed}");
    assert!(frames >= 210, "video frames {frames} (30 fps × ~8 s)");
    let (ok, err) = decodes(&file_url, &[]);
    assert!(ok, "ffmpeg decode errors: {err}");

    // Range: a first part, then the rest resumed, equal to the whole.
    let whole = s.client.get(&file_url).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let whole = whole.bytes().await.unwrap();
    assert_eq!(whole.len() as i64, rec["size_bytes"].as_i64().unwrap());
    let head = s.client.get(&file_url).header("range", "bytes=0-99999").send().await.unwrap();
    assert_eq!(head.status(), 206);
    assert_eq!(head.headers()["content-range"], format!("bytes 0-99999/{}", whole.len()).as_str());
    let head = head.bytes().await.unwrap();
    let tail = s.client.get(&file_url).header("range", "bytes=100000-").send().await.unwrap();
    assert_eq!(tail.status(), 206);
    let tail = tail.bytes().await.unwrap();
    assert_eq!([head.as_ref(), tail.as_ref()].concat(), whole.as_ref(), "resumed download differs");
    let bad = s.client.get(&file_url).header("range", format!("bytes={}-", whole.len() + 10)).send().await.unwrap();
    assert_eq!(bad.status(), 416);

    // HLS VOD: the playlist, then ffmpeg reads it whole.
    let pl_url = format!("{}{}", s.api, rec["playlist"].as_str().unwrap());
    let pl = s.client.get(&pl_url).send().await.unwrap().text().await.unwrap();
    for line in
        ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-MAP:URI=\"media.mp4\",BYTERANGE=", "#EXT-X-BYTERANGE:", "#EXT-X-ENDLIST"]
    {
        assert!(pl.contains(line), "playlist lacks {line}:\n{pl}");
    }
    let (vod, _) = probe_duration(&pl_url);
    assert!((vod - duration).abs() <= 1.0, "VOD duration {vod} vs {duration}\n{pl}");
    let (ok, err) = decodes(&pl_url, &[]);
    assert!(ok, "ffmpeg decode errors over the VOD playlist: {err}");

    // hls.js in Chromium plays it (3 s of it) to the end mark.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    media::require_browser_tools(&root.join("tests/browser"));
    let args = json!({ "hls": pl_url, "advance_secs": 3, "timeout_secs": 40 }).to_string();
    let out = media::run_browser_script("play.mjs", args, 180).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("\"ok\":true"),
        "hls.js VOD: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The owner deletes it: the file goes.
    let path = recording_dir(&s).join(&room.name);
    assert!(std::fs::read_dir(&path).unwrap().count() >= 1);
    let del_url = format!("{}/api/v1/recordings/{}", s.api, rec["id"]);
    let r = s.client.delete(&del_url).send().await.unwrap();
    assert_eq!(r.status(), 401, "deleting needs the owner's token");
    let r = s.client.delete(&del_url).bearer_auth(&room.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(recordings(&s, room.id).await.is_empty());
    assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0, "file and playlist deleted");
    assert_eq!(s.client.get(&file_url).send().await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_room_deletes_its_recordings_files() {
    let s = Server::start(&[("MICROVIBE__RECORDING__DEFAULT_RECORD", "true")]).await;
    let room = s.room().await;
    assert_eq!(s.room_json(room.id).await["record"], true, "recording.default_record applies to new rooms");
    let mut p = publish_for(&s, &room.key, 3);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    p.wait_for(Duration::from_secs(15)).expect("publisher ends");
    wait_recordings(&s, room.id, 1, Duration::from_secs(15)).await;
    let dir = recording_dir(&s).join(&room.name);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2, "the file and its playlist");
    let r =
        s.client.delete(format!("{}/api/v1/live/{}", s.api, room.id)).bearer_auth(&room.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the room's files are gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_recording_leaves_a_playable_file_that_the_next_start_closes() {
    let mut s = Server::start(&[]).await;
    let room = s.room().await;
    set_record(&s, &room, true).await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    let items = recordings(&s, room.id).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["status"], "recording");
    s.proc.signal("KILL");
    s.proc.wait_for(Duration::from_secs(5)).expect("killed");

    let dir = recording_dir(&s).join(&room.name);
    let file =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "mp4"));
    let file = file.expect("an mp4 file");
    assert!(std::fs::metadata(&file).unwrap().len() > 1_000_000, "about 9 s at 2.5 Mbit/s were written");

    // The next start (same database and directory) closes the row with what the
    // file holds (a fragment cut by the kill is dropped).
    let env = [("MICROVIBE__DATABASE__SQLITE_PATH", s.dir.path().join("t.db").to_str().unwrap().to_owned())];
    let s2 = restart_in(&s, &env).await;
    let items = wait_recordings(&s2, room.id, 1, Duration::from_secs(15)).await;
    let rec = &items[0];
    assert_eq!(rec["status"], "ready", "{rec}");
    let (probed, frames) = probe_duration(file.to_str().unwrap());
    // Fragments are 2 s (the fixture's GOP): the last one may be lost.
    assert!((5.0..=10.0).contains(&probed), "ffprobe after kill -9: {probed} s, {frames} frames");
    assert!(frames as f64 >= probed * 30.0 - 31.0, "{frames} frames in {probed} s");
    let (ok, err) = decodes(file.to_str().unwrap(), &[]);
    assert!(ok, "decode after kill -9 and restart: {err}");
    let d = rec["duration_secs"].as_f64().unwrap();
    assert!((d - probed).abs() <= 1.0, "reconciled duration {d} vs ffprobe {probed}");
    assert_eq!(rec["size_bytes"].as_u64().unwrap(), std::fs::metadata(&file).unwrap().len());
    let pl_url = format!("{}{}", s2.api, rec["playlist"].as_str().unwrap());
    let (vod, _) = probe_duration(&pl_url);
    assert!((vod - d).abs() <= 1.0, "VOD after the crash: {vod} s vs {d} s");
    drop(s);
}

/// A second server in the first one's directory (its database and recordings).
async fn restart_in(s: &Server, env: &[(&str, String)]) -> Server {
    let rec_path = recording_dir(s);
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = rec_path.to_str().unwrap().to_owned();
    all.push(("MICROVIBE__RECORDING__PATH", &p));
    Server::start(&all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flv_recordings_split_by_length_and_a_reconnect_continues_the_file() {
    let s =
        Server::start(&[("MICROVIBE__RECORDING__FORMAT", "flv"), ("MICROVIBE__RECORDING__MAX_FILE_SECS", "4")]).await;
    let room = s.room().await;
    set_record(&s, &room, true).await;
    // 11 s in two pieces, with a reconnect (within the 2 s grace) in between.
    let mut p = publish_for(&s, &room.key, 5);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    p.wait_for(Duration::from_secs(15)).expect("first publisher ends");
    let mut p = publish_for(&s, &room.key, 6);
    p.wait_for(Duration::from_secs(15)).expect("second publisher ends");
    s.wait_status(room.id, "idle", Duration::from_secs(10)).await;
    let items = wait_recordings(&s, room.id, 2, Duration::from_secs(15)).await;
    let broadcasts: std::collections::HashSet<_> = items.iter().map(|r| r["broadcast_id"].clone()).collect();
    assert_eq!(broadcasts.len(), 1, "one broadcast across the reconnect: {items:?}");
    // 4 s files cut at the 2 s keyframes: ~11 s makes 3 files.
    assert!((2..=4).contains(&items.len()), "{items:?}");
    let mut total = 0.0;
    for r in &items {
        assert_eq!(r["format"], "flv");
        assert_eq!(r["status"], "ready", "{r}");
        let url = format!("{}{}", s.api, r["file"].as_str().unwrap());
        let (d, _) = probe_duration(&url);
        assert!(d <= 6.5, "a split file is {d} s");
        let (ok, err) = decodes(&url, &[]);
        assert!(ok, "decode {url}: {err}");
        total += d;
    }
    assert!((total - 11.0).abs() <= 2.0, "all files together: {total} s for ~11 s published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_recording_and_not_the_stream() {
    // A 1 MiB tmpfs as the recordings directory (the test runs as root in CI).
    let mnt = tempfile::tempdir().unwrap();
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(mnt.path()).status().unwrap();
    assert!(st.success(), "mount tmpfs (needs root; CI runs as root)");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.path().to_owned());
    let path = mnt.path().to_str().unwrap().to_owned();
    let s = Server::start(&[("MICROVIBE__RECORDING__PATH", path.as_str())]).await;
    let room = s.room().await;
    set_record(&s, &room, true).await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    // ~2.5 Mbit/s fills 1 MiB in about 3 s.
    let items = wait_recordings(&s, room.id, 1, Duration::from_secs(20)).await;
    let rec = &items[0];
    assert_eq!(rec["status"], "failed", "{rec}");
    let err = rec["error"].as_str().unwrap_or_default();
    assert!(err.contains("space") || err.contains("write"), "{rec}");
    // The stream goes on: still live, and a player decodes it.
    let room_now = s.room_json(room.id).await;
    assert_eq!(room_now["status"], "live");
    let (ok, err) = media::decode(&format!("{}/flv/{}.flv", s.http, room.name), 3);
    assert!(ok, "the stream after the disk filled: {err}");
    assert!(s.log().contains("recording stopped; the stream goes on"), "{}", s.log());
}

/// A WebRTC publisher (aiortc over WHIP, H.264 + Opus) is recorded through the
/// engine's bridge: the MP4 has H.264 and AAC for the time it published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_publish_is_recorded_through_the_bridge() {
    if !media::rtc::enter_netns("a_whip_publish_is_recorded_through_the_bridge") {
        return;
    }
    let s = media::rtc::start_rtc(&[]).await;
    let room = s.room().await;
    set_record(&s, &room, true).await;
    let whip = format!("{}/whip/{}", s.api, room.name);
    let publisher =
        media::rtc::Peer::spawn(&["publish", &whip, "--key", &room.key, "--codec", "h264", "--seconds", "8", "--tone"]);
    let created = publisher.wait("created", Duration::from_secs(20));
    assert_eq!(created["status"], 201, "{created}");
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    s.wait_status(room.id, "idle", Duration::from_secs(30)).await;
    let items = wait_recordings(&s, room.id, 1, Duration::from_secs(15)).await;
    let rec = &items[0];
    assert_eq!(rec["status"], "ready", "{rec}");
    let url = format!("{}{}", s.api, rec["file"].as_str().unwrap());
    let streams = media::ffprobe(&url);
    assert!(streams.iter().any(|x| x.0 == "h264"), "{streams:?}");
    assert!(streams.iter().any(|x| x.0 == "aac"), "{streams:?}");
    let (d, frames) = probe_duration(&url);
    assert!((5.5..=9.5).contains(&d), "{d} s recorded of an 8 s WHIP publish ({frames} frames)\n{rec}");
    let (ok, err) = decodes(&url, &[]);
    assert!(ok, "decode: {err}");
}

/// A private room's recordings: refused without credentials (list, one, file,
/// playlist), shown to the owner, and played with a play token (the playlist's
/// media URI carries it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_rooms_recordings_need_the_owner_or_a_play_token() {
    let s = Server::start(&[]).await;
    let room = s.room().await;
    let r = s
        .client
        .patch(format!("{}/api/v1/live/{}", s.api, room.id))
        .bearer_auth(&room.token)
        .json(&json!({ "private": true, "record": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut p = publish_for(&s, &room.key, 4);
    p.wait_for(Duration::from_secs(20)).expect("publisher ends");
    let list_url = format!("{}/api/v1/live/{}/recordings", s.api, room.id);
    let deadline = Instant::now() + Duration::from_secs(20);
    let rec = loop {
        let v: Value = s.client.get(&list_url).bearer_auth(&room.token).send().await.unwrap().json().await.unwrap();
        if let Some(r) = v["data"]["items"].get(0).filter(|r| r["status"] == "ready") {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "owner's list: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let one = format!("{}/api/v1/recordings/{}", s.api, rec["id"]);
    let file = format!("{}{}", s.api, rec["file"].as_str().unwrap());
    let playlist = format!("{}{}", s.api, rec["playlist"].as_str().unwrap());
    for url in [&list_url, &one, &file, &playlist] {
        assert_eq!(s.client.get(url.as_str()).send().await.unwrap().status(), 401, "{url} without a token");
        let bad = format!("{url}?token=1.0.9999999999.AAAA");
        assert_eq!(s.client.get(&bad).send().await.unwrap().status(), 403, "{url} with a forged token");
    }
    let v = s.post(&format!("/api/v1/live/{}/play-token", room.id), Some(&room.token), json!({})).await;
    let token = v["data"]["token"].as_str().expect("token").to_owned();
    for url in [&list_url, &one, &file] {
        let u = format!("{url}?token={token}");
        assert_eq!(s.client.get(&u).send().await.unwrap().status(), 200, "{url} with the token");
    }
    let pl = s.client.get(format!("{playlist}?token={token}")).send().await.unwrap().text().await.unwrap();
    assert!(pl.contains(&format!("media.mp4?token={token}")), "{pl}");
    let (d, _) = probe_duration(&format!("{playlist}?token={token}"));
    assert!((d - 4.0).abs() <= 1.0, "VOD with the token: {d} s");
}

/// A room's quota (1 MiB here) stops its recording when used up; the stream goes
/// on, and the next broadcast is not recorded while the room is over its quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_quota_stops_a_recording_and_the_next_one() {
    let s = Server::start(&[("MICROVIBE__RECORDING__ROOM_QUOTA_MB", "1")]).await;
    let room = s.room().await;
    set_record(&s, &room, true).await;
    let _publisher = s.publish(&room.key);
    s.wait_status(room.id, "live", Duration::from_secs(10)).await;
    let items = wait_recordings(&s, room.id, 1, Duration::from_secs(20)).await;
    let rec = &items[0];
    assert_eq!(rec["status"], "failed", "{rec}");
    assert!(rec["error"].as_str().unwrap_or_default().contains("quota"), "{rec}");
    let size = rec["size_bytes"].as_u64().unwrap();
    assert!(((1 << 20)..(3 << 20)).contains(&size), "stops just past 1 MiB: {size}");
    assert_eq!(s.room_json(room.id).await["status"], "live", "the stream goes on");
    let (ok, err) = decodes(&format!("{}{}", s.api, rec["file"].as_str().unwrap()), &[]);
    assert!(ok, "what was written plays: {err}");
    // A new broadcast of the room: nothing left of the quota, no new file.
    drop(_publisher);
    s.wait_status(room.id, "idle", Duration::from_secs(10)).await;
    let mut p = publish_for(&s, &room.key, 3);
    p.wait_for(Duration::from_secs(15)).expect("publisher ends");
    assert_eq!(recordings(&s, room.id).await.len(), 1);
    assert!(s.log().contains("the recording quota is used up"), "{}", s.log());
}
