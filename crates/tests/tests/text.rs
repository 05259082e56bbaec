//! Free-text columns end to end: detection (and `[data] text`), a search over them with the table's other
//! columns, prediction from a CSV with text, the PyTorch export, and the bad inputs of issue 29: empty texts, a 100,000-character
//! text, invalid UTF-8, a text column with one distinct value, a text label column.

use std::path::Path;
use std::process::{Command, Output};
use tests::{ok, tmp};

fn nas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nas-e2e"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// 120 short reviews of two kinds (their words differ, their lengths and punctuation vary), a number column
/// and the label; some reviews empty, one 100,000 characters long.
fn reviews() -> String {
    let good = [
        "lovely",
        "great",
        "superb",
        "charming",
        "delightful",
        "warm",
    ];
    let bad = ["dull", "awful", "tedious", "clumsy", "boring", "cold"];
    let filler = [
        "the", "story", "was", "and", "a", "film", "with", "cast", "ending",
    ];
    let mut csv = String::from("stars,review,label\n");
    for i in 0..120usize {
        let (words, label) = if i % 2 == 0 {
            (&good, "pos")
        } else {
            (&bad, "neg")
        };
        let mut text = Vec::new();
        for j in 0..(4 + i % 7) {
            text.push(filler[(i * 3 + j) % filler.len()]);
            text.push(words[(i + j * 5) % words.len()]);
        }
        let review = match i {
            7 | 30 => String::new(),
            11 => "word ".repeat(20_000),
            _ => format!("{}, {}!", text.join(" "), i % 13),
        };
        csv += &format!("{},\"{review}\",{label}\n", (i * 7) % 5);
    }
    csv
}

#[test]
fn a_text_column_is_detected_searched_with_the_others_and_predicted_from_a_csv() {
    let d = tmp("text");
    std::fs::write(d.join("reviews.csv"), reviews()).unwrap();
    let run = d.join("run");
    let out = nas()
        .current_dir(&d)
        .args([
            "run",
            "--data",
            "reviews.csv",
            "--budget",
            "2",
            "--epochs",
            "20",
            "--folds",
            "3",
        ])
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    let err = stderr(&out);
    ok(out, "nas run on reviews");
    assert!(err.contains("text: review ("), "{err}");
    let r: toml::Table = std::fs::read_to_string(run.join("space.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let text = r["input"]["text"].as_array().unwrap();
    assert_eq!(text.len(), 2, "words, then character grams: {text:?}");
    // The text space holds the linear model (no block) by default.
    let depth = &r["experiment"]["space"]["depth"];
    assert_eq!(depth.as_array().map(Vec::len), Some(2), "{depth:?}");
    assert_eq!(depth[0].as_integer(), Some(0), "{depth:?}");
    // And 1-D convolutions over the words in order.
    let space = &r["experiment"]["space"];
    assert_eq!(
        space["kernel"].as_array().map(Vec::len),
        Some(2),
        "{space:?}"
    );
    assert_eq!(
        space["dilation"].as_array().map(Vec::len),
        Some(2),
        "{space:?}"
    );
    // The words of two texts and more, the pairs too; the 100,000-character text is cut; the words in
    // order come with the words (up to 256 of them), not with the characters.
    for (t, kind, cut, seq) in [
        (&text[0], "words", 512, Some(256)),
        (&text[1], "chars", 1024, None),
    ] {
        assert_eq!(t["tokens"].as_str(), Some(kind), "{text:?}");
        assert_eq!(t["weighted"].as_bool(), Some(true), "{text:?}");
        assert!(t["vocab"].as_integer().unwrap() > 20, "{text:?}");
        assert!(t["len"].as_integer().unwrap() <= cut, "{text:?}");
        assert_eq!(t.get("seq").and_then(|s| s.as_integer()), seq, "{text:?}");
    }
    let best = tests::selection(&run)["best"]["cv_mean"]
        .as_float()
        .unwrap();
    assert!(best > 0.9, "the two kinds' words separate them: {best}");
    // Predicting from the CSV reads the text column as text.
    let out = nas()
        .arg("predict")
        .arg("--model")
        .arg(run.join("model"))
        .arg("--data")
        .arg(d.join("reviews.csv"))
        .output()
        .unwrap();
    let err = stderr(&out);
    let preds = ok(out, "nas predict");
    assert_eq!(preds.lines().count(), 121, "a header and a line per row");
    assert!(err.contains("accuracy"), "{err}");
    // The report names the text column and its vocabulary.
    ok(
        nas().arg("report").arg(&run).output().unwrap(),
        "nas report",
    );
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        html.contains("text column <code>review</code> (words): ")
            && html.contains("text column <code>review</code> (chars): "),
        "report header"
    );
    // The foreign exports carry it (their logits are checked against nas's by scripts/check-export.sh).
    let out = nas()
        .args(["export", "--format", "pytorch"])
        .arg(&run)
        .arg("--out")
        .arg(d.join("torch"))
        .output()
        .unwrap();
    ok(out, "nas export --format pytorch");
    let py = std::fs::read_to_string(d.join("torch/model.py")).unwrap();
    assert!(
        py.contains("TEXT = [{\"column\": \"review\""),
        "model.py's TEXT"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// `nas space` on `csv` (written as `name` in `d`), with `args`: its output.
fn space(d: &Path, name: &str, csv: &[u8], args: &[&str]) -> Output {
    std::fs::write(d.join(name), csv).unwrap();
    nas()
        .current_dir(d)
        .args(["space", "--data", name, "--out"])
        .arg(format!("s-{name}"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn text_settings_and_bad_text_get_clear_handling() {
    let d = tmp("text-bad");
    // A column of one repeated sentence is a category, not text.
    let mut csv = String::from("note,x,label\n");
    for i in 0..40 {
        csv += &format!("\"same words every time\",{i},{}\n", i % 2);
    }
    let out = space(&d, "one.csv", csv.as_bytes(), &[]);
    let err = stderr(&out);
    ok(out, "one distinct text");
    assert!(
        !err.contains("text:") && err.contains("1 categorical (note)"),
        "{err}"
    );
    // ... unless [data] text says it is text; naming a column the file lacks is an error.
    let cfg = "[data]\nsource = \"one.csv\"\ntext = [\"note\"]\n";
    std::fs::write(d.join("one.toml"), cfg).unwrap();
    let out = nas()
        .current_dir(&d)
        .args(["space", "--config", "one.toml", "--out", "s-forced"])
        .output()
        .unwrap();
    let err = stderr(&out);
    ok(out, "forced text");
    assert!(err.contains("text: note ("), "{err}");
    std::fs::write(d.join("bad.toml"), cfg.replace("\"note\"", "\"notes\"")).unwrap();
    let out = nas()
        .current_dir(&d)
        .args(["space", "--config", "bad.toml", "--out", "s-bad"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("[data] text names `notes`, which is not a column"),
        "{}",
        stderr(&out)
    );
    // A label of free text.
    let mut csv = String::from("x,label\n");
    for i in 0..40 {
        csv += &format!("{i},\"a sentence of its own number {i}\"\n");
    }
    let out = space(&d, "label.csv", csv.as_bytes(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("free text or identifiers"),
        "{}",
        stderr(&out)
    );
    // Invalid UTF-8: the file and line.
    let mut bytes = reviews().into_bytes();
    let at = bytes.iter().position(|&b| b == b'\n').unwrap() + 5;
    bytes[at] = 0xff;
    let out = space(&d, "latin.csv", &bytes, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("latin.csv:2") && err.contains("UTF-8"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}
