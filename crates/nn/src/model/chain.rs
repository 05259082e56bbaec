//! The `chain` family's network: blocks of a convolution or a dense layer, batch norm, activation, residual
//! add, pooling and dropout, built from the architecture and run forward (fused into one CPU op where the
//! kernels allow).

use super::words::WordConvs;
use super::{dropout, Conv, Init};
use crate::bn::BatchNorm;
use crate::{ops, pointwise};
use candle_core::{Result, Tensor, Var};
use space::arch::ChainSpace;
use space::{Block, InputInfo, Pool, Rng, TextInput};

/// A chain block's linear transform: a convolution (with bias), a dense layer (weight, bias), or the first
/// dense layer over text columns.
enum Transform {
    Conv(Conv),
    Dense(Var, Var),
    Text(TextStem),
}

/// A dense layer whose inputs end in text columns' token ids: the other inputs times a matrix, plus, per
/// text input, the sum of an embedding table's rows named by its ids, each times its weight (what the
/// matrix would give on the text's TF-IDF vector; the rows' mean in models from before 2026-12-04), plus
/// the bias; and, when the chain has 1-D convolutions over words, per text input with words in order what
/// they give times a matrix. The first dense block of a chain over text, or the head when there is none.
pub(super) struct TextStem {
    /// `[dense inputs, width]`, when there are dense inputs.
    dense: Option<Var>,
    /// Per text input: its table `[vocab, width]` and what it reads.
    tables: Vec<(Var, TextInput)>,
    /// Per text input with words in order (its index), when there are convolutions: them, and the matrix
    /// `[their width, width]` their output enters by.
    words: Vec<(usize, WordConvs, Var)>,
    bias: Var,
}

impl TextStem {
    /// The layer of `width` outputs over `input`, its parameters `{name}.weight` (the dense inputs'
    /// matrix, when there are any), `{name}.text{t}` (text input t's table), then, with convolutions over
    /// words (`convs`: the blocks with their places in the chain), per text input t with words in order
    /// `words{t}.*` (the convolutions) and `{name}.words{t}`, and last `{name}.bias`.
    pub(super) fn new(
        init: &mut Init,
        name: &str,
        input: &InputInfo,
        width: usize,
        convs: &[(usize, &Block)],
    ) -> Result<TextStem> {
        let dense = input.dense_features();
        Ok(TextStem {
            dense: match dense {
                0 => None,
                d => Some(init.weight(format!("{name}.weight"), d, width)?),
            },
            tables: (input.text.iter().enumerate())
                .map(|(t, ti)| {
                    // Rows uniform in ±1/width, fastText's: the learned rows soon outweigh the random
                    // ones in a text's mean. On austen (fc64-relu, 5 folds) ±1 scored 0.923, ±√3 0.913,
                    // ±0.1 0.928, ±0.01 0.926.
                    let bound = 1.0 / width as f64;
                    let table = init.param(format!("{name}.text{t}"), &[ti.vocab, width], |r| {
                        (2.0 * r.uniform() - 1.0) * bound
                    })?;
                    Ok((table, ti.clone()))
                })
                .collect::<Result<Vec<_>>>()?,
            words: match convs.is_empty() {
                true => Vec::new(),
                false => (input.text.iter().enumerate())
                    .filter(|(_, ti)| ti.seq > 0)
                    .map(|(t, ti)| {
                        let c = WordConvs::new(init, &format!("words{t}"), ti, convs)?;
                        let w = init.weight(format!("{name}.words{t}"), c.width(), width)?;
                        Ok((t, c, w))
                    })
                    .collect::<Result<Vec<_>>>()?,
            },
            bias: init.zeros(format!("{name}.bias"), width)?,
        })
    }

    /// The parameters its output is linear in (all but the convolutions over words').
    pub(super) fn linear_vars(&self) -> Vec<&Var> {
        let tables = self.tables.iter().map(|(t, _)| t);
        let words = self.words.iter().map(|(.., w)| w);
        (self.dense.iter().chain(tables).chain(words))
            .chain([&self.bias])
            .collect()
    }

