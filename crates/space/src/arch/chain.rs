//! The `chain` family: a sequence of conv or dense blocks (MLPs and plain/residual CNNs).
//!
//! Over text, a dense space may also hold 1-D convolution blocks (a block with a kernel): they read the
//! words of each text in order (an embedding as wide as the first of them, the convolutions, a global max
//! over the words), and what they give enters the first dense layer beside the texts' bags. Wherever they
//! stand in the notation they run first, in their order ([`ChainSpace::canonical`] puts them first).
//!
//! A block's attributes (width, kernel, activation, pooling, batch norm, dropout, residual) are listed once,
//! in [`each_choice!`]: counting, sampling, parsing checks, neighbours and the feature encoding all go through
//! it, so adding an attribute means adding its field, its notation, its `[space]` key and one line there.

use super::{Family, InputInfo};
use crate::choices::{Act, Pool};
use crate::rng::Rng;
use anyhow::{anyhow, bail, Result};

/// One block of a chain: conv(k×k, same padding) or dense, then batch norm, activation, residual add
/// (1×1 / linear projection when widths differ), pooling, dropout.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Output channels (conv) or units (dense).
    pub width: usize,
    /// Kernel size of a conv block; `None` for a dense block.
    pub kernel: Option<usize>,
    /// Activation.
    pub act: Act,
    /// Batch norm before the activation.
    pub bn: bool,
    /// Pooling (conv only).
    pub pool: Pool,
    /// Dropout rate.
    pub dropout: f64,
    /// Residual connection around the block's transform.
    pub res: bool,
    /// Dilation of a 1-D convolution over words (1 for every other block).
    pub dilation: usize,
}

/// Calls `$m!(field)` for every choice attribute of a block, in encoding order: the one list of them.
macro_rules! each_choice {
    ($m:ident) => {
        $m!(width);
        $m!(kernel);
        $m!(act);
        $m!(pool);
        $m!(bn);
        $m!(dropout);
        $m!(res);
        $m!(dilation);
    };
}

impl Block {
    /// The block in the architecture notation, e.g. `conv16x3-relu-bn-maxpool-drop0.1-res`.
    pub fn notation(&self) -> String {
        let mut s = match self.kernel {
            Some(k) => format!("conv{}x{}-{}", self.width, k, self.act.name()),
            None => format!("fc{}-{}", self.width, self.act.name()),
        };
        if self.bn {
            s.push_str("-bn");
        }
        if self.pool != Pool::None {
            s.push_str(&format!("-{}pool", self.pool.name()));
        }
        if self.dropout > 0.0 {
            s.push_str(&format!("-drop{}", self.dropout));
        }
        if self.res {
            s.push_str("-res");
        }
        if self.dilation > 1 {
            s.push_str(&format!("-d{}", self.dilation));
        }
        s
    }

    /// Whether it is a 1-D convolution over words in a dense space (a conv space's blocks are all 2-D).
    pub fn is_word_conv(&self, space: &ChainSpace) -> bool {
        !space.conv && self.kernel.is_some()
    }

    fn parse(text: &str) -> Result<Block> {
        let mut toks = text.split('-');
        let head = toks.next().unwrap_or("");
        let num = |v: &str, what: &str| -> Result<usize> {
            v.parse().map_err(|_| anyhow!("block `{text}`: bad {what}"))
        };
        let (width, kernel) = if let Some(rest) = head.strip_prefix("conv") {
            let (w, k) = rest
                .split_once('x')
                .ok_or_else(|| anyhow!("block `{text}`: expected convWxK"))?;
            (num(w, "width")?, Some(num(k, "kernel")?))
        } else if let Some(w) = head.strip_prefix("fc") {
            (num(w, "width")?, None)
        } else {
            bail!("block `{text}`: expected it to start with convWxK or fcW");
        };
        let act_tok = toks
            .next()
            .ok_or_else(|| anyhow!("block `{text}`: missing activation"))?;
        let act = Act::parse(act_tok)
            .ok_or_else(|| anyhow!("block `{text}`: unknown activation `{act_tok}`"))?;
        let mut b = Block {
            width,
            kernel,
            act,
            bn: false,
            pool: Pool::None,
            dropout: 0.0,
            res: false,
            dilation: 1,
        };
        for t in toks {
            if t == "bn" {
                b.bn = true;
            } else if t == "res" {
                b.res = true;
            } else if let Some(p) = t.strip_suffix("pool").and_then(Pool::parse) {
                b.pool = p;
            } else if let Some(d) = t.strip_prefix("drop") {
                b.dropout = d
                    .parse()
                    .map_err(|_| anyhow!("block `{text}`: bad dropout `{d}`"))?;
            } else if let Some(d) = t.strip_prefix('d') {
                b.dilation = num(d, "dilation")
                    .ok()
                    .filter(|&d| d >= 1)
                    .ok_or_else(|| anyhow!("block `{text}`: bad dilation `{d}`"))?;
            } else {
                bail!("block `{text}`: unknown token `{t}`");
            }
        }
        Ok(b)
    }
}

