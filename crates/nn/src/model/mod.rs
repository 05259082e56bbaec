//! Networks built from an architecture: parameters as candle `Var`s, forward passes from [`crate::ops`].

mod cell;
mod chain;
mod words;

use crate::bn::BatchNorm;
use crate::{ops, pointwise};
use candle_core::{DType, Device, Result, Tensor, Var};
use space::{Act, Arch, InputInfo, Rng, SpaceDef};

/// Named parameters and buffers, in creation order (names are the safetensors keys).
#[derive(Default)]
pub struct Store {
    /// Trainable parameters.
    pub vars: Vec<(String, Var)>,
}

struct Init<'a> {
    /// One stream per group (one for a plain network).
    rngs: &'a mut [Rng],
    /// `None` for a plain network, else the number of stacked groups.
    groups: Option<usize>,
    dtype: DType,
    dev: Device,
    store: &'a mut Store,
}

impl Init<'_> {
    fn param(
        &mut self,
        name: String,
        shape: &[usize],
        fill: impl Fn(&mut Rng) -> f64,
    ) -> Result<Var> {
        let n: usize = shape.iter().product();
        // Each group draws from its own stream exactly what a plain network would.
        let v: Vec<f64> = self
            .rngs
            .iter_mut()
            .flat_map(|r| (0..n).map(|_| fill(r)).collect::<Vec<_>>())
            .collect();
        let t = Tensor::from_vec(v, self.shape(shape), &self.dev)?.to_dtype(self.dtype)?;
        let var = Var::from_tensor(&t)?;
        self.store.vars.push((name, var.clone()));
        Ok(var)
    }
    /// Weights `[fan_in, fan_out]`, uniform in ±1/√fan_in: PyTorch's default for linear and conv layers (a
    /// third of He's variance). On fashion10k's reference CNN it scored 0.879 against He's 0.872 (5-fold CV),
    /// on the UCI tables the same within noise; see docs/benchmarks.md.
    fn weight(&mut self, name: String, fan_in: usize, fan_out: usize) -> Result<Var> {
        let bound = (1.0 / fan_in as f64).sqrt();
        self.param(name, &[fan_in, fan_out], |r| {
            (2.0 * r.uniform() - 1.0) * bound
        })
    }
    /// A plain shape, or its grouped form: `[G, ...]` for matrices, `[G, 1, n]` for vectors (broadcast over
    /// each group's rows).
    fn shape(&self, shape: &[usize]) -> Vec<usize> {
        match (self.groups, shape) {
            (None, _) => shape.to_vec(),
            (Some(g), [n]) => vec![g, 1, *n],
            (Some(g), s) => [&[g][..], s].concat(),
        }
    }
    fn zeros(&mut self, name: String, n: usize) -> Result<Var> {
        self.param(name, &[n], |_| 0.0)
    }
    fn index(
        &self,
        h: usize,
        w: usize,
        k: usize,
        s: usize,
        p: usize,
    ) -> Result<(ops::Window, usize, usize)> {
        ops::Window::new(h, w, k, s, p, &self.dev)
    }
    fn bn(&mut self, name: &str, c: usize) -> Result<BatchNorm> {
        let gamma = self.param(format!("{name}.gamma"), &[c], |_| 1.0)?;
        let beta = self.zeros(format!("{name}.beta"), c)?;
        BatchNorm::new(name, gamma, beta, self.shape(&[c]), self.dtype, &self.dev)
    }
    /// A k×k convolution with stride `s` on an h×w×cin input: the geometry is the arguments.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        name: &str,
        h: usize,
        w: usize,
        k: usize,
        s: usize,
        cin: usize,
        cout: usize,
        bias: bool,
    ) -> Result<Conv> {
        // A 1×1 stride-1 convolution is a matrix product: on a GPU or grouped, candle's (no window); on the
        // CPU the kernel's, whose identity window skips im2col and lets batch norm fuse with it.
        let plain_cpu = self.groups.is_none() && self.dev.is_cpu();
        let (win, ho, wo) = if k == 1 && s == 1 && !plain_cpu {
            (None, h, w)
        } else {
            let (i, ho, wo) = self.index(h, w, k, s, k / 2)?;
            (Some(i), ho, wo)
        };
        Ok(Conv {
            w: self.weight(format!("{name}.weight"), k * k * cin, cout)?,
            b: if bias {
                Some(self.zeros(format!("{name}.bias"), cout)?)
            } else {
                None
            },
            win,
            ho,
            wo,
        })
    }
}

