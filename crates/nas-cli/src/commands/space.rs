//! `nas space`: validate an experiment against its data and write the run directory's `space.toml`.

use crate::args::{ExpArgs, SpaceArgs};
use anyhow::{anyhow, bail, Result};
use space::{DeviceSetting, Plan, RunDir, SpaceFile};

/// `nas space`.
pub(crate) fn run(a: SpaceArgs) -> Result<()> {
    let run = RunDir::new(&a.out);
    if run.space().exists() {
        bail!(
            "{}: already exists; use another --out, or `nas run --out {}` to resume",
            run.space().display(),
            a.out.display()
        );
    }
    let plan = make_space(&run, &a.exp, None, false)?;
    let sf = &plan.file;
    println!(
        "{}: {} space of {} architectures over {} rows, {} classes",
        run.space().display(),
        sf.experiment.space.family,
        sf.size,
        sf.rows,
        sf.input.classes
    );
    Ok(())
}

/// Resolves the experiment, makes every check that can be made before anything is written (data, shape,
/// space, folds against rows, the device), then creates the run directory and its `space.toml`.
pub(crate) fn make_space(
    run: &RunDir,
    exp: &ExpArgs,
    device: Option<DeviceSetting>,
    quiet: bool,
) -> Result<Plan> {
    let (plan, data) = exp.resolve()?;
    evaluate::check_plan(&plan, data.rows(), device)
        .map_err(|e| anyhow!("{}: {e}", exp.origin()))?;
    let folds = plan.exp().evaluate.folds;
    if !quiet {
        eprintln!("nas: data: {}", describe(&plan.file, &data));
        let hint = data
            .looks_like_images()
            .filter(|_| plan.file.input.shape.is_none());
        if let Some([c, h, w]) = hint {
            eprintln!(
                "nas: note: the {} columns look like {h}×{w} {} images; searched as a table. To search CNNs over \
                 them, add --shape {c},{h},{w} ([data] shape)",
                data.features,
                if c == 1 { "grey" } else { "colour" }
            );
        }
        let mut counts = vec![0usize; data.classes.len()];
        for &y in &data.y {
            counts[y as usize] += 1;
        }
        if let Some((c, n)) = counts.iter().enumerate().min_by_key(|(_, n)| **n) {
            if *n < folds {
                eprintln!(
                    "nas: warning: class `{}` has {n} rows, fewer than the {folds} folds: some folds will not see it",
                    data.classes[c]
                );
            }
            if let Some(w) = imbalance(&counts, plan.exp()) {
                eprintln!("nas: warning: class `{}` {w}", data.classes[c]);
            }
        }
    }
    run.create()?;
    plan.file.write(run)?;
    Ok(plan)
}

/// Imbalanced classes: the largest has at least `IMBALANCE` times the rows of the smallest (`counts`, per
/// class). Says so and what the run does about it, or `None`.
fn imbalance(counts: &[usize], e: &space::Experiment) -> Option<String> {
    const IMBALANCE: usize = 10;
    let (min, max) = (counts.iter().min()?, counts.iter().max()?);
    if max < &(IMBALANCE * min.max(&1)) {
        return None;
    }
    let what = match (e.evaluate.metric, e.evaluate.balanced()) {
        (space::Metric::Accuracy, _) => "accuracy can be high while it is never predicted: \
             --metric macro_f1 (or balanced_accuracy) scores every class alike and weighs the loss to match"
            .to_string(),
        (m, true) => {
            format!("{m} scores every class alike and the loss weighs them alike ([evaluate] class_weight)")
        }
        (m, false) => format!("{m} scores every class alike, but the loss does not ([evaluate] class_weight = \"none\")"),
    };
    Some(format!(
        "has {min} rows, the largest class {max}: the classes are imbalanced; {what}"
    ))
}

/// What was detected in the data: rows, columns, classes, kind, categorical columns, missing cells.
fn describe(sf: &SpaceFile, data: &data::Dataset) -> String {
    use data::table::ColumnKind;
    let kind = match sf.input.shape {
        Some([c, h, w]) => format!("images {c}×{h}×{w}"),
        None => "tabular".into(),
    };
    let cats: Vec<&str> = data
        .columns
        .iter()
        .filter(|c| matches!(c.kind, ColumnKind::Categorical { .. }))
        .map(|c| c.name.as_str())
        .collect();
    let missing: usize = data.columns.iter().map(|c| c.missing).sum();
    let with_missing = data.columns.iter().filter(|c| c.missing > 0).count();
    let mut s = format!(
        "{} rows, {} feature columns, {} classes, {kind}",
        data.rows(),
        data.features,
        data.classes.len()
    );
    if !cats.is_empty() {
        let shown: Vec<&str> = cats.iter().take(6).copied().collect();
        s += &format!(
            "; {} categorical ({}{})",
            cats.len(),
            shown.join(", "),
            if cats.len() > 6 { ", …" } else { "" }
        );
    }
    let text = data.text_columns();
    if !text.is_empty() {
        let vocab: Vec<String> = sf
            .input
            .text
            .iter()
            .map(|t| {
                format!(
                    "{}: {} tokens, up to {} per text",
                    t.tokens.name(),
                    t.tokens(),
                    t.len
                )
            })
            .collect();
        s += &format!(
            "; text: {} ({}; [data] text = [...] names text columns, the others are told by their values)",
            text.join(", "),
            vocab.join("; ")
        );
    }
    if missing > 0 {
        s += &format!("; {missing} missing cells in {with_missing} columns");
    }
    if sf.input.features != data.features {
        s += &format!("; {} network inputs after encoding", sf.input.features);
    }
    s
}
