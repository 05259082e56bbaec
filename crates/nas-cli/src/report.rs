//! `nas report`: one self-contained HTML file with hand-made SVG plots (no network, no framework; a few lines
//! of inline script only make the table sortable), and the same table as CSV for pandas users.

use crate::html::esc;
use crate::plot::{range, Plot};
use anyhow::Result;
use space::{Entry, Plan, Ranked, RunDir};
use std::fmt::Write as _;
use std::path::Path;

/// Best-so-far accuracy against evaluations (every candidate's score as a dot).
fn progress_plot(history: &[Entry]) -> String {
    let scored: Vec<(f64, f64, &Entry)> = history
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let r = e.result.as_ref().filter(|r| r.ok())?;
            Some(((i + 1) as f64, r.cv_mean, e))
        })
        .collect();
    let y = range(scored.iter().map(|s| s.1));
    let mut p = Plot::new(
        "plot-progress",
        (1.0, history.len().max(2) as f64),
        y,
        false,
        "evaluations",
        "CV accuracy",
    );
    let mut best = f64::MIN;
    let mut steps = Vec::new();
    for &(x, y, e) in &scored {
        p.point(
            x,
            y,
            3.0,
            "#9aa5b1",
            &format!("c{:05} {:.4} {}", e.candidate.id, y, e.candidate.arch),
        );
        if y > best {
            if let Some(&(_, prev)) = steps.last() {
                steps.push((x, prev));
            }
            best = y;
        }
        steps.push((x, best));
    }
    p.line(&steps, "#1f77b4", 2.5);
    p.finish()
}

/// Accuracy against parameters (log scale), the Pareto front joined and marked, the best ringed.
fn pareto_plot(ranking: &[Ranked], front: &[Ranked], best: u64) -> String {
    let x = range(ranking.iter().map(|r| r.params as f64));
    let y = range(ranking.iter().map(|r| r.cv_mean));
    let mut p = Plot::new(
        "plot-pareto",
        x,
        y,
        true,
        "parameters (log scale)",
        "CV accuracy",
    );
    for r in ranking {
        p.point(
            r.params as f64,
            r.cv_mean,
            3.0,
            "#9aa5b1",
            &format!(
                "c{:05} {:.4}, {} params, {}",
                r.id, r.cv_mean, r.params, r.arch
            ),
        );
    }
    let pts: Vec<(f64, f64)> = front.iter().map(|r| (r.params as f64, r.cv_mean)).collect();
    p.line(&pts, "#d62728", 1.5);
    for r in front {
        p.point(
            r.params as f64,
            r.cv_mean,
            5.0,
            "#d62728",
            &format!(
                "front: c{:05} {:.4}, {} params, {}",
                r.id, r.cv_mean, r.params, r.arch
            ),
        );
    }
    if let Some(b) = ranking.iter().find(|r| r.id == best) {
        let _ = write!(
            p.svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="9" fill="none" stroke="#2ca02c" stroke-width="2.5"><title>selected: c{:05}</title></circle>"##,
            p.px(b.params as f64),
            p.py(b.cv_mean),
            b.id
        );
    }
    p.finish()
}

/// The per-fold scores of the top candidates: one column per candidate, dots per fold, a bar at the mean.
fn folds_plot(ranking: &[Ranked], n: usize) -> String {
    let top = &ranking[..ranking.len().min(n)];
    let y = range(top.iter().flat_map(|r| r.fold_scores.iter().copied()));
    let mut p = Plot::new(
        "plot-folds",
        (1.0, top.len().max(2) as f64),
        y,
        false,
        "rank",
        "fold accuracy",
    );
    for (i, r) in top.iter().enumerate() {
        let x = (i + 1) as f64;
        let lo = r.fold_scores.iter().copied().fold(f64::MAX, f64::min);
        let hi = r.fold_scores.iter().copied().fold(f64::MIN, f64::max);
        p.line(&[(x, lo), (x, hi)], "#9aa5b1", 1.0);
        for (f, s) in r.fold_scores.iter().enumerate() {
            p.point(
                x,
                *s,
                3.5,
                "#ff7f0e",
                &format!("c{:05} fold {}: {:.4}", r.id, f + 1, s),
            );
        }
        let (cx, cy) = (p.px(x), p.py(r.cv_mean));
        let _ = write!(
            p.svg,
            r##"<line x1="{:.1}" x2="{:.1}" y1="{cy:.1}" y2="{cy:.1}" stroke="#1f77b4" stroke-width="3"><title>c{:05} mean {:.4} ± {:.4}</title></line>"##,
            cx - 9.0,
            cx + 9.0,
            r.id,
            r.cv_mean,
            r.cv_std
        );
    }
    p.finish()
}

