//! One walk over an exported network that gives both foreign forms of it: the ONNX graph (nodes and
//! initializers) and the PyTorch state dict. Parameters get PyTorch's names and layouts (`blocks.0.conv.weight`
//! `[Cout, Cin, K, K]`, `head.weight` `[classes, features]`, batch norm `weight`/`bias`/`running_mean`/
//! `running_var`), and the ONNX initializers carry the same names, so the two exports name every tensor alike.
//! The module structure that these names assume is `model.py`'s; the forward pass mirrors `nn::model`.

mod cell;
mod chain;

use crate::onnx_proto::{attribute_type, data_type, AttributeProto, NodeProto, TensorProto};
use anyhow::{anyhow, bail, Result};
use space::{Act, Arch, ModelFile, SpaceDef};
use std::collections::HashMap;

/// Batch-norm epsilon of `nn::model`.
const BN_EPS: f32 = 1e-5;

/// A parameter or buffer in PyTorch's name and layout.
pub(crate) struct Param {
    pub name: String,
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

/// The network in both forms.
pub(crate) struct Lowered {
    /// ONNX nodes, in execution order; the graph input is `input`, the last node writes `logits`.
    pub nodes: Vec<NodeProto>,
    /// ONNX-only constants (scalars of the GELU formula, …).
    pub constants: Vec<TensorProto>,
    /// Parameters and buffers: the ONNX initializers and the PyTorch state dict.
    pub params: Vec<Param>,
    /// PyTorch batch-norm modules (each also has an integer `num_batches_tracked` buffer).
    pub batch_norms: Vec<String>,
    /// Input dimensions after the batch: `[C, H, W]` for images, `[features]` for tables.
    pub input_dims: Vec<usize>,
}

/// Our tensors by name: dimensions and values.
pub(crate) type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

struct Walk<'a> {
    ours: &'a Tensors,
    /// What every parameter's name starts with: empty, or `members.I.` for an ensemble's network I.
    prefix: String,
    out: Lowered,
}

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints: v.iter().map(|&x| x as i64).collect(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i: v,
        ..Default::default()
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRING,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::FLOAT,
        f: v,
        ..Default::default()
    }
}

/// A float tensor proto.
pub(crate) fn tensor(name: &str, dims: &[usize], data: Vec<f32>) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: data_type::FLOAT,
        float_data: data,
        name: name.into(),
    }
}

