//! Architectures of both families, their text notation, and the space definitions that sample, mutate,
//! cross over, list neighbours, canonicalise and measure them.

use crate::experiment::SpaceSpec;
use crate::rng::Rng;
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

/// What the network sees: flattened feature count, optional image shape `[C, H, W]`, class count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputInfo {
    /// Number of feature columns.
    pub features: usize,
    /// Image shape `[channels, height, width]`, when the features are an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<usize>>,
    /// Number of classes.
    pub classes: usize,
}

/// Activation functions of chain blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// max(0, x)
    Relu,
    /// GELU (tanh approximation)
    Gelu,
    /// tanh
    Tanh,
    /// x·sigmoid(x)
    Silu,
}

impl Act {
    /// All activations, in notation order.
    pub const ALL: [Act; 4] = [Act::Relu, Act::Gelu, Act::Tanh, Act::Silu];
    /// Notation name.
    pub fn name(self) -> &'static str {
        match self {
            Act::Relu => "relu",
            Act::Gelu => "gelu",
            Act::Tanh => "tanh",
            Act::Silu => "silu",
        }
    }
    fn parse(s: &str) -> Option<Act> {
        Act::ALL.into_iter().find(|a| a.name() == s)
    }
}

/// Pooling after a conv block (2×2, stride 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// No pooling.
    None,
    /// Max pooling.
    Max,
    /// Average pooling.
    Avg,
}

impl Pool {
    fn name(self) -> &'static str {
        match self {
            Pool::None => "none",
            Pool::Max => "max",
            Pool::Avg => "avg",
        }
    }
    fn parse(s: &str) -> Option<Pool> {
        [Pool::None, Pool::Max, Pool::Avg]
            .into_iter()
            .find(|p| p.name() == s)
    }
}

/// One block of a chain: conv(k×k, same padding) or dense, then batch norm, activation, residual add
/// (1×1 / linear projection when widths differ), pooling, dropout.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Output channels (conv) or units (dense).
    pub width: usize,
    /// Kernel size (conv); 0 for dense.
    pub kernel: usize,
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
}

impl Block {
    fn fmt(&self) -> String {
        let mut s = if self.kernel > 0 {
            format!("conv{}x{}-{}", self.width, self.kernel, self.act.name())
        } else {
            format!("fc{}-{}", self.width, self.act.name())
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
        s
    }

    fn parse(text: &str) -> Result<Block> {
        let mut toks = text.split('-');
        let head = toks.next().unwrap_or("");
        let (width, kernel) = if let Some(rest) = head.strip_prefix("conv") {
            let (w, k) = rest
                .split_once('x')
                .ok_or_else(|| anyhow!("block `{text}`: expected convWxK"))?;
            (
                w.parse()
                    .map_err(|_| anyhow!("block `{text}`: bad width"))?,
                k.parse()
                    .map_err(|_| anyhow!("block `{text}`: bad kernel"))?,
            )
        } else if let Some(w) = head.strip_prefix("fc") {
            (
                w.parse()
                    .map_err(|_| anyhow!("block `{text}`: bad width"))?,
                0,
            )
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
            } else {
                bail!("block `{text}`: unknown token `{t}`");
            }
        }
        Ok(b)
    }
}

/// Operations on the edges of a NAS-Bench-201 cell.
pub const CELL_OPS: [&str; 5] = [
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
];

/// A NAS-Bench-201-style cell: `ops[edge]` indexes [`CELL_OPS`]; edges ordered (1←0), (2←0), (2←1), (3←0)…
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    /// Number of nodes.
    pub nodes: usize,
    /// One op per edge.
    pub ops: Vec<usize>,
}

/// Index of edge (to ← from) in [`Cell::ops`].
pub fn edge_index(to: usize, from: usize) -> usize {
    to * (to - 1) / 2 + from
}