/// A convolution with its window (none for 1×1, stride 1).
pub struct Conv {
    w: Var,
    b: Option<Var>,
    win: Option<ops::Window>,
    ho: usize,
    wo: usize,
}

impl Conv {
    /// `bn(self(x))`: in training on the CPU, a convolution with a window and without bias and the batch
    /// norm are one op (`conv_block::conv_bn`); otherwise two.
    fn then_bn(
        &self,
        bn: &mut BatchNorm,
        x: &Tensor,
        train: bool,
        grp: Option<&ops::Groups>,
    ) -> Result<Tensor> {
        if let (true, None, Some(win), None) = (train && ops::kernels(x), grp, &self.win, &self.b) {
            let args = (bn.gamma.as_tensor(), bn.beta.as_tensor(), crate::bn::EPS);
            let (y, m, v) = crate::conv_block::conv_bn(x, self.w.as_tensor(), win, args)?;
            bn.record(&y, &m, &v)?;
            return Ok(y);
        }
        bn.forward(&self.forward(x, grp)?, train, grp)
    }

    /// The convolution with its bias, the activation and pooling as one CPU op, when the convolution has a
    /// window and a bias (else `None`).
    fn forward_act_pool(
        &self,
        x: &Tensor,
        act: Act,
        pool: &pointwise::Pool2,
    ) -> Result<Option<Tensor>> {
        match (&self.win, &self.b) {
            (Some(win), Some(b)) => {
                crate::conv_block::conv_act_pool(x, self.w.as_tensor(), b, win, act, pool.clone())
                    .map(Some)
            }
            _ => Ok(None),
        }
    }

    fn forward(&self, x: &Tensor, grp: Option<&ops::Groups>) -> Result<Tensor> {
        ops::conv(
            x,
            &self.w,
            self.b.as_ref().map(|b| b.as_tensor()),
            self.win.as_ref(),
            grp,
        )
    }
}

/// The layers between the input and the classifier head, by family.
enum Body {
    Chain(chain::ChainBody),
    Cell(cell::CellBody),
}

/// The classifier: a dense layer over the body's features, or, for a chain of no blocks over text (the
/// linear model), the text layer itself with one output per class.
enum Head {
    Dense(Var, Var),
    Text(chain::TextStem),
}

/// A trainable network for one architecture.
pub struct Model {
    body: Body,
    head: Head,
    /// Parameters by name.
    pub store: Store,
    image: Option<(usize, usize, usize)>,
    /// `None` for a plain network, else the number of stacked groups ([`Model::new_grouped`]).
    groups: Option<usize>,
}

/// Inverted dropout. Grouped, each group's real rows draw from its own stream exactly what a plain network
/// would draw for them; padding rows are kept.
fn dropout(x: &Tensor, p: f64, rngs: &mut [Rng], grp: Option<&ops::Groups>) -> Result<Tensor> {
    let keep = (1.0 / (1.0 - p)) as f32;
    let per_row = x.elem_count() / x.dim(0)?;
    let (b, rows) = match grp {
        Some(g) => (g.b, g.rows.clone()),
        None => (x.dim(0)?, vec![x.dim(0)?]),
    };
    let mut m = Vec::with_capacity(x.elem_count());
    for (rng, &r) in rngs.iter_mut().zip(&rows) {
        m.extend((0..r * per_row).map(|_| if rng.uniform() < p { 0.0 } else { keep }));
        m.extend(std::iter::repeat_n(1.0, (b - r) * per_row));
    }
    let mask = Tensor::from_vec(m, x.dims(), x.device())?.to_dtype(x.dtype())?;
    x.mul(&mask)
}