impl Walk<'_> {
    /// Our tensor `name`, checked to have `dims`.
    fn take(&self, name: &str, dims: &[usize]) -> Result<&[f32]> {
        let (d, v) = self
            .ours
            .get(name)
            .ok_or_else(|| anyhow!("the weights have no tensor `{name}`"))?;
        if d.as_slice() != dims {
            bail!("tensor `{name}` has shape {d:?}, the architecture needs {dims:?}");
        }
        Ok(v)
    }

    fn param(&mut self, name: String, dims: Vec<usize>, data: Vec<f32>) -> String {
        let name = format!("{}{name}", self.prefix);
        self.out.params.push(Param {
            name: name.clone(),
            dims,
            data,
        });
        name
    }

    fn constant(&mut self, v: f32) -> String {
        self.tensor_constant(&[], vec![v])
    }

    /// An ONNX-only float constant of `dims` (not a parameter: PyTorch's module does not hold it).
    fn tensor_constant(&mut self, dims: &[usize], data: Vec<f32>) -> String {
        let name = format!("const{}", self.out.constants.len());
        self.out.constants.push(tensor(&name, dims, data));
        name
    }

    /// Appends an `op` node reading `inputs`; returns its output's name.
    fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let out = format!("{}_{}", op.to_lowercase(), self.out.nodes.len());
        self.out.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op.into(),
            attribute,
        });
        out
    }

    /// A k×k convolution (padding k/2) of ours (`[K·K·Cin, Cout]`, rows tap-major then input channel) as
    /// PyTorch's `[Cout, Cin, K, K]`, named `torch`.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        x: &str,
        ours: &str,
        torch: &str,
        k: usize,
        stride: usize,
        cin: usize,
        cout: usize,
        bias: bool,
    ) -> Result<String> {
        let mut inputs = vec![x.to_string()];
        inputs.extend(self.conv_params(ours, torch, &[k, k], (cin, cout), bias)?);
        let p = k / 2;
        let attrs = vec![
            ints("kernel_shape", &[k, k]),
            ints("strides", &[stride, stride]),
            ints("pads", &[p, p, p, p]),
        ];
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.node("Conv", &refs, attrs))
    }

    /// A convolution's parameters: ours `{ours}.weight` (`[taps·Cin, Cout]`, rows tap-major then input
    /// channel, the taps of a window of `kernel` dims) as PyTorch's `[Cout, Cin, kernel…]` named
    /// `{torch}.weight`, and, with `bias`, `{ours}.bias` as `{torch}.bias`: their names, in `Conv`'s order.
    fn conv_params(
        &mut self,
        ours: &str,
        torch: &str,
        kernel: &[usize],
        (cin, cout): (usize, usize),
        bias: bool,
    ) -> Result<Vec<String>> {
        let taps: usize = kernel.iter().product();
        let w = self.take(&format!("{ours}.weight"), &[taps * cin, cout])?;
        let mut t = vec![0f32; w.len()];
        for co in 0..cout {
            for ci in 0..cin {
                for tap in 0..taps {
                    t[(co * cin + ci) * taps + tap] = w[(tap * cin + ci) * cout + co];
                }
            }
        }
        let dims = [&[cout, cin][..], kernel].concat();
        let mut names = vec![self.param(format!("{torch}.weight"), dims, t)];
        if bias {
            let b = self.take(&format!("{ours}.bias"), &[cout])?.to_vec();
            names.push(self.param(format!("{torch}.bias"), vec![cout], b));
        }
        Ok(names)
    }

    /// A linear layer: ours `[in, out]` (rows reordered by `rows`, when given) as PyTorch's `[out, in]`.
    fn linear(
        &mut self,
        x: &str,
        ours: (&str, Option<&str>),
        torch: &str,
        fan: (usize, usize),
        rows: Option<&[usize]>,
    ) -> Result<String> {
        let (fin, fout) = fan;
        let w = self.take(ours.0, &[fin, fout])?;
        let mut t = vec![0f32; w.len()];
        for o in 0..fout {
            for i in 0..fin {
                let from = rows.map_or(i, |r| r[i]);
                t[o * fin + i] = w[from * fout + o];
            }
        }
        let wn = self.param(format!("{torch}.weight"), vec![fout, fin], t);
        let mut inputs = vec![x.to_string(), wn];
        if let Some(b) = ours.1 {
            let b = self.take(b, &[fout])?.to_vec();
            inputs.push(self.param(format!("{torch}.bias"), vec![fout], b));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(match refs.len() {
            3 => self.node("Gemm", &refs, vec![int("transB", 1)]),
            _ => {
                let wt = self.node("Transpose", &refs[1..], vec![ints("perm", &[1, 0])]);
                self.node("MatMul", &[x, &wt], vec![])
            }
        })
    }

    /// Batch norm in inference mode with ours `{ours}.gamma`, `.beta`, `.running_mean`, `.running_var`.
    fn bn(&mut self, x: &str, ours: &str, torch: &str, c: usize) -> Result<String> {
        let mut names = vec![x.to_string()];
        for (o, t) in [
            ("gamma", "weight"),
            ("beta", "bias"),
            ("running_mean", "running_mean"),
            ("running_var", "running_var"),
        ] {
            let v = self.take(&format!("{ours}.{o}"), &[c])?.to_vec();
            names.push(self.param(format!("{torch}.{t}"), vec![c], v));
        }
        self.out.batch_norms.push(format!("{}{torch}", self.prefix));
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Ok(self.node("BatchNormalization", &refs, vec![float("epsilon", BN_EPS)]))
    }

    fn act(&mut self, x: &str, a: Act) -> String {
        match a {
            Act::Relu => self.node("Relu", &[x], vec![]),
            Act::Tanh => self.node("Tanh", &[x], vec![]),
            Act::Silu => {
                let s = self.node("Sigmoid", &[x], vec![]);
                self.node("Mul", &[x, &s], vec![])
            }
            Act::Gelu => {
                // candle's GELU, the tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
                let (c3, k, half, one) = (
                    self.constant(0.044715),
                    self.constant((2.0 / std::f32::consts::PI).sqrt()),
                    self.constant(0.5),
                    self.constant(1.0),
                );
                let x2 = self.node("Mul", &[x, x], vec![]);
                let x3 = self.node("Mul", &[&x2, x], vec![]);
                let a = self.node("Mul", &[&x3, &c3], vec![]);
                let inner = self.node("Add", &[x, &a], vec![]);
                let scaled = self.node("Mul", &[&inner, &k], vec![]);
                let t = self.node("Tanh", &[&scaled], vec![]);
                let t1 = self.node("Add", &[&t, &one], vec![]);
                let hx = self.node("Mul", &[x, &half], vec![]);
                self.node("Mul", &[&hx, &t1], vec![])
            }
        }
    }

    /// A k×k pooling `op` (`MaxPool` or `AveragePool`; padded cells not counted in averages).
    fn pool(&mut self, x: &str, op: &str, k: usize, stride: usize, pad: usize) -> String {
        let mut attrs = vec![
            ints("kernel_shape", &[k, k]),
            ints("strides", &[stride, stride]),
            ints("pads", &[pad; 4]),
        ];
        if op == "AveragePool" {
            attrs.push(int("count_include_pad", 0));
        }
        self.node(op, &[x], attrs)
    }
}