    pub(super) fn forward(&self, x: &Tensor, train: bool, rngs: &mut [Rng]) -> Result<Tensor> {
        let total: usize = self.tables.iter().map(|t| t.1.inputs()).sum();
        let at = x.dim(1)? - total;
        let mut y = match &self.dense {
            Some(w) => x.narrow(1, 0, at)?.matmul(w)?,
            None => Tensor::zeros((x.dim(0)?, self.bias.dim(0)?), x.dtype(), x.device())?,
        };
        let mut offs = Vec::new();
        let mut off = at;
        for (table, t) in &self.tables {
            let ids = x.narrow(1, off, t.len)?;
            let bag = match t.weighted {
                true => ops::bag_weighted(table, &ids, &x.narrow(1, off + t.len, t.len)?)?,
                false => ops::bag_mean(table, &ids)?,
            };
            y = (y + bag)?;
            off += t.inputs();
            offs.push(off - t.seq);
        }
        for (t, convs, w) in &self.words {
            let words = x.narrow(1, offs[*t], self.tables[*t].1.seq)?;
            y = (y + convs.forward(&words, train, rngs)?.matmul(w)?)?;
        }
        y.broadcast_add(&self.bias)
    }
}

/// The projection of a residual connection whose widths differ: a 1×1 convolution or a matrix.
enum Projection {
    Conv(Conv),
    Dense(Var),
}

pub(super) struct ChainLayer {
    spec: Block,
    transform: Transform,
    bn: Option<BatchNorm>,
    /// `Some` when the block is residual and changes the width.
    proj: Option<Projection>,
    /// Input size of a conv block (pooling halves it when it is at least 2).
    h: usize,
    w: usize,
}

/// A chain network's blocks.
pub(super) struct ChainBody {
    layers: Vec<ChainLayer>,
    conv: bool,
}

impl ChainBody {
    /// The blocks of `blocks` for `input`, and the width of their output (the head's input).
    pub(super) fn build(
        init: &mut Init,
        cs: &ChainSpace,
        blocks: &[Block],
        input: &InputInfo,
    ) -> Result<(ChainBody, usize)> {
        let mut layers = Vec::new();
        // The 1-D convolutions over words: in the first dense layer (or the head when there is none).
        let convs = cs.word_convs(blocks);
        let (mut c, mut h, mut w) = if cs.conv {
            let [c, h, w] = input.shape.expect("conv space has a shape");
            (c, h, w)
        } else {
            (input.features, 1, 1)
        };
        for (i, b) in blocks.iter().enumerate() {
            if b.is_word_conv(cs) {
                continue;
            }
            let name = format!("block{i}");
            let mut b = b.clone();
            let text = layers.is_empty() && !cs.conv && !input.text.is_empty();
            // Its input is token ids, not features: no residual (as `canonical` says).
            b.res &= !text;
            let transform = match b.kernel {
                None if text => {
                    Transform::Text(TextStem::new(init, &name, input, b.width, &convs)?)
                }
                Some(k) => Transform::Conv(init.conv(
                    &format!("{name}.conv"),
                    h,
                    w,
                    k,
                    1,
                    c,
                    b.width,
                    true,
                )?),
                None => Transform::Dense(
                    init.weight(format!("{name}.weight"), c, b.width)?,
                    init.zeros(format!("{name}.bias"), b.width)?,
                ),
            };
            let proj = match (&transform, b.res && c != b.width) {
                (_, false) | (Transform::Text(_), true) => None,
                (Transform::Conv(_), true) => Some(Projection::Conv(init.conv(
                    &format!("{name}.proj"),
                    h,
                    w,
                    1,
                    1,
                    c,
                    b.width,
                    false,
                )?)),
                (Transform::Dense(..), true) => Some(Projection::Dense(init.weight(
                    format!("{name}.proj"),
                    c,
                    b.width,
                )?)),
            };
            let bn = if b.bn {
                Some(init.bn(&format!("{name}.bn"), b.width)?)
            } else {
                None
            };
            let l = ChainLayer {
                spec: b.clone(),
                transform,
                bn,
                proj,
                h,
                w,
            };
            if cs.conv && b.pool != Pool::None && h >= 2 && w >= 2 {
                h /= 2;
                w /= 2;
            }
            c = b.width;
            layers.push(l);
        }
        Ok((
            ChainBody {
                layers,
                conv: cs.conv,
            },
            if cs.conv { c * h * w } else { c },
        ))
    }