/// The chain of no blocks: the inputs straight to the classes (a linear model; over text, TF-IDF bags
/// times a matrix).
pub const LINEAR: &str = "linear";

/// The chain notation: blocks joined by `/`, or [`LINEAR`] for no block.
pub fn notation(blocks: &[Block]) -> String {
    if blocks.is_empty() {
        return LINEAR.into();
    }
    let s: Vec<String> = blocks.iter().map(Block::notation).collect();
    s.join("/")
}

/// A chain space: the depth range and the choices of every block attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainSpace {
    /// Conv (true) or dense blocks.
    pub conv: bool,
    /// Minimum blocks.
    pub min_depth: usize,
    /// Maximum blocks.
    pub max_depth: usize,
    /// Width choices.
    pub width: Vec<usize>,
    /// Kernel choices (conv); a dense space's: `None` (a dense block) and its 1-D convolutions'.
    pub kernel: Vec<Option<usize>>,
    /// Activation choices.
    pub act: Vec<Act>,
    /// Pool choices (`[None]` for dense).
    pub pool: Vec<Pool>,
    /// Batch-norm choices.
    pub bn: Vec<bool>,
    /// Dropout choices.
    pub dropout: Vec<f64>,
    /// Residual choices.
    pub res: Vec<bool>,
    /// Dilation choices (`[1]` but for a text space's 1-D convolutions).
    pub dilation: Vec<usize>,
}

impl ChainSpace {
    fn random_block(&self, rng: &mut Rng) -> Block {
        let mut b = self.first_choices();
        macro_rules! draw {
            ($f:ident) => {
                // A single dilation (every space but text's) draws nothing: the streams of the spaces
                // from before it are unchanged.
                if stringify!($f) != "dilation" || self.$f.len() > 1 {
                    b.$f = rng.choose(&self.$f).clone();
                }
            };
        }
        each_choice!(draw);
        self.tidy(b)
    }

    /// `b` without what its kind does not read: a dense block's dilation, a 1-D convolution's batch norm
    /// (a space without 1-D convolutions changes nothing).
    fn tidy(&self, b: Block) -> Block {
        match b.is_word_conv(self) {
            true => Block { bn: false, ..b },
            false => Block { dilation: 1, ..b },
        }
    }

    /// The blocks of `blocks` that are 1-D convolutions over words, with their places in the chain (in a
    /// network they run first, in this order, and enter the first dense layer or the head).
    pub fn word_convs<'a>(&self, blocks: &'a [Block]) -> Vec<(usize, &'a Block)> {
        (blocks.iter().enumerate())
            .filter(|(_, b)| b.is_word_conv(self))
            .collect()
    }

    /// Whether the head of `blocks` over `input` is the text layer (the bags, the word convolutions' entry
    /// and the dense inputs straight to the classes): over text, when no block is a dense one.
    pub fn text_head(&self, blocks: &[Block], input: &InputInfo) -> bool {
        !input.text.is_empty() && blocks.iter().all(|b| b.is_word_conv(self))
    }

    /// The block of each attribute's first choice, tidied.
    fn first_block(&self) -> Block {
        self.tidy(self.first_choices())
    }

    /// The block of each attribute's first choice.
    fn first_choices(&self) -> Block {
        let mut b = Block {
            width: 0,
            kernel: None,
            act: Act::Relu,
            bn: false,
            pool: Pool::None,
            dropout: 0.0,
            res: false,
            dilation: 1,
        };
        macro_rules! first {
            ($f:ident) => {
                b.$f = self.$f[0].clone();
            };
        }
        each_choice!(first);
        b
    }

    fn contains(&self, b: &Block) -> bool {
        // The attribute a block's kind does not read may also hold what `tidy` gives it.
        let word = b.is_word_conv(self);
        let mut ok = true;
        macro_rules! check {
            ($f:ident) => {
                ok &= self.$f.contains(&b.$f)
                    || match stringify!($f) {
                        "bn" => word && !b.bn,
                        "dilation" => !word && b.dilation == 1,
                        _ => false,
                    };
            };
        }
        each_choice!(check);
        ok
    }
}

