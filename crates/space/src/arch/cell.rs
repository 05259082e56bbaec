//! The `cell` family: a NAS-Bench-201 cell (a DAG whose edges each carry one operation), stacked into a
//! network of stages with reductions between them.

use super::{Family, InputInfo};
use crate::choices::CellOp;
use crate::rng::Rng;
use crate::spec_space::SpaceSpec;
use anyhow::{anyhow, bail, Result};

/// A NAS-Bench-201-style cell: one op per edge; edges ordered (1←0), (2←0), (2←1), (3←0)…
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    /// Number of nodes.
    pub nodes: usize,
    /// One op per edge.
    pub ops: Vec<CellOp>,
}

/// Index of edge (to ← from) in [`Cell::ops`].
pub fn edge_index(to: usize, from: usize) -> usize {
    to * (to - 1) / 2 + from
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        for i in 1..self.nodes {
            if i > 1 {
                f.write_char('+')?;
            }
            f.write_char('|')?;
            for j in 0..i {
                f.write_str(self.ops[edge_index(i, j)].name())?;
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
}

impl Cell {
    /// Reads the NAS-Bench-201 notation `|op~0|+|op~0|op~1|+…`.
    pub fn parse(text: &str) -> Result<Cell> {
        let nodes_txt: Vec<&str> = text.split('+').collect();
        let nodes = nodes_txt.len() + 1;
        let mut ops = vec![CellOp::None; nodes * (nodes - 1) / 2];
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
                ops[edge_index(i, j)] = CellOp::parse(op)
                    .ok_or_else(|| anyhow!("cell edge `{e}`: unknown op `{op}`"))?;
            }
        }
        Ok(Cell { nodes, ops })
    }

    /// The cell with every edge that cannot carry signal from the input to the output set to `none`.
    pub fn canonical(&self) -> Cell {
        let n = self.nodes;
        let live = |i: usize, j: usize| self.ops[edge_index(i, j)] != CellOp::None;
        let mut from_in = vec![false; n];
        from_in[0] = true;
        for i in 1..n {
            from_in[i] = (0..i).any(|j| from_in[j] && live(i, j));
        }
        let mut to_out = vec![false; n];
        to_out[n - 1] = true;
        for j in (0..n - 1).rev() {
            to_out[j] = (j + 1..n).any(|i| to_out[i] && live(i, j));
        }
        let mut c = self.clone();
        for (i, &out) in to_out.iter().enumerate().skip(1) {
            for (j, &inp) in from_in.iter().enumerate().take(i) {
                if !(inp && out) {
                    c.ops[edge_index(i, j)] = CellOp::None;
                }
            }
        }
        c
    }
}

/// A cell space.
#[derive(Clone, Debug, PartialEq)]
pub struct CellSpace {
    /// Nodes per cell.
    pub nodes: usize,
    /// Allowed ops, in [`CellOp::ALL`] order.
    pub ops: Vec<CellOp>,
    /// Channels of the first stage.
    pub channels: usize,
    /// Cells per stage.
    pub cells_per_stage: usize,
    /// Stages.
    pub stages: usize,
}

impl CellSpace {
    /// Resolves the cell keys of `[space]` (`set` rejects keys of the other family).
    pub(super) fn from_spec(s: &SpaceSpec, set: &dyn Fn(&str, bool) -> Result<()>) -> Result<Self> {
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
        let mut ops = s.ops.clone().unwrap_or_else(|| CellOp::ALL.to_vec());
        if ops.is_empty() {
            bail!("[space] ops: the list of choices is empty");
        }
        ops.sort();
        ops.dedup();
        if ops == [CellOp::None] {
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
        Ok(CellSpace {
            nodes,
            ops,
            channels,
            cells_per_stage,
            stages,
        })
    }

    fn edges(&self) -> usize {
        self.nodes * (self.nodes - 1) / 2
    }
}

impl Family for CellSpace {
    type Arch = Cell;

    fn size(&self) -> u128 {
        (self.ops.len() as u128).saturating_pow(self.edges() as u32)
    }

    fn needs_image(&self) -> bool {
        true
    }

    fn parse(&self, text: &str) -> Result<Cell> {
        let cell = Cell::parse(text)?;
        if cell.nodes != self.nodes {
            bail!(
                "cell has {} nodes; the space has {}",
                cell.nodes,
                self.nodes
            );
        }
        if let Some(o) = cell.ops.iter().find(|o| !self.ops.contains(o)) {
            bail!("cell uses op `{}`, not in the space", o.name());
        }
        Ok(cell)
    }

    fn sample(&self, rng: &mut Rng) -> Cell {
        Cell {
            nodes: self.nodes,
            ops: (0..self.edges()).map(|_| *rng.choose(&self.ops)).collect(),
        }
    }

    fn neighbours(&self, cell: &Cell) -> Vec<Cell> {
        let mut out = Vec::new();
        for e in 0..cell.ops.len() {
            for &o in self.ops.iter().filter(|&&o| o != cell.ops[e]) {
                let mut n = cell.clone();
                n.ops[e] = o;
                out.push(n);
            }
        }
        out
    }

    fn crossover(&self, x: &Cell, y: &Cell, rng: &mut Rng) -> Cell {
        Cell {
            nodes: x.nodes,
            ops: x
                .ops
                .iter()
                .zip(&y.ops)
                .map(|(p, q)| if rng.below(2) == 0 { *p } else { *q })
                .collect(),
        }
    }

    fn canonical(&self, cell: &Cell, _: &InputInfo) -> Cell {
        cell.canonical()
    }

    fn features(&self, cell: &Cell) -> Vec<usize> {
        let (mut v, mut at) = (Vec::new(), 0);
        for o in &cell.ops {
            super::one_hot(&mut v, &mut at, &self.ops, Some(o));
        }
        v
    }

    fn feature_count(&self) -> usize {
        self.edges() * super::one_hot_width(self.ops.len())
    }

    fn cost(&self, cell: &Cell, input: &InputInfo) -> (u64, u64) {
        let [cin, h0, w0] = input.shape.expect("checked by check_input");
        let (cin, mut h, mut w) = (cin as u64, h0 as u64, w0 as u64);
        let k = input.classes as u64;
        let mut ch = self.channels as u64;
        let mut params = 9 * cin * ch + 2 * ch;
        let mut flops = h * w * 9 * cin * ch;
        for stage in 0..self.stages {
            if stage > 0 {
                let (ho, wo) = (h.div_ceil(2), w.div_ceil(2));
                let co = 2 * ch;
                params += 9 * ch * co + 2 * co + 9 * co * co + 2 * co + ch * co;
                flops += ho * wo * (9 * ch * co + 9 * co * co + ch * co);
                ch = co;
                h = ho;
                w = wo;
            }
            for _ in 0..self.cells_per_stage {
                for kk in cell.ops.iter().filter_map(|o| o.kernel()) {
                    let kk = (kk * kk) as u64;
                    params += kk * ch * ch + 2 * ch;
                    flops += h * w * kk * ch * ch;
                }
            }
        }
        params += 2 * ch + ch * k + k;
        flops += ch * k;
        (params, flops)
    }
}
