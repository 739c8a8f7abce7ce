//! The engine's layering, checked on every test run:
//!
//! - the protocol crate (engine/proto) stays sans-IO: none of the runtime, socket
//!   or OS crates among its dependencies, and its code (tests aside) reads no clock,
//!   draws no global randomness, opens no socket, file or thread, keeps no
//!   thread-local state;
//! - the shell's layers (engine/src's top-level modules and folders) import each
//!   other one way: no layer reaches, through `crate::` paths, one that reaches it
//!   back; inside each layer folder, its modules do the same;
//! - `unsafe` is in `net/sys.rs` only;
//! - the shell's stream code (engine/src/stream) reads no clock: the shard hands it
//!   the time;
//! - unit tests of a module `foo` are in `foo/tests.rs`, declared `mod tests;` at
//!   the end of `foo.rs` (engine, engine/proto and control alike): no inline test
//!   module, no `#[path]` or `*_tests.rs` test file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn engine_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A test file by the crates' naming (`tests.rs`, test helpers `test_*.rs`, under
/// `tests/`).
fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name == "tests.rs" || name.starts_with("test_") || path.components().any(|c| c.as_os_str() == "tests")
}

/// The code before the file's first `#[cfg(test)]` (test modules sit at the end).
fn non_test_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Lines of `text` that are not comments.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter(|(_, l)| {
        let t = l.trim_start();
        !t.starts_with("//")
    })
}

#[test]
fn the_protocol_crate_has_no_runtime_dependency() {
    let manifest = std::fs::read_to_string(engine_dir().join("proto/Cargo.toml")).unwrap();
    let deps = manifest
        .split("\n[")
        .find(|section| section.starts_with("dependencies]"))
        .expect("engine/proto/Cargo.toml has a [dependencies] table");
    let names: Vec<&str> = code_lines(deps)
        .filter_map(|(_, l)| l.split(['=', '.', ' ']).next())
        .filter(|n| !n.is_empty() && !n.starts_with('['))
        .collect();
    assert!(names.contains(&"bytes"), "the parse found the dependency names: {names:?}");
    for banned in [
        "monoio",
        "tokio",
        "async-std",
        "smol",
        "mio",
        "libc",
        "nix",
        "socket2",
        "io-uring",
        "futures-channel",
        "rustix",
    ] {
        assert!(!names.contains(&banned), "engine/proto depends on `{banned}`: protocol code does no I/O");
    }
}