impl Family for ChainSpace {
    type Arch = Vec<Block>;

    fn size(&self) -> u128 {
        let mut per = 1u128;
        macro_rules! count {
            ($f:ident) => {
                per = per.saturating_mul(self.$f.len() as u128);
            };
        }
        each_choice!(count);
        (self.min_depth..=self.max_depth).fold(0u128, |acc, d| {
            acc.saturating_add(per.saturating_pow(d as u32))
        })
    }

    fn needs_image(&self) -> bool {
        self.conv
    }

    fn parse(&self, text: &str) -> Result<Vec<Block>> {
        let blocks = match text {
            LINEAR => Vec::new(),
            _ => (text.split('/'))
                .map(Block::parse)
                .collect::<Result<Vec<_>>>()?,
        };
        if blocks.len() < self.min_depth || blocks.len() > self.max_depth {
            bail!(
                "arch has {} blocks; the space allows {}..={}",
                blocks.len(),
                self.min_depth,
                self.max_depth
            );
        }
        if let Some(b) = blocks.iter().find(|b| !self.contains(b)) {
            bail!("block `{}` uses a choice outside the space", b.notation());
        }
        Ok(blocks)
    }

    fn sample(&self, rng: &mut Rng) -> Vec<Block> {
        let d = self.min_depth + rng.below(self.max_depth - self.min_depth + 1);
        (0..d).map(|_| self.random_block(rng)).collect()
    }

    fn neighbours(&self, blocks: &Vec<Block>) -> Vec<Vec<Block>> {
        let mut out = Vec::new();
        for i in 0..blocks.len() {
            let b = &blocks[i];
            macro_rules! vary {
                ($f:ident) => {
                    for x in self.$f.iter().filter(|&x| *x != b.$f) {
                        let mut v = blocks.clone();
                        v[i].$f = x.clone();
                        v[i] = self.tidy(v[i].clone());
                        if v[i] != *b {
                            out.push(v);
                        }
                    }
                };
            }
            each_choice!(vary);
        }
        if blocks.is_empty() && self.max_depth > 0 {
            // From the linear model: one block of the first choices, and it with one choice changed.
            let first = vec![self.first_block()];
            let one = self.neighbours(&first).into_iter().filter(|v| v.len() == 1);
            out.extend(std::iter::once(first.clone()).chain(one));
        }
        if blocks.len() < self.max_depth {
            for i in 0..blocks.len() {
                let mut v = blocks.clone();
                v.insert(i + 1, blocks[i].clone());
                out.push(v);
            }
        }
        if blocks.len() > self.min_depth {
            for i in 0..blocks.len() {
                let mut v = blocks.clone();
                v.remove(i);
                out.push(v);
            }
        }
        out
    }

    fn crossover(&self, x: &Vec<Block>, y: &Vec<Block>, rng: &mut Rng) -> Vec<Block> {
        let i = rng.below(x.len() + 1);
        let j = rng.below(y.len() + 1);
        let mut v: Vec<Block> = x[..i].iter().chain(y[j..].iter()).cloned().collect();
        v.truncate(self.max_depth);
        let mut k = 0;
        while v.len() < self.min_depth {
            v.push(x[k % x.len()].clone());
            k += 1;
        }
        v
    }

    fn canonical(&self, blocks: &Vec<Block>, input: &InputInfo) -> Vec<Block> {
        let [_, mut h, mut w] = input.shape.unwrap_or([1, 1, 1]);
        // The 1-D convolutions over words run first, in their order, without batch norm; a dense block's
        // dilation is nothing.
        let (mut out, dense): (Vec<Block>, Vec<Block>) = (blocks.iter())
            .map(|b| self.tidy(b.clone()))
            .partition(|b| b.is_word_conv(self));
        let first_dense = out.len();
        out.extend(dense);
        // The first dense block over a text's token ids has no residual: its input is ids, not features.
        if let Some(b) = out.get_mut(first_dense).filter(|_| !input.text.is_empty()) {
            b.res = false;
        }
        for b in out.iter_mut() {
            if b.pool != Pool::None {
                if h < 2 || w < 2 {
                    b.pool = Pool::None;
                } else {
                    h /= 2;
                    w /= 2;
                }
            }
        }
        out
    }

