-- Recording: a room records its broadcasts when `record` is set; each file is a row
-- (a broadcast split by duration or size has several).
ALTER TABLE live_rooms ADD COLUMN record INTEGER NOT NULL DEFAULT 0;

CREATE TABLE recordings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id      INTEGER NOT NULL REFERENCES live_rooms(id) ON DELETE CASCADE,
    broadcast_id INTEGER,
    stream_name  TEXT    NOT NULL,
    path         TEXT    NOT NULL UNIQUE,
    format       TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('recording', 'ready', 'failed')),
    started_at   TEXT    NOT NULL,
    ended_at     TEXT,
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    size_bytes   INTEGER NOT NULL DEFAULT 0,
    codecs       TEXT,
    error        TEXT
);
CREATE INDEX recordings_room ON recordings(room_id, id);
