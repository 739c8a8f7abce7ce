//! Cluster mode: several nodes on one PostgreSQL (rooms, broadcasts) and one Redis
//! (membership, leases). No consensus of our own: Redis keys with a TTL say who is
//! alive and who is a stream's origin; PostgreSQL stays the truth of room status.
//!
//! - **Membership**: every node writes its [`NodeRecord`] every `heartbeat_ms`
//!   with a TTL of `node_ttl_ms` and adds its id to a set; a record that was not
//!   refreshed is gone, and the set is pruned of it when read.
//! - **Origin leases**: the node that has a stream's publisher holds
//!   `cluster:origin:<stream>` = "node instance epoch" with the same TTL, renewed
//!   with the heartbeat. Taking it always succeeds (the newest publisher wins, as on
//!   one node) and bumps the stream's epoch; the node that held it sees at its next
//!   renewal that the value is not its own and drops its publisher. A renewal that
//!   finds the key gone (Redis restarted) takes it back only if no newer epoch was
//!   handed out meanwhile, so a stream never has two origins.
//! - **Rooms**: a room the store calls live whose lease has been gone for the
//!   unpublish grace (its node died and the publisher came back nowhere) is ended
//!   by whichever node sees it first ("node_lost"); a node that is a stream's origin
//!   while the store calls its room idle marks it live again. Both are idempotent.
//! - **Placement**: see [`place`].

pub mod place;

use crate::app::AppState;
use crate::cache::CacheError;
use crate::cache::redis::{LazyConn, map};
use crate::config::{Config, LoadBalance};
use crate::store::{EndReason, RoomFilter, RoomStatus};
use ::redis::aio::ConnectionManager;
use ::redis::{AsyncCommands, Script};
use place::{Capacity, Load, NodeRecord};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a read of the node list is reused (room answers and counts read it).
const NODES_FRESH: Duration = Duration::from_millis(500);
/// How long a room keeps the node its push URLs were placed on.
const PLACEMENT_TTL_SECS: u64 = 24 * 3600;
/// How long a drain mark lasts unless taken off (a node drained and never undrained
/// is usually gone for good).
const DRAIN_TTL_SECS: u64 = 30 * 24 * 3600;
/// How long a stream's epoch counter outlives its last lease.
const EPOCH_TTL_SECS: u64 = 7 * 24 * 3600;

/// This node's claim on a stream it publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub room_id: i64,
    /// The lease's epoch; None while it could not be taken (Redis unreachable).
    pub epoch: Option<u64>,
}

/// Who holds a stream's origin lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub node: String,
    pub instance: String,
    pub epoch: u64,
}

impl Holder {
    fn parse(v: &str) -> Option<Holder> {
        let mut it = v.split(' ');
        let (node, instance, epoch) = (it.next()?, it.next()?, it.next()?.parse().ok()?);
        Some(Holder { node: node.into(), instance: instance.into(), epoch })
    }
}

/// Where a room's clients are sent.
#[derive(Debug, Clone)]
pub struct Placement {
    pub push: NodeRecord,
    pub play: NodeRecord,
}

/// Counters sampled between heartbeats.
struct Sampler {
    at: Instant,
    cpu_us: u64,
    bytes_out: u64,
}

pub struct Cluster {
    pub id: String,
    pub instance: String,
    pub method: LoadBalance,
    peers: Vec<String>,
    heartbeat: Duration,
    ttl: Duration,
    /// A live room without a lease is ended after this long.
    grace: Duration,
    /// This node's record; its load is refreshed by every heartbeat.
    me: Mutex<NodeRecord>,
    conn: LazyConn,
    prefix: String,
    origins: Mutex<HashMap<String, Origin>>,
    nodes: Mutex<Option<(Instant, Arc<Vec<NodeRecord>>)>>,
    sampler: Mutex<Sampler>,
    acquire: Script,
    renew: Script,
    release: Script,
}

fn unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The process's CPU time (user + system) in microseconds.
fn cpu_time_us() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct we pass.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