impl Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        for i in 1..self.nodes {
            if i > 1 {
                f.write_char('+')?;
            }
            f.write_char('|')?;
            for j in 0..i {
                f.write_str(CELL_OPS[self.ops[edge_index(i, j)]])?;
                f.write_char('~')?;
                match char::from_digit(j as u32, 10) {
                    Some(d) => f.write_char(d)?,
                    None => write!(f, "{j}")?,
                }
                f.write_char('|')?;
            }
        }
        Ok(())
    }

    fn parse(text: &str) -> Result<Cell> {
        let nodes_txt: Vec<&str> = text.split('+').collect();
        let nodes = nodes_txt.len() + 1;
        let mut ops = vec![0; nodes * (nodes - 1) / 2];
        for (k, nt) in nodes_txt.iter().enumerate() {
            let i = k + 1;
            let inner = nt
                .strip_prefix('|')
                .and_then(|s| s.strip_suffix('|'))
                .ok_or_else(|| anyhow!("cell node {i} `{nt}`: expected |op~j|...|"))?;
            let edges: Vec<&str> = inner.split('|').collect();
            if edges.len() != i {
                bail!(
                    "cell node {i}: expected {i} incoming edges, found {}",
                    edges.len()
                );
            }
            for (j, e) in edges.iter().enumerate() {
                let (op, from) = e
                    .split_once('~')
                    .ok_or_else(|| anyhow!("cell edge `{e}`: expected op~j"))?;
                if from.parse::<usize>().ok() != Some(j) {
                    bail!("cell edge `{e}`: expected source node {j}");
                }
                let o = CELL_OPS
                    .iter()
                    .position(|x| *x == op)
                    .ok_or_else(|| anyhow!("cell edge `{e}`: unknown op `{op}`"))?;
                ops[edge_index(i, j)] = o;
            }
        }
        Ok(Cell { nodes, ops })
    }

    /// The cell with every edge that cannot carry signal from the input to the output set to `none`.
    pub fn canonical(&self) -> Cell {
        let n = self.nodes;
        let mut from_in = vec![false; n];
        from_in[0] = true;
        for i in 1..n {
            from_in[i] = (0..i).any(|j| from_in[j] && self.ops[edge_index(i, j)] != 0);
        }
        let mut to_out = vec![false; n];
        to_out[n - 1] = true;
        for j in (0..n - 1).rev() {
            to_out[j] = (j + 1..n).any(|i| to_out[i] && self.ops[edge_index(i, j)] != 0);
        }
        let mut c = self.clone();
        for i in 1..n {
            for j in 0..i {
                if !(from_in[j] && to_out[i]) {
                    c.ops[edge_index(i, j)] = 0;
                }
            }
        }
        c
    }
}

/// An architecture of either family.
#[derive(Clone, Debug, PartialEq)]
pub enum Arch {
    /// A sequence of blocks.
    Chain(Vec<Block>),
    /// A cell stacked into a network.
    Cell(Cell),
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arch::Chain(blocks) => {
                let s: Vec<String> = blocks.iter().map(Block::fmt).collect();
                f.write_str(&s.join("/"))
            }
            Arch::Cell(c) => c.fmt(f),
        }
    }
}

/// A chain space.
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
    /// Kernel choices (conv; `[0]` for dense).
    pub kernel: Vec<usize>,
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
}

/// A cell space.
#[derive(Clone, Debug, PartialEq)]
pub struct CellSpace {
    /// Nodes per cell.
    pub nodes: usize,
    /// Allowed ops (indices into [`CELL_OPS`]).
    pub ops: Vec<usize>,
    /// Channels of the first stage.
    pub channels: usize,
    /// Cells per stage.
    pub cells_per_stage: usize,
    /// Stages.
    pub stages: usize,
}

/// A resolved search space: the type every stage uses to handle architectures.
#[derive(Clone, Debug, PartialEq)]
pub enum SpaceDef {
    /// Chain family.
    Chain(ChainSpace),
    /// Cell family.
    Cell(CellSpace),
}

