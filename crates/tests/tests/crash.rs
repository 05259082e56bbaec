//! Crashes and concurrency: runs killed by SIGKILL at random moments and resumed, and many workers (some
//! killed) sharing one run directory, with full and multi-fidelity searches.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::{assert_intact, count_results, example_config, ok, outcome, stopped, tmp, within};

fn nas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nas-e2e"))
}

#[test]
fn sigkill_at_20_random_moments_and_resume_selects_the_same_candidate_with_the_same_fold_scores() {
    kill_and_resume("kill", &[], 20, 10);
}

/// Successive halving, killed mid-rung: brackets of 3 candidates at 1 epoch whose best is trained again at
/// 3 (4 brackets: 10 proposals, 3 promotions; the last bracket's one candidate is raced out, and a stopped
/// candidate is never promoted).
#[test]
fn sigkill_mid_rung_of_a_halving_search_and_resume_selects_the_same() {
    kill_and_resume("kill-halving", &["--fidelity", "halving"], 12, 13);
}

/// Runs the example experiment (budget 10, 3 epochs) uninterrupted, and again killed by SIGKILL at
/// `kills` random moments and resumed each time: same selection, `files` intact candidates and results.
fn kill_and_resume(name: &str, extra: &[&str], kills_wanted: usize, files: usize) {
    let d = tmp(name);
    let (full, killed) = (d.join("full"), d.join("killed"));
    let args = |out: &Path| {
        let mut c = nas();
        c.args(["run", "--quiet", "--no-retrain", "--config"])
            .arg(example_config())
            .arg("--out")
            .arg(out)
            .args(["--budget", "10", "--epochs", "3", "--seed", "7"])
            .args(extra);
        c
    };
    ok(args(&full).output().unwrap(), "uninterrupted run");
    // Kill at random moments (seeded), resuming each time, until 20 kills landed on a live process: while
    // generating, training, writing results, selecting.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut kills = Vec::new();
    for _ in 0..300 {
        if kills.len() == kills_wanted {
            break;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let wait = Duration::from_millis(5 + rng % 300);
        let mut child = args(&killed)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills.push((wait.as_millis(), count_results(&killed)));
        }
        child.wait().unwrap();
    }
    assert_eq!(kills.len(), kills_wanted, "kills landed: {kills:?}");
    eprintln!("killed at (ms after start, results so far): {kills:?}");
    ok(within(args(&killed), 180), "resumed run");
    assert_eq!(outcome(&full), outcome(&killed));
    // Racing is on by default for these images: the kills landed mid-race, and the same were stopped.
    assert!(
        !stopped(&full).is_empty(),
        "none raced out: racing untested here"
    );
    assert_eq!(stopped(&full), stopped(&killed));
    // The out-of-fold predictions are the same bytes, for every candidate scored.
    let oofs = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("results"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "oof"))
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let (a, b) = (oofs(&full), oofs(&killed));
    assert!(!a.is_empty(), "no out-of-fold predictions written");
    assert!(a == b, "out-of-fold predictions differ after kills");
    // So the ensemble selected from them is the same.
    let ensemble = |dir: &Path| tests::selection(dir).get("ensemble").cloned();
    assert!(ensemble(&full).is_some(), "no ensemble selected");
    assert_eq!(ensemble(&full), ensemble(&killed));
    assert_intact(&killed, files);
    std::fs::remove_dir_all(&d).unwrap();
}

/// A worker's stdout: the candidates it evaluated and those it discarded.
fn worker_lines(out: &str) -> (Vec<String>, Vec<String>) {
    let pick = |prefix: &str| {
        out.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|s| s.split(':').next().unwrap().trim().to_string())
            .collect::<Vec<String>>()
    };
    (pick("evaluated "), pick("discarded "))
}

