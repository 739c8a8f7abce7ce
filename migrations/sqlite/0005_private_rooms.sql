-- Private rooms: watching one needs a play token (docs/private-rooms.md).
-- play_epoch is the room's token generation: raising it revokes every token minted
-- before.
ALTER TABLE live_rooms ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
ALTER TABLE live_rooms ADD COLUMN play_epoch INTEGER NOT NULL DEFAULT 0;
CREATE INDEX live_rooms_private ON live_rooms(private) WHERE private = 1;
