//! End-to-end tests: the real `nas` binary on real run directories.

use std::path::Path;
use std::process::Command;
use tests::{count_results, example_config, ok, outcome, repo, selection, tmp};

fn nas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nas-e2e"))
}

/// `nas space` with the example experiment into `run`.
fn space_from_example(run: &Path) {
    ok(
        nas()
            .args(["space", "--config"])
            .arg(example_config())
            .arg("--out")
            .arg(run)
            .output()
            .unwrap(),
        "nas space",
    );
}

/// Counts of `<circle` and `<path` inside each `<svg class="plot"` element of an HTML text.
fn plot_marks(html: &str) -> Vec<(usize, usize)> {
    html.split("<svg class=\"plot\"")
        .skip(1)
        .map(|part| {
            let svg = &part[..part.find("</svg>").unwrap_or(part.len())];
            (svg.matches("<circle").count(), svg.matches("<path").count())
        })
        .collect()
}

#[test]
fn report_renders_in_headless_chromium_and_an_exported_digits_model_predicts_as_retrained() {
    let d = tmp("report");
    let run = d.join("run");
    ok(
        nas()
            .args(["run", "--quiet", "--config"])
            .arg(example_config())
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap(),
        "nas run",
    );
    let out = ok(
        nas()
            .arg("report")
            .arg(&run)
            .arg("--csv")
            .arg(d.join("table.csv"))
            .output()
            .unwrap(),
        "nas report",
    );
    assert!(out.contains("report.html"));
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    // Self-contained: nothing fetched from elsewhere.
    assert!(!html.contains("<link") && !html.contains("src=") && !html.contains("url("));
    // The baselines `nas run` computed on the same folds, in the report: the majority class of ten digits
    // scores about a tenth, a linear model well above it.
    assert!(
        html.contains("Baselines on the same folds (accuracy): majority class 0.1"),
        "baselines"
    );
    let b: toml::Table = std::fs::read_to_string(run.join("baseline.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let linear = &b["baseline"].as_array().unwrap()[1];
    assert_eq!(linear["name"].as_str(), Some("linear model"));
    assert!(linear["cv_mean"].as_float().unwrap() > 0.85, "{linear}");
    // The winner's per-class view, from the out-of-fold predictions stored beside its result.
    let best = tests::selection(&run)["best"]["id"].as_integer().unwrap();
    assert!(run.join(format!("results/c{best:05}.oof")).exists());
    assert!(
        html.contains(&format!("Per class (c{best:05}, out-of-fold)")),
        "per class"
    );
    assert!(
        html.contains("<table class=\"confusion\">"),
        "confusion matrix"
    );
    // Each trained fold's curve is in its result: one value per epoch (the example trains 1).
    let r: toml::Table = std::fs::read_to_string(run.join(format!("results/c{best:05}.toml")))
        .unwrap()
        .parse()
        .unwrap();
    let curves = r["curves"].as_array().unwrap();
    assert_eq!(curves.len(), r["fold_scores"].as_array().unwrap().len());
    for c in curves {
        for k in ["train_loss", "heldout_loss", "heldout_accuracy"] {
            assert_eq!(c[k].as_array().unwrap().len(), 1, "{k} of {c}");
        }
    }
    let marks = plot_marks(&html);
    assert_eq!(marks.len(), 5, "two curve plots and three search plots");
    // The curves of the selected network and the next five: both losses drawn, an accuracy dot per epoch.
    let drawn = 6.min(6 - tests::stopped(&run).len()).max(1);
    assert!(html.contains("<h2>Training curves</h2>"));
    assert!(marks[0].1 >= 2 * drawn && marks[1].0 >= drawn, "{marks:?}");
    // Every candidate scored in full is drawn (racing, on by default for these images, may stop some).
    let scored = 6 - tests::stopped(&run).len();
    assert!(
        marks[2..].iter().all(|&(c, p)| c >= scored && p >= 1),
        "{marks:?}"
    );
    let csv = std::fs::read_to_string(d.join("table.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "header + 6 candidates");
    // Rendered by a real browser: the plots survive parsing and layout, and the page is not blank.
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    match chromium {
        None => eprintln!("SKIPPED the headless-Chromium part: no chromium on PATH (scripts/install-chromium.sh installs it)"),
        Some(b) => {
            let url = format!("file://{}", run.join("report.html").display());
            let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1240,1400"];
            let dom = Command::new(b)
                .args(flags)
                .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
                .arg(&url)
                .output()
                .unwrap();
            // No script error or console message (the sortable table's script is the page's only one).
            let log = String::from_utf8_lossy(&dom.stderr);
            assert!(!log.contains(":CONSOLE"), "console output: {log}");
            let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
            assert_eq!(plot_marks(&dom), marks, "the browser's DOM has the same plots");
            let png = d.join("report.png");
            let shot = Command::new(b)
                .args(flags)
                .arg(format!("--screenshot={}", png.display()))
                .arg(&url)
                .output()
                .unwrap();
            assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
            let bytes = std::fs::read(&png).unwrap();
            assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000, "{} bytes", bytes.len());
        }
    }
    // Export and predict the built-in digits: the accuracy retraining reported.
    let model = d.join("model");
    export(&run, &model);
    let (preds, acc) = predict(&model, Path::new("builtin:digits"));
    assert_eq!(preds.len(), 1797);
    assert_eq!(acc.as_deref(), Some(train_accuracy(&model).as_str()));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn run_on_builtin_digits_writes_selection_and_model() {
    let d = tmp("builtin");
    let run = d.join("run");
    let out = nas()
        .args(["run", "--config"])
        .arg(example_config())
        .arg("--out")
        .arg(&run)
        .args(["--budget", "4"])
        .output()
        .unwrap();
    let stdout = ok(out, "nas run");
    assert!(stdout.contains("best: c"), "{stdout}");
    let s = selection(&run);
    let best = s["best"].as_table().unwrap();
    let mean = best["cv_mean"].as_float().unwrap();
    assert!(mean > 0.5 && mean <= 1.0, "digits cv_mean {mean}");
    assert_eq!(best["fold_scores"].as_array().unwrap().len(), 3);
    assert!(best["arch"].as_str().unwrap().starts_with("conv"));
    for w in tests::model_weights(&run) {
        assert!(w.metadata().unwrap().len() > 1000, "{}", w.display());
    }
    let model: toml::Table = std::fs::read_to_string(run.join("model/model.toml"))
        .unwrap()
        .parse()
        .unwrap();
    // The model is the best network, or the ensemble when the selection used it.
    let ids = |v: &toml::Value| -> Vec<i64> {
        (v.as_array().unwrap().iter())
            .map(|m| m["id"].as_integer().unwrap())
            .collect()
    };
    match s
        .get("ensemble")
        .filter(|e| e["used"].as_bool() == Some(true))
    {
        Some(e) => assert_eq!(ids(&model["members"]), ids(&e["members"])),
        None => assert_eq!(model["arch"].as_str(), best["arch"].as_str()),
    }
    // Each result records the most memory one of its trainings held (a conv net on 8×8 digits: well
    // above zero, well below 100 MiB).
    for path in tests::result_files(&run) {
        let text = std::fs::read_to_string(path).unwrap();
        let result: toml::Table = text.parse().unwrap();
        let peak = result["metrics"]["peak_mib"].as_float().unwrap();
        assert!(peak > 0.0 && peak < 100.0, "peak {peak} MiB in {text}");
    }
    let status = ok(
        nas().arg("status").arg(&run).output().unwrap(),
        "nas status",
    );
    assert!(
        status.contains("candidates: 4 of budget 4") && status.contains("pending:    0"),
        "{status}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// Three Gaussian blobs in 4 dimensions, as a CSV with a string label column in the middle.
fn blobs_csv(path: &Path) {
    let mut s = String::from("a,b,kind,c,d\n");
    let mut x: u64 = 12345;
    let mut r = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 33) as f64 / (1u64 << 31) as f64) - 0.5
    };
    for i in 0..150 {
        let k = i % 3;
        let c = [0.0, 2.0, 4.0][k];
        s.push_str(&format!(
            "{:.3},{:.3},{},{:.3},{:.3}\n",
            c + r(),
            -c + r(),
            ["ant", "bee", "cat"][k],
            r(),
            c * 0.5 + r()
        ));
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn run_on_a_csv_with_a_dense_space() {
    let d = tmp("csv");
    blobs_csv(&d.join("blobs.csv"));
    std::fs::write(
        d.join("exp.toml"),
        "[data]\nsource = \"blobs.csv\"\nlabel = \"kind\"\n[space]\nblock = \"dense\"\ndepth = [1, 2]\nwidth = [8, 16]\n[search]\nbudget = 4\nbatch = 2\npopulation = 2\nsample = 1\n[evaluate]\nepochs = 20\nbatch_size = 16\n",
    )
    .unwrap();
    let run = d.join("run");
    ok(
        nas()
            .args(["run", "--quiet", "--config"])
            .arg(d.join("exp.toml"))
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap(),
        "nas run csv",
    );
    let s = selection(&run);
    let mean = s["best"]["cv_mean"].as_float().unwrap();
    assert!(mean > 0.9, "separable blobs: {mean}");
    let space: toml::Table = std::fs::read_to_string(run.join("space.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(space["class_names"].as_array().unwrap().len(), 3);
    // Export, then predict the same CSV: the retrained accuracy again; without the label column: predictions only.
    let model = d.join("model");
    export(&run, &model);
    let (preds, acc) = predict(&model, &d.join("blobs.csv"));
    assert_eq!(preds.len(), 150);
    assert!(preds
        .iter()
        .all(|p| ["ant", "bee", "cat"].contains(&p.as_str())));
    assert_eq!(acc.as_deref(), Some(train_accuracy(&model).as_str()));
    let text = std::fs::read_to_string(d.join("blobs.csv")).unwrap();
    let unlabelled: String = text
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            format!("{},{},{},{}\n", c[0], c[1], c[3], c[4])
        })
        .collect();
    std::fs::write(d.join("new.csv"), unlabelled).unwrap();
    let (preds2, acc2) = predict(&model, &d.join("new.csv"));
    assert_eq!(preds2, preds);
    assert_eq!(acc2, None);
    std::fs::remove_dir_all(&d).unwrap();
}

/// `nas export RUN --out MODEL`.
fn export(run: &Path, model: &Path) {
    let out = nas()
        .arg("export")
        .arg(run)
        .arg("--out")
        .arg(model)
        .output()
        .unwrap();
    ok(out, "nas export");
}

/// `nas predict`: the predicted classes and the accuracy line's value, if printed.
fn predict(model: &Path, data: &Path) -> (Vec<String>, Option<String>) {
    let out = nas()
        .args(["predict", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = ok(out, "nas predict");
    let preds = stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().to_string())
        .collect();
    let acc = err
        .lines()
        .find_map(|l| l.strip_prefix("accuracy: "))
        .map(|l| l.split(' ').next().unwrap().to_string());
    (preds, acc)
}

/// An exported model's training accuracy, formatted as `nas predict` prints accuracy.
fn train_accuracy(model: &Path) -> String {
    let m: toml::Table = std::fs::read_to_string(model.join("model.toml"))
        .unwrap()
        .parse()
        .unwrap();
    format!("{:.4}", m["train_accuracy"].as_float().unwrap())
}

fn stage_loop(run: &Path, evaluate: &dyn Fn(&Path)) {
    for _ in 0..100 {
        let out = ok(
            nas().arg("generate").arg(run).output().unwrap(),
            "nas generate",
        );
        if out.starts_with("done") {
            return;
        }
        evaluate(run);
    }
    panic!("generate never said done");
}

#[test]
fn stages_one_by_one_give_the_same_winner_and_scores_as_nas_run() {
    let d = tmp("stages");
    let (a, b) = (d.join("a"), d.join("b"));
    ok(
        nas()
            .args(["run", "--quiet", "--no-retrain", "--config"])
            .arg(example_config())
            .arg("--out")
            .arg(&a)
            .output()
            .unwrap(),
        "nas run",
    );
    space_from_example(&b);
    stage_loop(&b, &|run| {
        ok(
            nas()
                .args(["evaluate", "--quiet", "--threads", "1"])
                .arg(run)
                .output()
                .unwrap(),
            "nas evaluate",
        );
    });
    ok(nas().arg("select").arg(&b).output().unwrap(), "nas select");
    assert_eq!(outcome(&a), outcome(&b));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn resuming_with_different_settings_is_refused() {
    let d = tmp("mismatch");
    let run = d.join("run");
    space_from_example(&run);
    let out = nas()
        .args(["run", "--quiet", "--config"])
        .arg(example_config())
        .arg("--out")
        .arg(&run)
        .args(["--seed", "99"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("seed: 3 ≠ 99"), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn makefile_runs_the_stages_and_agrees_with_nas_run() {
    let d = tmp("make");
    let bin = env!("CARGO_BIN_EXE_nas-e2e");
    let out = Command::new("make")
        .args(["-j2", "-C"])
        .arg(repo().join("examples"))
        .arg(format!("NAS={bin}"))
        .arg(format!("RUN={}", d.join("make").display()))
        .output()
        .unwrap();
    ok(out, "make");
    ok(
        nas()
            .args(["run", "--quiet", "--no-retrain", "--config"])
            .arg(example_config())
            .arg("--out")
            .arg(d.join("run"))
            .output()
            .unwrap(),
        "nas run",
    );
    assert_eq!(outcome(&d.join("make")), outcome(&d.join("run")));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn evaluate_creates_a_missing_results_folder_before_training() {
    // Candidates written by another tool into a folder that has no results/ yet: the trainings must
    // not be thrown away for want of a place to write them.
    let d = tmp("no-results");
    let run = d.join("run");
    space_from_example(&run);
    ok(
        nas().arg("generate").arg(&run).output().unwrap(),
        "generate",
    );
    std::fs::remove_dir_all(run.join("results")).unwrap();
    let out = ok(
        nas()
            .args(["evaluate", "--quiet", "--threads", "1"])
            .arg(&run)
            .output()
            .unwrap(),
        "nas evaluate",
    );
    let candidates = std::fs::read_dir(run.join("candidates")).unwrap().count();
    assert!(candidates > 0);
    assert_eq!(count_results(&run), candidates, "{out}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_python_program_can_play_the_evaluate_stage() {
    let d = tmp("python");
    let run = d.join("run");
    space_from_example(&run);
    let script = repo().join("examples/python-evaluator/evaluate.py");
    stage_loop(&run, &|run| {
        ok(
            Command::new("python3")
                .arg(&script)
                .arg(run)
                .output()
                .unwrap(),
            "evaluate.py",
        );
    });
    ok(
        nas().arg("select").arg(&run).output().unwrap(),
        "nas select",
    );
    // The proxy score grows with size, so the winner is the largest candidate (ties: the earliest).
    let mut best: Option<(u64, u64)> = None;
    for e in std::fs::read_dir(run.join("candidates")).unwrap() {
        let c: toml::Table = std::fs::read_to_string(e.unwrap().path())
            .unwrap()
            .parse()
            .unwrap();
        let (id, p) = (
            c["id"].as_integer().unwrap() as u64,
            c["params"].as_integer().unwrap() as u64,
        );
        if best.is_none_or(|(bid, bp)| p > bp || (p == bp && id < bid)) {
            best = Some((id, p));
        }
    }
    assert_eq!(
        selection(&run)["best"]["id"].as_integer().unwrap() as u64,
        best.unwrap().0
    );
    let status = ok(nas().arg("status").arg(&run).output().unwrap(), "status");
    assert!(status.contains("6 ok"), "{status}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A table covering the whole NAS-Bench-201 cell space (5^6 strings) with a made-up score per architecture.
fn synthetic_cell_table(path: &Path) {
    const OPS: [&str; 5] = [
        "none",
        "skip_connect",
        "nor_conv_1x1",
        "nor_conv_3x3",
        "avg_pool_3x3",
    ];
    let mut text = String::from("arch,val,test\n");
    for code in 0..5usize.pow(6) {
        let o: Vec<usize> = (0..6).map(|i| code / 5usize.pow(i) % 5).collect();
        let arch = format!(
            "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|",
            OPS[o[0]], OPS[o[1]], OPS[o[2]], OPS[o[3]], OPS[o[4]], OPS[o[5]]
        );
        let val = 50.0 + o.iter().map(|&x| [0.0, 2.0, 4.0, 7.0, 3.0][x]).sum::<f64>();
        let test = val + (code % 7) as f64 * 0.1;
        text.push_str(&format!("{arch},{val:.2},{test:.2}\n"));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_table_run_completes_and_resumes_after_a_crash_like_any_other() {
    let d = tmp("table");
    synthetic_cell_table(&d.join("bench.csv"));
    let config = d.join("table.toml");
    std::fs::write(
        &config,
        "seed = 3\n[space]\nfamily = \"cell\"\n[search]\nstrategy = \"surrogate\"\nbudget = 40\nbatch = 4\n\
         [evaluate]\nevaluator = \"table\"\ntable = \"bench.csv\"\nsearch_metric = \"val\"\nreport_metrics = [\"test\"]\n",
    )
    .unwrap();
    let run = |out: &Path| {
        ok(
            nas()
                .args(["run", "--quiet", "--config"])
                .arg(&config)
                .arg("--out")
                .arg(out)
                .output()
                .unwrap(),
            "nas run (table)",
        )
    };
    let (full, crashed) = (d.join("full"), d.join("crashed"));
    run(&full);
    assert_eq!(count_results(&full), 40);
    let result: toml::Table = std::fs::read_to_string(full.join("results/c00001.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(result["evaluator"].as_str(), Some("table"));
    assert!(result["metrics"]["test"].as_float().is_some());
    assert!(
        !full.join("model").exists(),
        "a table run has nothing to retrain"
    );
    // The same run, stopped as a crash would leave it: part-way, with a half-written batch.
    run(&crashed);
    for id in [38u64, 39, 40] {
        std::fs::remove_file(crashed.join(format!("results/c{id:05}.toml"))).unwrap();
    }
    std::fs::remove_file(crashed.join("candidates/c00040.toml")).unwrap();
    std::fs::remove_file(crashed.join("selection.toml")).unwrap();
    run(&crashed);
    assert_eq!(outcome(&full), outcome(&crashed));
    assert_eq!(count_results(&crashed), 40);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn retry_failed_sets_failed_results_aside_and_evaluates_them_again() {
    let d = tmp("retry");
    let run = d.join("run");
    space_from_example(&run);
    ok(
        nas().arg("generate").arg(&run).output().unwrap(),
        "nas generate",
    );
    let evaluate = |extra: &[&str]| {
        let out = nas()
            .arg("evaluate")
            .arg(&run)
            .arg("--quiet")
            .args(extra)
            .output()
            .unwrap();
        ok(out, "nas evaluate")
    };
    evaluate(&[]);
    // Make c00002 a failure, as a crash of its training would have recorded it.
    let r2 = run.join("results/c00002.toml");
    let good = std::fs::read_to_string(&r2).unwrap();
    let failed = good.replace("status = \"ok\"", "status = \"failed\"");
    std::fs::write(&r2, &failed).unwrap();
    let out = evaluate(&["--retry-failed"]);
    assert!(
        out.contains("retrying 1 failed candidates: c00002"),
        "{out}"
    );
    assert!(out.contains("evaluated c00002"), "{out}");
    assert_eq!(
        std::fs::read_to_string(run.join("retried/c00002.1.toml")).unwrap(),
        failed
    );
    // The same deterministic result again, apart from the two measurements: wall time and memory.
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("wall_s") && !l.starts_with("peak_mib"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&std::fs::read_to_string(&r2).unwrap()), strip(&good));
    std::fs::remove_dir_all(&d).unwrap();
}

/// Every result's (id, status, fold scores) in `run`.
fn decisions(run: &Path) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = tests::result_files(run)
        .into_iter()
        .map(|p| {
            let t: toml::Table = std::fs::read_to_string(p).unwrap().parse().unwrap();
            (
                t["id"].to_string(),
                t["status"].to_string(),
                t["fold_scores"].to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// With `[evaluate] race`, candidates behind the incumbent stop with the folds they trained, never win, and
/// every decision is the same on one thread or two (they depend only on fold scores and earlier batches).
#[test]
fn racing_stops_candidates_the_same_way_on_any_number_of_threads() {
    let d = tmp("race");
    let config = d.join("race.toml");
    let text = std::fs::read_to_string(example_config()).unwrap();
    let text = text
        .replace("folds = 3", "folds = 5\nrace = true")
        .replace("budget = 6", "budget = 12");
    std::fs::write(&config, text).unwrap();
    let run = |name: &str, threads: &str| {
        let out = d.join(name);
        ok(
            nas()
                .args([
                    "run",
                    "--quiet",
                    "--no-retrain",
                    "--threads",
                    threads,
                    "--config",
                ])
                .arg(&config)
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap(),
            "nas run",
        );
        out
    };
    let (one, two) = (run("one", "1"), run("two", "2"));
    let (a, b) = (decisions(&one), decisions(&two));
    assert_eq!(a, b);
    assert_eq!(a.len(), 12);
    let stopped: Vec<_> = a.iter().filter(|r| r.1 == "\"stopped\"").collect();
    assert!(!stopped.is_empty(), "no candidate was raced out: {a:?}");
    let best = selection(&one)["best"]["id"].to_string();
    assert!(stopped.iter().all(|r| r.0 != best), "{best} {stopped:?}");
    std::fs::remove_dir_all(&d).unwrap();
}
