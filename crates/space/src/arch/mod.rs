//! Architectures of both families, their text notation, and the space definitions that sample, mutate,
//! cross over, list neighbours, canonicalise and measure them.
//!
//! Each family is one module implementing [`Family`] on its space type: [`chain`] (blocks of conv or dense
//! layers) and [`cell`] (NAS-Bench-201 cells). [`SpaceDef`] and [`Arch`] are the enums the stages hold; they
//! dispatch to the family in one place ([`SpaceDef::pair`]), where an architecture of another family is a
//! bug and says so.

pub mod cell;
pub mod chain;
mod chain_spec;

pub use crate::choices::{Act, CellOp, Pool};
pub use cell::{edge_index, Cell, CellSpace};
pub use chain::{Block, ChainSpace};

use crate::rng::Rng;
use crate::spec_space::{SpaceFamily, SpaceSpec};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// What the network sees: flattened feature count, optional image shape `[C, H, W]`, class count, and the
/// inputs that are a text's token ids.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputInfo {
    /// Number of feature columns.
    pub features: usize,
    /// Image shape `[channels, height, width]`, when the features are an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<[usize; 3]>,
    /// Number of classes.
    pub classes: usize,
    /// The text columns' token-id inputs, the last of the features, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text: Vec<TextInput>,
}

/// One text encoding's inputs (a text column has one per kind of token): `len` token ids from a vocabulary
/// of `vocab` ids (reserved ones included), then, when `weighted`, `len` weights, one per id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextInput {
    /// The column's name.
    pub column: String,
    /// Token ids per row.
    pub len: usize,
    /// Ids 0..vocab (0: padding, 1: unknown, then the vocabulary's tokens).
    pub vocab: usize,
    /// What its tokens are.
    #[serde(default = "crate::encoding::Tokens::before_key")]
    pub tokens: crate::encoding::Tokens,
    /// Whether `len` weights follow the ids (the network sums the rows the ids name, each times its weight);
    /// otherwise it takes their mean (files from before 2026-12-04).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub weighted: bool,
    /// Word ids in text order after the ids and weights (the 1-D convolutions' input; 0: none).
    #[serde(default, skip_serializing_if = "crate::encoding::is_zero")]
    pub seq: usize,
}

impl TextInput {
    /// Ids below this are reserved: 0 pads a text's slots, 1 stands for a token outside the vocabulary; the
    /// vocabulary's token i has id `i + RESERVED`. A text's embedding bag reads only ids from here on.
    pub const RESERVED: usize = 2;

    /// The vocabulary's tokens (its ids less the reserved ones).
    pub fn tokens(&self) -> usize {
        self.vocab - TextInput::RESERVED
    }

    /// Network inputs it takes: its ids, and their weights when it is weighted.
    pub fn inputs(&self) -> usize {
        crate::encoding::text_inputs(self.len, self.weighted, self.seq)
    }
}

impl InputInfo {
    /// The inputs before the text columns' token ids (all of them without text).
    pub fn dense_features(&self) -> usize {
        self.features - self.text.iter().map(TextInput::inputs).sum::<usize>()
    }
}

/// What a space family provides: the search operations on its own architecture type.
pub trait Family {
    /// The family's architecture.
    type Arch: Clone;
    /// Number of architectures in the space (saturating).
    fn size(&self) -> u128;
    /// Whether the networks need image-shaped input.
    fn needs_image(&self) -> bool;
    /// Parses the notation and checks every choice belongs to the space.
    fn parse(&self, text: &str) -> Result<Self::Arch>;
    /// A uniformly random architecture.
    fn sample(&self, rng: &mut Rng) -> Self::Arch;
    /// Every architecture one edit away.
    fn neighbours(&self, arch: &Self::Arch) -> Vec<Self::Arch>;
    /// A child of two parents.
    fn crossover(&self, a: &Self::Arch, b: &Self::Arch, rng: &mut Rng) -> Self::Arch;
    /// The canonical form (equal for architectures that compute the same function by construction).
    fn canonical(&self, arch: &Self::Arch, input: &InputInfo) -> Self::Arch;
    /// Set positions of the fixed-length one-hot encoding of a canonical architecture.
    fn features(&self, canonical: &Self::Arch) -> Vec<usize>;
    /// Length of that encoding.
    fn feature_count(&self) -> usize;
    /// Parameters and multiply-accumulates of one forward pass of one sample, of a canonical architecture.
    fn cost(&self, canonical: &Self::Arch, input: &InputInfo) -> (u64, u64);
}

