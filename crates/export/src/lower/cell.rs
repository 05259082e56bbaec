//! The `cell` family in ONNX: the stem, the stages of cells (each edge's op summed into its node) with a
//! reduction block between stages, and the head, reading our tensors under their PyTorch names.

use super::{int, tensor, Walk};
use crate::onnx_proto::{attribute_type, AttributeProto};
use anyhow::{anyhow, Result};
use space::arch::CellSpace;
use space::{Cell, CellOp, InputInfo};

/// Appends the cell network and the head to `g` after the normalised input `x`; returns the logits' name.
pub(super) fn lower(
    g: &mut Walk,
    cs: &CellSpace,
    cell: &Cell,
    input: &InputInfo,
    mut x: String,
) -> Result<String> {
    let classes = input.classes;
    let [cin, ..] = input
        .shape
        .ok_or_else(|| anyhow!("a cell network needs an image shape"))?;
    let mut ch = cs.channels;
    let s = g.conv(&x, "stem", "stem.conv", 3, 1, cin, ch, false)?;
    x = g.bn(&s, "stem.bn", "stem.bn", ch)?;
    let mut at = 0;
    for stage in 0..cs.stages {
        if stage > 0 {
            let (ours, torch, co) = (format!("reduce{stage}"), format!("stages.{at}"), 2 * ch);
            let r = g.node("Relu", &[&x], vec![]);
            let a = g.conv(
                &r,
                &format!("{ours}.a"),
                &format!("{torch}.a.conv"),
                3,
                2,
                ch,
                co,
                false,
            )?;
            let a = g.bn(&a, &format!("{ours}.a.bn"), &format!("{torch}.a.bn"), co)?;
            let r = g.node("Relu", &[&a], vec![]);
            let b = g.conv(
                &r,
                &format!("{ours}.b"),
                &format!("{torch}.b.conv"),
                3,
                1,
                co,
                co,
                false,
            )?;
            let b = g.bn(&b, &format!("{ours}.b.bn"), &format!("{torch}.b.bn"), co)?;
            let short = g.conv(
                &x,
                &format!("{ours}.short"),
                &format!("{torch}.short"),
                1,
                2,
                ch,
                co,
                false,
            )?;
            x = g.node("Add", &[&b, &short], vec![]);
            ch = co;
            at += 1;
        }
        for k in 0..cs.cells_per_stage {
            let mut vals: Vec<Option<String>> = vec![Some(x.clone())];
            for i in 1..cell.nodes {
                let mut acc: Option<String> = None;
                for (j, inp) in vals.iter().enumerate() {
                    let Some(inp) = inp else { continue };
                    let e = space::arch::edge_index(i, j);
                    let (ours, torch) = (
                        format!("stage{stage}.cell{k}.edge{e}"),
                        format!("stages.{at}.edges.{e}"),
                    );
                    let out = match cell.ops[e] {
                        CellOp::None => continue,
                        CellOp::Skip => inp.clone(),
                        CellOp::Conv1x1 | CellOp::Conv3x3 => {
                            let kk = cell.ops[e].kernel().expect("a conv op");
                            let r = g.node("Relu", &[inp], vec![]);
                            let cv =
                                g.conv(&r, &ours, &format!("{torch}.conv"), kk, 1, ch, ch, false)?;
                            g.bn(&cv, &format!("{ours}.bn"), &format!("{torch}.bn"), ch)?
                        }
                        CellOp::AvgPool3x3 => g.pool(inp, "AveragePool", 3, 1, 1),
                    };
                    acc = Some(match acc {
                        Some(a) => g.node("Add", &[&a, &out], vec![]),
                        None => out,
                    });
                }
                vals.push(acc);
            }
            x = match vals.pop().flatten() {
                Some(t) => t,
                None => {
                    // No path reaches the output: zeros of the input's shape.
                    let shape = g.node("Shape", &[&x], vec![]);
                    let zero = AttributeProto {
                        name: "value".into(),
                        r#type: attribute_type::TENSOR,
                        t: Some(tensor("zero", &[1], vec![0.0])),
                        ..Default::default()
                    };
                    g.node("ConstantOfShape", &[&shape], vec![zero])
                }
            };
            at += 1;
        }
    }
    let y = g.bn(&x, "head.bn", "head_bn", ch)?;
    let y = g.node("Relu", &[&y], vec![]);
    let y = g.node("GlobalAveragePool", &[&y], vec![]);
    let y = g.node("Flatten", &[&y], vec![int("axis", 1)]);
    x = g.linear(
        &y,
        ("head.weight", Some("head.bias")),
        "head",
        (ch, classes),
        None,
    )?;
    Ok(x)
}