impl Cluster {
    /// Builds this node's identity and addresses from the config (validated:
    /// cluster mode has Redis and an advertised host).
    pub fn new(cfg: &Config) -> anyhow::Result<Cluster> {
        use rand::RngCore;
        let host = place::url_host(&cfg.advertise_host());
        let port = |listen: &str| listen.parse::<std::net::SocketAddr>().map(|a| a.port()).unwrap_or(0);
        let or = |v: &str, default: String| {
            if v.trim().is_empty() { default } else { v.trim().trim_end_matches('/').to_owned() }
        };
        let c = &cfg.cluster;
        let id = if c.node_id.is_empty() { cfg.advertise_host() } else { c.node_id.clone() };
        let app = cfg.rtmp.apps.first().cloned().unwrap_or_else(|| "live".into());
        let shards = if cfg.engine.shards > 0 {
            cfg.engine.shards
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        let webrtc_ports = (cfg.sfu.enabled && cfg.webrtc.udp_port_base > 0)
            .then(|| (cfg.webrtc.udp_port_base, cfg.webrtc.udp_port_base.saturating_add(shards as u16 - 1)));
        let record = NodeRecord {
            id: id.clone(),
            instance: format!("{:016x}", rand::rng().next_u64()),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: unix_ms(),
            seen_at: unix_ms(),
            api: or(&c.api_url, format!("http://{host}:{}", cfg.server.port)),
            rtmp: or(&c.rtmp_url, format!("rtmp://{host}:{}/{app}", port(&cfg.rtmp.listen))),
            media: or(&c.media_url, format!("http://{host}:{}", port(&cfg.http_media.listen))),
            relay: or(&c.relay_url, or(&c.media_url, format!("http://{host}:{}", port(&cfg.http_media.listen)))),
            webrtc_ports,
            webrtc_candidates: cfg.webrtc.candidates.clone(),
            capacity: Capacity { shards, max_connections: cfg.engine.max_connections },
            load: Load::default(),
            streams: vec![],
            viewers: BTreeMap::new(),
            draining: false,
        };
        Ok(Cluster {
            id,
            instance: record.instance.clone(),
            method: cfg.sfu.method(),
            peers: cfg.sfu.cluster_nodes.iter().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect(),
            heartbeat: Duration::from_millis(c.heartbeat_ms),
            ttl: Duration::from_millis(c.node_ttl_ms),
            grace: Duration::from_secs(cfg.engine.unpublish_grace_secs).max(Duration::from_millis(c.node_ttl_ms)),
            me: Mutex::new(record),
            conn: LazyConn::new(&cfg.redis).map_err(|e| anyhow::anyhow!("redis: {e}"))?,
            prefix: format!("{}cluster:", cfg.redis.key_prefix),
            origins: Mutex::new(HashMap::new()),
            nodes: Mutex::new(None),
            sampler: Mutex::new(Sampler { at: Instant::now(), cpu_us: cpu_time_us(), bytes_out: 0 }),
            // KEYS: lease, epoch counter. ARGV: "node instance", ttl ms, epoch ttl s.
            // Returns {epoch, previous holder or false}.
            acquire: Script::new(
                "local e = redis.call('INCR', KEYS[2]) redis.call('EXPIRE', KEYS[2], ARGV[3]) \
                 local prev = redis.call('GET', KEYS[1]) \
                 redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. e, 'PX', ARGV[2]) return {e, prev}",
            ),
            // KEYS: lease, epoch counter. ARGV: holder value, ttl ms, our epoch.
            // 1 renewed, 2 taken back after a loss of the key, 0 lost to another.
            renew: Script::new(
                "local v = redis.call('GET', KEYS[1]) \
                 if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end \
                 if v then return 0 end \
                 local e = tonumber(redis.call('GET', KEYS[2]) or '0') \
                 if e > tonumber(ARGV[3]) then return 0 end \
                 redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) \
                 redis.call('SET', KEYS[2], ARGV[3]) return 2",
            ),
            // KEYS: lease. ARGV: holder value. 1 when it was ours and is gone.
            release: Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            ),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, CacheError> {
        self.conn.get().await
    }

    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }

    fn holder_value(&self, epoch: u64) -> String {
        format!("{} {} {epoch}", self.id, self.instance)
    }

    /// This node's record as last written.
    pub fn me(&self) -> NodeRecord {
        self.me.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Streams this node is the origin of now.
    pub fn origins(&self) -> HashMap<String, Origin> {
        self.origins.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes this node the origin of `stream` (a publisher arrived here). Returns the
    /// previous holder when another node (or an earlier run of this one) had it.
    /// When Redis is unreachable the stream is still ours locally and the lease is
    /// taken at a later heartbeat.
    pub async fn acquire(&self, stream: &str, room_id: i64) -> Result<Option<Holder>, CacheError> {
        self.origins.lock().unwrap_or_else(|p| p.into_inner()).insert(stream.into(), Origin { room_id, epoch: None });
        let mut c = self.conn().await?;
        let (epoch, prev): (u64, Option<String>) = self
            .acquire
            .key(self.key(&format!("origin:{stream}")))
            .key(self.key(&format!("epoch:{stream}")))
            .arg(format!("{} {}", self.id, self.instance))
            .arg(self.ttl.as_millis() as u64)
            .arg(EPOCH_TTL_SECS)
            .invoke_async(&mut c)
            .await
            .map_err(map)?;
        if let Some(o) = self.origins.lock().unwrap_or_else(|p| p.into_inner()).get_mut(stream) {
            o.epoch = Some(epoch);
        }
        let prev = prev.as_deref().and_then(Holder::parse);
        Ok(prev.filter(|h| !(h.node == self.id && h.instance == self.instance)))
    }

    /// The stream's publisher left this node: gives up the lease. True when this
    /// node still held it (the broadcast ends), false when another node has taken
    /// the stream over (the broadcast goes on there).
    pub async fn release(&self, stream: &str) -> Result<bool, CacheError> {
        let origin = self.origins.lock().unwrap_or_else(|p| p.into_inner()).remove(stream);
        let Some(Origin { epoch: Some(epoch), .. }) = origin else {
            // Never leased: nobody else can hold it on our behalf; the room is ours to end.
            return Ok(true);
        };
        let mut c = self.conn().await?;
        let n: i64 = self
            .release
            .key(self.key(&format!("origin:{stream}")))
            .arg(self.holder_value(epoch))
            .invoke_async(&mut c)
            .await
            .map_err(map)?;
        if n == 1 {
            return Ok(true);
        }
        // Not ours any more: someone took it over, or Redis lost the key (then nobody has it).
        Ok(self.holder(stream).await?.is_none())
    }

    /// Who holds the stream's origin lease.
    pub async fn holder(&self, stream: &str) -> Result<Option<Holder>, CacheError> {
        let mut c = self.conn().await?;
        let v: Option<String> = c.get(self.key(&format!("origin:{stream}"))).await.map_err(map)?;
        Ok(v.as_deref().and_then(Holder::parse))
    }

    /// The HTTP media address of the node that is the stream's origin, when that is
    /// another live node (None: nobody, or this node).
    pub async fn origin_media_addr(&self, stream: &str) -> Result<Option<std::net::SocketAddr>, CacheError> {
        let Some(holder) = self.holder(stream).await? else { return Ok(None) };
        if holder.node == self.id {
            return Ok(None);
        }
        let nodes = self.nodes().await?;
        let Some(node) = nodes.iter().find(|n| n.id == holder.node && n.instance == holder.instance) else {
            return Ok(None);
        };
        let base = if node.relay.is_empty() { &node.media } else { &node.relay };
        let hostport = base.split("://").nth(1).unwrap_or(base);
        let hostport = hostport.split('/').next().unwrap_or(hostport);
        Ok(tokio::net::lookup_host(hostport).await.ok().and_then(|mut a| a.next()))
    }

    /// Writes this node's record and renews its leases. Returns the streams whose
    /// lease another node now holds (their publisher must go).
    async fn beat(&self, state: &AppState) -> Result<Vec<String>, CacheError> {
        let mut c = self.conn().await?;
        let draining: Option<String> = c.get(self.key(&format!("drain:{}", self.id))).await.map_err(map)?;
        self.me.lock().unwrap_or_else(|p| p.into_inner()).draining = draining.is_some();
        let record = self.refresh_record(state);
        let json = serde_json::to_string(&record).unwrap_or_default();
        let _: () =
            c.pset_ex(self.key(&format!("node:{}", self.id)), json, self.ttl.as_millis() as u64).await.map_err(map)?;
        let _: i64 = c.sadd(self.key("nodes"), &self.id).await.map_err(map)?;
        let mut lost = vec![];
        for (stream, origin) in self.origins() {
            let Some(epoch) = origin.epoch else {
                // Not leased yet (Redis was down when the publisher came): take it now.
                if let Some(prev) = self.acquire(&stream, origin.room_id).await? {
                    tracing::warn!(stream = %stream, previous = %prev.node, "origin lease taken late; another node had it");
                }
                continue;
            };
            let r: i64 = self
                .renew
                .key(self.key(&format!("origin:{stream}")))
                .key(self.key(&format!("epoch:{stream}")))
                .arg(self.holder_value(epoch))
                .arg(self.ttl.as_millis() as u64)
                .arg(epoch)
                .invoke_async(&mut c)
                .await
                .map_err(map)?;
            match r {
                0 => {
                    let mut origins = self.origins.lock().unwrap_or_else(|p| p.into_inner());
                    // Still the same claim (not re-acquired by a new publisher meanwhile).
                    if origins.get(&stream).is_some_and(|o| o.epoch == Some(epoch)) {
                        origins.remove(&stream);
                        lost.push(stream);
                    }
                }
                2 => tracing::warn!(stream = %stream, epoch, "origin lease was lost by Redis; taken back"),
                _ => {}
            }
        }
        Ok(lost)
    }

    /// Updates this node's record with its load now.
    fn refresh_record(&self, state: &AppState) -> NodeRecord {
        let (players, bytes_out, viewers) = match &state.engine {
            Some(e) => (e.players(), e.bytes_out(), e.room_viewers()),
            None => (vec![], 0, vec![]),
        };
        let (cpu, egress_mbps) = {
            let mut s = self.sampler.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let secs = now.duration_since(s.at).as_secs_f64().max(0.001);
            let cpu_us = cpu_time_us();
            let cpu = cpu_us.saturating_sub(s.cpu_us) as f64 / 1e6 / secs;
            let mbps = bytes_out.saturating_sub(s.bytes_out) as f64 * 8.0 / 1e6 / secs;
            *s = Sampler { at: now, cpu_us, bytes_out };
            ((cpu * 1000.0).round() / 1000.0, (mbps * 1000.0).round() / 1000.0)
        };
        let mut streams: Vec<String> = self.origins().into_keys().collect();
        streams.sort();
        let mut me = self.me.lock().unwrap_or_else(|p| p.into_inner());
        me.seen_at = unix_ms();
        me.load = Load {
            streams: streams.len() as u64,
            players: players.into_iter().map(|(p, n)| (p.to_owned(), n)).collect(),
            egress_mbps,
            cpu,
        };
        me.streams = streams;
        me.viewers = viewers.into_iter().filter(|(_, n)| *n > 0).collect();
        me.clone()
    }

    /// The registered nodes, in id order (this node's own record is the local one).
    pub async fn nodes(&self) -> Result<Arc<Vec<NodeRecord>>, CacheError> {
        if let Some((at, nodes)) = self.nodes.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if at.elapsed() < NODES_FRESH {
                return Ok(nodes.clone());
            }
        }
        let mut c = self.conn().await?;
        let mut ids: Vec<String> = c.smembers(self.key("nodes")).await.map_err(map)?;
        ids.sort();
        let mut out = vec![];
        if !ids.is_empty() {
            let keys: Vec<String> = ids.iter().map(|id| self.key(&format!("node:{id}"))).collect();
            let values: Vec<Option<String>> = ::redis::cmd("MGET").arg(&keys).query_async(&mut c).await.map_err(map)?;
            let mut gone = vec![];
            for (id, v) in ids.iter().zip(values) {
                match v.as_deref().map(serde_json::from_str::<NodeRecord>) {
                    Some(Ok(n)) => out.push(n),
                    Some(Err(e)) => tracing::warn!(node = %id, error = %e, "unreadable node record"),
                    None => gone.push(id.clone()),
                }
            }
            if !gone.is_empty() {
                let _: i64 = c.srem(self.key("nodes"), &gone).await.map_err(map)?;
            }
        }
        // Our own record is always current here (even before its first write).
        let me = self.me();
        out.retain(|n| n.id != me.id);
        out.push(me);
        out.sort_by(|a, b| a.id.cmp(&b.id));
        // Drain flags act at once (not at the drained node's next heartbeat).
        let keys: Vec<String> = out.iter().map(|n| self.key(&format!("drain:{}", n.id))).collect();
        let flags: Vec<Option<String>> = ::redis::cmd("MGET").arg(&keys).query_async(&mut c).await.map_err(map)?;
        for (n, flag) in out.iter_mut().zip(flags) {
            n.draining = flag.is_some();
        }
        let out = Arc::new(out);
        *self.nodes.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), out.clone()));
        Ok(out)
    }

