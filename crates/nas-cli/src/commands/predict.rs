//! `nas predict`: predict every row of a data source with an exported model, as CSV on stdout.

use crate::args::PredictArgs;
use anyhow::Result;

/// `nas predict`.
pub(crate) fn run(a: PredictArgs) -> Result<()> {
    let p = export::predict_source(&a.model, &a.data, a.labels.as_deref())?;
    if !p.ignored.is_empty() {
        eprintln!(
            "nas: note: the model does not read column{} {} (ignored)",
            if p.ignored.len() > 1 { "s" } else { "" },
            p.ignored.join(", ")
        );
    }
    if p.unknown_categories > 0 {
        eprintln!(
            "nas: warning: {} cells hold a category the model never saw in training (read as none of its categories)",
            p.unknown_categories
        );
    }
    if !p.unknown_labels.is_empty() {
        let shown: Vec<&str> = p
            .unknown_labels
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        eprintln!(
            "nas: warning: {} label value{} the model never saw in training ({}{}); those rows count as wrong",
            p.unknown_labels.len(),
            if p.unknown_labels.len() > 1 { "s" } else { "" },
            shown.join(", "),
            if p.unknown_labels.len() > 5 { ", …" } else { "" }
        );
    }
    match write_rows(&p, a.logits) {
        // A reader that stops early (`nas predict … | head`) is not an error: it has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        r => r?,
    }
    match p.accuracy {
        Some(acc) => eprintln!("accuracy: {acc:.4} on {} rows", p.classes.len()),
        None => eprintln!(
            "{} rows predicted (no label column, no accuracy)",
            p.classes.len()
        ),
    }
    Ok(())
}

/// The predictions as CSV on stdout.
fn write_rows(p: &export::Predictions, logits: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write!(out, "row,prediction")?;
    if logits {
        for c in &p.class_names {
            write!(out, ",logit:{c}")?;
        }
    }
    writeln!(out)?;
    for (i, (c, l)) in p.classes.iter().zip(&p.logits).enumerate() {
        write!(out, "{},{c}", i + 1)?;
        if logits {
            for v in l {
                write!(out, ",{v}")?;
            }
        }
        writeln!(out)?;
    }
    out.flush()
}
