-- Restreaming: where a room's stream is pushed (RTMP/RTMPS ingest URL + stream key)
-- while it is live. The key is a secret of the room's owner: the API shows only
-- its last characters.
CREATE TABLE room_forwards (
    id         BIGSERIAL   PRIMARY KEY,
    room_id    BIGINT      NOT NULL REFERENCES live_rooms(id) ON DELETE CASCADE,
    url        TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    enabled    BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX room_forwards_room ON room_forwards(room_id, id);