impl Model {
    /// Builds the network for `arch` with weights from `rng`.
    pub fn new(
        space: &SpaceDef,
        arch: &Arch,
        input: &InputInfo,
        rng: &mut Rng,
        dtype: DType,
        dev: &Device,
    ) -> Result<Model> {
        Self::build(
            space,
            arch,
            input,
            std::slice::from_mut(rng),
            None,
            dtype,
            dev,
        )
    }

    /// `rngs.len()` networks for `arch` trained as one (the folds of a cross-validation on a GPU, where one
    /// small network cannot fill the device): every parameter is the plain one stacked along a new leading
    /// dimension, group i initialised from `rngs[i]` exactly as [`Model::new`] would. Its input is the
    /// groups' rows one block after another ([`Model::forward_grouped`]); nothing mixes between groups.
    pub fn new_grouped(
        space: &SpaceDef,
        arch: &Arch,
        input: &InputInfo,
        rngs: &mut [Rng],
        dtype: DType,
        dev: &Device,
    ) -> Result<Model> {
        let g = rngs.len();
        Self::build(space, arch, input, rngs, Some(g), dtype, dev)
    }

    fn build(
        space: &SpaceDef,
        arch: &Arch,
        input: &InputInfo,
        rngs: &mut [Rng],
        groups: Option<usize>,
        dtype: DType,
        dev: &Device,
    ) -> Result<Model> {
        let mut store = Store::default();
        let mut init = Init {
            rngs,
            groups,
            dtype,
            dev: dev.clone(),
            store: &mut store,
        };
        let image = input.shape.map(|[c, h, w]| (c, h, w));
        let classes = input.classes;
        let (body, width) = match (space, arch) {
            (SpaceDef::Chain(cs), Arch::Chain(blocks)) => {
                let (body, width) = chain::ChainBody::build(&mut init, cs, blocks, input)?;
                (Body::Chain(body), width)
            }
            (SpaceDef::Cell(cs), Arch::Cell(cell)) => {
                let (body, width) = cell::CellBody::build(&mut init, cs, cell, input)?;
                (Body::Cell(body), width)
            }
            _ => candle_core::bail!("architecture does not belong to this space's family"),
        };
        let head = match (space, arch) {
            // Over text without a dense block the head is the text layer (with the word convolutions).
            (SpaceDef::Chain(cs), Arch::Chain(blocks)) if cs.text_head(blocks, input) => {
                let convs = cs.word_convs(blocks);
                Head::Text(chain::TextStem::new(
                    &mut init, "head", input, classes, &convs,
                )?)
            }
            _ => Head::Dense(
                init.weight("head.weight".into(), width, classes)?,
                init.zeros("head.bias".into(), classes)?,
            ),
        };
        Ok(Model {
            body,
            head,
            store,
            image,
            groups,
        })
    }

    /// Logits `[B, classes]` for `x` `[B, features]` (images channel-last: features ordered h, w, c).
    pub fn forward(&mut self, x: &Tensor, train: bool, rng: &mut Rng) -> Result<Tensor> {
        assert_eq!(self.groups, None, "a grouped network takes forward_grouped");
        self.run(x, train, std::slice::from_mut(rng), None)
    }

    /// Logits `[G·B, classes]` of a grouped network for `x` `[G·B, features]`: group i's rows are block i,
    /// of which the first `grp.rows[i]` are real and the rest padding; `rngs[i]` is group i's dropout stream.
    pub fn forward_grouped(
        &mut self,
        x: &Tensor,
        train: bool,
        rngs: &mut [Rng],
        grp: &ops::Groups,
    ) -> Result<Tensor> {
        assert_eq!(
            self.groups,
            Some(grp.g),
            "groups of the network and of the batch"
        );
        self.run(x, train, rngs, Some(grp))
    }

    /// Groups of a grouped network (`None` for a plain one).
    pub fn groups(&self) -> Option<usize> {
        self.groups
    }

    fn run(
        &mut self,
        x: &Tensor,
        train: bool,
        rngs: &mut [Rng],
        grp: Option<&ops::Groups>,
    ) -> Result<Tensor> {
        let feats = match &mut self.body {
            Body::Chain(body) => body.run(x, self.image, train, rngs, grp)?,
            Body::Cell(body) => body.run(x, self.image, train, grp)?,
        };
        match &self.head {
            Head::Dense(w, b) => ops::dense(&feats, w, b, grp),
            Head::Text(stem) => stem.forward(&feats, train, rngs),
        }
    }

