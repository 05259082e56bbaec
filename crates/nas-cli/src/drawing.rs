//! A drawing of a network for the report (SVG, no script): a chain as its blocks from the input to the classes,
//! each with the shape it outputs; a cell as its nodes and the op on each edge.

use crate::html::esc;
use space::{Arch, Block, Cell, CellOp, InputInfo, Plan, Pool};
use std::fmt::Write as _;

/// The drawing of `arch` (architecture notation) in `plan`'s space, or a line saying why there is none.
pub fn network_svg(plan: &Plan, arch: &str) -> String {
    let input = &plan.file.input;
    match plan.def.parse(arch) {
        Ok(Arch::Chain(blocks)) => chain_svg(&chain_boxes(&blocks, input)),
        Ok(Arch::Cell(cell)) => cell_svg(&cell),
        Err(e) => format!("<p>{}</p>", esc(&e.to_string())),
    }
}

/// The boxes of a chain, input first and classes last: (what it is, the shape it outputs).
fn chain_boxes(blocks: &[Block], input: &InputInfo) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut shape = input.shape.map(|[c, h, w]| (c, h, w));
    out.push((
        "input".to_string(),
        shape.map_or(format!("{} features", input.features), |(c, h, w)| {
            format!("{c}×{h}×{w}")
        }),
    ));
    for b in blocks {
        let size = match (&mut shape, b.kernel) {
            (Some((c, h, w)), Some(_)) => {
                *c = b.width;
                if b.pool != Pool::None {
                    (*h, *w) = (*h / 2, *w / 2);
                }
                format!("{c}×{h}×{w}")
            }
            // A 1-D convolution over a text's words (the maximum over them enters the first dense layer).
            (None, Some(_)) => format!("{} per word", b.width),
            _ => format!("{}", b.width),
        };
        out.push((b.notation(), size));
    }
    let head = match shape {
        Some((c, h, w)) if h * w > 1 => format!("flatten {} → dense", c * h * w),
        _ => "dense".to_string(),
    };
    out.push((head, format!("{} classes", input.classes)));
    out
}

/// Boxes stacked top to bottom with arrows between them.
fn chain_svg(boxes: &[(String, String)]) -> String {
    let (w, bh, gap) = (520, 34, 18);
    let height = boxes.len() * (bh + gap);
    let mut s = format!(
        r#"<svg class="network" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="monospace" font-size="12">"#
    );
    for (i, (what, shape)) in boxes.iter().enumerate() {
        let y = i * (bh + gap) + 2;
        let fill = if i == 0 || i + 1 == boxes.len() {
            "#eef3fb"
        } else {
            "#f5f5f5"
        };
        let _ = write!(
            s,
            r##"<rect x="2" y="{y}" width="{}" height="{bh}" rx="5" fill="{fill}" stroke="#888"/><text x="12" y="{}">{}</text><text x="{}" y="{}" text-anchor="end" fill="#555">{}</text>"##,
            w - 4,
            y + 21,
            esc(what),
            w - 12,
            y + 21,
            esc(shape)
        );
        if i + 1 < boxes.len() {
            let (x, y0, y1) = (w / 2, y + bh, y + bh + gap);
            let _ = write!(
                s,
                r##"<line x1="{x}" y1="{y0}" x2="{x}" y2="{}" stroke="#888"/><path d="M{} {} L{x} {y1} L{} {} Z" fill="#888"/>"##,
                y1 - 4,
                x - 4,
                y1 - 6,
                x + 4,
                y1 - 6
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A cell's nodes on a line, each edge an arc labelled with its op (edges whose op is `none` left out).
fn cell_svg(cell: &Cell) -> String {
    let n = cell.nodes;
    let (step, top) = (150, 40 + 22 * n);
    let width = step * n.max(2);
    let mut s = format!(
        r#"<svg class="network" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="monospace" font-size="11">"#,
        top + 40
    );
    let x = |i: usize| step / 2 + i * step;
    for to in 1..n {
        for from in 0..to {
            let op = cell.ops[space::arch::cell::edge_index(to, from)];
            if op == CellOp::None {
                continue;
            }
            let (x0, x1) = (x(from), x(to));
            let lift = 20 * (to - from);
            let _ = write!(
                s,
                r##"<path d="M{x0} {top} Q{} {} {x1} {top}" fill="none" stroke="#888"/><text x="{}" y="{}" text-anchor="middle">{}</text>"##,
                (x0 + x1) / 2,
                top - 2 * lift,
                (x0 + x1) / 2,
                top - lift - 2,
                esc(op.name())
            );
        }
    }
    for i in 0..n {
        let label = match i {
            0 => "in".to_string(),
            i if i + 1 == n => "out".to_string(),
            i => i.to_string(),
        };
        let _ = write!(
            s,
            r##"<circle cx="{}" cy="{top}" r="14" fill="#eef3fb" stroke="#888"/><text x="{}" y="{}" text-anchor="middle">{label}</text>"##,
            x(i),
            x(i),
            top + 4
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_is_drawn_with_each_blocks_output_shape() {
        let blocks = [
            Block {
                width: 16,
                kernel: Some(3),
                act: space::Act::Relu,
                bn: false,
                pool: Pool::Max,
                dropout: 0.0,
                res: false,
                dilation: 1,
            },
            Block {
                width: 32,
                kernel: Some(5),
                act: space::Act::Relu,
                bn: true,
                pool: Pool::Avg,
                dropout: 0.0,
                res: false,
                dilation: 1,
            },
        ];
        let input = InputInfo {
            features: 784,
            shape: Some([1, 28, 28]),
            classes: 10,
            text: Vec::new(),
        };
        let boxes = chain_boxes(&blocks, &input);
        let shapes: Vec<&str> = boxes.iter().map(|b| b.1.as_str()).collect();
        assert_eq!(shapes, ["1×28×28", "16×14×14", "32×7×7", "10 classes"]);
        assert_eq!(boxes[3].0, "flatten 1568 → dense");
        let svg = chain_svg(&boxes);
        assert!(svg.contains("conv16x3-relu-maxpool") && svg.matches("<rect").count() == 4);
    }
}
