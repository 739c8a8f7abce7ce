-- Recording: a room records its broadcasts when `record` is set; each file is a row
-- (a broadcast split by duration or size has several).
ALTER TABLE live_rooms ADD COLUMN record BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE recordings (
    id           BIGSERIAL   PRIMARY KEY,
    room_id      BIGINT      NOT NULL REFERENCES live_rooms(id) ON DELETE CASCADE,
    broadcast_id BIGINT,
    stream_name  TEXT        NOT NULL,
    path         TEXT        NOT NULL UNIQUE,
    format       TEXT        NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('recording', 'ready', 'failed')),
    started_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ,
    duration_ms  BIGINT      NOT NULL DEFAULT 0,
    size_bytes   BIGINT      NOT NULL DEFAULT 0,
    codecs       TEXT,
    error        TEXT
);
CREATE INDEX recordings_room ON recordings(room_id, id);
