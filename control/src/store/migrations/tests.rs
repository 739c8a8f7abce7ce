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
        // Increasing versions (a number may be missing while branches that took
        // numbers are merged; `migrate` applies each version it has not recorded).
        for w in list.windows(2) {
            assert!(w[0].version < w[1].version, "{dir}: {} then {}", w[0].label(), w[1].label());
        }
    }
}