#[test]
fn protocol_code_reads_no_clock_and_does_no_io() {
    let mut files = vec![];
    rust_files(&engine_dir().join("proto/src"), &mut files);
    assert!(files.len() > 50, "found the protocol sources: {}", files.len());
    let banned = [
        ("Instant::now", "reads the clock: take `now` from the caller"),
        ("SystemTime::now", "reads the wall clock: take it from the caller"),
        ("rand::rng()", "draws from the thread RNG: take `&mut impl Rng` or a seed"),
        ("thread_rng", "draws from the thread RNG: take `&mut impl Rng` or a seed"),
        ("from_os_rng", "draws OS randomness: take a seed"),
        ("thread_local!", "keeps per-thread state"),
        ("std::net", "uses the socket module (addresses are in core::net)"),
        ("std::thread", "starts or parks threads"),
        ("std::fs", "touches the file system"),
        ("std::process", "runs processes"),
        ("static mut", "keeps global mutable state"),
    ];
    let mut found = vec![];
    for path in files.iter().filter(|p| !is_test_file(p)) {
        let code = non_test_code(path);
        for (n, line) in code_lines(&code) {
            for (pattern, why) in banned {
                if line.contains(pattern) {
                    found.push(format!("{}:{}: {why}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "protocol code must stay sans-IO:\n{}", found.join("\n"));
}

/// Each top-level shell module (a file or folder under engine/src) and the other
/// top-level modules its non-test code names through `crate::`.
fn shell_imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = engine_dir().join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
        if top == "lib" || is_test_file(&f) {
            continue;
        }
        modules.entry(top).or_default().push(f);
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (module, files) in &modules {
        let mut to = BTreeSet::new();
        for f in files {
            let code = non_test_code(f);
            for (_, line) in code_lines(&code) {
                for (i, _) in line.match_indices("crate::") {
                    let rest = &line[i + "crate::".len()..];
                    let target: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if target != *module && names.contains(&target) {
                        to.insert(target);
                    }
                }
                // `use crate::{a::X, b::Y}` names several.
                if let Some(group) = line.split("crate::{").nth(1) {
                    for part in group.split([',', '{', '}']) {
                        let target = part.trim().split("::").next().unwrap_or("").to_owned();
                        if target != *module && names.contains(&target) {
                            to.insert(target);
                        }
                    }
                }
            }
        }
        edges.insert(module.clone(), to);
    }
    edges
}

/// The modules that are in an import circle (strongly connected components of
/// more than one module).
fn modules_in_circles(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for n in edges.get(&m).into_iter().flatten() {
                if seen.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        seen
    };
    edges.keys().filter(|m| reach(m).contains(*m)).cloned().collect()
}

#[test]
fn shell_modules_import_one_way() {
    let edges = shell_imports();
    for layer in ["link", "stream", "net", "fanout", "shard", "serve", "engine"] {
        assert!(edges.contains_key(layer), "found the shell's layers: {edges:?}");
    }
    assert!(edges["shard"].contains("fanout"), "the parse sees imports: {edges:?}");
    let circle = modules_in_circles(&edges);
    assert!(circle.is_empty(), "these modules import each other in a circle: {circle:?}\n(imports: {edges:#?})");
}

/// Inside each layer folder, the modules import each other one way too.
#[test]
fn modules_inside_a_layer_import_one_way() {
    let src = engine_dir().join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut folders: BTreeMap<String, BTreeMap<String, Vec<PathBuf>>> = BTreeMap::new();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let rel: Vec<String> =
            f.strip_prefix(&src).unwrap().components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        if rel.len() < 2 {
            continue;
        }
        let sub = rel[1].trim_end_matches(".rs").to_owned();
        if sub == "mod" {
            continue;
        }
        folders.entry(rel[0].clone()).or_default().entry(sub).or_default().push(f.clone());
    }
    assert!(folders.get("serve").is_some_and(|m| m.len() >= 5), "found the layer folders: {folders:?}");
    for (folder, modules) in &folders {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (module, paths) in modules {
            let mut to = BTreeSet::new();
            for p in paths {
                let code = non_test_code(p);
                for (_, line) in code_lines(&code) {
                    for prefix in [format!("crate::{folder}::"), "super::".to_owned()] {
                        for (i, _) in line.match_indices(&prefix) {
                            let rest = &line[i + prefix.len()..];
                            let target: String =
                                rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                            if target != *module && modules.contains_key(&target) {
                                to.insert(target);
                            }
                        }
                    }
                }
            }
            edges.insert(module.clone(), to);
        }
        if folder == "serve" {
            assert!(edges["http"].contains("flv_play"), "the parse sees imports inside a folder: {edges:?}");
        }
        let circle = modules_in_circles(&edges);
        assert!(circle.is_empty(), "in {folder}/, these modules import each other in a circle: {circle:?} ({edges:?})");
    }
}

/// The shell's system calls are in `sys`, behind safe functions; elsewhere only the
/// monoio buffer trait (whose contract is about memory, not a call) is `unsafe`.
#[test]
fn unsafe_code_is_in_sys_only() {
    let src = engine_dir().join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut found = vec![];
    for f in files.iter().filter(|f| !is_test_file(f) && !f.ends_with("sys.rs")) {
        let code = non_test_code(f);
        for (n, line) in code_lines(&code) {
            if line.contains("unsafe") && !line.contains("unsafe impl monoio::buf::IoVecBuf") {
                found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "unsafe outside engine/src/sys.rs:\n{}", found.join("\n"));
}

#[test]
fn the_circle_check_finds_circles() {
    let edges: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec!["a"]), ("e", vec![])]
            .into_iter()
            .map(|(m, to)| (m.to_owned(), to.into_iter().map(str::to_owned).collect()))
            .collect();
    let circle: Vec<String> = modules_in_circles(&edges).into_iter().collect();
    assert_eq!(circle, ["a", "b", "c"]);
}

/// The non-test lines of each non-test file under `dir` that name a clock read.
fn clock_reads(dir: &Path) -> Vec<String> {
    let mut files = vec![];
    rust_files(dir, &mut files);
    let mut found = vec![];
    for path in files.iter().filter(|p| !is_test_file(p)) {
        let code = non_test_code(path);
        for (n, line) in code_lines(&code) {
            if line.contains("Instant::now") || line.contains("SystemTime::now") {
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

/// The stream layer measures time (transcoding CPU included) with the clock the
/// shard passes in, so its code runs the same under a test's clock.
#[test]
fn stream_code_reads_no_clock() {
    let stream = engine_dir().join("src/stream");
    assert!(stream.join("bridge.rs").exists(), "found the stream layer");
    let found = clock_reads(&stream);
    assert!(found.is_empty(), "stream code must take the time from its caller:\n{}", found.join("\n"));
}

/// What breaks the test-file convention in one source file: an inline test
/// module (`mod tests {`, or any `mod x {` under `#[cfg(test)]`), a `#[path]`
/// module, or a file named `*_tests.rs`.
fn test_layout_problems(path: &Path, text: &str) -> Vec<String> {
    let mut found = vec![];
    let name = path.file_name().unwrap().to_string_lossy();
    if name.ends_with("_tests.rs") {
        found.push(format!("{}: a `*_tests.rs` file (move it to `<module>/tests.rs`)", path.display()));
    }
    let mut under_cfg_test = false;
    for (n, line) in code_lines(text) {
        let t = line.trim();
        let inline_mod = (t.starts_with("mod ") || t.starts_with("pub mod ") || t.starts_with("pub(crate) mod "))
            && t.ends_with('{');
        if t.starts_with("#[path") {
            found.push(format!("{}:{}: a `#[path]` module: {t}", path.display(), n + 1));
        } else if inline_mod && (under_cfg_test || t.contains("mod tests")) {
            found.push(format!("{}:{}: an inline test module: {t}", path.display(), n + 1));
        }
        if t == "#[cfg(test)]" {
            under_cfg_test = true;
        } else if !t.starts_with("#[") {
            under_cfg_test = false;
        }
    }
    found
}

/// Unit tests of module `foo` live in `foo/tests.rs` (`mod tests;` at the end of
/// `foo.rs` or `foo/mod.rs`), in the engine, the protocol crate and the control
/// plane alike.
#[test]
fn unit_tests_live_in_tests_files() {
    let mut files = vec![];
    for dir in ["src", "proto/src", "../control/src"] {
        let before = files.len();
        rust_files(&engine_dir().join(dir), &mut files);
        assert!(files.len() > before + 10, "found the sources in {dir}");
    }
    let mut found = vec![];
    for path in &files {
        found.extend(test_layout_problems(path, &std::fs::read_to_string(path).unwrap()));
    }
    assert!(found.is_empty(), "unit tests go in `<module>/tests.rs`:\n{}", found.join("\n"));
}

#[test]
fn the_test_file_check_finds_inline_and_path_modules() {
    let file = Path::new("src/foo.rs");
    let ok = "fn f() {}\n\n#[cfg(test)]\nmod tests;\n";
    assert!(test_layout_problems(file, ok).is_empty());
    let inline = "fn f() {}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n";
    assert_eq!(test_layout_problems(file, inline).len(), 1);
    let other_name = "#[cfg(test)]\n#[allow(unused)]\nmod checks {\n}\n";
    assert_eq!(test_layout_problems(file, other_name).len(), 1);
    let path = "#[cfg(test)]\n#[path = \"foo_tests.rs\"]\nmod tests;\n";
    assert_eq!(test_layout_problems(file, path).len(), 1);
    assert_eq!(test_layout_problems(Path::new("src/foo_tests.rs"), "").len(), 1);
}
