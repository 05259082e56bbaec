//! `nas bench --prior` and `--proxy-correlation`: zero-cost proxies of every architecture of a table,
//! computed on our own implementation of the space's network (nothing but the architecture string is
//! needed for synflow and the parameter count), cached in a CSV next to the table.

use anyhow::{anyhow, Result};
use evaluate::table::Table;
use rayon::prelude::*;
use space::{Plan, Proxy};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The cache of `proxy`'s values for `table`: `TABLE.<proxy>.csv` (columns `arch`, `<proxy>`).
pub fn cache_path(table: &str, proxy: Proxy) -> PathBuf {
    PathBuf::from(format!("{table}.{proxy}.csv"))
}

/// `proxy`'s value of every architecture of `table`, from the cache when it has them all, else computed
/// (in parallel) and cached when the table's folder is writable.
pub fn values(
    table: &Table,
    table_path: &str,
    proxy: Proxy,
    plan: &Plan,
    pool: &rayon::ThreadPool,
) -> Result<HashMap<String, f64>> {
    if proxy == Proxy::Naswot {
        return Err(anyhow!(
            "proxy naswot needs the benchmark's images, which a table does not have (synflow and params need none)"
        ));
    }
    let path = cache_path(table_path, proxy);
    if let Ok(cached) = read_cache(&path) {
        if table.iter().all(|(a, _, _)| cached.contains_key(a)) {
            return Ok(cached);
        }
    }
    let t0 = std::time::Instant::now();
    let proxies = evaluate::proxy::Proxies::new(proxy, plan, None)?;
    let archs: Vec<&str> = table.iter().map(|(a, _, _)| a).collect();
    let vals: Vec<f64> = pool.install(|| {
        archs
            .par_iter()
            .map(|a| proxies.value(&plan.def.parse(a)?))
            .collect::<Result<_>>()
    })?;
    let mut out = Vec::new();
    writeln!(out, "arch,{proxy}")?;
    for (a, v) in archs.iter().zip(&vals) {
        writeln!(out, "{a},{v:e}")?;
    }
    // A table in a read-only place (a shared data folder) is still benchmarked, only not cached.
    let cached = match space::io::atomic_write(&path, &out) {
        Ok(()) => format!("cached in {}", path.display()),
        Err(e) => format!("not cached ({e})"),
    };
    eprintln!(
        "nas bench: {proxy} of {} architectures in {:.1} s, {cached}",
        archs.len(),
        t0.elapsed().as_secs_f64(),
    );
    Ok(archs.into_iter().map(String::from).zip(vals).collect())
}

fn read_cache(path: &Path) -> Result<HashMap<String, f64>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let (a, v) = line
            .rsplit_once(',')
            .ok_or_else(|| anyhow!("{}:{}: expected arch,value", path.display(), i + 1))?;
        let v: f64 = v
            .parse()
            .map_err(|_| anyhow!("{}:{}: `{v}` is not a number", path.display(), i + 1))?;
        out.insert(a.to_string(), v);
    }
    Ok(out)
}

/// Ranks from 1, ties sharing their mean rank.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (Pearson's of the ranks, ties at their mean rank).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_matches_hand_computed_values() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // Ranks x = (1, 2, 3, 4), y = (2, 1, 4, 3): 1 − 6·Σd²/(n(n²−1)) = 1 − 6·4/60 = 0.6.
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[5.0, 1.0, 9.0, 7.0]) - 0.6).abs() < 1e-12);
        // A tie: y ranks (1.5, 1.5, 3); Pearson of (1, 2, 3) and (1.5, 1.5, 3) = 0.866….
        let r = spearman(&[1.0, 2.0, 3.0], &[0.0, 0.0, 1.0]);
        assert!((r - 3f64.sqrt() / 2.0).abs() < 1e-12, "{r}");
    }
}