    /// Marks a registered node draining (it takes no new placements; its streams and
    /// players stay until they leave) or takes the mark off. False: no such node.
    pub async fn set_draining(&self, node: &str, draining: bool) -> Result<bool, CacheError> {
        *self.nodes.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if !self.nodes().await?.iter().any(|n| n.id == node) {
            return Ok(false);
        }
        let mut c = self.conn().await?;
        let key = self.key(&format!("drain:{node}"));
        if draining {
            let _: () = c.set_ex(&key, unix_ms(), DRAIN_TTL_SECS).await.map_err(map)?;
        } else {
            let _: i64 = c.del(&key).await.map_err(map)?;
        }
        if node == self.id {
            self.me.lock().unwrap_or_else(|p| p.into_inner()).draining = draining;
        }
        *self.nodes.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(true)
    }

    async fn counter(&self, name: &str) -> Result<u64, CacheError> {
        let mut c = self.conn().await?;
        c.incr(self.key(name), 1).await.map_err(map)
    }

    /// Picks a node for new work by the configured method.
    async fn pick(&self, nodes: &[NodeRecord], purpose: &str) -> Result<Option<NodeRecord>, CacheError> {
        let eligible = place::eligible(nodes, &self.peers);
        let counter = match self.method {
            LoadBalance::Random => 0,
            _ => self.counter(&format!("rr:{purpose}")).await?,
        };
        Ok(place::pick(self.method, &eligible, counter, rand::random()).cloned())
    }

