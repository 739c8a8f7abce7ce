//! One conformance suite over the `Store` trait, run on both backends: SQLite (a
//! temp file) and PostgreSQL (its own schema in database `test`, dropped when the
//! test passes). PostgreSQL must be reachable at 127.0.0.1:5432; tests fail if not.

mod common;

use chrono::{DateTime, Utc};
use common::{Backend, test_config, unique};
use control::config::Config;
use control::store::migrations::{self, POSTGRES, SQLITE};
use control::store::{EndReason, NewRoom, PushProtocol, RecordingEnd, Room, RoomFilter, RoomStatus, Store, StoreError};
use std::sync::Arc;

/// A migrated (unless asked otherwise) store, isolated from every other test.
struct Ctx {
    store: Arc<dyn Store>,
    cfg: Config,
    backend: Backend,
    _dir: tempfile::TempDir,
}

async fn open_unmigrated(backend: Backend) -> Ctx {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = test_config(backend, dir.path());
    let store = control::app::open_store(&cfg).await.unwrap_or_else(|e| match backend {
        Backend::Embedded => panic!("cannot open SQLite at {}: {e}", cfg.database.sqlite_path),
        Backend::Production => panic!(
            "PostgreSQL must be reachable at {}:{} (database {:?}, user {:?}) for these tests: {e}",
            cfg.database.host, cfg.database.port, cfg.database.dbname, cfg.database.user
        ),
    });
    Ctx { store, cfg, backend, _dir: dir }
}

async fn open(backend: Backend) -> Ctx {
    let ctx = open_unmigrated(backend).await;
    ctx.store.migrate().await.unwrap_or_else(|e| panic!("{backend:?}: migrations failed: {e}"));
    ctx
}

impl Ctx {
    /// Drops the test's PostgreSQL schema (only reached when the test passed, so a
    /// failing test leaves its data behind for inspection).
    async fn finish(self) {
        if let Backend::Production = self.backend {
            let d = &self.cfg.database;
            let conn = format!("host={} port={} user={} dbname={}", d.host, d.port, d.user, d.dbname);
            let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL unreachable for cleanup: {e}"));
            let task = tokio::spawn(connection);
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", d.schema))
                .await
                .unwrap_or_else(|e| panic!("dropping schema {}: {e}", d.schema));
            drop(client);
            let _ = task.await;
        }
    }

    async fn user(&self, tag: &str) -> i64 {
        let name = unique(tag);
        self.store.create_user(&name, "Nick", "hash").await.unwrap_or_else(|e| panic!("create_user: {e}")).id
    }

    async fn room(&self, owner_id: i64) -> Room {
        self.room_with(owner_id, PushProtocol::Rtmp).await
    }

    async fn room_with(&self, owner_id: i64, push_protocol: PushProtocol) -> Room {
        self.store.create_room(&new_room(owner_id, push_protocol)).await.unwrap_or_else(|e| panic!("create_room: {e}"))
    }

    async fn get(&self, id: i64) -> Room {
        self.store.room_by_id(id).await.unwrap().unwrap_or_else(|| panic!("room {id} should exist"))
    }
}

fn new_room(owner_id: i64, push_protocol: PushProtocol) -> NewRoom {
    let key = unique("key");
    NewRoom {
        owner_id,
        title: "A title".into(),
        description: "A description".into(),
        stream_name: unique("sn"),
        stream_key_hash: format!("hash-of-{key}"),
        stream_key: key,
        push_protocol,
        private: false,
        record: false,
    }
}

fn latest(b: Backend) -> i64 {
    match b {
        Backend::Embedded => migrations::latest(SQLITE),
        Backend::Production => migrations::latest(POSTGRES),
    }
}

/// `t` is a real, recent UTC instant (the test machine and the database share a clock).
fn assert_recent(what: &str, t: DateTime<Utc>) {
    let age = Utc::now().signed_duration_since(t);
    assert!(age.num_seconds().abs() <= 5, "{what} = {t} is not within 5 s of now ({})", Utc::now());
}

fn assert_same_room(a: &Room, b: &Room) {
    assert_eq!(a.id, b.id);
    assert_eq!(a.owner_id, b.owner_id);
    assert_eq!(a.title, b.title);
    assert_eq!(a.description, b.description);
    assert_eq!(a.stream_name, b.stream_name);
    assert_eq!(a.stream_key, b.stream_key);
    assert_eq!(a.push_protocol, b.push_protocol);
    assert_eq!(a.status, b.status);
    assert_eq!(a.started_at, b.started_at);
    assert_eq!(a.ended_at, b.ended_at);
    assert_eq!(a.peak_viewers, b.peak_viewers);
    assert_eq!(a.broadcast_id, b.broadcast_id);
    assert_eq!(a.created_at, b.created_at);
    assert_eq!(a.updated_at, b.updated_at);
    assert_eq!(a.private, b.private);
    assert_eq!(a.play_epoch, b.play_epoch);
}

fn ids(rooms: &[Room]) -> Vec<i64> {
    rooms.iter().map(|r| r.id).collect()
}

fn filter(status: Option<RoomStatus>, owner_id: Option<i64>, page: u32, page_size: u32) -> RoomFilter {
    RoomFilter { status, owner_id, page, page_size, public_only: false }
}

