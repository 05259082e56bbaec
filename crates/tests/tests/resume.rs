//! Resuming a run: a retraining killed at any moment leaves nothing behind, and execution settings (device,
//! threads) may change between sessions of one run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tests::{ok, repo, tmp};

fn nas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nas-e2e"))
}

fn run_args(out: &Path, config: &Path) -> Command {
    let mut c = nas();
    c.args(["run", "--quiet", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out);
    c
}

/// The names in a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_killed_retraining_leaves_nothing_behind_after_resume_and_the_model_is_the_same() {
    let d = tmp("killed-retrain");
    let config = repo().join("examples/nas.toml");
    let (full, killed) = (d.join("full"), d.join("killed"));
    ok(
        run_args(&full, &config).output().unwrap(),
        "uninterrupted run",
    );
    ok(
        run_args(&killed, &config)
            .arg("--no-retrain")
            .output()
            .unwrap(),
        "search without retraining",
    );
    // Kill retrainings at several moments (training, writing, renaming).
    let mut landed = 0;
    for ms in [5, 20, 40, 80, 120, 200, 300, 500] {
        let mut child = nas()
            .args(["select", "--retrain"])
            .arg(&killed)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            landed += 1;
        }
        child.wait().unwrap();
    }
    eprintln!("{landed} of 8 kills landed on a live retraining");
    // What a writer killed between creating and renaming its temporary leaves (aged, its process gone).
    let model = killed.join("model");
    std::fs::create_dir_all(&model).unwrap();
    let leftover = model.join(format!(".weights.safetensors.tmp.{}.0", u32::MAX - 5));
    std::fs::write(&leftover, b"partial").unwrap();
    // The resume comes later: a temporary is swept once its writer is gone and it is older than a minute
    // (a younger one may be a write in progress on another host sharing the directory). So every file a
    // kill left is aged, as the passing of time would.
    for name in names(&model) {
        std::fs::File::options()
            .write(true)
            .open(model.join(name))
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    }
    ok(run_args(&killed, &config).output().unwrap(), "resumed run");
    assert_eq!(
        names(&model),
        names(&full.join("model")),
        "model/ after resume"
    );
    let weights = |run: &Path| -> Vec<Vec<u8>> {
        let files = tests::model_weights(run);
        files.iter().map(|w| std::fs::read(w).unwrap()).collect()
    };
    assert!(
        weights(&full) == weights(&killed),
        "the resumed run's model differs from the uninterrupted one"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn execution_settings_may_change_on_resume_and_identity_settings_may_not() {
    let d = tmp("execution");
    let example = std::fs::read_to_string(repo().join("examples/nas.toml")).unwrap();
    let write = |name: &str, extra: &str| {
        let p = d.join(name);
        std::fs::write(&p, format!("{example}{extra}")).unwrap();
        p
    };
    let run = d.join("run");
    let first = write("first.toml", "threads = 2\ndevice = \"cpu\"\n");
    ok(
        run_args(&run, &first)
            .args(["--budget", "3", "--no-retrain"])
            .output()
            .unwrap(),
        "first session",
    );
    // Another thread count and device, a larger budget: the same run goes on.
    let second = write("second.toml", "threads = 1\ndevice = \"auto\"\n");
    ok(
        run_args(&run, &second)
            .args(["--budget", "3", "--no-retrain"])
            .output()
            .unwrap(),
        "resumed with other execution settings",
    );
    // An identity setting (epochs) is refused, naming it.
    let third = write("third.toml", "threads = 1\n");
    let out = run_args(&run, &third)
        .args(["--budget", "3", "--epochs", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[evaluate] epochs: 1 ≠ 2"), "{err}");
    assert!(!err.contains("threads"), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_finished_search_resumed_with_a_larger_budget_and_no_config_continues() {
    let d = tmp("larger-budget");
    let config = repo().join("examples/nas.toml");
    let run = d.join("run");
    ok(
        run_args(&run, &config)
            .args(["--budget", "3", "--no-retrain"])
            .output()
            .unwrap(),
        "first search",
    );
    let candidates = |n: usize| -> Vec<String> {
        (1..=n)
            .map(|i| std::fs::read_to_string(run.join(format!("candidates/c{i:05}.toml"))).unwrap())
            .collect()
    };
    let before = candidates(3);
    // No config, no data: the run's own experiment with a larger budget.
    let out = nas()
        .args(["run", "--no-retrain", "--budget", "6", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out, "resumed with --budget 6");
    assert!(err.contains("budget changed from 3 to 6"), "{err}");
    assert!(
        !err.contains("time limit"),
        "only what changed is named: {err}"
    );
    assert_eq!(candidates(3), before, "the first candidates are kept");
    assert_eq!(tests::result_files(&run).len(), 6);
    let space = std::fs::read_to_string(run.join("space.toml")).unwrap();
    assert!(space.contains("budget = 6"), "{space}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_time_limit_stops_the_search_cleanly_and_a_new_one_extends_it() {
    let d = tmp("time-limit");
    let config = repo().join("examples/nas.toml");
    let run = d.join("run");
    let session = |time: &str| {
        let out = nas()
            .args(["run", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&run)
            .args([
                "--budget",
                "200",
                "--epochs",
                "2",
                "--no-retrain",
                "--time",
                time,
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        ok(out, "a timed session");
        err
    };
    let err = session("2s");
    assert!(
        err.contains("the time limit ([search] time) passed"),
        "{err}"
    );
    let first = tests::result_files(&run).len();
    assert!(first < 200, "{first} results after 2 s");
    // What was abandoned stays pending: no result file, no lease left.
    assert!(names(&run.join("candidates")).len() >= first);
    assert!(std::fs::read_dir(run.join("leases")).map_or(true, |d| d.count() == 0));
    let sel = std::fs::read_to_string(run.join("selection.toml")).unwrap();
    assert!(sel.contains("ended = \"time\""), "{sel}");
    // The report says how far the search got and why it ended, not just the budget.
    ok(
        nas().arg("report").arg(&run).output().unwrap(),
        "nas report",
    );
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let want = format!("{first} of budget 200 evaluated, stopped by the time limit (2s)");
    assert!(
        html.contains(&want),
        "{want}: {}",
        &html[..html.len().min(3000)]
    );
    let err = session("3s");
    assert!(err.contains("time limit changed from 2s to 3s"), "{err}");
    assert!(tests::result_files(&run).len() > first);
    std::fs::remove_dir_all(&d).unwrap();
}