fn choices<T: Clone>(key: &str, v: &Option<Vec<T>>, default: Vec<T>) -> Result<Vec<T>> {
    let v = v.clone().unwrap_or(default);
    if v.is_empty() {
        bail!("[space] {key}: the list of choices is empty");
    }
    Ok(v)
}

fn dedup<T: PartialEq>(mut v: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for x in v.drain(..) {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

impl SpaceDef {
    /// Resolves and validates the `[space]` section.
    pub fn from_spec(s: &SpaceSpec) -> Result<SpaceDef> {
        let set = |name: &str, present: bool| -> Result<()> {
            if present {
                bail!("[space] {name}: not a key of the `{}` family", s.family);
            }
            Ok(())
        };
        match s.family.as_str() {
            "chain" => {
                set("nodes", s.nodes.is_some())?;
                set("ops", s.ops.is_some())?;
                set("channels", s.channels.is_some())?;
                set("cells_per_stage", s.cells_per_stage.is_some())?;
                set("stages", s.stages.is_some())?;
                let block = s.block.clone().unwrap_or_else(|| "conv".into());
                let conv = match block.as_str() {
                    "conv" => true,
                    "dense" => false,
                    other => bail!("[space] block: unknown \"{other}\" (expected conv or dense)"),
                };
                let depth = s.depth.clone().unwrap_or(vec![1, 3]);
                if depth.len() != 2 || depth[0] == 0 || depth[0] > depth[1] || depth[1] > 32 {
                    bail!("[space] depth: expected [min, max] with 1 <= min <= max <= 32, got {depth:?}");
                }
                let width = choices(
                    "width",
                    &s.width,
                    if conv {
                        vec![8, 16, 32]
                    } else {
                        vec![32, 64, 128]
                    },
                )?;
                if width.iter().any(|&w| w == 0 || w > 4096) {
                    bail!("[space] width: each choice must be in 1..=4096, got {width:?}");
                }
                let kernel = if conv {
                    let k = choices("kernel", &s.kernel, vec![3, 5])?;
                    if k.iter().any(|&k| k % 2 == 0 || k > 15) {
                        bail!("[space] kernel: each choice must be odd and at most 15, got {k:?}");
                    }
                    k
                } else {
                    set("kernel", s.kernel.is_some())?;
                    vec![0]
                };
                let act = choices("activation", &s.activation, vec!["relu".into(), "silu".into()])?
                    .iter()
                    .map(|a| Act::parse(a).ok_or_else(|| anyhow!("[space] activation: unknown \"{a}\" (expected relu, gelu, tanh or silu)")))
                    .collect::<Result<Vec<_>>>()?;
                let pool = if conv {
                    choices("pool", &s.pool, vec!["none".into(), "max".into()])?
                        .iter()
                        .map(|p| {
                            Pool::parse(p).ok_or_else(|| {
                                anyhow!("[space] pool: unknown \"{p}\" (expected none, max or avg)")
                            })
                        })
                        .collect::<Result<Vec<_>>>()?
                } else {
                    set("pool", s.pool.is_some())?;
                    vec![Pool::None]
                };
                let bn = choices("batch_norm", &s.batch_norm, vec![false, true])?;
                let dropout = choices("dropout", &s.dropout, vec![0.0, 0.1])?;
                if dropout.iter().any(|d| !(0.0..0.95).contains(d)) {
                    bail!("[space] dropout: each choice must be in [0, 0.95), got {dropout:?}");
                }
                let res = choices("residual", &s.residual, vec![false, true])?;
                Ok(SpaceDef::Chain(ChainSpace {
                    conv,
                    min_depth: depth[0],
                    max_depth: depth[1],
                    width: dedup(width),
                    kernel: dedup(kernel),
                    act: dedup(act),
                    pool: dedup(pool),
                    bn: dedup(bn),
                    dropout: dedup(dropout),
                    res: dedup(res),
                }))
            }
            "cell" => {
                for (k, p) in [
                    ("block", s.block.is_some()),
                    ("depth", s.depth.is_some()),
                    ("width", s.width.is_some()),
                    ("kernel", s.kernel.is_some()),
                    ("activation", s.activation.is_some()),
                    ("pool", s.pool.is_some()),
                    ("batch_norm", s.batch_norm.is_some()),
                    ("dropout", s.dropout.is_some()),
                    ("residual", s.residual.is_some()),
                ] {
                    set(k, p)?;
                }
                let nodes = s.nodes.unwrap_or(4);
                if !(2..=8).contains(&nodes) {
                    bail!("[space] nodes: must be in 2..=8, got {nodes}");
                }
                let ops = choices(
                    "ops",
                    &s.ops,
                    CELL_OPS.iter().map(|s| s.to_string()).collect(),
                )?
                .iter()
                .map(|o| {
                    CELL_OPS.iter().position(|x| x == o).ok_or_else(|| {
                        anyhow!(
                            "[space] ops: unknown \"{o}\" (expected one of {})",
                            CELL_OPS.join(", ")
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
                let mut ops = dedup(ops);
                ops.sort();
                if ops == [0] {
                    bail!("[space] ops: `none` alone gives no network");
                }
                let channels = s.channels.unwrap_or(8);
                let cells_per_stage = s.cells_per_stage.unwrap_or(1);
                let stages = s.stages.unwrap_or(3);
                if channels == 0
                    || channels > 1024
                    || cells_per_stage == 0
                    || cells_per_stage > 16
                    || stages == 0
                    || stages > 5
                {
                    bail!("[space] channels, cells_per_stage, stages: must be in 1..=1024, 1..=16, 1..=5");
                }
                Ok(SpaceDef::Cell(CellSpace {
                    nodes,
                    ops,
                    channels,
                    cells_per_stage,
                    stages,
                }))
            }
            other => bail!("[space] family: unknown \"{other}\" (expected chain or cell)"),
        }
    }

    /// Number of architectures in the space (saturating), as text.
    pub fn size(&self) -> u128 {
        match self {
            SpaceDef::Chain(c) => {
                let per = [
                    c.width.len(),
                    c.kernel.len(),
                    c.act.len(),
                    c.pool.len(),
                    c.bn.len(),
                    c.dropout.len(),
                    c.res.len(),
                ]
                .iter()
                .fold(1u128, |a, &b| a.saturating_mul(b as u128));
                (c.min_depth..=c.max_depth).fold(0u128, |acc, d| {
                    acc.saturating_add(per.saturating_pow(d as u32))
                })
            }
            SpaceDef::Cell(c) => {
                (c.ops.len() as u128).saturating_pow((c.nodes * (c.nodes - 1) / 2) as u32)
            }
        }
    }

    /// Checks that the data fits the space (conv needs an image shape).
    pub fn check_input(&self, input: &InputInfo) -> Result<()> {
        let needs_image = match self {
            SpaceDef::Chain(c) => c.conv,
            SpaceDef::Cell(_) => true,
        };
        if needs_image {
            match &input.shape {
                None => bail!("[data] shape: this space has convolutions, so the data needs an image shape [channels, height, width]"),
                Some(s) if s.iter().product::<usize>() != input.features => {
                    bail!("[data] shape: {s:?} has {} values but the data has {} feature columns", s.iter().product::<usize>(), input.features)
                }
                Some(_) => {}
            }
        }
        if input.classes < 2 {
            bail!(
                "[data] label: the label column must hold at least 2 classes, found {}",
                input.classes
            );
        }
        Ok(())
    }

    /// Parses an architecture in this space's notation and checks every choice belongs to the space.
    pub fn parse(&self, text: &str) -> Result<Arch> {
        match self {
            SpaceDef::Chain(c) => {
                let blocks = text
                    .split('/')
                    .map(Block::parse)
                    .collect::<Result<Vec<_>>>()?;
                if blocks.len() < c.min_depth || blocks.len() > c.max_depth {
                    bail!(
                        "arch has {} blocks; the space allows {}..={}",
                        blocks.len(),
                        c.min_depth,
                        c.max_depth
                    );
                }
                for b in &blocks {
                    let ok = c.width.contains(&b.width)
                        && c.kernel.contains(&b.kernel)
                        && c.act.contains(&b.act)
                        && c.pool.contains(&b.pool)
                        && c.bn.contains(&b.bn)
                        && c.dropout.contains(&b.dropout)
                        && c.res.contains(&b.res);
                    if !ok {
                        bail!("block `{}` uses a choice outside the space", b.fmt());
                    }
                }
                Ok(Arch::Chain(blocks))
            }
            SpaceDef::Cell(c) => {
                let cell = Cell::parse(text)?;
                if cell.nodes != c.nodes {
                    bail!("cell has {} nodes; the space has {}", cell.nodes, c.nodes);
                }
                if let Some(o) = cell.ops.iter().find(|o| !c.ops.contains(o)) {
                    bail!("cell uses op `{}`, not in the space", CELL_OPS[*o]);
                }
                Ok(Arch::Cell(cell))
            }
        }
    }

    /// A uniformly random architecture (uniform depth, then uniform choices).
    pub fn sample(&self, rng: &mut Rng) -> Arch {
        match self {
            SpaceDef::Chain(c) => {
                let d = c.min_depth + rng.below(c.max_depth - c.min_depth + 1);
                Arch::Chain((0..d).map(|_| self.random_block(c, rng)).collect())
            }
            SpaceDef::Cell(c) => {
                let e = c.nodes * (c.nodes - 1) / 2;
                Arch::Cell(Cell {
                    nodes: c.nodes,
                    ops: (0..e).map(|_| *rng.choose(&c.ops)).collect(),
                })
            }
        }
    }

    fn random_block(&self, c: &ChainSpace, rng: &mut Rng) -> Block {
        Block {
            width: *rng.choose(&c.width),
            kernel: *rng.choose(&c.kernel),
            act: *rng.choose(&c.act),
            pool: *rng.choose(&c.pool),
            bn: *rng.choose(&c.bn),
            dropout: *rng.choose(&c.dropout),
            res: *rng.choose(&c.res),
        }
    }

    /// Every architecture one edit away: one choice changed, or (chain) a block duplicated or removed.
    pub fn neighbours(&self, arch: &Arch) -> Vec<Arch> {
        let mut out = Vec::new();
        match (self, arch) {
            (SpaceDef::Chain(c), Arch::Chain(blocks)) => {
                for i in 0..blocks.len() {
                    let b = &blocks[i];
                    let mut push = |nb: Block| {
                        let mut v = blocks.clone();
                        v[i] = nb;
                        out.push(Arch::Chain(v));
                    };
                    for &w in c.width.iter().filter(|&&w| w != b.width) {
                        push(Block {
                            width: w,
                            ..b.clone()
                        });
                    }
                    for &k in c.kernel.iter().filter(|&&k| k != b.kernel) {
                        push(Block {
                            kernel: k,
                            ..b.clone()
                        });
                    }
                    for &a in c.act.iter().filter(|&&a| a != b.act) {
                        push(Block {
                            act: a,
                            ..b.clone()
                        });
                    }
                    for &p in c.pool.iter().filter(|&&p| p != b.pool) {
                        push(Block {
                            pool: p,
                            ..b.clone()
                        });
                    }
                    for &n in c.bn.iter().filter(|&&n| n != b.bn) {
                        push(Block { bn: n, ..b.clone() });
                    }
                    for &d in c.dropout.iter().filter(|&&d| d != b.dropout) {
                        push(Block {
                            dropout: d,
                            ..b.clone()
                        });
                    }
                    for &r in c.res.iter().filter(|&&r| r != b.res) {
                        push(Block {
                            res: r,
                            ..b.clone()
                        });
                    }
                }
                if blocks.len() < c.max_depth {
                    for i in 0..blocks.len() {
                        let mut v = blocks.clone();
                        v.insert(i + 1, blocks[i].clone());
                        out.push(Arch::Chain(v));
                    }
                }
                if blocks.len() > c.min_depth {
                    for i in 0..blocks.len() {
                        let mut v = blocks.clone();
                        v.remove(i);
                        out.push(Arch::Chain(v));
                    }
                }
            }
            (SpaceDef::Cell(c), Arch::Cell(cell)) => {
                for e in 0..cell.ops.len() {
                    for &o in c.ops.iter().filter(|&&o| o != cell.ops[e]) {
                        let mut n = cell.clone();
                        n.ops[e] = o;
                        out.push(Arch::Cell(n));
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// A random one-edit mutation whose canonical key differs from the parent's (parent returned if none).
    pub fn mutate(&self, arch: &Arch, input: &InputInfo, rng: &mut Rng) -> Arch {
        let key = self.key(arch, input);
        let mut ns = self.neighbours(arch);
        rng.shuffle(&mut ns);
        ns.into_iter()
            .find(|n| self.key(n, input) != key)
            .unwrap_or_else(|| arch.clone())
    }

    /// Crossover: one-point on block lists (chain, depth kept in range) or uniform per edge (cell).
    pub fn crossover(&self, a: &Arch, b: &Arch, rng: &mut Rng) -> Arch {
        match (self, a, b) {
            (SpaceDef::Chain(c), Arch::Chain(x), Arch::Chain(y)) => {
                let i = rng.below(x.len() + 1);
                let j = rng.below(y.len() + 1);
                let mut v: Vec<Block> = x[..i].iter().chain(y[j..].iter()).cloned().collect();
                v.truncate(c.max_depth);
                let mut k = 0;
                while v.len() < c.min_depth {
                    v.push(x[k % x.len()].clone());
                    k += 1;
                }
                Arch::Chain(v)
            }
            (SpaceDef::Cell(_), Arch::Cell(x), Arch::Cell(y)) => Arch::Cell(Cell {
                nodes: x.nodes,
                ops: x
                    .ops
                    .iter()
                    .zip(&y.ops)
                    .map(|(p, q)| if rng.below(2) == 0 { *p } else { *q })
                    .collect(),
            }),
            _ => a.clone(),
        }
    }

    /// Canonical form: equal for architectures that compute the same function by construction
    /// (chain: pooling dropped where the feature map is already 1 pixel; cell: dead edges set to `none`).
    pub fn canonical(&self, arch: &Arch, input: &InputInfo) -> Arch {
        match arch {
            Arch::Chain(blocks) => {
                let (mut h, mut w) = match &input.shape {
                    Some(s) if s.len() == 3 => (s[1], s[2]),
                    _ => (1, 1),
                };
                let mut out = blocks.clone();
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
                Arch::Chain(out)
            }
            Arch::Cell(c) => Arch::Cell(c.canonical()),
        }
    }

    /// The canonical encoding, used to recognise duplicates.
    pub fn key(&self, arch: &Arch, input: &InputInfo) -> String {
        use std::fmt::Write;
        let mut s = String::with_capacity(128);
        write!(s, "{}", self.canonical(arch, input)).expect("formatting into a String");
        s
    }

    /// The set positions of a fixed-length 0/1 encoding of the canonical architecture, for surrogate models:
    /// one-hot op per edge (cell), or per block slot up to the maximum depth a presence bit and one-hot
    /// choices (chain). Choices with a single option are left out.
    pub fn features(&self, arch: &Arch, input: &InputInfo) -> Vec<usize> {
        let arch = self.canonical(arch, input);
        let mut v = Vec::new();
        let mut at = 0;
        fn one_hot<T: PartialEq>(v: &mut Vec<usize>, at: &mut usize, choices: &[T], x: Option<&T>) {
            if choices.len() > 1 {
                if let Some(i) = x.and_then(|x| choices.iter().position(|c| c == x)) {
                    v.push(*at + i);
                }
                *at += choices.len();
            }
        }
        match (self, &arch) {
            (SpaceDef::Cell(c), Arch::Cell(cell)) => {
                for &o in &cell.ops {
                    one_hot(&mut v, &mut at, &c.ops, Some(&o));
                }
            }
            (SpaceDef::Chain(c), Arch::Chain(blocks)) => {
                for i in 0..c.max_depth {
                    let b = blocks.get(i);
                    if b.is_some() {
                        v.push(at);
                    }
                    at += 1;
                    one_hot(&mut v, &mut at, &c.width, b.map(|b| &b.width));
                    one_hot(&mut v, &mut at, &c.kernel, b.map(|b| &b.kernel));
                    one_hot(&mut v, &mut at, &c.act, b.map(|b| &b.act));
                    one_hot(&mut v, &mut at, &c.pool, b.map(|b| &b.pool));
                    one_hot(&mut v, &mut at, &c.bn, b.map(|b| &b.bn));
                    one_hot(&mut v, &mut at, &c.dropout, b.map(|b| &b.dropout));
                    one_hot(&mut v, &mut at, &c.res, b.map(|b| &b.res));
                }
            }
            _ => {}
        }
        v
    }

    /// The length of the one-hot encoding whose set positions [`SpaceDef::features`] lists.
    pub fn feature_count(&self) -> usize {
        let n = |k: usize| if k > 1 { k } else { 0 };
        match self {
            SpaceDef::Cell(c) => c.nodes * (c.nodes - 1) / 2 * n(c.ops.len()),
            SpaceDef::Chain(c) => {
                c.max_depth
                    * (1 + n(c.width.len())
                        + n(c.kernel.len())
                        + n(c.act.len())
                        + n(c.pool.len())
                        + n(c.bn.len())
                        + n(c.dropout.len())
                        + n(c.res.len()))
            }
        }
    }

    /// Trainable parameters and multiply-accumulates of one forward pass of one sample.
    pub fn cost(&self, arch: &Arch, input: &InputInfo) -> (u64, u64) {
        let arch = self.canonical(arch, input);
        let mut params = 0u64;
        let mut flops = 0u64;
        let k = input.classes as u64;
        match (self, &arch) {
            (SpaceDef::Chain(c), Arch::Chain(blocks)) => {
                if c.conv {
                    let s = input.shape.as_ref().expect("checked by check_input");
                    let (mut ch, mut h, mut w) = (s[0] as u64, s[1] as u64, s[2] as u64);
                    for b in blocks {
                        let (co, kk) = (b.width as u64, (b.kernel * b.kernel) as u64);
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
                } else {
                    let mut f = input.features as u64;
                    for b in blocks {
                        let u = b.width as u64;
                        params += f * u + u;
                        flops += f * u;
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
                }
            }
            (SpaceDef::Cell(c), Arch::Cell(cell)) => {
                let s = input.shape.as_ref().expect("checked by check_input");
                let (cin, mut h, mut w) = (s[0] as u64, s[1] as u64, s[2] as u64);
                let mut ch = c.channels as u64;
                params += 9 * cin * ch + 2 * ch;
                flops += h * w * 9 * cin * ch;
                for stage in 0..c.stages {
                    if stage > 0 {
                        let (ho, wo) = (h.div_ceil(2), w.div_ceil(2));
                        let co = 2 * ch;
                        params += 9 * ch * co + 2 * co + 9 * co * co + 2 * co + ch * co;
                        flops += ho * wo * (9 * ch * co + 9 * co * co + ch * co);
                        ch = co;
                        h = ho;
                        w = wo;
                    }
                    for _ in 0..c.cells_per_stage {
                        for &o in &cell.ops {
                            let kk = match CELL_OPS[o] {
                                "nor_conv_1x1" => 1,
                                "nor_conv_3x3" => 9,
                                _ => 0,
                            };
                            if kk > 0 {
                                params += kk * ch * ch + 2 * ch;
                                flops += h * w * kk * ch * ch;
                            }
                        }
                    }
                }
                params += 2 * ch + ch * k + k;
                flops += ch * k;
            }
            _ => {}
        }
        (params, flops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Experiment;

    fn digits() -> InputInfo {
        InputInfo {
            features: 64,
            shape: Some(vec![1, 8, 8]),
            classes: 10,
        }
    }

    #[test]
    fn nb201_strings_round_trip() {
        let s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
        let mut spec = Experiment::default().space;
        spec.family = "cell".into();
        let sp = SpaceDef::from_spec(&spec).unwrap();
        let a = sp.parse(s).unwrap();
        assert_eq!(a.to_string(), s);
        assert_eq!(sp.size(), 15625);
        assert_eq!(sp.neighbours(&a).len(), 24);
        assert!(sp.parse("|nor_conv_3x3~0|+|bogus~0|none~1|").is_err());
    }

    #[test]
    fn cell_canonical_removes_dead_edges() {
        // node 1 has no input, so the 2<-1 and 3<-1 edges carry nothing.
        let c = Cell::parse("|none~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_1x1~2|").unwrap();
        assert_eq!(
            Arch::Cell(c.canonical()).to_string(),
            "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
        );
    }

    #[test]
    fn chain_strings_round_trip_and_mutations_stay_in_space() {
        let sp = SpaceDef::from_spec(&Experiment::default().space).unwrap();
        let inp = digits();
        for i in 0..200 {
            let mut r = Rng::derive(3, "t", &[i]);
            let a = sp.sample(&mut r);
            let text = a.to_string();
            assert_eq!(sp.parse(&text).unwrap(), a, "{text}");
            let m = sp.mutate(&a, &inp, &mut r);
            assert_ne!(sp.key(&m, &inp), sp.key(&a, &inp));
            sp.parse(&m.to_string()).unwrap();
            let b = sp.sample(&mut r);
            sp.parse(&sp.crossover(&a, &b, &mut r).to_string()).unwrap();
            let (p, f) = sp.cost(&a, &inp);
            assert!(p > 0 && f > 0);
        }
    }

    #[test]
    fn features_are_in_range_and_equal_exactly_for_equal_keys() {
        let mut cell = Experiment::default().space;
        cell.family = "cell".into();
        for spec in [Experiment::default().space, cell] {
            let sp = SpaceDef::from_spec(&spec).unwrap();
            let d = sp.feature_count();
            let mut seen: std::collections::HashMap<Vec<usize>, String> = Default::default();
            for i in 0..500 {
                let a = sp.sample(&mut Rng::derive(4, "f", &[i]));
                let f = sp.features(&a, &digits());
                assert!(f.iter().all(|&j| j < d), "{f:?} vs {d}");
                assert!(f.windows(2).all(|w| w[0] < w[1]));
                let key = sp.key(&a, &digits());
                assert_eq!(seen.entry(f).or_insert_with(|| key.clone()), &key);
            }
        }
    }

    #[test]
    fn chain_cost_matches_hand_count() {
        let sp = SpaceDef::from_spec(&Experiment::default().space).unwrap();
        let a = sp
            .parse("conv8x3-relu-bn-maxpool/conv16x3-relu-res")
            .unwrap();
        // conv 1->8: 72+8, bn 16; conv 8->16 at 4x4: 1152+16, proj 128; head 4*4*16*10+10
        assert_eq!(sp.cost(&a, &digits()).0, 80 + 16 + 1168 + 128 + 2570);
        assert_eq!(
            sp.cost(&a, &digits()).1,
            64 * 72 + 16 * 1152 + 16 * 128 + 2560
        );
    }

    #[test]
    fn pooling_past_one_pixel_is_canonicalised_away() {
        let sp = SpaceDef::from_spec(&Experiment::default().space).unwrap();
        let a = sp
            .parse("conv8x3-relu-maxpool/conv8x3-relu-maxpool/conv8x3-relu-maxpool")
            .unwrap();
        let tiny = InputInfo {
            features: 16,
            shape: Some(vec![1, 4, 4]),
            classes: 3,
        };
        assert_eq!(
            sp.key(&a, &tiny),
            "conv8x3-relu-maxpool/conv8x3-relu-maxpool/conv8x3-relu"
        );
    }
}