async fn migrate_is_idempotent(b: Backend) {
    let ctx = open_unmigrated(b).await;
    let want = latest(b);
    assert!(want >= 1);
    ctx.store.ping().await.unwrap();
    let expected_name = match b {
        Backend::Embedded => "sqlite",
        Backend::Production => "postgres",
    };
    assert_eq!(ctx.store.backend(), expected_name);
    assert_eq!(ctx.store.schema_version().await.unwrap(), (0, want), "a fresh database is at version 0");

    let ran = ctx.store.migrate().await.unwrap();
    let count = match b {
        Backend::Embedded => SQLITE.len(),
        Backend::Production => POSTGRES.len(),
    };
    assert_eq!(ran.len(), count, "every migration runs once on a fresh database: {ran:?}");
    assert_eq!(ran[0], "0001_init");
    assert_eq!(ctx.store.schema_version().await.unwrap(), (want, want));

    let again = ctx.store.migrate().await.unwrap();
    assert!(again.is_empty(), "second migrate must be a no-op, ran {again:?}");
    assert_eq!(ctx.store.schema_version().await.unwrap(), (want, want));

    // A second handle on the same database sees the same version and has nothing to do.
    let other = control::app::open_store(&ctx.cfg).await.unwrap();
    assert_eq!(other.schema_version().await.unwrap(), (want, want));
    assert!(other.migrate().await.unwrap().is_empty());
    drop(other);
    ctx.finish().await;
}

async fn users(b: Backend) {
    let ctx = open(b).await;
    let s = &ctx.store;
    let name = unique("user");
    let u = s.create_user(&name, "Nick Name", "$argon2id$fake").await.unwrap();
    assert!(u.id > 0);
    assert_eq!(u.username, name);
    assert_eq!(u.nickname, "Nick Name");
    assert_eq!(u.password_hash, "$argon2id$fake");
    assert_recent("user.created_at", u.created_at);
    assert_recent("user.updated_at", u.updated_at);
    assert!(u.updated_at >= u.created_at);

    // Unique whatever the case: `alice` and `ALICE` are one user.
    for dup in [name.clone(), name.to_uppercase()] {
        match s.create_user(&dup, "Other", "h2").await {
            Err(StoreError::Duplicate(field)) => assert_eq!(field, "username"),
            other => panic!("duplicate username {dup:?}: expected Duplicate(\"username\"), got {other:?}"),
        }
    }

    let by_id = s.user_by_id(u.id).await.unwrap().expect("user by id");
    let by_name = s.user_by_username(&name).await.unwrap().expect("user by username");
    for got in [&by_id, &by_name] {
        assert_eq!(got.id, u.id);
        assert_eq!(got.username, u.username);
        assert_eq!(got.nickname, u.nickname);
        assert_eq!(got.password_hash, u.password_hash);
        assert_eq!(got.created_at, u.created_at, "timestamps round-trip exactly");
        assert_eq!(got.updated_at, u.updated_at);
    }

    let u2 = s.create_user(&unique("user"), "", "h").await.unwrap();
    assert!(u2.id > u.id, "ids increase");
    assert_eq!(s.user_by_id(u2.id).await.unwrap().unwrap().nickname, "");

    assert!(s.user_by_id(u2.id + 1000).await.unwrap().is_none());
    assert!(s.user_by_id(-1).await.unwrap().is_none());
    assert!(s.user_by_username("no_such_user").await.unwrap().is_none());
    let upper = s.user_by_username(&name.to_uppercase()).await.unwrap().expect("lookups ignore case");
    assert_eq!((upper.id, upper.username.as_str()), (u.id, name.as_str()), "the stored spelling is kept");
    ctx.finish().await;
}

async fn rooms_create_and_lookup(b: Backend) {
    let ctx = open(b).await;
    let s = &ctx.store;
    let owner = ctx.user("owner").await;
    let nr = new_room(owner, PushProtocol::Webrtc);
    let r = s.create_room(&nr).await.unwrap();
    assert!(r.id > 0);
    assert_eq!(r.owner_id, owner);
    assert_eq!(r.title, nr.title);
    assert_eq!(r.description, nr.description);
    assert_eq!(r.stream_name, nr.stream_name);
    assert_eq!(r.stream_key, nr.stream_key);
    assert_eq!(r.push_protocol, PushProtocol::Webrtc);
    assert_eq!(r.status, RoomStatus::Idle);
    assert_eq!((r.started_at, r.ended_at), (None, None));
    assert_eq!(r.peak_viewers, 0);
    assert_recent("room.created_at", r.created_at);
    assert_recent("room.updated_at", r.updated_at);

    assert_same_room(&s.room_by_id(r.id).await.unwrap().expect("by id"), &r);
    assert_same_room(&s.room_by_key_hash(&nr.stream_key_hash).await.unwrap().expect("by key hash"), &r);
    assert_same_room(&s.room_by_stream_name(&nr.stream_name).await.unwrap().expect("by stream name"), &r);
    let rtmp = ctx.room(owner).await;
    assert_eq!(rtmp.push_protocol, PushProtocol::Rtmp);
    assert!(rtmp.id > r.id);

    assert!(s.room_by_id(rtmp.id + 1000).await.unwrap().is_none());
    assert!(s.room_by_key_hash("no-such-hash").await.unwrap().is_none());
    assert!(s.room_by_key_hash(&nr.stream_key).await.unwrap().is_none(), "the key itself is not the index");
    assert!(s.room_by_stream_name("no-such-stream").await.unwrap().is_none());

    // Unique stream names and key hashes.
    let mut dup = new_room(owner, PushProtocol::Rtmp);
    dup.stream_name = nr.stream_name.clone();
    match s.create_room(&dup).await {
        Err(StoreError::Duplicate(f)) => assert_eq!(f, "stream_name"),
        other => panic!("duplicate stream_name: expected Duplicate(\"stream_name\"), got {other:?}"),
    }
    let mut dup = new_room(owner, PushProtocol::Rtmp);
    dup.stream_key_hash = nr.stream_key_hash.clone();
    match s.create_room(&dup).await {
        Err(StoreError::Duplicate(f)) => assert_eq!(f, "stream_key"),
        other => panic!("duplicate stream_key_hash: expected Duplicate(\"stream_key\"), got {other:?}"),
    }
    // An owner that does not exist is refused (foreign key), and is not a "duplicate".
    match s.create_room(&new_room(owner + 1000, PushProtocol::Rtmp)).await {
        Err(StoreError::Duplicate(f)) => panic!("missing owner reported as Duplicate({f})"),
        Err(_) => {}
        Ok(r) => panic!("room {} created for a user that does not exist", r.id),
    }
    let (_, total) = s.list_rooms(&filter(None, None, 1, 100)).await.unwrap();
    assert_eq!(total, 2, "failed inserts leave nothing behind");
    ctx.finish().await;
}

