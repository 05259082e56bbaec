//! Malformed experiment files and CSVs: a one-line error naming the file and place, exit code 1, no panic,
//! and no run directory left behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use tests::tmp;

const GOOD_CSV: &str = "a,b,y\n1,2,0\n2,1,1\n1,1,0\n2,2,1\n3,1,0\n1,3,1\n";

/// (name, experiment TOML, CSV or "", text the error must contain)
const CASES: &[(&str, &str, &str, &str)] = &[
    ("syntax", "seed = \n", "", "exp.toml:1:"),
    ("unclosed-table", "[search\nbudget = 3\n", "", "exp.toml:1:"),
    (
        "unknown-top-key",
        "seeed = 3\n",
        "",
        "exp.toml:1:1: unknown field `seeed`",
    ),
    (
        "unknown-section-key",
        "[search]\nbudgett = 3\n",
        "",
        "exp.toml:2:1: unknown field `budgett`",
    ),
    (
        "wrong-type",
        "[search]\nbudget = \"ten\"\n",
        "",
        "exp.toml:2:10:",
    ),
    (
        "negative-budget",
        "[search]\nbudget = -1\n",
        "",
        "exp.toml:2:10:",
    ),
    (
        "zero-budget",
        "[search]\nbudget = 0\n",
        "",
        "[search] budget: must be at least 1",
    ),
    (
        "unknown-device",
        "[evaluate]\ndevice = \"tpu\"\n",
        "",
        "[evaluate] device: \"tpu\"",
    ),
    (
        "unknown-fidelity",
        "[search]\nfidelity = \"thirds\"\n",
        "",
        "exp.toml:2:12: [search] fidelity: unknown \"thirds\" (expected one of full, halving, hyperband)",
    ),
    (
        "eta-one",
        "[search]\nfidelity = \"halving\"\neta = 1\n",
        "",
        "[search] eta: must be at least 2",
    ),
    (
        "min-epochs-at-the-top",
        "[search]\nfidelity = \"hyperband\"\nmin_epochs = 4\n[evaluate]\nepochs = 4\n",
        "",
        "[search] min_epochs: 4 must be less than [evaluate] epochs (4)",
    ),
    (
        "min-epochs-above-default-epochs",
        "[search]\nfidelity = \"halving\"\nmin_epochs = 40\n",
        "",
        "[search] min_epochs: 40 must be less than [evaluate] epochs",
    ),
    (
        "fidelity-on-a-table",
        "[search]\nfidelity = \"halving\"\n[evaluate]\nevaluator = \"table\"\ntable = \"t.csv\"\nsearch_metric = \"v\"\n",
        "",
        "only training has epochs",
    ),
    (
        "proxy-on-a-table",
        "[evaluate]\nevaluator = \"table\"\ntable = \"t.csv\"\nsearch_metric = \"v\"\nproxy = \"synflow\"\n",
        "",
        "[evaluate] proxy: set evaluator = \"proxy\"",
    ),
    (
        "prior-on-a-table",
        "[search]\nprior = \"synflow\"\n[evaluate]\nevaluator = \"table\"\ntable = \"t.csv\"\nsearch_metric = \"v\"\n",
        "",
        "[search] prior = \"synflow\": a table evaluator has no network",
    ),
    (
        "unknown-proxy",
        "[evaluate]\nevaluator = \"proxy\"\nproxy = \"grasp\"\n",
        "",
        "exp.toml:3:9: proxy: unknown \"grasp\" (expected one of synflow, naswot, params)",
    ),
    (
        "zero-epochs",
        "[evaluate]\nepochs = 0\n",
        "",
        "[evaluate] epochs",
    ),
    (
        "zero-patience",
        "[evaluate]\npatience = 0\n",
        "",
        "[evaluate] patience: must be at least 1 epoch",
    ),
    (
        "one-fold",
        "[evaluate]\nfolds = 1\n",
        "",
        "[evaluate] folds",
    ),
    (
        "bad-strategy",
        "[search]\nstrategy = \"magic\"\n",
        "",
        "[search] strategy: unknown \"magic\"",
    ),
    (
        "empty-width",
        "[space]\nwidth = []\n",
        "",
        "[space] width: the list of choices is empty",
    ),
    (
        "empty-ops",
        "[space]\nfamily = \"cell\"\nops = []\n",
        "",
        "[space] ops: the list of choices is empty",
    ),
    (
        "unknown-op",
        "[space]\nfamily = \"cell\"\nops = [\"conv_7x7\"]\n",
        "",
        "[space] ops: unknown \"conv_7x7\"",
    ),
    (
        "wrong-family-key",
        "[space]\nfamily = \"cell\"\nwidth = [8]\n",
        "",
        "[space] width: not a key of the `cell` family",
    ),
    (
        "unknown-family",
        "[space]\nfamily = \"tree\"\n",
        "",
        "[space] family: unknown \"tree\"",
    ),
    (
        "even-kernel",
        "[space]\nkernel = [4]\n",
        "",
        "[space] kernel",
    ),
    (
        "depth-reversed",
        "[space]\ndepth = [3, 1]\n",
        "",
        "[space] depth",
    ),
    (
        "version",
        "version = 2\n",
        "",
        "version: 2 is not supported",
    ),
    ("bad-shape", "[data]\nshape = [1, 8]\n", "", "[data] shape"),
    (
        "shape-mismatch",
        "[data]\nsource = \"d.csv\"\nlabel = \"y\"\nshape = [1, 3, 3]\n",
        GOOD_CSV,
        "[data] shape: [1, 3, 3] has 9 values but the data has 2 feature columns",
    ),
    (
        "conv-without-shape",
        "[data]\nsource = \"d.csv\"\nlabel = \"y\"\n[space]\nblock = \"conv\"\n",
        GOOD_CSV,
        "needs an image shape",
    ),
    (
        "augment-on-a-table-csv",
        "[data]\nsource = \"d.csv\"\nlabel = \"y\"\n[evaluate]\naugment = \"shift\"\n",
        GOOD_CSV,
        "d.csv: [evaluate] augment = \"shift\": images only",
    ),
    (
        "unknown-augment",
        "[evaluate]\naugment = \"flip\"\n",
        "",
        "exp.toml:2:11: [evaluate] augment: unknown \"flip\"",
    ),
    (
        "missing-csv",
        "[data]\nsource = \"nope.csv\"\n",
        "",
        "nope.csv: cannot read data",
    ),
    (
        "unknown-builtin",
        "[data]\nsource = \"builtin:mnist\"\n",
        "",
        "unknown built-in data set",
    ),
    (
        "ragged-row",
        "[data]\nsource = \"d.csv\"\nlabel = \"y\"\n[space]\nblock = \"dense\"\n",
        "a,b,y\n1,2,0\n1,2\n",
        "d.csv:3: row has 2 cells, the header has 3",
    ),
    (
        "text-in-image",
        "[data]\nsource = \"d.csv\"\nlabel = \"y\"\nshape = [1, 1, 2]\n",
        "a,b,y\n1,2,0\n1,x,1\n",
        "d.csv: [data] shape: image data must be numbers without empty cells, but column `b` holds text",
    ),
    (
        "channels-last-csv",
        "[data]\nsource = \"d.csv\"\nlabel = \"y\"\nshape = [28, 28, 1]\n",
        GOOD_CSV,
        "[data] shape: [28, 28, 1] looks channels-last; nas reads channels first: [1, 28, 28]",
    ),
    (
        "duplicate-column-csv",
        "[data]\nsource = \"d.csv\"\nlabel = \"y\"\n",
        "a,a,y\n1,2,0\n2,1,1\n",
        "d.csv:1: column name `a` appears twice in the header",
    ),
    (
        "missing-label",
        "[data]\nsource = \"d.csv\"\nlabel = \"class\"\n[space]\nblock = \"dense\"\n",
        GOOD_CSV,
        "d.csv:1: label column `class` not found",
    ),
    (
        "single-class",
        "[data]\nsource = \"d.csv\"\nlabel = \"y\"\n[space]\nblock = \"dense\"\n",
        "a,b,y\n1,2,0\n2,1,0\n",
        "at least 2 classes",
    ),
    (
        "empty-csv",
        "[data]\nsource = \"d.csv\"\nlabel = \"y\"\n[space]\nblock = \"dense\"\n",
        "",
        "d.csv: empty file",
    ),
    (
        "header-only",
        "[data]\nsource = \"d.csv\"\nlabel = \"y\"\n[space]\nblock = \"dense\"\n",
        "a,b,y\n",
        "d.csv: no data rows",
    ),
    (
        "nan-cell",
        "[data]\nsource = \"d.csv\"\nlabel = \"y\"\n[space]\nblock = \"dense\"\n",
        "a,b,y\n1,NaN,0\n",
        "d.csv:2: column `b`: `NaN` is not a finite number",
    ),
];