    fn features(&self, blocks: &Vec<Block>) -> Vec<usize> {
        let mut v = Vec::new();
        let mut at = 0;
        for i in 0..self.max_depth {
            let b = blocks.get(i);
            if b.is_some() {
                v.push(at);
            }
            at += 1;
            macro_rules! hot {
                ($f:ident) => {
                    super::one_hot(&mut v, &mut at, &self.$f, b.map(|b| &b.$f));
                };
            }
            each_choice!(hot);
        }
        v
    }

    fn feature_count(&self) -> usize {
        let mut per = 1;
        macro_rules! width {
            ($f:ident) => {
                per += super::one_hot_width(self.$f.len());
            };
        }
        each_choice!(width);
        self.max_depth * per
    }

    fn cost(&self, blocks: &Vec<Block>, input: &InputInfo) -> (u64, u64) {
        let (mut params, mut flops) = (0u64, 0u64);
        let k = input.classes as u64;
        match input.shape {
            _ if self.conv => {
                let [c, h0, w0] = input.shape.expect("checked by check_input");
                let (mut ch, mut h, mut w) = (c as u64, h0 as u64, w0 as u64);
                for b in blocks {
                    let kk = b.kernel.map_or(1, |k| (k * k) as u64);
                    let co = b.width as u64;
                    params += kk * ch * co + co;
                    flops += h * w * kk * ch * co;
                    if b.bn {
                        params += 2 * co;
                    }
                    if b.res && ch != co {
                        params += ch * co;
                        flops += h * w * ch * co;
                    }
                    if b.pool != Pool::None {
                        h /= 2;
                        w /= 2;
                    }
                    ch = co;
                }
                params += h * w * ch * k + k;
                flops += h * w * ch * k;
            }
            _ => {
                let convs = blocks.iter().take_while(|b| b.is_word_conv(self)).count();
                let (words, blocks) = blocks.split_at(convs);
                let (mut f, pooled) = word_conv_cost(words, input, &mut params, &mut flops);
                // What the word convolutions give enters the first dense layer (or the head).
                let first = blocks.first().map_or(k, |b| b.width as u64);
                params += pooled * first;
                flops += pooled * first;
                for (i, b) in blocks.iter().enumerate() {
                    let u = b.width as u64;
                    params += f * u + u;
                    flops += f * u;
                    if i == 0 && !input.text.is_empty() {
                        // Over text, the first block's weights are an embedding table per column (a row
                        // per vocabulary id) and the dense inputs' matrix; a token id costs `u` adds, counted
                        // as multiply-accumulates.
                        let dense = input.dense_features() as u64;
                        let vocab: u64 = input.text.iter().map(|t| t.vocab as u64).sum();
                        params += (dense + vocab) * u - f * u;
                    }
                    if b.bn {
                        params += 2 * u;
                    }
                    if b.res && f != u {
                        params += f * u;
                        flops += f * u;
                    }
                    f = u;
                }
                params += f * k + k;
                flops += f * k;
                if blocks.is_empty() && !input.text.is_empty() {
                    // The linear model over text: the head is the embedding tables (a row per id, one
                    // column per class) and the dense inputs' matrix.
                    let dense = input.dense_features() as u64;
                    let vocab: u64 = input.text.iter().map(|t| t.vocab as u64).sum();
                    params += (dense + vocab) * k - f * k;
                }
            }
        }
        (params, flops)
    }
}

/// Adds the 1-D convolutions over words' parameters and multiply-accumulates (each text input with words
/// in order has its own: an embedding table as wide as the first, the convolutions over its `seq` slots);
/// gives the inputs the dense layers read (the word slots left out) and the width of what the
/// convolutions give the first dense layer.
fn word_conv_cost(
    words: &[Block],
    input: &InputInfo,
    params: &mut u64,
    flops: &mut u64,
) -> (u64, u64) {
    let slots: usize = input.text.iter().map(|t| t.seq).sum();
    let f = (input.features - slots) as u64;
    let Some(first) = words.first() else {
        return (f, 0);
    };
    let mut pooled = 0;
    for t in input.text.iter().filter(|t| t.seq > 0) {
        let l = t.seq as u64;
        let mut c = first.width as u64;
        *params += t.vocab as u64 * c;
        for b in words {
            let (k, co) = ((b.kernel.unwrap_or(1)) as u64, b.width as u64);
            *params += k * c * co + co;
            *flops += l * k * c * co;
            if b.res && c != co {
                *params += c * co;
                *flops += l * c * co;
            }
            c = co;
        }
        pooled += c;
    }
    (f, pooled)
}
