//! Three nodes on 127.0.0.1 / 127.0.0.2 / 127.0.0.3 sharing the CI's PostgreSQL and
//! Redis (one schema and one key prefix per test): registration, placement, origin
//! leases, a publisher moving between nodes, and a node killed with SIGKILL.

mod media;
use media::pg::OwnPostgres;
use media::redis::OwnRedis;
use media::rtc::{Peer, enter_netns};
use media::{Proc, Server, copy_player, decode, drop_pg_schema, fixture, free_port};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const HOSTS: [&str; 3] = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];

/// A cluster's shared settings: one schema, one Redis key prefix (and Redis port).
struct Shared {
    schema: String,
    prefix: String,
    redis_port: u16,
    method: &'static str,
}

impl Shared {
    fn new(tag: &str, method: &'static str) -> Shared {
        let n = free_port();
        Shared { schema: format!("cl_{tag}_{n}"), prefix: format!("cl_{tag}_{n}:"), redis_port: 6379, method }
    }

    /// Starts node `i` (id "node-<i>") on HOSTS[i]; node 0 first, so that it alone
    /// runs the migrations.
    async fn node(&self, i: usize) -> Server {
        let id = format!("node-{i}");
        let port = self.redis_port.to_string();
        Server::start_postgres_on(
            HOSTS[i],
            &self.schema,
            &[
                ("SFU_MODE", "cluster"),
                ("MICROVIBE__ENGINE__UNPUBLISH_GRACE_SECS", "5"),
                ("JWT_SECRET", "cluster-test-secret-cluster-test-secret-0123"),
                ("SFU_LOAD_BALANCE_METHOD", self.method),
                ("MICROVIBE__CLUSTER__NODE_ID", &id),
                ("MICROVIBE__REDIS__HOST", "127.0.0.1"),
                ("MICROVIBE__REDIS__PORT", &port),
                ("MICROVIBE__REDIS__KEY_PREFIX", &self.prefix),
            ],
        )
        .await
    }

    async fn nodes(&self) -> Vec<Server> {
        let mut out = vec![self.node(0).await];
        out.push(self.node(1).await);
        out.push(self.node(2).await);
        out
    }
}

