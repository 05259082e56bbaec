//! The PyTorch form of an exported network: `model.py`, a self-contained `nn.Module` built from the
//! architecture string (its header holds what nas exported), and the state dict in PyTorch's names and
//! layouts, which `load_state_dict(strict=True)` accepts.

use crate::lower::Lowered;
use anyhow::Result;
use candle_core::{Device, Tensor};
use data::prep::ColumnEncoding;
use space::{ModelFile, SpaceDef};

/// The module code after the header.
const BODY: &str = include_str!("model.py");

/// `s` as a Python string literal.
fn py_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn py_list(items: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| py_str(&s)).collect();
    format!("[{}]", v.join(", "))
}

/// A table's column encodings as a Python list of dicts (what `encode` in model.py reads).
fn py_columns(columns: &[ColumnEncoding]) -> String {
    let items: Vec<String> = columns
        .iter()
        .map(|c| match c {
            ColumnEncoding::Numeric {
                name,
                fill,
                indicator,
            } => format!(
                "{{\"name\": {}, \"kind\": \"numeric\", \"fill\": {fill:?}, \"indicator\": {}}}",
                py_str(name),
                if *indicator { "True" } else { "False" }
            ),
            ColumnEncoding::Categorical { name, levels, fill } => format!(
                "{{\"name\": {}, \"kind\": \"categorical\", \"levels\": {}, \"fill\": {}}}",
                py_str(name),
                py_list(levels.iter().cloned()),
                py_str(fill)
            ),
            ColumnEncoding::Text {
                name,
                vocab,
                len,
                tokens,
                idf,
                seq,
            } => format!(
                "{{\"name\": {}, \"kind\": \"text\", \"tokens\": {}, \"len\": {len}, \"seq\": {seq}, \"vocab\": {}, \"idf\": [{}]}}",
                py_str(name),
                py_str(tokens.name()),
                py_list(vocab.iter().cloned()),
                idf.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", "),
            ),
        })
        .collect();
    format!("[{}]", items.join(",\n    "))
}

/// `model.py` for `file`.
pub(crate) fn model_py(file: &ModelFile, def: &SpaceDef) -> Result<String> {
    let (family, cell) = match def {
        SpaceDef::Chain(_) => ("chain", "None".to_string()),
        SpaceDef::Cell(c) => (
            "cell",
            format!(
                "{{\"channels\": {}, \"cells_per_stage\": {}, \"stages\": {}}}",
                c.channels, c.cells_per_stage, c.stages
            ),
        ),
    };
    let (shape, input_doc, features, columns) = match file.input.shape {
        Some([c, h, w]) => (
            format!("({c}, {h}, {w})"),
            format!("images [N, {c}, {h}, {w}], raw values as in the training data"),
            "None".to_string(),
            "None".to_string(),
        ),
        None => (
            format!("({},)", file.input.features),
            format!(
                "[N, {}]: the encoded features named in FEATURES, before normalisation;\n`encode(rows)` \
                 makes them from raw rows (dicts, column name → cell)",
                file.input.features
            ),
            py_list(space::encoding::feature_names(&file.columns)),
            py_columns(&file.columns),
        ),
    };
    let text: Vec<String> = (file.input.text.iter())
        .map(|t| {
            format!(
                "{{\"column\": {}, \"len\": {}, \"seq\": {}, \"vocab\": {}, \"weighted\": {}}}",
                py_str(&t.column),
                t.len,
                t.seq,
                t.vocab,
                if t.weighted { "True" } else { "False" }
            )
        })
        .collect();
    let text = format!("[{}]", text.join(", "));
    let nets = file.networks();
    let (what, class, output, members) = if nets.len() == 1 {
        (
            format!("Candidate c{:05}", file.id),
            "Net",
            "the class logits",
            "None".to_string(),
        )
    } else {
        let ids: Vec<String> = nets.iter().map(|n| format!("c{:05}", n.id)).collect();
        let members: Vec<String> = (nets.iter())
            .map(|n| format!("({}, {:?})", py_str(&n.arch), n.weight as f32))
            .collect();
        (
            format!("The ensemble of {}", ids.join(", ")),
            "Ensemble",
            "the logarithm of the members' averaged class probabilities",
            format!("[{}]", members.join(",\n    ")),
        )
    };
    Ok(format!(
        r#""""{what} found by nas, as a PyTorch module (written by `nas export --format pytorch`).

    import safetensors.torch
    from model import {class}
    net = {class}(); net.load_state_dict(safetensors.torch.load_file("weights.safetensors")); net.eval()

`net(x)` gives {output} [N, {classes}] (class names: CLASSES) for x: {input_doc}.
"""

# What nas exported: the architecture, the input, the classes.
ARCH = {arch}
FAMILY = {family}
INPUT_SHAPE = {shape}
CLASSES = {class_names}
# Tables: the name of each input feature (a numeric column, its "is missing" indicator, or a category).
FEATURES = {features}
# Tables: how each raw column becomes those features, in order (fitted on the training rows; see encode()).
COLUMNS = {columns}
# Cell family: the network around the cell.
CELL = {cell}
# Tables with text columns: each text encoding's inputs (the last inputs, in order): `len` ids from `vocab` ids,
# then `len` weights when `weighted`.
TEXT = {text}
# An ensemble: each network's architecture and its weight in the averaged class probabilities.
MEMBERS = {members}

{BODY}"#,
        classes = file.input.classes,
        arch = py_str(&file.arch),
        family = py_str(family),
        class_names = py_list(file.class_names.iter().cloned()),
    ))
}

/// The state dict as named tensors: every parameter and buffer, and each batch norm's
/// `num_batches_tracked` (0: nas keeps no count).
pub(crate) fn state_dict(l: &Lowered) -> Result<Vec<(String, Tensor)>> {
    let mut out = Vec::new();
    for p in &l.params {
        out.push((
            p.name.clone(),
            Tensor::from_slice(&p.data, p.dims.as_slice(), &Device::Cpu)?,
        ));
    }
    for bn in &l.batch_norms {
        out.push((
            format!("{bn}.num_batches_tracked"),
            Tensor::new(0i64, &Device::Cpu)?,
        ));
    }
    Ok(out)
}