    /// Where a room's publisher and players go: its origin while live; else the node
    /// the room was placed on (kept while that node lives), else a new pick.
    pub async fn place(&self, room_id: i64, stream: &str) -> Result<Option<Placement>, CacheError> {
        let nodes = self.nodes().await?;
        let by_id = |id: &str| nodes.iter().find(|n| n.id == id).cloned();
        if let Some(origin) = self.holder(stream).await?.and_then(|h| by_id(&h.node)) {
            // Players go where the method says: a node that is not the origin relays
            // the stream (one pull per node), so one stream's audience spreads.
            let play = self.pick(&nodes, "play").await?.unwrap_or_else(|| origin.clone());
            return Ok(Some(Placement { push: origin, play }));
        }
        let key = self.key(&format!("place:{room_id}"));
        let mut c = self.conn().await?;
        let placed: Option<String> = c.get(&key).await.map_err(map)?;
        let node = match placed.as_deref().and_then(by_id).filter(|n| !n.draining) {
            Some(n) => n,
            None => {
                let Some(n) = self.pick(&nodes, "push").await? else { return Ok(None) };
                let _: () = c.set_ex(&key, &n.id, PLACEMENT_TTL_SECS).await.map_err(map)?;
                n
            }
        };
        Ok(Some(Placement { push: node.clone(), play: node }))
    }

