//! Progress while evaluating (a bar on a terminal, plain lines otherwise) and the summary table.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use space::{RunDir, SelectionFile};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Off a terminal, a line saying what is training when nothing was printed for this long (30 s, or
/// `NAS_HEARTBEAT_S` seconds).
fn heartbeat_every() -> Duration {
    let s = std::env::var("NAS_HEARTBEAT_S")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(30.0);
    Duration::from_secs_f64(s)
}

/// What is shown between lines: the shared state of the bar or the heartbeat.
struct State {
    /// Best score so far (none until a candidate is scored).
    best: Option<f64>,
    /// Candidates done.
    done: usize,
    /// What is training now, e.g. `c00003 fold 2/5 epoch 4/8`.
    now: String,
    /// When the last line was printed.
    last_line: Instant,
    /// Bar units counted per (candidate, fold), and its training's length in units: a fold that ended early
    /// advances the bar by what it skipped.
    units_seen: HashMap<(u64, usize), (u64, u64)>,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    heartbeat: Mutex<Option<std::thread::JoinHandle<()>>>,
    folds: usize,
    epochs: usize,
    budget: usize,
}

impl Progress {
    /// On a terminal a bar that advances with every epoch of every fold; otherwise one line per finished
    /// candidate and a heartbeat line (what is training, how far) when nothing was printed for 30 s.
    pub fn new(run: &RunDir, quiet: bool) -> anyhow::Result<Progress> {
        let plan = run.load_plan()?;
        let sf = &plan.file;
        let history = run.history(&plan.def, &sf.input)?;
        let done = history.iter().filter(|e| e.result.is_some()).count();
        let best = select::selection(&plan, &history)
            .ok()
            .map(|s| s.best.cv_mean);
        let budget = plan.budget;
        let folds = sf.experiment.evaluate.folds;
        let epochs = plan.epochs;
        // The bar counts hundredths of an epoch of a fold, so it moves with the steps; its length is every
        // training the search plans (a multi-fidelity search trains at several rungs).
        let per_epoch = folds as u64 * UNITS_PER_EPOCH;
        let planned = generate::planned_epochs(&plan, budget) as u64 * per_epoch;
        let trained: u64 = history
            .iter()
            .filter(|e| e.result.is_some())
            .map(|e| e.candidate.epochs_or(epochs) as u64 * per_epoch)
            .sum();
        let terminal = std::io::stderr().is_terminal();
        let deadline = plan.time.map(|t| Instant::now() + t.0);
        let bar = (!quiet && terminal).then(|| {
            let b = ProgressBar::with_draw_target(
                Some(planned.max(trained)),
                ProgressDrawTarget::stderr(),
            );
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {msg} (ETA {end})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key(
                    "end",
                    move |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                        let _ = w.write_str(&eta(s.eta(), left));
                    },
                ),
            );
            b.set_position(trained);
            b.set_message(format!("{done}/{budget} candidates"));
            b.enable_steady_tick(Duration::from_millis(500));
            b
        });
        let state = Arc::new(Mutex::new(State {
            best,
            done,
            now: String::new(),
            last_line: Instant::now(),
            units_seen: HashMap::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let heartbeat = (!quiet && !terminal).then(|| {
            let (state, stop) = (state.clone(), stop.clone());
            let started = Instant::now();
            let every = heartbeat_every();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let mut st = state.lock().unwrap();
                    if st.last_line.elapsed() >= every && !st.now.is_empty() {
                        eprintln!(
                            "nas: {} elapsed: training {} ({}/{budget} candidates done{})",
                            fmt_secs(started.elapsed()),
                            st.now,
                            st.done,
                            st.best.map_or(String::new(), |b| format!(", best {b:.4}"))
                        );
                        st.last_line = Instant::now();
                    }
                }
            })
        });
        Ok(Progress {
            bar,
            quiet,
            state,
            stop,
            heartbeat: Mutex::new(heartbeat),
            folds,
            epochs,
            budget,
        })
    }

    /// A line above the bar, or on stderr.
    fn line(&self, st: &mut State, line: String) {
        match &self.bar {
            Some(b) => b.println(line),
            None if !self.quiet => eprintln!("{line}"),
            None => {}
        }
        st.last_line = Instant::now();
    }

    fn message(&self, st: &State) {
        if let Some(b) = &self.bar {
            let best = st.best.map_or(String::new(), |b| format!(" · best {b:.4}"));
            b.set_message(format!("{}/{} · {}{best}", st.done, self.budget, st.now));
        }
    }

    pub fn event(&self, e: evaluate::Event) {
        let mut st = self.state.lock().unwrap();
        match e {
            evaluate::Event::Begin { .. } => {}
            evaluate::Event::Step { id, fold, tick } => {
                st.now = format!(
                    "c{id:05} fold {}/{} epoch {}/{}",
                    fold + 1,
                    self.folds,
                    tick.epoch,
                    tick.epochs
                );
                let at = (tick.epoch as u64 - 1) * UNITS_PER_EPOCH
                    + tick.step as u64 * UNITS_PER_EPOCH / tick.steps.max(1) as u64;
                let seen = st.units_seen.entry((id, fold)).or_default();
                seen.1 = tick.epochs as u64 * UNITS_PER_EPOCH;
                let delta = at.saturating_sub(seen.0);
                seen.0 += delta;
                if let Some(b) = &self.bar {
                    b.inc(delta);
                    if delta > 0 {
                        self.message(&st);
                    }
                }
            }
            evaluate::Event::Fold { id, fold, .. } => {
                // A fold that ended early (diverged, failed, abandoned) still advances the bar by its share.
                let full = self.epochs as u64 * UNITS_PER_EPOCH;
                let (seen, length) = st.units_seen.remove(&(id, fold)).unwrap_or((0, full));
                if let Some(b) = &self.bar {
                    b.inc(length.saturating_sub(seen));
                }
            }
            evaluate::Event::Done(r) => {
                st.done += 1;
                if let (space::Status::Stopped, Some(b)) = (r.status, &self.bar) {
                    // Raced out: the folds it did not train.
                    let skipped = self.folds.saturating_sub(r.fold_scores.len()) as u64;
                    b.inc(skipped * self.epochs as u64 * UNITS_PER_EPOCH);
                }
                // A multi-fidelity search's lower rungs are not candidates for the best.
                let rung = r.epochs.filter(|&e| e != self.epochs);
                if r.ok() && rung.is_none() && st.best.is_none_or(|b| r.cv_mean > b) {
                    st.best = Some(r.cv_mean);
                }
                let line = if r.ok() {
                    format!(
                        "c{:05}/{} {:.4} ± {:.4}  {:>8} params {:>6.1} s of training  {}{}",
                        r.id,
                        self.budget,
                        r.cv_mean,
                        r.cv_std,
                        r.params,
                        r.wall_s,
                        r.arch,
                        rung.map_or(String::new(), |e| format!(
                            "  ({e} of {} epochs)",
                            self.epochs
                        ))
                    )
                } else {
                    format!(
                        "c{:05}/{} {}: {}  {}",
                        r.id, self.budget, r.status, r.error, r.arch
                    )
                };
                self.line(&mut st, line);
                self.message(&st);
            }
        }
    }

    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.heartbeat.lock().unwrap().take() {
            let _ = h.join();
        }
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The ETA the bar shows: the work left at the rate so far (`work`), or the time limit's remaining `left`
/// when that comes first (the search stops there).
fn eta(work: Duration, left: Option<Duration>) -> String {
    match left {
        Some(l) if l <= work => format!("{}, time limit", fmt_secs(l)),
        _ => fmt_secs(work),
    }
}