#[test]
fn malformed_inputs_get_one_line_errors_and_exit_code_1() {
    let mut tried = 0;
    for (name, exp, csv, want) in CASES {
        let d = tmp(name);
        std::fs::write(d.join("exp.toml"), exp).unwrap();
        if !csv.is_empty() || name.contains("csv") && !name.starts_with("missing") {
            std::fs::write(d.join("d.csv"), csv).unwrap();
        }
        let run = d.join("run");
        let out = Command::new(env!("CARGO_BIN_EXE_nas-e2e"))
            .args(["run", "--quiet", "--config"])
            .arg(d.join("exp.toml"))
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: exit code; stderr: {err}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{name}: not one line: {err}"
        );
        assert!(err.starts_with("nas: error: "), "{name}: {err}");
        assert!(err.contains(want), "{name}: expected `{want}` in: {err}");
        assert!(
            err.contains("exp.toml") || err.contains("d.csv") || err.contains("nope.csv"),
            "{name}: no file named: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(
            !Path::new(&run).exists(),
            "{name}: a run directory was created"
        );
        tried += 1;
        std::fs::remove_dir_all(&d).unwrap();
    }
    eprintln!("{tried} malformed inputs rejected");
}

/// `nas space` with the example experiment, then `nas generate`: a run with pending candidates.
fn space_and_first_batch(run: &Path) {
    let nas = || Command::new(env!("CARGO_BIN_EXE_nas-e2e"));
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/nas.toml");
    let space = nas()
        .args(["space", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(run)
        .output()
        .unwrap();
    assert!(
        space.status.success(),
        "{}",
        String::from_utf8_lossy(&space.stderr)
    );
    let gen = nas().arg("generate").arg(run).output().unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
}

#[test]
fn damaged_artifacts_are_named_and_left_in_place() {
    let d = tmp("artifacts");
    let run = d.join("run");
    let nas = || Command::new(env!("CARGO_BIN_EXE_nas-e2e"));
    space_and_first_batch(&run);
    let c1 = run.join("candidates/c00001.toml");
    let original = std::fs::read_to_string(&c1).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "truncated",
            original[..original.len() / 3].to_string(),
            "c00001.toml",
        ),
        ("empty", String::new(), "empty file"),
        (
            "wrong version",
            original
                .lines()
                .map(|l| match l.starts_with("version = ") {
                    true => "version = 9",
                    false => l,
                })
                .collect::<Vec<_>>()
                .join("\n"),
            "version 9 is not supported",
        ),
        (
            "foreign",
            "kind = \"something.else\"\nversion = 1\n".into(),
            "kind is \"something.else\"",
        ),
        (
            "edited arch",
            original.replace("arch = \"conv", "arch = \"conv999x3-relu/conv"),
            "arch:",
        ),
        ("binary", "\u{0}\u{1}garbage".into(), "c00001.toml"),
    ];
    for (name, text, want) in cases {
        std::fs::write(&c1, &text).unwrap();
        // `status` shows what it can and names the file (rough_edges.rs); the stages stop at it.
        let out = nas().arg("status").arg(&run).output().unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{name}/status: {shown}");
        assert!(
            shown.contains("1 candidate files cannot be read") && shown.contains(want),
            "{name}/status: {shown}"
        );
        for cmd in ["generate", "evaluate", "select"] {
            let out = nas().arg(cmd).arg(&run).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name}/{cmd}: {err}");
            assert!(
                err.contains("c00001.toml") && err.contains(want),
                "{name}/{cmd}: {err}"
            );
            assert_eq!(err.trim_end().lines().count(), 1, "{name}/{cmd}: {err}");
        }
        assert_eq!(
            std::fs::read_to_string(&c1).unwrap(),
            text,
            "{name}: the damaged file was changed"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A small tmpfs (room for a few candidates, results and their out-of-fold predictions), unmounted on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_and_a_read_only_file_system_are_clear_errors_that_lose_nothing() {
    let d = tmp("disk");
    let mnt = d.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED a_full_disk_and_a_read_only_file_system_are_clear_errors_that_lose_nothing: cannot mount a tmpfs here (needs root)");
        return;
    }
    let guard = Mount(mnt.clone());
    let run = mnt.join("run");
    let nas = || Command::new(env!("CARGO_BIN_EXE_nas-e2e"));
    space_and_first_batch(&run);
    let check_error = |cmd: &str, want: &str| {
        let before = snapshot(&run);
        let out = nas().arg(cmd).arg(&run).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(
            err.starts_with("nas: error: ") && err.contains(want),
            "{cmd}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{cmd}: {err}");
        assert_eq!(snapshot(&run), before, "{cmd} changed files");
    };
    // Full: fill the file system, then evaluate.
    let fill = mnt.join("fill");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&fill).unwrap();
        while f.write_all(&[0u8; 4096]).is_ok() {}
    }
    check_error("evaluate", "No space left on device");
    // Space again: the same run goes on, nothing was lost.
    std::fs::remove_file(&fill).unwrap();
    let out = nas()
        .arg("evaluate")
        .arg(&run)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tests::result_files(&run).len(), 3);
    // Read-only: the next batch cannot be written.
    assert!(Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&mnt)
        .status()
        .unwrap()
        .success());
    for cmd in ["generate", "select"] {
        check_error(cmd, "Read-only file system");
    }
    drop(guard);
    std::fs::remove_dir_all(&d).unwrap();
}
