//! A user's own table: text categories and empty cells are detected and stated, the tabular default space is
//! used without a config, and the exported model predicts by column name with the fitted preprocessing.

use std::path::Path;
use std::process::{Command, Output};
use tests::{ok, tmp};

fn nas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nas-e2e"))
}

/// 150 rows: class from a text column (with empty cells) and a number (with empty cells), plus noise.
fn mixed_csv(path: &Path) {
    let mut s = String::from("colour,size,noise,y\n");
    let colours = ["red", "green", "blue"];
    for i in 0..150u32 {
        let class = i % 3;
        let colour = if i % 17 == 0 {
            ""
        } else {
            colours[((class + u32::from(i % 7 == 0)) % 3) as usize]
        };
        let size = if i % 11 == 0 {
            String::new()
        } else {
            format!("{:.2}", class as f64 * 2.0 + (i % 5) as f64 * 0.3)
        };
        s += &format!(
            "{colour},{size},{},c{class}\n",
            (i * 37 % 101) as f64 / 10.0
        );
    }
    std::fs::write(path, s).unwrap();
}

/// Rewrites a CSV with its columns in the order `order` (names; a missing name drops the column).
fn reorder(from: &Path, to: &Path, order: &[&str], edit: impl Fn(&str, &str) -> String) {
    let text = std::fs::read_to_string(from).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let idx: Vec<usize> = order
        .iter()
        .map(|n| header.iter().position(|h| h == n).unwrap())
        .collect();
    let mut out = order.join(",") + "\n";
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        let row: Vec<String> = idx.iter().map(|&i| edit(header[i], cells[i])).collect();
        out += &(row.join(",") + "\n");
    }
    std::fs::write(to, out).unwrap();
}

/// `nas export RUN --out MODEL`; the retrained model's training accuracy as `nas predict` prints accuracy.
fn export(run: &Path, model: &Path) -> String {
    ok(
        nas()
            .arg("export")
            .arg(run)
            .arg("--out")
            .arg(model)
            .output()
            .unwrap(),
        "nas export",
    );
    let m: toml::Table = std::fs::read_to_string(model.join("model.toml"))
        .unwrap()
        .parse()
        .unwrap();
    format!("{:.4}", m["train_accuracy"].as_float().unwrap())
}

fn predict(model: &Path, data: &Path) -> Output {
    nas()
        .args(["predict", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap()
}

fn classes(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().to_string())
        .collect()
}

#[test]
fn a_table_with_categories_and_gaps_searches_exports_and_predicts_by_column_name() {
    let d = tmp("own-data");
    let csv = d.join("mixed.csv");
    mixed_csv(&csv);
    let run = d.join("run");
    let out = nas()
        .args(["run", "--data"])
        .arg(&csv)
        .args(["--label", "y", "--budget", "3", "--epochs", "6", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out, "nas run on a mixed table");
    assert!(
        err.contains("150 rows, 3 feature columns, 3 classes, tabular; 1 categorical (colour)"),
        "{err}"
    );
    assert!(err.contains("missing cells in 2 columns"), "{err}");
    let space = std::fs::read_to_string(run.join("space.toml")).unwrap();
    assert!(space.contains("block = \"dense\""), "tabular default space");
    let model = d.join("model");
    let train_acc = export(&run, &model);
    let same = predict(&model, &csv);
    let same_err = String::from_utf8_lossy(&same.stderr).into_owned();
    assert!(
        same_err.contains(&format!("accuracy: {train_acc}")),
        "predict on the training file reproduces the retrained accuracy {train_acc}: {same_err}"
    );
    // Reordered columns and an extra one: the same predictions, and a note.
    let shuffled = d.join("shuffled.csv");
    reorder(
        &csv,
        &shuffled,
        &["noise", "y", "size", "colour"],
        |_, c| c.to_string(),
    );
    let text = std::fs::read_to_string(&shuffled).unwrap();
    let extra: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l},id\n")
            } else {
                format!("{l},{i}\n")
            }
        })
        .collect();
    std::fs::write(&shuffled, extra).unwrap();
    let moved = predict(&model, &shuffled);
    assert!(
        String::from_utf8_lossy(&moved.stderr).contains("does not read column id (ignored)"),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert_eq!(classes(&same), classes(&moved));
    // A missing column is an error naming it.
    let dropped = d.join("dropped.csv");
    reorder(&csv, &dropped, &["noise", "colour", "y"], |_, c| {
        c.to_string()
    });
    let out = predict(&model, &dropped);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the model reads column `size`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A category never seen in training: predicted, with a warning.
    let novel = d.join("novel.csv");
    reorder(&csv, &novel, &["colour", "size", "noise"], |h, c| {
        if h == "colour" && c == "blue" {
            "purple".into()
        } else {
            c.to_string()
        }
    });
    let out = predict(&model, &novel);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out, "predict with an unknown category");
    assert!(err.contains("never saw in training"), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Two classes of 8×8 grey images: a bright band on top, or at the bottom, with a little noise.
fn image_folder(dir: &Path) {
    for (class, top) in [("top", true), ("bottom", false)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..24u32 {
            let img = image::GrayImage::from_fn(8, 8, |x, y| {
                let band = if top { y < 3 } else { y > 4 };
                let noise = ((x * 7 + y * 13 + i * 29) % 40) as u8;
                image::Luma([if band { 200 } else { 30 } + noise])
            });
            img.save(dir.join(class).join(format!("{i:02}.png")))
                .unwrap();
        }
    }
}

#[test]
fn an_image_folder_is_searched_with_a_cnn_and_the_exported_model_predicts_the_folder() {
    let d = tmp("image-folder");
    let images = d.join("images");
    image_folder(&images);
    let run = d.join("run");
    let out = nas()
        .args(["run", "--data"])
        .arg(&images)
        .args(["--budget", "2", "--epochs", "3", "--time", "20s", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out, "nas run on an image folder");
    assert!(
        err.contains("48 rows, 64 feature columns, 2 classes, images 1×8×8"),
        "{err}"
    );
    let sel = std::fs::read_to_string(run.join("selection.toml")).unwrap();
    assert!(sel.contains("arch = \"conv"), "a CNN space: {sel}");
    let model = d.join("model");
    let train_acc = export(&run, &model);
    let out = predict(&model, &images);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains(&format!("accuracy: {train_acc} on 48 rows")),
        "{train_acc}: {err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