    /// A room's viewers on every node (this node's count is its engine's, current).
    pub async fn viewers(&self, room_id: i64, local: Option<i64>) -> Result<i64, CacheError> {
        let nodes = self.nodes().await?;
        let others: i64 =
            nodes.iter().filter(|n| n.id != self.id).map(|n| n.viewers.get(&room_id).copied().unwrap_or(0)).sum();
        Ok(others + local.unwrap_or_else(|| self.me().viewers.get(&room_id).copied().unwrap_or(0)))
    }

    /// Ends rooms left live by a dead node, and marks live the rooms this node
    /// originates that the store calls idle. `missing`: since when each live room
    /// has been seen without a lease.
    async fn sweep(&self, state: &AppState, missing: &mut HashMap<i64, Instant>) -> Result<(), CacheError> {
        let mut live = vec![];
        for page in 1.. {
            let filter =
                RoomFilter { status: Some(RoomStatus::Live), owner_id: None, page, page_size: 100, public_only: false };
            let Ok((rooms, _)) = state.list_rooms(&filter).await else { return Ok(()) };
            let n = rooms.len();
            live.extend(rooms);
            if n < 100 || page >= 1000 {
                break;
            }
        }
        let mut c = self.conn().await?;
        let origins = self.origins();
        let now = Instant::now();
        for chunk in live.chunks(100) {
            let keys: Vec<String> = chunk.iter().map(|r| self.key(&format!("origin:{}", r.stream_name))).collect();
            let values: Vec<Option<String>> = ::redis::cmd("MGET").arg(&keys).query_async(&mut c).await.map_err(map)?;
            for (room, v) in chunk.iter().zip(values) {
                match v.as_deref().and_then(Holder::parse) {
                    Some(h) if h.node == self.id && h.instance != self.instance => {
                        // An earlier run of this node (crashed, restarted): nothing is behind it.
                        let _: i64 = self
                            .release
                            .key(self.key(&format!("origin:{}", room.stream_name)))
                            .arg(v.unwrap_or_default())
                            .invoke_async(&mut c)
                            .await
                            .map_err(map)?;
                        if state.stream_ended(room.id, EndReason::ServerRestart).await.is_ok() {
                            tracing::warn!(room = room.id, stream = %room.stream_name, "room left live by this node's earlier run; broadcast ended");
                        }
                        missing.remove(&room.id);
                    }
                    Some(_) => {
                        missing.remove(&room.id);
                    }
                    None if origins.contains_key(&room.stream_name) => {
                        missing.remove(&room.id);
                    }
                    None => {
                        let since = *missing.entry(room.id).or_insert(now);
                        if now.duration_since(since) >= self.grace {
                            // Re-check: a publisher may have arrived somewhere meanwhile.
                            if self.holder(&room.stream_name).await?.is_none() {
                                if let Ok(Some(_)) = state.stream_ended(room.id, EndReason::NodeLost).await {
                                    tracing::warn!(room = room.id, stream = %room.stream_name, "origin node gone and no publisher came back; broadcast ended");
                                }
                            }
                            missing.remove(&room.id);
                        }
                    }
                }
            }
        }
        missing.retain(|id, _| live.iter().any(|r| r.id == *id));
        // Ours but idle in the store (a start that raced an end, or a lost write).
        for (stream, origin) in origins {
            if origin.epoch.is_some() && !live.iter().any(|r| r.id == origin.room_id) {
                let still = self.origins.lock().unwrap_or_else(|p| p.into_inner()).get(&stream) == Some(&origin);
                if still {
                    if let Ok(Some(_)) = state.stream_started(origin.room_id).await {
                        tracing::warn!(room = origin.room_id, stream = %stream, "origin's room was idle in the store; live again");
                    }
                }
            }
        }
        Ok(())
    }

