//! The rough edges of a first hour (issue 31, 1–8), each as a new user met it: Ctrl-C, predicting the IDX
//! file a model was trained on, a closed pipe, a zero time limit, `--folds`, decimal commas, pixels without
//! `--shape`, unseen labels, one damaged candidate, `-q`, and running a finished run's command again. The ETA
//! that ignored the time limit (1) is a unit test in `nas-cli/src/progress.rs`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tests::{count_results, example_config, ok, tmp};

fn nas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nas-e2e"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The example experiment, small: `budget` candidates of `epochs`, 2 folds.
fn small_run(out: &Path, budget: &str, epochs: &str) -> Command {
    let mut c = nas();
    c.args(["run", "--config"])
        .arg(example_config())
        .args([
            "--budget", budget, "--epochs", epochs, "--folds", "2", "--out",
        ])
        .arg(out);
    c
}

#[test]
fn quiet_says_nothing_of_retraining_and_a_finished_runs_command_again_keeps_the_model() {
    let d = tmp("rerun");
    let run = d.join("run");
    let out = small_run(&run, "2", "1").arg("-q").output().unwrap();
    let err = stderr(&out);
    ok(out, "quiet run");
    assert!(!err.contains("retraining"), "-q printed: {err}");
    let weights = tests::model_weights(&run)[0].clone();
    let made = std::fs::metadata(&weights).unwrap().modified().unwrap();
    // `--folds 2` reached the results (5 without it).
    let result = std::fs::read_to_string(run.join("results/c00001.toml")).unwrap();
    let t: toml::Table = result.parse().unwrap();
    assert_eq!(t["fold_scores"].as_array().unwrap().len(), 2, "{result}");
    std::thread::sleep(Duration::from_millis(20));
    let out = small_run(&run, "2", "1").output().unwrap();
    let err = stderr(&out);
    ok(out, "the same command again");
    assert!(err.contains("retrained earlier; kept"), "{err}");
    assert!(!err.contains("retraining c"), "{err}");
    assert_eq!(
        std::fs::metadata(&weights).unwrap().modified().unwrap(),
        made
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_help_names_every_kind_of_data_and_the_folds_flag() {
    let help = ok(
        nas().args(["run", "--help"]).output().unwrap(),
        "nas run --help",
    );
    for want in [
        "--folds",
        "IDX",
        ".npy",
        "folder of images",
        "builtin:digits",
    ] {
        assert!(help.contains(want), "{want}: {help}");
    }
}

#[test]
fn a_zero_time_limit_is_named_as_too_short() {
    let d = tmp("time0");
    let out = small_run(&d.join("run"), "2", "1")
        .args(["--time", "0s"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a usage error: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("longer than zero"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("expected a duration"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn ctrl_c_says_what_was_kept_and_how_to_resume_and_the_run_resumes() {
    let d = tmp("ctrl-c");
    let run = d.join("run");
    let mut child = small_run(&run, "12", "3")
        .arg("--no-retrain")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while count_results(&run) == 0 && t0.elapsed() < Duration::from_secs(120) {
        assert!(child.try_wait().unwrap().is_none(), "ended before Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "finished before Ctrl-C"
    );
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("nas: interrupted. Kept in"), "{err}");
    assert!(
        err.contains(&format!("Resume with: nas run --out {}", run.display())),
        "{err}"
    );
    // A finished candidate's line gives its training time as what it is: the folds' sum.
    assert!(err.contains(" s of training"), "{err}");
    let out = small_run(&run, "12", "3")
        .args(["--no-retrain", "-q"])
        .output()
        .unwrap();
    ok(out, "resumed run");
    assert_eq!(count_results(&run), 12);
    std::fs::remove_dir_all(&d).unwrap();
}

/// Writes an IDX images file and its labels file: two classes of 8×8 grey images (a bright band on top or
/// at the bottom, a little noise).
fn idx_pair(images: &Path, labels: &Path) {
    let n = 40u32;
    let mut px = vec![0, 0, 8, 3];
    let mut lab = vec![0, 0, 8, 1];
    px.extend(n.to_be_bytes());
    lab.extend(n.to_be_bytes());
    for d in [8u32, 8] {
        px.extend(d.to_be_bytes());
    }
    for i in 0..n {
        let top = i % 2 == 0;
        for y in 0..8u32 {
            for x in 0..8u32 {
                let band = if top { y < 3 } else { y > 4 };
                px.push(if band { 200 } else { 30 } + ((x * 7 + y * 13 + i * 29) % 40) as u8);
            }
        }
        lab.push(top as u8);
    }
    std::fs::write(images, px).unwrap();
    std::fs::write(labels, lab).unwrap();
}

#[test]
fn predict_reads_the_idx_file_a_model_was_trained_on_and_a_closed_pipe_is_no_error() {
    let d = tmp("predict-idx");
    let (images, labels) = (d.join("images.idx"), d.join("labels.idx"));
    idx_pair(&images, &labels);
    let run = d.join("run");
    let out = nas()
        .args(["run", "-q", "--data"])
        .arg(&images)
        .arg("--labels")
        .arg(&labels)
        .args(["--budget", "1", "--epochs", "2", "--folds", "2", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    ok(out, "nas run on IDX");
    let model = d.join("model");
    let out = nas()
        .arg("export")
        .arg(&run)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    ok(out, "export");
    let predict = |labelled: bool| {
        let mut c = nas();
        c.args(["predict", "--model"])
            .arg(&model)
            .arg("--data")
            .arg(&images);
        if labelled {
            c.arg("--labels").arg(&labels);
        }
        c
    };
    let with = predict(true).output().unwrap();
    let err = stderr(&with);
    let rows = ok(with, "predict with labels");
    assert!(
        err.contains("accuracy: ") && err.contains("on 40 rows"),
        "{err}"
    );
    assert_eq!(rows.lines().count(), 41, "{rows}");
    let without = predict(false).output().unwrap();
    assert!(stderr(&without).contains("40 rows predicted (no label column"));
    assert_eq!(ok(without, "predict without labels"), rows);
    // `nas predict … | head -1`: the reader closes the pipe early.
    let mut child = predict(false)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Broken pipe"), "{}", stderr(&out));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn decimal_commas_are_numbers_pixels_get_a_shape_hint_and_predict_names_unseen_labels() {
    let d = tmp("tables");
    // Semicolons between fields and decimal commas, as spreadsheets in much of Europe save them.
    let mut csv = String::from("width;height;kind\n");
    for i in 0..30 {
        let (w, h, k) = if i % 2 == 0 {
            (1.5, 2.25, "a")
        } else {
            (3.75, 0.5, "b")
        };
        let jitter = (i % 5) as f64 * 0.1;
        csv += &format!("{:.2};{:.2};{k}\n", w + jitter, h - jitter).replace('.', ",");
    }
    std::fs::write(d.join("eu.csv"), &csv).unwrap();
    let out = nas()
        .current_dir(&d)
        .args([
            "space", "--data", "eu.csv", "--label", "kind", "--out", "s1",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    ok(out, "nas space on decimal commas");
    assert!(
        err.contains("30 rows, 2 feature columns, 2 classes, tabular"),
        "{err}"
    );
    assert!(!err.contains("categorical"), "{err}");
    // 64 columns of whole numbers 0–255: pixels without --shape.
    let mut px = (0..64)
        .map(|j| format!("p{j}"))
        .collect::<Vec<_>>()
        .join(",")
        + ",label\n";
    for i in 0..20u32 {
        let row: Vec<String> = (0..64u32)
            .map(|j| ((i * 31 + j * 7) % 256).to_string())
            .collect();
        px += &format!("{},{}\n", row.join(","), i % 2);
    }
    std::fs::write(d.join("px.csv"), &px).unwrap();
    let out = nas()
        .current_dir(&d)
        .args(["space", "--data", "px.csv", "--out", "s2"])
        .output()
        .unwrap();
    let err = stderr(&out);
    ok(out, "nas space on pixels");
    assert!(err.contains("look like 8×8 grey images"), "{err}");
    assert!(err.contains("--shape 1,8,8"), "{err}");
    // With the shape given, no such note.
    let out = nas()
        .current_dir(&d)
        .args([
            "space", "--data", "px.csv", "--shape", "1,8,8", "--out", "s3",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    ok(out, "nas space on pixels with --shape");
    assert!(
        err.contains("images 1×8×8") && !err.contains("look like"),
        "{err}"
    );
    // A model of the decimal-comma table, asked about a label it never saw.
    let out = nas()
        .current_dir(&d)
        .args([
            "run", "-q", "--data", "eu.csv", "--label", "kind", "--budget", "1",
        ])
        .args(["--epochs", "2", "--folds", "2", "--out", "r"])
        .output()
        .unwrap();
    ok(out, "nas run on decimal commas");
    let out = nas()
        .current_dir(&d)
        .args(["export", "r", "--out", "m"])
        .output()
        .unwrap();
    ok(out, "export");
    std::fs::write(
        d.join("new.csv"),
        "width;height;kind\n1,5;2,25;a\n3,75;0,5;c\n",
    )
    .unwrap();
    let out = nas()
        .current_dir(&d)
        .args(["predict", "--model", "m", "--data", "new.csv"])
        .output()
        .unwrap();
    let err = stderr(&out);
    ok(out, "predict");
    assert!(
        err.contains("1 label value the model never saw in training (c)"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn one_hand_edited_candidate_is_named_by_status_which_shows_the_rest() {
    let d = tmp("status-damaged");
    let run = d.join("run");
    ok(
        small_run(&run, "3", "1")
            .args(["-q", "--no-retrain"])
            .output()
            .unwrap(),
        "run",
    );
    let c2 = run.join("candidates/c00002.toml");
    let text = std::fs::read_to_string(&c2).unwrap();
    let edited: String = text
        .lines()
        .map(|l| {
            if l.starts_with("params = ") {
                "params = 1".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&c2, edited).unwrap();
    let out = nas().arg("status").arg(&run).output().unwrap();
    let err = stderr(&out);
    let shown = ok(out, "nas status");
    assert!(shown.contains("candidates: 2 of budget 3"), "{shown}");
    assert!(
        shown.contains("1 candidate files cannot be read"),
        "{shown}"
    );
    assert!(shown.contains("c00002.toml: params is 1"), "{shown}");
    assert!(shown.contains("best:       c0000"), "{shown}{err}");
    std::fs::remove_dir_all(&d).unwrap();
}
