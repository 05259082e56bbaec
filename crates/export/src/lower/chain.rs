//! The `chain` family in ONNX: each block's convolution or dense layer, batch norm, activation, residual
//! add and pooling, then the head, reading our tensors under their PyTorch names.

use super::{int, ints, string, Walk};
use crate::onnx_proto::data_type;
use anyhow::{bail, Result};
use space::arch::ChainSpace;
use space::{Block, InputInfo, Pool};

/// Appends the blocks and the head to `g` after the normalised input `x`; returns the logits' name.
pub(super) fn lower(
    g: &mut Walk,
    cs: &ChainSpace,
    blocks: &[Block],
    input: &InputInfo,
    mut x: String,
) -> Result<String> {
    let classes = input.classes;
    let (mut c, mut h, mut w) = match (cs.conv, input.shape) {
        (true, Some([c, h, w])) => (c, h, w),
        (true, None) => bail!("a convolutional network needs an image shape"),
        (false, _) => (input.features, 1, 1),
    };
    if !cs.conv && input.shape.is_some() {
        // A dense network reads an image in the network's layout: height, width, channel.
        let t = g.node("Transpose", &[&x], vec![ints("perm", &[0, 2, 3, 1])]);
        x = g.node("Flatten", &[&t], vec![int("axis", 1)]);
    }
    for (i, b) in blocks.iter().enumerate() {
        let (ours, torch) = (format!("block{i}"), format!("blocks.{i}"));
        let text = i == 0 && !cs.conv && !input.text.is_empty();
        let mut y = match b.kernel {
            None if text => text_stem(g, input, b.width, &x, (&ours, &torch))?,
            Some(k) => g.conv(
                &x,
                &format!("{ours}.conv"),
                &format!("{torch}.conv"),
                k,
                1,
                c,
                b.width,
                true,
            )?,
            None => g.linear(
                &x,
                (&format!("{ours}.weight"), Some(&format!("{ours}.bias"))),
                &format!("{torch}.fc"),
                (c, b.width),
                None,
            )?,
        };
        if b.bn {
            y = g.bn(&y, &format!("{ours}.bn"), &format!("{torch}.bn"), b.width)?;
        }
        y = g.act(&y, b.act);
        if b.res && !text {
            let skip = match (c != b.width, b.kernel) {
                (false, _) => x.clone(),
                (true, Some(_)) => g.conv(
                    &x,
                    &format!("{ours}.proj"),
                    &format!("{torch}.proj"),
                    1,
                    1,
                    c,
                    b.width,
                    false,
                )?,
                (true, None) => g.linear(
                    &x,
                    (&format!("{ours}.proj"), None),
                    &format!("{torch}.proj"),
                    (c, b.width),
                    None,
                )?,
            };
            y = g.node("Add", &[&y, &skip], vec![]);
        }
        if cs.conv && b.pool != Pool::None && h >= 2 && w >= 2 {
            let op = if b.pool == Pool::Max {
                "MaxPool"
            } else {
                "AveragePool"
            };
            y = g.pool(&y, op, 2, 2, 0);
            h /= 2;
            w /= 2;
        }
        // Dropout is the identity at inference.
        c = b.width;
        x = y;
    }
    if blocks.is_empty() && !input.text.is_empty() {
        // The linear model over text: the head is the text layer.
        return text_stem(g, input, classes, &x, ("head", "head"));
    }
    // Our head reads features in (h, w, c) order; PyTorch's flatten gives (c, h, w).
    let rows: Vec<usize> = (0..c * h * w)
        .map(|t| {
            let (ci, p) = (t / (h * w), t % (h * w));
            p * c + ci
        })
        .collect();
    if cs.conv {
        x = g.node("Flatten", &[&x], vec![int("axis", 1)]);
    }
    x = g.linear(
        &x,
        ("head.weight", Some("head.bias")),
        "head",
        (c * h * w, classes),
        Some(&rows),
    )?;
    Ok(x)
}

/// The first dense block's transform over text columns (see `nn::model::chain`'s `TextStem`): the dense
/// inputs (picked out by a constant selection matrix) through a linear layer, or the bias alone without them,
/// plus per text input the sum of its embedding table's rows named by its ids other than 0 and 1, each
/// times its weight (the ids and weights picked out the same way: no integer tensors), or their mean when
/// the input has no weights. `names`: its parameters' prefix, ours and PyTorch's (the first block's, or
/// the linear model's head).
fn text_stem(
    g: &mut Walk,
    input: &InputInfo,
    width: usize,
    x: &str,
    (ours, torch): (&str, &str),
) -> Result<String> {
    let (features, dense) = (input.features, input.dense_features());
    let pick = |g: &mut Walk, from: usize, n: usize| {
        let mut m = vec![0f32; features * n];
        for l in 0..n {
            m[(from + l) * n + l] = 1.0;
        }
        let c = g.tensor_constant(&[features, n], m);
        g.node("MatMul", &[x, &c], vec![])
    };
    let mut y = if dense > 0 {
        let xd = pick(g, 0, dense);
        g.linear(
            &xd,
            (&format!("{ours}.weight"), Some(&format!("{ours}.bias"))),
            &format!("{torch}.fc"),
            (dense, width),
            None,
        )?
    } else {
        g.param(
            format!("{torch}.bias"),
            vec![width],
            g.take(&format!("{ours}.bias"), &[width])?.to_vec(),
        )
    };
    // Ids are whole numbers: above RESERVED − ½ is from RESERVED on.
    let first = g.constant(space::TextInput::RESERVED as f32 - 0.5);
    let one = g.constant(1.0);
    let mut at = dense;
    for (k, ti) in input.text.iter().enumerate() {
        let table = g
            .take(&format!("{ours}.text{k}"), &[ti.vocab, width])?
            .to_vec();
        let tn = g.param(
            format!("{torch}.text.{k}.weight"),
            vec![ti.vocab, width],
            table,
        );
        let ids = pick(g, at, ti.len);
        let idx = g.node("Cast", &[&ids], vec![int("to", data_type::INT64 as i64)]);
        let rows = g.node("Gather", &[&tn, &idx], vec![int("axis", 0)]);
        let known = g.node("Greater", &[&ids, &first], vec![]);
        let mask = g.node("Cast", &[&known], vec![int("to", data_type::FLOAT as i64)]);
        let w = if ti.weighted {
            let weights = pick(g, at + ti.len, ti.len);
            g.node("Mul", &[&mask, &weights], vec![])
        } else {
            let ones = g.tensor_constant(&[ti.len, 1], vec![1.0; ti.len]);
            let count = g.node("MatMul", &[&mask, &ones], vec![]);
            let count = g.node("Max", &[&count, &one], vec![]);
            g.node("Div", &[&mask, &count], vec![])
        };
        let bag = g.node(
            "Einsum",
            &[&w, &rows],
            vec![string("equation", "nl,nlw->nw")],
        );
        y = g.node("Add", &[&y, &bag], vec![]);
        at += ti.inputs();
    }
    Ok(y)
}
