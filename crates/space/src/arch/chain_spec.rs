//! The chain space resolved from the `[space]` keys: each attribute's choices, checked, with the defaults of
//! a conv or a dense space.

use super::chain::ChainSpace;
use crate::choices::{Act, Pool};
use crate::spec_space::{BlockKind, SpaceSpec};
use anyhow::{bail, Result};

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

impl ChainSpace {
    /// Resolves the chain keys of `[space]` (keys of the other family are rejected by the caller).
    pub(super) fn from_spec(s: &SpaceSpec, set: &dyn Fn(&str, bool) -> Result<()>) -> Result<Self> {
        for (k, p) in [
            ("nodes", s.nodes.is_some()),
            ("ops", s.ops.is_some()),
            ("channels", s.channels.is_some()),
            ("cells_per_stage", s.cells_per_stage.is_some()),
            ("stages", s.stages.is_some()),
        ] {
            set(k, p)?;
        }
        let conv = s.block.unwrap_or(BlockKind::Conv) == BlockKind::Conv;
        let depth = s.depth.clone().unwrap_or(vec![1, 3]);
        if depth.len() != 2 || depth[0] > depth[1] || depth[1] > 32 {
            bail!("[space] depth: expected [min, max] with 0 <= min <= max <= 32 (0: the linear model), got {depth:?}");
        }
        if conv && depth[0] == 0 {
            bail!("[space] depth: a conv space needs at least one block (the linear model is a dense space's)");
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
        let odd = |k: Vec<usize>| {
            if k.iter().any(|&k| k % 2 == 0 || k > 15) {
                bail!("[space] kernel: each choice must be odd and at most 15, got {k:?}");
            }
            Ok(k.into_iter().map(Some))
        };
        // A dense space's kernels are 1-D convolutions over words, beside the dense block (`None`).
        let kernel: Vec<Option<usize>> = match (conv, &s.kernel) {
            (true, k) => odd(choices("kernel", k, vec![3, 5])?)?.collect(),
            (false, None) => vec![None],
            // `kernel = []`: no 1-D convolutions (over text they are in the default space).
            (false, Some(k)) => std::iter::once(None).chain(odd(k.clone())?).collect(),
        };
        let dilation = choices("dilation", &s.dilation, vec![1])?;
        if dilation.iter().any(|&d| d == 0 || d > 8) {
            bail!("[space] dilation: each choice must be in 1..=8, got {dilation:?}");
        }
        if dilation != [1] && kernel.iter().all(|k| k.is_none() || conv) {
            bail!("[space] dilation: only a dense space's 1-D convolutions over text (its `kernel`) are dilated");
        }
        let act = choices("activation", &s.activation, vec![Act::Relu, Act::Silu])?;
        let pool = if conv {
            choices("pool", &s.pool, vec![Pool::None, Pool::Max])?
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
        Ok(ChainSpace {
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
            dilation: dedup(dilation),
        })
    }
}
