//! The `cell` family's network: a stem, stages of NAS-Bench-201 cells (a DAG whose edges each carry one
//! op) with a residual reduction block between stages, and a batch-norm head; built and run forward.

use super::{Conv, Init};
use crate::bn::BatchNorm;
use crate::ops;
use candle_core::{Result, Tensor};
use space::arch::CellSpace;
use space::{Act, Cell, CellOp, InputInfo};

/// A built cell edge.
enum EdgeOp {
    Zero,
    Skip,
    Conv(Conv, BatchNorm),
    AvgPool(ops::Window, Tensor),
}

struct Reduction {
    a: Conv,
    a_bn: BatchNorm,
    b: Conv,
    b_bn: BatchNorm,
    short: Conv,
}

enum Stage {
    Cell { nodes: usize, ops: Vec<EdgeOp> },
    Reduce(Box<Reduction>),
}

/// A cell network's layers before the head.
pub(super) struct CellBody {
    stem: Conv,
    stem_bn: BatchNorm,
    stages: Vec<Stage>,
    head_bn: BatchNorm,
}

impl CellBody {
    /// The layers of `cell` for `input`, and the width of their output (the head's input).
    pub(super) fn build(
        init: &mut Init,
        cs: &CellSpace,
        cell: &Cell,
        input: &InputInfo,
    ) -> Result<(CellBody, usize)> {
        let [cin, mut h, mut w] = input.shape.expect("cell space has a shape");
        let (dtype, dev) = (init.dtype, init.dev.clone());
        let mut ch = cs.channels;
        let stem = init.conv("stem", h, w, 3, 1, cin, ch, false)?;
        let stem_bn = init.bn("stem.bn", ch)?;
        let mut stages = Vec::new();
        for s in 0..cs.stages {
            if s > 0 {
                let co = 2 * ch;
                let name = format!("reduce{s}");
                let a = init.conv(&format!("{name}.a"), h, w, 3, 2, ch, co, false)?;
                let (ho, wo) = (a.ho, a.wo);
                let r = Reduction {
                    a,
                    a_bn: init.bn(&format!("{name}.a.bn"), co)?,
                    b: init.conv(&format!("{name}.b"), ho, wo, 3, 1, co, co, false)?,
                    b_bn: init.bn(&format!("{name}.b.bn"), co)?,
                    short: init.conv(&format!("{name}.short"), h, w, 1, 2, ch, co, false)?,
                };
                stages.push(Stage::Reduce(Box::new(r)));
                ch = co;
                h = ho;
                w = wo;
            }
            for k in 0..cs.cells_per_stage {
                let mut ops_ = Vec::new();
                for (e, &o) in cell.ops.iter().enumerate() {
                    let name = format!("stage{s}.cell{k}.edge{e}");
                    ops_.push(match o {
                        CellOp::None => EdgeOp::Zero,
                        CellOp::Skip => EdgeOp::Skip,
                        CellOp::Conv1x1 | CellOp::Conv3x3 => {
                            let k = o.kernel().expect("a conv op");
                            EdgeOp::Conv(
                                init.conv(&name, h, w, k, 1, ch, ch, false)?,
                                init.bn(&format!("{name}.bn"), ch)?,
                            )
                        }
                        CellOp::AvgPool3x3 => {
                            let (idx, _, _) = init.index(h, w, 3, 1, 1)?;
                            EdgeOp::AvgPool(idx, ops::avg_pool3_counts(h, w, dtype, &dev)?)
                        }
                    });
                }
                stages.push(Stage::Cell {
                    nodes: cell.nodes,
                    ops: ops_,
                });
            }
        }
        let head_bn = init.bn("head.bn", ch)?;
        Ok((
            CellBody {
                stem,
                stem_bn,
                stages,
                head_bn,
            },
            ch,
        ))
    }

    /// The features `[B, channels]` of `x` (`image`: the input's channels, height and width).
    pub(super) fn run(
        &mut self,
        x: &Tensor,
        image: Option<(usize, usize, usize)>,
        train: bool,
        grp: Option<&ops::Groups>,
    ) -> Result<Tensor> {
        let b = x.dim(0)?;
        let (c, h, w) = image.expect("cell space has a shape");
        let x = x.reshape((b, h * w, c))?;
        let mut x = self.stem.then_bn(&mut self.stem_bn, &x, train, grp)?;
        for st in self.stages.iter_mut() {
            x = match st {
                Stage::Reduce(r) => {
                    let relu = ops::activation(&x, Act::Relu)?;
                    let a = r.a.then_bn(&mut r.a_bn, &relu, train, grp)?;
                    let relu = ops::activation(&a, Act::Relu)?;
                    let bb = r.b.then_bn(&mut r.b_bn, &relu, train, grp)?;
                    (bb + r.short.forward(&x, grp)?)?
                }
                Stage::Cell {
                    nodes,
                    ops: cell_ops,
                } => {
                    let mut vals: Vec<Option<Tensor>> = vec![Some(x.clone())];
                    // ReLU of a node, once for all the convolutions reading it.
                    let mut relus: Vec<Option<Tensor>> = vec![None; *nodes];
                    for i in 1..*nodes {
                        let mut acc: Option<Tensor> = None;
                        for j in 0..i {
                            let Some(inp) = &vals[j] else { continue };
                            let out = match &mut cell_ops[space::arch::edge_index(i, j)] {
                                EdgeOp::Zero => continue,
                                EdgeOp::Skip => inp.clone(),
                                EdgeOp::Conv(cv, bn) => {
                                    let relu = match &relus[j] {
                                        Some(r) => r.clone(),
                                        None => ops::activation(inp, Act::Relu)?,
                                    };
                                    relus[j] = Some(relu.clone());
                                    cv.then_bn(bn, &relu, train, grp)?
                                }
                                EdgeOp::AvgPool(idx, inv) => ops::avg_pool3(inp, idx, inv)?,
                            };
                            acc = Some(match acc {
                                Some(a) => (a + out)?,
                                None => out,
                            });
                        }
                        vals.push(acc);
                    }
                    match vals.pop().flatten() {
                        Some(t) => t,
                        None => x.zeros_like()?,
                    }
                }
            };
        }
        ops::activation(&self.head_bn.forward(&x, train, grp)?, Act::Relu)?.mean(1)
    }

    /// The batch norms, stem first, head last.
    pub(super) fn batch_norms<'a>(&'a mut self, out: &mut Vec<&'a mut BatchNorm>) {
        out.push(&mut self.stem_bn);
        for st in &mut self.stages {
            match st {
                Stage::Reduce(r) => {
                    out.push(&mut r.a_bn);
                    out.push(&mut r.b_bn);
                }
                Stage::Cell { ops, .. } => {
                    for o in ops {
                        if let EdgeOp::Conv(_, bn) = o {
                            out.push(bn);
                        }
                    }
                }
            }
        }
        out.push(&mut self.head_bn);
    }
}
