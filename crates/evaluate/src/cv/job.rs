//! One job of a cross-validation: a candidate's folds trained on one device — one fold alone on the CPU, or
//! (on a GPU) several as one grouped network — and each fold's scores on its held-out rows.

use super::folds::FoldPlan;
use super::{fold_scores, FoldOutcome, FoldScore};
use crate::Event;
use anyhow::Result;
use candle_core::Device;
use data::Dataset;
use nn::train::{self, Trained};
use space::metrics::{argmax, softmax};
use space::{Entry, SpaceDef, Status};
use std::time::Instant;

/// What every job of one cross-validation shares.
pub(super) struct Job<'a> {
    pub(super) def: &'a SpaceDef,
    pub(super) hyper: nn::Hyper,
    pub(super) seed: u64,
    /// Whether a job's folds train as one grouped network.
    pub(super) group: bool,
    pub(super) deadline: Option<Instant>,
    pub(super) folds: &'a FoldPlan,
    pub(super) data: &'a Dataset,
    pub(super) on_event: &'a (dyn Fn(Event) + Sync),
}

impl Job<'_> {
    /// Whether the deadline has passed.
    pub(super) fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Trains `folds` of candidate `entry` together on `dev`: every metric of each fold on its held-out rows,
    /// or the problem; `None` when, asked before every mini-batch, the deadline had passed or `raced_out`
    /// said its candidate had been stopped meanwhile.
    pub(super) fn run(
        &self,
        entry: &Entry,
        folds: &[usize],
        dev: &Device,
        raced_out: &dyn Fn() -> bool,
    ) -> Result<Option<Vec<FoldOutcome>>> {
        let id = entry.candidate.id;
        let abandon = || self.past_deadline() || raced_out();
        // A candidate's rung sets its epochs; its streams are keyed by the candidate it was first
        // trained as, so a promotion scores what a direct training at its epochs would.
        let hyper = nn::Hyper {
            epochs: entry.candidate.epochs_or(self.hyper.epochs),
            ..self.hyper
        };
        let sid = entry.candidate.stream_id();
        let splits: Vec<_> = folds
            .iter()
            .map(|&f| self.folds.split(self.data, f))
            .collect();
        // Folds trained together share their input width (see the grouping above).
        let input = self.folds.input(folds[0]);
        if !self.group {
            let f = folds[0];
            let ((xt, yt), (xv, yv)) = &splits[0];
            let on_step = |tick| (self.on_event)(Event::Step { id, fold: f, tick });
            let stream = [sid, f as u64];
            // The curve's held-out sample: every k-th held-out row (class-sorted files stay represented).
            let step = yv.len().div_ceil(space::Curve::SAMPLE).max(1);
            let wy: Vec<u32> = yv.iter().step_by(step).copied().collect();
            let wx: Vec<f32> = xv
                .chunks(input.features)
                .step_by(step)
                .flatten()
                .copied()
                .collect();
            return Ok(Some(vec![match train::train(
                self.def,
                &entry.arch,
                &input,
                &hyper,
                self.seed,
                &stream,
                xt,
                yt,
                dev,
                &on_step,
                &abandon,
                Some((&wx, &wy)),
            )? {
                Trained::Stopped => return Ok(None),
                Trained::Ok(mut m, curve) => {
                    // One pass over the held-out rows: the classes `train::predict` would give (the
                    // first largest output) and the probabilities.
                    let logits = train::logits(&mut m, xv, input.features)?;
                    let pred: Vec<u32> = logits.iter().map(|l| argmax(l) as u32).collect();
                    let mut probs: Vec<f32> = logits.into_iter().flatten().collect();
                    probs.chunks_mut(input.classes).for_each(softmax);
                    Ok(FoldScore {
                        scores: fold_scores(&pred, yv, input.classes),
                        probs,
                        curve: Some(curve),
                    })
                }
                Trained::Diverged(msg) => Err((Status::Diverged, format!("fold {f}: {msg}"))),
            }]));
        }
        let rows: Vec<train::FoldRows> = folds
            .iter()
            .zip(&splits)
            .map(|(&f, ((xt, yt), _))| train::FoldRows {
                x: xt,
                y: yt,
                stream: vec![sid, f as u64],
            })
            .collect();
        let on_step = |tick| {
            for &fold in folds {
                (self.on_event)(Event::Step { id, fold, tick });
            }
        };
        match train::train_grouped(
            self.def,
            &entry.arch,
            &input,
            &hyper,
            self.seed,
            &rows,
            dev,
            &on_step,
            &abandon,
        )? {
            Ok(mut m) => {
                let xvs: Vec<&[f32]> = splits.iter().map(|(_, (xv, _))| &xv[..]).collect();
                let preds = train::predict_grouped(&mut m, &xvs, input.features)?;
                Ok(Some(
                    preds
                        .iter()
                        .zip(&splits)
                        .map(|(p, (_, (_, yv)))| {
                            Ok(FoldScore {
                                scores: fold_scores(p, yv, input.classes),
                                probs: Vec::new(),
                                curve: None,
                            })
                        })
                        .collect(),
                ))
            }
            Err(train::GroupStop::Diverged(i, msg)) => {
                let prob = (Status::Diverged, format!("fold {}: {msg}", folds[i]));
                Ok(Some(vec![Err(prob); folds.len()]))
            }
            Err(train::GroupStop::Abandoned) => Ok(None),
        }
    }
}
