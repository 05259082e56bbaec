//! The fold plan of a cross-validation: which rows each fold trains and holds out (stratified, from the
//! run's seed), the preprocessing fitted on each fold's training rows only, and which folds train together.

use anyhow::{bail, Result};
use data::prep::Prep;
use data::Dataset;
use nn::train;
use space::{InputInfo, Plan};

/// A fold's rows as the network reads them: (standardised inputs, labels).
pub(super) type Rows = (Vec<f32>, Vec<u32>);

/// The folds of one cross-validation.
pub(super) struct FoldPlan {
    /// Each fold's (training rows, held-out rows).
    rows: Vec<(Vec<usize>, Vec<usize>)>,
    /// Each fold's preprocessing, fitted on its training rows.
    preps: Vec<Prep>,
    /// The run's input description.
    input: InputInfo,
}

impl FoldPlan {
    /// The `[evaluate] folds` of `data`, stratified by class with the stream (seed, "folds").
    pub(super) fn new(plan: &Plan, data: &Dataset) -> Result<FoldPlan> {
        let k = plan.exp().evaluate.folds;
        let fold_of = space::folds::stratified_folds(&data.y, k, plan.exp().seed);
        for f in 0..k {
            if !fold_of.contains(&f) {
                bail!("{} rows are too few for {k} folds", data.rows());
            }
        }
        let rows: Vec<(Vec<usize>, Vec<usize>)> = (0..k)
            .map(|f| {
                let all = 0..data.rows();
                (
                    all.clone().filter(|&r| fold_of[r] != f).collect(),
                    all.filter(|&r| fold_of[r] == f).collect(),
                )
            })
            .collect();
        let (shape, st) = (plan.file.input.shape, plan.file.standardize);
        let preps = rows
            .iter()
            .map(|(t, _)| Prep::fit(&data.x, &data.columns, t, shape, st))
            .collect();
        Ok(FoldPlan {
            rows,
            preps,
            input: plan.file.input.clone(),
        })
    }

    /// Number of folds.
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// What fold `f`'s network reads (a table's encoding may have fewer inputs when a level is missing from
    /// the fold's training rows; a text column has the fold's own vocabulary and length).
    pub(super) fn input(&self, f: usize) -> InputInfo {
        InputInfo {
            features: self.preps[f].width(),
            text: self.preps[f].text_inputs(),
            ..self.input.clone()
        }
    }

    /// Fold `f`'s held-out rows (indices into the data), in the order [`FoldPlan::split`] gives them.
    pub(super) fn held_out(&self, f: usize) -> &[usize] {
        &self.rows[f].1
    }

    /// Fold `f`'s standardised (training, held-out) rows of `data`.
    pub(super) fn split(&self, data: &Dataset, f: usize) -> (Rows, Rows) {
        let (train_rows, val_rows) = &self.rows[f];
        let p = &self.preps[f];
        let labels = |rows: &[usize]| rows.iter().map(|&r| data.y[r]).collect::<Vec<u32>>();
        (
            (
                p.apply(&data.x, &data.columns, train_rows),
                labels(train_rows),
            ),
            (p.apply(&data.x, &data.columns, val_rows), labels(val_rows)),
        )
    }

    /// The folds trained together as one job: each fold alone, or (`group`, on a GPU) the folds with the
    /// same steps per epoch and input width (usually all).
    pub(super) fn sets(&self, group: bool, hyper: &nn::Hyper) -> Vec<Vec<usize>> {
        if !group {
            return (0..self.len()).map(|f| vec![f]).collect();
        }
        let mut by_steps = std::collections::BTreeMap::<(usize, usize), Vec<usize>>::new();
        for (f, (t, _)) in self.rows.iter().enumerate() {
            by_steps
                .entry((
                    train::steps_per_epoch(t.len(), hyper),
                    self.preps[f].width(),
                ))
                .or_default()
                .push(f);
        }
        by_steps.into_values().collect()
    }
}
