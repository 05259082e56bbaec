//! The 1-D convolutions over a text's words (a dense chain's blocks with a kernel, over text): an embedding
//! of each word id as wide as the first convolution, the convolutions (same length, dilated, each followed
//! by its activation, the padding slots as zero, a residual add and dropout), then the maximum
//! over the text's words of each channel. What they give enters the first dense layer as one more input
//! ([`super::chain::TextStem`]).
//!
//! The ops ([`ops::embed_words`], [`ops::conv1d`], [`ops::max_over_words`]) are one CPU op each on the
//! CPU ([`crate::word_conv`]) and candle ops elsewhere, each checked by finite differences in `ops`' tests.

use super::{dropout, Init};
use crate::ops;
use candle_core::{Result, Tensor, Var};
use space::{Block, Rng, TextInput};

/// One convolution: `[kernel · cin, cout]` and a bias, its projection when residual and the widths differ.
struct Layer {
    spec: Block,
    weight: Var,
    bias: Var,
    proj: Option<Var>,
}

/// The 1-D convolutions over one text input's words.
pub(super) struct WordConvs {
    /// `[vocab, width of the first convolution]`.
    embed: Var,
    layers: Vec<Layer>,
}

impl WordConvs {
    /// The convolutions `blocks` (all with a kernel, each with its place i in the chain) over `text`'s
    /// words; parameters `{name}.embed` and `{name}.block{i}.weight` / `.bias` / `.proj`.
    pub(super) fn new(
        init: &mut Init,
        name: &str,
        text: &TextInput,
        blocks: &[(usize, &Block)],
    ) -> Result<WordConvs> {
        let e = blocks[0].1.width;
        // Rows uniform in ±1 (variance 1/3, PyTorch's embedding has 1): the first convolution's weights
        // (±1/√fan-in) then give outputs of about the variance of a dense layer over standardised inputs.
        let embed = init.param(format!("{name}.embed"), &[text.vocab, e], |r| {
            2.0 * r.uniform() - 1.0
        })?;
        let mut c = e;
        let mut layers = Vec::new();
        for &(i, b) in blocks {
            let k = b.kernel.expect("a word convolution has a kernel");
            let n = format!("{name}.block{i}");
            layers.push(Layer {
                spec: b.clone(),
                weight: init.weight(format!("{n}.weight"), k * c, b.width)?,
                bias: init.zeros(format!("{n}.bias"), b.width)?,
                proj: match b.res && c != b.width {
                    true => Some(init.weight(format!("{n}.proj"), c, b.width)?),
                    false => None,
                },
            });
            c = b.width;
        }
        Ok(WordConvs { embed, layers })
    }

    /// Width of what it gives.
    pub(super) fn width(&self) -> usize {
        self.layers.last().map_or(0, |l| l.spec.width)
    }

    /// `[B, width]` for word ids `ids` `[B, L]` (0: padding, after a text's words).
    pub(super) fn forward(&self, ids: &Tensor, train: bool, rngs: &mut [Rng]) -> Result<Tensor> {
        let (mut h, words) = ops::embed_words(&self.embed, ids)?;
        for layer in &self.layers {
            let s = &layer.spec;
            let y = ops::conv1d(&h, &layer.weight, s.kernel.unwrap_or(1), s.dilation, &words)?;
            let y = ops::activation(&ops::add_bias(&y, &layer.bias, None)?, s.act)?;
            let mut y = ops::mask_words(&y, &words)?;
            if s.res {
                y = match &layer.proj {
                    Some(p) => (y + h.broadcast_matmul(p)?)?,
                    None => (y + &h)?,
                };
            }
            if train && s.dropout > 0.0 {
                y = dropout(&y, s.dropout, rngs, None)?;
            }
            h = y;
        }
        ops::max_over_words(&h, &words)
    }
}
