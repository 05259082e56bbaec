//! The `chain` family in ONNX: each block's convolution or dense layer, batch norm, activation, residual
//! add and pooling, then the head, reading our tensors under their PyTorch names.

use super::{int, ints, Walk};
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
        let mut y = match b.kernel {
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
        if b.res {
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
