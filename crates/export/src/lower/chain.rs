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
    // The 1-D convolutions over words enter the first dense layer (or the head); PyTorch's blocks are the
    // others, numbered in order.
    let convs = cs.word_convs(blocks);
    let dense = (blocks.iter().enumerate()).filter(|(_, b)| !b.is_word_conv(cs));
    for (j, (i, b)) in dense.enumerate() {
        let (ours, torch) = (format!("block{i}"), format!("blocks.{j}"));
        let text = j == 0 && !cs.conv && !input.text.is_empty();
        let mut y = match b.kernel {
            None if text => text_stem(g, input, b.width, &x, (&ours, &torch), &convs)?,
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
    if cs.text_head(blocks, input) {
        // No dense block over text: the head is the text layer.
        return text_stem(g, input, classes, &x, ("head", "head"), &convs);
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
/// the input has no weights; plus, with convolutions over words (`convs`), per text input with words in
/// order what they give ([`word_convs`]) times a matrix. `names`: its parameters' prefix, ours and
/// PyTorch's (the first dense block's, or the head).
fn text_stem(
    g: &mut Walk,
    input: &InputInfo,
    width: usize,
    x: &str,
    (ours, torch): (&str, &str),
    convs: &[(usize, &Block)],
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
        if ti.seq > 0 && !convs.is_empty() {
            let words = pick(g, at - ti.seq, ti.seq);
            let (pooled, c) = word_convs(g, &words, ti, k, convs, torch)?;
            let wt = g.linear(
                &pooled,
                (&format!("{ours}.words{k}"), None),
                &format!("{torch}.words_fc.{k}"),
                (c, width),
                None,
            )?;
            y = g.node("Add", &[&y, &wt], vec![]);
        }
    }
    Ok(y)
}

/// The 1-D convolutions over text input `t`'s words `ids` `[N, L]` (see `nn::model::words`), channel-last
/// like ours, each convolution between two transposes; gives what they give, `[N, C]`, and C. PyTorch's
/// names: `{torch}.words.{t}.embed`, `.convs.{j}`, `.projs.{j}`.
fn word_convs(
    g: &mut Walk,
    ids: &str,
    ti: &space::TextInput,
    t: usize,
    convs: &[(usize, &Block)],
    torch: &str,
) -> Result<(String, usize)> {
    let torch = format!("{torch}.words.{t}");
    let idx = g.node("Cast", &[ids], vec![int("to", data_type::INT64 as i64)]);
    let mut c = convs[0].1.width;
    let table = g.take(&format!("words{t}.embed"), &[ti.vocab, c])?.to_vec();
    let table = g.param(format!("{torch}.embed.weight"), vec![ti.vocab, c], table);
    let rows = g.node("Gather", &[&table, &idx], vec![int("axis", 0)]);
    // The mask `[N, L, 1]`: a constant column, 0 for the padding id and 1 for every other, gathered.
    let ones = (0..ti.vocab).map(|v| f32::from(v > 0)).collect();
    let column = g.tensor_constant(&[ti.vocab, 1], ones);
    let mask = g.node("Gather", &[&column, &idx], vec![int("axis", 0)]);
    let mut h = g.node("Mul", &[&rows, &mask], vec![]);
    for (j, &(i, b)) in convs.iter().enumerate() {
        let (k, d, co) = (b.kernel.unwrap_or(1), b.dilation, b.width);
        let ours = format!("words{t}.block{i}");
        let params = g.conv_params(&ours, &format!("{torch}.convs.{j}"), &[k], (c, co), true)?;
        let ncl = g.node("Transpose", &[&h], vec![ints("perm", &[0, 2, 1])]);
        let attrs = vec![
            ints("kernel_shape", &[k]),
            ints("dilations", &[d]),
            ints("pads", &[(k / 2) * d, (k / 2) * d]),
        ];
        let y = g.node("Conv", &[&ncl, &params[0], &params[1]], attrs);
        let y = g.node("Transpose", &[&y], vec![ints("perm", &[0, 2, 1])]);
        let y = g.act(&y, b.act);
        let mut y = g.node("Mul", &[&y, &mask], vec![]);
        if b.res {
            let skip = match c != co {
                true => g.linear(
                    &h,
                    (&format!("{ours}.proj"), None),
                    &format!("{torch}.projs.{j}"),
                    (c, co),
                    None,
                )?,
                false => h.clone(),
            };
            y = g.node("Add", &[&y, &skip], vec![]);
        }
        (h, c) = (y, co);
    }
    // The maximum over the words: padding slots a billion lower; a text without words gives zeros.
    let (big, minus) = (g.constant(1e9), g.constant(-1e9));
    let low = g.node("Mul", &[&mask, &big], vec![]);
    let low = g.node("Add", &[&low, &minus], vec![]);
    let shifted = g.node("Add", &[&h, &low], vec![]);
    let reduce = || vec![ints("axes", &[1]), int("keepdims", 0)];
    let max = g.node("ReduceMax", &[&shifted], reduce());
    let any = g.node("ReduceMax", &[&mask], reduce());
    Ok((g.node("Mul", &[&max, &any], vec![]), c))
}