async fn get(s: &Server, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = s.client.get(format!("{}{path}", s.api));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A call to the admin API of the cluster; (status, body).
async fn admin_call(s: &Server, method: reqwest::Method, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = s.client.request(method, format!("{}{path}", s.api));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A created room's (id, stream key, stream name).
fn room_ids(room: &Value) -> (i64, String, String) {
    let text = |k: &str| room[k].as_str().unwrap_or_else(|| panic!("no {k}: {room}")).to_owned();
    (room["id"].as_i64().unwrap(), text("stream_key"), text("stream_name"))
}

/// The node ids `s` lists, once it lists `want` of them.
async fn wait_nodes(s: &Server, want: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let (status, v) = get(s, "/api/v1/cluster/nodes", Some(&s.admin_token)).await;
        let nodes = v["data"]["nodes"].as_array().cloned().unwrap_or_default();
        if status == 200 && nodes.len() == want {
            return nodes;
        }
        assert!(Instant::now() < deadline, "{} lists {} nodes, not {want}: {v}", s.api, nodes.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A user and `n` rooms created through `s`; returns (token, rooms' JSON).
async fn rooms(s: &Server, n: usize) -> (String, Vec<Value>) {
    let user = format!("u{}", free_port());
    s.post("/api/v1/auth/register", None, json!({"username": user, "password": "password123"})).await;
    let v = s.post("/api/v1/auth/login", None, json!({"username": user, "password": "password123"})).await;
    let token = v["data"]["token"].as_str().unwrap().to_owned();
    let mut out = vec![];
    for i in 0..n {
        let v = s
            .post("/api/v1/live/create", Some(&token), json!({"title": format!("r{i}"), "push_protocol": "rtmp"}))
            .await;
        assert!(v["data"]["id"].is_i64(), "{v}");
        out.push(v["data"].clone());
    }
    (token, out)
}

/// ffmpeg publishing the fixture, reconnecting as OBS does: when a connection ends it
/// tries the next URL of `urls` (a load balancer moving it to a live node).
struct PublishLoop {
    stop: Arc<AtomicBool>,
    current: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PublishLoop {
    fn start(urls: Vec<String>) -> PublishLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let current = Arc::new(AtomicUsize::new(0));
        let (stop2, current2) = (stop.clone(), current.clone());
        let fx = fixture();
        let thread = std::thread::spawn(move || {
            // Bounded: at most 200 connections, and only until the test stops it.
            for i in 0..200 {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                current2.store(i % urls.len(), Ordering::Relaxed);
                let mut child = Proc(
                    Command::new("ffmpeg")
                        .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
                        .arg(&fx)
                        .args(["-c", "copy", "-f", "flv"])
                        .arg(&urls[i % urls.len()])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                );
                while !stop2.load(Ordering::Relaxed) {
                    if child.0.try_wait().unwrap().is_some() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                drop(child);
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        PublishLoop { stop, current, thread: Some(thread) }
    }
}

impl Drop for PublishLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn publish(s: &Server, key: &str) -> Proc {
    s.publish(key)
}

#[tokio::test]
async fn cluster_mode_refuses_the_embedded_store_in_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_microvibe"))
        .arg("config")
        .env("SFU_MODE", "cluster")
        .env("MICROVIBE__SERVER__HOST", "127.0.0.1")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("cluster mode needs PostgreSQL") && err.contains("Redis"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_microvibe"))
        .arg("config")
        .env("SFU_LOAD_BALANCE_METHOD", "fastest")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("sfu.load_balance_method") && err.contains("roundrobin"), "{err}");
}

/// Three nodes see each other; six rooms are placed round robin (two per node), a
/// room's URLs are its node's, and the nodes API needs the admin token.
#[tokio::test]
async fn three_nodes_register_and_place_rooms_round_robin() {
    let shared = Shared::new("rr", "roundrobin");
    let nodes = shared.nodes().await;
    for n in &nodes {
        let listed = wait_nodes(n, 3, Duration::from_secs(10)).await;
        let ids: Vec<&str> = listed.iter().map(|v| v["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["node-0", "node-1", "node-2"]);
        for (i, v) in listed.iter().enumerate() {
            assert_eq!(v["api"], format!("http://{}:{}", HOSTS[i], nodes[i].api.rsplit(':').next().unwrap()));
            assert_eq!(v["rtmp"], nodes[i].rtmp, "{v}");
            assert_eq!(v["media"], nodes[i].http, "{v}");
        }
    }
    let (status, _) = get(&nodes[0], "/api/v1/cluster/nodes", None).await;
    assert_eq!(status, 401);
    let (status, _) = get(&nodes[0], "/api/v1/cluster/nodes", Some("wrong-token")).await;
    assert_eq!(status, 401);

    let (_, created) = rooms(&nodes[1], 6).await;
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for r in &created {
        let node = r["nodes"]["push"].as_str().unwrap_or_else(|| panic!("no placement: {r}")).to_owned();
        let i: usize = node.trim_start_matches("node-").parse().unwrap();
        assert_eq!(r["push"]["rtmp_url"], nodes[i].rtmp, "{r}");
        assert_eq!(r["push"]["whip_url"], format!("{}/whip/{}", nodes[i].api, r["stream_name"].as_str().unwrap()));
        assert_eq!(r["play"]["flv"], format!("{}/flv/{}.flv", nodes[i].http, r["stream_name"].as_str().unwrap()));
        // A room keeps its node: the same answer from any node.
        let again = nodes[(i + 1) % 3].room_json(r["id"].as_i64().unwrap()).await;
        assert_eq!(again["nodes"]["push"], node.as_str(), "{again}");
        *per_node.entry(node).or_default() += 1;
    }
    assert_eq!(per_node.values().copied().collect::<Vec<_>>(), [2, 2, 2], "{per_node:?}");
    drop(nodes);
    drop_pg_schema(&shared.schema).await;
}

/// `least_load` sends new rooms to the idle node: with a publisher on node 0 and
/// one on node 1, every new room goes to node 2 — until node 2 is drained.
#[tokio::test]
async fn least_load_prefers_the_idle_node() {
    let shared = Shared::new("ll", "least_load");
    let nodes = shared.nodes().await;
    wait_nodes(&nodes[0], 3, Duration::from_secs(10)).await;
    let (owner, busy) = rooms(&nodes[0], 2).await;
    let _p0 = publish(&nodes[0], busy[0]["stream_key"].as_str().unwrap());
    let _p1 = publish(&nodes[1], busy[1]["stream_key"].as_str().unwrap());
    // Both registrations carry their stream, as node 0 (which places the new rooms)
    // sees them: its list is its placement's (cached for half a second).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listed = wait_nodes(&nodes[0], 3, Duration::from_secs(5)).await;
        let streams: Vec<u64> = listed.iter().map(|v| v["load"]["streams"].as_u64().unwrap()).collect();
        if streams == [1, 1, 0] {
            break;
        }
        assert!(Instant::now() < deadline, "loads not seen: {listed:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, fresh) = rooms(&nodes[0], 4).await;
    for r in &fresh {
        assert_eq!(r["nodes"]["push"], "node-2", "{r}");
    }
    // Drained, node 2 gets nothing new (the two busy nodes share the new rooms),
    // and every node's list shows the mark at once; undrained, it is the pick again.
    let drain_path = "/api/v1/cluster/nodes/node-2/drain";
    assert_eq!(admin_call(&nodes[1], reqwest::Method::POST, drain_path, None).await.0, 401);
    let (status, v) = admin_call(&nodes[1], reqwest::Method::POST, drain_path, Some(&nodes[1].admin_token)).await;
    assert_eq!((status, &v["data"]["draining"]), (200, &json!(true)), "{v}");
    let (status, _) =
        admin_call(&nodes[1], reqwest::Method::POST, "/api/v1/cluster/nodes/node-9/drain", Some(&nodes[1].admin_token))
            .await;
    assert_eq!(status, 404);
    tokio::time::sleep(Duration::from_millis(600)).await;
    for n in &nodes {
        let listed = wait_nodes(n, 3, Duration::from_secs(5)).await;
        let marks: Vec<bool> = listed.iter().map(|v| v["draining"].as_bool().unwrap()).collect();
        assert_eq!(marks, [false, false, true], "{listed:?}");
    }
    let (_, while_drained) = rooms(&nodes[2], 4).await;
    let mut placed: Vec<&str> = while_drained.iter().map(|r| r["nodes"]["push"].as_str().unwrap()).collect();
    placed.sort();
    assert_eq!(placed, ["node-0", "node-0", "node-1", "node-1"], "{while_drained:?}");
    let (status, _) = admin_call(&nodes[0], reqwest::Method::DELETE, drain_path, Some(&nodes[0].admin_token)).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, after) = rooms(&nodes[1], 1).await;
    assert_eq!(after[0]["nodes"]["push"], "node-2", "{after:?}");
    // A live room's URLs are its origin's, whatever the method says.
    let (_, live) = get(&nodes[2], &format!("/api/v1/live/{}", busy[1]["id"]), Some(&owner)).await;
    let live = &live["data"];
    assert_eq!(live["nodes"]["push"], "node-1", "{live}");
    assert_eq!(live["push"]["rtmp_url"], nodes[1].rtmp, "{live}");
    drop(nodes);
    drop_pg_schema(&shared.schema).await;
}

/// The origin node is killed with SIGKILL while live: the publisher's reconnect
/// lands on node 1, which becomes the origin; the room stays live with the same
/// broadcast all along, its URLs move to node 1, and node 2 sees node 0 gone.
/// Then node 1 is killed and nobody publishes: the room ends ("node_lost").
#[tokio::test]
async fn origin_killed_publisher_moves_and_the_room_stays_live() {
    let shared = Shared::new("kill", "roundrobin");
    let mut nodes = shared.nodes().await;
    wait_nodes(&nodes[2], 3, Duration::from_secs(10)).await;
    let (_, created) = rooms(&nodes[2], 1).await;
    let (id, key, name) = room_ids(&created[0]);
    let publisher = PublishLoop::start(vec![format!("{}/{key}", nodes[0].rtmp), format!("{}/{key}", nodes[1].rtmp)]);
    let live = nodes[2].wait_status(id, "live", Duration::from_secs(15)).await;
    let broadcast = live["broadcast_id"].clone();
    assert_eq!(live["nodes"]["push"], "node-0", "{live}");
    let (ok, err) = decode(&format!("{}/flv/{name}.flv", nodes[0].http), 2);
    assert!(ok, "HTTP-FLV on the origin: {err}");
    // An HTTP-FLV player on node 2 (an edge: it relays from node 0) that must keep
    // its connection through the failover: the longest gap between its reads.
    let edge_player = EdgeReader::start(&nodes[2].http, &name);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(edge_player.bytes() > 0, "the edge player got nothing:\n{}", nodes[2].log());

    let killed = Instant::now();
    nodes[0].proc.signal("KILL");
    // Watch the room from node 2 until node 1 serves the stream.
    let mut moved_after = None;
    let mut playable_after = None;
    while killed.elapsed() < Duration::from_secs(30) {
        let r = nodes[2].room_json(id).await;
        assert_eq!(r["status"], "live", "the room left live while the publisher moved: {r}\n{}", nodes[2].log());
        assert_eq!(r["broadcast_id"], broadcast, "{r}");
        if moved_after.is_none() && r["nodes"]["push"] == "node-1" {
            moved_after = Some(killed.elapsed());
            assert_ne!(r["nodes"]["play"], "node-0", "{r}");
        }
        if moved_after.is_some() {
            let (ok, _) = decode(&format!("{}/flv/{name}.flv", nodes[1].http), 2);
            if ok {
                playable_after = Some(killed.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let moved = moved_after.unwrap_or_else(|| panic!("the room never moved to node 1:\n{}", nodes[1].log()));
    let playable = playable_after.expect("HTTP-FLV on node 1 never played");
    eprintln!("origin killed: room placed on node 1 after {moved:?}, HTTP-FLV playing there after {playable:?}");
    assert_eq!(publisher.current.load(Ordering::Relaxed), 1);
    // The edge player resumed on its connection: media after the failover.
    let before = edge_player.bytes();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (gap, open) = edge_player.stop();
    eprintln!("origin killed: the edge HTTP-FLV player kept its connection; longest gap {gap:?}");
    assert!(open, "the edge player's connection ended:\n{}", nodes[2].log());
    assert!(edge_player_grew(before, &edge_player), "no media on the edge after the failover:\n{}", nodes[2].log());
    assert!(gap < Duration::from_secs(5), "gap {gap:?}");
    // Node 0 leaves the registry within its TTL (6 s) and a sweep.
    let listed = wait_nodes(&nodes[2], 2, Duration::from_secs(12)).await;
    assert!(listed.iter().all(|v| v["id"] != "node-0"), "{listed:?}");
    // The room stays live well past the lease TTL and the grace.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(nodes[2].room_json(id).await["status"], "live");

    // Now the origin dies for good and the publisher has nowhere to go.
    drop(publisher);
    nodes[1].proc.signal("KILL");
    let ended_at = Instant::now();
    let r = nodes[2].wait_status(id, "idle", Duration::from_secs(25)).await;
    eprintln!("origin killed with no publisher back: room idle after {:?}", ended_at.elapsed());
    let (_, b) = get(&nodes[2], &format!("/api/v1/live/{id}/broadcasts"), None).await;
    assert_eq!(b["data"]["items"][0]["end_reason"], "node_lost", "{b}\n{r}");
    assert_eq!(b["data"]["items"].as_array().unwrap().len(), 1, "one broadcast for the whole show: {b}");
    nodes.clear();
    drop_pg_schema(&shared.schema).await;
}

/// A second publisher with the same key on another node takes the stream over (the
/// newest wins, as on one node): the first node drops its publisher within a
/// heartbeat, the room stays live in the same broadcast; when the new publisher
/// leaves, the room ends once (its node held the lease).
#[tokio::test]
async fn a_publisher_on_another_node_takes_over() {
    let shared = Shared::new("take", "roundrobin");
    let nodes = shared.nodes().await;
    wait_nodes(&nodes[0], 3, Duration::from_secs(10)).await;
    let (_, created) = rooms(&nodes[0], 1).await;
    let id = created[0]["id"].as_i64().unwrap();
    let key = created[0]["stream_key"].as_str().unwrap();
    let mut first = publish(&nodes[0], key);
    let live = nodes[2].wait_status(id, "live", Duration::from_secs(15)).await;
    let second = publish(&nodes[1], key);
    // The first publisher is dropped by node 0 once it sees the lease moved.
    let (_, _) = first
        .wait_for(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("node 0 kept its publisher:\n{}", nodes[0].log()));
    let r = nodes[2].room_json(id).await;
    assert_eq!(r["status"], "live");
    assert_eq!(r["broadcast_id"], live["broadcast_id"]);
    assert_eq!(r["nodes"]["push"], "node-1", "{r}");
    assert!(nodes[0].log().contains("another node took this stream over"), "{}", nodes[0].log());
    drop(second);
    nodes[2].wait_status(id, "idle", Duration::from_secs(15)).await;
    let (_, b) = get(&nodes[2], &format!("/api/v1/live/{id}/broadcasts"), None).await;
    assert_eq!(b["data"]["items"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["data"]["items"][0]["end_reason"], "publisher_left", "{b}");
    drop(nodes);
    drop_pg_schema(&shared.schema).await;
}

/// Redis restarts and loses every key: the nodes register again, the origin takes
/// its lease back (no second origin), media keeps flowing, the room stays live.
#[tokio::test]
async fn redis_restart_nodes_register_again_and_the_lease_comes_back() {
    let port = free_port();
    let mut redis = OwnRedis::start(port);
    let mut shared = Shared::new("redis", "roundrobin");
    shared.redis_port = port;
    let nodes = shared.nodes().await;
    wait_nodes(&nodes[0], 3, Duration::from_secs(10)).await;
    let (_, created) = rooms(&nodes[0], 1).await;
    let (id, key, name) = room_ids(&created[0]);
    let _publisher = publish(&nodes[0], &key);
    let live = nodes[1].wait_status(id, "live", Duration::from_secs(15)).await;
    let player = media::copy_player(&format!("{}/flv/{name}.flv", nodes[0].http), 20);

    drop(redis);
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis = OwnRedis::start(port);
    // Everyone is back within a few heartbeats, with the lease on node 0 again.
    wait_nodes(&nodes[2], 3, Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = nodes[2].room_json(id).await;
        if r["nodes"]["push"] == "node-0" {
            assert_eq!(r["status"], "live");
            assert_eq!(r["broadcast_id"], live["broadcast_id"]);
            break;
        }
        assert!(Instant::now() < deadline, "lease not back on node 0: {r}\n{}", nodes[0].log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(nodes[0].log().contains("taken back"), "{}", nodes[0].log());
    // The player never noticed.
    let mut player = player;
    assert!(player.0.try_wait().unwrap().is_none(), "the player stopped during the Redis restart");
    let (ok, err) = decode(&format!("{}/flv/{name}.flv", nodes[0].http), 2);
    assert!(ok, "{err}");
    let _ = player.0.kill();
    drop(nodes);
    drop(redis);
    drop_pg_schema(&shared.schema).await;
}

/// The stream's players on every node; the clients of `name` on `s` by kind:
/// (relay pulls, viewers).
async fn origin_clients(s: &Server, name: &str) -> (usize, usize) {
    let stat = s.stat_json_admin().await;
    let streams = stat["streams"].as_array().cloned().unwrap_or_default();
    let Some(st) = streams.iter().find(|v| v["name"] == name) else { return (0, 0) };
    let clients = st["clients"].as_array().cloned().unwrap_or_default();
    let watching: Vec<&Value> = clients.iter().filter(|c| c["publishing"] == false).collect();
    let relays = watching.iter().filter(|c| c["relay"] == true).count();
    (relays, watching.len() - relays)
}

/// RTMP publish on node 0; players on nodes 1 and 2 over RTMP, HTTP-FLV and HLS
/// decode; node 0 serves exactly one relay per edge whatever the number of players
/// there, and counts none of them as viewers; the room's viewer count is the
/// cluster's. When the players leave, the relays stop.
#[tokio::test]
async fn edges_serve_every_protocol_through_one_relay_each() {
    let shared = Shared::new("relay", "roundrobin");
    let nodes = shared.nodes().await;
    wait_nodes(&nodes[0], 3, Duration::from_secs(10)).await;
    let (_, created) = rooms(&nodes[0], 1).await;
    let (id, key, name) = room_ids(&created[0]);
    let _publisher = publish(&nodes[0], &key);
    nodes[1].wait_status(id, "live", Duration::from_secs(15)).await;

    // Five HTTP-FLV players on node 1 and one RTMP, two HTTP-FLV on node 2.
    let mut players: Vec<Proc> = vec![];
    for _ in 0..5 {
        players.push(copy_player(&format!("{}/flv/{name}.flv", nodes[1].http), 20));
    }
    players.push(copy_player(&format!("{}/{name}", nodes[1].rtmp), 20));
    for _ in 0..2 {
        players.push(copy_player(&format!("{}/flv/{name}.flv", nodes[2].http), 20));
    }
    for (i, url) in [
        (1, format!("{}/{name}", nodes[1].rtmp)),
        (2, format!("{}/flv/{name}.flv", nodes[2].http)),
        (2, format!("{}/hls/{name}.m3u8", nodes[2].http)),
        (1, format!("{}/hls/{name}.m3u8", nodes[1].http)),
    ] {
        let (ok, err) = decode(&url, 3);
        assert!(ok, "{url} on node {i}: {err}\n{}", nodes[i].log());
    }
    let (relays, viewers) = origin_clients(&nodes[0], &name).await;
    assert_eq!((relays, viewers), (2, 0), "the origin serves one relay per edge and no viewer");
    for p in &mut players {
        assert!(p.0.try_wait().unwrap().is_none(), "an edge player stopped early");
    }
    // The room counts every node's viewers (edges report theirs with the heartbeat),
    // and every node's /stat.json and /metrics show the cluster's totals and each node.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = nodes[0].room_json(id).await["viewer_count"].as_i64().unwrap_or(0);
        let stat = nodes[0].stat_json().await;
        let cluster = &stat["cluster"];
        let per_node: Vec<u64> = cluster["per_node"]
            .as_array()
            .map(|a| a.iter().map(|v| v["players"].as_u64().unwrap()).collect())
            .unwrap_or_default();
        if n >= 8
            && cluster["nodes"] == 3
            && cluster["players"].as_u64() >= Some(8)
            && per_node[1] >= 6
            && per_node[2] >= 2
        {
            assert_eq!(cluster["streams"], 1, "{cluster}");
            assert!(!cluster.to_string().contains("127.0.0."), "addresses in the public stat: {cluster}");
            break;
        }
        assert!(Instant::now() < deadline, "viewer count {n}, want at least 8; cluster stat {cluster}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let metrics = nodes[2].client.get(format!("{}/metrics", nodes[2].api)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("microvibe_cluster_nodes 3"), "{metrics}");
    for node in ["node-0", "node-1", "node-2"] {
        assert!(metrics.contains(&format!("microvibe_cluster_node_players{{node=\"{node}\"}}")), "{metrics}");
    }
    assert!(metrics.contains("microvibe_cluster_node_streams{node=\"node-0\"} 1"), "{metrics}");
    // The players leave: each edge stops its relay after its idle time (HLS viewers
    // count until three target durations without a request).
    drop(players);
    let deadline = Instant::now() + Duration::from_secs(45);
    while origin_clients(&nodes[0], &name).await.0 > 0 {
        assert!(
            Instant::now() < deadline,
            "relays still pulling after the players left: {:?}\n{}",
            nodes[0].stat_json_admin().await,
            nodes[1]
                .log()
                .lines()
                .filter(|l| l.contains("relay") || l.contains("player"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(nodes[1].log().contains("relay: no players left"), "{}", nodes[1].log());
    drop(nodes);
    drop_pg_schema(&shared.schema).await;
}

fn edge_player_grew(before: usize, r: &EdgeReader) -> bool {
    r.bytes() > before
}

/// Reads an HTTP-FLV stream on a thread, recording the bytes and the longest pause.
struct EdgeReader {
    bytes: Arc<AtomicUsize>,
    gap_ms: Arc<AtomicUsize>,
    open: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl EdgeReader {
    fn start(http: &str, name: &str) -> EdgeReader {
        EdgeReader::http(http, name, false)
    }

    /// An HTTP-FLV (or WebSocket-FLV) player of `name` at `http`.
    fn http(http: &str, name: &str, websocket: bool) -> EdgeReader {
        use std::io::Write;
        let mut sock = std::net::TcpStream::connect(http.trim_start_matches("http://")).unwrap();
        let upgrade = if websocket {
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        } else {
            ""
        };
        write!(sock, "GET /flv/{name}.flv HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        EdgeReader::from_reader(sock)
    }

    /// Reads `src` on a thread (at most 120 s), recording the bytes and the longest pause.
    fn from_reader(mut src: impl std::io::Read + Send + 'static) -> EdgeReader {
        let r = EdgeReader {
            bytes: Arc::default(),
            gap_ms: Arc::default(),
            open: Arc::new(AtomicBool::new(true)),
            stop: Arc::default(),
        };
        let (bytes, gap, open, stop) = (r.bytes.clone(), r.gap_ms.clone(), r.open.clone(), r.stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut last: Option<Instant> = None;
            // Bounded: 120 s at most.
            let until = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                match src.read(&mut buf) {
                    Ok(0) => {
                        open.store(false, Ordering::Relaxed);
                        return;
                    }
                    Ok(n) => {
                        if let Some(t) = last {
                            gap.fetch_max(t.elapsed().as_millis() as usize, Ordering::Relaxed);
                        }
                        last = Some(Instant::now());
                        bytes.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => {
                        open.store(false, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
        r
    }

    fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Stops reading: (longest gap, still open).
    fn stop(&self) -> (Duration, bool) {
        let open = self.open.load(Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        (Duration::from_millis(self.gap_ms.load(Ordering::Relaxed) as u64), open)
    }
}

/// The output of an aiortc viewer's "done" line, within `within`.
async fn whep_done(url: String, within: Duration) -> Value {
    tokio::task::spawn_blocking(move || {
        let sub = Peer::spawn(&["subscribe", &url, "--min-frames", "60", "--timeout", "40", "--delete"]);
        sub.wait("done", within)
    })
    .await
    .unwrap()
}

fn assert_720p_with_tone(done: &Value, what: &str) {
    assert!(done["video_frames"].as_u64().unwrap_or(0) >= 60, "{what}: {done}");
    assert_eq!((done["width"].as_u64(), done["height"].as_u64()), (Some(1280), Some(720)), "{what}: {done}");
    assert!(done["audio_frames"].as_u64().unwrap_or(0) > 50, "{what}: {done}");
    let tone = done["audio_tone_hz"].as_f64().unwrap_or(0.0);
    assert!((380.0..500.0).contains(&tone), "{what}: expected the 440 Hz tone, measured {tone} Hz: {done}");
}

/// WebRTC across nodes, in a network namespace of the test's own (with its own
/// PostgreSQL and Redis, the machine's are outside it): an RTMP publisher on node 0
/// is watched over WHEP on nodes 1 and 2 (each through its relay; H.264 at the
/// fixture's 1280x720, the 440 Hz tone in Opus); then a WHIP publisher on node 1 is
/// played over HTTP-FLV and HLS (H.264 + AAC) on node 2 and over WHEP on node 0, which
/// gets the publisher's Opus untouched through the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_players_and_publishers_on_different_nodes() {
    if !enter_netns("webrtc_players_and_publishers_on_different_nodes") {
        return;
    }
    let _pg = OwnPostgres::start(5432);
    let _redis = OwnRedis::start(6379);
    let shared = Shared::new("rtc", "roundrobin");
    let nodes = shared.nodes().await;
    wait_nodes(&nodes[0], 3, Duration::from_secs(10)).await;
    let (_, created) = rooms(&nodes[0], 2).await;
    let (id, key, name) = room_ids(&created[0]);
    let _publisher = publish(&nodes[0], &key);
    nodes[2].wait_status(id, "live", Duration::from_secs(15)).await;
    let (on1, on2) = tokio::join!(
        whep_done(format!("{}/whep/{name}", nodes[1].api), Duration::from_secs(55)),
        whep_done(format!("{}/whep/{name}", nodes[2].api), Duration::from_secs(55)),
    );
    println!("WHEP on node 1: {on1}\nWHEP on node 2: {on2}");
    assert_720p_with_tone(&on1, &format!("WHEP on node 1\n{}", nodes[1].log()));
    assert_720p_with_tone(&on2, "WHEP on node 2");
    let (relays, viewers) = origin_clients(&nodes[0], &name).await;
    assert!(relays <= 2 && viewers == 0, "the origin served {relays} relays and {viewers} viewers");

    // WHIP on node 1 (H.264 + Opus), played on the other two.
    let (id2, key2, name2) = room_ids(&created[1]);
    let whip = format!("{}/whip/{name2}", nodes[1].api);
    let publisher = Peer::spawn(&["publish", &whip, "--key", &key2, "--codec", "h264", "--seconds", "60", "--tone"]);
    let created_whip = tokio::task::spawn_blocking(move || {
        let c = publisher.wait("created", Duration::from_secs(20));
        (publisher, c)
    })
    .await
    .unwrap();
    assert_eq!(created_whip.1["status"], 201, "{}", created_whip.1);
    nodes[0].wait_status(id2, "live", Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let flv = format!("{}/flv/{name2}.flv", nodes[2].http);
    let streams = tokio::task::spawn_blocking({
        let flv = flv.clone();
        move || media::ffprobe(&flv)
    })
    .await
    .unwrap();
    let codecs: Vec<&str> = streams.iter().map(|(c, _, _)| c.as_str()).collect();
    assert!(codecs.contains(&"h264") && codecs.contains(&"aac"), "HTTP-FLV on node 2: {streams:?}\n{}", nodes[2].log());
    let (ok, err) = tokio::task::spawn_blocking(move || decode(&flv, 3)).await.unwrap();
    assert!(ok, "HTTP-FLV on node 2 of a WHIP stream: {err}");
    // HLS on node 2 too (its segmenter starts with the first request).
    let m3u8 = format!("{}/hls/{name2}.m3u8", nodes[2].http);
    let _ = reqwest::get(m3u8.as_str()).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let hls_streams = tokio::task::spawn_blocking({
        let m3u8 = m3u8.clone();
        move || media::ffprobe(&m3u8)
    })
    .await
    .unwrap();
    let codecs: Vec<&str> = hls_streams.iter().map(|(c, _, _)| c.as_str()).collect();
    assert!(codecs.contains(&"h264") && codecs.contains(&"aac"), "HLS on node 2: {hls_streams:?}\n{}", nodes[2].log());
    let (ok, err) = tokio::task::spawn_blocking(move || decode(&m3u8, 2)).await.unwrap();
    assert!(ok, "HLS on node 2 of a WHIP stream: {err}");
    // Node 0's WebRTC viewer gets the publisher's Opus as it came through the relay:
    // the stream's bridges there say "opus-relayed" while it plays.
    let viewer = tokio::spawn(whep_done(format!("{}/whep/{name2}", nodes[0].api), Duration::from_secs(55)));
    let deadline = Instant::now() + Duration::from_secs(20);
    let relayed = loop {
        let stat = nodes[0].stat_json().await;
        let st = stat["streams"].as_array().and_then(|a| a.iter().find(|s| s["name"] == name2.as_str()).cloned());
        let bridges = st.as_ref().map(|s| s["bridges"].to_string()).unwrap_or_default();
        if bridges.contains("opus-relayed") {
            break st.unwrap();
        }
        assert!(Instant::now() < deadline, "no Opus passthrough on node 0: {st:?}\n{}", nodes[0].log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let on0 = viewer.await.unwrap();
    println!("node 0's stream while relaying Opus: {relayed}");
    println!("HTTP-FLV on node 2 of the WHIP stream: {streams:?}\nWHEP on node 0 of it: {on0}");
    assert!(on0["video_frames"].as_u64().unwrap_or(0) >= 60, "WHEP on node 0 of a WHIP stream: {on0}");
    let tone = on0["audio_tone_hz"].as_f64().unwrap_or(0.0);
    assert!((380.0..500.0).contains(&tone), "WHEP on node 0: the tone measured {tone} Hz: {on0}");
    drop(created_whip);
    drop(nodes);
}

/// The room WebSocket across nodes, with Chromium (in a network namespace of the
/// test's own, with its own PostgreSQL and Redis): the viewer's socket is on node 1,
/// the publisher's on node 0. The viewer is told the room is idle, then live, offers
/// to node 1 (which relays the stream from node 0), and plays video and audio; both
/// sockets get `viewer_count` ≥ 1 (the cluster's count) and the publisher is told when
/// the stream ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_websocket_publisher_and_viewer_on_different_nodes() {
    if !enter_netns("room_websocket_publisher_and_viewer_on_different_nodes") {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    media::require_browser_tools(&root.join("tests/browser"));
    let _pg = OwnPostgres::start(5432);
    let _redis = OwnRedis::start(6379);
    let shared = Shared::new("ws", "roundrobin");
    let nodes = shared.nodes().await;
    wait_nodes(&nodes[0], 3, Duration::from_secs(10)).await;
    let (token, created) = rooms(&nodes[0], 1).await;
    let id = created[0]["id"].as_i64().unwrap();
    let args = json!({
        "api": nodes[0].api,
        "ws": {"room_id": id, "token": token, "publisher_api": nodes[0].api, "viewer_api": nodes[1].api},
        "timeout_secs": 30,
    })
    .to_string();
    let out = media::run_browser_script("webrtc.mjs", args, 180).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let r: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["scenario"] == "ws")
        .unwrap_or_else(|| panic!("no ws result: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let ctx = || format!("{r}\nnode 1 log:\n{}", nodes[1].log());
    println!("viewer on node 1: {}", r["viewer"]);
    assert!(r["viewer"]["frames_decoded"].as_u64().unwrap_or(0) > 0, "no video decoded on node 1: {}", ctx());
    let samples = r["viewer"]["audio_samples"].as_array().cloned().unwrap_or_default();
    let grew = samples.len() == 2 && samples[1].as_u64() > samples[0].as_u64() && samples[0].as_u64() > Some(0);
    assert!(grew, "no audio on node 1: {}", ctx());
    assert_eq!(r["viewer_messages"]["ok"], true, "viewer: viewer_count >= 1 and live: {}", ctx());
    assert_eq!(r["publisher_messages"]["ok"], true, "publisher: viewer_count >= 1 and live: {}", ctx());
    assert_eq!(r["publisher_ended"]["ok"], true, "publisher told the stream ended: {}", ctx());
    assert_eq!(r["ok"], true, "{}", ctx());
    assert!(nodes[1].log().contains("relay: pulling the stream from its origin node"), "{}", nodes[1].log());
    nodes[2].wait_status(id, "idle", Duration::from_secs(15)).await;
}

/// The newest HLS segment's sequence number in a media playlist.
fn last_segment(playlist: &str) -> Option<u64> {
    let first: u64 = playlist.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?.trim().parse().ok()?;
    let n = playlist.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    n.checked_sub(1).map(|k| first + k)
}

/// Polls an HLS playlist as a player does (every 200 ms) until `stop`: the longest
/// time without a new segment, and whether a discontinuity was marked.
async fn watch_hls(url: String, stop: Arc<AtomicBool>) -> (Duration, bool) {
    let client = reqwest::Client::new();
    let (mut last, mut since, mut longest, mut discontinuity) = (None, Instant::now(), Duration::ZERO, false);
    // Bounded: 120 s at most.
    let until = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        if let Ok(r) = client.get(&url).send().await {
            let text = r.text().await.unwrap_or_default();
            discontinuity |= text.contains("#EXT-X-DISCONTINUITY\n");
            let seg = last_segment(&text);
            if seg.is_some() && seg != last {
                if last.is_some() {
                    longest = longest.max(since.elapsed());
                }
                (last, since) = (seg, Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (longest.max(since.elapsed()), discontinuity)
}

/// The origin killed while an edge serves every protocol (in a network namespace
/// with the test's own PostgreSQL and Redis, for WebRTC): the publisher's reconnect
/// makes node 1 the origin and node 2's players go on. Measured per protocol: the
/// longest pause in what each received, and whether it kept its connection (HTTP-FLV,
/// WS-FLV, RTMP and WHEP keep theirs; HLS players poll and see the next segment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_killed_edge_players_of_every_protocol_go_on() {
    if !enter_netns("origin_killed_edge_players_of_every_protocol_go_on") {
        return;
    }
    let _pg = OwnPostgres::start(5432);
    let _redis = OwnRedis::start(6379);
    let shared = Shared::new("gaps", "roundrobin");
    let mut nodes = shared.nodes().await;
    wait_nodes(&nodes[2], 3, Duration::from_secs(10)).await;
    let (_, created) = rooms(&nodes[2], 1).await;
    let (id, key, name) = room_ids(&created[0]);
    let publisher = PublishLoop::start(vec![format!("{}/{key}", nodes[0].rtmp), format!("{}/{key}", nodes[1].rtmp)]);
    nodes[2].wait_status(id, "live", Duration::from_secs(15)).await;
    let edge = &nodes[2];
    let flv = EdgeReader::http(&edge.http, &name, false);
    let ws = EdgeReader::http(&edge.http, &name, true);
    let mut rtmp_proc = Proc(
        Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(format!("{}/{name}", edge.rtmp))
            .args(["-c", "copy", "-f", "flv", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let rtmp = EdgeReader::from_reader(rtmp_proc.0.stdout.take().unwrap());
    let hls_stop = Arc::new(AtomicBool::new(false));
    let hls = tokio::spawn(watch_hls(format!("{}/hls/{name}.m3u8", edge.http), hls_stop.clone()));
    // 20 s of WebRTC: 600 frames at 30 fps, on either side of the failover.
    let whep = format!("{}/whep/{name}", edge.api);
    let webrtc = tokio::task::spawn_blocking(move || {
        let sub = Peer::spawn(&["subscribe", &whep, "--min-frames", "600", "--timeout", "40"]);
        sub.wait("done", Duration::from_secs(50))
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (what, r) in [("HTTP-FLV", &flv), ("WS-FLV", &ws), ("RTMP", &rtmp)] {
        assert!(r.bytes() > 0, "the edge's {what} player got nothing:\n{}", edge.log());
    }

    let killed = Instant::now();
    nodes[0].proc.signal("KILL");
    let mut moved = None;
    while killed.elapsed() < Duration::from_secs(20) {
        let r = nodes[2].room_json(id).await;
        assert_eq!(r["status"], "live", "the room left live: {r}");
        if r["nodes"]["push"] == "node-1" {
            moved = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let moved = moved.expect("the stream never moved to node 1");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rtmp_alive = rtmp_proc.0.try_wait().unwrap().is_none();
    let gaps = [("HTTP-FLV", flv.stop()), ("WS-FLV", ws.stop()), ("RTMP", rtmp.stop())];
    hls_stop.store(true, Ordering::Relaxed);
    let (hls_gap, hls_discontinuity) = hls.await.unwrap();
    let done = webrtc.await.unwrap();
    println!("origin killed: the stream moved to node 1 after {moved:?}");
    for (what, (gap, open)) in &gaps {
        println!("edge {what} player: longest pause {gap:?}, connection kept: {open}");
    }
    println!(
        "edge HLS player: longest time without a new segment {hls_gap:?}, discontinuity marked: {hls_discontinuity}"
    );
    println!("edge WHEP viewer: {done}");
    for (what, (gap, open)) in &gaps {
        assert!(*open, "the edge's {what} player lost its connection:\n{}", nodes[2].log());
        assert!(*gap < Duration::from_secs(5), "the edge's {what} player paused {gap:?}");
    }
    assert!(rtmp_alive, "the RTMP player (ffmpeg) stopped");
    assert!(hls_gap < Duration::from_secs(10), "HLS: {hls_gap:?} without a new segment");
    assert_eq!(done["state"], "connected", "the WHEP viewer's session ended: {done}");
    assert!(done["video_frames"].as_u64().unwrap_or(0) >= 600, "{done}");
    let webrtc_gap = done["max_gap_secs"].as_f64().unwrap_or(f64::MAX);
    assert!(webrtc_gap < 5.0, "the WHEP viewer paused {webrtc_gap} s: {done}");
    drop(publisher);
    nodes.clear();
}

/// A dead edge: its players' connections end, and within the node TTL the room's
/// answers send players only to live nodes, where they play.
#[tokio::test]
async fn a_dead_edge_is_left_out_of_the_answers() {
    let shared = Shared::new("edge", "roundrobin");
    let mut nodes = shared.nodes().await;
    wait_nodes(&nodes[0], 3, Duration::from_secs(10)).await;
    let (_, created) = rooms(&nodes[0], 1).await;
    let (id, key, name) = room_ids(&created[0]);
    let _publisher = publish(&nodes[0], &key);
    nodes[0].wait_status(id, "live", Duration::from_secs(15)).await;
    let player = EdgeReader::start(&nodes[2].http, &name);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(player.bytes() > 0, "the edge player got nothing:\n{}", nodes[2].log());
    let killed = Instant::now();
    nodes[2].proc.signal("KILL");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!player.open.load(Ordering::Relaxed), "the dead edge's player still looks connected");
    // Gone from the registry within the TTL (6 s): from then on no answer names it.
    // Node 1 answers below, so its own view is the one to wait for (it reuses a
    // read of the registry for half a second).
    let listed = wait_nodes(&nodes[1], 2, Duration::from_secs(12)).await;
    println!("dead edge left the registry after {:?}", killed.elapsed());
    assert!(listed.iter().all(|v| v["id"] != "node-2"), "{listed:?}");
    let mut plays = BTreeMap::new();
    for _ in 0..6 {
        let r = nodes[1].room_json(id).await;
        let node = r["nodes"]["play"].as_str().unwrap().to_owned();
        assert_ne!(node, "node-2", "{r}");
        *plays.entry(node).or_insert(0) += 1;
        let url = r["play"]["flv"].as_str().unwrap().to_owned();
        let (ok, err) = tokio::task::spawn_blocking(move || decode(&url, 1)).await.unwrap();
        assert!(ok, "the answer's HTTP-FLV URL: {err}");
    }
    assert_eq!(plays.len(), 2, "players spread over the live nodes: {plays:?}");
    nodes.truncate(2);
    drop(nodes);
    drop_pg_schema(&shared.schema).await;
}