/// On a successive-halving search (brackets of 8 candidates at 1 epoch, the best 2 of each trained again
/// at 2), so each (candidate, rung) is a unit of work: 24 proposals and up to 6 promotions (fewer when
/// racing, on by default for these images, stops a bracket's candidates below its incumbent: a stopped one
/// is not promoted).
#[test]
fn eight_workers_some_killed_evaluate_every_candidate_and_rung_exactly_once() {
    let d = tmp("workers");
    let config = d.join("w.toml");
    let text = std::fs::read_to_string(example_config())
        .unwrap()
        .replace("budget = 6", "budget = 24\nfidelity = \"halving\"")
        .replace("batch = 3", "batch = 8")
        .replace("epochs = 1", "epochs = 2");
    std::fs::write(&config, text).unwrap();
    let (solo, shared) = (d.join("solo"), d.join("shared"));
    ok(
        nas()
            .args(["run", "--quiet", "--no-retrain", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&solo)
            .output()
            .unwrap(),
        "nas run",
    );
    ok(
        nas()
            .args(["space", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&shared)
            .output()
            .unwrap(),
        "nas space",
    );
    let worker = || {
        nas()
            .args(["evaluate", "--worker", "--quiet", "--threads", "1"])
            .args(["--lease-timeout", "30"])
            .arg(&shared)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut workers: Vec<std::process::Child> = (0..8).map(|_| worker()).collect();
    // Kill three workers while each holds a lease (mid-training).
    let mut killed = Vec::new();
    let t0 = Instant::now();
    while killed.len() < 3 && t0.elapsed() < Duration::from_secs(120) {
        for w in workers.iter_mut() {
            if killed.len() == 3 || killed.contains(&w.id()) {
                continue;
            }
            let holds = std::fs::read_dir(shared.join("leases"))
                .into_iter()
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .any(|t| t.contains(&format!("pid = {}\n", w.id())));
            if holds && w.try_wait().unwrap().is_none() {
                w.kill().unwrap();
                killed.push(w.id());
            }
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    assert_eq!(
        killed.len(),
        3,
        "could not catch three workers holding a lease"
    );
    let mut evaluated: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    for mut w in workers {
        let id = w.id();
        while w.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                w.kill().unwrap();
                panic!("worker {id} still running after 300 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = w.wait_with_output().unwrap();
        if killed.contains(&id) {
            continue;
        }
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "worker {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (done, discarded) = worker_lines(&stdout);
        assert!(
            discarded.is_empty(),
            "worker {id} computed a finished candidate again: {discarded:?}"
        );
        evaluated.extend(done);
    }
    let mut sorted = evaluated.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        evaluated.len(),
        "a candidate was evaluated twice: {evaluated:?}"
    );
    // The killed workers' candidates were taken over: every candidate has exactly one result, by a survivor,
    // and as many as one process made.
    let units = count_results(&solo);
    assert!((26..=30).contains(&units), "{units} units of work");
    assert_eq!(count_results(&shared), units);
    assert_eq!(evaluated.len(), units);
    assert_intact(&shared, units);
    assert!(
        !stopped(&shared).is_empty(),
        "none raced out: racing untested here"
    );
    assert_eq!(stopped(&solo), stopped(&shared));
    // Each architecture is trained at most once per rung: (key, epochs) pairs are distinct.
    let candidate = |id: u64| -> toml::Table {
        let text = std::fs::read_to_string(shared.join(format!("candidates/c{id:05}.toml")));
        text.unwrap().parse().unwrap()
    };
    let mut trained: Vec<String> = (1..=units as u64)
        .map(|id| candidate(id).to_string())
        .collect();
    let rung = |t: &String| {
        t.lines()
            .find(|l| l.starts_with("epochs"))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        trained.iter().filter(|t| rung(t) == "epochs = 2").count(),
        units - 24
    );
    trained = trained
        .iter()
        .map(|t| {
            t.lines()
                .filter(|l| l.starts_with("key") || l.starts_with("epochs"))
                .collect()
        })
        .collect();
    trained.sort();
    trained.dedup();
    assert_eq!(
        trained.len(),
        units,
        "an architecture trained twice at one rung"
    );
    // And the search is the same as one process running it.
    ok(
        nas().arg("select").arg(&shared).output().unwrap(),
        "nas select",
    );
    assert_eq!(outcome(&solo), outcome(&shared));
    std::fs::remove_dir_all(&d).unwrap();
}