    /// Heartbeats and sweeps until the process ends.
    pub async fn run(self: Arc<Self>, state: AppState) {
        let mut missing = HashMap::new();
        let mut tick = tokio::time::interval(self.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beats = 0u64;
        let mut down = false;
        tracing::info!(node = %self.id, instance = %self.instance, method = self.method.as_str(), api = %self.me().api, "cluster mode: registering in Redis");
        loop {
            tick.tick().await;
            match self.beat(&state).await {
                Ok(lost) => {
                    if down {
                        tracing::info!(node = %self.id, "Redis reachable again; registration and leases renewed");
                        down = false;
                    }
                    for stream in lost {
                        tracing::warn!(stream = %stream, "another node took this stream over (a newer publisher there); dropping it here");
                        state.engine_drop_stream(&stream);
                    }
                    if let (Some(engine), Ok(nodes)) = (&state.engine, self.nodes().await) {
                        engine.set_cluster_stat(place::summary(&self.id, &nodes).to_string());
                    }
                }
                Err(e) => {
                    if !down {
                        tracing::warn!(error = %e, "cluster heartbeat failed; media goes on, retrying");
                        down = true;
                    }
                    continue;
                }
            }
            // Sweep every other beat (the first right away: it is the start-up reconcile).
            if beats.is_multiple_of(2) {
                if let Err(e) = self.sweep(&state, &mut missing).await {
                    tracing::debug!(error = %e, "cluster sweep failed");
                }
            }
            beats += 1;
        }
    }
}
