//! A real Slurm runs the search: a 3-task job array of `nas evaluate --worker` over one run directory
//! (`deploy/slurm/nas-workers.sbatch`). Needs a running Slurm: `deploy/slurm/local-slurm.sh start` (CI does);
//! skipped, with the reason printed, where there is none.

use std::path::{Path, PathBuf};
use std::process::Command;
use tests::repo;

fn nas_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nas-e2e"))
}

fn slurm_up() -> Result<(), String> {
    let out = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .map_err(|e| format!("sinfo: {e}"))?;
    let states = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success()
        && states
            .lines()
            .any(|s| ["idle", "mixed", "allocated"].contains(&s.trim()))
    {
        Ok(())
    } else {
        Err(format!(
            "no usable Slurm node (sinfo: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn a_slurm_job_array_evaluates_every_candidate_exactly_once() {
    if let Err(why) = slurm_up() {
        eprintln!("SKIPPED a_slurm_job_array_evaluates_every_candidate_exactly_once: {why}; start one with deploy/slurm/local-slurm.sh start");
        return;
    }
    let d = std::env::temp_dir().join(format!("nas-slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("logs")).unwrap();
    let config = d.join("exp.toml");
    let text = std::fs::read_to_string(repo().join("examples/nas.toml"))
        .unwrap()
        .replace("budget = 6", "budget = 9");
    std::fs::write(&config, text).unwrap();
    let (run, solo) = (d.join("run"), d.join("solo"));
    for (args, what) in [
        (vec!["space", "--config"], "nas space"),
        (
            vec!["run", "--quiet", "--no-retrain", "--config"],
            "nas run",
        ),
    ] {
        let out_dir = if what == "nas space" { &run } else { &solo };
        let out = Command::new(nas_bin())
            .args(args)
            .arg(&config)
            .arg("--out")
            .arg(out_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new("sbatch")
        .args(["--wait", "--array=0-2", "--time=10"])
        .arg(format!("--output={}/logs/%A_%a.out", d.display()))
        .env("NAS", nas_bin())
        .arg(repo().join("deploy/slurm/nas-workers.sbatch"))
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sbatch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut evaluated = Vec::new();
    let mut tasks = 0;
    for e in std::fs::read_dir(d.join("logs")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        assert!(text.starts_with("task "), "{text}");
        tasks += 1;
        assert!(!text.contains("discarded"), "{text}");
        evaluated.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("evaluated "))
                .map(String::from),
        );
    }
    assert_eq!(tasks, 3, "one log per array task");
    evaluated.sort();
    let want: Vec<String> = (1..=9).map(|i| format!("c{i:05}")).collect();
    assert_eq!(evaluated, want, "every candidate evaluated exactly once");
    let sel = |dir: &Path| -> toml::Table {
        let out = Command::new(nas_bin())
            .arg("select")
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::read_to_string(dir.join("selection.toml"))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (a, b) = (sel(&run), sel(&solo));
    assert_eq!(a["best"], b["best"]);
    assert_eq!(a["ranking"], b["ranking"]);
    std::fs::remove_dir_all(&d).unwrap();
}
