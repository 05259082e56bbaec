//! Zero-cost proxies as an evaluator (`[evaluate] evaluator = "proxy"`) and as a strategy's prior
//! (`[search] prior`): scores of the untrained network ([`nn::proxy`]), in well under a second each.
//!
//! A proxy result's `cv_mean` (and its one fold score) is the proxy mapped monotonically into (0, 1), so it
//! ranks and selects like any score; the raw value is in its `metrics` under the proxy's name.

use anyhow::Result;
use data::prep::Prep;
use data::Dataset;
use space::{Arch, Entry, InputInfo, Plan, Proxy, ResultFile, Rng, SpaceDef};

/// Rows of the batch NASWOT reads.
pub const NASWOT_ROWS: usize = 64;

/// One proxy, ready to score architectures of a run.
pub struct Proxies {
    proxy: Proxy,
    def: SpaceDef,
    input: InputInfo,
    seed: u64,
    /// NASWOT's batch, standardised on its own rows.
    batch: Vec<f32>,
}

impl Proxies {
    /// `proxy` for the run of `sf`; NASWOT needs `data` (a batch of [`NASWOT_ROWS`] rows from the stream
    /// (seed, "proxy-rows")).
    pub fn new(proxy: Proxy, plan: &Plan, data: Option<&Dataset>) -> Result<Self> {
        let (sf, def) = (&plan.file, &plan.def);
        let mut input = sf.input.clone();
        let mut batch = Vec::new();
        if proxy == Proxy::Naswot {
            let data = data.ok_or_else(|| anyhow::anyhow!("proxy naswot needs the data"))?;
            let mut rows: Vec<usize> = (0..data.rows()).collect();
            Rng::derive(sf.experiment.seed, "proxy-rows", &[]).shuffle(&mut rows);
            rows.truncate(NASWOT_ROWS);
            rows.sort_unstable();
            let prep = Prep::fit(
                &data.x,
                &data.columns,
                &rows,
                sf.input.shape,
                sf.standardize,
            );
            input.features = prep.width();
            batch = prep.apply(&data.x, &data.columns, &rows);
        }
        Ok(Proxies {
            proxy,
            def: def.clone(),
            input,
            seed: sf.experiment.seed,
            batch,
        })
    }

    /// The proxy's raw value for `arch`.
    pub fn value(&self, arch: &Arch) -> Result<f64> {
        Ok(match self.proxy {
            Proxy::Synflow => nn::proxy::synflow(&self.def, arch, &self.input, self.seed)?,
            Proxy::Naswot => {
                nn::proxy::naswot(&self.def, arch, &self.input, self.seed, &self.batch)?
            }
            Proxy::Params => self.def.cost(arch, &self.input).0 as f64,
        })
    }

    /// The result of scoring `e` by the proxy.
    pub fn result(&self, e: &Entry) -> ResultFile {
        let t0 = std::time::Instant::now();
        let scored = match self.value(&e.arch) {
            Ok(v) => Ok((squash(v), [(self.proxy.name().to_string(), v)].into())),
            Err(err) => Err(format!("{err:#}")),
        };
        let wall_s = (t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        crate::evaluator::single_score(
            &e.candidate,
            space::EvaluatedBy::Proxy(self.proxy),
            scored,
            wall_s,
        )
    }
}

impl crate::evaluator::Lookup for Proxies {
    fn score(&self, e: &Entry) -> ResultFile {
        self.result(e)
    }
}

/// A run's `[search] prior`: its proxy's value of each architecture, computed once per canonical key.
pub struct Prior {
    proxies: Proxies,
    memo: std::sync::Mutex<std::collections::HashMap<String, f64>>,
}

impl Prior {
    /// The prior of the run in `run`, if its experiment names one (NASWOT reads the run's data).
    pub fn of_run(run: &space::RunDir) -> Result<Option<Prior>> {
        let plan = run.load_plan()?;
        let Some(p) = plan.exp().search.prior else {
            return Ok(None);
        };
        let data = match p {
            Proxy::Naswot => Some(data::load_checked(&plan, &run.space())?),
            _ => None,
        };
        Ok(Some(Prior {
            proxies: Proxies::new(p, &plan, data.as_ref())?,
            memo: Default::default(),
        }))
    }

    /// The prior's value of `arch` (−∞ if the network cannot be built, so it is never preferred).
    pub fn value(&self, arch: &Arch) -> f64 {
        let key = self.proxies.def.key(arch, &self.proxies.input);
        if let Some(&v) = self.memo.lock().expect("not poisoned").get(&key) {
            return v;
        }
        let v = self.proxies.value(arch).unwrap_or(f64::NEG_INFINITY);
        self.memo.lock().expect("not poisoned").insert(key, v);
        v
    }
}

/// A proxy's value mapped monotonically into [0, 1): ½ + ½·x/(1 + |x|) of x = sign(v)·ln(1 + |v|) (synflow
/// spans dozens of orders of magnitude); −∞ (a NASWOT kernel that is singular) maps to 0.
pub fn squash(v: f64) -> f64 {
    if v == f64::NEG_INFINITY {
        return 0.0;
    }
    let x = v.signum() * v.abs().ln_1p();
    0.5 + 0.5 * x / (1.0 + x.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squash_keeps_the_order_within_zero_and_one() {
        let vs = [f64::NEG_INFINITY, -5.0, 0.0, 1.0, 10.0, 1e6, 1e30, 1e300];
        let s: Vec<f64> = vs.iter().map(|&v| squash(v)).collect();
        assert!(s.iter().all(|x| (0.0..1.0).contains(x)), "{s:?}");
        assert!(s.windows(2).all(|w| w[0] < w[1]), "{s:?}");
        assert!(squash(1e6) < squash(1.1e6), "large values stay apart");
    }
}
