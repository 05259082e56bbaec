//! Helpers for the end-to-end tests in `tests/`: run the real `nas` command line on temporary run directories.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A fresh, empty temporary directory for test `name` of this process.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nas-t-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The stdout of a command that must have succeeded (`what` names it in the failure, with its stderr).
pub fn ok(out: Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The small experiment the tests use (`examples/nas.toml`).
pub fn example_config() -> PathBuf {
    repo().join("examples/nas.toml")
}

/// A run's `selection.toml`.
pub fn selection(dir: &Path) -> toml::Table {
    let text = std::fs::read_to_string(dir.join("selection.toml")).unwrap();
    text.parse().unwrap()
}

/// The weights files of a run's `model/` (the network's, or each ensemble member's), as `model.toml` names
/// them: a small search's model may be its best network or the ensemble, whichever the selection chose.
pub fn model_weights(run: &Path) -> Vec<PathBuf> {
    let dir = run.join("model");
    let text = std::fs::read_to_string(dir.join("model.toml")).unwrap();
    let model: toml::Table = text.parse().unwrap();
    let members = model.get("members").and_then(|m| m.as_array());
    match members {
        Some(ms) if !ms.is_empty() => (ms.iter())
            .map(|m| dir.join(m["weights"].as_str().unwrap()))
            .collect(),
        _ => vec![dir.join(model["weights"].as_str().unwrap())],
    }
}

/// The parts of a selection that must be identical between equivalent runs (no wall times in it).
pub fn outcome(dir: &Path) -> (toml::Value, toml::Value) {
    let s = selection(dir);
    (s["best"].clone(), s["ranking"].clone())
}

/// A run's result files (`results/cNNNNN.toml`; not the `.oof` predictions beside them), in name order.
pub fn result_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("results")).map_or(vec![], |rd| {
        rd.filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with('c') && name.ends_with(".toml")
            })
            .collect()
    });
    v.sort();
    v
}

/// How many result files a run has.
pub fn count_results(dir: &Path) -> usize {
    result_files(dir).len()
}

/// The names of a run's result files with status `stopped` (raced out), in order (a temporary a kill left
/// beside them, a copy of a result not yet linked in place, is not a result).
pub fn stopped(dir: &Path) -> Vec<String> {
    result_files(dir)
        .into_iter()
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("status = \"stopped\"")))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Runs `cmd` to completion, failing the test (instead of hanging CI) if it takes over `secs` seconds.
pub fn within(mut cmd: Command, secs: u64) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(secs) {
            child.kill().unwrap();
            panic!("{cmd:?} still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Every candidate and result file of a run parses, and there are `n` of each.
pub fn assert_intact(dir: &Path, n: usize) {
    for sub in ["candidates", "results"] {
        let mut count = 0;
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with('c') && name.ends_with(".toml") {
                let t: toml::Table = std::fs::read_to_string(&p)
                    .unwrap()
                    .parse()
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                assert!(t.contains_key("id"), "{}", p.display());
                count += 1;
            }
        }
        assert_eq!(count, n, "{sub}");
    }
}
