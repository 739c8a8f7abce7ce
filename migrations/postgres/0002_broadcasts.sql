-- A room is a channel: idle -> live -> idle ... Each live period is a broadcast.
-- Rooms no longer end for good (deleting a room retires it); usernames are unique
-- whatever their case.
CREATE TABLE broadcasts (
    id           BIGSERIAL   PRIMARY KEY,
    room_id      BIGINT      NOT NULL REFERENCES live_rooms(id) ON DELETE CASCADE,
    started_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ,
    peak_viewers BIGINT      NOT NULL DEFAULT 0,
    end_reason   TEXT
);
CREATE INDEX broadcasts_room ON broadcasts(room_id, id);

-- The broadcast in progress while the room is live.
ALTER TABLE live_rooms ADD COLUMN broadcast_id BIGINT;

-- Every past live period becomes a broadcast; a live room keeps its open one.
INSERT INTO broadcasts (room_id, started_at, ended_at, peak_viewers, end_reason)
    SELECT id, started_at,
           CASE WHEN status = 'live' THEN NULL ELSE COALESCE(ended_at, updated_at) END,
           peak_viewers,
           CASE WHEN status = 'live' THEN NULL ELSE 'publisher_left' END
    FROM live_rooms WHERE started_at IS NOT NULL ORDER BY id;
UPDATE live_rooms SET broadcast_id = (SELECT MAX(b.id) FROM broadcasts b WHERE b.room_id = live_rooms.id)
    WHERE status = 'live';
UPDATE live_rooms SET status = 'idle' WHERE status = 'ended';
ALTER TABLE live_rooms DROP CONSTRAINT IF EXISTS live_rooms_status_check;
ALTER TABLE live_rooms ADD CONSTRAINT live_rooms_status_check CHECK (status IN ('idle', 'live'));

CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
