-- A room is a channel: idle -> live -> idle ... Each live period is a broadcast.
-- Rooms no longer end for good (deleting a room retires it); usernames are unique
-- whatever their case. (SQLite cannot change a CHECK constraint in place: the
-- old one still allows 'ended', which nothing writes any more.)
CREATE TABLE broadcasts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id      INTEGER NOT NULL REFERENCES live_rooms(id) ON DELETE CASCADE,
    started_at   TEXT    NOT NULL,
    ended_at     TEXT,
    peak_viewers INTEGER NOT NULL DEFAULT 0,
    end_reason   TEXT
);
CREATE INDEX broadcasts_room ON broadcasts(room_id, id);

ALTER TABLE live_rooms ADD COLUMN broadcast_id INTEGER;

INSERT INTO broadcasts (room_id, started_at, ended_at, peak_viewers, end_reason)
    SELECT id, started_at,
           CASE WHEN status = 'live' THEN NULL ELSE COALESCE(ended_at, updated_at) END,
           peak_viewers,
           CASE WHEN status = 'live' THEN NULL ELSE 'publisher_left' END
    FROM live_rooms WHERE started_at IS NOT NULL ORDER BY id;
UPDATE live_rooms SET broadcast_id = (SELECT MAX(b.id) FROM broadcasts b WHERE b.room_id = live_rooms.id)
    WHERE status = 'live';
UPDATE live_rooms SET status = 'idle' WHERE status = 'ended';

CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
