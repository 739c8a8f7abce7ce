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
];

pub const POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../../../migrations/postgres/0001_init.sql") },
    Migration { version: 2, name: "broadcasts", sql: include_str!("../../../migrations/postgres/0002_broadcasts.sql") },
    Migration {
        version: 3,
        name: "revoked_tokens",
        sql: include_str!("../../../migrations/postgres/0003_revoked_tokens.sql"),
    },
];

pub fn latest(list: &[Migration]) -> i64 {
    list.iter().map(|m| m.version).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in migrations/ is embedded, in order, with a matching name.
    #[test]
    fn embedded_list_matches_the_directory() {
        for (dir, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = format!("{}/../migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            files.sort();
            let labels: Vec<String> = list.iter().map(|m| format!("{}.sql", m.label())).collect();
            assert_eq!(files, labels, "{dir}");
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version, i as i64 + 1);
            }
        }
    }
}
