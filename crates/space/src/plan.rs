//! The [`Plan`]: an experiment resolved once against its data — defaults applied, the data's kind known,
//! budget, epochs and time limit settled, the space built — which is what every stage works from.
//!
//! Resolution needs a few facts about the data ([`DataFacts`]), which the `data` crate reads; this crate
//! never reads data files. The plan is stored as `space.toml` ([`SpaceFile`], the same strings as ever) and
//! rebuilt from it by [`Plan::from_file`] without the data.

use crate::arch::{InputInfo, SpaceDef, TextInput};
use crate::experiment::{
    BlockKind, Experiment, SpaceFamily, TimeLimit, IMAGE_DEFAULTS, TABLE_DEFAULTS, TEXT_DEFAULTS,
};
use crate::files::{SpaceFile, ARTIFACT_VERSION};
use crate::{CandidateFile, Pool};
use anyhow::{anyhow, bail, Result};

/// What resolution needs to know about the data.
#[derive(Clone, Debug)]
pub struct DataFacts {
    /// Rows.
    pub rows: usize,
    /// FNV-1a of the data's bytes.
    pub fingerprint: String,
    /// Class names in class-index order.
    pub classes: Vec<String>,
    /// Raw feature columns.
    pub features: usize,
    /// The image shape the source itself gives (IDX, NPY of images, image folders).
    pub shape: Option<[usize; 3]>,
    /// Why the columns cannot be image pixels (a column of text or with empty cells), if they cannot.
    pub not_pixels: Option<String>,
    /// The columns of free text.
    pub text: Vec<String>,
}

/// An experiment resolved against its data: what the stages run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `space.toml` as stored.
    pub file: SpaceFile,
    /// The search space.
    pub def: SpaceDef,
    /// Candidates to evaluate (`[search] budget`).
    pub budget: usize,
    /// Epochs of a full training, the top rung (`[evaluate] epochs`).
    pub epochs: usize,
    /// The time limit, if any (`[search] time`).
    pub time: Option<TimeLimit>,
}

impl Plan {
    /// Resolves a validated experiment ([`Experiment::validate`]) against its data's `facts`; `table_width`
    /// gives a table's network inputs after encoding and its text inputs (asked only when the data is a
    /// table). The `data`
    /// crate's `resolve` validates, reads the data and calls this.
    pub fn resolve(
        mut exp: Experiment,
        facts: &DataFacts,
        table_width: &dyn Fn() -> (usize, Vec<TextInput>),
    ) -> Result<Plan> {
        let source = exp.data.source.to_string();
        let builtin = match &exp.data.source {
            crate::DataSource::Builtin(b) => b.shape(),
            crate::DataSource::Path(_) => None,
        };
        match (&exp.data.shape, facts.shape) {
            (None, found) => exp.data.shape = found.or(builtin).map(|s| s.to_vec()),
            (Some(given), Some(found)) if given[..] != found[..] => bail!(
                "{source}: [data] shape: {given:?} given, but the images are {found:?} (channels, height, width)"
            ),
            _ => {}
        }
        // `validate` checked a given shape has three sizes.
        let shape: Option<[usize; 3]> = exp.data.shape.as_deref().and_then(|s| s.try_into().ok());
        default_space(&mut exp, shape, !facts.text.is_empty());
        exp.fill_defaults(
            match (shape, facts.text.is_empty()) {
                (Some(_), _) => IMAGE_DEFAULTS,
                (None, false) => TEXT_DEFAULTS,
                (None, true) => TABLE_DEFAULTS,
            },
            facts.rows,
        );
        if shape.is_none() && exp.evaluate.augment != crate::augment::Augment::Off {
            bail!(
                "{source}: [evaluate] augment = \"{}\": images only, and this data is a table (give --shape C,H,W for pixel columns)",
                exp.evaluate.augment
            );
        }
        let s = &exp.search;
        crate::fidelity::check(s.fidelity, s.eta, s.min_epochs, exp.evaluate.epochs)?;
        let def = SpaceDef::from_spec(&exp.space)?;
        default_initial(&mut exp, &def, shape);
        let (features, text) = match (shape, &facts.not_pixels) {
            (Some(_), Some(why)) => bail!(
                "{source}: [data] shape: image data must be numbers without empty cells, but {why}"
            ),
            (Some(_), None) => (facts.features, Vec::new()),
            (None, _) => table_width(),
        };
        let input = InputInfo {
            features,
            shape,
            classes: facts.classes.len(),
            text,
        };
        def.check_input(&input)
            .map_err(|e| anyhow!("{source}: {e}"))?;
        let file = SpaceFile {
            version: ARTIFACT_VERSION,
            kind: "nas.space".into(),
            size: def.size().to_string(),
            rows: facts.rows,
            data_fingerprint: facts.fingerprint.clone(),
            class_names: facts.classes.clone(),
            standardize: crate::encoding::Standardize::for_shape(input.shape),
            input,
            experiment: exp,
        };
        Plan::with_def(file, def)
    }

    /// The plan a stored `space.toml` holds (resolved: its budget and epochs are set).
    pub fn from_file(file: SpaceFile) -> Result<Plan> {
        let def = SpaceDef::from_spec(&file.experiment.space)?;
        Plan::with_def(file, def)
    }

    fn with_def(file: SpaceFile, def: SpaceDef) -> Result<Plan> {
        let e = &file.experiment;
        let budget = e
            .search
            .budget
            .ok_or_else(|| anyhow!("[search] budget: not set (a resolved space.toml has it)"))?;
        let epochs = e
            .evaluate
            .epochs
            .ok_or_else(|| anyhow!("[evaluate] epochs: not set (a resolved space.toml has it)"))?;
        let time = e.search.time;
        for a in e.search.initial.iter().flatten() {
            def.parse(a)
                .map_err(|err| anyhow!("[search] initial: `{a}`: {err}"))?;
        }
        Ok(Plan {
            file,
            def,
            budget,
            epochs,
            time,
        })
    }