/// One-hot of `x` among `choices` at `*at`, skipped for a choice with a single option.
fn one_hot<T: PartialEq>(v: &mut Vec<usize>, at: &mut usize, choices: &[T], x: Option<&T>) {
    if choices.len() > 1 {
        if let Some(i) = x.and_then(|x| choices.iter().position(|c| c == x)) {
            v.push(*at + i);
        }
        *at += choices.len();
    }
}

fn one_hot_width(k: usize) -> usize {
    if k > 1 {
        k
    } else {
        0
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
            Arch::Chain(blocks) => f.write_str(&chain::notation(blocks)),
            Arch::Cell(c) => c.fmt(f),
        }
    }
}

/// A resolved search space: the type every stage uses to handle architectures.
#[derive(Clone, Debug, PartialEq)]
pub enum SpaceDef {
    /// Chain family.
    Chain(ChainSpace),
    /// Cell family.
    Cell(CellSpace),
}

/// An architecture paired with its family's space.
enum Pair<'a> {
    Chain(&'a ChainSpace, &'a Vec<Block>),
    Cell(&'a CellSpace, &'a Cell),
}

/// Runs `$body` with `$f` bound to the family's space (on the whole `SpaceDef`).
macro_rules! family {
    ($def:expr, $f:ident => $body:expr) => {
        match $def {
            SpaceDef::Chain($f) => $body,
            SpaceDef::Cell($f) => $body,
        }
    };
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
        match s.family {
            SpaceFamily::Chain => Ok(SpaceDef::Chain(ChainSpace::from_spec(s, &set)?)),
            SpaceFamily::Cell => Ok(SpaceDef::Cell(CellSpace::from_spec(s, &set)?)),
        }
    }

    /// The space and an architecture of its family. An architecture of the other family is a bug: every
    /// architecture a stage holds came from [`SpaceDef::parse`] or [`SpaceDef::sample`] of the same space.
    fn pair<'a>(&'a self, arch: &'a Arch) -> Pair<'a> {
        match (self, arch) {
            (SpaceDef::Chain(c), Arch::Chain(a)) => Pair::Chain(c, a),
            (SpaceDef::Cell(c), Arch::Cell(a)) => Pair::Cell(c, a),
            _ => panic!("`{arch}` is not an architecture of this space's family"),
        }
    }

    /// Number of architectures in the space (saturating).
    pub fn size(&self) -> u128 {
        family!(self, f => f.size())
    }

    /// Checks that the data fits the space (conv needs an image shape, 1-D convolutions a text's words).
    pub fn check_input(&self, input: &InputInfo) -> Result<()> {
        let words = input.text.iter().any(|t| t.seq > 0);
        if matches!(self, SpaceDef::Chain(c) if !c.conv && c.kernel.iter().any(Option::is_some))
            && !words
        {
            bail!("[space] kernel: a dense space's kernels are 1-D convolutions over a text column's words, and the data has no text column (or its encoding reads no words in order)");
        }
        if !input.text.is_empty() && !matches!(self, SpaceDef::Chain(c) if !c.conv) {
            bail!("[space]: the data has text columns, which only the chain family's dense blocks read (block = \"dense\")");
        }
        if family!(self, f => f.needs_image()) {
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
        Ok(match self {
            SpaceDef::Chain(f) => Arch::Chain(f.parse(text)?),
            SpaceDef::Cell(f) => Arch::Cell(f.parse(text)?),
        })
    }

    /// A uniformly random architecture (uniform depth, then uniform choices).
    pub fn sample(&self, rng: &mut Rng) -> Arch {
        match self {
            SpaceDef::Chain(f) => Arch::Chain(f.sample(rng)),
            SpaceDef::Cell(f) => Arch::Cell(f.sample(rng)),
        }
    }

    /// Every architecture one edit away: one choice changed, or (chain) a block duplicated or removed.
    pub fn neighbours(&self, arch: &Arch) -> Vec<Arch> {
        match self.pair(arch) {
            Pair::Chain(f, a) => f.neighbours(a).into_iter().map(Arch::Chain).collect(),
            Pair::Cell(f, a) => f.neighbours(a).into_iter().map(Arch::Cell).collect(),
        }
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
        match (self.pair(a), self.pair(b)) {
            (Pair::Chain(f, x), Pair::Chain(_, y)) => Arch::Chain(f.crossover(x, y, rng)),
            (Pair::Cell(f, x), Pair::Cell(_, y)) => Arch::Cell(f.crossover(x, y, rng)),
            _ => unreachable!("pair checks both against the same space"),
        }
    }

    /// Canonical form: equal for architectures that compute the same function by construction
    /// (chain: pooling dropped where the feature map is already 1 pixel; cell: dead edges set to `none`).
    pub fn canonical(&self, arch: &Arch, input: &InputInfo) -> Arch {
        match self.pair(arch) {
            Pair::Chain(f, a) => Arch::Chain(f.canonical(a, input)),
            Pair::Cell(f, a) => Arch::Cell(f.canonical(a, input)),
        }
    }

    /// The canonical encoding, used to recognise duplicates.
    pub fn key(&self, arch: &Arch, input: &InputInfo) -> String {
        self.canonical(arch, input).to_string()
    }

    /// The set positions of a fixed-length 0/1 encoding of the canonical architecture, for surrogate models:
    /// one-hot op per edge (cell), or per block slot up to the maximum depth a presence bit and one-hot
    /// choices (chain). Choices with a single option are left out.
    pub fn features(&self, arch: &Arch, input: &InputInfo) -> Vec<usize> {
        let canon = self.canonical(arch, input);
        match self.pair(&canon) {
            Pair::Chain(f, a) => f.features(a),
            Pair::Cell(f, a) => f.features(a),
        }
    }

    /// The length of the one-hot encoding whose set positions [`SpaceDef::features`] lists.
    pub fn feature_count(&self) -> usize {
        family!(self, f => f.feature_count())
    }

    /// Trainable parameters and multiply-accumulates of one forward pass of one sample.
    pub fn cost(&self, arch: &Arch, input: &InputInfo) -> (u64, u64) {
        let canon = self.canonical(arch, input);
        match self.pair(&canon) {
            Pair::Chain(f, a) => f.cost(a, input),
            Pair::Cell(f, a) => f.cost(a, input),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Experiment;

    fn digits() -> InputInfo {
        InputInfo {
            features: 64,
            shape: Some([1, 8, 8]),
            classes: 10,
            text: Vec::new(),
        }
    }

    #[test]
    fn nb201_strings_round_trip() {
        let s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
        let mut spec = Experiment::default().space;
        spec.family = crate::SpaceFamily::Cell;
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
        cell.family = crate::SpaceFamily::Cell;
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
            shape: Some([1, 4, 4]),
            classes: 3,
            text: Vec::new(),
        };
        assert_eq!(
            sp.key(&a, &tiny),
            "conv8x3-relu-maxpool/conv8x3-relu-maxpool/conv8x3-relu"
        );
    }

    #[test]
    fn a_dense_space_can_hold_the_linear_model() {
        let mut spec = Experiment::default().space;
        spec.block = Some(crate::spec_space::BlockKind::Dense);
        spec.depth = Some(vec![0, 2]);
        let sp = SpaceDef::from_spec(&spec).unwrap();
        let text = InputInfo {
            features: 3 + 8,
            shape: None,
            classes: 4,
            text: vec![crate::TextInput {
                column: "t".into(),
                len: 4,
                vocab: 100,
                tokens: crate::encoding::Tokens::Words,
                weighted: true,
                seq: 0,
            }],
        };
        let linear = sp.parse("linear").unwrap();
        assert_eq!(linear, Arch::Chain(Vec::new()));
        assert_eq!(linear.to_string(), "linear");
        // One block of the first choices, and it with one choice changed: 1 + 2 widths + 1 activation +
        // batch norm + dropout + residual.
        let ns = sp.neighbours(&linear);
        assert_eq!(ns.len(), 1 + 2 + 1 + 1 + 1 + 1, "{ns:?}");
        assert!(ns
            .iter()
            .all(|n| matches!(n, Arch::Chain(b) if b.len() == 1)));
        let m = sp.mutate(&linear, &text, &mut Rng::derive(1, "t", &[]));
        assert_ne!(m.to_string(), "linear");
        // Removing the only block of a one-block network gives the linear model.
        assert!(sp.neighbours(&m).contains(&linear));
        // Over text the head is the tables (a row per id) and the 3 dense inputs' matrix, then the bias.
        assert_eq!(sp.cost(&linear, &text).0, (3 + 100) * 4 + 4);
        // Sampling reaches it (depth 0 of 0..=2).
        assert!((0..50).any(|i| sp.sample(&mut Rng::derive(2, "t", &[i])) == linear));
        // A conv space needs a block.
        let mut conv = Experiment::default().space;
        conv.depth = Some(vec![0, 2]);
        let e = SpaceDef::from_spec(&conv).unwrap_err().to_string();
        assert!(e.contains("conv space needs at least one block"), "{e}");
    }

    /// A dense space with kernels over text: 1-D convolutions over words, which run first.
    #[test]
    fn word_convolutions_run_first_and_are_counted() {
        let mut spec = Experiment::default().space;
        spec.block = Some(crate::spec_space::BlockKind::Dense);
        spec.depth = Some(vec![0, 3]);
        spec.width = Some(vec![8, 16]);
        spec.kernel = Some(vec![3]);
        spec.dilation = Some(vec![1, 2]);
        let sp = SpaceDef::from_spec(&spec).unwrap();
        let text = InputInfo {
            features: 2 + 4 + 4 + 10,
            shape: None,
            classes: 3,
            text: vec![crate::TextInput {
                column: "t".into(),
                len: 4,
                vocab: 50,
                tokens: crate::encoding::Tokens::Words,
                weighted: true,
                seq: 10,
            }],
        };
        sp.check_input(&text).unwrap();
        let a = sp
            .parse("fc8-relu-res/conv16x3-relu-bn-d2/conv8x3-relu-res")
            .unwrap();
        assert_eq!(
            a.to_string(),
            "fc8-relu-res/conv16x3-relu-bn-d2/conv8x3-relu-res"
        );
        // Canonical: the convolutions first (no batch norm), the first dense block over text no residual.
        assert_eq!(
            sp.key(&a, &text),
            "conv16x3-relu-d2/conv8x3-relu-res/fc8-relu"
        );
        // An embedding 50 × 16; 3·16·16 + 16; 3·16·8 + 8 and its projection 16·8; the pooled 8 into the
        // dense block; the dense block's tables and 2 dense inputs; the head.
        let (p, f) = sp.cost(&a, &text);
        let conv = 50 * 16 + 3 * 16 * 16 + 16 + 3 * 16 * 8 + 8 + 16 * 8;
        assert_eq!(p, conv + 8 * 8 + (2 + 50) * 8 + 8 + 8 * 3 + 3);
        assert_eq!(
            f,
            10 * (3 * 16 * 16 + 3 * 16 * 8 + 16 * 8) + 8 * 8 + 10 * 8 + 8 * 3
        );
        // Without a dense block the pooled features enter the head beside the tables.
        let c = sp.parse("conv8x3-relu").unwrap();
        assert_eq!(
            sp.cost(&c, &text).0,
            50 * 8 + 3 * 8 * 8 + 8 + 8 * 3 + (2 + 50) * 3 + 3
        );
        assert!(
            sp.parse("conv8x5-relu").is_err(),
            "a kernel outside the space"
        );
        // Sampled and neighbouring architectures carry no attribute their block does not read.
        let tidy = |a: &Arch| {
            let Arch::Chain(blocks) = a else { panic!() };
            blocks.iter().all(|b| match b.kernel {
                Some(_) => !b.bn,
                None => b.dilation == 1,
            })
        };
        for i in 0..100 {
            let s = sp.sample(&mut Rng::derive(3, "t", &[i]));
            assert!(tidy(&s) && sp.neighbours(&s).iter().all(tidy), "{s}");
        }
        // A space whose only batch norm is on and only dilation 2 holds what tidying gives: convolutions
        // without batch norm, dense blocks of dilation 1.
        let mut pinned = spec.clone();
        pinned.batch_norm = Some(vec![true]);
        pinned.dilation = Some(vec![2]);
        let ps = SpaceDef::from_spec(&pinned).unwrap();
        for i in 0..50 {
            let s = ps.sample(&mut Rng::derive(4, "t", &[i]));
            assert_eq!(ps.parse(&s.to_string()).unwrap(), s);
        }
        // `kernel = []`: no 1-D convolutions.
        let mut none = spec.clone();
        (none.kernel, none.dilation) = (Some(Vec::new()), None);
        let ns = SpaceDef::from_spec(&none).unwrap();
        assert!(ns.parse("conv8x3-relu").is_err() && ns.parse("fc8-relu").is_ok());
        // Data without words in order cannot have them.
        let e = sp
            .check_input(&InputInfo {
                text: Vec::new(),
                ..text.clone()
            })
            .unwrap_err();
        assert!(e.to_string().starts_with("[space] kernel:"), "{e}");
        // Dilation is only for them.
        let mut conv = Experiment::default().space;
        conv.dilation = Some(vec![2]);
        let e = SpaceDef::from_spec(&conv).unwrap_err().to_string();
        assert!(e.starts_with("[space] dilation:"), "{e}");
    }
}
