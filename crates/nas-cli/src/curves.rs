//! The report's training curves: loss and held-out accuracy per epoch, averaged over the folds, for the
//! selected network and the top of the ranking (from each result's `curves`).

use crate::html::esc;
use crate::plot::{range, Plot};
use space::{Curve, Entry, Ranked};
use std::fmt::Write as _;

/// Line colours: the selected network first.
const COLORS: [&str; 6] = [
    "#2ca02c", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
];

/// The mean over folds of one of a curve's series at each epoch (folds that stopped early count where they
/// have the epoch).
fn mean_series(curves: &[Curve], series: fn(&Curve) -> &Vec<f64>) -> Vec<(f64, f64)> {
    let epochs = curves.iter().map(|c| series(c).len()).max().unwrap_or(0);
    (0..epochs)
        .map(|e| {
            let v: Vec<f64> = curves
                .iter()
                .filter_map(|c| series(c).get(e).copied())
                .collect();
            ((e + 1) as f64, v.iter().sum::<f64>() / v.len() as f64)
        })
        .collect()
}

/// The section: two plots (losses; held-out accuracy) of the selected network `best` and up to `others` more
/// of `ranking`'s top, those whose results have curves; empty when none has (a table lookup, a GPU run, a run
/// of an earlier version).
pub fn section(history: &[Entry], ranking: &[Ranked], best: u64, others: usize) -> String {
    let ids = std::iter::once(best).chain(
        ranking
            .iter()
            .map(|r| r.id)
            .filter(|&id| id != best)
            .take(others),
    );
    let shown: Vec<(u64, &str, &[Curve])> = ids
        .filter_map(|id| {
            let e = history.iter().find(|e| e.candidate.id == id)?;
            let r = e.result.as_ref().filter(|r| !r.curves.is_empty())?;
            Some((id, e.candidate.arch.as_str(), &r.curves[..]))
        })
        .collect();
    if shown.is_empty() {
        return String::new();
    }
    let series: Vec<[Vec<(f64, f64)>; 3]> = shown
        .iter()
        .map(|(_, _, c)| {
            [
                mean_series(c, |c| &c.train_loss),
                mean_series(c, |c| &c.heldout_loss),
                mean_series(c, |c| &c.heldout_accuracy),
            ]
        })
        .collect();
    let all = |k: usize| series.iter().flat_map(move |s| s[k].iter());
    let epochs = range(all(0).map(|p| p.0));
    let losses = range(all(0).chain(all(1)).map(|p| p.1));
    let mut loss = Plot::new(
        "plot-loss",
        (1.0, epochs.1.max(2.0)),
        losses,
        false,
        "epoch",
        "cross-entropy",
    );
    let accs = range(all(2).map(|p| p.1));
    let mut acc = Plot::new(
        "plot-curve-acc",
        (1.0, epochs.1.max(2.0)),
        accs,
        false,
        "epoch",
        "held-out accuracy",
    );
    let mut legend = String::new();
    for (i, ((id, arch, _), s)) in shown.iter().zip(&series).enumerate() {
        let (color, width) = (COLORS[i % COLORS.len()], if i == 0 { 3.0 } else { 1.5 });
        loss.dashed(&s[0], color, width);
        loss.line(&s[1], color, width);
        acc.line(&s[2], color, width);
        for &(x, y) in &s[2] {
            acc.point(x, y, 2.5, color, &format!("c{id:05} epoch {x}: {y:.4}"));
        }
        let _ = write!(
            legend,
            r#"<span style="color:{color}">■</span> c{id:05}{} <code>{}</code><br>"#,
            if i == 0 { " (selected)" } else { "" },
            esc(arch)
        );
    }
    format!(
        r#"<h2>Training curves</h2><div class="plots">
<figure>{}<figcaption>Training loss (dashed: the mean over each epoch's mini-batches, dropout on) and held-out loss (solid) per epoch, averaged over the folds. A held-out loss that rises while the training loss falls is overfitting; one still falling at the last epoch wants more epochs.</figcaption></figure>
<figure>{}<figcaption>Held-out accuracy per epoch, averaged over the folds, measured on a sample of each fold's held-out rows (at most {} per fold; the CV score uses all of them).</figcaption></figure></div>
<p style="font-size:13px">{legend}</p>
"#,
        loss.finish(),
        acc.finish(),
        Curve::SAMPLE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_over_folds_counts_each_epoch_where_folds_have_it() {
        let c = |v: &[f64]| Curve {
            train_loss: v.to_vec(),
            ..Default::default()
        };
        let m = mean_series(&[c(&[2.0, 1.0, 0.5]), c(&[4.0, 3.0])], |c| &c.train_loss);
        assert_eq!(m, vec![(1.0, 3.0), (2.0, 2.0), (3.0, 0.5)]);
    }
}
