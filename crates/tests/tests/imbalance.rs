//! Imbalanced classes: a warning that says what the run does about them, the loss weighted by class when the
//! metric weighs classes equally (`[evaluate] class_weight`, filled into `space.toml`), and each result's
//! per-class scores.

use std::path::Path;
use std::process::Command;
use tests::{ok, result_files, tmp};

fn nas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nas-e2e"))
}

/// 412 rows of two numbers: classes `a` and `b` of 200 rows each and `rare` of 12.
fn imbalanced_csv(path: &Path) {
    let mut s = String::from("x1,x2,y\n");
    for i in 0..412u32 {
        let (class, cx) = match i {
            0..200 => ("a", 0.0),
            200..400 => ("b", 2.0),
            _ => ("rare", 4.0),
        };
        let jitter = |k: u32| ((i * k) % 17) as f64 / 17.0 - 0.5;
        s += &format!("{:.3},{:.3},{class}\n", cx + jitter(7), jitter(11));
    }
    std::fs::write(path, s).unwrap();
}

/// `nas run` on `csv` with `args`; (stderr, space.toml).
fn run(csv: &Path, out: &Path, args: &[&str]) -> (String, String) {
    let o = nas()
        .args([
            "run",
            "--no-retrain",
            "--budget",
            "2",
            "--epochs",
            "3",
            "--data",
        ])
        .arg(csv)
        .args(["--label", "y", "--out"])
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(o, "nas run");
    (
        err,
        std::fs::read_to_string(out.join("space.toml")).unwrap(),
    )
}

#[test]
fn imbalanced_classes_are_named_weighted_for_macro_f1_and_scored_per_class() {
    let d = tmp("imbalance");
    let csv = d.join("imbalanced.csv");
    imbalanced_csv(&csv);

    let (err, space) = run(&csv, &d.join("f1"), &["--metric", "macro_f1"]);
    assert!(
        err.contains("class `rare` has 12 rows, the largest class 200: the classes are imbalanced"),
        "{err}"
    );
    assert!(err.contains("the loss weighs them alike"), "{err}");
    assert!(space.contains("class_weight = \"balanced\""), "{space}");
    // Every scored result has its per-class scores, one per class, from its out-of-fold predictions.
    for r in result_files(&d.join("f1")) {
        let t: toml::Table = std::fs::read_to_string(&r).unwrap().parse().unwrap();
        let per = t["per_class"].as_table().unwrap();
        let support: Vec<i64> = (per["support"].as_array().unwrap().iter())
            .map(|v| v.as_integer().unwrap())
            .collect();
        assert_eq!(support, [200, 200, 12], "{}", r.display());
        assert_eq!(per["f1"].as_array().unwrap().len(), 3);
    }

    let (err, space) = run(&csv, &d.join("acc"), &[]);
    assert!(err.contains("--metric macro_f1"), "{err}");
    assert!(space.contains("class_weight = \"none\""), "{space}");
    // A run from before the key (or `race`) existed resumes with the same data: unset means what it did.
    let stored = d.join("acc/space.toml");
    let old: String = (space.lines())
        .filter(|l| !l.starts_with("class_weight") && !l.starts_with("race"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&stored, old).unwrap();
    run(&csv, &d.join("acc"), &[]);
    std::fs::remove_dir_all(&d).unwrap();
}