    /// Multiplies the logits by `f` (its last layer's parameters scaled: the head is affine in them).
    pub fn scale_logits(&mut self, f: f64) -> Result<()> {
        if f == 1.0 {
            return Ok(());
        }
        let vars = match &self.head {
            Head::Dense(w, b) => vec![w, b],
            Head::Text(stem) => stem.linear_vars(),
        };
        for v in vars {
            v.set(&(v.as_tensor() * f)?)?;
        }
        Ok(())
    }

    /// The device the network lives on.
    pub fn device(&self) -> Device {
        self.store.vars[0].1.device().clone()
    }

    /// Every trainable variable.
    pub fn vars(&self) -> Vec<Var> {
        self.store.vars.iter().map(|(_, v)| v.clone()).collect()
    }

    /// Every batch norm, in a fixed order.
    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        let mut out = Vec::new();
        match &mut self.body {
            Body::Chain(body) => body.batch_norms(&mut out),
            Body::Cell(body) => body.batch_norms(&mut out),
        }
        out
    }

    /// Parameters and batch-norm running statistics by name, for export.
    pub fn tensors(&mut self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .store
            .vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        for bn in self.batch_norms() {
            out.push((format!("{}.running_mean", bn.name), bn.mean.clone()));
            out.push((format!("{}.running_var", bn.name), bn.var.clone()));
        }
        out
    }

    /// Sets every parameter and running statistic from `tensors` (as written by [`Model::tensors`]); a
    /// missing name or a shape that differs is an error naming it.
    pub fn load_tensors(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> anyhow::Result<()> {
        let get = |name: &str, like: &Tensor| -> anyhow::Result<Tensor> {
            let t = tensors
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("no tensor `{name}`"))?;
            if t.dims() != like.dims() {
                anyhow::bail!(
                    "tensor `{name}` has shape {:?}, the network needs {:?}",
                    t.dims(),
                    like.dims()
                );
            }
            Ok(t.to_dtype(like.dtype())?)
        };
        for (name, var) in &self.store.vars {
            var.set(&get(name, var.as_tensor())?)?;
        }
        for bn in self.batch_norms() {
            bn.mean = get(&format!("{}.running_mean", bn.name), &bn.mean)?;
            bn.var = get(&format!("{}.running_var", bn.name), &bn.var)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The linear model over text (a chain of no block) is its head alone: the dense inputs times a matrix,
    /// plus each text input's table rows named by its ids times their weights, plus the bias; scaling its
    /// logits scales all of those.
    #[test]
    fn the_linear_model_over_text_is_its_text_head() {
        let mut e = space::Experiment::default();
        e.space.block = Some(space::BlockKind::Dense);
        e.space.depth = Some(vec![0, 1]);
        let def = SpaceDef::from_spec(&e.space).unwrap();
        let input = InputInfo {
            features: 2 + 6,
            shape: None,
            classes: 3,
            text: vec![space::TextInput {
                column: "t".into(),
                len: 3,
                vocab: 5,
                tokens: space::encoding::Tokens::Words,
                weighted: true,
                seq: 0,
            }],
        };
        let arch = def.parse("linear").unwrap();
        let mut rng = Rng::derive(1, "init", &[]);
        let mut m = Model::new(&def, &arch, &input, &mut rng, DType::F32, &Device::Cpu).unwrap();
        let names: Vec<&str> = m.store.vars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["head.weight", "head.text0", "head.bias"]);
        let get = |i: usize| m.store.vars[i].1.as_tensor().to_vec2::<f32>();
        let (w, table) = (get(0).unwrap(), get(1).unwrap());
        let bias = m.store.vars[2].1.as_tensor().to_vec1::<f32>().unwrap();
        // Dense 0.5, -1; ids 2, 4 and a pad, weights 0.6, 0.8.
        let row = [0.5f32, -1.0, 2.0, 4.0, 0.0, 0.6, 0.8, 0.0];
        let x = Tensor::new(&row[..], &Device::Cpu)
            .unwrap()
            .reshape((1, 8))
            .unwrap();
        let got = m
            .forward(&x, false, &mut rng)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for k in 0..3 {
            let want = 0.5 * w[0][k] - w[1][k] + 0.6 * table[2][k] + 0.8 * table[4][k] + bias[k];
            assert!((got[0][k] - want).abs() < 1e-6, "{got:?} class {k}: {want}");
        }
        // Scaling the logits scales the head's parameters, so the output.
        m.scale_logits(0.5).unwrap();
        let half = m
            .forward(&x, false, &mut rng)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for k in 0..3 {
            assert!(
                (half[0][k] - 0.5 * got[0][k]).abs() < 1e-6,
                "{half:?} {got:?}"
            );
        }
    }

    /// Convolutions over words without a dense block: they enter the head beside the bags. A text's logits
    /// do not depend on how many padding slots follow its words (the padding is never read, or zero on the
    /// candle path, and never wins the maximum), nor on the path, and scaling the logits leaves the
    /// convolutions alone.
    #[test]
    fn word_convolutions_ignore_padding_and_feed_the_head() {
        let mut e = space::Experiment::default();
        e.space.block = Some(space::BlockKind::Dense);
        e.space.depth = Some(vec![0, 2]);
        e.space.kernel = Some(vec![3]);
        e.space.dilation = Some(vec![2]);
        e.space.width = Some(vec![3, 4]);
        let def = SpaceDef::from_spec(&e.space).unwrap();
        let input = |seq: usize| InputInfo {
            features: 1 + 4 + seq,
            shape: None,
            classes: 2,
            text: vec![space::TextInput {
                column: "t".into(),
                len: 2,
                vocab: 6,
                tokens: space::encoding::Tokens::Words,
                weighted: true,
                seq,
            }],
        };
        let arch = def.parse("conv4x3-relu-d2/conv3x3-silu-res-d2").unwrap();
        let logits = |seq: usize, scale: f64| {
            let mut rng = Rng::derive(1, "init", &[]);
            let mut m =
                Model::new(&def, &arch, &input(seq), &mut rng, DType::F64, &Device::Cpu).unwrap();
            m.scale_logits(scale).unwrap();
            // A number, the bag (ids 2, 3 with weights), the words 4, 1 (unknown), 3, then padding.
            let mut row = vec![0.5f64, 2.0, 3.0, 0.6, 0.8, 4.0, 1.0, 3.0];
            row.resize(1 + 4 + seq, 0.0);
            let x = Tensor::from_vec(row, (1, 1 + 4 + seq), &Device::Cpu).unwrap();
            let names: Vec<String> = m.store.vars.iter().map(|(n, _)| n.clone()).collect();
            let y = m
                .forward(&x, false, &mut rng)
                .unwrap()
                .to_vec2::<f64>()
                .unwrap();
            (y[0].clone(), names)
        };
        let (four, names) = logits(4, 1.0);
        assert_eq!(
            names,
            [
                "head.weight",
                "head.text0",
                "words0.embed",
                "words0.block0.weight",
                "words0.block0.bias",
                "words0.block1.weight",
                "words0.block1.bias",
                "words0.block1.proj",
                "head.words0",
                "head.bias"
            ]
        );
        let (nine, _) = logits(9, 1.0);
        // The candle ops (a GPU's) mask the padding instead of skipping it: the same logits.
        let (candle, _) = crate::ops::with_candle_ops(|| logits(9, 1.0));
        for k in 0..2 {
            assert!((four[k] - nine[k]).abs() < 1e-12, "{four:?} {nine:?}");
            assert!((four[k] - candle[k]).abs() < 1e-12, "{four:?} {candle:?}");
        }
        // The head is linear in the pooled words, so halving its parameters halves the logits.
        let (half, _) = logits(4, 0.5);
        for k in 0..2 {
            assert!((half[k] - 0.5 * four[k]).abs() < 1e-12, "{half:?} {four:?}");
        }
    }
}
