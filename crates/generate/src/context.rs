//! What every strategy shares: the [`Context`] it proposes from, the [`Strategy`] trait, the set of keys
//! already taken, a candidate's fitness, and a new random candidate (by prior, when there is one).

use space::{Arch, Entry, InputInfo, Origin, Rng, SpaceDef};
use std::collections::HashSet;

/// What a strategy sees: the space, the input, and the history before the batch being made.
pub struct Context<'a> {
    /// The space.
    pub space: &'a SpaceDef,
    /// The input description (for canonical keys and costs).
    pub input: &'a InputInfo,
    /// Every candidate of earlier batches, with its result (all have one), in id order.
    pub history: &'a [Entry],
    /// `[search]` settings.
    pub settings: &'a space::experiment::SearchSpec,
    /// Candidates the search evaluates in all (`[search] budget`, resolved).
    pub budget: usize,
    /// The run seed (for strategies that replay decisions, like annealing acceptance).
    pub seed: u64,
    /// `[search] prior`: a zero-cost proxy's value of an architecture (higher is better).
    pub prior: Option<Prior<'a>>,
}

/// A zero-cost proxy given to the strategies (`[search] prior`): deterministic, higher is better.
pub type Prior<'a> = &'a dyn Fn(&Arch) -> f64;

/// With a prior, a new random candidate is the best by prior of this many new uniform samples: the top
/// tenth of the prior's distribution, which leaves room for the prior to be wrong.
pub const PRIOR_POOL: usize = 10;

/// A fast hasher for canonical keys (std's SipHash dominated `nas bench`): 8 bytes per multiply, finished
/// with a multiply-xorshift (hash tables index by the low bits).
#[derive(Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let x = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^ (x >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0 ^ 0xcbf2_9ce4_8422_2325;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            h = (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
        }
        for &b in chunks.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type KeySet<T> = HashSet<T, std::hash::BuildHasherDefault<KeyHasher>>;

/// Canonical keys already taken: those of the history (borrowed) and of earlier children of this batch.
pub struct Taken<'a> {
    prior: KeySet<&'a str>,
    new: KeySet<String>,
}

impl<'a> Taken<'a> {
    /// The keys of `history`.
    pub fn new(history: &'a [Entry]) -> Self {
        Taken {
            prior: history.iter().map(|e| e.candidate.key.as_str()).collect(),
            new: KeySet::default(),
        }
    }

    /// Whether `key` is taken.
    pub fn contains(&self, key: &str) -> bool {
        self.prior.contains(key) || self.new.contains(key)
    }

    /// Whether `arch` is new; if so it is marked taken.
    pub fn claim(&mut self, ctx: &Context, arch: &Arch) -> bool {
        let key = ctx.space.key(arch, ctx.input);
        !self.prior.contains(key.as_str()) && self.new.insert(key)
    }
}

/// A search strategy: proposes one child at a time; returns `None` when it can find nothing new.
pub trait Strategy {
    /// Proposes one new architecture (not taken) and says where it came from.
    fn propose(&self, ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<(Arch, Origin)>;
}

/// Tries to sample a new architecture uniformly; with a prior, the best by prior of [`PRIOR_POOL`] new
/// samples.
pub(crate) fn random_new(ctx: &Context, rng: &mut Rng, taken: &mut Taken) -> Option<Arch> {
    let Some(prior) = ctx.prior else {
        return (0..2000)
            .map(|_| ctx.space.sample(rng))
            .find(|a| taken.claim(ctx, a));
    };
    let mut pool: Vec<(String, Arch)> = Vec::new();
    for _ in 0..2000 {
        if pool.len() == PRIOR_POOL {
            break;
        }
        let a = ctx.space.sample(rng);
        let key = ctx.space.key(&a, ctx.input);
        if !taken.contains(&key) && !pool.iter().any(|(k, _)| *k == key) {
            pool.push((key, a));
        }
    }
    let best = pool
        .into_iter()
        .map(|(_, a)| (prior(&a), a))
        .reduce(|best, x| if x.0 > best.0 { x } else { best })?;
    taken.claim(ctx, &best.1).then_some(best.1)
}

/// Fitness of an evaluated candidate: [`space::ResultFile::fitness`] (its mean CV accuracy; when raced out,
/// its paired estimate of it), −1 when it failed.
pub fn fitness(e: &Entry) -> f64 {
    e.result.as_ref().map_or(-1.0, space::ResultFile::fitness)
}