/// One row per candidate: the table of the report and of `--csv`.
struct Row {
    id: u64,
    arch: String,
    origin: String,
    status: String,
    /// Its training's epochs (its rung in a multi-fidelity search), where known.
    epochs: Option<usize>,
    cv_mean: Option<f64>,
    cv_std: Option<f64>,
    folds: String,
    params: u64,
    flops: u64,
    wall_s: Option<f64>,
    /// The most memory one of its trainings held at once (MiB), where measured.
    peak_mib: Option<f64>,
}

fn rows(history: &[Entry]) -> Vec<Row> {
    history
        .iter()
        .map(|e| {
            let r = e.result.as_ref();
            let ok = r.filter(|r| r.ok());
            Row {
                id: e.candidate.id,
                arch: e.candidate.arch.clone(),
                origin: e.candidate.origin.to_string(),
                status: r.map_or("pending".into(), |r| r.status.to_string()),
                epochs: r.and_then(|r| r.epochs).or(e.candidate.epochs),
                cv_mean: ok.map(|r| r.cv_mean),
                cv_std: ok.map(|r| r.cv_std),
                folds: ok.map_or(String::new(), |r| {
                    r.fold_scores
                        .iter()
                        .map(|s| format!("{s:.4}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                }),
                params: e.candidate.params,
                flops: e.candidate.flops,
                wall_s: r.map(|r| r.wall_s),
                peak_mib: r.and_then(|r| r.metrics.get(evaluate::PEAK_MIB).copied()),
            }
        })
        .collect()
}

/// Writes the table as CSV.
pub fn write_csv(history: &[Entry], path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "arch",
        "origin",
        "status",
        "epochs",
        "cv_mean",
        "cv_std",
        "fold_scores",
        "params",
        "flops",
        "wall_s",
        "peak_mib",
    ])?;
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for r in rows(history) {
        w.write_record([
            r.id.to_string(),
            r.arch,
            r.origin,
            r.status,
            r.epochs.map_or(String::new(), |e| e.to_string()),
            opt(r.cv_mean),
            opt(r.cv_std),
            r.folds,
            r.params.to_string(),
            r.flops.to_string(),
            opt(r.wall_s),
            opt(r.peak_mib),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    space::io::atomic_write(path, &bytes)
}

const SORT_SCRIPT: &str = r#"<script>
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const asc = th.dataset.dir !== 'asc';
  th.closest('tr').querySelectorAll('th').forEach(h => delete h.dataset.dir);
  th.dataset.dir = asc ? 'asc' : 'desc';
  const key = tr => { const c = tr.cells[col]; return c.dataset.v !== undefined ? parseFloat(c.dataset.v) : c.textContent; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    return (typeof x === 'number' ? x - y : String(x).localeCompare(String(y))) * (asc ? 1 : -1); })
    .forEach(tr => body.appendChild(tr));
}));
</script>"#;

/// The baselines of `baseline.toml` (written by `nas run`), if the run has them, as a paragraph.
fn baseline_paragraph(run: &RunDir) -> String {
    let Ok(b) = space::io::read_artifact::<space::BaselineFile>(
        &run.baseline(),
        "nas.baseline",
        space::ARTIFACTS_READ,
    ) else {
        return String::new();
    };
    format!(
        "<p class=\"baseline\">Baselines on the same folds ({}): {}. A network that does not clearly beat the \
         linear model is not worth its cost.</p>\n",
        b.metric,
        esc(&crate::progress::baseline_line(&b))
    )
}

/// The selection's ensemble, if it has one: its members and weights, its nested estimate against the single
/// best's, and whether it is the model.
fn ensemble_paragraph(sel: &space::SelectionFile) -> String {
    let Some(e) = &sel.ensemble else {
        return String::new();
    };
    let mut h = format!(
        "<p class=\"ensemble\"><b>Ensemble</b> of {n} (greedy selection over the five best candidates' \
         out-of-fold probabilities): nested CV accuracy {m:.4} ± {sd:.4} against {single:.4} for the single best \
         chosen the same way (each fold scored with what was chosen on the other folds; the ranking's {best:.4} \
         was chosen on every fold, so it promises more than it keeps). {used}</p>\n<table><thead><tr><th>id</th>\
         <th class=\"a\">arch</th><th>weight</th><th>CV accuracy</th></tr></thead><tbody>",
        n = e.members.len(),
        m = e.cv_mean,
        sd = e.cv_std,
        single = e.single_cv_mean,
        best = sel.best.cv_mean,
        used = if e.used {
            "The model (<code>model/</code> and the exports) is this ensemble."
        } else {
            "The model is the single best (<code>nas select --ensemble always</code> makes it the ensemble)."
        },
    );
    for (m, w) in e.members.iter().zip(space::Member::weights(&e.members)) {
        let cv = sel
            .ranking
            .iter()
            .find(|r| r.id == m.id)
            .map_or(f64::NAN, |r| r.cv_mean);
        let _ = write!(
            h,
            r#"<tr><td>c{:05}</td><td class="a">{}</td><td>{w:.2}</td><td>{cv:.4}</td></tr>"#,
            m.id,
            esc(&m.arch),
        );
    }
    h.push_str("</tbody></table>\n");
    h
}

/// Why the search stopped where it did, for the report's header.
fn why_ended(plan: &Plan, sel: &space::SelectionFile, root: &std::path::Path) -> String {
    match sel.ended {
        Some(space::Ended::Time) => format!(
            "stopped by the time limit{}",
            plan.time.map_or(String::new(), |t| format!(" ({t})"))
        ),
        Some(space::Ended::Space) => {
            "the space ran out: every architecture the strategy could find was tried".into()
        }
        None if sel.evaluated >= plan.budget => "the budget was spent".into(),
        None => format!(
            "not finished (in progress, or interrupted: nas run --out {} resumes it)",
            root.display()
        ),
    }
}

/// Renders the report of a run as HTML.
/// The page's head and first paragraphs: the search and why it ended, the selected network, the baselines.
fn head(run: &RunDir, plan: &Plan, sel: &space::SelectionFile) -> String {
    let sf = &plan.file;
    let e = &sf.experiment;
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>nas report: {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}} h1{{font-size:22px}} h2{{font-size:17px;margin-top:28px}}
.plots{{display:flex;flex-wrap:wrap;gap:16px}} figure{{margin:0}} figcaption{{font-size:13px;color:#555;max-width:560px}}
table{{border-collapse:collapse;font-size:13px}} th,td{{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}} td.a,th.a{{text-align:left;font-family:monospace}}
th{{cursor:pointer;background:#f0f0f0;position:sticky;top:0}} th[data-dir=asc]::after{{content:" ▲"}} th[data-dir=desc]::after{{content:" ▼"}} .best{{background:#eaf6ea}}</style></head><body>
<h1>nas report: {title}</h1>
<p>{family} space of {size} architectures · {strategy} search: {evaluated} of budget {budget} evaluated, {why} · {folds}-fold CV, {epochs} epochs · data {data} ({rows} rows, {classes} classes{text}) · seed {seed}</p>
<p><b>Selected: c{bid:05}</b> <code>{barch}</code> — CV accuracy {bmean:.4} ± {bstd:.4}, {bparams} parameters, {bflops} multiply-accumulates per sample. {evaluated} evaluated, {ok} ok; {nfront} on the Pareto front.</p>
{baseline}{ensemble}"#,
        title = esc(&run.root.display().to_string()),
        family = e.space.family,
        size = esc(&sf.size),
        strategy = esc(e.search.strategy.name()),
        budget = plan.budget,
        why = esc(&why_ended(plan, sel, &run.root)),
        folds = e.evaluate.folds,
        epochs = plan.epochs,
        data = esc(&e.data.source.to_string()),
        rows = sf.rows,
        classes = sf.input.classes,
        text = sf
            .input
            .text
            .iter()
            .map(|t| format!(
                "; text column <code>{}</code> ({}): {} tokens",
                esc(&t.column),
                t.tokens.name(),
                t.tokens()
            ))
            .collect::<String>(),
        seed = e.seed,
        bid = sel.best.id,
        barch = esc(&sel.best.arch),
        bmean = sel.best.cv_mean,
        bstd = sel.best.cv_std,
        bparams = sel.best.params,
        bflops = sel.best.flops,
        evaluated = sel.evaluated,
        ok = sel.ok,
        nfront = sel.front.len(),
        baseline = baseline_paragraph(run),
        ensemble = ensemble_paragraph(sel),
    );
    h
}

pub fn render(run: &RunDir, plan: &Plan, history: &[Entry]) -> Result<String> {
    let sel = select::chosen(run, plan, history)?;
    let mut h = head(run, plan, &sel);
    let _ = writeln!(
        h,
        "<h2>The selected network</h2>{}",
        crate::drawing::network_svg(plan, &sel.best.arch)
    );
    h.push_str(&crate::per_class::section(run, plan, sel.best.id));
    h.push_str(&crate::curves::section(
        history,
        &sel.ranking,
        sel.best.id,
        5,
    ));
    let _ = write!(
        h,
        r#"<h2>Search</h2><div class="plots">
<figure>{}<figcaption>Best CV accuracy so far (line) and every candidate's (dots), in evaluation order.</figcaption></figure>
<figure>{}<figcaption>CV accuracy against parameters. Red: the Pareto front of these two (no candidate is both more accurate and smaller; the table below also weighs multiply-accumulates); green ring: the selected candidate.</figcaption></figure>
<figure>{}<figcaption>Per-fold accuracy of the top {} candidates (dots) and their mean (bar).</figcaption></figure></div>
"#,
        progress_plot(history),
        pareto_plot(
            &sel.ranking,
            &select::pareto_front_2d(&sel.ranking),
            sel.best.id
        ),
        folds_plot(&sel.ranking, 10),
        sel.ranking.len().min(10)
    );
    h.push_str(r#"<h2>Pareto front</h2><table><thead><tr><th>id</th><th class="a">arch</th><th>CV accuracy</th><th>params</th><th>MACs</th></tr></thead><tbody>"#);
    for r in &sel.front {
        let _ = write!(
            h,
            r#"<tr><td>c{:05}</td><td class="a">{}</td><td>{:.4}</td><td>{}</td><td>{}</td></tr>"#,
            r.id,
            esc(&r.arch),
            r.cv_mean,
            r.params,
            r.flops
        );
    }
    h.push_str("</tbody></table>");
    h.push_str(r#"<h2>All candidates</h2><p>Click a column to sort.</p><table class="sortable"><thead><tr><th>id</th><th class="a">arch</th><th class="a">origin</th><th class="a">status</th><th>epochs</th><th>CV mean</th><th>CV std</th><th class="a">fold scores</th><th>params</th><th>MACs</th><th>seconds</th><th>peak MiB</th></tr></thead><tbody>"#);
    let num = |v: Option<f64>, prec: usize| {
        v.map_or(r#"<td data-v="-1">–</td>"#.to_string(), |v| {
            format!(r#"<td data-v="{v}">{v:.prec$}</td>"#)
        })
    };
    for r in rows(history) {
        let _ = write!(
            h,
            r#"<tr{}><td data-v="{}">c{:05}</td><td class="a">{}</td><td class="a">{}</td><td class="a">{}</td>{}{}{}<td class="a">{}</td><td data-v="{}">{}</td><td data-v="{}">{}</td>{}{}</tr>"#,
            if r.id == sel.best.id {
                r#" class="best""#
            } else {
                ""
            },
            r.id,
            r.id,
            esc(&r.arch),
            esc(&r.origin),
            esc(&r.status),
            num(r.epochs.map(|e| e as f64), 0),
            num(r.cv_mean, 4),
            num(r.cv_std, 4),
            r.folds,
            r.params,
            r.params,
            r.flops,
            r.flops,
            num(r.wall_s, 1),
            num(r.peak_mib, 1)
        );
    }
    h.push_str("</tbody></table>");
    h.push_str(SORT_SCRIPT);
    h.push_str("</body></html>\n");
    // Every score shown is the run's metric.
    let metric = plan.exp().evaluate.metric.name().replace('_', " ");
    Ok(h.replace("CV accuracy", &format!("CV {metric}"))
        .replace("fold accuracy", &format!("fold {metric}")))
}
