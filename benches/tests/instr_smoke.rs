//! The `instr` binary (instruction counts of the micro-bench workloads under
//! callgrind, `benches/compare/instr.sh`) keeps working: every workload it lists
//! runs natively and produces output, and a bad request is refused. When valgrind
//! is installed, one workload is also counted the way `instr.sh` counts it, and
//! the count must grow with the iterations (the toggle found `measured`).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_instr");

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("instr runs")
}

#[test]
fn every_workload_runs_and_bad_requests_are_refused() {
    let list = run(&["list"]);
    assert!(list.status.success());
    let ops: Vec<String> =
        String::from_utf8(list.stdout).unwrap().lines().map(|l| l.split('\t').next().unwrap().to_owned()).collect();
    assert!(ops.len() >= 9, "{ops:?}");
    for op in &ops {
        let out = run(&[op, "2"]);
        assert!(out.status.success(), "{op}: {}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8(out.stdout).unwrap();
        let sum: usize = line.split_whitespace().nth(2).and_then(|s| s.parse().ok()).expect("OP K SUM");
        assert!(sum > 0, "{op}: {line}");
    }
    assert_eq!(run(&["no_such_op", "1"]).status.code(), Some(2));
    assert_eq!(run(&["rtmp_encode_10k"]).status.code(), Some(2));
}

#[test]
fn callgrind_counts_only_the_measured_region() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        // Not a skip of the test above: this part needs valgrind, which .ci/run
        // installs; say so loudly when it is missing.
        assert!(std::env::var("CI").is_err(), "valgrind missing under CI (.ci/run installs it)");
        eprintln!("valgrind not installed: callgrind part not run");
        return;
    }
    let dir = std::env::temp_dir().join(format!("instr-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let count = |k: &str| -> u64 {
        let out_file = dir.join(format!("cg.{k}"));
        let st = Command::new("valgrind")
            .args(["--tool=callgrind", "--toggle-collect=*instr::measured*"])
            .arg(format!("--callgrind-out-file={}", out_file.display()))
            .args([BIN, "rtmp_encode_10k", k])
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
        let text = std::fs::read_to_string(&out_file).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")))
            .and_then(|v| v.trim().parse().ok())
            .expect("a summary line")
    };
    let (a, b) = (count("10"), count("20"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(a > 0 && b > a, "collected {a} then {b}");
    // Each encode of a 10 KB message is at least a few hundred instructions and
    // nothing outside `measured` (start-up, the payload's allocation) is counted.
    let per = (b - a) / 10;
    assert!(per > 200 && a < per * 20, "per iteration {per}, 10 iterations {a}");
}