/// One network of a model to lower: its architecture, our tensors, its weight in an ensemble.
pub(crate) type Net<'a> = (&'a Arch, Tensors, f32);

/// The model's networks in both forms: one network, or an ensemble whose graph averages its networks'
/// class probabilities (`Softmax`, weighted `Sum`) and gives their logarithm as `logits`; its parameters
/// are named `members.I.…`, as `model.py`'s `Ensemble` holds them.
pub(crate) fn lower(file: &ModelFile, def: &SpaceDef, nets: &[Net]) -> Result<Lowered> {
    let input = &file.input;
    let input_dims = match input.shape {
        Some(s) => s.to_vec(),
        None => vec![input.features],
    };
    if file.feature_mean.len() != input.features || file.feature_std.len() != input.features {
        bail!("the input normalisation has not one value per feature");
    }
    let empty = Tensors::new();
    let mut g = Walk {
        ours: &empty,
        prefix: String::new(),
        out: Lowered {
            nodes: Vec::new(),
            constants: Vec::new(),
            params: Vec::new(),
            batch_norms: Vec::new(),
            input_dims,
        },
    };
    let mut probs = Vec::new();
    for (i, (arch, ours, weight)) in nets.iter().enumerate() {
        g.ours = ours;
        if nets.len() > 1 {
            g.prefix = format!("members.{i}.");
        }
        let x = network(&mut g, file, def, arch)?;
        if nets.len() > 1 {
            let p = g.node("Softmax", &[&x], vec![int("axis", 1)]);
            let w = g.constant(*weight);
            probs.push(g.node("Mul", &[&p, &w], vec![]));
        }
    }
    if nets.len() > 1 {
        let refs: Vec<&str> = probs.iter().map(String::as_str).collect();
        let sum = g.node("Sum", &refs, vec![]);
        g.node("Log", &[&sum], vec![]);
    }
    let last = g.out.nodes.last_mut().expect("a network has nodes");
    last.output[0] = "logits".into();
    last.name = "logits".into();
    Ok(g.out)
}