    /// The features `[B, width]` of `x` (`image`: the input's channels, height and width, for conv blocks).
    pub(super) fn run(
        &mut self,
        x: &Tensor,
        image: Option<(usize, usize, usize)>,
        train: bool,
        rngs: &mut [Rng],
        grp: Option<&ops::Groups>,
    ) -> Result<Tensor> {
        let b = x.dim(0)?;
        let mut x = if self.conv {
            let (c, h, w) = image.expect("conv space has a shape");
            x.reshape((b, h * w, c))?
        } else {
            x.clone()
        };
        for l in self.layers.iter_mut() {
            let pool = self.conv && l.spec.pool != Pool::None && l.h >= 2 && l.w >= 2;
            let max = l.spec.pool == Pool::Max;
            // On the CPU, batch norm, activation and (without a residual) pooling are one op;
            // without batch norm, the convolution too.
            let fuse = grp.is_none() && ops::kernels(&x);
            let fused_pool =
                (fuse && pool && !l.spec.res).then(|| pointwise::Pool2::new(l.h, l.w, max));
            let pooled = fused_pool.is_some();
            let whole = match (&l.transform, &l.bn, &fused_pool) {
                (Transform::Conv(cv), None, Some(p)) => cv.forward_act_pool(&x, l.spec.act, p)?,
                _ => None,
            };
            let mut y = match whole {
                Some(y) => y,
                None => {
                    let z = match &l.transform {
                        Transform::Conv(cv) => cv.forward(&x, grp)?,
                        Transform::Dense(w, bias) => ops::dense(&x, w, bias, grp)?,
                        Transform::Text(stem) => stem.forward(&x, train, rngs)?,
                    };
                    match (&mut l.bn, fuse) {
                        (Some(bn), true) if train => {
                            bn.forward_fused(&z, l.spec.act, fused_pool)?
                        }
                        (bn, true) => {
                            let z = match bn {
                                Some(bn) => bn.forward(&z, false, None)?,
                                None => z,
                            };
                            pointwise::tail(&z, None, Some(l.spec.act), fused_pool)?.0
                        }
                        (bn, false) => {
                            let z = match bn {
                                Some(bn) => bn.forward(&z, train, grp)?,
                                None => z,
                            };
                            ops::activation(&z, l.spec.act)?
                        }
                    }
                }
            };
            if l.spec.res {
                let skip = match &l.proj {
                    Some(Projection::Conv(p)) => p.forward(&x, grp)?,
                    Some(Projection::Dense(p)) => ops::matmul(&x, p, grp)?,
                    None => x.clone(),
                };
                y = (y + skip)?;
            }
            if pool && !pooled {
                y = ops::pool2(&y, l.h, l.w, max)?;
            }
            if train && l.spec.dropout > 0.0 {
                y = dropout(&y, l.spec.dropout, rngs, grp)?;
            }
            x = y;
        }
        x.reshape((b, ()))
    }

    /// The batch norms, in block order.
    pub(super) fn batch_norms<'a>(&'a mut self, out: &mut Vec<&'a mut BatchNorm>) {
        out.extend(self.layers.iter_mut().filter_map(|l| l.bn.as_mut()));
    }
}
