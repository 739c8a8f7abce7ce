//! SQL migrations, embedded in the binary from `migrations/{postgres,sqlite}/NNNN_name.sql`.
//! Each runs in its own transaction and is recorded in `schema_migrations`.

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub fn label(&self) -> String {
        format!("{:04}_{}", self.version, self.name)
    }
}

pub const SQLITE: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../../../migrations/sqlite/0001_init.sql") },
    Migration { version: 2, name: "broadcasts", sql: include_str!("../../../migrations/sqlite/0002_broadcasts.sql") },
    Migration {
        version: 3,
        name: "revoked_tokens",
        sql: include_str!("../../../migrations/sqlite/0003_revoked_tokens.sql"),
    },
    Migration { version: 4, name: "recordings", sql: include_str!("../../../migrations/sqlite/0004_recordings.sql") },
    Migration {
        version: 5,
        name: "private_rooms",
        sql: include_str!("../../../migrations/sqlite/0005_private_rooms.sql"),
    },
    Migration {
        version: 6,
        name: "room_forwards",
        sql: include_str!("../../../migrations/sqlite/0006_room_forwards.sql"),
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../../../migrations/postgres/0001_init.sql") },
    Migration { version: 2, name: "broadcasts", sql: include_str!("../../../migrations/postgres/0002_broadcasts.sql") },
    Migration {
        version: 3,
        name: "revoked_tokens",
        sql: include_str!("../../../migrations/postgres/0003_revoked_tokens.sql"),
    },
    Migration { version: 4, name: "recordings", sql: include_str!("../../../migrations/postgres/0004_recordings.sql") },
    Migration {
        version: 5,
        name: "private_rooms",
        sql: include_str!("../../../migrations/postgres/0005_private_rooms.sql"),
    },
    Migration {
        version: 6,
        name: "room_forwards",
        sql: include_str!("../../../migrations/postgres/0006_room_forwards.sql"),
    },
];

pub fn latest(list: &[Migration]) -> i64 {
    list.iter().map(|m| m.version).max().unwrap_or(0)
}

#[cfg(test)]
mod tests;