async fn list_rooms(b: Backend) {
    let ctx = open(b).await;
    let s = &ctx.store;
    let (alice, bob) = (ctx.user("alice").await, ctx.user("bob").await);
    let (empty, total) = s.list_rooms(&filter(None, None, 1, 20)).await.unwrap();
    assert!(empty.is_empty());
    assert_eq!(total, 0);

    // Interleaved creation: a0 b0 a1 a2 b1.
    let a0 = ctx.room(alice).await;
    let b0 = ctx.room(bob).await;
    let a1 = ctx.room(alice).await;
    let a2 = ctx.room(alice).await;
    let b1 = ctx.room(bob).await;
    s.start_broadcast(a1.id).await.unwrap().expect("a1 live");
    // b0 had a broadcast and is idle again.
    s.start_broadcast(b0.id).await.unwrap().expect("b0 live");
    s.end_broadcast(b0.id, EndReason::PublisherLeft).await.unwrap().expect("b0 idle");

    let (all, total) = s.list_rooms(&filter(None, None, 1, 20)).await.unwrap();
    assert_eq!(total, 5);
    assert_eq!(ids(&all), vec![b1.id, a2.id, a1.id, b0.id, a0.id], "newest first");
    assert!(all.windows(2).all(|w| w[0].created_at >= w[1].created_at), "created_at non-increasing");
    assert_same_room(&all[2], &ctx.get(a1.id).await);

    let (live, total) = s.list_rooms(&filter(Some(RoomStatus::Live), None, 1, 20)).await.unwrap();
    assert_eq!((ids(&live), total), (vec![a1.id], 1));
    let (idle, total) = s.list_rooms(&filter(Some(RoomStatus::Idle), None, 1, 20)).await.unwrap();
    assert_eq!((ids(&idle), total), (vec![b1.id, a2.id, b0.id, a0.id], 4));

    let (mine, total) = s.list_rooms(&filter(None, Some(alice), 1, 20)).await.unwrap();
    assert_eq!((ids(&mine), total), (vec![a2.id, a1.id, a0.id], 3));
    let (mine_idle, total) = s.list_rooms(&filter(Some(RoomStatus::Idle), Some(alice), 1, 20)).await.unwrap();
    assert_eq!((ids(&mine_idle), total), (vec![a2.id, a0.id], 2));
    let (bob_live, total) = s.list_rooms(&filter(Some(RoomStatus::Live), Some(bob), 1, 20)).await.unwrap();
    assert_eq!((bob_live.len(), total), (0, 0));
    let (nobody, total) = s.list_rooms(&filter(None, Some(bob + 1000), 1, 20)).await.unwrap();
    assert_eq!((nobody.len(), total), (0, 0));

    // Paging: the total is the filter's, not the page's.
    let (p1, t1) = s.list_rooms(&filter(None, None, 1, 2)).await.unwrap();
    let (p2, t2) = s.list_rooms(&filter(None, None, 2, 2)).await.unwrap();
    let (p3, t3) = s.list_rooms(&filter(None, None, 3, 2)).await.unwrap();
    let (p4, t4) = s.list_rooms(&filter(None, None, 4, 2)).await.unwrap();
    assert_eq!((ids(&p1), t1), (vec![b1.id, a2.id], 5));
    assert_eq!((ids(&p2), t2), (vec![a1.id, b0.id], 5));
    assert_eq!((ids(&p3), t3), (vec![a0.id], 5));
    assert_eq!((p4.len(), t4), (0, 5), "past the end: empty page, same total");
    let (p, t) = s.list_rooms(&filter(None, Some(alice), 2, 2)).await.unwrap();
    assert_eq!((ids(&p), t), (vec![a0.id], 3));

    // Out-of-range paging input is clamped (page 0 is page 1, size 0 is 1, size > 100 is 100).
    let (p, t) = s.list_rooms(&filter(None, None, 0, 0)).await.unwrap();
    assert_eq!((ids(&p), t), (vec![b1.id], 5));
    let (p, _) = s.list_rooms(&filter(None, None, 1, 10_000)).await.unwrap();
    assert_eq!(p.len(), 5);
    ctx.finish().await;
}