/// Bar units per epoch of one fold.
const UNITS_PER_EPOCH: u64 = 100;

/// `2h05m`, `1m05s`, `42s`.
fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The baselines in one line: `majority class 0.1000 · linear model 0.8450 ± 0.0061`.
pub fn baseline_line(b: &space::BaselineFile) -> String {
    b.baseline
        .iter()
        .map(|s| format!("{} {:.4} ± {:.4}", s.name, s.cv_mean, s.cv_std))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The ensemble in one line: its members and weights, its nested estimate against the single best's, and
/// whether it is the run's model.
pub fn ensemble_line(e: &space::Ensemble, using: space::EnsembleUse) -> String {
    format!(
        "ensemble of {} ({}): nested CV {:.4} ± {:.4} against {:.4} for the single best chosen the same way — {}",
        e.members.len(),
        (e.members.iter().zip(space::Member::weights(&e.members)))
            .map(|(m, w)| format!("c{:05} ×{w:.2}", m.id))
            .collect::<Vec<_>>()
            .join(", "),
        e.cv_mean,
        e.cv_std,
        e.single_cv_mean,
        match (e.used, using) {
            (true, _) => "the model is the ensemble",
            (false, _) if e.members.len() < 2 => "not used (the selection picked one candidate)",
            (false, space::EnsembleUse::Off) => "not used (--ensemble off)",
            (false, _) => "not used (no better than the single best)",
        }
    )
}

/// Prints the top `n` of the ranking as a table.
pub fn print_table(sel: &SelectionFile, metric: space::Metric, n: usize) {
    println!(
        "{:>4}  {:>6}  {:>15}  {:>9}  {:>10}  arch",
        "rank",
        "id",
        format!("cv {metric}"),
        "params",
        "MACs"
    );
    for (i, r) in sel.ranking.iter().take(n).enumerate() {
        println!(
            "{:>4}  c{:05}  {:.4} ± {:.4}  {:>9}  {:>10}  {}",
            i + 1,
            r.id,
            r.cv_mean,
            r.cv_std,
            r.params,
            r.flops,
            r.arch
        );
    }
    println!("({} evaluated, {} ok)", sel.evaluated, sel.ok);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_is_the_time_limit_when_that_comes_first() {
        let (m, s) = (|m: u64| Duration::from_secs(60 * m), Duration::from_secs);
        // A 3-minute limit: the work would take 7 hours, the search stops in 3 minutes.
        assert_eq!(eta(m(420), Some(m(3))), "3m00s, time limit");
        // One second before the limit, 12 minutes of work left: the search stops in a second.
        assert_eq!(eta(m(12), Some(s(1))), "1s, time limit");
        assert_eq!(eta(m(2), Some(m(3))), "2m00s");
        assert_eq!(eta(m(125), None), "2h05m");
    }
}
