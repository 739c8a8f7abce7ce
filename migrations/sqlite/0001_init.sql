-- Users and live rooms (SQLite, the embedded default).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    nickname      TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);

CREATE TABLE live_rooms (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title           TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    stream_name     TEXT    NOT NULL UNIQUE,
    stream_key      TEXT    NOT NULL,
    stream_key_hash TEXT    NOT NULL UNIQUE,
    push_protocol   TEXT    NOT NULL CHECK (push_protocol IN ('rtmp', 'webrtc')),
    status          TEXT    NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'live', 'ended')),
    started_at      TEXT,
    ended_at        TEXT,
    peak_viewers    INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

CREATE INDEX live_rooms_owner ON live_rooms(owner_id, id);
CREATE INDEX live_rooms_status ON live_rooms(status, id);
