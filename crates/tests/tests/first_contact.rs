//! A new user's first runs: checks made before anything is written, clear messages for mistakes, damaged
//! files named, and an honest word when the space runs out before the budget.

use std::process::{Command, Output};
use tests::{ok, repo, tmp};

fn nas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nas-e2e"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn up_front_failures_leave_no_run_directory() {
    let d = tmp("up-front");
    std::fs::write(d.join("tiny.csv"), "a,y\n1,p\n2,q\n3,p\n").unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["--device", "cuda"], "this nas was built without CUDA"),
        (
            &["--data", "tiny.csv", "--label", "y"],
            "[evaluate] folds: 5 folds need at least 5 rows; the data has 3",
        ),
        (&["--epochs", "-1"], "invalid value '-1' for '--epochs"),
    ];
    for (args, want) in cases {
        let run = d.join("run");
        let out = nas()
            .current_dir(&d)
            .arg("run")
            .args(args)
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert!(!run.exists(), "{args:?} left a run directory");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_candidate_edited_to_another_architecture_is_refused_naming_the_field() {
    let d = tmp("edited");
    let run = d.join("run");
    ok(
        nas()
            .args(["space", "--config"])
            .arg(repo().join("examples/nas.toml"))
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap(),
        "nas space",
    );
    ok(
        nas().arg("generate").arg(&run).output().unwrap(),
        "generate",
    );
    let path = run.join("candidates/c00001.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let arch = text
        .lines()
        .find_map(|l| l.strip_prefix("arch = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    // Another valid architecture of the space, with the old parameter count left in place.
    let other = if arch == "conv4x3-relu" {
        "conv8x3-relu"
    } else {
        "conv4x3-relu"
    };
    std::fs::write(&path, text.replace(&arch, other)).unwrap();
    // The stages refuse it; status shows the rest of the run and names it.
    let out = nas().arg("generate").arg(&run).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("c00001.toml: params is") && err.contains("was the file edited?"),
        "{err}"
    );
    let shown = ok(nas().arg("status").arg(&run).output().unwrap(), "status");
    assert!(
        shown.contains("c00001.toml: params is") && shown.contains("was the file edited?"),
        "{shown}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_budget_larger_than_the_space_ends_saying_the_space_ran_out() {
    let d = tmp("exhausted");
    // A chain space of exactly two architectures.
    std::fs::write(
        d.join("exp.toml"),
        "[space]\ndepth = [1, 1]\nwidth = [4, 8]\nkernel = [3]\nactivation = [\"relu\"]\npool = [\"none\"]\n\
         batch_norm = [false]\ndropout = [0.0]\nresidual = [false]\n[search]\nbudget = 5\nbatch = 2\n\
         population = 2\nsample = 1\n[evaluate]\nfolds = 2\nepochs = 1\n",
    )
    .unwrap();
    let out = nas()
        .args(["run", "--no-retrain", "--config"])
        .arg(d.join("exp.toml"))
        .arg("--out")
        .arg(d.join("run"))
        .output()
        .unwrap();
    let err = stderr(&out);
    ok(out, "run on a tiny space");
    assert!(err.contains("the space ran out before the budget"), "{err}");
    assert!(!err.contains("budget spent"), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn off_a_terminal_a_long_candidate_gets_heartbeat_lines() {
    let d = tmp("heartbeat");
    let out = nas()
        .env("NAS_HEARTBEAT_S", "0.5")
        .args(["run", "--no-retrain", "--threads", "1", "--config"])
        .arg(repo().join("examples/nas.toml"))
        .args(["--budget", "1", "--epochs", "40", "--out"])
        .arg(d.join("run"))
        .output()
        .unwrap();
    let err = stderr(&out);
    ok(out, "a slow run");
    let beats: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("elapsed: training c00001 fold"))
        .collect();
    assert!(!beats.is_empty(), "no heartbeat in: {err}");
    assert!(
        beats[0].contains("epoch") && beats[0].contains("0/1 candidates done"),
        "{}",
        beats[0]
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn select_with_max_params_names_its_choice_and_status_and_export_follow_it() {
    let d = tmp("max-params");
    let run = d.join("run");
    ok(
        nas()
            .args(["run", "--quiet", "--no-retrain", "--config"])
            .arg(repo().join("examples/nas.toml"))
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap(),
        "search",
    );
    // The smallest candidate's size as the limit.
    let sel: toml::Table = std::fs::read_to_string(run.join("selection.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let ranking = sel["ranking"].as_array().unwrap();
    let (id, params) = ranking
        .iter()
        .map(|r| {
            (
                r["id"].as_integer().unwrap(),
                r["params"].as_integer().unwrap(),
            )
        })
        .min_by_key(|(id, p)| (*p, *id))
        .unwrap();
    let out = ok(
        nas()
            .arg("select")
            .arg(&run)
            .args(["--max-params", &params.to_string()])
            .output()
            .unwrap(),
        "select --max-params",
    );
    let chosen = out.lines().find(|l| l.starts_with("selected: ")).unwrap();
    let id_text = chosen.split_whitespace().nth(1).unwrap().to_string();
    assert!(
        chosen.contains(&format!("at most {params} parameters")) || chosen.contains("overall"),
        "{chosen}"
    );
    let status = ok(nas().arg("status").arg(&run).output().unwrap(), "status");
    assert!(
        status.contains(&format!("best:       {id_text}"))
            && status.contains("within --max-params"),
        "{status}"
    );
    ok(
        nas()
            .arg("export")
            .arg(&run)
            .arg("--out")
            .arg(d.join("m"))
            .output()
            .unwrap(),
        "export",
    );
    let m: toml::Table = std::fs::read_to_string(d.join("m/model.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(format!("c{:05}", m["id"].as_integer().unwrap()), id_text);
    let smallest_with_best_score = ranking
        .iter()
        .filter(|r| r["params"].as_integer().unwrap() <= params)
        .map(|r| r["id"].as_integer().unwrap())
        .next()
        .unwrap();
    assert_eq!(format!("c{smallest_with_best_score:05}"), id_text, "{id}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_truncated_result_is_named_with_its_recovery_command_and_the_command_works() {
    let d = tmp("truncated");
    let run = d.join("run");
    let search = || {
        nas()
            .args(["run", "--quiet", "--no-retrain", "--config"])
            .arg(repo().join("examples/nas.toml"))
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap()
    };
    ok(search(), "search");
    let path = run.join("results/c00002.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // Cut before its scores (a cut in the optional tail, `[metrics]` or `[[curves]]`, can leave valid TOML).
    std::fs::write(&path, &text[..text.find("cv_mean").unwrap() + 4]).unwrap();
    // status names the file and the command, and still shows the rest.
    let status = ok(nas().arg("status").arg(&run).output().unwrap(), "status");
    assert!(status.contains("c00002.toml"), "{status}");
    let recover = format!("nas evaluate {} --retry-failed", run.display());
    assert!(status.contains(&recover), "{status}");
    // The five readable results, scored or raced out (racing is on for these images).
    let done = status.lines().find(|l| l.starts_with("done:")).unwrap();
    let n: Vec<usize> = done.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert_eq!(n[0] + n[1], 5, "{status}");
    // select goes on with the readable results and names the file; --strict stops.
    let out = nas().arg("select").arg(&run).output().unwrap();
    assert!(stderr(&out).contains("skipped:") && stderr(&out).contains("c00002.toml"));
    ok(out, "select");
    let strict = nas()
        .args(["select", "--strict"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(1));
    assert!(stderr(&strict).contains(&recover), "{}", stderr(&strict));
    // The recovery command sets the file aside, and the search completes again.
    let out = ok(
        nas()
            .args(["evaluate", "--quiet", "--retry-failed"])
            .arg(&run)
            .output()
            .unwrap(),
        "retry-failed",
    );
    assert!(
        out.contains("retrying 1 failed candidates: c00002"),
        "{out}"
    );
    assert!(run.join("retried/c00002.1.toml").exists());
    ok(search(), "resumed search");
    let status = ok(nas().arg("status").arg(&run).output().unwrap(), "status");
    let done = status.lines().find(|l| l.starts_with("done:")).unwrap();
    let n: Vec<usize> = done.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert!(n[0] + n[1] == 6 && !status.contains("damaged"), "{status}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A plotted candidate: id, score, parameters.
type Point = (String, f64, u64);

/// The (id, score, params) of every point titled in the accuracy-vs-parameters plot, split into the front's
/// points (`front: cNNNNN 0.xxxx, N params, …`) and all points (`cNNNNN 0.xxxx, N params, …`).
fn pareto_plot_points(html: &str) -> (Vec<Point>, Vec<Point>) {
    let plot = html.split("plot-pareto").nth(1).unwrap();
    let plot = &plot[..plot.find("</svg>").unwrap()];
    let (mut front, mut all) = (Vec::new(), Vec::new());
    for title in plot.split("<title>").skip(1) {
        let title = &title[..title.find("</title>").unwrap()];
        let (is_front, rest) = match title.strip_prefix("front: ") {
            Some(r) => (true, r),
            None => (false, title),
        };
        let mut words = rest.split([' ', ',']).filter(|w| !w.is_empty());
        let (Some(id), Some(score), Some(params)) = (words.next(), words.next(), words.next())
        else {
            continue; // the selected candidate's ring
        };
        let (Ok(score), Ok(params)) = (score.parse::<f64>(), params.parse::<u64>()) else {
            continue;
        };
        let p = (id.to_string(), score, params);
        if is_front {
            front.push(p);
        } else {
            all.push(p);
        }
    }
    (front, all)
}

#[test]
fn no_point_on_the_reports_front_is_beaten_in_that_plots_two_dimensions() {
    let d = tmp("report-front");
    let run = d.join("run");
    // The default space (kernels, pooling, residual projections: parameters and MACs disagree), kept short;
    // racing off, so that every candidate trains both folds and is plotted.
    std::fs::write(
        d.join("exp.toml"),
        "seed = 5\n[search]\nbudget = 16\nbatch = 4\npopulation = 4\nsample = 2\n[evaluate]\nfolds = 2\nepochs = 1\nrace = false\n",
    )
    .unwrap();
    ok(
        nas()
            .args(["run", "--quiet", "--no-retrain", "--config"])
            .arg(d.join("exp.toml"))
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap(),
        "search",
    );
    ok(nas().arg("report").arg(&run).output().unwrap(), "report");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let (front, all) = pareto_plot_points(&html);
    assert!(
        !front.is_empty() && all.len() == 16,
        "{} front, {} points",
        front.len(),
        all.len()
    );
    for (id, score, params) in &front {
        let beaten = all
            .iter()
            .find(|(_, s, p)| s >= score && p <= params && (s > score || p < params));
        assert!(
            beaten.is_none(),
            "{id} ({score}, {params}) is beaten by {beaten:?}"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_time_limit_that_passes_before_any_result_says_how_to_go_on() {
    let d = tmp("time-nothing");
    let run = d.join("run");
    let out = nas()
        .args(["run", "--quiet", "--time", "0.001", "--config"])
        .arg(repo().join("examples/nas.toml"))
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("the time limit passed before any candidate finished")
            && err.contains("--time 2h"),
        "{err}"
    );
    // Nothing is lost: the candidates stay pending, and a resume with more time finishes them.
    ok(
        nas()
            .args(["run", "--quiet", "--no-retrain", "--time", "1h", "--out"])
            .arg(&run)
            .output()
            .unwrap(),
        "resume",
    );
    assert!(run.join("selection.toml").exists());
    std::fs::remove_dir_all(&d).unwrap();
}
