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