async fn update_room_text(b: Backend) {
    let ctx = open(b).await;
    let s = &ctx.store;
    let owner = ctx.user("owner").await;
    let r = ctx.room(owner).await;

    let t = s.update_room_text(r.id, Some("New title"), None).await.unwrap().expect("room");
    assert_eq!((t.title.as_str(), t.description.as_str()), ("New title", "A description"));
    assert!(t.updated_at >= r.updated_at);
    assert_eq!(t.created_at, r.created_at);
    assert_eq!(t.stream_key, r.stream_key);

    let d = s.update_room_text(r.id, None, Some("New description")).await.unwrap().expect("room");
    assert_eq!((d.title.as_str(), d.description.as_str()), ("New title", "New description"));

    let both = s.update_room_text(r.id, Some("T2"), Some("")).await.unwrap().expect("room");
    assert_eq!((both.title.as_str(), both.description.as_str()), ("T2", ""), "an empty description is a value");

    let none = s.update_room_text(r.id, None, None).await.unwrap().expect("room");
    assert_eq!((none.title.as_str(), none.description.as_str()), ("T2", ""));
    assert_same_room(&ctx.get(r.id).await, &none);

    assert!(s.update_room_text(r.id + 1000, Some("x"), None).await.unwrap().is_none());
    ctx.finish().await;
}

