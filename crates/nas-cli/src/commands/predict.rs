//! `nas predict`: predict every row of a data source with an exported model, as CSV on stdout.

use crate::args::PredictArgs;
use anyhow::Result;

/// `nas predict`.
pub(crate) fn run(a: PredictArgs) -> Result<()> {
    let p = export::predict_source(&a.model, &a.data)?;
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
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    use std::io::Write;
    write!(out, "row,prediction")?;
    if a.logits {
        for c in &p.class_names {
            write!(out, ",logit:{c}")?;
        }
    }
    writeln!(out)?;
    for (i, (c, l)) in p.classes.iter().zip(&p.logits).enumerate() {
        write!(out, "{},{c}", i + 1)?;
        if a.logits {
            for v in l {
                write!(out, ",{v}")?;
            }
        }
        writeln!(out)?;
    }
    drop(out);
    match p.accuracy {
        Some(acc) => eprintln!("accuracy: {acc:.4} on {} rows", p.classes.len()),
        None => eprintln!(
            "{} rows predicted (no label column, no accuracy)",
            p.classes.len()
        ),
    }
    Ok(())
}
