//! One walk over an exported network that gives both foreign forms of it: the ONNX graph (nodes and
//! initializers) and the PyTorch state dict. Parameters get PyTorch's names and layouts (`blocks.0.conv.weight`
//! `[Cout, Cin, K, K]`, `head.weight` `[classes, features]`, batch norm `weight`/`bias`/`running_mean`/
//! `running_var`), and the ONNX initializers carry the same names, so the two exports name every tensor alike.
//! The module structure that these names assume is `model.py`'s; the forward pass mirrors `nn::model`.

use crate::onnx_proto::{attribute_type, data_type, AttributeProto, NodeProto, TensorProto};
use anyhow::{anyhow, bail, Result};
use space::{Act, Arch, CellOp, ModelFile, Pool, SpaceDef};
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
type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

struct Walk<'a> {
    ours: &'a Tensors,
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
        ..Default::default()
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
        self.out.params.push(Param {
            name: name.clone(),
            dims,
            data,
        });
        name
    }

    fn constant(&mut self, v: f32) -> String {
        let name = format!("const{}", self.out.constants.len());
        self.out.constants.push(tensor(&name, &[], vec![v]));
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
        let w = self.take(&format!("{ours}.weight"), &[k * k * cin, cout])?;
        let mut t = vec![0f32; w.len()];
        for co in 0..cout {
            for ci in 0..cin {
                for tap in 0..k * k {
                    t[(co * cin + ci) * k * k + tap] = w[(tap * cin + ci) * cout + co];
                }
            }
        }
        let wn = self.param(format!("{torch}.weight"), vec![cout, cin, k, k], t);
        let mut inputs = vec![x.to_string(), wn];
        if bias {
            let b = self.take(&format!("{ours}.bias"), &[cout])?.to_vec();
            inputs.push(self.param(format!("{torch}.bias"), vec![cout], b));
        }
        let p = k / 2;
        let attrs = vec![
            ints("kernel_shape", &[k, k]),
            ints("strides", &[stride, stride]),
            ints("pads", &[p, p, p, p]),
        ];
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.node("Conv", &refs, attrs))
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
        self.out.batch_norms.push(torch.to_string());
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Ok(self.node(
            "BatchNormalization",
            &refs,
            vec![float("epsilon", BN_EPS)],
        ))
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

    fn pool(&mut self, x: &str, op: &str, k: usize, pad: usize) -> String {
        let mut attrs = vec![
            ints("kernel_shape", &[k, k]),
            ints("strides", &[if k == 2 { 2 } else { 1 }; 2]),
            ints("pads", &[pad; 4]),
        ];
        if op == "AveragePool" {
            attrs.push(int("count_include_pad", 0));
        }
        self.node(op, &[x], attrs)
    }
}

/// Lowers the network of `file` with our tensors `ours`.
pub(crate) fn lower(file: &ModelFile, ours: &Tensors) -> Result<Lowered> {
    let def = SpaceDef::from_spec(&file.space)?;
    let arch = def.parse(&file.arch)?;
    let input = &file.input;
    let input_dims = match input.shape {
        Some(s) => s.to_vec(),
        None => vec![input.features],
    };
    let mut g = Walk {
        ours,
        out: Lowered {
            nodes: Vec::new(),
            constants: Vec::new(),
            params: Vec::new(),
            batch_norms: Vec::new(),
            input_dims: input_dims.clone(),
        },
    };
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
    if file.feature_mean.len() != input.features || file.feature_std.len() != input.features {
        bail!("the input normalisation has not one value per feature");
    }
    let mean = g.param("mean".into(), input_dims.clone(), from_network(&file.feature_mean));
    let std = g.param("std".into(), input_dims.clone(), from_network(&file.feature_std));
    let centred = g.node("Sub", &["input", &mean], vec![]);
    let mut x = g.node("Div", &[&centred, &std], vec![]);
    let classes = input.classes;
    match (&def, &arch) {
        (SpaceDef::Chain(cs), Arch::Chain(blocks)) => {
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
                    y = g.pool(&y, op, 2, 0);
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
        }
        (SpaceDef::Cell(cs), Arch::Cell(cell)) => {
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
                        for (j, inp) in vals.clone().iter().enumerate().take(i) {
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
                                    let cv = g.conv(
                                        &r,
                                        &ours,
                                        &format!("{torch}.conv"),
                                        kk,
                                        1,
                                        ch,
                                        ch,
                                        false,
                                    )?;
                                    g.bn(&cv, &format!("{ours}.bn"), &format!("{torch}.bn"), ch)?
                                }
                                CellOp::AvgPool3x3 => g.pool(inp, "AveragePool", 3, 1),
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
        }
        _ => bail!("the architecture does not belong to the model's space"),
    }
    let last = g.out.nodes.last_mut().expect("a network has nodes");
    debug_assert_eq!(last.output[0], x);
    last.output[0] = "logits".into();
    last.name = "logits".into();
    Ok(g.out)
}