async fn room_broadcasts(b: Backend) {
    let ctx = open(b).await;
    let s = &ctx.store;
    let owner = ctx.user("owner").await;
    let r = ctx.room(owner).await;
    use RoomStatus::{Idle, Live};
    assert_eq!((r.status, r.broadcast_id), (Idle, None));
    assert_eq!(s.list_broadcasts(r.id, 1, 20).await.unwrap(), (vec![], 0));
    assert!(s.end_broadcast(r.id, EndReason::EndedByOwner).await.unwrap().is_none(), "an idle room has nothing to end");

    // idle -> live: a broadcast starts; started_at set, ended_at clear.
    let (live, started) = s.start_broadcast(r.id).await.unwrap().expect("idle -> live");
    assert!(started, "a new broadcast");
    assert_eq!(live.status, Live);
    let b1 = live.broadcast_id.expect("the current broadcast");
    let t1 = live.started_at.expect("started_at set");
    assert_recent("started_at", t1);
    assert_eq!(live.ended_at, None);
    assert!(live.updated_at >= r.updated_at);
    assert_same_room(&ctx.get(r.id).await, &live);

    // Live again (a publisher reconnecting or taking over): the same broadcast goes on.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (again, started) = s.start_broadcast(r.id).await.unwrap().expect("still live");
    assert!(!started);
    assert_eq!((again.broadcast_id, again.started_at), (Some(b1), Some(t1)), "started_at survives a reconnect");
    s.raise_peak_viewers(r.id, 7).await.unwrap();

    // live -> idle: the broadcast ends; the room keeps its start and gains an end.
    let idle = s.end_broadcast(r.id, EndReason::PublisherLeft).await.unwrap().expect("live -> idle");
    assert_eq!((idle.status, idle.broadcast_id, idle.started_at), (Idle, None, Some(t1)));
    let e1 = idle.ended_at.expect("ended_at set");
    assert!(e1 >= t1);
    assert_eq!(idle.peak_viewers, 7);
    assert!(s.end_broadcast(r.id, EndReason::PublisherLeft).await.unwrap().is_none(), "ends once");
    assert_same_room(&ctx.get(r.id).await, &idle);

    // The room is reusable: a second broadcast with its own start, end and peak.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (live2, started) = s.start_broadcast(r.id).await.unwrap().expect("idle -> live again");
    assert!(started);
    let b2 = live2.broadcast_id.expect("a broadcast");
    assert_ne!(b2, b1);
    assert!(live2.started_at.expect("started_at") > t1, "started_at is the new start");
    assert_eq!((live2.ended_at, live2.peak_viewers), (None, 0), "a new broadcast starts clean");
    s.raise_peak_viewers(r.id, 3).await.unwrap();
    s.end_broadcast(r.id, EndReason::EndedByOwner).await.unwrap().expect("ended");

    let (list, total) = s.list_broadcasts(r.id, 1, 20).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(list.iter().map(|b| b.id).collect::<Vec<_>>(), vec![b2, b1], "newest first");
    assert_eq!((list[0].peak_viewers, list[1].peak_viewers), (3, 7), "each broadcast its own peak");
    assert_eq!(list[0].end_reason.as_deref(), Some("ended_by_owner"));
    assert_eq!(list[1].end_reason.as_deref(), Some("publisher_left"));
    assert_eq!((list[1].started_at, list[1].ended_at), (t1, Some(e1)));
    assert!(list.iter().all(|b| b.room_id == r.id && b.ended_at.is_some()));
    let (page2, total) = s.list_broadcasts(r.id, 2, 1).await.unwrap();
    assert_eq!((page2.iter().map(|b| b.id).collect::<Vec<_>>(), total), (vec![b1], 2));

    // A missing room: nothing to start or end.
    assert!(s.start_broadcast(r.id + 1000).await.unwrap().is_none());
    assert!(s.end_broadcast(r.id + 1000, EndReason::PublisherLeft).await.unwrap().is_none());

    // Atomic: of many concurrent starts of an idle room exactly one starts a broadcast.
    let r3 = ctx.room(owner).await.id;
    let mut tasks = vec![];
    for _ in 0..8 {
        let st = ctx.store.clone();
        tasks.push(tokio::spawn(async move { st.start_broadcast(r3).await }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().expect("room").1 {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "exactly one concurrent start may begin a broadcast");
    assert_eq!(ctx.get(r3).await.status, Live);
    assert_eq!(s.list_broadcasts(r3, 1, 20).await.unwrap().1, 1);

    // Deleting a room deletes its broadcasts.
    assert!(s.delete_room(r.id).await.unwrap());
    assert_eq!(s.list_broadcasts(r.id, 1, 20).await.unwrap().1, 0);
    ctx.finish().await;
}

/// A database made by the first schema (rooms that ended for good, a live room)
/// upgrades in place: ended rooms are idle and reusable, every past live period is
/// a broadcast, a live room keeps its open broadcast.
async fn upgrade_keeps_history(b: Backend) {
    let ctx = open_unmigrated(b).await;
    let list = match b {
        Backend::Embedded => SQLITE,
        Backend::Production => POSTGRES,
    };
    let t = |s: i64| Utc::now() - chrono::Duration::seconds(s);
    let (t1, t2, t3) = (t(300), t(200), t(100));
    let rows = [
        // (stream name, status, started_at, ended_at, peak)
        ("sn_ended", "ended", Some(t1), Some(t2), 5i64),
        ("sn_live", "live", Some(t3), None, 2),
        ("sn_new", "idle", None, None, 0),
    ];
    match b {
        Backend::Embedded => {
            let c = rusqlite::Connection::open(&ctx.cfg.database.sqlite_path).unwrap();
            c.execute_batch(list[0].sql).unwrap();
            c.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'init', ?1)",
                rusqlite::params![Utc::now()],
            )
            .unwrap();
            c.execute(
                "INSERT INTO users (id, username, password_hash, created_at, updated_at) VALUES (1, 'old', 'h', ?1, ?1)",
                rusqlite::params![t1],
            )
            .unwrap();
            for (name, status, started, ended, peak) in rows {
                c.execute(
                    "INSERT INTO live_rooms (owner_id, title, stream_name, stream_key, stream_key_hash, push_protocol, \
                     status, started_at, ended_at, peak_viewers, created_at, updated_at) \
                     VALUES (1, 't', ?1, ?1, ?1, 'rtmp', ?2, ?3, ?4, ?5, ?6, ?6)",
                    rusqlite::params![name, status, started, ended, peak, t1],
                )
                .unwrap();
            }
        }
        Backend::Production => {
            let d = &ctx.cfg.database;
            let conn = format!("host={} port={} user={} dbname={}", d.host, d.port, d.user, d.dbname);
            let (c, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.unwrap();
            let task = tokio::spawn(connection);
            c.batch_execute(&format!(
                "SET search_path TO {}; CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
                 applied_at TIMESTAMPTZ NOT NULL); {} INSERT INTO schema_migrations VALUES (1, 'init', now()); \
                 INSERT INTO users (id, username, password_hash, created_at, updated_at) VALUES (1, 'old', 'h', now(), now());",
                d.schema, list[0].sql
            ))
            .await
            .unwrap();
            for (name, status, started, ended, peak) in rows {
                c.execute(
                    "INSERT INTO live_rooms (owner_id, title, stream_name, stream_key, stream_key_hash, push_protocol, \
                     status, started_at, ended_at, peak_viewers, created_at, updated_at) \
                     VALUES (1, 't', $1, $1, $1, 'rtmp', $2, $3, $4, $5, $6, $6)",
                    &[&name, &status, &started, &ended, &peak, &t1],
                )
                .await
                .unwrap();
            }
            drop(c);
            let _ = task.await;
        }
    }
    let ran = ctx.store.migrate().await.unwrap();
    assert!(ran.iter().any(|m| m == "0002_broadcasts"), "{ran:?}");
    let s = &ctx.store;
    let by = |n: &'static str| async move { s.room_by_stream_name(n).await.unwrap().expect(n) };

    let ended = by("sn_ended").await;
    assert_eq!((ended.status, ended.broadcast_id), (RoomStatus::Idle, None), "an ended room is idle and reusable");
    let (bs, total) = s.list_broadcasts(ended.id, 1, 20).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!((bs[0].ended_at.is_some(), bs[0].peak_viewers), (true, 5));
    assert_eq!(bs[0].end_reason.as_deref(), Some("publisher_left"));
    assert_eq!(bs[0].started_at.timestamp(), t1.timestamp());
    assert_eq!(bs[0].ended_at.unwrap().timestamp(), t2.timestamp());

    let live = by("sn_live").await;
    let (bs, total) = s.list_broadcasts(live.id, 1, 20).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(
        (live.status, live.broadcast_id),
        (RoomStatus::Live, Some(bs[0].id)),
        "the live room keeps its broadcast"
    );
    assert!(bs[0].ended_at.is_none());
    let after = s.end_broadcast(live.id, EndReason::ServerRestart).await.unwrap().expect("ends");
    assert_eq!(after.status, RoomStatus::Idle);
    assert_eq!(s.list_broadcasts(live.id, 1, 20).await.unwrap().0[0].end_reason.as_deref(), Some("server_restart"));

    let fresh = by("sn_new").await;
    assert_eq!((fresh.status, s.list_broadcasts(fresh.id, 1, 20).await.unwrap().1), (RoomStatus::Idle, 0));
    assert!(s.start_broadcast(ended.id).await.unwrap().expect("room").1, "an upgraded ended room goes live again");
    ctx.finish().await;
}

async fn stream_key_and_peak(b: Backend) {
    let ctx = open(b).await;
    let s = &ctx.store;
    let owner = ctx.user("owner").await;
    let r = ctx.room(owner).await;
    let old_hash = format!("hash-of-{}", r.stream_key);
    assert!(s.room_by_key_hash(&old_hash).await.unwrap().is_some());

    let k = s.set_stream_key(r.id, "new-key", "new-hash").await.unwrap().expect("room");
    assert_eq!(k.stream_key, "new-key");
    assert_eq!(
        (k.title.as_str(), k.stream_name.as_str(), k.status),
        (r.title.as_str(), r.stream_name.as_str(), r.status)
    );
    assert!(s.room_by_key_hash(&old_hash).await.unwrap().is_none(), "the old key hash no longer finds the room");
    assert_same_room(&s.room_by_key_hash("new-hash").await.unwrap().expect("new hash finds it"), &k);
    assert!(s.set_stream_key(r.id + 1000, "k", "h").await.unwrap().is_none());

    // Another room cannot take the same hash.
    let other = ctx.room(owner).await;
    match s.set_stream_key(other.id, "stolen", "new-hash").await {
        Err(StoreError::Duplicate(f)) => assert_eq!(f, "stream_key"),
        res => panic!("reusing a key hash: expected Duplicate(\"stream_key\"), got {res:?}"),
    }
    assert_eq!(ctx.get(other.id).await.stream_key, other.stream_key, "a failed key change changes nothing");

    // Peak viewers only ever rise.
    s.raise_peak_viewers(r.id, 10).await.unwrap();
    assert_eq!(ctx.get(r.id).await.peak_viewers, 10);
    s.raise_peak_viewers(r.id, 5).await.unwrap();
    assert_eq!(ctx.get(r.id).await.peak_viewers, 10);
    s.raise_peak_viewers(r.id, 10).await.unwrap();
    assert_eq!(ctx.get(r.id).await.peak_viewers, 10);
    s.raise_peak_viewers(r.id, 12).await.unwrap();
    assert_eq!(ctx.get(r.id).await.peak_viewers, 12);
    assert_eq!(ctx.get(other.id).await.peak_viewers, 0, "only the one room");
    s.raise_peak_viewers(r.id + 1000, 3).await.expect("raising a missing room is not an error");
    ctx.finish().await;
}

async fn delete_and_counts(b: Backend) {
    let ctx = open(b).await;
    let s = &ctx.store;
    let counts = |v: Vec<(RoomStatus, i64)>| -> [i64; 2] {
        assert_eq!(v.len(), 2, "one entry per status: {v:?}");
        let mut out = [-1; 2];
        for (i, st) in RoomStatus::ALL.iter().enumerate() {
            let found: Vec<i64> = v.iter().filter(|(k, _)| k == st).map(|(_, n)| *n).collect();
            assert_eq!(found.len(), 1, "{st:?} listed once: {v:?}");
            out[i] = found[0];
        }
        out
    };
    assert_eq!(counts(s.count_rooms_by_status().await.unwrap()), [0, 0], "empty database: all zero");

    let owner = ctx.user("owner").await;
    let mut rooms = vec![];
    for _ in 0..6 {
        rooms.push(ctx.room(owner).await);
    }
    for r in &rooms[..2] {
        s.start_broadcast(r.id).await.unwrap().unwrap();
    }
    assert_eq!(counts(s.count_rooms_by_status().await.unwrap()), [4, 2], "[idle, live]");

    let gone = &rooms[0];
    assert!(s.delete_room(gone.id).await.unwrap(), "first delete removes it");
    assert!(!s.delete_room(gone.id).await.unwrap(), "second delete finds nothing");
    assert!(s.room_by_id(gone.id).await.unwrap().is_none());
    assert!(s.room_by_stream_name(&gone.stream_name).await.unwrap().is_none());
    assert!(s.room_by_key_hash(&format!("hash-of-{}", gone.stream_key)).await.unwrap().is_none());
    assert!(!s.delete_room(rooms[5].id + 1000).await.unwrap());
    assert_eq!(counts(s.count_rooms_by_status().await.unwrap()), [4, 1]);
    let (list, total) = s.list_rooms(&filter(None, None, 1, 20)).await.unwrap();
    assert_eq!(total, 5);
    assert!(!ids(&list).contains(&gone.id));
    // The others are untouched; its stream name can be used again.
    assert_eq!(ctx.get(rooms[1].id).await.status, RoomStatus::Live);
    let mut reuse = new_room(owner, PushProtocol::Rtmp);
    reuse.stream_name = gone.stream_name.clone();
    s.create_room(&reuse).await.expect("a deleted room's stream name is free again");
    ctx.finish().await;
}

/// Revoked tokens: recorded until their expiry, listed while in force, purged after.
async fn revoked_tokens(b: Backend) {
    let ctx = open(b).await;
    let s = &ctx.store;
    let now = Utc::now();
    let (a, bb, old) = (unique("jti"), unique("jti"), unique("jti"));
    assert!(s.revoked_tokens(now).await.unwrap().is_empty());
    s.revoke_token(&a, now + chrono::Duration::hours(1)).await.unwrap();
    s.revoke_token(&bb, now + chrono::Duration::seconds(30)).await.unwrap();
    s.revoke_token(&old, now - chrono::Duration::seconds(1)).await.unwrap();
    // Revoking again is fine and never shortens the revocation.
    s.revoke_token(&a, now + chrono::Duration::minutes(1)).await.unwrap();
    let mut list = s.revoked_tokens(now).await.unwrap();
    list.sort();
    let mut want = vec![a.clone(), bb.clone()];
    want.sort();
    assert_eq!(list.iter().map(|(j, _)| j.clone()).collect::<Vec<_>>(), want, "the expired one is not listed");
    let exp_a = list.iter().find(|(j, _)| *j == a).unwrap().1;
    assert!((exp_a - (now + chrono::Duration::hours(1))).num_seconds().abs() <= 1, "{exp_a}");
    // Later, b has expired too.
    let later = now + chrono::Duration::minutes(2);
    let list = s.revoked_tokens(later).await.unwrap();
    assert_eq!(list.iter().map(|(j, _)| j.as_str()).collect::<Vec<_>>(), vec![a.as_str()]);
    assert_eq!(s.purge_revoked_tokens(later).await.unwrap(), 2, "the two expired ones are deleted");
    assert_eq!(s.purge_revoked_tokens(later).await.unwrap(), 0);
    assert_eq!(s.revoked_tokens(now).await.unwrap().len(), 1);
    ctx.finish().await;
}

/// Recordings: a room's `record`, the file rows from open to close, listing,
/// usage sums (per room and in all), unfinished ones, delete, and the room's cascade.
async fn recordings(b: Backend) {
    let ctx = open(b).await;
    let s = &ctx.store;
    let owner = ctx.user("rec").await;
    let room = ctx.room(owner).await;
    assert!(!room.record);
    let on = s.set_room_record(room.id, true).await.unwrap().expect("room");
    assert!(on.record);
    assert!(ctx.get(room.id).await.record);
    assert!(s.set_room_record(room.id + 1000, true).await.unwrap().is_none());
    let mut made = NewRoom { record: true, ..new_room(owner, PushProtocol::Rtmp) };
    made.stream_name = unique("sn");
    assert!(s.create_room(&made).await.unwrap().record, "create keeps record");

    let (bc, _) = s.start_broadcast(room.id).await.unwrap().unwrap();
    let bid = bc.broadcast_id;
    let p1 = format!("{}/a.mp4", room.stream_name);
    let p2 = format!("{}/a-2.mp4", room.stream_name);
    let r1 = s.create_recording(room.id, bid, &room.stream_name, &p1, "mp4").await.unwrap();
    assert_eq!((r1.status.as_str(), r1.size_bytes, r1.ended_at), ("recording", 0, None));
    assert_recent("recording started_at", r1.started_at);
    assert!(matches!(
        s.create_recording(room.id, bid, &room.stream_name, &p1, "mp4").await,
        Err(StoreError::Duplicate(_))
    ));
    let r2 = s.create_recording(room.id, bid, &room.stream_name, &p2, "mp4").await.unwrap();
    assert_eq!(s.unfinished_recordings().await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), vec![r1.id, r2.id]);
    let end = RecordingEnd {
        status: "ready".into(),
        duration_ms: 4000,
        size_bytes: 1_000_000,
        codecs: Some("avc1.64001f,mp4a.40.2".into()),
        error: None,
    };
    let done = s.finish_recording(&p1, &end).await.unwrap().expect("row");
    assert_eq!((done.status.as_str(), done.duration_ms, done.size_bytes), ("ready", 4000, 1_000_000));
    assert_eq!(done.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
    assert!(done.ended_at.is_some());
    assert!(s.finish_recording("no/such.mp4", &end).await.unwrap().is_none());
    let failed = RecordingEnd { status: "failed".into(), size_bytes: 500, error: Some("disk full".into()), ..end };
    let f = s.finish_recording(&p2, &failed).await.unwrap().unwrap();
    assert_eq!((f.status.as_str(), f.error.as_deref()), ("failed", Some("disk full")));
    assert!(s.unfinished_recordings().await.unwrap().is_empty());

    let (list, total) = s.list_recordings(room.id, 1, 10).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(list.iter().map(|r| r.id).collect::<Vec<_>>(), vec![r2.id, r1.id], "newest first");
    assert_eq!(s.recording_by_id(r1.id).await.unwrap().unwrap(), done);
    assert_eq!(s.recording_bytes(Some(room.id)).await.unwrap(), 1_000_500);
    assert_eq!(s.recording_bytes(Some(room.id + 1000)).await.unwrap(), 0);
    assert!(s.recording_bytes(None).await.unwrap() >= 1_000_500);
    assert!(s.delete_recording(r2.id).await.unwrap());
    assert!(!s.delete_recording(r2.id).await.unwrap());
    assert_eq!(s.recording_bytes(Some(room.id)).await.unwrap(), 1_000_000);
    // Deleting the room deletes its recordings' rows.
    assert!(s.delete_room(room.id).await.unwrap());
    assert!(s.recording_by_id(r1.id).await.unwrap().is_none());
    ctx.finish().await;
}

/// Private rooms: created private or made so, left out of public listings, listed
/// for the engine; the play-token epoch only ever moves on.
async fn private_rooms(b: Backend) {
    let ctx = open(b).await;
    let s = &ctx.store;
    let owner = ctx.user("priv").await;
    let public = ctx.room(owner).await;
    assert!(!public.private);
    assert_eq!(public.play_epoch, 0);
    let private = s.create_room(&NewRoom { private: true, ..new_room(owner, PushProtocol::Rtmp) }).await.unwrap();
    assert!(private.private);
    assert_same_room(&private, &ctx.get(private.id).await);
    assert_same_room(&private, &s.room_by_stream_name(&private.stream_name).await.unwrap().unwrap());

    let listed = |public_only| RoomFilter { owner_id: Some(owner), public_only, ..filter(None, None, 1, 100) };
    let (all, total) = s.list_rooms(&listed(false)).await.unwrap();
    assert_eq!((ids(&all), total), (vec![private.id, public.id], 2));
    let (shown, total) = s.list_rooms(&listed(true)).await.unwrap();
    assert_eq!((ids(&shown), total), (vec![public.id], 1));
    let privs = ids(&s.private_rooms().await.unwrap());
    assert!(privs.contains(&private.id) && !privs.contains(&public.id), "{privs:?}");

    // Public → private and back; the epoch is not touched by that.
    let r = s.set_room_private(public.id, true).await.unwrap().unwrap();
    assert!(r.private && r.play_epoch == 0);
    assert!(ids(&s.private_rooms().await.unwrap()).contains(&public.id));
    let r = s.set_room_private(public.id, false).await.unwrap().unwrap();
    assert!(!r.private);
    assert!(!ids(&s.private_rooms().await.unwrap()).contains(&public.id));
    assert!(s.set_room_private(i64::MAX, true).await.unwrap().is_none());

    // Revocation: the epoch moves on by one each time.
    assert_eq!(s.bump_play_epoch(private.id).await.unwrap().unwrap().play_epoch, 1);
    let r = s.bump_play_epoch(private.id).await.unwrap().unwrap();
    assert_eq!(r.play_epoch, 2);
    assert_same_room(&r, &ctx.get(private.id).await);
    assert!(s.bump_play_epoch(i64::MAX).await.unwrap().is_none());
    // Other changes keep both.
    let r = s.update_room_text(private.id, Some("T"), None).await.unwrap().unwrap();
    assert!(r.private && r.play_epoch == 2);
    ctx.finish().await;
}

/// Forwards: added up to a limit per room, listed oldest first, turned on and off,
/// deleted only through their own room, and gone with their room.
async fn room_forwards(b: Backend) {
    let ctx = open(b).await;
    let s = &ctx.store;
    let owner = ctx.user("fwd").await;
    let (room, other) = (ctx.room(owner).await, ctx.room(owner).await);
    assert!(s.list_forwards(room.id).await.unwrap().is_empty());
    let a = s.create_forward(room.id, "rtmp://a.example/live2", "key-a", 2).await.unwrap().expect("under the limit");
    assert_eq!(
        (a.room_id, a.url.as_str(), a.key.as_str(), a.enabled),
        (room.id, "rtmp://a.example/live2", "key-a", true)
    );
    assert_recent("created_at", a.created_at);
    let bb = s.create_forward(room.id, "rtmps://b.example:443/rtmp/", "key-b", 2).await.unwrap().expect("at the limit");
    assert!(s.create_forward(room.id, "rtmp://c.example/app", "key-c", 2).await.unwrap().is_none(), "over the limit");
    let o = s.create_forward(other.id, "rtmp://o.example/app", "key-o", 2).await.unwrap().expect("another room's own");
    assert_eq!(s.list_forwards(room.id).await.unwrap(), vec![a.clone(), bb.clone()]);
    // Turned off and on, only through its own room.
    let off = s.set_forward_enabled(room.id, a.id, false).await.unwrap().expect("its room's forward");
    assert!(!off.enabled);
    assert!(!s.list_forwards(room.id).await.unwrap()[0].enabled);
    assert!(s.set_forward_enabled(other.id, a.id, true).await.unwrap().is_none(), "not the other room's");
    assert!(s.set_forward_enabled(room.id, a.id, true).await.unwrap().unwrap().enabled);
    // Deleted only through its own room.
    assert!(!s.delete_forward(other.id, bb.id).await.unwrap());
    assert!(s.delete_forward(room.id, bb.id).await.unwrap());
    assert!(!s.delete_forward(room.id, bb.id).await.unwrap());
    assert_eq!(s.list_forwards(room.id).await.unwrap().len(), 1);
    // A room's deletion takes its forwards along.
    assert!(s.delete_room(other.id).await.unwrap());
    assert!(s.list_forwards(other.id).await.unwrap().is_empty());
    assert!(!s.delete_forward(other.id, o.id).await.unwrap());
    ctx.finish().await;
}

both_backends!(
    recordings,
    private_rooms,
    room_forwards,
    revoked_tokens,
    migrate_is_idempotent,
    users,
    rooms_create_and_lookup,
    list_rooms,
    update_room_text,
    room_broadcasts,
    upgrade_keeps_history,
    stream_key_and_peak,
    delete_and_counts,
);
