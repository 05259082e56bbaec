//! The report's per-class view of the winner: its confusion matrix and each class's precision, recall and F1,
//! from its out-of-fold predictions (every row scored by the fold that held it out).

use crate::html::esc;
use space::{Oof, Plan, RunDir};
use std::fmt::Write as _;

/// Classes up to which the confusion matrix is drawn (beyond, only the per-class table).
const MATRIX_CLASSES: usize = 30;

/// The section for candidate `id`, or a line saying why there is none (no out-of-fold predictions: a run
/// from before they were stored, or trained on a GPU).
pub fn section(run: &RunDir, plan: &Plan, id: u64) -> String {
    let mut h = format!("<h2>Per class (c{id:05}, out-of-fold)</h2>\n");
    let path = run.oof(id);
    let oof = match Oof::read(&path) {
        Ok(o) => o,
        Err(e) if path.exists() => {
            let _ = writeln!(h, "<p>{}</p>", esc(&e.to_string()));
            return h;
        }
        Err(_) => {
            h.push_str("<p>No out-of-fold predictions for this candidate (a run from before they were stored, or folds trained together on a GPU).</p>\n");
            return h;
        }
    };
    let names = &plan.file.class_names;
    let m = oof.confusion();
    let k = oof.classes.min(names.len());
    let total: usize = m.iter().flatten().sum();
    let _ = writeln!(
        h,
        "<p>Each of the {total} rows counted once, predicted by the network trained without it. Rows: the true class; \
         columns: the predicted one.</p>"
    );
    if k <= MATRIX_CLASSES {
        h.push_str("<table class=\"confusion\"><thead><tr><th class=\"a\">true \\ predicted</th>");
        for n in &names[..k] {
            let _ = write!(h, "<th>{}</th>", esc(n));
        }
        h.push_str("</tr></thead><tbody>");
        for (t, row) in m.iter().enumerate().take(k) {
            let support: usize = row.iter().sum();
            let _ = write!(h, "<tr><td class=\"a\">{}</td>", esc(&names[t]));
            for (p, &n) in row.iter().enumerate().take(k) {
                let share = n as f64 / support.max(1) as f64;
                let (r, g) = if p == t { (234, 246) } else { (250, 234) };
                let _ = write!(
                    h,
                    "<td style=\"background:rgba({r},{g},234,{share:.2})\">{n}</td>"
                );
            }
            h.push_str("</tr>");
        }
        h.push_str("</tbody></table>\n");
    }
    h.push_str("<table class=\"sortable\"><thead><tr><th class=\"a\">class</th><th>rows</th><th>precision</th><th>recall</th><th>F1</th></tr></thead><tbody>");
    let s = space::metrics::PerClass::of(&m);
    for (c, name) in names.iter().enumerate().take(k) {
        let _ = write!(
            h,
            "<tr><td class=\"a\">{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td></tr>",
            esc(name),
            s.support[c],
            s.precision[c],
            s.recall[c],
            s.f1[c]
        );
    }
    h.push_str("</tbody></table>\n");
    h
}
