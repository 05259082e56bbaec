//! `nas export`: the retrained winner in another format (ONNX, PyTorch, or nas's own), retrained if needed.

use super::{current_model, retrain};
use crate::args::ExportArgs;
use anyhow::Result;
use space::RunDir;

/// `nas export`.
pub(crate) fn run(a: ExportArgs) -> Result<()> {
    export(&RunDir::new(&a.dir), a.format, &a.out)
}

/// `nas export`: copies the retrained winner of selection.toml (made by `nas select` when missing) to `out`,
/// retraining it first when model/ is missing or holds another candidate.
fn export(run: &RunDir, format: space::ExportFormat, out: &std::path::Path) -> Result<()> {
    let sel: space::SelectionFile = if run.selection().exists() {
        space::io::read_artifact(&run.selection(), "nas.selection", space::ARTIFACTS_READ)?
    } else {
        select::select(run, None, space::EnsembleUse::Auto, true)?.0
    };
    let members = sel.model_members();
    let loaded = match current_model(run, &members) {
        Some(m) => m,
        None => {
            retrain(run, &members, false)?;
            export::load_model(&run.model())?
        }
    };
    let written = export::write_format(&run.model(), loaded, format, out)?;
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    let what = match members.as_slice() {
        [one] => format!("c{:05} {}", one.id, one.arch),
        _ => super::naming(&members),
    };
    println!("exported {what} as {format}: {}", names.join(", "));
    Ok(())
}