    /// The resolved experiment.
    pub fn exp(&self) -> &Experiment {
        &self.file.experiment
    }

    /// Sets the budget and time limit (a resumed run may change them; they are not the identity).
    pub fn set_limits(&mut self, budget: usize, time: Option<TimeLimit>) {
        self.file.experiment.search.budget = Some(budget);
        self.file.experiment.search.time = time;
        self.budget = budget;
        self.time = time;
    }

    /// Whether candidate `c` trains at the top rung (`[evaluate] epochs`): only those results are ranked and
    /// selected.
    pub fn top_rung(&self, c: &CandidateFile) -> bool {
        c.epochs_or(self.epochs) == self.epochs
    }

    /// The epochs of each rung of the search's schedule, lowest first; the last is `[evaluate] epochs`.
    pub fn rungs(&self) -> Vec<usize> {
        let s = &self.exp().search;
        let min = s
            .min_epochs
            .unwrap_or_else(|| crate::fidelity::default_min_epochs(self.epochs, s.eta));
        crate::fidelity::rungs(s.fidelity, self.epochs, min, s.eta)
    }
}

/// The space defaults that depend on the data's kind.
fn default_space(exp: &mut Experiment, shape: Option<[usize; 3]>, text: bool) {
    let chain = exp.space.family == SpaceFamily::Chain;
    // Tabular data (no image shape) gets the dense chain space unless the experiment names a block.
    if shape.is_none() && chain && exp.space.block.is_none() {
        exp.space.block = Some(BlockKind::Dense);
    }
    // Over text the space holds the linear model too (no block: the TF-IDF bags straight to the classes),
    // the standard strong model on text: on Austen's novels the best single network of both seeds' default
    // runs, and, calibrated, the ensembles' most picked member (docs/benchmarks.md).
    if text && chain && shape.is_none() && exp.space.depth.is_none() {
        exp.space.depth = Some(vec![0, 3]);
    }
    // Over text a block may also be a 1-D convolution over the words in order (kernels 3 and 5, as the
    // conv space's; dilated by 2 or not), whose maximum over the words enters the first dense layer
    // beside the bags: what word order adds to them (phrases longer than a pair). Alone they score below
    // the linear model on Austen's novels, as CNNs without pretrained embeddings do against n-gram bags in
    // the literature, and cost 7–100× its training; but they err elsewhere than the bags, and the
    // ensembles of default runs gained 0.007 nested CV with them (docs/benchmarks.md).
    let dense_text = text && chain && shape.is_none() && exp.space.block != Some(BlockKind::Conv);
    if dense_text
        && !exp
            .space
            .kernel
            .get_or_insert_with(|| vec![3, 5])
            .is_empty()
    {
        exp.space.dilation.get_or_insert_with(|| vec![1, 2]);
    }
    // Images of 16×16 and more get a space whose conv blocks all downsample (2×2 max or average pooling),
    // unless the experiment names its pooling: a block at full resolution costs H·W·k²·Cin·Cout per image,
    // so halving the map after each block keeps a deep network within a small multiple of its first layer,
    // the layout of standard CNNs. (Without it, fashion10k's first default candidates took over 8 minutes
    // per fold on 2 cores.) Small images (the built-in 8×8 digits) keep the choice of not pooling.
    // With every block downsampling, their widths are those of standard small CNNs (the Keras and PyTorch
    // MNIST examples: 32 and 64) rather than the small images' 8–32: a block's cost is bounded by the halving,
    // and the narrow space capped the search. On fashion10k the best of three default 30-minute searches
    // over 8–32 reached 0.8897–0.8926, while two 3×3 blocks of 32 and 64 score 0.8958 (docs/benchmarks.md).
    let conv = chain && exp.space.block.is_none_or(|b| b == BlockKind::Conv);
    if conv && large_images(shape) {
        exp.space
            .pool
            .get_or_insert_with(|| vec![Pool::Max, Pool::Avg]);
        exp.space.width.get_or_insert_with(|| vec![16, 32, 64]);
    }
}

/// Images of 16×16 and more, whose conv spaces downsample at every block ([`default_space`]).
fn large_images(shape: Option<[usize; 3]>) -> bool {
    shape.is_some_and(|[_, h, w]| h.min(w) >= 16)
}

/// The textbook CNN: two 3×3 convolutions of 32 then 64 channels, each with batch norm, ReLU and 2×2 max
/// pooling (the layout of the Keras and PyTorch MNIST examples, widths doubling as the map halves).
pub const TEXTBOOK_CNN: &str = "conv32x3-relu-bn-maxpool/conv64x3-relu-bn-maxpool";

/// `[search] initial` when the experiment leaves it out: on images of 16×16 and more, the textbook CNN when
/// the space holds it. A search then starts from a network known to be good on any small image set instead
/// of only random ones: it has a good answer within minutes, and racing stops the candidates that fall
/// clearly below it after a few folds (the first batch otherwise has no incumbent and trains every fold).
fn default_initial(exp: &mut Experiment, def: &SpaceDef, shape: Option<[usize; 3]>) {
    if exp.search.initial.is_none() && large_images(shape) && def.parse(TEXTBOOK_CNN).is_ok() {
        exp.search.initial = Some(vec![TEXTBOOK_CNN.to_string()]);
    }
}
