//! Ensembles: the selection's ensemble (greedy selection over the out-of-fold predictions, nested estimate)
//! becomes `model/` when asked or when it measures better; `nas predict` and the native export read it; the
//! single best can be chosen back; a version-2 model file is still read.

use std::path::Path;
use std::process::Command;
use tests::{example_config, ok, selection, tmp};

fn nas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nas-e2e"))
}

/// `nas predict --model M --data builtin:digits`'s accuracy line.
fn accuracy(model: &Path) -> String {
    let out = nas()
        .args(["predict", "--model"])
        .arg(model)
        .args(["--data", "builtin:digits"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out, "nas predict");
    err.lines()
        .find(|l| l.starts_with("accuracy"))
        .unwrap_or_else(|| panic!("no accuracy line: {err}"))
        .to_string()
}

#[test]
fn an_ensemble_is_selected_retrained_predicted_and_exported_and_the_single_best_can_be_chosen_back()
{
    let d = tmp("ensemble");
    let run = d.join("run");
    // The example search (3 epochs), seeds tried until the greedy selection takes two candidates or more
    // (with one epoch the best candidate alone usually wins it).
    let members = |run: &Path| {
        selection(run)["ensemble"]["members"]
            .as_array()
            .map_or(0, Vec::len)
    };
    for seed in 3..20 {
        let _ = std::fs::remove_dir_all(&run);
        ok(
            nas()
                .args([
                    "run",
                    "--quiet",
                    "--no-retrain",
                    "--epochs",
                    "3",
                    "--config",
                ])
                .arg(example_config())
                .arg("--out")
                .arg(&run)
                .args(["--seed", &seed.to_string()])
                .output()
                .unwrap(),
            "nas run",
        );
        if members(&run) >= 2 {
            break;
        }
    }
    // Computed by every selection of a run whose candidates have out-of-fold predictions.
    let e = selection(&run)["ensemble"].as_table().unwrap().clone();
    let folds = e["fold_scores"].as_array().unwrap();
    assert_eq!(folds.len(), 3, "one nested score per fold: {e:?}");
    assert_eq!(e["single_fold_scores"].as_array().unwrap().len(), 3);

    let out = ok(
        nas()
            .args(["select", "--ensemble", "always", "--retrain"])
            .arg(&run)
            .output()
            .unwrap(),
        "nas select --ensemble always",
    );
    assert!(out.contains("the model is the ensemble"), "{out}");
    let sel = selection(&run);
    let members = sel["ensemble"]["members"].as_array().unwrap();
    assert!(members.len() >= 2, "{members:?}");
    assert_eq!(sel["ensemble_use"].as_str(), Some("always"));
    let model = std::fs::read_to_string(run.join("model/model.toml")).unwrap();
    let m: toml::Table = model.parse().unwrap();
    let nets = m["members"].as_array().unwrap();
    assert_eq!(nets.len(), members.len());
    let weights: f64 = nets.iter().map(|n| n["weight"].as_float().unwrap()).sum();
    assert!((weights - 1.0).abs() < 1e-9, "{weights}");
    for n in nets {
        assert!(run
            .join("model")
            .join(n["weights"].as_str().unwrap())
            .exists());
    }
    let status = ok(
        nas().arg("status").arg(&run).output().unwrap(),
        "nas status",
    );
    assert!(status.contains("ensemble:   ensemble of"), "{status}");
    // The report shows it with its members and says it is the model.
    ok(
        nas().arg("report").arg(&run).output().unwrap(),
        "nas report",
    );
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("<b>Ensemble</b> of"), "no ensemble paragraph");
    assert!(html.contains("is this ensemble"));
    for m in members {
        let id = m["id"].as_integer().unwrap();
        assert!(
            html.contains(&format!("<tr><td>c{id:05}</td>")),
            "member {id}"
        );
    }
    // Predicting every training row reproduces the retraining's accuracy; a native export predicts alike.
    let train = m["train_accuracy"].as_float().unwrap();
    let line = accuracy(&run.join("model"));
    assert!(line.contains(&format!("{train:.4}")), "{line} vs {train}");
    let copy = d.join("copy");
    ok(
        nas()
            .arg("export")
            .arg(&run)
            .arg("--out")
            .arg(&copy)
            .output()
            .unwrap(),
        "nas export",
    );
    assert_eq!(accuracy(&copy), line);

    // Off: the single best is the model again, retrained alone.
    let out = nas()
        .args(["select", "--ensemble", "off", "--retrain"])
        .arg(&run)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = ok(out, "nas select --ensemble off");
    assert!(text.contains("not used (--ensemble off)"), "{text}");
    let best = selection(&run)["best"]["id"].as_integer().unwrap();
    assert!(err.contains(&format!("retraining c{best:05}")), "{err}");
    let model = std::fs::read_to_string(run.join("model/model.toml")).unwrap();
    assert!(!model.contains("[[members]]"), "{model}");
    // The ensemble's weights files went with it: model/ holds what model.toml names.
    let mut files: Vec<String> = std::fs::read_dir(run.join("model"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["model.toml", "weights.safetensors"]);

    // A model file of version 2 (before ensembles) is still read.
    let old = model.replace("version = 3", "version = 2");
    assert_ne!(old, model);
    std::fs::write(run.join("model/model.toml"), old).unwrap();
    accuracy(&run.join("model"));
    std::fs::remove_dir_all(&d).unwrap();
}