/// One network, from the graph's `input` to its logits (the name returned): the input normalisation, then
/// the architecture.
fn network(g: &mut Walk, file: &ModelFile, def: &SpaceDef, arch: &Arch) -> Result<String> {
    let input = &file.input;
    // Input normalisation: our mean and std are in the network's layout (h, w, c for images); the input and
    // the buffers are in the data's (c, h, w).
    let from_network = |v: &[f32]| -> Vec<f32> {
        match input.shape {
            Some([c, h, w]) => {
                let mut t = vec![0f32; v.len()];
                for ci in 0..c {
                    for p in 0..h * w {
                        t[ci * h * w + p] = v[p * c + ci];
                    }
                }
                t
            }
            None => v.to_vec(),
        }
    };
    let dims = g.out.input_dims.clone();
    let mean = g.param(
        "mean".into(),
        dims.clone(),
        from_network(&file.feature_mean),
    );
    let std = g.param("std".into(), dims, from_network(&file.feature_std));
    let centred = g.node("Sub", &["input", &mean], vec![]);
    let x = g.node("Div", &[&centred, &std], vec![]);
    match (def, arch) {
        (SpaceDef::Chain(cs), Arch::Chain(blocks)) => chain::lower(g, cs, blocks, input, x),
        (SpaceDef::Cell(cs), Arch::Cell(cell)) => cell::lower(g, cs, cell, input, x),
        _ => bail!("the architecture does not belong to the model's space"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`lower`] of a model file, its space and architecture built here.
    fn lower_file(file: &ModelFile, t: &Tensors) -> Result<Lowered> {
        let def = SpaceDef::from_spec(&file.space)?;
        let arch = def.parse(&file.arch)?;
        lower(file, &def, &[(&arch, t.clone(), 1.0)])
    }
    use candle_core::{DType, Device};
    use space::{InputInfo, Rng};
    use std::collections::HashSet;

    /// A model file and freshly initialised tensors for `arch` in the space of the `[space]` TOML `spec`.
    /// Chain specs allow every choice the tests use.
    fn model(
        spec: &str,
        arch: &str,
        shape: Option<[usize; 3]>,
        features: usize,
    ) -> (ModelFile, Tensors) {
        let chain = "\ndepth = [1, 3]\nwidth = [2, 4, 6, 8, 16]\nactivation = [\"relu\", \"gelu\", \"tanh\", \"silu\"]\n\
                     batch_norm = [false, true]\ndropout = [0.0, 0.1]\nresidual = [false, true]\n";
        let conv = "kernel = [1, 3, 5]\npool = [\"none\", \"max\", \"avg\"]\n";
        let spec = match spec {
            "block = \"dense\"" => format!("{spec}{chain}"),
            "block = \"conv\"" => format!("{spec}{chain}{conv}"),
            _ => spec.to_string(),
        };
        let space: space::experiment::SpaceSpec = toml::from_str(&spec).unwrap();
        let def = SpaceDef::from_spec(&space).unwrap();
        let input = InputInfo {
            features,
            shape,
            classes: 3,
            text: Vec::new(),
        };
        let a = def.parse(arch).unwrap();
        let mut rng = Rng::derive(1, "test", &[]);
        let mut m = nn::Model::new(&def, &a, &input, &mut rng, DType::F32, &Device::Cpu).unwrap();
        let file = ModelFile {
            version: space::MODEL_VERSION,
            kind: "nas.model".into(),
            id: 7,
            arch: arch.into(),
            input,
            class_names: vec!["a".into(), "b".into(), "c".into()],
            columns: Vec::new(),
            feature_mean: vec![0.5; features],
            feature_std: vec![2.0; features],
            train_accuracy: 1.0,
            weights: "weights.safetensors".into(),
            label: "y".into(),
            space,
            members: Vec::new(),
        };
        (file, crate::our_tensors(&mut m).unwrap())
    }

    /// Every node reads only the input, initializers, constants and outputs of earlier nodes; the last node
    /// writes `logits`; every parameter name is unique.
    fn assert_well_formed(l: &Lowered) {
        let mut defined: HashSet<String> = l.params.iter().map(|p| p.name.clone()).collect();
        assert_eq!(defined.len(), l.params.len(), "duplicate parameter names");
        defined.extend(l.constants.iter().map(|c| c.name.clone()));
        defined.insert("input".into());
        for n in &l.nodes {
            for i in &n.input {
                assert!(defined.contains(i), "{} reads undefined {i}", n.name);
            }
            defined.extend(n.output.iter().cloned());
        }
        assert_eq!(l.nodes.last().unwrap().output, vec!["logits".to_string()]);
    }

    #[test]
    fn every_family_lowers_to_a_graph_whose_nodes_read_only_earlier_values() {
        for (spec, arch, shape, f) in [
            (
                "block = \"dense\"",
                "fc16-gelu-bn-drop0.1-res/fc8-silu-res",
                None,
                5,
            ),
            (
                "block = \"conv\"",
                "conv4x3-relu-bn-maxpool-res/conv6x5-tanh-avgpool",
                Some([2, 5, 5]),
                50,
            ),
            ("block = \"dense\"", "fc4-relu", Some([2, 3, 3]), 18),
            (
                "family = \"cell\"\nchannels = 4\nstages = 2",
                "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|none~2|",
                Some([3, 6, 6]),
                108,
            ),
            (
                "family = \"cell\"\nchannels = 4\nstages = 2",
                "|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|",
                Some([3, 6, 6]),
                108,
            ),
        ] {
            let (file, t) = model(spec, arch, shape, f);
            let l = lower_file(&file, &t).unwrap();
            assert_well_formed(&l);
            // Every tensor of ours is in the export, under another name and maybe another layout.
            let ours: usize = t.values().map(|(_, v)| v.len()).sum();
            let theirs: usize = l.params.iter().map(|p| p.data.len()).sum::<usize>() - 2 * f;
            assert_eq!(ours, theirs, "{arch}");
        }
    }

    #[test]
    fn conv_weights_become_cout_cin_ky_kx_and_the_head_reads_channels_first() {
        let (file, mut t) = model("block = \"conv\"", "conv2x3-relu", Some([2, 2, 2]), 8);
        // Ours: row (ky·3 + kx)·Cin + ci, column co. Give each entry its own value.
        let w: Vec<f32> = (0..9 * 2 * 2).map(|i| i as f32).collect();
        t.insert("block0.conv.weight".into(), (vec![18, 2], w.clone()));
        // Head rows in (h, w, c) order: row (p·2 + c) for position p, channel c.
        let head: Vec<f32> = (0..8 * 3).map(|i| i as f32).collect();
        t.insert("head.weight".into(), (vec![8, 3], head.clone()));
        let l = lower_file(&file, &t).unwrap();
        let p = |n: &str| l.params.iter().find(|p| p.name == n).unwrap();
        let tw = p("blocks.0.conv.weight");
        assert_eq!(tw.dims, vec![2, 2, 3, 3]);
        // co = 1, ci = 0, ky = 2, kx = 1: ours row (2·3 + 1)·2 + 0 = 14, column 1.
        assert_eq!(tw.data[(2 * 3 + 2) * 3 + 1], w[14 * 2 + 1]);
        let th = p("head.weight");
        assert_eq!(th.dims, vec![3, 8]);
        // class 2, channel 1, position 3 (PyTorch column 1·4 + 3): ours row 3·2 + 1 = 7.
        assert_eq!(th.data[2 * 8 + 7], head[7 * 3 + 2]);
        // Input normalisation buffers are channels first too, and named as in model.py.
        assert_eq!(p("mean").dims, vec![2, 2, 2]);
    }

    #[test]
    fn a_missing_or_misshapen_tensor_is_named() {
        let (file, mut t) = model("block = \"dense\"", "fc4-relu-bn", None, 3);
        t.remove("block0.bn.running_var");
        let e = lower_file(&file, &t).err().unwrap().to_string();
        assert!(e.contains("`block0.bn.running_var`"), "{e}");
        let (file, mut t) = model("block = \"dense\"", "fc4-relu", None, 3);
        t.insert("block0.weight".into(), (vec![4, 3], vec![0.0; 12]));
        let e = lower_file(&file, &t).err().unwrap().to_string();
        assert!(e.contains("`block0.weight` has shape [4, 3]"), "{e}");
    }

    #[test]
    fn an_ensemble_holds_each_member_under_its_prefix_and_ends_in_the_log_of_the_weighted_sum() {
        let spec = "block = \"dense\"";
        let (file, a) = model(spec, "fc4-relu-bn", None, 3);
        let (_, b) = model(spec, "fc8-tanh/fc4-silu", None, 3);
        let def = SpaceDef::from_spec(&file.space).unwrap();
        let (pa, pb) = (
            def.parse("fc4-relu-bn").unwrap(),
            def.parse("fc8-tanh/fc4-silu").unwrap(),
        );
        let l = lower(
            &file,
            &def,
            &[(&pa, a.clone(), 0.75), (&pb, b.clone(), 0.25)],
        )
        .unwrap();
        assert_well_formed(&l);
        let one = lower(&file, &def, &[(&pa, a, 1.0)]).unwrap();
        for p in &one.params {
            assert!(l
                .params
                .iter()
                .any(|q| q.name == format!("members.0.{}", p.name)));
        }
        assert!(l
            .params
            .iter()
            .any(|q| q.name == "members.1.blocks.1.fc.weight"));
        assert!(l.batch_norms.contains(&"members.0.blocks.0.bn".to_string()));
        let ops: Vec<&str> = l.nodes.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops.iter().filter(|&&o| o == "Softmax").count(), 2);
        assert_eq!(ops[ops.len() - 2..], ["Sum", "Log"]);
    }
}
